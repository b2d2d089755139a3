"""Issue 19, sign-in, in headless Chromium against the real stack and the local issuer: the page signs in through
the OIDC authorization code flow with PKCE (the issuer's form), opens on the right patient by SMART EHR launch,
and runs under its Content-Security-Policy with no violation; neither the token nor the code reaches a log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from devstack import infra, issuer
from devstack.stack import RunningStack
from services.notification.settings import NotificationSettings
from shared.web import signin as shared_signin
from shared.web.auth import AuthSettings, public
from tests.conftest import ARTIFACTS
from tests.e2e.browser_waits import until

pytestmark = pytest.mark.e2e


@pytest.fixture
def chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium keeping its console (CSP violations are reported there)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("chromium and chromedriver are needed (Debian packages; ./osteocds test installs them)")
    opts = Options()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400", "--lang=fr"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=ChromeService(executable_path=driver), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


def csp_violations(drv: webdriver.Chrome) -> list[str]:
    return [
        e["message"]
        for e in drv.get_log("browser")  # type: ignore[no-untyped-call]
        if "Content Security Policy" in e["message"]
    ]


async def sign_in_on_issuer_form(drv: WebDriver, local: issuer.LocalIssuer, user: str) -> None:
    await until(drv, lambda d: d.find_element(By.ID, "sign-in"))
    assert drv.current_url.startswith(f"{local.url}/authorize?")
    field = drv.find_element(By.ID, "user")
    field.clear()
    field.send_keys(user)
    drv.find_element(By.ID, "sign-in").click()


def logged_text(stack_logs: Path, caplog: pytest.LogCaptureFixture) -> str:
    files = [p.read_text(errors="replace") for p in stack_logs.rglob("*") if p.is_file()]
    return "\n".join([*files, *(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)])


async def test_the_page_signs_in_through_the_code_flow_with_pkce(
    stack: RunningStack,
    local_issuer: issuer.LocalIssuer,
    patient_id: str,
    chromium: webdriver.Chrome,
    stack_logs: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.issuer")
    spent_before = set(local_issuer.spent)
    page = f"{stack.urls['notification']}/ui/patients/{patient_id}"
    await asyncio.to_thread(chromium.get, page)
    await until(chromium, lambda d: d.find_element(By.ID, "signin-button").is_displayed())
    chromium.find_element(By.ID, "signin-button").click()
    await sign_in_on_issuer_form(chromium, local_issuer, "dr-oidc")
    await until(chromium, lambda d: d.find_element(By.ID, "content").is_displayed())
    assert chromium.current_url == page  # back on the page; no code or state left in the address bar
    assert not chromium.find_element(By.ID, "login").is_displayed()

    access = chromium.execute_script('return sessionStorage.getItem("osteocds.token")')
    claims = jwt.decode(access, local_issuer.key.public_key(), algorithms=["ES256"], audience=issuer.AUDIENCE)
    assert (claims["sub"], claims["roles"]) == ("dr-oidc", ["clinician"])
    assert chromium.execute_script('return sessionStorage.getItem("osteocds.signin")') is None  # verifier gone
    [code] = local_issuer.spent - spent_before  # exchanged once, by the page
    assert csp_violations(chromium) == []  # the page's scripts ran under its CSP
    ARTIFACTS.mkdir(exist_ok=True)
    chromium.save_screenshot(str(ARTIFACTS / "issue19-signed-in.png"))

    await asyncio.sleep(1.0)  # the services' log lines of these requests are flushed
    logged = logged_text(stack_logs, caplog)
    assert "/authorize" in logged and "/token" in logged  # the issuer logged its requests...
    assert access not in logged and code not in logged  # ...never the token or the code


async def test_a_smart_ehr_launch_opens_the_page_on_the_launch_patient(
    stack: RunningStack, local_issuer: issuer.LocalIssuer, patient_id: str, chromium: webdriver.Chrome
) -> None:
    notification = stack.urls["notification"]
    # the EHR: a launch bound to the patient open in it, then the app's launch URL with iss and launch
    ehr = f"{local_issuer.url}/ehr-launch?" + urllib.parse.urlencode(
        {"patient": patient_id, "app": f"{notification}/ui/launch"}
    )
    await asyncio.to_thread(chromium.get, ehr)

    def issuer_form_names_the_patient(d: WebDriver) -> bool:
        """The issuer's form, read only once the tab is on /authorize (no script there: it stays until submitted).
        /ui/launch navigates there by itself: a body found on /ui/launch was gone when read (CI: "Node with given id
        does not belong to the document", which `until` now retries as a stale element)."""
        on_form = d.current_url.startswith(f"{local_issuer.url}/authorize?")
        return on_form and patient_id in d.find_element(By.TAG_NAME, "body").text

    await until(chromium, issuer_form_names_the_patient)  # the form names the launch's patient
    await sign_in_on_issuer_form(chromium, local_issuer, "dr-ehr")
    await until(chromium, lambda d: d.find_element(By.ID, "content").is_displayed())
    assert chromium.current_url == f"{notification}/ui/patients/{patient_id}"  # the token response's patient
    assert chromium.find_element(By.ID, "pid").text == patient_id
    access = chromium.execute_script('return sessionStorage.getItem("osteocds.token")')
    assert jwt.decode(access, options={"verify_signature": False})["patient"] == patient_id
    assert csp_violations(chromium) == []


async def test_a_launch_from_an_unknown_ehr_is_refused(stack: RunningStack, chromium: webdriver.Chrome) -> None:
    query = urllib.parse.urlencode({"iss": "https://evil.example/fhir", "launch": "x"})
    await asyncio.to_thread(chromium.get, f"{stack.urls['notification']}/ui/launch?{query}")
    text = chromium.find_element(By.TAG_NAME, "body").text
    assert "Lancement refusé" in text and "evil.example" not in chromium.current_url.split("?", 1)[0]


def test_the_page_routes_send_csp_frame_ancestors_and_no_referrer(stack: RunningStack, patient_id: str) -> None:
    with urllib.request.urlopen(f"{stack.urls['notification']}/ui/patients/{patient_id}", timeout=5) as r:
        headers, body = r.headers, r.read()
    policy = dict(p.strip().split(" ", 1) for p in headers["Content-Security-Policy"].split(";"))
    # the page's own inline scripts (if any: one moved to a file is covered by 'self'), each allowed by its hash only
    for script in re.findall(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", body, re.DOTALL | re.IGNORECASE):
        assert f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"] and policy["frame-ancestors"] == "'self'"
    assert stack.env["OIDC_ISSUER"] in policy["connect-src"]  # the token endpoint, called from the browser
    assert headers["Referrer-Policy"] == "no-referrer"
    for path in ("/ui/callback", "/ui/signin.js"):
        with urllib.request.urlopen(f"{stack.urls['notification']}{path}", timeout=5) as r:
            assert r.headers["Referrer-Policy"] == "no-referrer"


async def test_a_sign_in_answer_the_page_did_not_ask_for_is_refused(
    stack: RunningStack, local_issuer: issuer.LocalIssuer, chromium: webdriver.Chrome
) -> None:
    """Login CSRF: a crafted callback (someone else's code, any state) is not exchanged and leaves no token."""
    spent_before = set(local_issuer.spent)
    query = urllib.parse.urlencode({"code": "someone-elses-code", "state": "forged"})
    await asyncio.to_thread(chromium.get, f"{stack.urls['notification']}/ui/callback?{query}")
    error = await until(chromium, lambda d: d.find_element(By.ID, "signin-error").text)
    assert "Réponse de connexion inattendue" in error
    assert chromium.current_url == f"{stack.urls['notification']}/ui/callback"  # code and state already removed
    assert chromium.execute_script('return sessionStorage.getItem("osteocds.token")') is None
    assert local_issuer.spent == spent_before  # nothing was exchanged


# --- review RE (issue 19): a provider that is not the local issuer --------------------------------------------


class _Provider:
    """A minimal OIDC provider in the test (code flow, PKCE S256 checked, auto-approve): it answers every token
    request with `patient` set, as a SMART server may even when the app did not launch from the EHR."""

    def __init__(self, patient: str | None, nonce: str | None = None) -> None:
        self.patient, self.nonce, self.url = patient, nonce, ""
        self.codes: dict[str, dict[str, str]] = {}
        app = FastAPI()
        app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])

        @app.get("/.well-known/openid-configuration")
        @app.get("/.well-known/smart-configuration")
        async def meta() -> dict[str, object]:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = dict(request.query_params)
            assert q["code_challenge_method"] == "S256"
            code = f"code-{len(self.codes)}"
            self.codes[code] = q
            return RedirectResponse(
                f"{q['redirect_uri']}?{urllib.parse.urlencode({'code': code, 'state': q['state']})}"
            )

        @app.post("/token")
        async def token(request: Request) -> JSONResponse:
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
            asked = self.codes.pop(form["code"])
            digest = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=")
            assert digest.decode() == asked["code_challenge"]
            nonce = self.nonce or asked["nonce"]
            id_token = jwt.encode({"iss": self.url, "aud": asked["client_id"], "sub": "dr-x", "nonce": nonce}, "k" * 32)
            body = {"access_token": "opaque-access", "token_type": "Bearer", "id_token": id_token}
            return JSONResponse(body | ({"patient": self.patient} if self.patient else {}))

        self.app = app


@contextlib.contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    port = infra.free_port()  # outside the ephemeral range (devstack/infra.py)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def _clinicians_page(provider: str) -> FastAPI:
    """The clinicians' page's sign-in (SMART launch on) in front of a stand-in page that only starts a sign-in."""
    app = FastAPI()

    @app.get("/ui/patients/{pid}", dependencies=[public("test page")])
    async def page(pid: str) -> HTMLResponse:
        return HTMLResponse(
            f'<html><body><p id="pid">{pid}</p><button id="go">go</button><script src="/ui/signin.js"></script>'
            '<script>document.getElementById("go").onclick = () => OsteoSignIn.start(location.pathname);</script>'
            "</body></html>"
        )

    # the clinicians' page's settings (SMART launch on) on the shared sign-in; no page files, so the CSP hashes this
    # stand-in page's inline script (the clinicians' page itself allows only its own file's scripts)
    config = shared_signin.SignInConfig(NotificationSettings(), AuthSettings(oidc_issuer=provider), smart_launch=True)
    shared_signin.install(app, config)
    return app


async def test_review_a_sign_in_from_a_patient_returns_to_that_patient_whatever_the_token_response_names(
    chromium: webdriver.Chrome,
) -> None:
    """HAZ-19-AUTH-01: only a SMART launch the page started may choose the patient; a `patient` in an ordinary
    sign-in's token response (a SMART server keeping an earlier context) must not open another patient."""
    provider = _Provider(patient="pt-other")
    with _served(provider.app) as provider.url, _served(_clinicians_page(provider.url)) as page:
        await asyncio.to_thread(chromium.get, f"{page}/ui/patients/pt-asked")
        chromium.find_element(By.ID, "go").click()
        await until(chromium, lambda d: d.execute_script('return sessionStorage.getItem("osteocds.token")'))
        await until(chromium, lambda d: "/ui/callback" not in d.current_url and d.find_element(By.ID, "pid"))
        assert chromium.current_url == f"{page}/ui/patients/pt-asked"
        assert chromium.execute_script('return sessionStorage.getItem("osteocds.token")') == "opaque-access"
        assert csp_violations(chromium) == []


async def test_review_an_ehr_launch_whose_token_response_names_no_patient_opens_none(
    chromium: webdriver.Chrome,
) -> None:
    provider = _Provider(patient=None)
    with _served(provider.app) as provider.url, _served(_clinicians_page(provider.url)) as page:
        query = urllib.parse.urlencode({"iss": provider.url, "launch": "L-1"})
        await asyncio.to_thread(chromium.get, f"{page}/ui/launch?{query}")
        # /ui/launch has its own (empty) #signin-error and navigates away: the error is read once the code came back
        error = await until(
            chromium,
            lambda d: "/ui/callback" in d.current_url and d.find_element(By.ID, "signin-error").text,
        )
        assert "patient" in error.lower() and chromium.current_url == f"{page}/ui/callback"
        assert chromium.execute_script('return sessionStorage.getItem("osteocds.token")') is None


async def test_review_an_id_token_with_another_nonce_leaves_no_token(chromium: webdriver.Chrome) -> None:
    """A code injected from another sign-in (its ID token carries that sign-in's nonce) is refused after the
    exchange, before a token is kept (OIDC Core §3.1.3.7)."""
    provider = _Provider(patient=None, nonce="another-sign-in")
    with _served(provider.app) as provider.url, _served(_clinicians_page(provider.url)) as page:
        await asyncio.to_thread(chromium.get, f"{page}/ui/patients/pt-asked")
        chromium.find_element(By.ID, "go").click()
        error = await until(chromium, lambda d: d.find_element(By.ID, "signin-error").text)
        assert "Jeton d'identité inattendu" in error and chromium.current_url == f"{page}/ui/callback"
        assert chromium.execute_script('return sessionStorage.getItem("osteocds.token")') is None
