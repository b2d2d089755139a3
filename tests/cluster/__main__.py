"""`python -m tests.cluster [pytest options]`: the Redis Cluster tier (issue 22), what `./osteocds test` runs after
the normal suite. With OSTEOCDS_REDIS=cluster, every test's Redis is a local Redis Cluster (3 masters, 3 replicas of
Debian's redis-server on loopback: devstack/redis_cluster.py; REDIS_URL `redis+cluster://`): the tests of
tests/cluster (slot layout, a flushed master, rolled-back writes, a master killed mid-stream through the five
services) and the tests of the normal suite chosen in REUSED, unchanged (their fixtures take Redis from
devstack.infra.redis()). The tests of the normal suite that read or delete Redis keys by hand (the single-node key
names) are not reused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: the five services end to end on the cluster (every consumer path, timers, corrections, the planners) and the
#: in-process timer tests (one due-deadline set per slot group)
REUSED = [
    "tests/test_timers.py",
    "tests/e2e/test_lab_ingestion.py",
    "tests/e2e/test_lab_intake.py",
    "tests/e2e/test_radiotherapy_planner.py",
    "tests/e2e/test_corrections.py",
    "tests/e2e/test_clinical_context.py",
    "tests/e2e/test_future_dates.py",
    "tests/e2e/test_censored.py",
]


def main(argv: list[str]) -> int:
    os.environ["OSTEOCDS_REDIS"] = "cluster"
    if os.environ.pop("REDIS_URL", None):  # this tier starts its own cluster
        print("tests.cluster: REDIS_URL ignored (the tier starts a local Redis Cluster)")
    # test paths given: those only (an option's value, e.g. `-p no:cacheprovider`, is no path)
    selected = [a for a in argv if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    return int(pytest.main([*argv] if selected else ["tests/cluster", *REUSED, *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
