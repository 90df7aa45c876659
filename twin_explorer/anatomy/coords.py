"""Coordinate frames of the MICrONS volume: voxels (4 × 4 × 40 nm) ↔ nm ↔ µm, and a pia-aligned depth frame.

EM annotation positions (``pt_position``) are in voxels; mesh and skeleton vertices are in nm. In the EM frame
y grows with cortical depth. :class:`DepthFrame` turns nm into (x_um, depth_um, z_um) with depth measured from
the pia (positive = deeper) and names the cortical layer of a depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: minnie65 annotation voxel size in nm (x, y, z)
VOXEL_RESOLUTION_NM: tuple[float, float, float] = (4.0, 4.0, 40.0)

#: approximate pia-aligned layer boundaries of mouse V1 in the MICrONS volume (µm below the pia)
DEFAULT_LAYERS: tuple[tuple[str, float, float], ...] = (
    ("L1", 0.0, 100.0),
    ("L2/3", 100.0, 330.0),
    ("L4", 330.0, 440.0),
    ("L5", 440.0, 650.0),
    ("L6", 650.0, 900.0),
    ("WM", 900.0, 2000.0),
)


def _as_points(xyz: object, name: str = "xyz") -> np.ndarray:
    arr = np.asarray(xyz, dtype=float)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must have 3 coordinates (x, y, z) on its last axis, got shape {arr.shape}")
    return arr


def _resolution(resolution: object) -> np.ndarray:
    res = np.asarray(resolution, dtype=float)
    if res.shape != (3,) or np.any(res <= 0) or not np.all(np.isfinite(res)):
        raise ValueError(f"resolution must be 3 positive numbers (nm per voxel in x, y, z), got {resolution!r}")
    return res


def voxels_to_nm(xyz: object, resolution: object = VOXEL_RESOLUTION_NM) -> np.ndarray:
    """Voxel coordinates [..., 3] -> nm."""
    return _as_points(xyz) * _resolution(resolution)


def nm_to_voxels(xyz: object, resolution: object = VOXEL_RESOLUTION_NM, round: bool = False) -> np.ndarray:
    """nm [..., 3] -> voxel coordinates (rounded to integers when ``round``)."""
    vox = _as_points(xyz) / _resolution(resolution)
    return np.rint(vox).astype(np.int64) if round else vox


def nm_to_um(xyz: object) -> np.ndarray:
    return np.asarray(xyz, dtype=float) / 1000.0


def um_to_nm(xyz: object) -> np.ndarray:
    return np.asarray(xyz, dtype=float) * 1000.0


def voxels_to_um(xyz: object, resolution: object = VOXEL_RESOLUTION_NM) -> np.ndarray:
    return nm_to_um(voxels_to_nm(xyz, resolution))


def um_to_voxels(xyz: object, resolution: object = VOXEL_RESOLUTION_NM, round: bool = False) -> np.ndarray:
    return nm_to_voxels(um_to_nm(xyz), resolution, round=round)


@dataclass(frozen=True)
class DepthFrame:
    """A pia-aligned frame: rotate the EM x–y plane so the pia is horizontal, then measure depth from it.

    ``pia_point_um`` is a point on the pia surface in EM µm (x, y, z); ``tilt_deg`` is the angle of the pia
    surface against the EM x axis (positive = pia gets deeper with x). Output axes: x_um along the pia,
    depth_um below the pia, z_um unchanged (relative to the pia point).
    """

    pia_point_um: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt_deg: float = 0.0
    layers: tuple[tuple[str, float, float], ...] = field(default=DEFAULT_LAYERS)

    def __post_init__(self) -> None:
        _as_points(self.pia_point_um, "pia_point_um")
        tops = [float(t) for _, t, _ in self.layers]
        bottoms = [float(b) for _, _, b in self.layers]
        if not self.layers or any(b <= t for t, b in zip(tops, bottoms)) or tops != sorted(tops):
            raise ValueError("layers must be (name, top_um, bottom_um) rows, ordered from the pia, each top < bottom")

    def _rotation(self) -> np.ndarray:
        a = np.deg2rad(self.tilt_deg)
        # rotate by -tilt in the x–y plane so a pia line tilted by +tilt becomes horizontal
        return np.array([[np.cos(a), np.sin(a), 0.0], [-np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])

    def from_nm(self, xyz_nm: object) -> np.ndarray:
        """EM nm [..., 3] -> pia-aligned µm [..., 3] as (x_um, depth_um, z_um)."""
        rel = nm_to_um(_as_points(xyz_nm, "xyz_nm")) - np.asarray(self.pia_point_um, dtype=float)
        return rel @ self._rotation().T

    def to_nm(self, aligned_um: object) -> np.ndarray:
        """Pia-aligned µm (x_um, depth_um, z_um) [..., 3] -> EM nm."""
        em_um = _as_points(aligned_um, "aligned_um") @ self._rotation() + np.asarray(self.pia_point_um, dtype=float)
        return um_to_nm(em_um)

    def from_voxels(self, xyz_vox: object, resolution: object = VOXEL_RESOLUTION_NM) -> np.ndarray:
        return self.from_nm(voxels_to_nm(xyz_vox, resolution))

    def depth_um(self, xyz_nm: object) -> np.ndarray:
        return self.from_nm(xyz_nm)[..., 1]

    def layer_of(self, depth_um: object) -> np.ndarray:
        """Layer name of each depth (µm below the pia); above the pia is 'pia'."""
        depth = np.asarray(depth_um, dtype=float)
        names = np.array([n for n, _, _ in self.layers] + ["pia"], dtype=object)
        tops = np.array([t for _, t, _ in self.layers])
        idx = np.searchsorted(tops, depth, side="right") - 1
        idx = np.where((depth < tops[0]) | ~np.isfinite(depth), len(self.layers), idx)
        return names[idx]

    @property
    def layer_table(self) -> list[dict]:
        return [{"layer": n, "top_um": t, "bottom_um": b} for n, t, b in self.layers]


#: the frame the offline sample is written in: a unit at (x_um, y_um, depth_um) of the functional anatomy sits at
#: EM µm (400 + x_um, 300 + depth_um, 600 + y_um), so the aligned frame gives back (x_um, depth_um, y_um)
SAMPLE_DEPTH_FRAME = DepthFrame(pia_point_um=(400.0, 300.0, 600.0), tilt_deg=0.0)
