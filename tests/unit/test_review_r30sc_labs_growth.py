"""Review R30-SC of 0ad348d (reverted in session 30; these guard a later fix of the R28-SC calcium residual and
pass on af35b1a and on the revert): scoring retention bounded the corrected calcium values kept one by one to the
LABS_KEPT (24) newest (issue 25). The labs' cut is now found by `_kept_at` (recorded time for a value dated ahead of
its recording) but values are still kept by clinical time (`occurred_at >= cutoff`): a producer whose values are all
dated ahead (here 30 days) keeps every value it sent within that span, each with its "Calcémie datée dans le futur"
slot (LAB-CA-CRISIS, guideline L296-316; CLASS-SRE L259-296 reads the same table). 300 hourly values: 300 labs kept
and ~100 kB stored, against 25 labs and ~9 kB on af35b1a. The state grows with the skew times the rate, not with
LABS_KEPT."""

from __future__ import annotations

from datetime import timedelta

from services.scoring.domain import ScoringState, apply_event
from services.scoring.retention import LABS_KEPT
from tests.unit.test_scoring_clock import T0
from tests.unit.test_scoring_crisis import cc

HOUR = timedelta(hours=1)


def test_review_r30sc_values_dated_ahead_keep_the_labs_table_bounded() -> None:
    s = ScoringState()
    for i in range(300):
        at = T0 + i * HOUR
        s, _ = apply_event(s, cc(2.4, rid=f"v{i}", at=at + timedelta(days=30), recorded=at))
    assert len(s.labs) <= LABS_KEPT + 2  # 300 (25 on af35b1a)
