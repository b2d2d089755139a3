"""Apache Kafka (KRaft, 1 or 3 combined broker+controller nodes) as local processes on loopback: no Docker.

The broker is Apache Kafka's own `org.apache.kafka:kafka_2.13` artifact from Maven Central, fetched once with Maven
into `.run/kafka/<version>/lib` (gitignored), formatted with `kafka.tools.StorageTool` and started as
`java -cp 'lib/*' kafka.Kafka server.properties`, each node with its own data dir, log4j2 config and log file
(issue 22; shared/notes/apache-kafka.md). Topics are replicated as production would run them: replication factor
min(3, nodes), `min.insync.replicas` min(2, nodes); producers use acks=all and idempotence. The jars:
devstack/kafka_jars.py; each node's configuration: devstack/kafka_nodes.py; here, formatting and running the nodes.

    with cluster(nodes=3) as c:
        c.bootstrap            # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        c.settings             # the services' environment for this cluster
        c.leader("topic", 0)   # node id of the partition's leader
        c.kill(2); c.start(2)  # SIGKILL a broker, start it again on the same data
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from devstack.infra import OWN_SESSION, port_open
from devstack.kafka_jars import KAFKA_VERSION, ensure_jars, java
from devstack.kafka_nodes import (
    _LOG4J2,
    STATE,
    Node,
    _cluster_id,
    _members,
    _saved,
    _server_properties,
    service_settings,
)

#: The broker JVM's heap: small, the machine has 2 cores and several processes.
HEAP = "-Xmx384m"

T = TypeVar("T")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, also when called inside a running event loop (an async test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()  # type: ignore[arg-type]


@dataclass
class ApacheCluster:
    """A running local Apache Kafka cluster (see `cluster`)."""

    nodes: dict[int, Node]
    lib: Path
    workdir: Path
    #: the service environment: bootstrap, replication, idempotent acks=all producers (+ security when secured)
    settings: dict[str, str]
    #: the environment of an administrator (the super user when secured; the same as `settings` otherwise)
    admin_settings: dict[str, str]
    secured: bool = False
    security: Any = None
    started_s: float = 0.0
    #: the cluster's id; `fresh`: formatted by this start (empty), not started again on a kept workdir
    cluster_id: str = ""
    fresh: bool = True
    _kw: dict[str, Any] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values())

    def client_settings(self, principal: str) -> dict[str, str]:
        """The environment of one client principal (secured: its SCRAM credentials and the CA)."""
        if not self.secured:
            return dict(self.settings)
        return {**self.settings, **self.security.principal_settings(principal)}

    def command(self, node: Node) -> list[str]:
        return [
            java(),
            HEAP,
            "-Xms64m",
            "-XX:+UseSerialGC",  # 2 cores: no concurrent GC threads competing with the services
            "-XX:TieredStopAtLevel=1",  # C1 only: starts fast, enough for a test broker
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={node.dir}",
            "-cp",
            f"{self.lib}/*",
            "kafka.Kafka",
            str(node.properties),
        ]

    def start(self, node_id: int, wait: bool = True, timeout: float = 90) -> None:
        """Start (or restart) one node on its data dir; wait until the cluster lists it again."""
        node = self.nodes[node_id]
        if node.proc is not None and node.proc.poll() is None:
            return
        out = open(node.dir / "stdout.log", "ab")  # noqa: SIM115 - lives with the process
        node.proc = subprocess.Popen(
            self.command(node), stdout=out, stderr=subprocess.STDOUT, cwd=node.dir, start_new_session=OWN_SESSION
        )
        out.close()
        if wait:
            self.wait_brokers(
                {n for n, x in self.nodes.items() if x.proc is not None and x.proc.poll() is None}, timeout
            )

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (no controlled shutdown: leadership moves when the controller fences it)."""
        proc = self.nodes[node_id].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def alive(self) -> set[int]:
        return {n for n, x in self.nodes.items() if x.proc is not None and x.proc.poll() is None}

    def stop(self, timeout: float = 20, graceful: bool = True) -> None:
        """SIGTERM every node (controlled shutdown), SIGKILL what is left after `timeout`; not `graceful`: SIGKILL
        at once (a throw-away cluster)."""
        procs = [n.proc for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # ---- metadata ---------------------------------------------------------------------------------------------------

    def _client_kwargs(self) -> dict[str, Any]:
        from shared.settings import Settings
        from shared.transport import kafka_client_kwargs

        env: dict[str, Any] = {k.lower(): v for k, v in self.admin_settings.items()}
        alive = sorted(self.alive()) or sorted(self.nodes)
        env["kafka_bootstrap_servers"] = ",".join(f"127.0.0.1:{self.nodes[n].port}" for n in alive)
        return kafka_client_kwargs(Settings(**env))

    async def abrokers(self) -> set[int]:
        """The node ids the cluster's metadata lists (unfenced brokers)."""
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(**self._client_kwargs(), request_timeout_ms=5000, metadata_max_age_ms=1000)
        try:
            await client.bootstrap()
            return {b.nodeId for b in client.cluster.brokers()}
        finally:
            await client.close()

    def wait_brokers(self, want: set[int], timeout: float = 90) -> None:
        """Wait until the metadata lists exactly the nodes `want` (fails early if a node process exits)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            for n in want:
                proc = self.nodes[n].proc
                if proc is None or proc.poll() is not None:
                    tail = self.nodes[n].log.read_text()[-3000:] if self.nodes[n].log.exists() else ""
                    raise RuntimeError(f"Kafka node {n} exited ({proc and proc.returncode}); its log:\n{tail}")
            if not all(port_open("127.0.0.1", self.nodes[n].port) for n in want):
                time.sleep(0.1)  # not listening yet (a metadata request now only logs connection errors)
                continue
            try:
                last = _run(self.abrokers)
                if last == want:
                    return
            except Exception as exc:  # not answering yet
                last = exc
            time.sleep(0.2)
        raise TimeoutError(f"Kafka brokers {sorted(want)} not all listed after {timeout}s (last: {last!r})")

    async def await_group_coordinator(self, within_s: float = 60) -> None:
        """Wait until a consumer group finds its coordinator: the first lookup creates __consumer_offsets (RF
        min(3, nodes)); done here once, the services' first joins do not each log GroupCoordinatorNotAvailable."""
        from aiokafka import AIOKafkaClient
        from aiokafka.client import CoordinationType
        from aiokafka.errors import KafkaError

        client = AIOKafkaClient(**self._client_kwargs(), request_timeout_ms=5000)
        deadline = time.monotonic() + within_s
        try:
            await client.bootstrap()
            while True:
                try:
                    await client.coordinator_lookup(CoordinationType.GROUP, "osteocds-cluster-check")
                    return
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await client.close()

    async def aleader(self, topic: str, partition: int) -> int:
        """The node id leading a partition now (-1: none)."""
        from aiokafka import AIOKafkaClient
        from aiokafka.structs import TopicPartition

        client = AIOKafkaClient(**self._client_kwargs(), request_timeout_ms=5000)
        try:
            await client.bootstrap()
            await client._metadata_update(client.cluster, [topic])
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            return -1 if leader is None else int(leader)
        finally:
            await client.close()

    def leader(self, topic: str, partition: int) -> int:
        return _run(lambda: self.aleader(topic, partition))


def _format(cluster: ApacheCluster, node: Node, cluster_id: str, format_args: list[str]) -> subprocess.Popen[bytes]:
    cmd = [java(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    cmd += [f"-Dlog4j2.configurationFile={node.dir / 'log4j2.properties'}", "-cp", f"{cluster.lib}/*"]
    cmd += ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(node.properties), *format_args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def cluster(
    nodes: int = 3,
    secured: bool = False,
    workdir: Path | None = None,
    version: str = KAFKA_VERSION,
    overrides: dict[str, str] | None = None,
    timeout: float = 120,
    ports: list[int] | None = None,
    graceful_stop: bool | None = None,
) -> Iterator[ApacheCluster]:
    """Format and start `nodes` combined KRaft nodes on loopback; stop them on exit. `workdir` keeps data and logs
    (default: a temporary folder, removed on exit); a `workdir` already formatted for as many nodes is started
    again as it is (its topics, offsets and cluster id kept: `fresh` is False). `ports`: the client ports wanted
    (used when all are free; else free ones). `overrides`: extra server properties. `graceful_stop`: SIGTERM (a
    controlled shutdown, several seconds) rather than SIGKILL on exit; default: when the workdir is kept."""
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    security: Any = None
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="osteocds-kafka-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    if secured:
        try:
            from devstack import secure  # type: ignore[attr-defined, unused-ignore]
        except ImportError as exc:
            raise NotImplementedError("secured Apache Kafka needs devstack/secure.py (issue 22, H2)") from exc
        security = secure.kafka_security(work)
    lib = ensure_jars(version)
    saved = _saved(work, nodes, secured)
    fresh = saved is None
    members = _members(work, nodes, saved, ports)
    base = service_settings(",".join(f"127.0.0.1:{m.port}" for m in members), nodes)
    settings = {**base, **(security.admin if security is not None else {})} if secured else base
    c = ApacheCluster({m.node_id: m for m in members}, lib, work, settings, dict(settings), secured, security)
    c.fresh = fresh
    c.cluster_id = _cluster_id() if saved is None else str(saved["cluster_id"])
    t0 = time.monotonic()
    try:
        formats = []
        for m in members:
            if fresh:
                shutil.rmtree(m.dir, ignore_errors=True)
            m.dir.mkdir(parents=True, exist_ok=True)
            props = _server_properties(m, members, security, overrides)
            m.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            log4j = _LOG4J2.format(log=m.log)
            if security is not None and hasattr(security, "log4j_properties"):  # the authorizer's own log (H2)
                log4j += security.log4j_properties()
            (m.dir / "log4j2.properties").write_text(log4j)
            if fresh:
                args = list(security.format_args) if security is not None else []
                formats.append((m, _format(c, m, c.cluster_id, args)))
        for m, p in formats:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"formatting Kafka node {m.node_id} failed: {out.decode(errors='replace')[-2000:]}")
        (work / STATE).write_text(
            json.dumps(
                {
                    "cluster_id": c.cluster_id,
                    "version": version,
                    "secured": secured,
                    "nodes": {str(m.node_id): [m.port, m.controller_port] for m in members},
                }
            )
        )
        for m in members:
            c.start(m.node_id, wait=False)
        c.wait_brokers({m.node_id for m in members}, timeout)
        _run(c.await_group_coordinator)
        c.started_s = time.monotonic() - t0
        yield c
    finally:
        # a temporary cluster's data is thrown away: no controlled shutdown
        c.stop(graceful=not own if graceful_stop is None else graceful_stop)
        if own:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:  # pragma: no cover - manual check: python -m devstack.apache_kafka [nodes]
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    t0 = time.monotonic()
    lib = ensure_jars()
    print(f"jars: {lib} ({time.monotonic() - t0:.1f} s)")
    with cluster(n) as c:
        print(f"{n} node(s) up in {c.started_s:.1f} s: {c.bootstrap}")
    _ = os.environ


if __name__ == "__main__":  # pragma: no cover
    main()
