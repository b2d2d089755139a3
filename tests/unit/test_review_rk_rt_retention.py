"""Review RK (HAZ-25-LOCAL-03): the findings findings_kept.prune_findings keeps per lesion decide what the whole history
decides, on histories harder than the helper's property: two lesions at one vertebral level (a course naming only
the level treats both), long runs of yes / no / not stated for the compression and the extension, studies reported
late up to the edge of retention.HORIZON, corrections (entered in error or amended, the extension too) of findings
up to that edge, deficits coming and going. The comparison harness is tests/unit/test_rt_compression_onset_retention
(`_both`: every event's outputs, bounded against unbounded)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.hospital import ImagingFinding, TreatmentEvent
from services.radiotherapy_planner.retention import HORIZON
from tests.unit.test_rt_compression_onset_retention import T0, _both, _Records

LESIONS = ("t8a", "t8a", "t8b", "l2")  # t8a and t8b: two lesions at T8
LEVEL = {"t8a": "T8", "t8b": "T8", "l2": "L2"}
KINDS = ("finding",) * 7 + ("course", "level_course", "decompression", "assessment", "fix")
ANSWER = st.sampled_from((True, True, False, None, None))


def _finding(r: _Records, at: Any, lesion: str, **signs: Any) -> ImagingFinding:
    doc = r.env(at, lesion_id=lesion, skeletal_site="spine", vertebral_level=LEVEL[lesion], modality="mri", **signs)
    return ImagingFinding.model_validate(doc)


def _course(r: _Records, at: Any, lesion: str | None, level: str) -> TreatmentEvent:
    treatment = {
        "kind": "radiotherapy",
        "site": "spine",
        "vertebral_level": level,
        "lesion_id": lesion,
        "total_dose_gy": 30.0,
        "fractions": 10,
        "cord_dmax_gy": 29.0,
        "on": at.date().isoformat(),
    }
    return TreatmentEvent.model_validate(r.env(at, treatment=treatment))


@st.composite
def _histories(draw: st.DrawFn) -> list[Message]:
    r = _Records()
    at = T0
    out: list[Message] = []
    findings: list[ImagingFinding] = []
    corrected: set[uuid.UUID] = set()
    edge = HORIZON.days - 3
    for _ in range(draw(st.integers(10, 45))):
        at += timedelta(days=draw(st.integers(3, 45)))
        lesion = draw(st.sampled_from(LESIONS))
        kind = draw(st.sampled_from(KINDS))
        if kind == "finding":
            late = timedelta(days=draw(st.sampled_from((0, 0, 0, 30, 120, edge))))
            f = _finding(
                r,
                at - late,
                lesion,
                cord_compression=draw(ANSWER),
                epidural_extension=draw(ANSWER),
            ).model_copy(update={"recorded_at": at + timedelta(hours=4)})
            findings.append(f)
            out.append(f)
        elif kind in ("course", "level_course"):
            # a course naming the level only treats every lesion there
            out.append(_course(r, at, None if kind == "level_course" else lesion, LEVEL[lesion]))
        elif kind == "decompression":
            treatment = {"kind": "surgery", "site": "spine", "procedure": "decompression", "lesion_id": lesion}
            out.append(TreatmentEvent.model_validate(r.env(at, treatment={**treatment, "on": at.date().isoformat()})))
        elif kind == "assessment":
            out.append(r.assessment(at, neurological_deficit=draw(st.sampled_from((True, False, None)))))
        else:
            recent = [f for f in findings if at - f.recorded_at < timedelta(days=edge) and f.event_id not in corrected]
            if recent:
                target = draw(st.sampled_from(recent))
                corrected.add(target.event_id)
                amended = draw(
                    st.sampled_from(
                        (
                            {},
                            {"cord_compression": True},
                            {"cord_compression": False},
                            {"epidural_extension": True},
                            {"cord_compression": False, "epidural_extension": False},
                        )
                    )
                )
                out.append(r.withdraw(target, at, **amended))
    out.append(r.assessment(at + timedelta(days=1), life_expectancy_months=24))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_histories())
def test_review_rk_bounded_findings_decide_what_the_whole_history_decides(events: list[Message]) -> None:
    with pytest.MonkeyPatch.context() as m:
        _both(events, m)
