"""Coordinate frames of the MICrONS volume: voxels (4 × 4 × 40 nm) ↔ nm ↔ µm, and a pia-aligned depth frame.

EM annotation positions (``pt_position``) are in voxels; mesh and skeleton vertices are in nm. In the EM frame
y grows with cortical depth. :class:`DepthFrame` turns nm into (x_um, depth_um, z_um) with depth measured from
the pia (positive = deeper) and names the cortical layer of a depth. :data:`MINNIE65_FRAME` is the published
minnie65 frame (standard_transform's: 5° about z, its pia point, µm); :func:`detect_length_unit` tells nm
from µm coordinates (files in circulation use both).
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


#: length units the readers accept, in nm per unit
LENGTH_UNITS: dict[str, float] = {"nm": 1.0, "um": 1000.0}


def check_length_unit(unit: str) -> str:
    """Normalise a length-unit name ('nm', 'um'; 'µm', 'micron' accepted) or raise a ValueError saying what is accepted."""
    u = str(unit).strip().lower().replace("µ", "u").replace("μ", "u")
    u = {"micron": "um", "microns": "um", "micrometer": "um", "micrometre": "um", "nanometer": "nm",
         "nanometre": "nm"}.get(u, u)
    if u not in LENGTH_UNITS:
        raise ValueError(f"unknown length unit {unit!r}; accepted: 'nm' or 'um' (µm)")
    return u


def detect_length_unit(xyz: object, where: str = "coordinates") -> str:
    """'nm' or 'um' for MICrONS coordinates: the minnie65 volume spans ~1.9 × 1.3 × 1 mm, so coordinates in µm
    stay below ~3,000 while nm coordinates of anything inside it exceed 20,000 (a soma alone is ~10,000 nm)."""
    pts = np.abs(np.asarray(xyz, dtype=float))
    pts = pts[np.isfinite(pts)]
    if pts.size == 0:
        raise ValueError(f"{where}: no finite coordinates to detect the length unit from; pass unit='nm' or 'um'")
    top = float(pts.max())
    if top >= 20_000:
        return "nm"
    if top <= 5_000:
        return "um"
    raise ValueError(f"{where}: cannot tell nm from µm (largest coordinate {top:.0f}); pass unit='nm' or 'um'")


@dataclass(frozen=True)
class DepthFrame:
    """A pia-aligned frame: rotate the EM x–y plane so the pia is horizontal, then measure depth from it.

    ``pia_point_um`` is a point on the pia surface in EM µm (x, y, z); ``tilt_deg`` is the angle of the pia
    surface against the EM x axis (positive = pia gets deeper with x). Output axes: x_um along the pia,
    depth_um below the pia, z_um unchanged. With ``center_xz`` x and z are relative to the pia point; without it
    only depth is (standard_transform's minnie65 convention: rotated x and z keep their absolute µm values).
    """

    pia_point_um: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt_deg: float = 0.0
    layers: tuple[tuple[str, float, float], ...] = field(default=DEFAULT_LAYERS)
    center_xz: bool = True
    name: str = "custom"

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

    def _offset(self) -> np.ndarray:
        """What is subtracted after the rotation: the rotated pia point (only its depth unless ``center_xz``)."""
        off = self._rotation() @ np.asarray(self.pia_point_um, dtype=float)
        return off if self.center_xz else np.array([0.0, off[1], 0.0])

    def from_nm(self, xyz_nm: object) -> np.ndarray:
        """EM nm [..., 3] -> pia-aligned µm [..., 3] as (x_um, depth_um, z_um)."""
        return nm_to_um(_as_points(xyz_nm, "xyz_nm")) @ self._rotation().T - self._offset()

    def to_nm(self, aligned_um: object) -> np.ndarray:
        """Pia-aligned µm (x_um, depth_um, z_um) [..., 3] -> EM nm."""
        return um_to_nm((_as_points(aligned_um, "aligned_um") + self._offset()) @ self._rotation())

    def to_dict(self) -> dict:
        return {"name": self.name, "pia_point_um": list(self.pia_point_um), "tilt_deg": self.tilt_deg,
                "center_xz": self.center_xz, "layers": [list(r) for r in self.layers]}

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
SAMPLE_DEPTH_FRAME = DepthFrame(pia_point_um=(400.0, 300.0, 600.0), tilt_deg=0.0, name="sample")


#: standard_transform's minnie65 pia point, published in voxels of 4 × 4 × 45 nm (its own numbers: the z factor
#: is 45, not the 40 of the annotation voxels), and its rotation of 5° about z
MINNIE65_PIA_POINT_VOXELS: tuple[int, int, int] = (183013, 83535, 21480)
MINNIE65_PIA_VOXEL_NM: tuple[float, float, float] = (4.0, 4.0, 45.0)
MINNIE65_Z_ROTATION_DEG: float = 5.0

#: minnie65 layer boundaries (µm below the pia in the minnie65 frame), as the MICrONS-datacleaner tutorial
#: prints them for v1718 (L1 starts at the pia here; below L6 is white matter)
MINNIE65_LAYERS: tuple[tuple[str, float, float], ...] = (
    ("L1", 0.0, 70.981459),
    ("L2/3", 70.981459, 250.356396),
    ("L4", 250.356396, 359.974413),
    ("L5", 359.974413, 509.453527),
    ("L6", 509.453527, 828.342305),
    ("WM", 828.342305, 2000.0),
)

#: the minnie65 frame: standard_transform's ``minnie_transform`` (rotate 5° about z, subtract the rotated pia
#: point's depth, µm). Its rotation turns +x towards +y, i.e. a pia that gets shallower with x: tilt -5°.
MINNIE65_FRAME = DepthFrame(
    pia_point_um=tuple(float(v) * r / 1000.0 for v, r in zip(MINNIE65_PIA_POINT_VOXELS, MINNIE65_PIA_VOXEL_NM)),
    tilt_deg=-MINNIE65_Z_ROTATION_DEG, layers=MINNIE65_LAYERS, center_xz=False, name="minnie65")

#: named frames a manifest may refer to (``"depth_frame": "minnie65"``)
FRAME_PRESETS: dict[str, DepthFrame] = {"minnie65": MINNIE65_FRAME}


def frame_from_manifest(entry: object, default: DepthFrame = MINNIE65_FRAME) -> DepthFrame:
    """The depth frame a manifest names: a preset name, a dict of :class:`DepthFrame` fields, or nothing
    (then ``default``, the minnie65 frame, since real MICrONS folders come without one)."""
    if entry is None or entry == {}:
        return default
    if isinstance(entry, str):
        if entry not in FRAME_PRESETS:
            raise ValueError(f"unknown depth frame {entry!r}; presets: {', '.join(FRAME_PRESETS)}")
        return FRAME_PRESETS[entry]
    if not isinstance(entry, dict):
        raise ValueError(f"depth_frame must be a preset name or a dict of DepthFrame fields, got {entry!r}")
    if "preset" in entry:
        return frame_from_manifest(entry["preset"], default)
    layers = tuple(tuple(r) for r in entry.get("layers", DEFAULT_LAYERS))
    return DepthFrame(pia_point_um=tuple(entry.get("pia_point_um", (0.0, 0.0, 0.0))),
                      tilt_deg=float(entry.get("tilt_deg", 0.0)), layers=layers,
                      center_xz=bool(entry.get("center_xz", True)), name=str(entry.get("name", "custom")))
