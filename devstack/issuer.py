"""A local OpenID Connect issuer for `osteocds up`, the demo and the tests (development tooling only).

It keeps one ES256 signing key in `.run/issuer/private.pem` (created on first use, mode 0600), serves the
discovery document and the JWKS over HTTP on 127.0.0.1, and signs tokens for a user and roles:

    ./osteocds token --role clinician --user clinician-1

Issue 19: it also signs the clinicians' page in the standard way, so that the page never needs a pasted token:
the OAuth 2.0 authorization code flow with PKCE S256 only (RFC 7636) for public clients. `/authorize` shows a
small French form choosing a development user and roles (no password: development only); `/token` exchanges a
code once, within CODE_TTL_S, for the client and redirect URI it was issued to and with the code verifier. A SMART
App Launch 2.x EHR launch is simulated too: `/ehr-launch?patient=P&app=<page>/ui/launch` binds a launch ID to a
patient (as an EHR would) and opens the page with `iss` and `launch`; the token response then names the patient.

The HTTP app serving it (`serve`): devstack/issuer_http.py.

In production the services are given `OIDC_ISSUER` / `OIDC_JWKS_URL` of the hospital's identity provider
(Keycloak, Entra ID) instead, and this module is not used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parent.parent
ISSUER_DIR: Final = ROOT / ".run" / "issuer"
DEFAULT_PORT: Final = 8100
AUDIENCE: Final = "osteocds"
ALGORITHM: Final = "ES256"
#: the browser pages' client (PAGE_CLIENT_ID, shared/web/signin.py): the clinicians' page (notification) and the entry
#: forms (lab-normalisation, issue 23; they need the form's `clinician-entry` role): public, no secret, PKCE required
PAGE_CLIENT_ID: Final = "osteocds-page"
#: its redirect URIs: each service's /ui/callback; loopback ones match on any port (RFC 8252 §7.3), so one entry
#: serves both services of the development stack; the path and host match exactly
PAGE_REDIRECT_URIS: Final = ("http://127.0.0.1/ui/callback", "http://localhost/ui/callback")
#: an authorization code is short-lived (RFC 6749 §4.1.2 recommends at most 10 minutes) and single-use
CODE_TTL_S: Final = 60
#: a SMART launch ID is valid this long after the EHR created it, for one sign-in
LAUNCH_TTL_S: Final = 300
#: the tokens the page gets (the page asks to sign in again when it expires)
PAGE_TOKEN_TTL_S: Final = 3600
#: development users offered by the sign-in form (any other name matching _USER may be typed)
DEV_USERS: Final = ("clinician-1", "clinician-2", "dr-page")
#: roles the form offers (shared/web/auth.py ROLES; repeated here: devstack must not be imported by shared/)
DEV_ROLES: Final = ("clinician", "clinician-entry", "ops", "integration")

_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PATIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
#: RFC 7636 §4.1: code_verifier = 43*128 unreserved characters; §4.2: an S256 challenge is 43 of them
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def load_or_create_key(directory: Path = ISSUER_DIR) -> ec.EllipticCurvePrivateKey:
    path = directory / "private.pem"
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise RuntimeError(f"{path} is not an EC private key")
        return key
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an EC public key: its key ID."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


#: a loopback URL as this issuer accepts it: host, optional port, path; no userinfo, query, fragment, backslash,
#: whitespace or escape (review RE: `http://127.0.0.1:8105@evil.example/...` named evil.example's host)
_LOOPBACK_URL = re.compile(r"^http://(127\.0\.0\.1|localhost)(?::([1-9][0-9]{0,4}))?(/[A-Za-z0-9/._-]*)$")


def loopback_url(url: str, path: str) -> bool:
    """`url` is http://127.0.0.1[:port]`path` or http://localhost[:port]`path`, nothing else."""
    m = _LOOPBACK_URL.match(url)
    return m is not None and m.group(3) == path and (m.group(2) is None or int(m.group(2)) < 65536)


def redirect_uri_allowed(uri: str, registered: Sequence[str]) -> bool:
    """Exact match, except that a loopback redirect URI may name any port (RFC 8252 §7.3)."""
    if uri in registered:
        return True
    m = _LOOPBACK_URL.match(uri)
    if m is None or not loopback_url(uri, m.group(3)):
        return False
    return any(
        (r.scheme, r.netloc, r.path, r.query, r.fragment) == ("http", m.group(1), m.group(3), "", "")
        for r in map(urllib.parse.urlsplit, registered)
    )


class AuthorizeError(Exception):
    """An authorization request refused. `redirect`: the client and redirect URI are valid, so the error goes
    back to the client (RFC 6749 §4.1.2.1); otherwise it is shown to the user and never redirected."""

    def __init__(self, error: str, description: str, redirect: bool) -> None:
        super().__init__(description)
        self.error, self.description, self.redirect = error, description, redirect


@dataclass(frozen=True)
class AuthRequest:
    """A validated authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, SMART `launch`)."""

    client_id: str
    redirect_uri: str
    state: str
    scope: str
    code_challenge: str
    nonce: str | None
    launch: str | None
    #: SMART: the FHIR base the app will call (required with a launch)
    aud: str | None = None

    def fields(self) -> dict[str, str]:
        """What the sign-in form carries back (checked again when it is posted)."""
        out = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        out.update({k: v for k, v in (("nonce", self.nonce), ("launch", self.launch), ("aud", self.aud)) if v})
        return out


@dataclass(frozen=True)
class _Grant:
    request: AuthRequest
    user: str
    roles: tuple[str, ...]
    patient: str | None
    expires: float


@dataclass(frozen=True)
class LocalIssuer:
    key: ec.EllipticCurvePrivateKey
    url: str
    #: public clients and their registered redirect URIs
    clients: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {PAGE_CLIENT_ID: PAGE_REDIRECT_URIS}, compare=False, repr=False
    )
    _codes: dict[str, _Grant] = field(default_factory=dict, compare=False, repr=False)
    #: codes already exchanged (or tried): a second use is refused as such
    spent: set[str] = field(default_factory=set, compare=False, repr=False)
    _launches: dict[str, tuple[str, float]] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**jwk, "kid": _thumbprint(jwk), "use": "sig", "alg": ALGORITHM}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks.json",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "launch", "launch/patient"],
        }

    def smart_configuration(self) -> dict[str, Any]:
        """SMART App Launch 2.x `.well-known/smart-configuration` (this issuer also plays the EHR's FHIR base)."""
        d = self.discovery()
        keys = ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "grant_types_supported")
        return {
            **{k: d[k] for k in keys},
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "launch", "launch/patient"],
            "response_types_supported": ["code"],
            "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "sso-openid-connect"],
        }

    def token(
        self, user: str, roles: Sequence[str], ttl_s: int = 8 * 3600, audience: str = AUDIENCE, **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "sub": user,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "roles": list(roles),
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm=ALGORITHM, headers={"kid": self.public_jwk["kid"]})

    def env(self) -> dict[str, str]:
        """What the services need to trust this issuer."""
        return {"OIDC_ISSUER": self.url, "OIDC_JWKS_URL": f"{self.url}/jwks.json", "OIDC_AUDIENCE": AUDIENCE}

    # --- issue 19: authorization code + PKCE, SMART EHR launch ---------------------------------------------------

    def _forget_expired(self) -> None:
        """Drop expired launches and unused codes (under the lock): a late use of either is refused as unknown."""
        now = time.monotonic()
        for launch in [k for k, (_, until) in self._launches.items() if until < now]:
            del self._launches[launch]
        for code in [k for k, g in self._codes.items() if g.expires < now]:
            del self._codes[code]

    def new_launch(self, patient_id: str) -> str:
        """What an EHR does before opening the app: a launch ID bound to the patient in context."""
        if not _PATIENT.match(patient_id):
            raise ValueError("invalid patient ID")
        launch = secrets.token_urlsafe(16)
        with self._lock:
            self._forget_expired()
            self._launches[launch] = (patient_id, time.monotonic() + LAUNCH_TTL_S)
        return launch

    def check_authorize(self, params: Mapping[str, str]) -> AuthRequest:
        """Validate an authorization request; raises AuthorizeError."""
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        registered = self.clients.get(client_id)
        if registered is None:
            raise AuthorizeError("unauthorized_client", "client inconnu", redirect=False)
        if not redirect_uri_allowed(redirect_uri, registered):
            raise AuthorizeError("invalid_request", "adresse de retour (redirect_uri) non enregistrée", redirect=False)

        def refuse(error: str, description: str) -> AuthorizeError:
            return AuthorizeError(error, description, redirect=True)

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "only response_type=code")
        state = params.get("state", "")
        if not state:
            raise refuse("invalid_request", "state is required")
        challenge = params.get("code_challenge", "")
        if not challenge:  # RFC 7636 §4.4.1: PKCE required
            raise refuse("invalid_request", "code_challenge required")
        if params.get("code_challenge_method") != "S256":  # `plain` (or none, which means plain) refused
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.match(challenge):
            raise refuse("invalid_request", "malformed code_challenge")
        scope = params.get("scope", "openid")
        launch = params.get("launch") or None
        if launch is not None:
            with self._lock:
                bound = self._launches.get(launch)
            if bound is None or bound[1] < time.monotonic():
                raise refuse("invalid_request", "unknown or expired launch")
            if "launch" not in scope.split():
                raise refuse("invalid_scope", "a launch needs the launch scope")
            if params.get("aud", "").rstrip("/") != self.url:  # SMART: aud (required) names the FHIR base (here)
                raise refuse("invalid_request", "aud is not this server")
        return AuthRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=scope,
            code_challenge=challenge,
            nonce=params.get("nonce") or None,
            launch=launch,
            aud=params.get("aud") or None if launch is not None else None,
        )

    def grant(self, request: AuthRequest, user: str, roles: Sequence[str]) -> str:
        """The user signed in: a single-use code for this request."""
        if not _USER.match(user):
            raise ValueError("invalid user name")
        unknown = set(roles) - set(DEV_ROLES)
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        patient = None
        if request.launch is not None:
            with self._lock:
                bound = self._launches.pop(request.launch, None)  # single use: one sign-in per launch
            if bound is None or bound[1] < time.monotonic():  # expired (or used) since the form was shown
                raise ValueError("launch expired: open the patient from the EHR again")
            patient = bound[0] if "launch/patient" in request.scope.split() else None
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            self._codes[code] = _Grant(request, user, tuple(roles), patient, time.monotonic() + CODE_TTL_S)
        return code

    def exchange(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6): (HTTP status, JSON body)."""

        def error(code: str, description: str, status: int = 400) -> tuple[int, dict[str, Any]]:
            return status, {"error": code, "error_description": description}

        if form.get("grant_type") != "authorization_code":
            return error("unsupported_grant_type", "only authorization_code")
        code = form.get("code", "")
        with self._lock:
            grant = self._codes.pop(code, None)  # single use: gone even if the checks below fail
            reused = grant is None and code in self.spent
            if grant is not None:
                self.spent.add(code)
        if grant is None:
            return error("invalid_grant", "code already used" if reused else "unknown code")
        req = grant.request
        if grant.expires < time.monotonic():
            return error("invalid_grant", "code expired")
        if form.get("client_id") != req.client_id:
            return error("invalid_grant", "code issued to another client")
        if form.get("redirect_uri") != req.redirect_uri:
            return error("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier):
            return error("invalid_grant", "code_verifier missing or malformed")
        if not hmac.compare_digest(s256(verifier), req.code_challenge):
            return error("invalid_grant", "code_verifier does not match the code_challenge")
        context = {"patient": grant.patient} if grant.patient else {}
        access = self.token(
            grant.user, grant.roles, ttl_s=PAGE_TOKEN_TTL_S, scope=req.scope, client_id=req.client_id, **context
        )
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": PAGE_TOKEN_TTL_S,
            "scope": req.scope,
            **context,
        }
        if "openid" in req.scope.split():
            nonce = {"nonce": req.nonce} if req.nonce else {}
            body["id_token"] = self.token(
                grant.user, [], ttl_s=PAGE_TOKEN_TTL_S, audience=req.client_id, azp=req.client_id, **nonce
            )
        return 200, body

    def sign_in_form(self, request: AuthRequest, error: str = "") -> str:
        """The development sign-in page (French): a user and roles, no password."""
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in request.fields().items()
        )
        users = "".join(f'<option value="{u}">{u}</option>' for u in DEV_USERS)
        roles = "".join(
            f'<label><input type="checkbox" name="role" value="{r}"{" checked" if r == "clinician" else ""}> {r}'
            "</label><br>"
            for r in DEV_ROLES
        )
        context = ""
        if request.launch:
            with self._lock:
                bound = self._launches.get(request.launch)
            if bound is not None:
                context = f"<p>Lancement depuis le DPI : patient <b>{html.escape(bound[0])}</b>.</p>"
        return (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Connexion (développement)</title>'
            "</head><body><h1>Connexion — émetteur local de développement</h1>"
            "<p>Développement uniquement : aucun mot de passe. En production, l'établissement utilise son "
            "fournisseur d'identité.</p>"
            f"{context}"
            f'<p style="color:#c0392b">{html.escape(error)}</p>'
            f'<form method="post" action="/authorize">{hidden}'
            f'<p><label>Utilisateur <input name="user" id="user" list="users" value="{DEV_USERS[0]}" required>'
            f'</label><datalist id="users">{users}</datalist></p>'
            f"<fieldset><legend>Rôles</legend>{roles}</fieldset>"
            '<p><button type="submit" id="sign-in">Se connecter</button></p></form></body></html>'
        )
