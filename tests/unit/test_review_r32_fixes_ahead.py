"""Review R32-FA (HAZ-27-FUTURE-HIDES, commit 60da1bf on s32-fixes-ahead: one rule `corrections.fixes_ahead` for a
correction dated ahead of a CURRENT record, read by both planners; the radiotherapy planner's view B now resolves an
amendment naming none to its target and looks for such corrections among every finding held).

Rule R29B: in view B, a correction (amendment or entry in error) dated ahead of the current record it corrects is not
yet in force: that record stands as it is until the correction's date (never the older version it superseded, never
unknown); the merge never hides a current emergency (RT-MSCC L1397-1402, critical), marks it "à vérifier" and names
the record dated ahead.

Held (guards):
1. An amendment naming none dated ahead of today's compression or epidural extension: the emergency is kept critical
   and marked, the amendment shown (f4f7e18: no item at all); of a cement allergy: the cementoplasty never
   "recommended" (IR-CEMENT L2559-2643). On random histories an amendment naming none decides exactly as the same
   amendment naming its target (f4f7e18: not so, seed 42).
2. An entry in error dated ahead of today's compression, with another record dated ahead: today's emergency, marked
   (f4f7e18: nothing). But see D1-D4.
3. With no record dated ahead the radiotherapy planner's every message is the reference's (f4f7e18, main before the
   commit; its `as_of.py` swapped in); with records dated ahead it differs only where a finding or assessment
   correction dated ahead of a current record is held (`fixes_ahead`). The systemic
   planner's output is the reference's byte for byte, records dated ahead and amendments naming none included (a
   refactor: SYS-AR-START L1063-1074, SYS-SCHEDULE L1136-1140 unchanged). Warm equals cold.
4. Cost: `fixes_ahead` resolves each amendment naming none dated ahead on every finding held (`target`, O(records)),
   twice per view B, and view B is made twice per event (plan, next_due): O(k x n). Measured on view_b alone, k
   lesions each with today's finding amended ahead naming none: k=100 6 ms, 200 23 ms, 400 91 ms, 800 351 ms
   (f4f7e18: < 1 ms). Quadratic, but k is the number of such amendments held; guarded at a 100x margin.
5. A current amendment of an amendment naming none dated ahead: in force, nothing brought back.

Defects found, each a strict xfail until fixed in session 32 (the lead: `corrections.pending_ahead`, the systemic
planner's `_pending` moved there and read by the radiotherapy planner's view B; `as_of.ahead` lists a correction
dated ahead of a current record, so the plan is decided twice and the item names it; view B keeps a lesion only it
reads, after A's; with a correction held back every assessed name is read again); they now pass:
- D1 (Q2) an entry in error dated ahead of today's compression, alone: the emergency disappears silently (f4f7e18
  too). `as_of.ahead` lists no correction (the entry never counts; the record it withdraws is not in any history),
  so no view is made: the commit's new trigger (every finding held) only works when some OTHER fact is dated ahead.
- D2 (Q2) with another fact dated ahead the emergency is published marked, but the record named is that other fact,
  not the entry in error that makes the difference.
- D3 (Q2) the lesion's only finding entered in error ahead (another fact dated ahead): B re-folds the lesion, then
  `view_b` keeps only A's lesions (`if lid in by_lesion`; build_plan too): the emergency is lost.
- D4 (Q2, assessments) an entry in error dated ahead of yesterday's neurological deficit (epidural extension): the
  prevention item, unmarked; B re-reads only the names whose newest fact is dated ahead, so the entry is in force.
- D5 (Q5, a regression of 60da1bf) an amendment dated ahead (naming none, or naming today's finding) then a CURRENT
  entry in error of it, with an unrelated record dated ahead: B leaves the amendment out (`fixes_ahead`: its target
  is current), the entry in error then names nothing held, so B brings back the record the amendment superseded:
  a compression emergency published (marked, naming no record: "daté du futur ()"). f4f7e18 and the fold publish
  nothing (corrections.py: "withdrawing an amendment never brings back what it replaced"); the systemic planner's
  `_pending` handles this chain (review R31-SYS2), the radiotherapy planner has no such step."""

from __future__ import annotations

import importlib.util
import random
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.plan import PlanItem
from services.radiotherapy_planner import as_of, domain, memo
from services.radiotherapy_planner.facts import FindingFact, LocalState, lesions
from services.systemic_planner import domain as sys_domain
from services.systemic_planner import memo as sys_memo
from services.systemic_planner import rules as sr
from shared.clinical.corrections import fixes_ahead, target
from tests.unit import test_dt_rt_differential as drt
from tests.unit import test_dt_sys_differential as dsys
from tests.unit import test_review_r29rt_held as held
from tests.unit.test_dt_rt_cases import _state
from tests.unit.test_issue18_local import NOW, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD, CLEAR, DAY, _assessment, _cement, _decide, _items

BASE = "f4f7e18"  # main when 60da1bf was reviewed (its parent)
HOUR = timedelta(hours=1)


#: the modules services/systemic_planner/inputs.py was split into (session 35, a pure move)
_INPUTS_NOW = ("state", "stored", "disease", "items", "labs", "drug_replay", "treatments", "drug_checks")
_FROM_INPUTS = re.compile(r"^from services\.systemic_planner\.inputs import (?:\(([^)]*)\)|([^\n(]*))$", re.M)


def today_imports(src: str) -> str:
    """An old source with its imports from the systemic planner's inputs.py read from where each name is today, so
    that it loads beside today's modules."""

    def now(m: re.Match[str]) -> str:
        names = [n.strip() for n in (m.group(1) if m.group(1) is not None else m.group(2)).split(",") if n.strip()]
        where = {
            n: next(x for x in _INPUTS_NOW if hasattr(importlib.import_module(f"services.systemic_planner.{x}"), n))
            for n in names
        }
        return "\n".join(f"from services.systemic_planner.{where[n]} import {n}" for n in names)

    return _FROM_INPUTS.sub(now, src)


def _base(path: str, name: str) -> ModuleType:
    """`path` as it was on BASE, loaded beside today's modules."""
    root = Path(__file__).resolve().parents[2]
    try:
        src = subprocess.run(
            ["git", "show", f"{BASE}:{path}"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"{BASE} not in this clone")
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    exec(compile(today_imports(src), f"{BASE}:{path}", "exec"), mod.__dict__)
    return mod


def _correction(x: ImagingFinding, status: str, n: int, **update: Any) -> ImagingFinding:
    """A correction of the finding `x` dated ahead (a producer's clock 20 min ahead), recorded at NOW."""
    fields: dict[str, Any] = {"corrects": x.event_id, **update}
    return x.model_copy(
        update={"event_id": uuid.UUID(int=n, version=4), "occurred_at": AHEAD, "recorded_at": NOW}
        | {"record_status": status}
        | fields
    )


def _current_fix_of(x: ImagingFinding, status: str, n: int, **update: Any) -> ImagingFinding:
    """A CURRENT correction of `x` (a minute ago), recorded after it."""
    fields: dict[str, Any] = {"record_status": status, "corrects": x.event_id, **update}
    return x.model_copy(
        update={"event_id": uuid.UUID(int=n, version=4), "occurred_at": NOW - timedelta(minutes=1)}
        | {"recorded_at": NOW + timedelta(seconds=1)}
        | fields
    )


def _mscc(events: list[Message]) -> list[PlanItem]:
    return _items(events, "RT-MSCC")


TODAY_S = vertebra(at=NOW - HOUR, cord_compression=True, status="confirmed")
OLDER = vertebra(at=NOW - 30 * DAY, cord_compression=False, status="confirmed")
FRAIL_AHEAD = _assessment(AHEAD, frail=True)  # an unrelated record of the patient dated ahead
L2_AHEAD = vertebra("l2", "L2", at=AHEAD, status="confirmed").model_copy(update={"recorded_at": NOW})


# ---- 1. an amendment naming none dated ahead ------------------------------------------------------------------------
@pytest.mark.parametrize("named", [False, True], ids=["naming_none", "naming_it"])
def test_r32fa_a_compression_amended_ahead_to_none_keeps_today_s_emergency_marked_and_named(named: bool) -> None:
    amended = _correction(TODAY_S, "amended", 0x3201, cord_compression=False)
    if not named:
        amended = amended.model_copy(update={"corrects": None})
    [mscc] = _mscc([OLDER, TODAY_S, amended])
    assert (mscc.status, mscc.severity) == ("recommended", "critical"), mscc.title
    assert "À vérifier" in mscc.text_fr
    assert amended.event_id in {i.source_event_id for i in mscc.inputs}


def test_r32fa_an_epidural_extension_amended_ahead_to_none_naming_none_keeps_the_deficit_s_emergency() -> None:
    """RT-MSCC (L1397-1402): an epidural extension imaged today with yesterday's deficit, "compression médullaire à
    éliminer"; the extension amended ahead (naming none) to "none"."""
    extension = vertebra(at=NOW - HOUR, epidural_extension=True, status="confirmed")
    amended = _correction(extension, "amended", 0x3202, corrects=None, epidural_extension=False)
    events: list[Message] = [extension, _assessment(NOW - DAY, neurological_deficit=True), amended]
    [mscc] = _mscc(events)
    assert mscc.severity == "critical" and "à éliminer" in mscc.title and "À vérifier" in mscc.text_fr


@pytest.mark.parametrize("allergy_before", [True, False], ids=["allergy_lifted_ahead", "allergy_found_ahead"])
def test_r32fa_a_cement_allergy_amended_ahead_naming_none_never_leaves_the_cementoplasty_recommended(
    allergy_before: bool,
) -> None:
    """IR-CEMENT (Tableau 8, L2590-2618): an absolute contraindication. Lifted by an amendment dated ahead: current
    data still hold it (the amendment not yet in force), A reads it lifted: never "recommended", said to verify.
    Found by an amendment dated ahead: A reads it, not recommended (both hold on f4f7e18 as well)."""
    original = _assessment(**{**CLEAR, "cement_allergy": allergy_before})
    amended = _assessment(AHEAD, record_status="amended", **{**CLEAR, "cement_allergy": not allergy_before})
    [cement] = _items([*_cement(original), amended], "IR-CEMENT")
    assert cement.status != "recommended", (cement.status, cement.title)
    assert "vérifier" in cement.text_fr.lower()


def _naming_none(events: list[Message]) -> list[Message] | None:
    """The history with each amendment that names its group's newest record recorded before it made to name none
    (what the fold resolves it to: the same record); None when there is no such amendment."""
    rows = [e for e in events if isinstance(e, ImagingFinding | ClinicalAssessment)]
    out: list[Message] = []
    changed = False
    for e in events:
        if isinstance(e, ImagingFinding | ClinicalAssessment) and e.record_status == "amended":
            bare = e.model_copy(update={"corrects": None})
            same = [x for x in rows if type(x) is type(e)]
            group: Any = (lambda f: f.lesion_id) if isinstance(e, ImagingFinding) else (lambda _: "patient")
            if target(bare, same, group) == e.corrects:
                out.append(bare)
                changed = True
                continue
        out.append(e)
    return out if changed else None


def _published(events: list[Message]) -> list[tuple[str, str, str, str, str]]:
    _, items = _decide(events)
    return [(i.key, i.status, i.severity, i.title, i.text_fr) for i in items]


def test_r32fa_an_amendment_naming_none_decides_as_the_same_amendment_naming_its_target() -> None:
    """Random histories with records and corrections dated ahead (test_dt_rt_differential.history, amended ones whose
    target is the record the fold resolves an amendment naming none to): every plan item published, event by event,
    is the same whether the amendment names its record or none."""
    compared = 0
    for seed in range(240):
        events = drt.history(seed)
        bare = _naming_none(events)
        if bare is None:
            continue
        assert _published(bare) == _published(events), seed
        compared += 1
    assert compared >= 20, compared


# ---- 2. an entry in error dated ahead --------------------------------------------------------------------------------
def test_r32fa_an_entry_in_error_ahead_with_another_record_ahead_publishes_today_s_emergency_marked() -> None:
    """The commit's new trigger: today's compression stands in B (R29B), C reads it withdrawn: B's emergency, marked
    (f4f7e18: nothing, the entry read as in force)."""
    in_error = _correction(TODAY_S, "entered-in-error", 0x3203)
    [mscc] = _mscc([OLDER, TODAY_S, in_error, FRAIL_AHEAD])
    assert (mscc.status, mscc.severity) == ("recommended", "critical") and "À vérifier" in mscc.text_fr


def test_r32fa_an_entry_in_error_dated_ahead_of_today_s_compression_does_not_hide_the_emergency_silently() -> None:
    in_error = _correction(TODAY_S, "entered-in-error", 0x3204)
    found = _mscc([OLDER, TODAY_S, in_error])
    assert [(i.severity, "À vérifier" in i.text_fr) for i in found] == [("critical", True)]


def test_r32fa_the_marked_emergency_names_the_entry_in_error_dated_ahead() -> None:
    in_error = _correction(TODAY_S, "entered-in-error", 0x3205)
    [mscc] = _mscc([OLDER, TODAY_S, in_error, FRAIL_AHEAD])
    assert in_error.event_id in {i.source_event_id for i in mscc.inputs}


@pytest.mark.parametrize("other", ["patient", "lesion"])
def test_r32fa_a_lesion_whose_only_finding_is_entered_in_error_ahead_keeps_its_emergency_in_b(other: str) -> None:
    in_error = _correction(TODAY_S, "entered-in-error", 0x3206)
    s = _state([TODAY_S, in_error, FRAIL_AHEAD if other == "patient" else L2_AHEAD])
    _, b_lesions = as_of.view_b(s, lesions(s), NOW)
    assert "t8" in b_lesions
    found = _mscc([TODAY_S, in_error, FRAIL_AHEAD if other == "patient" else L2_AHEAD])
    assert [i.severity for i in found] == ["critical"]


@pytest.mark.parametrize("other", [None, "patient", "lesion"])
def test_r32fa_an_entry_in_error_dated_ahead_of_yesterday_s_deficit_does_not_hide_the_emergency(
    other: str | None,
) -> None:
    extension = vertebra(at=NOW - 12 * DAY, epidural_extension=True, status="confirmed")
    deficit = _assessment(NOW - DAY, neurological_deficit=True)
    in_error = _assessment(AHEAD, record_status="entered-in-error", corrects=str(deficit.event_id))
    events: list[Message] = [extension, deficit, in_error]
    if other is not None:
        events.append(FRAIL_AHEAD if other == "patient" else L2_AHEAD)
    [mscc] = _mscc(events)
    assert mscc.severity == "critical" and "À vérifier" in mscc.text_fr, mscc.title


# ---- 3. no record dated ahead: the reference's output; warm equals cold ----------------------------------------------
def test_r32fa_rt_with_no_record_dated_ahead_every_output_is_the_reference_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_review_r29rt_held's generator (records up to the tolerance ahead, corrections, ticks of the clock): every
    message, next_due, the final state and the rebuilt plan hash the same with f4f7e18's as_of.py."""
    old = _base("services/radiotherapy_planner/as_of.py", "services.radiotherapy_planner._as_of_r32fa_base")
    mine = [held.run(seed) for seed in range(150)]
    monkeypatch.setattr(domain, "as_of", old)
    assert [held.run(seed) for seed in range(150)] == mine


def _corrections_ahead_outside_histories(s: LocalState) -> bool:
    """A finding or assessment correction dated ahead of a current record it corrects (`fixes_ahead`, its target
    resolved as the fold does): what the session-32 fix reads differently from f4f7e18 (R32-FA D1-D5)."""

    def ahead(t: datetime) -> bool:
        return as_of.is_future(t, NOW)

    findings, assessments = list(s.findings.values()), list(s.assessments.values())
    return any(fixes_ahead(f, s.findings, ahead, findings, lambda x: x.lesion_id) for f in findings) or any(
        fixes_ahead(y, s.assessments, ahead, assessments, lambda _: "patient") for y in assessments
    )


def test_r32fa_rt_with_records_ahead_differs_from_the_reference_only_on_corrections_held_outside_the_histories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = _base("services/radiotherapy_planner/as_of.py", "services.radiotherapy_planner._as_of_r32fa_base")

    def trace(events: list[Message]) -> list[str]:
        s, out = drt._run(events)
        return [m.model_dump_json() for m in out] + [s.model_dump_json()]

    seeds = range(320)
    mine = {seed: trace(drt.history(seed)) for seed in seeds}
    why = {seed: _corrections_ahead_outside_histories(drt._run(drt.history(seed))[0]) for seed in seeds}
    monkeypatch.setattr(domain, "as_of", old)
    differing = [seed for seed in seeds if trace(drt.history(seed)) != mine[seed]]
    assert differing and all(why[seed] for seed in differing), [s for s in differing if not why[s]]


def _sys_trace(events: list[Message]) -> list[str]:
    sys_memo.clear()
    s = sys_domain.SystemicState()
    out: list[str] = []
    for e in events:
        s, o = sys_domain.apply_event(s, e, sr.AsOf(now=dsys.NOW))
        out += [s.model_dump_json(), *(x.model_dump_json() for x in o)]
    at = sr.AsOf(now=dsys.NOW)
    return [*out, *(x.model_dump_json() for x in sys_domain.build_plan(s, at)), str(at.next_due())]


def _sys_history(seed: int) -> list[Message]:
    """test_dt_sys_differential's histories (records and corrections dated ahead), a third of the amendments dated
    ahead made to name none (the fold resolves them to their lesion's newest record recorded before)."""
    rnd = random.Random(seed)
    past = dsys._past(rnd)
    ahead = dsys._ahead(rnd, past)
    bare = [
        e.model_copy(update={"corrects": None})
        if isinstance(e, ImagingFinding) and e.record_status == "amended" and rnd.random() < 0.5
        else e
        for e in ahead
    ]
    return [*past, *bare]


def test_r32fa_systemic_output_is_the_reference_s_with_records_and_amendments_naming_none_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The systemic planner's change is a refactor (its `_fixes_ahead` moved to shared/clinical/corrections.py): with
    records dated ahead, corrections among them, every state, message, plan and next_due is f4f7e18's."""
    old = _base("services/systemic_planner/as_of.py", "services.systemic_planner._as_of_r32fa_base")
    seeds = range(160)
    try:
        mine = [_sys_trace(_sys_history(seed)) for seed in seeds]
        with monkeypatch.context() as mp:
            mp.setattr(sys_domain, "as_of", old)
            theirs = [_sys_trace(_sys_history(seed)) for seed in seeds]
    finally:
        sys_memo.clear()
    assert mine == theirs
    held_none = sum(
        1
        for seed in seeds
        for e in _sys_history(seed)
        if isinstance(e, ImagingFinding) and e.record_status == "amended" and e.corrects is None
    )
    assert held_none > 20


@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=30), timedelta(hours=30)])
def test_r32fa_rt_warm_equals_cold_with_amendments_naming_none_ahead(later: timedelta) -> None:
    done = 0
    for seed in range(160):
        events = _naming_none(drt.history(seed))
        if events is None:
            continue
        s, _ = drt._run(events)
        at = NOW + later
        warm = [x.model().model_dump(mode="json") for x in domain.build_plan(s, now=at)]
        memo.clear()
        cold = [
            x.model().model_dump(mode="json")
            for x in domain.build_plan(LocalState.model_validate_json(s.model_dump_json()), now=at)
        ]
        assert warm == cold, seed
        done += 1
    assert done >= 10


# ---- 4. cost ---------------------------------------------------------------------------------------------------------
def _many_amended_ahead(k: int) -> LocalState:
    table: dict[str, FindingFact] = {}
    for j in range(k):
        seen = vertebra(f"l{j}", "T8", at=NOW - HOUR, cord_compression=True, status="confirmed")
        amended = _correction(seen, "amended", 0x320000 + j, corrects=None, cord_compression=False)
        for x in (seen, amended):
            table[str(x.event_id)] = FindingFact.of(x)
    return LocalState(findings=table)


def test_r32fa_view_b_with_two_hundred_amendments_naming_none_ahead_stays_cheap() -> None:
    """O(k x n) (see the module's docstring): 200 such amendments, 23 ms measured; bounded at 100x."""
    s = _many_amended_ahead(200)
    by = lesions(s)
    started = time.perf_counter()
    _, b_lesions = as_of.view_b(s, by, NOW)
    assert time.perf_counter() - started < 2.5
    assert all(x.latest.cord_compression for x in b_lesions.values()) and len(b_lesions) == 200


# ---- 5. chains -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", [True, False])
def test_r32fa_a_current_amendment_of_an_amendment_naming_none_ahead_is_in_force(compression: bool) -> None:
    ahead = _correction(TODAY_S, "amended", 0x3207, corrects=None, cord_compression=False)
    current = _current_fix_of(ahead, "amended", 0x3208, cord_compression=compression)
    found = _mscc([OLDER, TODAY_S, ahead, current, L2_AHEAD])
    if compression:
        assert [(i.severity, "À vérifier" in i.text_fr) for i in found] == [("critical", False)]
    else:
        assert found == []


@pytest.mark.parametrize("names", [False, True], ids=["amendment_naming_none", "amendment_naming_it"])
def test_r32fa_a_current_entry_in_error_of_an_amendment_ahead_brings_back_nothing(names: bool) -> None:
    ahead = _correction(TODAY_S, "amended", 0x3209, cord_compression=False)
    if not names:
        ahead = ahead.model_copy(update={"corrects": None})
    withdrawn = _current_fix_of(ahead, "entered-in-error", 0x320A)
    assert _mscc([OLDER, TODAY_S, ahead, withdrawn]) == []  # no other record ahead: the fold's answer
    assert _mscc([OLDER, TODAY_S, ahead, withdrawn, L2_AHEAD]) == []


def test_r32fa_d5_is_not_in_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """D5's case on f4f7e18's as_of.py: nothing published (the amendment withdrawn, nothing brought back)."""
    old = _base("services/radiotherapy_planner/as_of.py", "services.radiotherapy_planner._as_of_r32fa_base")
    monkeypatch.setattr(domain, "as_of", old)
    for names in (False, True):
        ahead = _correction(TODAY_S, "amended", 0x320B, cord_compression=False)
        if not names:
            ahead = ahead.model_copy(update={"corrects": None})
        withdrawn = _current_fix_of(ahead, "entered-in-error", 0x320C)
        assert _mscc([OLDER, TODAY_S, ahead, withdrawn, L2_AHEAD]) == []
