"""Redis patient-state store (redis.asyncio).

Redis is a cache of state derived from the Kafka topics, not the record. Each service keeps one JSON
aggregate per patient and updates it with optimistic concurrency (WATCH/MULTI), so a rebalance that
briefly gives a partition to two consumers cannot lose an update. Ordering by clinical time is the
aggregate's own business (pure code in each service), so a late event never hides a newer one.

A lost cache is detected, never mistaken for new patients: the service writes an epoch key when its state is
complete (after a rebuild), and every state transaction WATCHes and reads it. A flushed or replaced Redis has no
epoch (or another one), so the transaction raises `StateLost` before anything is computed from empty state, and
the service rebuilds (shared/runtime/healing.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared.runtime.parsed import ParsedStates

S = TypeVar("S", bound=BaseModel)
R = TypeVar("R")


class StateLost(Exception):
    """The service's epoch key is missing or changed: Redis lost (or another instance rebuilt) its state."""


def _text(raw: bytes | str | None) -> bytes | None:
    return raw if raw is None or isinstance(raw, bytes) else raw.encode()


class StateStore:
    def __init__(self, redis: Redis, namespace: str, seen_ttl_seconds: int, state_ttl_seconds: int = 0) -> None:
        self.redis = redis
        self.ns = f"osteocds:{namespace}"
        self.seen_ttl = seen_ttl_seconds
        self.epoch_key = f"{self.ns}:epoch"
        #: the epoch this process holds; when `guarded`, every transaction checks that Redis still holds it
        self.epoch: bytes | None = None
        self.guarded = False
        #: per-patient keys (state, outbox) expire this long after their last write (0: never). Bounded state:
        #: a patient without any event for that long is forgotten, like the topics' own retention.
        self.state_ttl = state_ttl_seconds or None
        #: issue 25: the states this process parsed or wrote last (shared/runtime/parsed.py), used by
        #: `transact_many` when Redis still holds exactly their bytes; None: every state is parsed
        self.parsed: ParsedStates[Any] | None = None

    def _check_epoch(self, raw: bytes | str | None) -> None:
        if self.guarded and _text(raw) != self.epoch:
            raise StateLost("the service's state epoch is gone from Redis")

    async def read_epoch(self) -> bytes | None:
        return _text(await self.redis.get(self.epoch_key))

    async def intact(self) -> bool:
        """True when Redis still holds this process's epoch (one GET: cheap enough for readiness probes)."""
        return not self.guarded or (self.epoch is not None and await self.read_epoch() == self.epoch)

    def seen_key(self, event_id: str) -> str:
        return f"{self.ns}:seen:{event_id}"

    def patient_key(self, patient_id: str, kind: str = "state") -> str:
        return f"{self.ns}:{kind}:{patient_id}"

    async def seen(self, event_id: str) -> bool:
        """True if this event ID was already fully processed (its outputs were produced)."""
        return bool(await self.redis.exists(self.seen_key(event_id)))

    async def seen_many(self, event_ids: list[str]) -> set[str]:
        """The subset of `event_ids` already processed, in one round trip."""
        flags = await self.redis.mget([self.seen_key(eid) for eid in event_ids])  # one command
        return {eid for eid, flag in zip(event_ids, flags, strict=True) if flag is not None}

    async def mark_seen(self, event_ids: Iterable[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for eid in event_ids:
                pipe.set(self.seen_key(eid), b"1", ex=self.seen_ttl)
            await pipe.execute()

    async def load(self, patient_id: str, model: type[S], kind: str = "state") -> S | None:
        raw = await self.redis.get(self.patient_key(patient_id, kind))
        return None if raw is None else model.model_validate_json(raw)

    async def transact(
        self,
        patient_id: str,
        model: type[S],
        fn: Callable[[S | None], tuple[S, R]] | Callable[[S | None], Awaitable[tuple[S, R]]],
        kind: str = "state",
    ) -> R:
        """Read the patient's aggregate, apply `fn`, write it back atomically; retry on a conflict."""
        key = self.patient_key(patient_id, kind)
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key, self.epoch_key)
                    raw, epoch = await pipe.mget(key, self.epoch_key)
                    self._check_epoch(epoch)
                    current = None if raw is None else model.model_validate_json(raw)
                    out = fn(current)
                    new, result = await out if isinstance(out, Awaitable) else out
                    pipe.multi()  # type: ignore[no-untyped-call]
                    # nothing is written for a patient that had no state and still has none (e.g. an ack for
                    # an unknown patient): no key is left behind
                    if new != current and not (current is None and new == type(new)()):
                        pipe.set(key, new.model_dump_json(), ex=self.state_ttl)
                    await pipe.execute()
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
        also: Callable[[Any], None] | None = None,
    ) -> R:
        """`transact` for many patients at once, with an outbox: WATCH their state and outbox keys, MGET both,
        apply `fn` (pure) to the states and the outboxes still pending, then write the changed states and the
        new outboxes in one MULTI/EXEC: three round trips for a whole batch. The outbox holds the outputs of
        the new state until the broker acknowledges them (`finish`): if the process dies in between,
        the redelivered batch finds them and sends them again, although its state already has the facts.
        A concurrent writer makes EXEC fail and `fn` is applied again to fresh data. (On Redis Cluster the
        keys would need a common hash tag.) `also(pipe)` queues more writes in the same MULTI (timers)."""
        keys = [self.patient_key(p, kind) for p in patient_ids]
        outbox_keys = [self.patient_key(p, "outbox") for p in patient_ids]
        empty = model().model_dump_json().encode()
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*keys, *outbox_keys, self.epoch_key)
                    raws = await pipe.mget([*keys, *outbox_keys, self.epoch_key])
                    self._check_epoch(raws.pop())
                    states, pending = raws[: len(keys)], raws[len(keys) :]

                    # parse, apply, encode: CPU work done in a worker thread, off the event loop
                    writes, written, result = await asyncio.to_thread(
                        self._compute, patient_ids, keys, model, fn, states, pending, kind, empty
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for key, value in writes:
                        pipe.set(key, value, ex=self.state_ttl)
                    if also is not None:
                        also(pipe)
                    await pipe.execute()
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
            data = _text(raw)
            if data is None:
                current[p] = None
            else:
                current[p] = model.model_validate_json(data) if parsed is None else parsed.parse(key, data, model)
        boxes = {p: _text(b) for p, b in zip(patient_ids, pending, strict=True)}
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

    async def finish(self, outboxes: dict[str, str], event_ids: list[str]) -> None:
        """After the broker acknowledged a batch's outputs, in one atomic step: delete each patient's outbox if it
        still starts with the token written (patient -> token; an outbox another writer has replaced since is
        left to that writer), and mark the event IDs processed. Guarded by the epoch like the transactions: event
        IDs marked in a flushed Redis would hide their events from the rebuilt state."""
        if not outboxes and not event_ids:
            return
        keys = [self.epoch_key, *(self.patient_key(p, "outbox") for p in outboxes), *map(self.seen_key, event_ids)]
        guard = (self.epoch or b"") if self.guarded else b""
        args: list[bytes | str | int] = [guard, len(outboxes), self.seen_ttl, *outboxes.values()]
        if not await self.redis.eval(_FINISH, len(keys), *keys, *args):
            raise StateLost("the service's state epoch is gone from Redis")

    async def clear_outboxes(self, written: dict[str, str]) -> None:
        """`finish` without event IDs: delete the outboxes that still hold the tokens written."""
        await self.finish(written, [])


# KEYS: epoch, n outboxes, seen keys. ARGV: epoch expected ('' = unguarded), n, seen TTL, n outbox tokens.
_FINISH = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 1, n do
  local box = redis.call('GET', KEYS[1 + i])
  if box and string.sub(box, 1, #ARGV[3 + i]) == ARGV[3 + i] then redis.call('DEL', KEYS[1 + i]) end
end
for i = 2 + n, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[3]) end
return 1
"""
