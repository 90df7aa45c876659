"""Loading the published bundle layout, and refusing bad, foreign or malicious files."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from twin_explorer import paths
from twin_explorer.twins import microns as bundle
from twin_explorer.twins.microns import BundleError, load_microns


@pytest.fixture
def bundle_copy(fnn_fixtures, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(fnn_fixtures / "bundle", dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def test_bundle_loads_and_matches_reference(fnn_fixtures):
    twin = load_microns(0, 0, directory=fnn_fixtures / "bundle")
    g = np.load(fnn_fixtures / "golden_io.npz")
    out = twin.predict(g["stimuli"], g["perspectives"], g["modulations"])
    np.testing.assert_allclose(out, g["response_full"], rtol=1e-5, atol=1e-6)
    assert list(twin.units["unit_id"]) == [3, 7, 12, 13, 21, 34, 35, 58]
    assert list(twin.units.index) == list(range(8))
    assert twin.id == "microns-0-0"


def test_load_twin_microns_is_one_argument_away(fnn_fixtures):
    from twin_explorer import load_twin

    twin = load_twin("microns", session=0, scan_idx=0, directory=fnn_fixtures / "bundle")
    assert twin.n_units == 8
    with pytest.raises(ValueError, match="session= and scan_idx="):
        load_twin("microns")
    with pytest.raises(ValueError, match="unknown twin"):
        load_twin("rat")


def test_missing_directory_and_files(bundle_copy, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_microns(0, 0, directory=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match="no scans.csv"):
        load_microns(0, 0, directory=empty)
    (bundle_copy / "params_0_0.pt").unlink()
    with pytest.raises(BundleError, match="missing bundle file .*params_0_0.pt"):
        load_microns(0, 0, directory=bundle_copy)


def test_unknown_scan_lists_available(bundle_copy):
    with pytest.raises(BundleError, match=r"available: \(0, 0\)"):
        load_microns(8, 5, directory=bundle_copy)


def test_unit_count_mismatch(bundle_copy):
    scans = bundle_copy / "scans.csv"
    scans.write_text(scans.read_text().replace("0,0,8,", "0,0,9,"))
    with pytest.raises(BundleError, match="9 units but its weights have 8"):
        load_microns(0, 0, directory=bundle_copy)


def test_missing_and_unexpected_keys(bundle_copy):
    path = bundle_copy / "params_0_0.pt"
    state = torch.load(path, weights_only=True)
    state.pop("readout.biases.3")
    state["readout.extra"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(BundleError, match=r"missing keys \['readout.biases.3'\].*unexpected keys \['readout.extra'\]"):
        load_microns(0, 0, directory=bundle_copy)


def test_wrong_shape_is_foreign(bundle_copy):
    path = bundle_copy / "params_0_0.pt"
    state = torch.load(path, weights_only=True)
    state["modulation.mlp.linears.0.weights.0"] = torch.zeros(3, 3)
    torch.save(state, path)
    with pytest.raises(BundleError, match="do not fit"):
        load_microns(0, 0, directory=bundle_copy)


def test_truncated_and_corrupt_files(bundle_copy):
    path = bundle_copy / "params_0_0.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="corrupt or truncated"):
        load_microns(0, 0, directory=bundle_copy)
    path.write_bytes(b"this is not a weight file at all")
    with pytest.raises(BundleError, match="params_0_0.pt"):
        load_microns(0, 0, directory=bundle_copy)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(bundle_copy, tmp_path):
    marker = tmp_path / "pwned"
    path = bundle_copy / "params_0_0.pt"
    state = torch.load(path, weights_only=True)
    state["readout.biases.0"] = _Exploit(marker)
    with open(path, "wb") as f:  # a legacy (non-zip) pickle the way torch.save would write an object
        pickle.dump(state, f)
    with pytest.raises(BundleError, match="refused|could not be read"):
        load_microns(0, 0, directory=bundle_copy)
    assert not marker.exists()
    torch.save({"readout.biases.0": _Exploit(marker)}, path)  # the same inside torch's zip format
    with pytest.raises(BundleError, match="refused|could not be read"):
        load_microns(0, 0, directory=bundle_copy)
    assert not marker.exists()


def test_cache_dir_resolution(monkeypatch, tmp_path):
    assert bundle.bundle_dir(tmp_path) == tmp_path
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "c"))
    assert bundle.bundle_dir() == tmp_path / "c" / "microns"
    monkeypatch.delenv(paths.CACHE_ENV)
    assert "twin_explorer" in str(bundle.bundle_dir())


def test_download_offline_message_and_manual_archive(monkeypatch, tmp_path, fnn_fixtures):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(BundleError) as info:
        bundle.download_microns(tmp_path)
    msg = str(info.value)
    assert "network unreachable" in msg and bundle.ARCHIVE_NAME in msg and str(tmp_path) in msg
    # an archive placed by hand is unzipped flat and then loads
    archive = tmp_path / "manual.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (fnn_fixtures / "bundle").iterdir():
            zf.write(f, f"export_dir/{f.name}")
    bundle.extract(archive, tmp_path)
    assert bundle.available_scans(tmp_path) == [(0, 0)]
    assert bundle.download_microns(tmp_path) == tmp_path  # already extracted: no download attempted
    (tmp_path / "bad.zip").write_bytes(b"nope")
    with pytest.raises(BundleError, match="not a valid zip"):
        bundle.extract(tmp_path / "bad.zip", tmp_path)


def test_download_checks_md5(monkeypatch, tmp_path):
    import pooch

    calls = {}

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.update(url=url, known_hash=known_hash)
        raise ValueError("MD5 hash of downloaded file does not match the known hash")

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(BundleError, match="md5 check"):
        bundle.download_microns(tmp_path)
    assert calls == {"url": bundle.ARCHIVE_URL, "known_hash": "md5:58fcac4b31ad2902c81e339432cec787"}
