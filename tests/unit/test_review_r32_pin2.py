"""Review R32-PIN2 of 3ff46d9 (HAZ-27-FUTURE-HIDES, the fixes of review R32-PIN's D1 and D2). Rule R29B: in view B a
correction dated ahead of the CURRENT record it corrects is not in force until its date; never the older version it
superseded, never unknown (RT-MSCC L1397-1402; SYS-AR-START L1063-1074).

3ff46d9 makes `corrections.fixes_ahead` read, for a correction naming a record itself dated ahead, the chain's newest
amendment recorded before the correction (those held back left out), and `pending_ahead` walk the records in the
order recorded; RT view B keeps every lesion holding a finding A does not count.

Held (guards, all pass at 3ff46d9):
1. An independent oracle of what is held back (for each correction dated ahead, in the order recorded: the fold of
   the records recorded before it, those already held back left out, gives its chain a CURRENT version in force;
   then R31-SYS2's "built on" rule): on 300 random histories (with and without moves), wherever its held set differs
   from `pending_ahead`'s (it does, both ways: `fixes_ahead` reads the newest amendment, not the fold, so it ignores
   an entry in error in force, and a chain whose only current version is its original), view B's lesions are the
   same. The differences are not visible in B (checked: a chain withdrawn before the correction gives nothing either
   way; a correction of an amendment held back over a current original is left with its target, out of B either way).
2. Chains with an entry in error in force before the correction (nothing today: nothing published), then re-amended
   today (held back: today's compression marked).
3. An amendment of the version in force recorded AFTER the correction (naming it, the original, or none): it is in
   force, current, unmarked; its value decides.
4. The same events delivered twice (the current amendment, the correction, a late copy of the original): D1's answer.
5. An amendment held back, then a second correction after it: of the amendment (today's record stands, marked), of
   the original (held back too); a current amendment of the one held back recorded after: in force, unmarked.
6. Systemic: D1 with the lesion's older records folded by retention: the retained state decides as the whole history
   does (the start marked "à vérifier", naming the correction, as R32-PIN's D1 fix gives without retention).

No defect found within the 20-minute budget."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ImagingFinding
from services.radiotherapy_planner import as_of
from services.radiotherapy_planner.facts import FindingFact, lesions
from shared.clinical.corrections import chains, pending_ahead, resolve, target
from tests.unit import test_review_r32_pin as pin
from tests.unit.test_dt_rt_cases import _state
from tests.unit.test_issue18_local import NOW, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD
from tests.unit.test_review_r32_fa2 import _marked
from tests.unit.test_review_r32_fixes_ahead import OLDER, TODAY_S, _correction, _current_fix_of
from tests.unit.test_review_r32_sys import _named, _plan
from tests.unit.test_review_r32_sys import _state as _sys_state

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
CRITICAL_MARKED = [("critical", "recommended", True)]
CRITICAL_UNMARKED = [("critical", "recommended", False)]


def _ahead(t: datetime) -> bool:
    return as_of.is_future(t, NOW)


def _rec(r: FindingFact) -> tuple[datetime, int]:
    return (r.recorded_at, r.event_id.int)


def _oracle(records: Mapping[str, FindingFact], group: Callable[[FindingFact], Hashable]) -> set[uuid.UUID]:
    """What R29B holds back, read from the fold itself (not from `fixes_ahead`), then R31-SYS2's "built on" rule."""
    rows = list(records.values())
    walked = chains(rows, group)
    found: dict[uuid.UUID, FindingFact] = {}
    for r in sorted(rows, key=_rec):
        if r.record_status == "final" or not _ahead(r.occurred_at):
            continue
        named = r.corrects if r.corrects is not None else target(r, rows, group)
        if named is None or str(named) not in records:
            continue
        root = walked.root(named)
        prior = [x for x in rows if _rec(x) < _rec(r) and x.event_id not in found]
        if any(walked.root(x.event_id) == root and not _ahead(x.occurred_at) for x in resolve(prior, group).kept):
            found[r.event_id] = r
    built: set[uuid.UUID] = set()
    for c in rows:
        if c.record_status == "final" or _ahead(c.occurred_at) or walked.targets.get(c.event_id) is None:
            continue
        up, seen = walked.targets[c.event_id], {c.event_id}
        while up is not None and up not in seen:
            seen.add(up)
            built.add(up)
            up = walked.targets.get(up)
        root = walked.root(c.event_id)
        built |= {x for x, y in found.items() if walked.root(x) == root and _rec(y) < _rec(c)}
    return {x for x in found if x not in built}


def _lesion(f: FindingFact) -> str:
    return f.lesion_id


# ---- 1. an independent oracle of what is held back ------------------------------------------------------------------
def test_r32pin2_rt_view_b_equals_the_history_without_what_the_fold_holds_back() -> None:
    counts: Counter[str] = Counter()
    for seed in range(150):
        for moves in (False, True):
            events = pin._history(seed, moves=moves)
            for n in range(1, len(events) + 1):
                s = _state(events[:n])
                theirs = set(pending_ahead(s.findings, _lesion, _ahead))
                mine = _oracle(s.findings, _lesion)
                if mine == theirs:
                    continue
                counts["differ"] += 1
                assessed = set(pending_ahead(s.assessments, pin._patient, _ahead))
                reference = _state([e for e in pin._pinned_events(events[:n]) if e.event_id not in mine | assessed])
                assert pin._view(s)[0] == pin._view(reference)[0], (seed, moves, n)
    assert counts["differ"] > 20, counts


# ---- helpers: D1's chain (a finding dated ahead, a current amendment of it) ---------------------------------------
def _original() -> ImagingFinding:
    return vertebra(at=AHEAD, cord_compression=False, status="confirmed").model_copy(
        update={"event_id": uuid.UUID(int=0x3810, version=4), "recorded_at": NOW - 5 * MINUTE}
    )


def _now_fix(x: ImagingFinding, status: str, n: int, recorded: datetime, **update: Any) -> ImagingFinding:
    return _current_fix_of(x, status, n, **update).model_copy(update={"recorded_at": recorded})


def _later(x: ImagingFinding, status: str, n: int, **update: Any) -> ImagingFinding:
    """A correction dated ahead (10 min after the original), recorded at NOW."""
    return _correction(x, status, n, cord_compression=False, **update).model_copy(
        update={"occurred_at": AHEAD + 10 * MINUTE}
    )


def _b_t8(events: list[Message]) -> list[uuid.UUID]:
    s = _state(events)
    _, by = as_of.view_b(s, lesions(s), NOW)
    return [f.event_id for f in by["t8"].history] if "t8" in by else []


def _critical(events: list[Message]) -> list[tuple[str, str, bool]]:
    return [x for x in _marked(events) if x[0] == "critical"]


# ---- 2. an entry in error in force before the correction -------------------------------------------------------------
@pytest.mark.parametrize("status", ["amended", "entered-in-error"])
def test_r32pin2_a_chain_withdrawn_today_before_the_correction_ahead_publishes_nothing(status: str) -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3811, NOW - 4 * MINUTE, cord_compression=True)
    gone = _now_fix(a1, "entered-in-error", 0x3812, NOW - 3 * MINUTE)
    events: list[Message] = [OLDER, o, a1, gone, _later(o, status, 0x3813)]
    assert _b_t8(events) == [OLDER.event_id]
    assert _critical(events) == []


@pytest.mark.parametrize("status", ["amended", "entered-in-error"])
def test_r32pin2_a_chain_withdrawn_then_amended_again_today_keeps_the_compression_marked(status: str) -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3821, NOW - 4 * MINUTE, cord_compression=True)
    gone = _now_fix(a1, "entered-in-error", 0x3822, NOW - 3 * MINUTE)
    again = _now_fix(o, "amended", 0x3823, NOW - 2 * MINUTE, cord_compression=True)
    later = _later(o, status, 0x3824)
    events: list[Message] = [OLDER, o, a1, gone, again, later]
    assert set(pending_ahead(_state(events).findings, _lesion, _ahead)) == {later.event_id}
    assert _b_t8(events) == [OLDER.event_id, again.event_id]
    assert _critical(events) == CRITICAL_MARKED


# ---- 3. an amendment of the version in force recorded after the correction -----------------------------------------
@pytest.mark.parametrize("compression", [True, False])
@pytest.mark.parametrize("names", ["the_amendment", "the_original", "none"])
def test_r32pin2_a_current_amendment_recorded_after_the_correction_is_in_force(names: str, compression: bool) -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3831, NOW - 4 * MINUTE, cord_compression=True)
    later = _later(o, "amended", 0x3832)
    corrects = {"the_amendment": a1.event_id, "the_original": o.event_id, "none": None}[names]
    a2 = _now_fix(a1, "amended", 0x3833, NOW + SECOND, cord_compression=compression, corrects=corrects)
    events: list[Message] = [OLDER, o, a1, later, a2]
    assert set(pending_ahead(_state(events).findings, _lesion, _ahead)) == set()
    assert _b_t8(events) == [OLDER.event_id, a2.event_id]
    assert _critical(events) == (CRITICAL_UNMARKED if compression else [])


# ---- 4. the same events delivered twice ------------------------------------------------------------------------------
@pytest.mark.parametrize("twice", ["amendment", "correction", "original_late"])
def test_r32pin2_events_delivered_twice_keep_d1_s_marked_emergency(twice: str) -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3841, NOW - 4 * MINUTE, cord_compression=True)
    later = _later(o, "entered-in-error", 0x3842)
    events: list[Message] = [OLDER, o, a1, later]
    events += {"amendment": [a1], "correction": [later], "original_late": [o]}[twice]
    assert _b_t8(events) == [OLDER.event_id, a1.event_id]
    assert _critical(events) == CRITICAL_MARKED


# ---- 5. an amendment held back, then a second correction ------------------------------------------------------------
@pytest.mark.parametrize("status", ["amended", "entered-in-error"])
@pytest.mark.parametrize("names", ["the_held_amendment", "today_s_record"])
def test_r32pin2_a_second_correction_after_one_held_back_keeps_today_s_record_marked(names: str, status: str) -> None:
    first = _correction(TODAY_S, "amended", 0x3851, cord_compression=False)
    named = first if names == "the_held_amendment" else TODAY_S
    second = _later(named, status, 0x3852).model_copy(update={"recorded_at": NOW + SECOND})
    events: list[Message] = [OLDER, TODAY_S, first, second]
    assert _b_t8(events) == [OLDER.event_id, TODAY_S.event_id]
    assert _critical(events) == CRITICAL_MARKED


def test_r32pin2_an_amendment_held_back_in_d1_s_chain_then_the_correction_of_the_original_is_held_too() -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3861, NOW - 4 * MINUTE, cord_compression=True)
    a2 = _correction(a1, "amended", 0x3862, cord_compression=False).model_copy(update={"recorded_at": NOW - MINUTE})
    later = _later(o, "amended", 0x3863)
    events: list[Message] = [OLDER, o, a1, a2, later]
    assert set(pending_ahead(_state(events).findings, _lesion, _ahead)) == {a2.event_id, later.event_id}
    assert _b_t8(events) == [OLDER.event_id, a1.event_id]
    assert _critical(events) == CRITICAL_MARKED


@pytest.mark.parametrize("compression", [True, False])
def test_r32pin2_a_current_amendment_of_the_one_held_back_recorded_after_the_correction_is_in_force(
    compression: bool,
) -> None:
    o = _original()
    a1 = _now_fix(o, "amended", 0x3871, NOW - 4 * MINUTE, cord_compression=True)
    a2 = _correction(a1, "amended", 0x3872, cord_compression=False).model_copy(update={"recorded_at": NOW - MINUTE})
    later = _later(o, "amended", 0x3873)
    a3 = _now_fix(a2, "amended", 0x3874, NOW + SECOND, cord_compression=compression)
    events: list[Message] = [OLDER, o, a1, a2, later, a3]
    assert set(pending_ahead(_state(events).findings, _lesion, _ahead)) == set()
    assert _b_t8(events) == [OLDER.event_id, a3.event_id]
    assert _critical(events) == (CRITICAL_UNMARKED if compression else [])


# ---- 6. systemic: D1 with the lesion's older records folded by retention ------------------------------------------
@pytest.mark.parametrize("correction", ["amended", "entered-in-error"])
def test_r32pin2_sys_d1_retained_decides_as_the_whole_history(correction: str) -> None:
    events = pin._sys_d1(correction, "it")
    ct = next(e for e in events if isinstance(e, ImagingFinding))
    older = [
        ct.model_copy(
            update={"event_id": uuid.UUID(int=0x3880 + k, version=4), "occurred_at": ct.recorded_at - (k + 2) * DAY}
            | {"recorded_at": ct.recorded_at - (k + 2) * DAY, "status": "suspected", "modality": "bone_scan"}
        )
        for k in range(4)
    ]
    first = events.index(ct)
    events = [*events[:first], *older, *events[first:]]
    kept, whole = _sys_state(events), _sys_state(events, keep_all=True)
    assert len(kept.findings) < len(whole.findings), "older records folded by retention"
    start, reference = _plan(kept).get("antiresorptive-start"), _plan(whole).get("antiresorptive-start")
    assert start is not None and reference is not None
    assert start.model_dump_json() == reference.model_dump_json()
    assert "À vérifier" in start.title and events[-1].event_id in _named(start)  # suspended, never withdrawn silently


DAY = timedelta(days=1)
