"""Issue 13, "A single message must never take a service down": each finding as a regression test through the
real stack (broker, Redis, the five services as processes). Before the fix, each of these inputs made the
service's dead letter larger than the producer's request limit: the send failed, the loop stopped, and every
restart read the same record again (a crash loop)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.clinical import DeadLetter
from contracts.topics import DEAD_LETTER, LAB_RESULTS, RECOMMENDATIONS
from devstack.stack import RunningStack
from shared.web.auth import INTEGRATION
from tests.conftest import Publish, auth, consume_until, lab, wait_for
from tests.e2e.test_lab_ingestion import crisis, fhir_bundle

pytestmark = pytest.mark.e2e


def letter_for(key: str, topic: str) -> Any:
    def match(record: Any) -> bool:
        doc = DeadLetter.model_validate_json(record.value)
        return doc.topic == topic and doc.key_b64 == base64.b64encode(key.encode()).decode()

    return match


async def crisis_still_alerts(stack: RunningStack, publish: Publish) -> None:
    """The pipeline still works after the bad record: another patient's hypercalcaemic crisis is alerted."""
    other = f"pt-{uuid.uuid4().hex[:12]}"
    await publish(LAB_RESULTS.name, lab(other, "2000-8", 3.5, "mmol/L"))
    await publish(LAB_RESULTS.name, lab(other, "1751-7", 30, "g/L"))
    await wait_for(lambda: crisis(stack, other), timeout=30)
    async with httpx.AsyncClient(timeout=5) as c:
        for url in stack.urls.values():
            assert (await c.get(f"{url}/healthz")).status_code == 200
    assert all(p.poll() is None for p in stack.procs.values()), "a service exited"


async def test_a_5mb_input_is_dead_lettered_within_the_request_limit(
    stack: RunningStack, publish: Publish, kafka_bootstrap: str, kafka_settings: dict[str, str], patient_id: str
) -> None:
    value = json.dumps({"patient_id": patient_id, "pad": "x" * 5_000_000}).encode()
    big = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        max_request_size=8_000_000,
        enable_idempotence=kafka_settings.get("KAFKA_ENABLE_IDEMPOTENCE", "true") == "true",
    )
    await big.start()
    try:
        await big.send_and_wait(LAB_RESULTS.name, value, key=patient_id.encode())
    finally:
        await big.stop()
    record = await consume_until(kafka_bootstrap, DEAD_LETTER.name, letter_for(patient_id, LAB_RESULTS.name), 30)
    letter = DeadLetter.model_validate_json(record.value)
    assert len(record.value) < 1_048_576
    assert letter.error_type == "TooLarge" and "MAX_MESSAGE_BYTES" in letter.reason
    assert letter.value_truncated and letter.value_size == len(value)
    assert letter.value_sha256 == hashlib.sha256(value).hexdigest()
    assert value.startswith(base64.b64decode(letter.value_b64 or ""))  # the head of the original, said to be cut
    await crisis_still_alerts(stack, publish)


async def test_an_800kb_message_on_recommendations_is_dead_lettered_and_notification_goes_on(
    stack: RunningStack, publish: Publish, kafka_bootstrap: str, patient_id: str
) -> None:
    await publish(RECOMMENDATIONS.name, {"patient_id": patient_id, "title": "x" * 800_000})
    record = await consume_until(kafka_bootstrap, DEAD_LETTER.name, letter_for(patient_id, RECOMMENDATIONS.name), 30)
    letter = DeadLetter.model_validate_json(record.value)
    assert letter.service == "notification" and letter.error_type == "ValidationError"
    assert letter.value_truncated and (letter.value_size or 0) > 800_000
    await crisis_still_alerts(stack, publish)


async def test_an_870kb_fhir_bundle_over_http_with_one_bad_result(
    stack: RunningStack, publish: Publish, kafka_bootstrap: str, patient_id: str
) -> None:
    doc = fhir_bundle(patient_id)
    bad = json.loads(json.dumps(doc["entry"][1]))  # a copy of the calcium, in an unknown unit, with a long note
    bad["resource"].update(id=f"obs-bad-{patient_id}", note=[{"text": "n" * 870_000}])
    bad["resource"]["valueQuantity"].update(unit="furlongs", code="furlongs")
    doc["entry"].append(bad)
    body = json.dumps(doc).encode()
    assert 870_000 < len(body) < 1_000_000
    async with httpx.AsyncClient(timeout=30, headers=auth(INTEGRATION)) as c:
        r = await c.post(
            f"{stack.urls['lab-normalisation']}/fhir", content=body, headers={"content-type": "application/fhir+json"}
        )
    assert r.status_code == 202 and len(r.json()["rejected"]) == 1
    record = await consume_until(kafka_bootstrap, DEAD_LETTER.name, letter_for(patient_id, "hospital.fhir-r4.v1"), 30)
    letter = DeadLetter.model_validate_json(record.value)
    assert letter.error_type == "PartiallyRejected" and letter.value_truncated and letter.value_size == len(body)
    await wait_for(lambda: crisis(stack, patient_id), timeout=30)  # the good results of the same bundle count
    await crisis_still_alerts(stack, publish)


@pytest.mark.parametrize("key", [None, b"pt-someone-else"])
async def test_a_key_that_is_not_the_patient_id_is_dead_lettered_with_the_reason(
    stack: RunningStack, producer: AIOKafkaProducer, kafka_bootstrap: str, patient_id: str, key: bytes | None
) -> None:
    doc = lab(patient_id, "2000-8", 3.5, "mmol/L")
    await producer.send_and_wait(LAB_RESULTS.name, json.dumps(doc).encode(), key=key)

    def match(record: Any) -> bool:
        letter = DeadLetter.model_validate_json(record.value)
        return letter.topic == LAB_RESULTS.name and base64.b64decode(letter.value_b64 or "") == json.dumps(doc).encode()

    letter = DeadLetter.model_validate_json((await consume_until(kafka_bootstrap, DEAD_LETTER.name, match, 30)).value)
    assert letter.error_type == ("MissingKey" if key is None else "KeyMismatch")
    assert "patient_id" in letter.reason and patient_id not in letter.reason and "someone" not in letter.reason
