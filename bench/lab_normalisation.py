"""Messages per second that one lab-normalisation process sustains from a raw topic to its output topic,
for native JSON, FHIR R4 and HL7 v2.5, next to a pass-through handler on the same runtime (the
baseline), all measured in this run. Each format gets a fresh embedded broker and Redis.

    .venv/bin/python bench/lab_normalisation.py [--events 4000] [--rounds 3]

Each FHIR or HL7 message carries two results (calcium and albumin of one draw); a JSON message one.
Each format's baseline is a pass-through on the same topic and messages (JSON decoded into its model;
raw FHIR/HL7 taken as bytes). The RESULT line reports the format with the lowest ratio.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from bench.harness import Run, alternate, bench_settings, cli, consume_rate, passthrough, preload, result_line
from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import FHIR_R4, HL7V2, LAB_RESULTS, Topic
from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings
from shared import infra
from shared.service import Context, Service
from shared.settings import Settings

NOW = datetime.now(UTC)


def patient(i: int, n: int) -> str:
    return f"bench-{i % max(1, n // 10)}"


def json_docs(n: int) -> list[dict[str, object] | bytes]:
    out: list[dict[str, object] | bytes] = []
    for i in range(n):
        code, value, unit = (("17861-6", 9.8, "mg/dL"), ("1751-7", 31.0, "g/L"))[i % 2]
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "patient_id": patient(i // 2, n),
                "source": "bench",
                "occurred_at": (NOW - timedelta(hours=i // 2 % 500)).isoformat(),
                "recorded_at": NOW.isoformat(),
                "result_id": f"r-{i}",
                "code": {"system": "http://loinc.org", "code": code},
                "value": value,
                "unit": unit,
            }
        )
    return out


def fhir_docs(n: int) -> list[dict[str, object] | bytes]:
    def obs(i: int, code: str, value: float, unit: str, pid: str, at: str) -> dict[str, object]:
        return {
            "resource": {
                "resourceType": "Observation",
                "id": f"o{i}-{code}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": at,
                "issued": NOW.isoformat(),
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
            }
        }

    out: list[dict[str, object] | bytes] = []
    for i in range(n):
        pid, at = patient(i, n), (NOW - timedelta(hours=i % 500)).isoformat()
        body = {
            "resourceType": "Bundle",
            "id": f"b{i}",
            "type": "collection",
            "entry": [obs(i, "17861-6", 9.8, "mg/dL", pid, at), obs(i, "1751-7", 3.1, "g/dL", pid, at)],
        }
        out.append(json.dumps(body).encode() + b"\n" + pid.encode())  # key appended, split in preload
    return out


def hl7_docs(n: int) -> list[dict[str, object] | bytes]:
    out: list[dict[str, object] | bytes] = []
    for i in range(n):
        pid, at = patient(i, n), (NOW - timedelta(hours=i % 500)).strftime("%Y%m%d%H%M%S+0000")
        msg = "\r".join(
            [
                f"MSH|^~\\&|GLIMS|CHU|OSTEOCDS|CHU|{NOW:%Y%m%d%H%M%S}+0000||ORU^R01|C{i}|P|2.5",
                f"PID|1||{pid}^^^CHU^PI||***||19560402|M",
                f"OBR|1|P{i}|F{i}|BIOCHIM|||{at}",
                "OBX|1|NM|17861-6^Calcium^LN||9.8|mg/dL|||||F",
                "OBX|2|NM|1751-7^Albumine^LN||3.1|g/dL|||||F",
            ]
        )
        out.append(msg.encode() + b"\n" + pid.encode())
    return out


def echo(event: Message) -> Message:
    assert isinstance(event, LabResult)
    return NormalisedLab(
        event_id=derived_id("echo", event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source="bench",
        analyte="albumin",
        result_id=event.result_id,
        value=event.value,
        unit=event.unit or "",
    )


class RawEnvelope(BaseModel):
    """What the raw pass-through hands on: an ID for the record, and its patient key."""

    event_id: uuid.UUID
    patient_id: str


def raw_passthrough(settings: Settings, topic: Topic) -> Service:
    """Baseline for a raw topic: the same runtime, taking the record as it is (no parsing), one output each."""
    service = Service(settings)

    def decode(record: ConsumerRecord) -> RawEnvelope:
        rid = uuid.uuid5(uuid.NAMESPACE_OID, f"{record.topic}:{record.partition}:{record.offset}")
        return RawEnvelope(event_id=rid, patient_id=record.key.decode())

    @service.subscriber(topic, decode=decode)
    async def handler(event: RawEnvelope, ctx: Context) -> list[Message]:
        now = datetime.now(UTC)
        out = NormalisedLab(
            event_id=derived_id("echo", event.event_id),
            patient_id=event.patient_id,
            occurred_at=now,
            recorded_at=now,
            source="bench",
            analyte="albumin",
            result_id=str(event.event_id),
            value=1.0,
            unit="g/L",
        )
        return [out]

    return service


async def measure(
    topic: Topic, docs: list[dict[str, object] | bytes], name: str, make: Callable[[LabSettings], object]
) -> Run:
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        base = bench_settings(kafka, redis.url, "lab-normalisation")
        settings = LabSettings.model_validate(base.model_dump())
        await preload(settings, topic, docs)
        service = make(settings)
        return await consume_rate(service, topic, len(docs), name)  # type: ignore[arg-type]


async def main(n: int, rounds: int) -> None:
    formats: list[tuple[str, Topic, list[dict[str, object] | bytes], Callable[[LabSettings], object]]] = [
        ("json", LAB_RESULTS, json_docs(n), lambda s: passthrough(s, LAB_RESULTS, echo)),
        ("fhir", FHIR_R4, fhir_docs(n), lambda s: raw_passthrough(s, FHIR_R4)),
        ("hl7v2", HL7V2, hl7_docs(n), lambda s: raw_passthrough(s, HL7V2)),
    ]
    rows: list[tuple[str, Run, Run]] = []
    for name, topic, docs, baseline_service in formats:
        base, run = await alternate(
            rounds,
            lambda t=topic, d=docs, b=baseline_service, n=name: measure(t, d, f"pass-through {n}", b),  # type: ignore[misc]
            lambda t=topic, d=docs, n=name: measure(t, d, n, lambda s: build(s)[0]),  # type: ignore[misc]
        )
        rows.append((name, run, base))
        print(
            f"{name:<6} lab-normalisation {run.rate:8.1f} msg/s   pass-through {base.rate:8.1f} msg/s   "
            f"ratio {run.rate / base.rate:5.2f}   ({n} messages, median of {rounds} alternating rounds)",
            flush=True,
        )
    name, run, base = min(rows, key=lambda r: r[1].rate / r[2].rate)
    print(f"lowest ratio: {name}")
    print(result_line(f"lab_normalisation_{name}", run.rate, "msg/s", base.rate))


if __name__ == "__main__":
    cli(__doc__, main)
