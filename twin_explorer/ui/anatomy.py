"""The anatomy view: where the focused neuron sits in the volume (soma maps from above and from the side),
its morphology (side view and 3-D), its synaptic partners, and a Neuroglancer link.

The volume is any anatomy folder (``twin-explorer serve --anatomy DIR``, $TWIN_EXPLORER_ANATOMY or
``AnatomyView(twin, anatomy=DIR)``), matched to the loaded twin's units through the coregistration tables; without
one it is the bundled synthetic sample, labelled as such everywhere it is shown. What goes wrong while reading a
folder is shown in the view, never as an empty plot.
"""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from panel.models.plotly import PlotlyPlot
from panel.models.tabulator import DataTabulator

from twin_explorer.anatomy import Anatomy
from twin_explorer.anatomy.neuroglancer import neuroglancer_link_for_neuron
from twin_explorer.anatomy.swc import Skeleton
from twin_explorer.anatomy.views import side_view, skeleton_3d, soma_map

from . import raster
from .scripts import show_when_loaded
from .state import SYNTHETIC_LABEL, ExplorerState, anatomy_is_synthetic, anatomy_source, deferred, plot_pane
from .state import get_anatomy as state_anatomy

_OPEN_REAL = ("Open a real folder with `twin-explorer serve --anatomy DIR`, `TWIN_EXPLORER_ANATOMY=DIR` or "
              "`AnatomyView(twin, anatomy=DIR)` (make one with `twin-explorer anatomy export`).")


def get_anatomy(anatomy: Any = None) -> Anatomy:
    """The explorer's anatomy volume: ``anatomy`` (folder or Anatomy), else $TWIN_EXPLORER_ANATOMY, else the
    bundled synthetic sample (raises FileNotFoundError saying how to make it when it is missing)."""
    volume = state_anatomy(anatomy)
    if volume is None:
        return Anatomy.sample()
    return volume


def anatomy_title(anatomy: Anatomy) -> str:
    """A short name for the volume: the synthetic label, or datastack and materialization version."""
    if anatomy_is_synthetic(anatomy):
        return SYNTHETIC_LABEL
    m = anatomy.manifest
    version = f" v{anatomy.materialization_version}" if anatomy.materialization_version is not None else ""
    return f"MICrONS {m.get('datastack', anatomy.folder.name)}{version}"


def _display_ids(df: Any) -> Any:
    """18-digit root ids as text for the browser table (JavaScript numbers lose digits beyond 2**53)."""
    big = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c]) and bool((df[c].dropna().abs() > 2**53).any())]
    return df.astype({c: str for c in big}) if big else df


def responsive_soma_map(pop: pd.DataFrame, color: str, view: str, title: str) -> Any:
    """:func:`soma_map` up to ``raster.MAX_POINTS`` somata; above, a binned image of the same view: per bin the
    mean of a numeric ``color`` (circular mean for directions and orientations) or the neuron count."""
    if len(pop) <= raster.MAX_POINTS:
        return soma_map(pop, color=color, view=view, title=title).opts(tools=["hover", "tap"])
    ydim = "z_um" if view == "top" else "depth_um"
    numeric = pd.api.types.is_numeric_dtype(pop[color]) and not pd.api.types.is_bool_dtype(pop[color])
    period = (180.0 if "ori" in color else 360.0) if numeric and ("dir" in color or "ori" in color) else None
    image = raster.neuron_map(pop["x_um"].to_numpy(float), pop[ydim].to_numpy(float), "x_um", ydim,
                              pop[color].to_numpy(float) if numeric else None, color if numeric else "neurons",
                              period=period, max_points=0, cmap="twilight" if period else "viridis", colorbar=True)
    what = f"mean {color}" if numeric else "neurons"
    return image.opts(width=520, height=420, invert_yaxis=view == "side", xlabel="x (µm)",
                      ylabel="z (µm)" if view == "top" else "depth below pia (µm)",
                      title=f"{title} — {len(pop)} somata, binned ({what} per bin)")


def _scans(keys: pd.DataFrame) -> str:
    pairs = keys[["session", "scan_idx"]].drop_duplicates().astype(int).to_numpy()
    return ", ".join(f"{a}-{b}" for a, b in pairs[:13]) or "none"


class AnatomyView(pn.viewable.Viewer):
    """Somata, morphology and partners of the focused neuron; usable alone: ``AnatomyView(twin, anatomy=DIR)``."""

    color = param.Selector(default="pref_dir", objects=["pref_dir", "gOSI", "cc_norm", "area", "layer", "cell_type"],
                           doc="Property colouring somata and synapses.")
    shown = param.Boolean(default=True, doc="False while the view's tab is hidden: its plots are made when shown.")

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, anatomy: Any = None,
                 **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        if anatomy is not None:  # the neuron table of a shared state follows the same folder
            self.state.anatomy = anatomy_source(anatomy)  # a wrong type is refused here, not shown later
        super().__init__(**params)
        self.color_select = pn.widgets.Select.from_param(self.param.color, label="Colour by", width=200)
        self.header = pn.pane.Alert("", alert_type="info", sizing_mode="stretch_width")
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.notice = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self.top_pane = plot_pane(None, width=540, height=440)
        self.side_pane = plot_pane(None, width=540, height=440)
        self.morph_pane = plot_pane(None, width=500, height=580)
        self.plot3d = pn.pane.Plotly(None, width=520, height=460, visible=False)
        # Plotly's scripts (4.8 MB) load when this view is first shown, not with every page (see ui.scripts)
        self._plot3d_slot = pn.Column(width=520, height=460, visible=False)
        self._plotly_loader = show_when_loaded(self._plot3d_slot, self.plot3d, PlotlyPlot, "plotly",
                                               "Loading the 3-D viewer…")
        self.plot3d.param.watch(lambda event: setattr(self._plot3d_slot, "visible", event.new), "visible")
        self.partners = pn.widgets.Tabulator(None, pagination="remote", page_size=10, disabled=True,
                                             show_index=False, sizing_mode="stretch_width", height=330)
        # Tabulator's scripts load when a table is first shown (ui/scripts.py), here or in the neuron browser
        self._partners_slot = pn.Column(sizing_mode="stretch_width", min_height=330)
        show_when_loaded(self._partners_slot, self.partners, DataTabulator, "tabulator", "Loading the table…")
        self.partners.on_click(self._on_partner_click)
        self.info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.neuroglancer = pn.pane.HTML("", sizing_mode="stretch_width")
        #: the focused neuron's Neuroglancer link, or None with the reason in ``neuroglancer_reason``
        self.neuroglancer_url: str | None = None
        self.neuroglancer_reason = ""
        self._pop = pd.DataFrame()
        self._tap_top = hv.streams.Tap(x=None, y=None)
        self._tap_top.add_subscriber(self._on_tap_top)
        self.state.param.watch(deferred(self._show_unit), "unit")
        self.state.param.watch(lambda _e: self._refresh(), ["twin", "tuning"])
        self.state.param.watch(lambda _e: self._load(), "anatomy")
        self._stale = False  # plots owed to the view since it was hidden
        self._load()

    # ---- loading and errors --------------------------------------------------------------------------------------
    def _load(self) -> None:
        """(Re)open the state's anatomy folder; a folder that cannot be opened is reported in the view."""
        try:
            self.anatomy: Anatomy | None = get_anatomy(self.state.anatomy)
        except (OSError, ValueError) as exc:
            self.anatomy = None
            self.header.alert_type, self.header.object = "danger", "**No anatomy volume.** " + _OPEN_REAL
            self._show_error("Could not open the anatomy folder", exc)
            return
        if anatomy_is_synthetic(self.anatomy):
            self.header.alert_type = "warning"
            self.header.object = (f"**Anatomy: {SYNTHETIC_LABEL}.** The bundled volume is generated for the "
                                  "synthetic mouse; its tables only mimic the MICrONS layout and its ids are made up "
                                  "(no real EM neuron behind them). " + _OPEN_REAL)
        else:
            a = self.anatomy
            self.header.alert_type = "info"
            self.header.object = (f"**Anatomy: {anatomy_title(a)}** · folder `{a.folder}` · "
                                  f"{len(a.skeleton_ids)} skeletons, {len(a.meshwork_ids)} meshworks")
        self._refresh()

    def _show_error(self, what: str, exc: BaseException) -> None:
        self.error.object = f"**{what}:** {type(exc).__name__}: {exc}"
        self.error.visible = True

    def _clear_neuron(self) -> None:
        self.morph_pane.object, self.plot3d.object, self.partners.value = None, None, None
        self.morph_pane.visible = self.plot3d.visible = False
        self.neuroglancer_url, self.neuroglancer_reason, self.neuroglancer.object = None, "no neuron", ""

    @property
    def synthetic(self) -> bool:
        return self.anatomy is not None and anatomy_is_synthetic(self.anatomy)

    def _suffix(self) -> str:
        """The volume's name on a second title line (plot titles are narrower than the label)."""
        return f"\n{anatomy_title(self.anatomy)}" if self.anatomy is not None else ""

    # ---- soma maps -------------------------------------------------------------------------------------------------
    def _population(self) -> Any:
        tuning = None
        if self.state.tuning is not None:
            ds = self.state.tuning
            tuning = ds[["osi", "dsi", "gosi", "gdsi", "pref_dir", "pref_ori"]].to_dataframe()
        return self.anatomy.population(self.state.twin.units, tuning)

    @param.depends("shown", watch=True)
    def _on_shown(self) -> None:
        if self.shown and self._stale:
            self._stale = False
            self._refresh()

    @param.depends("color", watch=True)
    def _refresh(self) -> None:
        if not self.shown:  # a hidden tab (a new session's, mostly): drawn when it opens
            self._stale = True
            return
        self.error.visible = self.notice.visible = False
        if self.anatomy is None:
            self.top_pane.object = self.side_pane.object = None
            self._clear_neuron()
            return
        try:
            pop = self._population()
        except Exception as exc:  # noqa: BLE001  the view is where any reading failure must become visible
            self._pop = pd.DataFrame()
            self.top_pane.object = self.side_pane.object = None
            self._clear_neuron()
            self.info.object = ""
            self._show_error(f"Could not link this twin's units to {self.anatomy.folder}", exc)
            return
        pop = pop.dropna(subset=["x_um", "z_um"])
        pop = pop[pop.index.isin(self.state.twin.units.index)]
        self._pop = _display_ids(pop)  # root ids in hover tooltips, without float rounding
        if not len(self._pop):
            self._notice_unlinked()
        color = next(c for c in (self.color, "area", "layer", "match") if c in self._pop.columns)
        self.top_pane.object = responsive_soma_map(self._pop, color, "top",
                                                   "Somata from above (click a neuron)" + self._suffix())
        self._tap_top.source = self.top_pane.object
        self.side_pane.object = responsive_soma_map(self._pop, color, "side", "Somata from the side" + self._suffix())
        self._show_unit()

    def _notice_unlinked(self) -> None:
        units = self.state.twin.units
        try:
            held = _scans(self.anatomy.coregistration)
        except (OSError, ValueError, KeyError) as exc:
            held = f"unreadable ({exc})"
        twin_scans = _scans(units) if {"session", "scan_idx"} <= set(units.columns) else "none (no session/scan_idx)"
        self.notice.object = (f"None of this twin's {len(units)} units is coregistered to a neuron of "
                              f"`{self.anatomy.folder}`: the twin's scans are {twin_scans}, the folder's "
                              f"coregistration tables hold scans {held}.")
        self.notice.visible = True

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

    # ---- the focused neuron ----------------------------------------------------------------------------------------
    def _set_neuroglancer(self, url: str | None, reason: str) -> None:
        self.neuroglancer_url, self.neuroglancer_reason = url, reason if url is None else ""
        style = "padding:4px 10px;border-radius:4px;border:1px solid #3b6ea5;"
        if url is not None:
            self.neuroglancer.object = (f'<a class="te-neuroglancer" href="{html.escape(url)}" target="_blank" '
                                        f'rel="noopener" style="{style}background:#3b6ea5;color:white;'
                                        'text-decoration:none">Open in Neuroglancer</a>')
        else:
            self.neuroglancer.object = (f'<button class="te-neuroglancer" disabled title="{html.escape(reason)}" '
                                        f'style="{style}opacity:0.5">Open in Neuroglancer</button> '
                                        f'<small>{html.escape(reason)}</small>')

    def _morphology(self, nucleus: int) -> Skeleton | None:
        """The neuron's skeleton file, else its meshwork's skeleton, else None."""
        if nucleus in self.anatomy.skeleton_ids:
            return self.anatomy.skeleton(nucleus)
        if nucleus in self.anatomy.meshwork_ids:
            sk = self.anatomy.meshwork(nucleus).skeleton()
            sk.meta.setdefault("nucleus_id", nucleus)
            return sk
        return None

    def _show_unit(self) -> None:
        if not self.shown:
            self._stale = True
            return
        if self.anatomy is None:
            return
        unit = self.state.unit
        try:
            info = self.anatomy.neuron_of_unit(self.state.twin.units, int(unit))
        except (ValueError, KeyError) as exc:
            self.info.object = f"Neuron {unit}: no anatomy ({exc})."
            self._clear_neuron()
            return
        label = f"*{SYNTHETIC_LABEL}*" if self.synthetic else f"*{anatomy_title(self.anatomy)}*"
        nucleus = info.get("nucleus_id")
        if nucleus is None or pd.isna(nucleus) or info.get("match") in (None, "none"):
            self.info.object = f"Neuron {unit} is not coregistered to an EM neuron of this volume ({label})."
            self._clear_neuron()
            return
        nucleus = int(nucleus)
        source = info.get("coreg_source", "")
        source = f"synthetic stand-in for {source}" if self.synthetic else source
        known = [str(info[k]) if k != "area" else f"area {info[k]}" for k in ("cell_type", "layer", "area")
                 if info.get(k) is not None and not pd.isna(info[k])]
        lines = [f"#### Neuron {unit} → nucleus {nucleus}", label,
                 " · ".join([f"root id `{info.get('pt_root_id')}`", *known, f"match {info.get('match')} ({source})"])]
        try:
            self._show_neuron(nucleus, lines)
        except Exception as exc:  # noqa: BLE001  a broken file of this neuron is shown, not swallowed
            self._clear_neuron()
            self._show_error(f"Could not read the anatomy of nucleus {nucleus}", exc)
        self.info.object = "\n\n".join(lines)

    def _show_neuron(self, nucleus: int, lines: list[str]) -> None:
        partners = self.anatomy.partners(nucleus, self.state.twin.units)
        self.partners.value = _display_ids(partners)
        # plain ids, no "419,901"; one formatter per table (a shared model would keep closed sessions alive)
        self.partners.formatters = {c: NumberFormatter(format="0") for c in self.partners.value.columns
                                    if pd.api.types.is_integer_dtype(self.partners.value[c])}
        syn = self.anatomy.synapses(nucleus)
        skel = self._morphology(nucleus)
        if skel is not None:
            col = self.color if self.color in partners.columns else "pref_dir"
            if "partner_root_id" in syn.columns and col in partners.columns:
                props = partners.drop_duplicates("partner_root_id").set_index("partner_root_id")[col]
                syn = syn.assign(**{col: syn["partner_root_id"].map(props)})
            shown = _display_ids(syn)  # partner root ids in hover tooltips (Bokeh warns on integers beyond 2**53)
            frame = self.anatomy.depth_frame
            self.morph_pane.visible = self.plot3d.visible = True
            self.morph_pane.object = side_view(skel, frame, synapses=shown, color=col,
                                               title=f"Nucleus {nucleus}: morphology (side){self._suffix()}")
            fig = skeleton_3d(skel, frame, synapses=shown, color=col,
                              title=f"Nucleus {nucleus} in 3-D{self._suffix()}".replace("\n", "<br>"))
            # the legend below the scene, so it does not cover the colour bar at the right
            fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
                              margin=dict(l=0, r=0, t=40, b=60))
            self.plot3d.object = fig
        else:
            self.morph_pane.object, self.plot3d.object = None, None
            self.morph_pane.visible = self.plot3d.visible = False
            lines.append("No skeleton for this neuron in the volume; pick one with a skeleton to see its morphology.")
        n_in = int((syn["direction"] == "input").sum()) if len(syn) else 0
        with_nucleus = int(partners["partner_nucleus_id"].notna().sum()) if len(partners) else 0
        lines.append(f"{len(syn)} synapses ({n_in} in, {len(syn) - n_in} out) · {len(partners)} partner connections "
                     f"({with_nucleus} to a partner with a nucleus)")
        try:
            self._set_neuroglancer(neuroglancer_link_for_neuron(self.anatomy, nucleus), "")
        except ValueError as exc:  # e.g. the synthetic sample: its ids are no real EM ids
            self._set_neuroglancer(None, "No Neuroglancer link: " + (
                "its ids are made up and it records no materialization_version (no real EM neuron to show)"
                if self.synthetic else str(exc)))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self.header, self.error, self.notice,
            pn.Row(self.color_select, pn.Column(self.info, self.neuroglancer, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            # wrapped rows: side by side in a wide window, one under the other where two do not fit (1280 px)
            pn.FlexBox(self.top_pane, self.side_pane, flex_wrap="wrap", sizing_mode="stretch_width"),
            pn.FlexBox(self.morph_pane, self._plot3d_slot, flex_wrap="wrap", sizing_mode="stretch_width"),
            pn.pane.Markdown("**Synaptic partners** (click a coregistered partner to focus it)"), self._partners_slot,
            sizing_mode="stretch_width")
