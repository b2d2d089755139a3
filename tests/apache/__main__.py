"""`python -m tests.apache [pytest options]`: the Apache Kafka tier (issue 22), what `./osteocds test` runs after the
normal suite. Every test here runs against a local 3-broker Apache Kafka cluster (KRaft, replication factor 3,
min.insync.replicas 2, idempotent acks=all producers; devstack/apache_kafka.py, jars fetched from Maven Central into
.run/kafka on first use): the tests of tests/apache (broker failover) and the delivery tests of the normal suite
chosen in REUSED, unchanged (their fixtures take the broker from devstack.infra.kafka(), which OSTEOCDS_KAFKA=apache
points at the cluster)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

#: the delivery tests that matter, run on both brokers: ordering and at-least-once with restarts (the runtime's
#: commit contract, a crash between the state write and the ack, scaling out mid-stream), dead letters, rebuild
#: after a lost Redis, and the chaos run (every service SIGKILLed twice, Redis flushed, against a fault-free run)
REUSED = [
    "tests/test_runtime.py",
    "tests/e2e/test_walking_skeleton.py",
    "tests/e2e/test_state_loss.py",
    "tests/test_healing.py",
    "tests/chaos/test_chaos.py",
]


def main(argv: list[str]) -> int:
    os.environ["OSTEOCDS_KAFKA"] = "apache"
    os.environ.setdefault("OSTEOCDS_KAFKA_NODES", "3")
    if os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None):  # this tier starts its own cluster
        print("tests.apache: KAFKA_BOOTSTRAP_SERVERS ignored (the tier starts a local Apache Kafka cluster)")
    from devstack.kafka_jars import KAFKA_VERSION, ensure_jars

    t0 = time.monotonic()
    lib = ensure_jars()
    print(f"tests.apache: Apache Kafka {KAFKA_VERSION} ({lib}, {time.monotonic() - t0:.1f} s), 3 brokers", flush=True)
    # tests named on the command line (a path, or path::test) replace the tier's list; options pass through
    selected = [a for a in argv if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    return int(pytest.main([*argv] if selected else ["tests/apache", *REUSED, *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
