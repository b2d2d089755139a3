"""What tracing costs (issue 14): events per second of one scoring process with tracing on (every record a span,
its context in every output's headers, spans handed to an exporter that drops them: the network is not measured)
next to the same process with tracing off (the default), same events, measured in the same run.

    .venv/bin/python bench/tracing.py [--events 4000] [--rounds 5]
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bench.harness import alternate, cli, report
from bench.scoring import events, measure
from services.scoring.app import build
from services.scoring.settings import ScoringSettings
from shared.observability.tracing import Tracing
from shared.runtime.service import Service


class Drop(SpanExporter):
    """Takes the spans and keeps none (what a collector would receive is built, not sent)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def traced(settings: ScoringSettings) -> Service:
    service = build(settings)[0]
    service.tracing = Tracing(settings, Drop())
    return service


async def main(n: int, rounds: int) -> None:
    docs = events(n)
    off, on = await alternate(
        rounds,
        lambda: measure(docs, "tracing off", lambda s: build(s)[0]),
        lambda: measure(docs, "tracing on", traced),
    )
    report("tracing_on", "events/s", rounds, off, on)


if __name__ == "__main__":
    cli(__doc__, main)
