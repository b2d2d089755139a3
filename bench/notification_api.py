"""What authentication and the audit trail cost on notification's API: requests per second of an audited,
authenticated read (`GET /alerts` with a clinician token: JWT check against the JWKS, audit event published
and acknowledged by the broker, Redis read) next to `GET /healthz` (open, no I/O) on the same server in the
same run, alternately over several rounds (medians). Also prints the token check alone (µs) and the round
trip of an acknowledgement (published as an event, applied by the consumer, answered).

    .venv/bin/python bench/notification_api.py [--requests 400] [--rounds 5] [--acks 20]

Starts its own broker, Redis, local OIDC issuer and one notification service (in-process, real HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn

from contracts.clinical import Recommendation
from contracts.rules import RULESET_VERSION, cite
from devstack import infra, issuer, issuer_http
from services.notification.app import build
from services.notification.settings import NotificationSettings
from shared.web.auth import CLINICIAN, Authenticator, AuthSettings


async def rate(c: httpx.AsyncClient, path: str, n: int, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        r = await c.get(path, headers=headers)
        r.raise_for_status()
    return n / (time.perf_counter() - t0)


def crisis(patient_id: str) -> Recommendation:
    now = datetime.now(UTC)
    return Recommendation(
        event_id=uuid.uuid4(),
        patient_id=patient_id,
        occurred_at=now,
        recorded_at=now,
        source="bench",
        rule_id="LAB-CA-CRISIS",
        ruleset_version=RULESET_VERSION,
        severity="critical",
        title="bench",
        text_fr="bench",
        citation=cite("LAB-CA-CRISIS"),
        inputs=[],
        produced_by="bench",
    )


async def run(args: argparse.Namespace, kafka: infra.Provisioned, redis_url: str, idp: issuer.LocalIssuer) -> None:
    os.environ.update(idp.env())  # read by the app's AuthSettings
    port = infra.free_port()
    doc: dict[str, object] = {k.lower(): v for k, v in kafka.settings.items()}
    doc.update(kafka_bootstrap_servers=kafka.url, redis_url=redis_url, http_port=port, timer_poll_interval_s=0.2)
    service, app = build(NotificationSettings.model_validate(doc))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    headers = {"Authorization": f"Bearer {idp.token('bench-clinician', [CLINICIAN])}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            alerts = "/alerts?patient_id=bench-1"
            await rate(c, alerts, 50, headers)  # warm-up: JWKS fetched, connections open
            base, auth = [], []
            for _ in range(args.rounds):
                base.append(await rate(c, "/healthz", args.requests, {}))
                auth.append(await rate(c, alerts, args.requests, headers))

            checker = Authenticator(AuthSettings(oidc_issuer=idp.url, oidc_jwks_url=f"{idp.url}/jwks.json"))
            tok = headers["Authorization"].split()[1]
            checker.verify(tok)
            t0 = time.perf_counter()
            for _ in range(args.requests):
                checker.verify(tok)
            verify_us = (time.perf_counter() - t0) / args.requests * 1e6

            recs = [crisis(f"bench-ack-{i}") for i in range(args.acks)]
            for rec in recs:
                await (await service.producer.send(rec))
            round_trips = []
            for rec in recs:
                while not (await c.get(f"/alerts?patient_id={rec.patient_id}", headers=headers)).json():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                t0 = time.perf_counter()
                r = await c.post(f"/alerts/{rec.event_id}/ack", json={"patient_id": rec.patient_id}, headers=headers)
                assert r.status_code == 200 and r.json()["acknowledged_by"] == "bench-clinician", r.text
                round_trips.append((time.perf_counter() - t0) * 1000)
    finally:
        server.should_exit = True
        await task
    b, a = statistics.median(base), statistics.median(auth)
    print(f"GET /healthz (open): {b:.0f} req/s; GET /alerts (token + audit + Redis): {a:.0f} req/s (medians)")
    print(f"token check alone (ES256, JWKS cached): {verify_us:.0f} µs")
    print(
        f"acknowledgement round trip (action event -> consumer -> answer): median "
        f"{statistics.median(round_trips):.0f} ms, max {max(round_trips):.0f} ms over {len(round_trips)}"
    )
    print(f"RESULT name=notification_api value={a:.0f} unit=req/s baseline={b:.0f} ratio={a / b:.3f}")


def main() -> None:
    infra.exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--acks", type=int, default=20)
    args, _ = parser.parse_known_args()  # `osteocds bench` passes the same arguments to every bench
    with (
        infra.kafka(prefer_docker=False) as kafka,
        infra.redis(prefer_docker=False) as redis,
        tempfile.TemporaryDirectory() as d,
        issuer_http.serve(directory=Path(d)) as idp,
    ):
        asyncio.run(run(args, kafka, redis.url, idp))


if __name__ == "__main__":
    main()
