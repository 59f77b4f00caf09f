"""What ops see in the Temporal Web UI, in a real browser: Debian's Chromium driven by
Playwright (never a downloaded browser). Screenshots land in tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import ROOT, deal_file, starter, wait_for_stage

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
)


def test_ops_find_an_adopting_onboarding_by_stage_and_open_it(
    app_env: dict[str, str], worker_process, ui_port: int, tmp_path: Path
) -> None:
    # globex: tech-touch, contract signed, kickoff automated: it goes straight to adopt.
    # Its own account id: the dev server is shared by the session's tests.
    deal = deal_file(tmp_path, "globex", account_id="ui-globex")
    started = starter(app_env, "start", "--from-file", deal)
    assert started.returncode == 0, started.stderr
    wait_for_stage(app_env, "ui-globex", "adopt")

    ARTIFACTS.mkdir(exist_ok=True)
    query = quote('OnboardingStage="adopt"')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        # Visibility is eventually consistent: reload until the run is listed.
        url = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows?query={query}"
        link = page.get_by_role("link", name="onboarding-ui-globex")
        for _ in range(20):
            page.goto(url)
            try:
                expect(link.first).to_be_visible(timeout=3000)
                break
            except AssertionError:
                continue
        expect(link.first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-list-adopt.png", full_page=True)

        link.first.click()
        expect(page.get_by_role("heading", name="onboarding-ui-globex")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-onboarding.png", full_page=True)
        # The run's static summary (set at start) and its current details (the workflow
        # keeps them: stage, deadline, open items).
        page.get_by_role("tab", name="User Metadata").click()
        summary, details, current = (page.frame_locator("iframe").nth(n) for n in range(3))
        expect(summary.get_by_text("Onboarding ui-globex: basic plan, tech-touch")).to_be_visible()
        expect(details.get_by_text("Globex Bakery")).to_be_visible()
        expect(current.get_by_text("adopt").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-onboarding-metadata.png", full_page=True)
        browser.close()
