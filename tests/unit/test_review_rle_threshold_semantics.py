"""Review RLE (of HAZ-26-LE-01): on which side of each crossing the decisions change, with the entry's own example
(4 months estimated at 08:00; crossings on whole minutes, computed exactly). `<` thresholds (SURG-LE 6 weeks,
RT-SBRT-CI and the poor prognosis < 3 months) change just AFTER the crossing: the flaw the fix closes. `>` thresholds
(MIRELS-HIGH "> 3 mois" L1324, resection "> 1 an" L2810) change AT the crossing: a decision at the crossing already
sees them, so the lag the entry names for MIRELS-HIGH did not occur there (only where float rounding leaves the
remaining a hair above 3 at the computed crossing: then it changes at c + 1 us)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.radiotherapy_planner.rules.surgery import surgery_band
from services.radiotherapy_planner.rules.surgery import surgery_excluded as rt_excluded
from services.scoring.rules import mirels_decision
from shared.clinical.life_expectancy import SIX_WEEKS_IN_MONTHS, remaining_months, when_remaining_reaches

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def _r(months: float, t: datetime) -> float:
    return remaining_months(months, T0, t)


def test_review_rle_less_than_thresholds_change_just_after_the_crossing() -> None:
    c6 = when_remaining_reaches(4.0, T0, SIX_WEEKS_IN_MONTHS)
    assert not rt_excluded(_r(4.0, c6)) and rt_excluded(_r(4.0, c6 + US))
    assert mirels_decision(9, 9, _r(4.0, c6))[1] == "short_survival"
    assert mirels_decision(9, 9, _r(4.0, c6 + US))[1] == "no_surgery"
    c3 = when_remaining_reaches(4.0, T0, 3.0)
    assert not _r(4.0, c3) < 3.0 and _r(4.0, c3 + US) < 3.0  # RT-SBRT-CI, RT poor prognosis


def test_review_rle_more_than_thresholds_change_at_the_crossing() -> None:
    c3 = when_remaining_reaches(4.0, T0, 3.0)
    assert mirels_decision(9, 9, _r(4.0, c3 - US))[1] == "fixation"
    assert mirels_decision(9, 9, _r(4.0, c3))[1] == "short_survival"  # already at the crossing
    c12 = when_remaining_reaches(14.0, T0, 12.0)
    assert surgery_band(_r(14.0, c12 - US)) == "resection_reconstruction"
    assert surgery_band(_r(14.0, c12)) == "osteosynthesis"
