"""Issue 25 (helper ZI): the systemic planner's cost per event, cuts that must change no byte.

1. Calcium, the prerequisites and SYS-ONCO are memoised on what they read (the hypercalcaemia SREs and their
   currency; the dental events and whether a hypercalcaemia SRE is known; the life-expectancy estimate only when
   SYS-ONCO cites it), so a drug record or another SRE no longer remakes them: shown reused (the same object) and
   equal to the plan decided afresh (memo off). The generated histories of test_issue25_systemic_memo.py check the
   same against the reference over years.
2. Dates are written by `fr.fr_date`, the same text as f"{d:%d/%m/%Y}" for every date and datetime."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from contracts.clinical import Score, SkeletalEvent
from contracts.hospital import TreatmentEvent
from contracts.plan import PlanItem
from contracts.rules import RULESET_VERSION, cite
from services.systemic_planner import dosing, memo
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from services.systemic_planner.fr import fr_date
from services.systemic_planner.labs import renal
from services.systemic_planner.settings import SystemicSettings
from tests.unit.histories import T0, World, _prologue


def test_fr_date_is_strftimes_text() -> None:
    days = [date(1, 1, 1) + timedelta(days=n) for n in range(0, 3_652_000, 37)]
    days += [
        date(y, m, d) for y in (1, 9, 10, 99, 100, 999, 1000, 1999, 2026, 9999) for m in (1, 9, 12) for d in (1, 9, 28)
    ]
    rng = random.Random(25)
    zones = [UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=14)), timezone(timedelta(minutes=90))]
    for d in days:
        assert fr_date(d) == f"{d:%d/%m/%Y}", d
        t = datetime(d.year, d.month, d.day, rng.randrange(24), rng.randrange(60), tzinfo=rng.choice(zones))
        assert fr_date(t) == f"{t:%d/%m/%Y}", t
        naive = t.replace(tzinfo=None)
        assert fr_date(naive) == f"{naive:%d/%m/%Y}", naive


def _json(items: list[PlanItem]) -> list[dict[str, Any]]:
    return [x.model_dump(mode="json") for x in items]


def _decide(s: SystemicState, e: Any, now: datetime, recency: r.Recency) -> tuple[SystemicState, list[PlanItem]]:
    s, _ = apply_event(s, e, r.AsOf(now=now, recency=recency))
    items = build_plan(s, r.AsOf(now=now, recency=recency))
    assert _json(items) == _json(build_plan(s, r.AsOf(now=now, recency=recency, memo=False)))
    return s, items


def test_a_drug_record_or_another_sre_does_not_remake_the_prerequisites() -> None:
    memo.clear()
    w = World()
    recency = SystemicSettings().as_of(T0).recency
    s = SystemicState()
    for e in _prologue(w):
        s, items = _decide(s, e, T0, recency)
    before = {x.key: x for x in items}
    assert "prerequisites" in before
    now = T0 + timedelta(hours=1)
    drug = {"kind": "systemic_drug", "drug": "carboplatin", "action": "started", "on": (T0 - timedelta(days=3)).date()}
    s, items = _decide(s, TreatmentEvent.model_validate({**w.env(now), "treatment": drug}), now, recency)
    after = {x.key: x for x in items}
    assert after["prerequisites"] is before["prerequisites"]  # a drug record is no dental event
    now += timedelta(hours=1)
    sre = {**w.env(now, source="scoring"), "kind": "pathological_fracture", "rule_id": "CLASS-SRE", "evidence": []}
    s, items = _decide(s, SkeletalEvent.model_validate(sre), now, recency)
    again = {x.key: x for x in items}
    assert again["prerequisites"] is before["prerequisites"]  # a fracture is no hypercalcaemia
    # a hypercalcaemia SRE is read by calcium (LAB-CA-CRISIS) and by the prerequisites: decided again
    now += timedelta(hours=1)
    crisis = {**w.env(now, source="scoring"), "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": []}
    s, items = _decide(s, SkeletalEvent.model_validate(crisis), now, recency)
    assert {x.key: x for x in items}["prerequisites"] is not before["prerequisites"]
    # a dental event is read by the prerequisites (SYS-AR-PREREQ): decided again
    now += timedelta(hours=1)
    extraction = {"kind": "dental", "action": "extraction", "on": now.date()}
    s, items = _decide(s, TreatmentEvent.model_validate({**w.env(now), "treatment": extraction}), now, recency)
    latest = {x.key: x for x in items}["prerequisites"]
    assert latest is not before["prerequisites"]
    assert "extraction_healing" in [c.name for c in latest.checks]


def test_sys_onco_is_kept_for_an_sre_it_does_not_read_and_decided_again_for_a_fracture() -> None:
    memo.clear()
    w = World()
    recency = SystemicSettings().as_of(T0).recency
    s = SystemicState()
    for e in _prologue(w):
        s, _ = _decide(s, e, T0, recency)
    now = T0 + timedelta(hours=1)
    drug = {"kind": "systemic_drug", "drug": "carboplatin", "action": "started", "on": (T0 - timedelta(days=3)).date()}
    s, items = _decide(s, TreatmentEvent.model_validate({**w.env(now), "treatment": drug}), now, recency)
    before = {x.key: x for x in items}["oncology"]
    for kind in ("radiotherapy_for_pain", "orthopaedic_surgery"):  # not read by SYS-ONCO
        now += timedelta(hours=1)
        sre = {**w.env(now, source="scoring"), "kind": kind, "rule_id": "CLASS-SRE", "evidence": []}
        s, items = _decide(s, SkeletalEvent.model_validate(sre), now, recency)
        assert {x.key: x for x in items}["oncology"] is before, kind
    now += timedelta(hours=1)
    sre = {**w.env(now, source="scoring"), "kind": "cord_compression", "rule_id": "CLASS-SRE", "evidence": []}
    s, items = _decide(s, SkeletalEvent.model_validate(sre), now, recency)
    after = {x.key: x for x in items}["oncology"]
    assert after is not before and "sre:cord_compression" in [i.name for i in after.inputs]


def test_the_anti_resorptive_item_reads_the_oligometastatic_status_only_on_the_way_to_an_order() -> None:
    memo.clear()
    w = World()
    recency = SystemicSettings().as_of(T0).recency
    s = SystemicState()
    for e in _prologue(w):  # no creatinine clearance: no molecule can be chosen (SYS-ZA-DOSE), no order
        s, items = _decide(s, e, T0, recency)
    before = {x.key: x for x in items}["antiresorptive"]
    assert not before.orders
    now = T0 + timedelta(hours=1)
    score = {
        **w.env(now, source="scoring"),
        "score": "oligometastatic",
        "subject": "patient",
        "total": None,
        "complete": True,
        "band": "oligometastatic",
        "components": [],
        "rule_ids": ["CLASS-OLIGO"],
        "ruleset_version": RULESET_VERSION,
        "text_fr": "x",
        "citation": cite("CLASS-OLIGO").model_dump(),
    }
    s, items = _decide(s, Score.model_validate(score), now, recency)
    assert {x.key: x for x in items}["antiresorptive"] is before
    assert not dosing.orders_a_drug(renal(s, r.AsOf(now=now, recency=recency)), None, None, False)
