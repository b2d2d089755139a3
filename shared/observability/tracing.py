"""OpenTelemetry tracing across the Kafka hops (issue 14). Off by default: `OTEL_EXPORTER_OTLP_ENDPOINT`
(e.g. http://otel-collector:4318) turns it on, spans exported by OTLP over HTTP.

One input, one trace: each consumed record gets a `<topic> process` span whose parent is the W3C trace context
(`traceparent`) found in the record's headers, and every output of that record carries that span's context in
its own headers; so the trace of a lab result shows lab-normalisation, scoring, the planners and notification.
HTTP requests (POST /fhir, /hl7v2, acks) get a server span from the maintained FastAPI instrumentation, and what
they publish continues their trace.

No patient data in spans: attributes are the service, topic, partition, offset, outcome, error type and the
rule IDs decided. Not the record key (the patient ID) — which is why the aiokafka instrumentation, which
records it (`messaging.kafka.message.key`), is not used here — nor any value, nor the URL path or query of an
HTTP request (they may hold a patient ID: replaced by the route template).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shared.observability.metrics import ORIGIN_HEADER
from shared.settings import Settings

Headers = list[tuple[str, bytes]]

#: HTTP span attributes that may hold a patient ID (path parameter or query string), per semconv version
_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.query", "url.full")


class Tracing:
    """The tracer of one service: a no-op unless an OTLP endpoint (or, in tests, an exporter) is given."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        self.service = settings.service_name
        endpoint = settings.otel_exporter_otlp_endpoint
        self.provider: TracerProvider | None = None
        if exporter is None and endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
            processor: Any = BatchSpanProcessor(exporter)
        elif exporter is not None:
            processor = SimpleSpanProcessor(exporter)
        if exporter is not None:
            resource = Resource.create({"service.name": self.service, "service.namespace": "osteocds"})
            self.provider = TracerProvider(resource=resource)
            self.provider.add_span_processor(processor)
        self.enabled = self.provider is not None
        self.tracer: trace.Tracer = (
            self.provider.get_tracer("osteocds.runtime") if self.provider is not None else trace.NoOpTracer()
        )

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes the batch processor

    # ---- Kafka hops ----------------------------------------------------------------------------------
    def consume(self, record: ConsumerRecord) -> Span | None:
        """Start the span of one consumed record, child of the context its headers carry."""
        if not self.enabled:
            return None
        carrier = {k: v.decode("latin-1") for k, v in (record.headers or ())}
        parent = propagate.extract(carrier)
        return self.tracer.start_span(
            f"{record.topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": self.service,
                "osteocds.service": self.service,
            },
        )

    @staticmethod
    def finish(
        span: Span | None,
        outcome: str,
        outputs: Sequence[Any] = (),
        error_type: str | None = None,
    ) -> None:
        if span is None:
            return
        span.set_attribute("osteocds.outcome", outcome)
        ids = sorted({rid for out in outputs for rid in rule_ids(out)})
        if ids:
            span.set_attribute("osteocds.rule_ids", ids)
        span.set_attribute("osteocds.outputs", len(outputs))
        if outputs:
            span.set_attribute("osteocds.output_topics", sorted({_topic_of(o) for o in outputs}))
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def output_headers(span: Span | None, origin_ms: int) -> Headers:
    """Headers of an output: the origin time of its hospital input, and the trace context of `span`."""
    headers: Headers = [(ORIGIN_HEADER, str(origin_ms).encode())]
    if span is not None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        headers += [(k, v.encode()) for k, v in carrier.items()]
    return headers


def current_headers() -> Headers:
    """Headers of a message a request publishes (POST /fhir, /hl7v2): now as its origin, the current trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=otel_context.get_current())
    return [(ORIGIN_HEADER, str(int(time.time() * 1000)).encode()), *((k, v.encode()) for k, v in carrier.items())]


def rule_ids(output: Any) -> Iterable[str]:
    """The rule IDs an output states (Recommendation.rule_id, Score.rule_ids...), nothing else of it."""
    if hasattr(output, "value") and isinstance(output.value, str):  # an encoded output (shared.runtime.kafka.Outgoing)
        try:
            doc = json.loads(output.value)
        except ValueError:
            return []
        return [str(doc["rule_id"])] if "rule_id" in doc else [str(r) for r in doc.get("rule_ids") or []]
    if isinstance(getattr(output, "rule_id", None), str):
        return [output.rule_id]
    return [str(r) for r in getattr(output, "rule_ids", None) or []]


def _topic_of(output: Any) -> str:
    topic = getattr(output, "topic", None)
    return topic if isinstance(topic, str) else type(output).__name__


def instrument_app(app: FastAPI, tracing: Tracing) -> None:
    """Server spans for HTTP requests (FastAPI instrumentation), without the URL's path or query."""
    if tracing.provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def scrub(span: Span, scope: dict[str, Any]) -> None:
        if span.is_recording():
            for name in _URL_ATTRIBUTES:
                span.set_attribute(name, "redacted")

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=scrub,
        tracer_provider=tracing.provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
