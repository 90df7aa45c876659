"""A version-pinned export of the public minnie65 datastack into an anatomy folder (the layout :class:`Anatomy`
reads): the coregistered units of the chosen scans, their neurons and synaptic partners.

    tables/<table>.csv.gz                 nucleus, coregistration, cell types, proofreading, functional properties,
                                          area, synapses_pni_2 (positions split, in 4×4×40 nm voxels)
    skeletons/<root>_<nucleus>.swc        from the skeleton service (nm)
    cave_cache/neurons/<root>_<nucleus>/  per-neuron synapse_query results (pre.csv.gz, post.csv.gz)
    manifest.json                         datastack, materialization version and its time, counts, software

Every query is pinned to one materialization version, so all root ids belong to it (a folder exported at
another version is refused). Each neuron is written atomically once its synapses and skeleton are in; a rerun
after an interruption skips the neurons already done. The client is a ``caveclient.CAVEclient`` (see
:func:`~twin_explorer.anatomy.cave.cave_client`) or anything with the same methods.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order
from tqdm.auto import tqdm

from ..store import atomic_path, write_text_atomic
from .cave import DATASTACK, VOXEL_RESOLUTION
from .swc import Skeleton, write_swc
from .tables import REQUIRED_COLUMNS, TABLE_COLUMNS, write_table

#: coregistration tables by preference: v4 in recent versions, v3 in v661 and earlier
COREGISTRATION_CHOICES = ("coregistration_manual_v4", "coregistration_manual_v3")
AUTO_COREGISTRATION = "coregistration_auto_phase3_fwd_apl_vess_combined_v2"
#: tables keyed by nucleus id (``target_id``) exported where the version has them
NUCLEUS_TABLES = ("aibs_metamodel_celltypes_v661", "aibs_metamodel_mtypes_v661_v2",
                  "nucleus_functional_area_assignment",
                  "digital_twin_properties_bcm_coreg_v4", "functional_properties_v3_bcm")
#: tables keyed by root id
ROOT_TABLES = ("proofreading_status_and_strategy", "proofreading_status_public_release")
NUCLEUS_TABLE = "nucleus_detection_v0"
SYNAPSE_TABLE = "synapses_pni_2"
_CHUNK = 5000  # ids per filter_in query


def parse_scans(text: str | Iterable[str]) -> list[tuple[int, int]]:
    """``"8-5,9-3"`` (or a list of ``"8-5"``) → [(8, 5), (9, 3)]."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for p in (x.strip() for x in parts):
        session, sep, scan = p.partition("-")
        if not sep or not session.isdigit() or not scan.isdigit():
            raise ValueError(f"scan {p!r} is not <session>-<scan_idx> (e.g. 8-5); got {text!r}")
        out.append((int(session), int(scan)))
    if not out:
        raise ValueError("no scans given; pass e.g. --scans 8-5,9-3")
    return sorted(set(out))


def skeleton_from_service(d: dict) -> Skeleton:
    """A skeleton-service dict (``get_skeleton(output_format='dict')``: vertices and radius in nm, edges,
    compartment 1 soma / 2 axon / 3 dendrite, root) as a :class:`Skeleton` whose parents point to the root."""
    for key in ("vertices", "edges"):
        if key not in d:
            raise ValueError(f"skeleton dict lacks {key!r}; keys: {sorted(d)}")
    xyz = np.asarray(d["vertices"], dtype=float).reshape(-1, 3)
    edges = np.asarray(d["edges"], dtype=np.int64).reshape(-1, 2)
    n = len(xyz)
    root = int(d.get("root", 0))
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    parent = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, bool)
    for start in [root, *range(n)]:  # the root's tree first, then any piece not connected to it
        if seen[start]:
            continue
        order, pred = breadth_first_order(graph, start, directed=False, return_predecessors=True)
        seen[order] = True
        parent[order] = np.where(pred[order] >= 0, pred[order], -1)
    comp = np.asarray(d.get("compartment", np.zeros(n)), dtype=np.int64)
    radius = np.asarray(d.get("radius", np.full(n, 100.0)), dtype=float)
    meta = {k: v for k, v in d.get("meta", {}).items() if isinstance(v, (int, float, str))}
    return Skeleton(xyz_nm=xyz, parent=parent, compartment=comp, radius_nm=radius, meta=meta)


class _Export:
    """One export run: the client pinned to a version, the output folder, and the tables read so far."""

    def __init__(self, client: Any, out: Path, version: int, progress: bool, skeleton_version: int) -> None:
        self.client, self.out, self.version = client, out, version
        self.progress, self.skeleton_version = progress, skeleton_version
        self.tables: dict[str, pd.DataFrame] = {}

    def query(self, table: str, column: str | None = None, values: Iterable[int] | None = None) -> pd.DataFrame:
        vals = None if values is None else sorted({int(v) for v in values})
        chunks = [None] if vals is None else [vals[i:i + _CHUNK] for i in range(0, len(vals), _CHUNK)] or [[]]
        frames = [self.client.materialize.query_table(
            table, filter_in_dict=None if c is None else {column: c}, split_positions=True,
            materialization_version=self.version, desired_resolution=VOXEL_RESOLUTION) for c in chunks]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def write(self, df: pd.DataFrame, table: str) -> None:
        """Write a table (today's loader layout); tables it does not know yet keep all their scalar columns."""
        df = df.reset_index(drop=True)
        if table in TABLE_COLUMNS:
            for c in TABLE_COLUMNS[table]:  # optional columns some versions lack (e.g. nucleus 'created' in v661)
                split = [c + s for s in ("_x", "_y", "_z")]
                if c not in df.columns and not set(split) <= set(df.columns) and c not in REQUIRED_COLUMNS[table]:
                    df[c] = pd.NA
            (self.out / "tables").mkdir(parents=True, exist_ok=True)
            staged = write_table(df, self.out / "cave_cache" / "staging", table)
            staged.replace(self.out / "tables" / staged.name)  # atomic on one file system
        else:
            scalar = [c for c in df.columns if not df[c].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()]
            with atomic_path(self.out / "tables" / f"{table}.csv.gz") as tmp:
                df[scalar].to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
        self.tables[table] = df

    # ---- per neuron ------------------------------------------------------------------------------------------
    def neuron_dir(self, root: int, nucleus: int) -> Path:
        return self.out / "cave_cache" / "neurons" / f"{root}_{nucleus}"

    def fetch_neuron(self, root: int, nucleus: int, skeletons: bool) -> None:
        """Synapses (pre and post) and skeleton of one neuron; the neuron's folder appears only when all are in."""
        done = self.neuron_dir(root, nucleus)
        if done.exists():
            return
        skeleton_error = None
        if skeletons and not (self.out / "skeletons" / f"{root}_{nucleus}.swc").exists():
            try:
                d = self.client.skeleton.get_skeleton(root, skeleton_version=self.skeleton_version,
                                                      output_format="dict")
                sk = skeleton_from_service(d)
            except (ConnectionError, TimeoutError):
                raise  # transient: stop here, a rerun resumes
            except Exception as exc:  # the service has no skeleton for this root: say so, keep going
                skeleton_error = f"{type(exc).__name__}: {exc}"
            else:
                with atomic_path(self.out / "skeletons" / f"{root}_{nucleus}.swc") as tmp:
                    write_swc(sk, tmp, header=f"root {root} nucleus {nucleus} materialization v{self.version} "
                                              "(skeleton service; nm)")
        with atomic_path(done) as tmp:
            tmp.mkdir(parents=True)
            if skeleton_error:
                (tmp / "skeleton_error.txt").write_text(skeleton_error)
            for side, key in (("pre", "pre_ids"), ("post", "post_ids")):
                syn = self.client.materialize.synapse_query(
                    **{key: root}, split_positions=True, desired_resolution=VOXEL_RESOLUTION,
                    materialization_version=self.version)
                syn.to_csv(tmp / f"{side}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})

    def synapses(self, neurons: pd.DataFrame) -> pd.DataFrame:
        frames = [pd.read_csv(self.neuron_dir(r, n) / f"{side}.csv.gz")
                  for r, n in zip(neurons["pt_root_id"], neurons["target_id"]) for side in ("pre", "post")]
        syn = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS[SYNAPSE_TABLE])
        return syn.drop_duplicates("id").sort_values("id")


def _check_version(client: Any, version: int) -> datetime | None:
    if not isinstance(version, (int, np.integer)) or version <= 0:
        raise ValueError(f"version must be a positive materialization version, got {version!r}")
    versions = sorted(int(v) for v in client.materialize.get_versions())
    if int(version) not in versions:
        raise ValueError(f"materialization version {version} is not available; available: {versions}")
    try:
        stamp = client.materialize.get_version_metadata(version).get("time_stamp")
    except AttributeError:
        return None
    return pd.Timestamp(stamp).to_pydatetime() if stamp is not None else None


def _claim_folder(out: Path, datastack: str, version: int) -> None:
    """Record the folder's version, refusing a folder exported at another version or datastack."""
    marker = out / "cave_cache" / "export.json"
    if marker.exists():
        have = json.loads(marker.read_text())
        if have.get("materialization_version") != version or have.get("datastack") != datastack:
            raise ValueError(f"{out} holds an export of {have.get('datastack')} v{have.get('materialization_version')}"
                             f"; root ids of different versions must not mix: choose another --out")
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, json.dumps({"datastack": datastack, "materialization_version": version}))


def _software(client: Any) -> dict[str, str]:
    try:
        ours = metadata.version("twin_explorer")
    except metadata.PackageNotFoundError:
        ours = "unknown (not installed)"
    mod = sys.modules.get(type(client).__module__.split(".")[0])
    return {"twin_explorer": ours, "client": f"{type(client).__module__}.{type(client).__name__}",
            "client_version": str(getattr(mod, "__version__", "unknown")), "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__}


def export_anatomy(client: Any, out: str | Path, version: int, scans: str | Iterable[str], *,
                   datastack: str = DATASTACK, skeletons: bool = True, include_auto: bool = False,
                   skeleton_version: int = 4, progress: bool = True) -> dict:
    """Export the coregistered neurons of ``scans`` (e.g. ``"8-5,9-3"``) at materialization ``version`` into
    ``out``; returns the manifest. Resumable: rerun the same call after an interruption."""
    scan_list = parse_scans(scans)
    stamp = _check_version(client, version)
    out = Path(out)
    _claim_folder(out, datastack, int(version))
    ex = _Export(client, out, int(version), progress, skeleton_version)
    available = set(client.materialize.get_tables(version=int(version)))
    coreg_table = next((t for t in COREGISTRATION_CHOICES if t in available), None)
    if coreg_table is None:
        raise ValueError(f"version {version} has none of {COREGISTRATION_CHOICES}; its tables: {sorted(available)}")
    coreg_tables = [coreg_table] + ([AUTO_COREGISTRATION] if include_auto and AUTO_COREGISTRATION in available
                                    else [])

    # coregistered units of the chosen scans → nuclei and roots
    matched = []
    for t in coreg_tables:
        df = ex.query(t, "session", {s for s, _ in scan_list})
        df = df[[(int(a), int(b)) in set(scan_list) for a, b in zip(df["session"], df["scan_idx"])]]
        ex.write(df, t)
        matched.append(df)
    coreg = pd.concat(matched, ignore_index=True)
    nuclei = ex.query(NUCLEUS_TABLE, "id", coreg["target_id"])
    neurons = nuclei.rename(columns={"id": "target_id"})[["target_id", "pt_root_id"]].drop_duplicates()
    n_roots = neurons.groupby("pt_root_id")["target_id"].transform("size")
    usable = neurons[(neurons["pt_root_id"] > 0) & (n_roots == 1)].astype("int64")  # root 0: no segment here

    for root, nucleus in tqdm(list(zip(usable["pt_root_id"], usable["target_id"])), desc=f"neurons (v{version})",
                              unit="neuron", disable=not progress):
        ex.fetch_neuron(int(root), int(nucleus), skeletons)

    syn = ex.synapses(usable)
    ex.write(syn, SYNAPSE_TABLE)
    partner_roots = set(syn["pre_pt_root_id"]) | set(syn["post_pt_root_id"]) if len(syn) else set()
    partners = ex.query(NUCLEUS_TABLE, "pt_root_id", partner_roots - {0}) if partner_roots else nuclei.iloc[:0]
    all_nuclei = pd.concat([nuclei, partners], ignore_index=True).drop_duplicates("id")
    ex.write(all_nuclei, NUCLEUS_TABLE)
    for t in NUCLEUS_TABLES:
        if t in available:
            ex.write(ex.query(t, "target_id", all_nuclei["id"]), t)
    roots = set(all_nuclei["pt_root_id"].astype("int64")) - {0}
    for t in ROOT_TABLES:
        if t in available:
            ex.write(ex.query(t, "pt_root_id", roots), t)

    manifest = {
        "description": f"MICrONS {datastack} materialization v{version}: coregistered neurons of scans "
                       f"{', '.join(f'{a}-{b}' for a, b in scan_list)} and their synaptic partners",
        "source": f"CAVE {datastack}", "datastack": datastack, "materialization_version": int(version),
        "materialization_time": stamp.isoformat() if stamp else None,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scans": [f"{a}-{b}" for a, b in scan_list], "coregistration_tables": coreg_tables,
        "position_resolution_nm": VOXEL_RESOLUTION, "skeleton_version": skeleton_version if skeletons else None,
        "tables": {t: int(len(df)) for t, df in sorted(ex.tables.items())},
        "counts": {"coregistration_rows": int(len(coreg)), "neurons": int(len(usable)),
                   "skipped_root_0": int((neurons["pt_root_id"] <= 0).sum()),
                   "skipped_shared_root": int(((neurons["pt_root_id"] > 0) & (n_roots > 1)).sum()),
                   "skeletons": sum((out / "skeletons" / f"{r}_{n}.swc").exists()
                                    for r, n in zip(usable["pt_root_id"], usable["target_id"])),
                   "skeleton_failures": sum((ex.neuron_dir(r, n) / "skeleton_error.txt").exists()
                                            for r, n in zip(usable["pt_root_id"], usable["target_id"])),
                   "synapses": int(len(syn)),
                   "partner_nuclei": int(len(all_nuclei) - len(nuclei))},
        "software": _software(client),
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest
