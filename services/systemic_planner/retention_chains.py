"""Issue 25: what the systemic planner's retention (retention.py, retention_treatments.py) reads of records and
their correction chains (as shared/clinical/corrections.py links them), and the tables known to be retained
already (`_SETTLED`). Pure and deterministic."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from shared.clinical.components import components
from shared.clinical.corrections import Correctable

L = TypeVar("L", bound=Correctable)  # what a correction chain reads (shared/clinical/corrections.py)


class _Settled:
    """Tables known to be retained already, by identity (a table is never changed in place: `merge` copies on
    write), so that a table no event changed is not examined again at each event. An entry holds its table, so the
    table's `id` is not reused while the entry lives."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.entries: dict[tuple[int, Hashable], object] = {}

    def __contains__(self, key: tuple[object, Hashable]) -> bool:
        table, extra = key
        return self.entries.get((id(table), extra)) is table

    def add(self, table: object, extra: Hashable = None) -> None:
        if len(self.entries) >= self.size:
            del self.entries[next(iter(self.entries))]
        self.entries[(id(table), extra)] = table


_SETTLED = _Settled()


def _recorded(x: Correctable) -> tuple[datetime, int]:
    return (x.recorded_at, x.event_id.int)


def _clinical(x: Correctable) -> tuple[datetime, datetime, int]:
    return (x.occurred_at, x.recorded_at, x.event_id.int)


def _chains(rows: Sequence[L], group: Callable[[L], Hashable]) -> dict[uuid.UUID, uuid.UUID]:
    """Each record's chain (one member naming its connected correction links, shared/clinical/components.py): a
    correction is linked to the record it names, or, an amendment naming none, to its group's newest earlier record (as
    shared/clinical/corrections.py)."""
    pairs: list[tuple[uuid.UUID, uuid.UUID | None]] = []
    for x in rows:
        target = x.corrects
        if x.record_status != "final" and target is None:
            earlier = [
                y
                for y in rows
                if y.event_id != x.event_id
                and y.record_status != "entered-in-error"
                and group(y) == group(x)
                and y.recorded_at < x.recorded_at
            ]
            target = max(earlier, key=_clinical).event_id if earlier else None
        pairs.append((x.event_id, None if x.record_status == "final" else target))
    chain = components(pairs)
    return {x.event_id: chain[x.event_id] for x in rows}


def _newest_recorded(
    rows: Sequence[L], group: Callable[[L], Hashable], n: int, ahead: Iterable[uuid.UUID] = ()
) -> set[uuid.UUID]:
    """The newest `n` records of each group, by recording and by clinical time, and the newest `n` by clinical time
    that are not entered-in-error (an amendment naming no record replaces its group's newest earlier one of those by
    clinical time: shared/clinical/corrections.py `_target`), and those `ahead` (`_ahead_of`), with every record of
    their correction chains."""
    by_group: dict[Hashable, list[L]] = {}
    for x in rows:
        by_group.setdefault(group(x), []).append(x)
    newest = {
        x.event_id for g in by_group.values() for order in (_recorded, _clinical) for x in sorted(g, key=order)[-n:]
    }
    newest.update(ahead)
    if all(x.record_status == "final" for x in rows):  # no chains (the common case)
        return newest
    # helper ZK (HAZ-25-SYS-04): an amendment naming no record replaces its group's newest record by clinical time
    # that is not entered-in-error; those never are its target, so they must not push that record out of what is kept
    for g in by_group.values():
        targets = [x for x in g if x.record_status != "entered-in-error"]
        newest.update(x.event_id for x in sorted(targets, key=_clinical)[-n:])
    chains = _chains(rows, group)
    keep_chains = {chains[i] for i in newest}
    return {x.event_id for x in rows if chains[x.event_id] in keep_chains}
