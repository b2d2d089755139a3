"""Issue 25, systemic planner's cost per event (helper HV): what is made once and reused gives what making it again
gives. The settings' Recency found by their windows, the SYS-AR-START and SYS-ONCO items memoised on what they read,
the plan digest per list of item objects, the drug history's exposure added once per history and day: each checked
against the thing computed afresh (no memo: `AsOf.memo` False; sha256 of the contents; `dataclasses.replace`), and
shown reused (the same object), so that the checks are not vacuous."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from typing import Any

from contracts.hospital import ClinicalAssessment, TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import domain, memo
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from services.systemic_planner.settings import SystemicSettings
from services.systemic_planner.treatments import drug_history
from tests.unit.histories import T0, World, _prologue


def _state(w: World, *, life_expectancy: float, drug: str | None = None) -> tuple[SystemicState, r.Recency]:
    """The prologue (a confirmed metastasis, a fracture, a dental assessment), a life expectancy and a drug started."""
    recency = SystemicSettings().as_of(T0).recency
    events = _prologue(w)
    events.append(ClinicalAssessment.model_validate({**w.env(T0), "life_expectancy_months": life_expectancy}))
    if drug is not None:
        treatment = {"kind": "systemic_drug", "drug": drug, "action": "started", "on": (T0 - timedelta(days=40)).date()}
        events.append(TreatmentEvent.model_validate({**w.env(T0), "treatment": treatment}))
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=T0, recency=recency))
    return s, recency


def _json(items: list[PlanItem]) -> list[dict[str, Any]]:
    return [x.model_dump(mode="json") for x in items]


def test_as_of_gives_one_recency_per_settings_windows_equal_to_the_one_built() -> None:
    a, b = SystemicSettings(), SystemicSettings(service_name="other")
    first, second = a.as_of(T0).recency, b.as_of(T0 + timedelta(days=1)).recency
    assert first is second  # the same windows: the same object (memo.py keys decisions on it)
    assert first == a.recency()
    changed = SystemicSettings(creatinine_max_age_days=14, future_tolerance_minutes=3)
    other = changed.as_of(T0).recency
    assert other is not first
    assert other == changed.recency()
    assert other.creatinine == timedelta(days=14) and other.future_tolerance == timedelta(minutes=3)


def test_ar_start_and_oncology_items_are_reused_while_what_they_read_holds_and_match_the_reference() -> None:
    memo.clear()
    s, recency = _state(World(), life_expectancy=12, drug="carboplatin")
    keys = ("antiresorptive-start", "oncology")
    seen: dict[str, list[PlanItem]] = {k: [] for k in keys}
    # a minute apart: what remains of the estimate is cited rounded to 0.01 month (the same); 20 days later: not
    for now in (T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=1), T0 + timedelta(days=20)):
        items = build_plan(s, r.AsOf(now=now, recency=recency))
        reference = build_plan(s, r.AsOf(now=now, recency=recency, memo=False))
        assert _json(items) == _json(reference)
        for x in items:
            if x.key in keys:
                seen[x.key].append(x)
    for key in keys:
        assert len(seen[key]) == 3, key
    start, onco = seen["antiresorptive-start"], seen["oncology"]
    assert start[0] is start[1]  # reused
    assert start[2] is not start[0]  # the remaining life expectancy cited changed: decided again
    remaining = [i.value for x in start for i in x.inputs if i.name == "life_expectancy_remaining"]
    assert remaining[0] == remaining[1] != remaining[2]
    assert onco[0] is onco[1]
    assert "carboplatin" in [i.value for i in onco[0].inputs]


def test_oncology_is_decided_again_when_surgery_becomes_excluded() -> None:
    """SURG-LE (less than 6 weeks left): the SYS-ONCO item cites the estimate then; memoised on that answer."""
    memo.clear()
    s, recency = _state(World(), life_expectancy=2)
    before = T0 + timedelta(days=1)
    after = T0 + timedelta(days=20)  # 2 months less 20 days: under 6 weeks
    present = []
    for now in (before, after):
        items = build_plan(s, r.AsOf(now=now, recency=recency))
        reference = build_plan(s, r.AsOf(now=now, recency=recency, memo=False))
        assert _json(items) == _json(reference)
        present.append(any(x.key == "oncology" for x in items))
    # the fracture is recent: an urgent local procedure, unless surgery is excluded (then nothing to say: no drug)
    assert present == [True, False]


def test_the_plan_digest_is_the_sha256_of_the_contents_and_is_kept_per_list_of_items() -> None:
    memo.clear()
    s, recency = _state(World(), life_expectancy=12, drug="zoledronic_acid")
    at = r.AsOf(now=T0 + timedelta(hours=2), recency=recency)
    items = build_plan(s, at)
    decisions = [(x, *domain._published_as(x)) for x in items]
    expected = hashlib.sha256("\n".join(domain.decision_content(x) for x in items).encode()).hexdigest()
    assert domain._plan_digest(decisions) == expected
    again = build_plan(s, r.AsOf(now=T0 + timedelta(hours=2, minutes=1), recency=recency))
    assert all(x is y for x, y in zip(items, again, strict=True))  # the same objects: the digest kept is theirs
    assert domain._plan_digest([(x, *domain._published_as(x)) for x in again]) == expected
    assert (
        domain._plan_digest(decisions[:-1])
        == hashlib.sha256("\n".join(domain.decision_content(x) for x in items[:-1]).encode()).hexdigest()
    )


def test_the_exposure_is_added_once_per_history_and_day_as_replace_would() -> None:
    memo.clear()
    s, recency = _state(World(), life_expectancy=12, drug="zoledronic_acid")
    now = T0 + timedelta(days=3)
    first = drug_history(s, r.AsOf(now=now, recency=recency))
    same_day = drug_history(s, r.AsOf(now=now + timedelta(minutes=5), recency=recency))
    reference = drug_history(s, r.AsOf(now=now, recency=recency, memo=False))
    assert first is same_day
    assert first == reference
    assert first.ar_exposure_days == reference.ar_exposure_days > 0
    later = drug_history(s, r.AsOf(now=now + timedelta(days=2), recency=recency))
    assert later.ar_exposure_days == first.ar_exposure_days + 2
    assert later == dataclasses.replace(first, ar_exposure_days=first.ar_exposure_days + 2)
