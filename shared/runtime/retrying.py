"""Transient errors (Redis or Kafka unreachable for a moment) retried with backoff (tenacity), with the settings'
attempts and delays. The first attempt is a plain call: this runs once per message, and the retry machinery is
set up only when an attempt fails. When the retries run out the error is raised: the consumer loop stops without
committing, so the records are delivered again after a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotCoordinatorError,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from shared.settings import Settings

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # issue 22: a Redis Cluster between a master's failure and its replica's promotion
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    KafkaConnectionError,
    KafkaTimeoutError,
    # issue 22: a fresh or failing-over Apache Kafka cluster whose group coordinator is not there yet
    CoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorError,
    ConnectionError,
    TimeoutError,
)


async def retry(settings: Settings, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`fn(*args)`, retried with backoff on a transient error."""
    try:
        return await fn(*args)
    except TRANSIENT as exc:
        return await retry_after(settings, exc, fn, *args)


async def retry_after(settings: Settings, failed: BaseException, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """The first attempt of `fn(*args)` failed with the transient error `failed`: the retries, with backoff."""
    s = settings
    if s.retry_max_attempts <= 1:
        raise failed
    log.warning("retrying after transient error", extra={"attempt": 2})
    await asyncio.sleep(s.retry_initial_backoff_s)
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(s.retry_max_attempts - 1),
        wait=wait_exponential_jitter(
            multiplier=s.retry_initial_backoff_s, max=s.retry_max_backoff_s, jitter=s.retry_initial_backoff_s
        ),
        retry=retry_if_exception_type(TRANSIENT),
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                log.warning("retrying after transient error", extra={"attempt": attempt.retry_state.attempt_number + 1})
            return await fn(*args)
    raise AssertionError("unreachable")
