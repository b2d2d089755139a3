"""Where a service's keys live in Redis (issue 22): the patients' buckets, each bucket's hash tag (its slot group on a
Redis Cluster), the key names, and the connection a slot group's transaction runs on. The design, and why, is in
shared/runtime/state.py's docstring ("Slot groups"); the store is there too."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

#: Patients are spread over this many buckets (slot groups on a cluster). Changing it moves every key: a service
#: then finds no epoch for its groups and rebuilds from Kafka by itself.
BUCKETS = 32

SLOTS = 16384

#: seen refs: (patient ID, event ID); a bare event ID is accepted on one Redis only (its key has no tag)
SeenRef = tuple[str, str] | str

AnyRedis = Redis | RedisCluster


def bucket_of(patient_id: str) -> int:
    """The patient's bucket: a stable hash (the same in every process and release)."""
    return zlib.crc32(patient_id.encode()) % BUCKETS


def bucket_tags() -> tuple[str, ...]:
    """The rule that gave TAGS (slow: ~0.2 s; tests/cluster/test_key_layout.py checks TAGS against it): bucket b's
    tag is the first `<b>.<n>` whose slot is within 4 of the middle of the b-th of BUCKETS equal slot ranges. The
    buckets then sit on a regular grid of slots: any split of the slots into equal contiguous ranges (as
    `redis-cli --cluster create` makes) gives each master BUCKETS/masters of them, give or take one."""
    tags = []
    for b in range(BUCKETS):
        middle, n = b * SLOTS // BUCKETS + SLOTS // BUCKETS // 2, 0
        while abs(key_slot(f"{b:02d}.{n}".encode()) - middle) > 4:
            n += 1
        tags.append(f"{b:02d}.{n}")
    return tuple(tags)


#: each bucket's hash tag (bucket_tags(), computed once)
TAGS: tuple[str, ...] = (
    "00.614",
    "01.2385",
    "02.2079",
    "03.1620",
    "04.2088",
    "05.222",
    "06.1913",
    "07.2374",
    "08.63",
    "09.758",
    "10.1442",
    "11.227",
    "12.518",
    "13.2421",
    "14.611",
    "15.3034",
    "16.303",
    "17.1643",
    "18.3958",
    "19.506",
    "20.1620",
    "21.753",
    "22.2385",
    "23.1331",
    "24.725",
    "25.3616",
    "26.721",
    "27.1577",
    "28.2865",
    "29.304",
    "30.360",
    "31.1058",
)


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


class Layout:
    """Where a service's keys are. A slot group is named by its key fragment: '' on one Redis (one group), '{tag}:'
    for a bucket on a cluster."""

    def __init__(self, ns: str, cluster: bool) -> None:
        self.ns = ns
        self.cluster = cluster
        self.groups: tuple[str, ...] = tuple(f"{{{t}}}:" for t in TAGS) if cluster else ("",)

    def group(self, patient_id: str) -> str:
        return self.groups[bucket_of(patient_id)] if self.cluster else ""

    def key(self, group: str, kind: str, name: str | None = None) -> str:
        base = f"{self.ns}:{group}{kind}"
        return base if name is None else f"{base}:{name}"

    def patient_key(self, patient_id: str, kind: str = "state") -> str:
        return self.key(self.group(patient_id), kind, patient_id)

    def seen_key(self, ref: SeenRef) -> str:
        if isinstance(ref, str):
            if self.cluster:
                raise ValueError("on a cluster a processed mark needs its patient: pass (patient_id, event_id)")
            return self.key("", "seen", ref)
        patient_id, event_id = ref
        return self.key(self.group(patient_id), "seen", event_id)

    def split(self, patient_ids: Iterable[str]) -> dict[str, list[str]]:
        """The patients by slot group, each group's patients in the order given."""
        out: dict[str, list[str]] = {}
        for p in patient_ids:
            out.setdefault(self.group(p), []).append(p)
        return out

    def split_refs(self, refs: Iterable[SeenRef]) -> dict[str, list[SeenRef]]:
        out: dict[str, list[SeenRef]] = {}
        for ref in refs:
            out.setdefault("" if isinstance(ref, str) else self.group(ref[0]), []).append(ref)
        return out


NodeClient = Callable[[str, int], Redis]


def _plain_node_client(rc: RedisCluster) -> NodeClient:
    kwargs = rc.get_connection_kwargs()

    def make(host: str, port: int) -> Redis:
        return Redis(
            host=host,
            port=port,
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    return make


class Nodes:
    """The connection a slot group's transaction (WATCH/MULTI/EXEC) or WAIT runs on: the client itself on one Redis;
    on a cluster, a plain client to the master that serves the group's slot now (from the cluster client's slot map,
    refreshed after a failover or a redirection)."""

    def __init__(self, redis: AnyRedis, node_client: NodeClient | None = None) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._make = node_client or (_plain_node_client(redis) if isinstance(redis, RedisCluster) else None)
        self._clients: dict[str, Redis] = {}
        self._stale = False

    async def client(self, key: str) -> Redis:
        rc = self.redis
        if not isinstance(rc, RedisCluster):
            return rc
        if rc.nodes_manager.default_node is None:
            await rc.initialize()
        elif self._stale:
            self._stale = False
            await rc.nodes_manager.initialize()  # the slot map read again (after a failover or a redirection)
        node = rc.nodes_manager.get_node_from_slot(key_slot(key.encode()), False)
        found = self._clients.get(node.name)
        if found is None:
            assert self._make is not None
            found = self._clients[node.name] = self._make(node.host, int(node.port))
        return found

    def stale(self) -> None:
        self._stale = True

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            with contextlib.suppress(Exception):
                await c.aclose()
