"""Review RK (HAZ-18-17, RT-MSCC L1397-1402): the radiotherapy planner's clock (domain.next_due) names every moment
RT-MSCC changes with no new event: a compression seen or inferred (epidural extension with a deficit) leaving its
window or becoming current, a course or a decompression recorded ahead beginning, the life expectancy ageing out or
crossing a threshold. Property: whenever RT-MSCC as decided at a later time differs from now, `next_due` from now
falls on or before that later time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.radiotherapy_planner.domain import apply_event, build_plan, next_due
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.memo import clear
from tests.unit.histories import assert_every_change_is_due, envelope

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _env(at: datetime, n: int, **fields: Any) -> dict[str, Any]:
    return envelope(at, n, "pt-rk-rt-clock", (6007, 5)) | fields


@st.composite
def _histories(draw: st.DrawFn) -> list[Message]:
    out: list[Message] = []
    at = T0
    for n in range(draw(st.integers(1, 8))):
        at += timedelta(days=draw(st.integers(0, 40)), hours=draw(st.integers(0, 23)))
        kind = draw(st.sampled_from(("finding", "finding", "deficit", "le", "course", "decompression")))
        if kind == "finding":
            signs = {
                "cord_compression": draw(st.sampled_from((True, False, None))),
                "epidural_extension": draw(st.sampled_from((True, False, None))),
            }
            where = {"lesion_id": "t8", "skeletal_site": "spine", "vertebral_level": "T8", "modality": "mri"}
            out.append(ImagingFinding.model_validate(_env(at, n, **where, **signs)))
        elif kind == "deficit":
            out.append(ClinicalAssessment.model_validate(_env(at, n, neurological_deficit=draw(st.booleans()))))
        elif kind == "le":
            le = draw(st.sampled_from((1, 4, 24)))
            out.append(ClinicalAssessment.model_validate(_env(at, n, life_expectancy_months=le)))
        else:
            on = (at + timedelta(days=draw(st.sampled_from((0, 0, 3, 10))))).date().isoformat()
            treatment: dict[str, Any] = {"site": "spine", "lesion_id": "t8", "vertebral_level": "T8", "on": on}
            if kind == "course":
                treatment |= {"kind": "radiotherapy", "total_dose_gy": 30.0, "fractions": 10, "cord_dmax_gy": 29.0}
            else:
                treatment |= {"kind": "surgery", "procedure": "decompression"}
            out.append(TreatmentEvent.model_validate(_env(at, n, treatment=treatment)))
    return out


def _mscc(s: LocalState, at: datetime) -> list[str]:
    plan = build_plan(s, now=at, by_lesion=lesions(s))
    return [i.content for sec in plan for i in sec.items if i.rule_id == "RT-MSCC"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories())
def test_review_rk_rt_mscc_never_changes_between_two_clock_ticks(events: list[Message]) -> None:
    clear()
    s = LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
    start = max(e.recorded_at for e in events)
    grid = [start + timedelta(hours=6 * k) for k in range(4 * 100)]
    # the tick is one second after the moment (domain.next_due): a day begun at a time of the grid exactly is seen then
    assert_every_change_is_due(lambda t: _mscc(s, t), lambda t: next_due(s, t), grid, timedelta(seconds=1))
