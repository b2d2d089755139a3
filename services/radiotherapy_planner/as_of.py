"""The facts as of the decision time (pure; HAZ-27-FUTURE-HIDES).

The state keeps, per name, the newest assessed fact and opinion by clinical time, each lesion's findings and the
newest haemostasis labs: a fact dated beyond FUTURE_TOLERANCE after `now` (a producer's clock ahead of ours) is not
decided on, and it must not hide the newest one that is current. `at()` and `lesions_at()` give the view the rules
read at `now`: per assessed name, opinion, lab and lesion sign, the newest fact that is not future, else none;
except for the facts whose rules check their currency (RT-MSCC L1397-1402: a compression seen, or inferred from
an epidural extension with a neurological deficit; the life expectancy: SURG-LE L2776-2834, RT-SBRT-CI
L1629-1636), which fall back to the future one as before, so that the rule says "not current" (never silent about
an emergency). The stored state is unchanged (retention and a rebuild read the records, never `now`);
`future_times()` gives the instants the view changes (domain.next_due ticks then)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.radiotherapy_planner.facts import FindingFact, Lesion, LocalState, refold_assessments
from shared.clinical.facts import Fact

#: clock skew tolerated before a fact counts as dated in the future
FUTURE_TOLERANCE: Final = timedelta(minutes=15)
#: the facts read, when none is current, from a future-dated one: their rules say "dated in the future" (RT-MSCC's
#: currency, domain.currency / inferred_currency; the life expectancy's, build_plan's le_current)
CHECKED_SIGNS: Final = frozenset({"cord_compression", "epidural_extension"})
CHECKED_NAMES: Final = frozenset({"life_expectancy_months", "neurological_deficit"})


def is_future(t: datetime, now: datetime) -> bool:
    return t > now + FUTURE_TOLERANCE


@dataclass(frozen=True)
class LesionAt(Lesion):
    """A lesion at a decision time some of its findings are dated after: `latest` and each sign from the newest
    finding that is not future (`current`, oldest first); a sign only future findings report is unknown, except
    CHECKED_SIGNS (read from them as before). `latest`: the newest finding when none is current (site, level)."""

    current: tuple[FindingFact, ...] = ()

    @functools.cached_property
    def ids(self) -> tuple[int, ...]:
        """The memo key changes when a finding stops being future (-1: then the future ones' IDs)."""
        now = {f.event_id.int for f in self.current}
        return (
            *(f.event_id.int for f in self.history),
            -1,
            *(i for f in self.history if (i := f.event_id.int) not in now),
        )

    def newest(self, attr: str) -> FindingFact | None:
        for f in reversed(self.current):
            if getattr(f, attr) is not None:
                return f
        return super().newest(attr) if attr in CHECKED_SIGNS else None

    @functools.cached_property
    def _reporting(self) -> list[FindingFact]:
        mine = [f for f in self.current if f.cord_compression is not None]
        return mine or [f for f in self.history if f.cord_compression is not None]


def lesions_at(by_lesion: Mapping[str, Lesion], now: datetime | None) -> Mapping[str, Lesion]:
    """The lesions as the rules read them at `now` (the same mapping when no finding is future)."""
    if now is None or not any(is_future(f.occurred_at, now) for x in by_lesion.values() for f in x.history):
        return by_lesion
    return {lid: _lesion_at(x, now) for lid, x in by_lesion.items()}


def _lesion_at(x: Lesion, now: datetime) -> Lesion:
    if isinstance(x, LesionAt):
        x = Lesion(x.lesion_id, x.history[-1], x.history)
    current = tuple(f for f in x.history if not is_future(f.occurred_at, now))
    if len(current) == len(x.history):
        return x
    return LesionAt(x.lesion_id, current[-1] if current else x.history[-1], x.history, current)


def at(s: LocalState, now: datetime | None) -> LocalState:
    """The state as the rules read it at `now`: each assessed fact and opinion dated in the future replaced by the
    newest one of its name (lesion) that is not, folded again from the bases and the current assessments as a
    correction's re-fold does (facts.refold_assessments), else left out (CHECKED_NAMES: kept); labs dated in the
    future left out. `s` itself when none is future."""
    if now is None:
        return s
    names = {k for k, f in s.assessed.items() if is_future(f.occurred_at, now)}
    keys = {k for k, o in s.opinions.items() if is_future(o.occurred_at, now)}
    labs = any(is_future(v.occurred_at, now) for t in s.labs.values() for v in t.values())
    if not names and not keys and not labs:
        return s
    update: dict[str, object] = {}
    if names or keys:
        held = {k: a for k, a in s.assessments.items() if not is_future(a.occurred_at, now)}
        scratch = s.model_copy(update={"assessments": held})
        refold_assessments(scratch)
        assessed: dict[str, Fact[bool | float | str]] = {}
        for k, f in s.assessed.items():
            if k not in names:
                assessed[k] = f
            elif k in scratch.assessed:  # the newest current one
                assessed[k] = scratch.assessed[k]
            elif k in CHECKED_NAMES:  # none current: the rule says "dated in the future"
                assessed[k] = f
        opinions = {k: scratch.opinions.get(k) if k in keys else o for k, o in s.opinions.items()}
        update["assessed"] = assessed
        update["opinions"] = {k: o for k, o in opinions.items() if o is not None}
    if labs:
        update["labs"] = {
            a: {k: v for k, v in t.items() if not is_future(v.occurred_at, now)} for a, t in s.labs.items()
        }
    return s.model_copy(update=update)


def future_times(s: LocalState, now: datetime) -> Iterator[datetime]:
    """When each fact dated in the future becomes effective (`occurred_at - FUTURE_TOLERANCE`): the view changes
    then, whether or not the fact is the newest of its name."""
    for a in s.assessments.values():
        if is_future(a.occurred_at, now):
            yield a.occurred_at - FUTURE_TOLERANCE
    for f in s.findings.values():
        if is_future(f.occurred_at, now):
            yield f.occurred_at - FUTURE_TOLERANCE
    for t in s.labs.values():
        for v in t.values():
            if is_future(v.occurred_at, now):
                yield v.occurred_at - FUTURE_TOLERANCE
