"""Screenshots of the explorer on a full scan while the all-unit tuning streams (issue 15 item 5), in headless Chromium.

``python -m benchmarks.fullscan_screens BUNDLE OUT_PREFIX`` serves the explorer on scan 8-5 of BUNDLE (e.g. made by
``twin-explorer bench make-bundle BUNDLE``), presses *Measure tuning* and saves ``OUT_PREFIX_scan_partial.png`` at
the first provisional result; then on a 10,000-neuron synthetic mouse (which has cortical positions) saves
``OUT_PREFIX_map_partial.png`` with the binned direction map filling in. Prints how long each first result took.
"""

from __future__ import annotations

import argparse
import time

from twin_explorer.synthetic.mouse import SyntheticMouse
from twin_explorer.ui import state as explorer_state
from twin_explorer.ui.app import create_app

from .browser import chromium_page, open_explorer, open_tab, serve_app


def shoot(twin, path: str, timeout_s: float = 400.0) -> float:
    """Serve ``twin``, start the tuning, screenshot at the first provisional result; seconds from the click."""
    with serve_app(lambda: create_app(twin)) as url, chromium_page(1400, 1500) as (page, _errors):
        open_explorer(page, url, timeout_ms=timeout_s * 1000)
        open_tab(page, "Tuning")
        page.get_by_role("button", name="Measure tuning").click()
        t0 = time.perf_counter()
        page.get_by_text("Provisional:").first.wait_for(timeout=timeout_s * 1000)
        waited = time.perf_counter() - t0
        time.sleep(2.0)  # the plots' paint
        page.screenshot(path=path, full_page=True)
        page.get_by_role("button", name="Cancel").click()
        return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("prefix")
    args = parser.parse_args()
    explorer_state.BUNDLE_DIR = args.bundle
    scan = explorer_state.get_twin("microns 8-5")
    print(f"scan 8-5 ({scan.n_units} units): first provisional result {shoot(scan, args.prefix + '_scan_partial.png'):.1f} s")
    mouse = SyntheticMouse(n_neurons=10_000, seed=0)
    print(f"synthetic mouse (10,000 neurons): first provisional result "
          f"{shoot(mouse, args.prefix + '_map_partial.png'):.1f} s")


if __name__ == "__main__":
    main()
