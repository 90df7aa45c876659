"""MEI tests on an analytic Gabor linear–nonlinear twin whose optimum under a norm constraint is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from twin_explorer.experiments.mei import MEIState, mei, mei_steps, mei_structure
from twin_explorer.experiments.plotting import plot_mei
from twin_explorer.monitor import DEFAULT_MONITOR

# (centre az, centre el, orientation deg (0 = vertical bars), sf cpd, sigma deg)
GABORS = [(-20.0, 5.0, 30.0, 0.06, 7.0), (15.0, -8.0, 100.0, 0.08, 6.0), (0.0, 0.0, 0.0, 0.05, 8.0)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class GaborTwin:
    """r_t = softplus(<G_u, (frame_t − 128)/128> + b_u): each unit a unit-norm Gabor filter in degree space.

    Under a fixed L2 norm of (frame − 128) the response is maximised by frame − 128 ∝ G_u (Cauchy–Schwarz), so the
    MEI is known analytically."""

    id = "gabor-test"
    frame_rate = 30.0
    frame_shape = (144, 256)
    device = torch.device("cpu")

    def __init__(self) -> None:
        az, el = DEFAULT_MONITOR.degree_grid
        filters = []
        for caz, cel, ori, sf, sig in GABORS:
            th = np.radians(ori)
            proj = (az - caz) * np.cos(th) + (el - cel) * np.sin(th)  # along the wave vector
            env = np.exp(-((az - caz) ** 2 + (el - cel) ** 2) / (2 * sig**2))
            g = env * np.cos(2 * np.pi * sf * proj)
            filters.append(g / np.linalg.norm(g))
        self.filters = torch.tensor(np.stack(filters), dtype=torch.float32)  # [U, H, W]
        self.bias = torch.tensor([-1.0, -0.5, -1.0])
        self.units = pd.DataFrame({"session": 1, "scan_idx": 1, "unit_id": [5, 6, 7]},
                                  index=pd.Index([0, 1, 2], name="readout_id"))
        self.calls = 0

    @property
    def n_units(self) -> int:
        return len(self.units)

    def response(self, video, perspectives=None, modulations=None, units=None):
        self.calls += 1
        idx = list(range(self.n_units)) if units is None else [int(u) for u in units]
        drive = torch.einsum("nthw,uhw->ntu", (video - 128.0) / 128.0, self.filters[idx])
        return torch.nn.functional.softplus(drive + self.bias[idx])

    def predict(self, stimuli, perspectives=None, modulations=None, units=None):
        arr = np.asarray(stimuli)
        batched = arr.ndim == 4
        v = torch.as_tensor(arr if batched else arr[None], dtype=torch.float32)
        with torch.no_grad():
            out = self.response(v, units=units).numpy()
        return out if batched else out[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(float), b.ravel().astype(float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))



@pytest.fixture(scope="module")
def twin() -> GaborTwin:
    return GaborTwin()


@pytest.mark.parametrize("precondition", ["blur", "fourier", None])
def test_image_mei_recovers_the_analytic_optimum(twin, precondition):
    ds = mei(twin, units=[0, 1], steps=30, n_frames=4, burn_in=1, contrast=8.0, precondition=precondition,
             progress=False)
    for i, u in enumerate([0, 1]):
        img = ds["mei"].sel(unit=u).isel(variant=0).values.astype(float) - 128.0
        assert cosine(img, twin.filters[u].numpy()) > 0.9, precondition
        # the MEI drives the unit far more than white noise of the same norm
        assert float(ds.mei_activation.sel(unit=u)[0]) > 3 * float(ds.control_activation.sel(unit=u))
        caz, cel, ori, sf, _ = GABORS[u]
        assert abs(float(ds.center_az.sel(unit=u)[0]) - caz) < 3.0
        assert abs(float(ds.center_el.sel(unit=u)[0]) - cel) < 3.0
        d_ori = abs((float(ds.ori_deg.sel(unit=u)[0]) - ori + 90) % 180 - 90)
        assert d_ori < 10.0
        assert float(ds.sf_cpd.sel(unit=u)[0]) == pytest.approx(sf, rel=0.3)
    # the constraint holds: RMS contrast ≈ 8 grey levels (clamping can only lower it) and pixels in range
    assert np.all(ds.rms_contrast.values <= 8.0 + 0.6) and np.all(ds.rms_contrast.values > 6.0)
    # the objective rose during optimisation
    act = ds.activation.values
    assert np.all(act[..., -1] > act[..., 0])


def test_dataset_layout_and_provenance(twin):
    ds = mei(twin, unit=2, steps=5, n_frames=6, burn_in=2, progress=False, seed=3)
    assert ds["mei"].dims == ("unit", "variant", "y", "x") and ds["mei"].dtype == np.uint8
    assert ds.sizes["step"] == 6 and ds.sizes["time"] == 6
    assert ds["az"].shape == (144, 256) and ds["az"].values[0, 0] < 0 < ds["az"].values[0, -1]
    assert ds["el"].values[0, 0] > 0 > ds["el"].values[-1, 0]  # row 0 is the top
    assert ds.unit_id.values.tolist() == [7]
    assert ds.attrs["experiment"] == "mei" and ds.attrs["twin_id"] == "gabor-test" and ds.attrs["seed"] == 3
    assert '"steps": 5' in ds.attrs["params"] and "twin_explorer_version" in ds.attrs
    # response is the twin's predict on the stored uint8 MEI
    video = np.repeat(ds["mei"].values[0, 0][None], 6, axis=0)
    np.testing.assert_allclose(ds.response.values[0, 0], twin.predict(video, units=[2])[:, 0], rtol=1e-5)


def test_generator_yields_progressive_states(twin):
    states = list(mei_steps(twin, unit=0, steps=20, every=5, n_frames=4, burn_in=1, contrast=8.0, progress=False))
    assert [s.step for s in states] == [0, 5, 10, 15, 20]
    assert all(isinstance(s, MEIState) for s in states) and states[-1].done and not states[0].done
    assert states[-1].activation_history.shape == (21, 1, 1)
    assert states[-1].activation[0, 0] > states[0].activation[0, 0]
    img = states[-1].image()
    assert img.dtype == np.uint8 and img.shape == (144, 256)
    assert states[0].lr > states[-1].lr  # step size decays


def test_same_seed_is_deterministic_and_independent_of_batching(twin):
    a = mei(twin, units=[0, 1], steps=4, n_frames=4, burn_in=1, progress=False, seed=1)
    b = mei(twin, unit=1, steps=4, n_frames=4, burn_in=1, progress=False, seed=1)
    np.testing.assert_array_equal(a["mei"].sel(unit=1).values, b["mei"].sel(unit=1).values)
    c = mei(twin, unit=1, steps=4, n_frames=4, burn_in=1, progress=False, seed=2)
    assert not np.array_equal(b["mei"].values, c["mei"].values)


def test_video_mei(twin):
    ds = mei(twin, unit=0, kind="video", n_frames=4, burn_in=1, steps=25, contrast=8.0, progress=False)
    assert ds["mei"].dims == ("unit", "variant", "frame", "y", "x") and ds.sizes["frame"] == 4
    frames = ds["mei"].values[0, 0].astype(float) - 128.0
    # frames after burn-in count in the objective: each converges to the filter
    for t in range(1, 4):
        assert cosine(frames[t], twin.filters[0].numpy()) > 0.8
    assert float(ds.mei_activation[0, 0]) > 3 * float(ds.control_activation[0])
    # RMS contrast is constrained over the whole video
    assert np.sqrt((frames**2).mean()) == pytest.approx(8.0, abs=0.6)


def test_diverse_meis_are_less_similar(twin):
    kw = dict(unit=2, steps=25, n_frames=4, burn_in=1, contrast=8.0, progress=False)
    plain = mei(twin, diverse=2, diversity_weight=0.0, **kw)
    diverse = mei(twin, diverse=2, diversity_weight=2.0, **kw)
    assert plain.sizes["variant"] == 2

    def sim(ds):
        m = ds["mei"].values[0].astype(float) - 128.0
        return cosine(m[0], m[1])

    assert sim(plain) > 0.9  # without the penalty both starts converge to the same optimum
    assert sim(diverse) < sim(plain) - 0.2
    assert np.all(diverse.mei_activation.values > diverse.control_activation.values[0])


def test_structure_of_a_known_grating():
    az, el = DEFAULT_MONITOR.degree_grid
    th = np.radians(45.0)
    img = 128 + 50 * np.cos(2 * np.pi * 0.05 * (az * np.cos(th) + el * np.sin(th))) * np.exp(
        -((az - 10) ** 2 + (el + 5) ** 2) / (2 * 8.0**2))
    s = mei_structure(img)
    assert s["center_az"] == pytest.approx(10, abs=1.0) and s["center_el"] == pytest.approx(-5, abs=1.0)
    assert s["ori_deg"] == pytest.approx(45, abs=5) and s["sf_cpd"] == pytest.approx(0.05, rel=0.2)


def test_bad_arguments_raise(twin):
    with pytest.raises(ValueError, match="kind"):
        next(mei_steps(twin, unit=0, kind="movie"))
    with pytest.raises(ValueError, match="precondition"):
        next(mei_steps(twin, unit=0, precondition="wavelet"))
    with pytest.raises(ValueError, match="unknown readout"):
        mei(twin, unit=99, steps=1)
    with pytest.raises(ValueError, match="n_frames"):
        next(mei_steps(twin, unit=0, n_frames=5, burn_in=5))
    with pytest.raises(ValueError, match="cannot be reached"):
        next(mei_steps(twin, unit=0, contrast=500))
    with pytest.raises(ValueError, match="unknown MEI option"):
        mei(twin, unit=0, steps=1, learning_rate=3)
    with pytest.raises(ValueError, match="either unit"):
        mei(twin, unit=0, units=[1])


def test_plot(twin):
    import holoviews as hv

    ds = mei(twin, unit=1, steps=3, n_frames=4, burn_in=1, progress=False)
    layout = plot_mei(ds)
    assert isinstance(layout, hv.Layout) and len(layout) == 2
    with pytest.raises(ValueError, match="not in this dataset"):
        plot_mei(ds, unit=0)


def test_mei_on_the_synthetic_mouse_matches_ground_truth():
    import twin_explorer.synthetic as synthetic
    mouse = synthetic.SyntheticMouse(seed=0, n_neurons=12)
    truth = mouse.truth()
    simple = truth[truth.is_simple & (truth.rf_az_deg.abs() < 40) & (truth.rf_el_deg.abs() < 25)]
    assert len(simple) >= 1
    units = simple.index[:2].tolist()
    # burn-in covers the model's 18-frame temporal kernel
    ds = mei(mouse, units=units, steps=40, n_frames=22, burn_in=18, contrast=15.0, progress=False)
    for u in units:
        t, d = truth.loc[u], ds.sel(unit=u).isel(variant=0)
        assert abs(float(d.center_az) - t.rf_az_deg) < 3.0 and abs(float(d.center_el) - t.rf_el_deg) < 3.0
        assert abs((float(d.ori_deg) - t.pref_ori_deg + 90) % 180 - 90) < 10.0
        assert float(d.mei_activation) > 3 * float(d.control_activation)
