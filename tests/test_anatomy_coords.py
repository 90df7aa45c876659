"""The minnie65 frame preset against standard_transform's published numbers, its streamline files and the
depths/layers the MICrONS-datacleaner prints for real nuclei; unit detection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin_explorer.anatomy import MINNIE65_FRAME, Anatomy, DepthFrame, detect_length_unit, voxels_to_nm
from twin_explorer.anatomy.coords import MINNIE65_LAYERS, frame_from_manifest

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
ST = REAL / "CAVEconnectome+standard_transform"
CLEANER = REAL / "MICrONS-Milano-CoLab+MICrONS-datacleaner" / "transcribed_from_notebook_output"
VOXEL = np.array([4.0, 4.0, 40.0])


def _grid_lines() -> list[np.ndarray]:
    """The streamlines of standard_transform's grid state, as voxel polylines (consecutive line annotations)."""
    state = json.loads((ST / "minnie_streamline_grid_state.json").read_text())
    assert state["dimensions"]["z"][0] == pytest.approx(4e-8)  # 4 × 4 × 40 nm voxels
    ann = state["layers"][0]["annotations"]
    lines, cur = [], [ann[0]["pointA"], ann[0]["pointB"]]
    for a in ann[1:]:
        if a["pointA"] == cur[-1]:
            cur.append(a["pointB"])
        else:
            lines.append(np.array(cur, float))
            cur = [a["pointA"], a["pointB"]]
    lines.append(np.array(cur, float))
    return lines


def test_minnie65_frame_published_numbers():
    # standard_transform 2.0 (transform version 1.4): pia point (183013, 83535, 21480) in 4×4×45 nm, 5° about z
    assert MINNIE65_FRAME.pia_point_um == pytest.approx((732.052, 334.14, 966.6))
    assert MINNIE65_FRAME.tilt_deg == -5.0 and MINNIE65_FRAME.name == "minnie65" and not MINNIE65_FRAME.center_xz
    assert MINNIE65_FRAME.depth_um(np.array(MINNIE65_FRAME.pia_point_um) * 1000) == pytest.approx(0.0, abs=1e-9)
    pts = np.array([[915264.0, 959104.0, 783720.0], [600000.0, 400000.0, 700000.0]])
    assert np.allclose(MINNIE65_FRAME.to_nm(MINNIE65_FRAME.from_nm(pts)), pts)


def test_minnie65_frame_matches_standard_transform_package():
    st = pytest.importorskip("standard_transform")  # the package itself, when installed (microns extra)
    rng = np.random.default_rng(0)
    pts = rng.uniform([300e3, 300e3, 600e3], [1500e3, 1100e3, 1100e3], size=(50, 3))
    assert np.allclose(MINNIE65_FRAME.from_nm(pts), st.minnie_transform(resolution="nm").apply(pts), atol=1e-6)


def test_streamline_grid_state_lands_on_its_depth_grid():
    """make_streamline_grid_state.py puts points at depths y_lo − 150 + 40·k (µm) and inverts them to voxels:
    our frame must give those depths back (a wrong angle or pia point breaks the 40 µm steps and their phase)."""
    lines = _grid_lines()
    assert len(lines) == 210
    depths = [MINNIE65_FRAME.from_nm(line * VOXEL)[:, 1] for line in lines]
    steps = np.concatenate([np.diff(d) for d in depths])
    assert np.allclose(steps, 40.0, atol=0.02)
    phase = np.mod(np.concatenate(depths), 40.0)
    assert np.ptp(phase) < 0.02  # every point on the same depth grid
    tilted_wrong = DepthFrame(pia_point_um=MINNIE65_FRAME.pia_point_um, tilt_deg=5.0, center_xz=False)
    wrong = np.concatenate([np.diff(tilted_wrong.from_nm(line * VOXEL)[:, 1]) for line in lines])
    assert np.abs(wrong - 40.0).max() > 0.3


def test_hand_streamline_follows_the_field_streamlines():
    """minnie_um_streamline.json (oriented µm) and the nearest field streamline of the grid, mapped by our frame,
    bend the same way with depth (a 5° error would shift x by ~50 µm over 600 µm)."""
    sl = np.asarray(json.loads((ST / "standard_transform" / "data" / "minnie_um_streamline.json").read_text()))
    assert sl.shape[1] == 3 and 0 <= sl[0, 1] < 10 and sl[-1, 1] > 700  # starts at the pia, runs through L6
    mid = sl[np.argmin(np.abs(sl[:, 1] - 400))]
    grid = [MINNIE65_FRAME.from_nm(line * VOXEL) for line in _grid_lines()]
    near = min(grid, key=lambda o: np.linalg.norm((o - mid)[:, [0, 2]], axis=1).min())

    def drift(points: np.ndarray, depth: float) -> float:
        return float(np.interp(depth, points[:, 1], points[:, 0]) - np.interp(400, points[:, 1], points[:, 0]))

    for depth in (100, 300, 500, 700):
        assert abs(drift(near, depth) - drift(sl, depth)) < 10.0
    # the inverse takes the hand streamline into the EM volume (nm), below the pia
    em_um = MINNIE65_FRAME.to_nm(sl) / 1000
    assert ((em_um > [0, 0, 500]) & (em_um < [2000, 1500, 1200])).all()


def test_real_nucleus_depth_and_layer_as_published():
    """Nucleus 373879: nucleus_detection_v0 gives [228816, 239776, 19593] voxels; the MICrONS-datacleaner prints
    (828.19, 638.55, 783.72) µm after standard_transform, layer L6."""
    aligned = MINNIE65_FRAME.from_nm(voxels_to_nm([228816, 239776, 19593]))
    assert aligned == pytest.approx([828.189723, 638.553801, 783.72], abs=1e-3)
    assert MINNIE65_FRAME.layer_of(aligned[1]) == "L6"
    layers = pd.read_csv(CLEANER / "basic-tutorial__cell11.csv")
    ours = {n: (t, b) for n, t, b in MINNIE65_LAYERS}
    for row in layers.itertuples():
        assert ours[row.layer][1] == pytest.approx(row.y_end)


@pytest.mark.parametrize("cell", [22, 24, 26, 44, 47, 49, 51, 72, 77])
def test_datacleaner_layers_follow_from_depth(cell):
    df = pd.read_csv(CLEANER / f"basic-tutorial__cell{cell}.csv")
    df = df[df["layer"].isin([n for n, _, _ in MINNIE65_LAYERS])]
    assert len(df) > 0
    got = MINNIE65_FRAME.layer_of(df["pt_position_y"].to_numpy(float))  # their y is depth below pia, µm
    assert (got == df["layer"].to_numpy()).all()


def test_folder_without_manifest_uses_minnie65_and_manifest_presets(tmp_path):
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"id": [373879], "pt_root_id": [864691136090135607], "pt_position": ["[228816, 239776, 19593]"]}
                 ).to_csv(tmp_path / "tables" / "nucleus_detection_v0.csv", index=False)
    a = Anatomy(tmp_path)
    assert a.depth_frame.name == "minnie65"
    assert a.nuclei.loc[373879, "depth_um"] == pytest.approx(638.554, abs=1e-3)
    assert a.nuclei.loc[373879, "layer"] == "L6"
    assert frame_from_manifest("minnie65") is MINNIE65_FRAME
    assert frame_from_manifest({"preset": "minnie65"}) is MINNIE65_FRAME
    assert frame_from_manifest({"pia_point_um": [1, 2, 3]}).pia_point_um == (1, 2, 3)
    with pytest.raises(ValueError, match="presets: minnie65"):
        frame_from_manifest("v1dd")


def test_length_unit_detection():
    assert detect_length_unit([[1365.12, 763.456, 812.6]]) == "um"
    assert detect_length_unit([[1365120.0, 763456.0, 812600.0]]) == "nm"
    with pytest.raises(ValueError, match="cannot tell nm from µm"):
        detect_length_unit([[9000.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="no finite coordinates"):
        detect_length_unit([[np.nan, np.nan, np.nan]])
