"""Static CAVE table dumps: ``<table>_merged.csv.gz`` (headerless postgres CSV) with ``<table>_merged_header.csv``.

The public dumps (``gs://mat_dbs/public/minnie65_phase3_v1/v<N>/``) keep the column list in a separate,
headerless file of ``name,type`` rows (one column per line, postgres type names). Values follow postgres'
CSV: booleans ``t``/``f``, NULL as an empty field, geometry as PostGIS hex (read by ``cave_table_io``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from .cave_table_io import normalize_cave_frame

_INT_TYPES = ("bigint", "integer", "smallint", "int", "int4", "int8", "bigserial", "serial")
_FLOAT_TYPES = ("double precision", "real", "float", "numeric", "float8", "float4")


def read_header_file(path: str | Path) -> list[tuple[str, str]]:
    """(name, postgres type) per column from a ``*_merged_header.csv`` (headerless ``name,type`` rows)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"header file not found: {path}")
    rows = [r for r in csv.reader(path.read_text().splitlines()) if r and any(x.strip() for x in r)]
    if not rows:
        raise ValueError(f"{path.name}: empty header file; expected one 'name,type' row per column")
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != 2]
    if bad:
        raise ValueError(f"{path.name}: lines {bad[:5]} are not 'name,type' pairs; a static dump header lists one "
                         "column per line as name,postgres-type (e.g. 'id,bigint')")
    return [(n.strip(), t.strip().lower()) for n, t in rows]


def _cast(col: pd.Series, kind: str) -> pd.Series:
    if kind in _INT_TYPES:
        return pd.to_numeric(col, errors="coerce").astype("Int64")
    if kind in _FLOAT_TYPES:
        return pd.to_numeric(col, errors="coerce").astype(float)
    if kind == "boolean":
        return col.map({"t": True, "f": False, "true": True, "false": False, True: True, False: False}).astype("boolean")
    return col


def read_static_dump(path: str | Path, header: str | Path | None = None, table: str | None = None,
                     version: int | None = None) -> pd.DataFrame:
    """A headerless ``<table>_merged.csv(.gz)`` dump typed by its header file (default: the
    ``<table>_merged_header.csv`` beside it). The materialization version is taken from ``version`` or from a
    ``v<N>`` folder in the path (the public layout), and recorded in ``attrs``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"static dump not found: {path}")
    stem = re.sub(r"\.csv(\.gz)?$", "", path.name)
    header = Path(header) if header is not None else path.with_name(f"{stem}_header.csv")
    if not header.exists():
        raise FileNotFoundError(f"{path.name} is a headerless dump; its header {header.name} is missing "
                                f"(download it from the same folder)")
    columns = read_header_file(header)
    try:
        df = pd.read_csv(path, header=None, names=[n for n, _ in columns], dtype=str, keep_default_na=False,
                         na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise ValueError(f"{path.name}: cannot be read as a CSV dump ({type(exc).__name__}: {exc})") from None
    for name, kind in columns:
        df[name] = _cast(df[name], kind)
    if version is None:
        m = re.search(r"(?:^|/)v(\d+)(?:/|$)", path.resolve().parent.as_posix())
        version = int(m.group(1)) if m else None
    table = table or (stem[: -len("_merged")] if stem.endswith("_merged") else stem)
    return normalize_cave_frame(df, table=table, resolution=(4, 4, 40), version=version, where=path.name)
