"""MICrONS anatomy for twin_explorer: from a model unit to its neuron's position, morphology and partners.

Data model and loaders (:class:`Anatomy`; readers for every format in circulation in ``io``: CAVE tables and
static dumps, SWC in nm or µm, the skeleton service's dict JSON, npz skeletons, meshwork HDF5 v1/v2, synapse
rows), coordinate frames (the minnie65 preset), the offline sample generator, Neuroglancer links, the
like-to-like analysis and plots (``views``, imported on demand because it loads HoloViews and plotly). Live
CAVE access is in ``cave`` (optional ``microns`` extra), the version-pinned export in ``export``.
"""

from __future__ import annotations

from .coords import (DEFAULT_LAYERS, FRAME_PRESETS, MINNIE65_FRAME, MINNIE65_LAYERS, SAMPLE_DEPTH_FRAME,
                     VOXEL_RESOLUTION_NM, DepthFrame, detect_length_unit, nm_to_um, nm_to_voxels, um_to_nm,
                     um_to_voxels, voxels_to_nm, voxels_to_um)
from .data import SAMPLE_DIR, Anatomy
from .io import (read_cave_table, read_meshwork, read_npz_skeleton, read_skeleton, read_skeleton_json,
                 read_static_dump, read_swc, read_synapses)
from .like_to_like import (connection_counts, in_silico_signal_correlation, like_to_like, readout_similarity,
                           signal_correlation, tuning_curves)
from .meshwork import Meshwork, write_meshwork
from .neuroglancer import neuroglancer_link, neuroglancer_state, neuroglancer_url, parse_neuroglancer_url
from .sample import generate_sample
from .swc import COMPARTMENTS, Skeleton, write_swc
from .tables import TABLE_COLUMNS, functional_properties_to_degrees, read_table, write_table

__all__ = [
    "Anatomy", "SAMPLE_DIR", "DepthFrame", "DEFAULT_LAYERS", "SAMPLE_DEPTH_FRAME", "VOXEL_RESOLUTION_NM",
    "MINNIE65_FRAME", "MINNIE65_LAYERS", "FRAME_PRESETS", "detect_length_unit",
    "voxels_to_nm", "nm_to_voxels", "nm_to_um", "um_to_nm", "voxels_to_um", "um_to_voxels",
    "Skeleton", "read_swc", "write_swc", "COMPARTMENTS", "Meshwork", "read_meshwork", "write_meshwork",
    "read_skeleton", "read_skeleton_json", "read_npz_skeleton", "read_synapses", "read_cave_table",
    "read_static_dump", "TABLE_COLUMNS", "read_table", "write_table", "functional_properties_to_degrees",
    "generate_sample", "like_to_like", "signal_correlation", "readout_similarity", "in_silico_signal_correlation",
    "tuning_curves", "connection_counts", "neuroglancer_state", "neuroglancer_url", "neuroglancer_link",
    "parse_neuroglancer_url",
]
