"""Review RY (HAZ-25-CHAOS-01): a service without a patient aggregate (plain handlers only) starts on a broker whose
other topics hold records. 85415ae's replay read every partition `reading.partitions` listed for its aggregate
topics; with none, the broker lists every topic, and the start's rebuild read other services' records and failed on
the first (KeyError: not a subscription), a fatal consumer loop (tests/test_timers.py failed in the cluster tier)."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from tests.conftest import Publish, lab
from tests.test_changelog import wait_until
from tests.test_runtime import _settings


async def test_a_service_without_an_aggregate_starts_beside_other_topics_records(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], publish: Publish
) -> None:
    name = f"plain-{uuid.uuid4().hex[:8]}"
    mine = Topic(f"test.{name}", LabResult, ("test",), (name,), "plain handler", partitions=1)
    other = Topic(f"test.{name}-other", LabResult, ("test",), ("nobody",), "another service's", partitions=1)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, name)
    await ensure_topics(settings, [mine, other])
    await publish(other.name, lab(f"pt-{name}", "2000-8", 2.4, "mmol/L"))  # not this service's
    service = Service(settings)
    received: list[str] = []

    async def on_result(event: LabResult, ctx: Any) -> list[Message]:
        received.append(str(event.event_id))
        return []

    service.subscriber(mine)(on_result)
    await service.start()
    try:
        msg = lab(f"pt-{name}", "2000-8", 2.5, "mmol/L")
        await publish(mine.name, msg)

        async def handled() -> bool:
            return received == [msg["event_id"]] or service.fatal is not None

        await wait_until(handled)
        assert service.fatal is None, repr(service.fatal)
        assert received == [msg["event_id"]]
    finally:
        await service.stop()
