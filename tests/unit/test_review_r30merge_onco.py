"""Review R30-MERGE of 3533f91 (reverted in session 30; this passes again and guards a later fix of the merge;
HAZ-27-FUTURE-HIDES, systemic `as_of.merged`): "Suspendu : traitement systémique".

SYS-ONCO (RULES.md; guideline L756-764): bone metastases change neither the choice nor the dose of chemotherapy. A
patient on docetaxel, a metastasis on today's CT (life expectancy 12 months), and a finding dated tomorrow saying the
lesion resolved. View B (current data) gives the SYS-ONCO info item "Traitement systémique et métastases osseuses: les
métastases osseuses ne modifient ni le choix ni la dose de la chimiothérapie"; C (no metastasis) and A have none.
Either way the chemotherapy goes on unchanged.

Since 3533f91 B's item A lacks is published `suspended`: title "À vérifier : Traitement systémique et métastases
osseuses", status cannot_decide, severity warning (notified, where the info item is not), text "Suspendu, à vérifier
[...] un enregistrement daté dans le futur le contredit [...] avant toute prescription", the guideline's sentence gone.
A clinician reads "systemic treatment suspended", the opposite of the rule both readings agree on. Expected: the item
absent, or B's text kept (info, marked at most), never "Suspendu" nor cannot_decide."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_review_r29sys_future_silent import _ahead, _plan
from tests.unit.test_systemic_rules import drug, le, met, run


def test_review_r30merge_the_chemotherapy_item_is_not_shown_suspended() -> None:
    base, _ = run([met(0), le(1, 12.0), drug(2, "docetaxel", "started", "2026-10-20")])
    said = _plan(base)["oncology"].text_fr
    assert "ne modifient ni le choix ni la dose" in said
    s, _ = run([_ahead(met(0), timedelta(days=1), status="resolved")], base)
    onco = _plan(s).get("oncology")
    assert onco is None or (
        onco.status != "cannot_decide" and "Suspendu" not in onco.text_fr and onco.text_fr.startswith(said)
    ), (onco.status, onco.severity, onco.text_fr)
