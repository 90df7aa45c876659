"""Parity of twin_explorer.model with the reference implementation (../shared/fixtures/fnn)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from twin_explorer.model import Network, NetworkConfig
from twin_explorer.model.perspective import retina_grid, rotation


@pytest.fixture(scope="module")
def golden(request):
    from conftest import require_fnn_fixtures

    root = require_fnn_fixtures()
    g = dict(np.load(root / "golden_io.npz"))
    net = Network(NetworkConfig.microns(8))
    net.load_state_dict(torch.load(root / "microns_u8_state.pt", weights_only=True), strict=True)
    net.eval()
    g["root"] = root
    return net, g


def close(ours, golden, factor=1e-5):
    ours = ours.detach().numpy() if torch.is_tensor(ours) else ours
    bound = factor * np.abs(golden).max()
    err = np.abs(ours - golden).max()
    assert err <= bound, f"max abs error {err:.3g} > {bound:.3g}"


def test_state_dict_matches_manifest(fnn_fixtures):
    manifest = json.loads((fnn_fixtures / "state_dict_manifest_u8.json").read_text())
    state = Network(NetworkConfig.microns(8)).state_dict()
    assert list(state) == list(manifest)  # same keys, same (registration) order
    for key, spec in manifest.items():
        assert list(state[key].shape) == spec["shape"], key
        assert str(state[key].dtype).removeprefix("torch.") == spec["dtype"], key
    n_params = sum(p.numel() for p in Network(NetworkConfig.microns(8)).parameters())
    assert n_params == 4_538_229 + 522 * 8


@pytest.mark.parametrize("name, persp, mod", [
    ("response_full", True, True), ("response_default", False, False),
    ("response_perspective_only", True, False), ("response_modulation_only", False, True)])
def test_responses_match_reference(golden, name, persp, mod):
    net, g = golden
    video = torch.from_numpy(g["stimuli"]).float()[None]
    zeros = torch.zeros(1, len(video[0]), 2)
    p = torch.from_numpy(g["perspectives"])[None] if persp else zeros
    m = torch.from_numpy(g["modulations"])[None] if mod else zeros
    with torch.inference_mode():
        out = net(video, p, m)[0].numpy()
    np.testing.assert_allclose(out, g[name], rtol=1e-5, atol=1e-6)


def test_intermediates_match_reference(golden):
    net, g = golden
    video = torch.from_numpy(g["stimuli"][:3]).float()
    P = torch.from_numpy(g["perspectives"][:3])
    M = torch.from_numpy(g["modulations"][:3])
    with torch.inference_mode():
        angles = net.perspective.angles(P)
        close(angles, g["f0to2_perspective_angles"])
        close(rotation(angles), g["f0to2_perspective_rmat"])
        grid = net.perspective.monitor_grid(P[:1])[0].numpy()
        ok = np.abs(g["f0_monitor_grid"]).max(-1) < 2
        assert ok.mean() > 0.5
        assert np.abs(grid[ok] - g["f0_monitor_grid"][ok]).max() <= 1e-5
        retina = net.perspective(video[:, None] / 255.0, P)
        close(retina, g["f0to2_perspective_out"], 2e-4)
        close(net.modulation.mlp(M.repeat(1, 4)), g["f0to2_modulation_mlp_out"])
        mu, _ = net.modulation(M[None])
        close(mu[0], g["f0to2_modulation_out"])
        first = net.core.feedforward.inputs[0]
        x = F.pad(retina[:1, :, None], (2, 2, 2, 2, 0, 0), mode="replicate")
        x0 = F.conv3d(x, first.kernel(), first.bias(), stride=(1, 2, 2))
        close(x0[0, :8, 0], g["f0_ff_input0_out_s0_ch0to7"], 2e-4)
        feats, _ = net.core.feedforward(retina.transpose(0, 1)[None])  # [1, 512, 3, 16, 24]
        ff = feats[0].view(4, 128, 3, 16, 24).permute(2, 0, 1, 3, 4)
        close(ff[:, :, :16], g["f0to2_feedforward_out_ch0to15"])
        hidden, _ = net.core.recurrent(feats, mu)
        core = net.core.recurrent.output(hidden)[0].transpose(0, 1)  # [3, 512, 16, 24]
        close(core.reshape(3, 4, 128, 16, 24)[:, :, :32], g["f0to2_core_out_ch0to31"])
        pos = net.readout.positions().view(1, -1, 1, 2).expand(3, -1, -1, -1)
        at_units = F.grid_sample(core, pos, padding_mode="border", align_corners=False)[..., 0]
        close(at_units, g["f0to2_core_at_units"])
        close(net.readout(core, reduce=False), g["f0to2_readout_streams"])
        close(net.readout(core), g["f0to2_readout_mean"])
        close(net.core.feedforward.inputs[1].kernel()[:64, :, 0, 0, 0], g["eff_weight_ff_inputs1_stream0"])
        close(net.core.recurrent.proj_x[0].dense()[0], g["eff_weight_recurrent_intergroup_stream0"])
        assert torch.equal(net.core.recurrent.proj_x[0].dense()[0].view(8, 32, 8, 32)[2, :, 2], torch.zeros(32, 32))


def test_retina_grid_recomputed_matches_buffer(golden):
    net, _ = golden
    assert torch.allclose(retina_grid(128, 192), net.perspective.retina.grid, atol=1e-6)


def test_chunked_equals_whole(golden):
    """Feeding a video in chunks (state carried) equals one pass: the temporal FIFOs and LSTMs carry over."""
    net, g = golden
    video = torch.from_numpy(g["stimuli"]).float()[None]
    P = torch.from_numpy(g["perspectives"])[None]
    M = torch.from_numpy(g["modulations"])[None]
    with torch.inference_mode():
        whole = net(video, P, M)
        state, parts = None, []
        for sl in (slice(0, 1), slice(1, 7), slice(7, 24)):
            out, state = net.run(video[:, sl], P[:, sl], M[:, sl], state)
            parts.append(out)
    assert state.frames == 24
    torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=1e-6, atol=1e-7)


def test_small_config_builds_and_runs():
    torch.manual_seed(0)
    cfg = NetworkConfig(units=5, streams=2, ff_channels=(8, 16, 16), ff_groups=(1, 2, 2), ff_out=16,
                        rec_input=32, rec_hidden=32, rec_common=64, rec_groups=4, rec_out=16)
    net = Network(cfg)
    torch.nn.init.normal_(net.readout.feature.weights[0], std=0.1)
    out = net(torch.rand(2, 4, 144, 256) * 255, torch.zeros(2, 4, 2), torch.zeros(2, 4, 2))
    assert out.shape == (2, 4, 5) and torch.isfinite(out).all() and (out > 0).all()
    out.sum().backward()  # trainable end to end
    assert net.core.recurrent.conv.weights[0].grad is not None
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg


def test_uint8_video_equals_float_video():
    """8-bit frames take the gamma lookup table; the result must be the float path's, bit for bit."""
    torch.manual_seed(0)
    cfg = NetworkConfig(units=6, streams=1, retina_shape=(16, 24), perspective_features=4, perspective_layers=1,
                        modulation_features=4, ff_channels=(4, 8), ff_groups=(1, 2), ff_pools=(2, 1), ff_out=8,
                        rec_input=8, rec_hidden=8, rec_common=8, rec_groups=2, rec_out=8)
    net = Network(cfg).eval()
    torch.nn.init.normal_(net.readout.feature.weights[0], std=0.3)
    video = torch.randint(0, 256, (2, 5, 144, 256), dtype=torch.uint8)
    persp, mod = torch.randn(2, 5, 2), torch.randn(2, 5, 2)
    with torch.no_grad():
        torch.testing.assert_close(net(video, persp, mod), net(video.float(), persp, mod), rtol=0, atol=0)


def test_channels_last_helpers_equal_the_standard_layout():
    """The CPU feedforward keeps activations channels-last; its concatenation and pooling must not change values."""
    from twin_explorer.model.feedforward import avg_pool_hw
    from twin_explorer.model.layers import catg

    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(2, 8, 3, 6, 10, generator=g) for _ in range(3)]
    last = [p.contiguous(memory_format=torch.channels_last_3d) for p in parts]
    for groups in (1, 2, 4):
        out = catg(last, groups)
        assert out.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.equal(out, catg(parts, groups))
    pooled = avg_pool_hw(last[0], 2)
    assert pooled.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(pooled, F.avg_pool3d(parts[0], (1, 2, 2)), rtol=0, atol=1e-6)
    torch.testing.assert_close(avg_pool_hw(parts[0], 2), F.avg_pool3d(parts[0], (1, 2, 2)), rtol=0, atol=1e-6)


def test_retina_field_of_view_is_configurable():
    """The published retina spans ±75° azimuth; a config can narrow it (the demo twin: ±50°) with the same pixels."""
    assert NetworkConfig(units=3).retina_degrees == 75.0
    cfg = NetworkConfig(units=3, streams=1, retina_shape=(16, 24), retina_degrees=50.0, ff_channels=(4, 8),
                        ff_groups=(1, 2), ff_pools=(2, 1), ff_out=8, rec_input=8, rec_hidden=8, rec_common=8,
                        rec_groups=2, rec_out=8)
    grid = Network(cfg).perspective.retina.grid
    edge = torch.rad2deg(torch.acos(grid[8, [0, -1], 2]))  # middle row, outermost columns: eccentricity
    torch.testing.assert_close(edge, torch.full((2,), 50.0 * 23 / 24), atol=0.5, rtol=0)
    wide = torch.rad2deg(torch.acos(Network(replace(cfg, retina_degrees=75.0)).perspective.retina.grid[8, 0, 2]))
    assert wide > edge[0] + 20
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    for bad in (0.0, -10.0, 120.0):
        with pytest.raises(ValueError, match="retina degrees"):
            Network(replace(cfg, retina_degrees=bad))
