"""What `osteocds up` runs beside the five services (devstack/stack.py): the broker and Redis (embedded, a local Apache
Kafka cluster, or the secured cluster of issue 22: devstack/secure.py), the identity provider (a real one named by
OIDC_* settings, else the local issuer), and the check that the OsteoCDS state in Redis was derived from this broker
(a Redis state must not outlive its broker: kept, flushed, or `up` refuses to start).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack import infra, issuer, issuer_http

ROOT = Path(__file__).resolve().parent.parent


#: `up --kafka apache`: the local Apache Kafka cluster's data, logs and ports, kept from one `up` to the next
APACHE_WORKDIR = ROOT / ".run" / "kafka" / "up"


@contextlib.contextmanager
def infrastructure(
    for_tests: bool, kafka_port: int | None = None
) -> Iterator[tuple[infra.Provisioned, infra.Provisioned]]:
    """`kafka_port`: the embedded broker's port, or the first Apache broker's (0: free ones; None: 9092 when free)."""
    if for_tests or kafka_port == 0:
        port = None
    else:
        port = kafka_port or (None if infra.port_open("127.0.0.1", 9092) else 9092)
    workdir = None if for_tests else APACHE_WORKDIR
    with (
        infra.kafka(prefer_docker=for_tests, port=port, workdir=workdir) as k,
        infra.redis(prefer_docker=for_tests, reuse_default=not for_tests) as r,
    ):
        yield k, r


#: `up --secured` (issue 22): the secured cluster's data, logs, secrets (0700) and authorizer logs, kept
SECURED_WORKDIR = ROOT / ".run" / "kafka" / "up-secured"


@contextlib.contextmanager
def up_infrastructure(
    secured: bool, kafka_port: int | None
) -> Iterator[tuple[infra.Provisioned, infra.Provisioned, dict[str, dict[str, str]], dict[str, str]]]:
    """`up`'s broker and Redis, each service's own settings and the hospital bus's (`demo`): the secured mode's
    principals and Redis users (devstack/secure.py), or none."""
    if not secured:
        with infrastructure(for_tests=False, kafka_port=kafka_port) as (k, r):
            yield k, r, {}, {}
        return
    from devstack import secure

    port = None if kafka_port == 0 else kafka_port or (None if infra.port_open("127.0.0.1", 9092) else 9092)
    nodes = int(os.environ.get("OSTEOCDS_KAFKA_NODES", "3"))
    with secure.local_secured(SECURED_WORKDIR, nodes, port) as s:
        yield s.kafka, s.redis, s.own_env, s.bus


def identity_env() -> dict[str, str]:
    """OIDC_* settings given to `up`'s shell pass through to the services (a real identity provider)."""
    return {k: v for k, v in os.environ.items() if k.startswith("OIDC_")}


@contextlib.contextmanager
def identity(port: int = issuer.DEFAULT_PORT) -> Iterator[tuple[dict[str, str], str]]:
    """The identity provider: OIDC_ISSUER / OIDC_JWKS_URL when set, else the local issuer on `port` (8100)."""
    if os.environ.get("OIDC_ISSUER") or os.environ.get("OIDC_JWKS_URL"):
        yield identity_env(), os.environ.get("OIDC_ISSUER") or os.environ["OIDC_JWKS_URL"]
        return
    with issuer_http.serve(port=port) as local:
        yield local.env(), f"{local.url} (local issuer; key in {issuer.ISSUER_DIR})"


# --- the broker and the Redis state: one must not outlive the other ------------------------------------------

#: where `up` records which broker the OsteoCDS state in that Redis DB was derived from
BROKER_KEY = "osteocds:stack:broker"


@dataclass(frozen=True)
class StateDecision:
    action: str  # "keep": use the state as it is; "flush": delete the OsteoCDS keys first; "refuse": do not start
    reason: str


def decide_redis_state(
    *, broker_id: str, broker_fresh: bool, recorded_broker: str | None, state_keys: int, reset: bool = False
) -> StateDecision:
    """What `up` does with the OsteoCDS keys (`osteocds:*`) it finds in its Redis DB.

    The services treat Redis as a cache of what the topics hold: a service that finds its epoch there adopts the
    state and rebuilds nothing. Against a new, empty broker (the embedded broker keeps its topics in memory, so
    every `up` starts one) that state would serve the alerts of patients the broker has never seen, and decisions
    would be taken on top of it. So: a new broker gets an empty state; a broker other than the one recorded is a
    mismatch `up` does not resolve on servers you configured (it says how); the recorded broker keeps its state."""
    if state_keys == 0:
        return StateDecision("keep", "Redis holds no OsteoCDS state: the services start empty")
    if reset:
        return StateDecision("flush", f"--reset-state: deleting the {state_keys} OsteoCDS key(s) (osteocds:*)")
    if broker_fresh:
        return StateDecision(
            "flush",
            f"the broker is new (in-memory storage, empty topics) but Redis holds {state_keys} OsteoCDS key(s) "
            "of an earlier run: deleting them (osteocds:*, nothing else) so that no old patient's alerts are "
            "served and the services start from what this broker holds",
        )
    if recorded_broker == broker_id:
        return StateDecision("keep", f"Redis holds the OsteoCDS state derived from this broker ({broker_id})")
    if recorded_broker is None:
        return StateDecision(
            "keep",
            f"Redis holds {state_keys} OsteoCDS key(s) that name no broker (written before this check): kept, "
            "taken as derived from this broker (./osteocds up --reset-state to start empty)",
        )
    return StateDecision(
        "refuse",
        f"Redis holds the OsteoCDS state of another broker ({recorded_broker}; this one is {broker_id}): its "
        "alerts and plans would not match this broker's topics. Use another Redis DB (REDIS_URL=redis://host:port/1), "
        "or delete that state with ./osteocds up --reset-state (deletes osteocds:* in that DB only)",
    )


def broker_identity(kafka: infra.Provisioned) -> tuple[str, bool]:
    """(identity, fresh): the embedded broker keeps its topics in memory, so each one `up` starts is new; the local
    Apache Kafka cluster keeps them on disk (.run/kafka/up) under its cluster id, new when it was just formatted."""
    if kafka.kind == "local":
        return f"embedded:{kafka.url}:{uuid.uuid4().hex[:12]}", True
    if kafka.kind == "apache" and kafka.cluster is not None:
        return f"apache:{kafka.cluster.cluster_id}", bool(kafka.cluster.fresh)
    return f"kafka:{kafka.url}", False


def reconcile_redis_state(redis_url: str, broker_id: str, broker_fresh: bool, reset: bool) -> StateDecision:
    """Apply `decide_redis_state` to the Redis at `redis_url` and record the broker the state now follows."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(redis_url)
    try:
        keys = [k for k in client.scan_iter(match="osteocds:*", count=1000) if k != BROKER_KEY.encode()]
        raw = client.get(BROKER_KEY)
        recorded = raw.decode() if isinstance(raw, bytes) else None
        decision = decide_redis_state(
            broker_id=broker_id,
            broker_fresh=broker_fresh,
            recorded_broker=recorded,
            state_keys=len(keys),
            reset=reset,
        )
        if decision.action == "flush":
            for i in range(0, len(keys), 1000):
                client.unlink(*keys[i : i + 1000])
        if decision.action != "refuse":
            client.set(BROKER_KEY, broker_id)
        return decision
    finally:
        client.close()
