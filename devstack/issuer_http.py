"""The local OpenID Connect issuer served over HTTP on 127.0.0.1 (devstack/issuer.py holds its key, its tokens and
the authorization code flow; development tooling only): `serve` runs, in a thread, the discovery document, the JWKS,
`/authorize` (the French sign-in form), `/token`, the SMART configuration and the simulated EHR launch
(`/ehr-launch?patient=P&app=<page>/ui/launch`; issue 19). Only requests addressed to the issuer's own host are
answered (DNS rebinding), and a request is logged by method and path only.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from devstack.issuer import ISSUER_DIR, AuthorizeError, LocalIssuer, load_or_create_key, loopback_url

#: the issuer's log keeps the name it had before the HTTP app moved here (a log configuration or filter names it)
log = logging.getLogger("devstack.issuer")


def _redirect(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urllib.parse.urlencode(params)


def _ehr_launch_target(issuer: LocalIssuer, query: Mapping[str, str]) -> str:
    """The simulated EHR: a launch for `patient`, then the app's launch URL (loopback /ui/launch only)."""
    app = query.get("app", "")
    if not loopback_url(app, "/ui/launch"):
        raise ValueError("app must be a loopback .../ui/launch URL")
    launch = issuer.new_launch(query.get("patient", ""))
    return _redirect(app, {"iss": issuer.url, "launch": launch})


@contextlib.contextmanager
def serve(
    key: ec.EllipticCurvePrivateKey | None = None, port: int = 0, directory: Path = ISSUER_DIR
) -> Iterator[LocalIssuer]:
    """Serve the issuer on 127.0.0.1:`port` (0: a free port) in a thread: discovery, JWKS, /authorize, /token,
    the SMART configuration and the simulated EHR launch."""
    signing_key = key or load_or_create_key(directory)
    holder: dict[str, LocalIssuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            # a browser page on another origin reads discovery, JWKS and the token response (public client)
            self._send(status, json.dumps(doc).encode(), "application/json", {"Access-Control-Allow-Origin": "*"})

        def _html(self, status: int, text: str) -> None:
            self._send(status, text.encode(), "text/html; charset=utf-8")

        def _query(self) -> dict[str, str]:
            return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

        def _form(self) -> dict[str, list[str]] | None:
            """The posted form; None for a bad Content-Length (a negative one would read until the peer closes)."""
            raw = self.headers.get("Content-Length") or "0"
            if not re.fullmatch(r"[0-9]{1,9}", raw):
                return None
            length = min(int(raw), 65536)
            return urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))

        def _own_host(self) -> bool:
            """Only requests addressed to this issuer (DNS rebinding: a hostile page's name resolved to 127.0.0.1
            arrives with its own Host). 421 Misdirected Request otherwise."""
            if self.headers.get("Host", "") in hosts:
                return True
            self._send(421, b"", "text/plain")
            return False

        def _refused(self, exc: AuthorizeError, params: Mapping[str, str]) -> None:
            if exc.redirect:
                out = {"error": exc.error, "error_description": exc.description}
                if params.get("state"):
                    out["state"] = params["state"]
                self._send(302, b"", "text/plain", {"Location": _redirect(params["redirect_uri"], out)})
            else:  # never redirect to an unverified client or URI (RFC 6749 §4.1.2.1)
                self._html(400, f"<!doctype html><p>Demande de connexion refusée : {html.escape(exc.description)}</p>")

        def do_OPTIONS(self) -> None:  # CORS preflight of the token endpoint
            self._send(
                204,
                b"",
                "text/plain",
                {
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": "GET, POST",
                    "Access-Control-Allow-Headers": "Content-Type",
                },
            )

        def do_GET(self) -> None:
            if not self._own_host():
                return
            issuer = holder["issuer"]
            path = urllib.parse.urlsplit(self.path).path
            if path == "/authorize":
                params = self._query()
                try:
                    self._html(200, issuer.sign_in_form(issuer.check_authorize(params)))
                except AuthorizeError as exc:
                    self._refused(exc, params)
                return
            if path == "/ehr-launch":
                try:
                    self._send(302, b"", "text/plain", {"Location": _ehr_launch_target(issuer, self._query())})
                except ValueError as exc:
                    self._html(400, f"<!doctype html><p>{html.escape(str(exc))}</p>")
                return
            routes = {
                "/.well-known/openid-configuration": issuer.discovery(),
                "/.well-known/smart-configuration": issuer.smart_configuration(),
                "/jwks.json": issuer.jwks(),
            }
            doc = routes.get(path)
            self._json(200 if doc is not None else 404, doc if doc is not None else {"error": "not found"})

        def do_POST(self) -> None:
            if not self._own_host():
                return
            issuer = holder["issuer"]
            path = urllib.parse.urlsplit(self.path).path
            form = self._form()
            if form is None:
                self._json(400, {"error": "invalid_request", "error_description": "bad Content-Length"})
                return
            one = {k: v[0] for k, v in form.items() if k != "role"}
            if path == "/token":
                self._json(*issuer.exchange(one))
            elif path == "/authorize":
                try:
                    request = issuer.check_authorize(one)  # the posted form is checked again
                except AuthorizeError as exc:
                    self._refused(exc, one)
                    return
                try:
                    code = issuer.grant(request, one.get("user", ""), form.get("role", []))
                except ValueError as exc:
                    self._html(400, issuer.sign_in_form(request, str(exc)))
                    return
                target = _redirect(request.redirect_uri, {"code": code, "state": request.state})
                self._send(302, b"", "text/plain", {"Location": target})
            else:
                self._json(404, {"error": "not found"})

        def log_message(self, format: str, *args: Any) -> None:
            # method and path only: a query string or a form may hold a code, a state or a launch ID
            log.info("issuer request", extra={"method": self.command, "path": urllib.parse.urlsplit(self.path).path})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    bound = server.server_address[1]
    hosts = frozenset({f"127.0.0.1:{bound}", f"localhost:{bound}"})
    holder["issuer"] = LocalIssuer(signing_key, f"http://127.0.0.1:{bound}")
    thread = threading.Thread(target=server.serve_forever, name="local-oidc-issuer", daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()
        server.server_close()
