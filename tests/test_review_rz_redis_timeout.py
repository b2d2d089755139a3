"""Review RZ (HAZ-25-HEAL-01): the services' Redis client bounds a command to a Redis that stops answering.

shared/transport.py built the client with redis-py's defaults: no socket timeout before redis-py 8 (pyproject allows
redis 5), so a frozen Redis, or a link dropped without a reset, left the consumer loop's state steps (not wrapped in
`asyncio.wait_for` as the heal path is) waiting without end. The timeouts are now the project's own
(`REDIS_SOCKET_TIMEOUT_S`), not the library's. A real redis-server, frozen with SIGSTOP; the bound shortened so the
test shows it is the one applied."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from devstack import infra
from shared import transport
from shared.runtime import retrying
from shared.settings import Settings

#: the client's bound, timed: alone in `./osteocds test`
pytestmark = pytest.mark.serial

BOUND_S = 1.0


@pytest.fixture
def frozen_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of its own (it is frozen: never the shared one), on a free port."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed")
    port = infra.free_port()  # outside the ephemeral range (devstack/infra.py)
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        try:
            yield f"redis://127.0.0.1:{port}/0", proc
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


async def test_a_command_to_a_frozen_redis_fails_within_the_client_bound(
    frozen_redis: tuple[str, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, proc = frozen_redis
    monkeypatch.setattr(transport, "REDIS_SOCKET_TIMEOUT_S", BOUND_S, raising=False)
    client = transport.redis_client(Settings(redis_url=url))
    for _ in range(50):  # the server starting
        try:
            await client.ping()
            break
        except Exception:
            await asyncio.sleep(0.1)
    assert await client.ping()
    os.kill(proc.pid, signal.SIGSTOP)  # frozen: the connection stays open, nothing answers
    t0 = time.monotonic()
    try:
        with pytest.raises(RedisTimeoutError) as failed:
            await asyncio.wait_for(client.get("any"), 30)  # the old client: the library's default, if any
        elapsed = time.monotonic() - t0
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        await client.aclose()
    assert isinstance(failed.value, retrying.TRANSIENT)  # retried with backoff by the caller
    assert elapsed < 3 * BOUND_S, elapsed  # the project's bound, not the library's (5 s in redis-py 8, none before)
