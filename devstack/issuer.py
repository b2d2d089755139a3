"""A local OpenID Connect issuer for `osteocds up`, the demo and the tests (development tooling only).

It keeps one ES256 signing key in `.run/issuer/private.pem` (created on first use, mode 0600), serves the
discovery document and the JWKS over HTTP on 127.0.0.1, and signs tokens for a user and roles:

    ./osteocds token --role clinician --user clinician-1

In production the services are given `OIDC_ISSUER` / `OIDC_JWKS_URL` of the hospital's identity provider
(Keycloak, Entra ID) instead, and this module is not used.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an EC public key: its key ID."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class LocalIssuer:
    key: ec.EllipticCurvePrivateKey
    url: str

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
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
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


@contextlib.contextmanager
def serve(
    key: ec.EllipticCurvePrivateKey | None = None, port: int = 0, directory: Path = ISSUER_DIR
) -> Iterator[LocalIssuer]:
    """Serve the discovery document and the JWKS on 127.0.0.1:`port` (0: a free port) in a thread."""
    signing_key = key or load_or_create_key(directory)
    holder: dict[str, LocalIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = holder["issuer"]
            routes = {"/.well-known/openid-configuration": issuer.discovery(), "/jwks.json": issuer.jwks()}
            doc = routes.get(self.path.split("?")[0])
            body = json.dumps(doc if doc is not None else {"error": "not found"}).encode()
            self.send_response(200 if doc is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    holder["issuer"] = LocalIssuer(signing_key, f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="local-oidc-issuer", daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()
        server.server_close()
