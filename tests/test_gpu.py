"""The CUDA path: parity with the reference outputs, CUDA-graph replay, batch buckets and reduced precision on a GPU.

These run where a CUDA GPU is present (a lent GPU machine, a workstation); on the CPU-only CI machine each one is
skipped with that reason. The CPU path's equivalents are in ``test_model.py`` and ``test_engine.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twin_explorer.engine.devices import disable_tf32
from twin_explorer.engine.twin import Twin
from twin_explorer.model import Network, NetworkConfig
from twin_explorer.twins.fullsize import randomize

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = NetworkConfig(units=6, streams=2, ff_channels=(8, 16, 16), ff_groups=(1, 2, 2), ff_out=16,
                      rec_input=32, rec_hidden=32, rec_common=64, rec_groups=4, rec_out=16)


@pytest.fixture(scope="module")
def small_net():
    net = Network(SMALL)
    randomize(net, torch.Generator().manual_seed(0))  # a fresh network's readout is zero: every output the same
    return net.eval()


def varied(out: np.ndarray) -> np.ndarray:
    """The responses, after checking they differ between units and frames (a comparison of constants proves nothing)."""
    assert out.std(axis=-1).min() > 1e-3 and out.std(axis=-2).min() > 1e-3
    return out


@pytest.fixture(scope="module")
def videos():
    return np.random.default_rng(0).integers(0, 256, (3, 12, 144, 256), dtype=np.uint8)


def test_published_network_matches_the_reference_outputs_on_cuda():
    """The reference's golden responses (../shared/fixtures/fnn) on CUDA in float32 with TF32 off, through the
    engine (buckets and CUDA graphs on), with and without perspective and modulation inputs."""
    from conftest import require_fnn_fixtures

    root = require_fnn_fixtures()
    golden = dict(np.load(root / "golden_io.npz"))
    net = Network(NetworkConfig.microns(8))
    net.load_state_dict(torch.load(root / "microns_u8_state.pt", weights_only=True), strict=True)
    disable_tf32()
    twin = Twin(net.eval(), id="golden", device="cuda", cache_mb=0)
    assert twin.batch_buckets  # the GPU default: the recurrent step is replayed from a captured graph
    stimuli = golden["stimuli"].astype(np.uint8)
    assert np.array_equal(stimuli, golden["stimuli"])  # the fixture's frames are whole pixel values
    full = twin.predict(stimuli, golden["perspectives"], golden["modulations"], use_cache=False)
    np.testing.assert_allclose(full, golden["response_full"], rtol=1e-4, atol=1e-5)
    plain = twin.predict(stimuli, use_cache=False)
    np.testing.assert_allclose(plain, golden["response_default"], rtol=1e-4, atol=1e-5)


def test_cuda_graph_replay_equals_plain_launches_and_the_cpu(small_net, videos):
    """Replaying the captured recurrent step gives the plain step's numbers (3 videos padded to the bucket of 4),
    every video alone gives its row of the batch, and CUDA agrees with the CPU."""
    disable_tf32()
    graphed = Twin(small_net, id="g", device="cuda", cache_mb=0)
    plain = Twin(small_net, id="p", device="cuda", cache_mb=0, batch_buckets=False)
    out_graphed = varied(graphed.predict(videos, use_cache=False))
    out_plain = plain.predict(videos, use_cache=False)
    np.testing.assert_allclose(out_graphed, out_plain, rtol=1e-5, atol=1e-6)
    assert graphed._stepper.graphs and plain._stepper is None  # graphs were captured and replayed
    for i in range(len(videos)):
        np.testing.assert_allclose(graphed.predict(videos[i], use_cache=False), out_graphed[i], rtol=1e-5, atol=1e-6)
    cpu = Twin(Network(SMALL).eval(), id="c", device="cpu", cache_mb=0)
    cpu.network.load_state_dict({k: v.cpu() for k, v in small_net.state_dict().items()})
    np.testing.assert_allclose(cpu.predict(videos, use_cache=False), out_graphed, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_on_cuda_is_close_to_float32_and_recorded(small_net, videos, precision):
    exact = varied(Twin(small_net, id="x", device="cuda", cache_mb=0).predict(videos, use_cache=False))
    low = Twin(small_net, id="x", device="cuda", precision=precision, cache_mb=0)
    approx = low.predict(videos, use_cache=False)
    assert low.metadata.precision == precision and approx.dtype == np.float32
    rel = np.abs(approx - exact) / np.abs(exact)
    assert 0 < rel.max() < 0.1 and np.median(rel) < 0.02
    session = low.stream()
    streamed = np.stack([session.step(frame) for frame in videos[0]])
    np.testing.assert_allclose(streamed, approx[0], rtol=3e-2, atol=1e-4)
