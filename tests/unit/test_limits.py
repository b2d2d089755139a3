"""shared/runtime/limits.py, pure parts: the fair backlog (batches across patients, commit positions) and the input
checks."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord, TopicPartition

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime.limits import FairBacklog, check_finite
from shared.runtime.service import Context, Service
from shared.settings import Settings

TP = TopicPartition("t", 0)


def rec(offset: int, key: bytes | None, value: bytes = b"{}") -> ConsumerRecord:
    return ConsumerRecord("t", 0, offset, 0, 0, key, value, None, len(key or b""), len(value), [])


def test_a_flooding_patient_does_not_hold_back_the_others() -> None:
    backlog = FairBacklog(read_ahead=10_000, per_patient=100)
    backlog.add({TP: [rec(i, b"A") for i in range(1000)] + [rec(1000, b"B"), rec(1001, b"B")]})
    first = backlog.take(500)
    assert [r.key for r in first].count(b"B") == 2  # B's two records in the first batch
    assert [r.key for r in first].count(b"A") == 100  # A capped per batch
    a_offsets = [r.offset for r in first if r.key == b"A"]
    assert a_offsets == sorted(a_offsets) == list(range(100))  # a patient's records keep their order
    # committed up to the first record not processed yet: A's 101st
    assert backlog.done(first) == {TP: 100}
    assert backlog.size == 900


def test_commit_never_passes_an_unprocessed_record() -> None:
    backlog = FairBacklog(read_ahead=10_000, per_patient=1)
    backlog.add({TP: [rec(0, b"A"), rec(1, b"A"), rec(2, b"B")]})
    batch = backlog.take(10)  # A's first, B's only
    assert sorted(r.offset for r in batch) == [0, 2]
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
    decoded = svc._decode(ConsumerRecord("t", 0, 0, now, 0, b"pt-1", bad, None, 4, len(bad), []))
    assert decoded.error is not None and decoded.error[0] == "NonFiniteNumber"
    for fine in (b'{"a": "NaN"}', b'{"a": 1.5}', b"MSH|^~\\&|NaN"):
        assert check_finite(rec(0, b"k", fine)) is None


def test_one_patients_heavy_messages_go_one_per_batch_beside_the_others() -> None:
    """Issue 25: records of hundreds of results each (an HL7 message of 499 OBX is ~25 KB) are capped by bytes per
    patient and batch, one record at least; a light patient's record goes with the first of them, not after all."""
    backlog = FairBacklog(read_ahead=10_000, per_patient=100, per_patient_bytes=32_000)
    heavy = b"x" * 25_000
    tp = TopicPartition("t", 0)
    backlog.add({tp: [rec(i, b"A", heavy) for i in range(5)] + [rec(5, b"B")]})
    batches = [backlog.take(500) for _ in range(5)]
    assert [[r.key for r in b] for b in batches] == [[b"B", b"A"], [b"A"], [b"A"], [b"A"], [b"A"]]
    assert [r.offset for b in batches for r in b if r.key == b"A"] == [0, 1, 2, 3, 4]  # in order
    light = FairBacklog(read_ahead=10_000, per_patient=100, per_patient_bytes=32_000)
    light.add({tp: [rec(i, b"A") for i in range(50)]})
    assert len(light.take(500)) == 50  # small records: the byte cap does not bite
