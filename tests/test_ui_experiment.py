"""The generic experiment view runs any registered spec (with progress, Cancel and the shared result cache), and the
MEI view runs on the same machinery."""

from __future__ import annotations

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from bokeh.document import Document  # noqa: E402

from twin_explorer.ui.experiment import SELECTED, SpecView  # noqa: E402
from twin_explorer.ui.mei import MEIView  # noqa: E402
from twin_explorer.ui.state import ExplorerState  # noqa: E402
from twin_explorer.ui.tasks import RESULTS, ResultCache  # noqa: E402


@pytest.fixture
def state(twin):
    st = ExplorerState(twin)
    st.selection = [int(u) for u in twin.units.index[:2]]
    st.unit = int(twin.units.index[0])
    return st


def test_spec_view_runs_the_new_family_and_caches_it(state):
    view = SpecView(state=state, experiment="surround_suppression", scope=SELECTED)
    view.__panel__().get_root(Document())
    assert set(view.param_widgets) >= {"center_diameter_deg", "outer_diameters_deg", "surround_contrast"}
    view.param_widgets["directions"].value = 4
    view.param_widgets["outer_diameters_deg"].value = [60]
    assert view.run(wait=True)
    ds = view.result
    assert ds.attrs["experiment"] == "surround_suppression" and ds.sizes["unit"] == 2
    assert "surround_si" in view.summary.object and len(view.unit_pane) >= 1
    assert "done" in view.runner.message
    again = SpecView(state=state, experiment="surround_suppression", scope=SELECTED)
    again.param_widgets["directions"].value = 4
    again.param_widgets["outer_diameters_deg"].value = [60]
    assert again.run() and again.result is ds  # served from the cache, no second run


def test_spec_view_cancel_stops_the_run(state):
    view = SpecView(state=state, experiment="sf_tuning", scope=SELECTED)
    view.param_widgets["directions"].value = 16
    view.param_widgets["sf_cpd"].value = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5]
    assert view.run()
    view.runner.cancel()
    assert view.runner.wait(60)
    assert "cancelled" in view.runner.message and view.result is None


def test_mei_view_uses_the_shared_runner_and_cache(state):
    view = MEIView(state=state, steps=10)
    view.__panel__().get_root(Document())
    assert view.run(wait=True)
    assert view.image is not None and view.image.shape == state.twin.frame_shape
    assert len(view.activation) >= 2 and "Neuron" in view.summary.object
    assert RESULTS.get(state.twin, "mei", view.experiment_params()) is view.result
    second = MEIView(state=state, steps=10)
    assert second.run() and second.result is view.result  # from the cache, at once


def test_result_cache_is_bounded_in_bytes(twin):
    cache = ResultCache(max_bytes=3 * 2**20)
    video = np.zeros((30, 144, 256), np.uint8)  # 1.1 MB each
    for i in range(5):
        cache.put(twin, "video", {"i": i}, video.copy())
    assert len(cache) == 2 and cache.get(twin, "video", {"i": 4}) is not None
    assert cache.get(twin, "video", {"i": 0}) is None
