"""``load_twin``: one call for every twin the explorer knows (demo, synthetic mouse, MICrONS scans)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DEMO_DIR = ASSETS / "demo_twin"
TWIN_NAMES = ("demo", "synthetic", "microns")


def demo_available() -> bool:
    return (DEMO_DIR / "model.safetensors").exists()


def load_twin(name: str | None = None, **options: Any):
    """Load a twin by name.

    * ``"demo"`` (the default when its files are present in assets/): the small twin trained on the
      synthetic mouse, offline, CPU-friendly;
    * ``"synthetic"``: the ground-truth synthetic mouse itself (``seed``, ``n_neurons``);
    * ``"microns"``: a published scan, e.g. ``load_twin("microns", session=8, scan_idx=5)``.
    """
    if name is None:
        name = "demo" if demo_available() else "synthetic"
    if name == "demo":
        from ..training.checkpoint import load_demo_twin

        return load_demo_twin(**options)
    if name == "synthetic":
        from ..synthetic import SyntheticMouse

        return SyntheticMouse(**options)
    if name == "microns":
        from ..bundle import load_microns

        missing = {"session", "scan_idx"} - set(options)
        if missing:
            raise ValueError(f"load_twin('microns') needs session= and scan_idx= (missing {sorted(missing)}); "
                             "e.g. load_twin('microns', session=8, scan_idx=5)")
        return load_microns(**options)
    raise ValueError(f"unknown twin {name!r}; accepted: {', '.join(TWIN_NAMES)}")
