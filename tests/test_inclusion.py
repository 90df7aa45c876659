"""The paper's inclusion thresholds: the mask and its reasons, the twin's reliability, validation on all and on
included neurons, and the tuning/RF views showing the focused neuron's reliability and greying excluded neurons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import twin_explorer
from twin_explorer.experiments.inclusion import (CC_ABS_MIN, CC_MAX_MIN, GOSI_MIN, THRESHOLDS_SENTENCE, inclusion,
                                                 twin_reliability)
from twin_explorer.experiments.validate import validate


def test_thresholds_are_the_papers():
    assert (CC_MAX_MIN, CC_ABS_MIN, GOSI_MIN) == (0.4, 0.2, 0.25)
    assert "cc_max > 0.4" in THRESHOLDS_SENTENCE and "cc_abs > 0.2" in THRESHOLDS_SENTENCE
    assert "gOSI > 0.25" in THRESHOLDS_SENTENCE


def test_mask_and_reasons():
    table = inclusion(cc_max=[0.9, 0.4, 0.9, np.nan, 0.3], cc_abs=[0.5, 0.5, 0.2, 0.5, 0.1],
                      index=[10, 11, 12, 13, 14])
    assert table["included"].tolist() == [True, False, False, False, False]  # strictly above each threshold
    assert table.loc[10, "reason"] == ""
    assert table.loc[11, "reason"] == "cc_max 0.40 ≤ 0.4"
    assert table.loc[12, "reason"] == "cc_abs 0.20 ≤ 0.2"
    assert table.loc[13, "reason"] == "cc_max unknown"
    assert table.loc[14, "reason"] == "cc_max 0.30 ≤ 0.4; cc_abs 0.10 ≤ 0.2"
    ori = inclusion([0.9, 0.9], [0.5, 0.5], gosi=[0.3, 0.1])
    assert ori["included"].tolist() == [True, False] and ori.loc[1, "reason"] == "gOSI 0.10 ≤ 0.25"
    with pytest.raises(ValueError, match="one per neuron"):
        inclusion([0.5, 0.5], [0.5])


def test_twin_reliability_reads_the_units_table():
    demo = twin_explorer.load_twin("demo")
    rel = twin_reliability(demo)
    assert list(rel.columns) == ["cc_abs", "cc_max", "cc_norm"] and rel.index.equals(demo.units.index)
    np.testing.assert_allclose(rel["cc_norm"], demo.units["cc_norm"])
    mouse = twin_explorer.load_twin("synthetic", n_neurons=5)
    assert twin_reliability(mouse).isna().all().all()  # the ground truth ships no accuracy


@pytest.fixture(scope="module")
def judged():
    mouse = twin_explorer.load_twin("synthetic", n_neurons=40, seed=0)
    ids = mouse.units.index
    rng = np.random.default_rng(0)
    reliability = pd.DataFrame({"cc_abs": rng.uniform(0.1, 0.8, len(ids)), "cc_max": rng.uniform(0.2, 0.95, len(ids)),
                                "cc_norm": rng.uniform(0.3, 1.0, len(ids))}, index=ids)
    return validate(mouse=mouse, quick=True, show_progress=False, reliability=reliability), reliability


def test_validation_reports_all_and_included_neurons(judged):
    report, reliability = judged
    expected = (reliability["cc_max"] > 0.4) & (reliability["cc_abs"] > 0.2)
    n = report.neurons
    assert n["included"].tolist() == expected.reindex(n.index).tolist()
    assert 5 < expected.sum() < len(expected)
    row = report.table.set_index("metric").loc["pref_dir_median_err_deg"]
    selective = n["true_gdsi"] >= 0.2
    assert row["n"] == selective.sum() and row["n_included"] == (selective & n["included"]).sum()
    assert np.isclose(row["value_included"], np.median(n.loc[selective & n["included"], "dir_err"]))
    ori = report.table.set_index("metric").loc["pref_ori_median_err_deg"]
    kept = (n["true_gosi"] >= 0.2) & n["included"] & (n["gosi"] > GOSI_MIN)  # orientation: gOSI too
    assert ori["n_included"] == kept.sum() and n.loc[~n["included_ori"], "excluded_because"].str.len().gt(0).all()
    assert report.judged and "included" in report.format() and "cc_max > 0.4" in report.format()


def test_validation_without_reliability_leaves_included_empty():
    report = validate(n_neurons=10, quick=True, show_progress=False)
    assert not report.judged and report.table["value_included"].isna().all()
    assert "included" not in report.neurons


def test_views_show_reliability_and_grey_excluded_neurons():
    from bokeh.document import Document

    from twin_explorer.ui.reliability import EXCLUDED_ALPHA, opacity, reliability_lines
    from twin_explorer.ui.state import ExplorerState, get_twin, unit_table
    from twin_explorer.ui.tuning import TuningView

    demo = get_twin("demo")
    rel = twin_reliability(demo)
    bad = int(rel.index[(rel["cc_abs"] <= 0.2).to_numpy()][0]) if (rel["cc_abs"] <= 0.2).any() else None
    good = int(rel.index[((rel["cc_max"] > 0.4) & (rel["cc_abs"] > 0.2)).to_numpy()][0])
    text = "\n".join(reliability_lines(demo, good))
    assert f"cc_max {rel.loc[good, 'cc_max']:.2f}" in text and f"CC_norm {rel.loc[good, 'cc_norm']:.2f}" in text
    assert "**Included**" in text and THRESHOLDS_SENTENCE in text
    if bad is not None:
        assert "**Excluded**" in "\n".join(reliability_lines(demo, bad))
        assert opacity(demo, [good, bad]).tolist() == [1.0, EXCLUDED_ALPHA]
    table = unit_table(demo)
    assert table["included"].tolist() == ((rel["cc_max"] > 0.4) & (rel["cc_abs"] > 0.2)).tolist()
    state = ExplorerState(demo)
    state.selection = [good]
    state.unit = good
    tv = TuningView(state=state, scope="selected neurons", directions=8, duration_s=0.5)
    tv.__panel__().get_root(Document())
    assert tv.run(wait=True)
    assert "cc_max" in tv.indices.object and "CC_norm" in tv.indices.object
