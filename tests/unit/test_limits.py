"""shared/runtime/limits.py, pure parts: the fair backlog (batches across patients, commit positions) and the input
checks."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime import limits
from shared.runtime.limits import FairBacklog, check_finite
from shared.runtime.service import Service
from shared.runtime.subscription import Context
from shared.settings import Settings

TP = TopicPartition("t", 0)


def rec(offset: int, key: bytes | None, value: bytes = b"{}") -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, key, value, None, len(key or b""), len(value), [])


def test_a_flooding_patient_does_not_hold_back_the_others() -> None:
    backlog = FairBacklog(read_ahead=10_000, per_patient=100)
    backlog.add({TP: [rec(i, b"A") for i in range(1000)] + [rec(1000, b"B"), rec(1001, b"B")]})
    first = backlog.take(500)
    assert [r.key for r in first] == [b"B", b"B"]  # issue 25: the light patient's batch holds no share of the flood
    assert backlog.done(first) == {TP: 0}  # nothing committed past A's first record, not processed yet
    second = backlog.take(500)
    assert [r.key for r in second].count(b"A") == 100  # A capped per batch
    a_offsets = [r.offset for r in second]
    assert a_offsets == sorted(a_offsets) == list(range(100))  # a patient's records keep their order
    # committed up to the first record not processed yet: A's 101st
    assert backlog.done(second) == {TP: 100}
    assert backlog.size == 900


def test_light_batches_alternate_with_the_floods_share_so_neither_waits_forever() -> None:
    """Issue 25: while one patient floods and others keep arriving, every other batch is the others' alone; the
    batch after it takes the flood's share (and whoever arrived meanwhile): the flood is never starved."""
    backlog = FairBacklog(read_ahead=10_000, per_patient=10)
    backlog.add({TP: [rec(i, b"A") for i in range(50)]})
    offset, keys = 50, []
    for n in range(6):
        backlog.add({TP: [rec(offset, f"P{n}".encode())]})  # another patient's record arrives before each batch
        offset += 1
        keys.append(sorted({r.key for r in backlog.take(500)}))
    assert keys == [[b"P0"], [b"A", b"P1"], [b"P2"], [b"A", b"P3"], [b"P4"], [b"A", b"P5"]]
    only = FairBacklog(read_ahead=10_000, per_patient=10)
    only.add({TP: [rec(i, b"A") for i in range(30)]})
    assert [len(only.take(500)) for _ in range(4)] == [10, 10, 10, 0]  # a flood alone: every batch is its share
    calm = FairBacklog(read_ahead=10_000, per_patient=10)
    calm.add({TP: [rec(0, b"A"), rec(1, b"B"), rec(2, b"A")]})
    assert len(calm.take(500)) == 3  # nobody over its share: one batch, as before


def test_commit_never_passes_an_unprocessed_record() -> None:
    backlog = FairBacklog(read_ahead=10_000, per_patient=1)
    backlog.add({TP: [rec(0, b"A"), rec(1, b"A"), rec(2, b"B")]})
    batch = backlog.take(10)  # B's only (A has more than its share: issue 25)
    assert [r.offset for r in batch] == [2]
    assert backlog.done(batch) == {TP: 0}  # offset 0 (A's first) still held
    batch = backlog.take(10)  # A's first
    assert [r.offset for r in batch] == [0]
    assert backlog.done(batch) == {TP: 1}  # offset 1 (A's second) still held
    assert backlog.done(backlog.take(10)) == {TP: 3}


def test_records_fetched_again_after_a_rebalance_are_not_held_twice() -> None:
    backlog = FairBacklog(read_ahead=10_000)
    backlog.add({TP: [rec(0, b"A"), rec(1, b"A")]})
    backlog.done(backlog.take(1))
    backlog.add({TP: [rec(0, b"A"), rec(1, b"A"), rec(2, b"A")]})  # position reset to the committed offset
    assert [r.offset for r in backlog.take(10)] == [1, 2]


def test_a_revoked_partition_is_forgotten() -> None:
    other = TopicPartition("t", 1)
    backlog = FairBacklog(read_ahead=10_000)
    backlog.add({TP: [rec(0, b"A")]})
    backlog.add({other: [ConsumerRecord("t", 1, 0, 0, 0, b"B", b"{}", None, 1, 2, [])]})
    backlog.retain([other])
    assert [r.key for r in backlog.take(10)] == [b"B"] and backlog.size == 0


def test_read_ahead_is_bounded() -> None:
    backlog = FairBacklog(read_ahead=5)
    backlog.add({TP: [rec(i, b"A") for i in range(5)]})
    assert backlog.room() == 0


def test_nan_or_infinity_in_json_is_refused_before_decoding() -> None:
    svc = Service(Settings(service_name="finite-test"))
    topic = Topic("t", LabResult, (), (), "")

    @svc.subscriber(topic)
    async def h(event: LabResult, ctx: Context) -> list[Message]:
        return []

    now = int(datetime.now(UTC).timestamp() * 1000)
    bad = b'{"patient_id": "pt-1", "value": NaN}'
    decoded = svc.batches.decode(ConsumerRecord("t", 0, 0, now, 0, b"pt-1", bad, None, 4, len(bad), []))
    assert decoded.error is not None and decoded.error[0] == "NonFiniteNumber"
    for fine in (b'{"a": "NaN"}', b'{"a": 1.5}', b"MSH|^~\\&|NaN"):
        assert check_finite(rec(0, b"k", fine)) is None


def test_one_patients_heavy_messages_go_one_per_batch_beside_the_others() -> None:
    """Issue 25: records of hundreds of results each (an HL7 message of 499 OBX is ~25 KB) are capped by bytes per
    patient and batch, one record at least; a light patient's record goes before the first of them, not after all."""
    backlog = FairBacklog(read_ahead=10_000, per_patient=100, per_patient_bytes=32_000)
    heavy = b"x" * 25_000
    tp = TopicPartition("t", 0)
    backlog.add({tp: [rec(i, b"A", heavy) for i in range(5)] + [rec(5, b"B")]})
    batches = [backlog.take(500) for _ in range(6)]
    # the light patient's record first, alone (issue 25: never with a share of the flood), then one of A's per batch
    assert [[r.key for r in b] for b in batches] == [[b"B"], [b"A"], [b"A"], [b"A"], [b"A"], [b"A"]]
    assert [r.offset for b in batches for r in b if r.key == b"A"] == [0, 1, 2, 3, 4]  # in order
    light = FairBacklog(read_ahead=10_000, per_patient=100, per_patient_bytes=32_000)
    light.add({tp: [rec(i, b"A") for i in range(50)]})
    assert len(light.take(500)) == 50  # small records: the byte cap does not bite


def test_a_flooding_patient_whose_events_are_costly_gets_a_share_that_fits_the_time_budget() -> None:
    """Issue 25: about `per_patient_seconds` of one patient's work per batch, from the seconds per record its events
    took in its last batch (one record at least)."""
    backlog = FairBacklog(read_ahead=10_000, per_patient=100, per_patient_seconds=0.05)
    backlog.add({TP: [rec(i, b"A") for i in range(300)]})
    assert len(backlog.take(500)) == 100  # no cost known yet: the count cap
    backlog.note_costs({"A": (0.5, 50)})  # 10 ms per record
    assert [r.offset for r in backlog.take(500)] == list(range(100, 105))  # 50 ms of work, in order
    backlog.note_costs({"A": (0.5, 5), "B": (1.0, 1)})  # 100 ms per record: one at least
    assert len(backlog.take(500)) == 1
    assert set(backlog._cost) == {b"A", b"B"}  # B kept too: its next records may come a batch's worth at a time
    backlog.note_costs({"A": (0.001, 5)})  # cheap again: the count cap
    assert len(backlog.take(500)) == 100
    off = FairBacklog(read_ahead=10_000, per_patient=100)
    off.add({TP: [rec(i, b"A") for i in range(300)]})
    off.note_costs({"A": (10.0, 1)})
    assert len(off.take(500)) == 100  # no time budget: the count cap alone


def test_the_measured_costs_are_bounded_in_count_and_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: the costs (keyed by patient ID) are kept for the newest COSTS_KEPT patients, COST_KEPT_S at most; an
    older cost no longer caps the share."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    backlog = FairBacklog(read_ahead=100_000, per_patient=100, per_patient_seconds=0.05)
    backlog.note_costs({f"p{i}": (1.0, 1) for i in range(limits.COSTS_KEPT + 500)})
    assert len(backlog._cost) == limits.COSTS_KEPT and b"p0" not in backlog._cost and b"p1523" in backlog._cost
    backlog.add({TP: [rec(i, b"p1523") for i in range(300)]})
    assert len(backlog.take(500)) == 1  # 1 s per record: one record
    clock[0] += limits.COST_KEPT_S + 1
    assert len(backlog.take(500)) == 100  # the cost is too old: the count cap again
    backlog.note_costs({"q": (0.1, 1)})
    assert set(backlog._cost) == {b"q"}  # the old ones dropped
