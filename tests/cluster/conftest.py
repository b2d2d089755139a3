"""The Redis Cluster tier (issue 22): tests that need a local Redis Cluster (devstack/redis_cluster.py: 3 masters and
3 replicas of Debian's redis-server on loopback). Each test that kills or flushes a node gets its own cluster. They run
in `python -m tests.cluster` (OSTEOCDS_REDIS=cluster; what `./osteocds test` runs after the normal suite); in the
normal suite only the key layout's unit tests run, the others are skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.redis_cluster import RedisCluster, cluster


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("OSTEOCDS_REDIS") == "cluster":
        return
    skip = pytest.mark.skip(reason="Redis Cluster tier: runs in `python -m tests.cluster` (OSTEOCDS_REDIS=cluster)")
    here = config.rootpath / "tests" / "cluster"
    for item in items:
        if item.path.is_relative_to(here) and item.path.name != "test_key_layout.py":
            item.add_marker(skip)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with cluster(workdir=tmp_path / "redis-cluster") as c:
        yield c
