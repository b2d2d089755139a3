"""Who may call what: OAuth 2.0 bearer tokens (JWT, RS256 or ES256) checked against an OIDC issuer's JWKS.

    router = APIRouter(dependencies=[require(CLINICIAN, audit="read")])     # every route of the router
    async def ack(..., who: Annotated[Principal, require(CLINICIAN)]) -> ...   # and who acts

Settings (environment): `OIDC_ISSUER` (its discovery document gives the JWKS URL, and tokens must carry it as
`iss`), `OIDC_JWKS_URL` (used as is when set), `OIDC_AUDIENCE` (default `osteocds`), `OIDC_ROLES_CLAIM` (a claim
name or dotted path, default `roles`; `realm_access.roles` for Keycloak, `roles` for Entra ID app roles).
Signature, issuer, audience, expiry and subject are checked by PyJWT; nothing is hand-written. Without an
issuer or a JWKS URL every protected request is refused (fail closed).

Roles: `clinician` reads patients and acknowledges or overrides alerts, `integration` posts FHIR and HL7 v2,
`ops` reads metrics, `clinician-entry` (issue 23) writes what clinicians enter through the intake's forms or a
FHIR QuestionnaireResponse (findings, assessments, opinions, local-treatment requests, treatment events; audited,
the token's subject named as the source). `/healthz` and `/readyz` are open; `create_app` refuses to start a
service that has any other route without a role requirement. Who acts is always the token's subject.

Every read of a patient's data (`audit=...`) and every acknowledgement or override (`record_audit`) is
published to `osteocds.audit.v1` before the answer is sent: who (subject, roles), what (method and route
template), which patient ID, when; never a clinical value. A request whose audit record cannot be written
fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.lifecycle import AuditEvent

log = logging.getLogger(__name__)

CLINICIAN: Final = "clinician"
INTEGRATION: Final = "integration"
OPS: Final = "ops"
#: issue 23: a clinician's write permission (forms and QuestionnaireResponse), separate from reading (`clinician`)
CLINICIAN_ENTRY: Final = "clinician-entry"
ROLES: Final = (CLINICIAN, INTEGRATION, OPS, CLINICIAN_ENTRY)
#: routes that need no token (probes of the orchestrator)
OPEN_PATHS: Final = frozenset({"/healthz", "/readyz"})
#: the API description (no patient data): open unless AUTH_PUBLIC_DOCS=false, then not served at all
DOC_PATHS: Final = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

_PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_ROLES_MARK = "__osteocds_roles__"


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str = "osteocds"
    oidc_roles_claim: str = "roles"
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_leeway_seconds: int = 30
    #: serve /docs and /openapi.json without a token (they describe the API and hold no patient data)
    auth_public_docs: bool = True


class AuthError(Exception):
    """The token is missing, malformed, badly signed, expired, or for another issuer or audience."""


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def role_for(self, allowed: Iterable[str]) -> str | None:
        """The first of `allowed` this principal holds (recorded with what it does)."""
        return next((r for r in allowed if r in self.roles), None)


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class Authenticator:
    """Verifies bearer tokens. The JWKS is fetched once and cached (refetched for an unknown `kid`)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.oidc_jwks_url or self.settings.oidc_issuer)

    def _client(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            s = self.settings
            url = s.oidc_jwks_url
            if url is None:
                if s.oidc_issuer is None:
                    raise AuthError("no identity provider configured (OIDC_ISSUER or OIDC_JWKS_URL)")
                discovery = s.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
                with urllib.request.urlopen(discovery, timeout=5) as resp:
                    url = str(json.load(resp)["jwks_uri"])
            self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
        return self._jwks

    def verify(self, token: str) -> Principal:
        """Blocking (may fetch the JWKS): call through `verify_async` from the event loop."""
        s = self.settings
        try:
            key = self._client().get_signing_key_from_jwt(token).key
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=s.oidc_algorithms,
                audience=s.oidc_audience,
                issuer=s.oidc_issuer,
                leeway=s.oidc_leeway_seconds,
                options={"require": ["exp", "iat", "sub", "aud"] + (["iss"] if s.oidc_issuer else [])},
            )
        except jwt.PyJWKClientConnectionError as exc:
            log.error("identity provider unreachable", extra={"error_type": type(exc).__name__})
            raise AuthError("identity provider unreachable") from exc
        except (jwt.PyJWTError, ValueError, KeyError, OSError) as exc:
            raise AuthError(f"invalid token: {type(exc).__name__}") from exc
        raw = _claim(claims, s.oidc_roles_claim)
        roles = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        return Principal(subject=str(claims["sub"]), roles=frozenset(str(r) for r in roles), claims=claims)

    async def verify_async(self, token: str) -> Principal:
        return await asyncio.to_thread(self.verify, token)


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="OAuth 2.0 access token (JWT, RS256/ES256) from the OIDC issuer; roles in the configured claim: "
    "clinician, integration, ops, clinician-entry. Locally: `./osteocds token --role clinician --user clinician-1`.",
)

#: publishes one audit event and waits for the broker's acknowledgement (set by `install`)
AuditSink = Callable[[AuditEvent], Awaitable[None]]


#: the protection space named in every challenge (RFC 6750 §3)
REALM: Final = "osteocds"


def _unauthorized(detail: str, *, token_sent: bool = True) -> HTTPException:
    """401 with its challenge (RFC 6750 §3, §3.1): `error="invalid_token"` when a token was sent and refused;
    none when the request carried no bearer token at all (no error code for a request without credentials)."""
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if token_sent else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def require(*roles: str, audit: str | None = None) -> DependsParam:
    """A dependency: a valid token holding one of `roles` (any valid token when none are given). With
    `audit`, the access to the patient named by the `patient_id` path or query parameter is audited."""
    wanted = tuple(roles)

    async def principal(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> Principal:
        auth: Authenticator = request.app.state.auth
        if creds is None or not creds.credentials:
            raise _unauthorized("a bearer token is required", token_sent=False)
        if not auth.configured:
            raise _unauthorized("no identity provider is configured for this service")
        try:
            who = await auth.verify_async(creds.credentials)
        except AuthError as exc:
            raise _unauthorized(str(exc)) from exc
        if wanted and not who.roles & set(wanted):
            raise HTTPException(403, f"this needs the role {' or '.join(wanted)}")
        if audit is not None:
            patient = request.path_params.get("patient_id") or request.query_params.get("patient_id")
            if patient and _PATIENT_ID.match(patient):
                await record_audit(request, who, audit, patient, wanted)
        return who

    setattr(principal, _ROLES_MARK, wanted)
    dep: DependsParam = Depends(principal)
    return dep


def public(why: str) -> DependsParam:
    """Marks a route open by design (it must serve no patient data, e.g. a page shell that then calls the
    protected API with the user's token); `why` documents it."""

    async def open_by_design() -> None:
        return None

    setattr(open_by_design, _ROLES_MARK, ())
    open_by_design.__doc__ = why
    dep: DependsParam = Depends(open_by_design)
    return dep


async def record_audit(
    request: Request, who: Principal, action: str, patient_id: str, roles: Iterable[str] = ()
) -> None:
    """Publish who did `action` on which patient through this route, and wait for the broker."""
    sink: AuditSink = request.app.state.audit_sink
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    now = datetime.now(UTC)
    role = who.role_for(roles)
    event = AuditEvent(
        event_id=uuid.uuid4(),
        patient_id=patient_id,
        occurred_at=now,
        recorded_at=now,
        source=request.app.state.service_name,
        actor=who.subject,
        roles=sorted(who.roles) if role is None else [role],
        action=action,
        resource=f"{request.method} {template}"[:256],
        service=request.app.state.service_name,
    )
    try:
        await sink(event)
    except Exception as exc:
        log.error("audit record not written; request refused", extra={"error_type": type(exc).__name__})
        raise HTTPException(503, "the audit trail is unavailable; try again") from exc


def install(app: FastAPI, service_name: str, sink: AuditSink, settings: AuthSettings | None = None) -> None:
    app.state.auth = Authenticator(settings or AuthSettings())
    app.state.audit_sink = sink
    app.state.service_name = service_name
    if not app.state.auth.configured:
        log.warning("no OIDC_ISSUER or OIDC_JWKS_URL: every protected endpoint answers 401")


def _guarded(dependant: Dependant) -> bool:
    return any(hasattr(d.call, _ROLES_MARK) or _guarded(d) for d in dependant.dependencies)


def _api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:  # FastAPI's lazily included router
            yield from _api_routes(included.routes)


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes that are neither open by design nor protected by `require` (must be none)."""
    return [
        f"{sorted(r.methods or [])} {r.path}"
        for r in _api_routes(app.router.routes)
        if r.path not in OPEN_PATHS and not _guarded(r.dependant)
    ]
