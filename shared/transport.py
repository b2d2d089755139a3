"""Transport security as settings: the keyword arguments every Kafka client (producer, consumer, admin) and the
Redis client are built with. TLS and SASL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER) for Kafka; TLS, ACL user and
password for Redis. Secrets may come from files (`*_file` settings, e.g. Docker secrets), never from the code.

The embedded broker used by the tests (Tansu) speaks neither TLS nor SASL: locally everything stays PLAINTEXT,
and docker-compose.yml turns both on against Apache Kafka (see README, "Transport and data at rest")."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared.settings import Settings


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """OAUTHBEARER: the access token is read from a file that the platform keeps fresh (a sidecar or a projected
    service-account token), on every (re)authentication, so a rotated token is picked up without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        text = await asyncio.to_thread(self.path.read_text)
        return text.strip()


def _secret(value: Any, file: Path | None) -> str | None:
    if file is not None:
        return file.read_text().strip()
    return None if value is None else str(value.get_secret_value())


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    ctx: ssl.SSLContext = create_ssl_context(
        cafile=None if settings.kafka_ssl_cafile is None else str(settings.kafka_ssl_cafile),
        certfile=None if settings.kafka_ssl_certfile is None else str(settings.kafka_ssl_certfile),
        keyfile=None if settings.kafka_ssl_keyfile is None else str(settings.kafka_ssl_keyfile),
    )
    ctx.check_hostname = settings.kafka_ssl_check_hostname
    return ctx


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection and security arguments shared by AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    s = settings
    kwargs: dict[str, Any] = {
        "bootstrap_servers": s.kafka_bootstrap_servers,
        "security_protocol": s.kafka_security_protocol,
    }
    if s.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = kafka_ssl_context(s)
    if s.kafka_security_protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = s.kafka_sasl_mechanism
        if s.kafka_sasl_mechanism == "OAUTHBEARER":
            if s.kafka_sasl_oauth_token_file is None:
                raise ValueError("KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTH_TOKEN_FILE")
            kwargs["sasl_oauth_token_provider"] = FileTokenProvider(s.kafka_sasl_oauth_token_file)
        else:
            password = _secret(s.kafka_sasl_password, s.kafka_sasl_password_file)
            if not s.kafka_sasl_username or not password:
                raise ValueError(f"KAFKA_SASL_MECHANISM={s.kafka_sasl_mechanism} needs a username and a password")
            kwargs["sasl_plain_username"] = s.kafka_sasl_username
            kwargs["sasl_plain_password"] = password
    return kwargs


#: issue 22: a REDIS_URL with one of these schemes names a node of a Redis Cluster (as REDIS_CLUSTER=true does)
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def redis_target(settings: Settings) -> tuple[str, bool]:
    """The Redis URL as redis-py reads it, and whether it is a cluster (REDIS_CLUSTER=true, or a `redis+cluster://`
    or `rediss+cluster://` URL: one node of the cluster; the client discovers the others)."""
    url = settings.redis_url
    for scheme in CLUSTER_SCHEMES:
        if url.startswith(scheme):
            return scheme.replace("+cluster", "") + url[len(scheme) :], True
    return url, settings.redis_cluster


def redis_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for `Redis.from_url(settings.redis_url, **kwargs)`: ACL user, password, TLS files. TLS itself is
    chosen by the URL scheme (rediss://)."""
    s = settings
    kwargs: dict[str, Any] = {}
    if s.redis_username:
        kwargs["username"] = s.redis_username
    password = _secret(s.redis_password, s.redis_password_file)
    if password:
        kwargs["password"] = password
    if redis_target(s)[0].startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required"
        if s.redis_ssl_ca_certs is not None:
            kwargs["ssl_ca_certs"] = str(s.redis_ssl_ca_certs)
        if s.redis_ssl_certfile is not None:
            kwargs["ssl_certfile"] = str(s.redis_ssl_certfile)
        if s.redis_ssl_keyfile is not None:
            kwargs["ssl_keyfile"] = str(s.redis_ssl_keyfile)
    return kwargs


#: review RZ (HAZ-25-HEAL-01): a Redis that stops answering (frozen, a link dropped without a reset) fails a command
#: as a transient error after this long, retried with backoff, instead of a wait without end. Explicit: before
#: redis-py 8 the client's default was no timeout at all (pyproject allows redis 5). As the cluster node clients.
REDIS_SOCKET_TIMEOUT_S = 5.0
REDIS_CONNECT_TIMEOUT_S = 5.0


def redis_client(settings: Settings) -> Redis | RedisCluster:
    """One Redis, or a Redis Cluster client (`redis_target`). The same credentials, TLS and timeouts for both."""
    url, cluster = redis_target(settings)
    timeouts: dict[str, Any] = {
        "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    }
    if cluster:
        return RedisCluster.from_url(url, **redis_client_kwargs(settings), **timeouts)
    return Redis.from_url(url, **redis_client_kwargs(settings), **timeouts)


def redis_node_client(settings: Settings, host: str, port: int) -> Redis:
    """A plain client to one node of the cluster (its transactions and WAIT run on it: shared/runtime/state.py),
    with the cluster client's credentials and TLS. No retries of its own: a failover is retried by the caller once
    the slot map is read again."""
    scheme = "rediss" if redis_target(settings)[0].startswith("rediss://") else "redis"
    return Redis.from_url(
        f"{scheme}://{host}:{port}/0",
        **redis_client_kwargs(settings),
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )
