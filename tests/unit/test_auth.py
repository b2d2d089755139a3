"""Token checks and roles (shared/web/auth.py) against a real local OIDC issuer serving its JWKS over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from contracts.lifecycle import AuditEvent
from devstack import issuer, issuer_http
from shared.runtime.service import Service
from shared.settings import Settings
from shared.web.auth import (
    CLINICIAN,
    INTEGRATION,
    OPS,
    AuthSettings,
    Principal,
    install,
    public,
    require,
    unguarded_routes,
)
from shared.web.http import create_app


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[issuer.LocalIssuer]:
    with issuer_http.serve(directory=tmp_path_factory.mktemp("idp")) as local:
        yield local


def app_for(settings: AuthSettings, audited: list[AuditEvent]) -> FastAPI:
    app = FastAPI()

    async def sink(event: AuditEvent) -> None:
        audited.append(event)

    install(app, "test-service", sink, settings)

    @app.get("/patients/{patient_id}/things", dependencies=[require(CLINICIAN, audit="read")])
    async def things(patient_id: str) -> dict[str, str]:
        return {"patient": patient_id}

    @app.post("/ingest")
    async def ingest(who: Annotated[Principal, require(INTEGRATION)]) -> dict[str, str]:
        return {"by": who.subject}

    return app


def settings_for(idp: issuer.LocalIssuer, **kw: object) -> AuthSettings:
    return AuthSettings(oidc_issuer=idp.url, oidc_jwks_url=f"{idp.url}/jwks.json", **kw)  # type: ignore[arg-type]


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def test_a_valid_token_with_the_role_passes_and_the_read_is_audited(idp: issuer.LocalIssuer) -> None:
    audited: list[AuditEvent] = []
    client = TestClient(app_for(settings_for(idp), audited))
    r = client.get("/patients/pt-1/things", headers=bearer(idp.token("dr-a", [CLINICIAN])))
    assert r.status_code == 200
    [event] = audited
    assert (event.actor, event.roles, event.patient_id, event.action) == ("dr-a", [CLINICIAN], "pt-1", "read")
    assert event.resource == "GET /patients/{patient_id}/things" and event.service == "test-service"
    r = client.post("/ingest", headers=bearer(idp.token("hospital-bus", [INTEGRATION])))
    assert r.json() == {"by": "hospital-bus"}  # who acts: the token's subject


def test_missing_forged_expired_or_misdirected_tokens_get_401(idp: issuer.LocalIssuer) -> None:
    client = TestClient(app_for(settings_for(idp), []))
    other_key = issuer.LocalIssuer(ec.generate_private_key(ec.SECP256R1()), idp.url)
    other_issuer = issuer.LocalIssuer(idp.key, "http://127.0.0.1:1")
    hs256 = jwt.encode(
        {"sub": "x", "aud": "osteocds", "iss": idp.url, "exp": 2**40, "iat": 0, "roles": [CLINICIAN]},
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": idp.public_jwk["kid"]},
    )
    unsigned = jwt.encode({"sub": "x", "roles": [CLINICIAN]}, key="", algorithm="none")
    cases = {
        "none": {},
        "garbage": bearer("abc.def.ghi"),
        "another key": bearer(other_key.token("dr-a", [CLINICIAN])),
        "another issuer": bearer(other_issuer.token("dr-a", [CLINICIAN])),
        "another audience": bearer(idp.token("dr-a", [CLINICIAN], audience="billing")),
        "expired": bearer(idp.token("dr-a", [CLINICIAN], ttl_s=-60)),
        "HS256 with a kid": bearer(hs256),
        "alg none": bearer(unsigned),
    }
    for why, headers in cases.items():
        r = client.get("/patients/pt-1/things", headers=headers)
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"].startswith("Bearer"), why


def test_a_request_without_a_token_is_challenged_without_an_error_code(idp: issuer.LocalIssuer) -> None:
    """Issue 20, RFC 6750 §3.1: a request that lacks any authentication information (no Authorization header,
    or another scheme than Bearer) gets a challenge without an error code; a token that was sent and refused
    gets `error="invalid_token"`, also when no identity provider is configured to check it."""
    client = TestClient(app_for(settings_for(idp), []))
    for why, headers in {
        "no header": {},
        "another scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    }.items():
        r = client.get("/patients/pt-1/things", headers=headers)
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"] == 'Bearer realm="osteocds"', why
    for why, refused in {
        "garbage": client,
        "expired": client,
        "no identity provider": TestClient(app_for(AuthSettings(), [])),
    }.items():
        ttl = -60 if why == "expired" else 60
        tok = "abc.def.ghi" if why == "garbage" else idp.token("dr-a", [CLINICIAN], ttl_s=ttl)
        r = refused.get("/patients/pt-1/things", headers=bearer(tok))
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"] == 'Bearer realm="osteocds", error="invalid_token"', why


def test_a_wrong_role_gets_403(idp: issuer.LocalIssuer) -> None:
    audited: list[AuditEvent] = []
    client = TestClient(app_for(settings_for(idp), audited))
    for roles in ([], [INTEGRATION], [OPS]):
        assert client.get("/patients/pt-1/things", headers=bearer(idp.token("u", roles))).status_code == 403
    assert client.post("/ingest", headers=bearer(idp.token("u", [CLINICIAN]))).status_code == 403
    assert audited == []  # refused requests read nothing


def test_roles_from_a_configured_claim_path_and_jwks_from_discovery(idp: issuer.LocalIssuer) -> None:
    keycloak = AuthSettings(oidc_issuer=idp.url, oidc_roles_claim="realm_access.roles")  # JWKS URL discovered
    client = TestClient(app_for(keycloak, []))
    tok = idp.token("dr-k", [], realm_access={"roles": [CLINICIAN, "offline_access"]})
    assert client.get("/patients/pt-1/things", headers=bearer(tok)).status_code == 200
    assert client.get("/patients/pt-1/things", headers=bearer(idp.token("dr-k", [CLINICIAN]))).status_code == 403


def test_fails_closed_without_an_identity_provider(idp: issuer.LocalIssuer) -> None:
    client = TestClient(app_for(AuthSettings(), []))
    r = client.get("/patients/pt-1/things", headers=bearer(idp.token("dr-a", [CLINICIAN])))
    assert r.status_code == 401


def test_a_service_with_an_unprotected_route_does_not_start(tmp_path: Path) -> None:
    leaky = APIRouter()

    @leaky.get("/patients/{patient_id}/secrets")
    async def secrets(patient_id: str) -> dict[str, str]:
        return {}

    shell = APIRouter()

    @shell.get("/ui/page", dependencies=[public("static shell")])
    async def page() -> dict[str, str]:
        return {}

    service = Service(Settings(service_name="leaky"))
    with pytest.raises(RuntimeError, match=r"/patients/\{patient_id\}/secrets"):
        create_app(service, [leaky])
    app = create_app(service, [shell])  # open by design, declared
    assert unguarded_routes(app) == []
    assert TestClient(app).get("/metrics").status_code == 401  # metrics need the ops role
    hidden = create_app(service, [shell], auth=AuthSettings(auth_public_docs=False))
    assert TestClient(hidden).get("/openapi.json").status_code == 404
