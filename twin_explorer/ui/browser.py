"""The neuron browser: a filterable, sortable table of the twin's units and a page for the focused neuron.

Clicking a row focuses that neuron in every view; ctrl/shift-click builds a multi-selection; the
(filtered) table downloads as CSV; in the served app ``?unit=<readout_id>`` opens a neuron's page.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from panel.models.tabulator import DataTabulator

from twin_explorer.experiments.inclusion import THRESHOLDS_SENTENCE

from .scripts import show_when_loaded
from .state import SYNTHETIC_LABEL, ExplorerState, anatomy_is_synthetic, get_anatomy, twin_cc

# Columns formatted with few decimals so the table stays readable; integers (ids) without thousands separators.
# Formats, not formatter models: a Bokeh model shared between sessions would keep every closed session's table
# (and its state) alive through the callbacks each table registers on it.
_FLOAT_FORMAT = "0.000"
_ID_FORMAT = "0"
_CC_MAX_HELP = ("CC_max: the noise ceiling, the best correlation any model could reach for this neuron given its "
                "trial-to-trial variability. A CC_norm is only as trustworthy as this ceiling is high.")
# What the table's CC column holds, by the units-table column it came from.
_CC_HELP = {
    "cc_norm": "CC_norm on held-out clips: CC_abs / CC_max (the next column). CC_max, the noise ceiling, is estimated "
               "from few repeats, so a neuron with a low ceiling can score above 1: trust such values less (the "
               "neuron's page flags them).",
    "cc_abs": "CC_abs: correlation of prediction and trial-averaged response on held-out clips.",
    "cc": "Correlation of prediction and response as the twin's bundle reports it.",
}
_SKELETON_HELP = ("The anatomy volume holds a skeleton (or meshwork) of this neuron: the Anatomy tab shows its "
                  "morphology.")


# Copies the page's own address with ?unit=<the neuron shown> (read from the link) to the clipboard
_COPY_LINK_JS = """
const m = String(link.text).match(/unit=(\\d+)/);
if (m) {
  const url = window.location.origin + window.location.pathname + '?unit=' + m[1];
  navigator.clipboard.writeText(url);
}
"""


def teaching_neuron(table: pd.DataFrame, tuning: pd.DataFrame, truth: pd.DataFrame,
                    with_skeleton: Any = (), max_error_deg: float = 15.0) -> int:
    """The readout_id of a neuron that shows what the tour teaches: a trustworthy accuracy (CC ≤ 1 with a noise
    ceiling ``cc_max`` in the top quarter), strong true orientation tuning (gOSI ≥ 0.5) and a twin whose measured
    preferred direction lies within ``max_error_deg`` of the ground truth; among those, one with a skeleton
    (``with_skeleton``: readout_ids) if any, then the highest ``cc_max`` × twin gOSI.

    ``table``: the unit table (``CC``, ``cc_max``); ``tuning``: the twin's ``pref_dir`` and ``gosi`` per readout_id;
    ``truth``: ``pref_dir_deg`` and ``gosi``. Raises ValueError when no neuron qualifies."""
    ids = table.index.intersection(tuning.index).intersection(truth.index)
    t, m, g = table.loc[ids], tuning.loc[ids], truth.loc[ids]
    error = np.abs((m["pref_dir"] - g["pref_dir_deg"] + 180.0) % 360.0 - 180.0)
    ok = ((t["CC"] <= 1) & (t["cc_max"] >= t["cc_max"].quantile(0.75)) & (g["gosi"] >= 0.5)
          & (error <= max_error_deg))
    if not ok.any():
        raise ValueError("no neuron has CC ≤ 1, a top-quarter cc_max, true gOSI ≥ 0.5 and a twin preferred direction "
                         f"within {max_error_deg:g}° of the truth")
    score = (t["cc_max"] * m["gosi"])[ok] + np.isin(ids[ok], list(with_skeleton)) * 10.0  # skeletons first
    return int(score.idxmax())


class NeuronBrowser(pn.viewable.Viewer):
    """Unit table plus the focused neuron's page; usable alone: ``NeuronBrowser(twin)``."""

    def __init__(self, twin: Any = None, state: ExplorerState | None = None, **params: Any) -> None:
        self.state = state if state is not None else ExplorerState(twin)
        super().__init__(**params)
        # remote pagination: the server filters, sorts and sends one page, so a 100,000-unit table stays light
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), pagination="remote", page_size=15, header_filters=True, selectable=True,
            disabled=True, show_index=False, sizing_mode="stretch_width", layout="fit_data_stretch",
            theme="simple", frozen_columns=["readout_id"],  # the id stays in view while the wide table scrolls
            configuration={"placeholder": "No neurons match these filters."})  # instead of a silent empty table
        self.table.param.watch(self._on_table_selection, "selection")
        # Tabulator's scripts (~0.3 s of browser CPU per page load) load when the table is first shown (ui/scripts.py)
        self._table_slot = pn.Column(sizing_mode="stretch_width", min_height=200)
        show_when_loaded(self._table_slot, self.table, DataTabulator, "tabulator", "Loading the neuron table…")
        self.download = pn.widgets.FileDownload(callback=self._csv, filename="units.csv", label="Download CSV",
                                                width=150)
        self.clear_button = pn.widgets.Button(label="Clear selection", width=130)
        self.clear_button.on_click(lambda _e: self._clear())
        self.skeleton_only = pn.widgets.Checkbox(label="only neurons with a skeleton", value=False, width=220)
        self.table.add_filter(pn.bind(self._skeleton_filter, only=self.skeleton_only))
        self.page = pn.pane.Markdown("", sizing_mode="stretch_width")
        # a real link to the focused neuron and a button copying its full address
        self.link = pn.pane.HTML("", css_classes=["te-unit-link"], margin=(0, 10))
        self.copy_button = pn.widgets.Button(label="Copy link", width=110, css_classes=["te-copy-link"])
        self.copy_button.js_on_click(args={"link": self.link}, code=_COPY_LINK_JS)
        self._syncing = False
        self.state.param.watch(self._on_table_source, ["twin", "tuning", "rfs", "anatomy"])
        self.state.param.watch(self._on_focus, ["unit", "selection"])
        self._on_table_source()

    # ---- table ---------------------------------------------------------------------------------
    @staticmethod
    def _skeleton_filter(df: pd.DataFrame, only: bool) -> pd.DataFrame:
        return df[df["skeleton"].astype(bool)] if only and "skeleton" in df.columns else df

    @staticmethod
    def _header_filter(col: pd.Series) -> dict:
        if pd.api.types.is_bool_dtype(col):
            return {"type": "tickCross", "tristate": True, "indeterminateValue": None}
        if pd.api.types.is_numeric_dtype(col):
            return {"type": "number", "func": ">=", "placeholder": "≥"}
        return {"type": "input", "func": "like", "placeholder": "filter"}

    def _on_table_source(self, *_events: Any) -> None:
        df = self.state.table.reset_index()
        if {"CC", "cc_max"} <= set(df.columns):  # the ceiling right next to the accuracy it bounds
            rest = [c for c in df.columns if c != "cc_max"]
            df = df[rest[: rest.index("CC") + 1] + ["cc_max"] + rest[rest.index("CC") + 1:]]
        floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
        self.table.formatters = {c: NumberFormatter(format=_FLOAT_FORMAT) for c in floats}
        ints = [c for c in df.columns if pd.api.types.is_integer_dtype(df[c])]
        # ids as plain integers: 419901, not 419,901
        self.table.formatters.update({c: NumberFormatter(format=_ID_FORMAT) for c in ints})
        self.table.header_filters = {c: self._header_filter(df[c]) for c in df.columns}
        which = twin_cc(self.state.twin).name
        self.table.header_tooltips = {"CC": _CC_HELP.get(which, f"prediction accuracy ({which})"),
                                      "cc_max": _CC_MAX_HELP, "skeleton": _SKELETON_HELP,
                                      "included": THRESHOLDS_SENTENCE.replace(" (greyed)", "")}
        self.table.value = df
        self._on_focus()

    def _on_table_selection(self, event: param.parameterized.Event) -> None:
        if self._syncing:
            return
        rows = list(event.new)
        ids = [int(self.table.value["readout_id"].iloc[r]) for r in rows]
        self._syncing = True
        try:
            self.state.selection = ids
            if ids:
                # The most recent click becomes the focused neuron.
                added = [i for i in ids if i not in [int(self.table.value["readout_id"].iloc[r]) for r in event.old]]
                self.state.unit = added[-1] if added else ids[-1]
        finally:
            self._syncing = False
        self._render_page()

    def _on_focus(self, *_events: Any) -> None:
        self._render_page()
        if self._syncing:
            return
        ids = self.table.value["readout_id"].to_numpy() if len(self.table.value) else np.array([], int)
        wanted = list(dict.fromkeys(([self.state.unit] if self.state.unit is not None else []) + self.state.selection))
        rows = [int(np.flatnonzero(ids == u)[0]) for u in wanted if np.any(ids == u)]
        if sorted(rows) != sorted(self.table.selection):
            self._syncing = True
            try:
                self.table.selection = rows
            finally:
                self._syncing = False
        self._show_focused_row()

    def _show_focused_row(self) -> None:
        """Turn to the table page holding the focused neuron (in the current sort and filter)."""
        if self.state.unit is None or not len(self.table.value):
            return
        try:
            view = self.table.current_view
        except Exception:  # no view computed yet
            view = self.table.value
        pos = np.flatnonzero(view["readout_id"].to_numpy() == self.state.unit)
        if len(pos):
            page = int(pos[0]) // int(self.table.page_size) + 1
            if page != self.table.page:
                self.table.page = page

    def _clear(self) -> None:
        self.state.selection = []

    def _csv(self) -> io.StringIO:
        view = self.table.current_view if len(self.table.value) else self.table.value
        buf = io.StringIO()
        view.to_csv(buf, index=False)
        buf.seek(0)
        return buf

    # ---- neuron page ---------------------------------------------------------------------------
    def _render_page(self) -> None:
        u = self.state.unit
        if u is None or u not in self.state.table.index:
            self.page.object, self.link.object = "Select a neuron in the table.", ""
            return
        row = self.state.table.loc[u]
        lines = [f"### Neuron {u}", f"Twin: `{self.state.twin_name}`", "",
                 "| property | value |", "|---|---|"]
        for key, value in row.items():
            if isinstance(value, (float, np.floating)):
                value = f"{value:.3g}"
            lines.append(f"| {key} | {value} |")
        self.link.object = f'Link to this neuron: <a href="?unit={u}" data-unit="{u}">?unit={u}</a>'
        cc, cc_max = row.get("CC"), row.get("cc_max")
        if twin_cc(self.state.twin).name == "cc_norm" and cc is not None and cc_max is not None and cc > 1:
            lines += ["", f"⚠ CC_norm {cc:.2f} is above 1: its ceiling CC_max is only {cc_max:.2f}, estimated from "
                          "few repeats, so the ratio is noisy. Trust it less."]
        try:
            if anatomy_is_synthetic(get_anatomy(self.state.anatomy)):
                lines.append(f"\nAnatomy columns (coregistered, nucleus_id, skeleton): *{SYNTHETIC_LABEL}*.")
        except (OSError, ValueError):  # an unreadable folder: the Anatomy tab says why
            pass
        if len(self.state.selection) > 1:
            lines.append(f"\n{len(self.state.selection)} neurons selected: "
                         + ", ".join(str(s) for s in self.state.selection[:20])
                         + (" …" if len(self.state.selection) > 20 else ""))
        self.page.object = "\n".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(pn.Row(self.download, self.clear_button, self.skeleton_only), self._table_slot,
                      sizing_mode="stretch_width"),
            pn.Column(self.page, pn.Row(self.link, self.copy_button), width=320), sizing_mode="stretch_width")
