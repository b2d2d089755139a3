"""Kafka and HTTP adapters of lab-normalisation around the pure parsers and rules.

Kafka: hospital.lab-results.v1 (JSON), hospital.patient-records.v1, hospital.fhir-r4.v1 and
hospital.hl7v2.v1 all become one `Ingested` per message, applied to the patient's lab aggregate.
HTTP: POST /fhir and POST /hl7v2 parse and check the payload first (4xx / HL7 AR or AE with the reasons),
then publish it unchanged to its raw topic, keyed by patient, so it takes the same path as the bus.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from contracts.clinical import NormalisedLab
from contracts.topics import FHIR_R4, HL7V2, LAB_RESULTS, PATIENT_RECORDS
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import (
    AnalyteMap,
    Ingested,
    from_fhir,
    from_hl7,
    from_json_lab,
    from_json_patient,
    hl7_ack,
    hl7_header,
    hl7_text,
)
from services.lab_normalisation.settings import LabSettings
from shared.errors import Rejected
from shared.http import create_app
from shared.service import Service

HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"


def received_at(record: ConsumerRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


LabDecoder = Callable[[ConsumerRecord], Ingested]


def build(settings: LabSettings, decoders: dict[str, LabDecoder] | None = None) -> tuple[Service, FastAPI]:
    """The service and its HTTP app. `decoders` (topic -> decoder) replaces the parsers; only the benchmark
    uses it, to measure the rest of the path with decoding done in advance."""
    service = Service(settings)
    analytes = AnalyteMap.load(settings.lab_local_codes_file)
    tz = ZoneInfo(settings.hospital_timezone)
    cfg = LabConfig(
        ca_albumin_window=timedelta(hours=settings.ca_albumin_window_hours),
        hospital_tz=tz,
        retention=timedelta(days=settings.lab_retention_days),
    )
    ignored = service.metrics.messages

    def apply(state: LabState, batch: Ingested) -> tuple[LabState, list[NormalisedLab]]:
        if batch.ignored:
            ignored.labels(service.name, "ingest", "ignored_result").inc(len(batch.ignored))
        return apply_ingested(state, batch, cfg)

    parsers: dict[str, LabDecoder] = {
        LAB_RESULTS.name: lambda r: from_json_lab(r.value, analytes),
        PATIENT_RECORDS.name: lambda r: from_json_patient(r.value),
        FHIR_R4.name: lambda r: from_fhir(r.value, analytes, received_at(r)),
        HL7V2.name: lambda r: from_hl7(r.value, analytes, tz),
    }
    parsers = {topic: limited(parse, settings.max_results_per_message) for topic, parse in parsers.items()}
    parsers.update(decoders or {})
    for topic in (LAB_RESULTS, PATIENT_RECORDS, FHIR_R4, HL7V2):
        service.patient_aggregate(
            (topic,), LabState, apply, decode=parsers[topic.name], idempotency_key=lambda m: m.key
        )

    router = APIRouter(tags=["ingestion"])

    async def publish(topic: str, raw: bytes, batch: Ingested, at: datetime) -> None:
        # the record timestamp is the receipt time the consumer uses, so both parses give the same IDs
        ack = await service.producer.send_raw(topic, raw, batch.patient_id.encode(), int(at.timestamp() * 1000))
        await ack

    @router.post("/fhir", status_code=202)
    async def post_fhir(request: Request) -> JSONResponse:
        """A FHIR R4 Observation, Patient or Bundle (one patient). 202 with the event IDs it will produce;
        422 with an OperationOutcome when nothing in it can be used."""
        raw = await request.body()
        now = datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000)
        try:
            check_results(raw, settings.max_results_per_message)
            batch = await asyncio.to_thread(from_fhir, raw, analytes, now)  # off the event loop
        except Rejected as exc:
            return JSONResponse(_outcome([str(exc)]), status_code=422, media_type="application/fhir+json")
        if not batch.labs and not batch.patients:
            return JSONResponse(_outcome(batch.rejections + batch.ignored), 422, media_type="application/fhir+json")
        await publish(FHIR_R4.name, raw, batch, now)
        return JSONResponse(
            {"event_ids": [str(e) for e in batch.event_ids()], "rejected": batch.rejections, "ignored": batch.ignored},
            status_code=202,
        )

    @router.post("/hl7v2")
    async def post_hl7v2(request: Request) -> Response:
        """An HL7 v2.5 ORU^R01. Answers an HL7 ACK: AA (200), AE with one ERR per rejected OBX (422; the
        good results are accepted), or AR when the message cannot be used (400)."""
        raw = await request.body()
        header = hl7_header(_MSH.split(_safe_text(raw), maxsplit=1)[0])  # the MSH alone: cheap for any size
        try:
            check_results(raw, settings.max_results_per_message)
            batch = await asyncio.to_thread(from_hl7, raw, analytes, tz)  # off the event loop
        except Rejected as exc:
            return Response(hl7_ack(header, "AR", [str(exc)]), status_code=400, media_type=HL7_MEDIA_TYPE)
        if batch.labs or batch.patients:
            await publish(HL7V2.name, raw, batch, datetime.now(UTC))
        if batch.rejections:
            return Response(hl7_ack(header, "AE", batch.rejections), status_code=422, media_type=HL7_MEDIA_TYPE)
        return Response(hl7_ack(header, "AA"), status_code=200, media_type=HL7_MEDIA_TYPE)

    return service, create_app(service, [router])


_MSH = re.compile(r"[\r\n]")
_RESULTS = re.compile(rb'(?:^|[\r\n])OBX\||"resourceType"\s*:\s*"Observation"')


def check_results(raw: bytes, limit: int) -> None:
    """Refuse a message with more results (HL7 OBX segments, FHIR Observations) than `limit`, counted
    before parsing: the parsers' cost and the outputs grow with it."""
    count = sum(1 for _ in _RESULTS.finditer(raw))
    if count > limit:
        raise Rejected(f"{count} results in one message, above MAX_RESULTS_PER_MESSAGE={limit}")


def limited(parse: LabDecoder, limit: int) -> LabDecoder:
    def decode(record: ConsumerRecord) -> Ingested:
        check_results(record.value, limit)
        return parse(record)

    return decode


def _safe_text(raw: bytes) -> str:
    try:
        return hl7_text(raw)
    except Rejected:
        return ""


def _outcome(problems: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": p} for p in problems]
        or [{"severity": "error", "code": "processing", "diagnostics": "nothing usable in this message"}],
    }
