"""`osteocds demo` and `osteocds token` (the parser is devstack/stack.py's `main`): publish a small patient timeline
to a running `up` as the hospital bus would, then show the alerts it raises (the critical ones at once, the others
after notification's settle window) and say when the system did not answer as expected; print an access token of the
local issuer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from contracts.topics import NOTIFICATION, SYSTEMIC_PLANNER
from devstack import issuer
from devstack.stack import DEFAULT_SETTLE_S, STATE_FILE
from shared.web.auth import CLINICIAN

#: what the demo timeline must raise: critical alerts shown at once, and an anti-resorptive start after the window
DEMO_CRITICAL_RULES = ("LAB-CA-CRISIS", "RT-MSCC")
DEMO_SETTLED_RULE = "SYS-AR-START"
#: how long demo waits for the critical alerts, and beyond the settle window for the others
DEMO_CRITICAL_WAIT_S = 20.0
SETTLE_MARGIN_S = 3.0


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


async def _publish(
    bootstrap: str, events: list[tuple[str, dict[str, object]]], idempotence: bool, bus: dict[str, str] | None = None
) -> None:
    """Publish as the hospital bus: with its credentials on a secured `up` (`bus`: its client settings)."""
    from aiokafka import AIOKafkaProducer

    from shared.settings import Settings
    from shared.transport import kafka_client_kwargs

    env = {k.lower(): v for k, v in {**(bus or {}), "KAFKA_BOOTSTRAP_SERVERS": bootstrap}.items()}
    kwargs = kafka_client_kwargs(Settings.model_validate(env))
    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=idempotence)
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


def fetch_active(notif: str, patient: str, headers: dict[str, str]) -> list[dict[str, object]]:
    """The patient's active alerts, as notification serves them."""
    r = httpx.get(f"{notif}/alerts", params={"patient_id": patient, "status": "active"}, headers=headers, timeout=5)
    r.raise_for_status()
    found: list[dict[str, object]] = r.json()
    return found


def query_hint(notif: str, patient: str) -> list[str]:
    """The ready-to-paste command that lists a patient's alerts (what the README shows)."""
    return [
        'curl -H "Authorization: Bearer $(./osteocds token --role clinician --user clinician-1)" \\',
        f'     "{notif}/alerts?patient_id={patient}"',
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    if not STATE_FILE.exists() and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("No running stack found: start it first with ./osteocds up", file=sys.stderr)
        return 2
    st = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or st["kafka"]
    notif = st.get("urls", {}).get(NOTIFICATION, "http://127.0.0.1:8105")
    idempotence = st.get("kafka_settings", {}).get("KAFKA_ENABLE_IDEMPOTENCE", "true") == "true"
    recorded = st.get("settle_seconds")  # the window `up` started notification with
    window = float(recorded if recorded is not None else os.environ.get("ALERT_SETTLE_SECONDS", DEFAULT_SETTLE_S))
    settle = window if args.settle is None else args.settle
    patient = args.patient or f"demo-{uuid.uuid4().hex[:8]}"
    token = local_token("demo-clinician", [CLINICIAN], ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    bus = st.get("bus_settings") or None  # a secured `up`: the hospital bus's principal
    asyncio.run(_publish(bootstrap, demo_events(patient, datetime.now(UTC)), idempotence, bus))
    print(f"published demo events for patient {patient} (as demo-clinician); waiting for alerts...")
    print(f'Live page: {notif}/ui/patients/{patient}  (sign in with "Se connecter": the local issuer\'s form)')

    expected = set(DEMO_CRITICAL_RULES)
    deadline = time.monotonic() + DEMO_CRITICAL_WAIT_S
    alerts: list[dict[str, object]] = []
    while True:  # critical alerts are shown at once: wait until each expected one is there
        alerts = fetch_active(notif, patient, headers)
        if expected <= {str(a["rule_id"]) for a in alerts} or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    print("Shown at once (critical):")
    _print_alerts(alerts)
    missing = sorted(expected - {str(a["rule_id"]) for a in alerts})
    if missing:
        print(
            f"demo: the system did not answer as expected: critical alert(s) {', '.join(missing)} not shown "
            f"{DEMO_CRITICAL_WAIT_S:g} s after the events were published. A service may be stalled or down: "
            "see `./osteocds up`'s output and `./osteocds status`.",
            file=sys.stderr,
        )
        return 1
    if settle < window:
        print(
            f"Note: waiting {settle:g} s (--settle), but the stack holds info and warning decisions {window:g} s "
            "(ALERT_SETTLE_SECONDS of `up`): they will not be shown yet.",
            flush=True,
        )
    print(
        f"Info and warning decisions are held for the settle window ({window:g} s); waiting {settle:g} s...", flush=True
    )
    time.sleep(settle + SETTLE_MARGIN_S)
    alerts = fetch_active(notif, patient, headers)
    print("What still holds, after the settle window:")
    _print_alerts(alerts)
    print(f"{len(alerts)} active alert(s). List them yourself:")
    for line in query_hint(notif, patient):
        print(f"  {line}")
    planner = st.get("urls", {}).get(SYSTEMIC_PLANNER, "http://127.0.0.1:8103")
    print(f"Treatment plan: {planner}/patients/{patient}/plan  (FHIR orders: .../plan/medication-requests)")
    rules = {str(a["rule_id"]) for a in alerts}
    problems = []
    if not expected <= rules:
        problems.append(f"critical alert(s) {', '.join(sorted(expected - rules))} no longer active")
    if settle >= window and not any(a["severity"] != "critical" for a in alerts):
        waited = settle + SETTLE_MARGIN_S
        problems.append(f"no info or warning alert after {waited:g} s ({DEMO_SETTLED_RULE} expected)")
    elif settle >= window and DEMO_SETTLED_RULE not in rules:
        problems.append(f"{DEMO_SETTLED_RULE} not shown after the settle window")
    if problems:
        print(
            f"demo: the system did not answer as expected: {'; '.join(problems)}. A service may be stalled or down: "
            "see `./osteocds up`'s output and `./osteocds status`.",
            file=sys.stderr,
        )
        return 1
    return 0
