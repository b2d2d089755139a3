"""shared/runtime/timers.py against a real broker and a real Redis, with a toy aggregate and real (short) delays: any
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
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
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


async def test_a_deadline_claimed_by_a_process_that_died_before_sending_its_tick_fires_within_the_claim_lease(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str]
) -> None:
    """Chaos finding (issue 13): a process SIGKILLed between claiming due deadlines and the broker's ack of their
    ticks left those patients' settle-window alerts unshown for the whole lease (60 s). The claim now holds for
    `timer_claim_lease_s`; once a tick is on the topic its lease becomes `timer_lease_s`, unless processing has
    written a newer deadline meanwhile."""
    name = f"timers-claim-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{name}", LabResult, ("test",), (name,), "timers test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name).model_copy(
        update={"timer_claim_lease_s": 1.0, "timer_lease_s": 60.0}
    )
    await ensure_topics(settings, [topic, clock_topic(name)])
    dead, waiting, fresh = (f"pt-{name}-{k}" for k in ("dead", "waiting", "fresh"))

    service = _service(settings, topic, delay=60)
    timers = service.use_timers()
    past = datetime.now(UTC) - timedelta(seconds=1)
    for patient in (dead, waiting, fresh):
        await timers.schedule(patient, past)
    # the process that "died": it claimed `dead` and never sent its tick
    claimed_at = datetime.now(UTC)
    assert {p for p, _ in await timers.claim(claimed_at)} == {dead, waiting, fresh}
    await timers.schedule(waiting, past)  # two of them due again: fired by the live instance at once
    await timers.schedule(fresh, past)

    # a live instance sends ticks for `waiting` and `fresh` now, then for `dead` once its claim lease ends
    await service.start()
    try:

        async def ticked(patient: str) -> Reminder | None:
            state = await service.store.load(patient, Reminder)
            return state if state is not None and state.ticks else None

        for patient in (waiting, fresh):
            await wait_for(lambda p=patient: ticked(p), timeout=10)  # type: ignore[misc]
        fired = await wait_for(lambda: ticked(dead), timeout=10)  # before: 60 s
        assert len(fired.ticks) == 1
        assert (datetime.now(UTC) - claimed_at).total_seconds() < 10
    finally:
        await service.stop()


async def test_a_tick_on_the_topic_extends_its_lease_only_where_no_newer_deadline_was_written(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str]
) -> None:
    """A tick the broker holds is processed whatever the lag: its deadline is held `timer_lease_s`, not fired
    again every claim lease; a deadline written by processing in between is kept as it is."""
    name = f"timers-extend-{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name).model_copy(
        update={"timer_claim_lease_s": 1.0, "timer_lease_s": 60.0}
    )
    await ensure_topics(settings, [clock_topic(name)])
    service = Service(settings)
    timers = service.use_timers()
    lagging, rescheduled = f"pt-{name}-lagging", f"pt-{name}-rescheduled"
    past = datetime.now(UTC) - timedelta(seconds=1)
    await timers.schedule(lagging, past)
    await timers.schedule(rescheduled, past)
    newer = datetime.now(UTC) + timedelta(minutes=15)

    original_claim = timers.claim

    async def claim_then_process(now: datetime) -> list[tuple[str, datetime]]:
        claimed = await original_claim(now)
        await timers.schedule(rescheduled, newer)  # its tick processed at once: a new deadline written
        return claimed

    timers.claim = claim_then_process  # type: ignore[method-assign]
    await service.producer.start()
    try:
        now = datetime.now(UTC)
        assert await timers.fire_due(service.producer) == 2
        lagging_due = await timers.due_at(lagging)
        assert lagging_due is not None and (lagging_due - now).total_seconds() > 50  # held for timer_lease_s
        kept = await timers.due_at(rescheduled)
        assert kept is not None and abs((kept - newer).total_seconds()) < 0.001  # untouched
    finally:
        await service.producer.stop()
        await service.redis.aclose()


class Rearmed(BaseModel):
    """Toy aggregate: every result sets the deadline to the same fixed time; each tick is recorded."""

    due: datetime | None = None
    ticks: int = 0


async def test_a_deadline_set_again_at_the_same_time_after_its_tick_fires_again(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """Chaos finding (issue 13): notification's settle deadline is the record's broker time + the window, so a
    patient's recommendations published together but consumed in two batches set the same deadline twice. The
    second tick had the first one's ID (service, patient, deadline), was dropped as a duplicate, and the alerts
    of the second batch stayed unshown for the whole lease. A tick's ID now also names its firing."""
    name = f"timers-rearm-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{name}", LabResult, ("test",), (name,), "timers test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name).model_copy(update={"timer_lease_s": 60.0})
    await ensure_topics(settings, [topic, clock_topic(name)])
    patient = f"pt-{name}"
    fixed = datetime.now(UTC) - timedelta(seconds=1)
    service = Service(settings)

    def apply(state: Rearmed, event: Any) -> tuple[Rearmed, list[Message]]:
        if isinstance(event, ClockTick):
            return Rearmed(due=None, ticks=state.ticks + 1), []
        return Rearmed(due=fixed, ticks=state.ticks), []

    service.patient_aggregate([topic], Rearmed, apply, due=lambda s: s.due)
    await service.start()
    try:

        async def ticks(n: int) -> Rearmed | None:
            state = await service.store.load(patient, Rearmed)
            return state if state is not None and state.ticks >= n else None

        await publish(topic.name, lab(patient, "2000-8", 2.4, "mmol/L"))
        await wait_for(lambda: ticks(1), timeout=10)
        await publish(topic.name, lab(patient, "2000-8", 2.5, "mmol/L"))  # the same deadline again
        state = await wait_for(lambda: ticks(2), timeout=10)  # before: not until the 60 s lease
        assert state.ticks == 2 and state.due is None
    finally:
        await service.stop()
