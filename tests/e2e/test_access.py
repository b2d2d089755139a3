"""Authentication and roles on every service, and the audit trail, through the real services."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from contracts.lifecycle import AuditEvent
from contracts.topics import AUDIT, IMAGING_FINDINGS
from devstack import issuer
from devstack.stack import RunningStack
from shared.web.auth import CLINICIAN, INTEGRATION, OPS
from tests.conftest import Publish, alerts, auth, consume_until, event, token, wait_for

pytestmark = pytest.mark.e2e

OPEN = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
#: the role each protected route needs (all others get 403)
ROLE_OF = {"/fhir": INTEGRATION, "/hl7v2": INTEGRATION, "/metrics": OPS}


async def protected_routes(c: httpx.AsyncClient, url: str) -> list[tuple[str, str]]:
    """Every route a service declares in its OpenAPI document, but the open ones and the page shell."""
    spec = (await c.get(f"{url}/openapi.json")).json()
    routes = [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if path not in OPEN and not path.startswith("/ui/")
    ]
    assert ("GET", "/metrics") in routes
    return routes


def concrete(path: str) -> str:
    return path.replace("{patient_id}", "pt-access").replace("{alert_id}", str(uuid.uuid4()))


async def test_every_service_needs_a_valid_token_with_the_right_role(stack: RunningStack) -> None:
    stranger = issuer.LocalIssuer(ec.generate_private_key(ec.SECP256R1()), stack.env["OIDC_ISSUER"])
    bad_tokens = {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "signed by another key": stranger.token("mallory", [CLINICIAN, INTEGRATION, OPS]),
        "expired": token(CLINICIAN, ttl_s=-120),
        "another audience": token(CLINICIAN, audience="another-api"),
    }
    checked = 0
    async with httpx.AsyncClient(timeout=10) as c:
        for name, url in stack.urls.items():
            for probe in ("/healthz", "/readyz"):  # open: the orchestrator's probes
                assert (await c.get(f"{url}{probe}")).status_code == 200, (name, probe)
            for method, path in await protected_routes(c, url):
                target = f"{url}{concrete(path)}"
                for why, bad in bad_tokens.items():
                    headers = {} if bad is None else {"Authorization": f"Bearer {bad}"}
                    r = await c.request(method, target, headers=headers, json={})
                    assert r.status_code == 401, (name, method, path, why, r.text)
                    assert r.headers["www-authenticate"].startswith("Bearer")
                needed = ROLE_OF.get(path, CLINICIAN)
                for wrong in {None, CLINICIAN, INTEGRATION, OPS} - {needed}:
                    if path == "/cds-services" and wrong == INTEGRATION:
                        continue  # discovery is open to the EHR's integration account too
                    r = await c.request(method, target, headers=auth(wrong, "someone"), json={})
                    assert r.status_code == 403, (name, method, path, wrong, r.text)
                async with c.stream(method, target, headers=auth(needed, "someone"), json={}) as right:  # SSE too
                    assert right.status_code not in (401, 403), (name, method, path, right.status_code)
                checked += 1
    assert checked >= 15  # every service's routes were found and probed


async def test_openapi_declares_the_bearer_scheme(stack: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=5) as c:
        for name, url in stack.urls.items():
            spec = (await c.get(f"{url}/openapi.json")).json()
            if not any(p not in OPEN for p in spec["paths"]):
                continue  # radiotherapy-planner has no API of its own
            assert spec["components"]["securitySchemes"]["bearer"] == {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": spec["components"]["securitySchemes"]["bearer"]["description"],
            }, name
            secured = [
                op
                for p, ops in spec["paths"].items()
                if p not in OPEN and not p.startswith("/ui/")
                for op in ops.values()
            ]
            assert secured and all(op.get("security") == [{"bearer": []}] for op in secured), name


async def test_reads_and_acknowledgements_are_audited_without_clinical_values(
    stack: RunningStack, publish: Publish, patient_id: str, kafka_bootstrap: str
) -> None:
    await publish(
        IMAGING_FINDINGS.name,
        event(
            patient_id,
            lesion_id="L-T4",
            skeletal_site="spine",
            vertebral_level="T4",
            modality="mri",
            cord_compression=True,
        ),
    )

    async def active() -> list[dict[str, Any]]:
        return [a for a in await alerts(stack, patient_id, status="active") if a["rule_id"] == "RT-MSCC"]

    [alert] = await wait_for(active)
    async with httpx.AsyncClient(timeout=15) as c:
        scores = await c.get(
            f"{stack.urls['scoring']}/patients/{patient_id}/scores", headers=auth(CLINICIAN, "dr-audit")
        )
        assert scores.status_code == 200
        ack = await c.post(
            f"{stack.urls['notification']}/alerts/{alert['recommendation_id']}/ack",
            json={"patient_id": patient_id},
            headers=auth(CLINICIAN, "dr-audit"),
        )
        assert ack.status_code == 200

    def audit(action: str, service: str) -> Any:
        def match(record: Any) -> bool:
            e = AuditEvent.model_validate_json(record.value)
            return e.patient_id == patient_id and e.action == action and e.service == service

        return match

    read = AuditEvent.model_validate_json(
        (await consume_until(kafka_bootstrap, AUDIT.name, audit("read", "scoring"))).value
    )
    assert (read.actor, read.roles, read.resource) == ("dr-audit", [CLINICIAN], "GET /patients/{patient_id}/scores")
    record = await consume_until(kafka_bootstrap, AUDIT.name, audit("acknowledge", "notification"))
    acked = AuditEvent.model_validate_json(record.value)
    assert (acked.actor, acked.resource) == ("dr-audit", "POST /alerts/{alert_id}/ack")
    assert record.key == patient_id.encode()
    doc = json.loads(record.value)
    assert set(doc) == {*AuditEvent.model_fields}  # who, role, what, which patient, when: nothing else
    assert alert["title"] not in record.value.decode() and "T4" not in record.value.decode()
