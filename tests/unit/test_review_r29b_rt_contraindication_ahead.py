"""Review R29B (HAZ-27-FUTURE-HIDES, the lead's follow-up ac19852, radiotherapy planner `as_of.merge`).

ac19852 adds a branch: where B and C disagree and A decides as C (A reads a record dated ahead as holding now), A's
item is kept and marked "à vérifier" (`verify(..., ahead=True)`), status and severity unchanged. The systemic planner
(590ad1d) SUSPENDS such an item when it drafts an order current data would not draft; this planner never does.

Case: a cementoplasty whose only obstacle today is an ABSOLUTE contraindication assessed yesterday (Tableau 8,
L2586-2622: "Infection générale en cours", "Troubles sévères de la coagulation", "Allergie au composé du ciment",
"Douleurs diffuses non localisées"; IR-CEMENT L2559-2643), then an assessment dated 20 min ahead (a producer's clock)
saying it is gone. Current data: "not indicated" (B). Published: "recommended", severity info, the procedure planned,
with a note "à vérifier". 982e00c publishes the same "recommended" unmarked, so this is no regression, but the
follow-up claims the design's "no order is drafted on a fact not yet current" for the systemic planner only: here a
procedure is recommended against a current absolute contraindication on a record not yet current, at info severity.

Right (as 590ad1d's rule): not "recommended" while only a record dated ahead lifts the contraindication (suspended:
cannot decide / warning, the record named).

Fixed by the lead (2026-12-06): A's recommendation resting on a record dated ahead that current data do not give
is suspended (cannot decide, a warning naming the record); the cases below pass (they were strict xfails)."""

from __future__ import annotations

import pytest

from tests.unit.test_issue18_local import NOW
from tests.unit.test_review_r28rt_future_left_out import AHEAD, CLEAR, DAY, _assessment, _cement, _items

ABSOLUTE = ["cement_allergy", "active_infection", "severe_coagulation_disorder", "diffuse_pain"]


@pytest.mark.parametrize("name", ABSOLUTE)
def test_review_r29b_today_s_absolute_contraindication_makes_cementoplasty_not_indicated(name: str) -> None:
    [cement] = _items(_cement(_assessment(NOW - DAY, **{**CLEAR, name: True})), "IR-CEMENT")
    assert cement.status != "recommended"


@pytest.mark.parametrize("name", ABSOLUTE)
def test_review_r29b_a_contraindication_lifted_only_ahead_does_not_leave_cementoplasty_recommended(name: str) -> None:
    events = [*_cement(_assessment(NOW - DAY, **{**CLEAR, name: True})), _assessment(AHEAD, **{name: False})]
    [cement] = _items(events, "IR-CEMENT")
    assert "vérifier" in cement.text_fr  # held: marked (ac19852)
    assert cement.status != "recommended", (cement.status, cement.severity, cement.title)
