"""devstack/kafka_nodes.py's cluster ids (issue 22): Kafka Uuids, never one the storage tool's command line would
read as an option."""

from __future__ import annotations

import base64

from devstack import kafka_nodes


def test_cluster_ids_are_kafka_uuids_that_never_start_with_a_dash() -> None:
    ids = [kafka_nodes._cluster_id() for _ in range(5000)]  # P(no "-" first among 5,000 unchecked) < 1e-30
    assert len(set(ids)) == len(ids)
    for cluster_id in ids:
        assert not cluster_id.startswith("-")
        assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
