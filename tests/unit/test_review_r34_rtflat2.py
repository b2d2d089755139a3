"""Review R34-RTFLAT2 (session 34) of d19dfba (issue 25, RT-FLAT2): the radiotherapy planner's new caches.

1. Stored bytes (services/radiotherapy_planner/stored.py `dump`, `Entries`): on adversarial histories (corrections,
   entered-in-error, duplicates, requests cancelled and reopened, haemostasis labs replaced, scores withdrawn), with
   ignored events (dental care) and clock ticks inserted, states parsed again from JSON between events and several
   patients interleaved, the stored JSON after EVERY event is pydantic's own document and loads back equal, and no
   state is changed in place after it was stored (every state kept and checked again at the end). The review found
   a latent gap: `dump` reused a state's text when a dict field not in MAPS was changed in place with the same length
   (`published`, a nested `labs` table; no production path did, but main wrote them afresh every time). The reuse
   was removed: the two tests below were strict xfails and pass.
2. Drug fold (retention_drugs.fold_writers): equal to main's `_writers` (copied here from main's retention.py) on
   random drug histories and random reference dates (the day either side of each event included).
3. Memory and keying: each new cache bounded; an entry is never served for another object.
"""

from __future__ import annotations

import gc
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from contracts.base import Message
from contracts.clock import ClockTick
from contracts.hospital import TreatmentEvent
from services.radiotherapy_planner import memo, retention_drugs, stored
from services.radiotherapy_planner.domain import SERVICE, apply_event
from services.radiotherapy_planner.facts import LabFact, LocalState, ScoreFact
from tests.unit.test_issue25_local_retention import histories
from tests.unit.test_s34_rt_flat2 import _writers_main  # main's retention._writers, verbatim

# ---- 1. stored bytes ---------------------------------------------------------------------------------------------


def _pydantic(s: LocalState) -> Any:
    return json.loads(BaseModel.model_dump_json(s))


def _dental(n: int, at: datetime, patient: str) -> TreatmentEvent:
    """A dental-care record, final: the planner reads nothing from it (apply_event returns the state it was given)."""
    return TreatmentEvent.model_validate(
        {
            "event_id": str(uuid.UUID(int=10**9 + n, version=4)),
            "patient_id": patient,
            "occurred_at": at.isoformat(),
            "recorded_at": at.isoformat(),
            "source": "test",
            "treatment": {"kind": "dental", "action": "assessment", "on": at.date().isoformat()},
        }
    )


def _tick(n: int, at: datetime, patient: str) -> ClockTick:
    return ClockTick(
        event_id=uuid.UUID(int=2 * 10**9 + n, version=4),
        patient_id=patient,
        occurred_at=at,
        recorded_at=at,
        source=SERVICE,
        service=SERVICE,
        due_at=at,
    )


def _check(s: LocalState, kept: list[tuple[LocalState, Any, str]]) -> None:
    text = s.model_dump_json()
    want = _pydantic(s)
    assert json.loads(text) == want, "the stored JSON is not pydantic's document of the state"
    assert LocalState.model_validate_json(text) == s
    assert s.model_dump_json() == text  # stored again unchanged
    kept.append((s, want, text))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(), st.randoms(use_true_random=False))
def test_stored_json_is_pydantics_after_every_event_of_interleaved_adversarial_histories(
    events: list[Message], rnd: Any
) -> None:
    """Three patients take the same history in turns (the caches shared), with ignored events and clock ticks
    inserted and, now and then, the state parsed again from its stored JSON (as after a rebuild or on another
    instance). Every state is kept (no weak
    entry leaves) and checked again at the end: none was changed in place after it was stored."""
    memo.clear()
    states = {p: LocalState() for p in ("pa", "pb", "pc")}
    kept: list[tuple[LocalState, Any, str]] = []
    n = 0
    for e in events:
        now = e.recorded_at + timedelta(minutes=1)
        for p in states:
            n += 1
            s = states[p]
            extra: list[Message] = []
            if rnd.random() < 0.3:
                extra.append(_dental(n, e.recorded_at, p))
            if rnd.random() < 0.2:
                extra.append(_tick(n, now, p))
            for m in [*extra[:1], e, *extra[1:]]:
                s, _ = apply_event(s, m, now=now)
                _check(s, kept)
            if rnd.random() < 0.15:  # parsed again between events
                s = LocalState.model_validate_json(s.model_dump_json())
                _check(s, kept)
            states[p] = s
    for s, want, text in kept:  # nothing stored was changed in place since
        assert _pydantic(s) == want
        assert s.model_dump_json() == text


def test_an_ignored_event_returns_the_same_state_and_the_same_bytes() -> None:
    s, _ = apply_event(
        LocalState(), _tick(1, datetime(2025, 1, 1, tzinfo=UTC), "p"), now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    text = s.model_dump_json()
    again, out = apply_event(s, _dental(1, datetime(2025, 1, 2, tzinfo=UTC), "p"))
    assert again is s and out == [] and again.model_dump_json() == text


def _lab(value: float, at: datetime) -> LabFact:
    return LabFact(value=value, withdrawn=False, occurred_at=at, recorded_at=at, event_id=uuid.uuid4(), comparator=None)


def test_a_nested_lab_table_filled_in_place_is_written_again() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    s = LocalState(labs={"platelets": {"r1": _lab(80.0, at)}})
    s.model_dump_json()
    s.labs["platelets"]["r2"] = _lab(30.0, at + timedelta(days=1))  # the top-level length unchanged
    assert json.loads(s.model_dump_json()) == _pydantic(s)


def test_a_published_item_replaced_in_place_is_written_again() -> None:
    s = LocalState(published={"item": "RT-DRUG|id-1|d1"})
    s.model_dump_json()
    s.published["item"] = "RT-DRUG|id-2|d2"
    assert json.loads(s.model_dump_json()) == _pydantic(s)


# ---- 2. drug fold vs main's ----------------------------------------------------------------------------------------
def _fold_main(events: list[TreatmentEvent], points: list[date]) -> set[int]:
    """main's loop in retention._treatments for one drug."""
    ordered = sorted(events, key=retention_drugs.fold_key, reverse=True)
    keep = {id(e) for e in _writers_main(ordered)}
    for p in points:
        keep.update(id(e) for e in _writers_main([e for e in ordered if e.treatment.on <= p]))
    return keep


D0 = date(2024, 5, 1)


@st.composite
def drug_events(draw: st.DrawFn) -> list[TreatmentEvent]:
    out = []
    for i in range(draw(st.integers(0, 14))):
        on = D0 + timedelta(days=draw(st.integers(0, 6)))  # several the same day, often
        shape = draw(st.sampled_from(("started", "stopped", "dose", "dose")))
        status = draw(st.sampled_from(("final", "final", "final", "amended", "entered-in-error")))
        treatment: dict[str, Any] = (
            {"kind": "systemic_drug", "drug": "gemcitabine", "action": shape, "on": on.isoformat()}
            if shape != "dose"
            else {
                "kind": "drug_administration",
                "drug": "gemcitabine",
                "on": on.isoformat(),
                "ongoing": draw(st.sampled_from((None, True, False))),
                "daily_dose_mg": draw(st.sampled_from((None, 75.0, 1000.0))),
            }
        )
        at = datetime.combine(on, datetime.min.time(), UTC) + timedelta(hours=draw(st.integers(0, 30)))
        out.append(
            TreatmentEvent.model_validate(
                {
                    "event_id": str(uuid.UUID(int=draw(st.integers(1, 10**6)) * 64 + i, version=4)),
                    "patient_id": "p",
                    "occurred_at": at.isoformat(),
                    "recorded_at": at.isoformat(),
                    "source": "test",
                    "record_status": status,
                    "corrects": str(uuid.UUID(int=i + 1, version=4)) if status != "final" else None,
                    "treatment": treatment,
                }
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    drug_events(),
    st.lists(st.integers(-2, 9).map(lambda k: D0 + timedelta(days=k)), max_size=5),
    st.booleans(),
)
def test_fold_writers_keeps_what_mains_fold_keeps(events: list[TreatmentEvent], points: list[date], warm: bool) -> None:
    """RT-DRUG (L1948-2014, Tableau 6 L2358-2420: gemcitabine 4 weeks before) and IR-CEMENT (L2636: DOACs 48 h) read
    the last dose, whether the drug is taken and the daily dose: the events kept must be main's, at every reference
    date (before, on and after the events' days), warm (the same list folded before) or cold."""
    if not warm:
        retention_drugs._WRITERS.clear()
    want = _fold_main(events, points)
    assert {id(e) for e in retention_drugs.fold_writers(events, points)} == want
    assert {id(e) for e in retention_drugs.fold_writers(list(reversed(events)), points[::-1])} == want  # any order


# ---- 3. memory and keying ------------------------------------------------------------------------------------------
def test_the_writers_cache_is_bounded_and_served_only_for_the_same_events() -> None:
    retention_drugs._WRITERS.clear()
    one = TreatmentEvent.model_validate(
        {
            "event_id": str(uuid.UUID(int=5, version=4)),
            "patient_id": "p",
            "occurred_at": "2024-05-01T08:00:00+00:00",
            "recorded_at": "2024-05-01T08:00:00+00:00",
            "source": "test",
            "treatment": {"kind": "systemic_drug", "drug": "gemcitabine", "action": "started", "on": "2024-05-01"},
        }
    )
    for i in range(retention_drugs.WRITERS_SIZE + 50):
        e = one.model_copy(update={"event_id": uuid.UUID(int=i + 100, version=4)})
        got = retention_drugs.writers([e])
        assert len(got) == 1 and got[0] is e  # never another event's writers
        assert len(retention_drugs._WRITERS) <= retention_drugs.WRITERS_SIZE
    retention_drugs._WRITERS.clear()


def test_dumps_of_states_and_records_that_died_leave_and_are_not_served_again() -> None:
    """Entries and the state texts leave with their objects (weak references); a new object at a reused address is
    written as itself."""
    stored.STORED._bodies.clear()
    gc.collect()
    at = datetime(2025, 1, 1, tzinfo=UTC)
    entries0 = len(stored.STORED.entries)
    for i in range(296):
        s = LocalState(scores={}, labs={"platelets": {"r": _lab(float(i), at)}}, plan_version=i)
        assert json.loads(s.model_dump_json()) == _pydantic(s)
        del s
    for i in range(200):  # records: a new object at a freed address gets its own text, under its own key
        f = ScoreFact(
            total=i, band=None, complete=True, floor=None, occurred_at=at, recorded_at=at, event_id=uuid.uuid4()
        )
        s = LocalState(scores={f"sins:{i}": f})
        assert json.loads(s.model_dump_json())["scores"] == {f"sins:{i}": json.loads(f.model_dump_json())}
        moved = s.model_copy(update={"scores": {"oligo": f}})  # the same record under another key
        assert json.loads(moved.model_dump_json())["scores"] == {"oligo": json.loads(f.model_dump_json())}
        del s, moved, f
    stored.STORED._bodies.clear()  # the bodies hold their tables (and records) strongly, bounded by BODIES_SIZE
    gc.collect()
    assert len(stored.STORED.entries) <= entries0  # the records' texts left with them
