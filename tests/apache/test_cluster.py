"""devstack/apache_kafka.py itself (issue 22): a kept workdir starts the same cluster again with its records (what
`./osteocds up --kafka apache` relies on to keep Redis state matched to its broker), and `up`'s broker identity
follows the cluster id. One node, to stay quick."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import TopicPartition

from devstack import apache_kafka, infra, kafka_nodes
from devstack.up_infra import broker_identity
from shared.runtime import reading
from shared.settings import Settings


async def _records(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        return [r.value for records in batch.values() for r in records if r.value is not None]
    finally:
        await consumer.stop()


async def test_a_kept_workdir_starts_the_same_cluster_with_its_records(tmp_path: Path) -> None:
    work = tmp_path / "kafka"
    with apache_kafka.cluster(1, workdir=work) as first:
        assert first.fresh
        admin = AIOKafkaAdminClient(bootstrap_servers=first.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("kept", num_partitions=1, replication_factor=1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=first.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        await producer.send_and_wait("kept", b"before the restart")
        await producer.stop()
        identity = broker_identity(infra.Provisioned(first.bootstrap, "apache", first.settings, first))
    assert identity == (f"apache:{first.cluster_id}", True)

    with apache_kafka.cluster(1, workdir=work) as again:
        assert not again.fresh and again.cluster_id == first.cluster_id
        assert broker_identity(infra.Provisioned(again.bootstrap, "apache", again.settings, again)) == (
            f"apache:{first.cluster_id}",
            False,
        )
        assert await _records(again.bootstrap, "kept") == [b"before the restart"]
        # SIGKILL and start again on the same data: the record is still there
        await asyncio.to_thread(again.kill, 1)
        assert again.alive() == set()
        await asyncio.to_thread(again.start, 1)
        assert await _records(again.bootstrap, "kept") == [b"before the restart"]
        assert again.leader("kept", 0) == 1


def test_a_cluster_id_starting_with_a_dash_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 Kafka Uuid in 64 starts with "-" (URL-safe base64): `-t <id>` read it as an option and the format failed
    (a fresh-clone CI run lost 18 tests to it). Given with `--cluster-id=`, such an id formats and starts."""
    dashed = "-" + kafka_nodes._cluster_id()[1:]
    monkeypatch.setattr(apache_kafka, "_cluster_id", lambda: dashed)
    with apache_kafka.cluster(1, workdir=tmp_path / "kafka") as c:
        assert c.cluster_id == dashed and c.alive() == {1}


async def test_a_range_whose_start_was_deleted_reads_from_the_earliest_record_held(tmp_path: Path) -> None:
    """shared/runtime/reading.py: records deleted by retention before the range's start (or before offset 0, the
    default start) are skipped and the rest is read; a reader seeking a deleted offset used to reset to the END
    (aiokafka's default), reading nothing and rebuilding from nothing without an error."""
    with apache_kafka.cluster(1, workdir=tmp_path / "kafka") as c:
        admin = AIOKafkaAdminClient(bootstrap_servers=c.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("aged", num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=c.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        for i in range(10):
            await producer.send_and_wait("aged", f"r{i}".encode(), key=b"p")
        await producer.stop()
        tp = TopicPartition("aged", 0)
        await admin.delete_records({tp: RecordsToDelete(before_offset=5)})
        await admin.close()
        settings = Settings(kafka_bootstrap_servers=c.bootstrap, service_name="reader")
        assert await reading.partitions(settings, ["aged", "absent"]) == [tp]
        assert await reading.end_offsets(settings, [tp]) == {tp: 10}
        for starts in (None, {tp: 2}, {tp: 7}):
            records = await reading.read_range(settings, "test", {tp: 9}, starts)
            first = max(5, (starts or {}).get(tp, 0))
            assert [r.offset for r in records] == list(range(first, 9)), starts
            assert [r.value for r in records] == [f"r{i}".encode() for i in range(first, 9)]
