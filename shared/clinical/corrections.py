"""Corrected and entered-in-error hospital records (imaging findings, clinical assessments): which ones still count.
Pure; no I/O. The same rule for every service, so scoring, the systemic planner and the radiotherapy planner never
disagree on which finding a decision may rest on (LAB-CORRECTION's principle, applied to findings: what was decided
from a corrected record is withdrawn through each service's usual withdrawal path).

A record with `record_status`:
- "final": counts, unless a later record corrects it;
- "amended": replaces the record named in `corrects`, or, without `corrects`, the newest record of the same group
  (the same lesion, the same patient) recorded before it; it counts itself;
- "entered-in-error": withdraws the record named in `corrects`; it never counts itself.
A corrected record never counts again, whatever the order the records arrive in: a late original, or a second
delivery of it, is not resurrected (its correction is kept with the records). Withdrawing an amendment does not
bring back what it replaced. The answer depends only on the set of records, so a rebuild gives the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import Protocol, TypeVar


class Correctable(Protocol):
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def record_status(self) -> str: ...
    @property
    def corrects(self) -> uuid.UUID | None: ...


R = TypeVar("R", bound=Correctable)


def _order(r: Correctable) -> tuple[datetime, datetime, str]:
    return (r.occurred_at, r.recorded_at, str(r.event_id))


def corrected_ids(records: Iterable[R], group: Callable[[R], Hashable]) -> set[uuid.UUID]:
    """The event IDs of the records that a correction among `records` replaces or withdraws."""
    rows = list(records)
    out: set[uuid.UUID] = set()
    for r in rows:
        if r.record_status == "final":
            continue
        if r.corrects is not None:
            out.add(r.corrects)
            continue
        # an amendment naming no record: the newest of its group recorded before it (entered-in-error always
        # names one: the contracts require `corrects` then)
        earlier = [
            x
            for x in rows
            if x.event_id != r.event_id
            and x.record_status != "entered-in-error"
            and group(x) == group(r)
            and x.recorded_at < r.recorded_at
        ]
        if earlier:
            out.add(max(earlier, key=_order).event_id)
    return out


def effective(records: Iterable[R], group: Callable[[R], Hashable]) -> list[R]:
    """The records that count, in clinical order (occurred_at, recorded_at, event ID)."""
    rows = list(records)
    gone = corrected_ids(rows, group)
    kept = [r for r in rows if r.record_status != "entered-in-error" and r.event_id not in gone]
    return sorted(kept, key=_order)


def is_correction(r: Correctable) -> bool:
    return r.record_status != "final"


class _Finding(Correctable, Protocol):
    @property
    def lesion_id(self) -> str: ...


F = TypeVar("F", bound=_Finding)


def effective_findings(findings: Iterable[F]) -> list[F]:
    """The imaging findings that count (an amendment without `corrects` replaces its lesion's newest earlier one)."""
    return effective(findings, lambda f: f.lesion_id)


L = TypeVar("L")


def fold_finding(lesions: dict[str, L], records: Iterable[F], finding: F, merge: Callable[[L | None, F], L]) -> None:
    """Fold `finding` into its lesion of `lesions` (in place). Once corrections are known, the lesions concerned (the
    finding's, and the one of the record it corrects) are folded again from their effective findings only; a lesion
    left with none is dropped, so what it caused is withdrawn by the caller's usual path."""
    rows = list(records)
    if not any(is_correction(x) for x in rows):
        lesions[finding.lesion_id] = merge(lesions.get(finding.lesion_id), finding)
        return
    concerned = {finding.lesion_id} | {x.lesion_id for x in rows if x.event_id == getattr(finding, "corrects", None)}
    folded: dict[str, L] = {}
    for x in effective_findings(rows):
        if x.lesion_id in concerned:
            folded[x.lesion_id] = merge(folded.get(x.lesion_id), x)
    for lesion_id in concerned:
        if lesion_id in folded:
            lesions[lesion_id] = folded[lesion_id]
        else:
            lesions.pop(lesion_id, None)
