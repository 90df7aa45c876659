"""Where twins come from (twin_explorer.twins): the registry, the demo-twin format with typed metadata, the
ground truth behind a twin trained on a synthetic mouse, and the model answering questions about itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from twin_explorer.engine.contract import TwinLike, TwinMetadata
from twin_explorer.engine.twin import Twin
from twin_explorer.model import Network, NetworkConfig
from twin_explorer.store import BytesLRU
from twin_explorer.synthetic import SyntheticMouse
from twin_explorer.twins import demo_available, load_twin, read_metadata, truth_provider
from twin_explorer.twins.demo import load_demo_twin, save_network

TINY = NetworkConfig(units=12, streams=1, retina_shape=(16, 24), retina_degrees=60.0, perspective_features=4,
                     perspective_layers=1, modulation_features=4, ff_channels=(4, 8), ff_groups=(1, 2),
                     ff_pools=(2, 1), ff_out=8, rec_input=8, rec_hidden=8, rec_common=8, rec_groups=2, rec_out=8)
SPEC = {"mouse_seed": 3, "n_neurons": 12, "n_clips": 2}


@pytest.fixture(scope="module")
def mouse() -> SyntheticMouse:
    return SyntheticMouse(seed=3, n_neurons=12)


@pytest.fixture
def trained_folder(tmp_path, mouse):
    torch.manual_seed(0)
    net = Network(TINY)
    with torch.no_grad():
        net.readout.position.mu.normal_(0, 0.7)
    metadata = {"id": "tiny", "trained_on": SPEC, "training": {"steps": 2}, "cc_norm": list(np.linspace(0, 1, 12))}
    return save_network(net, tmp_path / "tiny", mouse.units, metadata), net, metadata


def test_trained_twin_metadata_is_typed_and_the_file_format_is_kept(trained_folder):
    folder, _, metadata = trained_folder
    assert json.loads((folder / "config.json").read_text())["metadata"] == metadata  # the format as before
    twin = load_demo_twin(folder)
    assert isinstance(twin, TwinLike) and twin.id == "tiny"
    meta = twin.metadata
    assert isinstance(meta, TwinMetadata) and meta.kind == "demo" and meta.precision == "float32"
    assert meta.trained_on == SPEC and "trained_on" not in meta.extra
    assert meta.extra["training"] == {"steps": 2} and meta.extra["id"] == "tiny"
    assert len(meta.model_id) == 16 and meta.model_id == read_metadata(folder).model_id
    assert read_metadata(folder).trained_on == SPEC


def test_twin_trained_on_a_synthetic_mouse_finds_its_truth(trained_folder, mouse):
    folder, _, _ = trained_folder
    twin = load_demo_twin(folder)
    truth = twin.truth()
    assert isinstance(truth, pd.DataFrame)
    pd.testing.assert_frame_equal(truth, mouse.truth().loc[twin.units.index])


def test_twins_of_other_origin_have_no_truth(trained_folder):
    folder, net, metadata = trained_folder
    real = save_network(net, folder.parent / "real", pd.read_csv(folder / "units.csv", index_col="readout_id"),
                        {k: v for k, v in metadata.items() if k != "trained_on"})
    twin = load_demo_twin(real)
    assert twin.metadata.trained_on is None and twin.truth() is None
    assert Twin(Network(TINY)).truth() is None
    assert truth_provider({"n_neurons": 12}, pd.RangeIndex(12)) is None  # not a synthetic mouse: no seed


def test_microns_twin_metadata(fnn_fixtures):
    twin = load_twin("microns", session=0, scan_idx=0, directory=fnn_fixtures / "bundle")
    assert twin.metadata.kind == "microns" and twin.metadata.model_id == "microns-0-0"
    assert twin.metadata.extra["session"] == 0 and twin.truth() is None


def test_synthetic_mouse_is_a_twin_with_its_own_truth(mouse):
    twin = load_twin("synthetic", seed=3, n_neurons=12)
    assert isinstance(twin, TwinLike)
    assert twin.metadata.kind == "synthetic" and twin.metadata.trained_on is None
    assert twin.metadata.extra["n_neurons"] == 12
    pd.testing.assert_frame_equal(twin.truth(), mouse.truth())


def test_default_twin_is_the_demo_when_present():
    twin = load_twin()
    assert twin.metadata.kind == ("demo" if demo_available() else "synthetic")


def test_metadata_must_be_typed():
    with pytest.raises(ValueError, match="TwinMetadata"):
        Twin(Network(TINY), metadata={"source": "a dict"})
    with pytest.raises(ValueError, match="callable"):
        Twin(Network(TINY), truth=pd.DataFrame())
    twin = Twin(Network(TINY), precision="float32", metadata=TwinMetadata(kind="custom", precision="float16"))
    assert twin.metadata.precision == "float32"  # what predictions really run in


def test_the_model_answers_questions_about_itself(trained_folder):
    _, net, _ = trained_folder
    positions = net.readout_positions()
    assert positions.shape == (12, 2) and positions.dtype == np.float64
    np.testing.assert_array_equal(positions, np.tanh(net.state_dict()["readout.position.mu"].numpy().astype(float)))
    assert net.retina_degrees == 60.0 and net.retina_shape == (16, 24)
    center, angle = net.monitor_pose()
    np.testing.assert_array_equal(center, net.state_dict()["perspective.monitor.center"].numpy().astype(float))
    np.testing.assert_array_equal(angle, net.state_dict()["perspective.monitor.angle"].numpy().astype(float))
    assert net.eye_angles().shape == (3,)
    twin = Twin(net)
    np.testing.assert_array_equal(twin.readout_positions(), positions)
    assert twin.retina_degrees == 60.0


def test_engine_cache_is_the_store_lru_keyed_by_content(trained_folder):
    _, net, _ = trained_folder
    twin = Twin(net, cache_mb=1)
    assert isinstance(twin.cache, BytesLRU) and twin.cache.max_bytes == 2**20
    video = np.full((4, 144, 256), 128, np.uint8)
    first = twin.predict(video)
    hits = twin.cache.hits
    np.testing.assert_array_equal(twin.predict(video.copy()), first)  # equal content, another array: a hit
    assert twin.cache.hits == hits + 1
    uncached = Twin(net, cache_mb=0)  # the benchmark's setting: nothing is kept
    uncached.predict(video)
    assert len(uncached.cache) == 0


def test_unknown_twin_is_refused_with_the_names():
    with pytest.raises(ValueError, match="accepted: demo, synthetic, microns"):
        load_twin("rat")
