"""MICrONS anatomy for twin_explorer: from a model unit to its neuron's position, morphology and partners.

Data model and loaders (:class:`Anatomy`, SWC and meshwork readers, CAVE table dumps), coordinate frames,
the offline sample generator, Neuroglancer links, the like-to-like analysis and plots (``views``, imported on
demand because it loads HoloViews and plotly). Live CAVE access is in ``cave``, the export in ``export``.
"""

from __future__ import annotations

from .coords import (DEFAULT_LAYERS, SAMPLE_DEPTH_FRAME, VOXEL_RESOLUTION_NM, DepthFrame, nm_to_um, nm_to_voxels,
                     um_to_nm, um_to_voxels, voxels_to_nm, voxels_to_um)
from .data import SAMPLE_DIR, Anatomy
from .like_to_like import (connection_counts, in_silico_signal_correlation, like_to_like, readout_similarity,
                           signal_correlation, tuning_curves)
from .meshwork import Meshwork, read_meshwork, write_meshwork
from .neuroglancer import neuroglancer_link, neuroglancer_state, neuroglancer_url, parse_neuroglancer_url
from .sample import generate_sample
from .swc import COMPARTMENTS, Skeleton, read_swc, write_swc
from .tables import TABLE_COLUMNS, read_table, write_table

__all__ = [
    "Anatomy", "SAMPLE_DIR", "DepthFrame", "DEFAULT_LAYERS", "SAMPLE_DEPTH_FRAME", "VOXEL_RESOLUTION_NM",
    "voxels_to_nm", "nm_to_voxels", "nm_to_um", "um_to_nm", "voxels_to_um", "um_to_voxels",
    "Skeleton", "read_swc", "write_swc", "COMPARTMENTS", "Meshwork", "read_meshwork", "write_meshwork",
    "TABLE_COLUMNS", "read_table", "write_table", "generate_sample",
    "like_to_like", "signal_correlation", "readout_similarity", "in_silico_signal_correlation", "tuning_curves",
    "connection_counts", "neuroglancer_state", "neuroglancer_url", "neuroglancer_link", "parse_neuroglancer_url",
]
