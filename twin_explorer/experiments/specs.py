"""The built-in experiments as registered specs (see :mod:`.spec`); a new family registers itself in its own
module the same way (example: :mod:`.surround`). The condition sweeps stream provisional results (``streams``)."""

from __future__ import annotations

from typing import Any

import xarray as xr

from .mei import MEI_OPTIONS, mei, mei_steps
from .plotting import (plot_direction_tuning, plot_mei, plot_receptive_field, plot_rf_centres, plot_tuning_population,
                       plot_value_population, plot_value_tuning)
from .receptive_fields import receptive_fields
from .spatial_temporal import contrast_response, sf_tf_tuning, sf_tuning, size_tuning, tf_tuning
from .spec import ExperimentSpec, median_summary, register
from .tuning import direction_tuning


def _plot_sf_tf(ds: xr.Dataset, unit: int) -> Any:
    """SF × TF results plot as their SF curve at the best TF (the grid itself is in ``ds.tuning``)."""
    u = ds.sel(unit=int(unit))
    best_tf = ds["tf"].values[int(u["tuning"].max("sf").argmax())]
    along = ds.sel(tf=best_tf).drop_vars("tf").drop_dims("direction", errors="ignore")
    return plot_value_tuning(along, unit)


BUILT_IN = [
    ExperimentSpec("direction_tuning", direction_tuning, "Drifting gratings in every direction: OSI, DSI, preferred "
                   "direction (bi-von-Mises fit).", median_summary("gosi", "gdsi"), plot_direction_tuning,
                   plot_tuning_population, streams=True),
    ExperimentSpec("sf_tuning", sf_tuning, "Spatial-frequency tuning at each unit's preferred direction.",
                   median_summary("pref_sf"), plot_value_tuning, plot_value_population, streams=True),
    ExperimentSpec("tf_tuning", tf_tuning, "Temporal-frequency tuning at each unit's preferred direction.",
                   median_summary("pref_tf"), plot_value_tuning, plot_value_population, streams=True),
    ExperimentSpec("sf_tf_tuning", sf_tf_tuning, "Joint SF × TF tuning: each unit's preferred SF and TF.",
                   median_summary("pref_sf", "pref_tf"), _plot_sf_tf, streams=True),
    ExperimentSpec("contrast_response", contrast_response, "Contrast-response function with a Naka–Rushton fit.",
                   median_summary("c50", "n"), plot_value_tuning, plot_value_population, streams=True),
    ExperimentSpec("size_tuning", size_tuning, "Gratings in growing apertures: preferred size and suppression index.",
                   median_summary("pref_size", "si"), plot_value_tuning, plot_value_population, streams=True),
    ExperimentSpec("receptive_fields", receptive_fields, "Flashing dots, spike-triggered average, 2-D Gaussian fit.",
                   median_summary("rf_sigma_major"), plot_receptive_field, plot_rf_centres),
    ExperimentSpec("mei", mei, "Most exciting image by preconditioned gradient ascent.",
                   median_summary("mei_activation", "control_activation"), plot_mei, kind="optimisation",
                   options=MEI_OPTIONS - {"every"}, options_from=mei_steps),
]

for _spec in BUILT_IN:
    register(_spec)
