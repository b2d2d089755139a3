"""HAZ-25-HEAL-01: a service is never left not ready without end, nor without saying why, after a state rebuild.

Real Redis (through a TCP proxy this test controls, where a Redis that stops answering is needed) and the embedded
broker; the rebuild is the real one (a failure is injected around it, once)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from contracts.base import Message
from contracts.hospital import LabResult
from contracts.topics import Topic
from shared.runtime import healing
from shared.runtime.kafka import ensure_topics
from shared.runtime.rebuild import rebuild as real_rebuild
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.settings import Settings
from shared.web.http import create_app
from tests.conftest import Publish, lab
from tests.test_runtime import Applied, _settings

#: the release script's text, as the client sends it in its EVAL (shared/runtime/healing.py _RELEASE)
RELEASE_MARK = b"redis.call('DEL', KEYS[1])"


class Stall:
    """What the proxy stalls: once `armed`, a client connection that sends `mark`; `stalled` counts them."""

    def __init__(self, mark: bytes) -> None:
        self.mark, self.armed, self.stalled = mark, False, 0


@asynccontextmanager
async def stalling_proxy(redis_url: str, stall: Stall) -> AsyncIterator[str]:
    """A TCP proxy to Redis. Once `stall.armed`, a client connection that sends `stall.mark` is never forwarded nor
    answered again (Redis stops answering that command: a hung connection); the others go through. Yields its URL."""
    target = urlsplit(redis_url)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
        try:
            while data := await src.read(65536):
                if watch and stall.armed and stall.mark in data:
                    stall.stalled += 1
                    await asyncio.Event().wait()  # never forwarded, never answered
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(target.hostname, target.port)
        for t in (asyncio.create_task(pipe(reader, up_w, True)), asyncio.create_task(pipe(up_r, writer, False))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}{target.path or ''}"
    finally:
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _apply(state: Applied, event: LabResult) -> tuple[Applied, list[Message]]:
    if str(event.event_id) in state.event_ids:
        return state, []
    return Applied(event_ids=[*state.event_ids, str(event.event_id)]), []


async def _service(settings: Settings, topic: Topic) -> Service:
    await ensure_topics(settings, [topic])
    svc = Service(settings)
    svc.patient_aggregate((topic,), Applied, _apply)
    return svc


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return False


def _topic(group: str) -> Topic:
    return Topic(f"test.{group}", LabResult, ("test",), (group,), "healing bounds test", partitions=1)


async def test_a_lock_release_that_hangs_does_not_keep_the_service_not_ready(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a loss, the rebuild is done and its epoch written, but Redis never answers the lock's release (a hung
    connection): the release is bounded, the lock left to its TTL, and the service becomes ready again (before: the
    release's timeout stopped the consumer loop, the service never ready again in this process)."""
    monkeypatch.setattr(healing, "REDIS_OP_TIMEOUT_S", 1.0)
    group = f"hb-rel-{uuid.uuid4().hex[:8]}"
    stall = Stall(RELEASE_MARK)
    r = aioredis.Redis.from_url(redis_url)
    async with stalling_proxy(redis_url, stall) as proxied:
        settings = _settings(kafka_bootstrap, proxied, kafka_settings, group)
        svc = await _service(settings, _topic(group))
        await svc.start()
        try:
            assert await _until(lambda: _state_ready(svc), 20), "not ready after the start"
            stall.armed = True
            for key in [k async for k in r.scan_iter(match=f"osteocds:{group}:*")]:
                await r.delete(key)  # the loss
            assert await _until(lambda: asyncio.sleep(0, svc.healing), 10), "the loss was not noticed"
            ready = await _until(lambda: _state_ready(svc), 20)
            assert stall.stalled, "the release was never sent: the test did not exercise a hung release"
            assert ready, f"not ready 20 s after a hung lock release: {svc.heal_status}, {svc.fatal!r}"
            ttl_ms = await r.pttl(healing.lock_key(svc))
            assert ttl_ms <= settings.rebuild_lock_ttl_s * 1000  # not released, but it expires by its TTL (-2: gone)
        finally:
            await svc.stop()
            await r.aclose()
    assert svc.fatal is None, repr(svc.fatal)


async def _state_ready(svc: Service) -> bool:
    return (await svc.readiness()).get("state", False)


async def test_a_rebuild_that_fails_is_retried_and_readiness_says_why(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    publish: Publish,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rebuild attempt that raises (at start, then after a loss) is logged and retried with backoff, and the service
    becomes ready and processes again (before: the consumer loop died at the first failure). While it is not ready,
    /readyz names the check and its reason, and a WARNING says so periodically (no patient data)."""
    monkeypatch.setattr(healing, "RETRY_FIRST_S", 0.05)
    monkeypatch.setattr(healing, "NOT_READY_LOG_S", 0.2)
    group = f"hb-retry-{uuid.uuid4().hex[:8]}"
    topic = _topic(group)
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    svc = await _service(settings, topic)
    calls: list[int] = []
    gate = asyncio.Event()
    gate.set()

    async def failing_once(service: Service, expected: bytes | None = None) -> Any:
        calls.append(1)
        if len(calls) in (1, 3):  # the first attempt at start, and the first after the loss
            raise RuntimeError("injected rebuild failure")
        await gate.wait()
        return await real_rebuild(service, expected)

    monkeypatch.setattr(healing, "rebuild", failing_once)
    r = aioredis.Redis.from_url(redis_url)
    store = StateStore(r, group, 60)
    app = create_app(svc)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")
    caplog.set_level(logging.WARNING, logger="shared.runtime.healing")
    await svc.start()
    try:
        # 1. at start: the first rebuild raises, the second succeeds
        assert await _until(lambda: _state_ready(svc), 20), f"not ready after a failed first rebuild: {svc.heal_status}"
        assert len(calls) == 2
        first = lab(f"pt-{group}", "2000-8", 2.4, "mmol/L")
        await publish(topic.name, first)
        assert await _until(lambda: store.seen(first["event_id"]), 20), "not processing after the start"

        # 2. the loss: the first rebuild raises, the second is held while /readyz is read
        gate.clear()
        for key in [k async for k in r.scan_iter(match=f"osteocds:{group}:*")]:
            await r.delete(key)
        assert await _until(lambda: asyncio.sleep(0, len(calls) >= 4), 20), "the failed rebuild was not retried"
        await asyncio.sleep(0.5)  # two report periods
        doc = (await http.get("/readyz")).json()
        assert doc["ready"] is False and doc["checks"]["state"] is False
        reason = doc["reasons"]["state"]
        assert "rebuilding" in reason and "attempt 2" in reason and "RuntimeError" in reason, reason
        reports = [rec for rec in caplog.records if rec.getMessage() == "not ready: the state is being rebuilt"]
        assert reports and getattr(reports[-1], "attempt", None) == 2
        failures = [rec for rec in caplog.records if rec.getMessage().startswith("state rebuild attempt failed")]
        assert [getattr(rec, "error_type", None) for rec in failures] == ["RuntimeError", "RuntimeError"]
        assert all(first["patient_id"] not in rec.getMessage() + str(rec.__dict__) for rec in caplog.records)

        gate.set()
        assert await _until(lambda: _state_ready(svc), 20), f"not ready after a failed rebuild: {svc.heal_status}"
        doc = (await http.get("/readyz")).json()
        assert doc["checks"]["state"] is True and "state" not in doc.get("reasons", {})
        second = lab(f"pt-{group}", "2000-8", 2.5, "mmol/L")
        await publish(topic.name, second)
        assert await _until(lambda: store.seen(second["event_id"]), 20), "processing did not resume"
        held = await store.load(first["patient_id"], Applied)
        assert held is not None and held.event_ids == [first["event_id"], second["event_id"]]
    finally:
        gate.set()
        await svc.stop()
        await http.aclose()
        await r.aclose()
    assert svc.fatal is None, repr(svc.fatal)


async def test_an_instance_waiting_for_a_dead_holder_takes_the_rebuild_over(
    kafka_bootstrap: str, redis_url: str, kafka_settings: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Another instance took the rebuild lock and died (SIGKILL: no epoch, no release). This one waits, not ready and
    saying so (/readyz's reason, the readiness sampler's WARNING), and takes the rebuild over once the lock's TTL
    has run out."""
    group = f"hb-dead-{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group)
    svc = await _service(settings, _topic(group))
    r = aioredis.Redis.from_url(redis_url)
    ttl_s = 6.0  # longer than a start (topics, the group join)
    await r.set(healing.lock_key(svc), b"a-dead-holder", px=int(ttl_s * 1000))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await svc.start()
    try:
        assert await _until(lambda: asyncio.sleep(0, svc.heal_status is not None), 5)
        await asyncio.sleep(0.3)
        reasons = svc.not_ready_reasons(await svc.readiness())
        assert "waiting for another instance's rebuild" in reasons["state"], reasons
        with caplog.at_level(logging.WARNING, logger="shared.runtime.service"):
            await svc._sample_readiness()  # what the lag monitor runs every LAG_INTERVAL_S
        [line] = [rec for rec in caplog.records if rec.getMessage() == "not ready"]
        assert "state" in getattr(line, "checks", [])
        assert await _until(lambda: _state_ready(svc), 20), f"never took the rebuild over: {svc.heal_status}"
        assert loop.time() - t0 >= ttl_s - 0.2  # not before the dead holder's lock expired
        assert await svc.store.read_epoch() is not None
        assert not await r.exists(healing.lock_key(svc))  # its own lock released
    finally:
        await svc.stop()
        await r.aclose()
    assert svc.fatal is None, repr(svc.fatal)


async def test_a_rebuild_longer_than_the_lock_ttl_keeps_the_lock_then_releases_it(
    kafka_bootstrap: str,
    redis_url: str,
    kafka_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The renewal (stopped by an event since HAZ-25-HEAL-01, no longer cancelled) keeps the lock through a rebuild
    several TTLs long, and the lock is released when the rebuild is done."""
    group = f"hb-renew-{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka_bootstrap, redis_url, kafka_settings, group).model_copy(
        update={"rebuild_lock_ttl_s": 0.6}
    )
    svc = await _service(settings, _topic(group))
    r = aioredis.Redis.from_url(redis_url)
    held: list[bool] = []

    async def slow(service: Service, expected: bytes | None = None) -> Any:
        for _ in range(8):  # 2 s: more than three TTLs
            await asyncio.sleep(0.25)
            held.append(bool(await r.exists(healing.lock_key(service))))
        return await real_rebuild(service, expected)

    monkeypatch.setattr(healing, "rebuild", slow)
    caplog.set_level(logging.WARNING, logger="shared.runtime.healing")
    await svc.start()
    try:
        assert await _until(lambda: _state_ready(svc), 20), f"not ready: {svc.heal_status}"
        assert len(held) == 8 and all(held), held  # never expired while rebuilding
        assert not await r.exists(healing.lock_key(svc))  # released
        assert not [rec for rec in caplog.records if "rebuild lock" in rec.getMessage()]
    finally:
        await svc.stop()
        await r.aclose()
    assert svc.fatal is None, repr(svc.fatal)
