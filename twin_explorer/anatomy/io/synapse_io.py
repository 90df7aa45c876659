"""Synapse rows (``synapses_pni_2``) as caveclient's ``synapse_query`` returns them, in either position layout:
one ``*_position`` column of [x, y, z] lists in 4 × 4 × 40 nm voxels (the default query), or split
``*_position_x/_y/_z`` columns (``split_positions=True``), often in nm (``desired_resolution=[1, 1, 1]``).
Files: .feather (needs pyarrow), .parquet, .csv(.gz). Rows come back in the project's layout (split voxel
columns, int64 root ids) with ``x_um/y_um/z_um`` of the synapse centre (``ctr_pt_position``) in EM µm.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..coords import voxels_to_um
from .cave_table_io import POSITION_SUFFIXES, read_cave_table

REQUIRED = ("pre_pt_root_id", "post_pt_root_id")


def read_synapses(source: str | Path | pd.DataFrame, resolution: object = None,
                  version: int | None = None) -> pd.DataFrame:
    """Synapse rows in the project's layout; ``resolution`` = nm per unit of the positions (default: from
    caveclient's attrs, else told from the coordinates). The centre point is ``ctr_pt_position`` (or, when a
    query dropped it, the postsynaptic point)."""
    df = read_cave_table(source, table="synapses_pni_2", resolution=resolution, version=version)
    where = getattr(source, "name", "synapse table")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; synapse rows need pre_pt_root_id, post_pt_root_id "
                         f"and a position (ctr_pt_position); it has {list(df.columns)}")
    centre = next((c for c in ("ctr_pt_position", "post_pt_position", "pre_pt_position")
                   if c + "_x" in df.columns), None)
    if centre is None:
        raise ValueError(f"{where}: no synapse position column (ctr_pt_position, or pre/post_pt_position)")
    um = voxels_to_um(df[[centre + s for s in POSITION_SUFFIXES]].to_numpy(float))
    df["x_um"], df["y_um"], df["z_um"] = um[:, 0], um[:, 1], um[:, 2]
    df.attrs["position_column"] = centre
    return df
