"""The offline sample: generator (small, in tmp), reproducibility, the shipped assets/anatomy, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from twin_explorer.anatomy import SAMPLE_DIR, Anatomy, generate_sample, like_to_like, signal_correlation, tuning_curves


def _units(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(110, 600, n)
    return pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": np.arange(n) * 2 + 1,
                         "x_um": rng.uniform(0, 400, n), "y_um": rng.uniform(0, 400, n), "depth_um": depth,
                         "area": np.where(rng.random(n) < 0.7, "V1", "LM"),
                         "layer": np.where(depth < 330, "L2/3", np.where(depth < 440, "L4", "L5"))},
                        index=pd.Index(np.arange(n), name="readout_id"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("anatomy")
    units = _units()
    tuning = pd.DataFrame({"pref_dir_deg": np.linspace(0, 350, 60), "gosi": 0.3, "gdsi": 0.2}, index=units.index)
    generate_sample(units, tuning, out, seed=3, n_skeletons=4, n_dense=1, n_meshworks=1, n_connectome=40,
                    progress=False)
    return out, units


def test_generated_sample_links_every_unit(small):
    out, units = small
    a = Anatomy(out)
    links = a.link_units(units)
    assert set(links["readout_id"]) == set(units.index)  # nobody dropped
    assert {"unique", "multiple", "none"} <= set(links["match"])
    res = a.resolve_units(units)
    ok = res[res["match"] == "unique"]
    # the chain lands on the unit's own soma: pia-aligned position equals the unit's (x, depth, y)
    assert np.allclose(ok["x_um"], units.loc[ok.index, "x_um"], atol=0.01)
    assert np.allclose(ok["depth_um"], units.loc[ok.index, "depth_um"], atol=0.01)
    assert (ok["layer"] == units.loc[ok.index, "layer"]).all()
    assert (ok["area"] == units.loc[ok.index, "area"]).all()
    props = a.properties.set_index(["session", "scan_idx", "unit_id"])
    assert props["pref_dir"].between(0, 360).all()
    assert len(a.skeleton_ids) == 4 and len(a.meshwork_ids) == 1
    sk = a.skeleton(a.skeleton_ids[0])
    assert sk.n_nodes > 100 and set(np.unique(sk.compartment)) >= {1, 2, 3}
    mw = a.meshwork(a.meshwork_ids[0])
    assert {"pre_syn", "post_syn", "is_axon"} <= set(mw.annotations)
    assert mw.skeleton().n_nodes == a.skeleton(a.meshwork_ids[0]).n_nodes
    partners = a.partners(a.skeleton_ids[0], units)
    assert partners["n_synapses"].sum() == len(a.synapses(a.skeleton_ids[0]))
    assert partners["readout_id"].notna().any() and partners["partner_nucleus_id"].isna().any()  # fragments too


def test_generator_is_reproducible_and_validates(small, tmp_path):
    out, units = small
    assert Anatomy(out).manifest["synthetic"] is True
    again = generate_sample(units, pd.DataFrame({"pref_dir_deg": np.linspace(0, 350, 60), "gosi": 0.3, "gdsi": 0.2},
                                                index=units.index), tmp_path, seed=3, n_skeletons=4, n_dense=1,
                            n_meshworks=1, n_connectome=40, progress=False)
    for rel in ("tables/synapses_pni_2.csv.gz", "tables/coregistration_manual_v4.csv.gz", "manifest.json"):
        assert (again / rel).read_bytes() == (out / rel).read_bytes()
    with pytest.raises(ValueError, match="unit_id"):
        generate_sample(units.drop(columns="unit_id"), None, tmp_path)
    with pytest.raises(ValueError, match="at least 10"):
        generate_sample(units.iloc[:3], None, tmp_path)


def test_shipped_sample():
    a = Anatomy.sample()
    size = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert size < 8e6
    assert len(a.skeleton_ids) >= 25 and len(a.meshwork_ids) >= 1
    n_nodes = [a.skeleton(n).n_nodes for n in a.skeleton_ids[:]]
    assert sum(n >= 2000 for n in n_nodes) >= 3
    types = set(a.nuclei.loc[a.skeleton_ids, "cell_type"])
    assert types & {"BC", "MC", "BPC", "NGC"} and types & {"23P", "4P", "5P-IT", "5P-ET", "5P-NP"}
    assert a.manifest["source"].startswith("SyntheticMouse")
    # labelled synthetic, with ids outside the real MICrONS ranges (real roots 864691134…/864691136…, real nuclei
    # below ~750,000), in the current formats (SWC with its unit, meshwork version 2)
    assert a.manifest["synthetic"] is True and "not MICrONS data" in a.manifest["description"]
    assert a.materialization_version is None  # no real segmentation to link to
    assert a.nuclei.index.min() >= 10_000_000
    roots = a.synapse_table[["pre_pt_root_id", "post_pt_root_id"]].to_numpy().ravel().astype(str)
    assert all(r.startswith("9") and len(r) == 18 for r in roots)
    swc = next((SAMPLE_DIR / "skeletons").glob("*.swc")).read_text().splitlines()[:6]
    assert "# unit: nm" in swc and any("not MICrONS data" in line for line in swc)
    assert a.meshwork(a.meshwork_ids[0]).version == 2
    # the planted like-to-like bias is recovered from the files alone
    ids = np.array(a.manifest["sampled_nucleus_ids"])
    props = a.properties.drop_duplicates("target_id").set_index("target_id").loc[ids]
    S = signal_correlation(tuning_curves(props["pref_dir"], props["gOSI"], props["gDSI"]).T)
    ds = like_to_like(S, a.synapse_table, a.nuclei.loc[ids, "pt_root_id"].to_numpy(), n_permutations=100)
    assert ds.attrs["logistic_slope"] > 0 and ds.attrs["p_value_connection"] < 0.05


def test_cli_builds_a_sample_from_a_units_csv(tmp_path):
    from twin_explorer.cli import typer_app as app

    _units(40, seed=1).to_csv(tmp_path / "units.csv")
    res = CliRunner().invoke(app, ["anatomy-sample", "--out", str(tmp_path / "s"), "--units",
                                   str(tmp_path / "units.csv"), "--n-skeletons", "2"])
    assert res.exit_code == 0, res.output
    assert "40 units" in res.output
    assert len(Anatomy(tmp_path / "s").skeleton_ids) == 2
    res = CliRunner().invoke(app, ["anatomy-sample", "--units", str(tmp_path / "nope.csv")])
    assert res.exit_code != 0


def test_population_and_volume_like_to_like(small):
    out, units = small
    a = Anatomy(out)
    tuning = pd.DataFrame({"cc_twin": np.linspace(0, 1, len(units))}, index=units.index)
    pop = a.population(units, tuning)
    assert list(pop.index) == list(units.index)
    assert {"pref_dir", "gOSI", "cc_norm", "area", "cc_twin", "match"} <= set(pop.columns)
    assert pop.loc[pop["match"] == "none", "pref_dir"].isna().all()
    pref = np.linspace(0, 350, len(units))
    S = signal_correlation(tuning_curves(pref, np.full(len(units), 0.3), np.full(len(units), 0.2)).T)
    ds = a.like_to_like(units, pd.DataFrame(S, index=units.index, columns=units.index), n_permutations=10)
    assert 3 <= ds.attrs["n_neurons"] <= 40 and ds.attrs["n_connected_pairs"] > 0
    with pytest.raises(ValueError, match="DataFrame"):
        a.like_to_like(units, S)


def test_notebooks_say_the_sample_is_synthetic():
    from twin_explorer.paths import bundled
    from twin_explorer.ui.state import SYNTHETIC_LABEL

    texts = {p.name: p.read_text() for p in bundled("apps").glob("*.ipynb")}
    using = [name for name, text in texts.items() if "get_anatomy" in text or "AnatomyView" in text]
    assert using, "no notebook opens the anatomy"
    for name in using:
        assert SYNTHETIC_LABEL.lower() in texts[name].lower(), name
