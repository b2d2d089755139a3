"""devstack/redis_cluster.py: a port chosen free and taken by another process before the node binds it (another
test's redis-server) no longer fails the cluster's creation ("Node ... is not configured as a cluster node", seen in
a CI run): the node is started on other ports."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import redis

from devstack import redis_cluster
from devstack.infra import free_port, wait_port


@pytest.fixture
def squatter() -> Iterator[int]:
    """A plain (non-cluster) redis-server on a port the cluster will be offered first."""
    port = free_port()
    proc = subprocess.Popen(
        [redis_cluster._binary("redis-server"), "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_port("127.0.0.1", port, proc)
    yield port
    proc.terminate()
    proc.wait(5)


def test_a_node_whose_port_was_taken_starts_on_other_ports(squatter: int, monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([squatter])
    real = free_port
    monkeypatch.setattr(redis_cluster, "free_port", lambda: next(offered, None) or real())
    with redis_cluster.cluster(masters=3, replicas=0) as c:
        assert squatter not in [n.port for n in c.nodes]
        client = redis.RedisCluster(host="127.0.0.1", port=c.nodes[0].port)
        try:
            client.set("k", "v")
            assert client.get("k") == b"v"
        finally:
            client.close()
