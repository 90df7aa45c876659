"""Like-to-like as the MICrONS functional-connectomics analysis does it: co-travel from skeletons, proofread axons,
a Poisson mixed model with a presynaptic random effect and distance controlled; planted rule, null, confound."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from twin_explorer.anatomy import Anatomy, Skeleton, like_to_like
from twin_explorer.anatomy.cotravel import cotravel_length, cotravel_matrix, cut_segments, skeleton_cable
from twin_explorer.anatomy.glmm import fit_mixed_poisson, marginal_log_likelihood
from twin_explorer.anatomy.like_to_like import fit_like_to_like
from twin_explorer.anatomy.pairs import (add_similarity, pair_table, pairs_from_anatomy, proofread_axons,
                                         similarity_by_nucleus)

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
FUNCONN = REAL / "spapa013+microns-funconn-2025" / "methods" / "sample_data" / "skeletons"
TUTORIAL = REAL / "AllenInstitute+microns_tutorial" / "transcribed_from_notebook_output"


def simulate(seed: int, gain: float, n: int = 50, sigma: float = 0.5, confound: bool = True) -> pd.DataFrame:
    """Pairs of n neurons (each pre and post) in a 500 µm square. Nearby neurons are more alike (if ``confound``)
    and have a higher synapse density per mm of co-travel; ``gain`` is the planted effect of similarity."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (n, 2))
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    s = (np.exp(-d / 150) if confound else 0.0) + 0.25 * rng.standard_normal((n, n))
    cotravel_mm = rng.gamma(2.0, 0.05 * np.exp(-d / 300))
    u = sigma * rng.standard_normal(n)
    y = rng.poisson(np.exp(np.log(20) + u[:, None] + gain * s - d / 200) * cotravel_mm)
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return pd.DataFrame({"pre_id": i, "post_id": j, "n_synapses": y[i, j], "cotravel_um": 1000 * cotravel_mm[i, j],
                         "similarity": s[i, j], "distance_um": d[i, j]})


# ---- co-travel --------------------------------------------------------------------------------------------------
def test_cotravel_reproduces_the_papers_sample_skeletons():
    def cable(name: str):
        z = np.load(FUNCONN / name)
        v, e = z["vertices"] / 1000.0, z["edges"]
        return cut_segments(v[e[:, 0]], v[e[:, 1]], 1.0)

    axon, dend = cable("skeleton_axon_327859.npz"), cable("skeleton_dend_587885.npz")
    axon_len, dend_len = cotravel_length(axon, dend, radius_um=5.0)
    # the methods notebook prints 35457 nm of axonal and 37557 nm of dendritic co-travel for this pair
    assert axon_len == pytest.approx(35.457, abs=0.005)
    assert dend_len == pytest.approx(37.557, abs=0.005)
    other = cable("skeleton_dend_292965.npz")
    assert 3000 < axon.length_um and cotravel_length(axon, other)[1] < dend_len
    # all pairs at once gives the same numbers as pair by pair
    a_mat, d_mat = cotravel_matrix([axon], [dend, other], 5.0)
    assert np.allclose(a_mat[0], [axon_len, cotravel_length(axon, other)[0]])
    assert np.allclose(d_mat[0], [dend_len, cotravel_length(axon, other)[1]])


def test_cotravel_geometry_and_compartments():
    # an axon 3 µm from a dendrite over 20 µm: dendrite cable within 5 µm spans x in [-4, 24]
    axon = Skeleton(xyz_nm=[[0, 3000, 0], [20_000, 3000, 0]], parent=[-1, 0], compartment=[2, 2], radius_nm=[1, 1])
    dend = Skeleton(xyz_nm=[[-50_000, 0, 0], [50_000, 0, 0], [0, -200_000, 0]], parent=[-1, 0, 0],
                    compartment=[3, 3, 2], radius_nm=[1, 1, 1])
    a, d = skeleton_cable(axon, (2,)), skeleton_cable(dend, (1, 3, 4))
    assert d.length_um == pytest.approx(100.0)  # the axon branch of the dendrite's neuron is left out
    axon_len, dend_len = cotravel_length(a, d, 5.0)
    assert 28.0 <= dend_len <= 30.0 and axon_len == pytest.approx(20.0)
    far = cut_segments([[0, 100, 0]], [[20, 100, 0]])
    assert cotravel_length(far, d) == (0.0, 0.0)
    with pytest.raises(ValueError, match="radius"):
        cotravel_length(a, d, 0)


def test_proofread_axons_from_both_table_forms():
    strategy = pd.read_csv(TUTORIAL / "skeleton_load_and_generate__cell33__proofreading_status_and_strategy.csv")
    roots = proofread_axons(strategy)
    assert len(roots) == 5 and roots.min() > 864691130000000000  # t + extended/interareal strategies
    strict = proofread_axons(strategy, strategies=("axon_fully_extended",))
    assert len(strict) == (strategy["strategy_axon"] == "axon_fully_extended").sum() == 3
    public = pd.read_csv(TUTORIAL / "skeleton_load_and_generate__cell35__proofreading_status_public_release.csv")
    assert len(proofread_axons(public)) == 3  # 'non' axons are out
    with pytest.raises(ValueError, match="status_axon"):
        proofread_axons(public.drop(columns="status_axon"))


# ---- the model --------------------------------------------------------------------------------------------------
def test_marginal_likelihood_matches_numerical_integration():
    rng = np.random.default_rng(1)
    X = np.c_[np.ones(8), rng.standard_normal(8)]
    y = rng.poisson(2, 8).astype(float)
    groups = np.repeat([0, 1], 4)
    theta = np.array([0.3, 0.2, np.log(0.7)])
    expected = 0.0
    for g in (0, 1):
        m = groups == g
        eta = X[m] @ theta[:2]

        def f(u, eta=eta, m=m):
            return np.exp(np.sum(y[m] * (eta + u) - np.exp(eta + u) - special.gammaln(y[m] + 1))) * \
                stats.norm.pdf(u, 0, 0.7)
        expected += np.log(integrate.quad(f, -10, 10)[0])
    ll, grad = marginal_log_likelihood(theta, X, y, np.zeros(8), groups, 2, gradient=True)
    assert ll == pytest.approx(expected, abs=1e-4)
    h = 1e-6
    numeric = [(marginal_log_likelihood(theta + h * e, X, y, np.zeros(8), groups, 2)
                - marginal_log_likelihood(theta - h * e, X, y, np.zeros(8), groups, 2)) / (2 * h) for e in np.eye(3)]
    assert np.allclose(grad, numeric, atol=1e-3)


def test_planted_rule_is_found_with_the_right_sign():
    pairs = simulate(seed=3, gain=1.0)
    res = fit_like_to_like(pairs)
    c = res.coefficients.loc["similarity"]
    assert res.converged and c["p_value"] < 1e-3 and c["estimate"] > 0
    assert c["ci_low"] < 1.0 < c["ci_high"]  # the planted slope is inside the CI
    assert res.coefficients.loc["distance_um", "ci_low"] < -1 / 200 < res.coefficients.loc["distance_um", "ci_high"]
    assert 0.25 < res.random_effect_sd < 1.0  # planted 0.5
    assert res.bins["density"].iloc[-1] > res.bins["density"].iloc[0]
    assert "p =" in res.summary() and res.n_pre == 50


def test_distance_confound_fools_the_old_tests_but_not_the_model():
    pairs = simulate(seed=5, gain=0.0)  # similarity has no effect; distance drives both
    naive = fit_like_to_like(pairs, covariates=())
    assert naive.p_value < 1e-3 and naive.slope > 0  # fooled
    n = pairs["pre_id"].max() + 1
    S, C = np.eye(n), np.zeros((n, n), int)
    S[pairs["pre_id"], pairs["post_id"]] = pairs["similarity"]
    C[pairs["pre_id"], pairs["post_id"]] = pairs["n_synapses"]
    old = like_to_like(S, C, n_permutations=200, seed=0)
    assert old.attrs["p_value_synapses"] < 0.01  # the label permutation is fooled too
    controlled = fit_like_to_like(pairs)
    c = controlled.coefficients.loc["similarity"]
    assert c["p_value"] > 0.05 and c["ci_low"] < 0 < c["ci_high"]


def test_false_positive_rate_is_nominal_over_seeds():
    n_seeds, alpha = 60, 0.05
    p_controlled = np.array([fit_like_to_like(simulate(seed=100 + k, gain=0.0, n=30)).p_value
                             for k in range(n_seeds)])
    rejections = int((p_controlled < alpha).sum())
    # within a two-sided 99.8 % binomial band around 5 % of 60 (0..9)
    assert stats.binom.ppf(0.001, n_seeds, alpha) <= rejections <= stats.binom.ppf(0.999, n_seeds, alpha)
    # the same data without distance in the model: the confound reads as like-to-like in nearly every seed
    naive = [fit_like_to_like(simulate(seed=100 + k, gain=0.0, n=30), covariates=()).p_value for k in range(10)]
    assert np.mean(np.array(naive) < alpha) >= 0.8
    power = np.mean([fit_like_to_like(simulate(seed=300 + k, gain=1.0, n=30)).p_value < alpha for k in range(10)])
    assert power >= 0.8


def test_model_inputs_are_checked():
    pairs = simulate(seed=1, gain=0.0, n=10)
    with pytest.raises(ValueError, match="lacks columns"):
        fit_like_to_like(pairs.drop(columns="cotravel_um"))
    with pytest.raises(ValueError, match="no synapses"):
        fit_like_to_like(pairs.assign(n_synapses=0))
    with pytest.raises(ValueError, match="positive"):
        fit_mixed_poisson(pairs.assign(cotravel_um=0.0), "n_synapses", ["similarity"], "pre_id", "cotravel_um")
    with pytest.raises(ValueError, match="do not vary"):
        fit_mixed_poisson(pairs.assign(similarity=1.0), "n_synapses", ["similarity"], "pre_id")


# ---- from skeletons to the fit ----------------------------------------------------------------------------------
def _neurons(n: int, seed: int) -> tuple[dict, dict, pd.DataFrame, np.ndarray]:
    """n neurons in a thin 300 µm slab: each an axon and a dendrite, straight random lines through its soma."""
    rng = np.random.default_rng(seed)
    soma = rng.uniform(0, 1, (n, 3)) * [300_000, 300_000, 6_000]
    axons, dends = {}, {}
    for k in range(n):
        a_dir, d_dir = np.c_[rng.standard_normal((2, 2)), [0, 0]]
        a_dir, d_dir = a_dir / np.linalg.norm(a_dir), d_dir / np.linalg.norm(d_dir)
        xyz = [soma[k], soma[k] + 250_000 * a_dir, soma[k] - 250_000 * a_dir, soma[k] + 120_000 * d_dir,
               soma[k] - 120_000 * d_dir]
        sk = Skeleton(xyz_nm=xyz, parent=[-1, 0, 0, 0, 0], compartment=[1, 2, 2, 3, 3], radius_nm=[5000, 1, 1, 1, 1])
        axons[k] = dends[k] = sk
    pos = pd.DataFrame(soma / 1000, columns=["x", "y", "z"])
    pref = rng.uniform(0, 180, n)
    return axons, dends, pos, pref


def test_end_to_end_from_skeletons_finds_the_planted_rule():
    axons, dends, pos, pref = _neurons(40, seed=2)
    empty = pd.DataFrame({"pre_id": pd.Series(dtype="int64"), "post_id": pd.Series(dtype="int64")})
    base = pair_table(axons, dends, empty, pos, radius_um=5.0)
    assert len(base) > 100 and (base["cotravel_um"] > 0).all() and (base["n_synapses"] == 0).all()
    diff = np.deg2rad(pref[:, None] - pref[None, :])
    sim = pd.DataFrame(np.cos(2 * diff), index=range(40), columns=range(40))  # orientation similarity
    base = add_similarity(base, sim)
    rng = np.random.default_rng(0)
    lam = np.exp(np.log(30) + 0.8 * base["similarity"]) * base["cotravel_um"] / 1000
    counts = rng.poisson(lam)
    syn = pd.DataFrame({"pre_id": np.repeat(base["pre_id"], counts), "post_id": np.repeat(base["post_id"], counts)})
    pairs = add_similarity(pair_table(axons, dends, syn, pos), sim)
    assert pairs["n_synapses"].sum() == counts.sum() and pairs.attrs["dropped_synapses"] == 0
    res = fit_like_to_like(pairs)
    assert res.p_value < 0.01 and res.slope > 0
    layout = __import__("twin_explorer.anatomy.views", fromlist=["x"]).plot_like_to_like_fit(res)
    hv.render(layout, backend="bokeh")
    assert len(layout) == 2 and "per SD" in layout[1].opts.get().kwargs["title"]


def test_pairs_from_an_anatomy_folder_need_proofread_axons():
    a = Anatomy.sample()
    ids = a.skeleton_ids[:8]
    rng = np.random.default_rng(0)
    sim = pd.DataFrame(rng.uniform(-1, 1, (8, 8)), index=ids, columns=ids)
    with pytest.raises(ValueError, match="proofreading"):
        pairs_from_anatomy(a, sim)
    roots = a.nuclei.loc[ids[:4], "pt_root_id"].to_numpy()
    table = pd.DataFrame({"pt_root_id": roots, "status_axon": ["t", "t", "f", "t"],
                          "strategy_axon": ["axon_fully_extended", "axon_partially_extended", "axon_fully_extended",
                                            "none"]})
    pairs = pairs_from_anatomy(a, sim, proofreading=table)
    assert set(pairs["pre_id"]) <= set(ids[:2]) and set(pairs["post_id"]) <= set(ids)
    assert pairs.attrs["proofread_axons_only"] and "similarity" in pairs and (pairs["cotravel_um"] > 0).all()
    assert (pairs["distance_um"] > 0).all()
    assert fit_like_to_like(pairs.assign(n_synapses=1)).axons == "proofread"


def test_without_presynaptic_variation_the_fit_is_the_poisson_glm():
    pairs = simulate(seed=9, gain=0.5, sigma=0.0, n=30)
    fit = fit_mixed_poisson(pairs.assign(mm=pairs["cotravel_um"] / 1000), "n_synapses", ["similarity", "distance_um"],
                            "pre_id", "mm")
    assert fit.random_effect_sd < 0.15 and fit.converged
    # the plain Poisson GLM (no random effect) by Newton's method: its estimates and standard errors
    X = np.c_[np.ones(len(pairs)), pairs[["similarity", "distance_um"]].to_numpy()]
    y, off = pairs["n_synapses"].to_numpy(float), np.log(pairs["cotravel_um"].to_numpy() / 1000)
    beta = np.r_[np.log(y.sum() / np.exp(off).sum()), 0, 0]
    for _ in range(50):
        mu = np.exp(X @ beta + off)
        beta += np.linalg.solve(X.T @ (X * mu[:, None]), X.T @ (y - mu))
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ (X * np.exp(X @ beta + off)[:, None]))))
    c = fit.coefficients
    assert np.allclose(c["estimate"], beta[1:], rtol=0.05, atol=0.02 * se[1:])
    assert np.allclose(c["se"], se[1:], rtol=0.15)


def test_readout_similarity_maps_to_neurons():
    a = Anatomy.sample()
    nuclei = a.skeleton_ids[:5]
    coreg = a.coregistration.drop_duplicates("target_id").set_index("target_id").loc[nuclei]
    units = coreg[["session", "scan_idx", "unit_id"]].reset_index(drop=True)
    units.index = pd.Index(np.arange(100, 105), name="readout_id")
    S = pd.DataFrame(np.arange(25.0).reshape(5, 5), index=units.index, columns=units.index)
    by_nucleus = similarity_by_nucleus(a, units, S)
    resolved = a.resolve_units(units, policy="unique")
    for rid, row in resolved[resolved["nucleus_id"].notna()].iterrows():
        for rid2, row2 in resolved[resolved["nucleus_id"].notna()].iterrows():
            assert by_nucleus.loc[int(row["nucleus_id"]), int(row2["nucleus_id"])] == S.loc[rid, rid2]
    assert list(by_nucleus.index) == list(nuclei) and by_nucleus.iloc[1, 3] == 8.0
    with pytest.raises(ValueError, match="DataFrame"):
        similarity_by_nucleus(a, units, S.to_numpy())
