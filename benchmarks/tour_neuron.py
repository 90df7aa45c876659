"""Pick the neuron the five-minute tour points at (README.md, apps/README.md), on the demo twin.

``python -m benchmarks.tour_neuron`` measures the demo twin's direction tuning of all neurons with the tuning view's
defaults (12 directions, 0.04 cycles/°, 2 Hz, 1 s; about 100 s on 2 cores) and prints
:func:`twin_explorer.ui.browser.teaching_neuron`'s pick with the numbers the tour relies on.
"""

from __future__ import annotations

import pandas as pd

from twin_explorer.experiments import direction_tuning
from twin_explorer.ui.browser import teaching_neuron
from twin_explorer.ui.state import get_anatomy, get_twin, unit_table


def main() -> None:
    twin = get_twin("demo")
    table, truth = unit_table(twin), twin.truth()
    ds = direction_tuning(twin, directions=12, sf_cpd=0.04, tf_hz=2.0, duration_s=1.0, batch_size=4,
                          show_progress=True, keep_traces=False)
    tuning = pd.DataFrame({k: ds[k].values for k in ("pref_dir", "gosi")}, index=ds["unit"].values)
    anatomy = get_anatomy()
    skeleton = []
    if anatomy is not None:
        pop = anatomy.resolve_units(twin.units)
        skeleton = pop.index[pop["nucleus_id"].isin(anatomy.skeleton_ids) & (pop["match"] == "unique")]
    unit = teaching_neuron(table, tuning, truth, with_skeleton=skeleton)
    print(f"tour neuron: readout_id {unit}; area {table.loc[unit, 'area']}; CC_norm {table.loc[unit, 'CC']:.2f}, "
          f"cc_max {table.loc[unit, 'cc_max']:.2f}; twin pref dir {tuning.loc[unit, 'pref_dir']:.0f}° "
          f"(truth {truth.loc[unit, 'pref_dir_deg']:.0f}°), twin gOSI {tuning.loc[unit, 'gosi']:.2f} "
          f"(truth {truth.loc[unit, 'gosi']:.2f}); skeleton: {unit in set(skeleton)}")


if __name__ == "__main__":
    main()
