"""Extension scripts loaded into a page only when a view that needs them is shown.

A page served by the explorer carries the scripts of the views every visitor sees first; one only some visitors
need (Plotly, 4.8 MB, for the anatomy view's 3-D morphology; FilePond for the designer's upload; Tabulator for the
neuron and partner tables in tabs opened later) would cost every page its download and compile (Plotly alone:
~1.4 s of browser CPU per page load on 2 cores, a third of it; Tabulator and its date library ~0.3 s). A
:class:`ScriptLoader` put in the layout where such a component will go loads its scripts and stylesheets (served by
the app itself, like every other script) when the browser renders it, shows a line while they load, and sets
``ready`` once they ran; the view then swaps in the component (:func:`show_when_loaded` does both). Where the
scripts are already in the page (a notebook that ran ``pn.extension("plotly")``, a second loader) it is ready at
once.
"""

from __future__ import annotations

from typing import Any, Callable

import panel as pn
import param
from panel.custom import JSComponent


class ScriptLoader(JSComponent):
    """Loads ``scripts`` (in order) and ``css_files`` into the page the first time it is rendered there; ``ready``
    turns True when the browser has run them (at once where ``global_name`` is already defined)."""

    scripts = param.List(default=[], item_type=str, doc="Script URLs, run in this order.")
    css_files = param.List(default=[], item_type=str, doc="Stylesheet URLs.")
    global_name = param.String(default="", doc="A global the scripts define: when present, nothing is loaded.")
    label = param.String(default="Loading…", doc="The line shown while the scripts load.")
    ready = param.Boolean(default=False, doc="Set by the browser once the scripts ran.")
    failed = param.Boolean(default=False, doc="Set by the browser when a script could not be loaded.")

    # One load per page and global: a second loader of the same scripts waits for the first one's promise.
    # Plotly: Panel's plot view calls Plotly.relayout from a throttled resize and after an awaited newPlot, and dynamic
    # tabs remove (purge) a view when its tab closes; a call landing after the purge, or on a div never plotted, read
    # the missing layout and threw in the page ("Cannot read properties of undefined (reading '_guiEditing')", seen in
    # CI on a quick tab walk). Such a call has nothing to lay out: it is answered as done instead.
    _esm = """
    function guardPlotly() {
      const P = window.Plotly;
      if (!P || P.__teGuarded) return;
      for (const name of ["relayout", "restyle"]) {  // the calls Panel's view makes on an existing plot
        const call = P[name];
        if (typeof call !== "function") continue;
        P[name] = function (gd, ...rest) {
          const el = typeof gd === "string" ? document.getElementById(gd) : gd;
          if (!el || !el._fullLayout) return Promise.resolve(el);
          return call.call(this, gd, ...rest);
        };
      }
      P.__teGuarded = true;
    }
    const GUARDS = { Plotly: guardPlotly };

    export function render({ model }) {
      const line = document.createElement("span");
      line.className = "te-script-loader";
      line.textContent = model.label;
      const key = "__teLoading_" + (model.global_name || model.scripts.join("|"));
      const guard = GUARDS[model.global_name] || (() => {});
      if (model.global_name && window[model.global_name]) { guard(); model.ready = true; return line; }
      if (!window[key]) {
        for (const href of model.css_files) {
          const link = document.createElement("link");
          link.rel = "stylesheet"; link.href = href; document.head.appendChild(link);
        }
        window[key] = model.scripts.reduce((previous, src) => previous.then(() => new Promise((resolve, reject) => {
          const script = document.createElement("script");
          script.src = src; script.onload = resolve; script.onerror = () => reject(src);
          document.head.appendChild(script);
        })), Promise.resolve());
      }
      window[key].then(() => { guard(); model.ready = true; }, (src) => {
        delete window[key];
        line.textContent = "Could not load " + src + ": reload the page to try again.";
        model.failed = true;
      });
      return line;
    }
    """

    @classmethod
    def for_model(cls, model: type, label: str) -> "ScriptLoader":
        """A loader of a Bokeh model's (a Panel extension's) scripts and stylesheets, as the app serves them. Only
        the stylesheets this server serves are loaded: Panel points a model's page-level list at the CDN for a theme
        it has no copy of (Tabulator's, once any table took the page design's theme), and each component brings
        its own theme's stylesheet with its model anyway."""
        css = [url for url in model.__css__ if "://" not in url and not url.startswith("//")]
        return cls(scripts=list(model.__javascript__), css_files=css, label=label,
                   global_name=next(iter(getattr(model, "__js_skip__", {}) or {}), ""))


def declare_extension(name: str) -> None:
    """Tell Panel that this page has ``name``'s scripts now (loaded by a :class:`ScriptLoader`): it otherwise warns on
    every component of that extension that the extension was not declared when the page was made
    (``state._extensions``: the page's list, private in Panel 1.9)."""
    declared = getattr(pn.state, "_extensions", None)
    if isinstance(declared, list) and name not in declared:
        declared.append(name)


def when_ready(loader: ScriptLoader, show: Callable[[], Any]) -> None:
    """Call ``show()`` once ``loader``'s scripts are in the page (at once if they are already)."""
    if loader.ready:
        show()
        return

    def on_ready(event: Any) -> None:
        if event.new:
            show()

    loader.param.watch(on_ready, "ready")


def show_when_loaded(slot: pn.Column, component: Any, model: type, extension: str, label: str) -> ScriptLoader:
    """Put a loader of ``model``'s scripts (Panel's ``extension``) in ``slot``; once the browser ran them, declare the
    extension for the page and put ``component`` in the loader's place. Returns the loader."""
    loader = ScriptLoader.for_model(model, label=label)
    slot[:] = [loader]

    def show() -> None:
        declare_extension(extension)
        slot[:] = [component]

    when_ready(loader, show)
    return loader
