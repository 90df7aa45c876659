"""Honest controls: human labels with units, widgets whose ranges match what the object accepts, and input
parsing that says what was wrong instead of silently resetting.

:class:`ParamControls` builds one widget per parameter of a ``param.Parameterized`` object and keeps both in
sync; a value the object refuses (out of bounds, or rejected by a ``check``) is reported through ``on_error``
and the widget returns to the object's current (last valid) value. :func:`parse_unit` turns typed text
(sidebar, ``?unit=``) into a readout_id or a clear ``ValueError``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable

import panel as pn
import param

#: Labels of parameters whose name alone does not say what they are (units in brackets).
LABELS: dict[str, str] = {
    "sf_cpd": "Spatial frequency (cycles/°)", "tf_hz": "Temporal frequency (Hz)", "duration_s": "Duration (s)",
    "direction_deg": "Direction (°)", "phase_deg": "Phase (°)", "angle_deg": "Angle between components (°)",
    "aperture_edge_deg": "Aperture edge width (°)", "spacing_deg": "Dot spacing (°)", "size_deg": "Size (°)",
    "dot_s": "Dot duration (s)", "isi_s": "Grey after each dot (s)", "per_frame": "Squares per frame (max)",
    "min_distance_deg": "Minimum distance between squares (°)", "frame_s": "Noise frame duration (s)",
    "speed_dps": "Dot speed (°/s)", "dot_size_deg": "Dot diameter (°)", "center_az": "Flow centre azimuth (°)",
    "center_el": "Flow centre elevation (°)", "coherence": "Coherence (fraction of dots)",
    "density": "Dot density (dots/°²)", "lifetime_s": "Dot lifetime (s; empty = unlimited)",
    "dot_polarity": "Dot polarity", "n_dirs": "Motion directions", "ori_coherence": "Orientation coherence",
    "ori_fraction": "Oriented fraction of each slot", "ori_mix": "Orientation mask weight",
    "speed": "Speed (screen widths/s)", "temp_kernel": "Temporal kernel", "temp_bandwidth_hz": "Temporal bandwidth (Hz)",
    "pattern_upsample": "Pattern upsampling (×)", "pink_exponent": "Spectral exponent (1/fᵃ)",
    "scale": "Noise scale (SDs per half range)", "xnodes": "Phase-map nodes, horizontal",
    "ynodes": "Phase-map nodes, vertical", "temp_freq_hz": "Phase drift rate (Hz)",
    "temp_kernel_s": "Temporal smoothing (s)", "level": "Grey level (0–255)", "seed": "Random seed",
    "gap_s": "Grey gap (s)", "contrast": "Contrast (0–1)", "repeats": "Repeats",
    "eye_x": "Eye position, horizontal (SD)", "eye_y": "Eye position, vertical (SD)", "pupil": "Pupil size (SD)",
    "running": "Running speed (SD)", "spacing": "Spacing", "steps": "Optimisation steps",
}
_UNITS = (("_cpd", "cycles/°"), ("_hz", "Hz"), ("_dps", "°/s"), ("_deg", "°"), ("_um", "µm"), ("_s", "s"))

#: Largest seed a widget offers (the library accepts up to 2**32 - 1; typed, not slid).
MAX_SEED = 2**32 - 1


def human_label(name: str) -> str:
    """A reader's label for a parameter name: ``"sf_cpd"`` -> ``"Spatial frequency (cycles/°)"``."""
    if name in LABELS:
        return LABELS[name]
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ').capitalize()} ({unit})"
    return name.replace("_", " ").capitalize()


def _nice_step(span: float) -> float:
    raw = span / 100.0
    if raw <= 0 or not math.isfinite(raw):
        return 0.1
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def slider_range(p: param.Number, max_duration_s: float | None = None, name: str = "") -> tuple[float, float] | None:
    """(start, end) a slider for ``p`` may span: its soft bounds (the useful range) clipped to its hard bounds,
    excluding exclusive ends, and a duration capped at ``max_duration_s``; None when unbounded."""
    lo, hi = p.get_soft_bounds()
    if lo is None or hi is None:
        return None
    hard_lo, hard_hi = p.bounds or (None, None)
    lo = max(lo, hard_lo) if hard_lo is not None else lo
    hi = min(hi, hard_hi) if hard_hi is not None else hi
    if max_duration_s is not None and name.endswith("duration_s"):
        hi = min(hi, max_duration_s)
    inc_lo, inc_hi = getattr(p, "inclusive_bounds", (True, True))
    step = p.step if p.step is not None and not isinstance(p, param.Integer) else _nice_step(hi - lo)
    if hard_lo is not None and lo <= hard_lo and not inc_lo:
        lo = hard_lo + step
    if hard_hi is not None and hi >= hard_hi and not inc_hi:
        hi = hard_hi - step
    return float(lo), float(hi)


def make_widget(obj: param.Parameterized, name: str, max_duration_s: float | None = None,
                label: str | None = None) -> pn.widgets.Widget | None:
    """The widget for one parameter (None for kinds edited from Python only: tuples, arrays, objects)."""
    p = obj.param[name]
    value = getattr(obj, name)
    label = label or human_label(name)

    def build(cls: type, **kw: Any) -> pn.widgets.Widget:
        # the parameter's doc as the widget's tooltip where the widget kind has one
        extra = {"description": p.doc} if "description" in cls.param and p.doc else {}
        return cls(label=label, sizing_mode="stretch_width", **extra, **kw)

    if isinstance(p, param.Boolean):
        return build(pn.widgets.Checkbox, value=bool(value))
    if isinstance(p, param.Selector):
        return build(pn.widgets.Select, value=value, options=list(p.objects))
    if isinstance(p, param.String):
        return build(pn.widgets.TextInput, value=value or "")
    if isinstance(p, param.Integer):
        lo, hi = p.bounds or (None, None)
        if value is None or lo is None or hi is None or hi - lo > 1000:  # e.g. seeds: typed, not slid
            return build(pn.widgets.IntInput, value=value, start=lo, end=hi)
        return build(pn.widgets.IntSlider, value=int(value), start=int(lo), end=int(hi))
    if isinstance(p, param.Number):
        span = slider_range(p, max_duration_s, name)
        if value is None or span is None:  # None means something (e.g. unlimited): an input that may be empty
            lo, hi = p.bounds or (None, None)
            return build(pn.widgets.FloatInput, value=value, start=lo, end=hi,
                         placeholder="unlimited" if p.allow_None else "")
        step = p.step if p.step is not None else _nice_step(span[1] - span[0])
        return build(pn.widgets.FloatSlider, value=float(min(max(value, span[0]), span[1])), start=span[0],
                     end=span[1], step=step)
    return None


class ParamControls:
    """Widgets for ``names`` of ``obj``, in sync both ways. A refused value (out of range, or ``check(obj)``
    returning a message for the tentative value) goes to ``on_error`` and the widget shows the last valid value
    again; ``on_error(None)`` is called after an accepted value (to hide a message)."""

    def __init__(self, obj: param.Parameterized, names: Iterable[str], on_error: Callable[[str | None], None],
                 check: Callable[[Any], str | None] | None = None, max_duration_s: float | None = None,
                 labels: dict[str, str] | None = None) -> None:
        self.obj, self.on_error, self.check = obj, on_error, check
        self._refused: dict[str, Any] = {}  # a slider's last refused value, until a value is accepted
        self.widgets: dict[str, pn.widgets.Widget] = {}
        for name in names:
            widget = make_widget(obj, name, max_duration_s, (labels or {}).get(name))
            if widget is None:
                continue
            self.widgets[name] = widget
            # sliders act on release: each change renders and predicts a whole video
            event = "value_throttled" if isinstance(widget, (pn.widgets.FloatSlider, pn.widgets.IntSlider)) \
                else "value"
            widget.param.watch(lambda e, n=name: self._from_widget(n, e.new), event)
            if event == "value_throttled":
                widget.param.watch(lambda e, n=name: self._undo_refused(n, e.new), "value")
        if self.widgets:
            obj.param.watch(self._from_object, list(self.widgets))

    def _from_widget(self, name: str, value: Any) -> None:
        if isinstance(self.widgets[name], pn.widgets.TextInput) and value == "":
            value = None
        old = getattr(self.obj, name)
        if value == old:
            return
        try:
            if self.check is not None:  # try the value without triggering the object's watchers
                with param.parameterized.discard_events(self.obj):
                    setattr(self.obj, name, value)
                    try:
                        problem = self.check(self.obj)
                    finally:
                        setattr(self.obj, name, old)
                if problem:
                    raise ValueError(problem)
            setattr(self.obj, name, value)
        except Exception as exc:  # refused: say why, show the last valid value again
            self.on_error(f"{self.widgets[name].label} = {value!r} was not accepted: {_reason(exc)}")
            self._refused[name] = value
            self._set_widget(name, old)
            return
        self._refused.pop(name, None)
        self.on_error(None)

    def _undo_refused(self, name: str, value: Any) -> None:
        # a slider's drag value can reach the server after its released (throttled) value was refused; it would put
        # the refused value back on the slider while the stimulus keeps the last valid one
        if name in self._refused and value == self._refused[name]:
            self._set_widget(name, getattr(self.obj, name))

    def _from_object(self, *events: Any) -> None:
        for e in events:
            self._set_widget(e.name, e.new)

    def _set_widget(self, name: str, value: Any) -> None:
        widget = self.widgets[name]
        if isinstance(widget, pn.widgets.TextInput):
            value = "" if value is None else value
        if widget.value != value:
            widget.value = value


def _reason(exc: Exception) -> str:
    # param's messages start with the parameter's kind and owner ("Number parameter 'Cls.name' must be ..."):
    # keep what is accepted
    return re.sub(r"^\w+ parameter '[^']*' ", "", str(exc))


def parse_unit(text: Any, ids: Any) -> int:
    """The readout_id typed as ``text`` (sidebar, ``?unit=``), or a ``ValueError`` saying what is accepted."""
    ids = list(ids)
    accepted = (f"a readout_id: a whole number from {min(ids)} to {max(ids)} ({len(ids)} neurons)" if ids
                else "a readout_id (this twin has no neurons)")
    raw = text.decode() if isinstance(text, bytes) else text
    raw = "" if raw is None else str(raw).strip()
    if not raw:
        raise ValueError(f"no neuron id given; enter {accepted}")
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number; enter {accepted}") from None
    if not math.isfinite(number):
        raise ValueError(f"{raw!r} is not a finite number; enter {accepted}")
    if number != int(number):
        raise ValueError(f"{raw} is not a whole number; enter {accepted}")
    unit = int(number)
    if unit not in set(int(i) for i in ids):
        raise ValueError(f"{raw} is not a neuron of this twin; enter {accepted}")
    return unit
