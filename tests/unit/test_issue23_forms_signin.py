"""Issue 23 follow-up: one sign-in for the clinicians' page and the entry forms (shared/web/signin.py): the same
settings read by both services, the forms' page prefix, no SMART launch on the forms, their security headers."""

from __future__ import annotations

import base64
import hashlib

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from services.lab_normalisation.app import FORMS_PATH
from services.lab_normalisation.settings import LabSettings
from services.notification import signin as page_signin
from services.notification.settings import NotificationSettings
from shared.web import signin
from shared.web.auth import AuthSettings, public

HOSPITAL = AuthSettings(oidc_issuer="https://idp.hospital.example/realms/onco")
FORMS_SCRIPT = b"\nconst forms = 1;\n"


def test_both_services_read_the_same_sign_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGE_CLIENT_ID", "chu-osteocds")
    monkeypatch.setenv("PAGE_FRAME_ANCESTORS", "'self' https://ehr.hospital.example")
    page = page_signin.SignInConfig(NotificationSettings(), HOSPITAL)
    forms = signin.SignInConfig(LabSettings(), HOSPITAL, page=FORMS_PATH)
    for name in ("issuer", "client_id", "scopes", "token_paste", "frame_ancestors"):
        assert getattr(forms, name) == getattr(page, name), name
    assert forms.client_id == "chu-osteocds" and forms.frame_ancestors == "'self' https://ehr.hospital.example"


def test_the_forms_return_to_their_own_page_and_have_no_smart_launch() -> None:
    forms = signin.SignInConfig(
        LabSettings(smart_allowed_iss="https://ehr.hospital.example/fhir"), HOSPITAL, page=FORMS_PATH
    )
    page = page_signin.SignInConfig(
        NotificationSettings(smart_allowed_iss="https://ehr.hospital.example/fhir"), HOSPITAL
    )
    assert (forms.public()["page"], forms.public()["smart_iss"]) == ("/ui/saisie/patients/", [])
    assert (page.public()["page"], page.public()["smart_iss"]) == (
        "/ui/patients/",
        ["https://ehr.hospital.example/fhir"],
    )
    # behind one ingress both pages share an origin: either service's sign-in returns to either page
    assert forms.public()["pages"] == page.public()["pages"] == ["/ui/patients/", "/ui/saisie/patients/"]
    assert forms.connect == ["https://idp.hospital.example"]  # no EHR origin to call: only the provider


@pytest.mark.parametrize("page", ["https://evil.example/ui/", "/ui/patients", "//evil.example/ui/", "/api/"])
def test_a_return_page_outside_ui_is_refused(page: str) -> None:
    with pytest.raises(ValueError, match="page"):
        signin.SignInConfig(LabSettings(), HOSPITAL, page=page)


def _forms_app() -> FastAPI:
    app = FastAPI()

    @app.get(FORMS_PATH + "{pid}", dependencies=[public("test forms")])
    async def forms(pid: str) -> HTMLResponse:
        return HTMLResponse(
            f'<html><script src="/ui/signin.js"></script><script>{FORMS_SCRIPT.decode()}</script></html>'
        )

    signin.install(app, signin.SignInConfig(LabSettings(), HOSPITAL, page=FORMS_PATH))
    return app


def test_the_forms_routes_send_the_page_headers_and_no_launch_route() -> None:
    client = TestClient(_forms_app())
    r = client.get(f"{FORMS_PATH}pt-1")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    digest = base64.b64encode(hashlib.sha256(FORMS_SCRIPT).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'" and csp["frame-ancestors"] == "'self'"
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/signin.js").status_code == 200 and client.get("/ui/callback").status_code == 200
    assert client.get("/ui/launch", params={"iss": HOSPITAL.oidc_issuer, "launch": "abc"}).status_code == 404
    assert client.get("/ui/signin/config").json()["token_paste"] is False  # a hospital's provider: no pasting
