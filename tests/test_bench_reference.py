"""The benchmark's reference baseline: our assembly of the optional ``fnn`` package is the published network.

It must define exactly the published state-dict keys and reproduce the golden responses the reference itself made
(``shared/fixtures/fnn``), so that the frames/s the bench reports for it are the reference's. Skipped where the
optional reference package is not installed (it is never a dependency)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import FNN_FIXTURES as FIXTURES
from conftest import require_fnn_fixtures
from twin_explorer.bench import reference

pytest.importorskip("fnn.model")
pytestmark = pytest.mark.usefixtures("fnn_fixtures", "one_torch_thread")


@pytest.fixture(scope="module")
def reference_u8():
    require_fnn_fixtures()
    torch.manual_seed(0)
    net = reference.build_reference(8)
    net.load_state_dict(torch.load(FIXTURES / "microns_u8_state.pt", weights_only=True), strict=True)
    return net


def test_reference_assembly_has_the_published_keys_and_shapes():
    manifest = json.loads((FIXTURES / "state_dict_manifest_u8.json").read_text())
    state = reference.build_reference(8).state_dict()
    assert list(state) == list(manifest)  # same keys in the published (registration) order
    for key, entry in manifest.items():
        assert list(state[key].shape) == list(entry["shape"]), key


def test_reference_assembly_reproduces_the_golden_responses(reference_u8):
    golden = np.load(FIXTURES / "golden_io.npz")
    out = reference.reference_predict(reference_u8, golden["stimuli"], golden["perspectives"], golden["modulations"])
    assert out.shape == (24, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, golden["response_full"], rtol=1e-5, atol=1e-6)


def test_reference_batches_equal_single_videos(reference_u8):
    golden = np.load(FIXTURES / "golden_io.npz")
    stimuli = golden["stimuli"][:6]
    batch = np.stack([stimuli, stimuli[::-1].copy()])
    out = reference.reference_predict(reference_u8, batch)
    assert out.shape == (2, 6, 8)
    np.testing.assert_allclose(out[0], golden["response_default"][:6], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], reference.reference_predict(reference_u8, batch[1]), rtol=1e-5, atol=1e-6)


def test_reference_refuses_non_uint8_stimuli(reference_u8):
    with pytest.raises(ValueError, match="uint8"):
        reference.reference_predict(reference_u8, np.zeros((2, 144, 256), dtype=np.float32))
