"""The clinicians' page in a real browser: headless Chromium from Debian's packages, driven by Selenium with
Debian's chromedriver (installed by `./osteocds test` when missing). The test logs in with a token, sees an
alert appear live after events are published, acknowledges it, overrides another with a coded reason, and
saves screenshots in test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from contracts.examples import EXAMPLES
from contracts.rules import cite
from contracts.topics import LAB_RESULTS, LOCAL_PLANS, PLANS, RECOMMENDATIONS
from devstack.stack import RunningStack
from shared.web.auth import CLINICIAN
from tests.conftest import ARTIFACTS, Publish, alerts, lab, token
from tests.e2e.browser_waits import until
from tests.e2e.test_alert_lifecycle import recommendation

pytestmark = pytest.mark.e2e

CRISIS = '[data-rule-id="LAB-CA-CRISIS"]'


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("chromium and chromedriver are needed (Debian packages; ./osteocds test installs them)")
    opts = Options()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1800", "--lang=fr"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=ChromeService(executable_path=driver), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


async def test_page_shows_an_alert_live_and_acknowledges_it(
    stack: RunningStack, publish: Publish, patient_id: str, browser: WebDriver
) -> None:
    url = f"{stack.urls['notification']}/ui/patients/{patient_id}"
    await asyncio.to_thread(browser.get, url)
    await until(browser, lambda d: d.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "token").send_keys(token(CLINICIAN, "dr-page"))
    browser.find_element(By.ID, "login-button").click()
    await until(browser, lambda d: "Aucune alerte active." in d.find_element(By.ID, "alerts").text)
    assert "en direct" in browser.find_element(By.ID, "live").text
    browser.execute_script("window.__sameDocument = true;")  # gone if the page reloaded

    drawn = datetime.now(UTC) - timedelta(hours=1)
    await publish(LAB_RESULTS.name, lab(patient_id, "2000-8", 3.30, "mmol/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, lab(patient_id, "1751-7", 2.8, "g/dL", occurred_at=drawn))
    await publish(PLANS.name, {**EXAMPLES[PLANS.name], "patient_id": patient_id, "event_id": str(uuid.uuid4())})
    local = {**EXAMPLES[LOCAL_PLANS.name], "patient_id": patient_id, "event_id": str(uuid.uuid4())}
    await publish(LOCAL_PLANS.name, local)

    text = await until(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'{CRISIS}[data-status="active"]').text)
    assert browser.execute_script("return window.__sameDocument === true;")  # arrived live, no reload
    assert "Critique" in text and cite("LAB-CA-CRISIS").lines in text  # severity and the guideline citation

    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "clinician-page-live-alert.png"))

    def click_ack(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, f'{CRISIS}[data-status="active"] button.ack').click()
        return True

    def confirm_ack(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, f"{CRISIS} button.ack-confirm").click()
        return True

    await until(browser, click_ack)  # retried if the section is redrawn by a live update meanwhile
    await until(browser, confirm_ack)  # issue 19: confirmed, then sent after the undo window
    done = await until(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'{CRISIS}[data-status="acknowledged"]').text)
    assert "acquittée par dr-page" in done

    await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-analyte="corrected_calcium"]'))
    labs = browser.find_element(By.ID, "labs").text
    assert "calculé à partir de" in labs  # corrected calcium: from which results
    assert "2,8 g/dL → 28 g/L" in labs  # the albumin's unit conversion
    assert cite("LAB-CA-CORR").lines in labs  # the corrected calcium's rule and its passage
    await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-plan-item="antiresorptive"]'))
    lesion = EXAMPLES[LOCAL_PLANS.name]["sections"][0]
    await until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-lesion="{lesion["lesion_id"]}"]'))
    assert lesion["items"][0]["title"] in browser.find_element(By.ID, "local-plan").text

    [acked] = [a for a in await alerts(stack, patient_id) if a["rule_id"] == "LAB-CA-CRISIS"]
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "dr-page")

    # override another alert from the page: coded reason and comment
    onj = recommendation(patient_id, "critical", "SYS-ONJ")
    await publish(RECOMMENDATIONS.name, onj)
    box = f'[data-alert-id="{onj["event_id"]}"]'

    def override(d: WebDriver) -> bool:
        """Open the form, choose the reason, write the comment, confirm; done again from the start if a live
        update redraws the alert meanwhile (e.g. its escalation)."""
        if d.find_elements(By.CSS_SELECTOR, f'{box}[data-status="overridden"]'):
            return True  # confirmed just before a redraw
        d.find_element(By.CSS_SELECTOR, f"{box} button.override-open").click()
        form = d.find_element(By.CSS_SELECTOR, f"{box} .override")
        Select(form.find_element(By.CSS_SELECTOR, "select.reason")).select_by_value("patient-declined")
        form.find_element(By.CSS_SELECTOR, "input.comment").send_keys("Refus après information")
        form.find_element(By.CSS_SELECTOR, "button.confirm-override").click()
        return True

    await until(browser, override)
    text = await until(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'{box}[data-status="overridden"]').text)
    assert "passée outre par dr-page le " in text
    assert "raison : Refus du patient (« Refus après information »)" in text  # the reason's French label
    [over] = [a for a in await alerts(stack, patient_id) if a["recommendation_id"] == onj["event_id"]]
    assert (over["overridden_by"], over["override_reason"], over["override_comment"]) == (
        "dr-page",
        "patient-declined",
        "Refus après information",
    )
    shot = ARTIFACTS / "clinician-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
