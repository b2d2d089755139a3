"""A local Redis Cluster (issue 22): 3 masters and 3 replicas of Debian's `redis-server --cluster-enabled yes` on
loopback free ports, joined with `redis-cli --cluster create ... --cluster-replicas 1`. No Docker.

    with cluster() as c:
        c.cluster_url          # "redis+cluster://127.0.0.1:p1/0": the services' REDIS_URL (any node)
        c.url                  # "redis://127.0.0.1:p1/0": that node, for a plain client
        c.master_of_slot(42)   # the node that serves a slot now
        c.kill(node)           # SIGKILL a node (a master: its replica takes over after NODE_TIMEOUT_MS)
        c.wait_failover(node, 42)  # until another node (the killed master's replica) serves slot 42
        c.start(node)          # start it again (it rejoins as a replica of the new master)
        c.pause(c.replica_of(m)); c.resume(...)   # SIGSTOP / SIGCONT: a replica falling behind its master

Persistence is off (as for the single local redis-server): a node started again comes back empty and resyncs from
its master. Replication is asynchronous, as in production: a master killed right after a write may lose it, which
the services detect (shared/runtime/state.py, per-bucket write counters).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.infra import OWN_SESSION, free_port, wait_port

#: how long a master may be unreachable before its replica is promoted (cluster-node-timeout): short, for tests
NODE_TIMEOUT_MS = 1500


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's redis-server (it brings redis-cli)")
    return found


@dataclass
class Node:
    port: int
    workdir: Path
    #: the cluster bus port (by default port + 10000, which overflows for high free ports)
    bus_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class RedisCluster:
    nodes: list[Node]

    @property
    def url(self) -> str:
        """One node, as a plain client (or redis-cli) reaches it."""
        return f"redis://{self.nodes[0].address}/0"

    @property
    def cluster_url(self) -> str:
        """The services' REDIS_URL: a node, and that it is a cluster (shared/transport.py `redis_target`)."""
        return f"redis+cluster://{self.nodes[0].address}/0"

    def cli(self, node: Node, *args: str, timeout: float = 10) -> str:
        out = subprocess.run(
            [_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(node.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return out.stdout

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def roles(self) -> dict[str, str]:
        """address -> 'master' | 'slave', as the live nodes see the cluster (CLUSTER NODES of one of them)."""
        for node in self.alive():
            text = self.cli(node, "cluster", "nodes")
            out: dict[str, str] = {}
            for line in text.splitlines():
                parts = line.split()
                if len(parts) < 3 or "fail" in parts[2] or "noaddr" in parts[2]:
                    continue
                address = parts[1].split("@")[0]
                out[address] = "master" if "master" in parts[2] else "slave"
            if out:
                return out
        return {}

    def masters(self) -> list[Node]:
        roles = self.roles()
        return [n for n in self.alive() if roles.get(n.address) == "master"]

    def _owner(self, viewer: Node, slot: int) -> str | None:
        """The address of the master that `viewer` says serves `slot` (None: none it considers up)."""
        for line in self.cli(viewer, "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
                continue
            for r in parts[8:]:
                lo, _, hi = r.partition("-")
                if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                    return parts[1].split("@")[0]
        return None

    def master_of_slot(self, slot: int) -> Node:
        for node in self.alive():
            if (address := self._owner(node, slot)) is not None:
                return self._node(address)
        raise LookupError(f"no live master serves slot {slot}")

    def _node(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    def state_ok(self) -> bool:
        live = self.alive()
        return bool(live) and all("cluster_state:ok" in self.cli(n, "cluster", "info") for n in live)

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state_ok():
                return
            time.sleep(0.1)
        raise TimeoutError(f"cluster_state is not ok after {timeout}s")

    def start(self, node: Node) -> None:
        node.workdir.mkdir(parents=True, exist_ok=True)
        log = open(node.workdir / "redis.log", "ab")  # noqa: SIM115 - lives with the process
        node.proc = subprocess.Popen(
            [
                _binary("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(node.port),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node.workdir / "nodes.conf"),
                "--cluster-port",
                str(node.bus_port),
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                # a replica that fell behind (stalled, slow link) still takes over: availability first, the services
                # detect what it lacks (shared/runtime/state.py, write counters)
                "--cluster-replica-validity-factor",
                "0",
                "--repl-diskless-sync-delay",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(node.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=OWN_SESSION,
        )
        try:
            wait_port("127.0.0.1", node.port, node.proc)
        except RuntimeError as exc:  # exited before listening: its port or bus port taken
            raise PortTaken(str(exc)) from exc
        self._check_owner(node)

    @staticmethod
    def _check_owner(node: Node, settle_s: float = 0.3) -> None:
        """The process listening is the one just started: a free port taken by another process in between (another
        test's redis-server) answers too, and the node then exits "address already in use" (`PortTaken`)."""
        assert node.proc is not None
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise PortTaken(f"redis-server on {node.port}/{node.bus_port} exited with {node.proc.returncode}")
            time.sleep(0.05)
        with contextlib.suppress(redis.RedisError):  # a node requiring credentials: its liveness above suffices
            client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)
            try:
                pid = client.info("server").get("process_id")
            finally:
                client.close()
            if pid is not None and int(pid) != node.proc.pid:
                raise PortTaken(f"port {node.port} is answered by another redis-server (pid {pid})")

    def kill(self, node: Node) -> None:
        """SIGKILL: no shutdown, nothing saved (what it had not yet replicated is lost)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait()

    def wait_failover(self, killed: Node, slot: int, timeout: float = 30) -> Node:
        """Until every live node says another master serves `slot` (one `killed` served) and the cluster is ok;
        returns that master (the killed master's former replica)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = {self._owner(n, slot) for n in self.alive()}
            if len(owners) == 1 and None not in owners and killed.address not in owners and self.state_ok():
                return self._node(owners.pop())  # type: ignore[arg-type]
            time.sleep(0.1)
        raise TimeoutError(f"no failover of {killed.address} after {timeout}s")

    def replica_of(self, master: Node) -> Node:
        """The live replica of `master` (as a live node sees the cluster)."""
        for viewer in self.alive():
            lines = [line.split() for line in self.cli(viewer, "cluster", "nodes").splitlines()]
            ids = {parts[1].split("@")[0]: parts[0] for parts in lines if len(parts) > 3}
            master_id = ids.get(master.address)
            for parts in lines:
                if len(parts) > 3 and "slave" in parts[2] and parts[3] == master_id:
                    return self._node(parts[1].split("@")[0])
        raise LookupError(f"no replica of {master.address}")

    def pause(self, node: Node) -> None:
        """SIGSTOP: the node neither answers nor replicates until `resume` (a replica falling behind)."""
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGSTOP)

    def resume(self, node: Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGCONT)

    def wait_replicas(self, count: int, timeout: float = 30) -> None:
        """Until `count` replicas have finished their first sync with their master (only then can one take over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            synced = [n for n in self.alive() if "master_link_status:up" in self.cli(n, "info", "replication")]
            if len(synced) >= count:
                return
            time.sleep(0.1)
        raise TimeoutError(f"fewer than {count} replicas in sync after {timeout}s")

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(5)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()


class PortTaken(RuntimeError):
    """The port chosen for a node was taken by another process before the node bound it."""


@contextlib.contextmanager
def cluster(masters: int = 3, replicas: int = 1, workdir: Path | None = None) -> Iterator[RedisCluster]:
    """`masters` masters with `replicas` replicas each, joined and `cluster_state:ok`; stopped on exit."""
    with contextlib.ExitStack() as stack:
        base = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="osteocds-redis-cluster-")))
        ports = [(free_port(), free_port()) for _ in range(masters * (1 + replicas))]
        nodes = [Node(port, base / str(port), bus) for port, bus in ports]
        c = RedisCluster(nodes)
        stack.callback(c.stop)
        for i, node in enumerate(nodes):
            for attempt in range(5):  # a free port can be taken before the node binds it: start on other ports
                try:
                    c.start(node)
                    break
                except PortTaken:
                    if attempt == 4:
                        raise
                    c.kill(node)
                    port = free_port()
                    node = nodes[i] = Node(port, base / str(port), free_port())
        create = subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(n.address for n in nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout[-500:]} {create.stderr[-500:]}")
        c.wait_ok()
        c.wait_replicas(masters * replicas)
        yield c
