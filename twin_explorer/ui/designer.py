"""The stimulus designer: pick a stimulus family, set its parameters, watch the twin respond.

Builds each family's controls, renders and predicts in the shared worker pool, and shows an animated preview of the
stimulus (:mod:`.preview`), the predicted population response (neurons × time heatmap) and the traces of the selected
neurons (:mod:`.response_plots`); behaviour inputs (eye position, pupil, running) feed the prediction; the stimulus
(mp4/npy) and the responses (NetCDF) can be downloaded.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import panel as pn
import param
import xarray as xr

from twin_explorer.stimuli import FAMILIES, INTERACTIVE_FAMILIES

from . import preview as previews
from .controls import ParamControls
from .response_plots import ResponsePlots
from .state import ExplorerState, deferred
from .tasks import INTERACTIVE, RESULTS, in_session, session_key
from .upload import VideoUpload

# Parameters not offered as widgets (set by the app, or not meaningful to edit here).
_HIDDEN = {"name", "monitor", "path"}  # path: an uploaded video's stored file
MAX_PREVIEW_DURATION_S = 10.0  # longest stimulus the designer previews (the library itself allows MAX_DURATION_S)
PREVIEW_DURATION_S = 1.0
# Starting values that keep each family's preview short (the library's defaults suit full experiments).
PREVIEW_DEFAULTS: dict[str, dict[str, Any]] = {
    "GaussianDots": {"spacing_deg": 40.0, "dot_s": 0.2, "isi_s": 0.1, "polarity": "on"},
}


def stimulus_families() -> dict[str, type]:
    """Name -> class for every stimulus family the library provides and can build with defaults."""
    return {name: FAMILIES[name] for name in INTERACTIVE_FAMILIES}


def _param_names(stim: param.Parameterized) -> list[str]:
    """The parameters offered as widgets (tuples, arrays and objects such as apertures are set from Python)."""
    return [pname for pname, p in stim.param.objects("existing").items()
            if pname not in _HIDDEN and not (p.constant or p.readonly or pname.startswith("_"))
            and isinstance(p, (param.Number, param.Integer, param.Selector, param.Boolean, param.String))]


def preview_problem(stim: Any) -> str | None:
    """Why the designer cannot preview ``stim`` (too long), or None."""
    if stim.duration > MAX_PREVIEW_DURATION_S:
        return (f"the designer previews at most {MAX_PREVIEW_DURATION_S:g} s; this stimulus would last "
                f"{stim.duration:g} s. Shorten it, or run long stimuli from Python.")
    return None


def stimulus_snapshot(stim: Any) -> Any:
    """A copy of a stimulus with the same parameters, to render in a worker while the user goes on editing."""
    values = {k: v for k, v in stim.param.values().items() if k != "name" and not stim.param[k].readonly}
    return type(stim)(**values)


def result_params(stim: Any, behaviour: tuple[float, float, float, float]) -> dict[str, Any]:
    """What a designer result is cached under (with the twin): the family, its parameters and the behaviour."""
    return {"family": type(stim).__name__, "stim": stim.params_dict(), "behaviour": behaviour}


def cached_result(twin: Any, stim: Any, behaviour: tuple[float, float, float, float]) -> dict[str, Any] | None:
    """The result :func:`render_and_predict` would return, if it is cached; None otherwise."""
    return RESULTS.get(twin, "designer", result_params(stim, behaviour))


def render_and_predict(twin: Any, stim: Any, behaviour: tuple[float, float, float, float]) -> dict[str, Any]:
    """Render ``stim``, predict the twin's responses and encode the preview (cached per twin, stimulus and
    behaviour; computed once when several sessions ask for the same at the same time)."""
    params = result_params(stim, behaviour)
    fps = float(getattr(twin, "frame_rate", 30.0))

    def compute() -> dict[str, Any]:
        frames = stim.render()
        T = frames.shape[0]
        persp = np.tile(np.asarray(behaviour[:2], np.float32), (T, 1))
        mod = np.tile(np.asarray(behaviour[2:], np.float32), (T, 1))
        responses = np.asarray(twin.predict(frames, perspectives=persp, modulations=mod), dtype=np.float32)
        return {"frames": frames, "responses": responses, "epochs": stim.epochs.copy(), "params": params,
                "preview": previews.encode_preview(frames, fps)}

    return RESULTS.compute_once(twin, "designer", params, compute)


class StimulusDesigner(pn.viewable.Viewer):
    """Design a stimulus and see the twin's population response; usable alone: ``StimulusDesigner(twin)``."""

    family = param.Selector(default="DriftingGrating", objects=list(INTERACTIVE_FAMILIES), doc="Stimulus family.")
    normalise = param.Boolean(default=True, doc="Scale each neuron's row of the heatmap to its own maximum.")
    n_updates = param.Integer(default=0, doc="Number of completed redraws (a marker for browser tests).")
    last_update_ms = param.Number(default=0.0, doc="Server time of the last redraw (render + predict + plots).")

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        self._families = stimulus_families()
        super().__init__(**params)
        self.param.family.objects = list(self._families)
        if self.family not in self._families:
            self.family = next(iter(self._families))
        self._stimuli: dict[str, Any] = {}
        self._controls: dict[str, ParamControls] = {}
        self._result: dict[str, Any] | None = None
        self._order: np.ndarray | None = None

        self.family_select = pn.widgets.Select.from_param(self.param.family, label="Stimulus family")
        self.param_box = pn.Column(sizing_mode="stretch_width")
        self.behaviour_controls = ParamControls(self.state, ["eye_x", "eye_y", "pupil", "running"], self._show_refusal)
        self.behaviour_box = pn.Column(*self.behaviour_controls.widgets.values(), sizing_mode="stretch_width")
        self.preview = pn.pane.HTML("", width=386, height=218, margin=(5, 10), styles={"border": "1px solid #ccc"})
        self._pending: object | None = None  # the latest redraw requested (older results arriving late are dropped)
        self.info = pn.pane.HTML("", margin=(0, 10))
        self._status_text = ""
        self.error = pn.pane.Alert("", alert_type="danger", visible=False)
        # a refused control value (the previous valid value stays): separate from the stimulus error above
        self.refusal = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["te-refusal"])
        self._shown_family = self.family
        self.plots = ResponsePlots(on_row=self._on_row)
        self.upload = VideoUpload(self.use_video, max_s=MAX_PREVIEW_DURATION_S)
        self.downloads = pn.Column(
            pn.widgets.FileDownload(callback=self._export_mp4, filename="stimulus.mp4", label="Stimulus .mp4",
                                    width=140),
            pn.widgets.FileDownload(callback=self._export_npy, filename="stimulus.npy", label="Stimulus .npy",
                                    width=140),
            pn.widgets.FileDownload(callback=self._export_nc, filename="responses.nc", label="Responses .nc",
                                    width=140),
        )
        self.state.param.watch(self._on_behaviour, ["eye_x", "eye_y", "pupil", "running", "twin"])
        self.state.param.watch(deferred(self._on_focus), ["unit", "selection"])
        self._build_params()
        self._building = True  # a cached first result goes into the page whole, preview included
        self.update()
        self._building = False

    # ---- stimulus and parameters -------------------------------------------------------------------
    @property
    def stimulus(self) -> Any:
        """The stimulus object being designed (a ``twin_explorer.stimuli`` family instance)."""
        if self.family not in self._stimuli:
            stim = self._families[self.family]()
            presets = dict(PREVIEW_DEFAULTS.get(self.family, {}))
            if "duration_s" in stim.param and stim.duration > PREVIEW_DURATION_S:
                presets["duration_s"] = PREVIEW_DURATION_S
            stim.param.update(**{k: v for k, v in presets.items() if k in stim.param})
            stim.param.watch(lambda _e: self.update(), [n for n in stim.param if n not in _HIDDEN])
            self._stimuli[self.family] = stim
        return self._stimuli[self.family]

    def use_video(self, stim: Any, filename: str = "") -> None:
        """Show the user's video ``stim`` (a ``VideoFile``, e.g. from the upload) as the family "VideoFile"."""
        if "VideoFile" not in self._families:
            self._families["VideoFile"] = type(stim)
            self.param.family.objects = [*self.param.family.objects, "VideoFile"]
        stim.param.watch(lambda _e: self.update(), [n for n in stim.param if n not in _HIDDEN])
        self._stimuli["VideoFile"] = stim
        self._controls.pop("VideoFile", None)
        if self.family == "VideoFile":  # a second video replaces the first
            self._build_params()
            self.update()
        else:
            self.family = "VideoFile"

    @param.depends("family", watch=True)
    def _on_family(self) -> None:
        previous = self._shown_family
        if self.family == previous:  # switched back after a failed switch: what is shown is already this family
            return
        try:
            self._build_params()
        except Exception as exc:  # a family that cannot be offered: say so and stay on the one shown
            self._stimuli.pop(self.family, None)
            self._controls.pop(self.family, None)
            self._show_refusal(f"Cannot switch to {self.family}: {exc}")
            self.param.update(family=previous)
            return
        self._shown_family = self.family
        self._show_refusal(None)
        self.update()

    def _build_params(self) -> None:
        stim = self.stimulus
        if self.family not in self._controls:  # one set of widgets per family, kept for switching back
            self._controls[self.family] = ParamControls(stim, _param_names(stim), self._show_refusal,
                                                        check=preview_problem, max_duration_s=MAX_PREVIEW_DURATION_S)
        self.param_controls = self._controls[self.family]
        self.param_box[:] = list(self.param_controls.widgets.values())

    def _show_refusal(self, message: str | None) -> None:
        """Show why a control's value was refused (None hides the message)."""
        self.refusal.object, self.refusal.visible = (message or ""), message is not None

    def _clear_display(self) -> None:
        """Show nothing rather than another family's preview and predictions under the current family's name."""
        self._result = None
        self.preview.object = ""
        self.plots.clear()
        self._set_status(f"nothing shown for {self.family}")

    def _set_status(self, text: str, pending: bool = False) -> None:
        """The line under the preview (``data-updates`` counts the redraws shown); ``pending`` adds "updating…"
        while a redraw is computed (the page has no spinning busy indicator: see ui/app.py)."""
        self._status_text = text
        more = ' · <i class="te-updating">updating…</i>' if pending else ""
        self.info.object = (f'<span class="te-designer-status" data-updates="{self.n_updates}">{text}{more}</span>')

    def _on_behaviour(self, *_events: Any) -> None:
        self.update()

    @param.depends("normalise", watch=True)
    def _on_normalise(self) -> None:
        if self._result is not None:
            with pn.io.hold():
                self._show_heat()

    def _on_focus(self, *_events: Any) -> None:
        if self._result is not None:
            with pn.io.hold():
                self._show_traces()

    def _on_row(self, row: int) -> None:
        """A click on a heatmap row focuses that neuron (row ``row`` from the top is neuron ``_order[row]``)."""
        if self._order is not None and row < len(self._order):
            self.state.unit = int(self.state.twin.units.index[self._order[row]])

    # ---- computation -------------------------------------------------------------------------------
    def update(self) -> None:
        """Render, predict and redraw. In a server session, rendering and prediction run in the worker pool shared
        by all sessions and the event loop only moves the finished data to the page; in a notebook, at once
        (both cached). A cached result is shown at once everywhere: a new session's first stimulus is usually
        cached, and then its page arrives with the plots and preview drawn (sent in the page's document, not as a
        second message that has the browser draw the plots twice)."""
        t0 = time.perf_counter()
        stim = self.stimulus
        token = self._pending = object()
        try:
            problem = preview_problem(stim)
            if problem:
                raise ValueError(problem)
            twin, behaviour = self.state.twin, self.state.behaviour_key
            doc = pn.state.curdoc
            hit = cached_result(twin, stim, behaviour)
            if hit is not None or doc is None or getattr(doc, "session_context", None) is None:
                self._show_result(token, hit if hit is not None else render_and_predict(twin, stim, behaviour), t0)
                return
            snapshot = stimulus_snapshot(stim)
        except Exception as exc:  # a bad parameter combination is shown, not raised into the server
            self._show_error(exc, type(stim).__name__)
            return
        future = INTERACTIVE.submit(session_key(doc), lambda: render_and_predict(twin, snapshot, behaviour),
                                    coalesce=("designer", id(self)))
        self._set_status(self._status_text, pending=True)

        def done(f: Any) -> None:
            if not f.cancelled():
                in_session(doc, lambda: self._finish_update(token, f, t0))

        future.add_done_callback(done)

    def _finish_update(self, token: object, future: Any, t0: float) -> None:
        """On the event loop: show a result computed in the pool (unless a newer request replaced it)."""
        if token is not self._pending:
            return
        try:
            result = future.result()
        except Exception as exc:
            self._show_error(exc, type(self.stimulus).__name__)
            return
        self._show_result(token, result, t0)

    def _show_error(self, exc: Exception, family: str | None = None) -> None:
        """Say why nothing new is shown; a previous result of another family is cleared rather than left under this
        family's name."""
        self.error.object, self.error.visible = f"**Cannot show this stimulus:** {exc}", True
        self._set_status(self._status_text)  # no longer "updating…"
        if family is not None and self._result is not None and self._result["params"]["family"] != family:
            self._clear_display()

    def _show_result(self, token: object, result: dict[str, Any], t0: float) -> None:
        self.error.visible = False
        self._result = result
        fps = float(getattr(self.state.twin, "frame_rate", 30.0))
        with pn.io.hold():
            self._show_heat()
            self._show_traces()
            ms = (time.perf_counter() - t0) * 1000
            self.last_update_ms = ms
            self.n_updates += 1
            T, U = result["responses"].shape
            self._set_status(f"{T} frames ({T / fps:.2f} s) · {U} neurons · updated in {ms:.0f} ms")
        # The preview follows on the next tick, so the plots' update goes out first and is not held up by the
        # browser decoding the image (at once outside a server, and while the page is being made).
        if self._building:
            self._show_preview(token, result)
        else:
            pn.state.execute(lambda: self._show_preview(token, result), schedule=True)

    def _show_preview(self, token: object, result: dict[str, Any]) -> None:
        if token is self._pending:  # a newer stimulus has not replaced it meanwhile
            doc = pn.state.curdoc
            served = previews.ANIMATIONS_SERVED and getattr(doc, "session_context", None) is not None
            self.preview.object = result["preview"].html(served=served)

    # ---- plots -------------------------------------------------------------------------------------
    def _unit_order(self) -> np.ndarray:
        table = self.state.table
        for col in ("pref_dir", "true_pref_dir_deg"):
            if col in table.columns:
                return np.argsort(table[col].to_numpy(), kind="stable")
        return np.arange(len(table))

    def _heat_data(self) -> tuple[np.ndarray, float, str]:
        """(neurons × time response, top row first, in ``_order``; duration in s; y-axis label)."""
        resp = self._result["responses"]
        self._order = self._unit_order()
        z = resp[:, self._order].T
        if self.normalise:
            z = z / np.maximum(z.max(axis=1, keepdims=True), 1e-9)
        fps = float(getattr(self.state.twin, "frame_rate", 30.0))
        sorted_ = any(c in self.state.table for c in ("pref_dir", "true_pref_dir_deg"))
        label = "neuron (sorted by preferred direction)" if sorted_ else "neuron"
        return z, resp.shape[0] / fps, label

    def _show_heat(self) -> None:
        z, duration, label = self._heat_data()
        self.plots.show_heat(z, duration, label, self.normalise)

    def _show_traces(self) -> None:
        """One line per focused/selected neuron (the focused one first)."""
        resp = self._result["responses"]
        t = np.arange(resp.shape[0]) / float(getattr(self.state.twin, "frame_rate", 30.0))
        ids = self.state.twin.units.index
        units = [u for u in self.state.focus_units if u in ids]
        self.plots.show_traces(t, units, [resp[:, c] for c in ids.get_indexer(units)])

    # ---- exports -----------------------------------------------------------------------------------
    def _export_mp4(self) -> io.BytesIO:
        import imageio.v3 as iio

        fps = float(getattr(self.state.twin, "frame_rate", 30.0))
        data = iio.imwrite("<bytes>", self._result["frames"], extension=".mp4", plugin="pyav", codec="libx264",
                           fps=fps, in_pixel_format="gray")
        return io.BytesIO(data)

    def _export_npy(self) -> io.BytesIO:
        buf = io.BytesIO()
        np.save(buf, self._result["frames"])
        buf.seek(0)
        return buf

    def responses_dataset(self) -> xr.Dataset:
        """The current prediction as an xarray Dataset (time × unit) with stimulus and behaviour provenance."""
        import twin_explorer

        res = self._result
        fps = float(getattr(self.state.twin, "frame_rate", 30.0))
        T = res["responses"].shape[0]
        persp, mod = self.state.behaviour(T)
        ds = xr.Dataset(
            {"response": (("time", "unit"), res["responses"]),
             "perspective": (("time", "xy"), persp), "modulation": (("time", "pupil_running"), mod)},
            coords={"time": np.arange(T) / fps, "unit": self.state.twin.units.index.to_numpy()},
            attrs={"twin": str(getattr(self.state.twin, "id", "")), "stimulus_family": res["params"]["family"],
                   "stimulus_params": str(res["params"]["stim"]), "twin_explorer_version": twin_explorer.__version__})
        return ds

    def _export_nc(self) -> io.BytesIO:
        return io.BytesIO(bytes(self.responses_dataset().to_netcdf()))

    # ---- layout ------------------------------------------------------------------------------------
    def controls(self) -> pn.Column:
        return pn.Column(self.family_select, self.param_box, self.upload,
                         pn.pane.Markdown("**Behaviour** (standardised units)", margin=(10, 10, 0, 10)),
                         self.behaviour_box, width=320)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            self.controls(),
            pn.Column(pn.Row(self.preview, pn.Column(self.info, self.error, self.refusal, self.downloads)),
                      self.plots.heatmap, self.plots.traces, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
