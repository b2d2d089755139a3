"""Publish -> critical alert latency through the five services as processes, next to a three-hop raw aiokafka
chain (three processes: consume, produce, wait for the acks, commit) on the same broker settings, measured in
the same run; and the idle CPU of the whole stack (five services and the broker, nothing published).

    .venv/bin/python -m bench.pipeline [--rate 200] [--seconds 60] [--hops]

Mixed patient events at `rate` per second: routine calcium results for many patients, and for one patient in
ten an albumin then a calcium that makes a hypercalcaemic crisis (LAB-CA-CRISIS, critical): lab-normalisation
-> scoring -> notification, three hops. The latency is from just before the crisis calcium is handed to the
producer to the moment the critical alert is read from `osteocds.alerts.v1`. The baseline forwards every event
through three raw hops and times each one from publish to the third hop's output topic.
RESULT value = the pipeline's p99 in ms, baseline = the raw chain's p99. Each process's CPU while the events go
through is printed too (the host saturated is what the tail measures); `--hops` also times each crisis at
lab-normalisation's output and at scoring's recommendation.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import ALERTS, LAB_RESULTS, LABS_NORMALISED, RECOMMENDATIONS
from devstack import infra
from devstack.stack import SERVICE_MODULES, spawn_services
from shared.runtime.kafka import ensure_topics
from shared.settings import Settings

HZ = os.sysconf("SC_CLK_TCK")
R = TypeVar("R")
CHAIN = ["bench.chain.in", "bench.chain.a", "bench.chain.b", "bench.chain.out"]


def events(rate: float, seconds: float) -> list[tuple[dict[str, object], bool]]:
    """(document, is the crisis calcium) in publication order."""
    now = datetime.now(UTC)
    out: list[tuple[dict[str, object], bool]] = []
    n = int(rate * seconds)
    run = uuid.uuid4().hex[:6]

    def lab(patient: str, code: str, value: float, unit: str, hours: float) -> dict[str, object]:
        return {
            "event_id": str(uuid.uuid4()),
            "patient_id": patient,
            "occurred_at": (now - timedelta(hours=hours)).isoformat(),
            "recorded_at": now.isoformat(),
            "source": "bench",
            "result_id": uuid.uuid4().hex[:8],
            "code": {"system": "http://loinc.org", "code": code},
            "value": value,
            "unit": unit,
        }

    i = 0
    while len(out) < n:
        patient = f"bench-{run}-{i}"
        if i % 10 == 0:
            out.append((lab(patient, "1751-7", 28, "g/L", 2), False))
            out.append((lab(patient, "2000-8", 3.30, "mmol/L", 2), True))
        else:
            out.append((lab(patient, "2000-8", 2.35, "mmol/L", 3), False))
        i += 1
    return out[:n]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / HZ


def _children() -> list[int]:
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == me:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _name(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [a.decode(errors="replace") for a in args if a]
    return next((w for w in words if w.startswith("services.")), Path(words[0]).name if words else str(pid))


def cpu_during(work: Callable[[], R]) -> tuple[R, dict[str, float]]:
    """`work`'s result, and the CPU every child process (services, broker, Redis) used while it ran, in cores, per
    process."""
    pids = _children()
    before = {pid: _cpu_seconds([pid]) for pid in pids}
    started = time.monotonic()
    result = work()
    elapsed = time.monotonic() - started
    return result, {_name(pid): (_cpu_seconds([pid]) - before[pid]) / elapsed for pid in pids}


def idle_cpu(seconds: float) -> tuple[float, dict[str, float]]:
    """CPU used by every child process (services, broker, Redis) over `seconds`, in cores, and per process."""
    _, each = cpu_during(lambda: time.sleep(seconds))
    return sum(each.values()), each


async def publish_timed(
    bootstrap: str, topic: str, docs: list[tuple[dict[str, object], bool]], rate: float
) -> dict[str, float]:
    """Publish at `rate`; returns patient -> wall time just before its crisis calcium was sent."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0)
    await p.start()
    sent: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        futs = []
        for i, (doc, crisis) in enumerate(docs):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if crisis:
                sent[str(doc["patient_id"])] = time.time()
            futs.append(await p.send(topic, json.dumps(doc).encode(), key=str(doc["patient_id"]).encode()))
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return sent


async def read_alerts(
    bootstrap: str,
    wanted: int,
    stop: asyncio.Event,
    seen: dict[str, float],
    hops: dict[str, dict[str, float]] | None = None,
) -> None:
    """The critical crisis alerts (`seen`: patient -> time read), and where each crisis was on the way (`hops`: per
    patient, when its total calcium was read normalised and its LAB-CA-CRISIS recommendation read from scoring)."""
    # with `hops`, the normalised labs and the recommendations are read too (~2 more records per event for the broker
    # and this reader to carry: the RESULT line is measured without them, as in earlier sessions)
    topics = [ALERTS.name] if hops is None else [ALERTS.name, LABS_NORMALISED.name, RECOMMENDATIONS.name]
    c = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
    )
    await c.start()
    try:
        while not stop.is_set() and len(seen) < wanted:
            for tp, rs in (await c.getmany(timeout_ms=100)).items():
                now = time.time()
                for r in rs:
                    doc = json.loads(r.value)
                    if tp.topic == ALERTS.name:
                        if doc["rule_id"] == "LAB-CA-CRISIS" and doc["severity"] == "critical":
                            seen.setdefault(doc["patient_id"], now)
                    elif hops is None:
                        continue
                    elif tp.topic == LABS_NORMALISED.name:
                        if doc.get("analyte") == "total_calcium" and float(doc.get("value") or 0) > 3:
                            hops.setdefault(doc["patient_id"], {}).setdefault("normalised", now)
                    elif doc.get("rule_id") == "LAB-CA-CRISIS":
                        hops.setdefault(doc["patient_id"], {}).setdefault("scored", now)
    finally:
        await c.stop()


def percentiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


async def pipeline(
    kafka: infra.Provisioned, docs: list[tuple[dict[str, object], bool]], rate: float, by_hops: bool = False
) -> tuple[list[float], dict[str, list[float]]]:
    """The crisis alerts' latencies (ms), and with `by_hops` per hop the latency from publication to that hop's
    output (ms)."""
    seen: dict[str, float] = {}
    hops: dict[str, dict[str, float]] | None = {} if by_hops else None
    stop = asyncio.Event()
    crises = sum(1 for _, c in docs if c)
    reader = asyncio.create_task(read_alerts(kafka.url, crises, stop, seen, hops))
    sent = await publish_timed(kafka.url, LAB_RESULTS.name, docs, rate)
    deadline = time.monotonic() + 60
    while len(seen) < crises and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a bounded wait
        await asyncio.sleep(0.2)
    stop.set()
    await reader
    if len(seen) < crises:
        print(f"warning: {crises - len(seen)} crisis alerts not seen within 60 s")
    by_hop = {
        hop: [1000 * (hops[p][hop] - t) for p, t in sent.items() if hops is not None and hop in hops.get(p, {})]
        for hop in ("normalised", "scored")
    }
    return [1000 * (seen[p] - t) for p, t in sent.items() if p in seen], by_hop


# ---- the raw chain ----------------------------------------------------------------------------------------
async def hop(source: str, target: str, bootstrap: str, settings: dict[str, str]) -> None:
    """One raw hop, as a process: consume -> produce -> acks -> commit, until killed."""
    doc = {k.lower(): v for k, v in settings.items() if k.startswith("KAFKA_")}
    s = Settings.model_validate(doc | {"kafka_bootstrap_servers": bootstrap})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0)
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"hop-{source}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=s.kafka_session_timeout_ms,
        heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
        fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
        max_poll_records=s.kafka_max_poll_records,
    )
    await producer.start()
    await consumer.start()
    print("ready", flush=True)
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        if not batch:
            continue
        acks = [await producer.send(target, r.value, key=r.key) for rs in batch.values() for r in rs]
        await asyncio.gather(*acks)
        await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})


async def raw_chain(kafka: infra.Provisioned, docs: list[tuple[dict[str, object], bool]], rate: float) -> list[float]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.url)
    await admin.start()
    await admin.create_topics([NewTopic(t, 6, 1) for t in CHAIN])
    await admin.close()
    procs = []
    for src, dst in itertools.pairwise(CHAIN):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--hop",
                src,
                dst,
                kafka.url,
                env={**os.environ, **kafka.settings},
                stdout=asyncio.subprocess.PIPE,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            await proc.stdout.readline()
        await asyncio.sleep(3)  # group joins
        received: dict[str, float] = {}
        stop = asyncio.Event()
        c = AIOKafkaConsumer(CHAIN[-1], bootstrap_servers=kafka.url, group_id=None, fetch_max_wait_ms=5)
        await c.start()

        async def read() -> None:
            while not stop.is_set():
                for rs in (await c.getmany(timeout_ms=100)).values():
                    now = time.time()
                    for r in rs:
                        received.setdefault(json.loads(r.value)["event_id"], now)

        reader = asyncio.create_task(read())
        sent: dict[str, float] = {}
        p = AIOKafkaProducer(bootstrap_servers=kafka.url, acks="all", linger_ms=0)
        await p.start()
        t0 = time.monotonic()
        for i, (doc, _) in enumerate(docs):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[str(doc["event_id"])] = time.time()
            await p.send(CHAIN[0], json.dumps(doc).encode(), key=str(doc["patient_id"]).encode())
        await p.stop()
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        stop.set()
        await reader
        await c.stop()
        return [1000 * (received[e] - t) for e, t in sent.items() if e in received]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def main() -> None:
    infra.exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument(
        "--hops",
        action="store_true",
        help="also time each crisis at lab-normalisation's output and at scoring's recommendation (the reader then "
        "carries ~2 more records per event: compare RESULT lines taken without it)",
    )
    parser.add_argument("--hop", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hop:
        asyncio.run(hop(args.hop[0], args.hop[1], args.hop[2], settings=dict(os.environ)))
        return
    docs = events(args.rate, args.seconds)
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        settings = Settings(kafka_bootstrap_servers=kafka.url, kafka_enable_idempotence=False)
        asyncio.run(ensure_topics(settings))
        ports = {name: infra.free_port() for name in SERVICE_MODULES}
        with tempfile.TemporaryDirectory(prefix="osteocds-bench-") as logs:
            stack = spawn_services(kafka.url, redis.url, kafka.settings, ports=ports, log_dir=Path(logs))
            try:
                time.sleep(3)
                idle, each = idle_cpu(args.idle_seconds)
                (latencies, by_hop), load = cpu_during(lambda: asyncio.run(pipeline(kafka, docs, args.rate, args.hops)))
            finally:
                stack.stop()
        raw = asyncio.run(raw_chain(kafka, docs, args.rate))
    p50, p99 = percentiles(latencies)
    r50, r99 = percentiles(raw)
    print(f"idle CPU of 5 services + broker + Redis: {idle:.1%} of a core")
    print("  " + ", ".join(f"{name} {share:.1%}" for name, share in sorted(each.items())))
    print(f"{len(docs)} events at {args.rate:.0f}/s")
    shares = ", ".join(f"{n} {s:.1%}" for n, s in sorted(load.items()))
    print(f"CPU while publishing and draining, {sum(load.values()):.1%} of a core: {shares}")
    print(f"pipeline, publish -> critical alert (3 hops): p50 {p50:.1f} ms, p99 {p99:.1f} ms, n={len(latencies)}")
    for stage, what in (("normalised", "lab-normalisation's output"), ("scored", "scoring's recommendation")):
        if len(by_hop[stage]) > 1:
            h50, h99 = percentiles(by_hop[stage])
            print(f"  publish -> {what}: p50 {h50:.1f} ms, p99 {h99:.1f} ms, n={len(by_hop[stage])}")
    print(f"raw aiokafka chain, publish -> 3rd hop:       p50 {r50:.1f} ms, p99 {r99:.1f} ms, n={len(raw)}")
    print(f"RESULT name=pipeline value={p99:.1f} unit=ms baseline={r99:.1f} ratio={p99 / r99:.3f}")


if __name__ == "__main__":
    main()
