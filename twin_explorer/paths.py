"""Where twin_explorer keeps things: the one cache folder, and the data files it ships.

Cache: ``$TWIN_EXPLORER_CACHE`` when set, else the platform's user cache folder (platformdirs), with one
sub-folder per kind of content (``microns``, ``recordings``, ``synthetic``, ``results``, ...).

Bundled data (the demo twin, the anatomy sample, the explorer app and notebooks) ship inside the wheel
under ``twin_explorer/_bundled/<name>``; in a source checkout they are read from the repository's
top-level ``assets/<name>`` and ``apps/``, which stay the source of truth.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

CACHE_ENV = "TWIN_EXPLORER_CACHE"

#: bundled name -> folder of a source checkout, relative to the repository root
BUNDLED = {"demo_twin": "assets/demo_twin", "anatomy": "assets/anatomy", "apps": "apps"}


def cache_root() -> Path:
    """The cache folder: ``$TWIN_EXPLORER_CACHE``, else the platform's user cache folder for twin_explorer."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("twin_explorer"))


def cache_dir(kind: str, override: str | os.PathLike | None = None) -> Path:
    """Folder for one kind of cached content: ``override`` when given, else ``cache_root() / kind``.

    Not created here: readers must not leave empty folders behind; writers create it."""
    if override is not None:
        return Path(override).expanduser()
    if not kind or "/" in kind or kind.startswith("."):
        raise ValueError(f"cache kind must be a plain folder name, got {kind!r}")
    return cache_root() / kind


def bundled(name: str) -> Path:
    """Folder of bundled data ``name`` (one of :data:`BUNDLED`): inside the installed package, else the checkout's.

    Raises FileNotFoundError saying where it looked when neither exists."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled data {name!r}; accepted: {', '.join(BUNDLED)}")
    packaged = Path(str(resources.files("twin_explorer"))) / "_bundled" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / BUNDLED[name]
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"bundled data {name!r} is missing: looked in {packaged} (installed package) and "
                            f"{checkout} (source checkout); reinstall twin_explorer")
