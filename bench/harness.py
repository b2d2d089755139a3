"""Shared benchmark harness: one service in-process on the real runtime, against a real broker and Redis
started for the run, compared with a pass-through handler measured in the same run."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.base import Message
from contracts.topics import Topic
from devstack import infra
from shared.runtime.kafka import ensure_topics
from shared.runtime.service import Service
from shared.runtime.subscription import Context
from shared.settings import Settings


@dataclass
class Run:
    name: str
    messages: int
    seconds: float
    outcomes: dict[str, float]
    #: CPU seconds of this process (every thread: the loop, decoding, the aggregate's worker) over the same span: on a
    #: shared host the rate follows the other processes' load, the CPU per message much less
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU µs of this process per message."""
        return self.cpu / self.messages * 1e6


def bench_settings(kafka: infra.Provisioned, redis_url: str, group: str) -> Settings:
    doc: dict[str, object] = {k.lower(): v for k, v in kafka.settings.items()}
    doc.update(service_name=group, kafka_bootstrap_servers=kafka.url, redis_url=redis_url)
    return Settings.model_validate(doc)


async def preload(settings: Settings, topic: Topic, docs: Sequence[dict[str, object] | bytes]) -> None:
    """Publish the documents: dicts as JSON keyed by patient_id; bytes as `payload + b"\\n" + key`."""
    await ensure_topics(settings)
    p = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await p.start()
    try:
        futs = []
        for d in docs:
            if isinstance(d, bytes):  # raw payload, with its patient key after the last newline
                value, _, key = d.rpartition(b"\n")
            else:
                value, key = json.dumps(d).encode(), str(d["patient_id"]).encode()
            futs.append(await p.send(topic.name, value, key=key))
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def consume_rate(service: Service, topic: Topic, total: int, name: str, timeout: float = 300) -> Run:
    """Start `service`, and time from its first consumed record to its last (joins excluded)."""

    def consumed() -> int:
        return service.metrics.consumed  # a plain counter: polling Prometheus would load the CPU being measured

    await service.start()
    try:
        deadline = time.monotonic() + timeout
        while consumed() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: nothing consumed")
            await asyncio.sleep(0.001)
        t0, cpu0 = time.perf_counter(), _cpu()
        while consumed() < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {consumed()}/{total} consumed")
            await asyncio.sleep(0.002)
        elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
        outcomes: dict[str, float] = {}
        for metric in service.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "osteocds_messages_total":
                    key = sample.labels["outcome"]
                    outcomes[key] = outcomes.get(key, 0) + sample.value
        bad = {k: v for k, v in outcomes.items() if k not in ("processed", "duplicate")}
        if bad:  # a benchmark of dead letters would be meaningless
            raise RuntimeError(f"{name}: not every message was processed: {outcomes}")
        return Run(name, total, elapsed, outcomes, cpu)
    finally:
        await service.stop()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def passthrough(settings: Settings, topic: Topic, out: Callable[[Message], Message]) -> Service:
    """The baseline: the same runtime (decode, dedupe, produce, ack, mark, commit) with a trivial handler."""
    service = Service(settings)

    @service.subscriber(topic)
    async def handler(event: Message, ctx: Context) -> list[Message]:
        return [out(event)]

    return service


async def measure_service(
    docs: dict[Topic, list[dict[str, object] | bytes]],
    name: str,
    settings_of: Callable[[Settings], Settings],
    subject: Callable[[Settings], Service] | None,
    passthrough_of: Callable[[Settings], Service],
    extra_topics: Sequence[Topic] = (),
) -> Run:
    """One run on a fresh broker and Redis: preload `docs`, then time `subject(settings)` consuming them all, or,
    with no subject, the pass-through `passthrough_of(settings)` also subscribed to `extra_topics` (the
    subject's topics the pass-through does not read), each with the pass-through's first handler."""
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        settings = settings_of(bench_settings(kafka, redis.url, name))
        for topic, items in docs.items():
            await preload(settings, topic, items)
        if subject is not None:
            service = subject(settings)
        else:
            service = passthrough_of(settings)
            first = next(iter(service.subscriptions.values())).handler
            for topic in extra_topics:
                service.subscriber(topic)(first)  # type: ignore[arg-type]
        return await consume_rate(service, next(iter(docs)), sum(len(v) for v in docs.values()), name)


async def versus_passthrough(
    result: str,
    unit: str,
    rounds: int,
    docs: dict[Topic, list[dict[str, object] | bytes]],
    settings_of: Callable[[Settings], Settings],
    subject: Callable[[Settings], Service],
    passthrough_of: Callable[[Settings], Service],
    extra_topics: Sequence[Topic] = (),
) -> None:
    """A service against the pass-through on the same messages (`measure_service`), alternately over `rounds`
    rounds; prints both rates and the RESULT line named `result`."""

    def measure(with_subject: bool) -> Awaitable[Run]:
        return measure_service(
            docs,
            "service" if with_subject else "pass-through",
            settings_of,
            subject if with_subject else None,
            passthrough_of,
            extra_topics,
        )

    baseline, measured = await alternate(rounds, lambda: measure(False), lambda: measure(True))
    report(result, unit, rounds, baseline, measured)


def result_line(name: str, value: float, unit: str, baseline: float) -> str:
    return f"RESULT name={name} value={value:.1f} unit={unit} baseline={baseline:.1f} ratio={value / baseline:.3f}"


async def alternate(
    rounds: int, baseline: Callable[[], Awaitable[Run]], subject: Callable[[], Awaitable[Run]]
) -> tuple[Run, Run]:
    """Measure baseline then subject, `rounds` times (machines are noisy). Each round is a pair measured
    back to back; the pair with the median ratio is returned, so that both rates come from the same moment."""
    pairs = [(await baseline(), await subject()) for _ in range(rounds)]
    return median_pair(pairs)


def median_pair(pairs: Sequence[tuple[Run, Run]]) -> tuple[Run, Run]:
    """The (baseline, subject) pair whose subject/baseline ratio is the median of all pairs."""
    ordered = sorted(pairs, key=lambda p: p[1].rate / p[0].rate)
    return ordered[len(ordered) // 2]


def report(name: str, unit: str, rounds: int, baseline: Run, subject: Run) -> None:
    """Print both rates and the RESULT line (last)."""
    print(f"the median of {rounds} rounds (each a baseline and a subject run back to back)")
    print(f"pass-through {baseline.rate:10.1f} {unit}  ({baseline.messages} in {baseline.seconds:.2f} s)")
    print(
        f"{name:<12} {subject.rate:10.1f} {unit}  ({subject.messages} in {subject.seconds:.2f} s), "
        f"{subject.rate / baseline.rate:.1%} of pass-through"
    )
    print(
        f"CPU per message: pass-through {baseline.cpu_us:.0f} µs, {name} {subject.cpu_us:.0f} µs "
        f"(pass-through / {name}: {baseline.cpu_us / subject.cpu_us:.3f})"
    )
    print(result_line(name, subject.rate, unit, baseline.rate))


def cli(doc: str | None, main: Callable[[int, int], Coroutine[Any, Any, None]], default: int = 4000) -> None:
    """The command line every bench script shares."""
    import argparse

    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--events", type=int, default=default, help="messages per run")
    parser.add_argument("--rounds", type=int, default=5, help="baseline/subject rounds (the median pair is kept)")
    args = parser.parse_args()
    infra.exit_on_sigterm()  # a killed bench stops the broker, Redis and services it started
    asyncio.run(main(args.events, args.rounds))
