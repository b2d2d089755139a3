"""Retention of the lab aggregate (issue 25, README "Retention: lab-normalisation"): results past `LabConfig.retention`
are dropped but for each analyte's newest and the partners a kept calcium or creatinine may still pair with
(LAB-CA-CORR L316, LAB-CRCL L1153-1156), and stamps keep late older versions from counting again (LAB-CORRECTION).
Pure, no I/O."""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from itertools import compress
from typing import Final
from zoneinfo import ZoneInfo

from contracts.clinical import Analyte
from contracts.hospital import TimePrecision
from services.lab_normalisation.state import (
    _AT,
    _DAY,
    _DERIVED_FROM,
    _DRAWN,
    _FIRST_OF,
    _PARTITION,
    _RID,
    PARTNERS,
    LabConfig,
    LabState,
    StoredResult,
    _Held,
    _near_slice,
    _newest_first,
    _surely_within,
    _within,
)


def _kept(s: LabState, cutoff: datetime, per_analyte: int, held: _Held) -> tuple[set[str], list[StoredResult]]:
    """The results `_prune` keeps (each analyte's newest `per_analyte` within `retention`, or its newest), and the
    others (in the table's order)."""
    values = s.results.values()
    if max(map(len, held.by.values())) <= per_analyte:
        # issue 25 (the usual case: one result ages out): every result within `retention` is kept (none above its
        # analyte's cap), and an analyte's newest where none of it is within (read in C over the table)
        old = list(compress(values, map(cutoff.__gt__, map(_AT, values))))
        keep = set(s.results).difference(map(_RID, old))
        for analyte in {r.analyte for r in old}:
            if max(map(_AT, held.of(analyte))) < cutoff:  # none of it within `retention`: its newest is kept
                keep.add(max(held.of(analyte), key=_newest_first).result_id)
        return keep, [r for r in old if r.result_id not in keep]
    keep = set()
    for results in held.by.values():
        # the newest `per_analyte` within `retention` (issue 25: sorted only when there are more)
        recent = [r for r in results if r.occurred_at >= cutoff]
        if len(recent) > per_analyte:
            recent = heapq.nlargest(per_analyte, recent, key=_newest_first)
        if not recent:  # else the analyte's newest (the newest clinical time) is among them
            recent = [max(results, key=_newest_first)]  # each analyte's newest, however old
        keep.update(r.result_id for r in recent)
    return keep, [r for rid, r in s.results.items() if rid not in keep]


def _prune(s: LabState, cfg: LabConfig, held: _Held | None = None) -> None:
    """Bound the aggregate (issue 25, README "Retention: lab-normalisation"): keep each analyte's newest result,
    and its newest `per_analyte` results within `retention` of the patient's newest result. A result dropped within
    `retention` leaves a stamp of its newest version (the newest `stamps`), and one amended or withdrawn leaves one
    however old (`revised`, the newest `stamps`), so a late older version of it still changes nothing
    (LAB-CORRECTION); an amendment of a dropped result is handled as a new result. Deterministic: measured from the
    results' own times, never the wall clock."""
    if not s.results:
        return
    held = _Held(s.results) if held is None else held
    cutoff = max(map(_AT, s.results.values())) - cfg.retention
    dropping: list[StoredResult]
    if min(map(_AT, s.results.values())) >= cutoff and max(map(len, held.by.values())) <= cfg.per_analyte:
        keep, dropping = set(s.results), []  # issue 25: every result within `retention` and its analyte's cap
    else:
        keep, dropping = _kept(s, cutoff, cfg.per_analyte, held)
    if dropping:  # issue 25: the partners are looked for only among the results that would otherwise go
        keep |= _partners(s, keep, cfg.ca_albumin_window, dropping, held)
        _note_dropped(s, keep, cfg.ca_albumin_window, dropping, held)
        newest: dict[str, datetime] = {}
        for r in dropping:  # review RL: the newest dropped of each partner analyte (LabState.partner_dropped)
            if r.result_id not in keep and r.value is not None and r.analyte in _PARTNER_OF:
                newest[r.analyte] = max(r.occurred_at, newest.get(r.analyte, r.occurred_at))
        if any(s.partner_dropped.get(a, t) < t or a not in s.partner_dropped for a, t in newest.items()):
            s.partner_dropped = {
                **s.partner_dropped,
                **{a: max(t, s.partner_dropped.get(a, t)) for a, t in newest.items()},
            }
    if s.nearest_dropped.keys() - keep:
        s.nearest_dropped = {k: v for k, v in s.nearest_dropped.items() if k in keep}
    if gone := [r for r in dropping if r.result_id not in keep]:  # in the table's order
        # the previous state's tables are left as they were, and one unchanged keeps its object (and its stored JSON)
        stamped = {
            r.result_id: (max(r.occurred_at, s.moved.get(r.result_id, r.occurred_at)), r.recorded_at)
            for r in gone
            if r.occurred_at >= cutoff
        }
        revisions = {r.result_id: (r.occurred_at, r.recorded_at) for r in gone if r.status != "final"}
        if stamped:
            s.dropped = {**s.dropped, **stamped}
        if revisions:
            s.revised = {**s.revised, **revisions}
        s.results = dict(s.results)
        for r in gone:
            del s.results[r.result_id]
        if s.moved.keys() - keep:  # after their stamps took their latest draw
            s.moved = {k: v for k, v in s.moved.items() if k in keep}
        derived = s.published_derived
        if not keep.issuperset(map(_DERIVED_FROM, map(_PARTITION, derived))):  # the values of results kept (in C)
            kept_keys = list(compress(derived, map(keep.__contains__, map(_DERIVED_FROM, map(_PARTITION, derived)))))
            s.published_derived = dict(zip(kept_keys, map(derived.__getitem__, kept_keys), strict=True))
    if s.dropped and not (  # issue 25: unchanged while every stamp is within `retention`, below the cap, not held
        len(s.dropped) <= cfg.stamps
        and min(map(_DRAWN, s.dropped.values())) >= cutoff
        and s.dropped.keys().isdisjoint(s.results)
    ):
        stamps = [(rid, at) for rid, at in s.dropped.items() if at[0] >= cutoff and rid not in s.results]
        if len(stamps) != len(s.dropped) or len(stamps) > cfg.stamps:
            stamps.sort(key=lambda x: (x[1][0], x[1][1], x[0]), reverse=True)
            s.dropped = dict(stamps[: cfg.stamps])
            if evicted := [at for _, at in stamps[cfg.stamps :]]:  # HAZ-25-LAB-02: what they may have held
                s.evicted = (
                    max([at[0] for at in evicted] + ([s.evicted[0]] if s.evicted else [])),
                    max([at[1] for at in evicted] + ([s.evicted[1]] if s.evicted else [])),
                )
    if s.evicted is not None and s.evicted[0] < cutoff:  # all of them beyond `retention`, as in an unbounded state
        s.evicted = None
    if s.revised and (len(s.revised) > cfg.stamps or s.revised.keys() & s.results.keys()):
        revised = [(rid, at) for rid, at in s.revised.items() if rid not in s.results]
        if len(revised) != len(s.revised) or len(revised) > cfg.stamps:
            revised.sort(key=lambda x: (x[1][0], x[1][1], x[0]), reverse=True)
            s.revised = dict(revised[: cfg.stamps])


def _stamp(s: LabState, result_id: str) -> datetime | None:
    """The newest recorded time held of a result no longer kept whole, if it left a stamp."""
    held = [at[1] for at in (s.dropped.get(result_id), s.revised.get(result_id)) if at is not None]
    return max(held, default=None)


def _partners(s: LabState, kept: set[str], window: timedelta, dropping: list[StoredResult], held: _Held) -> set[str]:
    """The results a kept result derives from (LAB-CA-CORR: the closest albumin and ionised calcium of a calcium;
    LAB-CRCL: the closest weight of a creatinine), and the next closest ones (`PARTNERS` in all): kept with it, so
    that deriving it again gives the same value, also after its partner is withdrawn (the next closest then pairs,
    as it would in an unbounded state; review of issue 25), and while it is withdrawn (a newer version may issue it
    again with a value). Those of them among `dropping` (the results not kept otherwise) are what matters: a calcium
    is paired only when one of those is within its reach (both lists below are within the window + 2 days), a
    creatinine only when a weight is among them (issue 25: the cost of an event, not of the whole state)."""
    out: set[str] = set()
    reach = window + 2 * _DAY
    if held.of("total_calcium"):
        for analyte in ("albumin", "ionised_calcium"):
            gone = [r.occurred_at for r in dropping if r.analyte == analyte and r.value is not None]
            # the kept calciums within reach of one of them (issue 25: looked for by bisection, each tested as before)
            reached = {
                ca.result_id: ca
                for t in gone
                for ca in held.drawn_near("total_calcium", t, reach)
                if ca.result_id in kept and abs(ca.occurred_at - t) <= reach
            }.values()
            if not reached:
                continue
            active = held.active(analyte)
            for ca in reached:
                candidates = active[_near_slice(active, ca.occurred_at, reach, _FIRST_OF)]
                # the closest surely within the window (closest_within's order), and the closest whatever the draws'
                # precision: an amendment giving a date-only draw its hour pairs with one of those; none beyond the
                # closest in force dropped (HAZ-25-LAB-R01: an unbounded state holds that one)
                for near, bar in (
                    (_surely_within(ca, candidates, window), _bar(s, ca, analyte, window)),
                    (_within(ca, candidates, window + 2 * _DAY), _bar(s, ca, analyte, window + 2 * _DAY, False)),
                ):
                    near.sort(key=lambda tr: (abs(tr[0] - ca.occurred_at), tr[0]))
                    out.update(
                        r.result_id
                        for _, r in near[:PARTNERS]
                        if bar is None or not _beyond(ca, r.occurred_at, r.recorded_at, r.result_id, bar)
                    )
    weighed = any(r.analyte == "body_weight" and r.value is not None for r in dropping)
    creatinines = [r for r in held.of("creatinine") if r.result_id in kept]
    if weighed and creatinines and (weights := held.active("body_weight")):
        for creat in creatinines:
            at = creat.occurred_at
            weights.sort(key=lambda tr: (abs(tr[0] - at), -tr[0].timestamp()))  # _weight_for's order
            bar = _bar(s, creat, "body_weight")
            out.update(
                r.result_id
                for _, r in weights[:PARTNERS]
                if bar is None or not _beyond(creat, r.occurred_at, r.recorded_at, r.result_id, bar)
            )
    return out


Near = tuple[Analyte, TimePrecision, datetime, datetime, str]  # LabState.nearest_dropped's entries


def _near(r: StoredResult) -> Near:
    return r.analyte, r.precision, r.occurred_at, r.recorded_at, r.result_id


def _order(anchor: StoredResult, at: datetime, recorded: datetime, rid: str | None) -> tuple[object, ...]:
    """The pairing order of a partner of `anchor` (rid None: a patient record's weight): LAB-CA-CORR closest_within's
    (ties: the earlier draw), LAB-CRCL _weight_for's (ties: the later), then _active's (the most recently reported,
    then result ID; a patient record's weight after the results)."""
    gap = abs(at - anchor.occurred_at)
    if anchor.analyte == "creatinine":
        return gap, -at.timestamp(), rid is None, -recorded.timestamp(), rid or ""
    return gap, at, -recorded.timestamp(), rid or ""


def _beyond(anchor: StoredResult, at: datetime, recorded: datetime, rid: str | None, bar: Near | None) -> bool:
    """HAZ-25-LAB-R01: a partner no closer than the closest in force dropped (`bar`) is not the one an unbounded state
    pairs: neither kept nor used (LAB-CA-CORR L316; LAB-CRCL L1153-1156, "do not guess")."""
    if bar is None or rid == bar[4]:
        return False
    return _order(anchor, at, recorded, rid) > _order(anchor, bar[2], bar[3], bar[4])


def _bar(
    s: LabState, anchor: StoredResult, analyte: Analyte, window: timedelta | None = None, surely: bool = True
) -> Near | None:
    """The closest in force dropped of `analyte` for `anchor` that the pairing could take: within `window`, every
    possible hour of date-only draws within it (`surely`, _surely_within) or not (_within). One is kept per draw
    precision: the closest of each, as eligibility only narrows with the gap."""
    if anchor.result_id not in s.nearest_dropped:
        return None
    slack = _DAY if anchor.precision == "date" else timedelta(0)
    eligible = [
        n
        for n in s.nearest_dropped.get(anchor.result_id, ())
        if n[0] == analyte
        and (
            window is None
            or abs(n[2] - anchor.occurred_at)
            + ((slack + (_DAY if n[1] == "date" else timedelta(0))) if surely else timedelta(0))
            <= window
        )
    ]
    return min(eligible, key=lambda n: _order(anchor, n[2], n[3], n[4]), default=None)


#: the partners of LAB-CA-CORR (L316) and LAB-CRCL (L1153-1156), and the reverse
_PARTNERS_OF: Final[dict[str, tuple[Analyte, ...]]] = {
    "total_calcium": ("albumin", "ionised_calcium"),
    "creatinine": ("body_weight",),
}
_PARTNER_OF: Final = {p: anchor for anchor, partners in _PARTNERS_OF.items() for p in partners}


def _note_dropped(s: LabState, keep: set[str], window: timedelta, dropping: list[StoredResult], held: _Held) -> None:
    """HAZ-25-LAB-R01: for each kept calcium (creatinine), the closest albumin and ionised calcium within reach (weight)
    in force that retention drops, one per draw precision, kept in `LabState.nearest_dropped`."""
    gone = [r for r in dropping if r.result_id not in keep and r.value is not None and r.analyte in _PARTNER_OF]
    if not gone:
        return
    anchors = {_PARTNER_OF[r.analyte] for r in gone}
    reach = window + 2 * _DAY
    changed: dict[str, list[Near]] = {}
    # a calcium only within reach of one (issue 25: looked for by bisection), every creatinine; in the table's order
    near_calcium = {
        ca.result_id
        for r in gone
        if r.analyte in _PARTNERS_OF["total_calcium"]
        for ca in held.drawn_near("total_calcium", r.occurred_at, reach)
    }
    for anchor in (
        r
        for a in sorted(anchors)
        for r in held.of(a)
        if r.result_id in keep and (a == "creatinine" or r.result_id in near_calcium)
    ):
        analytes = _PARTNERS_OF[anchor.analyte]
        near = [
            r
            for r in gone
            if r.analyte in analytes
            and (anchor.analyte == "creatinine" or abs(r.occurred_at - anchor.occurred_at) <= reach)
        ]
        if not near:
            continue
        entries = {(n[0], n[1]): n for n in s.nearest_dropped.get(anchor.result_id, ())}
        for r in near:
            noted = entries.get((r.analyte, r.precision))
            if noted is None or _order(anchor, r.occurred_at, r.recorded_at, r.result_id) < _order(
                anchor, noted[2], noted[3], noted[4]
            ):
                entries[(r.analyte, r.precision)] = _near(r)
        changed[anchor.result_id] = sorted(entries.values())
    if changed:
        s.nearest_dropped = {**s.nearest_dropped, **changed}


#: a bar's recorded time and result ID that order it before any partner at its draw time (review RL)
_FIRST: Final = (datetime.max.replace(tzinfo=ZoneInfo("UTC")), "")


def _bar_dropped(s: LabState, anchor: StoredResult, reach: timedelta) -> None:
    """Review RL (HAZ-25-LAB-R01 residuals): a calcium (creatinine) new to the held results, or whose draw moved, was
    not held when its partners were dropped, so `_note_dropped` never saw them: any dropped partner may be the closest
    the unbounded state pairs. Its bar is the newest dropped partner's draw time (none dropped is closer than that),
    or its own draw when it is older than that: no farther partner is used, the partner is said missing instead
    (LAB-CA-CORR L316; LAB-CRCL L1153-1156, "do not guess"). A calcium's only within its pairing's `reach`."""
    entries = {(n[0], n[1]): n for n in s.nearest_dropped.get(anchor.result_id, ())}
    added = False
    for analyte in _PARTNERS_OF[anchor.analyte]:
        if (dropped := s.partner_dropped.get(analyte)) is None:
            continue
        bar: Near = (analyte, "time", min(dropped, anchor.occurred_at), *_FIRST)
        if anchor.analyte == "total_calcium" and anchor.occurred_at - bar[2] > reach:
            continue  # no dropped albumin or ionised calcium within 48 h (+ 2 days for date-only draws)
        held = entries.get((analyte, "time"))
        if held is None or _order(anchor, bar[2], bar[3], bar[4]) < _order(anchor, held[2], held[3], held[4]):
            entries[(analyte, "time")] = bar
            added = True
    if added:
        s.nearest_dropped = {**s.nearest_dropped, anchor.result_id: sorted(entries.values())}
