"""Remaining life expectancy (issue 18.4): every threshold applies to what is left of a clinician's estimate, never
to the estimate as entered. An estimate of 2 months made 6 weeks ago leaves about 0.6 month: no surgery (SURG-LE,
L2804-2806), no SBRT (RT-SBRT-CI, L1631-1632), not fixation first (MIRELS-HIGH, L1324). Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

#: Months as the guideline's thresholds count them: the mean calendar month (365.25 / 12 days).
DAYS_PER_MONTH: Final = 365.25 / 12
#: SURG-LE (L2804-2806): under 6 weeks of expected survival, no surgery and no urgent local procedure.
SIX_WEEKS_IN_MONTHS: Final = 6 * 7 / DAYS_PER_MONTH
#: RT-SBRT-CI (L1631-1632), SYS-AR-START, MIRELS-HIGH (L1324), poor prognosis of conventional RT: 3 months.
THREE_MONTHS: Final = 3.0
#: SURG-LE (L2810): more than 1 year, resection-reconstruction.
ONE_YEAR_MONTHS: Final = 12.0
#: Every threshold the services compare a remaining estimate with (the moments they are crossed are deadlines).
THRESHOLDS: Final = (ONE_YEAR_MONTHS, THREE_MONTHS, SIX_WEEKS_IN_MONTHS)

Band = Literal["lt_6_weeks", "6_weeks_to_3_months", "3_to_12_months", "gt_12_months"]


def remaining_months(estimate_months: float, estimated_at: datetime, now: datetime) -> float:
    """What is left of an estimate at `now`: the estimate minus the months elapsed since it was made. Never below 0,
    never above the estimate (an estimate dated after `now` is not current: see recency)."""
    elapsed = max((now - estimated_at).total_seconds(), 0.0) / 86400 / DAYS_PER_MONTH
    return max(estimate_months - elapsed, 0.0)


def when_remaining_reaches(estimate_months: float, estimated_at: datetime, months: float) -> datetime:
    """The moment what remains of an estimate falls to `months` (a threshold is crossed then: a deadline)."""
    return estimated_at + timedelta(days=(estimate_months - months) * DAYS_PER_MONTH)


def surgery_excluded(remaining: float) -> bool:
    """SURG-LE (L2804-2806): less than 6 weeks left, no surgery and no urgent local procedure (analgesia, perhaps
    RT). Exactly 6 weeks is not "less than"."""
    return remaining < SIX_WEEKS_IN_MONTHS


def band(remaining: float) -> Band:
    """The band of the remaining estimate that every threshold of the text falls on (a decision read from the
    remaining estimate is the same throughout a band)."""
    if remaining < SIX_WEEKS_IN_MONTHS:
        return "lt_6_weeks"
    if remaining < THREE_MONTHS:
        return "6_weeks_to_3_months"
    if remaining <= ONE_YEAR_MONTHS:
        return "3_to_12_months"
    return "gt_12_months"


@dataclass(frozen=True)
class Remaining:
    """An estimate and what is left of it at the decision time."""

    estimate_months: float
    estimated_at: datetime
    remaining: float

    @classmethod
    def at(cls, estimate_months: float, estimated_at: datetime, now: datetime) -> Remaining:
        return cls(estimate_months, estimated_at, remaining_months(estimate_months, estimated_at, now))

    @property
    def band(self) -> Band:
        return band(self.remaining)

    def next_crossing(self, after: datetime) -> datetime | None:
        """The next moment after `after` a threshold is crossed (when the decision may change), or None."""
        later = [
            t for m in THRESHOLDS if (t := when_remaining_reaches(self.estimate_months, self.estimated_at, m)) > after
        ]
        return min(later, default=None)
