"""Review RS (issue 25, HAZ-25-SCORING-03): scoring's memos recognise a part by its stored JSON (state.same_part), and
JSON keeps a time's offset, not its time-zone object. A window added to a time in a ZoneInfo zone is wall-clock
arithmetic (across a DST change it ends an hour apart from the same time with a fixed offset), so what was decided
from ZoneInfo times is not what a cold process decides from the same state parsed again. The runtime decodes every
input from JSON (fixed offsets, shared/runtime/decoding.py): that is the control, checked here; the in-process case is
the hazard's residual, pinned as an expected failure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring.domain import ScoringState, apply_event, forget_memos
from shared.runtime.decoding import json_decoder

PARIS = ZoneInfo("Europe/Paris")
PAIN_AT = datetime(2021, 3, 10, 12, 0, tzinfo=PARIS)  # its 30-day window (SCORE-MIRELS pain) ends after 28 March


def _env(at: datetime, n: int) -> dict[str, Any]:
    return {
        "event_id": uuid.UUID(int=n),
        "patient_id": "p-rs-tz",
        "occurred_at": at,
        "recorded_at": at + timedelta(hours=1),
        "source": "h",
    }


def _history() -> tuple[list[Message], Message]:
    """Enough records for the memos (ScoringState.warm), a lesion's pain dated before the DST change, then a finding."""
    out: list[Message] = []
    for i in range(30):
        d = PAIN_AT - timedelta(days=35 - i)
        out.append(
            ImagingFinding.model_validate(
                {**_env(d, 2 * i + 1), "lesion_id": f"x{i}", "skeletal_site": "humerus", "modality": "ct", "size_cm": 1}
            )
        )
        out.append(ClinicalAssessment.model_validate({**_env(d + timedelta(hours=2), 2 * i + 2), "ecog": 1}))
    out.append(
        ClinicalAssessment.model_validate(
            {**_env(PAIN_AT, 100), "lesion_pain": [{"lesion_id": "x0", "intensity": "mild"}]}
        )
    )
    last = ImagingFinding.model_validate(
        {**_env(PAIN_AT + timedelta(days=3), 101), "lesion_id": "x1", "skeletal_site": "humerus", "modality": "ct"}
    )
    return out, last


def _decoded(e: Message) -> Message:
    """As the runtime decodes a record (shared/runtime/decoding.py json_decoder)."""

    class _Record:
        value = e.model_dump_json().encode()

    return json_decoder(type(e))(_Record())  # type: ignore[return-value]


def _memoised_and_cold(events: list[Message], last: Message) -> tuple[str, str]:
    """The state after `last`, applied to the stored state parsed again: with the memos the history left, and cold."""
    forget_memos()
    s = ScoringState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
    stored = s.model_dump_json()
    warm, _ = apply_event(ScoringState.model_validate_json(stored), last, now=last.recorded_at)
    forget_memos()
    cold, _ = apply_event(ScoringState.model_validate_json(stored), last, now=last.recorded_at)
    return warm.model_dump_json(), cold.model_dump_json()


def test_a_decoded_time_adds_a_window_in_absolute_time() -> None:
    """The control: a decoded time carries a fixed offset, so a window crossing a DST change ends at the same
    instant whatever the object (what same_part's content match relies on)."""
    f = _decoded(_history()[0][-1])
    assert not isinstance(f.occurred_at.tzinfo, ZoneInfo)
    month = timedelta(days=30)
    assert (f.occurred_at + month).utcoffset() == f.occurred_at.utcoffset()
    assert (PAIN_AT + month).utcoffset() != PAIN_AT.utcoffset()  # the ZoneInfo object's is wall-clock


def test_decoded_inputs_across_a_dst_change_decide_what_a_cold_process_does() -> None:
    events, last = _history()
    warm, cold = _memoised_and_cold([_decoded(e) for e in events], _decoded(last))
    assert warm == cold


@pytest.mark.xfail(
    strict=True,
    reason="HAZ-25-SCORING-03 residual: ZoneInfo times built in process (never decoded) are matched by their JSON",
)
def test_zoneinfo_inputs_in_process_decide_what_a_cold_process_does() -> None:
    events, last = _history()
    warm, cold = _memoised_and_cold(events, _decoded(last))
    assert warm == cold
