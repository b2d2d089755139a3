"""The alert lifecycle end to end: settle window, escalation (also across a restart of notification), and
acknowledgements that a rebuild from Kafka alone restores."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from contracts.clinical import Alert, Recommendation
from contracts.rules import RULESET_VERSION, cite
from contracts.topics import ALERTS, RECOMMENDATIONS
from devstack.stack import RunningStack
from services.notification.settings import NotificationSettings
from shared.web.auth import CLINICIAN
from tests.conftest import (
    ROOT,
    TEST_ESCALATION_S,
    TEST_SETTLE_S,
    Publish,
    alerts,
    auth,
    consume_until,
    restart,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # the settle window and escalation delay, timed: alone


def recommendation(
    patient_id: str,
    severity: str,
    rule_id: str,
    status: str = "active",
    supersedes: list[str] | None = None,
) -> dict[str, Any]:
    """A decision as a planner publishes it (notification's input)."""
    now = datetime.now(UTC)
    rec = Recommendation(
        event_id=uuid.uuid4(),
        patient_id=patient_id,
        occurred_at=now,
        recorded_at=now,
        source="systemic-planner",
        rule_id=rule_id,
        ruleset_version=RULESET_VERSION,
        severity=severity,
        title=f"{rule_id} ({severity})",
        text_fr="Texte de test.",
        citation=cite(rule_id),
        inputs=[],
        produced_by="systemic-planner",
        status=status,
        supersedes=[uuid.UUID(s) for s in supersedes or []],
    )
    return rec.model_dump(mode="json")


async def listed(stack: RunningStack, patient_id: str) -> dict[str, dict[str, Any]]:
    return {a["recommendation_id"]: a for a in await alerts(stack, patient_id)}


async def test_settle_window_hides_churn_and_shows_critical_at_once(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    churn = recommendation(patient_id, "warning", "SYS-AR-START")
    holds = recommendation(patient_id, "info", "SYS-VITD-CORR")
    crisis = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    sent = time.monotonic()
    for doc in (churn, holds, crisis):
        await publish(RECOMMENDATIONS.name, doc)
    await publish(
        RECOMMENDATIONS.name, recommendation(patient_id, "info", "SYS-AR-START", "withdrawn", [churn["event_id"]])
    )

    async def crisis_listed() -> dict[str, dict[str, Any]]:
        found = await listed(stack, patient_id)
        return found if crisis["event_id"] in found else {}

    first = await wait_for(crisis_listed)
    assert time.monotonic() - sent < TEST_SETTLE_S, "the critical alert must not wait for the settle window"
    assert set(first) == {crisis["event_id"]}  # nothing else shown during the window

    async def settled() -> dict[str, dict[str, Any]]:
        found = await listed(stack, patient_id)
        return found if holds["event_id"] in found else {}

    after = await wait_for(settled, timeout=TEST_SETTLE_S + 8)
    assert set(after) == {crisis["event_id"], holds["event_id"]}  # the withdrawn warning was never shown
    assert [t["event"] for t in after[holds["event_id"]]["history"]] == ["raised", "shown"]
    await asyncio.sleep(1)
    assert churn["event_id"] not in await listed(stack, patient_id)

    # EHR inboxes never received it either: the alerts topic carries the others, not the churn
    def of_patient(rec_id: str) -> Any:
        return lambda r: (
            r.key == patient_id.encode() and Alert.model_validate_json(r.value).recommendation_id == uuid.UUID(rec_id)
        )

    await consume_until(kafka_bootstrap, ALERTS.name, of_patient(holds["event_id"]))
    with pytest.raises(AssertionError, match="no matching record"):
        await consume_until(kafka_bootstrap, ALERTS.name, of_patient(churn["event_id"]), timeout=2)


async def test_unacknowledged_critical_alert_escalates(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    crisis = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    acked = recommendation(patient_id, "critical", "RT-MSCC")
    await publish(RECOMMENDATIONS.name, crisis)
    await publish(RECOMMENDATIONS.name, acked)
    await wait_for(lambda: _has(stack, patient_id, acked["event_id"]))
    async with httpx.AsyncClient(timeout=15) as c:
        r = await c.post(
            f"{stack.urls['notification']}/alerts/{acked['event_id']}/ack",
            json={"patient_id": patient_id},
            headers=auth(CLINICIAN, "dr-quick"),
        )
        assert r.status_code == 200

    async def escalated() -> dict[str, Any] | None:
        a = (await listed(stack, patient_id)).get(crisis["event_id"])
        return a if a and a["escalation_level"] >= 1 else None

    alert = await wait_for(escalated, timeout=TEST_ESCALATION_S + 10)
    assert alert["status"] == "active" and alert["escalated_to"] == "escalation"
    assert [t["escalation_level"] for t in alert["history"] if t["event"] == "escalated"] == list(
        range(1, alert["escalation_level"] + 1)
    )
    record = await consume_until(
        kafka_bootstrap,
        ALERTS.name,
        lambda r: r.key == patient_id.encode() and Alert.model_validate_json(r.value).escalation_level == 1,
    )
    assert Alert.model_validate_json(record.value).recommendation_id == uuid.UUID(crisis["event_id"])
    assert (await listed(stack, patient_id))[acked["event_id"]]["escalation_level"] == 0  # acknowledged in time


async def _has(stack: RunningStack, patient_id: str, rec_id: str) -> bool:
    return rec_id in await listed(stack, patient_id)


async def test_escalation_timer_survives_a_restart_of_notification(
    stack: RunningStack, publish: Publish, patient_id: str, stack_logs: Path
) -> None:
    crisis = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    await publish(RECOMMENDATIONS.name, crisis)
    await wait_for(lambda: _has(stack, patient_id, crisis["event_id"]))
    # notification is down when the escalation falls due, and comes back after
    await asyncio.to_thread(restart, stack, "notification", stack_logs, TEST_ESCALATION_S + 1)

    async def escalated() -> dict[str, Any] | None:
        a = (await listed(stack, patient_id)).get(crisis["event_id"])
        return a if a and a["escalation_level"] >= 1 else None

    alert = await wait_for(escalated, timeout=10)
    step = next(t for t in alert["history"] if t["event"] == "escalated")
    raised = datetime.fromisoformat(alert["raised_at"])
    # escalated as of its due time (not as of the restart)
    assert (datetime.fromisoformat(step["at"]) - raised).total_seconds() == pytest.approx(TEST_ESCALATION_S)


async def test_acknowledgements_and_overrides_are_rebuilt_from_kafka_alone(
    stack: RunningStack, publish: Publish, patient_id: str, stack_logs: Path
) -> None:
    acked = recommendation(patient_id, "critical", "LAB-CA-CRISIS")
    overridden = recommendation(patient_id, "critical", "RT-MSCC")
    for doc in (acked, overridden):
        await publish(RECOMMENDATIONS.name, doc)
        await wait_for(lambda doc=doc: _has(stack, patient_id, doc["event_id"]))  # type: ignore[misc]
    base = stack.urls["notification"]
    async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-rebuild")) as c:
        r = await c.post(f"{base}/alerts/{acked['event_id']}/ack", json={"patient_id": patient_id})
        assert r.status_code == 200
        r = await c.post(
            f"{base}/alerts/{overridden['event_id']}/override",
            json={"patient_id": patient_id, "reason": "already-addressed", "comment": "Vu en RCP"},
        )
        assert r.status_code == 200 and r.json()["status"] == "overridden"
    before = await listed(stack, patient_id)

    def flush_and_rebuild() -> None:
        async def flush() -> None:
            r = aioredis.Redis.from_url(stack.env["REDIS_URL"])
            keys = [k async for k in r.scan_iter(match="osteocds:notification:*")]
            if keys:
                await r.delete(*keys)
            await r.aclose()

        asyncio.run(flush())
        done = subprocess.run(
            [sys.executable, "-m", "services.notification", "rebuild"],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]

    await asyncio.to_thread(restart, stack, "notification", stack_logs, 0, flush_and_rebuild)
    after = await listed(stack, patient_id)
    for rec_id in (acked["event_id"], overridden["event_id"]):
        keep = ("status", "acknowledged_by", "overridden_by", "override_reason", "override_comment", "history")
        assert {k: after[rec_id][k] for k in keep} == {k: before[rec_id][k] for k in keep}
    assert after[acked["event_id"]]["acknowledged_by"] == "dr-rebuild"
    assert after[overridden["event_id"]]["override_reason"] == "already-addressed"


async def test_the_demo_patient_list_shows_only_what_still_holds(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    """`./osteocds demo`'s timeline: partial data raises decisions that later data replaces upstream; none of
    them reaches the clinicians' list, which holds only active alerts once the window has passed."""
    from devstack.demo import demo_events

    for topic, doc in demo_events(patient_id, datetime.now(UTC)):
        await publish(topic, doc)
    await consume_until(  # upstream churn happened: a decision withdrawn
        kafka_bootstrap,
        RECOMMENDATIONS.name,
        lambda r: r.key == patient_id.encode() and Recommendation.model_validate_json(r.value).status == "withdrawn",
        timeout=20,
    )
    await asyncio.sleep(TEST_SETTLE_S + 2)

    async def stable() -> list[dict[str, Any]]:
        first = await alerts(stack, patient_id)
        await asyncio.sleep(1)
        return first if first == await alerts(stack, patient_id) else []

    listed = await wait_for(stable, timeout=20)
    recs = [
        (r.timestamp / 1000, Recommendation.model_validate_json(r.value))
        for r in await records_of(kafka_bootstrap, RECOMMENDATIONS.name, patient_id)
    ]
    raised = {str(rec.event_id): at for at, rec in recs if rec.status == "active"}
    lasted = {
        str(old): at - raised[str(old)] for at, rec in recs if rec.status == "withdrawn" for old in rec.supersedes
    }
    replaced = set(lasted)
    # no info or warning decision replaced within the (test's) settle window is listed, in any status: never shown
    within = {rid for rid, s in lasted.items() if s < TEST_SETTLE_S}
    assert within, lasted
    assert not within & {a["recommendation_id"] for a in listed if a["severity"] != "critical"}
    # what the demo prints, the active list, holds only what still holds (a critical alert is shown at once,
    # so one replaced upstream stays in the full list as withdrawn, never as active)
    active = await alerts(stack, patient_id, status="active")
    assert not replaced & {a["recommendation_id"] for a in active}
    assert {"LAB-CA-CRISIS", "RT-MSCC"} <= {a["rule_id"] for a in active}

    # how long the churn lasted: from a decision to its withdrawal, on the recommendations topic
    churn = list(lasted.values())
    print(f"demo churn: {len(churn)} decisions withdrawn after {min(churn):.2f}-{max(churn):.2f} s")
    assert max(churn) < NotificationSettings().alert_settle_seconds  # the default window covers it


async def records_of(bootstrap: str, topic: str, key: str) -> list[Any]:
    """Every record of `topic` with this key, read from the beginning until the topic is idle for 1 s."""
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await c.start()
    found: list[Any] = []
    try:
        while batch := await c.getmany(timeout_ms=1000):
            found += [r for rs in batch.values() for r in rs if r.key == key.encode()]
    finally:
        await c.stop()
    return sorted(found, key=lambda r: r.timestamp)


async def test_alerts_are_paginated_and_filtered_by_status_and_severity(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    docs = [recommendation(patient_id, "critical", rule) for rule in ("LAB-CA-CRISIS", "RT-MSCC", "SYS-ONJ")]
    for doc in docs:
        await publish(RECOMMENDATIONS.name, doc)
    await wait_for(lambda: _count(stack, patient_id, 3))
    url = f"{stack.urls['notification']}/alerts"
    async with httpx.AsyncClient(timeout=15, headers=auth(CLINICIAN, "dr-pages")) as c:
        r = await c.post(f"{url}/{docs[0]['event_id']}/ack", json={"patient_id": patient_id})
        assert r.status_code == 200
        query = {"patient_id": patient_id, "status": "active", "severity": "critical", "limit": "1"}
        first = await c.get(url, params=query)
        assert first.headers["x-total-count"] == "2" and len(first.json()) == 1
        nxt = first.headers["link"].split(">")[0].lstrip("<")
        second = await c.get(nxt)
        assert second.headers["x-total-count"] == "2" and "link" not in second.headers
        seen = {a["recommendation_id"] for a in first.json() + second.json()}
        assert seen == {docs[1]["event_id"], docs[2]["event_id"]}
        acked = await c.get(url, params={"patient_id": patient_id, "status": "acknowledged"})
        assert [a["recommendation_id"] for a in acked.json()] == [docs[0]["event_id"]]
        assert (await c.get(url, params={"patient_id": patient_id, "severity": "info"})).json() == []
        assert (await c.get(url, params={"patient_id": patient_id, "limit": "0"})).status_code == 422
        # an acknowledged alert resolved by a clinician; an active one cannot be resolved before anyone acted
        resolved = await c.post(f"{url}/{docs[0]['event_id']}/resolve", json={"patient_id": patient_id})
        assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
        assert [t["event"] for t in resolved.json()["history"]] == ["raised", "shown", "acknowledged", "resolved"]
        refused = await c.post(f"{url}/{docs[1]['event_id']}/resolve", json={"patient_id": patient_id})
        assert refused.status_code == 409


async def _count(stack: RunningStack, patient_id: str, n: int) -> bool:
    return len(await listed(stack, patient_id)) >= n
