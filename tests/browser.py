"""A real headless Chromium for the browser tests, driven by Playwright.

Playwright's own browser download cannot work here, so it drives the system's Chromium
(Debian's ``chromium``; ``make test`` installs it through deploy/browser.py) by its path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

from deploy.browser import INSTALL_HINT, find_chromium

# Root in a container has no user namespace for Chromium's sandbox; /dev/shm may be tiny.
ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; the test is failed (not skipped) when there is none."""
    path = find_chromium()
    if path is None:
        pytest.fail(f"no Chromium for the browser tests. {INSTALL_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
