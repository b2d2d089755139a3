"""One sign-in for the browser pages (issue 19, shared with issue 23's entry forms): each service that serves a page
under /ui/ mounts it (`install`) with the page it opens after sign-in.

GET /ui/signin.js          the sign-in script (OIDC authorization code + PKCE S256; SMART EHR launch where the page
                           has it), no build
GET /ui/signin/config      what the script needs: issuer, client ID, scopes, the page it returns to, the accepted
                           SMART `iss` (no secret)
GET /ui/callback           the redirect URI: the script checks `state`, exchanges the code from the browser (public
                           client), checks the ID token's `nonce`, keeps the access token in sessionStorage and
                           removes code and state from the address bar (history.replaceState) at once
GET /ui/launch?iss&launch  SMART App Launch 2.x EHR launch (only where `smart_launch`, the clinicians' page): `iss`
                           must be an accepted FHIR base; the flow asks for `launch launch/patient` and the page opens
                           on the token response's `patient` (only after a launch: an ordinary sign-in returns to the
                           page it started from, whatever `patient` the answer names)

Every /ui/ response carries Referrer-Policy: no-referrer (a URL holding a code never leaves as a Referer) and
nosniff; HTML ones a Content-Security-Policy: scripts from this origin plus the page's own inline scripts by
their SHA-256 hash (no 'unsafe-inline'; taken from the page's HTML files where the service names them, else from
the body), network calls to this origin and the identity provider only, and `frame-ancestors` from
PAGE_FRAME_ANCESTORS (the EHR origins allowed to embed the page; default 'self').
Tokens and codes never travel in a URL to this service's logs (the code reaches /ui/callback, whose access log
is off, and is read by the script only) and are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings
from shared.web.auth import AuthSettings, public, unguarded_routes

SCRIPT: Final = Path(__file__).with_name("static") / "signin.js"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
_LAUNCH = re.compile(r"^[A-Za-z0-9._~+/=-]{1,512}$")
_PAGE = re.compile(r"^/ui/[a-z/-]*/$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_BREAKS_CSP = re.compile(r"[;,\x00-\x1f\x7f]")
#: the system's pages (a patient ID follows): the clinicians' page (notification) and the entry forms
#: (lab-normalisation). A sign-in may return to any of them: behind one ingress, one origin serves both, and the
#: sign-in routes answering may be either service's.
PAGES: Final = ("/ui/patients/", "/ui/saisie/patients/")


class SignInSettings(Settings):
    """The sign-in settings every service with a page reads (the same variables, so one client for all pages)."""

    #: the pages sign in with the OIDC authorization code flow + PKCE as this public client (register the redirect
    #: URI <page base>/ui/callback of each service serving a page at the provider)
    page_client_id: str = "osteocds-page"
    #: the provider the pages sign in with; unset: OIDC_ISSUER (the one whose tokens the services accept)
    page_oidc_issuer: str | None = None
    #: scopes the pages ask for (space-separated); an EHR launch adds `launch launch/patient`
    page_scopes: str = "openid"
    #: CSP frame-ancestors of the pages: the EHR origins allowed to embed them (space-separated CSP sources)
    page_frame_ancestors: str = "'self'"
    #: SMART EHR launch (the clinicians' page): the `iss` values (FHIR base URLs) accepted at /ui/launch,
    #: comma-separated; unset: the page's issuer only. Any other `iss` is refused (the page would send the user's
    #: sign-in elsewhere).
    smart_allowed_iss: str | None = None
    #: DEVELOPMENT ONLY: the pages also offer to paste a token; unset: only when the issuer is a loopback (local)
    #: issuer, never with a hospital's provider
    page_token_paste: bool | None = None


def _origin(url: str) -> str | None:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}" if p.scheme in ("http", "https") and p.netloc else None


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


class SignInConfig:
    """A page's sign-in settings, resolved once: the settings, the services' OIDC_ISSUER, the path prefix of the page
    the sign-in returns to (`page`, e.g. /ui/patients/: a patient ID follows) and whether it has the SMART launch."""

    def __init__(
        self,
        settings: SignInSettings,
        auth: AuthSettings | None = None,
        *,
        page: str = "/ui/patients/",
        smart_launch: bool = False,
        html_files: Iterable[Path] = (),
    ) -> None:
        if not _PAGE.match(page):
            raise ValueError(f"page must be a /ui/.../ path prefix, not {page!r}")
        auth = auth or AuthSettings()
        self.issuer = _norm(settings.page_oidc_issuer or auth.oidc_issuer or "")
        self.client_id = settings.page_client_id
        self.scopes = settings.page_scopes
        self.page, self.smart_launch = page, smart_launch
        #: the pages' own HTML files: when given, the CSP allows their inline scripts only (read at each response, so
        #: an edited file needs no restart), never one that a response body carries (review RE, HAZ-19-AUTH-03)
        self.html_files = tuple(html_files)
        given = settings.smart_allowed_iss
        iss = [_norm(i) for i in (given.split(",") if given else [self.issuer]) if i.strip()]
        self.smart_iss = iss if smart_launch else []
        host = urllib.parse.urlsplit(self.issuer).hostname
        self.token_paste = settings.page_token_paste if settings.page_token_paste is not None else host in _LOOPBACK
        self.frame_ancestors = settings.page_frame_ancestors.strip() or "'self'"
        if _BREAKS_CSP.search(self.frame_ancestors):  # review RE: one setting must not rewrite the whole policy
            raise ValueError("PAGE_FRAME_ANCESTORS: CSP sources separated by spaces (no ';', ',' or line break)")
        self.connect = sorted({o for o in (_origin(u) for u in [self.issuer, *self.smart_iss]) if o})

    def public(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": self.scopes,
            "page": self.page,
            "pages": sorted({self.page, *PAGES}),
            "smart_iss": self.smart_iss,
            "token_paste": self.token_paste,
        }

    def inline_scripts(self, body: bytes) -> list[bytes]:
        """The inline scripts the CSP allows by hash: the page files' if configured, else the body's."""
        sources = [f.read_bytes() for f in self.html_files] if self.html_files else [body]
        return [m.group(1) for src in sources for m in _INLINE_SCRIPT.finditer(src)]

    def csp(self, inline_scripts: Iterable[bytes]) -> str:
        hashes = sorted({f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline_scripts})
        return "; ".join(
            [
                "default-src 'none'",
                " ".join(["script-src 'self'", *hashes]),
                "style-src 'self' 'unsafe-inline'",  # the page's <style> and style attributes; no script
                "img-src 'self' data:",
                " ".join(["connect-src 'self'", *self.connect]),
                "form-action 'self'",
                "base-uri 'none'",
                "object-src 'none'",
                f"frame-ancestors {self.frame_ancestors}",
            ]
        )


class PageHeaders:
    """Security headers on /ui/ responses (pure ASGI: the other routes, the SSE stream among them, pass as they
    are). HTML bodies are read whole to hash their inline scripts; they are never changed."""

    def __init__(self, app: ASGIApp, config: SignInConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ui/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            own = {b"content-security-policy", b"referrer-policy", b"x-content-type-options"}
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in own]
            headers += [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
            ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
            if ctype.startswith(b"text/html"):
                csp = self.config.csp(self.config.inline_scripts(body))
                headers.append((b"content-security-policy", csp.encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _shell(title: str, message: str, script: bool = True) -> str:
    """The callback and launch pages: no inline script, the sign-in script does the work (none on a refusal)."""
    return (
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f'<main><h1>{title}</h1><p id="signin-status">{message}</p>'
        '<p id="signin-error" style="color:#c0392b"></p></main>'
        + ('<script src="/ui/signin.js"></script>' if script else "")
        + "</body></html>"
    )


def signin_router(config: SignInConfig) -> APIRouter:
    router = APIRouter(tags=["page"])
    no_data = public("sign-in: static script and pages, the public client's settings; no patient data")
    no_store = {"Cache-Control": "no-store"}

    @router.get("/ui/signin.js", dependencies=[no_data])
    async def script() -> Response:
        return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8", headers=no_store)

    @router.get("/ui/signin/config", dependencies=[no_data])
    async def signin_config() -> dict[str, Any]:
        """The page's sign-in settings (public client: no secret)."""
        return config.public()

    @router.get("/ui/callback", response_class=HTMLResponse, dependencies=[no_data])
    async def callback() -> HTMLResponse:
        """The redirect URI registered at the provider; the script reads the code (never the server)."""
        return HTMLResponse(_shell("Connexion", "Connexion en cours…"), headers=no_store)

    if config.smart_launch:

        @router.get("/ui/launch", response_class=HTMLResponse, dependencies=[no_data])
        async def launch(iss: str = Query(""), launch: str = Query("")) -> HTMLResponse:
            """SMART EHR launch: an accepted `iss` and a `launch` ID, then the script starts the code flow."""
            if _norm(iss) not in config.smart_iss:
                msg = "Lancement refusé : le serveur du DPI (iss) n'est pas autorisé pour cette application."
                return HTMLResponse(_shell("Lancement refusé", msg, script=False), status_code=400, headers=no_store)
            if not _LAUNCH.match(launch):
                msg = "Lancement refusé : identifiant de lancement absent ou invalide."
                return HTMLResponse(_shell("Lancement refusé", msg, script=False), status_code=400, headers=no_store)
            return HTMLResponse(_shell("Ouverture depuis le DPI", "Connexion en cours…"), headers=no_store)

    return router


def install(app: FastAPI, config: SignInConfig) -> None:
    """The sign-in routes and the /ui/ security headers (called once from the service's app)."""
    app.include_router(signin_router(config))
    if unprotected := unguarded_routes(app):
        raise RuntimeError(f"routes without a role requirement: {', '.join(unprotected)}")
    app.add_middleware(PageHeaders, config=config)
