"""Issue 25: lab-normalisation's per-event cost flat in the history. A delivery of creatinine only derives again the
clearances of the creatinines it brought, retention looks for partners only among the results it would drop, and the
stored JSON reuses each result's and each stamp table's JSON: after every delivery nothing derived is stale (deriving
every value again publishes nothing) and the stored JSON is pydantic's document."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from contracts.hospital import LabResult
from services.lab_normalisation.derived import _recompute_clearance, _recompute_corrected_calcium
from services.lab_normalisation.state import LabState
from tests.unit.histories import lab_record
from tests.unit.test_issue25_lab_retention import apply_with, histories
from tests.unit.test_lab_domain import CFG

RECORD = lab_record()


def stale(s: LabState) -> list[str]:
    """What deriving every corrected calcium and clearance again from `s` would publish (nothing when up to date)."""
    again = s.model_copy(update={"published_derived": dict(s.published_derived)})
    calcium = {rid for rid, r in again.results.items() if r.analyte == "total_calcium"}
    out = _recompute_corrected_calcium(again, "p1", calcium, CFG.ca_albumin_window)
    out += _recompute_clearance(again, "p1", CFG)
    return [o.result_id for o in out]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(min_value=4, max_value=8), st.booleans())
def test_after_every_delivery_nothing_derived_is_stale(history: list[LabResult], cap: int, record_first: bool) -> None:
    cfg = dataclasses.replace(CFG, per_analyte=cap, stamps=10 * cap)
    s = LabState()
    if record_first:
        s, _ = apply_with(cfg, s, RECORD)
    for i, r in enumerate(history):
        s, _ = apply_with(cfg, s, r)
        if i == len(history) // 2 and not record_first:
            s, _ = apply_with(cfg, s, RECORD)  # demographics arrive late: every clearance derived again
        assert stale(s) == [], i
        stored = s.model_dump_json()
        assert json.loads(stored) == json.loads(BaseModel.model_dump_json(s)), i
        assert LabState.model_validate_json(stored) == s
