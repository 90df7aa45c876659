"""The project modules a CLI command runs, imported when the command runs.

`twin-explorer --help`, `--version` and a mistyped option must answer at once; importing torch, Panel or the
anatomy stack at start-up costs seconds. So the command modules name what they need here, by import path, and it
is imported on the command's first use (Python caches modules, so later uses cost nothing).
"""

from __future__ import annotations

import importlib
from typing import Any


def load(module: str, *names: str) -> Any:
    """``twin_explorer.<module>`` (e.g. ``"anatomy.export"``), or its attribute ``names[0]`` when one name is given,
    or a tuple of attributes for several; a name that is a submodule not imported by its package is imported."""
    mod = importlib.import_module(f"twin_explorer.{module}")
    found = []
    for name in names:
        try:
            found.append(getattr(mod, name))
        except AttributeError:
            found.append(importlib.import_module(f"twin_explorer.{module}.{name}"))
    if not names:
        return mod
    return found[0] if len(found) == 1 else tuple(found)
