"""The Apache Kafka tier (issue 22): tests that need a local Apache Kafka cluster (devstack/apache_kafka.py). They
run in `python -m tests.apache` (what `./osteocds test` runs after the normal suite), with OSTEOCDS_KAFKA=apache,
beside chosen e2e and chaos tests of the normal suite, which then run on a 3-broker cluster. In the normal suite
(on the embedded broker) they are skipped."""

from __future__ import annotations

import pytest

from devstack import infra


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if infra.kafka_engine() == "apache":
        return
    skip = pytest.mark.skip(reason="Apache Kafka tier: runs in `python -m tests.apache` (OSTEOCDS_KAFKA=apache)")
    for item in items:
        if item.path.is_relative_to(config.rootpath / "tests" / "apache"):
            item.add_marker(skip)
