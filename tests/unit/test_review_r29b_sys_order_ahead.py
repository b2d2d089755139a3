"""Review R29B (HAZ-27-FUTURE-HIDES, the lead's follow-up 590ad1d, systemic planner `as_of.merged`).

590ad1d: where B and C disagree and A decides as C (A reads a record dated ahead as holding now), A's item is kept
marked (`read_ahead`), or "suspended (no order) when it drafts an order current data would not". The test is
`not x_a.orders or (x_b is not None and x_b.orders)`: B drafting ANY order lets A's orders through, whatever they are.

Case (R29-SYS's case 3): multi-metastatic, monthly zoledronic acid; today's response is a progression, one dated
tomorrow says "good". SYS-SCHEDULE (L1136-1140): "acide zolédronique ... mensuel. En cas d'obtention d'une réponse
complète oncologique (ou d'une bonne réponse), il sera possible d'espacer ... à un rythme trimestriel". Current data
(B) draft P1M; A (== C) drafts P3M, on the "good" response not yet current. Published: the P3M order, marked "à
vérifier": an order drafted on a record not yet current, which the lead's own rule (and the design: "no order is
drafted on a fact not yet current") says must not be. Not less cautious than 982e00c (P3M, unmarked).

Right: no order current data would not draft: A's orders a subset of B's (B's P1M order, marked; or suspended, but a
suspension would withdraw the monthly order current data DO draft, so B's order is the better reading). Fix
(suggested): compare the orders, `x_a.orders` included in `x_b.orders` (same drug, dose, interval), not B's having
some.

Fixed by the lead (2026-12-06): the cases below pass (they were strict xfails)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.unit.test_review_r29sys_future_silent import _ahead, _base, _plan, _za
from tests.unit.test_systemic_rules import le, met, oligo, run


def _history() -> tuple[Any, Any]:
    prog = le(5, 12.0, oncological_response="progression")
    base, _ = run([*_base(met(0)), _za(4, "2026-10-25"), prog, oligo(6, "multi_metastatic")])
    good = _ahead(prog, timedelta(days=1), oncological_response="good")
    s, _ = run([good], base)
    return base, s


def test_review_r29b_today_s_progression_gives_monthly_zoledronic_acid() -> None:
    base, _ = _history()
    assert [o.interval for o in _plan(base)["antiresorptive"].orders] == ["P1M"]


def test_review_r29b_a_good_response_dated_ahead_drafts_no_three_monthly_order_today() -> None:
    _, s = _history()
    ar = _plan(s)["antiresorptive"]
    assert "P3M" not in [o.interval for o in ar.orders], ar.text_fr
