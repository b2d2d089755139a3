"""Review R31-MERGE of 1dc5611 (HAZ-27-FUTURE-HIDES, systemic `as_of_merge.merged`, new `as_of_merge.kept`).

The rule under review: B's (current data) item that A lacks and on which B and C disagree is suspended when it drafts an
order, else kept as B gives it, marked "le retirerait du plan", the records dated ahead named; kept items are all left
out when ANY item of the plan is A's reading of the record ahead, marked (`read_ahead`; one flag for the whole plan).

Defects (strict xfails; both fixed in session 31, branch s31-merge-fix, markers removed):

1. `test_review_r31merge_current_warnings_are_not_withdrawn_silently_beside_a_marked_reading[past course-*]`: the
   flag is plan-wide. Today's CT confirms a metastasis, a finding dated tomorrow says it resolved (R27B's case). With
   no anti-resorptive ever given, A has no plan and B's warnings are kept (the fix works). With a course given once
   and ended (zoledronic acid in March), A has a start item ("pas d'indication à débuter", SYS-AR-START's no_trigger),
   so A's reading is published marked, and B's warnings are withdrawn "cet élément ne s'applique plus": SYS-RENAL-TOX's
   cumulative nephrotoxicity of cisplatin and the bisphosphonate (L726-730, L770-772) and SYS-VITD-CORR's "no vitamin D
   nor calcium during a hypercalcaemia". Neither contradicts A's marked item, and B's reading is published beside it
   anyway (the zoledronic acid order, suspended). A past course decides whether a current warning is shown.
2. `test_review_r31merge_the_start_alert_is_not_withdrawn_as_no_longer_applying` (pre-existing: the `read_ahead`
   branch of R29-SYS, same at dc40089; the notification side): in that history the start's alert is withdrawn "cet
   élément ne s'applique plus" (A's item is not_indicated, not notified) while, without the past course, the same
   start is notified suspended, to verify.

Guards (pass): the kept warning's notifications (reissued marked once, withdrawn once when the record becomes current);
over random histories, no anti-resorptive order beside an unmet prerequisite (SYS-AR-PREREQ L795-799, L1086-1108),
no key twice, kept items draft nothing, and the plan is the same whatever the arrival order of the records dated
ahead (whole history kept; with retention, an entry in error naming a folded finding can differ: retention's horizon,
not the merge)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import Recommendation
from contracts.clock import ClockTick
from contracts.hospital import ImagingFinding, TreatmentEvent
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from services.systemic_planner.prerequisites import HOLDING
from tests.unit.test_dt_sys_differential import NOW as DT_NOW
from tests.unit.test_dt_sys_differential import _ahead as dt_ahead
from tests.unit.test_dt_sys_differential import _env as dt_env
from tests.unit.test_dt_sys_differential import _past as dt_past
from tests.unit.test_review_r29sys_future_silent import _ahead, _plan, _za
from tests.unit.test_systemic_rules import drug, lab, le, met, oligo, ready, run

DAY = timedelta(days=1)
GONE = "ne s'applique plus"
#: the warning of current data, its plan key and rule
WARNINGS = {"nephrotoxicity": ("nephrotoxicity", "SYS-RENAL-TOX"), "hypercalcaemia": ("vitamin-d", "SYS-VITD-CORR")}


def _history(warning: str, past_course: bool) -> list[Message]:
    """CT today (a metastasis), 12 months, clearance 75, prerequisites met, multi-metastatic; a cisplatin course or a
    corrected calcium of 2.8 mmol/L today; with `past_course` one zoledronic acid infusion on 01/03/2026 (ended)."""
    h: list[Message] = [met(0), le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready()]
    h.append(oligo(4, "multi_metastatic"))
    if warning == "nephrotoxicity":
        h.append(drug(5, "cisplatin", "started", "2026-10-20"))
    else:
        h.append(lab(3, "corrected_calcium", 2.8, "mmol/L"))
    if past_course:
        h.append(_za(6, "2026-03-01"))
    return h


def _gone(out: list[Message], rule_id: str) -> list[Recommendation]:
    return [o for o in out if isinstance(o, Recommendation) and o.status == "withdrawn" and o.rule_id == rule_id]


@pytest.mark.parametrize("warning", sorted(WARNINGS))
@pytest.mark.parametrize(
    "past_course", [pytest.param(False, id="no course"), pytest.param(True, id="past course")]
)  # past course: fixed in session 31 (s31-merge-fix), was a strict xfail
def test_review_r31merge_current_warnings_are_not_withdrawn_silently_beside_a_marked_reading(
    warning: str, past_course: bool
) -> None:
    """SYS-RENAL-TOX (L726-730 "la vigilance est requise sur la néphrotoxicité cumulative [...] des sels de platine
    [...] et des biphosphonates", L770-772) and SYS-VITD-CORR during a hypercalcaemia (LAB-CA-CRISIS L296-316: no
    vitamin D nor calcium while the calcium is high). The plan published today carries the warning; a finding dated
    tomorrow says today's metastasis resolved (SYS-AR-START L1068-1074: the zoledronic acid order is suspended, B's
    reading). Expected with or without a past course: the warning stays (B's text, marked, the record named), never
    withdrawn "cet élément ne s'applique plus" on a record not yet current (HAZ-27-FUTURE-HIDES, "never a silent
    withdrawal"). With the past course (zoledronic acid on 01/03/2026, ended) A's start "pas d'indication à débuter"
    is published marked, and the plan-wide flag drops the warning, which says nothing of A's start."""
    key, rule_id = WARNINGS[warning]
    base, _ = run(_history(warning, past_course))
    said = _plan(base)[key]
    assert said.severity == "warning" and not said.orders  # the warning published today
    resolved = _ahead(met(0), DAY, status="resolved")
    s, out = run([resolved], base)
    plan = _plan(s)
    assert plan["antiresorptive"].orders == []  # B's zoledronic acid: suspended either way (B's reading shown)
    assert not [o for o in _gone(out, rule_id) if GONE in o.text_fr], f"{key} withdrawn as no longer applying"
    x = plan.get(key)
    assert x is not None, f"{key} dropped"
    assert (x.status, x.severity) == (said.status, said.severity) and x.text_fr.startswith(said.text_fr)
    assert resolved.event_id in {i.source_event_id for i in x.inputs} and "vérifier" in x.text_fr


def test_review_r31merge_the_start_alert_is_not_withdrawn_as_no_longer_applying() -> None:
    """SYS-AR-START (L1068-1074): the start is recommended today (CT, 12 months) and notified. A finding dated tomorrow
    says the lesion resolved. With no past course the start is published suspended, to verify (a warning, notified:
    the alert is reworded). With one zoledronic acid course given and ended in March, A's item for the key is "pas
    d'indication à débuter", marked "à vérifier" (`read_ahead`), a status the planner does not notify: the start's
    alert is withdrawn "cet élément ne s'applique plus" while nothing current says so (the resolution is tomorrow's).
    Expected: the start's alert is not withdrawn as no longer applying before the record dated ahead is current."""
    base, first = run(_history("nephrotoxicity", past_course=True))
    assert any(isinstance(o, Recommendation) and o.rule_id == "SYS-AR-START" for o in first)  # notified today
    _, out = run([_ahead(met(0), DAY, status="resolved")], base)
    assert not [o for o in _gone(out, "SYS-AR-START") if GONE in o.text_fr]


def test_review_r31merge_a_kept_warning_is_reissued_once_and_withdrawn_once_when_the_record_is_current() -> None:
    """Notification side of `kept` (NOTIFY_STATUSES has warning): SYS-RENAL-TOX's warning (L726-730), no past course.
    The resolution dated ahead arrives: the warning is reworded (the note), the alert replaced under the same alert
    key, never withdrawn as no longer applying. At the resolution's date (a tick): the plan is A's (no metastasis, no
    plan): the warning is withdrawn once "ne s'applique plus", no new alert for it. No alert raised then withdrawn
    more than that."""
    base, _ = run(_history("nephrotoxicity", past_course=False))
    resolved = _ahead(met(0), DAY, status="resolved")
    s, out = run([resolved], base)
    renal = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "SYS-RENAL-TOX"]
    assert [(o.status, GONE in o.text_fr) for o in renal] == [("withdrawn", False), ("active", False)]
    active = renal[1]
    assert active.alert_key == "systemic-planner:nephrotoxicity" and "le retirerait du plan" in active.text_fr
    assert renal[0].supersedes and renal[0].supersedes != [active.event_id]
    later = resolved.occurred_at + timedelta(minutes=1)
    tick = ClockTick.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "occurred_at": later,
            "recorded_at": later,
            "source": "systemic-planner",
            "service": "systemic-planner",
            "due_at": later,
        }
    )
    s2, out2 = run([tick], s, now=later)
    renal2 = [o for o in out2 if isinstance(o, Recommendation) and o.rule_id == "SYS-RENAL-TOX"]
    assert [(o.status, GONE in o.text_fr, o.supersedes) for o in renal2] == [("withdrawn", True, [active.event_id])]
    m.clear()
    assert "nephrotoxicity" not in {x.key for x in build_plan(s2, r.AsOf(now=later, memo=False))}


def _extras(seed: int, past: list[Message]) -> list[Message]:
    """DT-SYS's history plus, at random, a drug course (nephrotoxic, TKI, denosumab), an older zoledronic acid
    infusion, a dental assessment or extraction."""
    rnd = random.Random(seed + 100_000)
    out = list(past)
    if rnd.random() < 0.5:
        on = (DT_NOW - timedelta(days=rnd.randint(5, 400))).date().isoformat()
        name = rnd.choice(["cisplatin", "pemetrexed", "docetaxel", "osimertinib", "denosumab"])
        body: dict[str, Any] = {"kind": "systemic_drug", "drug": name, "action": "started", "on": on}
        out.append(TreatmentEvent.model_validate({**dt_env(rnd, DT_NOW - timedelta(days=30)), "treatment": body}))
    if rnd.random() < 0.3:
        on = (DT_NOW - timedelta(days=rnd.randint(40, 800))).date().isoformat()
        body = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": on}
        out.append(TreatmentEvent.model_validate({**dt_env(rnd, DT_NOW - timedelta(days=35)), "treatment": body}))
    if rnd.random() < 0.3:
        on = (DT_NOW - timedelta(days=rnd.randint(1, 300))).date().isoformat()
        body = {
            "kind": "dental",
            "action": rnd.choice(["assessment", "extraction"]),
            "orthopantomogram": True,
            "on": on,
        }
        out.append(TreatmentEvent.model_validate({**dt_env(rnd, DT_NOW - timedelta(days=1)), "treatment": body}))
    return out


def _state(events: list[Message]) -> SystemicState:
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=DT_NOW), keep_all=True)
    return s


def _decided(s: SystemicState) -> list[Any]:
    m.clear()
    return build_plan(s, r.AsOf(now=DT_NOW, memo=False))


def test_review_r31merge_random_histories_no_order_past_a_prerequisite_no_twin_and_any_arrival_order() -> None:
    """Over DT-SYS's random histories with records dated ahead (and drug courses, dental events): no anti-resorptive
    order published while the published prerequisites item has an unmet holding check not waived (SYS-AR-PREREQ
    L795-799, L1086-1108: vitamin D, dental assessment, extraction healed) or a clearance not current (SYS-ZA-DOSE
    L1153-1182); no key twice; a kept item drafts no order, is not critical nor recommended, and names every record
    dated ahead; the same plan whatever the arrival order of the records dated ahead (whole history kept)."""
    kept_seen = 0
    try:
        for seed in range(140):
            rnd = random.Random(seed)
            past = _extras(seed, dt_past(rnd))
            ahead = dt_ahead(rnd, past)
            s = _state([*past, *ahead])
            plan = _decided(s)
            keys = [x.key for x in plan]
            assert len(keys) == len(set(keys)), seed
            by = {x.key: x for x in plan}
            ar, pre = by.get("antiresorptive"), by.get("prerequisites")
            if ar is not None and ar.orders:
                assert pre is not None, seed
                waived = {w for o in ar.orders for w in o.waived_prerequisites}
                unmet = {c.name for c in pre.checks if c.name in HOLDING and c.status not in ("done", "waived")}
                on_ar = "sous" in pre.title.lower()  # under way: the checks no longer hold the order (L1267-1273)
                assert on_ar or not unmet - waived, (seed, unmet)
                assert {c.status for c in pre.checks if c.name == "renal_function"} <= {"done"}, seed
            views = as_of.views(s, r.AsOf(now=DT_NOW))
            future = set() if views is None else {f.event_id for f in views.future}
            for x in plan:
                if "le retirerait du plan" in x.text_fr:
                    kept_seen += 1
                    assert not x.orders and x.severity != "critical" and x.status != "recommended", (seed, x.key)
                    assert {i.source_event_id for i in x.inputs if i.name == "future_dated_record"} == future, seed
            dumped = [x.model_dump_json() for x in plan]
            for order in ([*past, *reversed(ahead)], [*reversed(ahead), *past]):
                assert [x.model_dump_json() for x in _decided(_state(order))] == dumped, seed
    finally:
        m.clear()
    assert kept_seen >= 10  # the rule is exercised


def test_review_r31merge_two_records_ahead_in_either_order_give_one_plan() -> None:
    """R27B's case with two records dated ahead (a resolution tomorrow, a bone scan the day after, same lesion), with
    retention on (the planner's own path), delivered in both orders: the same plan, B's warning kept once (SYS-RENAL-TOX
    L726-730), both records named."""
    base, _ = run(_history("nephrotoxicity", past_course=False))
    resolved = _ahead(met(0), DAY, status="resolved")
    scan: ImagingFinding = _ahead(met(0), 2 * DAY, modality="bone_scan")
    plans = []
    for order in ([resolved, scan], [scan, resolved]):
        s, _ = run(order, base)
        plans.append([x.model_dump_json() for x in _plan(s).values()])
    assert plans[0] == plans[1]
    s, _ = run([resolved, scan], base)
    renal = _plan(s)["nephrotoxicity"]
    assert {resolved.event_id, scan.event_id} <= {i.source_event_id for i in renal.inputs}
    assert renal.text_fr.count("À vérifier") == 1
