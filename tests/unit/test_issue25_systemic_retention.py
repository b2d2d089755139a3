"""Issue 25, systemic planner: the retention policy (services/systemic_planner/retention.py) never changes a decision.

For generated histories of the planner's inputs over years (labs, imaging findings, assessments, SREs, scores, drug
starts and stops, administrations, dental events, care events, clock ticks; out of clinical order, with
corrections, withdrawals and duplicates within the stated horizon), every event's outputs, `next_due` and the plan
the API serves are the same with retention as with the whole history kept (`keep_all`)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.retention import RECORDS_KEPT, RESULTS_KEPT, retain
from tests.unit.test_issue25_systemic_history import history, now_for

T0 = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)
LESIONS = ("a", "b", "c")
LABS = (
    ("creatinine_clearance", "mL/min", (12.0, 28.0, 35.0, 45.0, 55.0, 75.0, None)),
    ("vitamin_d_25oh", "ng/mL", (8.0, 15.0, 25.0, 45.0, 90.0, None)),
    ("corrected_calcium", "mmol/L", (2.3, 2.5, 2.8, 3.7, None)),
    ("ctx_serum", "pg/mL", (150.0, 300.0, 600.0, None)),
)
DRUGS = ("denosumab", "zoledronic_acid", "carboplatin", "osimertinib", "cholecalciferol", "xyzomab")
PATHWAY = ("multidisciplinary_decision", "pain_management", "oncogenetics")
#: the horizon the policy states, fixed here (not read from retention.py, so that a smaller policy fails): a
#: withdrawal names one of the 2 newest live results of its analyte, at most 2 in a row; a correction names one of
#: the 2 newest recorded findings of its lesion, assessments, or one of the newest treatment records
NEWEST = 2
IN_A_ROW = 2
#: a drug record is corrected within this long of the newest record (retention.DRUG_HORIZON is 120 days)
DRUG_RECENT = timedelta(days=100)
#: the runtime drops a second delivery within SEEN_TTL_SECONDS (14 days) of the first: only those arrive twice here
DEDUPE_WINDOW = timedelta(days=14)
#: event kinds (see `_event`) by profile: each example dwells on one part of the state, so that it outgrows what is
#: kept (a mixed profile, labs, findings, assessments, treatments, care)
PROFILES = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13),
    (0, 0, 1, 1, 2, 2, 9, 12, 13, 13),
    (3, 3, 4, 4, 5, 0, 12),
    (5, 5, 5, 5, 3, 0, 12),
    (8, 9, 9, 10, 10, 0, 12),
    (11, 11, 11, 0, 12),
)


@dataclass
class World:
    """The history generated so far: what a correction, a withdrawal or a duplicate may name (within the horizon
    the retention policy states: the newest records of their kind)."""

    n: int = 0
    now: datetime = T0
    clock: datetime = T0  # the newest recorded_at so far
    events: list[Message] = field(default_factory=list)
    seen: list[datetime] = field(default_factory=list)  # the clock when each event arrived
    labs: dict[str, list[NormalisedLab]] = field(default_factory=dict)
    withdrawn_in_a_row: dict[str, int] = field(default_factory=dict)
    findings: dict[str, list[ImagingFinding]] = field(default_factory=dict)
    assessments: list[ClinicalAssessment] = field(default_factory=list)
    treatments: list[TreatmentEvent] = field(default_factory=list)
    sres: list[SkeletalEvent] = field(default_factory=list)

    def uid(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)

    def env(self, occurred: datetime, delay: timedelta = timedelta(hours=1), source: str = "t") -> dict[str, Any]:
        return {
            "event_id": self.uid(),
            "patient_id": "p1",
            "occurred_at": occurred,
            "recorded_at": occurred + delay,
            "source": source,
        }


def _day(t: datetime) -> date:
    return t.date()


def _event(w: World, step: tuple[int, int, int, int, int], profile: tuple[int, ...]) -> Message | None:
    """One event from five drawn integers: kind (in `profile`), a choice, a value, a clinical-time offset, a flag."""
    kind, choice, value, offset, flag = step
    kind = profile[kind % len(profile)]
    base = w.clock + timedelta(days=offset % 40, hours=value % 24)  # the clock moves on by up to 40 days
    late = w.clock - timedelta(days=offset % 60)  # a record of up to 60 days ago, arriving now
    occurred = late if flag % 5 == 0 else base
    if kind in (0, 1, 2):  # a lab result, sometimes withdrawn, sometimes dated in the future
        analyte, unit, values = LABS[choice % len(LABS)]
        held = w.labs.setdefault(analyte, [])
        live = [x for x in held if x.status != "withdrawn"]
        if flag % 5 == 1 and live and w.withdrawn_in_a_row.get(analyte, 0) < IN_A_ROW:
            newest = sorted(live, key=lambda x: (x.occurred_at, x.recorded_at, x.event_id.int))[-NEWEST:]
            target = newest[value % len(newest)]
            w.withdrawn_in_a_row[analyte] = w.withdrawn_in_a_row.get(analyte, 0) + 1
            return target.model_copy(
                update={"event_id": w.uid(), "status": "withdrawn", "recorded_at": w.clock + timedelta(hours=2)}
            )
        if flag % 11 == 3:
            occurred = base + timedelta(days=30)  # dated in the future
        w.withdrawn_in_a_row[analyte] = 0
        doc: dict[str, Any] = {
            **w.env(occurred, source="lab-normalisation"),
            "analyte": analyte,
            "result_id": f"{analyte}-{w.n}",
            "value": values[value % len(values)],
            "unit": unit,
            "missing": ["weight"] if values[value % len(values)] is None else [],
        }
        if analyte == "ctx_serum":
            doc["interpretation"] = "not_interpretable" if flag % 4 == 2 else "interpretable"
        if analyte == "creatinine_clearance" and doc["value"] is not None:
            doc["derived_from"] = [
                {"event_id": w.uid(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": occurred}
            ]
        lab = NormalisedLab.model_validate(doc)
        held.append(lab)
        return lab
    if kind in (3, 4):  # an imaging finding; sometimes an amendment or an entered-in-error of a recent one
        lesion = LESIONS[choice % len(LESIONS)]
        held_f = w.findings.setdefault(lesion, [])
        extra: dict[str, Any] = {}
        if flag % 6 == 1 and held_f:
            recent = sorted(held_f, key=lambda f: (f.recorded_at, f.event_id.int))[-NEWEST:]
            target_f = recent[value % len(recent)]
            status = "entered-in-error" if value % 3 == 0 else "amended"
            explicit = status == "entered-in-error" or value % 2 == 0
            extra = {"record_status": status, "corrects": target_f.event_id if explicit else None}
            occurred = target_f.occurred_at
        finding = ImagingFinding.model_validate(
            {
                **w.env(occurred, timedelta(hours=3)),
                "lesion_id": lesion,
                "skeletal_site": "femur_shaft" if lesion != "b" else "pelvis",
                "modality": ("ct", "mri", "bone_scan", "fdg_pet")[value % 4],
                "status": (None, "confirmed", "suspected", "resolved", None)[offset % 5],
                **extra,
            }
        )
        if extra and extra["corrects"] is None:  # an amendment naming no record follows its lesion's newest ones
            finding = finding.model_copy(update={"recorded_at": w.clock + timedelta(hours=3)})
        held_f.append(finding)
        return finding
    if kind == 5:  # a clinical assessment; sometimes a correction of a recent one
        extra = {}
        if flag % 5 == 1 and w.assessments:
            recent_a = sorted(w.assessments, key=lambda a: (a.recorded_at, a.event_id.int))[-NEWEST:]
            target_a = recent_a[value % len(recent_a)]
            status = "entered-in-error" if value % 3 == 0 else "amended"
            explicit = status == "entered-in-error" or value % 2 == 0
            extra = {"record_status": status, "corrects": target_a.event_id if explicit else None}
        a = ClinicalAssessment.model_validate(
            {
                **w.env(occurred),
                "life_expectancy_months": (None, 2.0, 5.0, 12.0, 24.0)[value % 5],
                "oncological_response": (None, "good", "stable", "progression", "complete")[choice % 5],
                **extra,
            }
        )
        if extra and extra["corrects"] is None:  # an amendment naming no record follows the newest ones
            a = a.model_copy(update={"recorded_at": w.clock + timedelta(hours=1)})
        w.assessments.append(a)
        return a
    if kind == 6:  # an SRE from scoring, or the withdrawal of one
        if flag % 4 == 1 and w.sres:
            gone = w.sres[value % len(w.sres)]
            return SkeletalEvent.model_validate(
                {
                    **w.env(gone.occurred_at, source="scoring"),
                    "kind": gone.kind,
                    "rule_id": "CLASS-SRE",
                    "evidence": [],
                    "status": "withdrawn",
                    "supersedes": [gone.event_id],
                }
            )
        current = (None, True, False)[value % 3]
        sre = SkeletalEvent.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "kind": ("hypercalcaemia", "pathological_fracture", "cord_compression")[choice % 3],
                "rule_id": "CLASS-SRE",
                "evidence": [],
                "current": current,
                "evidence_at": occurred if current is not None else None,
            }
        )
        w.sres.append(sre)
        return sre
    if kind == 13:  # what the planner reads nothing of: another analyte, another score
        if flag % 2:
            return NormalisedLab.model_validate(
                {
                    **w.env(occurred, source="lab-normalisation"),
                    "analyte": ("albumin", "creatinine", "total_calcium")[choice % 3],
                    "result_id": f"other-{w.n}",
                    "value": 40.0,
                    "unit": "g/L",
                }
            )
        return Score.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "score": ("mirels", "sins")[choice % 2],
                "subject": "a",
                "total": 9,
                "complete": True,
                "band": None,
                "components": [],
                "rule_ids": ["MIRELS-HIGH"],
                "ruleset_version": RULESET_VERSION,
                "text_fr": "x",
                "citation": cite("MIRELS-HIGH").model_dump(),
            }
        )
    if kind == 7:
        return Score.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "score": "oligometastatic",
                "subject": "patient",
                "total": None,
                "complete": True,
                "band": ("oligometastatic", "multi_metastatic", "undetermined")[choice % 3],
                "components": [],
                "rule_ids": ["CLASS-OLIGO"],
                "ruleset_version": RULESET_VERSION,
                "text_fr": "x",
                "citation": cite("CLASS-OLIGO").model_dump(),
            }
        )
    if kind in (8, 9, 10):  # a drug started or stopped, given, a dental event, a radiotherapy course; or a correction
        on = _day(base) - timedelta(days=(offset * 7) % 90) + timedelta(days=flag % 3 * 15)
        recent_t: list[TreatmentEvent] = []
        if flag % 6 == 1 and w.treatments:
            recent_t = sorted(w.treatments, key=lambda e: (e.recorded_at, e.event_id.int))[-2 * NEWEST :]
            recent_t = [x for x in recent_t if x.treatment.on >= (w.clock - DRUG_RECENT).date()]
        if flag % 6 == 1 and recent_t:
            target_t = recent_t[value % len(recent_t)]
            status = "entered-in-error" if value % 2 == 0 else "amended"
            body = target_t.treatment.model_dump()
            if status == "amended" and "on" in body:
                body["on"] = body["on"] + timedelta(days=choice % 5)
            return TreatmentEvent.model_validate(
                {**w.env(base), "treatment": body, "record_status": status, "corrects": target_t.event_id}
            )
        drug = DRUGS[choice % len(DRUGS)]
        if kind == 8:
            body = {"kind": "systemic_drug", "drug": drug, "action": ("started", "stopped")[value % 2], "on": on}
        elif kind == 9:
            body = {"kind": "drug_administration", "drug": drug, "on": on, "ongoing": True if flag % 9 == 4 else None}
        elif value % 4 == 3:
            body = {"kind": "radiotherapy", "site": "femur", "total_dose_gy": 8, "fractions": 1, "on": on}
        else:
            body = {
                "kind": "dental",
                "action": ("assessment", "extraction", "jaw_bone_exposure")[value % 3],
                "orthopantomogram": flag % 2 == 0,
                "cleared_for_antiresorptive": (None, True, False)[offset % 3],
                "exposure_weeks": (None, 4.0, 10.0)[choice % 3],
                "craniofacial_irradiation": (None, False, True)[flag % 3],
                "on": on,
            }
        e = TreatmentEvent.model_validate({**w.env(base), "treatment": body})
        w.treatments.append(e)
        return e
    if kind == 11:  # care events: a pathway step, a biopsy planned or reported
        on = _day(base) + timedelta(days=(value % 3) * 10 - 10)
        if flag % 2:
            body = {
                "kind": "pathway_step",
                "item": PATHWAY[choice % len(PATHWAY)],
                "status": ("done", "to_do", "declined", "not_applicable")[value % 4],
                "on": on,
            }
        else:
            body = {
                "kind": "bone_biopsy",
                "biopsy_id": f"b{choice % 2}",
                "status": ("planned", "reported")[value % 2],
                "on": on,
                "histology": (None, "adenocarcinoma", "squamous_cell")[offset % 3],
                "molecular_results": {"EGFR": ("négatif", "échec", "L858R")[flag % 3]},
            }
        return CareEvent.model_validate({**w.env(base), "event": body})
    again = [e for e, seen in zip(w.events, w.seen, strict=True) if seen >= w.clock - DEDUPE_WINDOW]
    if again and flag % 2:  # a second delivery, within the runtime's duplicate window (else it is dropped there)
        return again[-1 - value % min(5, len(again))]
    due = w.now + timedelta(days=offset % 30)
    return ClockTick.model_validate(
        {**w.env(due, timedelta(0), "systemic-planner"), "service": "systemic-planner", "due_at": due}
    )


def _dump(out: list[Message]) -> list[Any]:
    return [o.model_dump(mode="json") for o in out]


steps = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 30), st.integers(0, 30), st.integers(0, 200), st.integers(0, 100)),
    min_size=30,
    max_size=110,
)


def _prologue(w: World) -> list[Message]:
    """A confirmed bone metastasis, an SRE and a dental assessment: the plan has its items from the start."""
    found = ImagingFinding.model_validate(
        {**w.env(T0), "lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "ct", "status": "confirmed"}
    )
    w.findings["a"] = [found]
    sre = SkeletalEvent.model_validate(
        {**w.env(T0, source="scoring"), "kind": "pathological_fracture", "rule_id": "CLASS-SRE", "evidence": []}
    )
    dental = TreatmentEvent.model_validate(
        {
            **w.env(T0),
            "treatment": {"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": T0.date()},
        }
    )
    return [found, sre, dental]


def _run(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> tuple[SystemicState, SystemicState]:
    """The history through the planner with retention and without (`keep_all`): the same outputs, deadline and
    plan (the whole plan as the API serves it, inputs and provenance included) after every event."""
    w = World()
    kept, full = SystemicState(), SystemicState()
    for i, step in enumerate([(0, 0, 0, 0, 0)] * 3 + program):
        e = _prologue(w)[i] if i < 3 else _event(w, step, profile)
        if e is None:
            continue
        if not isinstance(e, ClockTick):
            w.clock = max(w.clock, e.recorded_at)
        w.now = max(w.now, w.clock + timedelta(minutes=5 + step[3] % 17 * 60))
        w.events.append(e)
        w.seen.append(w.clock)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=w.now))
        full, out_full = apply_event(full, e, r.AsOf(now=w.now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full), e
        assert kept.next_due == full.next_due
        assert retain(kept) == kept  # the state stored is the retained one (idempotent)
        plan_kept = current_plan(kept, "p1", at=r.AsOf(now=w.now))
        plan_full = current_plan(full, "p1", at=r.AsOf(now=w.now))
        assert (plan_kept and plan_kept.model_dump(mode="json")) == (plan_full and plan_full.model_dump(mode="json"))
    return kept, full


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, profile=st.sampled_from(PROFILES))
def test_retention_never_changes_an_output(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> None:
    _run(program, profile)


def test_the_generated_histories_outgrow_what_is_kept() -> None:
    """The generator reaches every part of the policy: results, findings, assessments, treatments and care events
    are dropped (and folded) in histories it makes, with the same outputs."""
    dropped: set[str] = set()
    for seed in range(6):
        rnd = random.Random(seed)
        for profile in PROFILES:
            program = [tuple(rnd.randint(0, hi) for hi in (12, 30, 30, 200, 100)) for _ in range(110)]
            kept, full = _run(program, profile)  # type: ignore[arg-type]
            for part in (
                "creatinine_clearance",
                "vitamin_d",
                "corrected_calcium",
                "ctx",
                "findings",
                "assessments",
                "treatments",
                "care",
            ):
                if len(getattr(kept, part)) < len(getattr(full, part)):
                    dropped.add(part)
            if kept.finding_base:
                dropped.add("finding_base")
            if kept.assessment_base is not None:
                dropped.add("assessment_base")
            if kept.drug_replays:
                dropped.add("drug_replays")
    assert dropped == {
        "creatinine_clearance",
        "vitamin_d",
        "corrected_calcium",
        "ctx",
        "findings",
        "assessments",
        "treatments",
        "care",
        "finding_base",
        "assessment_base",
        "drug_replays",
    }


def test_five_years_of_history_same_outputs_and_smaller_state() -> None:
    """The realistic history (test_issue25_systemic_history.py): the same outputs event by event, and a rebuild
    (the same events again, from nothing) gives the same state."""
    events = history(seed=3, years=5.0)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        at = r.AsOf(now=now_for(e))
        kept, out_kept = apply_event(kept, e, at)
        full, out_full = apply_event(full, e, r.AsOf(now=now_for(e)), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert len(kept.model_dump_json()) < len(full.model_dump_json()) / 2
    # a rebuild, later (another `now` for every decision): the same facts kept, whatever the wall clock
    rebuilt = SystemicState()
    for e in events:
        rebuilt, _ = apply_event(rebuilt, e, r.AsOf(now=now_for(e) + timedelta(days=400)))
    decisions = {"published", "plan_version", "plan_digest", "plan_event", "next_due", "decided_at"}
    assert rebuilt.model_dump(exclude=decisions) == kept.model_dump(exclude=decisions)


def test_retain_is_deterministic_and_idempotent_on_the_state_alone() -> None:
    events = history(seed=4, years=3.0)
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=now_for(e)), keep_all=True)
    once = retain(s)
    assert retain(once) == once
    assert retain(SystemicState.model_validate_json(s.model_dump_json())) == once  # from its JSON, as stored
    # what is kept: the newest results of each analyte, the newest records of each lesion and of the assessments
    assert len([v for v in once.corrected_calcium.values() if not v.withdrawn]) <= RESULTS_KEPT
    per_lesion: dict[str, int] = {}
    for f in once.findings.values():
        per_lesion[f.lesion_id] = per_lesion.get(f.lesion_id, 0) + 1
    assert per_lesion and max(per_lesion.values()) <= 2 * RECORDS_KEPT
    assert set(once.finding_base) <= set(once.lesions)
    assert not any(e.treatment.kind == "radiotherapy" for e in once.treatments.values())


def test_an_old_state_without_the_new_fields_still_loads_and_is_retained_on_its_next_event() -> None:
    events = history(seed=5, years=2.0)
    s = SystemicState()
    for e in events[:-1]:
        s, _ = apply_event(s, e, r.AsOf(now=now_for(e)), keep_all=True)
    stored = s.model_dump(mode="json")
    for new in ("newest_recorded_at", "finding_base", "assessment_base"):
        stored.pop(new)
    old = SystemicState.model_validate(stored)
    assert old.newest_recorded_at is None
    after, _ = apply_event(old, events[-1], r.AsOf(now=now_for(events[-1])))
    assert after.newest_recorded_at is not None and retain(after) == after
    assert len(after.model_dump_json()) < len(s.model_dump_json())


def test_the_initial_clearance_of_a_zoledronic_acid_course_outlives_the_newest_results() -> None:
    """SYS-ZA-DOSE (Tableau 2, L1153-1184): the dose follows the clearance before the first infusion, however many
    clearances came since; retention keeps it (and the dose is the same as with the whole history)."""
    w = World()
    events: list[Message] = _prologue(w)
    t = T0 + timedelta(hours=1)
    events.append(
        NormalisedLab.model_validate(
            {
                **w.env(t, source="lab-normalisation"),
                "analyte": "vitamin_d_25oh",
                "result_id": "vd",
                "value": 40.0,
                "unit": "ng/mL",
            }
        )
    )
    for week in range(40):  # 45 mL/min before the course (3.3 mg), 75 every week after it
        at = t + timedelta(weeks=week)
        doc = {
            **w.env(at, source="lab-normalisation"),
            "analyte": "creatinine_clearance",
            "result_id": f"crcl-{week}",
            "value": 45.0 if week == 0 else 75.0,
            "unit": "mL/min",
            "derived_from": [
                {"event_id": w.uid(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": at}
            ],
        }
        events.append(NormalisedLab.model_validate(doc))
        if week == 0:
            za = {
                "kind": "systemic_drug",
                "drug": "zoledronic_acid",
                "action": "started",
                "on": (at + timedelta(days=2)).date(),
            }
            events.append(TreatmentEvent.model_validate({**w.env(at + timedelta(days=2)), "treatment": za}))
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, _ = apply_event(kept, e, r.AsOf(now=now))
        full, _ = apply_event(full, e, r.AsOf(now=now), keep_all=True)
    assert len(kept.creatinine_clearance) < len(full.creatinine_clearance) / 4
    assert "crcl-0" in {k for k in kept.creatinine_clearance}
    as_of = r.AsOf(now=events[-1].recorded_at + timedelta(minutes=5))
    plan_kept = current_plan(kept, "p1", at=as_of)
    plan_full = current_plan(full, "p1", at=as_of)
    assert plan_kept is not None and plan_full is not None
    assert plan_kept.model_dump(mode="json") == plan_full.model_dump(mode="json")
    ar = next(i for i in plan_kept.items if i.key == "antiresorptive")
    assert "Acide zolédronique 3.3 mg" in ar.title  # the initial 45 mL/min, not the newest 75 (4 mg)
    assert any(x.name == "initial_creatinine_clearance" and x.value == 45.0 for x in ar.inputs)


def test_a_correction_folds_the_assessments_again_from_what_the_dropped_ones_said() -> None:
    """SYS-AR-START, SYS-SCHEDULE: the response and life expectancy an assessment no longer held stated still count
    when a correction makes the planner fold the assessments again (`assessment_base`)."""
    w = World()
    events: list[Message] = _prologue(w)
    first = ClinicalAssessment.model_validate(
        {**w.env(T0 + timedelta(days=1)), "life_expectancy_months": 24.0, "oncological_response": "good"}
    )
    events.append(first)
    later = [ClinicalAssessment.model_validate({**w.env(T0 + timedelta(days=10 * k)), "ecog": 1}) for k in range(2, 12)]
    events += later
    wrong = later[-1]
    events.append(
        ClinicalAssessment.model_validate(
            {**w.env(wrong.occurred_at), "record_status": "entered-in-error", "corrects": wrong.event_id}
        )
    )
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert str(first.event_id) not in kept.assessments and kept.assessment_base is not None
    assert kept.response == full.response and kept.response is not None and kept.response.value == "good"
    assert kept.life_expectancies == full.life_expectancies


def test_years_of_monthly_anti_resorptive_doses_are_folded_into_the_drug_replay() -> None:
    """SYS-REVIEW-2Y, SYS-DENO-STOP: 5 years of denosumab every 4 weeks then a stop and a zoledronic acid relay, with
    a chemotherapy line and a vitamin D loading: the drug events older than the horizon are folded (the state holds a
    bounded number of them), and every output is the one of the whole history."""
    w = World()
    events: list[Message] = _prologue(w)

    def drug(on: date, name: str, action: str) -> TreatmentEvent:
        at = datetime(on.year, on.month, on.day, 9, tzinfo=UTC)
        body = {"kind": "systemic_drug", "drug": name, "action": action, "on": on}
        return TreatmentEvent.model_validate({**w.env(at), "treatment": body})

    def given(on: date, name: str) -> TreatmentEvent:
        at = datetime(on.year, on.month, on.day, 10, tzinfo=UTC)
        body = {"kind": "drug_administration", "drug": name, "on": on}
        return TreatmentEvent.model_validate({**w.env(at), "treatment": body})

    d0 = T0.date() + timedelta(days=3)
    events += [drug(d0, "carboplatin", "started"), drug(d0, "cholecalciferol", "started")]
    events += [drug(d0 + timedelta(days=60), "cholecalciferol", "stopped")]
    events += [drug(d0 + timedelta(days=120), "carboplatin", "stopped")]
    doses = [given(d0 + timedelta(days=28 * k), "denosumab") for k in range(65)]
    events += doses
    stop = doses[-1].treatment.on + timedelta(days=20)
    events += [drug(stop, "denosumab", "stopped"), given(stop + timedelta(days=10), "zoledronic_acid")]
    events.sort(key=lambda e: e.recorded_at)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(hours=1)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
    assert kept.drug_replays and len(kept.treatments) < 25 < len(full.treatments)
    for later in (timedelta(days=1), timedelta(days=200)):
        at = r.AsOf(now=events[-1].recorded_at + later)
        plan_kept = current_plan(kept, "p1", at=at)
        plan_full = current_plan(full, "p1", at=at)
        assert plan_kept is not None and plan_full is not None
        assert plan_kept.model_dump(mode="json") == plan_full.model_dump(mode="json")
        assert {i.key for i in plan_kept.items} >= {"denosumab-stop", "antiresorptive-start"}
