"""Kafka, HTTP and MLLP adapters of lab-normalisation around the pure parsers and rules.

Kafka: hospital.lab-results.v1 (JSON), hospital.patient-records.v1, hospital.fhir-r4.v1 and
hospital.hl7v2.v1 all become one `Ingested` per message, applied to the patient's lab aggregate.
HTTP (POST /fhir, POST /hl7v2) and MLLP (HL7 v2 over TCP, `mllp.py`) parse and check the payload first
(4xx / HL7 AR or AE with the reasons), then publish it unchanged to its raw topic, keyed by patient, with
the receipt time as the record timestamp, so it takes the same path, and gets the same verdict, as the bus.
MLLP (issue 24) is TLS with client certificates, each bound to the MSH-3/4 it may send for (`mllp.py`);
plaintext only on opt-in on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path as PathLib
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import Counter

from contracts.base import PatientId
from contracts.clinical import NormalisedLab
from contracts.topics import FHIR_R4, HL7V2, LAB_RESULTS, PATIENT_RECORDS
from services.lab_normalisation.admission import Budget, Path, admit
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.fhir import resource_type
from services.lab_normalisation.forms import FORMS
from services.lab_normalisation.forms.fhir import bundle, questionnaire
from services.lab_normalisation.forms.response import Refused, read_response
from services.lab_normalisation.hl7_acks import AckCode, Hl7Answer, ack_codec, ack_mode, ack_wanted, commit_code
from services.lab_normalisation.hl7_segments import Hl7Message, header_of
from services.lab_normalisation.hl7v2 import patient_of_hl7
from services.lab_normalisation.ingest import (
    PATIENT_ID,
    AnalyteMap,
    Ingested,
    Nothing,
    Verdict,
    fhir_verdict,
    from_fhir,
    from_hl7,
    from_json_lab,
    from_json_patient,
    hl7_ack,
    hl7_verdict,
)
from services.lab_normalisation.intake_budget import BudgetMetrics, IntakeBudget
from services.lab_normalisation.loinc import LOINC_SHAPE
from services.lab_normalisation.mllp import (
    MllpListener,
    MllpMetrics,
    SenderPolicy,
    serve_mllp,
)
from services.lab_normalisation.mllp_intake import allowed_senders, mllp_config, mllp_handlers
from services.lab_normalisation.settings import LabSettings
from shared.clinical.clock import NotAfter
from shared.errors import Rejected
from shared.runtime.decoding import checks_own_dates
from shared.runtime.service import Service
from shared.web.auth import CLINICIAN, CLINICIAN_ENTRY, INTEGRATION, Principal, public, record_audit, require
from shared.web.http import create_app
from shared.web.signin import SignInConfig
from shared.web.signin import install as install_signin

log = logging.getLogger(__name__)
#: one dependency object for the router and the routes that need the caller (FastAPI verifies the token once)
INTEGRATION_PRINCIPAL = require(INTEGRATION)
#: issue 23: POST /fhir also takes a clinician's QuestionnaireResponse (the resource type decides which role it needs)
FHIR_PRINCIPAL = require(INTEGRATION, CLINICIAN_ENTRY)
FORMS_PAGE = PathLib(__file__).with_name("static") / "forms.html"
#: issue 23: the path prefix of the forms (a patient ID follows); the shared sign-in returns there (no SMART launch:
#: the forms are opened from the clinicians' page, the patient in the path)
FORMS_PATH = "/ui/saisie/patients/"
HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
MAX_CODE_LABELS = 500


def received_at(record: ConsumerRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


LabDecoder = Callable[[ConsumerRecord], Ingested]


class LabService(Service):
    """The runtime's service, with the MLLP listener's state in its readiness (issue 24)."""

    def __init__(self, settings: LabSettings) -> None:
        super().__init__(settings)
        #: None: MLLP off; else the listener's problem, "" while it listens
        self.mllp_problem: Callable[[], str | None] = lambda: None

    async def readiness(self) -> dict[str, bool]:
        checks = await super().readiness()
        problem = self.mllp_problem()
        if problem is not None:
            checks["mllp" if not problem else f"mllp: {problem}"] = not problem
        return checks


class UnmappedCodes:
    """Unknown codes that look like an analyte we use (issue 12): a counter labelled by code (LOINC-shaped
    codes only, at most MAX_CODE_LABELS distinct labels, then "other"; local codes as "local") and a log
    line naming the code. Codes carry no patient data."""

    def __init__(self, service: Service) -> None:
        self.counter = Counter(
            "osteocds_lab_unmapped_codes_total",
            "Unknown lab codes whose name looks like an analyte the rules use",
            ["service", "code"],
            registry=service.metrics.registry,
        )
        self.service = service.name
        self.labels: set[str] = set()

    def count(self, codes: list[str]) -> None:
        for code in codes:
            label = code if LOINC_SHAPE.match(code) else "local"
            if label not in self.labels and len(self.labels) >= MAX_CODE_LABELS:
                label = "other"
            self.labels.add(label)
            self.counter.labels(self.service, label).inc()
            log.warning("unmapped lab code that looks relevant", extra={"code": code[:80]})


def build(settings: LabSettings, decoders: dict[str, LabDecoder] | None = None) -> tuple[Service, FastAPI]:
    """The service and its HTTP app (with the MLLP listener in its lifespan). `decoders` (topic -> decoder)
    replaces the parsers; only the benchmark uses it, to measure the rest of the path with decoding done in
    advance."""
    service = LabService(settings)
    analytes = AnalyteMap.load(settings.lab_local_codes_file)
    tz = ZoneInfo(settings.hospital_timezone)
    skew = timedelta(seconds=settings.clock_skew_tolerance_seconds)
    cfg = LabConfig(
        ca_albumin_window=timedelta(hours=settings.ca_albumin_window_hours),
        hospital_tz=tz,
        retention=timedelta(days=settings.lab_retention_days),
        per_analyte=settings.lab_results_per_analyte,
        stamps=settings.lab_result_stamps,
        weight_max_age=timedelta(days=settings.weight_max_age_days),
    )
    ignored = service.metrics.messages
    unmapped = UnmappedCodes(service)

    budget = Budget(
        int(settings.intake_budget_window_s * 1000),
        settings.intake_patient_results_per_window,
        settings.intake_source_results_per_window,
    )
    budget_metrics = BudgetMetrics(service.metrics.registry, service.name)
    # what HTTP and MLLP admitted (up to one message over the budget) is never refused again on the bus
    bus_limit = budget.per_patient + settings.max_results_per_message

    def apply(state: LabState, batch: Ingested) -> tuple[LabState, list[NormalisedLab]]:
        if budget.per_patient > 0 and batch.received_ms > 0:  # issue 25: deterministic (the record's timestamp)
            window = admit(state.intake, budget, bus_limit, batch.received_ms, batch.results)
            if window is None:
                budget_metrics.count("kafka", "patient")
                admitted = state.intake.spent(budget, batch.received_ms) if state.intake is not None else 0
                raise Rejected(budget.reason("patient", admitted, bus_limit, batch.received_ms))
            state = state.model_copy(update={"intake": window})
        if batch.ignored:
            ignored.labels(service.name, "ingest", "ignored_result").inc(len(batch.ignored))
        if batch.unmapped:
            unmapped.count(batch.unmapped)
        return apply_ingested(state, batch, cfg)

    def guard(r: ConsumerRecord) -> NotAfter:
        return NotAfter.of_record(r, skew)

    parsers: dict[str, LabDecoder] = {
        LAB_RESULTS.name: lambda r: from_json_lab(r.value, analytes, guard(r)),
        PATIENT_RECORDS.name: lambda r: from_json_patient(r.value, guard(r)),
        FHIR_R4.name: lambda r: _fhir_record(r, analytes, guard(r), tz),
        HL7V2.name: lambda r: from_hl7(r.value, analytes, tz, guard(r)),
    }
    parsers = {topic: limited(parse, settings.max_results_per_message) for topic, parse in parsers.items()}
    parsers.update(decoders or {})
    for topic in (LAB_RESULTS, PATIENT_RECORDS, FHIR_R4, HL7V2):
        service.patient_aggregate(
            (topic,), LabState, apply, decode=checks_own_dates(parsers[topic.name]), idempotency_key=lambda m: m.key
        )

    async def publish(topic: str, raw: bytes, batch: Ingested, at: datetime) -> None:
        # the record timestamp is the receipt time the consumer uses, so both parses give the same verdict
        ack = await service.producer.send_raw(topic, raw, batch.patient_id.encode(), int(at.timestamp() * 1000))
        await ack

    receiving = (settings.hl7_receiving_application, settings.hl7_receiving_facility)
    counts = IntakeBudget(service.redis, service.name, budget, budget_metrics)

    def answer(header: Hl7Message, code: AckCode, reasons: list[str], status: int, send: bool = True) -> Hl7Answer:
        ack = hl7_ack(header, code, reasons, receiving=receiving)
        return Hl7Answer(ack, code, status, send, ack_codec(header))

    async def admission(path: Path, source: str, size: int, at: datetime, verdict: Verdict) -> str | None:
        """Issue 25: the source's budget (then the patient's) for a message about to be published; None when
        admitted. A message not published takes nothing."""
        at_ms = int(at.timestamp() * 1000)
        if not verdict.publish:
            return None
        assert verdict.batch is not None
        if (refused := await counts.take(path, "source", source, size, at_ms)) is not None:
            return refused
        if (refused := await counts.take(path, "patient", verdict.batch.patient_id, size, at_ms)) is not None:
            await counts.give_back("source", source, size, at_ms)
        return refused

    async def handle_hl7(raw: bytes, source: str, path: Path = "http") -> Hl7Answer:
        """POST /hl7v2 and MLLP: the same checks (`hl7_verdict`), then the same raw topic. The acknowledgement
        mode (MSH-15/16) chooses the ACK: application (AA/AE/AR) or accept (CA/CE/CR), or none (MLLP)."""
        now = _now_ms()
        header = header_of(raw)  # the MSH alone: cheap for any size
        mode, refusal = ack_mode(header)
        if refusal is not None:
            return answer(header, "AR", [refusal], 400)
        code: AckCode = "CR" if mode == "accept" else "AR"
        try:
            size = check_results(raw, settings.max_results_per_message)
        except Rejected as exc:
            return answer(header, code, [str(exc)], 400, ack_wanted(header, mode, False))
        # issue 25: a source or patient whose budget is already spent is refused before its results are parsed
        # (a flood's refused messages cost no parse: the CPU goes to the other patients' results)
        at_ms = int(now.timestamp() * 1000)
        refused = await counts.spent(path, "source", source, at_ms)
        if refused is None and (patient := patient_of_hl7(raw, analytes)) is not None:
            refused = await counts.spent(path, "patient", patient, at_ms)
        if refused is not None:
            got = answer(header, code, [refused], 429, ack_wanted(header, mode, False))
            return replace(got, retry_after=budget.retry_after_s(at_ms))
        verdict = await asyncio.to_thread(hl7_verdict, raw, analytes, tz, NotAfter(now, skew))  # off the loop
        if (refused := await admission(path, source, size, now, verdict)) is not None:
            got = answer(header, code, [refused], 429, ack_wanted(header, mode, False))
            return replace(got, retry_after=budget.retry_after_s(int(now.timestamp() * 1000)))
        if verdict.publish:
            assert verdict.batch is not None
            await publish(HL7V2.name, raw, verdict.batch, now)
        elif verdict.batch is not None:  # not published, so not counted by the consumer: counted here
            unmapped.count(verdict.batch.unmapped)
        code = commit_code(verdict.code, verdict.publish) if mode == "accept" else verdict.code
        ok = code in ("AA", "CA")
        return answer(header, code, verdict.reasons, verdict.status, ack_wanted(header, mode, ok))

    router = APIRouter(tags=["ingestion"], dependencies=[INTEGRATION_PRINCIPAL])
    fhir_router = APIRouter(tags=["ingestion"], dependencies=[FHIR_PRINCIPAL])
    entries = Counter(
        "osteocds_clinician_entries_total",
        "QuestionnaireResponses to the clinician forms (issue 23), by form and outcome",
        ["service", "form", "outcome"],
        registry=service.metrics.registry,
    )

    async def clinician_entry(request: Request, raw: bytes, who: Principal) -> JSONResponse:
        """Issue 23: a QuestionnaireResponse to one of the forms, read into contract messages (forms/response.py),
        audited (actor from the token) and published on the input topics, as the bus would send them."""
        if CLINICIAN_ENTRY not in who.roles:
            return _fhir_json(
                _outcome(["une QuestionnaireResponse demande le rôle clinician-entry"], code="forbidden"), 403
            )
        now = _now_ms()
        try:
            entry = await asyncio.to_thread(read_response, raw, who.subject, now, skew)
        except Refused as exc:
            entries.labels(service.name, "?", "refused").inc()
            return _fhir_json(_outcome(exc.problems, code="invalid"), 422)
        except ValueError:
            entries.labels(service.name, "?", "refused").inc()
            return _fhir_json(_outcome(["la réponse n'est pas un JSON lisible"], code="invalid"), 422)
        form, at_ms, size = entry.form.id, int(now.timestamp() * 1000), len(entry.messages)
        source = f"http:{who.subject}"
        refused = await counts.take("http", "source", source, size, at_ms)
        if refused is None and (refused := await counts.take("http", "patient", entry.patient_id, size, at_ms)):
            await counts.give_back("source", source, size, at_ms)
        if refused is not None:
            doc = _outcome([refused], code="throttled")
            return JSONResponse(doc, 429, {"Retry-After": str(budget.retry_after_s(at_ms))}, media_type=FHIR_JSON)
        # audited before anything is published: no write without its record (shared/web/auth.record_audit)
        await record_audit(request, who, f"write:{form}", entry.patient_id, (CLINICIAN_ENTRY,))
        try:
            acks = [await service.producer.send(m) for m in entry.messages]
            await asyncio.gather(*acks)
        except Exception as exc:  # the broker: a retry is safe (the same entry gives the same event IDs)
            log.error("clinician entry not published", extra={"form": form, "error_type": type(exc).__name__})
            entries.labels(service.name, form, "unpublished").inc()
            why = "le bus de messages est indisponible : réessayez (la même saisie ne sera pas doublée)"
            return _fhir_json(_outcome([why], code="transient"), 503)
        entries.labels(service.name, form, "published").inc()
        log.info("clinician entry published", extra={"form": form, "messages": size})
        return JSONResponse(
            {
                "form": form,
                "event_ids": [str(m.event_id) for m in entry.messages],
                "published": [
                    {"schema": m.schema_id, "event_id": str(m.event_id), "source": m.source} for m in entry.messages
                ],
            },
            status_code=202,
        )

    @fhir_router.post("/fhir", status_code=202)
    async def post_fhir(request: Request, who: Annotated[Principal, FHIR_PRINCIPAL]) -> JSONResponse:
        """A FHIR R4 resource or Bundle (one patient). 202 with the event IDs it will produce; 200 with an
        informational OperationOutcome when it is valid but holds nothing used (as HL7 AA); 422 with an
        OperationOutcome when it cannot be read or every result in it is refused. A QuestionnaireResponse to one
        of the clinician forms (issue 23, role clinician-entry): 202 with the event IDs of the messages published,
        422 with an OperationOutcome naming each item refused (French)."""
        raw = await request.body()
        if resource_type(raw) == "QuestionnaireResponse":
            return await clinician_entry(request, raw, who)
        if INTEGRATION not in who.roles:
            return _fhir_json(_outcome(["this needs the role integration"], code="forbidden"), 403)
        now = _now_ms()
        try:
            size = check_results(raw, settings.max_results_per_message)
        except Rejected as exc:
            return _fhir_json(_outcome([str(exc)]), 422)
        verdict = await asyncio.to_thread(fhir_verdict, raw, analytes, NotAfter(now, skew), tz)  # off the loop
        try:
            size = parsed_results(size, verdict.batch, settings.max_results_per_message)
        except Rejected as exc:
            return _fhir_json(_outcome([str(exc)]), 422)
        if (refused := await admission("http", f"http:{who.subject}", size, now, verdict)) is not None:
            retry = str(budget.retry_after_s(int(now.timestamp() * 1000)))
            doc = _outcome([refused])
            doc["issue"][0]["code"] = "throttled"
            return JSONResponse(doc, 429, {"Retry-After": retry}, media_type="application/fhir+json")
        if not verdict.publish:
            if verdict.batch is not None:
                unmapped.count(verdict.batch.unmapped)
            severity = "information" if verdict.status < 400 else "error"
            return _fhir_json(_outcome(verdict.reasons, severity), verdict.status)
        batch = verdict.batch
        assert batch is not None
        await publish(FHIR_R4.name, raw, batch, now)
        no_value = [f"{x.result.result_id.removeprefix('fhir:')}: {x.absent}" for x in batch.labs if x.absent]
        return JSONResponse(
            {
                "event_ids": [str(e) for e in batch.event_ids()],
                "rejected": batch.rejections,
                "ignored": batch.ignored,
                # issue 24: results sent without a value (dataAbsentReason): recorded as "no value", never a value
                "no_value": no_value,
            },
            status_code=202,
        )

    @router.post("/hl7v2")
    async def post_hl7v2(request: Request, who: Annotated[Principal, INTEGRATION_PRINCIPAL]) -> Response:
        """An HL7 v2 ORU^R01, ORU^R30 or OUL^R22. Answers an HL7 ACK (see `handle_hl7`); 429 with Retry-After
        when the admission budget is spent (issue 25)."""
        got = await handle_hl7(await request.body(), f"http:{who.subject}")
        headers = {"Retry-After": str(got.retry_after)} if got.retry_after is not None else None
        return Response(got.encoded(), status_code=got.status, headers=headers, media_type=HL7_MEDIA_TYPE)

    forms = APIRouter(tags=["clinician entry"])

    @forms.get("/fhir/Questionnaire", dependencies=[require(CLINICIAN, CLINICIAN_ENTRY)])
    async def questionnaires() -> JSONResponse:
        """Every clinician form as a FHIR R4 Questionnaire (a searchset Bundle; no patient data)."""
        return _fhir_json(bundle(), 200)

    @forms.get("/fhir/Questionnaire/{form_id}", dependencies=[require(CLINICIAN, CLINICIAN_ENTRY)])
    async def one_questionnaire(form_id: str) -> JSONResponse:
        form = FORMS.get(form_id)
        if form is None:
            return _fhir_json(_outcome([f"aucun Questionnaire « {form_id[:64]} »"], code="not-found"), 404)
        return _fhir_json(questionnaire(form), 200)

    @forms.get(
        FORMS_PATH + "{patient_id}",
        response_class=HTMLResponse,
        dependencies=[public("static page shell: no patient data; it calls the API with the user's token")],
    )
    async def forms_page(patient_id: PatientId) -> HTMLResponse:
        """The clinician entry forms for one patient (French), rendered from the Questionnaires."""
        return HTMLResponse(FORMS_PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    app = create_app(service, [router, fhir_router, forms])
    # issue 23: the forms sign in like the page (shared/web/signin.py: code flow + PKCE, CSP, no-referrer on /ui/)
    install_signin(app, SignInConfig(settings, page=FORMS_PATH, html_files=[FORMS_PAGE]))  # CSP hashes: the file only
    if settings.mllp_port:
        _mllp(service, app, settings, handle_hl7, answer)
    return service, app


def _mllp(
    service: LabService,
    app: FastAPI,
    settings: LabSettings,
    handle_hl7: Callable[..., Any],
    answer: Callable[..., Hl7Answer],
) -> None:
    """The MLLP listener (issue 24): TLS with client certificates bound to MSH-3/4, or plaintext on loopback when
    MLLP_PLAINTEXT says so; else not started, and readiness says why."""
    metrics = MllpMetrics(service.metrics.registry, service.name)
    config, problem = mllp_config(settings)
    if config is None:
        metrics.bind_failures.labels(service.name, "configuration").inc()
        log.error("MLLP listener not started: %s", problem, extra={"reason_code": "configuration"})
        service.mllp_problem = lambda: problem
        return
    handle, refuse_plaintext = mllp_handlers(SenderPolicy(allowed_senders(settings)), metrics, handle_hl7, answer)
    listener = MllpListener(config, handle, refuse_plaintext, metrics)
    service.mllp_problem = lambda: listener.problem or ""
    app.state.mllp = listener
    serve_mllp(app, listener)


def _fhir_record(r: ConsumerRecord, analytes: AnalyteMap, guard: NotAfter, tz: ZoneInfo) -> Ingested:
    """A valid FHIR message naming no patient holds nothing used: on the bus it is ignored (as HTTP answers
    200 and HL7 AA), under the record's key, instead of being dead-lettered."""
    try:
        return from_fhir(r.value, analytes, guard, tz)
    except Nothing as exc:
        key = (r.key or b"").decode("utf-8", "replace")
        if not PATIENT_ID.match(key):
            raise
        return Ingested(key=f"fhir:nothing:{hashlib.sha256(r.value).hexdigest()}", patient_id=key, ignored=[str(exc)])


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


_RESULTS = re.compile(rb'(?:^|[\r\n])OBX\||"resourceType"\s*:\s*"Observation"')


def check_results(raw: bytes, limit: int) -> int:
    """Refuse a message with more results (HL7 OBX segments, FHIR Observations) than `limit`, counted
    before parsing: the parsers' cost and the outputs grow with it. Returns the count (at least 1: the
    admission budget's cost of the message, issue 25)."""
    count = sum(1 for _ in _RESULTS.finditer(raw))
    if count > limit:
        raise Rejected(f"{count} results in one message, above MAX_RESULTS_PER_MESSAGE={limit}")
    return max(1, count)


def parsed_results(counted: int, batch: Ingested | None, limit: int) -> int:
    """The results of a message: what `check_results` counted over its bytes, or what the parser found when more
    (JSON escapes hide a FHIR Observation from the pattern); refused when over the limit (review of issue 25)."""
    size = max(counted, batch.results if batch is not None else 0)
    if size > limit:
        raise Rejected(f"{size} results in one message, above MAX_RESULTS_PER_MESSAGE={limit}")
    return size


def limited(parse: LabDecoder, limit: int) -> LabDecoder:
    def decode(record: ConsumerRecord) -> Ingested:
        size = check_results(record.value, limit)
        batch = parse(record)
        batch.results, batch.received_ms = parsed_results(size, batch, limit), record.timestamp
        return batch

    return decode


FHIR_JSON = "application/fhir+json"


def _fhir_json(doc: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(doc, status_code=status, media_type=FHIR_JSON)


def _outcome(problems: list[str], severity: str = "error", code: str | None = None) -> dict[str, Any]:
    code = code or ("informational" if severity == "information" else "processing")
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": p} for p in problems]
        or [{"severity": severity, "code": code, "diagnostics": "nothing usable in this message"}],
    }
