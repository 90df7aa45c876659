"""In-silico experiments over any object with the twin contract; results are xarray Datasets with provenance.

Tuning and receptive fields (this package's tuning, receptive_fields, spatial_temporal, validate modules) plus the
MEI, metrics and batch modules, each re-exported here when present.
"""

from __future__ import annotations

import importlib

from .common import provenance, resolve_units, run_conditions, window_mean
from .receptive_fields import (dot_stimulus, fit_gaussian_2d, gaussian2d, plot_receptive_field, plot_rf_centres,
                               readout_rf, readout_rf_from_network, receptive_fields, spatial_selectivity_index,
                               sta_maps)
from .spatial_temporal import (contrast_response, fit_log_gaussian, fit_naka_rushton, naka_rushton,
                               plot_value_population, plot_value_tuning, sf_tf_tuning, sf_tuning, size_tuning, tf_tuning)
from .tuning import (allen_osi_dsi, bivonmises, direction_tuning, fit_bivonmises, from_v3, global_dsi, global_osi,
                     plot_direction_tuning, plot_tuning_population, to_v3, tuning_indices)

__all__ = [
    "provenance", "resolve_units", "run_conditions", "window_mean",
    "direction_tuning", "tuning_indices", "global_osi", "global_dsi", "allen_osi_dsi", "bivonmises", "fit_bivonmises",
    "to_v3", "from_v3", "plot_direction_tuning", "plot_tuning_population",
    "receptive_fields", "dot_stimulus", "sta_maps", "gaussian2d", "fit_gaussian_2d", "spatial_selectivity_index",
    "readout_rf", "readout_rf_from_network", "plot_receptive_field", "plot_rf_centres",
    "sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning", "fit_log_gaussian", "naka_rushton",
    "fit_naka_rushton", "plot_value_tuning", "plot_value_population",
]

# Modules owned by the MEI/metrics/batch engineer: re-export their public API when the module exists.
for _mod in ("mei", "metrics", "batch"):
    try:
        _m = importlib.import_module(f"{__name__}.{_mod}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_mod}":
            raise
        continue
    for _name in getattr(_m, "__all__", ()):
        globals()[_name] = getattr(_m, _name)
        __all__.append(_name)
del _mod
