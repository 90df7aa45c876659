"""twin_explorer: interactive in-silico experiments on the MICrONS digital twin of mouse visual cortex.

Public entry points are imported lazily so that ``import twin_explorer`` stays cheap (torch is not loaded until a
twin is); these are the package's only function-level imports of its own modules that exist for start-up time.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_twin", "load_microns", "download_microns", "Twin", "Monitor"]


def __getattr__(name: str):
    if name in ("load_twin", "load_microns", "download_microns"):
        from . import twins  # start-up time: loads torch

        return getattr(twins, name)
    if name == "Twin":
        from .engine.twin import Twin  # start-up time: loads torch

        return Twin
    if name == "Monitor":
        from .monitor import Monitor  # start-up time: numpy only, but kept lazy like the rest

        return Monitor
    raise AttributeError(f"module 'twin_explorer' has no attribute {name!r}")
