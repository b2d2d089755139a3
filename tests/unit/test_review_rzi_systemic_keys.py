"""Review RZI (issue 25, helper ZI): attacks on the narrowed memo keys of the systemic planner (calcium, the
prerequisites, the anti-resorptive item, SYS-ONCO, renal safety). Each timeline is decided with the memo on (one
`Recency` object, so the memo hits across events) and compared, after every event, with the plan decided afresh
(memo off), and the guideline outcome the key must not hide is asserted."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from contracts.clinical import SkeletalEvent
from contracts.plan import PlanItem
from services.systemic_planner import memo
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from tests.unit.test_systemic_censored import crcl
from tests.unit.test_systemic_rules import T0, dental, drug, env, lab, le, met, oligo

RECENCY = r.Recency()
DAY = 24 * 60


def _json(items: list[PlanItem]) -> list[dict[str, Any]]:
    return [x.model_dump(mode="json") for x in items]


def _run(events: list[Any], now: datetime, s: SystemicState | None = None) -> tuple[SystemicState, dict[str, PlanItem]]:
    s = s or SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=now, recency=RECENCY))
        _same(s, now)
    return s, {i.key: i for i in build_plan(s, r.AsOf(now=now, recency=RECENCY))}


def _same(s: SystemicState, now: datetime) -> list[PlanItem]:
    items = build_plan(s, r.AsOf(now=now, recency=RECENCY))
    assert _json(items) == _json(build_plan(s, r.AsOf(now=now, recency=RECENCY, memo=False)))
    return items


def _sre(eid: uuid.UUID, minutes: int, kind: str, current: bool | None, until: datetime | None = None) -> Any:
    doc: dict[str, Any] = {**env(minutes), "event_id": eid, "source": "scoring", "kind": kind}
    doc |= {"rule_id": "CLASS-SRE", "evidence": [], "current": current}
    if current is not None:
        doc |= {"evidence_at": doc["occurred_at"], "current_until": until}
    return SkeletalEvent.model_validate(doc)


BASE = [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic")]
NOW = T0 + timedelta(days=1)


def test_a_hypercalcaemia_redelivered_not_current_ends_the_emergency() -> None:
    """The calcium memo is keyed on each hypercalcaemia's currency object: a re-delivery of the same SRE (same
    event_id) saying it is no longer under way must end the emergency waiver (LAB-CA-CRISIS, SYS-AR-PREREQ)."""
    memo.clear()
    eid = uuid.uuid4()
    s, plan = _run([*BASE, _sre(eid, 5, "hypercalcaemia", True)], NOW)
    assert plan["prerequisites"].status == "waived"
    s, plan = _run([_sre(eid, 5, "hypercalcaemia", False)], NOW, s)
    assert plan["prerequisites"].status == "to_do"
    # a fracture arriving meanwhile does not bring the old answer back
    s, plan = _run([_sre(uuid.uuid4(), 6, "pathological_fracture", True)], NOW, s)
    assert plan["prerequisites"].status == "to_do"


def test_a_hypercalcaemia_current_until_passes_without_an_event() -> None:
    memo.clear()
    until = T0 + timedelta(days=3)
    s, plan = _run([*BASE, _sre(uuid.uuid4(), 5, "hypercalcaemia", True, until)], NOW)
    assert plan["prerequisites"].status == "waived"
    later = {i.key: i for i in _same(s, until + timedelta(minutes=1))}
    assert later["prerequisites"].status == "to_do"
    back = {i.key: i for i in _same(s, NOW)}  # the time of the decision going back
    assert back["prerequisites"].status == "waived"


def test_sys_onco_follows_a_fracture_redelivered_and_a_non_urgent_sre() -> None:
    """SYS-ONCO keyed on the fractures / cord compressions and their currency, plus whether any SRE is known."""
    memo.clear()
    eid = uuid.uuid4()
    cis = drug(4, "cisplatin", "started", "2026-10-30")
    s, plan = _run([*BASE, cis, _sre(eid, 5, "cord_compression", True)], NOW)
    assert plan["oncology"].severity == "warning"
    s, plan = _run([_sre(eid, 5, "cord_compression", False)], NOW, s)
    assert plan["oncology"].severity == "info"
    # no metastasis, no SRE but a non-urgent one: the item appears only with the SRE (bool(s.sres) in the key)
    memo.clear()
    s, plan = _run([le(1, 12), cis], NOW)
    assert "oncology" not in plan
    s, plan = _run([_sre(uuid.uuid4(), 5, "radiotherapy_for_pain", None)], NOW, s)
    assert plan["oncology"].severity == "info"


def test_sys_onco_cites_the_estimate_once_it_excludes_surgery() -> None:
    """SURG-LE: the estimate is in the key only when short; it becomes short with time, no event."""
    memo.clear()
    s, _ = _run(
        [
            met(),
            le(1, 2.0),
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            drug(3, "cisplatin", "started", "2026-10-30"),
        ],
        NOW,
    )
    s, _ = _run([_sre(uuid.uuid4(), 5, "pathological_fracture", True)], NOW, s)
    cited = []
    for days in (1, 10, 20, 40, 60, 10, 1):
        onco = {i.key: i for i in _same(s, NOW + timedelta(days=days))}.get("oncology")
        cited.append(onco is not None and "life_expectancy" in {u.name for u in onco.inputs})
    assert cited == [False, False, True, True, True, False, False]


def test_the_oligometastatic_status_changed_while_the_order_is_refused_is_read_when_it_is_not() -> None:
    """The anti-resorptive memo reads the status only when it orders: a status changed while the renal function is
    stale must be the one the schedule follows once a current clearance arrives (SYS-SCHEDULE)."""
    memo.clear()
    old_crcl = lab(-200 * DAY, "creatinine_clearance", 75.0, "mL/min")
    events = [
        met(),
        le(1, 12),
        old_crcl,
        oligo(3, "multi_metastatic"),
        _sre(uuid.uuid4(), 4, "pathological_fracture", True),
    ]
    events += [
        lab(5, "vitamin_d_25oh", 35.0, "ng/mL"),
        dental(6, action="assessment", orthopantomogram=True, on="2026-10-28"),
    ]
    s, plan = _run(events, NOW)
    assert plan["antiresorptive"].status == "cannot_decide"
    s, plan = _run([oligo(7, "oligometastatic")], NOW, s)
    s, plan = _run([lab(8, "creatinine_clearance", 75.0, "mL/min")], NOW, s)
    [order] = plan["antiresorptive"].orders
    assert order.interval == "P3M" and order.duration == "P2Y"


def test_a_dental_appointment_becomes_a_fact_on_its_date() -> None:
    """The dental events are memoised outside the prerequisites now: an extraction dated later is read on its day."""
    memo.clear()
    events = [*BASE, _sre(uuid.uuid4(), 4, "pathological_fracture", True), lab(5, "vitamin_d_25oh", 35.0, "ng/mL")]
    events += [dental(6, action="assessment", orthopantomogram=True, on="2026-10-28")]
    events += [dental(7, action="extraction", on="2026-11-05", cleared_for_antiresorptive=True)]
    s, plan = _run(events, NOW)
    assert "extraction_healing" not in {c.name for c in plan["prerequisites"].checks}
    for days in (5, 3, 4, 6, 30, 2, 40):
        items = {i.key: i for i in _same(s, T0 + timedelta(days=days))}
        has = "extraction_healing" in {c.name for c in items["prerequisites"].checks}
        assert has == (days >= 4), days


def test_renal_safety_a_censored_clearance_without_chemo_still_warns() -> None:
    """The early return of renal_safety: no chemo, no bisphosphonate, a clearance straddling 30 mL/min."""
    memo.clear()
    _, plan = _run([met(), le(1, 12), crcl(2, 40.0, "<", (150.0, ">"))], NOW)
    assert plan["severe-renal-failure"].status == "cannot_decide"
