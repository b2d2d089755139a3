"""SYS-AR-START (L1068-1084)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.clinical import Recommendation, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.systemic_planner.domain import SystemicState, apply_event
from services.systemic_planner.rules import antiresorptive_start


@pytest.mark.parametrize(
    ("sre", "met", "le", "on_ar", "outcome", "trigger"),
    [
        (True, False, None, False, "start", "sre"),  # after an SRE: whatever the survival
        (True, True, 1.0, False, "start", "sre"),
        (False, True, 3.1, False, "start", "bone_metastasis"),
        (False, True, 3.0, False, "not_indicated", "bone_metastasis"),  # > 3 months, strictly
        (False, True, 1.0, False, "not_indicated", "bone_metastasis"),
        (False, True, None, False, "insufficient_data", "bone_metastasis"),
        (False, False, 12.0, False, "no_trigger", None),
        (True, True, 12.0, True, "already_treated", None),
    ],
)
def test_antiresorptive_start_table(
    sre: bool, met: bool, le: float | None, on_ar: bool, outcome: str, trigger: str | None
) -> None:
    d = antiresorptive_start(has_sre=sre, bone_metastasis=met, life_expectancy_months=le, on_antiresorptive=on_ar)
    assert (d.outcome, d.trigger) == (outcome, trigger)
    assert bool(d.missing) is (outcome == "insufficient_data")


T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def env(minutes: int = 0) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    return {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": at, "source": "t"}


def recs(out: Sequence[object]) -> list[Recommendation]:
    return [o for o in out if isinstance(o, Recommendation)]


def test_timeline_missing_then_start_then_started() -> None:
    s, out = apply_event(
        SystemicState(), ImagingFinding(**env(), lesion_id="a", skeletal_site="femur_shaft", modality="ct")
    )
    [r] = recs(out)
    assert r.missing == ["life expectancy estimate"]
    s, out = apply_event(s, ClinicalAssessment(**env(5), life_expectancy_months=12))
    assert sorted(x.status for x in recs(out)) == ["active", "withdrawn"]
    sre = SkeletalEvent(**env(10), kind="pathological_fracture", rule_id="CLASS-SRE", evidence=[])
    s, out = apply_event(s, sre)
    assert any(x.status == "active" and x.severity == "warning" for x in recs(out))
    s, out = apply_event(
        s,
        TreatmentEvent(
            **env(20),
            treatment={
                "kind": "systemic_drug",
                "drug": "zoledronic_acid",
                "action": "started",
                "on": date(2026, 11, 2),
            },
        ),
    )
    assert [x.status for x in recs(out)] == ["withdrawn"]
    # a replay of the same SRE changes nothing more
    s2, out = apply_event(s, sre)
    assert out == [] and s2 == s
