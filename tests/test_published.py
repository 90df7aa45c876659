"""Published digital-twin properties: the reader on the real transcribed layout, the downloader's checksum record,
and the comparison of a twin with a published-layout folder made from that twin (agreement), then with planted
disagreements; the CLI on a full-size-layout bundle and on the demo twin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_explorer.cli import main
from twin_explorer.experiments.compare import circular_error, compare_properties, twin_properties
from twin_explorer.experiments.published import FILES, download_properties, read_properties, write_properties

pytestmark = pytest.mark.usefixtures("one_torch_thread")


REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real" / "vijk777+fnn" / \
    "transcribed_from_notebook_output"
TUNING = dict(directions=8, duration_s=0.5, show_progress=False)
UNITS = list(range(30))



@pytest.fixture(scope="module")
def demo():
    from twin_explorer.twins import load_twin

    return load_twin("demo")


@pytest.fixture(scope="module")
def demo_published(demo):
    """The demo twin's own properties (tuning + readout) in the published columns."""
    return twin_properties(demo, UNITS, **TUNING)


def real_layout(folder: Path) -> Path:
    """A folder in the published layout built from the transcribed head/tail rows (readout locations invented:
    they are not in the transcripts)."""
    for part in ("anatomy", "performance", "ori_dir_tuning", "readout"):
        table = pd.read_csv(REAL / f"{part}__units.head_tail.csv").drop(columns="row_index_in_original_file")
        (folder / part).mkdir(parents=True)
        table.to_csv(folder / part / "units.csv", index=False)
        if part == "readout":
            np.save(folder / part / "readout_locations.npy", np.linspace(-1, 1, 2 * len(table)).reshape(-1, 2))
    return folder


def test_reads_the_real_layout(tmp_path):
    folder = real_layout(tmp_path)
    allp = read_properties(folder)
    assert {"readout_x", "cc_abs", "gOSI", "pref_dir", "unit_z", "brain_area"} <= set(allp.columns)
    row = allp[(allp.session == 4) & (allp.scan_idx == 7) & (allp.unit_id == 4)].iloc[0]
    assert row.pref_dir == pytest.approx(194.86753) and row.pref_ori == pytest.approx(14.86753)  # degrees
    assert row.cc_abs == pytest.approx(0.188799) and row.brain_area == "LM"
    s85 = read_properties(folder, scan=(8, 5))
    assert s85.unit_id.tolist() == [1, 2, 3, 4, 5, 10570, 10571, 10572, 10574, 10575]
    assert s85.row.tolist() == list(range(10)) and s85.readout_x.notna().all()
    with pytest.raises(ValueError, match="scan 7-4 is not in"):
        read_properties(folder, scan=(7, 4))


def test_reader_refuses_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_properties(tmp_path / "nope")
    with pytest.raises(ValueError, match="holds none of"):
        read_properties(tmp_path)
    n = 30
    table = pd.DataFrame({"session": 8, "scan_idx": 5, "unit_id": np.arange(n), "OSI": 0.1, "DSI": 0.1, "gOSI": 0.1,
                          "gDSI": 0.1, "pref_ori": 1.0, "pref_dir": np.linspace(0, 6, n)})
    write_properties(tmp_path / "rad", table)
    with pytest.raises(ValueError, match="looks like radians"):
        read_properties(tmp_path / "rad")
    write_properties(tmp_path / "ro", table.assign(readout_x=0.0, readout_y=0.0, pref_dir=np.linspace(0, 350, n)))
    np.save(tmp_path / "ro" / "readout" / "readout_locations.npy", np.zeros((n - 1, 2)))
    with pytest.raises(ValueError, match=r"expected \(30, 2\)"):
        read_properties(tmp_path / "ro")


def test_circular_error_wraps():
    np.testing.assert_allclose(circular_error([350, 10, 180, 90], [10, 350, 0, 90]), [-20, 20, 180, 0])
    np.testing.assert_allclose(circular_error([170, 5], [10, 175], period=180), [-20, 10])


def test_agreement_with_itself_and_planted_disagreement(demo, demo_published, tmp_path):
    rng = np.random.default_rng(0)
    published = demo_published.copy()
    published["pref_dir"] = np.mod(published["pref_dir"] + rng.normal(0, 3, len(published)), 360)
    published["gOSI"] += rng.normal(0, 0.01, len(published))
    published["readout_x"] += rng.normal(0, 0.005, len(published))
    write_properties(tmp_path / "good", published)
    good = compare_properties(demo, read_properties(tmp_path / "good", scan=(1, 1)), units=UNITS, **TUNING)
    metrics = good.table.set_index("metric")
    assert good.agrees, good.format()
    assert metrics.loc["pref_dir_error_tuned", "value"] < 6 and metrics.loc["r_gOSI", "value"] > 0.95
    assert metrics.loc["readout_distance", "value"] < 0.01 and len(good.units) == len(UNITS)

    planted = published.copy()
    tuned = planted["gOSI"] >= 0.1
    planted.loc[tuned, "pref_dir"] = np.mod(planted.loc[tuned, "pref_dir"] + 90, 360)  # wrong by 90°
    planted["readout_y"] = -planted["readout_y"]  # the (−1, −1) bottom-left misreading
    write_properties(tmp_path / "bad", planted)
    bad = compare_properties(demo, read_properties(tmp_path / "bad"), units=UNITS, **TUNING)
    flags = bad.table.set_index("metric")["agrees"]
    assert not bad.agrees and "DISAGREES" in bad.format()
    assert not flags["pref_dir_error_tuned"] and not flags["r_readout_y"]
    assert flags["r_gOSI"] and flags["r_readout_x"]  # what was not planted still agrees


def test_cli_on_a_full_size_layout_bundle(tmp_path, capsys):
    """Readout positions only (--no-tuning): the full-size core runs too slowly for a unit test."""
    from twin_explorer.twins import load_twin, make_bundle

    bundle = make_bundle(tmp_path / "bundle", scans="8-5", units=12, seed=3)
    twin = load_twin("microns", session=8, scan_idx=5, directory=bundle)
    props = twin_properties(twin, tuning=False)
    assert len(props) == 12 and props.readout_x.between(-1, 1).all()
    write_properties(tmp_path / "props", props)
    args = ["compare-properties", "--scan", "8-5", "--properties", str(tmp_path / "props"), "--bundle", str(bundle),
            "--no-tuning", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    text = capsys.readouterr().out
    assert exit_.value.code == 0, text
    assert "12 units matched" in text and "agreement" in text
    table = pd.read_csv(tmp_path / "out" / "comparison.csv").set_index("metric")
    assert table.loc["readout_distance", "value"] < 1e-6 and table.loc["r_readout_x", "value"] > 0.999
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["scan"] == [8, 5]
    for name in ("comparison.html", "comparison.png", "units.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 1000 or name == "units.csv"
    write_properties(tmp_path / "moved", props.assign(readout_x=props.readout_x.sample(frac=1, random_state=0).values))
    with pytest.raises(SystemExit) as exit_:
        main([*args[:4], str(tmp_path / "moved"), *args[5:-1], str(tmp_path / "out2")])
    assert exit_.value.code == 1 and "DISAGREES" in capsys.readouterr().out


def test_cli_runs_the_tuning_on_the_demo_twin(demo_published, tmp_path, capsys):
    write_properties(tmp_path / "props", demo_published)
    with pytest.raises(SystemExit) as exit_:
        main(["compare-properties", "--twin", "demo", "--scan", "1-1", "--properties", str(tmp_path / "props"),
              "--units", ",".join(map(str, UNITS)), "--directions", "8", "--duration", "0.5", "--no-png",
              "--out", str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert exit_.value.code == 0, text
    assert "pref_dir_error_tuned" in text and not (tmp_path / "out" / "comparison.png").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["compare-properties", "--scan", "8x5", "--properties", str(tmp_path / "props")])
    assert exit_.value.code != 0 and "session-scan_idx" in capsys.readouterr().err


def test_download_records_a_checksum_on_first_use(tmp_path, monkeypatch):
    import pooch

    source = tmp_path / "source.csv"
    source.write_text("session,scan_idx,unit_id\n8,5,1\n")
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash))
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_bytes(source.read_bytes())
        if known_hash and pooch.file_hash(str(target)) != known_hash.split(":")[1]:
            raise ValueError("hash mismatch")
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    folder = download_properties(tmp_path / "props", files=["performance/units.csv"], progress=False)
    assert calls[0] == ("https://bossdb-open-data.s3.amazonaws.com/iarpa_microns/minnie/functional_data/"
                        "digital_twin_properties/v2/performance/units.csv", None)  # no published checksum
    record = json.loads((folder / "checksums.json").read_text())
    assert record["performance/units.csv"] == pooch.file_hash(str(source))
    (folder / "performance" / "units.csv").write_text("tampered\n")
    with pytest.raises(ValueError, match="recorded at its first download"):
        download_properties(folder, files=["performance/units.csv"], progress=False)
    assert calls[-1][1] == f"sha256:{record['performance/units.csv']}"
    with pytest.raises(ValueError, match="unknown property file"):
        download_properties(folder, files=["responses/responses.npy"])

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(ValueError, match="Offline"):
        download_properties(tmp_path / "other", files=FILES[:1], progress=False)
