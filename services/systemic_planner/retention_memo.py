"""h38-sys (issue 25): retention's per-table work memoised, so that a table no event changed is not examined again at
every event (retention.py `_lab_table`; retention_treatments.py `_drugs`). Pure; the same discipline as memo.py: an
entry is keyed on the table's object (a table is never changed in place: `merge` and `retain` copy on write) and its
length, holds the table (its `id` is not reused while the entry lives), and on the values the computation reads
besides; bounded (least recently used out) and thread-safe (the runtime retains in a worker thread). A hit gives the
very answer computing again gives (tests/unit/test_issue25_systemic_spans.py and test_review_r38_systemic.py: warm ==
cold, HAZ-25-SYS-05)."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime
from typing import Any, Final, Generic, TypeVar

from shared.clinical.newest import instant

T = TypeVar("T")
V = TypeVar("V")

#: entries per cache: a few tables per patient for the few hundred patients a process retains for at a time
SIZE: Final = 4096


class _Lru(Generic[V]):
    """A bounded map from keys whose first part is a table's `id` to (the table, a value)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[Any, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, table: object) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] is not table:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, table: object, value: V) -> None:
        with self._lock:
            self._items[key] = (table, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class LabKept:
    """`_lab_table`'s answer by the table's object, the number of its results dated no later than `ahead` (it reads
    `ahead` only as `occurred_at > ahead` / `<= ahead`: which results are on each side; the times are compared as
    integer instants, which is how Python compares an aware time of a fixed offset with any other: `_lab_table` calls
    it only for such an `ahead`, review R38-SYS) and the course days. The clinical instants of each table are found
    once per table object."""

    def __init__(self, size: int = SIZE) -> None:
        self._instants = _Lru[list[int]](size)
        self._kept = _Lru[Any](size)

    def __call__(self, table: dict[str, Any], ahead: datetime, days: tuple[date, ...], build: Callable[[], T]) -> T:
        times = self._instants.get((id(table), len(table)), table)
        if times is None:
            times = sorted(instant(v.occurred_at) for v in table.values())
            self._instants.put((id(table), len(table)), table, times)
        key = (id(table), len(table), bisect.bisect_right(times, instant(ahead)), days)
        hit: T | None = self._kept.get(key, table)
        if hit is not None:
            return hit
        kept = build()
        self._kept.put(key, table, kept)
        return kept

    def clear(self) -> None:
        self._instants.clear()
        self._kept.clear()


LAB_KEPT: Final = LabKept()


class FirstPending:
    """`_drugs`' earliest date among the drug events not yet folded, by the treatments' object and the drug replays'
    (what `first` reads): no event is pending while the cut is no later than it, so a day's new cut does not scan the
    treatments again (the scan then gives an empty list)."""

    def __init__(self, size: int = SIZE) -> None:
        self._first = _Lru[tuple[object, date | None]](size)

    def __call__(self, treatments: dict[str, Any], replays: object, first: Callable[[], date | None]) -> date | None:
        key = (id(treatments), len(treatments), id(replays))
        hit = self._first.get(key, treatments)
        if hit is not None and hit[0] is replays:
            return hit[1]
        found = first()
        self._first.put(key, treatments, (replays, found))
        return found

    def clear(self) -> None:
        self._first.clear()


FIRST_PENDING: Final = FirstPending()
