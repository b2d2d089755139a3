"""`osteocds`: run the whole system locally.

osteocds up      start broker (embedded unless KAFKA_BOOTSTRAP_SERVERS), Redis, a local OIDC issuer and the
                 five services
osteocds demo    publish sample patient events to a running stack and print the alerts
osteocds token   print an access token of the local issuer: --role clinician|integration|ops --user NAME
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from contracts.topics import (
    LAB_NORMALISATION,
    NOTIFICATION,
    RADIOTHERAPY_PLANNER,
    SCORING,
    SYSTEMIC_PLANNER,
)
from devstack import infra, issuer
from shared.web.auth import CLINICIAN, ROLES

ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = ROOT / ".run" / "stack.json"

#: service name -> (python module, default HTTP port)
SERVICE_MODULES: dict[str, tuple[str, int]] = {
    LAB_NORMALISATION: ("services.lab_normalisation", 8101),
    SCORING: ("services.scoring", 8102),
    SYSTEMIC_PLANNER: ("services.systemic_planner", 8103),
    RADIOTHERAPY_PLANNER: ("services.radiotherapy_planner", 8104),
    NOTIFICATION: ("services.notification", 8105),
}


#: lab-normalisation's MLLP listener (HL7 v2 over TCP); 2575 is the port registered for HL7
MLLP_PORT = 2575


@dataclass
class RunningStack:
    urls: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    mllp_port: int = MLLP_PORT

    def stop(self, timeout: float = 20) -> dict[str, int]:
        """SIGTERM every service (they drain and commit), then wait; returns the exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes


def service_env(bootstrap: str, redis_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "HTTP_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def spawn_services(
    bootstrap: str,
    redis_url: str,
    extra_env: dict[str, str],
    ports: dict[str, int] | None = None,
    log_dir: Path | None = None,
    wait_ready: float = 60,
    mllp_port: int | None = None,
) -> RunningStack:
    """Start the five services as separate processes and wait until each answers /readyz. With `ports`
    given (tests), lab-normalisation's MLLP listener also gets a free port unless `mllp_port` says which."""
    env = service_env(bootstrap, redis_url, extra_env)
    mllp = mllp_port or (infra.free_port() if ports is not None else int(os.environ.get("MLLP_PORT", MLLP_PORT)))
    stack = RunningStack(urls={}, env=env, mllp_port=mllp)
    for name, (module, default_port) in SERVICE_MODULES.items():
        port = (ports or {}).get(name, default_port)
        out = open(log_dir / f"{name}.log", "wb") if log_dir else None  # noqa: SIM115 - lives with the process
        own = {"MLLP_PORT": str(mllp)} if name == LAB_NORMALISATION else {}
        stack.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**env, "HTTP_PORT": str(port), **own},
            stdout=out or None,
            stderr=subprocess.STDOUT if out else None,
        )
        stack.urls[name] = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(stack, wait_ready)
    except BaseException:
        stack.stop()
        raise
    return stack


def wait_until_ready(stack: RunningStack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(stack.urls)
    with httpx.Client(timeout=2) as client:
        while pending:
            for name, url in list(pending.items()):
                proc = stack.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode} during start-up")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{url}/readyz").status_code == 200:
                        del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")
            time.sleep(0.1)


@contextlib.contextmanager
def infrastructure(for_tests: bool) -> Iterator[tuple[infra.Provisioned, infra.Provisioned]]:
    port = None if for_tests or infra.port_open("127.0.0.1", 9092) else 9092
    with (
        infra.kafka(prefer_docker=for_tests, port=port) as k,
        infra.redis(prefer_docker=for_tests, reuse_default=not for_tests) as r,
    ):
        yield k, r


def identity_env() -> dict[str, str]:
    """OIDC_* settings given to `up`'s shell pass through to the services (a real identity provider)."""
    return {k: v for k, v in os.environ.items() if k.startswith("OIDC_")}


@contextlib.contextmanager
def identity() -> Iterator[tuple[dict[str, str], str]]:
    """The identity provider: OIDC_ISSUER / OIDC_JWKS_URL when set, else the local issuer on port 8100."""
    if os.environ.get("OIDC_ISSUER") or os.environ.get("OIDC_JWKS_URL"):
        yield identity_env(), os.environ.get("OIDC_ISSUER") or os.environ["OIDC_JWKS_URL"]
        return
    with issuer.serve(port=issuer.DEFAULT_PORT) as local:
        yield local.env(), f"{local.url} (local issuer; key in {issuer.ISSUER_DIR})"


def cmd_up(_: argparse.Namespace) -> int:
    print("OsteoCDS: starting infrastructure...", flush=True)
    with infrastructure(for_tests=False) as (kafka, redis), identity() as (oidc, oidc_label):
        print(f"  Kafka  {kafka.url}  ({kafka.kind})")
        print(f"  Redis  {redis.url}  ({redis.kind})")
        print(f"  OIDC   {oidc_label}")
        stack = spawn_services(kafka.url, redis.url, {**kafka.settings, **oidc})
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(
            json.dumps(
                {
                    "kafka": kafka.url,
                    "redis": redis.url,
                    "urls": stack.urls,
                    "kafka_settings": kafka.settings,
                    "issuer": oidc.get("OIDC_ISSUER"),
                }
            )
        )
        print("OsteoCDS is up (HTTP: every route but /healthz, /readyz and the page shell needs a bearer token):")
        for name, url in stack.urls.items():
            extra = ", /alerts, /cds-services, page /ui/patients/<id>" if name == NOTIFICATION else ""
            print(f"  {name:<22} {url}  (/healthz /readyz /metrics{extra})")
        print(f"  {'HL7 v2 over MLLP':<22} 127.0.0.1:{stack.mllp_port}  (lab-normalisation; MLLP_PORT)")
        print("Token:   ./osteocds token --role clinician --user clinician-1")
        print("Try it:  ./osteocds demo        Stop: Ctrl-C", flush=True)
        stop = {"now": False}

        def on_signal(*_: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stop["now"]:
                dead = [n for n, p in stack.procs.items() if p.poll() is not None]
                if dead:
                    print(f"service(s) exited: {', '.join(dead)}; stopping", file=sys.stderr)
                    break
                time.sleep(0.5)
        finally:
            print("\nstopping services...", flush=True)
            codes = stack.stop()
            STATE_FILE.unlink(missing_ok=True)
            # uvicorn re-raises the signal it handled after a graceful shutdown: -SIGTERM/-SIGINT is clean.
            clean = {0, -signal.SIGTERM, -signal.SIGINT}
            print("stopped: " + ", ".join(f"{n}={'ok' if c in clean else c}" for n, c in codes.items()), flush=True)
    return 0


def demo_events(patient_id: str, now: datetime) -> list[tuple[str, dict[str, object]]]:
    """A small, realistic timeline: hypercalcaemia, a cord compression, an assessment."""
    from contracts import topics as t

    def base(minutes_ago: int) -> dict[str, object]:
        at = (now - timedelta(minutes=minutes_ago)).isoformat()
        return {
            "event_id": str(uuid.uuid4()),
            "patient_id": patient_id,
            "occurred_at": at,
            "recorded_at": now.isoformat(),
            "source": "demo-bus",
        }

    loinc = "http://loinc.org"

    def lab(rid: str, code: str, display: str, value: float, unit: str) -> dict[str, object]:
        return {
            **base(90),
            "result_id": f"{patient_id}-{rid}",
            "value": value,
            "unit": unit,
            "status": "final",
            "code": {"system": loinc, "code": code, "display": display},
        }

    return [
        (
            t.PATIENT_RECORDS.name,
            {
                **base(600),
                "birth_date": "1956-04-02",
                "sex": "male",
                "weight_kg": 71.0,
                "histology": "adenocarcinoma",
                "molecular_profile": {"EGFR": "L858R"},
            },
        ),
        (
            t.CLINICAL_ASSESSMENTS.name,
            {
                **base(300),
                "ecog": 1,
                "life_expectancy_months": 12,
                "pain": {"character": "mechanical", "intensity": "moderate", "nrs": 6},
                "neurological_deficit": True,
                "primary_controlled": True,
            },
        ),
        (
            t.LAB_RESULTS.name,
            {
                **base(60),
                "result_id": f"{patient_id}-CA-1",
                "code": {"system": loinc, "code": "2000-8", "display": "Calcium"},
                "value": 3.30,
                "unit": "mmol/L",
                "status": "final",
            },
        ),
        (
            t.LAB_RESULTS.name,
            {
                **base(60),
                "result_id": f"{patient_id}-ALB-1",
                "code": {"system": loinc, "code": "1751-7", "display": "Albumin"},
                "value": 2.8,
                "unit": "g/dL",
                "status": "final",
            },
        ),
        (t.LAB_RESULTS.name, lab("CREA-1", "2160-0", "Creatinine", 0.9, "mg/dL")),
        (t.LAB_RESULTS.name, lab("VITD-1", "1989-3", "25-OH vitamin D", 17, "ng/mL")),
        (
            t.IMAGING_FINDINGS.name,
            {
                **base(30),
                "lesion_id": "T8-a",
                "skeletal_site": "spine",
                "vertebral_level": "T8",
                "lesion_type": "lytic",
                "modality": "mri",
                "epidural_extension": True,
                "cord_compression": True,
                "size_cm": 2.5,
            },
        ),
    ]


async def _publish(bootstrap: str, events: list[tuple[str, dict[str, object]]], idempotence: bool) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotence)
    await producer.start()
    try:
        for topic, doc in events:
            await producer.send_and_wait(topic, json.dumps(doc).encode(), key=str(doc["patient_id"]).encode())
    finally:
        await producer.stop()


def local_token(user: str, roles: list[str], ttl_s: int = 8 * 3600) -> str:
    """A token of the local issuer (the one `up` serves), for a user and roles."""
    st = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    url = st.get("issuer") or f"http://127.0.0.1:{issuer.DEFAULT_PORT}"
    return issuer.LocalIssuer(issuer.load_or_create_key(), url).token(user, roles, ttl_s=ttl_s)


def cmd_token(args: argparse.Namespace) -> int:
    print(local_token(args.user, args.role, args.ttl))
    return 0


def _print_alerts(alerts: list[dict[str, object]]) -> None:
    for a in alerts:
        extra = f", escaladée niveau {a['escalation_level']}" if a.get("escalation_level") else ""
        print(f"  [{a['severity']:>8}] {a['rule_id']:<14} {a['title']}  ({a['status']}{extra})")
        print(f"             {a['text_fr']}")
        cit = a["citation"]
        assert isinstance(cit, dict)
        print(f"             source: {cit['section']} ({cit['lines']})")


def cmd_demo(args: argparse.Namespace) -> int:
    if not STATE_FILE.exists() and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("No running stack found: start it first with ./osteocds up", file=sys.stderr)
        return 2
    st = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or st["kafka"]
    notif = st.get("urls", {}).get(NOTIFICATION, "http://127.0.0.1:8105")
    idempotence = st.get("kafka_settings", {}).get("KAFKA_ENABLE_IDEMPOTENCE", "true") == "true"
    patient = args.patient or f"demo-{uuid.uuid4().hex[:8]}"
    token = local_token("demo-clinician", [CLINICIAN], ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    asyncio.run(_publish(bootstrap, demo_events(patient, datetime.now(UTC)), idempotence))
    print(f"published demo events for patient {patient} (as demo-clinician); waiting for alerts...")
    print(f"Live page: {notif}/ui/patients/{patient}  (paste a token from ./osteocds token --role clinician)")

    def active() -> list[dict[str, object]]:
        r = httpx.get(f"{notif}/alerts", params={"patient_id": patient, "status": "active"}, headers=headers, timeout=5)
        r.raise_for_status()
        found: list[dict[str, object]] = r.json()
        return found

    deadline = time.monotonic() + 20
    alerts: list[dict[str, object]] = []
    while time.monotonic() < deadline and not alerts:  # critical alerts are shown at once
        alerts = active()
        time.sleep(0.25)
    print("Shown at once (critical):")
    _print_alerts(alerts)
    print(f"Info and warning decisions are held for the settle window ({args.settle:g} s); waiting...", flush=True)
    time.sleep(args.settle + 3)
    alerts = active()
    print("What still holds, after the settle window:")
    _print_alerts(alerts)
    print(f"{len(alerts)} active alert(s). API: {notif}/alerts?patient_id={patient}")
    planner = st.get("urls", {}).get(SYSTEMIC_PLANNER, "http://127.0.0.1:8103")
    print(f"Treatment plan: {planner}/patients/{patient}/plan  (FHIR orders: .../plan/medication-requests)")
    return 0 if alerts else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="osteocds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start broker, Redis and the five services").set_defaults(fn=cmd_up)
    demo = sub.add_parser("demo", help="publish sample events and show the alerts")
    demo.add_argument("--patient", help="pseudonymous patient ID to use")
    demo.add_argument("--settle", type=float, default=float(os.environ.get("ALERT_SETTLE_SECONDS", "30")))
    demo.set_defaults(fn=cmd_demo)
    token = sub.add_parser("token", help="print an access token of the local issuer")
    token.add_argument("--role", action="append", choices=ROLES, required=True, help="repeat for several roles")
    token.add_argument("--user", required=True, help="the token's subject (who acts)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds (default 8 h)")
    token.set_defaults(fn=cmd_token)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
