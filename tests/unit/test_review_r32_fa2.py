"""Review R32-FA2 (HAZ-27-FUTURE-HIDES, commits 60da1bf and d66e0bc: `corrections.pending_ahead` read by the
radiotherapy planner's view B; `as_of.ahead` lists a correction dated ahead of a current record; view B keeps a lesion
only it reads; with a correction held back every assessed name is read again).

Rule R29B: in view B a correction dated ahead of the CURRENT record it corrects is not yet in force: that record
stands until the correction's date (never the older version it superseded, never unknown); the merge never hides a
current emergency (RT-MSCC L1397-1402, "compression médullaire ... urgence thérapeutique", critical), marks it "à
vérifier" and names the record dated ahead; no order is drafted on a record not yet current.

Held (guards):
1. The tick: an entry in error dated ahead of today's compression (alone, of a lesion's only finding, of yesterday's
   neurological deficit beside an epidural extension): `next_due` is the moment it becomes current (its date minus
   the 15 min tolerance, plus 1 s); at that tick, with no other event, the plan changes (the emergency withdrawn, or
   the deficit's emergency turned into the epiduritis' prevention) and nothing more is due. Warm equals cold (memos
   cleared, state parsed again from its JSON) before and at the tick.
2. A lesion only B reads (R32-FA D3): its section is well-formed (site "spine", level "T8"), its alert active under
   the item's key, the plan served (`current_plan` rebuilt from the stored JSON) is the one published; at the tick
   the alert of the same key is withdrawn and the plan published without the section (no orphan alert).
3. With an assessment correction held back, B's every other name and opinion is A's: on random histories
   (test_dt_rt_differential.history), for each state where an assessment correction is held back, every fact of A that
   is current and that neither a held-back correction nor the record it corrects carries is B's, and B has no name A
   has not (but those).
4. Chains: an entry in error dated ahead of a CURRENT amendment, or of the original of a current amendment, keeps the
   amendment's compression in B (critical, marked); the original saying "compression", the current amendment "none",
   an entry in error ahead of the amendment: nothing (neither view brings the original back); an amendment dated ahead
   naming none, then one naming it explicitly: the emergency kept, marked.
5. No record dated ahead: every message, state and next_due is f4f7e18's (test_dt_rt_differential's histories without
   future records, its `as_of.py` swapped in: test_review_r32_fixes_ahead's harness); `pending_ahead` is then never
   called (the per-table check `_FINDING_FIXES`/`_ASSESSMENT_FIXES` answers without a scan of corrections): no per
   event cost beyond one scan per new table object (test_issue25_rt_cost unchanged).

Defect found (pre-existing, f4f7e18 gives the same answer; a strict xfail until the lead fixed it in session 32:
`corrections.pinned`, each amendment naming none kept on its whole-set target in view B, both planners):
- D1 (Q4) two amendments naming none dated ahead (a producer's clock ahead re-sending an amended report): the first
  corrects today's record (current: held back, `pending_ahead`), the second resolves on the whole set to the first
  (dated ahead: `fixes_ahead` is false, so it stays in B). B re-folds without the first, and there the second
  resolves to TODAY's record (its lesion's / the patient's newest recorded before it): B drops the current record and
  reads the older one. Finding: today's cord compression replaced by last month's "no compression", the RT-MSCC
  emergency is gone with no word (A, B and C agree: nothing published). Assessment: yesterday's neurological deficit
  (epidural extension, "compression médullaire à éliminer", L1397-1402) gone in B: the prevention item published
  "recommended"/warning, unmarked, where the single-amendment case publishes the critical emergency marked "à
  vérifier". The same two amendments naming each other explicitly are handled. Fix: in view B keep each correction
  on the target it has on the whole set (pin `corrects` to `target(x, all rows)` before the re-fold), for findings
  and assessments alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import Recommendation
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.local import LocalTreatmentPlan
from services.radiotherapy_planner import as_of, domain, memo
from services.radiotherapy_planner.facts import LocalState, fold_assessment, lesions
from shared.clinical.corrections import pending_ahead, target
from tests.unit import test_dt_rt_differential as drt
from tests.unit.test_dt_rt_cases import _state
from tests.unit.test_issue18_local import NOW, tick, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD, DAY, _assessment
from tests.unit.test_review_r32_fixes_ahead import OLDER, TODAY_S, _base, _correction, _current_fix_of, _mscc

TOL = timedelta(minutes=15)
SECOND = timedelta(seconds=1)
EXTENSION = vertebra(at=NOW - 12 * DAY, epidural_extension=True, status="confirmed")
MSCC = "radiotherapy-planner:t8:mscc"
L2_AHEAD = vertebra("l2", "L2", at=AHEAD, status="confirmed").model_copy(update={"recorded_at": NOW})


def _in_force(out: list[Message], key: str) -> list[str]:
    """The severities of the alerts of `key` in force after `out` (a withdrawal names what it supersedes by ID)."""
    live: dict[uuid.UUID, Recommendation] = {}
    for m in out:
        if isinstance(m, Recommendation):
            for x in m.supersedes:
                live.pop(x, None)
            if m.status == "active":
                live[m.event_id] = m
    return [m.severity for m in live.values() if m.alert_key == key]


def _plans(out: list[Message]) -> list[LocalTreatmentPlan]:
    return [m for m in out if isinstance(m, LocalTreatmentPlan)]


def _plan_json(s: LocalState, at: datetime) -> list[Any]:
    return [x.model().model_dump(mode="json") for x in domain.build_plan(s, now=at)]


def _cold(s: LocalState, at: datetime) -> list[Any]:
    memo.clear()
    return _plan_json(LocalState.model_validate_json(s.model_dump_json()), at)


def _deficit_cases() -> list[Message]:
    deficit = _assessment(NOW - DAY, neurological_deficit=True)
    in_error = _assessment(AHEAD, record_status="entered-in-error", corrects=str(deficit.event_id))
    return [EXTENSION, deficit, in_error]


CASES: dict[str, Callable[[], list[Message]]] = {
    "compression": lambda: [OLDER, TODAY_S, _correction(TODAY_S, "entered-in-error", 0x3301)],
    "only_finding": lambda: [TODAY_S, _correction(TODAY_S, "entered-in-error", 0x3302)],
    "only_finding_l2_ahead": lambda: [TODAY_S, _correction(TODAY_S, "entered-in-error", 0x3303), L2_AHEAD],
    "deficit": _deficit_cases,
}


# ---- 1. the tick ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_r32fa2_an_entry_in_error_ahead_changes_the_plan_at_its_date_with_no_other_event(case: str) -> None:
    s, out = drt._run(CASES[case]())
    assert _in_force(out, MSCC) == ["critical"]
    assert s.next_due == AHEAD - TOL + SECOND
    assert _plan_json(s, NOW) == _cold(s, NOW)
    assert _plan_json(s, s.next_due) == _cold(s, s.next_due)
    after, more = domain.apply_event(s, tick(s))
    # the deficit withdrawn: the epidural extension's prevention (warning); else nothing
    assert _in_force([*out, *more], MSCC) == (["warning"] if case == "deficit" else [])
    assert any(isinstance(m, Recommendation) and m.status == "withdrawn" for m in more)
    assert _plans(more) and after.next_due is None


# ---- 2. a lesion only B reads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["only_finding", "only_finding_l2_ahead"])
def test_r32fa2_a_lesion_only_b_reads_is_well_formed_served_and_withdrawn_cleanly(case: str) -> None:
    s, out = drt._run(CASES[case]())
    assert "t8" not in lesions(s)  # A reads no such lesion
    [*_, plan] = _plans(out)
    t8 = [x for x in plan.sections if x.lesion_id == "t8"]
    assert [(x.skeletal_site, x.vertebral_level, [i.key for i in x.items]) for x in t8] == [
        ("spine", "T8", ["t8:mscc"])
    ]
    assert [i.severity for x in t8 for i in x.items] == ["critical"]
    assert "À vérifier" in t8[0].items[0].text_fr
    memo.clear()
    served = domain.current_plan(LocalState.model_validate_json(s.model_dump_json()), plan.patient_id)
    assert served is not None and served.sections == plan.sections
    after, more = domain.apply_event(s, tick(s))
    assert _in_force(out, MSCC) == ["critical"] and _in_force([*out, *more], MSCC) == []
    [withdrawn_plan] = _plans(more)
    assert "t8" not in {x.lesion_id for x in withdrawn_plan.sections}
    assert not any(k.startswith("t8:") for k in after.published)


# ---- 3. every assessed name read again ------------------------------------------------------------------------------
def _carried(a: ClinicalAssessment) -> set[str]:
    """The names and opinion keys an assessment writes."""
    x = LocalState()
    fold_assessment(x, a)
    return set(x.assessed) | {f"opinion:{k}" for k in x.opinions}


def test_r32fa2_with_an_assessment_correction_held_back_b_reads_every_other_name_and_opinion_as_a() -> None:
    held_states = 0
    for seed in range(320):
        memo.clear()
        s = LocalState()
        for e in drt.history(seed):
            s, _ = domain.apply_event(s, e, now=NOW)
            now = s.decided_at
            assert now is not None

            def ahead(t: datetime, now: datetime = now) -> bool:
                return as_of.is_future(t, now)

            held = pending_ahead(s.assessments, lambda _: "patient", ahead)
            if not held:
                continue
            held_states += 1
            rows = list(s.assessments.values())
            touched: set[str] = set()
            for x in held.values():
                named = x.corrects or target(x, rows, lambda _: "patient")
                fixed = s.assessments.get(str(named))
                touched |= _carried(x) | (set() if fixed is None else _carried(fixed))
            b, _ = as_of.view_b(s, lesions(s), now)
            for k, f in s.assessed.items():
                if k not in touched and not ahead(f.occurred_at):
                    assert b.assessed.get(k) == f, (seed, k)
            for k, o in s.opinions.items():
                if f"opinion:{k}" not in touched and not ahead(o.occurred_at):
                    assert b.opinions.get(k) == o, (seed, k)
            assert set(b.assessed) - set(s.assessed) <= touched, seed
    assert held_states >= 20, held_states


# ---- 4. chains ------------------------------------------------------------------------------------------------------
def _marked(events: list[Message]) -> list[tuple[str, str, bool]]:
    return [(i.severity, i.status, "À vérifier" in i.text_fr) for i in _mscc(events)]


NO_COMPRESSION = TODAY_S.model_copy(update={"cord_compression": False})
AMENDED_NOW = _current_fix_of(NO_COMPRESSION, "amended", 0x3310, cord_compression=True)  # current: compression


@pytest.mark.parametrize("names", ["the_amendment", "the_original"])
def test_r32fa2_an_entry_in_error_ahead_of_a_current_amendment_keeps_its_compression_marked(names: str) -> None:
    """Recorded after the amendment (the hospital withdraws what it knows); B: the amendment stands (R29B)."""
    named = AMENDED_NOW if names == "the_amendment" else NO_COMPRESSION
    in_error = _correction(named, "entered-in-error", 0x3311).model_copy(update={"recorded_at": NOW + 2 * SECOND})
    assert _marked([OLDER, NO_COMPRESSION, AMENDED_NOW, in_error]) == [("critical", "recommended", True)]
    s = _state([OLDER, NO_COMPRESSION, AMENDED_NOW, in_error])
    _, b = as_of.view_b(s, lesions(s), NOW)
    assert [f.event_id for f in b["t8"].history] == [OLDER.event_id, AMENDED_NOW.event_id]


def test_r32fa2_an_entry_in_error_ahead_of_a_current_amendment_never_brings_back_the_original() -> None:
    cleared = _current_fix_of(TODAY_S, "amended", 0x3312, cord_compression=False)
    in_error = _correction(cleared, "entered-in-error", 0x3313).model_copy(update={"recorded_at": NOW + 2 * SECOND})
    assert _mscc([OLDER, TODAY_S, cleared, in_error]) == []


def test_r32fa2_an_amendment_ahead_naming_none_then_one_naming_it_keeps_today_s_emergency_marked() -> None:
    first = _correction(TODAY_S, "amended", 0x3314, corrects=None, cord_compression=False)
    second = _correction(first, "amended", 0x3315, cord_compression=False).model_copy(
        update={"recorded_at": NOW + SECOND}
    )
    assert _marked([OLDER, TODAY_S, first, second]) == [("critical", "recommended", True)]


def _two_none_findings() -> list[Message]:
    first = _correction(TODAY_S, "amended", 0x3316, corrects=None, cord_compression=False)
    second = _correction(TODAY_S, "amended", 0x3317, corrects=None, cord_compression=False)
    return [OLDER, TODAY_S, first, second.model_copy(update={"recorded_at": NOW + SECOND})]


def test_r32fa2_d1_the_second_amendment_naming_none_resolves_to_the_first_on_the_whole_set() -> None:
    """The premise of D1: on all records the second corrects the first (dated ahead), the first today's record."""
    _, _, first, second = _two_none_findings()
    assert isinstance(first, ImagingFinding) and isinstance(second, ImagingFinding)
    s = _state(_two_none_findings())
    rows = list(s.findings.values())
    group: Callable[[Any], str] = lambda f: f.lesion_id  # noqa: E731
    assert target(s.findings[str(first.event_id)], rows, group) == TODAY_S.event_id
    assert target(s.findings[str(second.event_id)], rows, group) == first.event_id


def test_r32fa2_d1_two_amendments_naming_none_ahead_keep_today_s_compression_in_b() -> None:
    s = _state(_two_none_findings())
    _, b = as_of.view_b(s, lesions(s), NOW)
    assert b["t8"].latest.event_id == TODAY_S.event_id


def test_r32fa2_d1_two_amendments_naming_none_ahead_do_not_hide_today_s_emergency() -> None:
    assert _marked(_two_none_findings()) == [("critical", "recommended", True)]


def _two_none_assessments(n: int) -> list[Message]:
    deficit = _assessment(NOW - DAY, neurological_deficit=True)
    amended = [
        _assessment(AHEAD, record_status="amended", neurological_deficit=False).model_copy(
            update={"recorded_at": NOW + k * SECOND, "event_id": uuid.UUID(int=0x3320 + k, version=4)}
        )
        for k in range(n)
    ]
    return [EXTENSION, deficit, *amended]


def test_r32fa2_one_assessment_amendment_naming_none_ahead_keeps_the_deficit_s_emergency_marked() -> None:
    [(severity, status, marked)] = _marked(_two_none_assessments(1))
    assert (severity, status, marked) == ("critical", "to_do", True)


def test_r32fa2_d1_two_assessment_amendments_naming_none_ahead_keep_the_deficit_s_emergency_marked() -> None:
    [(severity, status, marked)] = _marked(_two_none_assessments(2))
    assert (severity, marked) == ("critical", True), status


def test_r32fa2_d1_is_not_a_regression_of_the_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    """f4f7e18's as_of.py gives the same answers (no emergency; the deficit's prevention, unmarked)."""
    old = _base("services/radiotherapy_planner/as_of.py", "services.radiotherapy_planner._as_of_r32fa2_base")
    monkeypatch.setattr(domain, "as_of", old)
    assert _marked(_two_none_findings()) == []
    assert _marked(_two_none_assessments(2)) == [("warning", "recommended", False)]


# ---- 5. no record dated ahead: the reference's bytes, no added cost -------------------------------------------------
def _trace(seed: int) -> list[str]:
    s, out = drt._run(drt.history(seed, future=False))
    return [m.model_dump_json() for m in out] + [s.model_dump_json(), str(s.next_due)]


def test_r32fa2_rt_with_no_record_dated_ahead_every_output_is_f4f7e18_s(monkeypatch: pytest.MonkeyPatch) -> None:
    old = _base("services/radiotherapy_planner/as_of.py", "services.radiotherapy_planner._as_of_r32fa2_base")
    mine = [_trace(seed) for seed in drt.NO_FUTURE_SEEDS]
    monkeypatch.setattr(domain, "as_of", old)
    assert [_trace(seed) for seed in drt.NO_FUTURE_SEEDS] == mine


def test_r32fa2_with_no_record_dated_ahead_no_pending_correction_is_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ahead` runs on every decision (plan and next_due): with nothing dated ahead it never walks the chains
    (`pending_ahead`), the per-table check answering."""
    calls: list[int] = []
    real_pending = pending_ahead

    def pending(*args: Any) -> Any:
        calls.append(-1)
        return real_pending(*args)

    monkeypatch.setattr(as_of, "pending_ahead", pending)
    for seed in list(drt.NO_FUTURE_SEEDS)[:60]:
        s, _ = drt._run(drt.history(seed, future=False))
        assert s.findings or s.assessments
    assert -1 not in calls
