"""The link chain from a model unit to its neuron: readout_id → (session, scan_idx, unit_id) → coregistration
(nucleus id, pt_root_id, residual, score) → nucleus position, cell type, area → skeleton, meshwork, synapses.

:class:`Anatomy` reads a folder laid out like the offline sample (``assets/anatomy``)::

    tables/<cave table>.csv.gz     skeletons/<root_id>_<nucleus_id>.swc     meshworks/<root_id>_<nucleus_id>.h5
    manifest.json                  (depth frame, provenance)

Everything joins on the nucleus id (root ids change with proofreading). A unit with several candidate nuclei or
none is kept and flagged (``match`` = 'unique' | 'multiple' | 'none'), never dropped.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .coords import DEFAULT_LAYERS, DepthFrame, voxels_to_nm
from .meshwork import Meshwork, read_meshwork
from .swc import Skeleton, read_swc
from .tables import COREGISTRATION_TABLES, positions, read_table

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "anatomy"
UNIT_KEYS = ["session", "scan_idx", "unit_id"]
Direction = Literal["both", "input", "output"]


def _units_frame(units: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(units, pd.DataFrame):
        raise ValueError(f"units must be a DataFrame indexed by readout_id with {UNIT_KEYS}, got {type(units).__name__}")
    missing = [c for c in UNIT_KEYS if c not in units.columns]
    if missing:
        raise ValueError(f"units table lacks columns {missing}; it needs {UNIT_KEYS} (index: readout_id)")
    df = units[UNIT_KEYS].copy()
    df.index = df.index.rename("readout_id")
    return df.astype("int64").reset_index()


class Anatomy:
    """A MICrONS-like anatomy folder (the offline sample or CAVE dumps in the same layout)."""

    def __init__(self, folder: str | Path, depth_frame: DepthFrame | None = None,
                 coregistration: tuple[str, ...] = COREGISTRATION_TABLES) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"anatomy folder not found: {self.folder}")
        manifest = self.folder / "manifest.json"
        self.manifest: dict = json.loads(manifest.read_text()) if manifest.exists() else {}
        if depth_frame is None:
            frame = self.manifest.get("depth_frame", {})
            layers = tuple(tuple(r) for r in frame.get("layers", DEFAULT_LAYERS))
            depth_frame = DepthFrame(pia_point_um=tuple(frame.get("pia_point_um", (0.0, 0.0, 0.0))),
                                     tilt_deg=float(frame.get("tilt_deg", 0.0)), layers=layers)
        self.depth_frame = depth_frame
        unknown = [t for t in coregistration if t not in COREGISTRATION_TABLES]
        if unknown or not coregistration:
            raise ValueError(f"coregistration must name tables among {COREGISTRATION_TABLES}, got {coregistration}")
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
        if name not in self._tables:
            self._tables[name] = read_table(self.folder / "tables", name)
        return self._tables[name]

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
        df = pd.DataFrame({"nucleus_id": nuc["id"].astype("int64").to_numpy(),
                           "pt_root_id": nuc["pt_root_id"].astype("int64").to_numpy(),
                           "x_nm": nm[:, 0], "y_nm": nm[:, 1], "z_nm": nm[:, 2],
                           "x_um": aligned[:, 0], "depth_um": aligned[:, 1], "z_um": aligned[:, 2],
                           "layer": self.depth_frame.layer_of(aligned[:, 1])})
        if "volume" in nuc.columns:
            df["volume"] = nuc["volume"].to_numpy()
        df = df.set_index("nucleus_id")
        if df.index.duplicated().any():
            raise ValueError("nucleus_detection_v0 has duplicate nucleus ids")
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
        """``digital_twin_properties_bcm_coreg_v4`` rows (one per nucleus × unit)."""
        return self.table("digital_twin_properties_bcm_coreg_v4")

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
        n = self.nuclei
        return pd.Series(n.index.to_numpy(), index=n["pt_root_id"].to_numpy())

    # ---- ids ---------------------------------------------------------------------------------------------------
    def nucleus_id(self, root_id: int) -> int:
        """Nucleus id of a root id (raises ValueError for unknown roots)."""
        try:
            return int(self.root_to_nucleus.loc[int(root_id)])
        except KeyError:
            raise ValueError(f"root id {root_id} has no nucleus in this volume (root ids change with proofreading; "
                             "look it up by nucleus id instead)") from None

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
        return int(self.nuclei.loc[self._check_nucleus(nucleus_id), "pt_root_id"])

    # ---- the join ------------------------------------------------------------------------------------------------
    def link_units(self, units: pd.DataFrame) -> pd.DataFrame:
        """Every (unit, candidate nucleus) pair: one row per distinct match, one row with <NA> for units with none.

        Columns: readout_id, session, scan_idx, unit_id, nucleus_id, pt_root_id (current, from the nucleus table),
        residual, score, field, coreg_source, n_matches, match ('unique'|'multiple'|'none'), best (the match a
        single-neuron view uses: manual table first, then lowest residual, then highest score), in_volume.
        """
        u = _units_frame(units)
        co = self.coregistration.rename(columns={"target_id": "nucleus_id", "pt_root_id": "coreg_pt_root_id"})
        co = co[["nucleus_id", *UNIT_KEYS, "residual", "score", "coreg_source", "coreg_pt_root_id"]
                + (["field"] if "field" in co.columns else [])].astype({k: "int64" for k in UNIT_KEYS})
        # the same nucleus may appear in both tables: keep its best row (manual first)
        co["_rank"] = co["coreg_source"].map({t: i for i, t in enumerate(self.coregistration_tables)})
        co = co.sort_values(["_rank", "residual", "score"], ascending=[True, True, False])
        co = co.drop_duplicates([*UNIT_KEYS, "nucleus_id"])
        # nullable ints before the left join, so 18-digit root ids never pass through float
        co = co.astype({c: "Int64" for c in ("nucleus_id", "coreg_pt_root_id", "field") if c in co.columns})
        df = u.merge(co, on=UNIT_KEYS, how="left")
        df["n_matches"] = df.groupby("readout_id")["nucleus_id"].transform("count").astype("int64")
        df["match"] = np.select([df["n_matches"] == 0, df["n_matches"] == 1], ["none", "unique"], "multiple")
        df = df.sort_values(["readout_id", "_rank", "residual", "score"], ascending=[True, True, True, False])
        df["best"] = ~df.duplicated("readout_id") & df["nucleus_id"].notna()
        df = df.drop(columns="_rank")
        roots = self.nuclei["pt_root_id"].astype("Int64")  # nullable ints: 18-digit ids must not pass via float
        df["in_volume"] = df["nucleus_id"].isin(roots.index).fillna(False).astype(bool)
        df["pt_root_id"] = df["nucleus_id"].map(roots)
        return df.reset_index(drop=True)

    def resolve_units(self, units: pd.DataFrame, policy: Literal["best", "unique"] = "best") -> pd.DataFrame:
        """One row per unit (index readout_id) with its chosen nucleus and the neuron's position/type/area.

        ``policy='best'`` takes the best match of units with several; ``'unique'`` leaves those at <NA>.
        ``match`` and ``n_matches`` always say what happened.
        """
        if policy not in ("best", "unique"):
            raise ValueError(f"policy must be 'best' or 'unique', got {policy!r}")
        links = self.link_units(units)
        first = links.drop_duplicates("readout_id").set_index("readout_id")
        out = first[[*UNIT_KEYS, "n_matches", "match"]].copy()
        best = links[links["best"]].set_index("readout_id")
        if policy == "unique":
            best = best[best["match"] == "unique"]
        for c in ("nucleus_id", "pt_root_id", "residual", "score", "coreg_source"):
            out[c] = best[c].reindex(out.index)
        cols = [c for c in ("x_um", "depth_um", "z_um", "layer", "cell_type", "classification_system", "area")
                if c in self.nuclei.columns]
        return out.join(self.nuclei[cols], on="nucleus_id")

    def neuron_of_unit(self, units: pd.DataFrame, readout_id: int) -> dict:
        """The whole chain for one unit as a dict (raises ValueError for an unknown readout id)."""
        if readout_id not in units.index:
            raise ValueError(f"unknown readout_id {readout_id}; the units table has ids {units.index.min()}.."
                             f"{units.index.max()}")
        links = self.link_units(units.loc[[readout_id]])
        row = links.iloc[0].to_dict() if not links["best"].any() else links[links["best"]].iloc[0].to_dict()
        row["candidates"] = links[["nucleus_id", "pt_root_id", "residual", "score", "coreg_source"]].dropna(
            subset=["nucleus_id"]).to_dict("records")
        if row["match"] != "none":
            nid = int(row["nucleus_id"])
            row.update({k: v for k, v in self.nuclei.loc[nid].to_dict().items() if k != "pt_root_id"})
            row["has_skeleton"] = nid in self.skeleton_ids
        return row

    # ---- morphology ------------------------------------------------------------------------------------------------
    def _files(self, sub: str, suffix: str) -> dict[int, Path]:
        out = {}
        for p in sorted((self.folder / sub).glob(f"*{suffix}")):
            root, _, nucleus = p.stem.partition("_")
            if nucleus.isdigit():
                out[int(nucleus)] = p
        return out

    @cached_property
    def skeleton_ids(self) -> list[int]:
        """Nucleus ids that have an SWC skeleton."""
        return sorted(self._files("skeletons", ".swc"))

    @cached_property
    def meshwork_ids(self) -> list[int]:
        return sorted(self._files("meshworks", ".h5"))

    def skeleton(self, nucleus_id: int) -> Skeleton:
        nid = self._check_nucleus(nucleus_id)
        files = self._files("skeletons", ".swc")
        if nid not in files:
            raise FileNotFoundError(f"no skeleton for nucleus {nid} in {self.folder / 'skeletons'}; "
                                    f"{len(files)} neurons have one (see .skeleton_ids)")
        sk = read_swc(files[nid])
        sk.meta.setdefault("nucleus_id", nid)
        return sk

    def meshwork(self, nucleus_id: int) -> Meshwork:
        nid = self._check_nucleus(nucleus_id)
        files = self._files("meshworks", ".h5")
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
        if self.has_table("digital_twin_properties_bcm_coreg_v4"):
            props = self.properties.drop_duplicates("target_id").set_index("target_id")
            pcols = [c for c in ("cc_abs", "cc_norm", "OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir")
                     if c in props.columns]
            grp = grp.join(props[pcols], on="partner_nucleus_id")
        if units is not None:
            links = self.link_units(units)
            best = links[links["best"]].drop_duplicates("nucleus_id").set_index("nucleus_id")["readout_id"]
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
        if self.has_table("digital_twin_properties_bcm_coreg_v4"):
            props = self.properties.drop_duplicates(UNIT_KEYS).set_index(UNIT_KEYS)
            pcols = [c for c in ("cc_abs", "cc_max", "cc_norm", "OSI", "DSI", "gOSI", "gDSI", "pref_ori", "pref_dir")
                     if c in props.columns]
            out = out.join(props[pcols], on=UNIT_KEYS)
        if tuning is not None:
            out = out.join(tuning.rename(columns=lambda c: f"{c}_twin" if c in out.columns else c))
        return out

    def like_to_like(self, units: pd.DataFrame, similarity: pd.DataFrame, nucleus_ids: list[int] | None = None,
                     **kwargs: object):
        """Like-to-like on this volume: ``similarity`` is indexed and columned by readout_id (e.g. in-silico signal
        correlation); units are mapped to neurons by their unique coregistration match (ambiguous ones are left
        out), restricted to ``nucleus_ids`` (default: the sample's densely reconstructed set in the manifest)."""
        from .like_to_like import like_to_like

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
