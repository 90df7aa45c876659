"""Static figures (PNG, matplotlib) for the demo twin's model card, drawn from the files the report writes.

The interactive HoloViews plots (``*.html``) need BokehJS from a CDN; a model card read on GitHub or offline
needs pictures that are just images. Each function reads its numbers from ``out_dir`` and writes one PNG there,
returning its path (or ``None`` when the numbers are not there yet).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure (closing frees it: these run in long-lived processes)."""
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def accuracy_figure(out_dir: str | Path) -> Path | None:
    """Median CC_abs, CC_max and CC_norm on held-out natural clips and on each out-of-domain family."""
    out = Path(out_dir)
    if not (out / "report.json").exists():
        return None
    rep = json.loads((out / "report.json").read_text())
    rows = [{"stimulus": "natural (held out)", **rep["natural"]}] + rep.get("families", [])
    df = pd.DataFrame(rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.4), dpi=110)
    x = np.arange(len(df))
    for k, (col, colour) in enumerate((("cc_abs", "#9ecae1"), ("cc_max", "#d9d9d9"), ("cc_norm", "#3182bd"))):
        ax.bar(x + (k - 1) * 0.27, df[col], width=0.27, label=col.replace("_", " ").upper(), color=colour)
    ax.set_xticks(x, df["stimulus"], rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.8, color="k", lw=0.8, ls=":", label="goal CC_norm 0.8")
    ax.set_ylabel("median over units")
    ax.set_title("Demo twin vs synthetic mouse: trained on natural clips only")
    ax.legend(ncol=4, fontsize=8, loc="upper right", frameon=False)
    return _save(fig, out / "accuracy.png")


def tuning_figure(out_dir: str | Path) -> Path | None:
    """Twin's in-silico preferred direction, gOSI and RF azimuth against the ground truth, one dot per neuron."""
    out = Path(out_dir)
    if not (out / "tuning_vs_truth_neurons.csv").exists():
        return None
    nb = pd.read_csv(out / "tuning_vs_truth_neurons.csv")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), dpi=110)
    pairs = (("true_pref_dir", "pref_dir", "preferred direction (°)", (0, 360)),
             ("true_gosi", "gosi", "gOSI", (0, 1)),
             ("true_rf_az", "rf_az", "RF azimuth (°)", None),
             ("true_rf_el", "rf_el", "RF elevation (°)", None))
    for ax, (tx, mx, label, lim) in zip(axes, pairs):
        # direction only where the truth defines one (gDSI ≥ 0.2, as in the metric)
        sel = nb["true_gdsi"] >= 0.2 if tx == "true_pref_dir" else np.isfinite(nb[mx])
        ax.scatter(nb.loc[sel, tx], nb.loc[sel, mx], s=4, alpha=0.5, color="#3182bd", lw=0)
        lo, hi = lim if lim else (np.nanmin(nb[[tx, mx]].values), np.nanmax(nb[[tx, mx]].values))
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"twin {label}")
    axes[0].set_title("gDSI ≥ 0.2", fontsize=9)
    fig.suptitle("In-silico experiments on the twin vs the synthetic mouse's true tuning", fontsize=10)
    return _save(fig, out / "tuning_vs_truth.png")


def adaptation_figure(out_dir: str | Path) -> Path | None:
    """Held-out CC_norm of a new mouse against minutes of its data: foundation core vs individual twins."""
    out = Path(out_dir)
    if not (out / "adaptation.csv").exists():
        return None
    table = pd.read_csv(out / "adaptation.csv")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for (name, g), marker in zip(table.groupby("model", sort=False), "os^v"):
        g = g.sort_values("minutes")
        ax.plot(g["minutes"], g["cc_norm"], marker=marker, label=name)
    ax.set_xscale("log")
    ticks = sorted(table["minutes"].unique())
    ax.set_xticks(ticks, [f"{m:g}" for m in ticks])
    ax.set_xlabel("minutes of the new mouse's data")
    ax.set_ylabel("median CC_norm (held out)")
    ax.set_ylim(0, 1)
    ax.set_title("Adapting to a new mouse", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _save(fig, out / "adaptation.png")


#: (column of foundation_curve.csv, axis label) of each panel of :func:`foundation_curve_figure`
FOUNDATION_PANELS = (("cc_norm", "median CC_norm (held out)"),
                     (("pref_dir_median_err_deg", "pref_ori_median_err_deg"), "median error (°)"),
                     (("sf_within_1.5x_fraction", "gosi_pearson_r"), "fraction / r"))


def foundation_curve_figure(out_dir: str | Path) -> Path | None:
    """Accuracy and tuning fidelity of the demo mouse on foundation cores trained on 1, 2, 4 … mice
    (``foundation_curve.csv`` of ``twin-explorer train foundation``)."""
    out = Path(out_dir)
    if not (out / "foundation_curve.csv").exists():
        return None
    table = pd.read_csv(out / "foundation_curve.csv").sort_values("n_mice")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(FOUNDATION_PANELS), figsize=(10, 3.2), dpi=110)
    labels = {"cc_norm": "CC_norm", "pref_dir_median_err_deg": "preferred direction",
              "pref_ori_median_err_deg": "preferred orientation", "sf_within_1.5x_fraction": "SF within 1.5×",
              "gosi_pearson_r": "gOSI r (twin, truth)"}
    own = json.loads((out / "report.json").read_text())["natural"]["cc_norm"] if (out / "report.json").exists() else None
    for ax, (columns, ylabel) in zip(axes, FOUNDATION_PANELS):
        for column, marker in zip((columns,) if isinstance(columns, str) else columns, "os"):
            if column in table:
                ax.plot(table["n_mice"], table[column], marker=marker, label=labels[column])
        if columns == "cc_norm" and own is not None:  # the twin whose card this is, trained on the demo mouse itself
            ax.axhline(own, color="grey", ls="--", lw=1, label="this twin (own mouse)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(table["n_mice"], [str(n) for n in table["n_mice"]])
        ax.set_xlabel("training mice")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Demo mouse on a frozen core trained on n other synthetic mice", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "foundation_curve.png")


def loss_figure(out_dir: str | Path) -> Path | None:
    """Training loss per step (and its running mean)."""
    out = Path(out_dir)
    if not (out / "history.json").exists():
        return None
    loss = np.asarray(json.loads((out / "history.json").read_text())["loss"], dtype=float)
    if loss.size == 0:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.0), dpi=110)
    ax.plot(loss, color="#c6dbef", lw=0.6, label="per step")
    k = min(50, loss.size)
    ax.plot(np.arange(k - 1, loss.size), np.convolve(loss, np.ones(k) / k, mode="valid"), color="#08519c",
            label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("Poisson loss (normalised responses)")
    ax.legend(fontsize=8, frameon=False)
    return _save(fig, out / "loss.png")


def all_figures(out_dir: str | Path) -> list[Path]:
    """Every figure whose numbers are in ``out_dir``."""
    made = [f(out_dir) for f in (accuracy_figure, tuning_figure, adaptation_figure, foundation_curve_figure,
                                 loss_figure)]
    return [p for p in made if p is not None]
