"""The foundation-core recipe at tiny scale: mice share one core, train on natural video only, resume to identical
weights after an interruption, and the demo mouse (a mouse the core never saw) gets its readout on the frozen core."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from twin_explorer.model import NetworkConfig
from twin_explorer.stimuli.natural import make_natural_video
from twin_explorer.training import RecordingCache, TrainConfig
from twin_explorer.training.foundation import (HELD_OUT_SEEDS, FoundationSpec, foundation_curve, train_core)
from twin_explorer.twins.demo import load_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(streams=1, retina_shape=(16, 24), perspective_features=4, perspective_layers=1, modulation_features=4,
            ff_channels=(4, 8), ff_groups=(1, 2), ff_pools=(2, 1), ff_out=8, rec_input=8, rec_hidden=8,
            rec_common=8, rec_groups=2, rec_out=8)
SPEC = FoundationSpec(n_mice=2, minutes=4 / 60, n_neurons=6, clip_s=2.0, demo_neurons=6, demo_minutes=4 / 60,
                      demo_oracle=1)
CFG = TrainConfig(steps=4, batch=1, sample_frames=16, burn_in=2, checkpoint_every_s=0.0, threads=1)


def tiny_config(units: int) -> NetworkConfig:
    return NetworkConfig(units=units, **TINY)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    return tmp_path_factory.mktemp("recordings")


def test_held_out_mice_are_never_training_mice():
    assert 0 in HELD_OUT_SEEDS and 1 in HELD_OUT_SEEDS
    assert not set(SPEC.mouse_seeds()) & set(HELD_OUT_SEEDS) and len(set(SPEC.mouse_seeds())) == 2
    for first in (0, 1):
        with pytest.raises(ValueError, match="held-out mouse"):
            FoundationSpec(n_mice=2, first_seed=first)
    with pytest.raises(ValueError, match="held-out mouse"):
        FoundationSpec(n_mice=3, first_seed=5, demo_seed=7)
    with pytest.raises(ValueError, match="n_mice"):
        FoundationSpec(n_mice=0)


def test_training_mice_see_natural_video_only(recordings):
    for seed in SPEC.mouse_seeds():
        cache = RecordingCache(SPEC.recording(seed), recordings, progress=False)
        assert cache.spec.n_oracle == 0 and cache.spec.mouse_seed == seed
        again = cache.mouse.record(n_clips=1, n_oracle=0, duration_s=SPEC.clip_s, seed=cache.spec.seed,
                                   video_fn=make_natural_video, progress=False)
        np.testing.assert_array_equal(cache.clip(cache.train[0])["stimulus"], again["stimulus"].values[0])
    a, b = (RecordingCache(SPEC.recording(s), recordings, progress=False) for s in SPEC.mouse_seeds())
    assert not np.array_equal(a.clip(a.train[0])["stimulus"], b.clip(b.train[0])["stimulus"])  # own clips


def test_shared_core_resumes_to_identical_weights(recordings, tmp_path):
    whole, hist = train_core(SPEC, CFG, tmp_path / "whole", tiny_config, recordings, progress=False)
    nets = list(whole.values())
    assert nets[0].core is nets[1].core and hist["mouse"] == [100, 101, 100, 101]
    _, part = train_core(SPEC, CFG, tmp_path / "split", tiny_config, recordings, progress=False, stop_after=3)
    assert part["step"] == 3
    resumed, hist2 = train_core(SPEC, CFG, tmp_path / "split", tiny_config, recordings, progress=False)
    assert hist2["step"] == 4 and hist2["loss"][:3] == part["loss"]
    for (k, va), vb in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
    fresh, _ = train_core(SPEC, CFG, tmp_path / "fresh", tiny_config, recordings, progress=False, stop_after=0)
    changed = [not torch.equal(a, b) for a, b in zip(fresh["mouse100"].core.parameters(), nets[0].core.parameters())]
    assert any(changed)  # training moved the shared core
    with pytest.raises(ValueError, match="another foundation run"):
        train_core(SPEC, TrainConfig(steps=5, batch=1, sample_frames=16, burn_in=2, threads=1), tmp_path / "split",
                   tiny_config, recordings, progress=False)
    assert hist["steps_on_device"] == {"cpu": 4} and hist2["steps_on_device"] == {"cpu": 4}


def test_a_stop_signal_ends_the_core_training_after_a_whole_step_and_resumes_identically(recordings, tmp_path,
                                                                                          monkeypatch):
    """SIGTERM (a scheduler's or ``timeout``'s stop) mid-run: the step under way finishes, a checkpoint is written,
    KeyboardInterrupt is raised; the rerun ends with the weights of an uninterrupted run."""
    import os
    import signal

    import twin_explorer.training.foundation as foundation

    whole, _ = train_core(SPEC, CFG, tmp_path / "whole", tiny_config, recordings, progress=False)
    real_step, calls = foundation.optimisation_step, []

    def step_then_signal(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives during step 2
        return real_step(*args)

    monkeypatch.setattr(foundation, "optimisation_step", step_then_signal)
    with pytest.raises(KeyboardInterrupt, match="checkpoint is saved"):
        train_core(SPEC, CFG, tmp_path / "stopped", tiny_config, recordings, progress=False)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
    saved = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["history"]
    assert saved["step"] == 2 and len(calls) == 2
    monkeypatch.setattr(foundation, "optimisation_step", real_step)
    resumed, hist = train_core(SPEC, CFG, tmp_path / "stopped", tiny_config, recordings, progress=False)
    assert hist["step"] == CFG.steps
    for (k, va), vb in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)


def test_a_finished_core_is_read_back_without_the_recordings(recordings, tmp_path):
    """A core trained elsewhere (a GPU machine) is finished here from its checkpoint alone: no recording is made."""
    trained, _ = train_core(SPEC, CFG, tmp_path / "work", tiny_config, recordings, progress=False)
    empty = tmp_path / "no-recordings"
    again, hist = train_core(SPEC, CFG, tmp_path / "work", tiny_config, empty, progress=False)
    assert hist["step"] == CFG.steps and not empty.exists()
    for (k, va), vb in zip(trained.state_dict().items(), again.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
    kw = dict(net_config=tiny_config, finetune_steps=1, tuning=False, cache_dir=recordings, progress=False)
    cores = foundation_curve([1, 2], SPEC, CFG, tmp_path / "curve", core_only=True, **kw)
    assert cores.empty and not (tmp_path / "curve" / "mice1").exists()
    assert all(torch.load(tmp_path / "curve" / f"mice{n}-work" / "checkpoint.pt", weights_only=True)["history"]["step"]
               == CFG.steps for n in (1, 2))
    foundation_curve([1, 2], SPEC, CFG, tmp_path / "per-mouse", core_only=True, steps_per_mouse=2, **kw)
    assert [torch.load(tmp_path / "per-mouse" / f"mice{n}-work" / "checkpoint.pt", weights_only=True)["history"]["step"]
            for n in (1, 2)] == [2, 4]  # n mice, n times the steps
    with pytest.raises(ValueError, match="steps_per_mouse"):
        foundation_curve([1], SPEC, CFG, tmp_path / "bad", steps_per_mouse=0, **kw)
    unfinished = replace(CFG, steps=CFG.steps + 1)
    with pytest.raises(ValueError, match="another foundation run"):  # a longer recipe is another run, not a resume
        train_core(SPEC, unfinished, tmp_path / "work", tiny_config, empty, progress=False)


def test_curve_fits_the_unseen_demo_mouse_on_the_frozen_core(recordings, tmp_path):
    kw = dict(net_config=tiny_config, finetune_steps=2, tuning=False, cache_dir=recordings, progress=False)
    table = foundation_curve([1, 2], SPEC, CFG, tmp_path / "curve", **kw)
    assert table["n_mice"].tolist() == [1, 2] and np.isfinite(table["cc_norm"]).all()
    assert all(SPEC.demo_seed not in seeds for seeds in table["core_mouse_seeds"])
    net, units, meta = load_network(tmp_path / "curve" / "mice2")
    assert meta["foundation"]["core_mouse_seeds"] == [100, 101] and meta["trained_on"]["mouse_seed"] == 0
    assert {"cc_abs", "cc_max", "cc_norm"} <= set(units.columns)  # the twin ships its reliability
    # the demo twin's core is the trained shared core, unchanged by the readout fit (frozen)
    checkpoint = torch.load(tmp_path / "curve" / "mice2-work" / "checkpoint.pt", weights_only=True)["model"]
    for name, value in net.state_dict().items():
        if name.startswith("core."):
            torch.testing.assert_close(value, checkpoint[f"mouse100.{name}"], msg=name)
    again = foundation_curve([1, 2], SPEC, CFG, tmp_path / "curve", **kw)  # finished counts are read back
    pd.testing.assert_frame_equal(again.drop(columns="core_mouse_seeds"), table.drop(columns="core_mouse_seeds"))
    saved = pd.read_csv(tmp_path / "curve" / "foundation_curve.csv")
    assert saved["n_mice"].tolist() == [1, 2]
    assert json.loads((tmp_path / "curve" / "mice1" / "foundation.json").read_text())["core_mouse_seeds"] == [100]


def test_cli_train_foundation(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import twin_explorer.training.foundation as foundation
    from twin_explorer.cli import typer_app

    seen = []
    monkeypatch.setattr(foundation, "foundation_curve",
                        lambda counts, spec, cfg, out, **kw: seen.append((counts, spec, cfg, kw)) or pd.DataFrame())
    res = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--mice", "1,2", "--minutes",
                                         "3", "--steps", "7", "--no-tuning"])
    assert res.exit_code == 0, res.output
    counts, spec, cfg, kw = seen[-1]
    assert counts == [1, 2] and spec.n_mice == 2 and spec.minutes == 3 and cfg.steps == 7 and kw["tuning"] is False
    assert kw["device"] == torch.device("cpu") and kw["core_only"] is False and kw["steps_per_mouse"] is None
    res = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--steps-per-mouse", "400"])
    assert res.exit_code == 0 and seen[-1][3]["steps_per_mouse"] == 400
    both = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--steps", "5",
                                          "--steps-per-mouse", "4"])
    assert both.exit_code == 1 and "not both" in both.output
    bad = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--device", "tpu"])
    assert bad.exit_code == 1 and "unknown device 'tpu'" in bad.output
    bad = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--first-seed", "0"])
    assert bad.exit_code == 1 and "held-out" in bad.output
    bad = CliRunner().invoke(typer_app, ["train", "foundation", "-o", str(tmp_path), "--mice", "two"])
    assert bad.exit_code == 1 and "comma-separated whole numbers" in bad.output
