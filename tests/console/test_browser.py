"""The console in a real headless Chromium (Debian's chromium and chromedriver, installed by
.ci/run): sign-in, the installations list, a sync watched to the end without a reload, a role
refused an action, and the audit entry the action left.

Screenshots of each page go to the test's folder, or to $CONSOLE_SCREENSHOTS (docs/console
when refreshing the documentation).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from procore_sim.server import SimulatorServer
from tests.console.helpers import OPERATOR_TOKEN, ROLE_TOKENS, VIEWER_TOKEN
from tests.factories import ADMIN_TOKEN, RunningService, execute

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,860",
)


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"admin_tokens": ROLE_TOKENS}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Chromium with a fresh profile; never downloads a browser or a driver."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Shots:
    """Saves a screenshot of the page under a name."""

    def __init__(self, driver: WebDriver, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        self.copy_to = os.environ.get("CONSOLE_SCREENSHOTS")

    def take(self, name: str) -> None:
        path = self.folder / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), name
        if self.copy_to:
            Path(self.copy_to).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(self.copy_to) / path.name)


def wait_for(driver: WebDriver, condition: Any, timeout: float = 60) -> Any:
    # The page's script replaces badges while it updates: a stale read is read again.
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition)


def sign_in(driver: WebDriver, url: str, token: str) -> None:
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(driver, lambda d: "/sign-in" not in d.current_url)


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


class TestConsoleInChromium:
    def test_an_operator_day(
        self,
        browser: WebDriver,
        service: RunningService,
        sim: SimulatorServer,
        tmp_path: Path,
        database_url: str,
    ) -> None:
        shots = Shots(browser, tmp_path)
        first, second = sim.state.company_ids()[:2]
        assert service.install_and_sync(first, name="Acme Builders")["status"] == "succeeded"
        assert service.install_and_sync(second, name="Beacon Constructors")["status"] == "succeeded"

        # Sign-in: the console sends a stranger to the sign-in page, then back.
        browser.get(f"{service.url}/console/installations")
        wait_for(browser, lambda d: "/console/sign-in" in d.current_url)
        shots.take("sign-in")
        sign_in(browser, service.url, OPERATOR_TOKEN)
        assert browser.current_url.endswith("/console/installations")

        # The installations list.
        rows = browser.find_elements(By.CSS_SELECTOR, "#installations tbody tr[data-company]")
        assert [r.get_attribute("data-company") for r in rows] == [str(first), str(second)]
        assert "Acme Builders" in rows[0].text and "succeeded" in rows[0].text
        assert "oncall" in text_of(browser, "form.who")
        shots.take("installations")
        search = browser.find_element(By.NAME, "q")
        search.send_keys("beacon")
        search.submit()
        wait_for(browser, lambda d: "q=beacon" in d.current_url)
        rows = browser.find_elements(By.CSS_SELECTOR, "#installations tbody tr[data-company]")
        assert [r.get_attribute("data-company") for r in rows] == [str(second)]

        # One installation, and a sync watched to its end without reloading the page.
        browser.get(f"{service.url}/console/installations/{first}")
        assert "Acme Builders" in text_of(browser, "h1")
        shots.take("installation")
        sim.state.set_faults(latency_ms=40)  # slow enough to see it running
        browser.find_element(By.ID, "sync-now").click()
        wait_for(browser, lambda d: "/console/runs/" in d.current_url)
        browser.execute_script("window.__notReloaded = true;")
        status = "[data-run-page] [data-field='status']"
        wait_for(browser, lambda d: text_of(d, status) in ("running", "succeeded"))
        if text_of(browser, status) == "running":
            wait_for(
                browser,
                lambda d: d.find_elements(By.CSS_SELECTOR, "#streams tr[data-stream]"),
            )
            shots.take("run-live")
        wait_for(browser, lambda d: text_of(d, status) == "succeeded", timeout=120)
        sim.state.set_faults()
        assert browser.execute_script("return window.__notReloaded === true;")
        records = int(text_of(browser, "[data-field='records']"))
        assert records > 0
        assert browser.find_element(By.CSS_SELECTOR, "[data-field='live']").is_displayed() is False
        assert (
            not browser.find_elements(By.ID, "cancel-run")
            or not browser.find_element(By.ID, "cancel-run").is_displayed()
        )
        shots.take("run")
        run_id = browser.current_url.split("/console/runs/")[1].split("?")[0]

        # A viewer is refused the same action, with a clear page.
        browser.find_element(By.CSS_SELECTOR, "form.who button").click()
        wait_for(browser, lambda d: "Signed out" in text_of(d, "h1"))
        browser.get(f"{service.url}/console/installations/{first}")
        sign_in(browser, service.url, VIEWER_TOKEN)
        assert browser.current_url.endswith(f"/console/installations/{first}")
        assert "needs operator" in text_of(browser, "section.actions")
        browser.find_element(By.ID, "sync-now").click()
        wait_for(browser, lambda d: d.find_elements(By.ID, "error-message"))
        assert "viewer role may not operate" in text_of(browser, "#error-message")
        assert "Not allowed" in text_of(browser, "h1")
        shots.take("refused")

        # The audit entry the operator's sync left, read by the viewer.
        browser.get(f"{service.url}/console/audit?action=sync.queue")
        entries = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr[data-action]")
        assert len(entries) == 1
        entry = entries[0].text.lower()
        assert "oncall" in entry and "operator" in entry and "console" in entry
        assert run_id[:8] in entry or run_id in entry
        browser.get(f"{service.url}/console/audit")
        shots.take("audit")

        browser.get(f"{service.url}/console/runs")
        shots.take("runs")
        browser.get(f"{service.url}/console/health")
        assert "database" in text_of(browser, "#readiness")
        shots.take("health")
        browser.get(f"{service.url}/console/installations/{first}/confirm/uninstall")
        shots.take("confirm-uninstall")

        # An expired session ends on a page that says so.
        execute(database_url, "UPDATE console_sessions SET expires_at = created_at")
        browser.get(f"{service.url}/console/installations")
        wait_for(browser, lambda d: d.current_url.endswith("/console/expired"))
        assert "Your session has ended" in text_of(browser, "h1")
        shots.take("expired")

        # An admin tests the destination before changing anything: each check is shown.
        browser.get(f"{service.url}/console/installations/{first}")
        wait_for(browser, lambda d: "/console/sign-in" in d.current_url)
        sign_in(browser, service.url, ADMIN_TOKEN)
        browser.find_element(By.ID, "test-destination").click()
        wait_for(browser, lambda d: d.find_elements(By.ID, "probe-ok"))
        checks = text_of(browser, "table.grid")
        assert "reachable" in checks and "writable" in checks
        shots.take("destination-test")
