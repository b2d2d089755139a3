"""Review RY (HAZ-25-CHAOS-01): the replay to the topics' end meets a Redis Cluster partial loss.

A healing rebuild (or a start against a partly lost cluster) writes only the slot groups that lost their state
(shared/runtime/state.py `write_rebuilt`); the other groups keep their state and get no processed marks. Since
85415ae the replay reads every input to the end, and `_publish_difference` publishes the missing outputs of every
patient it replayed, those of the intact groups included. A record of an intact-group patient past the committed
offset, not yet applied live, then has its outputs published by the rebuild, is not marked processed, and is applied
again live after the rewind: its outputs go out twice. With a decision's wordings (`alert_key`) that is the chain of
HAZ-25-CHAOS-01 again: the rebuild sends only the final wording (the intermediate one is superseded in the replay),
live then sends the intermediate wording (it withdraws/replaces the final one downstream) and the final one again,
dropped by consumers as a duplicate of the rebuild's (contracts/clinical.py delivery_key). Before 85415ae the replay
stopped at the committed offsets and published nothing for such a record. Fixed: a rebuild publishes the missing
outputs of the patients of the slot groups it writes only (StateStore.rebuilding)."""

from __future__ import annotations

import asyncio

from redis.crc import key_slot

from contracts.base import derived_id
from contracts.topics import LABS_NORMALISED
from devstack.redis_cluster import RedisCluster
from shared.runtime.service import Service
from tests.cluster.test_cluster_state import _apply, _service, _until
from tests.conftest import Publish, lab
from tests.test_healing import _count
from tests.test_runtime import Applied


async def test_a_partial_loss_rebuild_sends_no_output_the_live_loop_sends_again(
    kafka_bootstrap: str, kafka_settings: dict[str, str], publish: Publish, redis_cluster: RedisCluster
) -> None:
    svc, topic, group = await _service(kafka_bootstrap, kafka_settings, redis_cluster, partitions=1)
    store = svc.store
    # two patients in slot groups on different masters: one keeps its state, the other loses it
    patients = [f"pt-{group}-{i:03d}" for i in range(40)]
    port = {p: redis_cluster.master_of_slot(key_slot(store.layout.patient_key(p).encode())).port for p in patients}
    lost = patients[0]
    kept = next(p for p in patients if port[p] != port[lost])
    first = {p: lab(p, "2000-8", 2.3, "mmol/L") for p in (lost, kept)}
    await svc.start()
    try:
        for m in first.values():
            await publish(topic.name, m)

        async def applied() -> bool:
            states = {p: await store.load(p, Applied) for p in first}
            return all(s is not None and s.event_ids == [first[p]["event_id"]] for p, s in states.items())

        await _until(applied, "the first events were not applied")
        await _until(lambda: store.seen(first[kept]["event_id"], kept), "not marked processed")
        await asyncio.sleep(0.5)  # the commit follows the marks
    finally:
        await svc.stop()
    assert svc.fatal is None, repr(svc.fatal)

    # while no instance runs: the kept patient's next event arrives (past the committed offset, never applied), and
    # the other patient's master loses its data
    later = lab(kept, "2000-8", 2.4, "mmol/L")
    await publish(topic.name, later)
    redis_cluster.cli(redis_cluster.master_of_slot(key_slot(store.layout.patient_key(lost).encode())), "flushall")

    again = Service(svc.settings)
    again.patient_aggregate((topic,), Applied, _apply(group))
    await again.start()  # a start against a partly lost cluster: the lost groups rebuilt, the others adopted
    try:

        async def later_applied() -> bool:
            s = await again.store.load(kept, Applied)
            return s is not None and later["event_id"] in s.event_ids

        await _until(later_applied, "the later event was not applied")
        await asyncio.sleep(1.0)
    finally:
        await again.stop()
    assert again.fatal is None, repr(again.fatal)
    out = str(derived_id("heal", later["event_id"]))
    # its output once on the topic: published by the rebuild (the record then marked processed) or live, not both
    assert await _count(kafka_bootstrap, LABS_NORMALISED.name, out) == 1
