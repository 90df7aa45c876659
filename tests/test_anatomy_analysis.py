"""The descriptive like-to-like summary, similarity measures, Neuroglancer link round trip, the optional CAVE module
and the views."""

from __future__ import annotations

import builtins

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import (DepthFrame, Skeleton, in_silico_signal_correlation, like_to_like,
                                   neuroglancer_link, neuroglancer_state, neuroglancer_url, parse_neuroglancer_url,
                                   readout_similarity, signal_correlation, tuning_curves)


def _planted(n: int, gain: float, seed: int) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    pref = rng.uniform(0, 360, n)
    curves = tuning_curves(pref, rng.beta(2, 4, n), rng.beta(2, 6, n))
    S = signal_correlation(curves.T)
    p = 1 / (1 + np.exp(-(-2.5 + gain * S)))
    np.fill_diagonal(p, 0)
    counts = np.where(rng.random((n, n)) < p, 1 + rng.poisson(0.5 + gain * 0.3 * np.clip(S, 0, None)), 0)
    ids = 864691135000000000 + rng.choice(10**9, n, replace=False)
    pre, post = np.nonzero(counts)
    reps = counts[pre, post]
    syn = pd.DataFrame({"pre_pt_root_id": np.repeat(ids[pre], reps), "post_pt_root_id": np.repeat(ids[post], reps)})
    return S, syn, ids


def test_like_to_like_detects_planted_bias():
    S, syn, ids = _planted(80, gain=2.5, seed=1)
    ds = like_to_like(S, syn, ids, bins=4, n_permutations=300, seed=0)
    assert ds.attrs["p_value_connection"] < 0.01 and ds.attrs["p_value_synapses"] < 0.01
    assert ds.attrs["logistic_slope"] > 2 * ds.attrs["logistic_slope_se"] > 0
    assert ds["p_connect"].values[-1] > ds["p_connect"].values[0]
    assert (ds["p_connect_lo"] <= ds["p_connect"]).all() and (ds["p_connect"] <= ds["p_connect_hi"]).all()
    assert int(ds["n_pairs"].sum()) == 80 * 79 and int(ds["n_connected"].sum()) == ds.attrs["n_connected_pairs"]


def test_like_to_like_no_bias_is_not_detected():
    S, syn, ids = _planted(80, gain=0.0, seed=2)
    ds = like_to_like(S, syn, ids, bins=4, n_permutations=300, seed=0)
    assert ds.attrs["p_value_connection"] > 0.05
    assert abs(ds.attrs["logistic_slope"]) < 2.5 * ds.attrs["logistic_slope_se"]


def test_like_to_like_inputs():
    S, syn, ids = _planted(20, gain=2.0, seed=3)
    frame = pd.DataFrame(S, index=ids, columns=ids)
    a = like_to_like(frame, syn, bins=[-1, 0, 1], n_permutations=0)
    assert a.sizes["bin"] == 2 and np.isnan(a.attrs["p_value_connection"])
    with pytest.raises(ValueError, match="square"):
        like_to_like(S[:, :5], syn, ids)
    with pytest.raises(ValueError, match="ids"):
        like_to_like(S, syn)
    with pytest.raises(ValueError, match="no connected pairs"):
        like_to_like(S, np.zeros_like(S, dtype=int))
    with pytest.raises(ValueError, match="increasing"):
        like_to_like(S, syn, ids, bins=[0, 0])


def test_similarity_measures():
    pref = np.array([0.0, 0.0, 180.0, 90.0])
    curves = tuning_curves(pref, [0.2] * 4, [0.3] * 4, directions=8)
    # the global indices of these curves are the requested ones (no rectification at these values)
    theta = np.deg2rad(np.arange(8) * 45.0)
    assert np.allclose(np.abs((curves * np.exp(1j * theta)).sum(1)) / curves.sum(1), 0.3)
    assert np.allclose(np.abs((curves * np.exp(2j * theta)).sum(1)) / curves.sum(1), 0.2)
    S = signal_correlation(curves.T)
    assert S[0, 1] == pytest.approx(1.0) and S[0, 2] < S[0, 1]
    W = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    R = readout_similarity(W)
    assert R[0, 1] == pytest.approx(1.0) and R[0, 2] == pytest.approx(0.0) and np.isnan(R[3, 0])


def test_in_silico_signal_correlation_uses_twin_predictions():
    class Twin:
        def predict(self, stimuli, units=None):
            m = stimuli.astype(np.float32).mean(axis=(-1, -2))
            return np.stack([m, 2 * m + 1, -m], axis=-1)

    video = np.random.default_rng(0).integers(0, 256, (30, 4, 4), dtype=np.uint8)
    S = in_silico_signal_correlation(Twin(), video, burn_in=5)
    assert np.allclose(S, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-6)
    with pytest.raises(ValueError, match="burn_in"):
        in_silico_signal_correlation(Twin(), video[:3], burn_in=5)


# ---- neuroglancer --------------------------------------------------------------------------------------------------
def test_neuroglancer_link_round_trips_with_ids_and_voxel_points():
    roots = [864691135000000001, 864691135999999999]
    syn = pd.DataFrame({"id": [5, 6], "x_nm": [400.0, 800.0], "y_nm": [4000.0, 8.0], "z_nm": [40_000.0, 80.0],
                        "direction": ["input", "output"], "partner_root_id": [1, 2]})
    url = neuroglancer_link(roots, syn)
    assert url.startswith("https://") and "#!" in url
    state = parse_neuroglancer_url(url)
    assert state == neuroglancer_state(roots, syn)
    layers = {layer["type"]: layer for layer in state["layers"]}
    assert layers["segmentation"]["segments"] == [str(r) for r in roots]
    assert "minnie65" in layers["segmentation"]["source"] and "minnie65/em" in layers["image"]["source"]
    assert layers["annotation"]["annotations"][0]["point"] == [100.0, 1000.0, 1000.0]  # nm → 4×4×40 voxels
    assert layers["annotation"]["annotations"][1]["id"] == "6"
    assert state["position"] == [100.0, 1000.0, 1000.0]
    with pytest.raises(ValueError, match="integers"):
        neuroglancer_state(["abc"])
    with pytest.raises(ValueError, match="#!"):
        parse_neuroglancer_url("https://example.org/#x")
    with pytest.raises(ValueError, match="http"):
        neuroglancer_url(state, host="ftp://x")


# ---- optional live data --------------------------------------------------------------------------------------------
def test_cave_without_extra_says_what_to_install(monkeypatch):
    from twin_explorer.anatomy import cave

    real_import = builtins.__import__

    def no_cave(name, *args, **kw):
        if name.split(".")[0] in ("caveclient", "cloudvolume"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_cave)
    monkeypatch.setattr(cave.importlib, "import_module", lambda name: no_cave(name))
    with pytest.raises(ImportError, match=r"twin_explorer\[microns\]"):
        cave.cave_client()
    with pytest.raises(ImportError, match=r"twin_explorer\[microns\]"):
        cave.fetch_mesh(864691135000000001)
    with pytest.raises(ValueError, match="root_id"):
        cave.fetch_mesh("abc")
    with pytest.raises(ValueError, match="lod"):
        cave.fetch_mesh(1, lod=7)
    with pytest.raises(ValueError, match="direction"):
        cave.fetch_synapses(1, direction="sideways")
    with pytest.raises(ValueError, match="version"):
        cave.cave_client(version=-3)


# ---- views ------------------------------------------------------------------------------------------------------------
def _neuron() -> Skeleton:
    xyz = np.array([[0, 300_000, 0], [0, 250_000, 0], [0, 200_000, 0], [30_000, 310_000, 0], [0, 500_000, 0]], float)
    return Skeleton(xyz_nm=xyz, parent=[-1, 0, 1, 0, 0], compartment=[1, 4, 4, 3, 2], radius_nm=[7000, 1, 1, 1, 1],
                    meta={"cell_type": "23P", "nucleus_id": 7})


def test_views_build_and_render():
    from twin_explorer.anatomy import views

    frame = DepthFrame()
    neurons = pd.DataFrame({"x_um": [0.0, 100.0, 200.0], "z_um": [0.0, 50.0, 10.0], "depth_um": [150.0, 300, 500],
                            "pref_dir": [10.0, 200.0, np.nan], "area": ["V1", "LM", "V1"]},
                           index=pd.Index([1, 2, 3], name="readout_id"))
    m = views.soma_map(neurons, "pref_dir")
    assert m.vdims[0].name == "pref_dir" and len(m) == 3
    hv.render(views.soma_map(neurons, "area", view="side"), backend="bokeh")
    with pytest.raises(ValueError, match="no column"):
        views.soma_map(neurons, "gOSI")
    syn = pd.DataFrame({"x_nm": [0.0, 10_000.0], "y_nm": [220_000.0, 480_000.0], "z_nm": [0.0, 0.0],
                        "pref_dir": [90.0, np.nan], "direction": ["input", "output"], "partner_root_id": [1, 2]})
    ov = views.side_view(_neuron(), frame, syn)
    hv.render(ov, backend="bokeh")
    labels = {el.label for el in ov}
    assert {"apical dendrite", "basal dendrite", "axon", "soma", "synapses"} <= labels
    fig = views.skeleton_3d(_neuron(), frame, syn)
    names = [t.name for t in fig.data]
    assert names[:3] == ["axon", "basal dendrite", "apical dendrite"] and "soma" in names
    tuned = next(t for t in fig.data if t.name == "synapses (pref_dir)")
    assert list(tuned.marker.color) == [90.0] and tuned.z[0] == pytest.approx(220.0)  # depth in µm from the pia
    S, syn2, ids = _planted(30, gain=2.0, seed=4)
    layout = views.plot_like_to_like(like_to_like(S, syn2, ids, bins=3, n_permutations=20))
    hv.render(layout, backend="bokeh")
    assert len(layout) == 2
