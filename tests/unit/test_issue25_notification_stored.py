"""Issue 25: notification's stored JSON reuses the JSON of the parts that did not change
(services/notification/stored.py). It must be the same document as pydantic's, read back to the same state."""

from __future__ import annotations

import gc
import json

from pydantic import BaseModel

from contracts.clinical import Score
from services.notification.domain import AlertPolicy, PatientAlerts, apply_event
from services.notification.stored import PARTS
from shared.runtime.parts_json import PartsJson
from tests.unit.test_issue25_notification_history import LAB, SCORE, drive, history


def pydantic_json(state: PatientAlerts) -> str:
    return BaseModel.model_dump_json(state)


def test_the_stored_json_is_pydantics_document_at_every_step_of_a_history() -> None:
    for n, (_, state, _) in enumerate(drive(history(3, 2), lambda s, e: apply_event(s, e, AlertPolicy()))):
        stored = state.model_dump_json()
        assert json.loads(stored) == json.loads(pydantic_json(state)), n
        assert PatientAlerts.model_validate_json(stored) == state
        assert state.model_dump_json() == stored  # deterministic: the runtime compares the bytes it wrote


def test_keys_that_need_escaping_and_empty_states() -> None:
    odd = ['a"b', "a\\b", "é", "x\ny", "\u2028", "tab\there"]
    scores = {f"sins:{k}": SCORE.model_copy(update={"subject": k}) for k in odd}
    state = PatientAlerts(scores=scores, labs={"corrected_calcium": LAB})
    assert json.loads(state.model_dump_json()) == json.loads(pydantic_json(state))
    assert PatientAlerts.model_validate_json(state.model_dump_json()) == state
    assert PatientAlerts.model_validate_json(PatientAlerts().model_dump_json()) == PatientAlerts()
    assert state.model_dump_json(exclude={"scores"}) == BaseModel.model_dump_json(state, exclude={"scores"})


def test_a_parts_json_leaves_with_its_object() -> None:
    parts = PartsJson()
    score = Score.model_validate_json(SCORE.model_dump_json())
    assert parts(score) == SCORE.model_dump_json() and len(parts) == 1
    assert parts(score) is parts(score)  # the same object: its JSON is not made again
    del score
    gc.collect()
    assert len(parts) == 0
    # the shared one holds only the parts of live states: one made and dropped here leaves it as it was (its size
    # depends on the states the other tests of the run still hold, so no absolute bound)
    gc.collect()
    before = len(PARTS)
    shared = Score.model_validate_json(SCORE.model_dump_json())
    assert PARTS(shared) == SCORE.model_dump_json() and len(PARTS) == before + 1
    del shared
    gc.collect()
    assert len(PARTS) <= before
