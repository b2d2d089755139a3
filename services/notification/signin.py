"""Issue 19: the clinicians' page signs in with the shared sign-in (shared/web/signin.py, static/signin.js): the OIDC
authorization code flow with PKCE, the SMART EHR launch (this page only: it opens on the launch's patient) and the
/ui/ security headers (CSP with the inline scripts' hashes, frame-ancestors, no-referrer)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI

from services.notification.settings import NotificationSettings
from shared.web import signin
from shared.web.auth import AuthSettings

#: the page the sign-in returns to, a patient ID after it (and the one a SMART launch opens)
PAGE: Final = "/ui/patients/"
#: the page's HTML files: the CSP allows their inline scripts by hash, never one a response body carries
STATIC: Final = Path(__file__).with_name("static")


class SignInConfig(signin.SignInConfig):
    """The page's sign-in: the shared one, with the SMART EHR launch."""

    def __init__(self, settings: NotificationSettings, auth: AuthSettings | None = None) -> None:
        super().__init__(settings, auth, page=PAGE, smart_launch=True, html_files=sorted(STATIC.glob("*.html")))


def install(app: FastAPI, settings: NotificationSettings, auth: AuthSettings | None = None) -> None:
    """The sign-in routes and the /ui/ security headers (called once from app.py)."""
    signin.install(app, SignInConfig(settings, auth))
