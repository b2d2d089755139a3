"""Waiting in the browser tests: `until` polls a condition that finds its elements again and reads them inside the
condition, retried while the page redraws or navigates under it.

A redraw within one document raises StaleElementReferenceException. A navigation between two commands of one poll
(the sign-in's pages go /ui/launch -> the issuer's form -> /ui/callback -> the page, each a new document) is reported
by chromedriver under other names: an "unknown error" whose inspector message is "Node with given id does not belong
to the document" (it failed test_a_smart_ehr_launch_opens_the_page_on_the_launch_patient in CI), a "timeout ...
aborted by navigation" or "no such execution context" for a script (seen with Chromium 156; SeleniumHQ/selenium
#15401 and #12221 report the first ones as chromedriver's). They mean the same as a stale element, and are retried as
one; every other error still ends the wait at once, and a state that never comes still fails at the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")

#: chromedriver's words for "the document changed under this command" (its messages, not its error codes, say it)
DOCUMENT_CHANGED: Final = (
    "does not belong to the document",
    "No node with given id found",
    "aborted by navigation",
    "no such execution context",
)


def document_changed(exc: WebDriverException) -> bool:
    """True when the command failed because its element or its document was replaced (a redraw, a navigation)."""
    if isinstance(exc, StaleElementReferenceException):
        return True
    text = exc.msg or str(exc)
    return any(marker in text for marker in DOCUMENT_CHANGED)


def retried(condition: Callable[[WebDriver], T]) -> Callable[[WebDriver], T]:
    """The condition, its "document changed" errors raised as StaleElementReferenceException (which the wait
    ignores, keeping the last one for its timeout message); any other error is raised unchanged."""

    def poll(drv: WebDriver) -> T:
        try:
            return condition(drv)
        except (NoSuchElementException, StaleElementReferenceException):
            raise
        except WebDriverException as exc:
            if document_changed(exc):
                raise StaleElementReferenceException(exc.msg, exc.screen, exc.stacktrace) from exc
            raise

    return poll


async def until(drv: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 20) -> Any:
    """The condition's first truthy value, polled every 0.1 s (in a thread: the event loop keeps serving the stack);
    TimeoutException when it does not come within `timeout` seconds."""
    wait = WebDriverWait(
        drv, timeout, poll_frequency=0.1, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )
    return await asyncio.to_thread(wait.until, retried(condition))


def text_of(by: str, selector: str) -> Callable[[WebDriver], str]:
    """A condition: the element's text, found and read in the same poll."""
    return lambda d: d.find_element(by, selector).text


def clicked(by: str, selector: str) -> Callable[[WebDriver], bool]:
    """A condition: the element found and clicked in the same poll (a redraw between the two: found again). A click
    is retried only when its element or document was gone; use it where a click on a new drawing does no harm."""

    def click(d: WebDriver) -> bool:
        d.find_element(by, selector).click()
        return True

    return click


__all__ = ["DOCUMENT_CHANGED", "clicked", "document_changed", "retried", "text_of", "until"]
