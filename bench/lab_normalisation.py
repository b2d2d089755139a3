"""Messages per second that one lab-normalisation process sustains from a raw topic to its output topic,
for native JSON, FHIR R4 and HL7 v2.5, next to a pass-through handler on the same runtime (the
baseline), all measured in this run. Each service run gets a fresh embedded broker and Redis.

    .venv/bin/python bench/lab_normalisation.py [--events 4000] [--rounds 5]

Each FHIR or HL7 message carries two results (calcium and albumin of one draw); a JSON message one.
Each format's baseline is a pass-through on the same topic and messages (JSON decoded into its model;
raw FHIR/HL7 taken as bytes). The RESULT line reports the format with the lowest ratio.

For FHIR and HL7 it also measures, in the same rounds, two ceilings for one process:
- the parser floor: the mandated library call alone (fhir.resources Bundle validation, `hl7.parse`) per
  message. A process that does the pass-through's work plus that call cannot beat
  1 / (1 / pass-through rate + floor), whatever else is optimised;
- the same service with every message decoded in advance (the parsers' whole cost removed from the loop):
  the rate the rest of the path (aggregate, derivations, outputs) allows, e.g. if decoding moved elsewhere.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import hl7
from aiokafka.structs import ConsumerRecord
from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel

from bench.harness import (
    Run,
    alternate,
    bench_settings,
    cli,
    consume_rate,
    median_pair,
    passthrough,
    preload,
    result_line,
)
from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import FHIR_R4, HL7V2, LAB_RESULTS, Topic
from devstack import infra
from services.lab_normalisation.app import LabDecoder, build
from services.lab_normalisation.ingest import AnalyteMap, Ingested, from_fhir, from_hl7
from services.lab_normalisation.settings import LabSettings
from shared.clinical.clock import NotAfter
from shared.runtime.decoding import checks_own_dates
from shared.runtime.service import Service
from shared.runtime.subscription import Context
from shared.settings import Settings

Docs = list[dict[str, object] | bytes]
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

    @service.subscriber(topic, decode=checks_own_dates(decode))  # the baseline reads no clinical time
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


def payloads(docs: Docs) -> list[bytes]:
    return [d.rpartition(b"\n")[0] for d in docs if isinstance(d, bytes)]


def predecoded(settings: LabSettings, topic: Topic, docs: Docs) -> Service:
    """lab-normalisation with every message parsed before the run: the decoder only looks the result up."""
    analytes, tz = AnalyteMap.load(settings.lab_local_codes_file), ZoneInfo(settings.hospital_timezone)
    parse: Callable[[bytes], Ingested] = (
        (lambda raw: from_fhir(raw, analytes, NotAfter(NOW), tz))
        if topic is FHIR_R4
        else (lambda raw: from_hl7(raw, analytes, tz, NotAfter(NOW)))
    )
    ready = {raw: parse(raw) for raw in payloads(docs)}
    lookup: LabDecoder = lambda record: ready[record.value]  # noqa: E731
    return build(settings, {topic.name: lookup})[0]


PARSERS: dict[str, tuple[str, Callable[[bytes], object]]] = {
    FHIR_R4.name: ("fhir.resources Bundle validation", lambda raw: Bundle.model_validate(json.loads(raw))),
    HL7V2.name: ("hl7.parse", lambda raw: hl7.parse(raw.decode())),
}


def parser_floor(topic: Topic, docs: Docs) -> float:
    """Seconds per message of the mandated library call alone, in this process (no I/O)."""
    call = PARSERS[topic.name][1]
    raws = payloads(docs)
    t0 = time.perf_counter()
    for raw in raws:
        call(raw)
    return (time.perf_counter() - t0) / len(raws)


async def measure(topic: Topic, docs: Docs, name: str, make: Callable[[LabSettings], object]) -> Run:
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        base = bench_settings(kafka, redis.url, "lab-normalisation")
        settings = LabSettings.model_validate(base.model_dump())
        await preload(settings, topic, docs)
        service = make(settings)
        return await consume_rate(service, topic, len(docs), name)  # type: ignore[arg-type]


async def raw_rounds(
    rounds: int, name: str, topic: Topic, docs: Docs, baseline: Callable[[LabSettings], object]
) -> tuple[Run, Run, float, float, float]:
    """Like `alternate`, with the two ceilings measured in each round: the median pair, the median parser
    floor (s/message) and the median ceiling ratios (parser floor, decoded in advance) over the rounds."""
    pairs: list[tuple[Run, Run]] = []
    floors, ratios, pres = [], [], []
    for _ in range(rounds):
        base = await measure(topic, docs, f"pass-through {name}", baseline)
        pairs.append((base, await measure(topic, docs, name, lambda s: build(s)[0])))
        pre = await measure(topic, docs, f"{name} decoded in advance", partial(predecoded, topic=topic, docs=docs))
        floor = parser_floor(topic, docs)
        floors.append(floor)
        ratios.append(1 / (1 + base.rate * floor))  # 1 / (1 / rate + floor), as a ratio of the rate
        pres.append(pre.rate / base.rate)
    base, run = median_pair(pairs)
    return base, run, statistics.median(floors), statistics.median(ratios), statistics.median(pres)


async def main(n: int, rounds: int) -> None:
    formats: list[tuple[str, Topic, Docs, Callable[[LabSettings], object]]] = [
        ("json", LAB_RESULTS, json_docs(n), lambda s: passthrough(s, LAB_RESULTS, echo)),
        ("fhir", FHIR_R4, fhir_docs(n), lambda s: raw_passthrough(s, FHIR_R4)),
        ("hl7v2", HL7V2, hl7_docs(n), lambda s: raw_passthrough(s, HL7V2)),
    ]
    rows: list[tuple[str, Run, Run]] = []
    for name, topic, docs, baseline_service in formats:
        ceilings: tuple[float, float, float] | None = None
        if topic.name not in PARSERS:
            base, run = await alternate(
                rounds,
                lambda t=topic, d=docs, b=baseline_service, n=name: measure(t, d, f"pass-through {n}", b),  # type: ignore[misc]
                lambda t=topic, d=docs, n=name: measure(t, d, n, lambda s: build(s)[0]),  # type: ignore[misc]
            )
        else:
            base, run, floor, floor_ratio, pre_ratio = await raw_rounds(rounds, name, topic, docs, baseline_service)
            ceilings = (floor, floor_ratio, pre_ratio)
        rows.append((name, run, base))
        print(
            f"{name:<6} lab-normalisation {run.rate:8.1f} msg/s   pass-through {base.rate:8.1f} msg/s   "
            f"ratio {run.rate / base.rate:5.2f}   ({n} messages, median pair of {rounds} rounds)",
            flush=True,
        )
        if ceilings is not None:
            print(
                f"       ceilings for one process (medians): {PARSERS[topic.name][0]} alone {ceilings[0] * 1e6:.0f} "
                f"us/msg (pass-through whole path {1e6 / base.rate:.0f} us/msg) on top of the pass-through, "
                f"ratio {ceilings[1]:.2f}; every message decoded in advance, ratio {ceilings[2]:.2f}",
                flush=True,
            )
    name, run, base = min(rows, key=lambda r: r[1].rate / r[2].rate)
    print(f"lowest ratio: {name}")
    print(result_line(f"lab_normalisation_{name}", run.rate, "msg/s", base.rate))


if __name__ == "__main__":
    cli(__doc__, main)
