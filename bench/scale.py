"""The cohort benchmark (issue 25): N patients over Y years of realistic events (devstack/cohort.py) through the five
services, on the real runtime or in process.

    .venv/bin/python bench/scale.py --patients 1000 --years 2             # the real pipeline
    .venv/bin/python bench/scale.py --patients 10000 --years 2 --in-process [--sample 10] [--jobs 2]

Real pipeline (default): the bench starts its own embedded broker (Tansu) and redis-server, publishes the whole
cohort to the hospital topics first (each record timestamped at its publication time, `recorded_at`; the cohort
ends now, so the newest facts are current), then starts the five services as processes (devstack/stack.py) and
times them through the backlog: until every consumer group has committed every hospital input of its topics and
no group's committed offsets have moved for `--quiet` seconds. It reports events/s (hospital inputs, and records
consumed by the five services together), each service's consumption rate per quarter of the run (the later
quarters see longer patient histories: the mean history length of the inputs of each quarter is printed), state
bytes per patient per service read from Redis (p50/p99/max), Redis memory (INFO memory), and the time of
`python -m services.<name> rebuild` per service (the services stopped).

In process (`--in-process`): the same cohort through the five services' pure transitions (devstack/replay.py), patient
by patient (every state is per patient, so this gives what one merged stream gives: tests/test_replay.py), the
patients split over `--jobs` processes (default: one per core; the parent adds their figures up), each new
state written as JSON as the runtime does. It reports hospital events/s and service applications/s, the per-event
cost per service against the patient's history length in that service (1-10, 11-100, 101-1 000 events...), state
bytes per patient at the end of each patient's stream (p50/p99/max), and dead letters. `--sample K` replays every
K-th patient only and scales the time by K (patients are independent: the same cost per patient), said in the
output. The generator's own rate is measured on one in 20 of the replayed patients' streams.

RESULT name=scale (real) or scale-in-process: value = hospital events/s through the five services, baseline = the
cohort's events per second of clinical time (what the hospital sends), ratio = value / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from redis import Redis

from contracts.topics import SERVICES
from devstack import infra
from devstack.cohort import ANCHOR, Cohort, patient_history
from devstack.replay import Replay, build_services
from devstack.stack import SERVICE_MODULES, service_env, spawn_services
from shared.runtime.kafka import ensure_topics
from shared.settings import Settings

HZ = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[str, float]:
    """CPU seconds (user + system) of every child process of this bench (services, broker, Redis), by name."""
    me = str(os.getpid())
    out: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[1] != me:
                continue
            words = [w.decode(errors="replace") for w in (entry / "cmdline").read_bytes().split(b"\0") if w]
        except (OSError, IndexError):
            continue
        module = next((w for w in words if w.startswith("services.")), None)
        name = module.split(".")[1].replace("_", "-") if module else Path(words[0]).name.split("-")[0] if words else "?"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / HZ
    return out


def pct(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sizes_line(name: str, values: list[int]) -> str:
    return (
        f"  {name:<22} p50 {pct(values, 0.5):>8} B  p99 {pct(values, 0.99):>8} B  max {max(values or [0]):>8} B"
        f"  ({len(values)} patients)"
    )


# ---- in process ------------------------------------------------------------------------------------------------
@dataclass
class Shard:
    """What one process of the in-process run measured over its patients (merged by the parent)."""

    inputs: int = 0
    applications: Counter[str] = field(default_factory=Counter)
    cost: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    states: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    cpu: float = 0.0

    def add(self, other: Shard) -> None:
        self.inputs += other.inputs
        self.applications += other.applications
        for key, (n, spent) in other.cost.items():
            cell = self.cost.setdefault(key, [0, 0.0])
            cell[0] += n
            cell[1] += spent
        for name, sizes in other.states.items():
            self.states[name] += sizes
        self.dead_letters += other.dead_letters
        self.cpu += other.cpu


def run_shard(cohort: Cohort, indices: list[int], label: str) -> Shard:
    """The patients `indices` through the five services' pure transitions, one patient after the other."""
    services = build_services()
    warm = Replay(services, keep=False)  # first use: UCUM's unit table, caches (not timed)
    warm.run(patient_history(cohort.seed + 1000, 200))
    replay = Replay(services, keep=False, profile=True)
    until = cohort.end
    out = Shard()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for k, i in enumerate(indices):
        patient = cohort.patient_id(i)
        stream = list(cohort.patient(i))
        out.inputs += len(stream)
        replay.run(stream, until)
        for name in SERVICES:
            state = replay.state(name, patient)
            if state is not None:
                out.states[name].append(len(state.model_dump_json().encode()))
        replay.forget(patient)
        if (k + 1) % max(1, len(indices) // 10) == 0:
            elapsed = time.perf_counter() - t0
            print(f"  {label}{k + 1}/{len(indices)} patients, {out.inputs} events, {elapsed:.0f} s", flush=True)
    out.cpu = time.process_time() - cpu0
    out.applications = Counter(replay.inputs)
    out.cost = {key: list(cell) for key, cell in replay.cost.items()}
    out.dead_letters = Counter(replay.dead_letters)
    return out


def in_process(cohort: Cohort, sample: int, jobs: int) -> None:
    indices = list(range(0, cohort.patients, sample))
    probe = indices[: max(1, len(indices) // 20)]  # the generator's own rate, on one patient in 20
    t = time.perf_counter()
    generated = sum(1 for i in probe for _ in cohort.patient(i))
    gen_s = time.perf_counter() - t
    print(f"generator: {generated} messages of {len(probe)} patients in {gen_s:.1f} s ({generated / gen_s:.0f}/s)")
    jobs = max(1, min(jobs, len(indices)))
    shards = [indices[j::jobs] for j in range(jobs)]  # patients are independent: any split gives the same figures
    t0 = time.perf_counter()
    total = Shard()
    if jobs == 1:
        total.add(run_shard(cohort, shards[0], ""))
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            for part in pool.map(run_shard, [cohort] * jobs, shards, [f"[{j}] " for j in range(jobs)]):
                total.add(part)
    seconds, cpu, inputs = time.perf_counter() - t0, total.cpu, total.inputs
    applications = sum(total.applications.values())
    print(
        f"\nin process, {len(indices)} of {cohort.patients} patients x {cohort.years:g} years (1 in {sample}), "
        f"{jobs} processes"
    )
    print(
        f"  {inputs} hospital events, {applications} service applications, {seconds:.1f} s of wall time "
        f"({cpu:.1f} s of CPU, the processes together)"
    )
    if sample > 1:
        print(
            f"  whole cohort ({cohort.patients} patients), scaled by {sample}: ~{inputs * sample} events, "
            f"~{cpu * sample / 60:.0f} CPU minutes (~{seconds * sample / 60:.0f} min at this host's load)"
        )
    rate = inputs / seconds
    print(f"  {rate:.1f} hospital events/s, {applications / seconds:.0f} service applications/s ({jobs} processes)")
    print(f"  per CPU second: {inputs / cpu:.1f} hospital events, {applications / cpu:.0f} applications")
    print("  per service: applications, and CPU us per application by the patient's history length in that service")
    buckets = sorted({b for _, b in total.cost})
    print(f"  {'service':<22} {'events':>8} " + " ".join(f"{'<=' + str(b):>10}" for b in buckets))
    for name in SERVICES:
        cells = [total.cost.get((name, b)) for b in buckets]
        text = " ".join(f"{(c[1] / c[0] * 1e6 if c and c[0] else 0):>10.0f}" for c in cells)
        print(f"  {name:<22} {total.applications[name]:>8} {text}")
    print("  state per patient at the end of its stream (JSON bytes)")
    for name in SERVICES:
        print(sizes_line(name, total.states[name]))
    print(f"  dead letters: {sum(total.dead_letters.values())}")
    for (name, topic, kind), n in total.dead_letters.most_common(10):
        print(f"    {name} {topic} {kind}: {n}")
    baseline = inputs / (cohort.years * 365.25 * 86400)
    print(f"  the hospital sends {baseline * sample:.4f} events/s for the whole cohort")
    print(
        f"RESULT name=scale-in-process value={rate:.1f} unit=events/s baseline={baseline * sample:.4f} "
        f"ratio={rate / (baseline * sample):.1f}"
    )


# ---- the real pipeline -----------------------------------------------------------------------------------------
async def publish(url: str, cohort: Cohort) -> tuple[Counter[str], list[float]]:
    """Publish the cohort in order, each record at its publication time; returns per-topic counts and, per input,
    its patient's history length so far (for the quarters' mean history)."""
    p = AIOKafkaProducer(bootstrap_servers=url, acks="all", enable_idempotence=False, linger_ms=20)
    await p.start()
    counts: Counter[str] = Counter()
    history: Counter[str] = Counter()
    lengths: list[float] = []
    try:
        pending = []
        for g in cohort.events():
            history[g.key] += 1
            lengths.append(history[g.key])
            counts[g.topic] += 1
            pending.append(await p.send(g.topic, g.value(), key=g.key.encode(), timestamp_ms=g.timestamp_ms))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await p.stop()
    return counts, lengths


class Offsets:
    """Each group's committed offsets, summed per topic (partitions listed explicitly: the embedded broker does not
    answer an OffsetFetch for all partitions)."""

    def __init__(self, url: str, subs: dict[str, set[str]]) -> None:
        self.url, self.subs = url, subs

    async def __aenter__(self) -> Offsets:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.url)
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.url, group_id=None, enable_auto_commit=False)
        await self.consumer.start()
        await self.consumer.topics()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def committed(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for group in SERVICES:
            tps = [
                TopicPartition(t, p)
                for t in sorted(self.subs[group])
                for p in self.consumer.partitions_for_topic(t) or ()
            ]
            offsets = await self.admin.list_consumer_group_offsets(group, partitions=tps)
            per: dict[str, int] = defaultdict(int)
            for tp, meta in offsets.items():
                if meta is not None and meta.offset > 0:
                    per[tp.topic] += meta.offset
            out[group] = dict(per)
        return out


async def watch(
    url: str, subs: dict[str, set[str]], counts: Counter[str], quiet: float, timeout: float, t0: float
) -> tuple[list[tuple[float, dict[str, int]]], list[dict[str, float]], float]:
    """Sample the groups' committed offsets (and the CPU time of every child process) every 5 s until every group has
    committed every hospital input of its topics and nothing has moved for `quiet` seconds; returns the samples and
    when the last progress was seen."""
    wanted = {name: sum(counts[t] for t in subs[name] if t in counts) for name in SERVICES}
    samples: list[tuple[float, dict[str, int]]] = []
    cpu: list[dict[str, float]] = []
    last: dict[str, int] | None = None
    last_change = time.monotonic()
    async with Offsets(url, subs) as offsets:
        while True:
            now = time.monotonic()
            state = await offsets.committed()
            totals = {g: sum(state[g].values()) for g in SERVICES}
            hospital = {g: sum(v for t, v in state[g].items() if t in counts) for g in SERVICES}
            samples.append((now - t0, totals))
            cpu.append(cpu_by_process())
            if totals != last:
                last, last_change = totals, now
            if all(hospital[g] >= wanted[g] for g in SERVICES) and now - last_change >= quiet:
                break
            if now - t0 > timeout:
                print(f"stopped by --timeout {timeout:.0f} s before the backlog was through")
                break
            if len(samples) % 12 == 0:
                print(f"  {now - t0:.0f} s: " + ", ".join(f"{g} {totals[g]}" for g in SERVICES), flush=True)
            await asyncio.sleep(5)
    return samples, cpu, last_change - t0


def subscriptions() -> dict[str, set[str]]:
    return {name: set(service.subscriptions) for name, service in build_services().items()}


def redis_figures(url: str) -> tuple[dict[str, list[int]], int, str]:
    r = Redis.from_url(url)
    sizes: dict[str, list[int]] = defaultdict(list)
    for name in SERVICES:
        keys = list(r.scan_iter(match=f"osteocds:{name}:state:*", count=1000))
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        sizes[name] = [int(n) for n in pipe.execute()]
    info = r.info("memory")
    r.close()
    return sizes, int(info["used_memory"]), str(info.get("used_memory_human"))


def real(cohort: Cohort, quiet: float, rebuild: list[str], timeout: float, rebuild_timeout: float) -> None:
    subs = subscriptions()
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        settings = Settings(kafka_bootstrap_servers=kafka.url, kafka_enable_idempotence=False)
        asyncio.run(ensure_topics(settings))
        t = time.perf_counter()
        counts, lengths = asyncio.run(publish(kafka.url, cohort))
        total = sum(counts.values())
        print(f"published {total} hospital events in {time.perf_counter() - t:.0f} s: {dict(counts)}", flush=True)
        ports = {name: infra.free_port() for name in SERVICE_MODULES}
        with tempfile.TemporaryDirectory(prefix="osteocds-scale-") as logs:
            t0 = time.monotonic()
            stack = spawn_services(kafka.url, redis.url, kafka.settings, ports=ports, log_dir=Path(logs))
            ready = time.monotonic() - t0
            try:
                samples, cpu, elapsed = asyncio.run(watch(kafka.url, subs, counts, quiet, timeout, t0))
            finally:
                codes = stack.stop()
        sizes, used, human = redis_figures(redis.url)
        rebuilds = {}
        env = service_env(kafka.url, redis.url, kafka.settings)
        for name in rebuild:
            t = time.perf_counter()
            try:
                code = subprocess.run(
                    [sys.executable, "-m", SERVICE_MODULES[name][0], "rebuild"],
                    env={**env, "HTTP_PORT": str(infra.free_port()), "MLLP_PORT": "0"},
                    capture_output=True,
                    timeout=rebuild_timeout,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1  # not finished within --rebuild-timeout
            rebuilds[name] = (time.perf_counter() - t, code)
    consumed = sum(samples[-1][1].values())
    print(f"\nreal pipeline, {cohort.patients} patients x {cohort.years:g} years, services exit codes {codes}")
    print(
        f"  services ready after {ready:.1f} s; backlog through after {elapsed:.0f} s from their start (the rate below)"
    )
    print(f"  {total} hospital events, {consumed} records consumed by the five services")
    rate = total / elapsed
    print(f"  {rate:.1f} hospital events/s through the five services, {consumed / elapsed:.0f} records/s consumed")
    print("  records consumed per second by each service, per quarter of the run (in brackets: the mean history length")
    print("  of the patients' inputs in that quarter of the published stream, which the run follows roughly)")
    quarters = [samples[0]] + [next(s for s in samples if s[0] >= elapsed * q / 4) for q in (1, 2, 3, 4)]
    per_quarter = [
        statistics.fmean(lengths[int(len(lengths) * q / 4) : int(len(lengths) * (q + 1) / 4)]) for q in range(4)
    ]
    print("  " + " " * 22 + "".join(f"{'Q' + str(q + 1) + f' ({per_quarter[q]:.0f})':>14}" for q in range(4)))
    for g in SERVICES:
        rates = [(b[1][g] - a[1][g]) / max(1e-9, b[0] - a[0]) for a, b in itertools.pairwise(quarters)]
        print(f"  {g:<22}" + "".join(f"{r:>14.0f}" for r in rates))
    used_cpu = cpu[-1]
    print("  CPU seconds used (this host is shared: the rate per CPU second does not depend on the load)")
    for name, seconds in sorted(used_cpu.items()):
        consumed_by = samples[-1][1].get(name)
        per = f", {consumed_by / seconds:.0f} records per CPU second" if consumed_by and seconds else ""
        print(f"  {name:<22} {seconds:>8.1f} s{per}")
    stack_cpu = sum(used_cpu.values())
    print(f"  the whole stack: {stack_cpu:.0f} CPU s, {total / stack_cpu:.1f} hospital events per CPU second")
    print("  state per patient in Redis (JSON bytes)")
    for name in SERVICES:
        print(sizes_line(name, sizes[name]))
    print(f"  Redis used_memory {used} B ({human})")
    for name, (seconds, code) in rebuilds.items():
        print(f"  rebuild {name}: {seconds:.1f} s" + (" (not finished)" if code == -1 else f" (exit {code})"))
    baseline = total / (cohort.years * 365.25 * 86400)
    print(f"RESULT name=scale value={rate:.1f} unit=events/s baseline={baseline:.4f} ratio={rate / baseline:.1f}")


def main() -> None:
    infra.exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--years", type=float, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--in-process", action="store_true", help="the pure transitions in process (devstack/replay)")
    parser.add_argument("--sample", type=int, default=1, help="in process: every K-th patient, time scaled by K")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="in process: processes (patients split)")
    parser.add_argument("--quiet", type=float, default=20, help="seconds without progress that end the real run")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds at most for the real run")
    parser.add_argument("--rebuild", default=",".join(SERVICES), help="services to rebuild afterwards ('' none)")
    parser.add_argument("--rebuild-timeout", type=float, default=1800, help="seconds at most per rebuild")
    args = parser.parse_args()
    print(f"scale bench at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, pid {os.getpid()}")
    if args.in_process:
        in_process(Cohort(args.seed, args.patients, args.years, ANCHOR), max(1, args.sample), args.jobs)
    else:
        rebuild = [n for n in args.rebuild.split(",") if n]
        real(
            Cohort(args.seed, args.patients, args.years, datetime.now(UTC)),
            args.quiet,
            rebuild,
            args.timeout,
            args.rebuild_timeout,
        )


if __name__ == "__main__":
    main()
