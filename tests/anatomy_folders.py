"""Anatomy folders in the real layout, assembled from the real MICrONS samples in ../shared/fixtures/microns-real.

:func:`build_real_folder` writes the skeleton-service JSON and synapse feathers of root 864691135101289504 (MeshParty's
samples), the version-2 meshwork of root 864691135273655569 (pcg_skel's sample), nucleus rows at their soma points
and a ``coregistration_manual_v4`` table in its real columns joining both neurons to units of a MICrONS-layout twin.
The nucleus ids and the unit keys are made up (the samples do not name them); everything else is real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from twin_explorer.anatomy import read_meshwork

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "microns-real"
PCG = REAL / "CAVEconnectome+pcg_skel" / "tests" / "data"
MP = REAL / "CAVEconnectome+MeshParty"
MP_ROOT, PCG_ROOT = 864691135101289504, 864691135273655569
MP_NUCLEUS, PCG_NUCLEUS = 901, 902
#: (session, scan_idx, unit_id) of the MICrONS fixture twin ("microns 0-0") each real neuron is coregistered to
MP_UNIT, PCG_UNIT = (0, 0, 12), (0, 0, 34)
VOXEL_NM = np.array([4, 4, 40])


def _coregistration(rows: list[tuple[int, int, tuple[int, int, int], list[float]]]) -> pd.DataFrame:
    """coregistration_manual_v4 rows in the columns CAVE returns (positions as 4×4×40 nm voxel lists)."""
    return pd.DataFrame([{"id": k + 1, "created": "2023-04-20 00:00:00.000000+00:00", "valid": True,
                          "target_id": nucleus, "session": unit[0], "scan_idx": unit[1], "unit_id": unit[2],
                          "field": 3, "residual": 2.4 + k, "score": 9.1 - k, "pt_supervoxel_id": 0,
                          "pt_root_id": root, "pt_position": [int(v) for v in np.asarray(soma_nm) / VOXEL_NM]}
                         for k, (nucleus, root, unit, soma_nm) in enumerate(rows)])


def build_real_folder(folder: Path, coregister: bool = True) -> Path:
    """Write the real-layout folder into ``folder`` (materialization v1300, no depth frame: the minnie65 preset)."""
    folder = Path(folder)
    mp_meta = json.loads((MP / "skel.json").read_text())["meta"]
    mw = read_meshwork(PCG / "test_neuron.h5")
    somata = {MP_NUCLEUS: (MP_ROOT, [mp_meta[f"soma_pt_{a}"] for a in "xyz"]),
              PCG_NUCLEUS: (PCG_ROOT, [mw.skeleton_meta[f"soma_pt_{a}"] for a in "xyz"])}
    for sub in ("tables", "skeletons", "meshworks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    nuc = pd.DataFrame({"id": list(somata), "pt_root_id": [r for r, _ in somata.values()],
                        "pt_position": [list(np.asarray(p) / VOXEL_NM) for _, p in somata.values()]})
    nuc.to_parquet(folder / "tables" / "nucleus_detection_v0.parquet")
    syn = pd.concat([pd.read_feather(MP / "pre.feather"), pd.read_feather(MP / "post.feather")], ignore_index=True)
    syn = syn.drop_duplicates("id")  # autapses are in both files; a table holds each synapse once
    syn.to_feather(folder / "tables" / "synapses_pni_2.feather")  # split nm positions, as queried
    if coregister:
        co = _coregistration([(MP_NUCLEUS, MP_ROOT, MP_UNIT, somata[MP_NUCLEUS][1]),
                              (PCG_NUCLEUS, PCG_ROOT, PCG_UNIT, somata[PCG_NUCLEUS][1])])
        co.to_parquet(folder / "tables" / "coregistration_manual_v4.parquet")
    shutil.copy(MP / "skel.json", folder / "skeletons" / f"{MP_ROOT}_{MP_NUCLEUS}.json")
    shutil.copy(PCG / "test_neuron.h5", folder / "meshworks" / f"{PCG_ROOT}_{PCG_NUCLEUS}.h5")
    (folder / "manifest.json").write_text(json.dumps({"materialization_version": 1300,
                                                      "datastack": "minnie65_public"}))
    return folder
