"""HAZ-25-HEAL-01 (review RZ's note): a heal waits out every Kafka error aiokafka calls retriable (a leader moving,
a node not ready during a broker failover) instead of counting it among the few other failures that stop the process.
The retry policy alone: no broker is needed to raise an error class."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import LeaderNotAvailableError, NotLeaderForPartitionError, UnsupportedVersionError

from shared.runtime import healing


def _failing(errors: list[BaseException]) -> Any:
    async def step() -> str:
        if errors:
            raise errors.pop(0)
        return "done"

    return step


def test_retriable_kafka_errors_are_waited_out_beyond_the_other_failures_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(healing, "RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(healing, "RETRY_MAX_S", 0.002)
    failover = [NotLeaderForPartitionError(), LeaderNotAvailableError()] * (healing.MAX_OTHER_FAILURES + 1)
    service: Any = SimpleNamespace(heal_status=None)
    assert asyncio.run(healing._until_done(service, _failing(failover))) == "done"
    assert failover == []


def test_a_kafka_error_that_is_not_retriable_still_stops_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(healing, "RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(healing, "RETRY_MAX_S", 0.002)
    errors: list[BaseException] = [UnsupportedVersionError() for _ in range(healing.MAX_OTHER_FAILURES + 1)]
    service: Any = SimpleNamespace(heal_status=None)
    with pytest.raises(UnsupportedVersionError):
        asyncio.run(healing._until_done(service, _failing(errors)))
    assert len(errors) == 1  # raised at the limit, the last one never tried
    assert healing.is_transient(NotLeaderForPartitionError()) and not healing.is_transient(UnsupportedVersionError())
