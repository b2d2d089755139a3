"""Issue 22 (review R1): writes rolled back by a failover are noticed although another instance of the service wrote
to the same slot group in between. Several instances of a service share the slot groups (a group holds patients of
every Kafka partition). When a promoted replica lacks instance A's last write, instance B's next write to that group
must not restore the write counter A remembers, or A goes on from a state silently one event behind (its consumer
keeps its position: the lost event is never applied again)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.crc import key_slot

from devstack.redis_cluster import RedisCluster
from shared.runtime.state import StateLost, StateStore
from shared.settings import Settings
from shared.transport import redis_client


class Seen(BaseModel):
    events: list[str] = []


def _adding(event: str):  # type: ignore[no-untyped-def]
    def fn(state: Seen | None) -> tuple[Seen, None]:
        return Seen(events=[*(state.events if state else []), event]), None

    return fn


async def _keys(node: Redis, slot: int) -> list[bytes]:
    return list(await node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000))  # type: ignore[no-untyped-call]


async def _slot_snapshot(node: Redis, slot: int) -> dict[bytes, tuple[bytes, int]]:
    out: dict[bytes, tuple[bytes, int]] = {}
    for k in await _keys(node, slot):
        dumped = await node.dump(k)
        assert dumped is not None
        out[k] = (dumped, max(0, int(await node.pttl(k))))
    return out


async def _restore(node: Redis, slot: int, snapshot: dict[bytes, tuple[bytes, int]]) -> None:
    """The slot as a replica promoted before it received the latest writes holds it: every key as in `snapshot`."""
    for k in await _keys(node, slot):
        await node.delete(k)
    for k, (dumped, ttl) in snapshot.items():
        await node.restore(k, ttl, dumped, replace=True)


async def test_a_rollback_is_noticed_after_another_instance_wrote_to_the_same_slot_group(
    redis_cluster: RedisCluster,
) -> None:
    url = redis_cluster.cluster_url
    settings = Settings(redis_url=url)
    ra, rb, raw = redis_client(settings), redis_client(settings), redis_client(settings)
    a, b = StateStore(ra, "rb-test", 3600), StateStore(rb, "rb-test", 3600)
    try:
        assert await a.write_rebuilt({}, [], None, b"epoch-1")  # an operator's rebuild: every group's epoch
        a.guarded = True
        b.epoch = await b.read_epoch()
        b.guarded = True
        p = "pt-rollback-a"
        group = a.layout.group(p)
        q = next(f"pt-rollback-b{i}" for i in range(10_000) if a.layout.group(f"pt-rollback-b{i}") == group)
        slot = key_slot(a.patient_key(p).encode())
        m = redis_cluster.master_of_slot(slot)
        node = Redis(host="127.0.0.1", port=m.port)
        try:
            await a.transact(p, Seen, _adding("e1"))
            before = await _slot_snapshot(node, slot)
            await a.transact(p, Seen, _adding("e2"))  # applied on the master only, then the failover:
            await _restore(node, slot, before)
            await b.transact(q, Seen, _adding("f1"))  # another instance writes to the group first
            with pytest.raises(StateLost):
                await a.transact(p, Seen, _adding("e3"))  # e2 is gone: A must not build on that state
            with pytest.raises(StateLost):  # nor shown from it
                await a.load(p, Seen)
            # nothing computed from the older state (read by an unguarded client, as an operator would)
            assert (await StateStore(raw, "rb-test", 3600).load(p, Seen)) == Seen(events=["e1"])
        finally:
            await node.aclose()
    finally:
        for c in (ra, rb, raw):
            await c.aclose()
        await a.aclose()
        await b.aclose()


async def test_a_patient_read_from_a_lost_slot_group_is_refused_not_shown_as_without_state(
    redis_cluster: RedisCluster,
) -> None:
    """A master that comes back empty (restarted, flushed) loses its groups' states: until the service has rebuilt
    them, a read of one of those patients (a clinician's alert list, a plan, an action on an alert: `load`) must say
    so (StateLost, answered 503 by shared/web/http.py), not answer as for a patient without any state ("no alerts",
    "no such alert"). Patients of the other masters are read as before."""
    settings = Settings(redis_url=redis_cluster.cluster_url)
    r = redis_client(settings)
    store = StateStore(r, "rb-read", 3600)
    try:
        assert await store.write_rebuilt({}, [], None, b"epoch-1")
        store.guarded = True
        patients = [f"pt-read-{i}" for i in range(40)]
        for p in patients:
            await store.transact(p, Seen, _adding("e1"))
        lost_slot = key_slot(store.patient_key(patients[0]).encode())
        victim = redis_cluster.master_of_slot(lost_slot)
        node = Redis(host="127.0.0.1", port=victim.port)
        try:
            await node.flushall()  # the master's data gone: its slot groups' states, epochs and counters
        finally:
            await node.aclose()
        on_victim = [
            p for p in patients if redis_cluster.master_of_slot(key_slot(store.patient_key(p).encode())) == victim
        ]
        elsewhere = [p for p in patients if p not in on_victim]
        assert on_victim and elsewhere
        for p in on_victim:
            with pytest.raises(StateLost):
                await store.load(p, Seen)
        for p in elsewhere:
            assert await store.load(p, Seen) == Seen(events=["e1"])
    finally:
        await r.aclose()
        await store.aclose()


async def test_reads_concurrent_with_this_process_writes_never_take_them_for_a_rollback(
    redis_cluster: RedisCluster,
) -> None:
    """A read (an HTTP `load`, the readiness probe's `intact`) that got the group's write counter just before one of
    this process's own transactions committed, and was checked just after, must not be taken for a rollback: no 503,
    no group marked lost (which would rebuild it)."""
    import asyncio

    settings = Settings(redis_url=redis_cluster.cluster_url)
    r = redis_client(settings)
    store = StateStore(r, "rb-race", 3600)
    try:
        assert await store.write_rebuilt({}, [], None, b"epoch-1")
        store.guarded = True
        p = "pt-race"
        for i in range(150):
            outcomes = await asyncio.gather(
                store.transact(p, Seen, _adding(f"e{i}")),
                *(store.load(p, Seen) for _ in range(4)),
                store.intact(),
                return_exceptions=True,
            )
            assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
            assert outcomes[-1] is True and not store.lost
    finally:
        await r.aclose()
        await store.aclose()
