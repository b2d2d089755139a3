"""Review R30-SYS, side finding (not HAZ-27; found while classifying the differential's cases): SYS-AR-START's text.

SYS-AR-START (RULES.md; guideline L1068-1074): "dès la découverte d'une métastase osseuse", when life expectancy is
> 3 months. A patient with no confirmed metastasis (a lesion seen on a bone scan only: suspected, IMG-ISOLATED
L476-494), a 12-month estimate, and a zoledronic acid infusion 35 days ago (no course under way now): the decision is
"no_trigger", but since an anti-resorptive was once given the item is published, and `texts.ar_start` falls through
to the "not indicated" text: "Espérance de vie restante de 3 mois ou moins (estimation ... : 12 mois ...)" - a life
expectancy said to be <= 3 months while the estimate is 12, and not the real reason (no confirmed metastasis). Fixed by
the lead (session 30): its own text (no confirmed bone metastasis nor SRE known)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_review_r29sys_future_silent import _plan, _za
from tests.unit.test_systemic_rules import NOW, lab, le, met, ready, run


def test_review_r30sys_no_confirmed_metastasis_is_not_said_to_be_a_short_life_expectancy() -> None:
    """SYS-AR-START L1068-1074: the text must not state a remaining life expectancy <= 3 months it does not have."""
    on = (NOW - timedelta(days=35)).date().isoformat()
    scan = met(0).model_copy(update={"modality": "bone_scan"})
    s, _ = run([scan, le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready(), _za(4, on)])
    start = _plan(s)["antiresorptive-start"]
    assert "3 mois ou moins" not in start.text_fr, start.text_fr
    assert "Ni métastase osseuse confirmée ni événement osseux" in start.text_fr and start.status == "not_indicated"
