import numpy as np
import pytest

from twin_explorer.monitor import Monitor


def test_round_trip_degrees_pixels():
    m = Monitor()
    az, el = np.meshgrid(np.linspace(-50, 50, 7), np.linspace(-40, 40, 5))
    col, row = m.degrees_to_pixels(az, el)
    az2, el2 = m.pixels_to_degrees(col, row)
    np.testing.assert_allclose(az2, az, atol=1e-9)
    np.testing.assert_allclose(el2, el, atol=1e-9)


def test_grid_orientation_and_extent():
    m = Monitor()
    az, el = m.degree_grid
    assert az.shape == (144, 256)
    assert az[0, 0] < 0 < az[0, -1]  # azimuth grows rightwards
    assert el[0, 128] > 0 > el[-1, 128]  # row 0 is the top
    left, right, bottom, top = m.extent_deg
    assert right == pytest.approx(np.degrees(np.arctan(28.25 / 15)))
    assert az.max() < right and az.min() > left


@pytest.mark.parametrize("kw", [{"distance_cm": 0}, {"width_cm": float("nan")}, {"width_px": 1}])
def test_bad_monitor(kw):
    with pytest.raises(ValueError, match="Monitor"):
        Monitor(**kw)
