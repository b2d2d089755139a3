"""Issue 22: the services' Redis ACL users (deploy/generate.py `redis_users()`, the rules of the compose ACL file) on
a Redis Cluster. A cluster client learns which master serves which slot with CLUSTER SLOTS: without it in the users'
rules every service failed to connect ("Cluster mode is not enabled on this node"). Each service's user runs the
runtime's steps on its own keys through the cluster client and none on another service's. (The local cluster has no
TLS: the users' rules are what is tested here; TLS to one Redis is in tests/security/test_secured_redis.py.)"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import redis.exceptions
from pydantic import BaseModel, SecretStr

from contracts.topics import SERVICES, TOPICS
from deploy.generate import redis_users
from devstack.redis_cluster import RedisCluster
from shared.runtime.service import Service
from shared.runtime.state import StateStore
from shared.runtime.timers import Timers
from shared.settings import Settings

DENIED = (redis.exceptions.NoPermissionError, redis.exceptions.ResponseError)


class Counter(BaseModel):
    n: int = 0


def _at(now: datetime) -> datetime:
    return now


def _inc(c: Counter | None) -> tuple[Counter, int]:
    return Counter(n=(c.n if c else 0) + 1), 1


def _add_users(c: RedisCluster) -> dict[str, str]:
    """Every service's user on every node, with the generated rules and a password of its own."""
    passwords = {svc: secrets.token_urlsafe(16) for svc in SERVICES}
    for user in redis_users():
        if user.name not in passwords:
            continue
        rules = user.line().split()[4:]  # after "user <name> on #{<name>}"
        for node in c.nodes:
            out = c.cli(node, "ACL", "SETUSER", user.name, "reset", "on", f">{passwords[user.name]}", *rules)
            assert out.strip() == "OK", out
    return passwords


async def test_each_service_user_works_on_its_own_keys_only_on_a_redis_cluster(redis_cluster: RedisCluster) -> None:
    passwords = _add_users(redis_cluster)
    for svc in SERVICES:
        settings = Settings(
            service_name=svc,
            redis_url=redis_cluster.cluster_url,
            redis_cluster=True,
            redis_username=svc,
            redis_password=SecretStr(passwords[svc]),
        )
        service = Service(settings)
        try:
            store = service.store
            await store.transact("pt-1", Counter, _inc)
            assert await store.load("pt-1", Counter) == Counter(n=1)
            await store.mark_seen([("pt-1", "e1")])
            now = datetime.now(UTC)
            topic = next((t for t in TOPICS if t.name == f"osteocds.clock.{svc}.v1"), TOPICS[0])
            timers = Timers(service.redis, svc, topic, settings, functools.partial(_at, now))
            await timers.schedule("pt-1", now - timedelta(seconds=1))
            assert [p for p, _ in await timers.claim(now)] == ["pt-1"]
            for other in (o for o in SERVICES if o != svc):
                theirs = StateStore(service.redis, other, 60)
                with pytest.raises(DENIED):
                    await theirs.transact("pt-1", Counter, _inc)
                with pytest.raises(DENIED):
                    await theirs.load("pt-1", Counter)
        finally:
            await service.redis.aclose()
