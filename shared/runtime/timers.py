"""Per-patient timers: when a patient's deadline passes, a synthetic clock event goes through the service's
normal per-patient path, so reviews and overdue checks fire on time, not only when another event arrives.

    service.patient_aggregate(topics, State, apply, due=lambda state: state.next_due)

- `due(state)` is the patient's next deadline (or None). The runtime writes it to a Redis sorted set (member:
  patient ID, score: epoch seconds) in the same MULTI/EXEC as the state, so the two never disagree and both
  survive a restart (and `rebuild` rewrites both).
- A background task (`Timers.run`) claims the patients whose deadline has passed, atomically (Lua), with a short
  lease: a claimed deadline is pushed `timer_claim_lease_s` (10 s) ahead, so if the process dies before its tick
  is on the topic, it fires again soon. It publishes one `ClockTick` per patient, keyed by patient, on the
  service's own clock topic (`contracts.topics.clock_topic`); once the broker holds a tick, its lease is extended
  to `timer_lease_s` (60 s), only where processing has not written a newer deadline meanwhile: a tick waiting in
  the consumer's lag is not fired again and again.
- The tick is consumed like any other event: deduplicated (its ID derives from service, patient, deadline and
  firing time: a redelivered record is skipped, a deadline set again at the same time fires again; applying a
  tick is idempotent, so a lease's second firing is harmless),
  applied in order with the patient's other events, outputs acknowledged before the offsets are committed. The
  transition stays pure: the adapter passes `now` in. Processing it (or any event) writes the next deadline,
  which must lie after `now`.

A plain handler (no aggregate) can use `schedule()` directly. Several service instances may run: the claim is
atomic, and each tick goes to the instance that owns the patient's partition.

On a Redis Cluster (issue 22) there is one sorted set per slot group (`osteocds:<service>:{<tag>}:timers`, in the
slot of its patients' states: shared/runtime/state.py), written in the group's own transaction; a poll claims from
every group's set (each claim is one script on one slot), all at once. On one Redis there is one set, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from contracts.base import derived_id
from contracts.clock import ClockTick
from contracts.topics import Topic
from shared.runtime.kafka import Outgoing, Producer
from shared.runtime.state import AnyRedis, Layout, is_cluster
from shared.settings import Settings

log = logging.getLogger(__name__)

# KEYS[1] the sorted set; ARGV: now, lease end, batch size. Returns [member, score, ...] of the due entries,
# each pushed to the lease end in the same step (another instance polling now does not claim them).
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[2], due[i]) end
return due
"""


# KEYS[1] the sorted set; ARGV: the claim's lease end, the longer lease end, members. A member still at the claim's
# lease end (no newer deadline written by processing) is pushed to the longer lease end.
_EXTEND = """
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[1]) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i]) end
end
return 1
"""


class Timers:
    def __init__(
        self, redis: AnyRedis, namespace: str, topic: Topic, settings: Settings, clock: Callable[[], datetime]
    ) -> None:
        self.redis = redis
        self.layout = Layout(f"osteocds:{namespace}", is_cluster(redis))
        #: each slot group's sorted set (one on a single Redis: `osteocds:<service>:timers`)
        self.keys = [self.layout.key(g, "timers") for g in self.layout.groups]
        self.key = self.keys[0]
        self.topic = topic
        self.service = settings.service_name
        self.settings = settings
        self.clock = clock

    # ---- writing deadlines ---------------------------------------------------------------------------------
    def key_of(self, patient_id: str) -> str:
        """The sorted set of the patient's slot group."""
        return self.layout.key(self.layout.group(patient_id), "timers")

    def write(self, pipe: Any, dues: Mapping[str, datetime | None]) -> None:
        """Queue the deadlines on a pipeline (inside the state's MULTI of their slot group): None removes the
        patient's timer."""
        # issue 25: one ZADD and one ZREM per timers key (slot group), not one command per patient
        adds: dict[str, dict[str, float]] = {}
        removes: dict[str, list[str]] = {}
        for patient_id, due in dues.items():
            if due is None:
                removes.setdefault(self.key_of(patient_id), []).append(patient_id)
            else:
                adds.setdefault(self.key_of(patient_id), {})[patient_id] = due.timestamp()
        for key, members in removes.items():
            pipe.zrem(key, *members)
        for key, scores in adds.items():
            pipe.zadd(key, scores)

    async def schedule(self, patient_id: str, due: datetime | None) -> None:
        if due is None:
            await self.redis.zrem(self.key_of(patient_id), patient_id)
        else:
            await self.redis.zadd(self.key_of(patient_id), {patient_id: due.timestamp()})

    async def due_at(self, patient_id: str) -> datetime | None:
        score = await self.redis.zscore(self.key_of(patient_id), patient_id)
        return None if score is None else datetime.fromtimestamp(float(score), UTC)

    # ---- firing ------------------------------------------------------------------------------------------
    def claim_lease_end(self, now: datetime) -> float:
        return now.timestamp() + self.settings.timer_claim_lease_s

    async def claim(self, now: datetime) -> list[tuple[str, datetime]]:
        """The patients whose deadline is at or before `now`, each leased for `timer_claim_lease_s`."""
        s = self.settings
        lease_end = self.claim_lease_end(now)
        raws = await asyncio.gather(
            *(self.redis.eval(_CLAIM, 1, key, now.timestamp(), lease_end, s.timer_batch) for key in self.keys),
            return_exceptions=True,
        )
        failed = [r for r in raws if isinstance(r, BaseException)]
        if failed and len(failed) == len(raws):
            raise failed[0]
        if failed:  # review R1: the groups claimed fire; the others are claimed again at the next poll
            log.warning(
                "clock claim failed for some slot groups; retrying them",
                extra={"count": len(failed), "error_type": type(failed[0]).__name__},
            )
        out: list[tuple[str, datetime]] = []
        for raw in raws:
            if isinstance(raw, BaseException):
                continue
            for member, score in zip(raw[::2], raw[1::2], strict=True):
                patient = member.decode() if isinstance(member, bytes) else str(member)
                out.append((patient, datetime.fromtimestamp(float(score), UTC)))
        return out

    def tick(self, patient_id: str, due: datetime, now: datetime) -> ClockTick:
        return ClockTick(
            # one ID per firing: a deadline set again at the same time after its tick was processed (a patient's
            # events split across batches) fires again; a redelivered tick record keeps its ID (deduplicated)
            event_id=derived_id("clock", self.service, patient_id, due.isoformat(), now.isoformat()),
            patient_id=patient_id,
            occurred_at=due,
            recorded_at=now,
            source=self.service,
            service=self.service,
            due_at=due,
        )

    async def fire_due(self, producer: Producer) -> int:
        """Publish a tick for every due patient and wait for the broker's acknowledgements."""
        now = self.clock()
        claimed = await self.claim(now)
        acks = []
        for patient_id, due in claimed:
            t = self.tick(patient_id, due, now)
            acks.append(
                await producer.send(
                    Outgoing(topic=self.topic.name, key=patient_id, value=t.model_dump_json(), schema_id=t.schema_id)
                )
            )
        if acks:
            await asyncio.gather(*acks)
            # on the topic now: processed in time whatever the lag, so not fired again before the longer lease
            lease_end = now.timestamp() + self.settings.timer_lease_s
            members: dict[str, list[str]] = {}
            for patient_id, _ in claimed:
                members.setdefault(self.key_of(patient_id), []).append(patient_id)
            await asyncio.gather(
                *(
                    self.redis.eval(_EXTEND, 1, key, self.claim_lease_end(now), lease_end, *group)
                    for key, group in members.items()
                )
            )
            log.info("clock ticks published", extra={"count": len(acks)})
        return len(acks)

    async def run(self, producer: Producer, stopping: asyncio.Event) -> None:
        """Poll every `timer_poll_interval_s` until `stopping` is set. Errors are logged and retried at the next
        poll (a claimed deadline whose tick was not sent fires again when its lease ends)."""
        while not stopping.is_set():
            try:
                await self.fire_due(producer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("clock poll failed; retrying", extra={"error_type": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.settings.timer_poll_interval_s)
