"""Issue 12 end to end, through the real broker and Redis: a censored calcium from the lab topic to the alerts.
"> 3.6 mmol/L" is a hypercalcaemic crisis whatever its exact value (LAB-CA-CRISIS, L304-306: "> 3,5 mmol/L"); "> 2.5"
may or may not be one: no crisis alert, an insufficient-data warning naming the reported value. The clinicians'
page shows the comparator with the value."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from contracts.topics import LAB_RESULTS
from devstack.stack import RunningStack
from shared.web.auth import CLINICIAN
from tests.conftest import Publish, alerts, lab, token, wait_for
from tests.e2e.browser_waits import until
from tests.e2e.test_web_page import browser

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the page fixture


def censored(patient_id: str, code: str, value: float, unit: str, comparator: str, at: datetime) -> dict[str, Any]:
    return {**lab(patient_id, code, value, unit, occurred_at=at), "comparator": comparator}


async def _calcium_alerts(stack: RunningStack, patient_id: str) -> list[dict[str, Any]]:
    return [a for a in await alerts(stack, patient_id) if a["rule_id"] == "LAB-CA-CRISIS"]


async def test_censored_calcium_above_the_threshold_raises_the_crisis_and_a_straddling_one_only_a_warning(
    stack: RunningStack, publish: Publish
) -> None:
    drawn = datetime.now(UTC) - timedelta(hours=1)
    run = drawn.strftime("%H%M%S%f")
    crisis_patient, unsure_patient = f"pt-cens-high-{run}", f"pt-cens-mid-{run}"
    for pid, bound in ((crisis_patient, 3.6), (unsure_patient, 2.5)):
        await publish(LAB_RESULTS.name, lab(pid, "1751-7", 40, "g/L", occurred_at=drawn))
        await publish(LAB_RESULTS.name, censored(pid, "2000-8", bound, "mmol/L", ">", drawn))

    [crisis] = await wait_for(lambda: _calcium_alerts(stack, crisis_patient), timeout=20)
    assert crisis["severity"] == "critical" and crisis["status"] == "active"
    assert "> 3.60 mmol/L" in crisis["title"]
    used = next(i for i in crisis["inputs"] if i["name"] == "corrected_calcium")
    assert (used["comparator"], used["value"]) == (">", pytest.approx(3.6))

    [warning] = await wait_for(lambda: _calcium_alerts(stack, unsure_patient), timeout=20)
    assert warning["severity"] == "warning" and warning["status"] == "active"
    assert "calcémie totale > 2.5 mmol/L" in warning["title"] and "Données insuffisantes" in warning["text_fr"]
    assert warning["missing"] == ["exact total_calcium (reported > 2.5 mmol/L; censored, measure again)"]
    # the same decision that raised the warning raised no crisis: never an emergency from uncertain data
    assert not [a for a in await alerts(stack, unsure_patient) if a["severity"] == "critical"]


async def test_page_shows_the_comparator_with_a_censored_value(
    stack: RunningStack, publish: Publish, patient_id: str, browser: WebDriver
) -> None:
    await asyncio.to_thread(browser.get, f"{stack.urls['notification']}/ui/patients/{patient_id}")
    await until(browser, lambda d: d.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "token").send_keys(token(CLINICIAN, "dr-page"))
    browser.find_element(By.ID, "login-button").click()
    await until(browser, lambda d: "en direct" in d.find_element(By.ID, "live").text)

    drawn = datetime.now(UTC) - timedelta(hours=1)
    await publish(LAB_RESULTS.name, lab(patient_id, "1751-7", 40, "g/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, censored(patient_id, "2000-8", 2.5, "mmol/L", ">", drawn))

    def calcium_rows(d: WebDriver) -> tuple[str, str] | None:
        """The corrected and the total calcium's rows, read in one poll (a live redraw of the labs in between: both
        read again; the total's row used to be found after the wait, on a drawing a new result could replace)."""
        text = d.find_element(By.CSS_SELECTOR, '[data-analyte="corrected_calcium"]').text
        return (text, d.find_element(By.CSS_SELECTOR, '[data-analyte="total_calcium"]').text) if text else None

    text, total = await until(browser, calcium_rows)
    assert "> 2,50 mmol/L (résultat censuré)" in text  # the bound, never shown as an exact 2.5
    assert "Calcémie totale > 2,50 mmol/L" in text  # its provenance keeps the comparator too
    assert "> 2,50 mmol/L" in total
