"""The full-size bundle maker: published layout and shapes, loadable like the real download, without the download."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import twin_explorer
from twin_explorer.twins.fullsize import (EXACT_UNIT_COUNTS, PUBLISHED_UNITS, TOTAL_PUBLISHED_UNITS, bundle_manifest,
                                          make_bundle, parse_scans)
from twin_explorer.twins.microns import PUBLISHED_SCANS, available_scans


def test_published_unit_counts_keep_every_known_total():
    assert list(PUBLISHED_UNITS) == PUBLISHED_SCANS and len(PUBLISHED_SCANS) == 13
    assert sum(PUBLISHED_UNITS.values()) == TOTAL_PUBLISHED_UNITS == 104_171
    assert PUBLISHED_UNITS[(8, 5)] == 9_941 and PUBLISHED_UNITS[(4, 7)] == 7_493
    assert all(PUBLISHED_UNITS[s] == n for s, n in EXACT_UNIT_COUNTS.items())
    # rows of the properties' readout/units.csv: 8-5 starts at row 73,272, the 9-x scans follow it
    order = list(PUBLISHED_UNITS.values())
    assert sum(order[:9]) == 73_272 and sum(order[10:]) == 20_958


def test_manifest_matches_the_fixture_and_published_sizes_without_allocating(fnn_fixtures):
    """Shapes for U = 8 equal the reference's manifest key for key; for every published scan the parameter count
    follows the spec's 4,538,229 + 522·U (computed on the meta device: nothing of 104,171 units is allocated)."""
    reference = json.loads((fnn_fixtures / "state_dict_manifest_u8.json").read_text())
    entries = reference if isinstance(reference, dict) else {e["key"]: e for e in reference}
    ours = bundle_manifest(8)
    assert set(ours) == set(entries)
    for key, (shape, _) in ours.items():
        assert list(shape) == list(entries[key]["shape"]), key
    total = 0
    for scan, n in PUBLISHED_UNITS.items():
        manifest = bundle_manifest(n)
        assert manifest["readout.feature.weights.3"][0] == (n, 1, 128)
        assert manifest["readout.position.mu"][0] == (n, 2)
        params = sum(int(np.prod(s)) for k, (s, _) in manifest.items()
                     if k not in ("core.recurrent.proj_x.0.mask", "core.recurrent.proj_x.0.zero",
                                  "perspective.retina.grid") and not k.startswith("perspective.monitor_pixel."))
        assert params == 4_538_229 + 522 * n, scan
        total += manifest["readout.position.mu"][0][0]
    assert total == 104_171


def test_made_bundle_loads_through_load_twin_and_predicts(tmp_path):
    folder = make_bundle(tmp_path / "bundle", scans="4-7,8-5", units={(4, 7): 5, (8, 5): 7}, seed=3)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "params_4_7.pt", "params_8_5.pt", "params_core.pt", "scans.csv", "units.csv"]
    core = torch.load(folder / "params_core.pt", weights_only=True)
    scan = torch.load(folder / "params_8_5.pt", weights_only=True)
    assert len(core) == 250 and all(k.startswith("core.") for k in core)
    assert len(scan) == 88 and not any(k.startswith("core.") for k in scan)
    scans = pd.read_csv(folder / "scans.csv")
    assert list(scans.columns) == ["session", "scan_idx", "units", "data_id"] and list(scans["units"]) == [5, 7]
    units = pd.read_csv(folder / "units.csv")
    assert list(units.columns) == ["session", "scan_idx", "unit_id", "readout_id"]
    assert available_scans(folder) == [(4, 7), (8, 5)]

    twin = twin_explorer.load_twin("microns", session=8, scan_idx=5, directory=folder)
    assert twin.n_units == 7 and twin.metadata.kind == "microns" and twin.metadata.precision == "float32"
    video = np.random.default_rng(0).integers(0, 256, (6, 144, 256), dtype=np.uint8)
    out = twin.predict(video)
    assert out.shape == (6, 7) and np.all(np.isfinite(out)) and np.all(out > 0)
    assert out.std(axis=1).min() > 1e-3  # the readouts differ: random weights reach every unit
    other = twin_explorer.load_twin("microns", session=4, scan_idx=7, directory=folder)
    # one shared core: the scan files differ, the core weights are the same tensors
    assert torch.equal(other.network.core.recurrent.conv.weights[0], twin.network.core.recurrent.conv.weights[0])


def test_published_count_is_the_default_and_bad_scans_are_refused(tmp_path):
    assert parse_scans(None) == [(8, 5)] and len(parse_scans("all")) == 13
    assert parse_scans([(4, 7), "9-6"]) == [(4, 7), (9, 6)]
    with pytest.raises(ValueError, match="session-scan_idx"):
        parse_scans("8_5")
    with pytest.raises(ValueError, match="needs a positive unit count"):
        make_bundle(tmp_path, scans="1-1")
    folder = make_bundle(tmp_path / "b", scans="8-5", units=None, seed=0)
    assert pd.read_csv(folder / "scans.csv")["units"].tolist() == [9_941]
    assert len(pd.read_csv(folder / "units.csv")) == 9_941
