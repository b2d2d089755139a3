"""Issue 25 (helper ZD): two cost cuts of the systemic planner that must change no byte.

1. `SystemicSettings.as_of` gives `now` the tzinfo object of the datetimes parsed from messages (rules.PARSED_UTC),
   as are the span's bounds and the midnights: the same instants, compared faster. A history decided that way gives
   the same outputs and stored states, byte for byte, as one decided with `now` in `datetime.UTC` and every family
   computed afresh (the memo off).
2. The stored JSON writes the fields StoredJson leaves to pydantic field by field (stored._StoredState): the same
   bytes as StoredJson's own `dump` at every step of generated histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pydantic import TypeAdapter

from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event
from services.systemic_planner.settings import SystemicSettings
from services.systemic_planner.stored import STORED
from shared.runtime.parts_json import StoredJson
from tests.unit.test_issue25_systemic_history import history, now_for, replay


def test_parsed_utc_is_the_tzinfo_of_parsed_datetimes() -> None:
    parsed = TypeAdapter(datetime).validate_json(b'"2026-03-01T10:00:00+00:00"')
    assert parsed.tzinfo is r.PARSED_UTC  # else the cut buys nothing (still correct: the same instants)
    now = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    at = SystemicSettings().as_of(now)
    assert at.now == now and at.now.tzinfo is r.PARSED_UTC
    assert r.EARLIEST.tzinfo is r.PARSED_UTC and r.LATEST.tzinfo is r.PARSED_UTC
    # another offset, or no time zone, is left as it is
    paris = datetime(2026, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert r.as_parsed_utc(paris) is paris
    naive = datetime(2026, 3, 1, 10, 0)
    assert r.as_parsed_utc(naive) is naive


def test_a_history_decided_with_now_in_parsed_utc_gives_the_same_bytes() -> None:
    settings = SystemicSettings()
    events = history(3, years=2.0)
    fast = ref = SystemicState()
    outputs = 0
    for step, e in enumerate(events, start=1):
        now = now_for(e)
        assert now.tzinfo is UTC  # the reference's `now`: not the parsed tzinfo object
        fast, out_fast = apply_event(fast, e, settings.as_of(now))
        ref, out_ref = apply_event(ref, e, r.AsOf(now=now, tz=settings.as_of(now).tz, memo=False))
        assert [o.model_dump_json() for o in out_fast] == [o.model_dump_json() for o in out_ref], step
        assert fast.model_dump_json() == ref.model_dump_json(), step
        assert fast.next_due == ref.next_due, step
        outputs += len(out_fast)
    assert len(events) > 100 and outputs > 20


def test_the_stored_json_is_storedjsons_bytes_at_every_step() -> None:
    seen = {"life_expectancies": 0, "drug_replays": 0, "next_due": 0}
    steps = 0
    for seed in (2, 5):
        for state, _ in replay(history(seed, years=3.0)):
            steps += 1
            assert state.model_dump_json() == StoredJson.dump(STORED, state), steps
            for name in seen:
                seen[name] += bool(getattr(state, name))
    assert steps > 200
    assert all(seen.values()), seen  # every field written apart was written non-empty somewhere
    # the scores of these histories name no missing criterion: a state that lists some
    listed = state.model_copy(update={"oligo_missing": ["bone scan", 'a "quoted" one']})
    assert listed.model_dump_json() == StoredJson.dump(STORED, listed)
    empty = SystemicState()
    assert empty.model_dump_json() == StoredJson.dump(STORED, empty)
