"""Redis Cluster failover run (issue 22): the five services as processes on a local Redis Cluster (3 masters, 3
replicas) and the embedded broker; a stream of mixed patient events (the chaos harness's workload) goes through while
one master is SIGKILLed mid-stream, its replica takes over, and the killed node is started again (it rejoins as a
replica). The final alerts are compared with a fault-free run of the same events on a fresh broker and cluster: lost,
duplicated and wrong alerts are counted (all must be 0).

    python -m tests.cluster.failover [--events 900] [--rate 100]     # prints a JSON summary; last line FAILOVER ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.crc import key_slot

from devstack import infra, issuer_http
from devstack.redis_cluster import cluster
from devstack.stack import SERVICE_MODULES, RunningStack, service_env, wait_until_ready
from shared.runtime.state import TAGS
from shared.web.auth import CLINICIAN
from tests.chaos.harness import Event, _publish, _spawn, compare, make_events, settle


async def run(
    events: list[Event], patients: list[str], kill: bool, rate: float | None, log_dir: Path
) -> dict[str, Any]:
    """One run; with `kill`, the master serving the first bucket is SIGKILLed halfway through the stream."""
    t0 = time.monotonic()
    out: dict[str, Any] = {}
    with (
        infra.local_tansu() as bootstrap,
        cluster(workdir=log_dir / "redis-cluster") as c,
        issuer_http.serve(directory=log_dir / "issuer") as oidc,
    ):
        settle_env = {"ALERT_SETTLE_SECONDS": "1", "TIMER_POLL_INTERVAL_S": "0.2"}
        extra = {**infra.EMBEDDED_KAFKA_SETTINGS, **oidc.env(), **settle_env, "MLLP_PORT": str(infra.free_port())}
        bearer = oidc.token("failover-clinician", [CLINICIAN])
        stack = RunningStack(urls={n: f"http://127.0.0.1:{infra.free_port()}" for n in SERVICE_MODULES})
        stack.env = service_env(bootstrap, c.cluster_url, extra)
        for name in SERVICE_MODULES:
            _spawn(stack, name, log_dir)
        try:
            await asyncio.to_thread(wait_until_ready, stack, 90)
            publishing = asyncio.create_task(_publish(bootstrap, events, rate, idempotence=False))
            if kill:
                await asyncio.sleep((len(events) / rate if rate else 5.0) * 0.45)
                slot = int(key_slot(TAGS[0].encode()))
                victim = c.master_of_slot(slot)
                killed_at = time.monotonic()
                c.kill(victim)  # SIGKILL: what it had not replicated yet is lost
                promoted = await asyncio.to_thread(c.wait_failover, victim, slot)
                out["failover_s"] = round(time.monotonic() - killed_at, 2)
                out["killed"], out["promoted"] = victim.port, promoted.port
                c.start(victim)  # as an orchestrator would: it comes back empty and rejoins as a replica
            await publishing
            out["stream_s"] = round(time.monotonic() - t0, 1)
            settle_t0 = time.monotonic()
            out["alerts"] = await settle(
                stack, patients, 3.0, 300, bearer, lambda: [f"redis://127.0.0.1:{n.port}" for n in c.masters()]
            )
            out["settle_s"] = round(time.monotonic() - settle_t0, 1)
        finally:
            stack.stop()
    logs = "".join(p.read_text(errors="replace") for p in log_dir.glob("*.log"))
    out["state_lost_logged"] = logs.count("patient state lost from Redis")
    out["rebuilt_logged"] = logs.count("state rebuilt from Kafka")
    out["retries_logged"] = logs.count("retrying after transient error")
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


async def failover(events_n: int, rate: float, workdir: Path) -> dict[str, Any]:
    patients, events = make_events(events_n, seed=22)
    (workdir / "clean").mkdir(parents=True, exist_ok=True)
    (workdir / "failover").mkdir(parents=True, exist_ok=True)
    clean = await run(events, patients, kill=False, rate=None, log_dir=workdir / "clean")
    faulty = await run(events, patients, kill=True, rate=rate, log_dir=workdir / "failover")
    diff = compare(clean["alerts"], faulty["alerts"])
    (workdir / "alerts.json").write_text(json.dumps({"clean": clean["alerts"], "failover": faulty["alerts"]}))
    return {
        "events": len(events),
        "patients": len(patients),
        "alerts": sum(len(v) for v in clean["alerts"].values()),
        "critical_alerts": sum(1 for v in clean["alerts"].values() for a in v if a.get("severity") == "critical"),
        "rate_per_s": rate,
        **{k: v for k, v in faulty.items() if k != "alerts"},
        "clean_run_s": clean["seconds"],
        **diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.failover", description=__doc__)
    parser.add_argument("--events", type=int, default=900)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second during the faulty run")
    parser.add_argument("--keep", type=Path, help="keep the logs and both runs' alerts in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="osteocds-failover-") as d:
        summary = asyncio.run(failover(args.events, args.rate, args.keep or Path(d)))
    print(json.dumps(summary, indent=2))
    print(f"FAILOVER lost={summary['lost']} duplicated={summary['duplicated']} wrong={summary['wrong']}")
    return 0 if summary["lost"] == summary["duplicated"] == summary["wrong"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
