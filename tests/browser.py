"""Headless Chromium for the tests of what an operator sees: the driver, and filling and submitting admin forms."""
from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def chromium():
    """A headless Chromium driven by Selenium; the caller quits it."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"this test needs headless Chromium, and {' and '.join(missing)} is missing: install the "
                    "Debian packages chromium and chromium-driver (scripts/install.sh does)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def fill(browser, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def log_in(browser, live_server, username: str, password: str) -> None:
    browser.get(f"{live_server.url}/admin/login/")
    fill(browser, {"username": username, "password": password})
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
