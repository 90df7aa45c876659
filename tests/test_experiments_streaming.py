"""Streaming partial results (experiments/streaming.py): provisional results are labelled, come after the first batch,
fill in, and never change the final result (array by array equal to a run without streaming)."""

from __future__ import annotations

import numpy as np
import pytest

from twin_explorer.experiments import get_experiment, sf_tuning, surround_suppression
from twin_explorer.experiments.streaming import is_provisional, label_provisional, provisional_note
from twin_explorer.experiments.tuning import direction_tuning
from twin_explorer.synthetic.mouse import SyntheticMouse

SMALL = {"n_neurons": 60, "seed": 3}


def _identical(a, b) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for k in a.data_vars:
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)


def test_labels_say_how_much_is_done():
    import xarray as xr

    ds = label_provisional(xr.Dataset(), 3, 12)
    assert is_provisional(ds) and provisional_note(ds) == "provisional: 3 of 12 conditions"
    assert not is_provisional(xr.Dataset()) and provisional_note(None) == ""
    with pytest.raises(ValueError, match="0 < done ≤ total"):
        label_provisional(xr.Dataset(), 0, 12)


def test_direction_tuning_at_each_units_own_sf_tf_streams_units_then_directions():
    twin = SyntheticMouse(**SMALL)
    n = twin.n_units
    sf = np.where(np.arange(n) % 3 == 0, 0.02, 0.08)  # two SF/TF pairs: 20 and 40 units
    kw = dict(directions=8, sf_cpd=sf, tf_hz=2.0, duration_s=0.5, batch_size=3, show_progress=False)
    parts = []
    streamed = direction_tuning(twin, partial=parts.append, **kw)
    _identical(streamed, direction_tuning(SyntheticMouse(**SMALL), **kw))
    # first round (two opposite directions): the larger pair's 40 units after one predict call, then all 60
    assert [(p.attrs["units_done"], p.attrs["directions_done"]) for p in parts] == [(40, 2), (60, 2), (60, 5)]
    assert parts[0]["direction"].values.tolist() == [0.0, 180.0]
    assert np.allclose(parts[0]["sf_cpd"].values, 0.08) and parts[0].attrs["units_total"] == n
    assert [p.attrs["conditions_done"] for p in parts] == [2, 4, 10] and parts[0].attrs["conditions_total"] == 16
    assert all(is_provisional(p) for p in parts) and not is_provisional(streamed)
    last = parts[-1]  # the directions done so far are final
    np.testing.assert_array_equal(last["tuning"].values, streamed["tuning"].sel(direction=last["direction"]).values)


@pytest.mark.parametrize("run, values", [
    (lambda twin, **kw: sf_tuning(twin, sf_cpd=(0.02, 0.04, 0.08), directions=4, duration_s=0.5, **kw), 3),
    (lambda twin, **kw: surround_suppression(twin, outer_diameters_deg=(30, 60), directions=4, duration_s=0.5,
                                             **kw), 3)])
def test_grating_grids_stream_provisional_results_of_the_final_shape(run, values):
    parts = []
    streamed = run(SyntheticMouse(**SMALL), batch_size=4, show_progress=False, partial=parts.append)
    plain = run(SyntheticMouse(**SMALL), batch_size=4, show_progress=False)
    _identical(streamed, plain)
    # 12 conditions, 4 per batch, 3 values per direction: directions complete after batches 1, 2 (and 3: final)
    assert [(p.attrs["conditions_done"], p.sizes["direction"]) for p in parts] == [(4, 1), (8, 2)]
    assert parts[0]["direction"].values.tolist() == [0.0] and parts[1]["direction"].values.tolist() == [0.0, 180.0]
    assert all(set(p.data_vars) == set(plain.data_vars) for p in parts)  # the family's analysis ran on them
    np.testing.assert_array_equal(parts[1]["response"].values, plain["response"].sel(direction=[0.0, 180.0]).values)


def test_specs_say_whether_they_stream():
    for name in ("direction_tuning", "sf_tuning", "tf_tuning", "sf_tf_tuning", "contrast_response", "size_tuning",
                 "surround_suppression"):
        assert get_experiment(name).streams, name
    rf = get_experiment("receptive_fields")
    assert not rf.streams and "partial" not in get_experiment("sf_tuning").defaults()
    with pytest.raises(ValueError, match="does not stream"):
        rf(SyntheticMouse(**SMALL), partial=print)
    parts = []
    spec = get_experiment("sf_tuning")
    ds = spec(SyntheticMouse(**SMALL), partial=parts.append, batch_size=6, directions=4, sf_cpd=[0.02, 0.04, 0.08],
              duration_s=0.5)
    assert [p.attrs["conditions_done"] for p in parts] == [6] and "pref_sf" in ds
