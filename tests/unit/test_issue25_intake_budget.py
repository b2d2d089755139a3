"""Issue 25 (intake): the per-patient and per-source admission budget. The pure arithmetic, then the real service
(its HTTP app in process, its consumer on a broker of its own, Redis): over HTTP the excess is answered 429 with
Retry-After (FHIR "throttled", HL7 AR), other patients go on; on the Kafka path the excess is dead-lettered with the
reason; what HTTP admitted is never refused again on the bus; a metric counts each refusal."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import given
from hypothesis import strategies as st

from contracts.clinical import DeadLetter
from contracts.topics import DEAD_LETTER, HL7V2
from devstack import infra, issuer
from services.lab_normalisation.admission import Budget, IntakeWindow, admit
from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings
from shared.web.auth import INTEGRATION, OPS
from tests.conftest import consume_until, token

pytestmark = pytest.mark.e2e
BUDGET = Budget(window_ms=60_000, per_patient=1000, per_source=5000)
WINDOW_S = 2**31  # the service's window in the flood test below


# ---- the arithmetic ---------------------------------------------------------------------------------------------
@given(sizes=st.lists(st.integers(1, 500), min_size=1, max_size=60), start=st.integers(0, 10**12))
def test_a_window_admits_while_below_the_budget_and_at_most_one_message_over(sizes: list[int], start: int) -> None:
    at = start - start % BUDGET.window_ms  # one window
    w: IntakeWindow | None = None
    admitted: list[int] = []
    for n in sizes:
        after = admit(w, BUDGET, BUDGET.per_patient, at, n)
        if after is None:
            assert w is not None and w.results >= BUDGET.per_patient  # refused only once the budget is spent
        else:
            admitted.append(n)
            w = after
    assert admitted and admitted[0] == sizes[0]  # an empty window always admits one message
    assert sum(admitted) < BUDGET.per_patient + max(sizes)
    assert sum(admitted) == (w.results if w else 0)


def test_a_new_window_starts_from_zero_and_says_when() -> None:
    full = IntakeWindow(window=BUDGET.window(59_000), results=1000)
    assert admit(full, BUDGET, 1000, 59_000, 1) is None and BUDGET.retry_after_s(59_000) == 1
    assert admit(full, BUDGET, 1000, 60_000, 499) == IntakeWindow(window=1, results=499)
    assert "send it again in 60 s" in BUDGET.reason("patient", 1000, 1000, 60_000)


# ---- the real service --------------------------------------------------------------------------------------------
def oru(patient: str, results: int, control: str | None = None, order: int = 0) -> bytes:
    """`order` k > 0: another order (filler ID) drawn k minutes later: new results, never versions of earlier ones."""
    assert 0 <= order < 20
    obx = [f"OBX|{i}|NM|2000-8^Ca^LN|{i}|2.4|mmol/L|||||F" for i in range(1, results + 1)]
    msh = f"MSH|^~\\&|LAB|BUDGET-LAB|OSTEOCDS|CHU|20261127091231+0100||ORU^R01|{control or uuid.uuid4().hex[:12]}|P|2.5"
    pid = f"PID|1||{patient}^^^CHU^PI"
    obr = f"OBR|1|P{order + 1}|F{order + 1}|CHEM|||2026112707{40 + order}00+0100"
    return "\r".join([msh, pid, obr, *obx]).encode()


def fhir(patient: str) -> bytes:
    obs = {
        "resourceType": "Observation",
        "id": f"ca-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2000-8"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-27T08:00:00+01:00",
        "valueQuantity": {"value": 2.4, "unit": "mmol/L", "code": "mmol/L"},
    }
    return json.dumps(obs).encode()


@contextlib.asynccontextmanager
async def service(
    bootstrap: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, local: issuer.LocalIssuer
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    for k, v in local.env().items():
        monkeypatch.setenv(k, v)
    name = f"lab-budget-{uuid.uuid4().hex[:6]}"
    doc: dict[str, object] = {k.lower(): v for k, v in infra.EMBEDDED_KAFKA_SETTINGS.items()}
    doc.update(
        service_name=name,
        kafka_bootstrap_servers=bootstrap,
        redis_url=redis_url,
        mllp_port=0,
        # one window for the whole test: windows are fixed, counted from the epoch (Budget.window), so an hour-long one
        # ended at the next full hour (a CI run across 08:00 admitted the flood's 4th message); 2**31 s: the next
        # boundary is in 2038
        intake_budget_window_s=WINDOW_S,
        intake_patient_results_per_window=500,
        intake_source_results_per_window=1200,
    )
    _, app = build(LabSettings.model_validate(doc))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lab", timeout=30) as client:
            yield client, name


def integration(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(INTEGRATION, user)}"}


async def refused_count(client: httpx.AsyncClient, path: str, scope: str) -> float:
    text = (await client.get("/metrics", headers={"Authorization": f"Bearer {token(OPS, 'ops')}"})).text
    want = f'path="{path}",scope="{scope}"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("osteocds_intake_budget_refused_total{") and want in line
    )


async def test_the_budget_refuses_a_flood_visibly_on_http_and_on_the_bus(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, local_issuer: issuer.LocalIssuer
) -> None:
    with infra.local_tansu() as bootstrap:
        async with service(bootstrap, redis_url, monkeypatch, local_issuer) as (client, _):
            flood, other, third = (f"pt-{uuid.uuid4().hex[:10]}" for _ in range(3))
            feed = integration(f"feed-{uuid.uuid4().hex[:6]}")
            hl7 = {**feed, "Content-Type": "x-application/hl7-v2+er7"}
            # one patient's flood of 200-result messages: 0, 200, 400 admitted; at 600 >= 500 refused
            answers = [await client.post("/hl7v2", content=oru(flood, 200), headers=hl7) for _ in range(5)]
            assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
            refused = answers[3]
            assert "MSA|AR|" in refused.text and "admission budget exceeded" in refused.text
            assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW_S
            # FHIR for the same patient: 429, an OperationOutcome "throttled"
            r = await client.post("/fhir", content=fhir(flood), headers=feed)
            assert r.status_code == 429 and r.json()["issue"][0]["code"] == "throttled" and "Retry-After" in r.headers
            # another patient of the same feed is not delayed: admitted
            assert (await client.post("/hl7v2", content=oru(other, 200), headers=hl7)).status_code == 200
            assert (await client.post("/hl7v2", content=oru(other, 200), headers=hl7)).status_code == 200
            assert (await client.post("/hl7v2", content=oru(other, 200), headers=hl7)).status_code == 200
            # the feed has had 1200 results this window: its next message, for anyone, is refused (per source)...
            r = await client.post("/hl7v2", content=oru(third, 10), headers=hl7)
            assert r.status_code == 429 and "for this source" in r.text
            # ...while another source still sends for that patient
            assert (
                await client.post("/fhir", content=fhir(third), headers=integration("other-feed"))
            ).status_code == 202
            assert await refused_count(client, "http", "patient") == 3  # the flood: 2 HL7, 1 FHIR
            assert await refused_count(client, "http", "source") == 1
            # a spent budget refuses before the results are parsed (a flood's refused messages cost no parse): a
            # message for the flooding patient whose results would be refused as unreadable is answered 429
            unreadable = oru(flood, 3).replace(b"|2.4|mmol/L|", b"|two|furlongs|")
            other_feed = {**integration("other-feed"), "Content-Type": "x-application/hl7-v2+er7"}
            r = await client.post("/hl7v2", content=unreadable, headers=other_feed)
            assert r.status_code == 429 and "admission budget exceeded" in r.text, r.text
            assert await refused_count(client, "http", "patient") == 4

            # the bus: what HTTP admitted is applied; a patient's own flood on the topic is dead-lettered (bus
            # budget: 500 + one message of 500 = 1000: 0, 300, 600, 900 admitted; at 1200 refused)
            bus = f"pt-{uuid.uuid4().hex[:10]}"
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            try:
                for order in range(5):  # five orders of new results (a resent order's results whose stamps
                    # were evicted are dead-lettered as unplaceable before any budget: HAZ-25-LAB-02)
                    await producer.send_and_wait(HL7V2.name, oru(bus, 300, order=order), key=bus.encode())
            finally:
                await producer.stop()
            letters: list[DeadLetter] = []

            def budget_letter(record: Any) -> bool:
                letter = DeadLetter.model_validate_json(record.value)
                letters.append(letter)
                return "admission budget exceeded" in letter.reason

            record = await consume_until(bootstrap, DEAD_LETTER.name, budget_letter, timeout=90)
            letter = DeadLetter.model_validate_json(record.value)
            assert letter.topic == HL7V2.name and letter.error_type == "Rejected"
            assert "INTAKE_PATIENT_RESULTS_PER_WINDOW=1000" in letter.reason and letter.value_b64  # nothing lost
            keys = {letter.key_b64 for letter in letters}
            assert all(base64.b64decode(k or "").decode() not in (flood, other) for k in keys)  # HTTP's admitted
            await _until(lambda: refused_count(client, "kafka", "patient"), 1)


async def _until(read: Any, at_least: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (got := await read()) < at_least:
        assert time.monotonic() < deadline, f"{got} < {at_least}"
        await asyncio.sleep(0.2)
