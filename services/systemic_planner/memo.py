"""Issue 25: the plan's decisions memoised (pure), so that an event recomputes only what it can change.

A decision (one item family, or a reading of the facts such as the renal function) is keyed on the objects it reads:
the state's tables it reads (`merge` and `retain` copy a table they change and never change one in place, so the
same table object holds the same facts), the readings it is given (memoised too, so the same object), and the
settings (`recency`, time zone). Its answer depends on `now` only through `AsOf`'s comparisons, which narrow the span
[lo, hi) of `now` over which each of them answers the same (rules.AsOf): the answer is reused at any `now` inside
that span, and the deadlines it offered are offered again. So a reuse gives exactly what computing again would (the
reference without memo: `apply_event(keep_all=True)`, tests/unit/test_issue25_systemic_retention.py and
test_issue25_systemic_memo.py). Entries hold the objects they were keyed on (an `id` is never reused while its entry
lives); the least recently used are evicted. The table is shared by the threads that decide (the runtime applies
events in a worker thread while the API serves plans on the loop): it is read and written under a lock, never while
a decision is built (a build memoises its own parts)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Final, TypeVar

from services.systemic_planner import rules as r

T = TypeVar("T")

#: decisions kept in memory: ~15 per patient for the few hundred patients a process decides for at a time
MEMO_SIZE: Final = 8192


class _Entry:
    __slots__ = ("held", "hi", "lo", "offered", "offered_utc", "value")

    def __init__(
        self, held: tuple[object, ...], lo: datetime, hi: datetime, offered: tuple[datetime, ...], value: object
    ) -> None:
        self.held, self.lo, self.hi, self.offered, self.value = held, lo, hi, offered, value
        #: h38-sys: each deadline offered, the same instant in PARSED_UTC when its offset is fixed (rules.span_utc),
        #: compared with `now` on a hit (the same answer, without asking both offsets); `offered` is what is offered
        self.offered_utc = tuple(r.span_utc(d) for d in offered)


_MEMO: OrderedDict[Hashable, _Entry] = OrderedDict()
#: review RN (HAZ-25-SYS-03): a hit's `move_to_end` raced another thread's eviction (KeyError) without it
_LOCK = threading.Lock()


def memo(
    name: str, at: r.AsOf, held: tuple[object, ...], build: Callable[[], T], values: tuple[Hashable, ...] = ()
) -> T:
    """`build()`, or the answer it gave before for the same objects `held` (by identity), `values` (by equality) and
    settings, at a `now` within that answer's span. Off (`build()` alone) when `at.memo` is False."""
    if not at.memo:
        return build()
    # the entry found under these ids holds its objects, alive: an id in use is no other object's, so the objects
    # are the same (helper HV: the identity comparison of each was redundant)
    key = (name, values, id(at.recency), id(at.tz), *map(id, held))
    now = at.now
    with _LOCK:
        hit = _MEMO.get(key)
        if hit is not None and hit.lo <= now < hit.hi:
            _MEMO.move_to_end(key)
        else:
            hit = None
    if hit is not None:
        # at.narrow(hit.lo, hit.hi), then at.after(d) for each deadline offered, inline (issue 25, helper HV)
        if hit.lo > at.lo:
            at.lo = hit.lo
        if hit.hi < at.hi:
            at.hi = hit.hi
        offered = hit.offered
        if offered:
            at.offered.extend(offered)
            at.deadlines.extend([d for d, u in zip(offered, hit.offered_utc, strict=True) if u > now])
        return hit.value  # type: ignore[return-value]
    lo, hi, mark = at.lo, at.hi, len(at.offered)
    at.lo, at.hi = r.EARLIEST, r.LATEST
    try:
        value = build()
        entry = _Entry((at.recency, at.tz, *held), at.lo, at.hi, tuple(at.offered[mark:]), value)
        with _LOCK:
            _MEMO[key] = entry
            _MEMO.move_to_end(key)
            while len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    finally:
        at.narrow(lo, hi)  # the enclosing decision holds where both hold
    return value


def clear() -> None:
    """Forget every memoised decision."""
    with _LOCK:
        _MEMO.clear()
