"""The MEI view: optimise the most exciting image of the focused neuron, watch it evolve step by step,
then see the twin's response to it next to its response to grey.

The optimisation (``twin_explorer.experiments.mei_steps``) runs through the experiment views' shared task runner
and result cache (:class:`~.experiment.ExperimentView`); every snapshot updates the image and the activation
curve; Cancel stops it between steps.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import param

from twin_explorer.engine.contract import TwinLike
from twin_explorer.experiments import mei_steps
from twin_explorer.experiments.runner import BURN_IN_FRAMES
from twin_explorer.monitor import DEFAULT_MONITOR, GREY

from .experiment import ExperimentView, job_progress
from .state import ExplorerState, plot_pane
from .tasks import Job


class MEIView(ExperimentView):
    """Most exciting image of one neuron; usable alone: ``MEIView(twin)``, then ``.run(wait=True)``."""

    steps = param.Integer(default=100, bounds=(10, 1000), label="Optimisation steps", doc="Gradient-ascent steps.")
    contrast = param.Number(default=20.0, bounds=(2.0, 60.0), step=1.0, label="RMS contrast (grey levels)",
                            doc="RMS contrast (grey levels per pixel).")
    precondition = param.Selector(default="blur", objects=["blur", "fourier"], label="Smoothness prior",
                                  doc="Smoothness prior on the gradient.")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), label="Random seed", doc="Seed of the random start.")
    image = param.Array(default=None, doc="The current (or final) MEI, float 0–255 [H, W].")
    activation = param.List(default=[], doc="Objective per reported step.")

    kind, label = "mei", "MEI"

    def __init__(self, twin: TwinLike | None = None, state: ExplorerState | None = None, **params: Any) -> None:
        super().__init__(twin, state, **params)
        self.run_button = pn.widgets.Button(label="Optimise MEI", color="primary", width=160)
        self.run_button.on_click(lambda _e: self.run())
        self.controls = pn.Param(self, parameters=["steps", "contrast", "precondition", "seed"],
                                 widgets={**{p: {"throttled": True} for p in ("steps", "contrast")},
                                          "seed": pn.widgets.IntInput},  # typed: a slider over 2**31 is useless
                                 show_name=False, width=300)
        self.image_pane = plot_pane(None, width=440, height=270)
        self.curve_pane = plot_pane(None, width=420, height=300)
        self.response_pane = plot_pane(None, width=420, height=300)
        self.summary = pn.pane.Markdown("Press **Optimise MEI** to find the image that drives the focused neuron "
                                        "most, and watch it form.")
        self._unit: int | None = None

    def experiment_params(self) -> dict[str, Any]:
        unit = self.state.unit
        return {"unit": None if unit is None else int(unit), "steps": int(self.steps), "contrast": float(self.contrast),
                "precondition": self.precondition, "seed": int(self.seed)}

    def run(self, wait: bool = False) -> bool:
        """Optimise the focused neuron's MEI in the background (cached); ``wait=True`` blocks until done."""
        if self.state.unit is None:
            raise ValueError("no neuron is focused; set state.unit to a readout_id first")
        self._unit = int(self.state.unit)
        self.label = f"MEI of neuron {self._unit}"
        return super().run(wait)

    def compute(self, twin: TwinLike, params: dict[str, Any], job: Job) -> dict[str, Any]:
        every = max(1, params["steps"] // 20)
        report = job_progress(job, "step")
        final = None
        for st in mei_steps(twin, unit=params["unit"], steps=params["steps"], contrast=params["contrast"],
                            precondition=params["precondition"], seed=params["seed"], every=every, progress=False,
                            cancel=job.cancel_event):
            report(st.step, st.n_steps)
            job.ui(self._show_state, st.stimulus[0, 0].copy(), st.activation_history[:, 0, 0].copy())
            final = st
        return self._response(twin, params["unit"], final.stimulus[0, 0], final.activation_history[:, 0, 0])

    def show_result(self, result: dict[str, Any]) -> None:
        self._finish(result)

    @staticmethod
    def _response(twin: TwinLike, unit: int, image: np.ndarray, history: np.ndarray) -> dict[str, Any]:
        """The twin's response to the rounded MEI held for 1 s after a grey burn-in, and to grey alone."""
        T = BURN_IN_FRAMES + int(round(getattr(twin, "frame_rate", 30.0)))
        img = np.clip(np.round(image), 0, 255).astype(np.uint8)
        grey = np.full((T,) + img.shape, GREY, np.uint8)
        video = grey.copy()
        video[BURN_IN_FRAMES:] = img
        resp = np.asarray(twin.predict(np.stack([video, grey]), units=[unit]))[:, :, 0]
        return {"image": image, "history": np.asarray(history), "mei_response": resp[0], "grey_response": resp[1],
                "frame_rate": float(getattr(twin, "frame_rate", 30.0))}

    def _image_element(self, image: np.ndarray, title: str) -> hv.Image:
        left, right, bottom, top = DEFAULT_MONITOR.extent_deg
        return hv.Image(image, bounds=(left, bottom, right, top), kdims=["azimuth (°)", "elevation (°)"],
                        vdims=["pixel"]).opts(cmap="gray", clim=(0, 255), title=title, data_aspect=1,
                                              width=440, height=270, colorbar=True)

    def _show_state(self, image: np.ndarray, history: np.ndarray) -> None:
        self.image = np.asarray(image)
        self.activation = [float(v) for v in history]
        self.image_pane.object = self._image_element(self.image, f"MEI of neuron {self._unit} (optimising…)")
        self.curve_pane.object = hv.Curve((np.arange(1, len(history) + 1), history), "optimisation step", "activation").opts(
            title="Objective during optimisation", width=420, height=300)

    def _finish(self, result: dict[str, Any]) -> None:
        self.image, self.activation = np.asarray(result["image"]), [float(v) for v in result["history"]]
        self.image_pane.object = self._image_element(self.image, f"MEI of neuron {self._unit}")
        self.curve_pane.object = hv.Curve((np.arange(1, len(self.activation) + 1), self.activation), "optimisation step",
                                          "activation").opts(title="Objective during optimisation", width=420,
                                                             height=300)
        t = np.arange(len(result["mei_response"])) / result["frame_rate"]
        self.response_pane.object = (
            hv.Curve((t, result["mei_response"]), "time (s)", "response", label="MEI")
            * hv.Curve((t, result["grey_response"]), "time (s)", "response", label="grey")
            * hv.VLine(BURN_IN_FRAMES / result["frame_rate"]).opts(color="grey", line_dash="dashed")
        ).opts(title=f"Twin's response of neuron {self._unit}", width=420, height=300, legend_position="top_left")
        after = slice(BURN_IN_FRAMES, None)
        gain = float(np.mean(result["mei_response"][after]) / max(np.mean(result["grey_response"][after]), 1e-9))
        self.summary.object = (f"Neuron **{self._unit}**: mean response to its MEI is **{gain:.1f}×** its response "
                               "to grey (after the burn-in).")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.controls, self.run_button, self.runner, self.summary, width=320),
            # stacked: side by side, the right-hand plots were clipped at the right edge below ~1500 px
            pn.Column(self.image_pane, self.curve_pane, self.response_pane), sizing_mode="stretch_width")
