"""The synthetic mouse as a twin, and the ground truth behind a twin trained on one.

A :class:`~twin_explorer.synthetic.SyntheticMouse` obeys the twin contract itself (its ``truth()`` is its own true
tuning). A twin trained on recordings of a synthetic mouse names that mouse in ``metadata.trained_on``
(``mouse_seed``, ``n_neurons``, ...); :func:`truth_provider` turns that into the twin's ``truth()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import pandas as pd

from ..synthetic import SyntheticMouse


def load_synthetic(**options: Any) -> SyntheticMouse:
    """``load_twin("synthetic", seed=..., n_neurons=...)``: the ground-truth mouse itself."""
    return SyntheticMouse(**options)


def mouse_key(trained_on: Mapping[str, Any] | None, n_units: int | None = None) -> tuple[int, int] | None:
    """(seed, n_neurons) of the mouse a twin was trained on, or None when it was not a synthetic mouse."""
    if not isinstance(trained_on, Mapping) or "mouse_seed" not in trained_on:
        return None
    n = trained_on.get("n_neurons", n_units)
    if n is None:
        raise ValueError(f"trained_on names mouse_seed {trained_on['mouse_seed']} but not n_neurons: {dict(trained_on)}")
    return int(trained_on["mouse_seed"]), int(n)


def trained_mouse(trained_on: Mapping[str, Any] | None, n_units: int | None = None) -> SyntheticMouse | None:
    """The synthetic mouse a twin was trained on (from its ``metadata.trained_on``), or None for other twins."""
    key = mouse_key(trained_on, n_units)
    return None if key is None else SyntheticMouse(seed=key[0], n_neurons=key[1])


@lru_cache(maxsize=8)
def _mouse_truth(seed: int, n_neurons: int) -> pd.DataFrame:
    # only the table is kept: a 1000-neuron mouse's filters hold ~100 MB
    return SyntheticMouse(seed=seed, n_neurons=n_neurons).truth()


def truth_provider(trained_on: Mapping[str, Any] | None, readout_ids: pd.Index
                   ) -> Callable[[], pd.DataFrame | None] | None:
    """A twin's ``truth()`` when it was trained on a synthetic mouse: that mouse's truth for the twin's readouts
    (computed on first call, once per process and mouse); None for twins of other origin."""
    key = mouse_key(trained_on, len(readout_ids))
    if key is None:
        return None
    ids = pd.Index(readout_ids)

    def truth() -> pd.DataFrame | None:
        table = _mouse_truth(*key)
        common = table.index.intersection(ids)
        return table.loc[common] if len(common) else None

    return truth
