"""Issue 22, the secured mode for real, Kafka: a real Apache Kafka broker (devstack/apache_kafka.py, KRaft) secured as
docker-compose.yml secures it (devstack/secure.py: SASL_SSL, SCRAM-SHA-512, the StandardAuthorizer with the ACLs of
deploy/generate.py, the list kafka-setup.sh is rendered from). For every principal: it writes, reads and uses the
consumer groups its ACLs allow, and nothing else; a client without credentials, or with wrong ones, is not let in; a
forged alert action or recommendation sent with another service's credentials is refused, and the broker's
authorizer log records the refusal (one node: the ACLs do not depend on the replication)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import TopicPartition

from contracts.topics import ALERT_ACTIONS, ALERTS, CHANGELOGS, RECOMMENDATIONS, SERVICES, TOPICS
from deploy.generate import DLQ_OPERATOR, EHR, KAFKA_SETUP, PRINCIPALS, KafkaAcl, kafka_acls
from devstack import apache_kafka, secure
from shared.settings import Settings
from shared.transport import kafka_client_kwargs

ACLS = set(kafka_acls())
ALL_TOPICS = [t.name for t in (*TOPICS, *CHANGELOGS)]
GROUPS = (*SERVICES, EHR, DLQ_OPERATOR)
#: what secure.provision reported: the ACLs the broker holds after applying the generated list
PROVISIONED: dict[str, int] = {}


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apache_kafka.ApacheCluster]:
    with apache_kafka.cluster(nodes=1, secured=True, workdir=tmp_path_factory.mktemp("secured-kafka")) as c:
        PROVISIONED["acls"] = secure.provision(c.security, c.bootstrap, c.lib, c.settings)
        yield c


def kwargs(c: apache_kafka.ApacheCluster, principal: str | None = None, **env: str) -> dict[str, Any]:
    """The client arguments of `principal` (None: the cluster's plain settings) with `env` on top."""
    base = c.client_settings(principal) if principal else dict(c.settings)
    doc = {k.lower(): v for k, v in {**base, **env}.items()}
    return kafka_client_kwargs(Settings.model_validate(doc))


def allowed(principal: str, operation: str, resource: str, name: str) -> bool:
    return KafkaAcl(principal, operation, resource, name) in ACLS


def sees(principal: str, topic: str) -> bool:
    """Any ACL of the principal on the topic (each implies Describe): else even its metadata is refused."""
    return any(
        a.principal == principal
        and a.resource == "topic"
        and (a.name == topic or (a.pattern == "prefixed" and topic.startswith(a.name)))
        for a in ACLS
    )


def denied_write(principal: str, topic: str) -> tuple[str, ...]:
    """The authorizer's line for a refused write: the Produce request's WRITE, or, for a principal that may not see
    the topic, the Metadata request's DESCRIBE (the client never gets to produce)."""
    if sees(principal, topic):
        return (f"User:{principal} is Denied operation = WRITE", f"Topic:LITERAL:{topic} ", "request = Produce")
    return (f"User:{principal} is Denied operation = DESCRIBE", f"Topic:LITERAL:{topic} ", "request = Metadata")


async def wait_denials(c: apache_kafka.ApacheCluster, *needles: str, timeout: float = 10) -> list[str]:
    """The authorizer log's lines that contain every needle (waits for the broker to write them)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in c.security.denials() if all(n in line for n in needles)]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


def test_the_broker_holds_exactly_the_generated_acls(secured_kafka: apache_kafka.ApacheCluster) -> None:
    """One source: the ACLs the broker holds are deploy/generate.py's list, which kafka-setup.sh renders."""
    assert PROVISIONED["acls"] == len(ACLS)
    script = KAFKA_SETUP.read_text().splitlines()
    assert all(a.shell() in script for a in ACLS)


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_each_principal_writes_only_where_its_acls_allow(
    secured_kafka: apache_kafka.ApacheCluster, principal: str
) -> None:
    producer = AIOKafkaProducer(**kwargs(secured_kafka, principal), acks="all", request_timeout_ms=10_000)
    await producer.start()
    wrote, refused = set(), set()
    try:
        for topic in ALL_TOPICS:
            try:
                await producer.send_and_wait(topic, b"acl-probe", key=b"acl-probe")
                wrote.add(topic)
            except TopicAuthorizationFailedError:
                refused.add(topic)
    finally:
        await producer.stop()
    assert wrote == {t for t in ALL_TOPICS if allowed(principal, "Write", "topic", t)}
    assert refused == set(ALL_TOPICS) - wrote
    if refused:  # audited: the broker's authorizer log names the principal and each refused topic
        for topic in refused:
            assert await wait_denials(secured_kafka, *denied_write(principal, topic))


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_each_principal_reads_only_where_its_acls_allow(
    secured_kafka: apache_kafka.ApacheCluster, principal: str
) -> None:
    consumer = AIOKafkaConsumer(
        **kwargs(secured_kafka, principal), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    read, refused = set(), set()
    try:
        visible = await consumer.topics()  # a topic without any ACL of the principal is not even listed
        assert visible == {t for t in ALL_TOPICS if sees(principal, t)}
        for topic in sorted(visible):
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            try:
                await consumer.getmany(tp, timeout_ms=300)
                read.add(topic)
            except TopicAuthorizationFailedError:
                refused.add(topic)
    finally:
        await consumer.stop()
    assert read == {t for t in ALL_TOPICS if allowed(principal, "Read", "topic", t)}
    for topic in refused:
        assert await wait_denials(secured_kafka, f"User:{principal} is Denied operation = READ", f":{topic} ")


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_each_principal_uses_only_its_own_consumer_group(
    secured_kafka: apache_kafka.ApacheCluster, principal: str
) -> None:
    """Committing offsets in a group (what a member does) needs Read on the group: a service may not commit in, and
    so move, another service's group (its records would be skipped)."""
    readable = [t for t in ALL_TOPICS if allowed(principal, "Read", "topic", t)]
    tp = TopicPartition(readable[0] if readable else ALERTS.name, 0)
    used, refused = set(), set()
    for group in GROUPS:
        consumer = AIOKafkaConsumer(**kwargs(secured_kafka, principal), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await asyncio.wait_for(consumer.commit({tp: 0}), timeout=20)
            used.add(group)
        except (GroupAuthorizationFailedError, TopicAuthorizationFailedError):
            refused.add(group)
        finally:
            await consumer.stop()
    assert used == {g for g in GROUPS if allowed(principal, "Read", "group", g) and readable}
    for group in refused - used:
        if not allowed(principal, "Read", "group", group):
            assert await wait_denials(secured_kafka, f"User:{principal} is Denied operation", f"Group:LITERAL:{group} ")


WRONG = {
    "plaintext (no TLS, no credentials)": {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
    "TLS without credentials": {"KAFKA_SECURITY_PROTOCOL": "SSL"},
    "scoring's name with notification's password": {},  # filled in below
    "an unknown user": {"KAFKA_SASL_USERNAME": "intruder"},
}


@pytest.mark.parametrize("case", list(WRONG))
async def test_a_client_without_valid_credentials_is_not_let_in(
    secured_kafka: apache_kafka.ApacheCluster, case: str
) -> None:
    env = dict(WRONG[case])
    if "password" in case:
        env["KAFKA_SASL_PASSWORD_FILE"] = str(secured_kafka.security.password_file("notification"))
    producer = AIOKafkaProducer(**kwargs(secured_kafka, "scoring", **env), request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), timeout=30)
    await producer.stop()
    if "SASL_USERNAME" in env or "password" in case:  # a failed login is recorded with the client's address
        assert await wait_denials(secured_kafka, "Failed authentication", "invalid credentials")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def forged_messages(alert_id: str, patient_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The issue's forgeries (measured in the embedded mode): withdraw a real critical alert, acknowledge it as
    someone else, inject a false one. Well-formed: only the ACLs stop them."""
    envelope = {"patient_id": patient_id, "occurred_at": _now(), "recorded_at": _now(), "source": "scoring"}
    citation = {"document": "guideline", "section": "1", "lines": "L1-2"}
    recommendation = {
        **envelope,
        "event_id": str(uuid.uuid4()),
        "rule_id": "LAB-CA-CRISIS",
        "ruleset_version": "forged",
        "severity": "critical",
        "title": "forged",
        "text_fr": "forged",
        "citation": citation,
        "inputs": [],
        "produced_by": "scoring",
    }
    return {
        "withdraw": (RECOMMENDATIONS.name, {**recommendation, "event_id": alert_id, "status": "withdrawn"}),
        "acknowledge": (
            ALERT_ACTIONS.name,
            {**envelope, "event_id": str(uuid.uuid4()), "action": "acknowledge", "alert_id": alert_id, "actor": "x"},
        ),
        "false alert": (ALERTS.name, {**recommendation, "recommendation_id": str(uuid.uuid4()), "status": "active"}),
        "false recommendation": (RECOMMENDATIONS.name, recommendation),
    }


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p != "notification"])
async def test_forged_alert_actions_and_alerts_are_refused_and_audited(
    secured_kafka: apache_kafka.ApacheCluster, principal: str
) -> None:
    """Only notification writes alerts and alert actions; only scoring and the planners write recommendations. With
    any other principal's credentials the forged messages are refused, nothing reaches the topics, and the broker's
    authorizer log records each refusal (principal, operation, topic)."""
    forged = forged_messages(str(uuid.uuid4()), f"pt-forged-{principal}")
    producer = AIOKafkaProducer(**kwargs(secured_kafka, principal), acks="all", request_timeout_ms=10_000)
    await producer.start()
    refused = []
    try:
        for name, (topic, doc) in forged.items():
            if allowed(principal, "Write", "topic", topic):
                continue  # a writer of recommendations: its own ACL (HAZ-22-K02 says what that leaves open)
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(topic, json.dumps(doc).encode(), key=doc["patient_id"].encode())
            refused.append((name, topic))
    finally:
        await producer.stop()
    assert {t for _, t in refused} >= {ALERTS.name, ALERT_ACTIONS.name}
    for _, topic in refused:
        assert await wait_denials(secured_kafka, *denied_write(principal, topic))
    # nothing of the forgeries is on the topics (read as the super user)
    consumer = AIOKafkaConsumer(**kwargs(secured_kafka), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in {t for _, t in refused} for p in range(6)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        batch = await consumer.getmany(timeout_ms=1000)
        values = [r.value or b"" for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert not [v for v in values if f"pt-forged-{principal}".encode() in v]


def test_the_audit_log_is_the_brokers_own_file(secured_kafka: apache_kafka.ApacheCluster) -> None:
    """Where an operator finds the refusals: one authorizer log per node, in its log directory."""
    logs = secured_kafka.security.authorizer_logs()
    assert [p.parent for p in logs] == [n.dir for n in secured_kafka.nodes.values()]
    assert all(isinstance(p, Path) and p.stat().st_size > 0 for p in logs)


async def test_an_acl_no_longer_in_the_generated_list_is_removed_when_the_acls_are_applied_again(
    secured_kafka: apache_kafka.ApacheCluster,
) -> None:
    """Review R1: `up --secured` keeps its cluster (and so its ACLs) from one run to the next and applies the generated
    list again at each start. An ACL removed from deploy/generate.py (a permission tightened) must be gone from the
    broker then, not kept: the broker holds exactly the generated list."""
    extra = KafkaAcl(EHR, "Write", "topic", ALERTS.name)  # e.g. an older list's, since removed
    assert extra not in ACLS
    held = secure.apply_acls(secured_kafka.security, secured_kafka.bootstrap, secured_kafka.lib, [*ACLS, extra])
    assert held == len(ACLS) + 1
    assert secure.apply_acls(secured_kafka.security, secured_kafka.bootstrap, secured_kafka.lib) == len(ACLS)
    producer = AIOKafkaProducer(**kwargs(secured_kafka, EHR), acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(ALERTS.name, b"acl-probe", key=b"acl-probe")
    finally:
        await producer.stop()
