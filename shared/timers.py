"""Timers that survive a restart: per service, a Redis sorted set of (patient, due time).

A pure aggregate cannot touch Redis, so it asks for a timer by returning a `TimerSet` message among its
outputs (published to `osteocds.timers.v1` with the rest, after the state is written). The service records
it in its sorted set when it consumes it back; a background task then feeds every due patient through the
normal per-patient path, by publishing the message `fire(patient_id, due)` (keyed by patient) on a topic the
aggregate consumes. So the timer's effect is an event on Kafka: a replay gives the same state.

    timers = Timers(service, fire=lambda patient_id, due: AlertAction(..., action="timer", occurred_at=due))
    app = create_app(service, routers, background=[timers.run])

At-least-once: a due entry is removed only after the broker acknowledged what it fired; fired twice (a crash
in between, two instances), the message has the same deterministic event ID and the runtime drops the copy.
A due time already past when the service starts (it was down) fires at once, with its own due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from contracts.base import Message
from contracts.lifecycle import TimerSet
from contracts.topics import TIMERS
from shared.service import TRANSIENT, Context, Service

log = logging.getLogger(__name__)

Fire = Callable[[str, datetime], Message]


class Timers:
    def __init__(self, service: Service, fire: Fire, poll_seconds: float = 1.0, batch: int = 500) -> None:
        self.service = service
        self.fire = fire
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.key = f"osteocds:{service.name}:timers"
        service.subscriber(TIMERS)(self._on_timer_set)

    async def _on_timer_set(self, timer: TimerSet, _: Context) -> Sequence[Message]:
        if timer.service == self.service.name:
            await self.schedule(timer.patient_id, timer.due_at)
        return []

    async def schedule(self, patient_id: str, due: datetime) -> None:
        await self.service.redis.zadd(self.key, {f"{patient_id}|{due.isoformat()}": due.timestamp()})

    async def pending(self) -> list[tuple[str, datetime]]:
        """Every timer not fired yet: (patient ID, due time), earliest first."""
        members = await self.service.redis.zrange(self.key, 0, -1)
        return [_parse(m) for m in members if isinstance(m, bytes | str)]

    async def fire_due(self, now: datetime) -> int:
        """Publish the message of every timer due at `now`, then forget them. Returns how many fired."""
        found = await self.service.redis.zrangebyscore(self.key, "-inf", now.timestamp(), start=0, num=self.batch)
        members = [m for m in found if isinstance(m, bytes | str)]
        if not members:
            return 0
        acks = [await self.service.producer.send(self.fire(*_parse(m))) for m in members]
        await asyncio.gather(*acks)
        await self.service.redis.zrem(self.key, *members)
        return len(members)

    async def run(self, stop: asyncio.Event) -> None:
        """The background task: fire what is due, then sleep `poll_seconds` (or less when more is due)."""
        while not stop.is_set():
            fired = 0
            try:
                fired = await self.fire_due(datetime.now(UTC))
            except TRANSIENT as exc:
                log.warning("timers: transient error, retrying", extra={"error_type": type(exc).__name__})
            except Exception:
                log.exception("timers: unexpected error")
            if fired >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)


def _parse(member: bytes | str) -> tuple[str, datetime]:
    text = member.decode() if isinstance(member, bytes) else member
    patient_id, _, due = text.partition("|")
    return patient_id, datetime.fromisoformat(due)
