"""Position columns of MICrONS tables: every form a 3-D point arrives in, and whether it is in voxels or nm.

CAVE tables, meshwork annotations and static dumps hold positions as [x, y, z] lists, strings, 'POINTZ(...)' or
PostGIS hex points, in 4 × 4 × 40 nm voxels or in nm; the readers and the meshwork share these two functions.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pandas as pd

from .coords import VOXEL_RESOLUTION_NM

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_HEX = re.compile(r"^(?:\\x)?[0-9A-Fa-f]+$")


def _ewkb_point(text: str) -> list[float] | None:
    """x, y, z of a PostGIS (E)WKB hex POINT Z, as postgres dumps geometry columns; None if it is not one."""
    h = text[2:] if text.startswith("\\x") else text
    if len(h) < 2 * (1 + 4 + 24) or not _HEX.match(h):
        return None
    raw = bytes.fromhex(h)
    order = "<" if raw[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", raw[1:5])
    at = 5 + (4 if kind & 0x20000000 else 0)  # optional SRID
    if (kind & 0xFF) != 1 or len(raw) < at + 24:
        return None
    return list(struct.unpack(order + "3d", raw[at:at + 24]))


def parse_points(values: pd.Series, where: str) -> np.ndarray:
    """[n, 3] floats from a position column: lists/arrays, '[x, y, z]', '(x y z)', 'POINTZ(x y z)' or EWKB hex;
    missing values (NaN, None, '[<NA>, <NA>, <NA>]') become NaN rows."""
    out = np.full((len(values), 3), np.nan)
    for i, v in enumerate(values.to_numpy()):
        if isinstance(v, str):
            if "<NA>" in v or "nan" in v.lower() or not v.strip():
                continue
            nums = re.findall(_NUM, v) if not _HEX.match(v.strip()) else []
            if len(nums) != 3:
                pt = _ewkb_point(v.strip())
                if pt is None:
                    raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v[:60]!r}; accepted: "
                                     "[x, y, z] lists, 'POINTZ(x y z)' or PostGIS hex points")
                out[i] = pt
                continue
            out[i] = [float(n) for n in nums]
        elif isinstance(v, (list, tuple, np.ndarray)) and len(v) == 3:
            out[i] = np.asarray([np.nan if x is None or x is pd.NA else x for x in v], dtype=float)
        elif not (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))):
            raise ValueError(f"{where}: row {i}: cannot read a 3-D position from {v!r}")
    return out


def guess_position_resolution(xyz: np.ndarray, where: str) -> np.ndarray:
    """(4, 4, 40) for minnie65 voxels or (1, 1, 1) for nm, told from z: the volume spans z ≈ 0.6–1.1 mm, which
    is ~15k–28k voxels of 40 nm but 600k–1.1M nm; x and y must then lie inside the volume in that unit too."""
    ok = np.isfinite(xyz).all(axis=1)
    if not ok.any():
        raise ValueError(f"{where}: no positions to tell voxels from nm; pass resolution=(4, 4, 40) or (1, 1, 1)")
    med = np.median(np.abs(xyz[ok]), axis=0)
    if med[2] < 50_000 and med[0] < 700_000 and med[1] < 500_000:
        return np.asarray(VOXEL_RESOLUTION_NM, dtype=float)
    if med[2] > 200_000 and max(med[0], med[1]) > 20_000:
        return np.ones(3)
    raise ValueError(f"{where}: cannot tell whether positions are 4×4×40 nm voxels or nm (median x, y, z "
                     f"{med[0]:.0f}, {med[1]:.0f}, {med[2]:.0f}); pass resolution=(4, 4, 40) or (1, 1, 1)")
