"""Review R30-NEWEST (issue 25): `domain.forget_memos` ("forget every memoised decision family, clock moment and
retention check (a cold process; tests)") does not forget 78d72d5's memos of the newest time per table
(services/scoring/as_of._LESIONS ... _ASSESSMENTS, shared/clinical/newest.Newest): a test made "cold" by it still
answers "is a fact dated ahead?" from what an earlier state taught, so the warm-versus-cold tests cannot see a stale
entry (the failure the memo's premise, tables never changed in place, rules out). Testability only: no output
changes (the answers equal a scan: tests/unit/test_review_r30_newest_differential.py). Fixed by the lead
(`as_of.forget`, called by `forget_memos`): passes (it was a strict xfail)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.scoring import as_of
from services.scoring import rules as r
from services.scoring.domain import ScoringState, forget_memos

MEMOS = (as_of._LESIONS, as_of._ASSESSMENT, as_of._TREATMENTS, as_of._FINDINGS, as_of._ASSESSMENTS)


def test_review_r30_newest_forget_memos_forgets_the_newest_time_per_table() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    as_of.has_future(ScoringState(), now)
    as_of.becoming_current(ScoringState(), now, r.DEFAULT_POLICY)
    forget_memos()
    assert all(not m.newest._seen for m in MEMOS)
