"""Issue 25, RT-FLAT2 (session 34): the radiotherapy planner's per-event cost at a long history.
- stored.py: a changed table's body is joined from each entry's cached `"key":json` text (parts_json.Entries) (a reuse
  of an unchanged state's whole text was removed after review R34-RTFLAT2);
- retention_drugs.py: the drug fold's writers in one pass, once per list of events (by object), and once per
  distinct set of events dated up to an open request's reference date (a suffix of the fold's order).

Differential: a patient's long history (devstack/cohort.py `patient_history`) and a small cohort are replayed
through the planner and its upstream services' pure transitions; the planner's input stream is then applied event by
event twice from the empty state, warm (the caches as the service runs them) and cold (every cache of this change
forgotten before each event). At every event the outputs, the stored JSON and the served plan are the same, and the
stored JSON is byte for byte what the stored.py of main wrote (pydantic for the other fields, each map entry's
`"key":` and the record's own `model_dump_json()`, joined), which loads as pydantic's own document. The writers are
checked against the fold of main (`_writers_main`, copied below) on every drug of every state, at every date."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.hospital import DrugAdministration, SystemicDrug, TreatmentEvent
from devstack.cohort import Cohort, patient_history
from devstack.replay import Record, Replay
from services.radiotherapy_planner import retention_drugs, stored
from services.radiotherapy_planner.domain import current_plan
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.retention import references
from shared.clinical.drugs import identify
from shared.runtime.kafka import Outgoing
from shared.runtime.parts_json import json_key
from tests.unit.test_s33_rt_flat import RT, _stream


def _forget() -> None:
    """Every cache of this change, as a new process has them."""
    stored.STORED.entries._by_id.clear()
    stored.STORED._bodies.clear()
    retention_drugs._WRITERS.clear()


def _main_dump(state: BaseModel) -> str:
    """The stored JSON as the stored.py of main wrote it (nothing cached)."""
    rest = BaseModel.model_dump_json(state, exclude=set(stored.MAPS))
    out = [rest[:-1]]
    sep = "," if len(rest) > 2 else ""
    for name in stored.MAPS:
        table: dict[str, BaseModel] = getattr(state, name)
        body = ",".join(f"{json_key(k)}:{v.model_dump_json()}" for k, v in table.items())
        out.append(f'{sep}"{name}":{{{body}}}')
        sep = ","
    out.append("}")
    return "".join(out)


def _writers_main(ordered: list[TreatmentEvent]) -> list[TreatmentEvent]:
    """retention._writers of main (the fold's writers of one drug, WRITERS_KEPT deep per field)."""
    kept: dict[int, TreatmentEvent] = {}

    def top(rows: Iterable[TreatmentEvent]) -> list[TreatmentEvent]:
        out: list[TreatmentEvent] = []
        for e in rows:
            if len(out) == retention_drugs.WRITERS_KEPT:
                break
            out.append(e)
        return out

    def sets_last(e: TreatmentEvent) -> bool:
        t = e.treatment
        return isinstance(t, DrugAdministration) or (isinstance(t, SystemicDrug) and t.action == "stopped")

    def sets_ongoing(e: TreatmentEvent) -> bool:
        t = e.treatment
        return isinstance(t, SystemicDrug) or (isinstance(t, DrugAdministration) and t.ongoing is not None)

    def sets_dose(e: TreatmentEvent) -> bool:
        t = e.treatment
        return isinstance(t, DrugAdministration) and t.daily_dose_mg is not None

    last = top(e for e in ordered if sets_last(e))
    days = {e.treatment.on for e in last}
    for e in (
        *top(ordered),
        *top(e for e in ordered if sets_ongoing(e)),
        *top(e for e in ordered if sets_dose(e)),
        *(e for e in ordered if sets_last(e) and e.treatment.on in days),
    ):
        kept[id(e)] = e
    return list(kept.values())


def _check_writers(s: LocalState, checked: set[tuple[int, ...]]) -> None:
    """fold_writers of each drug's events held equals main's fold (its writers, and those up to each date), at every
    date a request may give: the state's reference dates, and each event's day, the day before and the day after."""
    by_drug: dict[str, list[TreatmentEvent]] = {}
    for e in s.treatments.values():
        t = e.treatment
        if isinstance(t, SystemicDrug | DrugAdministration):
            by_drug.setdefault(identify(t.drug, t.atc_code).key, []).append(e)
    for events in by_drug.values():
        key = tuple(map(id, events))
        if key in checked:
            continue
        checked.add(key)
        days = {e.treatment.on for e in events}
        points = sorted({d + timedelta(days=k) for d in days for k in (-1, 0, 1)})
        if s.newest_at is not None:
            points = sorted({*points, *references(s, s.newest_at.date() + timedelta(days=2))})
        ordered = sorted(events, key=retention_drugs.fold_key, reverse=True)
        base = {id(e) for e in _writers_main(ordered)}
        upto = {p: {id(e) for e in _writers_main([e for e in ordered if e.treatment.on <= p])} for p in points}
        for some in (points, points[::-3], points[-2:], []):  # a few sets of points, in any order
            want = base.union(*(upto[p] for p in some))
            got = {id(e) for e in retention_drugs.fold_writers(events, some)}
            assert got == want, f"fold_writers differs from main's fold ({len(events)} events, {len(some)} dates)"


def _run(replay: Replay, records: list[tuple[str, Record]], cold: bool, check: bool) -> list[tuple[Any, ...]]:
    service = replay.services[RT]
    _forget()
    states: dict[str, LocalState] = {}
    seen = []
    checked: set[tuple[int, ...]] = set()
    for patient, rec in records:
        if cold:
            _forget()
        replay.now = datetime.fromtimestamp(rec.timestamp / 1000, UTC)
        sub = service.subscriptions[rec.topic]
        assert sub.aggregate is not None
        state = states.get(patient) or LocalState()
        try:
            state, outputs = sub.aggregate[1](state, sub.decode(rec))
            out = [(o.topic, o.key, o.value) for o in map(Outgoing.of, outputs)]
        except Exception as e:  # a refused event leaves the state as it was (as the runtime)
            out = [("refused", type(e).__name__, str(e))]
        states[patient] = state
        text = state.model_dump_json()
        assert state.model_dump_json() == text  # stored again unchanged: the same text
        if check:
            assert text == _main_dump(state), f"{rec.topic}: the stored JSON differs from main's"
            _check_writers(state, checked)
        plan = current_plan(state, patient)
        seen.append((patient, rec.topic, out, text, None if plan is None else plan.model_dump_json()))
    if check:  # the document is pydantic's own (fields in another order), and loads back equal
        for state in states.values():
            text = state.model_dump_json()
            assert json.loads(text) == json.loads(BaseModel.model_dump_json(state))
            assert LocalState.model_validate_json(text) == state
    return seen


def _same(generated: Iterable[Any], at_least: int) -> int:
    replay, records = _stream(generated)
    assert len(records) >= at_least
    warm = _run(replay, records, cold=False, check=True)
    cold = _run(replay, records, cold=True, check=False)
    for i, (w, c) in enumerate(zip(warm, cold, strict=True)):
        assert w == c, f"event {i} ({w[1]}) of patient {w[0]}: warm and cold differ"
    assert any(w[2] for w in warm)  # something was published
    return len(records)


def test_a_long_history_stores_and_decides_as_main_at_every_event() -> None:
    """One patient, 1,200 messages (retention folding drugs, assessments, findings and requests on the way)."""
    assert _same(patient_history(2, 1200), 700) > 0


@pytest.mark.parametrize("seed", [5, 11])
def test_a_small_cohort_stores_and_decides_as_main_at_every_event(seed: int) -> None:
    """Several patients interleaved (the caches shared between them), realistic density."""
    assert _same(Cohort(seed, 3, 3.0).events(), 60) > 0


def test_a_state_changed_after_it_was_stored_is_written_again() -> None:
    """A field set again, a table filled or emptied in place, gives the state's new JSON (written afresh every time)."""
    _forget()
    s = LocalState()
    first = s.model_dump_json()
    s.plan_version = 3
    assert s.model_dump_json() == _main_dump(s) != first
    s.published["item"] = "RT-X|id|digest"  # in place: the table's length tells
    assert s.model_dump_json() == _main_dump(s)
    s.withdrawn.append("abc")
    assert s.model_dump_json() == _main_dump(s)
    s.decided_at = datetime(2026, 1, 1, tzinfo=UTC)
    assert s.model_dump_json() == _main_dump(s)
    assert json.loads(s.model_dump_json()) == json.loads(BaseModel.model_dump_json(s))


def _replayed(history: list[Any], until: Callable[[LocalState], bool]) -> LocalState:
    """The planner's state after the history (or at the first state `until` holds for)."""
    replay, records = _stream(history)
    service = replay.services[RT]
    s = LocalState()
    for _, rec in records:
        replay.now = datetime.fromtimestamp(rec.timestamp / 1000, UTC)
        sub = service.subscriptions[rec.topic]
        assert sub.aggregate is not None
        try:
            s, _out = sub.aggregate[1](s, sub.decode(rec))
        except Exception:  # refused: the state as it was
            continue
        if until(s):
            break
    return s


def test_a_record_held_under_another_key_is_written_with_that_key() -> None:
    """parts_json.Entries keeps an entry's text by the record's object with its key: the same object under another key
    (another table, another state) is written with its own key, its JSON reused."""
    _forget()
    s = _replayed(patient_history(3, 300), lambda s: len(s.findings) >= 2)
    s.model_dump_json()
    (k1, f1), (k2, f2) = list(s.findings.items())[:2]
    moved = s.model_copy(update={"findings": {k2: f1, k1: f2, "other": f1}})  # the same objects, other keys
    assert moved.model_dump_json() == _main_dump(moved)
    assert json.loads(moved.model_dump_json())["findings"]["other"] == json.loads(f1.model_dump_json())
    assert s.model_dump_json() == _main_dump(s)  # and under their own keys again


def test_fold_writers_of_no_point_and_of_points_outside_the_events() -> None:
    """A point after every event folds the whole list again, one before every event none: the same writers."""
    _forget()
    state = _replayed(patient_history(4, 800), lambda s: False)
    drugs = [e for e in state.treatments.values() if isinstance(e.treatment, SystemicDrug | DrugAdministration)]
    assert drugs
    by_drug: dict[str, list[TreatmentEvent]] = {}
    for e in drugs:
        t = e.treatment
        assert isinstance(t, SystemicDrug | DrugAdministration)
        by_drug.setdefault(identify(t.drug, t.atc_code).key, []).append(e)
    for events in by_drug.values():
        alone = {id(e) for e in retention_drugs.fold_writers(events, [])}
        outside = [date(1900, 1, 1), date(2999, 1, 1)]
        assert {id(e) for e in retention_drugs.fold_writers(events, outside)} == alone
        ordered = sorted(events, key=retention_drugs.fold_key, reverse=True)
        assert alone == {id(e) for e in _writers_main(ordered)}
