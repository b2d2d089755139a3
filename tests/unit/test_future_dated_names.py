"""HAZ-27-FUTURE-HIDES: the records dated in the future that a decision to verify shows as inputs are named in French
on the clinicians' page (the radiotherapy planner's "<name> (daté du futur)", scoring's and the systemic planner's
future-dated record), never "libellé non traduit"."""

from __future__ import annotations

from services.notification import vocabulary as v
from services.radiotherapy_planner.as_of import Ahead
from services.radiotherapy_planner.facts import SIGNS
from services.radiotherapy_planner.memo import READS


def test_every_name_a_future_dated_fact_is_shown_under_is_translated() -> None:
    rt_names = {*SIGNS, "status", "imaging_finding", "surgical_opinion_operable", "platelets", "prothrombin_pct"}
    rt_names |= {n for names in READS.values() for n in names}
    shown = {n: v.name(Ahead(n, None, None, None, None).shown().name) for n in rt_names}  # type: ignore[arg-type]
    assert [n for n, label in shown.items() if "non traduit" in label] == []
    assert all(label.endswith("(daté du futur)") for label in shown.values())
    for code in ("future_dated_record", "future_dated_record_to_verify"):
        assert "daté dans le futur" in v.name(code)
