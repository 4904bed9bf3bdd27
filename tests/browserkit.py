"""Debian's chromium, headless, driven by its chromedriver through selenium (no driver
download: both executables are the system's). For the dashboard's browser tests and
bench/dashboard.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
MISSING = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
)


def chromium(width: int = 1280, height: int = 900) -> object:
    """A new headless Chromium session (a selenium WebDriver) with a profile of its own;
    the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, MISSING
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="cellops-chromium-")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root on CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)
