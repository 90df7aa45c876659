"""The Twin contract: validation, batching, chunking, caching, streaming and the differentiable path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twin_explorer.engine.chunks import estimate_frame_bytes
from twin_explorer.engine.contract import TwinLike, validate_behaviour, validate_stimuli
from twin_explorer.engine.devices import autocast_dtype, resolve_device
from twin_explorer.engine.twin import Twin
from twin_explorer.model import Network, NetworkConfig
from twin_explorer.store import BytesLRU

SMALL = NetworkConfig(units=6, streams=2, ff_channels=(8, 16, 16), ff_groups=(1, 2, 2), ff_out=16,
                      rec_input=32, rec_hidden=32, rec_common=64, rec_groups=4, rec_out=16)


@pytest.fixture(scope="module")
def twin():
    torch.manual_seed(0)
    net = Network(SMALL)
    with torch.no_grad():
        for p in net.readout.feature.weights:
            p.normal_(0, 0.3)
        net.readout.position.mu.normal_(0, 0.5)
        for w in net.modulation.mlp.linears[0].weights:
            w.normal_(0, 0.5)
        net.perspective.mlp.linears[0].weights[0].normal_(0, 0.5)
    return Twin(net, id="small-test")


@pytest.fixture(scope="module")
def video():
    return np.random.default_rng(1).integers(0, 256, (2, 10, 144, 256), dtype=np.uint8)


def test_contract(twin):
    assert isinstance(twin, TwinLike)
    assert twin.n_units == 6 and twin.frame_rate == 30.0 and twin.frame_shape == (144, 256)
    assert list(twin.units.columns[:3]) == ["session", "scan_idx", "unit_id"]
    assert twin.units.index.name == "readout_id"


def test_single_and_batch_agree(twin, video):
    single = twin.predict(video[1], use_cache=False)
    batch = twin.predict(video, use_cache=False)
    assert single.shape == (10, 6) and single.dtype == np.float32
    assert batch.shape == (2, 10, 6)
    np.testing.assert_allclose(batch[1], single, rtol=1e-5, atol=1e-6)
    assert not np.allclose(batch[0], batch[1])  # the videos differ, so must the responses


def test_behaviour_changes_responses(twin, video):
    rng = np.random.default_rng(2)
    p, m = rng.normal(size=(10, 2)).astype(np.float32), rng.normal(size=(10, 2)).astype(np.float32)
    base = twin.predict(video[0])
    assert not np.allclose(twin.predict(video[0], perspectives=p), base)
    assert not np.allclose(twin.predict(video[0], modulations=m), base)
    # [T,2] behaviour broadcasts over a batch; [N,T,2] is per video
    b = twin.predict(video, perspectives=p, modulations=m)
    b2 = twin.predict(video, perspectives=np.stack([p, p]), modulations=np.stack([m, m]))
    np.testing.assert_allclose(b, b2, rtol=1e-6)


def test_unit_selection(twin, video):
    full = twin.predict(video[0])
    np.testing.assert_allclose(twin.predict(video[0], units=[4, 1]), full[:, [4, 1]], rtol=1e-5, atol=1e-6)
    mask = np.zeros(6, bool)
    mask[[0, 5]] = True
    np.testing.assert_allclose(twin.predict(video[0], units=mask), full[:, [0, 5]], rtol=1e-5, atol=1e-6)
    for bad in ([6], [-1], [], [0.5]):
        with pytest.raises(ValueError, match="readout|units"):
            twin.predict(video[0], units=bad)


def test_memory_chunking_is_exact(video):
    torch.manual_seed(0)
    net = Network(SMALL)
    big = Twin(net, memory_budget_mb=4096)
    tiny = Twin(net, memory_budget_mb=1)  # forces one video and one frame per pass
    assert tiny.chunk_plan(2, 10, 6) == (1, 1)
    np.testing.assert_allclose(tiny.predict(video, use_cache=False), big.predict(video, use_cache=False),
                               rtol=1e-5, atol=1e-6)


def test_streaming_equals_predict(twin, video):
    p = np.random.default_rng(3).normal(size=(10, 2)).astype(np.float32)
    expected = twin.predict(video[0], perspectives=p)
    session = twin.stream()
    got = np.stack([session.step(f, perspective=pp) for f, pp in zip(video[0], p)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    session.reset()
    np.testing.assert_allclose(session.step(video[0, 0], perspective=p[0]), expected[0], rtol=1e-5, atol=1e-6)
    batch = twin.stream().step(video[:, 0])
    assert batch.shape == (2, 6)


def test_cache_hits_and_is_keyed_on_inputs(twin, video):
    twin.cache.clear()
    a = twin.predict(video[0])
    hits = twin.cache.hits
    b = twin.predict(video[0])
    assert twin.cache.hits == hits + 1
    np.testing.assert_array_equal(a, b)
    b[:] = 0  # the cache hands out copies
    np.testing.assert_array_equal(twin.predict(video[0]), a)
    other = video[0].copy()
    other[0, 0, 0] ^= 1
    misses = twin.cache.misses
    twin.predict(other)
    assert twin.cache.misses == misses + 1


def test_result_cache_is_bounded():
    cache = BytesLRU(max_bytes=1000, copy=True)  # the engine's result cache
    for i in range(10):
        cache.put(str(i), np.zeros(50, np.float32))  # 200 bytes each
    assert len(cache) == 5 and cache.get("0") is None and cache.get("9") is not None


def test_response_is_differentiable_and_matches_predict(twin, video):
    x = torch.tensor(video[:1], dtype=torch.float32, requires_grad=True)
    r = twin.response(x, units=[2])
    r[0, -1, 0].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    np.testing.assert_allclose(r.detach().numpy()[0, :, 0], twin.predict(video[0])[:, 2], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="float torch tensor"):
        twin.response(video)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 144, 255), np.uint8), "144×255"),
    (np.zeros((144, 256), np.uint8), "2 dimensions"),
    (np.zeros((0, 144, 256), np.uint8), "empty"),
    (np.full((2, 144, 256), np.nan), "NaN"),
    (np.full((2, 144, 256), 300.0), "outside 0–255"),
    (np.full((2, 144, 256), -1, np.int16), "outside 0–255"),
    (np.full((2, 144, 256), 0.5), "fractional"),
    (np.zeros((2, 144, 256), "U1"), "dtype"),
])
def test_bad_stimuli_are_rejected(twin, bad, message):
    with pytest.raises(ValueError, match=message):
        twin.predict(bad)


def test_whole_number_arrays_are_accepted():
    arr, batched = validate_stimuli(np.full((2, 144, 256), 200.0))
    assert arr.dtype == np.uint8 and arr.shape == (1, 2, 144, 256) and not batched


@pytest.mark.parametrize("bad, message", [
    (np.zeros((9, 2)), "cover 9 frames"),
    (np.zeros((10, 3)), "shape"),
    (np.full((10, 2), np.inf), "NaN or infinite"),
    (np.zeros((3, 10, 2)), "batch has 2"),
    (np.zeros(2), "dimensions"),
])
def test_bad_behaviour_is_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        validate_behaviour("perspectives", bad, 2, 10, True)


def test_devices_and_precision():
    from twin_explorer.engine import devices

    assert resolve_device(None).type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_dtype("float8", torch.device("cpu"))
    if not devices.cpu_bf16_support()[0]:  # this project's AMD EPYC: no AMX / AVX-512-BF16
        with pytest.raises(ValueError, match="needs native bfloat16"):
            autocast_dtype("bfloat16", torch.device("cpu"))
    with pytest.raises(ValueError, match="GPUs only"):
        autocast_dtype("float16", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_time_chunks_cover_frames_with_few_shapes():
    from twin_explorer.engine.twin import time_chunks

    for n, per in [(1, 1), (10, 4), (33, 32), (100, 24), (7, 64)]:
        chunks = time_chunks(n, per)
        assert chunks[0].start == 0 and chunks[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
        lengths = {c.stop - c.start for c in chunks}
        assert all(l & (l - 1) == 0 and l <= per for l in lengths)  # powers of two, within the budget


def test_shared_grey_prefix_runs_once_with_the_same_result(twin):
    """Videos that start alike (an experiment's grey pre-blank) give the same responses as run one by one."""
    from twin_explorer.engine import twin as engine

    rng = np.random.default_rng(4)
    videos = np.full((3, 12, 144, 256), 128, np.uint8)
    videos[:, 6:] = rng.integers(0, 256, (3, 6, 144, 256), dtype=np.uint8)
    tensor = torch.from_numpy(videos)
    zeros = torch.zeros(3, 12, 2)
    assert engine.shared_prefix(tensor, zeros, zeros) == 6
    moved = zeros.clone()
    moved[1, 3] = 0.5  # a different eye position ends the shared part there
    assert engine.shared_prefix(tensor, moved, zeros) == 3
    batch = twin.predict(videos, use_cache=False)
    for i in range(3):
        np.testing.assert_allclose(batch[i], twin.predict(videos[i], use_cache=False), rtol=1e-5, atol=1e-6)
    same = twin.predict(np.stack([videos[0]] * 2), use_cache=False)  # identical videos share everything
    np.testing.assert_allclose(same[1], same[0], rtol=0, atol=0)


def test_repeated_frames_are_found_and_never_confused():
    from twin_explorer.engine.twin import repeated_frames

    rng = np.random.default_rng(5)
    distinct = torch.from_numpy(rng.integers(0, 256, (5, 144, 256), dtype=np.uint8))
    order = torch.tensor([0, 1, 2, 0, 1, 2, 3, 4, 3, 4, 0, 0])
    frames, eyes = distinct[order], torch.zeros(12, 2)
    keep, inverse = repeated_frames(frames, eyes)
    assert keep is not None and len(keep) == 5
    assert torch.equal(frames[keep][inverse], frames)
    eyes2 = eyes.clone()
    eyes2[3] = 1.0  # the same picture seen from another eye position is another retina image
    keep2, inverse2 = repeated_frames(frames, eyes2)
    assert len(keep2) == 6 and torch.equal(frames[keep2][inverse2], frames)
    # frames that differ only at pixels the fingerprint does not sample are caught by the exact check
    sneaky = frames.clone()
    sneaky[3, 0, 1] ^= 1
    assert repeated_frames(sneaky, eyes) == (None, None)
    assert repeated_frames(distinct, torch.zeros(5, 2)) == (None, None)  # nothing repeats: left alone


def test_periodic_videos_predict_as_without_deduplication(twin):
    from twin_explorer.engine import twin as engine

    rng = np.random.default_rng(6)
    cycle = rng.integers(0, 256, (4, 144, 256), dtype=np.uint8)
    video = np.concatenate([cycle] * 4)  # 16 frames, 4 distinct
    fast = twin.predict(video, use_cache=False)
    original = engine.repeated_frames
    engine.repeated_frames = lambda frames, eyes: (None, None)
    try:
        plain = twin.predict(video, use_cache=False)
    finally:
        engine.repeated_frames = original
    np.testing.assert_allclose(fast, plain, rtol=1e-6, atol=1e-7)


def test_padded_passes_leave_responses_unchanged(twin, video):
    from twin_explorer.engine.twin import padded_chunks

    assert [(s.start, s.stop) for s in padded_chunks(30, 1000)] == [(0, 32)]  # one pass instead of 16+8+4+2
    assert [(s.start, s.stop) for s in padded_chunks(63, 25)] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    assert [(s.start, s.stop) for s in padded_chunks(24, 100)] == [(0, 16), (16, 24)]  # 8 padded frames: no
    full = twin.predict(video[0], use_cache=False)  # 10 frames: 8 + 2
    cut = twin.predict(video[0, :7], use_cache=False)  # 7 frames run as one padded pass of 8
    np.testing.assert_allclose(cut, full[:7], rtol=1e-5, atol=1e-6)


def test_bfloat16_is_refused_on_a_cpu_without_native_support(monkeypatch):
    """This project's test machines include CPUs without AMX/AVX-512-BF16: the refusal says why and what is accepted."""
    from twin_explorer.engine import devices

    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"fpu", "avx2", "fma"})
    assert devices.cpu_bf16_support()[0] is False
    assert devices.accepted_precisions(torch.device("cpu")) == ["float32"]
    with pytest.raises(ValueError, match=r"AMX or AVX-512-BF16.*avx512_bf16.*Accepted on this machine's CPU: float32"):
        Twin(Network(SMALL), precision="bfloat16", device="cpu")
    with pytest.raises(ValueError, match="float16' is offered on GPUs only"):
        autocast_dtype("float16", torch.device("cpu"))
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    supported, why = devices.cpu_bf16_support()
    assert supported and "amx_bf16" in why
    assert autocast_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16


def test_bfloat16_on_cpu_runs_close_to_float32_and_says_so(monkeypatch, twin, video):
    """The bf16 CPU path itself, with the detection forced (it runs, emulated, on any CPU): every entry point runs
    in bfloat16, close to float32 but not identical to it, and the twin's metadata records the precision."""
    from twin_explorer.engine import devices

    monkeypatch.setattr(devices, "cpu_bf16_support", lambda: (True, "forced by the test"))
    low = Twin(twin.network, id="small-test", precision="bfloat16", device="cpu", cache_mb=0)
    assert low.metadata.precision == "bfloat16" and twin.metadata.precision == "float32"
    exact, approx = twin.predict(video, use_cache=False), low.predict(video, use_cache=False)
    assert approx.dtype == np.float32 and approx.shape == exact.shape
    rel = np.abs(approx - exact) / np.abs(exact)
    assert 0 < rel.max() < 0.05 and np.median(rel) < 0.01
    session = low.stream()
    streamed = np.stack([session.step(frame) for frame in video[0]])
    np.testing.assert_allclose(streamed, approx[0], rtol=2e-2)
    assert not np.array_equal(streamed, exact[0])  # the stream ran in bfloat16 too
    with torch.no_grad():
        differentiable = low.response(torch.from_numpy(video[:1]).float()).numpy()
    np.testing.assert_allclose(differentiable[0], approx[0], rtol=2e-2)


def test_batch_buckets_pad_passes_without_changing_results(twin, video):
    """The GPU path's fixed shapes, exercised on CPU: 3 videos run as a padded pass of 4 give the unpadded results,
    and progress counts only real frames."""
    from twin_explorer.engine.graphs import BUCKETS, bucket_for, pad_batch

    assert [bucket_for(n) for n in (1, 2, 3, 5, 9, 16, 17, 33, 64)] == [1, 2, 4, 8, 16, 16, 32, 64, 64]
    with pytest.raises(ValueError, match="1..64"):
        bucket_for(65)
    x = torch.arange(6.0).view(3, 2)
    padded = pad_batch(x, 4)
    assert padded.shape == (4, 2) and torch.equal(padded[:3], x) and torch.equal(padded[3], x[2])
    three = np.concatenate([video, video[:1, ::-1]])  # 3 distinct videos
    plain = twin.predict(three, use_cache=False)
    bucketed = Twin(twin.network, id="small-test", batch_buckets=True, cache_mb=0)
    assert bucketed.chunk_plan(100, 10, 6)[0] <= BUCKETS[-1]
    bucketed.memory_budget_bytes, bucketed.budget_is_default = 640 * estimate_frame_bytes(twin.network, 6), False
    assert bucketed.chunk_plan(64, 30, 6) == (64, 10)  # 64 videos a pass, 10 frames each: not one frame a pass
    assert bucketed.chunk_plan(100, 30, 6) == (50, 12)  # two equal passes of at most the largest bucket
    seen = []
    out = bucketed.predict(three, use_cache=False, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(out, plain, rtol=1e-5, atol=1e-7)
    assert seen[-1] == (30, 30) and all(done <= total for done, total in seen)


def test_passes_are_equal_in_size(twin):
    """A batch larger than the budget runs in equal passes (one kernel shape, no one-video tail), and on CPU a pass
    holds up to 16 video-frames even past the default budget (smaller passes were slower than the frame-by-frame
    loop, and batches slower than one video at a time)."""
    per_frame = estimate_frame_bytes(twin.network, 6)
    strict = Twin(twin.network, memory_budget_mb=5 * per_frame / 2**20, cache_mb=0)  # a budget given is a limit
    assert strict.chunk_plan(16, 10, 6) == (4, 1)  # 4 passes of 4, not 5 + 5 + 5 + 1
    assert strict.chunk_plan(3, 10, 6) == (3, 1)
    assert strict.chunk_plan(1, 10, 6) == (1, 5)
    guided = Twin(twin.network, cache_mb=0)  # the default budget is a guide on CPU
    guided.memory_budget_bytes = 5 * per_frame
    assert guided.chunk_plan(40, 10, 6) == (4, 4)  # 16 video-frames a pass, at least 4 frames of each video
    assert guided.chunk_plan(16, 10, 6) == (4, 4)  # not 16 videos x 1 frame: short passes re-read history
    assert guided.chunk_plan(16, 2, 6) == (8, 2)  # 2-frame videos: 8 a pass
    assert guided.chunk_plan(1, 10, 6) == (1, 10)  # one video: up to 16 frames a pass
    assert guided.chunk_plan(4, 10, 6) == (4, 4)  # 4 videos: 4 frames a pass, not 1


def test_gpu_default_budget_follows_the_free_memory(monkeypatch):
    """On CUDA a pass may use a share of the memory free when the twin is made (bounded both ways); CPU keeps its
    small budget."""
    from twin_explorer.engine.chunks import default_budget_mb

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * 2**30, 141 * 2**30))  # an H200
    assert default_budget_mb(cuda) == 0.4 * 100 * 1024
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (200 * 2**30, 200 * 2**30))
    assert default_budget_mb(cuda) == 48 * 1024
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * 2**30, 8 * 2**30))  # a busy laptop GPU
    assert default_budget_mb(cuda) == 1024
    assert default_budget_mb(torch.device("cpu")) == 384
