"""Review R31-SYS3 of a53d19f (`as_of._pending`, `as_of_merge._spaces`) and 791828a (`merged`'s cross-key step)
(HAZ-27-FUTURE-HIDES, systemic planner "decide twice", services/systemic_planner/as_of.py).

SYS-SCHEDULE (guideline L1136-1140, L1279-1281): zoledronic acid monthly in the multi-metastatic situation; "en cas
d'obtention d'une réponse complète oncologique (ou d'une bonne réponse), il sera possible d'espacer l'acide
zolédronique à un rythme trimestriel"; never denosumab. SYS-AR-START (L1068-1074, L1263-1265), SYS-AR-PREREQ
(L1267-1273: "sauf urgence", vitamin D and dental assessment before the start).

Defect (a strict xfail, fixed in session 31 by `_spaces` allowing the dose to differ: `_DOSING`):

1. `test_review_r31sys3_the_spacing_is_not_drafted_when_the_dose_differs_too`: a53d19f's rule (as_of.py L460-465,
   `_spaces` L336-351: where B only spaces zoledronic acid A keeps monthly, A's monthly, marked, "l'espacement
   trimestriel [...] n'est pas proposé tant que cet enregistrement n'est pas vérifié") applies only when every other
   field of the orders is equal. A course under way on B's reading (the good response spaces it, the last infusion
   6 weeks ago) is a restart on A's (monthly, lapsed): B doses on the initial clearance (Tableau 2), A on today's.
   With the two clearances in different dose bands (75 then 55 mL/min), `_spaces` is False and R29B's branch
   (L466-467) drafts B's 4 mg every 3 months, marked: the spacing the commit withholds while the entry in error dated
   ahead of the "good" is unverified is drafted, only because the dose differs too.

Guards (pass): the same patient with one clearance (monthly, marked, the spacing not offered); at the entry's date
the plan is A's, unmarked; 791828a's cross-key step republishes the start only beside B's order drafted with its
prerequisites met (a dental assessment missing: B drafts none, the start stays suspended); `_pending` on chains of
two corrections ahead (an amendment of an amendment ahead, a current entry in error of the second; an entry in error
of the original recorded after the amendment ahead): the plan is the one of the history where nothing was ever ahead,
in any arrival order.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.hospital import ClinicalAssessment, TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import _notify, build_plan, plan_once
from tests.unit.test_review_r29sys_future_silent import _ahead
from tests.unit.test_review_r31_sys2 import _history
from tests.unit.test_systemic_rules import NOW, T0, dental, env, lab, le, met, oligo, run

TOL = r.Recency().future_tolerance
LATER = T0 + timedelta(days=60)  # six weeks after the infusion of 16/11
AT = LATER + timedelta(minutes=1)
TODAY = int((LATER - T0).total_seconds() // 60) - 60  # an hour before LATER, in minutes from T0
START = "antiresorptive-start"
DAY = timedelta(days=1)


def _plan(s: Any, now: datetime) -> dict[str, PlanItem]:
    m.clear()
    try:
        return {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}
    finally:
        m.clear()


def _a(s: Any, now: datetime) -> dict[str, PlanItem]:
    m.clear()
    try:
        return {x.key: x for x in plan_once(s, r.AsOf(now=now, memo=False))}
    finally:
        m.clear()


def _orders(x: PlanItem) -> list[tuple[str, float | None, str | None]]:
    return [(o.drug, o.dose, o.interval) for o in x.orders]


def _patient(response: str, initial: float, current: float, dental_ok: bool = True) -> tuple[list[Any], Any]:
    """Multi-metastatic, life expectancy 12 months, zoledronic acid given on 16/11 (six weeks before LATER), the
    clearance `initial` before it and `current` today, vitamin D and calcium today, a dental assessment with an
    orthopantomogram (or none), and today's assessment saying `response` (a record of its own)."""
    infusion = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": "2026-11-16"}
    given = TreatmentEvent.model_validate({**env(60 * 24 * 15), "treatment": infusion})
    said = ClinicalAssessment.model_validate({**env(TODAY + 5), "oncological_response": response})
    mouth = [dental(4, action="assessment", orthopantomogram=True, on="2026-10-28")] if dental_ok else []
    events = [
        met(0),
        lab(2, "creatinine_clearance", initial, "mL/min"),
        oligo(3, "multi_metastatic"),
        *mouth,
        le(5, 12.0),
        given,
        lab(TODAY, "creatinine_clearance", current, "mL/min"),
        lab(TODAY + 1, "vitamin_d_25oh", 35.0, "ng/mL"),
        lab(TODAY + 2, "corrected_calcium", 2.3, "mmol/L"),
        said,
    ]
    return events, said


def _eie_ahead_of(x: Any) -> Any:
    """An entry in error of `x` dated an hour past the tolerance ahead of LATER (a producer's clock), recorded now."""
    return x.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": x.event_id,
            "occurred_at": LATER + TOL + timedelta(hours=1),
            "recorded_at": LATER,
        }
    )


def test_review_r31sys3_one_clearance_monthly_marked_the_spacing_not_offered() -> None:
    """Guard (a53d19f, SYS-SCHEDULE L1136-1140): today's only "good" on a course under way (spaced, B) and an entry in
    error of it dated ahead (A: not good, monthly, the course lapsed: a restart). One clearance: A's 4 mg monthly,
    marked, naming the entry, the spacing said not offered; no every-3-months order; at the entry's date, A's plan,
    nothing marked."""
    events, good = _patient("good", 75.0, 75.0)
    base, _ = run(events, now=AT)
    assert _orders(_a(base, AT)["antiresorptive"]) == [("zoledronic_acid", 4.0, "P3M")]  # current data: spaced
    eie = _eie_ahead_of(good)
    s, _ = run([eie], base, now=AT)
    item = _plan(s, AT)["antiresorptive"]
    assert _orders(item) == [("zoledronic_acid", 4.0, "P1M")]
    assert eie.event_id in {i.source_event_id for i in item.inputs} and "espacement trimestriel" in item.text_fr
    then = eie.occurred_at - TOL + timedelta(microseconds=1)
    later = _plan(s, then)
    assert {k: x.model_dump_json() for k, x in later.items()} == {
        k: x.model_dump_json() for k, x in _a(s, then).items()
    }
    assert not [k for k, x in later.items() if "À vérifier" in x.text_fr]


def test_review_r31sys3_the_spacing_is_not_drafted_when_the_dose_differs_too() -> None:
    """SYS-SCHEDULE L1136-1140, L1279-1281 ("il sera possible d'espacer": a possibility that a good response opens);
    as_of.py L460-467, `_spaces` L336-351. The guard's patient with the clearance of 75 mL/min before the first
    infusion and 55 today (Tableau 2: 4 mg on the initial clearance for the course under way, B; 3.5 mg on today's
    for A's restart). The entry in error dated ahead withdraws the only "good": A's reading allows no spacing. The plan
    drafts B's 4 mg every 3 months (R29B's branch, marked), where with one clearance it drafts monthly and says the
    spacing is not offered while the record is unverified. Expected: no zoledronic acid every 3 months drafted on
    either clearance (monthly holds on either reading; the dose is a separate question)."""
    events, good = _patient("good", 75.0, 55.0)
    base, _ = run(events, now=AT)
    s, _ = run([_eie_ahead_of(good)], base, now=AT)
    a = _a(s, AT)["antiresorptive"]
    assert _orders(a) == [("zoledronic_acid", 3.5, "P1M")]  # A: the restart, monthly, today's clearance
    spaced = [o for o in _plan(s, AT)["antiresorptive"].orders if o.interval == "P3M"]
    assert not spaced, f"every-3-months order drafted on a response an entry dated ahead withdraws: {spaced}"


def _restart_ahead(dental_ok: bool) -> tuple[Any, Any]:
    """Today's progression (B: the course lapsed, a restart), a "good" dated ahead (A: spaced, under way)."""
    events, _ = _patient("progression", 75.0, 75.0, dental_ok)
    base, _ = run(events, now=AT)
    good = ClinicalAssessment.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "source": "t",
            "occurred_at": LATER + TOL + timedelta(hours=1),
            "recorded_at": LATER,
            "oncological_response": "good",
        }
    )
    s, _ = run([good], base, now=AT)
    return s, good


def test_review_r31sys3_the_start_is_republished_beside_an_order_drafted_with_its_prerequisites_met() -> None:
    """Guard (791828a, SYS-AR-START L1068-1074, L1263-1265; SYS-AR-PREREQ L1267-1273): the start is republished
    "recommended" (marked) only beside B's anti-resorptive order, which B drafts only with its prerequisites met: B's
    prerequisites item holds nothing and its order waives none."""
    s, good = _restart_ahead(dental_ok=True)
    at = r.AsOf(now=AT, memo=False)

    made = as_of.views(s, at)
    assert made is not None
    b = _a(made.current, AT)
    assert b[START].status == "recommended" and b["prerequisites"].status == "done"
    assert all(not o.waived_prerequisites for o in b["antiresorptive"].orders)
    plan = _plan(s, AT)
    assert plan[START].status == "recommended" and _notify(plan[START]) and "À vérifier" in plan[START].text_fr
    assert _orders(plan["antiresorptive"]) == [("zoledronic_acid", 4.0, "P1M")]
    assert good.event_id in {i.source_event_id for i in plan[START].inputs}


def test_review_r31sys3_no_dental_assessment_no_order_the_start_stays_suspended() -> None:
    """Guard (791828a; SYS-AR-PREREQ L1267-1273: "réaliser une évaluation bucco-dentaire [...] avec un
    ortho-pantomogramme" before the start): without a dental assessment B drafts no order (the prerequisites hold),
    so nothing is drafted beside the start: it stays suspended, no zoledronic acid nor denosumab order anywhere."""
    s, good = _restart_ahead(dental_ok=False)
    plan = _plan(s, AT)
    assert not [o for x in plan.values() for o in x.orders if o.drug in r.ANTIRESORPTIVES]
    start = plan[START]
    assert start.status != "recommended" and not start.orders
    assert good.event_id in {i.source_event_id for i in start.inputs}


def _redated(x: Any) -> Any:
    """`x` as if its producer's clock had been right: dated when it was recorded."""
    return x.model_copy(update={"occurred_at": x.recorded_at})


def _chain_two_ahead() -> tuple[list[Any], list[Any]]:
    """Today's "progression" (the older assessment "good"); an amendment of it dated ahead ("good"), an amendment of
    that amendment dated ahead ("good"), then a clinician's entry in error of the second, current (recorded after)."""
    events, today = _history("progression", older="good")
    a1 = _ahead(today, DAY, record_status="amended", corrects=today.event_id, oncological_response="good")
    a2 = _ahead(today, 2 * DAY, record_status="amended", corrects=a1.event_id, oncological_response="good")
    a2 = a2.model_copy(update={"recorded_at": a1.recorded_at + timedelta(seconds=1)})
    eie = today.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": a2.event_id,
            "occurred_at": NOW,
            "recorded_at": NOW + timedelta(minutes=1),
        }
    )
    return events, [a1, a2, eie]


def _chain_eie_of_the_original() -> tuple[list[Any], list[Any]]:
    """Today's "good" (older "progression"); an amendment dated ahead ("progression"); a current entry in error naming
    today's original, recorded after the amendment (it withdraws the version that counts)."""
    events, today = _history("good")
    a1 = _ahead(today, DAY, record_status="amended", corrects=today.event_id, oncological_response="progression")
    eie = today.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": today.event_id,
            "occurred_at": NOW,
            "recorded_at": NOW + timedelta(minutes=1),
        }
    )
    return events, [a1, eie]


def _decisions(plan: dict[str, PlanItem]) -> dict[str, str]:
    return {k: x.model_dump_json(exclude={"inputs"}) for k, x in plan.items()}


@pytest.mark.parametrize("chain", [_chain_two_ahead, _chain_eie_of_the_original])
def test_review_r31sys3_odd_chains_decide_as_if_nothing_were_ahead_in_any_order(chain: Any) -> None:
    """Guard (a53d19f `_pending`, corrections.py: withdrawing an amendment never brings back what it replaced;
    SYS-SCHEDULE L1136-1140): a current correction builds on the chain ahead, so B resolves it as the fold does: the
    plan is the one of the same records never dated ahead, whatever the corrections' arrival order; from the last
    record's date, A's plan, nothing marked."""
    events, fixes = chain()
    base, _ = run(events)
    never, _ = run([_redated(x) for x in fixes], base)
    expected = _decisions(_plan(never, NOW))
    for order in itertools.permutations(fixes):
        s, _ = run(list(order), base)
        assert _decisions(_plan(s, NOW)) == expected, [x.record_status for x in order]
    s, _ = run(fixes, base)
    last = max(x.occurred_at for x in fixes) - TOL + timedelta(microseconds=1)
    later = _plan(s, last)
    assert _decisions(later) == _decisions(_a(s, last))
    assert not [k for k, x in later.items() if "À vérifier" in x.text_fr]
