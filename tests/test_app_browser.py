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


@pytest.fixture(scope="module")
def served_real(tmp_path_factory):
    """The explorer on the MICrONS-layout fixture twin and a real-layout anatomy folder assembled from real pieces
    (tests/anatomy_folders.py); yields (url, apps, folder)."""
    from anatomy_folders import REAL, build_real_folder
    from conftest import require_fnn_fixtures

    import twin_explorer.ui.state as st

    fnn = require_fnn_fixtures()
    if not (REAL / "README.md").exists():
        pytest.fail(f"real MICrONS samples missing at {REAL}")
    folder = build_real_folder(tmp_path_factory.mktemp("anatomy") / "real")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(st, "BUNDLE_DIR", str(fnn / "bundle"))
        twin = st.get_twin("microns 0-0")
        unit_table(twin, str(folder))
        apps: list = []

        def factory():
            apps.append(create_app(twin, anatomy=str(folder)))
            return apps[-1]

        with harness.serve_app(factory) as url:
            yield url, apps, folder


@pytest.mark.browser
@pytest.mark.timeout(420)
def test_browser_shows_a_real_neuron_its_synapses_and_partners(served_real, tmp_path):
    from anatomy_folders import MP_NUCLEUS, MP_ROOT, MP_UNIT

    if not HAVE_CHROMIUM:
        if IN_CI:
            pytest.fail("chromium is required for browser tests under CI (.ci/run installs it)")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    url, apps, _folder = served_real
    shots = Path(os.environ.get("TWIN_EXPLORER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with harness.chromium_page(1500, 1400) as (page, errors):
        n_before = len(apps)
        page.goto(f"{url}?unit=2", timeout=180_000)  # readout 2 of scan 0-0 is unit 12, coregistered to nucleus 901
        page.get_by_text("Neuron 2").first.wait_for(timeout=180_000)
        app = apps[n_before]
        units = app.explorer.state.twin.units
        assert int(units.loc[2, "unit_id"]) == MP_UNIT[2]
        # the neuron table links the MICrONS twin's units to the real tables
        linked = page.locator(".tabulator-row", has_text="unique")
        linked.first.wait_for(timeout=30_000)
        texts = linked.all_inner_texts()
        assert len(texts) == 2 and any(str(MP_NUCLEUS) in t for t in texts)
        harness.open_tab(page, "Anatomy")
        page.get_by_text(f"Neuron 2 → nucleus {MP_NUCLEUS}").first.wait_for(timeout=120_000)
        page.get_by_text("12424 in, 6514 out").first.wait_for(timeout=30_000)  # its real synapses
        page.get_by_text("MICrONS minnie65_public v1300").first.wait_for(timeout=30_000)
        view = app.explorer.views["Anatomy"]
        partner = next(r for r in view.partners.value["partner_root_id"] if r != str(MP_ROOT))
        page.get_by_text(str(partner)).first.wait_for(timeout=30_000)  # the partner table in the page
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # its 3-D morphology
        link = page.locator("a.te-neuroglancer").first
        link.wait_for(timeout=30_000)
        assert "neuroglancer" in (link.get_attribute("href") or "")
        assert page.get_by_text("synthetic sample").count() == 0
        page.wait_for_timeout(2500)
        page.screenshot(path=str(shots / "anatomy_real.png"), full_page=True)
        assert not errors, f"browser console errors: {errors}"
