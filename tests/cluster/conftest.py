"""The Redis Cluster tier (issue 22): tests that need a local Redis Cluster (devstack/redis_cluster.py: 3 masters and
3 replicas of Debian's redis-server on loopback). Each test that kills or flushes a node gets its own cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.redis_cluster import RedisCluster, cluster


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with cluster(workdir=tmp_path / "redis-cluster") as c:
        yield c
