"""In-silico experiments over any object obeying the twin contract (:class:`~twin_explorer.engine.contract.TwinLike`);
every result is an ``xarray.Dataset`` with provenance in ``.attrs`` (twin id, model id, precision, seed, parameters).

Parts, each in its own module:

* ``checks`` — input validation (unit selection, numbers, choices);
* ``runner`` — the one runner: condition videos padded with grey (``Timing``), batched ``predict`` calls sharing
  the grey prefix, progress callback, cancel event, latency-shifted response windows;
* ``streaming`` — partial results: provisional, labelled Datasets an experiment hands over while it runs;
* ``grid`` — grating-grid experiments (condition value × direction, read at each unit's preferred direction);
* ``fitting`` — the batched Levenberg–Marquardt solver behind every per-unit fit;
* ``provenance`` — the attrs of a result; ``plotting`` — HoloViews plots of results;
* ``spec`` — :class:`ExperimentSpec` and the registry that the CLI (``twin-explorer run NAME``), the batch runner
  and the explorer's generic experiment view run; ``specs`` registers the built-in experiments.

Families: ``tuning`` (direction), ``monet2_tuning`` (direction with directional pink noise), ``spatial_temporal`` (SF, TF, SF × TF, contrast, size), ``receptive_fields``,
``readout_rf``, ``surround`` (surround suppression), ``mei``; plus ``metrics`` (prediction performance),
``validate`` (ground-truth proof on the synthetic mouse), ``batch`` (chunked, cached, resumable runs) with
``cluster`` (process-based dask clusters, one GPU per worker) and ``results_store`` (all scans in one file), and
``published`` + ``compare`` (the published digital-twin properties and a twin checked against them).

How to add an experiment
------------------------
:mod:`.surround` is the worked example; one file and one test:

1. Write the experiment function ``my_experiment(twin, <parameters with defaults>, units=None, *, progress=None,
   show_progress=True, cancel=None, seed=0, ...) -> xr.Dataset``. For gratings over a grid of conditions, describe
   the grid with :class:`.grid.GratingGrid` (value dimension, values, directions, ``frames(value, direction)``)
   and call :func:`.grid.run_grid`; otherwise render condition videos with ``runner.Timing(...).pad`` and run
   them with :func:`.runner.run_conditions`. Add the analysis (fits from :mod:`.fitting`) and
   ``ds.attrs.update(provenance(twin, "my_experiment", params, seed=seed, monitor=mon))``.
2. Register it at the end of the file: ``register(ExperimentSpec("my_experiment", my_experiment, "one line",
   median_summary("my_index"), plot_one_unit, plot_population))``. Its parameters are read from the signature.
   A grid experiment that takes ``partial=None`` and passes it (and its analysis, ``analyse=``) to ``run_grid``
   registers with ``streams=True``: the explorer then shows provisional results while it runs (:mod:`.streaming`).
3. Import the module in this package's ``__init__`` (below). Then ``twin-explorer run my_experiment --param
   key=value`` runs it, the explorer's *Experiments* view offers it, and ``run_batch`` can chunk it.
4. Test a real property on the synthetic mouse (``twin_explorer.load_twin("synthetic", n_neurons=...)``), as
   ``tests/test_experiments_surround.py`` does.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: the submodule defining each public name; they are imported at the first use of any of them (the package stays
#: cheap to import: a batch worker unpickling :func:`.chunk.run_chunk` loads neither torch nor plotting)
_HOMES = {name: module for module, names in {
    "batch": ("BatchRunner", "TwinSpec", "cache_key", "experiment_name", "run_batch"),
    "checks": ("resolve_units",),
    "cluster": ("gpu_worker_specs", "local_cluster"),
    "compare": ("PropertyComparison", "circular_error", "compare_properties", "save_comparison", "twin_properties"),
    "fitting": ("batched_lm", "fit_log_gaussian", "fit_naka_rushton", "naka_rushton"),
    "mei": ("MEIState", "mei", "mei_steps", "mei_structure"),
    "metrics": ("cc_abs", "cc_max", "cc_norm", "oracle_correlation", "performance", "plot_performance",
                "twin_performance"),
    "monet2_tuning": ("monet2_direction_tuning",),
    "plotting": ("plot_direction_tuning", "plot_mei", "plot_receptive_field", "plot_rf_centres",
                 "plot_tuning_population", "plot_value_population", "plot_value_tuning"),
    "provenance": ("provenance",),
    "published": ("download_properties", "read_properties", "write_properties"),
    "readout_rf": ("readout_rf", "readout_rf_from_network"),
    "receptive_fields": ("dot_stimulus", "fit_gaussian_2d", "gaussian2d", "receptive_fields",
                         "spatial_selectivity_index", "sta_maps"),
    "results_store": ("read_results", "write_results"),
    "runner": ("Cancelled", "run_conditions", "window_mean"),
    "spatial_temporal": ("contrast_response", "preferred_sf_tf", "sf_tf_tuning", "sf_tuning", "size_tuning",
                         "tf_tuning"),
    "spec": ("REGISTRY", "ExperimentSpec", "get_experiment", "register"),
    "surround": ("surround_suppression",),
    "tuning": ("allen_osi_dsi", "bivonmises", "direction_tuning", "fit_bivonmises", "from_v3", "global_dsi",
               "global_osi", "to_v3", "tuning_from_sf_tf", "tuning_indices"),
}.items() for name in names}
#: public functions named like their submodule: here the name is the function, as ``from .mei import mei`` made it
_CLASHES = frozenset(name for name, module in _HOMES.items() if name == module)


def __getattr__(name: str) -> Any:
    """A public name, on first use: every public name is imported then (and the built-in experiments registered)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    package = sys.modules[__name__]
    for module in sorted(set(_HOMES.values())):  # importlib, not `import`: the point is to import them late
        loaded = importlib.import_module(f"{__name__}.{module}")
        for public in (n for n, home in _HOMES.items() if home == module):
            types.ModuleType.__setattr__(package, public, getattr(loaded, public))
    importlib.import_module(f"{__name__}.specs")  # registers the built-in experiments
    return getattr(package, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


class _Facade(types.ModuleType):
    """This package's module: importing a submodule binds its name here, which must not hide the public function
    of the same name (``mei``, ``provenance``, ``readout_rf``, ``receptive_fields``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CLASHES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade

__all__ = [
    "provenance", "resolve_units", "run_conditions", "window_mean", "Cancelled",
    "ExperimentSpec", "REGISTRY", "register", "get_experiment",
    "direction_tuning", "tuning_indices", "tuning_from_sf_tf", "global_osi", "global_dsi", "allen_osi_dsi",
    "bivonmises", "fit_bivonmises",
    "to_v3", "from_v3", "plot_direction_tuning", "plot_tuning_population",
    "receptive_fields", "dot_stimulus", "sta_maps", "gaussian2d", "fit_gaussian_2d", "spatial_selectivity_index",
    "readout_rf", "readout_rf_from_network", "plot_receptive_field", "plot_rf_centres",
    "sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning", "preferred_sf_tf",
    "fit_log_gaussian", "naka_rushton", "fit_naka_rushton", "batched_lm", "plot_value_tuning", "plot_value_population",
    "surround_suppression", "monet2_direction_tuning",
    "MEIState", "mei_steps", "mei", "plot_mei", "mei_structure",
    "TwinSpec", "BatchRunner", "run_batch", "experiment_name", "cache_key", "local_cluster", "gpu_worker_specs",
    "read_results", "write_results",
    "read_properties", "write_properties", "download_properties", "compare_properties", "twin_properties",
    "circular_error", "PropertyComparison", "save_comparison",
    "cc_abs", "cc_max", "cc_norm", "oracle_correlation", "performance", "twin_performance", "plot_performance",
]
