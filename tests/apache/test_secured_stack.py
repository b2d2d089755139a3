"""Issue 22, the secured mode end to end: the five services run against a secured Apache Kafka broker and a
TLS-only Redis (devstack/secure.py), each with its own Kafka principal and Redis user (devstack/stack.py
`own_env`), the state changelogs on. A lab result published by the hospital bus becomes a critical alert with no
refusal of any service's operation; the issue's forgeries (withdraw the real alert, acknowledge it as someone else,
inject a false one) sent with other principals' credentials are refused, the alert stands, the broker's authorizer
log records each refusal; the same acknowledgement sent with the credentials allowed to send it does take effect
(the forgeries were well formed: only the ACLs stopped them). A rebuild runs with the service's own credentials."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from contracts.lifecycle import AlertAction
from contracts.topics import ALERT_ACTIONS, ALERTS, LAB_RESULTS, RECOMMENDATIONS, SCORING, SERVICES
from deploy.generate import HOSPITAL, kafka_acls
from devstack import apache_kafka, infra, issuer, secure
from devstack.stack import ROOT, SERVICE_MODULES, RunningStack, spawn_services, wait_until_ready
from shared.settings import Settings
from shared.transport import kafka_client_kwargs
from tests.conftest import TEST_ESCALATION_S, TEST_SETTLE_S, alerts, lab, wait_for

pytestmark = pytest.mark.e2e

CA_MMOL = "2000-8"
ALBUMIN = "1751-7"


@dataclass
class Secured:
    cluster: apache_kafka.ApacheCluster
    redis: secure.SecuredRedis
    stack: RunningStack

    @property
    def security(self) -> secure.KafkaSecurity:
        sec: secure.KafkaSecurity = self.cluster.security
        return sec

    def kwargs(self, principal: str) -> dict[str, Any]:
        env = {k.lower(): v for k, v in self.cluster.client_settings(principal).items()}
        return kafka_client_kwargs(Settings.model_validate(env))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, local_issuer: issuer.LocalIssuer) -> Iterator[Secured]:
    work = tmp_path_factory.mktemp("secured-stack")
    with (
        apache_kafka.cluster(nodes=1, secured=True, workdir=work) as c,
        secure.secured_redis(work) as r,  # the same secrets directory: one CA
    ):
        secure.provision(c.security, c.bootstrap, c.lib, c.settings)
        admin = c.security.admin
        common = {k: v for k, v in c.settings.items() if k not in admin}  # no service gets the super user's
        env = {
            **common,
            **local_issuer.env(),
            "STATE_CHANGELOG": "true",
            "ALERT_SETTLE_SECONDS": str(TEST_SETTLE_S),
            "ALERT_ESCALATION_DELAY_SECONDS": str(TEST_ESCALATION_S),
            "TIMER_POLL_INTERVAL_S": "0.2",
            "LIVE_POLL_SECONDS": "0.2",
        }
        own = secure.service_settings(c.security, r)
        ports = {name: infra.free_port() for name in SERVICE_MODULES}
        logs = work / "service-logs"
        logs.mkdir()
        stack = spawn_services(c.bootstrap, r.url, env, ports=ports, log_dir=logs, own_env=own, wait_ready=120)
        try:
            yield Secured(c, r, stack)
        finally:
            stack.stop()


@pytest.fixture(scope="module")
async def bus(secured: Secured) -> AsyncIterator[AIOKafkaProducer]:
    """The hospital bus, with its own credentials."""
    p = AIOKafkaProducer(**secured.kwargs(HOSPITAL), acks="all", enable_idempotence=True)
    await p.start()
    yield p
    await p.stop()


def services_denials(secured: Secured) -> list[str]:
    return [line for line in secured.security.denials() if any(f"User:{s} " in line for s in SERVICES)]


async def crisis_alert(secured: Secured, bus: AIOKafkaProducer, patient_id: str) -> dict[str, Any]:
    drawn = datetime.now(UTC) - timedelta(hours=2)
    for doc in (lab(patient_id, CA_MMOL, 3.30, "mmol/L", occurred_at=drawn), lab(patient_id, ALBUMIN, 28, "g/L")):
        await bus.send_and_wait(LAB_RESULTS.name, json.dumps(doc).encode(), key=patient_id.encode())

    async def shown() -> list[dict[str, Any]]:
        return [a for a in await alerts(secured.stack, patient_id) if a["rule_id"] == "LAB-CA-CRISIS"]

    found: list[dict[str, Any]] = await wait_for(shown, timeout=60)
    return found[0]


def test_each_service_runs_with_its_own_credentials_only(secured: Secured) -> None:
    """No service is given the super user, another service's principal or Redis user, or a plaintext transport."""
    admin_password = str(secured.security.password_file(secure.ADMIN))
    for name in SERVICES:
        env = secured.stack.service_env(name)
        assert env["KAFKA_SASL_USERNAME"] == name and env["REDIS_USERNAME"] == name
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["REDIS_URL"].startswith("rediss://")
        assert Path(env["KAFKA_SASL_PASSWORD_FILE"]).name == f"{name}-kafka-password"
        assert Path(env["REDIS_PASSWORD_FILE"]).name == f"{name}-redis-password"
        assert admin_password not in env.values()


async def test_a_lab_result_becomes_a_critical_alert_through_the_secured_stack(
    secured: Secured, bus: AIOKafkaProducer
) -> None:
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    alert = await crisis_alert(secured, bus, patient_id)
    assert alert["severity"] == "critical" and alert["status"] == "active"
    # every service did its work within its ACLs: the brokers refused none of their operations
    assert services_denials(secured) == []


def _forgeries(alert: dict[str, Any], patient_id: str) -> dict[str, tuple[str, bytes]]:
    now = datetime.now(UTC)
    envelope = {"patient_id": patient_id, "occurred_at": now.isoformat(), "recorded_at": now.isoformat()}
    decision = {
        **{k: alert[k] for k in ("rule_id", "ruleset_version", "severity", "title", "text_fr", "citation", "inputs")},
        **envelope,
        "source": "scoring",
        "produced_by": "scoring",
    }
    withdraw = {**decision, "event_id": str(uuid.uuid4()), "status": "withdrawn"}
    withdraw["supersedes"] = [alert["recommendation_id"]]
    false_alert = {**decision, "event_id": str(uuid.uuid4()), "title": "Faux", "status": "active"}
    ack = AlertAction(
        event_id=uuid.uuid4(),
        alert_id=uuid.UUID(alert["recommendation_id"]),
        action="acknowledge",
        actor="dr-impostor",
        source="notification",
        **envelope,
    )
    shown = {**false_alert, "recommendation_id": false_alert["event_id"], "event_id": str(uuid.uuid4())}
    return {
        "withdraw": (RECOMMENDATIONS.name, json.dumps(withdraw).encode()),
        "false recommendation": (RECOMMENDATIONS.name, json.dumps(false_alert).encode()),
        "false alert": (ALERTS.name, json.dumps({**shown, "status": "active"}).encode()),
        "acknowledge as someone else": (ALERT_ACTIONS.name, ack.model_dump_json().encode()),
    }


async def test_forged_withdraw_acknowledgement_and_false_alert_are_refused_and_audited(
    secured: Secured, bus: AIOKafkaProducer
) -> None:
    patient_id = f"pt-{uuid.uuid4().hex[:12]}"
    alert = await crisis_alert(secured, bus, patient_id)
    forged = _forgeries(alert, patient_id)
    forged_ids = {str(json.loads(v).get(k)) for _, v in forged.values() for k in ("event_id", "recommendation_id")}
    acls = set(kafka_acls())
    tried: list[tuple[str, str, str]] = []
    for principal in (SCORING, "lab-normalisation", HOSPITAL):
        producer = AIOKafkaProducer(**secured.kwargs(principal), acks="all", request_timeout_ms=10_000)
        await producer.start()
        try:
            for name, (topic, value) in forged.items():
                if any(a.principal == principal and a.operation == "Write" and a.name == topic for a in acls):
                    continue  # scoring writes recommendations (the hazard log says what that leaves open)
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(topic, value, key=patient_id.encode())
                tried.append((principal, name, topic))
        finally:
            await producer.stop()
    assert {n for _, n, _ in tried} == set(forged)  # every forgery tried with at least one principal
    assert (SCORING, "acknowledge as someone else", ALERT_ACTIONS.name) in tried

    await asyncio.sleep(TEST_SETTLE_S + 1)  # beyond the settle window: a held false alert would show by now
    listed = {a["recommendation_id"]: a for a in await alerts(secured.stack, patient_id)}
    real = listed[alert["recommendation_id"]]
    assert (real["status"], real["acknowledged_by"]) == ("active", None)  # neither withdrawn nor acknowledged
    assert not forged_ids & set(listed) and "Faux" not in {a["title"] for a in listed.values()}
    assert "dr-impostor" not in {a["acknowledged_by"] for a in listed.values()}
    # audited: the broker's authorizer log names each principal, the operation and the topic
    for principal, _, topic in tried:
        lines = [
            line
            for line in secured.security.denials()
            if f"User:{principal} is Denied operation" in line and f"Topic:LITERAL:{topic} " in line
        ]
        assert lines, (principal, topic)

    # control: the same acknowledgement, with the one principal allowed to write alert actions, takes effect
    producer = AIOKafkaProducer(**secured.kwargs("notification"), acks="all")
    await producer.start()
    try:
        topic, value = forged["acknowledge as someone else"]
        await producer.send_and_wait(topic, value, key=patient_id.encode())
    finally:
        await producer.stop()

    async def acknowledged() -> list[Any]:
        return [a["acknowledged_by"] for a in await alerts(secured.stack, patient_id) if a["status"] == "acknowledged"]

    assert await wait_for(acknowledged, timeout=30) == ["dr-impostor"]


@pytest.mark.parametrize("restore", ["replay", "changelog"])
async def test_a_rebuild_runs_with_the_services_own_credentials(
    secured: Secured, bus: AIOKafkaProducer, restore: str
) -> None:
    """`python -m services.scoring rebuild` as scoring (its principal, its Redis user), by replay (the inputs up to
    the committed offsets, then its outputs read back to publish what is missing) or from its changelog: nothing is
    refused. (Under the compose ACLs before issue 22, the replay's read of its own outputs was.)"""
    await crisis_alert(secured, bus, f"pt-{uuid.uuid4().hex[:12]}")  # outputs of scoring to read back
    stack = secured.stack
    before = len(secured.security.denials())
    proc = stack.procs[SCORING]
    proc.terminate()
    proc.wait(30)
    port = stack.urls[SCORING].rsplit(":", 1)[1]
    done = subprocess.run(  # noqa: ASYNC221 - the service is stopped meanwhile: nothing else to wait for
        [sys.executable, "-m", SERVICE_MODULES[SCORING][0], "rebuild"],
        cwd=ROOT,
        env={**stack.service_env(SCORING), "HTTP_PORT": port, "STATE_RESTORE": restore},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    stack.start_service(SCORING)
    wait_until_ready(RunningStack(urls={SCORING: stack.urls[SCORING]}, procs={SCORING: stack.procs[SCORING]}), 120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in secured.security.denials()[before:] if f"User:{SCORING} " in line] == []


async def test_the_lag_exporter_measures_every_group_with_its_own_credentials(secured: Secured) -> None:
    """`python -m shared.runtime.lag` as lag-exporter: every service group's offsets and ends, nothing refused."""
    from prometheus_client import CollectorRegistry

    from deploy.generate import LAG_EXPORTER
    from shared.observability.lag import LagGauges, LagMonitor
    from shared.runtime.lag import consumer_groups

    env = {k.lower(): v for k, v in secured.cluster.client_settings(LAG_EXPORTER).items()}
    before = len(secured.security.denials())
    monitor = LagMonitor(Settings.model_validate(env), consumer_groups(), LagGauges(CollectorRegistry()))
    await monitor.start()
    try:
        samples = await monitor.sample()
    finally:
        await monitor.stop()
    assert {s.group for s in samples} == set(SERVICES)
    assert [line for line in secured.security.denials()[before:] if f"User:{LAG_EXPORTER} " in line] == []


async def test_a_malformed_message_is_dead_lettered_and_read_by_the_operator_alone(
    secured: Secured, bus: AIOKafkaProducer
) -> None:
    """lab-normalisation writes the dead letter with its own credentials (nothing refused); the dead letter holds the
    original bytes, hence patient data: `dlq-operator` reads it, `ehr` is refused even its metadata (audited)."""
    import base64

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from contracts.clinical import DeadLetter
    from contracts.topics import DEAD_LETTER
    from deploy.generate import DLQ_OPERATOR, EHR

    before = len(secured.security.denials())
    garbage = f"not json {uuid.uuid4().hex}".encode()
    await bus.send_and_wait(LAB_RESULTS.name, garbage, key=b"pt-malformed")

    async def letters(principal: str) -> list[DeadLetter]:
        consumer = AIOKafkaConsumer(**secured.kwargs(principal), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(DEAD_LETTER.name, 0)  # one partition
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            batch = await consumer.getmany(tp, timeout_ms=1000)
            return [DeadLetter.model_validate_json(r.value or b"") for r in batch.get(tp, [])]
        finally:
            await consumer.stop()

    async def found() -> list[DeadLetter]:
        return [d for d in await letters(DLQ_OPERATOR) if base64.b64decode(d.value_b64 or "") == garbage]

    assert [d.service for d in await wait_for(found, timeout=30)] == ["lab-normalisation"]
    assert await letters(EHR) == []  # the topic's metadata is refused to ehr: it cannot even fetch
    assert [
        line
        for line in secured.security.denials()[before:]
        if f"User:{EHR} is Denied operation = DESCRIBE" in line and f"Topic:LITERAL:{DEAD_LETTER.name} " in line
    ]
    assert [line for line in secured.security.denials()[before:] if "User:lab-normalisation " in line] == []
