"""The transition is pure and the memoised plan is the plan: on a long mixed timeline, every state's plan built
with the memo (warm, as the service runs) equals the plan built from nothing (decisions, texts and provenance)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

from bench.radiotherapy_planner import events
from contracts.base import Message
from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.items_base import as_input


def _view(state: LocalState) -> list[Any]:
    return [
        (sec.lesion_id, [(i.content, [as_input(x) for x in i.inputs]) for i in sec.items]) for sec in build_plan(state)
    ]


def test_memoised_plan_equals_the_plan_built_from_nothing() -> None:
    docs = events(400)
    msgs: list[Message] = sorted(
        (cast(Message, t.value.model_validate(d)) for t, items in docs.items() for d in items),
        key=lambda e: e.occurred_at,
    )
    m.clear()
    states: dict[str, LocalState] = {}
    for e in msgs:
        before = states.get(e.patient_id) or LocalState()
        kept = before.model_copy(deep=True)
        s, _ = apply_event(before, e)
        assert before == kept  # the transition is pure: the previous state is never changed
        states[e.patient_id] = s
        warm = _view(s)
        saved = OrderedDict(m._MEMO)
        m.clear()
        cold = _view(s)
        m._MEMO.clear()
        m._MEMO.update(saved)
        assert warm == cold
