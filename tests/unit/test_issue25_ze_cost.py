"""Issue 25, the radiotherapy planner's cost per event (helper ZE): what is now kept across events decides the same.

- What a treatments table gives the items (effective events, each kind's, drug uses per date, segment histories) is
  kept per table (items_patient.Treated): equal to what the facts' functions compute afresh, at every state of a mixed
  timeline, and a changed table never reads another table's.
- A lesion's finding IDs (Lesion.ids) are those of its history.
- An item made of exactly the parts of one made before is that item (items_base.interned): the same content, digest,
  inputs and published JSON as an item made afresh; parts equal but written apart (1, 1.0, True; 0.0, -0.0; one
  instant in two time zones) give other items.
- End to end: the bench's stream decided with every cache kept gives the same outputs and stored JSON, byte for
  byte, as with every cache emptied before each event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.radiotherapy_planner import events
from contracts.base import Message
from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.facts_treatments import drug_uses, metabolic_rt, rt_courses, surgeries, treatments
from services.radiotherapy_planner.items_base import Item, inp, interned
from services.radiotherapy_planner.items_patient import Patient, treated
from services.radiotherapy_planner.items_reirr import _segment, segment
from shared.runtime.kafka import Outgoing


def _stream(n: int) -> list[Message]:
    docs = events(n)
    return sorted(
        (cast(Message, t.value.model_validate(d)) for t, items in docs.items() for d in items),
        key=lambda e: e.occurred_at,
    )


def _states(stream: list[Message]) -> Iterator[LocalState]:
    states: dict[str, LocalState] = {}
    for e in stream:
        s, _ = apply_event(states.get(e.patient_id) or LocalState(), e)
        states[e.patient_id] = s
        yield s


def test_what_a_treatments_table_gives_is_what_the_facts_compute_afresh() -> None:
    m.clear()
    checked = 0
    for s in _states(_stream(400)):
        p = Patient(s, now=s.decided_at)
        effective = treatments(s)
        assert p.treatment_events == effective
        assert p.surgeries == surgeries(s) and p.rt_courses == rt_courses(s) and p.metabolic == metabolic_rt(s)
        days = {t.treatment.on for t in s.treatments.values()} | {date(2020, 1, 1), date(2030, 1, 1)}
        for day in sorted(days):
            assert p.drug_uses(day) == drug_uses(s, day)
        for lesion in lesions(s).values():
            for req in s.requests.values():
                day = req.planned_on or lesion.latest.occurred_at.date()
                assert segment(p, lesion, req, day) == _segment(p, lesion, req, day)
        # a copy of the table (what merge makes for an event) is another table: nothing read from the first
        fresh = s.model_copy(update={"treatments": dict(s.treatments)})
        assert treated(fresh) is not treated(s) and Patient(fresh).treatment_events == effective
        checked += 1
    assert checked == 400


def test_a_lesions_ids_are_those_of_its_history() -> None:
    m.clear()
    for s in _states(_stream(300)):
        for lesion in lesions(s).values():
            assert lesion.ids == tuple(f.event_id.int for f in lesion.history)


def _decided(stream: list[Message], cold: bool) -> list[str]:
    m.clear()
    states: dict[str, LocalState] = {}
    out = []
    for e in stream:
        if cold:
            m.clear()
        s, outputs = apply_event(states.get(e.patient_id) or LocalState(), e)
        states[e.patient_id] = s
        out += [Outgoing.of(o).value for o in outputs]
        out.append(s.model_dump_json())
    return out


def test_the_stream_decided_with_every_cache_kept_is_the_stream_decided_cold() -> None:
    stream = _stream(600)
    warm, cold = _decided(stream, cold=False), _decided(stream, cold=True)
    assert len(warm) > len(stream) and warm == cold


_VALUES = st.sampled_from([None, 0, 1, 1.0, True, False, 0.0, -0.0, float("nan"), 2.5, "1", "a"])
_TIMES = st.sampled_from(
    [
        None,
        datetime(2024, 3, 1, 12, tzinfo=UTC),
        datetime(2024, 3, 1, 13, tzinfo=timezone(timedelta(hours=1))),  # the same instant, written apart
        datetime(2024, 3, 1, 12),
    ]
)
_SOURCES = st.sampled_from([None, uuid.UUID(int=1), uuid.UUID(int=2)])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["recommended", "warning"]),
            st.lists(st.tuples(st.sampled_from(["a", "b"]), _VALUES, _TIMES, _SOURCES), max_size=3),
            st.lists(st.sampled_from(["x", "y"]), max_size=2),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_an_item_made_again_of_the_same_parts_is_the_item_made_afresh(made: list[Any]) -> None:
    m.clear()
    for status, raw_inputs, missing in made:
        inputs = tuple(inp(name=n, value=v, occurred_at=at, source_event_id=src) for n, v, at, src in raw_inputs)
        args: tuple[Any, ...] = (
            "k",
            "RT-SBRT-CI",
            status,
            "warning",
            "titre",
            "texte",
            inputs,
            tuple(missing),
            None,
            (),
        )
        got, fresh = interned(*args), Item(*args)
        assert (got.content, got.digest) == (fresh.content, fresh.digest)
        assert [repr(x) for x in got.inputs] == [repr(x) for x in fresh.inputs]
        assert got.model.model_dump_json() == fresh.model.model_dump_json()
        assert [i.model_dump_json() for i in got.notice.inputs()] == [i.model_dump_json() for i in fresh.inputs_used()]
