"""The slot groups of a service's Redis state (shared/runtime/state.py `StateStore`): their keys, and how a lost or
rolled-back group is detected (issue 22).

A lost cache is detected, never mistaken for new patients, per slot group. Why an epoch per bucket and not one per
service: a cluster loses state one master at a time (a master restarted empty, a node flushed), and a single epoch key
lives on one master only; a loss elsewhere would go unseen, and a loss of that one master would look like the loss of
everything. Why not a per-patient stamp: a patient absent from a lost shard would look new, not lost. So each slot
group has its own epoch key, written with the group's state by a rebuild; every transaction and every finish WATCHes
or reads it. A group whose epoch is gone (or another than this process adopted) raises `StateLost` before anything is
computed from empty state; the service rebuilds only the groups that lost it (shared/runtime/healing.py), the others
keep their state and are not touched.

A failover can also lose a master's latest acknowledged writes (replication is asynchronous) while its epoch, written
long before, survives: the state is then silently older. Each process has its own write counter per group
(`seq:<writer>`, INCR in every state transaction of that process); it remembers the highest value it wrote or read per
group, and a group read with a lower one was rolled back: `StateLost`, and that group is rebuilt. Why one counter per
process and not one per group: several instances of a service write to every group (a group holds patients of every
Kafka partition), and another instance's next INCR would bring a shared counter back to the value this one remembers,
hiding the rollback (tests/cluster/test_rollback_other_writer.py). A counter expires SEQ_TTL_S after its last write: a
process that wrote nothing to a group for that long reads it as rolled back and rebuilds it (the safe side). The
finish step checks the counter too (nothing is marked processed nor committed on a rolled-back group) and, on a
cluster, waits (`WAIT 1`) for the master's replica to hold the finish, and so every earlier write of the group, before
the offsets are committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.runtime.keyspace import AnyRedis, Layout, NodeClient, Nodes, is_cluster


class StateLost(Exception):
    """A slot group's epoch key is missing or changed, or its writes were rolled back: Redis lost (or another
    instance rebuilt) that part of the state."""


def as_bytes(raw: bytes | str | None) -> bytes | None:
    return raw if raw is None or isinstance(raw, bytes) else raw.encode()


#: what a failover or a slot move looks like to a plain connection, retried as a transient error once the slot map is
#: read again (shared/runtime/retrying.py)
_TOPOLOGY = (AskError, ClusterDownError, TryAgainError)


class SlotGroups:
    """A service's Redis keys by slot group, the epoch and write counter of each group, and the routing of a step to
    the node that serves it."""

    def __init__(self, redis: AnyRedis, namespace: str, node_client: NodeClient | None = None) -> None:
        self.redis = redis
        self.ns = f"osteocds:{namespace}"
        self.layout = Layout(self.ns, is_cluster(redis))
        self.nodes = Nodes(redis, node_client)
        #: the epoch each slot group held when this process adopted or wrote it; when `guarded`, every transaction
        #: checks that Redis still holds it
        self.epochs: dict[str, bytes] = {}
        #: per slot group, the highest write counter this process wrote or read under that epoch (rollback check)
        self.marks: dict[str, int] = {}
        #: slot groups found rolled back: rebuilt by the next rebuild although their epoch is still there
        self.lost: set[str] = set()
        self._read: dict[str, bytes | None] = {}
        self.guarded = False
        #: this process's name in its write counters' keys (a rollback is judged against its own writes only)
        self.writer = uuid.uuid4().hex[:12]

    # ---- keys --------------------------------------------------------------------------------------------------
    @property
    def epoch_key(self) -> str:
        """The epoch key on one Redis (its only slot group)."""
        return self.layout.key(self.layout.groups[0], "epoch")

    def group_epoch_key(self, group: str) -> str:
        return self.layout.key(group, "epoch")

    def group_seq_key(self, group: str) -> str:
        """This process's write counter in the group."""
        return self.layout.key(group, "seq", self.writer)

    def seen_key(self, event_id: str, patient_id: str | None = None) -> str:
        return self.layout.seen_key(event_id if patient_id is None else (patient_id, event_id))

    def patient_key(self, patient_id: str, kind: str = "state") -> str:
        return self.layout.patient_key(patient_id, kind)

    # ---- epochs ------------------------------------------------------------------------------------------------
    def _combine(self, values: Mapping[str, bytes | None]) -> bytes | None:
        """One token for the epochs of every slot group (None when one is missing)."""
        got = [values.get(g) for g in self.layout.groups]
        if any(v is None for v in got):
            return None
        if len(got) == 1:
            return got[0]
        return hashlib.sha1(b"\n".join(v for v in got if v is not None), usedforsecurity=False).hexdigest().encode()

    @property
    def epoch(self) -> bytes | None:
        """The epochs this process holds, as one token (None: not every slot group adopted)."""
        return self._combine(self.epochs)

    @epoch.setter
    def epoch(self, value: bytes | None) -> None:
        """Adopt `value`: the token `read_epoch` returned last (each group's epoch as read then), or one epoch for
        every group."""
        if value is None:
            new: dict[str, bytes] = {}
        elif self._combine(self._read) == value:
            new = {g: v for g, v in self._read.items() if v is not None}
        else:
            new = dict.fromkeys(self.layout.groups, value)
        for g in self.layout.groups:
            if self.epochs.get(g) != new.get(g):
                self.marks.pop(g, None)
        self.epochs = new
        self.lost.clear()

    async def _group_values(self, groups: Sequence[str]) -> tuple[dict[str, bytes | None], dict[str, int]]:
        """Each group's epoch and write counter (one MGET)."""
        keys = [k for g in groups for k in (self.group_epoch_key(g), self.group_seq_key(g))]
        async with self._routed():
            flat = await self._mget(keys)  # on a cluster, split by slot (a round trip per node)
        epochs = {g: as_bytes(flat[2 * i]) for i, g in enumerate(groups)}
        seqs = {g: int(flat[2 * i + 1] or 0) for i, g in enumerate(groups)}
        return epochs, seqs

    async def read_epoch(self) -> bytes | None:
        """The epochs Redis holds now, as one token (None when a slot group has none)."""
        self._read, _ = await self._group_values(self.layout.groups)
        return self._combine(self._read)

    async def intact(self) -> bool:
        """True when Redis still holds this process's epoch in every slot group and no group was rolled back
        (one MGET per group: cheap enough for readiness probes)."""
        if not self.guarded:
            return True
        if self.epoch is None:
            return False
        marks = dict(self.marks)  # before the read: a write of this process committed meanwhile only raises a counter
        epochs, seqs = await self._group_values(self.layout.groups)
        ok = True
        for g in self.layout.groups:
            if epochs[g] != self.epochs.get(g):
                ok = False
            elif seqs[g] < marks.get(g, 0):
                self.lost.add(g)
                ok = False
        return ok

    def _check(self, group: str, epoch: bytes | str | None, seq: bytes | str | int | None, mark: int) -> None:
        """`mark`: this process's counter for the group taken BEFORE the read (review R1: one of its own writes
        committed between the read and this check raises the mark, not the value read: no rollback)."""
        if not self.guarded:
            return
        held = self.epochs.get(group)
        if held is None or as_bytes(epoch) != held:  # (none held: a rebuild that did not write this group)
            raise StateLost("a slot group's state epoch is gone from Redis")
        if int(seq or 0) < mark:
            self.lost.add(group)
            raise StateLost("a slot group's writes were rolled back (failover)")

    def _wrote(self, group: str, seq: Any) -> None:
        if int(seq) > self.marks.get(group, 0):
            self.marks[group] = int(seq)

    # ---- routing -----------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _routed(self) -> AsyncIterator[None]:
        """A failover or a moved slot: the slot map is read again and the step fails as a transient error (retried
        with backoff by the caller)."""
        try:
            yield
        except _TOPOLOGY as exc:
            self.nodes.stale()
            raise RedisConnectionError(f"cluster topology changed ({type(exc).__name__})") from exc
        except (RedisConnectionError, RedisTimeoutError):
            self.nodes.stale()
            raise

    async def aclose(self) -> None:
        await self.nodes.aclose()

    async def _mget(self, keys: list[str]) -> list[Any]:
        if isinstance(self.redis, RedisCluster):
            return list(await self.redis.mget_nonatomic(keys))
        return list(await self.redis.mget(keys))
