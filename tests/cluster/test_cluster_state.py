"""Issue 22: the runtime on a real Redis Cluster (3 masters, 3 replicas). A master that loses its data loses only its
slot groups: the service notices by itself, rebuilds those groups from Kafka and leaves the others as they were;
writes rolled back by a failover are noticed by the write counter and rebuilt; nothing is lost, duplicated or wrong.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pydantic import BaseModel
from redis.crc import key_slot

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from devstack.redis_cluster import RedisCluster
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.runtime.state import TAGS, StateLost, StateStore
from shared.transport import redis_client
from tests.conftest import Publish, lab
from tests.test_healing import _normalised
from tests.test_runtime import Applied, _settings


def _apply(group: str) -> Any:
    def apply(state: Applied, event: LabResult) -> tuple[Applied, list[Message]]:
        if str(event.event_id) in state.event_ids:
            return state, []
        return Applied(event_ids=[*state.event_ids, str(event.event_id)]), [_normalised(event, group)]

    return apply


async def _until(condition: Any, what: str, tries: int = 600) -> None:
    for _ in range(tries):
        try:
            if await condition():
                return
        except StateLost:  # a read of a lost or rolled-back group before it is rebuilt: not yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def _service(
    kafka_bootstrap: str,
    kafka_settings: dict[str, str],
    c: RedisCluster,
    partitions: int = 3,
    model: type[BaseModel] = Applied,
    apply: Any = _apply,
) -> tuple[Service, Topic, str]:
    group = f"cl-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "cluster test", partitions=partitions)
    settings = _settings(kafka_bootstrap, c.cluster_url, kafka_settings, group)
    # Redis steps retried for about 30 s: longer than a failover (node timeout 1.5 s, on a loaded host several s)
    settings = settings.model_copy(update={"retry_max_attempts": 20, "retry_max_backoff_s": 2.0})
    await ensure_topics(settings, [topic])
    svc = Service(settings)
    svc.patient_aggregate((topic,), model, apply(group))
    return svc, topic, group


async def test_a_flushed_master_rebuilds_only_its_slot_groups_and_no_state_is_lost_or_wrong(
    kafka_bootstrap: str, kafka_settings: dict[str, str], publish: Publish, redis_cluster: RedisCluster
) -> None:
    svc, topic, group = await _service(kafka_bootstrap, kafka_settings, redis_cluster)
    patients = [f"pt-{group}-{i:03d}" for i in range(60)]
    sent: dict[str, list[str]] = {p: [] for p in patients}
    await svc.start()
    try:
        for round_ in range(2):
            for p in patients:
                m = lab(p, "2000-8", 2.3 + round_ / 10, "mmol/L")
                sent[p].append(m["event_id"])
                await publish(topic.name, m)
        store = svc.store

        async def all_applied() -> bool:
            states = [await store.load(p, Applied) for p in patients]
            return all(s is not None and s.event_ids == sent[p] for p, s in zip(patients, states, strict=True))

        await _until(all_applied, "the events were not applied")
        before = dict(store.epochs)
        assert len(before) == len(store.layout.groups) == 32

        # one master loses everything (restarted empty, or flushed: FLUSHALL reaches its replica too)
        victim = redis_cluster.master_of_slot(key_slot(store.layout.patient_key(patients[0]).encode()))
        on_victim = {
            g for g in store.layout.groups if redis_cluster.master_of_slot(key_slot(g.encode())).port == victim.port
        }
        assert 0 < len(on_victim) < 32
        redis_cluster.cli(victim, "flushall")
        losses = svc.metrics.state_losses.labels(svc.name)._value.get()

        async def healed() -> bool:
            return svc.metrics.state_losses.labels(svc.name)._value.get() > losses and await store.intact()

        await _until(healed, "the lost slot groups were not noticed and rebuilt")
        # only the groups of the flushed master got a new epoch; the others kept theirs, untouched
        assert {g for g in store.layout.groups if store.epochs[g] != before[g]} == on_victim
        await _until(all_applied, "a state differs after the rebuild")
        for p in patients:  # the processed marks came back with the states: in the patient's slot
            for eid in sent[p]:
                assert await store.seen(eid, p)

        # and processing goes on, for every patient, each event applied once
        for p in patients:
            m = lab(p, "2000-8", 2.6, "mmol/L")
            sent[p].append(m["event_id"])
            await publish(topic.name, m)
        await _until(all_applied, "processing did not resume after the rebuild")
    finally:
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)


async def test_writes_rolled_back_by_a_failover_are_noticed_and_that_slot_group_rebuilt(
    kafka_bootstrap: str, kafka_settings: dict[str, str], publish: Publish, redis_cluster: RedisCluster
) -> None:
    """A replica promoted before it received its master's last writes holds an older state under the same epoch. The
    rollback is made here by hand, as that replica would hold it (the patient's state one event behind, the group's
    write counter lower): the next transaction on the group sees the counter below what this process wrote, computes
    nothing, and the group is rebuilt from Kafka."""
    svc, topic, group = await _service(kafka_bootstrap, kafka_settings, redis_cluster, partitions=1)
    patient = f"pt-{group}"
    first, second = lab(patient, "2000-8", 2.3, "mmol/L"), lab(patient, "2000-8", 2.4, "mmol/L")
    await svc.start()
    r = redis_client(svc.settings)
    try:
        store: StateStore = svc.store

        async def ready() -> bool:  # the start's rebuild done: the two events are applied live (two writes)
            return all((await svc.readiness()).values())

        await _until(ready, "not ready")
        await publish(topic.name, first)
        await _until(lambda: store.seen(first["event_id"], patient), "first event not processed")
        older = await r.get(store.patient_key(patient))
        await publish(topic.name, second)
        await _until(lambda: store.seen(second["event_id"], patient), "second event not processed")
        g = store.layout.group(patient)
        assert store.marks[g] >= 2

        # the failover: the state without the second event, the write counter as it was then
        assert older is not None
        await r.set(store.patient_key(patient), older)
        await r.set(store.group_seq_key(g), store.marks[g] - 1)
        losses = svc.metrics.state_losses.labels(svc.name)._value.get()
        third = lab(patient, "2000-8", 2.5, "mmol/L")
        await publish(topic.name, third)

        async def rebuilt() -> bool:
            held = await store.load(patient, Applied)
            return held is not None and held.event_ids == [first["event_id"], second["event_id"], third["event_id"]]

        await _until(rebuilt, "the rolled-back group was not rebuilt with every event")
        assert svc.metrics.state_losses.labels(svc.name)._value.get() == losses + 1
    finally:
        await r.aclose()
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)


class Padded(BaseModel):
    """A toy aggregate of about 1.5 MB: its writes overflow what the kernel buffers for a stalled replica."""

    event_ids: list[str] = []
    pad: str = ""


def _padded(group: str) -> Any:
    def apply(state: Padded, event: LabResult) -> tuple[Padded, list[Message]]:
        if str(event.event_id) in state.event_ids:
            return state, []
        return Padded(event_ids=[*state.event_ids, str(event.event_id)], pad="x" * 1_500_000), [
            _normalised(event, group)
        ]

    return apply


async def test_a_master_killed_before_its_stalled_replica_got_the_last_writes_is_noticed_and_rebuilt(
    kafka_bootstrap: str, kafka_settings: dict[str, str], publish: Publish, redis_cluster: RedisCluster
) -> None:
    """The rollback for real: the replica of one master is stopped (SIGSTOP) while events of that master's patients
    are processed: each finish's WAIT times out after 200 ms and the batch is committed (a replica down does not stop
    the service), and the states written (about 1.5 MB each, some 60 MB in all) overflow what the kernel buffers for
    the stalled replica. Then the master is SIGKILLed and the replica, resumed, is promoted without those writes. The
    service notices the groups' write counters below what it wrote, rebuilds them from Kafka, and every event is in
    the state exactly once."""
    c = redis_cluster
    svc, topic, group = await _service(kafka_bootstrap, kafka_settings, c, partitions=1, model=Padded, apply=_padded)
    await svc.start()
    store = svc.store
    probe = key_slot(f"{{{TAGS[0]}}}".encode())
    victim = c.master_of_slot(probe)
    patients = [
        p
        for p in (f"pt-{group}-{i:03d}" for i in range(200))
        if c.master_of_slot(key_slot(store.layout.patient_key(p).encode())).port == victim.port
    ][:12]
    assert len(patients) >= 6
    sent: dict[str, list[str]] = {p: [] for p in patients}

    async def publish_round(value: float) -> None:
        for p in patients:
            m = lab(p, "2000-8", value, "mmol/L")
            sent[p].append(m["event_id"])
            await publish(topic.name, m)

    async def all_applied() -> bool:
        states = [await store.load(p, Padded) for p in patients]
        return all(s is not None and s.event_ids == sent[p] for p, s in zip(patients, states, strict=True))

    try:
        await publish_round(2.3)
        await _until(all_applied, "the first events were not applied")
        replica = c.replica_of(victim)
        c.pause(replica)
        try:
            for value in (2.4, 2.5, 2.6, 2.7):  # applied and committed on the master only
                await publish_round(value)
            await _until(all_applied, "the events were not applied while the replica was stalled", 1200)
            assert store.replica_acks_missing > 0
            c.kill(victim)
        finally:
            c.resume(replica)
        losses = svc.metrics.state_losses.labels(svc.name)._value.get()
        await asyncio.to_thread(c.wait_failover, victim, probe)
        await publish_round(2.8)
        await _until(all_applied, "the states rolled back by the failover were not rebuilt with every event", 1200)
        assert svc.metrics.state_losses.labels(svc.name)._value.get() > losses  # noticed, not silently older
    finally:
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)
