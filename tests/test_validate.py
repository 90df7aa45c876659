"""Ground-truth proof: the experiments recover the synthetic mouse's true parameters (the issue's targets)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from twin_explorer.experiments.validate import TARGETS, angular_error, save_report, validate


@pytest.fixture(scope="module")
def report():
    # 100 neurons, quick protocol: RF dots, SF × TF grid, then 16 directions at each neuron's own SF/TF
    return validate(n_neurons=100, seed=0, quick=True, show_progress=False)


def _value(report, metric):
    row = report.table.set_index("metric").loc[metric]
    return float(row["value"]), int(row["n"])


def test_preferred_direction_and_orientation(report):
    v, n = _value(report, "pref_dir_median_err_deg")
    assert n >= 20 and v <= 10.0
    v, n = _value(report, "pref_ori_median_err_deg")
    assert n >= 50 and v <= 10.0


def test_gosi_correlates_with_truth(report):
    v, n = _value(report, "gosi_pearson_r")
    assert n == 100 and v >= 0.9


def test_rf_centres(report):
    v, _ = _value(report, "rf_centre_median_err_deg")
    assert v <= 2.0


def test_sf_preference(report):
    v, _ = _value(report, "sf_within_1.5x_fraction")
    assert v >= 0.8
    assert report.passed and set(report.table["metric"]) == set(TARGETS)
    assert "ALL TARGETS MET" in report.format()


def test_truth_is_independent_of_measurement(report):
    # the comparison table carries the mouse's own truth, not numbers produced by the experiment code
    from twin_explorer.synthetic import SyntheticMouse

    truth = SyntheticMouse(seed=0, n_neurons=100).params
    np.testing.assert_allclose(report.neurons["true_sf"], truth["sf_cpd"])
    np.testing.assert_allclose(report.neurons["true_rf_az"], truth["rf_az_deg"])


def test_report_files(report, tmp_path):
    paths = save_report(report, tmp_path)
    names = {p.name for p in paths}
    assert {"metrics.csv", "neurons.csv", "validation.html", "direction_tuning.nc"} <= names
    assert (tmp_path / "validation.html").stat().st_size > 10_000


def test_angular_error():
    np.testing.assert_allclose(angular_error([350, 10, 179], [10, 350, 1], 360), [20, 20, 178])
    np.testing.assert_allclose(angular_error([175], [5], 180), [10])


def test_cli_registered_and_rejects_bad_input():
    from twin_explorer.cli import typer_app as app

    runner = CliRunner()
    res = runner.invoke(app, ["validate", "--help"])
    assert res.exit_code == 0 and "--n-neurons" in res.output
    res = runner.invoke(app, ["validate", "--n-neurons", "5"])
    assert res.exit_code != 0 and "n_neurons" in res.output
    assert runner.invoke(app, ["tuning", "--help"]).exit_code == 0
