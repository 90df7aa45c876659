"""Plots of a twin-versus-published comparison (:mod:`.compare`): published against in-silico gOSI and gDSI, the
distribution of preferred-direction errors, and the readout positions with the shift between them. The same four
panels go to an interactive HTML page (HoloViews/bokeh) and to a static PNG (matplotlib, no browser needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .plotting import hv_bokeh

if TYPE_CHECKING:  # the comparison module imports this one
    from .compare import PropertyComparison

__all__ = ["plot_comparison_html", "plot_comparison_png"]


def _panels(result: "PropertyComparison") -> list[tuple[str, str, Any, Any, str]]:
    """(title, kind, x, y, axis labels) for each panel the data allow; kind: 'scatter', 'hist' or 'shift'."""
    m = result.units
    panels = []
    for name in ("gOSI", "gDSI"):
        if f"{name}_pub" in m and f"{name}_twin" in m:
            panels.append((f"{name}: published vs in-silico", "scatter", m[f"{name}_pub"].to_numpy(float),
                           m[f"{name}_twin"].to_numpy(float), f"published {name}|in-silico {name}"))
    if "pref_dir_error" in m:
        signed = np.mod(m["pref_dir_twin"].to_numpy(float) - m["pref_dir_pub"].to_numpy(float) + 180, 360) - 180
        panels.append(("preferred direction error (deg)", "hist", signed, None, "in-silico − published (deg)|units"))
    if "readout_x_pub" in m and "readout_x_twin" in m:
        panels.append(("readout positions (published → twin)", "shift",
                       m[["readout_x_pub", "readout_y_pub"]].to_numpy(float),
                       m[["readout_x_twin", "readout_y_twin"]].to_numpy(float), "x (−1 left, 1 right)|y (−1 top)"))
    return panels


def plot_comparison_html(result: "PropertyComparison", path: str | Path) -> Path:
    """Save the comparison as an interactive HTML page; returns its path."""
    hv = hv_bokeh()
    plots = []
    for title, kind, a, b, labels in _panels(result):
        xl, yl = labels.split("|")
        if kind == "scatter":
            lo, hi = float(np.nanmin([a.min(), b.min()])), float(np.nanmax([a.max(), b.max()]))
            plots.append((hv.Scatter((a, b), kdims=[xl], vdims=[yl]) * hv.Curve([(lo, lo), (hi, hi)]).opts(color="grey"))
                         .opts(title=title, width=380, height=340))
        elif kind == "hist":
            counts, edges = np.histogram(a[np.isfinite(a)], bins=np.arange(-187.5, 188, 15))
            plots.append(hv.Histogram((edges, counts), kdims=[xl], vdims=[yl]).opts(title=title, width=380, height=340))
        else:
            segs = [np.stack([p, q]) for p, q in zip(a, b)]
            plots.append((hv.Path(segs, [xl, yl]) * hv.Points(a, [xl, yl]).opts(color="black", size=4)
                          * hv.Points(b, [xl, yl]).opts(color="red", size=4))
                         .opts(title=title, width=380, height=340, invert_yaxis=True))
    if not plots:
        raise ValueError("nothing to plot: the comparison has neither tuning nor readout columns")
    table = hv.Table(result.table[["metric", "value", "n_units", "threshold", "agrees"]].astype(str))
    layout = hv.Layout(plots + [table.opts(width=520, height=300)]).cols(2)
    hv.save(layout.opts(title=f"scan {result.scan[0]}-{result.scan[1]}: twin vs published"), Path(path),
            backend="bokeh")
    return Path(path)


def plot_comparison_png(result: "PropertyComparison", path: str | Path) -> Path:
    """Save the comparison panels as a PNG with matplotlib; returns its path."""
    import matplotlib  # start-up time: only a PNG needs matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(result)
    if not panels:
        raise ValueError("nothing to plot: the comparison has neither tuning nor readout columns")
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (title, kind, a, b, labels) in zip(axes[0], panels):
        xl, yl = labels.split("|")
        if kind == "scatter":
            ax.scatter(a, b, s=8)
            lo, hi = np.nanmin([a.min(), b.min()]), np.nanmax([a.max(), b.max()])
            ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        elif kind == "hist":
            ax.hist(a[np.isfinite(a)], bins=np.arange(-187.5, 188, 15))
        else:
            for p, q in zip(a, b):
                ax.plot([p[0], q[0]], [p[1], q[1]], color="grey", lw=0.5)
            ax.scatter(a[:, 0], a[:, 1], s=6, color="black", label="published")
            ax.scatter(b[:, 0], b[:, 1], s=6, color="red", label="twin")
            ax.invert_yaxis()
            ax.legend(fontsize=7)
        ax.set(title=title, xlabel=xl, ylabel=yl)
    fig.suptitle(f"scan {result.scan[0]}-{result.scan[1]}: {'agreement' if result.agrees else 'disagreement'}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
