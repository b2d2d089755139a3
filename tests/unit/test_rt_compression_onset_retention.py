"""HAZ-25-LOCAL-03: the findings the radiotherapy planner keeps per lesion (findings_kept.prune_findings) decide what
the whole history decides. A cord compression irradiated at its onset and seen again on more studies than
FINDINGS_PER_LESION: the newest six alone lost its first sighting, the onset moved past the course and RT-MSCC
(L1397-1402: urgent RT "en l'absence d'indication chirurgicale", none once irradiated) raised the emergency again from
an old finding.
Each test runs the same records through the planner as deployed (FINDINGS_PER_LESION, retention) and with every
finding kept (no pruning, no retention), and compares what each publishes, event by event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services.radiotherapy_planner.facts as rt_facts
import services.radiotherapy_planner.findings_kept as rt_kept
from contracts.base import Message
from contracts.clinical import Recommendation
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.findings_kept import FINDINGS_PER_LESION

T0 = datetime(2024, 1, 8, 9, tzinfo=UTC)
STUDY_EVERY = timedelta(days=90)


class _Records:
    def __init__(self) -> None:
        self.n = 0

    def env(self, at: datetime, **fields: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "event_id": str(uuid.UUID(int=self.n * 104729 + 3, version=4)),
            "patient_id": "pt-onset",
            "occurred_at": at.isoformat(),
            "recorded_at": (at + timedelta(hours=4)).isoformat(),
            "source": "test",
            **fields,
        }

    def finding(self, at: datetime, lesion: str = "t8", **signs: Any) -> ImagingFinding:
        return ImagingFinding.model_validate(
            self.env(
                at, lesion_id=lesion, skeletal_site="spine", vertebral_level=lesion.upper(), modality="mri", **signs
            )
        )

    def course(self, at: datetime, lesion: str = "t8") -> TreatmentEvent:
        treatment = {
            "kind": "radiotherapy",
            "site": "spine",
            "vertebral_level": lesion.upper(),
            "lesion_id": lesion,
            "total_dose_gy": 30.0,
            "fractions": 10,
            "cord_dmax_gy": 29.0,
            "on": at.date().isoformat(),
        }
        return TreatmentEvent.model_validate(self.env(at, treatment=treatment))

    def assessment(self, at: datetime, **facts: Any) -> ClinicalAssessment:
        return ClinicalAssessment.model_validate(self.env(at, **facts))

    def withdraw(self, f: ImagingFinding, at: datetime, **amended: Any) -> ImagingFinding:
        """`f` entered in error at `at`; or, with the signs it should have said, amended."""
        return ImagingFinding.model_validate(
            self.env(
                f.occurred_at,
                lesion_id=f.lesion_id,
                skeletal_site="spine",
                vertebral_level=f.vertebral_level,
                modality="mri",
                record_status="amended" if amended else "entered-in-error",
                corrects=str(f.event_id),
                **amended,
            )
            | {"recorded_at": at.isoformat()}
        )


def _decide(events: list[Message], keep_everything: bool) -> tuple[LocalState, list[list[Message]]]:
    memo.clear()  # memoised items are keyed on event IDs: each run decides afresh
    s, out = LocalState(), []
    for e in events:
        s, o = apply_event(s, e, now=e.recorded_at + timedelta(minutes=1), retention=not keep_everything)
        out.append(o)
    return s, out


def _both(events: list[Message], monkeypatch: pytest.MonkeyPatch) -> tuple[LocalState, list[list[Message]]]:
    """The outputs as deployed, after checking that they are those of the whole history, event by event."""
    bounded, out = _decide(events, keep_everything=False)
    with monkeypatch.context() as m:
        m.setattr(rt_kept, "FINDINGS_PER_LESION", 10**9)
        _, out_full = _decide(events, keep_everything=True)
    for i, (a, b) in enumerate(zip(out, out_full, strict=True)):
        assert a == b, f"event {i} ({type(events[i]).__name__}) decided differently with the findings pruned"
    return bounded, out


def _mscc(out: list[list[Message]]) -> list[Recommendation]:
    return [m for o in out for m in o if isinstance(m, Recommendation) and m.rule_id == "RT-MSCC"]


def test_a_compression_irradiated_at_its_onset_and_seen_on_many_studies_is_never_an_emergency_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cause on a small history: no compression, then a compression irradiated five days later and seen on every
    study after, more of them than FINDINGS_PER_LESION; then a new event. The onset stays the first sighting, the
    course treated it, and no critical RT-MSCC is published after the course (it was, from the 3rd-oldest study)."""
    r = _Records()
    clear = r.finding(T0, cord_compression=False, epidural_extension=False)
    onset = r.finding(T0 + STUDY_EVERY, cord_compression=True, epidural_extension=True)
    course = r.course(onset.occurred_at + timedelta(days=5))
    seen_again = [
        r.finding(onset.occurred_at + k * STUDY_EVERY, cord_compression=True, epidural_extension=True)
        for k in range(1, FINDINGS_PER_LESION + 3)
    ]
    later = r.assessment(seen_again[-1].occurred_at + timedelta(days=3), neurological_deficit=False)
    events: list[Message] = [clear, onset, r.assessment(onset.occurred_at, life_expectancy_months=24), course]
    events += [*seen_again, later]
    s, out = _both(events, monkeypatch)
    first = _mscc(out[: events.index(course)])
    assert any(m.severity == "critical" and m.status == "active" for m in first), "an emergency until irradiated"
    assert not _mscc(out[events.index(course) + 1 :]), "irradiated: never alerted again, however many studies"
    lesion = lesions(s)["t8"]
    assert lesion.compression_onset() == rt_facts.FindingFact.of(onset)  # its first sighting, ~2 years old
    # the onset kept beyond the newest six, and the run's older middle not (what is kept stays bounded)
    assert FINDINGS_PER_LESION < len(lesion.history) < len([clear, onset, *seen_again])


def test_the_first_sighting_is_the_onset_again_when_the_no_that_ended_an_earlier_run_is_withdrawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compression irradiated, then a study without it, then the compression again on many studies; the study
    without it is then entered in error: one run from the first sighting, the course treated it (as the whole
    history decides), which needs the run before the last "no" (the last but one "no" is where keeping starts)."""
    r = _Records()
    onset = r.finding(T0, cord_compression=True, epidural_extension=True)
    course = r.course(T0 + timedelta(days=4))
    gap = r.finding(T0 + STUDY_EVERY, cord_compression=False, epidural_extension=True)
    again = [r.finding(gap.occurred_at + k * STUDY_EVERY, cord_compression=True) for k in range(1, 9)]
    error = r.withdraw(gap, again[-1].recorded_at + timedelta(days=2))
    events: list[Message] = [onset, course, gap, *again, error]
    s, out = _both(events, monkeypatch)
    assert lesions(s)["t8"].compression_onset() == rt_facts.FindingFact.of(onset)
    assert _mscc(out[-1:]) and all(m.severity == "info" or m.status == "withdrawn" for m in _mscc(out[-1:]))


def test_a_sign_reported_only_on_an_older_study_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Epiduritis reported once, then studies that do not say (more than FINDINGS_PER_LESION): Lesion.newest reads the
    study that reported it, as with the whole history, and a neurological deficit still asks to rule out a
    compression (RT-MSCC), rather than nothing."""
    r = _Records()
    events: list[Message] = [r.finding(T0, epidural_extension=True, cord_compression=False)]
    events += [r.finding(T0 + k * STUDY_EVERY) for k in range(1, FINDINGS_PER_LESION + 3)]
    events.append(r.assessment(T0 + 9 * STUDY_EVERY, neurological_deficit=True))
    s, out = _both(events, monkeypatch)
    assert lesions(s)["t8"].value("epidural_extension") is True
    assert [(m.severity, m.title) for m in _mscc(out[-1:]) if m.status == "active"] == [
        ("critical", "Épidurite et déficit neurologique en T8 (t8) : compression médullaire à éliminer")
    ]


@st.composite
def _histories(draw: st.DrawFn) -> list[Message]:
    """One or two spinal lesions imaged often (runs of compression longer than FINDINGS_PER_LESION), some studies
    reported late (within retention.HORIZON), courses and decompressions, deficits and estimates, and corrections of
    a recent finding (entered in error or amended, at most one per finding)."""
    r = _Records()
    at = T0
    out: list[Message] = []
    findings: list[ImagingFinding] = []
    corrected: set[uuid.UUID] = set()
    for _ in range(draw(st.integers(8, 40))):
        at += timedelta(days=draw(st.integers(5, 60)))
        lesion = draw(st.sampled_from(("t8", "t8", "t8", "l2")))
        kind = draw(st.sampled_from(("finding",) * 6 + ("course", "decompression", "assessment", "correction")))
        if kind == "finding":
            late = timedelta(days=draw(st.sampled_from((0, 0, 0, 20, 90))))  # a study reported late, within HORIZON
            f = r.finding(
                at - late,
                lesion,
                cord_compression=draw(st.sampled_from((True, True, False, None))),
                epidural_extension=draw(st.sampled_from((True, False, None, None))),
                canal_narrowing_pct=draw(st.sampled_from((None, None, 40.0))),
            ).model_copy(update={"recorded_at": at + timedelta(hours=4)})
            findings.append(f)
            out.append(f)
        elif kind == "course":
            out.append(r.course(at, lesion))
        elif kind == "decompression":
            treatment = {"kind": "surgery", "site": "spine", "procedure": "decompression", "lesion_id": lesion}
            out.append(TreatmentEvent.model_validate(r.env(at, treatment={**treatment, "on": at.date().isoformat()})))
        elif kind == "assessment":
            out.append(
                r.assessment(
                    at,
                    neurological_deficit=draw(st.booleans()),
                    life_expectancy_months=draw(st.sampled_from((None, 2, 24))),
                )
            )
        else:
            recent = [f for f in findings if at - f.recorded_at < timedelta(days=150) and f.event_id not in corrected]
            if recent:
                target = draw(st.sampled_from(recent))
                corrected.add(target.event_id)
                amended = draw(st.sampled_from(({}, {"cord_compression": True}, {"cord_compression": False})))
                out.append(r.withdraw(target, at, **amended))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories())
def test_the_findings_kept_decide_what_the_whole_history_decides(events: list[Message]) -> None:
    with pytest.MonkeyPatch.context() as m:
        _both(events, m)
