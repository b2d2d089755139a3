"""Issue 25: the systemic planner's stored JSON reuses the JSON of each record and fact that did not change
(services/systemic_planner/stored.py STORED, shared/runtime/parts_json.py). It must be pydantic's document, read back
to the same state, at every step of a history."""

from __future__ import annotations

import json

from pydantic import BaseModel

from services.systemic_planner.domain import SystemicState
from tests.unit.test_issue25_systemic_history import history, replay


def test_the_stored_json_is_pydantics_document_at_every_step() -> None:
    steps = 0
    for steps, (state, _) in enumerate(replay(history(2, years=1.5)), start=1):
        stored = state.model_dump_json()
        assert json.loads(stored) == json.loads(BaseModel.model_dump_json(state)), steps
        assert SystemicState.model_validate_json(stored) == state
        assert state.model_dump_json() == stored  # deterministic: the runtime compares the bytes it wrote
    assert steps > 100
    empty = SystemicState()
    assert SystemicState.model_validate_json(empty.model_dump_json()) == empty
    assert empty.model_dump_json(exclude={"sres"}) == BaseModel.model_dump_json(empty, exclude={"sres"})
