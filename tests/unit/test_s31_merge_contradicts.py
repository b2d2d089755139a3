"""Session 31, review R31-MERGE fixes (HAZ-27-FUTURE-HIDES, systemic `as_of_merge.merged`, `contradicts`, `_alert`).

1. Beside A's reading of a record dated ahead published marked (`read_ahead`), B's item A lacks (drafting no order)
   is left out only when it contradicts that item (one states an anti-resorptive course under way, the other none:
   SYS-AR-START L1068-1074/L1263-1265 vs SYS-REVIEW-2Y L1275-1277) and is no alert; every other item of B's is kept,
   marked (no longer one flag for the whole plan).
2. Where A reads the record ahead as holding now with no alert and current data give one, B's item is published
   (suspended when it drafts, else marked): the alert is reworded, never withdrawn "ne s'applique plus"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contracts.clinical import Recommendation
from contracts.plan import PlanItem
from services.systemic_planner import as_of, as_of_merge
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan, plan_once
from services.systemic_planner.items import item
from shared.clinical.facts import Fact
from tests.unit.test_dt_sys_future_views import LATER, _on_spaced_zoledronic_acid, _response
from tests.unit.test_review_r29sys_future_silent import _ahead, _plan, _za
from tests.unit.test_review_r29sys_held import _on_spaced_zoledronic_acid as _held_course
from tests.unit.test_review_r29sys_held import _responses_ahead
from tests.unit.test_systemic_rules import drug, lab, met, oligo, ready, run

GONE = "ne s'applique plus"


def _cold(s: Any, now: Any) -> dict[str, PlanItem]:
    m.clear()
    return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}


def test_s31_a_current_warning_is_kept_beside_a_start_read_ahead_and_the_review_left_out() -> None:
    """R30-MERGE's case (a good response, zoledronic acid under way, spaced; a "stable" response dated ahead: A
    recommends the start, marked) with a cisplatin course: B (course under way) gives SYS-RENAL-TOX's cumulative
    nephrotoxicity warning (L726-730, L770-772) and the 2-year review (L1275-1277), A neither. The warning says nothing
    of whether a course is under way: kept, B's text, marked, the record named. The review contradicts the start: left
    out (R30-MERGE's guard). At 1dc5611 (one flag for the plan) the warning was dropped too."""
    stable = _response(0, "stable")
    s, _ = run([*_on_spaced_zoledronic_acid(), drug(7, "cisplatin", "started", "2026-10-20"), stable], now=LATER)
    at = r.AsOf(now=LATER, memo=False)
    views = as_of.views(s, at)
    assert views is not None
    a = {x.key: x for x in plan_once(s, r.AsOf(now=LATER, memo=False))}
    b = {x.key: x for x in plan_once(views.current, r.AsOf(now=LATER, memo=False))}
    assert "nephrotoxicity" not in a and b["nephrotoxicity"].severity == "warning"  # the case is as described
    assert a["antiresorptive-start"].status == "recommended" and b["antiresorptive-start"].status == "done"
    plan = _cold(s, LATER)
    start = plan["antiresorptive-start"]
    assert start.status == "recommended" and "conduisent à une autre décision" in start.text_fr  # A's, marked
    assert "review-2-years" not in plan
    renal = plan["nephrotoxicity"]
    assert (renal.status, renal.severity, renal.orders) == ("warning", "warning", [])
    assert renal.text_fr.startswith(b["nephrotoxicity"].text_fr) and "À vérifier" in renal.text_fr
    assert stable.event_id in {i.source_event_id for i in renal.inputs}


def _it(key: str, rule_id: str, status: str, severity: str = "info") -> PlanItem:
    return item(key, rule_id, status, severity, key, f"texte de {key}.")


START = "antiresorptive-start"


def test_s31_contradicts_is_only_a_course_under_way_against_none() -> None:
    """`contradicts`: SYS-REVIEW-2Y (a course under way) against SYS-AR-START saying none (any decision but "done");
    SYS-AR-START "done" agrees with the review; an item saying nothing of the course contradicts nothing."""
    review = _it("review-2-years", "SYS-REVIEW-2Y", "info")
    for status in ("recommended", "not_indicated", "cannot_decide"):
        assert as_of_merge.contradicts(review, _it(START, "SYS-AR-START", status))
        assert as_of_merge.contradicts(_it(START, "SYS-AR-START", status), review)
    assert not as_of_merge.contradicts(review, _it(START, "SYS-AR-START", "done"))
    for other in (_it("nephrotoxicity", "SYS-RENAL-TOX", "warning", "warning"), _it("oncology", "SYS-ONCO", "info")):
        assert not as_of_merge.contradicts(other, _it(START, "SYS-AR-START", "recommended"))
        assert not as_of_merge.contradicts(other, review)


def test_s31_beside_a_marked_start_an_overdue_review_is_kept_an_info_one_left_out() -> None:
    """`merged` on items: A and C recommend the start, B says a course is under way and gives the 2-year review. An
    info review (not notified) is left out; an overdue one (a warning, notified) is kept, marked: an alert is never
    withdrawn on a record not yet current. B's SYS-ONCO info item, saying nothing of the course, is kept."""
    fut = _ahead(met(0), timedelta(days=1))
    future = (Fact[str].of(fut, "confirmed"),)
    a = [_it(START, "SYS-AR-START", "recommended")]
    onco = _it("oncology", "SYS-ONCO", "info")
    for severity, left_out in (("info", True), ("warning", False)):
        review = _it("review-2-years", "SYS-REVIEW-2Y", severity, severity)
        b = [_it(START, "SYS-AR-START", "done"), review, onco]
        got = {x.key: x for x in as_of_merge.merged(a, b, list(a), future)}
        assert "conduisent à une autre décision" in got[START].text_fr
        assert ("review-2-years" not in got) is left_out
        if not left_out:
            kept = got["review-2-years"]
            assert (kept.status, kept.severity) == (severity, severity) and kept.text_fr.startswith(review.text_fr)
            assert fut.event_id in {i.source_event_id for i in kept.inputs}
        assert got["oncology"].text_fr.startswith(onco.text_fr) and "le retirerait du plan" in got["oncology"].text_fr


def test_s31_an_undecided_start_is_not_withdrawn_as_no_longer_applying() -> None:
    """SYS-AR-START without a life-expectancy estimate (L1070-1074: "espérance de vie [...] supérieure à 3 mois"):
    "cannot decide", notified, today. One zoledronic acid course given and ended in March; a finding dated tomorrow
    says the metastasis resolved: A reads it ("pas d'indication à débuter", not notified). B's alert, drafting no
    order, is published marked (its status and text, the record named), not withdrawn "ne s'applique plus"."""
    history = [met(0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready(), oligo(4, "multi_metastatic")]
    base, _ = run([*history, _za(6, "2026-03-01")])
    said = _plan(base)[START]
    assert said.status == "cannot_decide" and not said.orders
    resolved = _ahead(met(0), timedelta(days=1), status="resolved")
    s, out = run([resolved], base)
    gone = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "SYS-AR-START" and o.status == "withdrawn"]
    assert not [o for o in gone if GONE in o.text_fr]
    start = _plan(s)[START]
    assert (start.status, start.severity) == (said.status, said.severity) and start.text_fr.startswith(said.text_fr)
    assert resolved.event_id in {i.source_event_id for i in start.inputs} and "À vérifier" in start.text_fr


def test_s31_a_restart_read_ahead_as_a_course_under_way_stays_an_alert() -> None:
    """R29-SYS's case (SYS-SCHEDULE L1136-1140): today's progression ends a monthly course, the start is recommended
    (SYS-AR-START L1068-1074) and notified; a "good" response dated ahead makes A's item "Anti-résorptif en cours"
    (not notified). The start is published suspended (no order, to verify), not withdrawn "ne s'applique plus". A's
    2-year review of the course under way (L1275-1277, info) that comes with A's reading is left out beside it."""
    now = LATER + timedelta(minutes=1)
    s, _ = run(_held_course("progression"), now=now)
    assert _cold(s, now)[START].status == "recommended"
    (good,) = _responses_ahead(1, "good")
    s, out = run([good], s, now=now)
    gone = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "SYS-AR-START" and o.status == "withdrawn"]
    assert not [o for o in gone if GONE in o.text_fr]
    plan = _cold(s, now)
    start = plan[START]
    assert (start.status, start.severity, start.orders) == ("cannot_decide", "warning", [])
    assert good.event_id in {i.source_event_id for i in start.inputs}
    m.clear()
    assert "review-2-years" in {x.key for x in plan_once(s, r.AsOf(now=now, memo=False))}  # A's reading has it
    assert "review-2-years" not in plan
