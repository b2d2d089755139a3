"""End to end through the real broker, real Redis and the five services as real processes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.clinical import DeadLetter
from contracts.topics import DEAD_LETTER, IMAGING_FINDINGS, LAB_RESULTS, TREATMENT_EVENTS
from devstack.stack import RunningStack
from shared.web.auth import CLINICIAN, OPS
from tests.conftest import Publish, alerts, auth, consume_until, event, lab, outcomes, wait_for, wait_outcomes_above

pytestmark = pytest.mark.e2e

CA_MMOL = "2000-8"
ALBUMIN = "1751-7"


def by_rule(items: list[dict[str, Any]], rule_id: str) -> list[dict[str, Any]]:
    return [a for a in items if a["rule_id"] == rule_id]


async def test_hypercalcaemic_crisis_alerts_once(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    drawn = datetime.now(UTC) - timedelta(hours=2)
    ca = lab(patient_id, CA_MMOL, 3.30, "mmol/L", occurred_at=drawn)
    alb = lab(patient_id, ALBUMIN, 28, "g/L", occurred_at=drawn)
    await publish(LAB_RESULTS.name, ca)
    await publish(LAB_RESULTS.name, alb)

    crisis = await wait_for(lambda: _crisis(stack, patient_id), timeout=10)
    assert len(crisis) == 1
    alert = crisis[0]
    assert alert["severity"] == "critical" and alert["status"] == "active"
    corrected = next(i for i in alert["inputs"] if i["name"] == "corrected_calcium")
    assert corrected["value"] == pytest.approx(3.60) and corrected["unit"] == "mmol/L"
    assert {i["name"] for i in alert["inputs"]} >= {"total_calcium", "albumin"}
    assert alert["ruleset_version"] and alert["citation"]["lines"] == "L294-296, L300-306, L316"
    assert "3.60" in alert["title"]

    # the same events delivered again: no second effect anywhere
    before = await outcomes(stack, "lab-normalisation", LAB_RESULTS.name, "duplicate")
    await publish(LAB_RESULTS.name, ca)
    await publish(LAB_RESULTS.name, alb)

    await wait_outcomes_above(stack, "lab-normalisation", LAB_RESULTS.name, "duplicate", before + 1)
    assert len(await _crisis(stack, patient_id)) == 1


async def _crisis(stack: RunningStack, patient_id: str) -> list[dict[str, Any]]:
    return by_rule(await alerts(stack, patient_id), "LAB-CA-CRISIS")


async def test_sre_from_crisis_triggers_antiresorptive(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    drawn = datetime.now(UTC) - timedelta(hours=1)
    await publish(LAB_RESULTS.name, lab(patient_id, "17861-6", 15.0, "mg/dL", occurred_at=drawn))  # 3.74 mmol/L
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, 4.0, "g/dL", occurred_at=drawn))
    start = await wait_for(lambda: _rule(stack, patient_id, "SYS-AR-START"))
    assert start[0]["severity"] == "warning"
    assert any(i["name"] == "sre:hypercalcaemia" for i in start[0]["inputs"])


async def _rule(stack: RunningStack, patient_id: str, rule_id: str) -> list[dict[str, Any]]:
    return [a for a in by_rule(await alerts(stack, patient_id), rule_id) if a["status"] == "active"]


async def test_cord_compression_gives_urgent_radiotherapy(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    await publish(
        IMAGING_FINDINGS.name,
        event(
            patient_id,
            datetime.now(UTC) - timedelta(days=9),  # the MRI that found it, before the surgery (RT-MSCC, 9.1)
            lesion_id="L-T8",
            skeletal_site="spine",
            vertebral_level="T8",
            lesion_type="lytic",
            modality="mri",
            epidural_extension=True,
            cord_compression=True,
        ),
    )
    mscc = await wait_for(lambda: _rule(stack, patient_id, "RT-MSCC"))
    assert mscc[0]["severity"] == "critical"
    assert "30 Gy en 10" in mscc[0]["text_fr"] and "20 Gy en 5" in mscc[0]["text_fr"]
    assert mscc[0]["missing"], "life expectancy is unknown and must be named as missing"

    # decompressive surgery of this level: the urgent alert is withdrawn, an adjuvant plan replaces it
    operated = date.today() - timedelta(days=8)
    await publish(
        TREATMENT_EVENTS.name,
        event(
            patient_id,
            treatment={"kind": "surgery", "site": "T8", "procedure": "decompression", "on": operated.isoformat()},
        ),
    )

    async def adjuvant() -> list[dict[str, Any]]:
        return [a for a in await _rule(stack, patient_id, "RT-MSCC") if "adjuvante" in a["text_fr"]]

    plan = await wait_for(adjuvant)
    lo, hi = operated + timedelta(weeks=2), operated + timedelta(weeks=3)  # 2 to 3 weeks after the surgery
    assert f"{lo:%d/%m/%Y}" in plan[0]["text_fr"] and f"{hi:%d/%m/%Y}" in plan[0]["text_fr"]
    statuses = {a["severity"]: a["status"] for a in by_rule(await alerts(stack, patient_id), "RT-MSCC")}
    assert statuses == {"critical": "withdrawn", "warning": "active"}


async def test_malformed_message_is_dead_lettered_and_next_processed(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    garbage = b"\xff\xfe{not json at all"
    await publish(LAB_RESULTS.name, garbage)
    invalid = lab(patient_id, CA_MMOL, 2.4, "mmol/L")
    del invalid["occurred_at"]
    await publish(LAB_RESULTS.name, invalid)
    bad_unit = lab(patient_id, CA_MMOL, 2.4, "mg")
    await publish(LAB_RESULTS.name, bad_unit)
    drawn = datetime.now(UTC) - timedelta(minutes=30)
    await publish(LAB_RESULTS.name, lab(patient_id, CA_MMOL, 3.40, "mmol/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, 30, "g/L", occurred_at=drawn))

    def letter(record: object) -> DeadLetter:
        return DeadLetter.model_validate_json(record.value)  # type: ignore[attr-defined]

    raw = await consume_until(
        kafka_bootstrap, DEAD_LETTER.name, lambda r: base64.b64decode(letter(r).value_b64 or "") == garbage
    )
    assert letter(raw).topic == LAB_RESULTS.name and letter(raw).service == "lab-normalisation"
    missing = await consume_until(
        kafka_bootstrap,
        DEAD_LETTER.name,
        lambda r: invalid["event_id"].encode() in base64.b64decode(letter(r).value_b64 or ""),
    )
    assert "occurred_at" in letter(missing).reason and letter(missing).error_type == "ValidationError"
    unit = await consume_until(
        kafka_bootstrap,
        DEAD_LETTER.name,
        lambda r: bad_unit["event_id"].encode() in base64.b64decode(letter(r).value_b64 or ""),
    )
    assert "unit 'mg' is not a unit of mmol/L" in letter(unit).reason
    # the good messages after them still went through (3.40 + 0.25 = 3.65 mmol/L)
    crisis = await wait_for(lambda: _crisis(stack, patient_id))
    assert next(i for i in crisis[0]["inputs"] if i["name"] == "corrected_calcium")["value"] == pytest.approx(3.65)


async def test_amended_result_withdraws_alert_and_late_result_does_not_overwrite(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    now = datetime.now(UTC)
    drawn = now - timedelta(hours=3)
    ca = lab(patient_id, CA_MMOL, 3.30, "mmol/L", result_id="CA-1", occurred_at=drawn, recorded_at=now)
    await publish(LAB_RESULTS.name, ca)
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, 28, "g/L", occurred_at=drawn))
    await wait_for(lambda: _rule(stack, patient_id, "LAB-CA-CRISIS"))

    amended = lab(
        patient_id,
        CA_MMOL,
        2.30,
        "mmol/L",
        result_id="CA-1",
        status="amended",
        occurred_at=drawn,
        recorded_at=now + timedelta(minutes=5),
    )
    await publish(LAB_RESULTS.name, amended)

    async def withdrawn() -> bool:
        return [a["status"] for a in await _crisis(stack, patient_id)] == ["withdrawn"]

    await wait_for(withdrawn)
    # the original version arriving late again (a new delivery, older recorded_at) changes nothing
    late = {**ca, "event_id": lab(patient_id, CA_MMOL, 1, "mmol/L")["event_id"]}
    await publish(LAB_RESULTS.name, late)
    # an older draw (crisis level) arriving after the newer normal one must not raise an alert either
    older = now - timedelta(hours=20)
    await publish(LAB_RESULTS.name, lab(patient_id, CA_MMOL, 3.9, "mmol/L", occurred_at=older))
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, 35, "g/L", occurred_at=older))
    marker = lab(patient_id, ALBUMIN, 40, "g/L", occurred_at=now)
    await publish(LAB_RESULTS.name, marker)  # processed after the others (same partition)

    async def marker_processed() -> bool:
        c = await outcomes(stack, "scoring", "osteocds.labs.normalised.v1", "processed")
        return c > 0 and await _lab_state_has(stack, patient_id, marker["result_id"])

    await wait_for(marker_processed)
    # no current crisis alert; the late crisis value is only said (info), naming the newer normal value
    statuses = [(a["severity"], a["status"]) for a in await _crisis(stack, patient_id)]
    assert ("critical", "active") not in statuses and ("critical", "withdrawn") in statuses

    async def late_notice() -> list[dict[str, Any]]:
        return [a for a in await _crisis(stack, patient_id) if a["status"] == "active"]

    [notice] = await wait_for(late_notice)
    assert notice["severity"] == "info" and "plus récente" in notice["text_fr"]


async def _lab_state_has(stack: RunningStack, patient_id: str, result_id: str) -> bool:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        raw = await r.get(f"osteocds:lab-normalisation:state:{patient_id}")
        if raw is None:
            return False
        return bool(result_id in json.loads(raw)["results"])
    finally:
        await r.aclose()


async def test_acknowledge_alert_records_the_token_user(stack: RunningStack, publish: Publish, patient_id: str) -> None:
    await publish(
        IMAGING_FINDINGS.name,
        event(
            patient_id,
            lesion_id="L-C5",
            skeletal_site="spine",
            vertebral_level="C5",
            modality="mri",
            cord_compression=True,
        ),
    )
    alert = (await wait_for(lambda: _rule(stack, patient_id, "RT-MSCC")))[0]
    async with httpx.AsyncClient(base_url=stack.urls["notification"], timeout=15) as c:
        # who acts comes from the token: a name in the body is refused, not taken
        forged = await c.post(
            f"/alerts/{alert['recommendation_id']}/ack",
            json={"patient_id": patient_id, "acknowledged_by": "dr-house"},
            headers=auth(CLINICIAN, "dr-wilson"),
        )
        assert forged.status_code == 422
        r = await c.post(
            f"/alerts/{alert['recommendation_id']}/ack",
            json={"patient_id": patient_id},
            headers=auth(CLINICIAN, "dr-wilson"),
        )
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert r.json()["acknowledged_by"] == "dr-wilson" and r.json()["history"][-1]["role"] == CLINICIAN
        again = await c.post(
            f"/alerts/{alert['recommendation_id']}/ack",
            json={"patient_id": patient_id},
            headers=auth(CLINICIAN, "dr-cuddy"),
        )
        assert again.status_code == 200 and again.json()["acknowledged_by"] == "dr-wilson"  # the first stays
        missing = await c.post(
            "/alerts/00000000-0000-0000-0000-000000000000/ack", json={"patient_id": patient_id}, headers=auth()
        )
        assert missing.status_code == 404
    listed = await alerts(stack, patient_id, status="acknowledged")
    assert [a["acknowledged_by"] for a in listed] == ["dr-wilson"]


async def test_health_readiness_and_metrics(stack: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=5) as c:
        for name, url in stack.urls.items():
            assert (await c.get(f"{url}/healthz")).json()["status"] == "ok", name
            ready = (await c.get(f"{url}/readyz")).json()
            assert ready["ready"] is True and ready["checks"]["redis"] and ready["checks"]["kafka"], name
            metrics = await c.get(f"{url}/metrics", headers=auth(OPS, "prometheus"))
            assert metrics.headers["content-type"].startswith("text/plain"), name
            assert "# HELP osteocds_messages_total" in metrics.text, name


async def test_logs_carry_no_patient_data(
    stack: RunningStack, publish: Publish, patient_id: str, stack_logs: Path
) -> None:
    drawn = datetime.now(UTC) - timedelta(hours=1)
    await publish(LAB_RESULTS.name, lab(patient_id, CA_MMOL, 3.77, "mmol/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, lab(patient_id, ALBUMIN, 28, "g/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, lab(patient_id, CA_MMOL, 9.77, "kg"))  # rejected: logged, no values
    await wait_for(lambda: _crisis(stack, patient_id))
    logs = "".join(p.read_text(errors="replace") for p in stack_logs.glob("*.log"))
    assert '"msg": "dead_lettered"' in logs and '"error_type": "Rejected"' in logs
    for line in logs.splitlines():
        if not line.startswith("{"):
            continue
        fields = json.loads(line)  # every log line is structured JSON
        fields.pop("ts")  # a timestamp may contain "9.77" by chance
        text = json.dumps(fields)
        assert patient_id not in text and "3.77" not in text and "9.77" not in text, text
