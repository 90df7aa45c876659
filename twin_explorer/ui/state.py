"""Shared explorer state: the loaded twin, the selected neurons and the behaviour inputs.

One :class:`ExplorerState` per browser session (or per notebook); every view reads and writes the
same instance, so a neuron clicked in one view is selected in all of them. The twin itself is loaded
once per process through :func:`get_twin` and shared read-only between sessions.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any, Callable

import numpy as np
import pandas as pd
import panel as pn
import param

from ..engine.contract import TwinLike
from ..experiments.inclusion import inclusion, twin_reliability
from ..twins import available_scans, demo_available, load_twin, mouse_key, scan_unit_counts
from .tasks import RESULTS

def _load_bokeh_backend() -> None:
    """Register HoloViews' bokeh backend (without notebook output) so element options work under panel serve."""
    import holoviews as hv

    if "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401
    if hv.Store.current_backend != "bokeh":
        hv.Store.set_current_backend("bokeh")


_load_bokeh_backend()

@functools.cache
def _canvas_renderer() -> Any:
    import holoviews as hv

    return hv.renderer("bokeh").instance(webgl=False)


def plot_pane(obj: Any = None, **params: Any) -> pn.pane.HoloViews:
    """A HoloViews pane of the explorer: drawn on a canvas, not with WebGL (HoloViews' default for Bokeh). Served
    pages leave BokehJS's WebGL bundle out (``ui.app.PAGE_BOKEH_BUNDLES``), and a canvas is cheaper to start than a
    WebGL context for maps of at most ``ui.raster.MAX_POINTS`` points (larger ones are binned images)."""
    return pn.pane.HoloViews(obj, renderer=_canvas_renderer(), **params)


def _default_twin() -> str:
    """The demo twin when its files are present, else the synthetic mouse (TWIN_EXPLORER_TWIN overrides)."""
    if os.environ.get("TWIN_EXPLORER_TWIN"):
        return os.environ["TWIN_EXPLORER_TWIN"]
    return "demo" if demo_available() else "synthetic"


#: The twin the explorer opens on.
DEFAULT_TWIN: str = _default_twin()

# Columns of a twin's ground truth (synthetic mouse) that the neuron browser shows: anatomy as is,
# tuning and RF properties prefixed "true_" so they are never confused with in-silico estimates.
_ANATOMY_COLUMNS = ("area", "layer", "x_um", "y_um", "depth_um")
_TRUTH_COLUMNS = ("pref_dir_deg", "pref_ori_deg", "osi", "dsi", "gosi", "gdsi", "rf_az_deg", "rf_el_deg",
                  "rf_sigma_deg", "sf_cpd", "tf_hz")


#: Folder of the MICrONS weight bundle (None: the bundle module's default, $TWIN_EXPLORER_CACHE/microns).
BUNDLE_DIR: str | None = os.environ.get("TWIN_EXPLORER_BUNDLE") or None
MICRONS_PREFIX = "microns "


def microns_name(session: int, scan_idx: int) -> str:
    """The selector entry of a MICrONS scan, e.g. ``"microns 8-5"``."""
    return f"{MICRONS_PREFIX}{int(session)}-{int(scan_idx)}"


def _parse_microns(name: str) -> tuple[int, int]:
    try:
        session, scan_idx = name[len(MICRONS_PREFIX):].split("-")
        return int(session), int(scan_idx)
    except ValueError as exc:
        raise ValueError(f"MICrONS twins are named 'microns <session>-<scan_idx>' (e.g. 'microns 8-5'), "
                         f"got {name!r}") from exc


def _load_twin_uncached(name: str) -> TwinLike:
    if name.startswith(MICRONS_PREFIX):
        session, scan_idx = _parse_microns(name)
        return load_twin("microns", session=session, scan_idx=scan_idx, directory=BUNDLE_DIR)
    return load_twin(name)


_TWINS: dict[str, TwinLike] = {}
_TWINS_LOCK = threading.Lock()


def get_twin(name: str | None = None) -> TwinLike:
    """Load a twin by explorer name (``"demo"``, ``"synthetic"``, ``"microns 8-5"``), once per process."""
    name = name or DEFAULT_TWIN
    if not isinstance(name, str) or not name:
        raise ValueError(f"twin name must be a non-empty string such as 'synthetic', 'demo' or 'microns 8-5', "
                         f"got {name!r}")
    with _TWINS_LOCK:  # one load per name even when several sessions open at once
        if name not in _TWINS:
            _TWINS[name] = _load_twin_uncached(name)
        return _TWINS[name]


def register_twin(twin: TwinLike, name: str | None = None) -> str:
    """Make a twin object selectable by name (its existing name if already loaded, else ``name`` or its id)."""
    with _TWINS_LOCK:
        for known, obj in _TWINS.items():
            if obj is twin:
                return known
        name = name or str(getattr(twin, "id", f"twin-{id(twin)}"))
        _TWINS[name] = twin
        return name


def microns_scans() -> list[str]:
    """Selector names of the MICrONS scans in the bundle (empty when no bundle is present)."""
    try:
        return [microns_name(a, b) for a, b in available_scans(BUNDLE_DIR)]
    except (ValueError, OSError):  # an unreadable scans.csv
        return []


def available_twins() -> list[str]:
    """Names the explorer offers: the default twin, the demo twin, the synthetic mouse and MICrONS scans
    (``"microns <session>-<scan_idx>"``) when the bundle is present."""
    names = [DEFAULT_TWIN, *_TWINS]
    if demo_available():
        names.append("demo")
    names.append("synthetic")
    names += microns_scans()
    return list(dict.fromkeys(names))


def twin_options(current: str | None = None) -> dict[str, str]:
    """The explorer's twin picker: label -> twin name for ``current`` and every :func:`available_twins` entry; a
    MICrONS scan is labelled with its session-scan and unit count (``"microns 8-5 · 9,941 units"``)."""
    try:
        counts = scan_unit_counts(BUNDLE_DIR)
    except (ValueError, OSError):  # an unreadable scans.csv: the scans are not offered (microns_scans)
        counts = {}
    options = {}
    for name in dict.fromkeys([*([current] if current else []), *available_twins()]):
        label = name
        if name.startswith(MICRONS_PREFIX):
            try:
                n = counts.get(_parse_microns(name))
            except ValueError:
                n = None
            label = f"{name} · {n:,} units" if n is not None else name
        options[label] = name
    return options


#: Environment variable naming the anatomy folder the explorer opens (default: the bundled synthetic sample).
ANATOMY_ENV = "TWIN_EXPLORER_ANATOMY"


def anatomy_source(anatomy: Any = None) -> Any:
    """What the explorer's anatomy is loaded from: ``anatomy`` itself (a folder path or an ``Anatomy``), else the
    folder in $TWIN_EXPLORER_ANATOMY, else None (the bundled synthetic sample)."""
    if anatomy is not None and not isinstance(anatomy, str | os.PathLike) and not hasattr(anatomy, "resolve_units"):
        raise ValueError("anatomy must be a folder path or a twin_explorer.anatomy.Anatomy, "
                         f"got {type(anatomy).__name__}")
    return anatomy if anatomy is not None else (os.environ.get(ANATOMY_ENV) or None)


def get_anatomy(anatomy: Any = None) -> Any:
    """The explorer's anatomy volume, loaded once per process and folder: ``anatomy`` (a folder path or an
    ``Anatomy``, returned as is), else $TWIN_EXPLORER_ANATOMY, else the bundled synthetic sample (None when that is
    missing). A named folder that cannot be opened raises (FileNotFoundError, ValueError) saying why."""
    source = anatomy_source(anatomy)
    if source is not None and not isinstance(source, str | os.PathLike):
        return source
    from twin_explorer.anatomy import Anatomy  # start-up time: the anatomy stack loads with the first view using it

    if source is None:
        def load_sample() -> Any:
            try:
                return Anatomy.sample()
            except FileNotFoundError:
                return None

        return pn.state.as_cached("twin_explorer.anatomy.sample", load_sample)
    folder = os.path.abspath(os.fspath(source))
    return pn.state.as_cached(f"twin_explorer.anatomy.{folder}", lambda: Anatomy(folder))


#: How the bundled synthetic anatomy sample is labelled wherever it is shown.
SYNTHETIC_LABEL = "synthetic sample — not MICrONS data"


def twin_synthetic_label(twin: TwinLike) -> str:
    """How the explorer labels a twin made from or fitted to a synthetic mouse (from its metadata, without computing
    the mouse's truth); "" for any other twin (a MICrONS scan, a custom one)."""
    meta = getattr(twin, "metadata", None)
    if meta is None:
        return ""
    if meta.kind == "synthetic":
        return "the synthetic mouse itself — not MICrONS data"
    key = mouse_key(meta.trained_on, twin.n_units)  # (seed, n_neurons) of the mouse, as its truth is found
    return f"fitted to synthetic mouse {key[0]} — not MICrONS data" if key is not None else ""


def anatomy_is_synthetic(anatomy: Any) -> bool:
    """Whether an anatomy volume is synthetic (its manifest says ``synthetic: true``), i.e. not MICrONS data."""
    return bool((getattr(anatomy, "manifest", None) or {}).get("synthetic", False))


def twin_truth(twin: TwinLike) -> pd.DataFrame | None:
    """The ground truth behind a twin (the contract's ``truth()``): the synthetic mouse's own, that of the mouse a
    twin was trained on (e.g. the demo twin), for the twin's readouts; None for twins of real mice."""
    truth = twin.truth()
    if truth is None:
        return None
    common = truth.index.intersection(twin.units.index)
    return truth.loc[common] if len(common) else None


#: Per-unit accuracy columns a twin may carry in its units table, best first (shown as the table's "CC").
CC_COLUMNS = ("cc_norm", "cc_abs", "cc")


def twin_cc(twin: TwinLike) -> pd.Series:
    """Per-unit prediction accuracy (correlation coefficient) the twin ships, indexed by readout_id; NaN where the
    twin reports none (the synthetic mouse is the ground truth itself and has no CC). ``.name`` says which CC."""
    units = twin.units
    for col in CC_COLUMNS:
        if col in units.columns:
            return pd.Series(pd.to_numeric(units[col], errors="coerce").to_numpy(float), index=units.index,
                             name=col)
    extra = twin.metadata.extra
    for col in CC_COLUMNS:
        values = extra.get(col)
        if values is not None and len(values) == len(units):
            return pd.Series(np.asarray(values, float), index=units.index, name=col)
    return pd.Series(np.full(len(units), np.nan), index=units.index, name="cc")


def coregistration(units: pd.DataFrame, anatomy: Any = None) -> pd.DataFrame:
    """Per unit: ``coregistered`` (unique | multiple | none), the chosen ``nucleus_id`` (best match) and ``skeleton``
    (the volume holds a skeleton or meshwork of that neuron), from the anatomy volume (see :func:`get_anatomy`);
    all 'none' when no anatomy is available or it cannot be read (the anatomy view shows why)."""
    try:
        volume = get_anatomy(anatomy)
        if volume is not None:
            res = volume.resolve_units(units)
            has = set(volume.skeleton_ids) | set(volume.meshwork_ids)
            return pd.DataFrame({"coregistered": res["match"].astype(str), "nucleus_id": res["nucleus_id"],
                                 "skeleton": res["nucleus_id"].isin(has).fillna(False).astype(bool)},
                                index=res.index).reindex(units.index)
    except (KeyError, ValueError, OSError):  # units without session/scan_idx/unit_id, or an unreadable folder
        pass
    return pd.DataFrame({"coregistered": "none", "nucleus_id": pd.array([pd.NA] * len(units), dtype="Int64"),
                         "skeleton": False}, index=units.index)


def unit_table(twin: TwinLike, anatomy: Any = None) -> pd.DataFrame:
    """One row per readout: the twin's unit ids, area and layer, its per-unit accuracy ``CC`` and ``included``
    (the paper's inclusion thresholds, when the twin ships cc_max/cc_abs), the coregistration
    with ``anatomy`` (``coregistered``, ``nucleus_id``, ``skeleton``; see :func:`get_anatomy`) and, where a ground
    truth exists, the true tuning as ``true_*``."""
    units = twin.units
    if not isinstance(units, pd.DataFrame):
        raise ValueError(f"twin.units must be a pandas DataFrame indexed by readout_id, got {type(units).__name__}")
    table = units.drop(columns=[c for c in CC_COLUMNS if c in units.columns])
    truth = twin_truth(twin)
    if isinstance(truth, pd.DataFrame):
        placed = [c for c in _ANATOMY_COLUMNS if c in truth.columns and c not in table.columns]
        tuned = [c for c in _TRUTH_COLUMNS if c in truth.columns]
        table = table.join(truth[placed]).join(truth[tuned].add_prefix("true_"))
    table = table.assign(CC=twin_cc(twin).reindex(table.index).to_numpy())
    rel = twin_reliability(twin)
    if np.isfinite(rel["cc_max"].to_numpy()).any():  # the paper's thresholds, where the twin ships cc_max/cc_abs
        table["included"] = inclusion(rel["cc_max"], rel["cc_abs"], index=rel.index)["included"].reindex(table.index)
    table = table.join(coregistration(units, anatomy))
    first = [c for c in ("session", "scan_idx", "unit_id", "area", "layer", "CC", "included", "coregistered",
                         "nucleus_id",
                        "skeleton")
             if c in table.columns]
    table = table[first + [c for c in table.columns if c not in first]]
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


def deferred(fn: Callable[[], None]) -> Callable[..., None]:
    """A watcher that runs ``fn`` on the server's next tick (coalescing repeated triggers) instead of inside the
    triggering callback, so cheap updates (the table, the sidebar) reach the browser before costly redraws of
    other views; outside a server session (notebooks, tests) ``fn`` runs at once."""
    pending = threading.Event()

    def run() -> None:
        pending.clear()
        fn()

    def schedule(*_events: Any) -> None:
        doc = pn.state.curdoc
        if doc is None or getattr(doc, "session_context", None) is None:
            fn()
        elif "dist_url" not in doc._template_variables:
            # the page is still being built (e.g. ?unit= applied in create_app): models made now get the server's
            # resource URLs when it is served; a next-tick run could come first and give them CDN stylesheet URLs
            fn()
        elif not pending.is_set():
            from .tasks import in_session

            pending.set()
            in_session(doc, run)

    return schedule


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
    anatomy = param.Parameter(default=None, doc="Anatomy folder (path or Anatomy); None: $TWIN_EXPLORER_ANATOMY, "
                                                "else the bundled synthetic sample.")

    def focus_nearest(self, xy: np.ndarray, ids: Any, x: float | None, y: float | None) -> None:
        """Focus the neuron whose plotted point ``xy[i]`` lies nearest to a click at (x, y); ignore empty clicks."""
        if x is None or y is None or not len(ids):
            return
        self.unit = int(np.asarray(ids)[int(np.argmin(np.hypot(xy[:, 0] - x, xy[:, 1] - y)))])

    def __init__(self, twin: TwinLike | None = None, **params: Any) -> None:
        if twin is None:
            twin = get_twin(params.get("twin_name"))
        elif isinstance(twin, str):
            params["twin_name"] = twin
            twin = get_twin(twin)
        else:
            params.setdefault("twin_name", register_twin(twin))
        for attr in ("predict", "units", "n_units"):
            if not hasattr(twin, attr):
                raise ValueError(f"the twin has no {attr!r}; the explorer needs an object obeying the twin contract "
                                 "(see twin_explorer.engine.contract)")
        super().__init__(twin=twin, **params)
        self._table: pd.DataFrame | None = None
        if self.unit is None:
            self.unit = int(self.twin.units.index[0])

    def close(self) -> None:
        """The session closed: drop what it holds for itself (its unit table with merged results, its results); the
        twin and the shared result cache stay for the other sessions."""
        with param.parameterized.discard_events(self):
            self.tuning = self.rfs = None
        self._table = None

    @param.depends("tuning", "rfs", "anatomy", watch=True)
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
        twin = get_twin(self.twin_name)
        if twin is not self.twin:
            self.twin = twin

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
            # built once per twin and anatomy for all sessions (coregistration costs most of a new session's CPU)
            table = RESULTS.compute_once(self.twin, "unit_table", {"anatomy": str(self.anatomy)},
                                         lambda: unit_table(self.twin, self.anatomy)).copy()
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
