"""twin_explorer: interactive in-silico experiments on the MICrONS digital twin of mouse visual cortex.

Public entry points are imported lazily so that ``import twin_explorer`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_twin", "load_microns", "download_microns", "Twin", "Monitor"]


def __getattr__(name: str):
    if name in ("load_twin",):
        from .engine.registry import load_twin

        return load_twin
    if name in ("load_microns", "download_microns"):
        from . import bundle

        return getattr(bundle, name)
    if name == "Twin":
        from .engine.twin import Twin

        return Twin
    if name == "Monitor":
        from .monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'twin_explorer' has no attribute {name!r}")
