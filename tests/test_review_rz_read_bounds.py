"""Review RZ (HAZ-25-HEAL-01): a rebuild's read of a topic range is bounded.

`reading.read_range` (the replay, the output topics, a restore's tail) looped until every partition's position reached
its end, with no overall bound: an end that is never reached (a partition without a leader, a topic recreated shorter
than a changelog's marks say) kept the heal waiting without end, never failing, so never retried nor logged by
shared/runtime/healing.py. It now raises a transient error (KafkaTimeoutError) once no partition has moved for
`READ_STALL_S`. Real broker (tests/conftest.py); the end asked for lies past the partition's real end."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from shared.runtime import reading, retrying
from tests.test_changelog import toy

#: a bound on a wait, timed: alone in `./osteocds test`
pytestmark = pytest.mark.serial

STALL_S = 1.0


async def test_a_read_to_an_end_never_reached_fails_as_transient_instead_of_waiting_without_end(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reading, "READ_STALL_S", STALL_S, raising=False)
    async with toy(kafka_bootstrap, redis_url, kafka_settings) as (topic, settings):
        for i in range(3):
            await producer.send_and_wait(topic.name, f'{{"n": {i}}}'.encode(), key=b"k")
        tp = TopicPartition(topic.name, 0)
        end = (await reading.end_offsets(settings, [tp]))[tp]
        # the records there are read to their end
        assert len(await reading.read_range(settings, "test", {tp: end}, whole_batches=True)) == 3
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError) as failed:
            # an end past the partition's real end: the old loop never returned (cut here after 30 s)
            await asyncio.wait_for(reading.read_range(settings, "test", {tp: end + 5}), 30)
        assert time.monotonic() - t0 < 15
        assert isinstance(failed.value, retrying.TRANSIENT)  # retried with backoff by the heal, logged
        assert "test read: 1 partition(s) short of their end" in str(failed.value)  # counts, no content
