"""Issue 25, the radiotherapy planner's cost per event (helper HW): what was made cheaper decides the same.

- A plan item and its notice hold no reference to each other (a bound method did): an item dropped from the memo is
  freed at once, not left to the garbage collector's full passes.
- The fingerprints kept per table (memo._by_table) are those computed from the tables afresh, at every state of a
  mixed timeline.
- A segment's history kept per plan (Patient.segments) is the one computed again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import cast

from bench.radiotherapy_planner import events
from contracts.base import Message
from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.items_base import Item, as_input
from services.radiotherapy_planner.items_local import _segment, segment
from services.radiotherapy_planner.items_rt import Patient


def _stream(n: int) -> list[Message]:
    docs = events(n)
    return sorted(
        (cast(Message, t.value.model_validate(d)) for t, items in docs.items() for d in items),
        key=lambda e: e.occurred_at,
    )


def _states(n: int) -> Iterator[LocalState]:
    states: dict[str, LocalState] = {}
    for e in _stream(n):
        s, _ = apply_event(states.get(e.patient_id) or LocalState(), e)
        states[e.patient_id] = s
        yield s


def _live_items() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, Item))


def test_items_dropped_from_the_memo_are_freed_without_the_garbage_collector() -> None:
    m.clear()
    gc.collect()
    before = _live_items()
    gc.disable()
    try:
        published = 0
        for s in _states(300):
            for sec in build_plan(s):
                for i in sec.items:
                    notice, model = i.notice, i.model  # both made, as when an item is published
                    assert list(notice.inputs()) == model.inputs == [as_input(x) for x in i.inputs]
                    published += 1
        assert published > 0 and _live_items() > before
        del sec, i, notice, model  # the loop's last ones
        m.clear()  # the memo was the items' only holder
        assert _live_items() == before
    finally:
        gc.enable()


def test_table_fingerprints_are_those_of_the_tables_computed_afresh() -> None:
    m.clear()
    checked = 0
    for s in _states(400):
        warm = m.Fingerprints.of(s)
        fresh = s.model_copy(
            update={
                "treatments": dict(s.treatments),
                "assessed": dict(s.assessed),
                "opinions": dict(s.opinions),
                "labs": {k: dict(v) for k, v in s.labs.items()},
                "scores": dict(s.scores),
            }
        )
        assert warm == m.Fingerprints.of(fresh)
        assert m.Fingerprints.of(s) == warm  # and again from the tables kept
        checked += 1
    assert checked == 400


def test_a_segment_history_kept_per_plan_is_the_one_computed_again() -> None:
    m.clear()
    compared = 0
    for s in _states(300):
        p = Patient(s, now=s.decided_at)
        for lesion in lesions(s).values():
            for req in s.requests.values():
                if not isinstance(req, LocalTreatmentRequest) or req.lesion_id != lesion.lesion_id:
                    continue
                day = req.planned_on or lesion.latest.occurred_at.date()
                first = segment(p, lesion, req, day)
                assert segment(p, lesion, req, day) is first  # once per plan
                assert first == _segment(p, lesion, req, day)
                compared += 1
    assert compared > 0
