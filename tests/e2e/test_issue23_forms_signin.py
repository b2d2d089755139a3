"""Issue 23 follow-up, in headless Chromium against the real stack and the local issuer: the entry forms sign in like
the clinicians' page (shared/web/signin.py): "Se connecter", the issuer's form with the `clinician-entry` role, the
code flow with PKCE, back on the forms with no code in the address bar; an entry saved under the signed-in
clinician's name (the audit record's actor); no CSP violation; and the forms page's security headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from contracts.lifecycle import AuditEvent
from contracts.topics import AUDIT
from devstack import issuer
from devstack.stack import RunningStack
from shared.web.auth import CLINICIAN, CLINICIAN_ENTRY
from tests.conftest import ARTIFACTS, consume_until
from tests.e2e.browser_waits import until
from tests.e2e.test_issue19_signin import chromium, csp_violations, logged_text, sign_in_on_issuer_form

FORMS_FILE = Path(__file__).resolve().parents[2] / "services" / "lab_normalisation" / "static" / "forms.html"

pytestmark = pytest.mark.e2e
__all__ = ["chromium"]  # the fixture, used by name

SET = """
const e = document.querySelector(`[data-link-id="${arguments[0]}"]`);
e.value = arguments[1]; e.dispatchEvent(new Event("change"));
"""


async def sign_in_to_the_forms(drv: WebDriver, local: issuer.LocalIssuer, forms: str, user: str, *roles: str) -> None:
    """The forms' "Se connecter", then the local issuer's form: the user and exactly these roles."""
    await asyncio.to_thread(drv.get, forms)
    await until(drv, lambda d: d.find_element(By.ID, "signin-button").is_displayed())
    drv.find_element(By.ID, "signin-button").click()
    await sign_in_on_issuer_form_with_roles(drv, local, user, roles)
    await until(drv, lambda d: d.find_element(By.ID, "content").is_displayed())


async def sign_in_on_issuer_form_with_roles(
    drv: WebDriver, local: issuer.LocalIssuer, user: str, roles: tuple[str, ...]
) -> None:
    await until(drv, lambda d: d.find_element(By.ID, "sign-in"))
    for box in drv.find_elements(By.CSS_SELECTOR, 'input[name="role"]'):
        if box.is_selected() != (box.get_attribute("value") in roles):
            box.click()
    await sign_in_on_issuer_form(drv, local, user)


async def saved_assessment(drv: WebDriver, months: str) -> Any:
    drv.find_element(By.CSS_SELECTOR, 'button[data-form="assessment"]').click()
    await until(drv, lambda d: d.find_element(By.CSS_SELECTOR, '[data-link-id="life_expectancy_months"]'))
    drv.execute_script(SET, "life_expectancy_months", months)
    drv.find_element(By.ID, "submit").click()
    await until(drv, lambda d: d.find_element(By.CSS_SELECTOR, "#saved, #errors"))
    return drv.find_element(By.ID, "result").text


async def test_the_forms_sign_in_through_the_code_flow_and_save_an_entry(
    stack: RunningStack,
    local_issuer: issuer.LocalIssuer,
    kafka_bootstrap: str,
    patient_id: str,
    chromium: webdriver.Chrome,
    stack_logs: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.issuer")
    forms = f"{stack.urls['lab-normalisation']}/ui/saisie/patients/{patient_id}"
    spent_before = set(local_issuer.spent)
    await sign_in_to_the_forms(chromium, local_issuer, forms, "dr-saisie", CLINICIAN_ENTRY)
    assert chromium.current_url == forms  # back on the forms; no code or state left in the address bar
    assert not chromium.find_element(By.ID, "login").is_displayed()
    access = chromium.execute_script('return sessionStorage.getItem("osteocds.token")')
    claims = jwt.decode(access, local_issuer.key.public_key(), algorithms=["ES256"], audience=issuer.AUDIENCE)
    assert (claims["sub"], claims["roles"], claims["client_id"]) == ("dr-saisie", [CLINICIAN_ENTRY], "osteocds-page")
    assert chromium.execute_script('return sessionStorage.getItem("osteocds.signin")') is None  # verifier gone
    [code] = local_issuer.spent - spent_before  # one code, exchanged once, by the forms

    shown = await saved_assessment(chromium, "12")
    assert "Enregistré" in shown, shown
    [entry] = chromium.execute_script(f"return JSON.parse(sessionStorage.getItem('osteocds.entries.{patient_id}'));")
    assert csp_violations(chromium) == []  # the forms' scripts ran under their CSP
    ARTIFACTS.mkdir(exist_ok=True)
    chromium.save_screenshot(str(ARTIFACTS / "issue23-forms-signed-in.png"))

    def written(record: Any) -> bool:
        e = AuditEvent.model_validate_json(record.value)
        return e.patient_id == patient_id and e.action == "write:assessment"

    audited = AuditEvent.model_validate_json((await consume_until(kafka_bootstrap, AUDIT.name, written)).value)
    assert (audited.actor, audited.roles, audited.service) == ("dr-saisie", [CLINICIAN_ENTRY], "lab-normalisation")
    assert entry["form"] == "assessment" and entry["event_ids"]
    await asyncio.sleep(1.0)  # the services' log lines of these requests are flushed
    logged = logged_text(stack_logs, caplog)
    assert "/authorize" in logged and "/token" in logged  # the issuer logged its requests...
    assert access not in logged and code not in logged  # ...never the token or the code


async def test_a_clinician_without_the_entry_role_signs_in_but_saves_nothing(
    stack: RunningStack, local_issuer: issuer.LocalIssuer, patient_id: str, chromium: webdriver.Chrome
) -> None:
    forms = f"{stack.urls['lab-normalisation']}/ui/saisie/patients/{patient_id}"
    await sign_in_to_the_forms(chromium, local_issuer, forms, "dr-lecture", CLINICIAN)
    shown = await saved_assessment(chromium, "12")
    assert "Refusé (403)" in shown and "rôle clinician-entry" in shown and "rien n'est enregistré" in shown, shown
    assert chromium.execute_script(f"return sessionStorage.getItem('osteocds.entries.{patient_id}');") is None
    # and can sign in again, now with the role, from where the refusal is shown
    chromium.find_element(By.ID, "resignin").click()
    await sign_in_on_issuer_form_with_roles(chromium, local_issuer, "dr-lecture", (CLINICIAN, CLINICIAN_ENTRY))
    await until(chromium, lambda d: d.find_element(By.ID, "content").is_displayed())
    assert "Enregistré" in await saved_assessment(chromium, "12")


def test_the_forms_send_csp_frame_ancestors_and_no_referrer(stack: RunningStack, patient_id: str) -> None:
    intake = stack.urls["lab-normalisation"]
    with urllib.request.urlopen(f"{intake}/ui/saisie/patients/{patient_id}", timeout=5) as r:
        headers, body = r.headers, r.read()
    policy = dict(p.strip().split(" ", 1) for p in headers["Content-Security-Policy"].split(";"))
    inline = re.findall(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", body, re.DOTALL | re.IGNORECASE)
    assert inline  # the forms' own script, allowed by its hash only
    for script in inline:
        assert f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"] and policy["frame-ancestors"] == "'self'"
    # HAZ-19-AUTH-03 (review RE): the hashes are the forms file's own scripts, never hashes of what a body carries
    allowed = {h for h in policy["script-src"].split() if h.startswith("'sha256-")}
    assert allowed == {f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline}
    assert body == FORMS_FILE.read_bytes()
    assert policy["default-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["connect-src"].split() == ["'self'", stack.env["OIDC_ISSUER"]]  # the token endpoint, nothing else
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/ui/callback", "/ui/signin.js", "/ui/signin/config"):
        with urllib.request.urlopen(f"{intake}{path}", timeout=5) as r:
            assert r.headers["Referrer-Policy"] == "no-referrer"
    with urllib.request.urlopen(f"{intake}/ui/signin/config", timeout=5) as r:
        config = json.loads(r.read())
    # the same public client as the page, returning to the forms; no SMART launch here (the page has it)
    assert (config["client_id"], config["page"], config["smart_iss"]) == ("osteocds-page", "/ui/saisie/patients/", [])
    assert config["token_paste"] is True  # the stack's issuer is local (loopback): the development fallback
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{intake}/ui/launch?iss=x&launch=y", timeout=5)
    assert missing.value.code == 404
