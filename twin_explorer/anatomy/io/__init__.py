"""Readers for the MICrONS anatomy formats in circulation, one format per module (navis-style).

============================  =====================================================================
module                        format
============================  =====================================================================
``cave_table_io``             caveclient query frames (list or split positions; voxels or nm)
``static_dump_io``            ``<table>_merged.csv.gz`` static dumps with their ``_merged_header.csv``
``swc_io``                    SWC in nm (v661 BossDB, this package) or µm (skeleton service), detected
``skeleton_json_io``          the skeleton service's dict JSON (``get_skeleton(output_format='dict')``)
``npz_skeleton_io``           the like-to-like paper's ``skeleton_<axon|dend>_<nucleus>.npz``
``meshwork_io``               MeshParty meshwork HDF5, versions 1 (PyTables/blosc) and 2 (JSON)
``synapse_io``                synapse rows (feather/parquet/csv) in both position layouts
``l2_io``                     level-2 graphs: edge lists (.npy/.json) and L2-cache coordinates (nm)
============================  =====================================================================

Nothing here unpickles: legacy pickled columns are skipped and named.
"""

from __future__ import annotations

from pathlib import Path

from ..swc import Skeleton
from .cave_table_io import normalize_cave_frame, read_cave_table
from .l2_io import Level2Graph, read_l2_graph
from .meshwork_io import read_meshwork
from .npz_skeleton_io import read_npz_skeleton
from .skeleton_json_io import read_skeleton_json, skeleton_from_dict
from .static_dump_io import read_header_file, read_static_dump
from .swc_io import read_swc
from .synapse_io import read_synapses

SKELETON_SUFFIXES = (".swc", ".json", ".npz", ".h5")


def read_skeleton(path: str | Path, unit: str | None = None) -> Skeleton:
    """A skeleton from any file format above, chosen by suffix (.swc, .json, .npz, .h5 meshwork)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".swc":
        return read_swc(path, unit=unit)
    if suffix == ".json":
        return read_skeleton_json(path, unit=unit or "nm")
    if suffix == ".npz":
        return read_npz_skeleton(path, unit=unit or "nm")
    if suffix == ".h5":
        return read_meshwork(path).skeleton()
    raise ValueError(f"{path.name}: unknown skeleton format; accepted suffixes: {', '.join(SKELETON_SUFFIXES)}")


__all__ = ["read_cave_table", "normalize_cave_frame", "read_static_dump", "read_header_file", "read_swc",
           "read_skeleton_json", "skeleton_from_dict", "read_npz_skeleton", "read_meshwork", "read_synapses",
           "read_skeleton", "SKELETON_SUFFIXES", "read_l2_graph", "Level2Graph"]
