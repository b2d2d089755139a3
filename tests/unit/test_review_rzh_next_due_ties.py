"""Reviewer RZH (issue 25, helper ZH): the warm clock (clock.next_due with a patient) now takes the lesions' first
moment before the labs' one; on an equal instant written in another offset, min() keeps the first, so the stored
next_due's bytes (its offset) change from the base e1e70cb (labs, lesions, assessment: the cold path's order)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from contracts.base import derived_id
from contracts.hospital import ImagingFinding
from services.scoring.clock import next_due
from services.scoring.domain import ScoringState, apply_event, forget_memos
from services.scoring.rules import DEFAULT_POLICY
from tests.unit.test_scoring_crisis import cc

L = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)  # the labs (the lab system writes UTC)
PARIS_SUMMER = timezone(timedelta(hours=2))
# the lesion's fact ends its currency at the very instant the labs end theirs, written in +02:00 (the PACS's offset)
F = (L + DEFAULT_POLICY.calcium_current - DEFAULT_POLICY.lesion_event_current).astimezone(PARIS_SUMMER)
NOW = L + timedelta(hours=1)


def _finding() -> ImagingFinding:
    return ImagingFinding(
        event_id=uuid.UUID(int=7),
        patient_id="p1",
        occurred_at=F,
        recorded_at=F,
        source="pacs",
        lesion_id="T8-a",
        skeletal_site="spine",
        vertebral_level="T8",
        modality="mri",
        cord_compression=True,
    )


def _state(labs: int) -> ScoringState:
    forget_memos()
    s = ScoringState()
    for i in range(labs):
        s, _ = apply_event(s, cc(2.4, rid=f"corrected:ca:{i}", at=L), now=NOW)
    s, _ = apply_event(s, _finding(), now=NOW)
    return s


def test_the_tie_is_an_equal_instant() -> None:
    assert F + DEFAULT_POLICY.lesion_event_current == L + DEFAULT_POLICY.calcium_current


def test_a_cold_state_keeps_the_labs_moment_on_a_tie() -> None:
    s = _state(3)  # a small state: remembered too since stop 34 (clock.next_due with the patient)
    assert s.next_due is not None and s.next_due.isoformat() == "2026-11-04T08:00:01+00:00"
    # the full scan (no patient: clock._scanned, the tests' oracle) keeps the same moment, in the same offset
    for state in (s, _state(30)):
        full = next_due(state, NOW)
        assert full is not None and full.isoformat() == "2026-11-04T08:00:01+00:00"


def test_a_warm_state_keeps_the_labs_moment_on_a_tie_as_the_base_does() -> None:
    s = _state(30)  # clock.next_due with the patient
    assert s.next_due == L + DEFAULT_POLICY.calcium_current + timedelta(seconds=1)  # same instant either way
    # the stored state's bytes: e1e70cb (and any cold state) '"next_due":"2026-11-04T08:00:01Z"' (the lab's offset);
    # zh '"next_due":"2026-11-04T10:00:01+02:00"' (the lesion's)
    assert '"next_due":"2026-11-04T08:00:01Z"' in s.model_dump_json()


def test_a_replayed_tick_is_the_same_message_as_the_base_s() -> None:
    """devstack/replay.py (the impact tool's replay) builds the tick from the state's next_due as is: its event ID
    (derived from due.isoformat()) and occurred_at, and so every output's caused_by, follow the offset."""
    s = _state(30)
    assert s.next_due is not None
    fired = s.next_due + timedelta(milliseconds=1)
    tick_id = derived_id("clock", "scoring", "p1", s.next_due.isoformat(), fired.isoformat())
    due = datetime(2026, 11, 4, 8, 0, 1, tzinfo=UTC)
    assert tick_id == derived_id(
        "clock", "scoring", "p1", due.isoformat(), (due + timedelta(milliseconds=1)).isoformat()
    )
