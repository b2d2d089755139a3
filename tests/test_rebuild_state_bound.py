"""Review RY: the replay bounds a patient's state by MAX_STATE_BYTES as the live loop bounds an event delivered in a
batch of its own (rebuild.py `apply_one_per_batch` against shared/runtime/aggregate.py `apply_events`, one event per
call). Pure: no broker, no Redis. The states grow with their events (the live loop's bisection assumes so too); some
events are refused by the pure code. The end-to-end case (a live service, a rebuild) is
tests/test_review_ry_state_limit.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from contracts.base import Message
from shared.errors import Rejected
from shared.runtime.aggregate import apply_events
from shared.runtime.rebuild import Replayed, apply_one_per_batch
from shared.settings import Settings


class Notes(BaseModel):
    notes: list[str] = []


@dataclass(frozen=True)
class Grow:
    size: int
    refused: bool


def grow(state: Notes, event: Grow) -> tuple[Notes, list[Message]]:
    if event.refused:
        raise Rejected("toy: refused")
    return Notes(notes=[*state.notes, "n" * event.size]), []


def outcome(results: Sequence[tuple[Replayed, object, BaseException | None]]) -> list[tuple[str, str] | None]:
    return [None if exc is None else (type(exc).__name__, str(exc)) for _, _, exc in results]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([False, False, False, True])), max_size=40),
    st.integers(100, 4000),
)
def test_the_replay_rejects_what_the_live_loop_rejects_event_by_event(
    events: list[tuple[int, bool]], limit: int
) -> None:
    config = Settings(max_state_bytes=limit)
    items = [Replayed(None, grow, Grow(size, refused), f"e{i}", True) for i, (size, refused) in enumerate(events)]
    live_state, live = Notes(), []
    for item in items:  # the live loop, each event in its own batch
        live_state, _, _, results = apply_events(live_state, [item], config)  # type: ignore[assignment]
        live += results
    state, replayed = apply_one_per_batch(Notes(), items, config)
    assert state == live_state
    assert outcome(replayed) == outcome(live)
    assert [item.key for item, _, _ in replayed] == [item.key for item in items]
    assert len(state.model_dump_json()) <= limit or not state.notes


def test_a_long_replay_past_the_limit_applies_each_event_a_bounded_number_of_times() -> None:
    """A patient at the limit whose next events are all refused for size: each applied a few times, not once per
    later event (runs double after a fit, restart at one after a refusal)."""
    calls = 0

    def counted(state: Notes, event: Grow) -> tuple[Notes, list[Message]]:
        nonlocal calls
        calls += 1
        return grow(state, event)

    config = Settings(max_state_bytes=1000)
    items = [Replayed(None, counted, Grow(100, False), f"e{i}", True) for i in range(2000)]
    state, results = apply_one_per_batch(Notes(), items, config)
    kept = sum(exc is None for _, _, exc in results)
    assert len(state.model_dump_json()) <= 1000 < len(Notes(notes=[*state.notes, "n" * 100]).model_dump_json())
    assert kept == len(state.notes) and len(results) == len(items)
    assert calls <= 4 * len(items)
