"""Issue 25, RT-FLAT (session 33): the radiotherapy planner keeps a lesion's whole section on one short key (the union
of what its families' keys read, the patient-level part interned once per decision: memo.patient_key,
memo.section) and reads the facts dated ahead once per event (`as_of.ahead`, for the plan and the deadline).

Differential: a patient's long history (devstack/cohort.py `patient_history`) and a small cohort are replayed through
the planner and its upstream services' pure transitions (devstack/replay.py); the planner's own input stream (hospital
records, the upstream services' outputs) is then applied event by event twice, from the empty state: warm (the section
and family memos as the service runs them) and cold (every memo and table fingerprint forgotten before each event:
`memo.clear()`, so every family is built from the facts). At every event the outputs (topic, key, value as published)
and the stored state JSON are the same, and so is the plan served from that state (`current_plan`, rebuilt). Also at
a clock shared by runs of events (only what an event brings changes a key), on test_dt_rt_differential's random
histories (assessments split one thing each), and on the cases those histories do not reach: a compression leaving
its window within the day, the lesion's own pain alone. Each part of the section's key left out fails one of them
(checked by hand, session 33: cur, the requests, the lesion's pain, mirels, sins, opinions, surgeries, radiotherapy,
drugs, labs, the families' facts; le_key, the day and oligometastatic fail the warm/cold tests already held:
test_review_r28fin_rt_warm_cold, test_review_zn_le_shown, test_rt_mscc_memo_day)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.base import Message
from contracts.hospital import ClinicalAssessment
from devstack.cohort import Cohort, patient_history
from devstack.replay import Record, Replay
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, build_plan, current_plan
from services.radiotherapy_planner.facts import LocalState
from shared.runtime.kafka import Outgoing
from tests.unit import test_dt_rt_differential as drt
from tests.unit.test_issue18_local import NOW, env, request, vertebra

RT = "radiotherapy-planner"
#: the services the planner reads from (bench/history.py UPSTREAM), and the planner
ACTIVE = ("lab-normalisation", "scoring", RT)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def _stream(generated: Iterable[Any]) -> tuple[Replay, list[tuple[str, Record]]]:
    """The planner's input records, with the patient of each, in the order it applied them."""
    records: list[tuple[str, Record]] = []

    def on_apply(service: str, patient: str, rec: Record, state: BaseModel) -> None:
        if service == RT:
            records.append((patient, rec))

    replay = Replay(keep=False, on_apply=on_apply, store=False)
    for topic in list(replay.routes):
        replay.routes[topic] = [(n, sub) for n, sub in replay.routes[topic] if n in ACTIVE]
    replay.run(generated)
    return replay, records


def _run(
    replay: Replay, records: list[tuple[str, Record]], cold: bool, quantum: timedelta | None
) -> list[tuple[Any, ...]]:
    """Each event's outputs, stored state and served plan, the memos warm or forgotten before every event. `quantum`:
    the clock is the record's time rounded up to it, so that runs of events are decided at one time (the day, the
    currencies and the remainder of the life expectancy the same): then only what the event brings tells a section's
    key from the last one, and a part of what the families read missing from it shows."""
    service = replay.services[RT]
    memo.clear()
    states: dict[str, LocalState] = {}
    seen = []
    for patient, rec in records:
        if cold:
            memo.clear()
        replay.now = datetime.fromtimestamp(rec.timestamp / 1000, UTC)  # the service's clock (replay.py)
        if quantum is not None:
            replay.now = EPOCH + -((EPOCH - replay.now) // quantum) * quantum
        sub = service.subscriptions[rec.topic]
        assert sub.aggregate is not None
        state = states.get(patient) or LocalState()
        try:
            state, outputs = sub.aggregate[1](state, sub.decode(rec))
            out = [(o.topic, o.key, o.value) for o in map(Outgoing.of, outputs)]
        except Exception as e:  # a refused event leaves the state as it was (as the runtime): refused alike
            out = [("refused", type(e).__name__, str(e))]
        states[patient] = state
        if cold:
            memo.clear()
        plan = current_plan(state, patient)
        seen.append(
            (patient, rec.topic, out, state.model_dump_json(), None if plan is None else plan.model_dump_json())
        )
    return seen


def _same(generated: Iterable[Any], at_least: int, quantum: timedelta | None = None) -> int:
    replay, records = _stream(generated)
    assert len(records) >= at_least
    warm = _run(replay, records, False, quantum)
    cold = _run(replay, records, True, quantum)
    for i, (w, c) in enumerate(zip(warm, cold, strict=True)):
        assert w == c, f"event {i} ({w[1]}) of patient {w[0]}: warm and cold differ"
    assert any(w[2] for w in warm)  # something was published
    return len(records)


@pytest.mark.parametrize("quantum", [None, timedelta(days=30)])
def test_a_long_history_warm_equals_cold_at_every_event(quantum: timedelta | None) -> None:
    """One patient, dense (many lesions by the end: the sections reused across events), decided at each record's
    time, and at times shared by a month of records."""
    assert _same(patient_history(1, 1200), 400, quantum) > 0


@pytest.mark.parametrize("seed", [3, 7])
def test_a_small_cohort_warm_equals_cold_at_every_event(seed: int) -> None:
    """Several patients interleaved (the memos shared between them), realistic density, a week of records decided at
    one time."""
    assert _same(Cohort(seed, 4, 3.0).events(), 100, timedelta(days=7)) > 0


def test_a_section_is_kept_on_the_patient_facts_it_reads() -> None:
    """The patient-level part of a section's key: the same parts give the same int, other parts another one, and an
    int is never given again after the table is forgotten (no entry made for other facts is ever hit)."""
    memo.clear()
    a = memo.patient_key(("x", (1, 2)))
    assert memo.patient_key(("x", (1, 2))) == a
    b = memo.patient_key(("x", (1, 3)))
    assert b != a
    memo.clear()
    assert memo.patient_key(("x", (1, 2))) not in (a, b)


def test_a_compression_leaving_its_window_within_the_day_is_decided_again() -> None:
    """RT-MSCC (L1397-1402): a compression seen 42 days ago is current at 11:00 and stale at 13:00 the same day; the
    patient's facts and the day are the same, so only the currency in the section's key tells the two decisions
    apart (the section decided at 11:00 must not be reused at 13:00)."""
    seen = datetime(2026, 10, 9, 12, tzinfo=UTC)
    s = LocalState()
    for e in (vertebra(at=seen, cord_compression=True, epidural_extension=True, status="confirmed"),):
        s, _ = apply_event(s, e, now=seen)
    before, after = datetime(2026, 11, 20, 11, tzinfo=UTC), datetime(2026, 11, 20, 13, tzinfo=UTC)

    def mscc(now: datetime) -> list[tuple[str, str, str]]:
        return [
            (i.key, i.status, i.severity) for x in build_plan(s, now=now) for i in x.items if i.rule_id == "RT-MSCC"
        ]

    memo.clear()
    warm = (mscc(before), mscc(after))
    memo.clear()
    cold_before = mscc(before)
    memo.clear()
    assert warm == (cold_before, mscc(after))
    assert warm[0] != warm[1]  # the emergency is current, then not


_ENVELOPE = frozenset({"event_id", "patient_id", "occurred_at", "recorded_at", "source", "record_status", "corrects"})


def _split(events: list[Message]) -> list[Message]:
    """Each original assessment as one assessment per thing it says (a second apart, in its order): an event then
    changes one fact only (the lesion's pain alone, the surgeon's opinion alone)."""
    out: list[Message] = []
    for e in events:
        said = e.model_dump(exclude_unset=True) if isinstance(e, ClinicalAssessment) else {}
        if not said or said.get("record_status", "final") != "final":
            out.append(e)
            continue
        envelope = {k: v for k, v in said.items() if k in _ENVELOPE}
        for i, (k, v) in enumerate(x for x in said.items() if x[0] not in _ENVELOPE):
            at = e.occurred_at + i * timedelta(seconds=1)
            event_id = uuid.uuid5(e.event_id, k)
            whole = {**envelope, "event_id": event_id, "occurred_at": at, "recorded_at": at, k: v}
            out.append(ClinicalAssessment.model_validate(whole))
    return out


@pytest.mark.parametrize(("future", "split"), [(False, False), (True, False), (False, True)])
def test_random_histories_decided_at_one_time_warm_equal_cold_at_every_event(future: bool, split: bool) -> None:
    """test_dt_rt_differential's histories (findings of one or two lesions, assessments with a surgeon's opinion, the
    patient's and the lesion's pain, courses, decompressions, platelet counts, a request; with `future`, records dated
    ahead and corrections), every event decided at one clock: only what each event brings changes a section's key,
    so every part of what the families read is needed in it (the lesion's own pain, the opinions, the labs...).
    `split`: each assessment as one per thing it says."""
    for seed in range(150):
        warm: list[tuple[list[str], str]] = []
        cold: list[tuple[list[str], str]] = []
        for bucket, forget in ((warm, False), (cold, True)):
            memo.clear()
            s = LocalState()
            for e in _split(drt.history(seed, future)) if split else drt.history(seed, future):
                if forget:
                    memo.clear()
                s, out = apply_event(s, e, now=NOW)
                bucket.append(([o.model_dump_json() for o in out], s.model_dump_json()))
        assert warm == cold, seed


def test_the_lesion_s_own_pain_alone_decides_its_section_again() -> None:
    """RT palliative (the lesion's pain resistant to analgesics, keyed "pain_resistant_to_analgesics@t8"): an
    assessment that says only the lesion's pain changes no patient-level fact the sections read; the section decided
    before it must not be reused (its own facts are in the section's key: Fingerprints.lesion_reads)."""
    t8 = [{"lesion_id": "t8", "resistant_to_analgesics": False}]
    events = [
        vertebra(at=NOW - 3 * DAY, status="confirmed"),
        request("t8", "palliative_rt", at=NOW - 2 * DAY),
        ClinicalAssessment.model_validate(env(NOW - 5 * HOUR, frail=False, lesion_pain=t8)),
        ClinicalAssessment.model_validate(
            env(NOW - 2 * HOUR, lesion_pain=[{**t8[0], "resistant_to_analgesics": True}])
        ),
    ]

    def pain(s: LocalState) -> list[tuple[str, str]]:
        return [(i.key, i.status) for x in build_plan(s, now=NOW) for i in x.items if i.key == "t8:rt-pain"]

    memo.clear()
    s, seen = LocalState(), []
    for e in events:
        s, _ = apply_event(s, e, now=NOW)
        warm = pain(s)
        memo.clear()
        assert warm == pain(s)
        seen.append(warm)
    assert seen[-1] == [("t8:rt-pain", "recommended")] != seen[-2]
