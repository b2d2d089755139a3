"""Issue 25, lab-normalisation's per-event cost (services/lab_normalisation/state.py, shared/runtime/parts_json.py):
what makes it cheaper changes no value. A stored result's draw time shares one tzinfo object per offset (same
instant, offset and JSON); the stored JSON joined from each result's entry is pydantic's document, and an entry
leaves with its result; the pairing windows' bisection (LAB-CA-CORR L316) holds every candidate within reach, also
for times of a named zone across a DST change (an HL7 time without an offset)."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from services.lab_normalisation.state import _AT, LabState, StoredResult, _near_slice
from shared.runtime.parts_json import StoredJson
from tests.unit.test_issue25_lab_retention import apply_with
from tests.unit.test_lab_domain import CFG, T0, result

PARIS = ZoneInfo("Europe/Paris")


def _state_with_offsets() -> LabState:
    s = LabState()
    for i in range(6):
        at = (T0 + timedelta(hours=5 * i)).astimezone(PARIS if i % 2 else UTC)
        s, _ = apply_with(CFG, s, result("total_calcium", 2.3 + i / 10, "mmol/L", rid=f"ca{i}", at=at))
        s, _ = apply_with(CFG, s, result("albumin", 30 + i, "g/L", rid=f"alb{i}", at=at))
    return s


def test_a_parsed_state_shares_one_tzinfo_per_offset_and_writes_the_same_json() -> None:
    stored = _state_with_offsets().model_dump_json()
    state = LabState.model_validate_json(stored)
    zones: dict[object, set[int]] = {}
    for r in state.results.values():
        zones.setdefault(r.occurred_at.utcoffset(), set()).add(id(r.occurred_at.tzinfo))
    assert len(zones) == 2 and all(len(objects) == 1 for objects in zones.values())
    assert state.model_dump_json() == stored  # the same offsets, instants and text
    assert BaseModel.model_dump_json(state) == BaseModel.model_dump_json(LabState.model_validate_json(stored))


def test_the_stored_json_is_pydantics_and_an_entry_leaves_with_its_result() -> None:
    dumper = StoredJson(("results",), fields=("dropped", "revised"), keep_maps=False)
    s = _state_with_offsets()
    assert json.loads(dumper.dump(s)) == json.loads(BaseModel.model_dump_json(s))
    # a result replaced (a newer version), one dropped: the table is written again from its entries
    first = next(iter(s.results))
    results = dict(s.results)
    results[first] = results[first].model_copy(update={"value": 9.9})
    del results[list(results)[-1]]
    s2 = s.model_copy(update={"results": results})
    assert json.loads(dumper.dump(s2)) == json.loads(BaseModel.model_dump_json(s2))
    held = len(dumper.entries)
    del s, s2, results
    gc.collect()
    assert len(dumper.entries) < held  # the replaced and dropped results' entries left with them


def _drawn(minutes: list[int], zone: ZoneInfo) -> list[StoredResult]:
    # draws around the night Paris leaves summer time (2026-10-25), in one shared named zone (wall-clock arithmetic)
    base = datetime(2026, 10, 23, 12, 0, tzinfo=zone)
    out = [
        StoredResult.model_validate(
            {
                "result_id": f"r{i}",
                "event_id": "00000000-0000-0000-0000-000000000001",
                "analyte": "albumin",
                "value": 30.0,
                "unit": "g/L",
                "occurred_at": base + timedelta(minutes=m),
                "recorded_at": base + timedelta(minutes=m),
                "status": "final",
            }
        )
        for i, m in enumerate(minutes)
    ]
    out.sort(key=lambda r: (r.occurred_at, r.result_id))  # _active's order (draw time first)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=6 * 24 * 60), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=6 * 24 * 60),
    st.sampled_from([PARIS, UTC]),
)
def test_the_bisection_holds_every_result_within_reach(minutes: list[int], at_minute: int, zone: ZoneInfo) -> None:
    ordered = _drawn(minutes, zone)
    at = datetime(2026, 10, 23, 12, 0, tzinfo=zone) + timedelta(minutes=at_minute)
    reach = timedelta(hours=48)  # LAB-CA-CORR's window (L316)
    within = [r for r in ordered if abs(r.occurred_at - at) <= reach]
    sliced = ordered[_near_slice(ordered, at, reach, _AT)]
    assert all(r in sliced for r in within)
    assert [r for r in sliced if abs(r.occurred_at - at) <= reach] == within  # the same order


def test_odd_offsets_beyond_the_cap_are_kept_as_sent() -> None:
    from services.lab_normalisation import state as domain

    made = [
        StoredResult.model_validate_json(
            json.dumps(
                {
                    "result_id": f"r{i}",
                    "event_id": "00000000-0000-0000-0000-000000000001",
                    "analyte": "albumin",
                    "value": 30.0,
                    "unit": "g/L",
                    "occurred_at": f"2026-10-23T12:00:00+{i // 60:02d}:{i % 60:02d}",
                    "recorded_at": "2026-10-23T12:00:00Z",
                    "status": "final",
                }
            )
        )
        for i in range(domain._MAX_ZONES + 50)
    ]
    assert len(domain._ZONES) <= domain._MAX_ZONES
    assert [r.occurred_at.utcoffset() for r in made] == [timedelta(minutes=i) for i in range(len(made))]
