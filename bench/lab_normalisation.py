"""Messages per second that one lab-normalisation process sustains from its raw topic to its output
topic, next to a pass-through handler on the same runtime, measured in the same run.

    .venv/bin/python bench/lab_normalisation.py [--messages 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from bench.harness import bench_settings, consume_rate, passthrough, preload, result_line
from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from contracts.topics import LAB_RESULTS
from services.lab_normalisation.app import build
from services.lab_normalisation.settings import LabSettings
from shared import infra


def lab_docs(n: int) -> list[dict[str, object]]:
    """Calcium/albumin pairs in mixed units for n/2 draws over n/20 patients."""
    now = datetime.now(UTC)
    docs: list[dict[str, object]] = []
    for i in range(n // 2):
        patient = f"bench-{i % max(1, n // 20)}"
        at = (now - timedelta(hours=i % 500)).isoformat()
        for code, value, unit in (
            (("17861-6", 9.8, "mg/dL"), ("1751-7", 3.1, "g/dL"))
            if i % 2
            else (
                ("2000-8", 2.45, "mmol/L"),
                ("1751-7", 31.0, "g/L"),
            )
        ):
            docs.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "patient_id": patient,
                    "occurred_at": at,
                    "recorded_at": now.isoformat(),
                    "source": "bench",
                    "result_id": f"r-{uuid.uuid4().hex[:10]}",
                    "code": {"system": "http://loinc.org", "code": code},
                    "value": value,
                    "unit": unit,
                }
            )
    return docs


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


async def main(n: int) -> None:
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        base = bench_settings(kafka, redis.url, "bench-passthrough")
        docs = lab_docs(n)
        await preload(base, LAB_RESULTS, docs)
        baseline = await consume_rate(passthrough(base, LAB_RESULTS, echo), LAB_RESULTS, len(docs), "pass-through")
        settings = LabSettings.model_validate({**base.model_dump(), "service_name": "lab-normalisation"})
        service, _ = build(settings)
        subject = await consume_rate(service, LAB_RESULTS, len(docs), "lab-normalisation")
    print(f"pass-through      {baseline.rate:8.1f} msg/s  ({baseline.messages} in {baseline.seconds:.2f} s)")
    print(f"lab-normalisation {subject.rate:8.1f} msg/s  ({subject.messages} in {subject.seconds:.2f} s), native JSON")
    print(result_line("lab_normalisation_json", subject.rate, "msg/s", baseline.rate))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=4000)
    asyncio.run(main(parser.parse_args().messages))
