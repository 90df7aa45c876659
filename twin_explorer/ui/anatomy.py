"""The anatomy view: where the focused neuron sits in the volume (soma maps from above and from the side),
its morphology (side view and 3-D), its synaptic partners, and a Neuroglancer link.

Uses ``twin_explorer.anatomy`` (the offline sample in assets/anatomy, or a MICrONS dump in the same layout).
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from twin_explorer.anatomy import SAMPLE_DEPTH_FRAME, Anatomy, neuroglancer_link
from twin_explorer.anatomy.views import side_view, skeleton_3d, soma_map

from .state import ExplorerState, deferred

_ID_FORMAT = NumberFormatter(format="0")
from .state import get_anatomy as state_anatomy


def get_anatomy() -> Anatomy:
    """The anatomy volume, loaded once per process (the one the neuron table's coregistration column uses)."""
    anatomy = state_anatomy()
    if anatomy is None:
        return Anatomy.sample()  # raises FileNotFoundError saying how to make the sample
    return anatomy


def _display_ids(df: Any) -> Any:
    """18-digit root ids as text for the browser table (JavaScript numbers lose digits beyond 2**53)."""
    big = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c]) and bool((df[c].dropna().abs() > 2**53).any())]
    return df.astype({c: str for c in big}) if big else df


class AnatomyView(pn.viewable.Viewer):
    """Somata, morphology and partners of the focused neuron; usable alone: ``AnatomyView(twin)``."""

    color = param.Selector(default="pref_dir", objects=["pref_dir", "gOSI", "cc_norm", "area", "layer", "cell_type"],
                           doc="Property colouring somata and synapses.")

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, anatomy: Anatomy | None = None,
                 **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        self.anatomy = anatomy if anatomy is not None else get_anatomy()
        super().__init__(**params)
        self.color_select = pn.widgets.Select.from_param(self.param.color, label="Colour by", width=200)
        self.top_pane = pn.pane.HoloViews(None, width=430, height=400)
        self.side_pane = pn.pane.HoloViews(None, width=430, height=400)
        self.morph_pane = pn.pane.HoloViews(None, width=430, height=460)
        self.plot3d = pn.pane.Plotly(None, width=520, height=460)
        self.partners = pn.widgets.Tabulator(None, pagination="remote", page_size=10, disabled=True,
                                             show_index=False, sizing_mode="stretch_width", height=330)
        self.partners.on_click(self._on_partner_click)
        self.info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._tap_top = hv.streams.Tap(x=None, y=None)
        self._tap_top.add_subscriber(self._on_tap_top)
        self.state.param.watch(deferred(self._show_unit), "unit")
        self.state.param.watch(lambda _e: self._refresh(), ["twin", "tuning"])
        self._refresh()

    def _population(self) -> Any:
        tuning = None
        if self.state.tuning is not None:
            ds = self.state.tuning
            tuning = ds[["osi", "dsi", "gosi", "gdsi", "pref_dir", "pref_ori"]].to_dataframe()
        return self.anatomy.population(self.state.twin.units, tuning)

    @param.depends("color", watch=True)
    def _refresh(self) -> None:
        pop = self._population()
        self._pop = pop.dropna(subset=["x_um", "z_um"])
        self._pop = self._pop[self._pop.index.isin(self.state.twin.units.index)]
        self._pop = _display_ids(self._pop)  # root ids in hover tooltips, without float rounding
        color = self.color if self.color in self._pop.columns else "area"
        self.top_pane.object = soma_map(self._pop, color=color, view="top",
                                        title="Somata from above (click a neuron)").opts(tools=["hover", "tap"])
        self._tap_top.source = self.top_pane.object
        self.side_pane.object = soma_map(self._pop, color=color, view="side", title="Somata from the side")
        self._show_unit()

    def _on_tap_top(self, x: float | None = None, y: float | None = None) -> None:
        if len(self._pop):
            self.state.focus_nearest(self._pop[["x_um", "z_um"]].to_numpy(), self._pop.index, x, y)

    def _on_partner_click(self, event: Any) -> None:
        df = self.partners.value
        if df is None or event.row is None or "readout_id" not in df.columns:
            return
        rid = df["readout_id"].iloc[event.row]
        if rid is not None and not (isinstance(rid, float) and np.isnan(rid)) and str(rid) != "<NA>":
            self.state.unit = int(rid)

    def _show_unit(self) -> None:
        unit = self.state.unit
        try:
            info = self.anatomy.neuron_of_unit(self.state.twin.units, int(unit))
        except (ValueError, KeyError) as exc:
            self.info.object = f"Neuron {unit}: no anatomy ({exc})."
            return
        nucleus = info.get("nucleus_id")
        if nucleus is None or info.get("match") in (None, "none"):
            self.info.object = f"Neuron {unit} is not coregistered to an EM neuron."
            self.morph_pane.object, self.plot3d.object, self.partners.value = None, None, None
            return
        nucleus = int(nucleus)
        lines = [f"#### Neuron {unit} → nucleus {nucleus}",
                 f"root id `{info.get('pt_root_id')}` · {info.get('cell_type', '?')} · {info.get('layer', '?')} · "
                 f"area {info.get('area', '?')} · match {info.get('match')} ({info.get('coreg_source', '')})"]
        partners = self.anatomy.partners(nucleus, self.state.twin.units)
        self.partners.value = _display_ids(partners)
        self.partners.formatters = {c: _ID_FORMAT for c in self.partners.value.columns  # plain ids, no "419,901"
                                    if pd.api.types.is_integer_dtype(self.partners.value[c])}
        syn = None
        if info.get("has_skeleton"):
            skel = self.anatomy.skeleton(nucleus)
            syn = self.anatomy.synapses(nucleus)
            col = self.color if self.color in partners.columns else "pref_dir"
            if "partner_root_id" in syn.columns and col in partners.columns:
                props = partners.drop_duplicates("partner_root_id").set_index("partner_root_id")[col]
                syn = syn.assign(**{col: syn["partner_root_id"].map(props)})
            syn = _display_ids(syn)  # partner root ids in hover tooltips (Bokeh warns on integers beyond 2**53)
            self.morph_pane.visible = self.plot3d.visible = True
            self.morph_pane.object = side_view(skel, SAMPLE_DEPTH_FRAME, synapses=syn, color=col,
                                               title=f"Nucleus {nucleus}: morphology (side)")
            fig = skeleton_3d(skel, SAMPLE_DEPTH_FRAME, synapses=syn, color=col, title=f"Nucleus {nucleus} in 3-D")
            # the legend below the scene, so it does not cover the colour bar at the right
            fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
                              margin=dict(l=0, r=0, t=40, b=60))
            self.plot3d.object = fig
        else:
            self.morph_pane.object, self.plot3d.object = None, None
            self.morph_pane.visible = self.plot3d.visible = False
            lines.append("No skeleton for this neuron in the volume; pick one with a skeleton to see its morphology.")
        link = neuroglancer_link([int(info["pt_root_id"])], synapses=syn)
        lines.append(f"[Open in Neuroglancer]({link}) · {len(partners)} partner connections")
        self.info.object = "\n\n".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self.color_select, self.info, sizing_mode="stretch_width"),
            pn.Row(self.top_pane, self.side_pane),
            pn.Row(self.morph_pane, self.plot3d),
            pn.pane.Markdown("**Synaptic partners** (click a coregistered partner to focus it)"), self.partners,
            sizing_mode="stretch_width")
