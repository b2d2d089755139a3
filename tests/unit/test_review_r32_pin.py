"""Review R32-PIN of 7c05cdb (HAZ-27-FUTURE-HIDES: `corrections.pinned` in both planners' view B). With a correction
dated ahead of the CURRENT record it corrects held back (`pending_ahead`), view B folds the other records again, each
amendment naming none first pinned to its whole-set target (`pinned`), so that leaving a record out never re-targets
an amendment onto today's record.

The semantic reference for view B ("the current one holds"): the history with the corrections held back never sent,
each remaining amendment naming none made to name, in the message itself, the record the fold resolves it to on the
whole history (`_pinned_events`: resolved here, not by `corrections.target`), decided by the planner from scratch.

Held (guards):
1. (Q1) On random histories (amendments naming none current and dated ahead, entries in error, amendments of
   amendments, copies dated ahead), at every state where a correction is held back, the radiotherapy planner's view
   B (each lesion's findings, every assessed name and opinion) and B's decided items are the reference's; some of
   those states hold an amendment pinned to a record held back. The systemic planner's view B (lesions, response, life
   expectancies) is the same on the retained state, the whole history (`keep_all`) and the reference, decided now and
   later while the correction held back is still ahead.
2. (Q2) Chains with a correction held back elsewhere (so `pinned` runs): today's compression amended ahead naming none,
   that amendment entered in error by a current record: nothing brought back (the fold's answer); a current amendment
   naming none after an amendment naming none dated ahead: the current one in force, today's superseded one not read.
3. (Q3) Findings moved to another lesion by their amendments: no finding in two lesions of B, none in a lesion not its
   own.
4. (Q4) With nothing held back, or held back with no amendment naming none, every plan and `next_due` (radiotherapy
   planner) and every view, plan and `next_due` (systemic planner) is 7c05cdb~1's, byte for byte.

Defects (pre-existing: 7c05cdb's parent gives the same answers, pinned plays no part; strict xfails until the lead
fixed both in session 32: `corrections.fixes_ahead` reads the version in force of a chain whose record is dated
ahead, those held back left out, `pending_ahead` in the order recorded; view B keeps every lesion holding a finding
A does not count):
- D1 (Q2) a record dated ahead whose version in force is CURRENT (a producer's clock ahead stamps a finding 20 min
  ahead; a current amendment of it, naming it or naming none, says "cord compression" today), then a correction dated
  ahead naming the record by its first ID (or an amendment naming none, which resolves to that record: its lesion's
  newest by clinical time): `fixes_ahead` looks at the date of the record NAMED, ahead, so the correction "goes with
  it" and is not held back; the whole-set fold makes the correction the version in force and B drops the current
  amendment. Radiotherapy planner: today's compression emergency (RT-MSCC L1397-1402) gone, nothing published, where
  without the correction it is critical; an amendment and an entry in error alike. Systemic planner: the lesion
  confirmed today by the current amendment is gone from B, so the whole plan is empty: the start of the
  anti-resorptive (SYS-AR-START L1063-1074) withdrawn silently, never marked "à vérifier". Seen first in an unpinned
  reference (the corrections held back removed, amendments naming none left naming none): it differs from B on 5
  states of 1500 random histories, each time because an amendment dated ahead, re-targeted there, resolves to a
  record dated ahead whose version in force is current and drops it; B, pinned, keeps it (7c05cdb is right there).
- D2 (Q3, radiotherapy planner, d66e0bc's `revived`) a finding moved to another lesion by a current amendment (T8 to
  T9, "cord compression" today) and a correction dated ahead naming the original (or an amendment naming none in the
  original's lesion, which resolves to it): held back, correctly, but view B keeps only A's lesions and the lesion of
  the record the correction NAMES (`revived`: T8); the chain's version in force is in T9, which A does not read (the
  correction ahead is in force there): B drops T9, the current compression is lost, the emergency (RT-MSCC
  L1397-1402) gone with no word. The systemic planner (`changed`: the lesions of every record counting differently)
  has no such defect. Found by guard 1's generator with moves (`_history(seed, moves=True)`, seeds 0-1499: 13
  histories differ from the reference, every one this defect: 279, 524, 745, 795, 1001, 1015, 1074, 1260, 1295,
  1308, 1336, 1349, 1473; without moves, seeds 0-1499, none differs)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.plan import PlanItem
from services.radiotherapy_planner import as_of, domain, memo
from services.radiotherapy_planner.facts import LocalState, lesions
from services.systemic_planner import as_of as sys_as_of
from services.systemic_planner import domain as sys_domain
from services.systemic_planner import memo as sys_memo
from services.systemic_planner import rules as sr
from services.systemic_planner.domain import SystemicState
from shared.clinical.corrections import pending_ahead
from tests.unit import test_dt_rt_differential as drt
from tests.unit import test_review_r32_fixes_ahead as fa
from tests.unit.test_dt_rt_cases import _state
from tests.unit.test_dt_sys_differential import NOW as SYS_NOW
from tests.unit.test_issue18_local import NOW, femur, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD
from tests.unit.test_review_r29sys_future_pruned import LATER
from tests.unit.test_review_r32_fa2 import _marked
from tests.unit.test_review_r32_fixes_ahead import OLDER, TODAY_S, _correction, _current_fix_of
from tests.unit.test_review_r32_retain import _Gen
from tests.unit.test_review_r32_sys import _named, _plan
from tests.unit.test_review_r32_sys import _state as _sys_state
from tests.unit.test_systemic_rules import NOW as RULES_NOW
from tests.unit.test_systemic_rules import lab, le, met, oligo, ready

PARENT = "7c05cdb~1"
SIGNS = ("cord_compression", "epidural_extension", "neurological_deficit", "cement_allergy", "status")
MINUTE = timedelta(minutes=1)
Record = ImagingFinding | ClinicalAssessment


def _parent(path: str, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`path` as it was before 7c05cdb (test_review_r32_fixes_ahead's loader, at another commit)."""
    monkeypatch.setattr(fa, "BASE", PARENT)
    return fa._base(path, name)


def _group(e: Record) -> str:
    return e.lesion_id if isinstance(e, ImagingFinding) else "patient"


def _pinned_events(events: list[Message]) -> list[Message]:
    """Each amendment naming none made to name the record the fold resolves it to on the whole history (its group's
    newest record by clinical time, not an entry in error, recorded before it: corrections.py's module docstring),
    resolved here from the messages."""
    rows = [e for e in events if isinstance(e, Record)]
    out: list[Message] = []
    for e in events:
        if isinstance(e, Record) and e.record_status == "amended" and e.corrects is None:
            earlier = [
                x
                for x in rows
                if type(x) is type(e)
                and x.event_id != e.event_id
                and x.record_status != "entered-in-error"
                and _group(x) == _group(e)
                and x.recorded_at < e.recorded_at
            ]
            if earlier:
                named = max(earlier, key=lambda x: (x.occurred_at, x.recorded_at, x.event_id.int))
                e = e.model_copy(update={"corrects": named.event_id})
        out.append(e)
    return out


# ---- the radiotherapy planner's histories -----------------------------------------------------------------------
def _history(seed: int, moves: bool = False) -> list[Message]:
    """test_dt_rt_differential's past records, up to two copies dated ahead, then two to six corrections of any record
    held (amendments of amendments, entries in error, amendments naming none recorded after every other), half dated
    ahead; with `moves`, some finding amendments move it to the other spinal lesion (T8 <-> T9)."""
    rnd = random.Random(seed)
    events = [drt._event(rnd, *row) for row in drt._past(rnd)]
    recorded = NOW - 30 * MINUTE
    for _ in range(rnd.randint(0, 2)):
        x = rnd.choice([e for e in events if isinstance(e, Record)])
        recorded += timedelta(seconds=1)
        new_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
        events.append(
            x.model_copy(update={"event_id": new_id, "occurred_at": drt._ahead(rnd), "recorded_at": recorded})
        )
    for _ in range(rnd.randint(2, 6)):
        rows = [e for e in events if isinstance(e, Record)]
        x = rnd.choice([e for e in rows if e.record_status != "entered-in-error"] or rows)
        kind = rnd.choice(("amended", "amended", "entered-in-error"))
        named = kind == "entered-in-error" or rnd.random() < 0.4
        recorded += timedelta(seconds=1)
        when = drt._ahead(rnd) if rnd.random() < 0.5 else NOW - rnd.randint(1, 50) * MINUTE
        update: dict[str, Any] = {
            "event_id": uuid.UUID(int=rnd.getrandbits(128), version=4),
            "occurred_at": when,
            "recorded_at": recorded,
            "record_status": kind,
            "corrects": x.event_id if named else None,
        }
        if kind == "amended":
            for n in SIGNS[:4]:
                v = getattr(x, n, None)
                if v is not None and rnd.random() < 0.6:
                    update[n] = not v
            if moves and isinstance(x, ImagingFinding) and rnd.random() < 0.3:
                level = "T8" if x.lesion_id == "t9" else "T9"
                update |= {"lesion_id": level.lower(), "vertebral_level": level, "skeletal_site": "spine"}
        events.append(x.model_copy(update=update))
    return events


def _held(s: LocalState) -> set[uuid.UUID]:
    def ahead(t: datetime) -> bool:
        return as_of.is_future(t, NOW)

    return {*pending_ahead(s.findings, lambda f: f.lesion_id, ahead), *pending_ahead(s.assessments, _patient, ahead)}


def _patient(_: ClinicalAssessment) -> str:
    return "patient"


def _view(s: LocalState) -> tuple[Any, ...]:
    b, by = as_of.view_b(s, lesions(s), NOW)
    found = {
        lid: [(f.event_id, f.lesion_id, tuple(getattr(f, n, None) for n in SIGNS)) for f in x.history]
        for lid, x in by.items()
    }
    assessed = {k: (f.event_id, f.value) for k, f in b.assessed.items()}
    return found, assessed, {k: o.event_id for k, o in b.opinions.items()}


def _b_items(s: LocalState) -> dict[str, Any]:
    _, b, _, _ = drt._three(s, NOW)
    return {k: i.content for k, i in b.items()}


def _pinned_to_held(events: list[Message], held: set[uuid.UUID]) -> bool:
    """An amendment naming none whose whole-set target is held back (what `pinned` keeps from re-targeting)."""
    bare = {e.event_id for e in events if isinstance(e, Record) and e.record_status == "amended" and e.corrects is None}
    return any(isinstance(e, Record) and e.event_id in bare and e.corrects in held for e in _pinned_events(events))


# ---- 1. view B is the history without the corrections held back -------------------------------------------------
def test_r32pin_rt_view_b_is_the_history_without_the_corrections_held_back() -> None:
    counts: Counter[str] = Counter()
    for seed in range(500):
        events = _history(seed)
        for n in range(1, len(events) + 1):
            prefix = events[:n]
            s = _state(prefix)
            held = _held(s)
            if not held:
                continue
            counts["held"] += 1
            counts["pinned to a record held back"] += _pinned_to_held(prefix, held)
            reference = _state([e for e in _pinned_events(prefix) if e.event_id not in held])
            assert _view(s) == _view(reference), (seed, n)
            assert _b_items(s) == _b_items(reference), (seed, n)
    assert counts["held"] > 500 and counts["pinned to a record held back"] > 20, counts


def _sys_view(s: SystemicState, now: datetime) -> Any:
    made = sys_as_of.views(s, sr.AsOf(now=now, memo=False))
    return None if made is None else (made.current.lesions, made.current.response, made.current.life_expectancies)


def _sys_held(s: SystemicState, now: datetime) -> dict[uuid.UUID, Any]:
    at = sr.AsOf(now=now, memo=False)

    def ahead(t: datetime) -> bool:
        return sys_as_of._ahead(t, at)

    return {
        **pending_ahead(s.findings, lambda x: x.lesion_id, ahead),
        **pending_ahead(s.assessments, lambda _: "patient", ahead),
    }


def _sys_build(events: list[Message], nows: list[datetime], keep_all: bool) -> SystemicState:
    s = SystemicState()
    for e, now in zip(events, nows, strict=True):
        s, _ = sys_domain.apply_event(s, e, sr.AsOf(now=now), keep_all=keep_all)
    return s


def _follow_up(g: _Gen, held: dict[uuid.UUID, Any]) -> Message:
    """An amendment naming none dated an hour after a correction held back, of its group, recorded after every
    record (the producer whose clock is ahead amending its own report again)."""
    x = g.rnd.choice(sorted(held.values(), key=lambda y: y.event_id.int))
    g.t += MINUTE
    update = {"event_id": uuid.UUID(int=g.rnd.getrandbits(128), version=4), "record_status": "amended"}
    update |= {"corrects": None, "occurred_at": x.occurred_at + timedelta(hours=1), "recorded_at": g.t}
    g.counts["follow-up naming none"] += 1
    return next(e for e in g.events if e.event_id == x.event_id).model_copy(update=update)


def test_r32pin_sys_view_b_retained_whole_and_without_the_corrections_held_back_agree() -> None:
    """test_review_r32_retain's generator, and now and then an amendment naming none dated ahead after a correction
    held back (`_follow_up`: pinned to it): B of the retained state = B of the whole history = B of the whole history
    without the corrections held back (amendments naming none pinned in the messages), decided at the state's `now`
    and halfway to the moment the soonest correction held back becomes current."""
    counts: Counter[str] = Counter()
    sys_memo.clear()
    try:
        for seed in range(12):
            g = _Gen(300 + seed)
            kept, full, now = SystemicState(), SystemicState(), SYS_NOW
            events: list[Message] = []
            nows: list[datetime] = []
            queue: list[Message] = list(g.events)
            steps = 0
            while queue or steps < 36:
                if not queue:
                    steps += 1
                    e = g.step()
                    if e is None:
                        continue
                else:
                    e = queue.pop(0)
                now = max(now, e.recorded_at + MINUTE)
                events.append(e)
                nows.append(now)
                kept, _ = sys_domain.apply_event(kept, e, sr.AsOf(now=now))
                full, _ = sys_domain.apply_event(full, e, sr.AsOf(now=now), keep_all=True)
                held = _sys_held(full, now)
                if not held:
                    continue
                counts["held"] += 1
                counts["pinned to a record held back"] += _pinned_to_held(events, set(held))
                soonest = min(x.occurred_at for x in held.values()) - sr.Recency().future_tolerance
                for at in (now, now + (soonest - now) / 2):
                    # what is held back at `at` (a correction dated ahead may be current by then and un-hold another)
                    out = _sys_held(full, at)
                    rows = [(x, t) for x, t in zip(_pinned_events(events), nows, strict=True) if x.event_id not in out]
                    reference = _sys_build([x for x, _ in rows], [t for _, t in rows], keep_all=True)
                    assert _sys_view(kept, at) == _sys_view(full, at) == _sys_view(reference, at), (seed, len(events))
                if steps and not queue and g.rnd.random() < 0.4:
                    follow = _follow_up(g, held)
                    g.events.append(follow)
                    queue.append(follow)
    finally:
        sys_memo.clear()
    print(f"\nR32-PIN systemic: {counts}")
    assert counts["held"] > 60 and counts["pinned to a record held back"] > 20, counts


# ---- 2. chains mixing named and resolved targets ------------------------------------------------------------------
FEMUR_TODAY = femur(at=NOW - timedelta(hours=2), pathological_fracture=True)


def _elsewhere() -> list[Message]:
    """An unrelated correction held back (an entry in error dated ahead of today's femur finding): `pinned` runs."""
    return [FEMUR_TODAY, _correction(FEMUR_TODAY, "entered-in-error", 0x3701)]


def _b_t8(events: list[Message]) -> list[uuid.UUID]:
    s = _state(events)
    assert _held(s), "a correction held back"
    _, by = as_of.view_b(s, lesions(s), NOW)
    return [f.event_id for f in by["t8"].history] if "t8" in by else []


def test_r32pin_an_entry_in_error_of_an_amendment_naming_none_ahead_brings_back_nothing_when_pinning() -> None:
    """Today's compression <- an amendment naming none dated ahead ("none") <- a current entry in error of it: the fold
    withdraws the amendment and never brings back what it replaced; with a correction held back elsewhere (pinned
    runs) B reads last month's "none" only, as the whole set does; no emergency published."""
    ahead = _correction(TODAY_S, "amended", 0x3702, corrects=None, cord_compression=False)
    withdrawn = _current_fix_of(ahead, "entered-in-error", 0x3703)
    events = [OLDER, TODAY_S, ahead, withdrawn, *_elsewhere()]
    assert _b_t8(events) == [OLDER.event_id]
    assert [x for x in _marked(events) if x[0] == "critical"] == []


@pytest.mark.parametrize("compression", [True, False])
def test_r32pin_a_current_amendment_naming_none_after_one_dated_ahead_is_in_force_when_pinning(
    compression: bool,
) -> None:
    """Today's compression <- an amendment naming none dated ahead <- a current amendment naming none recorded after
    it (resolved to the one ahead, the lesion's newest by clinical time): the current one counts in B, today's
    superseded record is not read; its value decides (critical, unmarked, or nothing)."""
    ahead = _correction(TODAY_S, "amended", 0x3704, corrects=None, cord_compression=not compression)
    current = _current_fix_of(ahead, "amended", 0x3705, corrects=None, cord_compression=compression)
    events = [OLDER, TODAY_S, ahead, current, *_elsewhere()]
    assert _b_t8(events) == [OLDER.event_id, current.event_id]
    mscc = [x for x in _marked(events) if x[0] == "critical"]
    assert mscc == ([("critical", "recommended", False)] if compression else [])


def _ahead_original(correction: str, names: str, current_names: str) -> list[Message]:
    """D1: a finding dated 20 min ahead ("no compression"), a current amendment of it ("compression", naming it or
    none), then a correction dated ahead naming the finding (or an amendment naming none: it resolves to the finding,
    the lesion's newest by clinical time)."""
    original = vertebra(at=AHEAD, cord_compression=False, status="confirmed").model_copy(
        update={"event_id": uuid.UUID(int=0x3710, version=4), "recorded_at": NOW - 3 * MINUTE}
    )
    current = _current_fix_of(original, "amended", 0x3711, cord_compression=True).model_copy(
        update={"recorded_at": NOW - 2 * MINUTE, "corrects": original.event_id if current_names == "it" else None}
    )
    later = _correction(original, correction, 0x3712, cord_compression=False).model_copy(
        update={"occurred_at": AHEAD + 10 * MINUTE, "corrects": original.event_id if names == "it" else None}
    )
    return [OLDER, original, current, later]


D1_CASES = [("amended", "it"), ("amended", "none"), ("entered-in-error", "it")]


@pytest.mark.parametrize("current_names", ["it", "none"])
@pytest.mark.parametrize(("correction", "names"), D1_CASES)
def test_r32pin_d1_premise_the_current_amendment_alone_is_today_s_emergency(
    correction: str, names: str, current_names: str
) -> None:
    """Without the correction dated ahead, the current amendment's compression is the emergency (unmarked)."""
    *before, _ = _ahead_original(correction, names, current_names)
    assert [x for x in _marked(before) if x[0] == "critical"] == [("critical", "recommended", False)]


@pytest.mark.parametrize("current_names", ["it", "none"])
@pytest.mark.parametrize(("correction", "names"), D1_CASES)
def test_r32pin_d1_a_correction_ahead_of_an_original_ahead_keeps_its_current_version_s_emergency_marked(
    correction: str, names: str, current_names: str
) -> None:
    events = _ahead_original(correction, names, current_names)
    assert [x for x in _marked(events) if x[0] == "critical"] == [("critical", "recommended", True)]


def _sys_d1(correction: str, current_names: str) -> list[Message]:
    """D1 for the systemic planner: the only lesion's CT dated an hour ahead (a bone scan, "suspected"), a current
    amendment of it "confirmed" (today's metastasis: SYS-AR-START L1063-1074), a correction dated ahead naming the CT
    ("resolved", or an entry in error)."""
    hour = timedelta(hours=1)
    ct = met(0).model_copy(
        update={"event_id": uuid.UUID(int=0x3720, version=4), "occurred_at": LATER + hour, "recorded_at": RULES_NOW}
        | {"status": "suspected", "modality": "bone_scan"}
    )
    second = timedelta(seconds=1)
    current = ct.model_copy(
        update={"event_id": uuid.UUID(int=0x3721, version=4), "occurred_at": RULES_NOW + second}
        | {"recorded_at": RULES_NOW + second, "status": "confirmed", "modality": "ct", "record_status": "amended"}
        | {"corrects": ct.event_id if current_names == "it" else None}
    )
    later = ct.model_copy(
        update={"event_id": uuid.UUID(int=0x3722, version=4), "occurred_at": LATER + 2 * hour}
        | {"recorded_at": RULES_NOW + 2 * second, "status": "resolved", "record_status": correction}
        | {"corrects": ct.event_id}
    )
    common = [le(1, 12.0), lab(2, "creatinine_clearance", 75.0, "mL/min"), *ready(), oligo(6, "multi_metastatic")]
    return [*common, ct, current, later]


def _start(events: list[Message]) -> PlanItem | None:
    return _plan(_sys_state(events)).get("antiresorptive-start")


@pytest.mark.parametrize("current_names", ["it", "none"])
@pytest.mark.parametrize("correction", ["amended", "entered-in-error"])
def test_r32pin_sys_d1_premise_the_current_amendment_starts_the_anti_resorptive(
    correction: str, current_names: str
) -> None:
    *before, _ = _sys_d1(correction, current_names)
    start = _start(before)
    assert start is not None and start.status == "recommended"


@pytest.mark.parametrize("current_names", ["it", "none"])
@pytest.mark.parametrize("correction", ["amended", "entered-in-error"])
def test_r32pin_sys_d1_a_correction_ahead_of_a_ct_ahead_never_withdraws_the_start_silently(
    correction: str, current_names: str
) -> None:
    events = _sys_d1(correction, current_names)
    start = _start(events)
    assert start is not None and events[-1].event_id in _named(start)


# ---- 3. linked lesions ------------------------------------------------------------------------------------------
def test_r32pin_rt_no_finding_is_in_two_lesions_of_b_nor_in_another_lesion_than_its_own() -> None:
    states = 0
    for seed in range(400):
        events = _history(seed, moves=True)
        for n in range(1, len(events) + 1):
            s = _state(events[:n])
            if not _held(s):
                continue
            states += 1
            found, _, _ = _view(s)
            ids = [i for rows in found.values() for i, _, _ in rows]
            assert len(ids) == len(set(ids)), (seed, n)
            assert all(lid == own for lid, rows in found.items() for _, own, _ in rows), (seed, n)
    assert states > 300, states


def _moved(names: str) -> list[Message]:
    """D2: last month's T8 finding ("no compression") amended today into lesion T9 with a cord compression (current:
    the version in force); a correction dated ahead naming the original ("no compression"), or naming none in T8 (it
    resolves to the original, T8's newest)."""
    moved = TODAY_S.model_copy(
        update={"event_id": uuid.UUID(int=0x3730, version=4), "record_status": "amended", "corrects": OLDER.event_id}
        | {"lesion_id": "t9", "vertebral_level": "T9"}
    )
    later = _correction(OLDER, "amended", 0x3731, cord_compression=False)
    return [OLDER, moved, later if names == "it" else later.model_copy(update={"corrects": None})]


@pytest.mark.parametrize("names", ["it", "none"])
def test_r32pin_d2_premise_the_moved_compression_is_today_s_emergency_and_the_correction_is_held(names: str) -> None:
    *before, later = _moved(names)
    assert [(i.key, i.severity, "À vérifier" in i.text_fr) for i in fa._mscc(before)] == [
        ("t9:mscc", "critical", False)
    ]
    assert _held(_state([*before, later])) == {later.event_id}


@pytest.mark.parametrize("names", ["it", "none"])
def test_r32pin_d2_a_correction_ahead_of_a_moved_finding_keeps_the_moved_lesion_s_emergency_marked(names: str) -> None:
    events = _moved(names)
    s = _state(events)
    _, by = as_of.view_b(s, lesions(s), NOW)
    assert "t9" in by and [f.event_id for f in by["t9"].history] == [events[1].event_id]
    assert [x for x in _marked(events) if x[0] == "critical"] == [("critical", "recommended", True)]


@pytest.mark.parametrize("seed", [279, 524, 1001])
def test_r32pin_d2_with_moves_view_b_is_the_history_without_the_corrections_held_back(seed: int) -> None:
    events = _history(seed, moves=True)
    for n in range(1, len(events) + 1):
        s = _state(events[:n])
        held = _held(s)
        if held:
            reference = _state([e for e in _pinned_events(events[:n]) if e.event_id not in held])
            assert _view(s)[0] == _view(reference)[0], n


def test_r32pin_d2_is_not_7c05cdb_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        domain, "as_of", _parent("services/radiotherapy_planner/as_of.py", "_rt_as_of_r32pin2", monkeypatch)
    )
    for names in ("it", "none"):
        assert [x for x in _marked(_moved(names)) if x[0] == "critical"] == []


# ---- 4. nothing held back: 7c05cdb~1's bytes ---------------------------------------------------------------------
def _no_pin_needed(s_findings: Any, s_assessments: Any, held: Any) -> bool:
    """Nothing held back, or no amendment naming none held at all (`pinned` is then the identity)."""
    rows = [*s_findings.values(), *s_assessments.values()]
    return not held or not any(x.record_status == "amended" and x.corrects is None for x in rows)


def _rt_decisions(histories: list[list[Message]]) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for events in histories:
        for n in range(1, len(events) + 1):
            memo.clear()
            s = _state(events[:n])
            if not _no_pin_needed(s.findings, s.assessments, _held(s)):
                out.append(None)
                continue
            memo.clear()
            plan = [x.model().model_dump_json() for x in domain.build_plan(s, now=NOW)]
            out.append([*plan, str(domain.next_due(s, NOW))])
    return out


def test_r32pin_rt_with_nothing_held_back_every_plan_and_next_due_is_the_parent_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    histories = [_history(seed, moves=seed % 2 == 0) for seed in range(120)]
    mine = _rt_decisions(histories)
    monkeypatch.setattr(
        domain, "as_of", _parent("services/radiotherapy_planner/as_of.py", "_rt_as_of_r32pin3", monkeypatch)
    )
    theirs = _rt_decisions(histories)
    memo.clear()
    assert sum(x is not None for x in mine) > 300
    assert mine == theirs


def _sys_decisions(seeds: range) -> list[list[str] | None]:
    out: list[list[str] | None] = []
    for seed in seeds:
        g = _Gen(500 + seed)
        for _ in range(30):
            g.step()
        s, now = SystemicState(), SYS_NOW
        for e in g.events:
            now = max(now, e.recorded_at + MINUTE)
            s, _ = sys_domain.apply_event(s, e, sr.AsOf(now=now, memo=False))
            if not _no_pin_needed(s.findings, s.assessments, _sys_held(s, now)):
                out.append(None)
                continue
            at = sr.AsOf(now=now, memo=False)
            views = sys_domain.as_of.views(s, at)  # type: ignore[attr-defined]
            plan = [x.model_dump_json() for x in sys_domain.build_plan(s, at)]
            shown = None if views is None else (views.current.model_dump_json(), views.redated.model_dump_json())
            out.append([*plan, str(at.next_due()), str(shown)])
    return out


def test_r32pin_sys_with_nothing_held_back_every_view_plan_and_next_due_is_the_parent_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeds = range(16)
    sys_memo.clear()
    try:
        mine = _sys_decisions(seeds)
        old = _parent("services/systemic_planner/as_of.py", "_sys_as_of_r32pin", monkeypatch)
        with monkeypatch.context() as mp:
            mp.setattr(sys_domain, "as_of", old)
            theirs = _sys_decisions(seeds)
    finally:
        sys_memo.clear()
    assert sum(x is not None for x in mine) > 200
    assert mine == theirs
