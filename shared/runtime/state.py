"""Redis patient-state store (redis.asyncio), on one Redis or on a Redis Cluster (issue 22).

Redis is a cache of state derived from the Kafka topics, not the record. Each service keeps one JSON
aggregate per patient and updates it with optimistic concurrency (WATCH/MULTI), so a rebalance that
briefly gives a partition to two consumers cannot lose an update. Ordering by clinical time is the
aggregate's own business (pure code in each service), so a late event never hides a newer one.

Slot groups (the keyspace: shared/runtime/keyspace.py). A multi-key step (a batch's states and outboxes with its epoch
check, the finish that clears outboxes and marks event IDs processed, a rebuild's write, a timer claim) must stay in
one hash slot on a cluster. Patients are spread over `BUCKETS` buckets by a stable hash of their ID (CRC-32); each
bucket has a hash tag chosen so that the buckets sit evenly over the 16 384 slots (any contiguous allocation of slots
to masters gets BUCKETS/masters of them, give or take one). Every key of a patient carries its bucket's tag:

    osteocds:<service>:{<tag>}:state:<patient>     the aggregate
    osteocds:<service>:{<tag>}:outbox:<patient>    its outputs until the broker acknowledged them
    osteocds:<service>:{<tag>}:seen:<event id>     processed marks, in the slot of the event's patient
    osteocds:<service>:{<tag>}:timers              the bucket's due-deadline index (shared/runtime/timers.py)
    osteocds:<service>:{<tag>}:epoch               the bucket's epoch (below)
    osteocds:<service>:{<tag>}:seq:<writer>        one process's write counter in the bucket (below)

A batch is split by bucket; each bucket's part is one WATCH/MGET/MULTI-EXEC on the master serving it (a plain
connection to that node: redis-py's cluster transactions run each queued command through a worker thread that blocks
the event loop, measured at ~9 ms for 20 SETs), all buckets at once. On one Redis there is a single slot group
holding every bucket, with the keys as they were before issue 22 (no tag: `osteocds:<service>:state:<patient>`,
`:epoch`, `:timers`), so a single-node deployment keeps its keys and makes exactly one transaction per batch, as
before. Same code: a single node is a cluster of one slot group. Keys keep the `osteocds:<service>:` prefix, so the
per-service Redis ACLs (deploy/generate.py) still hold.

A lost or rolled-back slot group is detected by its epoch and write counters (shared/runtime/state_groups.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared.runtime.keyspace import BUCKETS as BUCKETS  # the keyspace (keyspace.py), re-exported
from shared.runtime.keyspace import SLOTS as SLOTS
from shared.runtime.keyspace import TAGS as TAGS
from shared.runtime.keyspace import AnyRedis as AnyRedis
from shared.runtime.keyspace import Layout as Layout
from shared.runtime.keyspace import NodeClient, SeenRef
from shared.runtime.keyspace import bucket_of as bucket_of
from shared.runtime.keyspace import bucket_tags as bucket_tags
from shared.runtime.keyspace import is_cluster as is_cluster
from shared.runtime.parsed import ParsedStates
from shared.runtime.state_groups import SlotGroups, as_bytes
from shared.runtime.state_groups import StateLost as StateLost  # the loop, healing and rebuild catch it here

S = TypeVar("S", bound=BaseModel)
R = TypeVar("R")

log = logging.getLogger(__name__)

#: How long a finish waits for a replica to acknowledge the group's writes (cluster only). A replica down makes
#: each finish wait this long and go on: the write counter still detects a write lost by a later failover.
REPLICA_ACK_TIMEOUT_MS = 200
#: a process's write counter in a group expires this long after its last write there (counters of stopped processes
#: do not pile up)
SEQ_TTL_S = 7 * 24 * 3600

#: the longest state TTL taken (~31 700 years): one Redis would refuse (its expiry in ms overflowing) would fail the
#: SETs inside a batch's EXEC, which applies the rest of the transaction anyway (review RP)
MAX_TTL_S = 10**12


class StateStore(SlotGroups):
    """The patients' states, outboxes and processed marks, in the slot groups of `SlotGroups` (the module's
    docstring)."""

    def __init__(
        self,
        redis: AnyRedis,
        namespace: str,
        seen_ttl_seconds: int,
        state_ttl_seconds: int = 0,
        node_client: NodeClient | None = None,
    ) -> None:
        super().__init__(redis, namespace, node_client)
        self.seen_ttl = seen_ttl_seconds
        #: per-patient keys (state, outbox) expire this long after their last write (0: never). Bounded state:
        #: a patient without any event for that long is forgotten, like the topics' own retention.
        if not 0 <= state_ttl_seconds <= MAX_TTL_S:  # review RP: refused here, not by Redis inside a batch's EXEC
            raise ValueError(f"state TTL {state_ttl_seconds} s: expected 0 (never) to {MAX_TTL_S}")
        self.state_ttl = state_ttl_seconds or None
        #: issue 25: the states this process parsed or wrote last (shared/runtime/parsed.py), used by
        #: `transact_many` when Redis still holds exactly their bytes; None: every state is parsed
        self.parsed: ParsedStates[Any] | None = None
        self.replica_acks_missing = 0

    # ---- processed marks -----------------------------------------------------------------------------------
    async def seen(self, event_id: str, patient_id: str | None = None) -> bool:
        """True if this event ID was already fully processed (its outputs were produced). Without its patient, on a
        cluster, every slot group is looked at."""
        if patient_id is not None or not self.layout.cluster:
            return bool(await self.redis.exists(self.seen_key(event_id, patient_id)))
        keys = [self.layout.key(g, "seen", event_id) for g in self.layout.groups]
        return any(flag is not None for flag in await self._mget(keys))

    async def seen_many(self, refs: Sequence[SeenRef]) -> set[str]:
        """The event IDs of `refs` already processed, in one round trip (one per node on a cluster)."""
        async with self._routed():
            flags = await self._mget([self.layout.seen_key(ref) for ref in refs])
        return {ref if isinstance(ref, str) else ref[1] for ref, flag in zip(refs, flags, strict=True) if flag}

    async def mark_seen(self, refs: Iterable[SeenRef]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.set(self.layout.seen_key(ref), b"1", ex=self.seen_ttl)
            await pipe.execute()

    # ---- state -----------------------------------------------------------------------------------------------
    async def load(self, patient_id: str, model: type[S], kind: str = "state") -> S | None:
        """The patient's aggregate (None: no state). Once this process holds the group's epoch, guarded like the
        transactions: a patient of a slot group whose epoch is gone or whose writes were rolled back raises
        `StateLost` (503 over HTTP) rather than reading as a patient without state ("no alerts"); one round trip (the
        state, the group's epoch and counter in one slot). Before (a start still adopting or rebuilding: not ready),
        read as it is."""
        raw = await self.load_raw(patient_id, kind)
        return None if raw is None else model.model_validate_json(raw)

    async def load_raw(self, patient_id: str, kind: str = "state") -> bytes | None:
        """The patient's aggregate as stored (its JSON), guarded as `load` is (`StateLost`)."""
        group = self.layout.group(patient_id)
        key = self.patient_key(patient_id, kind)
        if not self.guarded or group not in self.epochs:
            raw = await self.redis.get(key)
        else:
            mark = self.marks.get(group, 0)
            async with self._routed():
                raw, epoch, seq = await self._mget([key, self.group_epoch_key(group), self.group_seq_key(group)])
            self._check(group, epoch, seq, mark)
        return None if raw is None else raw.encode() if isinstance(raw, str) else raw

    async def transact(
        self,
        patient_id: str,
        model: type[S],
        fn: Callable[[S | None], tuple[S, R]] | Callable[[S | None], Awaitable[tuple[S, R]]],
        kind: str = "state",
    ) -> R:
        """Read the patient's aggregate, apply `fn`, write it back atomically; retry on a conflict."""
        key = self.patient_key(patient_id, kind)
        group = self.layout.group(patient_id)
        epoch_key, seq_key = self.group_epoch_key(group), self.group_seq_key(group)
        while True:
            async with self._routed():
                client = await self.nodes.client(epoch_key)
                async with client.pipeline(transaction=True) as pipe:
                    try:
                        mark = self.marks.get(group, 0)
                        await pipe.watch(key, epoch_key)
                        raw, epoch, seq = await pipe.mget(key, epoch_key, seq_key)
                        self._check(group, epoch, seq, mark)
                        current = None if raw is None else model.model_validate_json(raw)
                        out = fn(current)
                        new, result = await out if isinstance(out, Awaitable) else out
                        pipe.multi()  # type: ignore[no-untyped-call]
                        # nothing is written for a patient that had no state and still has none (e.g. an ack for
                        # an unknown patient): no key is left behind
                        if new != current and not (current is None and new == type(new)()):
                            pipe.set(key, new.model_dump_json(), ex=self.state_ttl)
                        pipe.incr(seq_key)
                        pipe.expire(seq_key, SEQ_TTL_S)
                        done = await pipe.execute()
                        self._wrote(group, done[-2])
                        return result
                    except WatchError:
                        continue

    async def transact_many(
        self,
        patient_ids: list[str],
        model: type[S],
        fn: Callable[
            [dict[str, S | None], dict[str, bytes | None]],
            tuple[Mapping[str, S | bytes | tuple[S, bytes]], Mapping[str, bytes], R],
        ],
        kind: str = "state",
        also: Callable[[Any, list[str]], None] | None = None,
        merge: Callable[[list[R]], R] | None = None,
    ) -> R:
        """`transact` for many patients at once, with an outbox, one transaction per slot group (one on a single
        Redis; the groups of a cluster at once): WATCH the group's state and outbox keys and its epoch, MGET them
        (and the write counter), apply `fn` (pure) to the group's states and the outboxes still pending, then write
        the changed states and the new outboxes in one MULTI/EXEC: three round trips. The outbox holds the outputs of
        the new state until the broker acknowledges them (`finish`): if the process dies in between, the redelivered
        batch finds them and sends them again, although its state already has the facts. A concurrent writer makes
        EXEC fail and `fn` is applied again to fresh data. `also(pipe, patients)` queues more writes of those
        patients in the same MULTI (timers).

        `fn` is called once per slot group with that group's patients only; `merge` combines the groups' results
        (needed when the patients span several groups). A group that finds its state lost raises `StateLost` once
        every group is done: the groups written keep their outboxes, sent again by the redelivered batch."""
        groups = self.layout.split(patient_ids)
        if len(groups) == 1:
            group, patients = next(iter(groups.items()))
            return await self._transact_group(group, patients, model, fn, kind, also)
        if merge is None:
            raise ValueError("these patients span several slot groups: pass `merge`")
        done = await asyncio.gather(
            *(self._transact_group(g, ps, model, fn, kind, also) for g, ps in groups.items()), return_exceptions=True
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        return merge([r for r in done if not isinstance(r, BaseException)])

    async def _transact_group(
        self,
        group: str,
        patient_ids: list[str],
        model: type[S],
        fn: Callable[
            [dict[str, S | None], dict[str, bytes | None]],
            tuple[Mapping[str, S | bytes | tuple[S, bytes]], Mapping[str, bytes], R],
        ],
        kind: str,
        also: Callable[[Any, list[str]], None] | None,
    ) -> R:
        keys = [self.patient_key(p, kind) for p in patient_ids]
        outbox_keys = [self.patient_key(p, "outbox") for p in patient_ids]
        epoch_key, seq_key = self.group_epoch_key(group), self.group_seq_key(group)
        empty = model().model_dump_json().encode()
        while True:
            async with self._routed():
                client = await self.nodes.client(epoch_key)
                async with client.pipeline(transaction=True) as pipe:
                    try:
                        mark = self.marks.get(group, 0)
                        await pipe.watch(*keys, *outbox_keys, epoch_key)
                        raws = await pipe.mget([*keys, *outbox_keys, epoch_key, seq_key])
                        seq = raws.pop()
                        self._check(group, raws.pop(), seq, mark)
                        states, pending = raws[: len(keys)], raws[len(keys) :]

                        # parse, apply, encode: CPU work done in a worker thread, off the event loop
                        writes, written, result = await asyncio.to_thread(
                            self._compute, patient_ids, keys, model, fn, states, pending, kind, empty
                        )
                        pipe.multi()  # type: ignore[no-untyped-call]
                        if writes:  # issue 25: one command for the group's writes, not one SET each
                            pipe.eval(
                                _SET_MANY,
                                len(writes),
                                *(key for key, _ in writes),
                                self.state_ttl or 0,
                                *(value for _, value in writes),
                            )
                        if also is not None:
                            also(pipe, patient_ids)
                        pipe.incr(seq_key)
                        pipe.expire(seq_key, SEQ_TTL_S)
                        out = await pipe.execute()
                        self._wrote(group, out[-2])
                        if self.parsed is not None:  # what Redis now holds, as parsed
                            for key, dumped, after in written:
                                self.parsed.remember(key, dumped, after)
                        return result
                    except WatchError:
                        continue

    def _compute(
        self,
        patient_ids: list[str],
        keys: list[str],
        model: type[S],
        fn: Callable[
            [dict[str, S | None], dict[str, bytes | None]],
            tuple[Mapping[str, S | bytes | tuple[S, bytes]], Mapping[str, bytes], R],
        ],
        states: list[Any],
        pending: list[Any],
        kind: str,
        empty: bytes,
    ) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes, Any]], R]:
        """`fn` over the states read: the writes, the states written with their bytes, and `fn`'s result."""
        parsed = self.parsed
        current: dict[str, S | None] = {}
        for p, key, raw in zip(patient_ids, keys, states, strict=True):
            data = as_bytes(raw)
            if data is None:
                current[p] = None
            else:
                current[p] = model.model_validate_json(data) if parsed is None else parsed.parse(key, data, model)
        boxes = {p: as_bytes(b) for p, b in zip(patient_ids, pending, strict=True)}
        new, outboxes, result = fn(current, boxes)
        writes: list[tuple[str, bytes]] = []
        written: list[tuple[str, bytes, Any]] = []  # remembered as parsed once EXEC has written them
        for p, raw in zip(patient_ids, states, strict=True):
            if p not in new:
                continue
            state = new[p]
            after: S | None
            if isinstance(state, tuple):  # the state and its bytes
                after, dumped = state
            elif isinstance(state, bytes):
                after, dumped = None, state
            else:
                after, dumped = state, state.model_dump_json().encode()
            if dumped != raw and not (raw is None and dumped == empty):
                writes.append((self.patient_key(p, kind), dumped))
                if after is not None:
                    written.append((self.patient_key(p, kind), dumped, after))
        writes += [(self.patient_key(p, "outbox"), box) for p, box in outboxes.items()]
        return writes, written, result

    # ---- finishing a batch ---------------------------------------------------------------------------------
    async def finish(self, outboxes: Mapping[str, str], event_ids: Sequence[SeenRef]) -> None:
        """After the broker acknowledged a batch's outputs, in one atomic step per slot group: delete each patient's
        outbox if it still starts with the token written (patient -> token; an outbox another writer has replaced
        since is left to that writer), and mark the event IDs processed (`(patient, event ID)`). Guarded like the
        transactions, by the group's epoch and write counter: event IDs marked in a flushed or rolled-back group
        would hide their events from the rebuilt state. On a cluster the groups of one master go in one pipeline
        that ends with WAIT: the master's replica holds them before the offsets are committed."""
        if not outboxes and not event_ids:
            return
        by_group: dict[str, tuple[list[str], list[SeenRef]]] = {}
        for p in outboxes:
            by_group.setdefault(self.layout.group(p), ([], []))[0].append(p)
        for g, refs in self.layout.split_refs(event_ids).items():
            by_group.setdefault(g, ([], []))[1].extend(refs)
        per_client: dict[int, tuple[Redis, list[tuple[str, list[str], list[Any]]]]] = {}
        async with self._routed():
            for g, (patients, refs) in by_group.items():
                keys = [
                    self.group_epoch_key(g),
                    self.group_seq_key(g),
                    *(self.patient_key(p, "outbox") for p in patients),
                    *map(self.layout.seen_key, refs),
                ]
                guard = self.epochs.get(g, b"-") if self.guarded else b""
                mark = self.marks.get(g, 0) if self.guarded else 0
                args: list[Any] = [guard, mark, len(patients), self.seen_ttl, *(outboxes[p] for p in patients)]
                client = await self.nodes.client(keys[0])
                per_client.setdefault(id(client), (client, []))[1].append((g, keys, args))
            results = await asyncio.gather(*(self._finish_on(c, steps) for c, steps in per_client.values()))
        if not all(results):
            raise StateLost("a slot group's state epoch is gone from Redis, or its writes were rolled back")

    async def _finish_on(self, client: Redis, steps: list[tuple[str, list[str], list[Any]]]) -> bool:
        async with client.pipeline(transaction=False) as pipe:
            for _, keys, args in steps:
                pipe.eval(_FINISH, len(keys), *keys, *args)
            if self.layout.cluster:
                pipe.execute_command("WAIT", 1, REPLICA_ACK_TIMEOUT_MS)
            out = await pipe.execute()
        ok = True
        for (g, _, _), code in zip(steps, out, strict=False):
            if int(code) == 2:
                self.lost.add(g)  # rolled back
            ok = ok and int(code) == 1
        if self.layout.cluster and int(out[-1]) < 1:
            self.replica_acks_missing += 1
            log.warning("no replica acknowledged the batch's state in time", extra={"count": self.replica_acks_missing})
        return ok

    async def clear_outboxes(self, written: dict[str, str]) -> None:
        """`finish` without event IDs: delete the outboxes that still hold the tokens written."""
        await self.finish(written, [])

    # ---- rebuild -----------------------------------------------------------------------------------------------
    async def write_rebuilt(
        self,
        states: Mapping[str, BaseModel],
        seen: Iterable[SeenRef],
        expected: bytes | None,
        epoch: bytes,
        also: Callable[[Any, Mapping[str, BaseModel]], None] | None = None,
        index: Callable[[Any, Mapping[str, BaseModel]], None] | None = None,
        only: set[str] | None = None,
    ) -> bool:
        """Write a rebuild (shared/runtime/rebuild.py): the replayed states, processed marks and `also`'s keys
        (deadlines) of each slot group to write, with `epoch` as that group's new epoch and a fresh write counter, one
        MULTI/EXEC per group that WATCHes its epoch. Only if Redis still holds `expected` (the epochs seen when the
        loss was found; another instance may have rebuilt since: False, adopt its epochs).

        The groups written: every group for a rebuild run by an operator (a process that is not `guarded`); else
        (healing, a start) only the groups without an epoch and those found rolled back; the others keep their state
        and epoch, adopted as they are. `index(pipe, states)` writes keys derived from the states outside the
        patients' slot groups (notification's card index): in the same MULTI on one Redis, after the groups on a
        cluster (a crash in between leaves those keys missing, not wrong)."""
        marks = dict(self.marks)  # before the read (see `_check`)
        values, seqs = await self._group_values(self.layout.groups)
        self._read = dict(values)
        if self._combine(values) != expected:
            return False
        # review RY: only the groups whose missing outputs the rebuild published (`only`); a group rolled back since
        # stays in `lost`: its next step raises StateLost and the next rebuild writes it, outputs first
        targets = [g for g in self._targets(values, seqs, marks) if only is None or g in only]
        by_group: dict[str, dict[str, BaseModel]] = {g: {} for g in targets}
        for p, state in states.items():
            if (g := self.layout.group(p)) in by_group:
                by_group[g][p] = state
        refs: dict[str, list[SeenRef]] = {g: [] for g in targets}
        for g, rs in self.layout.split_refs(seen).items():
            if g in refs:
                refs[g] = rs
        together = index if not self.layout.cluster else None
        written = await asyncio.gather(
            *(self._write_group(g, values[g], by_group[g], refs[g], epoch, also, together) for g in targets)
        )
        ok = all(written)
        for g, done in zip(targets, written, strict=True):
            if done:
                values[g] = epoch
                self.lost.discard(g)
        adopted = {g: v for g, v in values.items() if v is not None}
        for g in self.layout.groups:
            if self.epochs.get(g) != adopted.get(g):
                self.marks.pop(g, None)
        self.epochs = adopted
        if ok and index is not None and self.layout.cluster:
            rebuilt = {p: s for g in targets for p, s in by_group[g].items()}
            async with self.redis.pipeline(transaction=False) as pipe:
                index(pipe, rebuilt)
                await pipe.execute()
        return ok

    def _targets(
        self, values: Mapping[str, bytes | None], seqs: Mapping[str, int], marks: Mapping[str, int]
    ) -> list[str]:
        """The slot groups a rebuild writes (`write_rebuilt`); every group found rolled back is added to `lost`."""
        for g in self.layout.groups:  # every group rolled back so far, not only the one that was noticed
            if values[g] is not None and values[g] == self.epochs.get(g) and seqs[g] < marks.get(g, 0):
                self.lost.add(g)
        return [g for g in self.layout.groups if not self.guarded or values[g] is None or g in self.lost]

    async def rebuilding(self) -> set[str]:
        """The slot groups a rebuild would write now (`write_rebuilt`): a rebuild publishes the missing outputs of
        their patients only (review RY, HAZ-25-CHAOS-01: an intact group keeps its state and gets no processed marks,
        so its records past the committed offset are applied live, their outputs sent then)."""
        marks = dict(self.marks)
        values, seqs = await self._group_values(self.layout.groups)
        return set(self._targets(values, seqs, marks))

    async def _write_group(
        self,
        group: str,
        expected: bytes | None,
        states: Mapping[str, BaseModel],
        seen: list[SeenRef],
        epoch: bytes,
        also: Callable[[Any, Mapping[str, BaseModel]], None] | None,
        index: Callable[[Any, Mapping[str, BaseModel]], None] | None,
    ) -> bool:
        epoch_key = self.group_epoch_key(group)
        async with self._routed():
            client = await self.nodes.client(epoch_key)
            async with client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(epoch_key)
                    if as_bytes(await pipe.get(epoch_key)) != expected:
                        return False  # leaving the block resets the pipeline (UNWATCH)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    empty = type(next(iter(states.values())))().model_dump_json() if states else ""
                    for patient_id, state in states.items():
                        dumped = state.model_dump_json()
                        if dumped != empty:  # as live: nothing is written for a patient whose events leave no state
                            pipe.set(self.patient_key(patient_id), dumped, ex=self.state_ttl)
                    if also is not None:
                        also(pipe, states)
                    if index is not None:
                        index(pipe, states)
                    for ref in seen:
                        pipe.set(self.layout.seen_key(ref), b"1", ex=self.seen_ttl)
                    pipe.set(self.group_seq_key(group), 0, ex=SEQ_TTL_S)
                    pipe.set(epoch_key, epoch)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False


# Issue 25: the states and outboxes of one slot group's transaction in one command (SET ... EX each; KEYS the keys,
# ARGV the TTL, 0 for none, then the values in order); 200 SETs cost the client ~200 packings and QUEUED replies, this
# one. Under maxmemory the whole transaction aborts, never part of it: the INCR queued with it is deny-oom (refused
# when queued: EXECABORT; an EXEC holding it is refused as a whole). No `#!lua` shebang (review RP, HAZ-25-RUNTIME-01):
# Redis < 7 fails to compile one inside EXEC, which still applies the counter and timers queued with it, without the
# states. Nothing in it can fail once queued: the TTL is checked by StateStore (0 <= TTL <= MAX_TTL_S).
_SET_MANY = """
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  if ttl > 0 then redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ttl) else redis.call('SET', KEYS[i], ARGV[i + 1]) end
end
return #KEYS
"""

# KEYS: epoch, write counter, n outboxes, seen keys. ARGV: epoch expected ('' = unguarded), lowest write counter
# expected, n, seen TTL, n outbox tokens. Returns 1 done, 0 epoch gone or changed, 2 rolled back.
_FINISH = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then return 2 end
local n = tonumber(ARGV[3])
for i = 1, n do
  local box = redis.call('GET', KEYS[2 + i])
  if box and string.sub(box, 1, #ARGV[4 + i]) == ARGV[4 + i] then redis.call('DEL', KEYS[2 + i]) end
end
for i = 3 + n, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[4]) end
return 1
"""
