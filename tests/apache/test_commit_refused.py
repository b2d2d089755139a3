"""Issue 22: a member expelled from its group (its session outlived, e.g. while the group's coordinator fails over)
has its next offset commit refused (CommitFailedError). That stopped the service; it must instead rejoin and go on,
with the refused batch delivered again and skipped by its processed marks (no output twice, none lost)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.runtime.subscription import Context
from tests.conftest import Publish, lab
from tests.test_runtime import _settings

#: a session outlived on purpose (its timeout against a stall): alone in `./osteocds test`
pytestmark = pytest.mark.serial


async def test_a_member_expelled_mid_batch_keeps_running_and_processes_each_record_once(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    """Two instances, one partition: the one holding it stalls past its session and is expelled, the other takes
    the partition over; the stalled one's next commit is refused (the group has moved on, and its rejoin waits for
    the other member). It must go on, and each record is handled once by the two together."""
    group = f"expelled-{uuid.uuid4().hex[:8]}"
    topic = Topic(f"test.{group}", LabResult, ("test",), (group,), "runtime test", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"kafka_session_timeout_ms": 6000, "kafka_heartbeat_interval_ms": 500, "kafka_max_poll_records": 5}
    )
    await ensure_topics(settings, [topic])
    sent = [lab(f"pt-{group}-{i % 3}", "2000-8", 2.4, "mmol/L") for i in range(30)]
    stall_on = sent[2]["event_id"]
    handled: list[str] = []

    def instance() -> Service:
        svc = Service(settings)

        @svc.subscriber(topic)
        async def handle(event: LabResult, ctx: Context) -> list[Message]:
            handled.append(str(event.event_id))
            if str(event.event_id) == stall_on and handled.count(stall_on) == 1:
                time.sleep(settings.kafka_session_timeout_ms / 1000 * 1.8)  # noqa: ASYNC251 (a stalled loop: expelled)
            return []

        return svc

    first, second = instance(), instance()
    await first.start()
    await second.start()
    services = (first, second)
    try:
        await publish(topic.name, sent[0])
        for _ in range(1500):  # the first record handled: the partition's holder known
            if handled:
                break
            await asyncio.sleep(0.02)
        for m in sent[1:]:
            await publish(topic.name, m)
        expected = {m["event_id"] for m in sent}
        for _ in range(3000):
            if set(handled) >= expected or any(s.fatal is not None for s in services):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(1)  # a second delivery of the refused batch, if any, would be handled by now
        refused = sum(
            s.metrics.registry.get_sample_value("osteocds_commits_refused_total", {"service": s.name}) or 0
            for s in services
        )
        assert all(s.fatal is None for s in services), [repr(s.fatal) for s in services]
        assert all(s.healthy for s in services)
        assert set(handled) == expected  # none lost
        assert len(handled) == len(expected), "a refused batch delivered again is skipped, never handled twice"
        # the refusal happens in most runs (a rejoin that wins the race commits normally): what must hold either
        # way is asserted above; without the fix a refused commit stopped the instance (its `fatal`)
        print(f"commits refused: {refused}")
    finally:
        await second.stop()
        await first.stop()
    assert all(s.fatal is None for s in services)
