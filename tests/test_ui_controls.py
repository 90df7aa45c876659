"""Every control honest: widgets span what the app accepts, refused values are shown and leave the last valid state,
every stimulus family works in the designer, labels say what they are with units, one cyclic map for angles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import param
import pytest

pn = pytest.importorskip("panel")

from bokeh.document import Document  # noqa: E402

from twin_explorer.stimuli import RandomDotKinematogram  # noqa: E402
from twin_explorer.ui.controls import ParamControls, human_label, make_widget, parse_unit  # noqa: E402
from twin_explorer.ui.designer import MAX_PREVIEW_DURATION_S, StimulusDesigner  # noqa: E402
from twin_explorer.ui.state import ExplorerState, get_twin  # noqa: E402


def _release(widget, value) -> None:
    """What a slider's release sends from the browser (``value_throttled`` is read-only from Python)."""
    widget.value = value
    with param.edit_constant(widget):
        widget.value_throttled = value


def test_labels_are_human_with_units():
    assert human_label("sf_cpd") == "Spatial frequency (cycles/°)"
    assert human_label("tf_hz") == "Temporal frequency (Hz)"
    assert human_label("duration_s") == "Duration (s)"
    assert human_label("some_width_deg") == "Some width (°)"  # unknown names still get their unit
    assert human_label("foo_bar") == "Foo bar"


def test_widget_ranges_match_what_is_accepted():
    rdk = RandomDotKinematogram()
    duration = make_widget(rdk, "duration_s", max_duration_s=MAX_PREVIEW_DURATION_S)
    assert isinstance(duration, pn.widgets.FloatSlider) and duration.end == MAX_PREVIEW_DURATION_S
    assert duration.start > 0  # the library refuses a zero duration
    seed = make_widget(rdk, "seed")
    assert isinstance(seed, pn.widgets.IntInput) and seed.end == 2**32 - 1  # typed, not a 4-billion-step slider
    lifetime = make_widget(rdk, "lifetime_s")  # None (= unlimited) is a valid value: an input that may be empty
    assert isinstance(lifetime, pn.widgets.FloatInput) and lifetime.value is None
    assert make_widget(rdk, "direction_deg").end == 360  # the useful range, not the hard bounds (-360, 720)


def test_param_controls_refuse_bad_values_and_keep_the_last_valid_one():
    rdk = RandomDotKinematogram()
    messages: list = []
    controls = ParamControls(rdk, ["lifetime_s", "duration_s"], messages.append,
                             check=lambda s: "too long" if s.duration > 3 else None)
    w = controls.widgets["lifetime_s"]
    w.value = 0.5
    assert rdk.lifetime_s == 0.5 and messages[-1] is None
    w.value = 0.001  # below the 1-frame minimum
    assert rdk.lifetime_s == 0.5 and w.value == 0.5
    assert "Dot lifetime" in messages[-1] and "at least" in messages[-1]
    _release(controls.widgets["duration_s"], 5.0)  # in range, but refused by the check
    assert rdk.duration_s == 2.0 and controls.widgets["duration_s"].value == 2.0 and "too long" in messages[-1]
    rdk.duration_s = 1.5  # a change made from Python reaches the widget
    assert controls.widgets["duration_s"].value == 1.5


def test_a_slider_drag_value_arriving_after_its_refusal_is_put_back():
    rdk = RandomDotKinematogram()
    messages: list = []
    controls = ParamControls(rdk, ["duration_s"], messages.append,
                             check=lambda s: "too long" if s.duration > 3 else None)
    slider = controls.widgets["duration_s"]
    with param.edit_constant(slider):
        slider.value_throttled = 5.0  # the released value first: refused
    assert rdk.duration_s == 2.0 and slider.value == 2.0 and "too long" in messages[-1]
    slider.value = 5.0  # the same gesture's drag value, late: the slider goes back to the valid value
    assert slider.value == 2.0 and rdk.duration_s == 2.0
    slider.value = 2.5  # another drag value is the user's, left alone until released
    assert slider.value == 2.5 and rdk.duration_s == 2.0
    _release(slider, 2.5)
    assert rdk.duration_s == 2.5 and messages[-1] is None
    slider.value = 5.0  # once a value was accepted, the old refusal no longer applies
    assert slider.value == 5.0


@pytest.mark.parametrize("text, why", [("-5", "not a neuron"), ("1e9", "not a neuron"), ("1000", "not a neuron"),
                                       ("NaN", "not a finite"), ("abc", "not a number"), ("3.7", "not a whole"),
                                       ("", "no neuron id"), (None, "no neuron id"), ("99999", "not a neuron")])
def test_parse_unit_says_what_was_wrong(text, why):
    with pytest.raises(ValueError, match=why) as err:
        parse_unit(text, range(1000))
    assert "0 to 999" in str(err.value)  # and what is accepted


def test_parse_unit_accepts_ids():
    assert parse_unit(" 17 ", range(1000)) == 17 and parse_unit(b"5", range(10)) == 5 and parse_unit("2.0", [2]) == 2


def test_every_family_works_in_the_designer(state):
    d = StimulusDesigner(state=state)
    d.__panel__().get_root(Document())
    gifs = {d.family: d.preview.object}
    for family in d.param.family.objects:
        n = d.n_updates
        d.family = family
        assert d.family == family and not d.error.visible, (family, d.error.object)
        assert d.n_updates == n + (family != "DriftingGrating") and d._result["params"]["family"] == family
        assert [w.label for w in d.param_box] == [w.label for w in d.param_controls.widgets.values()]
        gifs[family] = d.preview.object
    assert len(set(gifs.values())) == len(gifs)  # every family previews something of its own (HTML: still + GIF)
    d.family = "RandomDotKinematogram"
    labels = [w.label for w in d.param_box]
    assert "Dot lifetime (s; empty = unlimited)" in labels and "Lifetime s" not in labels
    d.param_controls.widgets["lifetime_s"].value = 0.2
    assert d.stimulus.lifetime_s == 0.2 and d._result["params"]["stim"]["lifetime_s"] == 0.2


def test_designer_refuses_too_long_stimuli_and_keeps_the_preview(state):
    d = StimulusDesigner(state=state)
    d.family = "GaussianDots"
    n, spacing = d.n_updates, d.stimulus.spacing_deg
    _release(d.param_controls.widgets["spacing_deg"], 3.0)  # a dot grid this fine would last minutes
    assert d.refusal.visible and f"at most {MAX_PREVIEW_DURATION_S:g} s" in d.refusal.object
    assert d.stimulus.spacing_deg == spacing and d.n_updates == n
    assert d.param_controls.widgets["spacing_deg"].value == spacing
    _release(d.param_controls.widgets["size_deg"], 6.0)  # a valid change hides the message
    assert not d.refusal.visible and d.n_updates == n + 1


def test_a_failed_family_switch_says_so_and_stays_consistent(state, monkeypatch):
    d = StimulusDesigner(state=state)

    class Broken(RandomDotKinematogram):
        def __init__(self, **params):
            raise RuntimeError("cannot build")

    monkeypatch.setitem(d._families, "Flash", Broken)
    before = d.stimulus
    d.family = "Flash"
    assert d.family == "DriftingGrating" and d.stimulus is before
    assert d.refusal.visible and "Cannot switch to Flash" in d.refusal.object and "cannot build" in d.refusal.object
    assert d._result["params"]["family"] == "DriftingGrating"


def test_a_stimulus_that_fails_to_render_shows_nothing_of_the_previous_family(state, monkeypatch):
    d = StimulusDesigner(state=state)
    assert d.preview.object is not None or d._result is not None
    import twin_explorer.ui.designer as designer_module

    def fail(twin, stim, behaviour):  # results are cached across tests: fail before the cache is asked
        raise ValueError("cannot render")

    monkeypatch.setattr(designer_module, "render_and_predict", fail)
    monkeypatch.setattr(designer_module, "cached_result", lambda twin, stim, behaviour: None)
    d.family = "Flash"
    assert d.error.visible and d._result is None and not d.preview.object
    assert "nothing shown for Flash" in d.info.object


def test_sidebar_neuron_id_shows_a_message_and_keeps_the_focus(twin):
    from twin_explorer.ui.app import Explorer

    ex = Explorer(twin)
    ex.state.unit = 12
    for text in ("-5", "1e9", "1000", "NaN", "abc", "3.7", ""):
        ex.unit_input.value = text
        assert ex.state.unit == 12 and ex.unit_input.value == "12", text
        assert ex.unit_message.visible and "Still showing neuron 12" in ex.unit_message.object, text
    ex.unit_input.value = "40"
    assert ex.state.unit == 40 and not ex.unit_message.visible
    assert "Experiments" in ex.views  # the generic experiment view is a tab


def test_tuning_controls_follow_the_mode_and_count_directions(state):
    from twin_explorer.ui.tuning import PREFERRED, TuningView, _direction_progress

    tv = TuningView(state=state, scope="selected neurons", directions=8, duration_s=0.5)
    assert not tv.controls._widgets["sf_cpd"].disabled
    tv.sf_tf = PREFERRED
    assert tv.controls._widgets["sf_cpd"].disabled and tv.controls._widgets["tf_hz"].disabled
    assert tv.controls._widgets["sf_cpd"].name == "Spatial frequency (cycles/°)"

    class Job:
        def update(self, fraction, message):
            self.seen = (fraction, message)

    job = Job()
    _direction_progress(job, 12, 0.0, 1.0)(4, 12)
    assert job.seen[0] == 4 / 12 and job.seen[1].startswith("4 of 12 directions") and "left" in job.seen[1]
    _direction_progress(job, 12, 0.0, 1.0)(80, 216)
    assert "(12 directions × 18 distinct preferred SF/TF pairs)" in job.seen[1]
    state.selection = [int(state.twin.units.index[0])]
    assert "Measure tuning" in tv.hint.object
    tv.run()
    assert tv.hint.object == ""  # gone as soon as the run starts
    tv.runner.wait(120)


def test_browser_link_cc_ceiling_and_plain_ids():
    from twin_explorer.ui.browser import NeuronBrowser

    state = ExplorerState(get_twin("demo"))
    b = NeuronBrowser(state=state)
    b.__panel__().get_root(Document())
    cols = list(b.table.value.columns)
    assert cols[cols.index("CC") + 1] == "cc_max" and "cc_max" in b.table.header_tooltips
    assert "above 1" in b.table.header_tooltips["CC"]  # why CC_norm can pass 1
    assert b.table.formatters["readout_id"].format == "0"  # no thousands separators in ids
    over = state.table.index[state.table["CC"] > 1]
    if len(over):
        state.unit = int(over[0])
        assert "above 1" in b.page.object and "CC_max" in b.page.object
    state.unit = int(state.table.index[3])
    assert f'href="?unit={state.unit}"' in b.link.object


def test_one_cyclic_map_for_angles_in_bokeh_and_plotly():
    from twin_explorer.anatomy.views import CYCLIC_CMAP, CYCLIC_PLOTLY
    from twin_explorer.experiments.plotting import angle_cmap, angle_colorscale, angle_colour

    assert list(angle_cmap()) == CYCLIC_CMAP and angle_colorscale() == CYCLIC_PLOTLY
    assert angle_colour(0) == angle_colour(360) and angle_colour(90) != angle_colour(270)
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in CYCLIC_CMAP], float)
    assert np.abs(rgb[0] - rgb[-1]).max() < 12  # cyclic: the ends meet
    assert pd.Series(CYCLIC_CMAP).nunique() > 200


def test_teaching_neuron_picks_a_trustworthy_well_measured_tuned_neuron():
    from twin_explorer.ui.browser import teaching_neuron

    ids = pd.Index([1, 2, 3, 4, 5, 6, 7, 8], name="readout_id")
    table = pd.DataFrame({"CC": [1.24, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5, 0.5],
                          "cc_max": [0.99, 0.95, 0.95, 0.96, 0.2, 0.2, 0.2, 0.2]}, index=ids)
    truth = pd.DataFrame({"pref_dir_deg": [10, 10, 10, 350, 10, 10, 10, 10],
                          "gosi": [0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9]}, index=ids)
    tuning = pd.DataFrame({"pref_dir": [10, 200, 10, 5, 10, 10, 10, 10],
                           "gosi": [0.9, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9]}, index=ids)
    # 1: CC_norm above 1; 2: twin 190° off the truth; 3: weakly tuned; 5-8: low ceiling -> 4 (15° across 0°/360°)
    assert teaching_neuron(table, tuning, truth) == 4
    with pytest.raises(ValueError, match="no neuron"):
        teaching_neuron(table, tuning, truth, max_error_deg=1.0)
