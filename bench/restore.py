"""Restore from the changelogs against rebuild by replay (issue 22), per service, on Apache Kafka.

    .venv/bin/python bench/restore.py --patients 1000 --years 3                # state filled by replaying (fast)
    .venv/bin/python bench/restore.py --patients 150 --years 3 --fill live     # state filled by the live services

The bench starts a 1-node Apache Kafka cluster (devstack/apache_kafka.py; `--nodes` for more) and a redis-server,
creates the topics and the five changelogs (compacted; here with 1 MB segments so that compaction runs during the
bench: with the broker's default 1 GB segments a changelog is compacted only once a gigabyte of it is written),
publishes the cohort (devstack/cohort.py, ending now) and fills the services' state and changelogs:

- `--fill replay` (default): for each service in pipeline order, its group's offsets are committed at the end of its
  input topics and `python -m services.<name> rebuild` runs with STATE_CHANGELOG=true: it replays the inputs with the
  service's pure code, publishes the outputs (the next service's inputs), writes every state to the changelog
  (shared/runtime/changelog.py `seed`) and to Redis. ~5 times faster than the live services (bench/scale.py), so a
  cohort of thousands of patients fits in minutes here; the changelog holds what a live service writes (the same
  record per patient: tests/test_changelog.py shows the restored state is the live one byte for byte).
- `--fill live`: the five services run as processes with STATE_CHANGELOG=true through the backlog (until every
  group has committed every input and nothing moved for `--quiet` s), each batch writing its patients' records.

Then (after `--compaction-wait` seconds with `--fill live`: the broker's cleaner compacts the rolled segments;
the active one is never cleaned) it times, per service,
`python -m services.<name> rebuild` with STATE_CHANGELOG=true (restore: the changelog read to its end, the held tail
marked, states written) and with STATE_CHANGELOG=false (replay: every input since the beginning, the outputs compared
with the topics, states written). Both are processes like an operator's; the figures are the rebuild's own seconds
(its JSON report) and the process's wall time (with Python's start and imports, ~2-4 s).

RESULT name=restore: value = the five restores' seconds summed, baseline = the five replays' seconds summed,
ratio = baseline / value (how many times faster the restore is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from bench.scale import publish, subscriptions
from contracts.topics import CHANGELOGS, SERVICES, TOPICS
from devstack import apache_kafka, infra
from devstack.cohort import Cohort
from devstack.stack import SERVICE_MODULES, service_env, spawn_services
from shared.runtime.kafka import ensure_topics
from shared.runtime.reading import partitions
from shared.settings import Settings

#: the changelogs' configuration in this bench: small segments, so that the broker's cleaner compacts them within
#: the bench (the cleaner never touches the active segment)
BENCH_CHANGELOG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(1 << 20),
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "1000",
}
#: the broker's cleaner looks for work every 15 s by default; the cohort's records carry their publication time (up to
#: `--years` ago), and the broker's default retention (7 days) would delete most of them within minutes, and with them
#: the history a replay needs (the topics of deploy/ keep that default too: see the README, "Restore from changelogs")
BROKER = {"log.cleaner.backoff.ms": "1000", "log.retention.ms": "-1"}


async def create_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        rf = settings.kafka_replication_factor
        await admin.create_topics(
            [NewTopic(t.name, t.partitions, rf, topic_configs=BENCH_CHANGELOG) for t in CHANGELOGS]
        )
    finally:
        await admin.close()
    await ensure_topics(settings, TOPICS)


async def coordinators(url: str) -> None:
    """Every service's group coordinator found: a fresh cluster creates its offsets topic on the first request and
    answers GroupCoordinatorNotAvailable meanwhile."""
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        for name in SERVICES:
            for _ in range(60):
                try:
                    await admin.find_coordinator(name)
                    break
                except KafkaError:
                    await asyncio.sleep(1)
    finally:
        await admin.close()


async def ends(url: str, topics: list[str]) -> dict[TopicPartition, int]:
    parts = await partitions(Settings(kafka_bootstrap_servers=url), topics)
    probe = AIOKafkaConsumer(bootstrap_servers=url, group_id=None)
    await probe.start()
    try:
        return dict(await probe.end_offsets(parts))
    finally:
        await probe.stop()


async def commit_at_end(url: str, group: str, topics: list[str]) -> None:
    """The group's offsets at the end of its topics: what a live service would have committed after the backlog."""
    at = {tp: off for tp, off in (await ends(url, topics)).items() if off > 0}
    if not at:
        return
    c = AIOKafkaConsumer(bootstrap_servers=url, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        c.assign(list(at))
        await c.commit(at)
    finally:
        await c.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:  # the rebuild reads them through the admin API, which does not wait for a new group's coordinator
        for _ in range(60):
            try:
                await admin.list_consumer_group_offsets(group, partitions=list(at))
                return
            except KafkaError:
                await asyncio.sleep(1)
    finally:
        await admin.close()


async def through(url: str, subs: dict[str, set[str]], counts: Counter[str], quiet: float, timeout: float) -> float:
    """--fill live: wait until every group has committed every hospital input of its topics and no committed offset
    moved for `quiet` seconds; returns the seconds it took. (Partitions from the broker: bench/scale.py's watch reads
    them from a consumer's metadata, which Apache Kafka leaves empty.)"""
    t0, last, still = time.monotonic(), None, time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        parts = {g: await partitions(Settings(kafka_bootstrap_servers=url), sorted(subs[g])) for g in SERVICES}
        while time.monotonic() - t0 < timeout:
            now: dict[str, Counter[str]] = {}
            for g in SERVICES:
                per: Counter[str] = Counter()
                for tp, meta in (await admin.list_consumer_group_offsets(g, partitions=parts[g])).items():
                    if meta is not None and meta.offset > 0:
                        per[tp.topic] += meta.offset
                now[g] = per
            if now != last:
                last, still = now, time.monotonic()
            done = all(now[g][t] >= counts[t] for g in SERVICES for t in subs[g] if t in counts)
            if done and time.monotonic() - still >= quiet:
                break
            await asyncio.sleep(5)
        return time.monotonic() - t0
    finally:
        await admin.close()


async def changelog_records(url: str) -> dict[str, int]:
    """Each changelog's offset range (end minus start): the records written, as compaction keeps the offsets; the
    restore's report counts the records it read."""
    probe = AIOKafkaConsumer(bootstrap_servers=url, group_id=None)
    await probe.start()
    try:
        out: dict[str, int] = {}
        for t in CHANGELOGS:
            parts = await partitions(Settings(kafka_bootstrap_servers=url), [t.name])
            first, last = await probe.beginning_offsets(parts), await probe.end_offsets(parts)
            out[t.producers[0]] = sum(last[tp] - first[tp] for tp in parts)
        return out
    finally:
        await probe.stop()


def rebuild(name: str, env: dict[str, str], changelog: bool, timeout: float) -> tuple[float, dict[str, Any]]:
    """`python -m services.<name> rebuild`: wall seconds and its JSON report."""
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", SERVICE_MODULES[name][0], "rebuild"],
        env={**env, "STATE_CHANGELOG": str(changelog).lower(), "HTTP_PORT": str(infra.free_port()), "MLLP_PORT": "0"},
        capture_output=True,
        timeout=timeout,
        check=False,
        text=True,
    )
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{name} rebuild exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    infra.exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--years", type=float, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--fill", choices=("replay", "live"), default="replay")
    parser.add_argument("--quiet", type=float, default=20, help="--fill live: seconds without progress that end it")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds at most per rebuild or live run")
    parser.add_argument("--compaction-wait", type=float, default=60, help="--fill live: seconds left to compaction")
    args = parser.parse_args()
    print(f"restore bench at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, pid {os.getpid()}", flush=True)
    cohort = Cohort(args.seed, args.patients, args.years, datetime.now(UTC))
    with (
        apache_kafka.cluster(args.nodes, overrides=BROKER) as kafka,
        infra.local_redis() as redis_url,
        tempfile.TemporaryDirectory(prefix="osteocds-restore-") as logs,
    ):
        url = kafka.bootstrap
        broker = {**kafka.settings, "KAFKA_ENABLE_IDEMPOTENCE": "true"}
        settings = Settings.model_validate({k.lower(): v for k, v in broker.items()})
        asyncio.run(create_topics(settings))
        asyncio.run(coordinators(url))
        t = time.perf_counter()
        counts, _ = asyncio.run(publish(url, cohort))
        total = sum(counts.values())
        print(f"published {total} hospital events in {time.perf_counter() - t:.0f} s", flush=True)
        env = service_env(url, redis_url, {**broker, "STATE_CHANGELOG": "true"})
        subs = subscriptions()
        t = time.perf_counter()
        if args.fill == "live":
            stack = spawn_services(
                url, redis_url, env, ports={n: infra.free_port() for n in SERVICES}, log_dir=Path(logs)
            )
            try:
                took = asyncio.run(through(url, subs, counts, args.quiet, args.timeout))
                print(f"  the five services through the backlog in {took:.0f} s", flush=True)
            finally:
                stack.stop()
        else:
            for name in SERVICES:  # pipeline order: each one's outputs are the next ones' inputs
                asyncio.run(commit_at_end(url, name, sorted(subs[name])))
                wall, report = rebuild(name, env, True, args.timeout)
                print(
                    f"  filled {name}: {report['patients']} patients, {report['events']} events, {wall:.0f} s",
                    flush=True,
                )
        print(f"state and changelogs filled ({args.fill}) in {time.perf_counter() - t:.0f} s", flush=True)
        written = asyncio.run(changelog_records(url))
        print(f"changelog records written (offset ranges; compaction removes records within them): {written}")
        if args.fill == "live":  # the broker's cleaner compacts the rolled segments meanwhile
            time.sleep(args.compaction_wait)
        rows = []
        for name in SERVICES:
            r_wall, restored = rebuild(name, env, True, args.timeout)
            p_wall, replayed = rebuild(name, env, False, args.timeout)
            assert restored["source"] == "changelog" and replayed["source"] == "replay", (restored, replayed)
            rows.append((name, restored, r_wall, replayed, p_wall))
            print(f"  {name}: restore {restored['seconds']:.1f} s, replay {replayed['seconds']:.1f} s", flush=True)
    years = f"{args.years:g}"
    print(f"\n{args.patients} patients x {years} years ({total} hospital events), Apache Kafka {args.nodes} node(s)")
    head = f"{'patients':>9}{'records':>9}{'restore s':>11}{'(wall)':>8}{'events':>9}{'replay s':>10}{'(wall)':>8}"
    print(f"  {'service':<22}{head}")
    for name, restored, r_wall, replayed, p_wall in rows:
        print(
            f"  {name:<22}{restored['patients']:>9}{restored['changelog_records']:>9}{restored['seconds']:>11.1f}"
            f"{r_wall:>8.1f}{replayed['events']:>9}{replayed['seconds']:>10.1f}{p_wall:>8.1f}"
        )
    value = sum(r[1]["seconds"] for r in rows)
    baseline = sum(r[3]["seconds"] for r in rows)
    print(
        f"RESULT name=restore value={value:.1f} unit=s baseline={baseline:.1f} ratio={baseline / max(value, 1e-9):.1f}"
    )


if __name__ == "__main__":
    main()
