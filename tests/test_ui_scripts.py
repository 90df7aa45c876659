"""Extension scripts loaded when a view needs them (ui/scripts.py): the loader's settings, the hand-over to the
component, and the anatomy view's 3-D plot behind it. The browser side is exercised by the browser tests (the real
neuron's 3-D morphology appears, and Plotly is not requested before its view opens)."""

from __future__ import annotations

import panel as pn
from bokeh.document import Document
from panel.models.plotly import PlotlyPlot

from twin_explorer.ui.scripts import ScriptLoader, declare_extension, when_ready


def test_loader_for_plotly_loads_the_apps_own_copy():
    loader = ScriptLoader.for_model(PlotlyPlot, label="Loading the 3-D viewer…")
    assert loader.global_name == "Plotly" and not loader.ready
    assert loader.scripts and all(s.startswith("static/") and "plotly" in s for s in loader.scripts)  # no CDN
    assert all(not c.startswith("http") for c in loader.css_files)


def test_loader_for_tabulator_stays_local_after_a_themed_table_was_made():
    """Panel rewrites Tabulator's page-level stylesheet list to the theme of the last table made, at the CDN for a
    theme it has no copy of (Bootstrap's): the loader must not ask a classroom without internet for it."""
    from panel.models.tabulator import DataTabulator

    table = pn.widgets.Tabulator(None, theme="bootstrap5")
    table.get_root(Document())
    assert any("://" in url for url in DataTabulator.__css__)  # what Panel does; without it this test shows nothing
    loader = ScriptLoader.for_model(DataTabulator, label="Loading the table…")
    assert loader.global_name == "Tabulator" and len(loader.scripts) == 2
    assert all(url.startswith("static/") for url in loader.scripts + loader.css_files), loader


def test_when_ready_shows_once_the_browser_reports_the_scripts():
    shown: list[int] = []
    loader = ScriptLoader(scripts=["static/x.js"], global_name="X")
    when_ready(loader, lambda: shown.append(1))
    assert shown == []
    loader.failed = True  # a failed load shows nothing
    assert shown == []
    loader.ready = True
    assert shown == [1]
    ready = ScriptLoader(ready=True)
    when_ready(ready, lambda: shown.append(2))  # already in the page: at once
    assert shown == [1, 2]


def test_declare_extension_adds_the_name_once():
    from panel.io.state import set_curdoc

    doc = Document()
    pn.state._extensions_[doc] = ["tabulator"]  # what Panel records for a page it made
    with set_curdoc(doc):
        declare_extension("plotly")
        declare_extension("plotly")
    assert pn.state._extensions_[doc] == ["tabulator", "plotly"]


def test_anatomy_3d_plot_takes_the_loaders_place_when_plotly_is_loaded():
    from twin_explorer.ui.anatomy import AnatomyView
    from twin_explorer.ui.state import get_twin, unit_table

    twin = get_twin("demo")
    view = AnatomyView(twin)
    view.__panel__().get_root(Document())
    slot = view._plot3d_slot
    assert list(slot) == [view._plotly_loader]  # the page has no Plotly yet: the loader's line stands there
    with_skeleton = unit_table(twin).index[unit_table(twin)["skeleton"]]
    view.state.unit = int(with_skeleton[0])
    assert view.plot3d.object is not None and view.plot3d.visible and slot.visible
    view._plotly_loader.ready = True  # what the browser sets once Plotly ran
    assert list(slot) == [view.plot3d]
    without = unit_table(twin).index[~unit_table(twin)["skeleton"]]
    view.state.unit = int(without[0])
    assert not view.plot3d.visible and not slot.visible  # no skeleton: no empty 3-D box
