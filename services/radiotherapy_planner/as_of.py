"""The facts as of the decision time (pure; HAZ-27-FUTURE-HIDES).

The state keeps, per name, the newest assessed fact and opinion by clinical time, and each lesion's findings. A fact
dated beyond FUTURE_TOLERANCE after `now` (a producer's clock ahead of ours) is not current, and it used to hide the
current one of its name even when it said the same (a cord compression re-confirmed, RT-MSCC L1397-1402: the
emergency read "not current"). The view the rules read at `now` (`at`, `lesions_at`): where the newest fact of a name
(assessed fact, opinion) or of a lesion sign is future-dated, the newest current one when it stands (`_stands`: it
says the same, or it reports an emergency sign the future one denies; a lesion not resolved against a future
"resolved"); for assessments and opinions only when no assessment correction is held (review R28-SC). In every other
case the newest, as before (review R28-RT: a future-dated fact that contradicts the current one is never ignored;
the rules read it as before, "not current" where they check currency, RT-MSCC, SURG-LE L2776-2834, RT-SBRT-CI
L1629-1636). The stored state is unchanged (retention and a rebuild read the records, never `now`);
`future_times()` gives the instants the view changes (domain.next_due ticks then)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.radiotherapy_planner.facts import FindingFact, Lesion, LocalState, refold_assessments

#: clock skew tolerated before a fact counts as dated in the future
FUTURE_TOLERANCE: Final = timedelta(minutes=15)


def is_future(t: datetime, now: datetime) -> bool:
    return t > now + FUTURE_TOLERANCE


@dataclass(frozen=True)
class LesionAt(Lesion):
    """A lesion at a decision time some of its findings are dated after: a sign whose newest report is future-dated
    is read from the newest current report when that says the same (else the newest, as before); `latest` is the
    newest finding, as before."""

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
        newest = super().newest(attr)
        if newest is None or newest in self.current:
            return newest
        for f in reversed(self.current):  # the newest current report of it
            if getattr(f, attr) is not None:
                return f if _stands(attr, getattr(f, attr), getattr(newest, attr)) else newest
        return newest

    @functools.cached_property
    def _reporting(self) -> list[FindingFact]:
        every = [f for f in self.history if f.cord_compression is not None]
        mine = [f for f in self.current if f.cord_compression is not None]
        future = bool(every and mine) and every[-1] is not mine[-1]  # the newest report is future-dated
        if future and _stands("cord_compression", mine[-1].cord_compression, every[-1].cord_compression):
            return mine
        return every

    @functools.cached_property
    def _onset(self) -> FindingFact | None:
        """RT-MSCC: a lesion said resolved only by a finding dated in the future still has its current compression
        (an emergency is decided from current data: a report not yet current does not end it)."""
        if self.latest.status == "resolved" and self.current and self.current[-1].status != "resolved":
            return dataclasses.replace(self, latest=self.current[-1])._onset
        return super()._onset


#: RT-MSCC (L1397-1402): the signs of an emergency. A current "yes" stands against a future-dated "no" (the
#: emergency is decided from current data; the report not yet current cannot end it).
EMERGENCY: Final = frozenset({"cord_compression", "epidural_extension", "neurological_deficit"})


def _stands(name: str, current: object, future: object) -> bool:
    """Whether the newest current value is read rather than the newest, future-dated one: when they say the same, or
    when the current one is an emergency sign the future one denies; otherwise the future one, as before (a future
    contradiction is never ignored: review R28-RT)."""
    return current == future or (name in EMERGENCY and current is True and future is False)


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
    return LesionAt(x.lesion_id, x.history[-1], x.history, current)


def at(s: LocalState, now: datetime | None) -> LocalState:
    """The state as the rules read it at `now`: each assessed fact and opinion dated in the future replaced by the
    newest current one of its name (lesion), folded again from the bases and the current assessments as a
    correction's re-fold does (facts.refold_assessments), when that one stands (`_stands`); else kept (review
    R28-RT). `s` itself when none is future, or when a correction is held (read as before)."""
    if now is None:
        return s
    names = {k for k, f in s.assessed.items() if is_future(f.occurred_at, now)}
    keys = {k for k, o in s.opinions.items() if is_future(o.occurred_at, now)}
    if not names and not keys:
        return s
    if any(a.record_status != "final" for a in s.assessments.values()):
        # a correction among them: the records left out would change what it corrects (an amendment naming none
        # replaces the newest; review R28-SC): read as before
        return s
    held = {k: a for k, a in s.assessments.items() if not is_future(a.occurred_at, now)}
    scratch = s.model_copy(update={"assessments": held})
    refold_assessments(scratch)
    assessed = dict(s.assessed)
    for k in names:
        same = scratch.assessed.get(k)
        if same is not None and _stands(k, same.value, s.assessed[k].value):
            assessed[k] = same
    opinions = dict(s.opinions)
    for k in keys:
        o = scratch.opinions.get(k)
        if o is not None and o.operable == s.opinions[k].operable:
            opinions[k] = o
    return s.model_copy(update={"assessed": assessed, "opinions": opinions})


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
