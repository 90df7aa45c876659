"""Neuroglancer links: segmentation by materialization version, centred on the nucleus, short URLs, state server."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import neuroglancer_link, neuroglancer_state, parse_neuroglancer_url
from twin_explorer.anatomy.neuroglancer import (CAVE_VIEWER, MAX_URL_BYTES, MINNIE65_GRAPHENE, NEUROGLANCER_HOST,
                                                STATIC_SEGMENTATIONS, cave_state_uploader,
                                                neuroglancer_link_for_neuron, segmentation_for_version)

ROOT = 864691135101289504


def _layers(state: dict) -> dict:
    return {layer["type"]: layer for layer in state["layers"]}


def _synapses(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": rng.choice(10**9, n, replace=False) + 10**8,
                         "x_nm": rng.uniform(7e5, 9e5, n), "y_nm": rng.uniform(4e5, 8e5, n),
                         "z_nm": rng.uniform(8e5, 9e5, n), "direction": rng.choice(["input", "output"], n),
                         "partner_root_id": 864691135000000000 + rng.choice(10**9, n)})


@pytest.mark.parametrize("version, source, host", [
    (1300, "seg_m1300", NEUROGLANCER_HOST), (943, "seg_m943", NEUROGLANCER_HOST),
    (343, "seg_m343", NEUROGLANCER_HOST), (117, "minnie65/seg", NEUROGLANCER_HOST),
    (661, "graphene://", CAVE_VIEWER), (1507, "graphene://", CAVE_VIEWER), (None, "graphene://", CAVE_VIEWER)])
def test_segmentation_follows_the_version(version, source, host):
    src, h = segmentation_for_version(version)
    assert src.endswith(source) or src.startswith(source)
    assert h == host
    url = neuroglancer_link([ROOT], version=version, position_nm=[800_000, 400_000, 880_000])
    assert url.startswith(host + "/#!")
    seg = _layers(parse_neuroglancer_url(url))["segmentation"]
    assert seg["source"] == src and seg["segments"] == [str(ROOT)]
    if version is not None:
        assert seg["name"] == f"segmentation v{version}"
    assert STATIC_SEGMENTATIONS[1300].startswith("precomputed://gs://iarpa_microns/minnie/minnie65/")
    assert MINNIE65_GRAPHENE.endswith("minnie65_public")


def test_bad_version_is_refused():
    with pytest.raises(ValueError, match="version"):
        segmentation_for_version("latest")
    with pytest.raises(ValueError, match="positive"):
        segmentation_for_version(0)


def test_centred_on_the_nucleus_with_or_without_synapses():
    nucleus_nm = [729_600.0, 709_568.0, 875_040.0]
    state = neuroglancer_state([ROOT], position_nm=nucleus_nm, version=1300)
    assert state["position"] == [182_400.0, 177_392.0, 21_876.0]  # 4×4×40 nm voxels
    assert _layers(state)["annotation"]["annotations"] == []
    with_syn = neuroglancer_state([ROOT], _synapses(5), position_nm=nucleus_nm, version=1300)
    assert with_syn["position"] == state["position"]  # the nucleus, not the first synapse


def test_long_synapse_lists_are_capped_to_the_url_budget():
    syn = _synapses(3000)
    url = neuroglancer_link([ROOT], syn, version=1300, position_nm=[8e5, 6e5, 8.5e5])
    assert len(url.encode()) <= MAX_URL_BYTES
    state = parse_neuroglancer_url(url)
    ann = _layers(state)["annotation"]
    kept = len(ann["annotations"])
    assert 20 <= kept < 3000 and ann["name"] == f"synapses ({kept} of 3000)"
    # the kept points are real synapses, converted to voxels
    vox = np.stack([syn["x_nm"] / 4, syn["y_nm"] / 4, syn["z_nm"] / 40], axis=1)
    by_id = dict(zip(syn["id"].astype(str), vox))
    for a in ann["annotations"]:
        assert np.allclose(a["point"], by_id[a["id"]], atol=0.06)
    # one more annotation would not have fit
    longer = neuroglancer_state([ROOT], syn, version=1300, position_nm=[8e5, 6e5, 8.5e5], max_annotations=kept + 1)
    assert len(json.dumps(longer, separators=(",", ":"))) > len(json.dumps(state, separators=(",", ":")))
    assert len(neuroglancer_link([ROOT], syn, version=1300, max_url_bytes=None).encode()) > 50_000
    with pytest.raises(ValueError, match="state server"):
        neuroglancer_link([ROOT], syn, version=1300, max_url_bytes=300)
    small = neuroglancer_link([ROOT], syn, version=1300, max_url_bytes=2000)
    assert len(small.encode()) <= 2000


def test_state_server_link():
    stored = {}

    class FakeState:
        def upload_state_json(self, state):
            stored[42] = json.loads(json.dumps(state))
            return 42

        def build_neuroglancer_url(self, state_id, ngl_url=None):
            return f"{ngl_url}/#!middleauth+https://global.daf-apis.com/nglstate/api/v1/{state_id}"

    uploader = cave_state_uploader(SimpleNamespace(state=FakeState()))
    syn = _synapses(3000)
    url = neuroglancer_link([ROOT], syn, version=1507, state_uploader=uploader)
    assert url == f"{CAVE_VIEWER}/#!middleauth+https://global.daf-apis.com/nglstate/api/v1/42"
    assert len(_layers(stored[42])["annotation"]["annotations"]) == 3000  # nothing dropped on a state server
    with pytest.raises(ValueError, match="state server"):
        parse_neuroglancer_url(url)
    with pytest.raises(ValueError, match="CAVEclient"):
        cave_state_uploader(object())
    with pytest.raises(ValueError, match="http"):
        neuroglancer_link([ROOT], state_uploader=lambda s: "not a link")


def test_link_for_a_neuron_of_an_anatomy_folder():
    nuclei = pd.DataFrame({"pt_root_id": [ROOT], "x_nm": [729_600.0], "y_nm": [709_568.0], "z_nm": [875_040.0]},
                          index=pd.Index([292965], name="nucleus_id"))
    real = SimpleNamespace(folder="x", manifest={"materialization_version": 943}, nuclei=nuclei,
                           synapses=lambda nid: _synapses(4))
    state = parse_neuroglancer_url(neuroglancer_link_for_neuron(real, 292965))
    assert _layers(state)["segmentation"]["source"].endswith("seg_m943")
    assert state["position"] == [182_400.0, 177_392.0, 21_876.0]
    assert len(_layers(state)["annotation"]["annotations"]) == 4
    synthetic = SimpleNamespace(folder="sample", manifest={}, nuclei=nuclei, synapses=real.synapses)
    with pytest.raises(ValueError, match="materialization_version"):
        neuroglancer_link_for_neuron(synthetic, 292965)


def test_unit_command_gives_no_real_em_link_for_the_synthetic_sample():
    from typer.testing import CliRunner

    from twin_explorer.cli import typer_app

    res = CliRunner().invoke(typer_app, ["anatomy-unit", "0"])
    assert res.exit_code == 0, res.output
    assert "neuroglancer: none" in res.output and "materialization_version" in res.output
    assert "https://" not in res.output
