"""The newest clinical time of a table of records, kept by the table's object (HAZ-27-FUTURE-HIDES, issue 25).

"Decide twice" (each service's `as_of.py`) runs only when a decision reads a fact dated beyond the clock-skew
tolerance. Finding that out scanned every record the state holds on every event, comparing aware times (each time
parsed from JSON holds its own tzinfo, so one comparison calls two `utcoffset`s): at 10,000 events of one patient's
history that scan was ~40 % of scoring's time per event. A table's newest time is the same for the same table, and a
transition copies only the tables an event changes (scoring's `state.merge`; the same assumption as
`shared/runtime/parts_json.StoredJson`), so it is found once per table object: "is anything dated after the limit?"
is then one integer comparison per table (`TimesAfter`), and the records are scanned, compared as the rules compare
them, only when the newest is within hours of the limit (review R30-NEWEST: Python compares two times of the same
tzinfo object by their wall clocks, so across a DST change a fact's instant and its rules' order differ by up to the
shift; `SKEW` covers any).

A table is kept with its length and held strongly while remembered (its ID cannot be reused meanwhile), bounded
(least recently used out): a table filled in place after it was first seen is scanned again. Pure: no I/O."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def instant(at: datetime) -> int:
    """An aware time as microseconds since the epoch: ordered and equal as the times are (their tzinfos are fixed
    offsets). Issue 25: the times parsed from JSON each hold their own tzinfo object, so comparing two of them calls
    both tzinfos (utcoffset, twice when the offsets differ: +01:00 and +02:00 in France) on every comparison, a few
    microseconds each; searched many times, they are compared as these integers."""
    return (at - _EPOCH) // _MICROSECOND


class Newest(Generic[T, V]):
    """`newest(table)`: the greatest of `values(table)` (None: no value), found once per table object. The values are
    integer instants (`instants`) or dates: anything ordered."""

    def __init__(self, values: Callable[[T], Iterable[V]], size: int = 4096) -> None:
        self._values = values
        self._size = size
        self._seen: OrderedDict[int, tuple[T, int, V | None]] = OrderedDict()
        self._lock = threading.Lock()  # states are decided in the runtime's worker threads

    def __call__(self, table: T) -> V | None:
        key, length = id(table), len(table) if isinstance(table, Sized) else -1
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and hit[0] is table and hit[1] == length:
                self._seen.move_to_end(key)
                return hit[2]
        value = max(self._values(table), default=None)  # type: ignore[type-var]
        with self._lock:
            self._seen[key] = (table, length, value)
            self._seen.move_to_end(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return value

    def after(self, table: T, limit: V) -> bool:
        """Whether a value of `table` is greater than `limit`."""
        newest = self(table)
        return newest is not None and newest > limit  # type: ignore[operator]

    def clear(self) -> None:
        """Forget every table (a cold process; tests)."""
        with self._lock:
            self._seen.clear()


#: more than the most a wall-clock order and the instants' order of two aware times can differ by (a DST shift: 2 h at
#: most in any zone), in microseconds
SKEW: Final = 3 * 3600 * 1_000_000


class TimesAfter(Generic[T]):
    """`after(table, limit)`: `any(t > limit for t in times(table))`, the times compared as the rules compare them
    (`exact`, by default `t > limit`), without a scan when the table's newest instant is more than `SKEW` before the
    limit's (found once per table object: `Newest`)."""

    def __init__(self, times: Callable[[T], Iterable[datetime]], size: int = 4096) -> None:
        self.times = times
        self.newest = Newest[T, int](lambda table: (instant(t) for t in times(table)), size)

    def __call__(self, table: T, limit: datetime) -> bool:
        return self.any(table, instant(limit), lambda t: t > limit)

    def any(self, table: T, at: int, exact: Callable[[datetime], bool]) -> bool:
        """`any(exact(t) for t in times(table))` where `exact(t)` holds only for times after the instant `at`."""
        newest = self.newest(table)
        if newest is None or newest < at - SKEW:
            return False
        return any(exact(t) for t in self.times(table))

    def clear(self) -> None:
        self.newest.clear()


def values_at(attr: str) -> Callable[[Any], Iterable[Any]]:
    """The attribute `attr` of a dict's values (records by ID): `TimesAfter(values_at("occurred_at"))`."""

    def values(table: Any) -> Iterable[Any]:
        return (getattr(x, attr) for x in table.values())

    return values
