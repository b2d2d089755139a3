"""Issue 22: broker failover on a 3-broker Apache Kafka cluster (KRaft, replication factor 3, min.insync.replicas 2,
idempotent acks=all producers). Mixed patient events go through the five real services while the broker that leads
the busiest partitions is SIGKILLed mid-stream and started again once another broker leads them, twice; the alerts
notification then serves, and the recommendations on the topic, are compared with a fault-free run of the same
events on a fresh cluster: 0 lost, 0 duplicated, 0 wrong, every critical alert shown (hazard log HAZ-22-FAILOVER)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import LAB_RESULTS, RECOMMENDATIONS
from devstack import apache_kafka, infra, issuer_http
from devstack.stack import SERVICE_MODULES, RunningStack, service_env, wait_until_ready
from shared.web.auth import CLINICIAN
from tests.chaos.harness import Event, _decision, _publish, _spawn, compare, make_events, settle

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # its own clusters and stack, twice; failovers timed: alone

#: the workload: about 150 patients' events, published at RATE per second in both runs (about 22 s: both kills
#: fall in it unless a restart takes more than about 15 s)
EVENTS, RATE = 900, 40.0
#: a killed broker stays down until its partitions are led by another replica (the controller fences it
#: broker.session.timeout.ms = 3 s after its last heartbeat; longer when it was the active controller, whose
#: successor is elected first), at most this long
FAILOVER_WITHIN_S = 60.0


@dataclass
class Kill:
    node: int
    led: list[int]  # partitions of LAB_RESULTS it led when killed
    led_after: dict[int, int] = field(default_factory=dict)  # their leaders while it was down
    at_s: float = 0.0  # since the stream started
    failover_s: float = 0.0  # from the kill until every partition it led had another leader
    restart_s: float = 0.0  # from its start until the cluster lists it again


@dataclass
class Run:
    alerts: dict[str, list[dict[str, Any]]]
    recommendations: list[dict[str, Any]]
    kills: list[Kill]
    seconds: float


async def _leaders(c: apache_kafka.ApacheCluster, topic: str) -> dict[int, int]:
    return {p: await c.aleader(topic, p) for p in range(await _partitions(c, topic))}


async def _partitions(c: apache_kafka.ApacheCluster, topic: str) -> int:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(**c._client_kwargs())
    try:
        await client.bootstrap()
        await client._metadata_update(client.cluster, [topic])
        return len(client.cluster.partitions_for_topic(topic) or ())
    finally:
        await client.close()


async def _kill_leader(c: apache_kafka.ApacheCluster, t0: float) -> Kill:
    """SIGKILL the broker leading the most LAB_RESULTS partitions; once another broker leads them, start it
    again."""
    leaders = await _leaders(c, LAB_RESULTS.name)
    node = Counter(leaders.values()).most_common(1)[0][0]
    kill = Kill(node, sorted(p for p, n in leaders.items() if n == node), at_s=round(time.monotonic() - t0, 1))
    await asyncio.to_thread(c.kill, node)
    killed = time.monotonic()
    while time.monotonic() < killed + FAILOVER_WITHIN_S:
        kill.led_after = {p: await c.aleader(LAB_RESULTS.name, p) for p in kill.led}
        if all(n not in (node, -1) for n in kill.led_after.values()):
            break
        await asyncio.sleep(0.5)
    kill.failover_s = round(time.monotonic() - killed, 1)
    t1 = time.monotonic()
    await asyncio.to_thread(c.start, node)
    kill.restart_s = round(time.monotonic() - t1, 1)
    return kill


async def _topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of a topic, as JSON."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        out: list[dict[str, Any]] = []
        while batch := await consumer.getmany(timeout_ms=2000, max_records=10_000):
            out += [json.loads(r.value) for records in batch.values() for r in records]
        return out
    finally:
        await consumer.stop()


async def run(events: list[Event], patients: list[str], leader_kills: int, workdir: Path) -> Run:
    """The five services on a fresh 3-broker cluster and Redis, the events published at RATE (at full speed when
    no broker is killed); `leader_kills` brokers killed one at a time from 10 % of the stream on."""
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        apache_kafka.cluster(3, workdir=workdir / "kafka", graceful_stop=False) as c,
        infra.local_redis() as redis_url,
        issuer_http.serve(directory=workdir / "issuer") as oidc,
    ):
        extra = {
            **c.settings,
            **oidc.env(),
            "ALERT_SETTLE_SECONDS": "1",
            "TIMER_POLL_INTERVAL_S": "0.2",
            "MLLP_PORT": str(infra.free_port()),
        }
        bearer = oidc.token("failover-clinician", [CLINICIAN])
        stack = RunningStack(urls={n: f"http://127.0.0.1:{infra.free_port()}" for n in SERVICE_MODULES})
        stack.env = service_env(c.bootstrap, redis_url, extra)
        for name in SERVICE_MODULES:
            _spawn(stack, name, workdir)
        kills: list[Kill] = []
        try:
            await asyncio.to_thread(wait_until_ready, stack, 120)
            # the fault-free run publishes at full speed (as the chaos harness's): the rate only spreads the kills
            rate = RATE if leader_kills else None
            publishing = asyncio.create_task(_publish(c.bootstrap, events, rate, idempotence=True))
            start = time.monotonic()
            await asyncio.sleep(len(events) / RATE * 0.1)
            for _ in range(leader_kills):  # one broker down at a time: the next once the last is back
                kills.append(await _kill_leader(c, start))
            await publishing
            alerts = await settle(stack, patients, 3.0, timeout=300, bearer=bearer, redis_url=redis_url)
            recommendations = await _topic(c.bootstrap, RECOMMENDATIONS.name)
        finally:
            stack.stop()
    return Run(alerts, recommendations, kills, round(time.monotonic() - t0, 1))


def _decisions(recommendations: list[dict[str, Any]]) -> set[str]:
    """The decisions on the topic: a recommendation's ID is derived from its rule, patient and subject (the same
    decision re-worded keeps it; a withdrawal's ID names its trigger, so withdrawals are left out)."""
    return {str(r["event_id"]) for r in recommendations if r.get("status") != "withdrawn"}


def _in_force(recommendations: list[dict[str, Any]]) -> set[str]:
    """The decisions in force at the end: issued and not withdrawn since (read in topic order; one patient's
    records are in one partition, in order). A decision issued then withdrawn in one run only is transient: which
    of a patient's events on two topics came first differs between runs, with or without faults."""
    live: set[str] = set()
    for r in recommendations:
        if r.get("status") == "withdrawn":
            live -= {str(s) for s in r.get("supersedes", [])}
        else:
            live.add(str(r["event_id"]))
    return live


def _published_twice(recommendations: list[dict[str, Any]]) -> int:
    """Records published more than once: the same value, byte for byte as JSON (same decision, wording, cause)."""
    counts = Counter(json.dumps(r, sort_keys=True) for r in recommendations)
    return sum(n - 1 for n in counts.values() if n > 1)


async def test_killing_the_partition_leader_mid_stream_loses_duplicates_or_falsifies_no_alert(tmp_path: Path) -> None:
    patients, events = make_events(EVENTS, seed=22)
    clean = await run(events, patients, 0, tmp_path / "clean")
    faulty = await run(events, patients, 2, tmp_path / "failover")
    summary: dict[str, Any] = {
        "events": len(events),
        "clean_s": clean.seconds,
        "failover_s": faulty.seconds,
        "kills": [k.__dict__ for k in faulty.kills],
        **compare(clean.alerts, faulty.alerts),
    }
    summary["recommendations"] = {
        "clean": [len(clean.recommendations), _published_twice(clean.recommendations)],
        "failover": [len(faulty.recommendations), _published_twice(faulty.recommendations)],
        "decisions_only_clean": len(_decisions(clean.recommendations) - _decisions(faulty.recommendations)),
        "decisions_only_failover": len(_decisions(faulty.recommendations) - _decisions(clean.recommendations)),
        "in_force": [len(_in_force(clean.recommendations)), len(_in_force(faulty.recommendations))],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))
    runs = {"clean": clean.recommendations, "failover": faulty.recommendations}
    (tmp_path / "recommendations.json").write_text(json.dumps(runs))  # for a diagnosis
    print("LEADER-KILL", json.dumps(summary))
    # the faults happened where they matter: each killed broker led partitions, which another broker then led
    assert len(faulty.kills) == 2, summary
    for k in faulty.kills:
        assert k.led, summary
        assert all(n not in (k.node, -1) for n in k.led_after.values()), summary
    # the alerts notification serves: the same as without faults
    assert (summary["lost"], summary["duplicated"], summary["wrong"]) == (0, 0, 0), summary
    critical = [(p, a) for p, alerts in clean.alerts.items() for a in alerts if a.get("severity") == "critical"]
    assert len(critical) > 20, summary
    assert all(_decision(a) in [_decision(b) for b in faulty.alerts[p]] for p, a in critical), summary
    # the recommendations on the topic: the same decisions in force, none published twice (an idempotent
    # producer's retry after the leader moved is written once)
    assert _in_force(faulty.recommendations) == _in_force(clean.recommendations), summary
    assert _published_twice(faulty.recommendations) == 0, summary
