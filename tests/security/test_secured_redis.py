"""Issue 22, the secured mode for real, Redis: the redis-server of devstack/secure.py, as docker-compose.yml runs it
(TLS only, default user off, the ACL file deploy/make_secrets.py writes from deploy/generate.py's `redis_users()`).
For every service: its own user does every step the runtime does on its own keys (state and outbox transactions,
processed marks, deadlines, the rebuild lock, the epoch); another service's keys, server-wide commands, another
service's password, no credentials and plaintext are refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from pydantic import BaseModel

from contracts.topics import SERVICES, TOPICS
from devstack import secure
from shared.runtime.healing import lock_key
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.runtime.timers import Timers
from shared.settings import Settings
from shared.transport import redis_client

DENIED = (redis.exceptions.NoPermissionError, redis.exceptions.ResponseError)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[secure.SecuredRedis]:
    with secure.secured_redis(tmp_path_factory.mktemp("secured-redis")) as r:
        yield r


def settings_of(r: secure.SecuredRedis, user: str, **over: Any) -> Settings:
    env = {k.lower(): v for k, v in r.principal_settings(user).items()}
    return Settings.model_validate({"service_name": user, **env, **over})


class Counter(BaseModel):
    n: int = 0


def _inc(c: Counter | None) -> tuple[Counter, int]:
    return Counter(n=(c.n if c else 0) + 1), 1


def _clock_topic(svc: str) -> Any:
    return next((t for t in TOPICS if t.name == f"osteocds.clock.{svc}.v1"), TOPICS[0])


@pytest.mark.parametrize("svc", SERVICES)
async def test_each_service_user_works_on_its_own_keys_only(secured: secure.SecuredRedis, svc: str) -> None:
    settings = settings_of(secured, svc)
    service = Service(settings)  # the runtime builds its client from the service's own settings
    try:
        store = service.store
        # every step of the runtime on its own keys: state transaction, processed marks, epoch, deadlines, lock
        await store.transact("pt-1", Counter, _inc)
        assert await store.load("pt-1", Counter) == Counter(n=1)
        await store.mark_seen(["e1"])
        assert await store.seen_many(["e1", "e2"]) == {"e1"}
        await service.redis.set(store.epoch_key, b"epoch-1")
        assert await store.read_epoch() == b"epoch-1"
        now = datetime.now(UTC)
        timers = Timers(service.redis, svc, _clock_topic(svc), settings, lambda: now)
        await timers.schedule("pt-1", now - timedelta(seconds=1))
        assert [p for p, _ in await timers.claim(now)] == ["pt-1"]
        assert await service.redis.set(lock_key(service), b"token", nx=True, px=1000)

        # another service's keys: neither read nor written, whatever the command
        for other in (o for o in SERVICES if o != svc):
            theirs = StateStore(service.redis, other, 60)
            with pytest.raises(DENIED):
                await theirs.transact("pt-1", Counter, _inc)
            with pytest.raises(DENIED):
                await theirs.load("pt-1", Counter)
            with pytest.raises(DENIED):
                await theirs.mark_seen(["e1"])
            with pytest.raises(DENIED):
                await service.redis.eval("return redis.call('GET', KEYS[1])", 1, theirs.epoch_key)
        # nothing outside the prefix (the dev stack's broker record), nor server-wide commands
        with pytest.raises(DENIED):
            await service.redis.get("osteocds:stack:broker")
        for command in (
            ("FLUSHALL",),
            ("KEYS", "*"),
            ("CONFIG", "GET", "*"),
            ("ACL", "LIST"),
            ("SCAN", "0"),
            ("RANDOMKEY",),
            # review R1: server-wide script and function state (no service uses SCRIPT or FUNCTION; EVAL is enough)
            ("FUNCTION", "FLUSH"),
            ("SCRIPT", "FLUSH"),
            ("SCRIPT", "KILL"),
        ):
            with pytest.raises(DENIED):
                await service.redis.execute_command(*command)
    finally:
        await service.redis.aclose()


CASES = ("another service's password", "no credentials", "the default user", "plaintext")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("svc", SERVICES)
async def test_another_services_password_no_credentials_or_plaintext_are_refused(
    secured: secure.SecuredRedis, svc: str, case: str
) -> None:
    other = SERVICES[(SERVICES.index(svc) + 1) % len(SERVICES)]
    overrides: dict[str, dict[str, Any]] = {
        # the service's user name with another service's password (a leaked or mixed-up secret)
        CASES[0]: {"redis_password_file": secured.directory / f"{other}-redis-password"},
        CASES[1]: {"redis_username": None, "redis_password_file": None},
        CASES[2]: {"redis_username": "default"},
        CASES[3]: {"redis_url": f"redis://127.0.0.1:{secured.port}/0"},
    }
    client = redis_client(settings_of(secured, svc, **overrides[case]))
    try:
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError)):
            await asyncio.wait_for(client.set(f"osteocds:{svc}:state:pt-1", b"forged"), timeout=5)
    finally:
        await client.aclose()


async def test_the_health_check_user_may_only_ping(secured: secure.SecuredRedis) -> None:
    client = redis_client(settings_of(secured, "healthcheck"))
    try:
        assert await client.ping()
        with pytest.raises(DENIED):
            await client.get("osteocds:scoring:state:pt-1")
    finally:
        await client.aclose()


def test_each_service_gets_its_own_user_and_password_file(tmp_path: Path) -> None:
    with secure.secured_redis(tmp_path) as r:
        per = secure.service_settings(None, r)
    assert set(per) == set(SERVICES)
    for svc, env in per.items():
        assert env["REDIS_USERNAME"] == svc and env["REDIS_URL"].startswith("rediss://")
        assert Path(env["REDIS_PASSWORD_FILE"]).name == f"{svc}-redis-password"
        assert Path(env["REDIS_PASSWORD_FILE"]).stat().st_mode & 0o077 == 0  # readable by its owner only
