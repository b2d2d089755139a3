"""shared/timers.py against a real broker and a real Redis, with a toy aggregate and real (short) delays: any
service can declare per-patient deadlines; they fire as clock ticks through the normal per-patient path, exactly
once per deadline, and survive a restart of the service."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from contracts.base import Message
from contracts.clock import ClockTick
from contracts.hospital import LabResult
from contracts.topics import Topic, clock_topic
from shared.kafka import ensure_topics
from shared.service import Service
from shared.settings import Settings
from tests.conftest import Publish, lab, wait_for


class Reminder(BaseModel):
    """Toy aggregate: a reminder `delay` seconds after each result; the ticks it received."""

    due: datetime | None = None
    ticks: list[str] = []


def _settings(kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], name: str) -> Settings:
    return Settings.model_validate(
        {
            **{k.lower(): v for k, v in kafka_settings.items()},
            "service_name": name,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "redis_url": redis_url,
            "kafka_session_timeout_ms": 3000,
            "kafka_heartbeat_interval_ms": 500,
            "kafka_fetch_max_wait_ms": 50,
            "timer_poll_interval_s": 0.1,
            "timer_lease_s": 5,
        }
    )


def _service(settings: Settings, topic: Topic, delay: float) -> Service:
    service = Service(settings)

    def apply(state: Reminder, event: Any) -> tuple[Reminder, list[Message]]:
        now = service.clock()
        if isinstance(event, ClockTick):
            return Reminder(due=None, ticks=[*state.ticks, event.due_at.isoformat()]), []
        return Reminder(due=now + timedelta(seconds=delay), ticks=state.ticks), []

    service.patient_aggregate([topic], Reminder, apply, due=lambda s: s.due)
    return service


async def test_a_deadline_fires_once_with_no_new_event_and_survives_a_restart(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    name = f"timers-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{name}", LabResult, ("test",), (name,), "timers test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name)
    await ensure_topics(settings, [topic, clock_topic(name)])
    patient = f"pt-{name}"

    # 1. a result schedules a reminder in 1.5 s; the service stops before it is due
    service = _service(settings, topic, delay=1.5)
    await service.start()
    await publish(topic.name, lab(patient, "2000-8", 2.4, "mmol/L"))
    assert service.timers is not None

    async def scheduled() -> datetime | None:
        assert service.timers is not None
        return await service.timers.due_at(patient)

    due = await wait_for(scheduled, timeout=20)
    await service.stop()
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.3)  # due while nobody runs

    # 2. a new instance fires it, through the broker and the aggregate, and clears it (the state says None)
    service = _service(settings, topic, delay=1.5)
    await service.start()
    try:

        async def ticked() -> Reminder | None:
            state = await service.store.load(patient, Reminder)
            return state if state is not None and state.ticks else None

        state = await wait_for(ticked, timeout=20)
        assert state.ticks == [due.isoformat()]
        assert await service.timers.due_at(patient) is None if service.timers else False
        await asyncio.sleep(1.0)  # no second tick: the deadline was replaced in the same transaction
        again = await service.store.load(patient, Reminder)
        assert again is not None and again.ticks == [due.isoformat()]
    finally:
        await service.stop()


async def test_a_plain_handler_schedules_and_receives_its_ticks(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """The same clock for a service without an aggregate (e.g. an escalation deadline): `use_timers(on_tick)`,
    `timers.schedule(patient, due)`; the tick comes to the handler through the broker."""
    name = f"timers-plain-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{name}", LabResult, ("test",), (name,), "timers test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name)
    await ensure_topics(settings, [topic, clock_topic(name)])
    patient = f"pt-{name}"
    service = Service(settings)
    received: list[ClockTick] = []

    async def on_result(event: LabResult, ctx: Any) -> list[Message]:
        await timers.schedule(event.patient_id, service.clock() + timedelta(seconds=0.5))
        return []

    async def on_tick(event: ClockTick, ctx: Any) -> list[Message]:
        received.append(event)
        await timers.schedule(event.patient_id, None)  # done: no further deadline
        return []

    timers = service.use_timers(on_tick)
    service.subscriber(topic)(on_result)
    await service.start()
    try:
        await publish(topic.name, lab(patient, "2000-8", 2.4, "mmol/L"))
        await wait_for(lambda: asyncio.sleep(0, received), timeout=20)
        assert [t.patient_id for t in received] == [patient] and received[0].service == name
        assert await timers.due_at(patient) is None
    finally:
        await service.stop()
