"""The link chain from a model unit to its neuron: (session, scan_idx, readout_id) → (session, scan_idx,
unit_id) → coregistration (nucleus id, pt_root_id, residual, score) → nucleus position, cell type, area →
skeleton, meshwork, synapses.

:class:`Anatomy` reads a folder laid out like the offline sample (``assets/anatomy``) or a real export::

    tables/<cave table>.csv.gz|.feather|.parquet|_merged.csv.gz     manifest.json (depth frame, version, provenance)
    skeletons/<root_id>_<nucleus_id>.swc|.json|.npz                  meshworks/<root_id>_<nucleus_id>.h5

Everything joins on the nucleus id (root ids change with proofreading). A unit with several candidate nuclei or
none is kept and flagged (``match`` = 'unique' | 'multiple' | 'none'), never dropped. Readout ids restart in
every scan, so units are keyed by (session, scan_idx, unit_id). Nuclei with root id 0 (no segment) keep their
row with an empty root; roots holding several nuclei are flagged (``root_nuclei`` > 1) and never joined to one.
A folder holds one materialization version (``manifest.json: materialization_version``); a table declaring
another is refused. Without a manifest frame the minnie65 frame is used.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..paths import bundled
from .coords import DepthFrame, frame_from_manifest, voxels_to_nm
from .io import SKELETON_SUFFIXES, read_meshwork, read_skeleton
from .like_to_like import like_to_like
from .links import SCAN_KEYS, UNIT_KEYS, link_units, unit_index, units_frame
from .meshwork import Meshwork
from .swc import Skeleton
from .tables import ANGLE_CONVENTION, COREGISTRATION_PRIORITY, functional_properties_to_degrees, positions, read_table

try:
    SAMPLE_DIR = bundled("anatomy")
except FileNotFoundError:  # a broken install: Anatomy.sample() says so when called
    SAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "anatomy"
Direction = Literal["both", "input", "output"]


class Anatomy:
    """A MICrONS-like anatomy folder (the offline sample or CAVE dumps in the same layout)."""

    def __init__(self, folder: str | Path, depth_frame: DepthFrame | None = None,
                 coregistration: tuple[str, ...] = COREGISTRATION_PRIORITY, version: int | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"anatomy folder not found: {self.folder}")
        manifest = self.folder / "manifest.json"
        try:
            self.manifest: dict = json.loads(manifest.read_text()) if manifest.exists() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"{manifest}: not valid JSON ({exc})") from None
        self.depth_frame = depth_frame or frame_from_manifest(self.manifest.get("depth_frame"))
        declared = self.manifest.get("materialization_version")
        if version is not None and declared is not None and int(version) != int(declared):
            raise ValueError(f"{self.folder} holds materialization v{declared}, not the requested v{version}; "
                             "root ids of different versions cannot be joined")
        #: the materialization version the folder's root ids belong to (None: not recorded)
        self.materialization_version: int | None = int(version if version is not None else declared) \
            if (version is not None or declared is not None) else None
        unknown = [t for t in coregistration if t not in COREGISTRATION_PRIORITY]
        if unknown or not coregistration:
            raise ValueError(f"coregistration must name tables among {COREGISTRATION_PRIORITY}, got {coregistration}")
        self.coregistration_tables = tuple(coregistration)
        self._tables: dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"Anatomy({str(self.folder)!r}, {len(self.nuclei)} nuclei, {len(self.skeleton_ids)} skeletons)"

    @classmethod
    def sample(cls) -> Anatomy:
        """The offline sample shipped in ``assets/anatomy`` (made by ``twin-explorer anatomy-sample``)."""
        if not (SAMPLE_DIR / "tables").is_dir():
            raise FileNotFoundError(f"no anatomy sample at {SAMPLE_DIR}; run `twin-explorer anatomy-sample`")
        return cls(SAMPLE_DIR)

    # ---- tables ------------------------------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """A CAVE table of this folder; its materialization version must be the folder's."""
        if name not in self._tables:
            declared = self.manifest.get("table_versions", {}).get(name)
            df = read_table(self.folder / "tables", name, version=declared)
            self._check_version(name, df.attrs.get("materialization_version"))
            df.attrs.setdefault("materialization_version", self.materialization_version)
            self._tables[name] = df
        return self._tables[name]

    def _check_version(self, what: str, version: int | None) -> None:
        if version is None:
            return
        if self.materialization_version is None:
            self.materialization_version = int(version)
        elif int(version) != self.materialization_version:
            raise ValueError(f"{what} is from materialization v{version} but this folder is v"
                             f"{self.materialization_version}: root ids of different versions are never joined; "
                             "export all tables at one version")

    def has_table(self, name: str) -> bool:
        try:
            self.table(name)
        except FileNotFoundError:
            return False
        return True

    @cached_property
    def nuclei(self) -> pd.DataFrame:
        """One row per nucleus (index ``nucleus_id``): root id, position (voxels, nm, pia-aligned µm), layer,
        cell type and area where those tables exist."""
        nuc = self.table("nucleus_detection_v0")
        nm = voxels_to_nm(positions(nuc))
        aligned = self.depth_frame.from_nm(nm)
        roots = nuc["pt_root_id"].astype("Int64")
        roots = roots.where(roots != 0)  # root 0: the nucleus lies in no segment at this version
        shared = roots.map(roots.value_counts()).fillna(0).astype("int64")
        df = pd.DataFrame({"nucleus_id": nuc["id"].astype("int64").to_numpy(),
                           "pt_root_id": roots.array, "root_nuclei": shared.to_numpy(),  # Int64: never via float
                           "x_nm": nm[:, 0], "y_nm": nm[:, 1], "z_nm": nm[:, 2],
                           "x_um": aligned[:, 0], "depth_um": aligned[:, 1], "z_um": aligned[:, 2],
                           "layer": self.depth_frame.layer_of(aligned[:, 1])})
        if "volume" in nuc.columns:
            df["volume"] = nuc["volume"].to_numpy()
        df = df.set_index("nucleus_id")
        if df.index.duplicated().any():
            raise ValueError("nucleus_detection_v0 has duplicate nucleus ids "
                             f"(e.g. {df.index[df.index.duplicated()][:3].tolist()})")
        if self.has_table("aibs_metamodel_celltypes_v661"):
            ct = self.table("aibs_metamodel_celltypes_v661").drop_duplicates("target_id").set_index("target_id")
            df = df.join(ct[["classification_system", "cell_type"]])
        if self.has_table("nucleus_functional_area_assignment"):
            ar = self.table("nucleus_functional_area_assignment").drop_duplicates("target_id").set_index("target_id")
            df = df.join(ar[["tag", "value"]].rename(columns={"tag": "area", "value": "area_distance_um"}))
        return df

    @cached_property
    def coregistration(self) -> pd.DataFrame:
        """All coregistration rows of the chosen tables, with a ``coreg_source`` column."""
        frames = []
        for name in self.coregistration_tables:
            if self.has_table(name):
                t = self.table(name).copy()
                t["coreg_source"] = name
                frames.append(t)
        if not frames:
            raise FileNotFoundError(f"no coregistration table in {self.folder / 'tables'} "
                                    f"(looked for {', '.join(self.coregistration_tables)})")
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def properties(self) -> pd.DataFrame:
        """Functional properties, one row per nucleus × unit: ``digital_twin_properties_bcm_coreg_v4`` (degrees),
        else the older ``functional_properties_v3_bcm`` with its radians converted to the project's convention
        (degrees, 0° = rightward motion, counter-clockwise; see ``attrs['angle_convention']``)."""
        if self.has_table("digital_twin_properties_bcm_coreg_v4"):
            return self.table("digital_twin_properties_bcm_coreg_v4")
        if self.has_table("functional_properties_v3_bcm"):
            return functional_properties_to_degrees(self.table("functional_properties_v3_bcm"))
        raise FileNotFoundError(f"no functional properties in {self.folder / 'tables'} (looked for "
                                "digital_twin_properties_bcm_coreg_v4 and functional_properties_v3_bcm)")

    @cached_property
    def has_properties(self) -> bool:
        return any(self.has_table(t) for t in ("digital_twin_properties_bcm_coreg_v4", "functional_properties_v3_bcm"))

    @cached_property
    def synapse_table(self) -> pd.DataFrame:
        syn = self.table("synapses_pni_2")
        root_to_nuc = self.root_to_nucleus
        syn = syn.copy()
        syn["pre_nucleus_id"] = syn["pre_pt_root_id"].map(root_to_nuc).astype("Int64")
        syn["post_nucleus_id"] = syn["post_pt_root_id"].map(root_to_nuc).astype("Int64")
        return syn

    @cached_property
    def root_to_nucleus(self) -> pd.Series:
        """Root id -> nucleus id for roots holding exactly one nucleus (root 0 and shared roots left out)."""
        n = self.nuclei[self.nuclei["pt_root_id"].notna() & (self.nuclei["root_nuclei"] == 1)]
        return pd.Series(n.index.to_numpy(), index=n["pt_root_id"].astype("int64").to_numpy())

    # ---- ids ---------------------------------------------------------------------------------------------------
    def nucleus_id(self, root_id: int) -> int:
        """Nucleus id of a root id (raises ValueError for unknown roots, root 0 and roots with several nuclei)."""
        rid = int(root_id)
        if rid in self.root_to_nucleus.index:
            return int(self.root_to_nucleus.loc[rid])
        if rid == 0:
            raise ValueError("root id 0 is no segment (nuclei outside any segment carry it); look up by nucleus id")
        shared = self.nuclei.index[self.nuclei["pt_root_id"] == rid].tolist()
        if shared:
            raise ValueError(f"root id {rid} holds {len(shared)} nuclei {shared[:5]} (a merge error); it is never "
                             "joined to one of them: look the neuron up by nucleus id")
        raise ValueError(f"root id {rid} has no nucleus in this volume (root ids change with proofreading; "
                         f"this folder is materialization v{self.materialization_version}; look it up by nucleus id)")

    def _check_nucleus(self, nucleus_id: int) -> int:
        try:
            nid = int(nucleus_id)
        except (TypeError, ValueError):
            raise ValueError(f"nucleus id must be an integer, got {nucleus_id!r}") from None
        if nid not in self.nuclei.index:
            raise ValueError(f"unknown nucleus id {nid}; this volume has {len(self.nuclei)} nuclei "
                             f"(e.g. {self.nuclei.index[:3].tolist()})")
        return nid

    def root_id(self, nucleus_id: int) -> int:
        nid = self._check_nucleus(nucleus_id)
        root = self.nuclei.loc[nid, "pt_root_id"]
        if pd.isna(root):
            raise ValueError(f"nucleus {nid} lies in no segment (root id 0) at materialization "
                             f"v{self.materialization_version}")
        return int(root)

    # ---- the join ------------------------------------------------------------------------------------------------
    def link_units(self, units: pd.DataFrame) -> pd.DataFrame:
        """Every (unit, candidate nucleus) pair (see :func:`~twin_explorer.anatomy.links.link_units`)."""
        return link_units(units, self.coregistration, self.nuclei, self.coregistration_tables)

    def resolve_units(self, units: pd.DataFrame, policy: Literal["best", "unique"] = "best") -> pd.DataFrame:
        """One row per unit with its chosen nucleus and the neuron's position/type/area; indexed by readout_id
        for one scan, by (session, scan_idx, readout_id) for several.

        ``policy='best'`` takes the best match of units with several; ``'unique'`` leaves those at <NA>.
        ``match`` and ``n_matches`` always say what happened.
        """
        if policy not in ("best", "unique"):
            raise ValueError(f"policy must be 'best' or 'unique', got {policy!r}")
        links = self.link_units(units)
        index = unit_index(links)
        first = links.drop_duplicates(UNIT_KEYS).set_index(index)
        out = first[[c for c in UNIT_KEYS if c not in index] + ["n_matches", "match"]].copy()
        best = links[links["best"]].set_index(index)
        if policy == "unique":
            best = best[best["match"] == "unique"]
        for c in ("nucleus_id", "pt_root_id", "residual", "score", "coreg_source", "root_shared"):
            out[c] = best[c].reindex(out.index)
        out["root_shared"] = out["root_shared"].astype("boolean").fillna(False).astype(bool)
        cols = [c for c in ("x_um", "depth_um", "z_um", "layer", "cell_type", "classification_system", "area")
                if c in self.nuclei.columns]
        return out.join(self.nuclei[cols], on="nucleus_id")

    def neuron_of_unit(self, units: pd.DataFrame, readout_id: int | tuple[int, int, int]) -> dict:
        """The whole chain for one unit as a dict; ``readout_id`` is (session, scan_idx, readout_id) when ``units``
        holds several scans (raises ValueError for an unknown unit)."""
        u = units_frame(units)
        key = tuple(int(k) for k in readout_id) if isinstance(readout_id, tuple) else (int(readout_id),)
        cols = [*SCAN_KEYS, "readout_id"] if len(key) == 3 else ["readout_id"]
        rows = u[(u[cols].to_numpy() == np.asarray(key)).all(axis=1)]
        if len(rows) != 1:
            hint = ("; several scans: pass (session, scan_idx, readout_id)" if len(rows) > 1 else
                    f"; the units table has readout ids {u['readout_id'].min()}..{u['readout_id'].max()}")
            raise ValueError(f"unknown readout_id {readout_id}{hint}")
        links = self.link_units(rows.set_index("readout_id"))
        row = links.iloc[0].to_dict() if not links["best"].any() else links[links["best"]].iloc[0].to_dict()
        row["candidates"] = links[["nucleus_id", "pt_root_id", "residual", "score", "coreg_source"]].dropna(
            subset=["nucleus_id"]).to_dict("records")
        if row["match"] != "none" and row["in_volume"]:
            nid = int(row["nucleus_id"])
            row.update({k: v for k, v in self.nuclei.loc[nid].to_dict().items() if k != "pt_root_id"})
            row["has_skeleton"] = nid in self.skeleton_ids
        return row

    # ---- morphology ------------------------------------------------------------------------------------------------
    def _files(self, sub: str, suffixes: tuple[str, ...]) -> dict[int, Path]:
        """nucleus id -> file, from ``<root_id>_<nucleus_id>.<suffix>`` names (first suffix wins)."""
        out: dict[int, Path] = {}
        for suffix in reversed(suffixes):
            for p in sorted((self.folder / sub).glob(f"*{suffix}")):
                root, _, nucleus = p.stem.partition("_")
                if nucleus.isdigit():
                    out[int(nucleus)] = p
        return out

    @cached_property
    def skeleton_ids(self) -> list[int]:
        """Nucleus ids that have a skeleton file (SWC, skeleton-service JSON or npz)."""
        return sorted(self._files("skeletons", SKELETON_SUFFIXES[:3]))

    @cached_property
    def meshwork_ids(self) -> list[int]:
        return sorted(self._files("meshworks", (".h5",)))

    def skeleton(self, nucleus_id: int) -> Skeleton:
        nid = self._check_nucleus(nucleus_id)
        files = self._files("skeletons", SKELETON_SUFFIXES[:3])
        if nid not in files:
            raise FileNotFoundError(f"no skeleton for nucleus {nid} in {self.folder / 'skeletons'}; "
                                    f"{len(files)} neurons have one (see .skeleton_ids)")
        sk = read_skeleton(files[nid])
        sk.meta.setdefault("nucleus_id", nid)
        return sk

    def meshwork(self, nucleus_id: int) -> Meshwork:
        nid = self._check_nucleus(nucleus_id)
        files = self._files("meshworks", (".h5",))
        if nid not in files:
            raise FileNotFoundError(f"no meshwork for nucleus {nid} in {self.folder / 'meshworks'} "
                                    f"(available: {sorted(files)})")
        return read_meshwork(files[nid])

    # ---- synapses ------------------------------------------------------------------------------------------------
    def synapses(self, nucleus_id: int, direction: Direction = "both") -> pd.DataFrame:
        """Synapses of a neuron with ``direction`` ('input' = it is post, 'output' = it is pre), ``partner_root_id``,
        ``partner_nucleus_id`` (<NA> for fragments without a nucleus) and the position in nm."""
        if direction not in ("both", "input", "output"):
            raise ValueError(f"direction must be 'both', 'input' or 'output', got {direction!r}")
        root = self.root_id(nucleus_id)
        syn = self.synapse_table
        parts = []
        if direction in ("both", "input"):
            s = syn[syn["post_pt_root_id"] == root].copy()
            s["direction"] = "input"
            s["partner_root_id"], s["partner_nucleus_id"] = s["pre_pt_root_id"], s["pre_nucleus_id"]
            parts.append(s)
        if direction in ("both", "output"):
            s = syn[syn["pre_pt_root_id"] == root].copy()
            s["direction"] = "output"
            s["partner_root_id"], s["partner_nucleus_id"] = s["post_pt_root_id"], s["post_nucleus_id"]
            parts.append(s)
        out = pd.concat(parts, ignore_index=True)
        xyz = voxels_to_nm(positions(out, "ctr_pt_position")) if len(out) else np.zeros((0, 3))
        out["x_nm"], out["y_nm"], out["z_nm"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        return out

    def partners(self, nucleus_id: int, units: pd.DataFrame | None = None,
                 tuning: pd.DataFrame | None = None) -> pd.DataFrame:
        """Partner list: one row per (partner, direction) with synapse count and summed size, the partner's
        cell type/area/depth, its functional properties (``digital_twin_properties_bcm_coreg_v4``) and, when
        ``units`` is given, its readout_id in the twin (and columns of ``tuning``, indexed by readout_id)."""
        syn = self.synapses(nucleus_id)
        grp = syn.groupby(["partner_root_id", "direction"], as_index=False).agg(
            partner_nucleus_id=("partner_nucleus_id", "first"), n_synapses=("id", "size"), total_size=("size", "sum"))
        cols = [c for c in ("cell_type", "area", "layer", "depth_um") if c in self.nuclei.columns]
        grp = grp.join(self.nuclei[cols], on="partner_nucleus_id")
        if self.has_properties:
            props = self.properties.drop_duplicates("target_id").set_index("target_id")
            pcols = [c for c in ("cc_abs", "cc_norm", "OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir")
                     if c in props.columns]
            grp = grp.join(props[pcols], on="partner_nucleus_id")
        if units is not None:
            links = self.link_units(units)
            best = links[links["best"]].drop_duplicates("nucleus_id").set_index("nucleus_id")["readout_id"]
            best.index = best.index.astype("int64")
            grp["readout_id"] = grp["partner_nucleus_id"].map(best).astype("Int64")
            if tuning is not None:
                grp = grp.join(tuning.rename(columns=lambda c: f"{c}_twin" if c in grp.columns else c), on="readout_id")
        return grp.sort_values(["n_synapses", "total_size"], ascending=False).reset_index(drop=True)

    def connectivity(self, nucleus_ids: list[int] | np.ndarray) -> pd.DataFrame:
        """Synapse counts [pre, post] among the given neurons (rows pre, columns post, by nucleus id)."""
        ids = [self._check_nucleus(n) for n in nucleus_ids]
        syn = self.synapse_table
        sub = syn[syn["pre_nucleus_id"].isin(ids) & syn["post_nucleus_id"].isin(ids)]
        counts = sub.groupby(["pre_nucleus_id", "post_nucleus_id"]).size()
        mat = pd.DataFrame(0, index=pd.Index(ids, name="pre"), columns=pd.Index(ids, name="post"), dtype=np.int64)
        for (a, b), c in counts.items():
            mat.loc[int(a), int(b)] = int(c)
        return mat

    # ---- population-level views of the data ------------------------------------------------------------------------
    def population(self, units: pd.DataFrame, tuning: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per unit (index readout_id): the resolved neuron (position, layer, cell type, area, match status), its
        published functional properties (cc_abs, cc_norm, OSI, DSI, gOSI, gDSI, pref_ori, pref_dir) and, when
        given, columns of ``tuning`` (e.g. in-silico results indexed by readout_id). Feeds the soma map."""
        out = self.resolve_units(units)
        if self.has_properties:
            props = self.properties.drop_duplicates(UNIT_KEYS).set_index(UNIT_KEYS)
            pcols = [c for c in ("cc_abs", "cc_max", "cc_norm", "OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir")
                     if c in props.columns]
            names = out.index.names
            out = out.reset_index().join(props[pcols], on=UNIT_KEYS).set_index(names)
            out.attrs["angle_convention"] = props.attrs.get("angle_convention", ANGLE_CONVENTION)
        if tuning is not None:
            out = out.join(tuning.rename(columns=lambda c: f"{c}_twin" if c in out.columns else c))
        return out

    def like_to_like(self, units: pd.DataFrame, similarity: pd.DataFrame, nucleus_ids: list[int] | None = None,
                     **kwargs: object):
        """Like-to-like on this volume: ``similarity`` is indexed and columned by readout_id (e.g. in-silico signal
        correlation); units are mapped to neurons by their unique coregistration match (ambiguous ones are left
        out), restricted to ``nucleus_ids`` (default: the sample's densely reconstructed set in the manifest)."""
        if not isinstance(similarity, pd.DataFrame):
            raise ValueError("similarity must be a DataFrame indexed and columned by readout_id")
        res = self.resolve_units(units, policy="unique")
        res = res[res["nucleus_id"].notna() & res.index.isin(similarity.index)]
        res = res[~res["nucleus_id"].duplicated()]
        if nucleus_ids is None:
            nucleus_ids = self.manifest.get("sampled_nucleus_ids")
        if nucleus_ids is not None:
            res = res[res["nucleus_id"].isin([int(n) for n in nucleus_ids])]
        if len(res) < 3:
            raise ValueError(f"only {len(res)} uniquely matched units have a similarity and a neuron here")
        rid = res.index.to_numpy()
        S = similarity.loc[rid, rid].to_numpy(dtype=float)
        return like_to_like(S, self.synapse_table, res["pt_root_id"].astype("int64").to_numpy(), **kwargs)
