"""Corrected and entered-in-error hospital records (imaging findings, clinical assessments): which ones still count.
Pure; no I/O. The same rule for every service, so scoring, the systemic planner and the radiotherapy planner never
disagree on which finding a decision may rest on (LAB-CORRECTION's principle, applied to findings: what was decided
from a corrected record is withdrawn through each service's usual withdrawal path).

A record with `record_status`:
- "final": counts, unless a later record corrects it;
- "amended": a new version of the record named in `corrects` (or, without `corrects`, of the newest record of the
  same group, the same lesion or patient, recorded before it);
- "entered-in-error": withdraws the record named in `corrects` (see below for a record with versions); it never
  counts itself.

Issue 18 review: each record is a chain of versions (the original, its amendments, amendments of amendments), and
only one version counts: the newest by `recorded_at`, then event ID. Two amendments of the same original never both
count. Withdrawing an amendment never brings back what it replaced; such a record is listed in `Resolution.to_check`
(an amended record then said to be in error: whether what it described happened at all is for a clinician to check).
A corrected record never counts again, whatever the order the records arrive in: a late original, or a second
delivery of it, is not resurrected. The answer depends only on the set of records, so a rebuild gives the same one.

Second review: an entered-in-error names a record as the hospital knows it, often by its first ID. Naming the
chain's original or the version that counts withdraws the version that counts (a decompression that never happened
no longer keeps a cord compression "operated" because its date had been amended first). Naming a version already
superseded by a later amendment (an intermediate one) leaves the version that counts in force, but lists it in
`to_check`: the hospital may have meant the whole record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from shared.clinical.components import components


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


def _order(r: Correctable) -> tuple[datetime, datetime, int]:
    # a UUID's integer orders as its text does (fixed-width hex): the same order, without formatting it each time
    return (r.occurred_at, r.recorded_at, r.event_id.int)


def _recorded(r: Correctable) -> tuple[datetime, int]:
    return (r.recorded_at, r.event_id.int)


def _target(r: R, rows: list[R], group: Callable[[R], Hashable]) -> uuid.UUID | None:
    """The version a correction names: `corrects`, or for an amendment naming none, the newest record of its group
    recorded before it (entered-in-error always names one: the contracts require `corrects` then)."""
    if r.corrects is not None:
        return r.corrects
    earlier = [
        x
        for x in rows
        if x.event_id != r.event_id
        and x.record_status != "entered-in-error"
        and group(x) == group(r)
        and x.recorded_at < r.recorded_at
    ]
    return max(earlier, key=_order).event_id if earlier else None


def target(r: R, rows: Iterable[R], group: Callable[[R], Hashable]) -> uuid.UUID | None:
    """The version the correction `r` names, as the fold resolves it on `rows` (`corrects`, or for an amendment naming
    none its group's newest record recorded before it): a view that leaves out a correction not yet in force (a
    service's `as_of.py`, HAZ-27-FUTURE-HIDES) knows what it corrects."""
    return _target(r, list(rows), group)


def fixes_ahead(
    r: R,
    records: Mapping[str, R],
    ahead: Callable[[datetime], bool],
    rows: Sequence[R],
    group: Callable[[R], Hashable],
    walked: Chains[R] | None = None,
    held: Collection[uuid.UUID] = (),
) -> bool:
    """HAZ-27-FUTURE-HIDES (reviews R29B, R30-SYS): a correction dated ahead (`ahead` of its clinical time) of the
    CURRENT record it corrects is not yet in force in a view of current data: that record stands as it is until the
    correction's date (never the older one it superseded, never unknown). The record it corrects is the one it names,
    or for an amendment naming none the one the fold resolves (`target` on `rows`); where that record is itself dated
    ahead, the version of its chain in force before the correction (its newest amendment recorded before, but those
    `held` back) if that is current (review R32-PIN). One correcting a record itself dated ahead goes with it (both
    left out); one whose record is no longer held (`records`, by event ID: folded by retention) is kept (resolved as
    before). Both planners' `as_of.py` read this one rule (`pending_ahead`)."""
    if r.record_status == "final" or not ahead(r.occurred_at):
        return False
    named = r.corrects if r.corrects is not None else target(r, rows, group)
    corrected = None if named is None else records.get(str(named))
    if corrected is None:
        return False
    if not ahead(corrected.occurred_at):
        return True
    walked = chains(list(rows), group) if walked is None else walked
    before = [
        v
        for v in walked.versions.get(walked.root(corrected.event_id), [])
        if v.event_id != r.event_id
        and v.event_id not in held
        and v.record_status == "amended"
        and _recorded(v) < _recorded(r)
    ]
    newest = max(before, key=_recorded, default=None)
    return newest is not None and str(newest.event_id) in records and not ahead(newest.occurred_at)


@dataclass(frozen=True)
class Chains(Generic[R]):
    """Each correction's target, read on the whole record set (`_target`), and each chain's versions (its
    corrections, in the records' order) by its original's ID: the walk `resolve`, scoring's view "the current one
    holds" (HAZ-27-FUTURE-HIDES) and its drug retention share."""

    targets: dict[uuid.UUID, uuid.UUID | None]
    versions: dict[uuid.UUID, list[R]]

    def root(self, event_id: uuid.UUID) -> uuid.UUID:
        """The original a version descends from (itself when it corrects nothing)."""
        seen = {event_id}
        while (up := self.targets.get(event_id)) is not None and up not in seen:  # a cycle is a data error: stop there
            seen.add(up)
            event_id = up
        return event_id


def chains(rows: list[R], group: Callable[[R], Hashable]) -> Chains[R]:
    found: Chains[R] = Chains({r.event_id: _target(r, rows, group) for r in rows if r.record_status != "final"}, {})
    for r in rows:
        if found.targets.get(r.event_id) is not None:
            found.versions.setdefault(found.root(r.event_id), []).append(r)
    return found


def pinned(rows: Iterable[R], group: Callable[[R], Hashable]) -> list[R]:
    """`rows` with each amendment naming none pinned to the target the fold resolves on the whole set (`target`):
    a view that leaves some records out (HAZ-27's view B) must never re-target a correction onto another record
    (reviews R32-FA2, R32-RETAIN: a second amendment naming none dated ahead re-targeted onto today's record once the
    first was left out, so today's record was lost). Records are models (`model_copy`)."""
    rows = list(rows)
    out: list[R] = []
    for r in rows:
        t = target(r, rows, group) if r.record_status != "final" and r.corrects is None else None
        out.append(r if t is None else r.model_copy(update={"corrects": t}))  # type: ignore[attr-defined]
    return out


def pending_ahead(
    records: Mapping[str, R], group: Callable[[R], Hashable], ahead: Callable[[datetime], bool]
) -> dict[uuid.UUID, R]:
    """The corrections not yet in force in a view of current data (`fixes_ahead`), by event ID, but those a current
    correction builds on. Review R31-SYS2: one that a current correction names (an entry in error of the amendment
    ahead, an amendment of it), or that a current one of its chain recorded after it supersedes, is no longer
    pending: the chain is resolved as the fold resolves it (leaving it out would break the chain and bring back the
    record it replaced: "withdrawing an amendment never brings back what it replaced"). `records` by event ID."""
    rows = list(records.values())
    if not any(x.record_status != "final" and ahead(x.occurred_at) for x in rows):
        return {}
    walked = chains(rows, group)
    found: dict[uuid.UUID, R] = {}
    for x in sorted(rows, key=_recorded):  # in the order recorded: one held back is not in force for those after it
        if fixes_ahead(x, records, ahead, rows, group, walked, found):
            found[x.event_id] = x
    if not found:
        return found
    built: set[uuid.UUID] = set()  # the corrections ahead a current correction builds on
    for c in rows:
        if c.record_status == "final" or ahead(c.occurred_at) or walked.targets.get(c.event_id) is None:
            continue
        up, seen = walked.targets[c.event_id], {c.event_id}  # c's ancestors: what it corrects, and so on
        while up is not None and up not in seen:
            seen.add(up)
            built.add(up)
            up = walked.targets.get(up)
        root = walked.root(c.event_id)
        built |= {x for x, y in found.items() if walked.root(x) == root and _recorded(y) < _recorded(c)}
    return {x: y for x, y in found.items() if x not in built}


@dataclass(frozen=True)
class Resolution(Generic[R]):
    """`kept`: the records that count, in clinical order; `to_check`, in clinical order: amendments withdrawn while
    they were the version that counted (what they replaced is not brought back), and versions that still count
    although an entered-in-error named one of their superseded versions (then in `kept` too)."""

    kept: list[R]
    to_check: list[R]


def resolve(records: Iterable[R], group: Callable[[R], Hashable]) -> Resolution[R]:
    """Each chain of versions resolved to the version that counts (see the module's docstring)."""
    rows = list(records)
    by_id = {r.event_id: r for r in rows}
    walked = chains(rows, group)
    targets, versions = walked.targets, walked.versions
    kept: list[R] = []
    to_check: list[R] = []
    for r in rows:
        if r.event_id in targets and targets[r.event_id] is not None:
            continue  # a correction: it counts, if it does, as the newest version of its chain (below)
        if r.record_status == "entered-in-error":
            continue
        if r.event_id not in versions:
            kept.append(r)  # never corrected (an amendment with no target is a record of its own)
    for origin, chain in versions.items():
        current: uuid.UUID = origin
        seen = {origin}  # the versions of the chain so far (in recorded order)
        withdrawn: R | None = None  # the amendment whose withdrawal left the record with no version
        gone = False
        doubt = False  # an entered-in-error named a superseded version (second review): the one in force is to check
        for c in sorted(chain, key=_recorded):
            named = targets[c.event_id]
            if c.record_status == "amended":
                current, gone, withdrawn, doubt = c.event_id, False, None, False
                seen.add(c.event_id)
            elif gone:
                continue  # the record is withdrawn already
            elif named in (current, origin):  # the version that counts, or the record by its original ID
                gone = True
                withdrawn = by_id.get(current) if current != origin else None
            elif named in seen:  # a superseded intermediate version: nothing withdrawn, but to check
                doubt = True
        if gone:
            if withdrawn is not None:
                to_check.append(withdrawn)
        elif current in by_id:  # else the original is named but not received yet: nothing counts until it is
            kept.append(by_id[current])
            if doubt:
                to_check.append(by_id[current])
    return Resolution(sorted(kept, key=_order), sorted(to_check, key=_order))


def effective(records: Iterable[R], group: Callable[[R], Hashable]) -> list[R]:
    """The records that count, in clinical order (occurred_at, recorded_at, event ID)."""
    rows = list(records)
    if all(r.record_status == "final" for r in rows):  # no correction: every record counts (the common case)
        return sorted(rows, key=_order)
    return resolve(rows, group).kept


def is_correction(r: Correctable) -> bool:
    return r.record_status != "final"


class _Finding(Correctable, Protocol):
    @property
    def lesion_id(self) -> str: ...


F = TypeVar("F", bound=_Finding)


def effective_findings(findings: Iterable[F]) -> list[F]:
    """The imaging findings that count (an amendment without `corrects` replaces its lesion's newest earlier one)."""
    return effective(findings, lambda f: f.lesion_id)


def linked_lesions(findings: Mapping[str, F]) -> dict[str, str]:
    """The lesions corrections link, each named by one of its set (a lesion no correction is in or names is absent):
    a correction's own lesion (an amendment naming none corrects within it), the lesion of the record it names, and
    the lesions of other corrections naming the same record, held or not. Corrections resolve within such a set.
    `findings` by event ID (its text)."""
    pairs: list[tuple[str, str | None]] = []  # over "L<lesion>" and "T<named record ID>"
    for c in findings.values():
        if c.record_status == "final" and c.corrects is None:
            continue
        pairs.append(("L" + c.lesion_id, None))
        if c.corrects is not None:
            named = str(c.corrects)
            target = findings.get(named)
            for other in ("T" + named, None if target is None else "L" + target.lesion_id):
                if other is not None:
                    pairs.append(("L" + c.lesion_id, other))
    return {x[1:]: root for x, root in components(pairs).items() if x[0] == "L"}


def findings_by_lesion(findings: Mapping[str, F]) -> dict[str, list[F]]:
    """`effective_findings` by lesion, each in clinical order: the same records, resolved per set of lesions
    corrections link (`linked_lesions`), so a correction costs its lesions' records, not every lesion's (issue 25).
    `findings` by event ID (its text)."""
    links = linked_lesions(findings)
    by: dict[str, list[F]] = {}
    for r in findings.values():
        by.setdefault(r.lesion_id, []).append(r)
    out: dict[str, list[F]] = {}
    linked: dict[str, list[str]] = {}  # a set's lesions, by its name
    for lid, fs in by.items():
        if lid in links:
            linked.setdefault(links[lid], []).append(lid)
        else:  # no correction in or into this lesion: every record counts
            out[lid] = sorted(fs, key=_order)
    for lids in linked.values():
        for r in resolve([r for lid in lids for r in by[lid]], lambda f: f.lesion_id).kept:
            out.setdefault(r.lesion_id, []).append(r)
    return out


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
