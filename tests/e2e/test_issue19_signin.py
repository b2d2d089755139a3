"""Issue 19, sign-in, in headless Chromium against the real stack and the local issuer: the page signs in through
the OIDC authorization code flow with PKCE (the issuer's form), opens on the right patient by SMART EHR launch,
and runs under its Content-Security-Policy with no violation; neither the token nor the code reaches a log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from devstack import issuer
from devstack.stack import RunningStack
from tests.conftest import ARTIFACTS
from tests.e2e.test_web_page import until

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
    await until(chromium, lambda d: patient_id in d.find_element(By.TAG_NAME, "body").text)  # the form names it
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
