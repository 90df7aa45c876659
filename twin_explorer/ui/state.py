"""Shared explorer state: the loaded twin, the selected neurons and the behaviour inputs.

One :class:`ExplorerState` per browser session (or per notebook); every view reads and writes the
same instance, so a neuron clicked in one view is selected in all of them. The twin itself is loaded
once per process through :func:`get_twin` and shared read-only between sessions.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

def _load_bokeh_backend() -> None:
    """Register HoloViews' bokeh backend (without notebook output) so element options work under panel serve."""
    import holoviews as hv

    if "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401
    if hv.Store.current_backend != "bokeh":
        hv.Store.set_current_backend("bokeh")


_load_bokeh_backend()

def _default_twin() -> str:
    """The demo twin when its files are present, else the synthetic mouse (TWIN_EXPLORER_TWIN overrides)."""
    if os.environ.get("TWIN_EXPLORER_TWIN"):
        return os.environ["TWIN_EXPLORER_TWIN"]
    try:
        from twin_explorer.engine.registry import demo_available
    except ImportError:
        return "synthetic"
    return "demo" if demo_available() else "synthetic"


#: The twin the explorer opens on.
DEFAULT_TWIN: str = _default_twin()

# Columns of a twin's ground truth (synthetic mouse) that the neuron browser shows: anatomy as is,
# tuning and RF properties prefixed "true_" so they are never confused with in-silico estimates.
_ANATOMY_COLUMNS = ("area", "layer", "x_um", "y_um", "depth_um")
_TRUTH_COLUMNS = ("pref_dir_deg", "pref_ori_deg", "osi", "dsi", "gosi", "gdsi", "rf_az_deg", "rf_el_deg",
                  "rf_sigma_deg", "sf_cpd", "tf_hz")


def _load_twin_uncached(name: str) -> Any:
    try:
        from twin_explorer.engine.registry import load_twin
    except ModuleNotFoundError as exc:  # the registry is not there yet: the synthetic mouse is the twin
        if exc.name != "twin_explorer.engine.registry":
            raise
        if name not in ("synthetic", "demo"):
            raise ValueError(f"unknown twin {name!r}; without the engine registry only 'synthetic' is available") from exc
        from twin_explorer.synthetic import SyntheticMouse

        return SyntheticMouse(seed=0)
    return load_twin(name)


def get_twin(name: str | None = None) -> Any:
    """Load a twin by registry name, once per process (cached with ``pn.state.as_cached``)."""
    name = name or DEFAULT_TWIN
    if not isinstance(name, str) or not name:
        raise ValueError(f"twin name must be a non-empty string such as 'synthetic' or 'demo', got {name!r}")
    return pn.state.as_cached(f"twin_explorer.twin.{name}", _load_twin_uncached, name=name)


def available_twins() -> list[str]:
    """Names the explorer offers: the default twin, the synthetic mouse and MICrONS scans when present."""
    names = [DEFAULT_TWIN, "synthetic"]
    try:
        from twin_explorer.engine import registry
    except ImportError:  # no engine registry yet
        return list(dict.fromkeys(names))
    if registry.demo_available():
        names.append("demo")
    lister = getattr(registry, "available_twins", None) or getattr(registry, "list_twins", None)
    if lister is not None:  # MICrONS scans when the bundle is present
        names += [str(n) for n in lister()]
    return list(dict.fromkeys(names))


def unit_table(twin: Any) -> pd.DataFrame:
    """One row per readout: the twin's unit ids plus whatever per-unit properties the twin carries."""
    units = twin.units
    if not isinstance(units, pd.DataFrame):
        raise ValueError(f"twin.units must be a pandas DataFrame indexed by readout_id, got {type(units).__name__}")
    table = units.copy()
    truth = getattr(twin, "truth", None)
    if isinstance(truth, pd.DataFrame):
        anatomy = [c for c in _ANATOMY_COLUMNS if c in truth.columns and c not in table.columns]
        tuned = [c for c in _TRUTH_COLUMNS if c in truth.columns]
        table = table.join(truth[anatomy]).join(truth[tuned].add_prefix("true_"))
    table.index.name = "readout_id"
    return table


_PER_UNIT_RESULTS = ("osi", "dsi", "gosi", "gdsi", "pref_dir", "pref_ori", "rf_az", "rf_el", "rf_sigma_major",
                     "rf_sigma_minor", "ssi")


def _merge_per_unit(table: pd.DataFrame, ds: Any, prefix: str) -> pd.DataFrame:
    """Add an experiment's per-unit scalars (dims == ('unit',)) as table columns, aligned by readout_id."""
    if ds is None or "unit" not in getattr(ds, "dims", ()):
        return table
    cols = {}
    for name in _PER_UNIT_RESULTS:
        if name not in ds.data_vars:
            continue
        var = ds[name]
        if var.dims == ("unit", "polarity"):  # receptive fields: the on+off map's fit
            var = var.sel(polarity="on_off")
        if var.dims == ("unit",):
            cols[prefix + name] = pd.Series(np.asarray(var.values), index=np.asarray(ds["unit"].values))
    if not cols:
        return table
    return table.drop(columns=[c for c in cols if c in table.columns]).join(pd.DataFrame(cols))


class ExplorerState(param.Parameterized):
    """What every view shares: one twin, one focused neuron, one selection, one behaviour."""

    twin_name = param.String(default=DEFAULT_TWIN, doc="Registry name of the loaded twin.")
    twin = param.Parameter(default=None, doc="The loaded twin (any object obeying the twin contract).")
    unit = param.Integer(default=None, allow_None=True, doc="readout_id of the focused neuron.")
    selection = param.List(default=[], item_type=int, doc="readout_ids of the selected neurons.")
    eye_x = param.Number(default=0.0, bounds=(-3, 3), doc="Horizontal eye position (standardised).")
    eye_y = param.Number(default=0.0, bounds=(-3, 3), doc="Vertical eye position (standardised).")
    pupil = param.Number(default=0.0, bounds=(-3, 3), doc="Pupil size (standardised).")
    running = param.Number(default=0.0, bounds=(-3, 3), doc="Running speed (standardised).")
    tuning = param.Parameter(default=None, doc="Population direction-tuning Dataset once computed (for the table).")
    rfs = param.Parameter(default=None, doc="Population receptive-field Dataset once computed (for the table).")

    def __init__(self, twin: Any = None, **params: Any) -> None:
        if twin is None:
            twin = get_twin(params.get("twin_name"))
        elif isinstance(twin, str):
            params["twin_name"] = twin
            twin = get_twin(twin)
        else:
            params.setdefault("twin_name", str(getattr(twin, "id", "custom")))
        for attr in ("predict", "units", "n_units"):
            if not hasattr(twin, attr):
                raise ValueError(f"the twin has no {attr!r}; the explorer needs an object obeying the twin contract "
                                 "(see twin_explorer.engine.contract)")
        super().__init__(twin=twin, **params)
        self._table: pd.DataFrame | None = None
        if self.unit is None:
            self.unit = int(self.twin.units.index[0])

    @param.depends("tuning", "rfs", watch=True)
    def _on_results(self) -> None:
        self._table = None

    @param.depends("twin", watch=True)
    def _on_twin(self) -> None:
        self._table = None
        self.tuning = self.rfs = None
        ids = self.twin.units.index
        self.selection = [u for u in self.selection if u in ids]
        if self.unit not in ids:
            self.unit = int(ids[0])

    @param.depends("twin_name", watch=True)
    def _on_twin_name(self) -> None:
        if str(getattr(self.twin, "id", "")) != self.twin_name:
            self.twin = get_twin(self.twin_name)

    @param.depends("unit", watch=True)
    def _check_unit(self) -> None:
        if self.unit is not None and self.unit not in self.twin.units.index:
            bad, self.unit = self.unit, int(self.twin.units.index[0])
            raise ValueError(f"unit {bad} is not a readout_id of twin {self.twin_name!r} "
                             f"(ids run {self.twin.units.index.min()}…{self.twin.units.index.max()})")

    @property
    def table(self) -> pd.DataFrame:
        """The unit table of the current twin (cached until the twin changes)."""
        if self._table is None:
            table = unit_table(self.twin)
            for prefix, ds in (("", self.tuning), ("", self.rfs)):
                table = _merge_per_unit(table, ds, prefix)
            self._table = table
        return self._table

    @property
    def focus_units(self) -> list[int]:
        """The focused unit followed by the rest of the selection (for traces), at most 10."""
        units = ([self.unit] if self.unit is not None else []) + [u for u in self.selection if u != self.unit]
        return units[:10]

    def behaviour(self, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Constant perspectives [T, 2] (eye x, y) and modulations [T, 2] (pupil, running) for a stimulus."""
        if int(n_frames) < 1:
            raise ValueError(f"n_frames must be ≥ 1, got {n_frames}")
        persp = np.tile(np.array([self.eye_x, self.eye_y], dtype=np.float32), (int(n_frames), 1))
        mod = np.tile(np.array([self.pupil, self.running], dtype=np.float32), (int(n_frames), 1))
        return persp, mod

    @property
    def behaviour_key(self) -> tuple[float, float, float, float]:
        return (float(self.eye_x), float(self.eye_y), float(self.pupil), float(self.running))
