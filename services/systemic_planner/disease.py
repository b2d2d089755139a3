"""What the systemic planner reads of the disease and the patient's outlook: the confirmed bone metastasis that
starts anti-resorptives (SYS-AR-START, IMG-ISOLATED) and the life expectancy (SYS-AR-START, SURG-LE).

Pure. Every reader takes an `AsOf` (now, recency windows) and records the deadlines at which its answer changes
(an estimate going stale, a threshold crossed, a future-dated fact becoming effective)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from services.systemic_planner import rules as r
from services.systemic_planner.memo import memo
from services.systemic_planner.state import SystemicState
from shared.clinical.facts import Fact
from shared.clinical.life_expectancy import SIX_WEEKS_IN_MONTHS, remaining_months, when_remaining_reaches


def bone_metastasis(s: SystemicState, at: r.AsOf) -> Fact[str] | None:
    """SYS-AR-START's "découverte d'une métastase osseuse" (L1070-1074, L1263-1265): the earliest confirmed lesion,
    never a suspected one (stated, or seen only on PET or bone scan: IMG-ISOLATED, L489-491), a resolved one, or one
    first seen on a date in the future."""
    confirmed = [
        x.first
        for x in s.lesions.values()
        if x.effective_status() == "confirmed" and not at.is_future(x.first.occurred_at)
    ]
    return min(confirmed, key=lambda f: f.order(), default=None)


@dataclass(frozen=True)
class LifeExpectancy:
    """The newest life-expectancy estimate not dated in the future, and what remains of it now. `remaining` is set
    only when the estimate is within its validity window (else it is to be estimated again)."""

    fact: Fact[float] | None
    status: Literal["unknown", "stale", "current"]
    remaining: float | None = None
    future_ignored: bool = False

    @property
    def missing(self) -> tuple[str, ...]:
        if self.status == "current":
            return ()
        if self.fact is None:
            return ("life expectancy estimate",)
        return (
            f"a current life expectancy estimate (the last one, {self.fact.value:g} months, dated "
            f"{self.fact.occurred_at:%Y-%m-%d})",
        )


def life_expectancy(s: SystemicState, at: r.AsOf) -> LifeExpectancy:
    """A future-dated estimate is ignored (it becomes effective on its date: a deadline) and never hides a current
    one; past the validity window the estimate is to be made again; within it, the thresholds (3 months, 6 weeks)
    apply to what remains (the estimate minus the time since), and the moments they are crossed are deadlines.
    Issue 25: the estimate read is memoised (memo.py); what remains of it is computed at `now`."""
    found = memo("life_expectancy", at, (s.life_expectancies,), lambda: _life_expectancy(s, at))
    if found.status != "current":
        return found
    assert found.fact is not None
    remaining = remaining_months(found.fact.value, found.fact.occurred_at, at.exact_now())
    return LifeExpectancy(found.fact, "current", remaining, found.future_ignored)


def _life_expectancy(s: SystemicState, at: r.AsOf) -> LifeExpectancy:
    """`life_expectancy` but what remains (None)."""
    future = False
    past = []
    for f in s.life_expectancies:
        if at.is_future(f.occurred_at):  # its deadline offered by is_future (HAZ-27-SYS-FUTURE)
            future = True
        else:
            past.append(f)
    fact = max(past, key=lambda f: f.order(), default=None)
    if fact is None:
        return LifeExpectancy(None, "unknown", future_ignored=future)
    if not at.is_current(fact.occurred_at, at.recency.life_expectancy):
        return LifeExpectancy(fact, "stale", future_ignored=future)
    for threshold in (r.AR_START_MIN_LIFE_EXPECTANCY_MONTHS, SIX_WEEKS_IN_MONTHS):  # SYS-AR-START, SURG-LE
        at.after(when_remaining_reaches(fact.value, fact.occurred_at, threshold) + timedelta(seconds=1))
    return LifeExpectancy(fact, "current", None, future)
