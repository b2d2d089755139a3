"""Issue 25: the local-treatment planner's retention never changes a decision. For generated histories (every input
kind, out of clinical order, corrections, amendments naming no record, duplicates, cancelled and re-opened requests,
spanning years so that records age past HORIZON), the transition WITH retention publishes exactly what the one
WITHOUT it publishes, event by event, and plans the same next clock tick; retain() is idempotent and deterministic.
Late deliveries, duplicates and corrections arrive within HORIZON of the newest event (the stated horizon)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from contracts.rules import RULESET_VERSION, cite
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.retention import HORIZON, retain
from tests.unit.test_issue25_local_history import patient_history

T0 = datetime(2022, 3, 1, 9, tzinfo=UTC)
LESIONS = (("t8", "spine", "T8"), ("l2", "spine", "L2"), ("fem", "femur_shaft", None), ("sac", "sacrum", None))
DRUGS = ("clopidogrel", "apixaban", "aspirin", "gemcitabine", "dexamethasone", "bevacizumab", "Plavix")
MODALITIES = ("palliative_rt", "sbrt", "reirradiation", "cementoplasty", "surgery")


class _Builder:
    """Turns drawn steps into messages: each step at its own recorded time, the clinical time a little earlier."""

    def __init__(self) -> None:
        self.n = 0
        self.sent: list[tuple[datetime, Message]] = []

    def env(self, occurred: datetime, recorded: datetime, **fields: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "event_id": str(uuid.UUID(int=self.n * 7919 + 1, version=4)),
            "patient_id": "pt-ret",
            "occurred_at": occurred.isoformat(),
            "recorded_at": recorded.isoformat(),
            "source": "test",
            **fields,
        }


@st.composite
def histories(draw: st.DrawFn) -> list[Message]:
    b = _Builder()
    now = T0
    out: list[Message] = []
    steps = draw(st.integers(min_value=15, max_value=70))
    for _ in range(steps):
        now += timedelta(days=draw(st.integers(0, 45)), minutes=draw(st.integers(0, 600)))
        occurred = now - timedelta(days=draw(st.integers(0, 20)), minutes=draw(st.integers(0, 90)))
        kind = draw(
            st.sampled_from(
                (
                    "finding",
                    "finding",
                    "assessment",
                    "assessment",
                    "drug",
                    "drug",
                    "drug",
                    "course",
                    "surgery",
                    "request",
                    "request",
                    "score",
                    "lab",
                    "correction",
                    "duplicate",
                    "old duplicate",
                )
            )
        )
        m: Message | None = None
        if kind == "finding":
            lid, site, level = draw(st.sampled_from(LESIONS))
            spine = site == "spine"
            m = ImagingFinding.model_validate(
                b.env(
                    occurred,
                    now,
                    lesion_id=lid,
                    skeletal_site=site,
                    vertebral_level=level,
                    modality="mri",
                    cord_compression=draw(st.sampled_from((None, False, True))) if spine else None,
                    epidural_extension=draw(st.sampled_from((None, False, True))),
                    pathological_fracture=draw(st.sampled_from((None, False, True))),
                    lesion_type=draw(st.sampled_from((None, "lytic", "blastic"))),
                    canal_narrowing_pct=draw(st.sampled_from((None, 10.0, 40.0))),
                    status=draw(st.sampled_from((None, "confirmed", "resolved"))),
                )
            )
        elif kind == "assessment":
            fields: dict[str, Any] = {}
            if draw(st.booleans()):
                fields["life_expectancy_months"] = draw(st.sampled_from((1, 2, 5, 12, 30)))
            if draw(st.booleans()):
                fields["frail"] = draw(st.booleans())
            if draw(st.booleans()):
                fields["neurological_deficit"] = draw(st.booleans())
            if draw(st.booleans()):
                fields["pain"] = {
                    "resistant_to_analgesics": draw(st.booleans()),
                    "character": draw(st.sampled_from(("mechanical", "neuropathic"))),
                    "intensity": draw(st.sampled_from(("none", "moderate"))),
                }
            if draw(st.booleans()):
                fields["lesion_pain"] = [{"lesion_id": draw(st.sampled_from(("t8", "fem"))), "intensity": "moderate"}]
            if draw(st.booleans()):
                fields["surgical_opinion"] = {
                    "operable": draw(st.booleans()),
                    "on": (occurred.date() - timedelta(days=draw(st.integers(0, 3)))).isoformat(),
                    "lesion_id": draw(st.sampled_from((None, "t8"))),
                }
            for name in ("cement_allergy", "active_infection", "diffuse_pain", "mri_contraindicated"):
                if draw(st.integers(0, 5)) == 0:
                    fields[name] = draw(st.booleans())
            m = ClinicalAssessment.model_validate(b.env(occurred, now, **fields))
        elif kind == "drug":
            name = draw(st.sampled_from(DRUGS))
            on = occurred.date() - timedelta(days=draw(st.integers(0, 10)))
            shape = draw(st.sampled_from(("started", "stopped", "dose", "dose", "dose")))
            treatment: dict[str, Any] = (
                {"kind": "systemic_drug", "drug": name, "action": shape, "on": on.isoformat()}
                if shape != "dose"
                else {
                    "kind": "drug_administration",
                    "drug": name,
                    "on": on.isoformat(),
                    "ongoing": draw(st.sampled_from((None, True, False))),
                    "daily_dose_mg": draw(st.sampled_from((None, 75.0, 300.0))),
                    "at": draw(st.sampled_from((None, f"{on.isoformat()}T08:00:00+00:00"))),
                }
            )
            m = TreatmentEvent.model_validate(b.env(occurred, now, treatment=treatment))
        elif kind == "course":
            lid, site, level = draw(st.sampled_from(LESIONS))
            fx = draw(st.sampled_from((1, 5, 10)))
            m = TreatmentEvent.model_validate(
                b.env(
                    occurred,
                    now,
                    treatment={
                        "kind": "radiotherapy",
                        "site": site,
                        "vertebral_level": level,
                        "lesion_id": draw(st.sampled_from((None, lid))),
                        "total_dose_gy": {1: 8.0, 5: 20.0, 10: 30.0}[fx],
                        "fractions": fx,
                        "cord_dmax_gy": draw(st.sampled_from((None, 8.0, 19.0, 29.0))),
                        "on": occurred.date().isoformat(),
                    },
                )
            )
        elif kind == "surgery":
            lid, site, level = draw(st.sampled_from(LESIONS))
            m = TreatmentEvent.model_validate(
                b.env(
                    occurred,
                    now,
                    treatment={
                        "kind": "surgery",
                        "site": site,
                        "procedure": draw(st.sampled_from(("decompression", "prophylactic_fixation"))),
                        "lesion_id": lid,
                        "on": occurred.date().isoformat(),
                    },
                )
            )
        elif kind == "request":
            lid = draw(st.sampled_from(("t8", "l2", "fem")))
            modality = draw(st.sampled_from(MODALITIES))
            planned = draw(st.sampled_from((None, 0, 7, -30)))
            m = LocalTreatmentRequest.model_validate(
                b.env(
                    occurred,
                    now,
                    request_id=f"r-{lid}-{modality}",
                    lesion_id=lid,
                    modality=modality,
                    total_dose_gy=27.0,
                    fractions=3,
                    planned_cord_dmax_gy=draw(st.sampled_from((None, 9.0, 14.0))),
                    planned_on=None if planned is None else (occurred.date() + timedelta(days=planned)).isoformat(),
                    urgent=draw(st.booleans()),
                    status=draw(st.sampled_from(("active", "active", "cancelled"))),
                )
            )
        elif kind == "score":
            subject = draw(st.sampled_from(("t8", "fem", "patient")))
            total = draw(st.integers(4, 15))
            score = "oligometastatic" if subject == "patient" else "sins" if subject == "t8" else "mirels"
            m = Score.model_validate(
                b.env(
                    occurred,
                    now,
                    score=score,
                    subject=subject,
                    total=total,
                    complete=True,
                    band=("stable" if total < 7 else "unstable") if score != "oligometastatic" else "oligometastatic",
                    components=[],
                    rule_ids=["SCORE-SINS"],
                    ruleset_version=RULESET_VERSION,
                    text_fr="x",
                    citation=cite("SCORE-SINS").model_dump(),
                )
            )
        elif kind == "lab":
            analyte = draw(st.sampled_from(("platelets", "prothrombin_pct", "corrected_calcium")))
            m = NormalisedLab.model_validate(
                b.env(
                    occurred,
                    now,
                    analyte=analyte,
                    result_id=f"{analyte}-{draw(st.integers(0, 3))}",
                    value=draw(st.sampled_from((30.0, 45.0, 80.0))),
                    unit="G/L",
                    status=draw(st.sampled_from(("final", "final", "withdrawn"))),
                )
            )
        elif kind == "old duplicate":
            # a second delivery of any earlier record, however old, corrected or not: the same decisions
            m = draw(st.sampled_from([x for _, x in b.sent])) if b.sent else None
        else:
            # corrections and duplicates: of a record recorded within the horizon (the stated contract), by its
            # recorded time, not by when it was last sent: a second delivery of an old record does not make it recent
            recent = [x for _, x in b.sent if now - x.recorded_at < HORIZON - timedelta(days=30)]
            if kind == "duplicate" and recent:
                m = draw(st.sampled_from(recent))
            elif recent:
                target = draw(st.sampled_from(recent))
                status = draw(st.sampled_from(("amended", "entered-in-error")))
                named = draw(st.booleans()) or status == "entered-in-error"
                if isinstance(target, ClinicalAssessment):
                    m = ClinicalAssessment.model_validate(
                        b.env(
                            target.occurred_at,
                            now,
                            record_status=status,
                            corrects=str(target.event_id) if named else None,
                            frail=draw(st.booleans()),
                        )
                    )
                elif isinstance(target, ImagingFinding):
                    m = ImagingFinding.model_validate(
                        b.env(
                            target.occurred_at,
                            now,
                            **target.model_dump(
                                mode="json",
                                include={"lesion_id", "skeletal_site", "vertebral_level", "modality"},
                            ),
                            cord_compression=draw(st.sampled_from((None, False, True))),
                            record_status=status,
                            corrects=str(target.event_id) if named else None,
                        )
                    )
                elif isinstance(target, TreatmentEvent):
                    m = TreatmentEvent.model_validate(
                        b.env(
                            target.occurred_at,
                            now,
                            treatment=target.treatment.model_dump(mode="json"),
                            record_status=status,
                            corrects=str(target.event_id),
                        )
                    )
        if m is not None:
            out.append(m)
            b.sent.append((now, m))
    return out


def _run(events: list[Message]) -> LocalState:
    memo.clear()  # the generated event IDs repeat from one example to the next: memoised items are keyed on them
    full, kept = LocalState(), LocalState()
    for i, e in enumerate(events):
        now = e.recorded_at + timedelta(minutes=1)
        full, out_full = apply_event(full, e, now=now, retention=False)
        kept, out_kept = apply_event(kept, e, now=now)
        assert out_kept == out_full, f"event {i} ({type(e).__name__}) decided differently with retention"
        assert kept.next_due == full.next_due, f"event {i}: next clock tick differs"
        assert retain(kept) == kept  # idempotent: the stored state is already the retained one
    # the retained state, stored and loaded (JSON, as in Redis), is the same state
    assert LocalState.model_validate_json(kept.model_dump_json()) == kept
    return kept


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_retention_never_changes_a_decision(events: list[Message]) -> None:
    kept = _run(events)
    target(float(sum(kept.folded.values())), label="records folded")  # toward histories that fold much


def test_a_five_year_history_decides_the_same_and_retention_folds_it() -> None:
    """The realistic history (tests/unit/test_issue25_local_history.py): every output identical, and records were
    folded (the test is not vacuous)."""
    events = patient_history(seed=7, years=5)
    _run(events)
    kept = LocalState()
    for e in events:
        kept, _ = apply_event(kept, e, now=e.recorded_at + timedelta(minutes=1))
    assert kept.folded.get("drug_events", 0) > 50 and kept.folded.get("assessments", 0) > 20
    assert kept.folded.get("requests", 0) >= 1


def test_retain_is_deterministic_from_the_state_alone() -> None:
    """The horizon counts from the state's newest event, not the wall clock: the same state retained twice, or
    rebuilt from the same events, is the same."""
    events = patient_history(seed=3, years=3)
    a, b = LocalState(), LocalState()
    for e in events:
        a, _ = apply_event(a, e, now=e.recorded_at + timedelta(minutes=1))
        b, _ = apply_event(b, e, now=e.recorded_at + timedelta(days=400))  # a replay long after: another clock
    assert a.newest_at == max(e.recorded_at for e in events)
    assert (a.treatments, a.assessments, a.assessed_base, a.findings) == (
        b.treatments,
        b.assessments,
        b.assessed_base,
        b.findings,
    )
    assert retain(retain(a)) == retain(a) == a


def test_every_radiotherapy_course_is_kept_for_life() -> None:
    """RT-REIRR (L2076-2095) sums the cord EQD2 of every earlier course of a segment: no course is ever folded,
    however old, while old drug doses are."""
    events = patient_history(seed=5, years=5)
    s = LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at + timedelta(minutes=1))
    courses = {str(e.event_id) for e in events if isinstance(e, TreatmentEvent) and e.treatment.kind == "radiotherapy"}
    assert len(courses) == 4 and courses <= set(s.treatments)
    assert s.newest_at is not None and s.newest_at - min(
        e.recorded_at for e in events if str(e.event_id) in courses
    ) > timedelta(days=4 * 365)


def test_an_old_state_without_the_retention_fields_loads_and_is_retained_on_its_next_event() -> None:
    events = patient_history(seed=9, years=3)
    full = LocalState()
    for e in events[:-1]:
        full, _ = apply_event(full, e, now=e.recorded_at, retention=False)
    doc = full.model_dump(mode="json")
    for name in ("newest_at", "assessed_base", "opinions_base", "closed_requests", "folded", "fold_marks", "withdrawn"):
        doc.pop(name)
    old = LocalState.model_validate(doc)
    last = events[-1]
    after, out = apply_event(old, last, now=last.recorded_at)
    _, out_full = apply_event(full, last, now=last.recorded_at, retention=False)
    assert out == out_full
    assert len(after.treatments) < len(full.treatments) and len(after.assessments) < len(full.assessments)


def test_a_correction_past_the_horizon_never_brings_back_what_it_withdrew() -> None:
    """HAZ-25-LOCAL-02: an assessment folded away (a year old, replaced) and then withdrawn in error, and the one that
    replaced it withdrawn too: the cement allergy is unknown, as with the whole history, never the withdrawn 'yes'."""
    b = _Builder()
    t0 = T0
    first = ClinicalAssessment.model_validate(b.env(t0, t0, cement_allergy=True))
    second = ClinicalAssessment.model_validate(
        b.env(t0 + timedelta(days=10), t0 + timedelta(days=10), cement_allergy=False)
    )
    later = [
        ClinicalAssessment.model_validate(b.env(t0 + timedelta(days=d), t0 + timedelta(days=d), frail=False))
        for d in (300, 400)
    ]
    at = t0 + timedelta(days=410)
    withdraw_first = ClinicalAssessment.model_validate(
        b.env(at, at, record_status="entered-in-error", corrects=str(first.event_id))
    )
    withdraw_second = ClinicalAssessment.model_validate(
        b.env(at, at + timedelta(hours=1), record_status="entered-in-error", corrects=str(second.event_id))
    )
    events: list[Message] = [first, second, *later, withdraw_first, withdraw_second]
    kept, full = LocalState(), LocalState()
    for e in events:
        kept, _ = apply_event(kept, e, now=e.recorded_at)
        full, _ = apply_event(full, e, now=e.recorded_at, retention=False)
        if e is later[-1]:
            assert str(first.event_id) not in kept.assessments  # folded: its "yes" only in the base
            assert kept.assessed_base["cement_allergy"].value is True
    assert "cement_allergy" not in full.assessed and "cement_allergy" not in kept.assessed
