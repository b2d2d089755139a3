"""Review R28-FIN, HAZ-27-FUTURE-HIDES detection (`OpsMetrics.records_ahead`, called once per batch at the top of
`Batches.process`, outside any handler): aiokafka types `ConsumerRecord.timestamp` as `int | None` ("None for
older Brokers": a message in the v0 format, magic 0, has no timestamp). `r.timestamp > limit_ms` then raises
TypeError, which leaves `Batches.process` and stops the consume loop; the record is fetched again on restart, so the
partition stays blocked. Not new in kind: `reading.in_publication_order` (a merge keyed on the timestamp, records of
two partitions) and `origin_of` (no origin header) fail on it too; but a one-partition batch of an internal topic
(origin header) passed before 7bd8485. A record without a timestamp cannot be ahead of the clock: not counted, no
exception. Low likelihood (aiokafka and Kafka >= 0.10 write v2 records; Kafka 4 dropped v0/v1)."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from contracts.topics import LABS_NORMALISED
from shared.observability.metrics import OpsMetrics

NOW = 1_800_000_000.0


def _record(timestamp: int | None, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(LABS_NORMALISED.name, 0, offset, timestamp, 0, b"k", b"v", None, 1, 1, [])


def test_review_r28fin_a_timestamp_of_minus_one_is_not_ahead() -> None:
    ops = OpsMetrics(CollectorRegistry(), "scoring")
    assert ops.records_ahead([_record(-1, 0), _record(int(NOW * 1000), 1)], 300.0, now=NOW) == 0


def test_review_r28fin_a_record_without_a_timestamp_does_not_stop_the_batch() -> None:
    ops = OpsMetrics(CollectorRegistry(), "scoring")
    ahead = int((NOW + 3600) * 1000)
    assert ops.records_ahead([_record(None, 0), _record(ahead, 1)], 300.0, now=NOW) == 1
