"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWIN_EXPLORER_SHARED", REPO.parent / "shared"))
FNN_FIXTURES = SHARED / "fixtures" / "fnn"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_fnn_fixtures() -> Path:
    """Path of ../shared/fixtures/fnn; skip when absent, except under CI=true where absence fails."""
    if not (FNN_FIXTURES / "golden_io.npz").exists():
        msg = f"MICrONS parity fixtures not found at {FNN_FIXTURES} (set TWIN_EXPLORER_SHARED to the shared/ folder)"
        if IN_CI:
            pytest.fail(msg + "; they are required under CI=true")
        pytest.skip(msg)
    return FNN_FIXTURES


@pytest.fixture
def fnn_fixtures() -> Path:
    return require_fnn_fixtures()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread avoids oversubscribing the shared CPUs (restored afterwards). Modules use it
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def twin():
    """The synthetic mouse as the explorer's twin (the UI tests' default; a module may define its own)."""
    from twin_explorer.ui.state import get_twin  # start-up time: only the UI tests need the UI stack

    return get_twin("synthetic")


@pytest.fixture
def state(twin):
    """A fresh explorer state on ``twin``."""
    from twin_explorer.ui.state import ExplorerState

    return ExplorerState(twin)
