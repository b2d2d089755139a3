"""The local Apache Kafka cluster's nodes as configured (devstack/apache_kafka.py; issue 22): each node's ports and
folders (`Node`), its `server.properties` (KRaft combined broker+controller, replicated as production would run:
replication factor min(3, nodes), `min.insync.replicas` min(2, nodes)) and log4j2 config, the cluster id it is
formatted with, the services' environment on such a cluster (`service_settings`), and a workdir's record of its
cluster (`STATE`: a kept workdir starts the same cluster again). Development tooling only.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.infra import free_port, port_open

_LOG4J2 = """status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log(self) -> Path:
        return self.dir / "server.log"


def _server_properties(
    node: Node, nodes: list[Node], security: Any, overrides: dict[str, str] | None
) -> dict[str, str]:
    n = len(nodes)
    rf, isr = str(min(3, n)), str(min(2, n))
    client = "SASL_SSL" if security is not None else "PLAINTEXT"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in nodes),
        "listeners": f"{client}://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"{client}://127.0.0.1:{node.port}",
        "listener.security.protocol.map": f"{client}:{client},CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "log.dirs": str(node.dir / "data"),
        # as production (docker-compose.yml): the services create their topics with explicit partitions
        "auto.create.topics.enable": "false",
        "num.partitions": "6",
        # issue 22: replicated as production would run, RF 3 and min.insync.replicas 2 on 3 nodes
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        "unclean.leader.election.enable": "false",
        # fewer internal partitions and threads: 2 cores, starts and elects faster
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.num.partitions": "3",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        # groups form at once; short sessions allowed (the tests' clients use 3 s, as on the embedded broker)
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        # a SIGKILLed broker is fenced (its partitions re-led) after 3 s instead of 9 s
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "controller.quorum.election.timeout.ms": "1000",
        "controller.quorum.fetch.timeout.ms": "2000",
    }
    if security is not None:
        props.update(security.server_properties)
    props.update(overrides or {})
    return props


def _cluster_id() -> str:
    """A Kafka Uuid (16 random bytes, URL-safe base64 without padding), as `kafka-storage random-uuid` prints. Like
    Kafka's Uuid.randomUuid, never one starting with "-": the command line would read it as an option (1 run in 64
    failed to format its nodes)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def service_settings(bootstrap: str, nodes: int) -> dict[str, str]:
    """The services' environment on an Apache Kafka cluster of `nodes` brokers: production's producer settings
    (acks=all is fixed in shared/runtime/kafka.py; idempotence on, the default of shared/settings.py), topics
    replicated min(3, nodes) times. Consumer sessions keep production's 10 s (shared/settings.py): when the broker
    coordinating a group dies, its members must reach the next coordinator within their session, which takes the
    fencing of the dead broker (broker.session.timeout.ms, 3 s here) and, when it was the active controller, an
    election; with the 3 s sessions the embedded broker's tests use, the members were expelled and their next
    commit failed (CommitFailedError stops a service: issue 22, seen in tests/apache/test_leader_kill.py)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "true",
        "KAFKA_REPLICATION_FACTOR": str(min(3, nodes)),
        "KAFKA_SESSION_TIMEOUT_MS": "10000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        # production's restore path (deploy/ sets it): compacted state changelogs, restored on a lost Redis
        "STATE_CHANGELOG": "true",
    }


#: a workdir's record of its cluster: id, version, security, each node's ports
STATE = "cluster.json"


def _saved(work: Path, nodes: int, secured: bool) -> dict[str, Any] | None:
    """The workdir's cluster when it was formatted for this many nodes and this security (else None: format)."""
    try:
        doc: dict[str, Any] = json.loads((work / STATE).read_text())
    except (OSError, ValueError):
        return None
    formatted = all((work / f"node-{i}" / "data" / "meta.properties").exists() for i in range(1, nodes + 1))
    if len(doc.get("nodes", {})) != nodes or doc.get("secured") != secured or not formatted:
        return None
    return doc


def _members(work: Path, nodes: int, saved: dict[str, Any] | None, ports: list[int] | None) -> list[Node]:
    """Each node's client and controller ports: those asked for (or saved) when all are free, else free ones."""
    wanted: list[tuple[int, int]] | None = None
    if saved is not None:
        wanted = [(int(saved["nodes"][str(i)][0]), int(saved["nodes"][str(i)][1])) for i in range(1, nodes + 1)]
    if ports is not None and len(ports) == nodes:
        controllers = [c for _, c in wanted] if wanted else [free_port() for _ in range(nodes)]
        wanted = list(zip(ports, controllers, strict=True))
    if wanted is None or any(port_open("127.0.0.1", p) for pair in wanted for p in pair):
        wanted = [(free_port(), free_port()) for _ in range(nodes)]
    return [Node(i, p, cp, work / f"node-{i}") for i, (p, cp) in enumerate(wanted, start=1)]
