"""Like-to-like connectivity (Ding et al. 2025, MICrONS functional connectomics): do neurons that respond alike
connect more? Functional similarity measures of neuron pairs, and two analyses:

* :func:`fit_like_to_like` — the analysis of the paper: synapse counts of (proofread axon, dendrite) pairs with
  co-travel (:mod:`.pairs`) in a Poisson mixed model with log co-travel length as offset, a random intercept
  per presynaptic neuron and soma distance as a covariate (:mod:`.glmm`). Effect sizes with confidence intervals.
* :func:`like_to_like` — a descriptive summary over all ordered pairs (connection probability and synapse count
  per similarity bin). Its label-permutation p-values ignore that similarity and distance are correlated, and
  it knows nothing of axon proofreading or co-travel: use it to look, not to test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, stats

from .glmm import fit_mixed_poisson


def tuning_curves(pref_dir_deg: Any, gosi: Any, gdsi: Any, directions: int = 16) -> np.ndarray:
    """Direction tuning curves [U, directions] whose global indices are ``gosi``/``gdsi`` (until rectification):
    r(θ) = 1 + 2·gDSI·cos(θ−μ) + 2·gOSI·cos(2(θ−μ)), clipped at 0."""
    mu = np.deg2rad(np.asarray(pref_dir_deg, dtype=float))[:, None]
    theta = np.deg2rad(np.arange(directions) * 360.0 / directions)[None, :]
    d = theta - mu
    r = 1 + 2 * np.asarray(gdsi, float)[:, None] * np.cos(d) + 2 * np.asarray(gosi, float)[:, None] * np.cos(2 * d)
    return np.clip(r, 0, None)


def signal_correlation(responses: Any) -> np.ndarray:
    """Pearson correlation between units of responses [..., U] (leading axes = stimulus conditions / time).
    Units with constant responses get NaN."""
    r = np.asarray(responses, dtype=float)
    if r.ndim < 2:
        raise ValueError(f"responses must be [..., units] with at least one stimulus axis, got shape {r.shape}")
    r = r.reshape(-1, r.shape[-1])
    r = r - r.mean(axis=0)
    norm = np.sqrt((r ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = r / np.where(norm > 0, norm, np.nan)
    return np.clip(z.T @ z, -1, 1)


def readout_similarity(weights: Any) -> np.ndarray:
    """Cosine similarity of readout feature vectors [U, F] (the "feature similarity" of Ding et al.)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must be [units, features], got shape {w.shape}")
    n = np.linalg.norm(w, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / np.where(n > 0, n, np.nan)
    return np.clip(w @ w.T, -1, 1)


def in_silico_signal_correlation(twin: Any, stimuli: np.ndarray, units: Any = None, burn_in: int = 10) -> np.ndarray:
    """Signal correlation of the twin's (noise-free) predicted responses to ``stimuli`` (uint8 [T,H,W] or
    [N,T,H,W]), over frames after ``burn_in`` in each trial. Returns [U, U] in the order of ``units``."""
    pred = np.asarray(twin.predict(stimuli, units=units))
    if pred.ndim == 2:
        pred = pred[None]
    if pred.shape[1] <= burn_in:
        raise ValueError(f"stimuli have {pred.shape[1]} frames; need more than burn_in={burn_in}")
    return signal_correlation(pred[:, burn_in:])


def _logistic_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood logistic regression y ~ σ(a + b·x); returns (a, b, se_b)."""
    X = np.stack([np.ones_like(x), x], axis=1)

    def nll(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ beta
        ll = y * z - np.logaddexp(0, z)
        p = 1 / (1 + np.exp(-z))
        return -ll.sum(), -(X.T @ (y - p))

    p0 = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    res = optimize.minimize(nll, np.array([np.log(p0 / (1 - p0)), 0.0]), jac=True, method="BFGS")
    a, b = res.x
    p = 1 / (1 + np.exp(-(X @ res.x)))
    info = X.T @ (X * (p * (1 - p))[:, None])
    try:
        se = float(np.sqrt(np.linalg.inv(info)[1, 1]))
    except np.linalg.LinAlgError:
        se = float("nan")
    return float(a), float(b), se


def connection_counts(synapses: pd.DataFrame, ids: Any, pre: str = "pre_pt_root_id",
                      post: str = "post_pt_root_id") -> np.ndarray:
    """Synapse counts [pre, post] among ``ids`` (in that order) from a synapse table."""
    for c in (pre, post):
        if c not in synapses.columns:
            raise ValueError(f"synapse table has no column {c!r}; columns: {list(synapses.columns)}")
    ids = pd.Index(np.asarray(ids))
    i = ids.get_indexer(synapses[pre].to_numpy())
    j = ids.get_indexer(synapses[post].to_numpy())
    keep = (i >= 0) & (j >= 0)
    counts = np.zeros((len(ids), len(ids)), dtype=np.int64)
    np.add.at(counts, (i[keep], j[keep]), 1)
    return counts


def like_to_like(similarity: Any, synapses: pd.DataFrame | np.ndarray, ids: Any = None, bins: int | Any = 5,
                 n_permutations: int = 1000, seed: int = 0, pre: str = "pre_pt_root_id",
                 post: str = "post_pt_root_id", alternative: Literal["two-sided", "greater", "less"] = "two-sided",
                 name: str = "similarity", confidence: float = 0.95) -> xr.Dataset:
    """Descriptive: connection probability and synapse count against pairwise similarity (see the module note;
    :func:`fit_like_to_like` is the test).

    similarity: [n, n] array (ordered like ``ids``) or a DataFrame indexed and columned by neuron id.
    synapses: a synapse table (columns ``pre``/``post`` hold the same kind of id) or an [n, n] count matrix.
    bins: number of quantile bins, or explicit bin edges. Self-pairs and pairs with NaN similarity are ignored.
    Returns a Dataset over ``bin`` with n_pairs, n_connected, p_connect (+ _lo/_hi), mean_synapses (+ _lo/_hi);
    attrs: logistic intercept/slope/slope_se, the permutation p-values for connection (score statistic:
    mean similarity of connected pairs − of all pairs) and for synapse count (covariance), and the settings.
    """
    if isinstance(similarity, pd.DataFrame):
        if ids is None:
            ids = similarity.index.to_numpy()
        similarity = similarity.loc[list(ids), list(ids)].to_numpy()
    S = np.asarray(similarity, dtype=float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"similarity must be a square [n, n] matrix, got shape {S.shape}")
    n = S.shape[0]
    if n < 3:
        raise ValueError(f"need at least 3 neurons, got {n}")
    if isinstance(synapses, pd.DataFrame):
        if ids is None:
            raise ValueError("ids (the neuron id of each similarity row) are needed to read a synapse table")
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for a {n}×{n} similarity matrix")
        C = connection_counts(synapses, ids, pre, post)
    else:
        C = np.asarray(synapses)
        if C.shape != S.shape:
            raise ValueError(f"count matrix shape {C.shape} differs from similarity shape {S.shape}")
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be ≥ 0, got {n_permutations}")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")

    valid = np.isfinite(S) & ~np.eye(n, dtype=bool)
    x, cnt = S[valid], C[valid].astype(float)
    y = (cnt > 0).astype(float)
    if y.sum() == 0:
        raise ValueError("no connected pairs among these neurons; nothing to relate similarity to")

    if np.isscalar(bins):
        if int(bins) < 1:
            raise ValueError(f"bins must be ≥ 1 or a sequence of edges, got {bins}")
        edges = np.unique(np.quantile(x, np.linspace(0, 1, int(bins) + 1)))
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be an increasing 1-D sequence of at least 2 values")
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    inside = (x >= edges[0]) & (x <= edges[-1])
    rows = []
    for b in range(len(edges) - 1):
        m = inside & (which == b)
        k, npairs = int(y[m].sum()), int(m.sum())
        ci = stats.binomtest(k, npairs).proportion_ci(confidence, method="wilson") if npairs else None
        c = cnt[m]
        half = (stats.t.ppf(0.5 + confidence / 2, npairs - 1) * c.std(ddof=1) / np.sqrt(npairs)
                if npairs > 1 else np.nan)
        rows.append(dict(bin_lo=edges[b], bin_hi=edges[b + 1], bin_center=float(np.mean(x[m])) if npairs else np.nan,
                         n_pairs=npairs, n_connected=k, p_connect=k / npairs if npairs else np.nan,
                         p_connect_lo=ci.low if ci else np.nan, p_connect_hi=ci.high if ci else np.nan,
                         mean_synapses=c.mean() if npairs else np.nan,
                         mean_synapses_lo=c.mean() - half if npairs else np.nan,
                         mean_synapses_hi=c.mean() + half if npairs else np.nan,
                         mean_synapses_connected=c[c > 0].mean() if (c > 0).any() else np.nan))
    table = pd.DataFrame(rows)
    ds = xr.Dataset({k: ("bin", table[k].to_numpy()) for k in table.columns}, coords={"bin": np.arange(len(table))})

    a, slope, se = _logistic_fit(x, y)

    # permutation test: relabel neurons in the similarity matrix (keeps its structure and each neuron's degree)
    def stats_for(Sp: np.ndarray) -> tuple[float, float]:
        xp = Sp[valid]
        ok = np.isfinite(xp)
        return float(xp[ok & (y > 0)].mean() - xp[ok].mean()), float(np.cov(xp[ok], cnt[ok])[0, 1])

    obs_conn, obs_cnt = stats_for(S)
    rng = np.random.default_rng(seed)
    null = np.array([stats_for(S[np.ix_(p, p)]) for p in (rng.permutation(n) for _ in range(n_permutations))])

    def pval(obs: float, dist: np.ndarray) -> float:
        if not len(dist):
            return float("nan")
        if alternative == "greater":
            hits = (dist >= obs).sum()
        elif alternative == "less":
            hits = (dist <= obs).sum()
        else:
            hits = (np.abs(dist - dist.mean()) >= abs(obs - dist.mean())).sum()
        return float((1 + hits) / (1 + len(dist)))

    ds.attrs.update(
        similarity=name, n_neurons=n, n_pairs=int(valid.sum()), n_connected_pairs=int(y.sum()),
        n_synapses=int(cnt.sum()), logistic_intercept=a, logistic_slope=slope, logistic_slope_se=se,
        statistic_connection=obs_conn, statistic_synapses=obs_cnt,
        p_value_connection=pval(obs_conn, null[:, 0] if len(null) else null),
        p_value_synapses=pval(obs_cnt, null[:, 1] if len(null) else null),
        n_permutations=int(n_permutations), seed=int(seed), alternative=alternative, confidence=confidence,
    )
    return ds


@dataclass
class LikeToLikeResult:
    """A like-to-like fit: ``coefficients`` (per term: estimate = change of log synapse density per unit, se, z,
    p_value, ci_low/ci_high, and the rate ratio per SD of the term with its CI), ``bins`` (observed synapse
    density per mm of co-travel per similarity bin, exact Poisson CI), the random-intercept SD and counts."""

    similarity: str
    formula: str
    coefficients: pd.DataFrame
    bins: pd.DataFrame
    random_effect_sd: float
    n_pre: int
    n_post: int
    n_pairs: int
    n_synapses: int
    converged: bool
    confidence: float
    axons: str = "unknown"  # 'proofread' when the pair table kept proofread axons only, else 'unfiltered'

    @property
    def slope(self) -> float:
        return float(self.coefficients.loc[self.similarity, "estimate"])

    @property
    def p_value(self) -> float:
        return float(self.coefficients.loc[self.similarity, "p_value"])

    def summary(self) -> str:
        c = self.coefficients.loc[self.similarity]
        return (f"{self.similarity}: rate ratio per SD {c['rate_ratio_per_sd']:.2f} "
                f"[{c['rr_ci_low']:.2f}, {c['rr_ci_high']:.2f}], p = {c['p_value']:.2g} "
                f"({self.n_pre} axons ({self.axons}), {self.n_post} dendrites, {self.n_pairs} pairs, "
                f"{self.n_synapses} synapses; {self.formula})")


def _density_bins(pairs: pd.DataFrame, name: str, bins: int, confidence: float) -> pd.DataFrame:
    x = pairs[name].to_numpy(float)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    nb = len(edges) - 1
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
    n_pairs = np.bincount(which, minlength=nb)
    k = np.bincount(which, weights=pairs["n_synapses"].to_numpy(float), minlength=nb)
    length_mm = np.bincount(which, weights=pairs["cotravel_um"].to_numpy(float), minlength=nb) / 1000
    alpha = 1 - confidence
    lo = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)  # exact (Garwood) Poisson interval
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:],
                         "bin_center": np.bincount(which, weights=x, minlength=nb) / np.maximum(n_pairs, 1),
                         "n_pairs": n_pairs, "n_synapses": k.astype(int), "cotravel_mm": length_mm,
                         "density": k / length_mm, "density_lo": lo / length_mm, "density_hi": hi / length_mm})


def fit_like_to_like(pairs: pd.DataFrame, similarity: str = "similarity",
                     covariates: tuple[str, ...] = ("distance_um",), bins: int = 5,
                     confidence: float = 0.95) -> LikeToLikeResult:
    """Synapse density against functional similarity, as in the MICrONS functional-connectomics analysis:

        n_synapses ~ similarity + covariates + offset(log co-travel) + (1 | presynaptic neuron), Poisson

    ``pairs``: a pair table (:func:`~twin_explorer.anatomy.pairs.pair_table` + ``add_similarity``) with pre_id,
    n_synapses, cotravel_um (> 0) and the named columns. Soma distance is a covariate by default because nearby
    neurons are both more alike and more connected; ``covariates=()`` gives the uncontrolled model.
    """
    need = ["pre_id", "post_id", "n_synapses", "cotravel_um", similarity, *covariates]
    missing = [c for c in need if c not in pairs.columns]
    if missing:
        raise ValueError(f"pair table lacks columns {missing}; build it with pairs.pair_table and add_similarity")
    if int(bins) < 1:
        raise ValueError(f"bins must be ≥ 1, got {bins}")
    d = pairs[need].dropna()
    d = d[d["cotravel_um"] > 0].assign(cotravel_mm=lambda x: x["cotravel_um"] / 1000)
    if d["n_synapses"].sum() == 0:
        raise ValueError("no synapses among these pairs; nothing to relate similarity to")
    terms = [similarity, *covariates]
    fit = fit_mixed_poisson(d, "n_synapses", terms, group="pre_id", offset="cotravel_mm", confidence=confidence)
    coef = fit.coefficients.copy()
    per_sd = coef["covariate_sd"]
    coef["rate_ratio_per_sd"] = np.exp(coef["estimate"] * per_sd)
    coef["rr_ci_low"] = np.exp(coef["ci_low"] * per_sd)
    coef["rr_ci_high"] = np.exp(coef["ci_high"] * per_sd)
    formula = f"n_synapses ~ {' + '.join(terms)} + offset(log cotravel_mm) + (1 | pre_id), Poisson"
    return LikeToLikeResult(similarity=similarity, formula=formula, coefficients=coef,
                            bins=_density_bins(d, similarity, int(bins), confidence),
                            random_effect_sd=fit.random_effect_sd, n_pre=int(d["pre_id"].nunique()),
                            n_post=int(d["post_id"].nunique()), n_pairs=len(d), n_synapses=int(d["n_synapses"].sum()),
                            converged=fit.converged, confidence=confidence,
                            axons={True: "proofread", False: "unfiltered"}.get(
                                pairs.attrs.get("proofread_axons_only"), "unknown"))
