"""Issue 14: HTTP server spans (FastAPI instrumentation) keep no patient ID, and what a request publishes continues
its trace; tracing is off without an OTLP endpoint."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.observability.metrics import ORIGIN_HEADER
from shared.observability.tracing import Tracing, current_headers, instrument_app
from shared.settings import Settings


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/patients/{patient_id}/scores")
    async def scores(patient_id: str, since: str | None = None) -> dict[str, str]:
        # what a handler publishing to Kafka would put in the record's headers (shared.runtime.kafka.Producer.send_raw)
        return {k: v.decode() for k, v in current_headers()}

    return app


async def test_server_span_without_patient_id_and_its_context_goes_to_kafka_headers() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(Settings(service_name="http-test"), exporter)
    app = _app()
    instrument_app(app, tracing)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        r = await client.get("/patients/pt-SECRET-42/scores", params={"since": "pt-SECRET-42"})
    assert r.status_code == 200
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /patients/{patient_id}/scores"  # the route template, not the path
    assert "pt-SECRET-42" not in str(dict(span.attributes or {}))
    headers = r.json()
    assert headers["traceparent"].split("-")[1] == f"{span.context.trace_id:032x}"
    assert int(headers[ORIGIN_HEADER]) > 0


async def test_tracing_is_off_by_default() -> None:
    tracing = Tracing(Settings(service_name="http-test"))
    assert not tracing.enabled and tracing.provider is None
    app = _app()
    instrument_app(app, tracing)  # a no-op
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        headers = (await client.get("/patients/p1/scores")).json()
    assert set(headers) == {ORIGIN_HEADER}  # no trace context without tracing
    on = Tracing(Settings(service_name="x", otel_exporter_otlp_endpoint="http://collector:4318"))
    assert on.enabled  # the OTLP endpoint setting turns it on (exporting in the background)
    on.shutdown()
