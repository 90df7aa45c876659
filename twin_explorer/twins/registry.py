"""``load_twin``: one call for every twin the explorer knows (demo, synthetic mouse, MICrONS scans)."""

from __future__ import annotations

from typing import Any

from ..engine.contract import TwinLike
from .demo import demo_available, load_demo_twin
from .microns import load_microns
from .synthetic_mouse import load_synthetic

TWIN_NAMES = ("demo", "synthetic", "microns")


def load_twin(name: str | None = None, **options: Any) -> TwinLike:
    """Load a twin by name.

    * ``"demo"`` (the default when its files are present): the small twin trained on the synthetic mouse,
      offline, CPU-friendly;
    * ``"synthetic"``: the ground-truth synthetic mouse itself (``seed``, ``n_neurons``);
    * ``"microns"``: a published scan, e.g. ``load_twin("microns", session=8, scan_idx=5)``.
    """
    if name is None:
        name = "demo" if demo_available() else "synthetic"
    if name == "demo":
        return load_demo_twin(**options)
    if name == "synthetic":
        return load_synthetic(**options)
    if name == "microns":
        missing = {"session", "scan_idx"} - set(options)
        if missing:
            raise ValueError(f"load_twin('microns') needs session= and scan_idx= (missing {sorted(missing)}); "
                             "e.g. load_twin('microns', session=8, scan_idx=5)")
        return load_microns(**options)
    raise ValueError(f"unknown twin {name!r}; accepted: {', '.join(TWIN_NAMES)}")
