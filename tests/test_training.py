"""Training the demo twin: loss goes down, checkpoints resume exactly, save/load round trip, frozen-core
adaptation, and the shipped demo twin reproducing its model card's held-out accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from twin_explorer.model import Network, NetworkConfig
from twin_explorer.paths import bundled
from twin_explorer.training import RecordingCache, RecordingSpec, TrainConfig
from twin_explorer.training.adapt import adaptable_parameters, core_digest, transfer_core
from twin_explorer.training.readout import (cached_features, fit_readout, init_perspective, init_readout,
                                            poisson_loss, position_search)
from twin_explorer.training.train import Sampler, train
from twin_explorer.twins.demo import load_demo_twin, load_network, save_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")


DEMO_DIR = bundled("demo_twin")

TINY = dict(streams=1, retina_shape=(16, 24), perspective_features=4, perspective_layers=1, modulation_features=4,
            ff_channels=(4, 8), ff_groups=(1, 2), ff_pools=(2, 1), ff_out=8, rec_input=8, rec_hidden=8,
            rec_common=8, rec_groups=2, rec_out=8)



@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> RecordingCache:
    spec = RecordingSpec(n_neurons=12, n_clips=3, duration_s=2.0, n_oracle=1, repeats=3)
    return RecordingCache(spec, tmp_path_factory.mktemp("recordings"), progress=False)


def tiny_net(units: int = 12, seed: int = 0) -> Network:
    torch.manual_seed(seed)
    return Network(NetworkConfig(units=units, **TINY))


def batch_loss(net: Network, cache: RecordingCache, cfg: TrainConfig) -> float:
    sampler = Sampler(cache, cache.train, cfg, cache.mean_response())
    sampler.rng = np.random.default_rng(123)
    video, per, mod, y = sampler.batch()
    with torch.no_grad():
        r, _ = net.run(video, per, mod, log=True)
    return float(poisson_loss(r[:, cfg.burn_in:], y[:, cfg.burn_in:]))


def test_recording_cache_is_reused(cache, tmp_path):
    assert len(cache.train) == 3 and len(cache.oracle) == 1
    clip = cache.clip(cache.train[0])
    assert clip["stimulus"].shape == (60, 144, 256) and clip["responses"].shape == (1, 60, 12)
    again = RecordingCache(cache.spec, cache.folder.parent, progress=False)
    np.testing.assert_array_equal(again.clip(again.train[1])["responses"], cache.clip(cache.train[1])["responses"])
    with pytest.raises(ValueError, match="minutes"):
        cache.train_clips(minutes=5)
    with pytest.raises(ValueError, match="n_neurons"):
        RecordingSpec(n_neurons=0)


def test_short_training_lowers_the_loss(cache, tmp_path):
    net = tiny_net()
    init_readout(net, cache, cache.train)
    with torch.no_grad():  # start from a wrong overall rate so that there is something to learn quickly
        net.readout.biases[0].fill_(-1.0)
    cfg = TrainConfig(steps=25, batch=2, sample_frames=24, burn_in=4, lr=1e-2, checkpoint_every_s=1e9, threads=1)
    before = batch_loss(net, cache, cfg)
    hist = train(net, cache, cfg, tmp_path / "run", progress=False)
    after = batch_loss(net, cache, cfg)
    assert len(hist["loss"]) == 25
    assert after < before - 0.05, (before, after)


def test_init_perspective_centres_the_eye_but_stays_trainable():
    net = tiny_net()
    eyes = torch.tensor([[-1.0, 1.2], [0.0, 0.0], [2.0, -0.5]])
    assert net.perspective.angles(eyes).abs().max() > 0.05  # a random MLP turns the eye
    init_perspective(net)
    torch.testing.assert_close(net.perspective.angles(eyes), torch.zeros(3, 3))
    frame = torch.rand(1, 1, 144, 256)
    a = net.perspective(frame, eyes[:1])
    torch.testing.assert_close(a, net.perspective(frame, eyes[1:2]))
    a.sum().backward()  # the silenced layer's gains still learn
    assert net.perspective.mlp.linears[-1].gains[0].grad is not None


def test_init_readout_fits_the_initial_core(cache):
    net = tiny_net()
    cfg = TrainConfig(steps=1, batch=2, sample_frames=24, burn_in=4, threads=1)
    before = batch_loss(net, cache, cfg)
    info = init_readout(net, cache, cache.train, epochs=4)
    assert all(w.abs().sum() > 0 for w in net.readout.feature.weights)
    assert info["readout_fit_losses"][-1] <= info["readout_fit_losses"][0] + 1e-6
    assert batch_loss(net, cache, cfg) < before


def test_training_step_benchmark_runs():
    from twin_explorer.training.bench import train_step_seconds

    assert train_step_seconds(units=8, repeats=1) > 0


def test_interrupted_training_resumes_to_identical_weights(cache, tmp_path):
    cfg = TrainConfig(steps=4, batch=1, sample_frames=16, burn_in=2, checkpoint_every_s=0.0, threads=1)
    a = tiny_net()
    train(a, cache, cfg, tmp_path / "a", progress=False)
    b = tiny_net()
    train(b, cache, cfg, tmp_path / "b", progress=False, stop_after=2)
    assert json.loads(json.dumps(torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"])) == 2
    c = tiny_net(seed=5)  # a new process: weights come from the checkpoint, not from the initialisation
    train(c, cache, cfg, tmp_path / "b", progress=False)
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values()):
        torch.testing.assert_close(va, vc, msg=k)
    with pytest.raises(ValueError, match="another training configuration"):
        train(tiny_net(), cache, TrainConfig(steps=5, batch=1, sample_frames=16, burn_in=2, threads=1),
              tmp_path / "b", progress=False)


def test_save_load_round_trip(cache, tmp_path):
    net = tiny_net()
    init_readout(net, cache, cache.train)
    save_network(net, tmp_path / "twin", cache.mouse.units, {"id": "tiny"})
    net2, units, meta = load_network(tmp_path / "twin")
    assert meta["id"] == "tiny" and list(units.index) == list(range(12))
    assert {"session", "scan_idx", "unit_id", "area", "neuron_id"} <= set(units.columns)
    for (k, v), v2 in zip(net.state_dict().items(), net2.state_dict().values()):
        torch.testing.assert_close(v, v2, msg=k)
    twin = load_demo_twin(tmp_path / "twin")
    stim = cache.clip(cache.oracle[0])["stimulus"][:20]
    net.eval()
    with torch.no_grad():
        ref = net(torch.from_numpy(np.array(stim)).float()[None], torch.zeros(1, 20, 2), torch.zeros(1, 20, 2))[0]
    np.testing.assert_allclose(twin.predict(np.array(stim)), ref.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_network(tmp_path / "nothing")
    with pytest.raises(ValueError, match="rows"):
        save_network(net, tmp_path / "bad", cache.mouse.units.iloc[:3])


def test_adaptation_with_frozen_core_leaves_core_unchanged(cache, tmp_path):
    source = tiny_net(seed=1)
    target = tiny_net(seed=2)
    transfer_core(source, target)
    core_before = {k: v.clone() for k, v in target.state_dict().items() if k.startswith("core.")}
    readout_before = target.readout.position.mu.detach().clone()
    # perspective and modulation start from the source's and stay trainable; the core is frozen
    persp = {k: v.clone() for k, v in target.state_dict().items() if k.startswith(("perspective.", "modulation."))}
    for k, v in persp.items():
        torch.testing.assert_close(v, source.state_dict()[k], msg=k)
    trainable = {id(p) for p in adaptable_parameters(target)}
    for name, p in target.named_parameters():
        assert (id(p) in trainable) == (not name.startswith("core.") and name != "readout.position.sigma"), name
    X, Y = cached_features(target, cache, cache.train, progress=False)
    assert X.shape[0] == Y.shape[0] == 3 * (60 - 10)
    position_search(target, X, Y)
    fit_readout(target, X, Y, epochs=2, batch=64, progress=False)
    cfg = TrainConfig(steps=2, batch=1, sample_frames=16, burn_in=2, checkpoint_every_s=1e9, threads=1)
    train(target, cache, cfg, tmp_path / "adapt", parameters=adaptable_parameters(target), progress=False)
    for k, v in target.state_dict().items():
        if k in core_before:
            torch.testing.assert_close(v, core_before[k], msg=k)
            torch.testing.assert_close(v, source.state_dict()[k], msg=k)
    assert not torch.equal(target.readout.position.mu, readout_before)
    changed = [k for k, v in target.state_dict().items() if k in persp and not torch.equal(v, persp[k])]
    assert any(k.startswith("perspective.") for k in changed) and any(k.startswith("modulation.") for k in changed)


def test_core_digest_names_the_transferred_core_only():
    """Foundation-fit checkpoints are filed under the source core's digest, so a retrained twin never resumes them."""
    a, b = tiny_net(seed=1), tiny_net(seed=2)
    assert core_digest(a) != core_digest(b)
    same = tiny_net(seed=1)
    with torch.no_grad():
        same.readout.position.mu.add_(0.3)  # the readout is not transferred: same digest
    assert core_digest(same) == core_digest(a)
    with torch.no_grad():
        next(p for n, p in same.named_parameters() if n.startswith("core.")).add_(1e-3)
    assert core_digest(same) != core_digest(a)


def test_model_card_says_where_a_resumed_run_trained(tmp_path):
    from twin_explorer.training.ship import _where_trained

    meta = {"training_seconds": 1800, "trained_on_device": "cpu", "steps_on_device": {"cuda": 400, "cpu": 1200}}
    text = _where_trained(meta, tmp_path)
    assert "400 steps on one GPU (cuda)" in text and "1200 steps on 2 CPU cores" in text and "30 min" in text
    assert "on 2 shared CPU cores" in _where_trained({"training_seconds": 60}, tmp_path)


def test_cli_commands_registered():
    from typer.testing import CliRunner

    from twin_explorer.cli import typer_app

    out = CliRunner().invoke(typer_app, ["--help"]).output
    for name in ("train", "report", "adapt"):
        assert name in out


def test_cli_train_uses_the_recipe_unless_told(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import importlib

    from twin_explorer.cli import typer_app

    train_module = importlib.import_module("twin_explorer.training.train")  # the package re-exports a `train`

    seen = []
    monkeypatch.setattr(train_module, "train_twin", lambda spec, cfg, out, **kw: seen.append((spec, cfg)))
    runner = CliRunner()
    assert runner.invoke(typer_app, ["train", "-o", str(tmp_path)]).exit_code == 0
    assert seen[-1][1] == TrainConfig() and seen[-1][0].n_clips == 360
    assert runner.invoke(typer_app, ["train", "-o", str(tmp_path), "--batch", "2", "--steps", "7"]).exit_code == 0
    assert (seen[-1][1].batch, seen[-1][1].steps, seen[-1][1].lr) == (2, 7, TrainConfig().lr)


def test_shipped_demo_twin_reproduces_model_card_accuracy():
    from twin_explorer import load_twin
    from twin_explorer.experiments.metrics import twin_performance
    from twin_explorer.synthetic import SyntheticMouse

    card = json.loads((DEMO_DIR / "report.json").read_text())
    twin = load_twin()
    assert twin.id == "demo" and twin.n_units == card["natural_units"]
    spec = card["heldout_check"]
    mouse = SyntheticMouse(seed=0, n_neurons=twin.n_units)
    rec = mouse.record(n_clips=0, n_oracle=1, repeats=spec["repeats"], duration_s=spec["duration_s"],
                       seed=spec["seed"], progress=False)
    perf = twin_performance(twin, rec)
    assert abs(float(np.nanmedian(perf["cc_norm"])) - spec["cc_norm_median"]) < 0.02
    assert abs(float(np.nanmedian(perf["cc_abs"])) - spec["cc_abs_median"]) < 0.02


def test_model_card_figures(tmp_path):
    from twin_explorer.training.figures import accuracy_figure, all_figures

    assert accuracy_figure(tmp_path) is None and all_figures(tmp_path) == []  # nothing to draw yet
    rng = np.random.default_rng(0)
    nat = {"cc_abs": 0.5, "cc_max": 0.7, "cc_norm": 0.8}
    fams = [{"stimulus": s, "cc_abs": 0.4, "cc_max": 0.6, "cc_norm": 0.7} for s in ("gratings", "dots")]
    (tmp_path / "report.json").write_text(json.dumps({"natural": nat, "families": fams}))
    truth = rng.uniform(0, 360, 50)
    import pandas as pd

    pd.DataFrame({"true_pref_dir": truth, "pref_dir": truth + rng.normal(0, 5, 50), "true_gdsi": rng.uniform(0, 1, 50),
                  "true_gosi": rng.uniform(0, 1, 50), "gosi": rng.uniform(0, 1, 50),
                  "true_rf_az": rng.normal(0, 20, 50), "rf_az": rng.normal(0, 20, 50),
                  "true_rf_el": rng.normal(0, 10, 50), "rf_el": rng.normal(0, 10, 50)}
                 ).to_csv(tmp_path / "tuning_vs_truth_neurons.csv", index=False)
    pd.DataFrame({"minutes": [2, 5, 2, 5], "model": ["a", "a", "b", "b"], "cc_norm": [0.5, 0.6, 0.2, 0.4]}
                 ).to_csv(tmp_path / "adaptation.csv", index=False)
    (tmp_path / "history.json").write_text(json.dumps({"loss": list(1 - np.linspace(0, 0.1, 120))}))
    pd.DataFrame({"n_mice": [1, 2, 4], "cc_norm": [0.79, 0.78, 0.77], "pref_dir_median_err_deg": [17, 26, 49],
                  "pref_ori_median_err_deg": [7, 10, 13], "sf_within_1.5x_fraction": [0.34, 0.51, 0.69],
                  "gosi_pearson_r": [0.55, 0.53, 0.54]}).to_csv(tmp_path / "foundation_curve.csv", index=False)
    paths = all_figures(tmp_path)
    assert sorted(p.name for p in paths) == ["accuracy.png", "adaptation.png", "foundation_curve.png", "loss.png",
                                             "tuning_vs_truth.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000


def test_model_card_shows_the_number_of_mice_curve(tmp_path):
    import shutil

    import pandas as pd

    from twin_explorer.paths import bundled
    from twin_explorer.training.ship import write_model_card

    card = tmp_path / "twin"
    shutil.copytree(bundled("demo_twin"), card)
    (card / "foundation_curve.csv").unlink(missing_ok=True)
    assert "number of training mice" not in write_model_card(card).read_text()  # no curve, no section
    own = json.loads((card / "report.json").read_text())["natural"]["cc_norm"]
    pd.DataFrame({"n_mice": [1, 2], "minutes_per_mouse": 10.0, "steps": 1600, "core_device": "cuda",
                  "cc_norm": [own - 0.01, own + 0.02], "pref_dir_median_err_deg": [17.0, 26.0]}
                 ).to_csv(card / "foundation_curve.csv", index=False)
    text = write_model_card(card).read_text()
    section = text.split("## Foundation cores: fidelity against the number of training mice")[1].split("\n## ")[0]
    assert "| 2 | 10.000 | 1600 | cuda |" in section and "(1600)" in section
    assert f"CC_norm {own + 0.02:.3f} (2 mice), above this twin's {own:.3f}" in section
    pd.DataFrame({"n_mice": [1, 2], "minutes_per_mouse": 10.0, "steps": [400, 800], "core_device": "cuda",
                  "cc_norm": [own - 0.01, own - 0.02]}).to_csv(card / "foundation_curve.csv", index=False)
    section = write_model_card(card).read_text().split("number of training mice")[1]
    assert "400 steps per training mouse" in section and "same number of steps" not in section  # --steps-per-mouse
