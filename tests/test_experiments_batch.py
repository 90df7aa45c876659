"""Batch runner tests: chunking, on-disk cache keyed by the spec, resume after failure, several twins, dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twin_explorer.experiments.batch import BatchRunner, TwinSpec, cache_key, run_batch

CALLS: list[list[int]] = []  # units of every chunk the experiment really computed
FAIL_ON_UNIT: set[int] = set()  # the experiment raises when a chunk starts with one of these (not a parameter)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyTwin:
    """Each unit responds with gain_u × mean luminance deviation of the frame (plus its index as an offset)."""

    frame_rate = 30.0
    frame_shape = (144, 256)

    def __init__(self, n: int = 10, id: str = "tiny", gain: float = 1.0) -> None:
        self.id = id
        self.gain = gain
        self.units = pd.DataFrame({"session": 4, "scan_idx": 7, "unit_id": np.arange(n) * 3},
                                  index=pd.Index(np.arange(n), name="readout_id"))

    @property
    def n_units(self) -> int:
        return len(self.units)

    def predict(self, stimuli, perspectives=None, modulations=None, units=None):
        arr = np.asarray(stimuli, dtype=np.float32)
        idx = np.arange(self.n_units) if units is None else np.asarray(units)
        drive = (arr.mean(axis=(-1, -2)) - 128.0)[..., None]
        return (self.gain * drive * (1 + idx) + idx).astype(np.float32)


def make_tiny(n: int = 10, id: str = "tiny-spec") -> TinyTwin:
    return TinyTwin(n=n, id=id)


def toy_experiment(twin, units=None, level: int = 160, n_frames: int = 3) -> xr.Dataset:
    units = list(twin.units.index if units is None else units)
    CALLS.append(list(units))
    if units[0] in FAIL_ON_UNIT:
        raise RuntimeError(f"simulated crash on chunk starting at unit {units[0]}")
    video = np.full((n_frames, 144, 256), level, dtype=np.uint8)
    r = twin.predict(video, units=units)  # [T, U]
    return xr.Dataset({"mean_response": ("unit", r.mean(0).astype(np.float64)),
                       "trace": (("unit", "time"), r.T)},
                      coords={"unit": np.asarray(units), "time": np.arange(n_frames),
                              "unit_id": ("unit", twin.units.loc[units, "unit_id"].values)},
                      attrs={"experiment": "toy", "twin_id": twin.id, "params": {"level": level}, "flag": True})



@pytest.fixture(autouse=True)
def reset():
    CALLS.clear()
    FAIL_ON_UNIT.clear()
    yield
    FAIL_ON_UNIT.clear()


def test_chunks_cache_and_match_a_direct_run(tmp_path):
    twin = TinyTwin(10)
    ds = run_batch(toy_experiment, twin, chunk_size=3, cache_dir=tmp_path, progress=False, level=170)
    direct = toy_experiment(twin, level=170)
    assert [len(c) for c in CALLS[:-1]] == [3, 3, 3, 1]
    xr.testing.assert_allclose(ds[["mean_response", "trace"]], direct[["mean_response", "trace"]])
    assert ds.unit.values.tolist() == list(range(10)) and ds.unit_id.values.tolist() == list(range(0, 30, 3))
    files = sorted(tmp_path.rglob("*.nc"))
    assert len(files) == 4 and len(list(tmp_path.rglob("*.json"))) == 4
    assert ds.attrs["twin_id"] == "tiny"
    # second run: everything comes from the cache
    CALLS.clear()
    again = run_batch(toy_experiment, twin, chunk_size=3, cache_dir=tmp_path, progress=False, level=170)
    assert CALLS == []
    xr.testing.assert_allclose(again[["mean_response", "trace"]], ds[["mean_response", "trace"]])


def test_resume_after_an_interruption_runs_only_missing_chunks(tmp_path):
    twin = TinyTwin(10)
    FAIL_ON_UNIT.add(6)  # the 3rd chunk (units 6, 7, 8) crashes
    runner = BatchRunner(toy_experiment, chunk_size=3, cache_dir=tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(twin)
    assert [c[0] for c in CALLS] == [0, 3, 6]
    plan = runner.plan(twin)
    assert plan.cached.tolist() == [True, True, False, False]
    FAIL_ON_UNIT.clear()
    CALLS.clear()
    ds = runner.run(twin)
    assert [c[0] for c in CALLS] == [6, 9] and runner.computed == 2
    np.testing.assert_allclose(ds.mean_response.values, toy_experiment(twin).mean_response.values)


def test_cache_key_depends_on_spec(tmp_path, monkeypatch):
    base = cache_key("exp", {"level": 1}, "tiny", [0, 1])
    assert cache_key("exp", {"level": 1}, "tiny", [0, 1]) == base
    assert cache_key("exp", {"level": 2}, "tiny", [0, 1]) != base
    assert cache_key("exp2", {"level": 1}, "tiny", [0, 1]) != base
    assert cache_key("exp", {"level": 1}, "other", [0, 1]) != base
    assert cache_key("exp", {"level": 1}, "tiny", [0, 2]) != base
    import twin_explorer

    monkeypatch.setattr(twin_explorer, "__version__", "999.0")
    assert cache_key("exp", {"level": 1}, "tiny", [0, 1]) != base
    monkeypatch.undo()
    # a different parameter recomputes instead of reusing stale files
    twin = TinyTwin(4)
    run_batch(toy_experiment, twin, chunk_size=2, cache_dir=tmp_path, progress=False, level=150)
    CALLS.clear()
    ds = run_batch(toy_experiment, twin, chunk_size=2, cache_dir=tmp_path, progress=False, level=100)
    assert len(CALLS) == 2
    np.testing.assert_allclose(ds.mean_response.values, toy_experiment(twin, level=100).mean_response.values)


def test_unit_subset_and_progress_callback():
    seen = []
    ds = run_batch(toy_experiment, TinyTwin(10), units=[8, 2, 5], chunk_size=2,
                   progress=lambda d, t: seen.append((d, t)))
    assert ds.unit.values.tolist() == [8, 2, 5]
    assert seen == [(1, 2), (2, 2)]


def test_several_twins_give_a_dict(tmp_path):
    a, b = TinyTwin(5, id="scan-a"), TinyTwin(3, id="scan-b", gain=2.0)
    out = run_batch(toy_experiment, [a, b], chunk_size=2, cache_dir=tmp_path, progress=False)
    assert set(out) == {"scan-a", "scan-b"}
    assert out["scan-a"].sizes["unit"] == 5 and out["scan-b"].sizes["unit"] == 3
    np.testing.assert_allclose(out["scan-b"].mean_response.values, toy_experiment(b).mean_response.values)
    assert {p.name for p in tmp_path.glob("*/*")} == {"scan-a", "scan-b"}
    with pytest.raises(ValueError, match="repeated ids"):
        run_batch(toy_experiment, [a, TinyTwin(2, id="scan-a")], progress=False)


def test_bad_inputs_raise_value_errors():
    twin = TinyTwin(4)
    with pytest.raises(ValueError, match="chunk_size"):
        run_batch(toy_experiment, twin, chunk_size=0)
    with pytest.raises(ValueError, match="'unit' dimension"):
        run_batch(lambda tw, units=None: xr.Dataset({"x": ("cell", np.zeros(len(units)))}), twin, progress=False)
    with pytest.raises(ValueError, match="stable text form"):
        run_batch(toy_experiment, twin, progress=False, level=object())
    with pytest.raises(ValueError, match="not a twin"):
        run_batch(toy_experiment, object(), progress=False)
    with pytest.raises(ValueError, match="unknown readout"):
        run_batch(toy_experiment, twin, units=[7], progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        TwinSpec()


def test_twin_spec_factory_builds_once():
    spec = TwinSpec(factory=make_tiny, options={"n": 6})
    assert spec.build() is spec.build()
    ds = run_batch(toy_experiment, spec, chunk_size=4, progress=False)
    assert ds.sizes["unit"] == 6 and ds.attrs["twin_id"] == "tiny-spec"


def test_dask_local_cluster_with_resume(tmp_path):
    import distributed
    twin = TinyTwin(9)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        FAIL_ON_UNIT.add(3)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_batch(toy_experiment, twin, chunk_size=3, cache_dir=tmp_path, client=client, progress=False)
        # the chunks that succeeded were cached although another task failed
        assert len(list(tmp_path.rglob("*.nc"))) == 2
        FAIL_ON_UNIT.clear()
        CALLS.clear()
        ds = run_batch(toy_experiment, twin, chunk_size=3, cache_dir=tmp_path, client=client, progress=False)
        assert CALLS == [[3, 4, 5]]
        np.testing.assert_allclose(ds.mean_response.values, toy_experiment(twin).mean_response.values)
        # a spec is built on the workers
        spec_ds = run_batch(toy_experiment, TwinSpec(factory=make_tiny, options={"n": 5}), chunk_size=2,
                            client=client, progress=False)
        assert spec_ds.sizes["unit"] == 5


def test_real_experiments_through_the_batch_runner(tmp_path):
    import twin_explorer.synthetic as synthetic
    from twin_explorer.experiments import direction_tuning
    from twin_explorer.experiments.mei import mei

    spec = TwinSpec("synthetic", {"seed": 0, "n_neurons": 5})
    kw = dict(directions=8, duration_s=0.5, show_progress=False)
    ds = run_batch(direction_tuning, spec, chunk_size=2, cache_dir=tmp_path, progress=False, **kw)
    direct = direction_tuning(synthetic.SyntheticMouse(seed=0, n_neurons=5), **kw)
    assert ds.sizes["unit"] == 5
    np.testing.assert_allclose(ds.tuning.values, direct.tuning.values, rtol=1e-4)
    np.testing.assert_allclose(ds.gosi.values, direct.gosi.values, rtol=1e-3, atol=1e-6)
    # MEIs are deterministic per unit, so chunked MEIs equal a single call
    m = run_batch(mei, spec, units=[1, 2, 3], chunk_size=2, cache_dir=tmp_path, progress=False, steps=2,
                  n_frames=4, burn_in=1)
    single = mei(spec.build(), unit=3, steps=2, n_frames=4, burn_in=1, progress=False)
    np.testing.assert_array_equal(m["mei"].sel(unit=3).values, single["mei"].sel(unit=3).values)
    assert m["mei"].dtype == np.uint8 and m.az.dims == ("y", "x")


def test_batch_runs_a_registered_spec_by_name(tmp_path):
    spec = TwinSpec("synthetic", {"seed": 0, "n_neurons": 6})
    kw = dict(center_diameter_deg=25, outer_diameters_deg=[60], directions=4, duration_s=0.5)
    ds = run_batch("surround_suppression", spec, chunk_size=4, cache_dir=tmp_path, progress=False, **kw)
    assert ds.sizes["unit"] == 6 and "surround_si" in ds
    assert len(list(tmp_path.rglob("*.nc"))) == 2  # one netCDF per chunk, cached under the spec's name
    assert all(p.parts[-3] == "surround_suppression" for p in tmp_path.rglob("*.nc"))
    runner = BatchRunner("surround_suppression", chunk_size=4, cache_dir=tmp_path, progress=False)
    again = runner.run(spec, **kw)
    assert runner.computed == 0 and np.array_equal(again.tuning.values, ds.tuning.values)


def test_all_scans_go_to_one_store_grouped_by_scan(tmp_path):
    from twin_explorer.experiments.results_store import read_results, write_results

    a, b = TinyTwin(5, id="microns-4-7"), TinyTwin(3, id="microns-8-5", gain=2.0)
    out = run_batch(toy_experiment, [a, b], chunk_size=2, cache_dir=tmp_path / "c", progress=True,
                    store=tmp_path / "all.nc", level=150)
    stored = read_results(tmp_path / "all.nc")
    assert list(stored) == ["microns-4-7", "microns-8-5"]
    for name in stored:
        xr.testing.assert_allclose(stored[name][["mean_response", "trace"]], out[name][["mean_response", "trace"]])
        assert stored[name].attrs["flag"] == 1  # attributes made storable (bool -> int)
    # a rerun reads every chunk from the cache and rewrites the same store
    runner = BatchRunner(toy_experiment, chunk_size=2, cache_dir=tmp_path / "c", progress=False,
                         store=tmp_path / "again.nc")
    runner.run([a, b], level=150)
    assert runner.computed == 0 and list(read_results(tmp_path / "again.nc")) == list(stored)
    with pytest.raises(ValueError, match="resources"):
        BatchRunner(toy_experiment, resources="GPU")
    with pytest.raises(ValueError, match="not a batch results store"):
        (tmp_path / "plain.nc").write_bytes(b"not hdf5")
        read_results(tmp_path / "plain.nc")
    with pytest.raises(ValueError, match="cannot name a group"):
        write_results(tmp_path / "x.nc", {"a/b": stored["microns-4-7"]})
