"""devstack/apache_kafka.py itself (issue 22): a kept workdir starts the same cluster again with its records (what
`./osteocds up --kafka apache` relies on to keep Redis state matched to its broker), and `up`'s broker identity
follows the cluster id. One node, to stay quick."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack import apache_kafka, infra
from devstack.stack import broker_identity


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
    dashed = "-" + apache_kafka._cluster_id()[1:]
    monkeypatch.setattr(apache_kafka, "_cluster_id", lambda: dashed)
    with apache_kafka.cluster(1, workdir=tmp_path / "kafka") as c:
        assert c.cluster_id == dashed and c.alive() == {1}
