"""Review R30-MERGE (HAZ-27-FUTURE-HIDES, systemic `as_of.merged`, commit 3533f91): a renal warning loses its advice.

SYS-RENAL-TOX (RULES.md; guideline L724-750, L766-768, L770-772): at a clearance < 30 mL/min, lower the chemotherapy
doses and usually stop the bisphosphonate. A patient on cisplatin, clearance 25 mL/min today, a metastasis on today's
CT, and a finding dated tomorrow saying the lesion resolved. View B (current data) gives "Clairance 25 mL/min (< 30) :
adapter les traitements" (warning: "Réduire les doses de chimiothérapie"); A and C (no metastasis) have no plan.

Since 3533f91 B's item A lacks is published `suspended`: status cannot_decide, its text replaced by "un enregistrement
daté dans le futur (imagerie ou évaluation clinique) le contredit. Vérifier sa date [...] avant toute prescription".
The clearance is current and not read by the record dated ahead (an imaging finding): nothing contradicts it, yet the
advice (reduce the cisplatin doses) is gone and the finding is said to be in doubt. The same for any item current data
give whatever the lesion (a warning, not critical, so not `to_verify`). Expected: B's item with its advice, marked "à
vérifier" at most (as `to_verify` does), not "cannot decide".

Fixed in session 31 (`as_of.kept`): B's item A lacks that drafts no order is published as current data give it,
marked "à vérifier" and naming the record dated ahead; only one drafting an order is suspended."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_review_r29sys_future_silent import _ahead, _plan
from tests.unit.test_systemic_rules import drug, lab, le, met, run


def test_review_r30merge_a_current_severe_renal_failure_keeps_its_advice() -> None:
    history = [
        met(0),
        le(1, 12.0),
        lab(2, "creatinine_clearance", 25.0, "mL/min"),
        drug(3, "cisplatin", "started", "2026-10-20"),
    ]
    base, _ = run(history)
    said = _plan(base)["severe-renal-failure"].text_fr
    assert "Réduire les doses de chimiothérapie" in said
    s, _ = run([_ahead(met(0), timedelta(days=1), status="resolved")], base)
    renal = _plan(s)["severe-renal-failure"]
    assert renal.status == "warning" and renal.text_fr.startswith(said), (renal.status, renal.text_fr)
