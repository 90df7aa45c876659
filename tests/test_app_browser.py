"""The served explorer: an HTTP smoke test, and Playwright in Debian's headless chromium visiting every view."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks import browser as harness
from twin_explorer.ui.app import create_app
from twin_explorer.ui.state import get_twin, unit_table

HAVE_CHROMIUM = Path(harness.CHROMIUM).exists() or shutil.which("chromium") is not None
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def served():
    """The explorer on a free localhost port; yields (url, list of the app objects built per session)."""
    twin = get_twin("synthetic")
    unit_table(twin)  # warm the twin's ground-truth table outside the page load
    apps: list = []

    def factory():
        app = create_app(twin)
        apps.append(app)
        return app

    with harness.serve_app(factory) as url:
        yield url, apps


def test_served_app_answers(served):
    url, apps = served
    with urllib.request.urlopen(url, timeout=120) as resp:
        html = resp.read().decode()
    assert resp.status == 200 and "twin_explorer" in html
    assert apps and "Stimulus designer" in apps[-1].explorer.views


@pytest.mark.browser
@pytest.mark.timeout(420)
def test_browser_visits_every_view(served, tmp_path):
    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("chromium is required for browser tests under CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    url, apps = served
    shots = Path(os.environ.get("TWIN_EXPLORER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with harness.chromium_page() as (page, errors):
        n_before = len(apps)
        harness.open_explorer(page, url, timeout_ms=180_000)
        app = apps[n_before]
        state, views = app.explorer.state, app.explorer.views

        # 1. a stimulus parameter change redraws the designer's plots
        designer = views["Stimulus designer"]
        heat = page.locator(".bk-Canvas").first
        img_before = heat.screenshot()
        n = harness.designer_updates(page)
        direction_before = designer.stimulus.direction_deg
        harness.nudge_slider(page, "Direction")
        page.locator(f'.te-designer-status[data-updates="{n + 1}"]').wait_for(timeout=60_000)
        assert designer.stimulus.direction_deg != direction_before
        page.wait_for_timeout(500)
        assert heat.screenshot() != img_before, "the plots did not change after a stimulus parameter change"
        page.screenshot(path=str(shots / "designer.png"))

        # 2. select a neuron in the browser: it becomes the focused neuron everywhere
        harness.open_tab(page, "Neurons")
        rows = page.locator(".tabulator-row")
        rows.nth(4).wait_for(timeout=60_000)
        unit_before = state.unit
        rows.nth(4).click()
        deadline = time.monotonic() + 30
        while state.unit == unit_before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert state.unit != unit_before
        page.get_by_text(f"Neuron {state.unit}").first.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "neurons.png"))

        # 3. tuning of the selected neurons, run from the page
        harness.open_tab(page, "Tuning")
        page.locator("select").filter(has_text="selected neurons").first.select_option("selected neurons")
        page.get_by_role("button", name="Measure tuning").click()
        page.get_by_text("preferred direction (°)").first.wait_for(timeout=180_000)
        page.screenshot(path=str(shots / "tuning.png"))

        # 4. the other views render
        for title in ("Receptive fields", "MEI", "Anatomy"):
            if title in views:
                harness.open_tab(page, title)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shots / f"{title.lower().replace(' ', '_')}.png"))

        # 5. after every view has drawn, a table click still updates the sidebar at once and the console stays
        #    clean (hidden views redraw too)
        harness.open_tab(page, "Neurons")
        rows.nth(2).click()
        page.locator("p", has_text=f"focused: {int(state.twin.units.index[2])}").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        assert not errors, f"browser console errors: {errors}"


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_url_opens_a_neurons_page(served):
    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("chromium is required for browser tests under CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed")
    url, apps = served
    with harness.chromium_page() as (page, errors):
        n_before = len(apps)
        page.goto(f"{url}?unit=17", timeout=180_000)
        page.get_by_text("Neuron 17").first.wait_for(timeout=180_000)
        app = apps[n_before]
        assert app.explorer.state.unit == 17
        assert app.explorer.tabs.active == list(app.explorer.views).index("Neurons")
        assert not errors, f"browser console errors: {errors}"


def _need_chromium():
    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("chromium is required for browser tests under CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed")


@pytest.mark.browser
@pytest.mark.timeout(420)
def test_app_loads_with_the_network_blocked_except_localhost(served):
    """A classroom without internet: every script and stylesheet comes from the app's own server."""
    _need_chromium()
    url, apps = served
    with harness.chromium_page() as (page, errors):
        blocked = harness.block_external(page)
        failed: list[str] = []
        page.on("requestfailed", lambda req: failed.append(req.url))
        n_before = len(apps)
        harness.open_explorer(page, url, timeout_ms=180_000)
        for title in apps[n_before].explorer.views:  # every view, each built when its tab opens
            harness.open_tab(page, title)
            page.wait_for_timeout(1000)
        harness.open_tab(page, "Stimulus designer")
        n = harness.designer_updates(page)
        harness.nudge_slider(page, "Direction")
        page.locator(f'.te-designer-status[data-updates="{n + 1}"]').wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert set(apps[n_before].explorer.views.built()) == set(apps[n_before].explorer.views)
    assert blocked == [], f"requests to outside this machine: {blocked}"
    assert failed == [] and errors == [], f"failed requests {failed}, console errors {errors}"


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_three_sessions_at_once_keep_their_own_state_and_are_released(served):
    _need_chromium()
    from PIL import Image

    url, apps = served
    shots = Path(os.environ.get("TWIN_EXPLORER_SCREENSHOTS", "assets/screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with harness.chromium_browser() as browser:
        n_before = len(apps)
        pages = [browser.new_page(viewport={"width": 1280, "height": 900}) for _ in range(3)]
        for page in pages:  # all three load at once
            page.goto(url, timeout=180_000, wait_until="commit")
        for page in pages:
            page.locator(".te-designer-status").first.wait_for(timeout=300_000)
        sessions = apps[n_before:n_before + 3]
        assert len(sessions) == 3 and len({id(a.explorer.state) for a in sessions}) == 3
        designers = [a.explorer.views["Stimulus designer"] for a in sessions]
        directions = [d.stimulus.direction_deg for d in designers]

        # all three work at once: two move the direction, the third focuses another neuron
        counts = [harness.designer_updates(p) for p in pages]
        harness.nudge_slider(pages[0], "Direction")
        harness.nudge_slider(pages[2], "Direction", key="ArrowLeft")
        harness.open_tab(pages[1], "Neurons")
        rows = pages[1].locator(".tabulator-row")
        rows.nth(3).wait_for(timeout=120_000)
        rows.nth(3).click()
        for i in (0, 2):
            pages[i].locator(f'.te-designer-status[data-updates="{counts[i] + 1}"]').wait_for(timeout=120_000)
        unit = int(sessions[1].explorer.state.twin.units.index[3])
        pages[1].locator("p", has_text=f"focused: {unit}").first.wait_for(timeout=60_000)
        assert designers[0].stimulus.direction_deg > directions[0]
        assert designers[2].stimulus.direction_deg < directions[2]
        assert designers[1].stimulus.direction_deg == directions[1]
        assert sessions[1].explorer.state.unit == unit
        assert sessions[0].explorer.state.unit != unit and sessions[2].explorer.state.unit != unit

        # two sessions side by side, each showing its own state
        pages[0].wait_for_timeout(1500)
        halves = []
        for i in (0, 1):
            path = shots / f"session_{i + 1}.png"
            pages[i].screenshot(path=str(path))
            halves.append(Image.open(path))
        both = Image.new("RGB", (sum(h.width for h in halves) + 20, max(h.height for h in halves)), "white")
        both.paste(halves[0], (0, 0))
        both.paste(halves[1], (halves[0].width + 20, 0))
        both.save(shots / "two_sessions.png")
        for i in (0, 1):
            (shots / f"session_{i + 1}.png").unlink()

        for page in pages:
            page.close()
        deadline = time.monotonic() + 60  # SERVE_OPTIONS: a closed page's session goes within a few seconds
        while not all(a.explorer.closed for a in sessions) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(a.explorer.closed for a in sessions), "a closed page's session was not released"
