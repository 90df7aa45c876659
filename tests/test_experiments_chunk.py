"""The batch runner's worker-side task (experiments/chunk.py) imports little: a dask worker unpickling it loads
neither torch nor the plotting stack; the package's public names still import from ``twin_explorer.experiments``.
Each check runs in a fresh interpreter, since what a process has imported is the thing measured."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "holoviews", "bokeh", "panel", "twin_explorer.experiments.plotting")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_a_worker_unpickling_the_task_loads_no_torch_and_no_plotting():
    assert _loaded_after("import pickle, twin_explorer.experiments.chunk as c\n"
                         "pickle.loads(pickle.dumps((c.run_chunk, c.TwinSpec('synthetic'))))") == []


def test_a_spec_sent_by_name_loads_its_experiment_but_no_plotting_stack():
    loaded = _loaded_after("from twin_explorer.experiments.spec import get_experiment\n"
                           "assert get_experiment('direction_tuning').streams")
    assert "torch" in loaded and not {"holoviews", "bokeh", "panel"} & set(loaded)


def test_public_names_are_the_functions_even_after_their_submodules_were_imported():
    code = ("import types\nimport twin_explorer.experiments.mei, twin_explorer.experiments.receptive_fields\n"
            "from twin_explorer.experiments import (REGISTRY, direction_tuning, mei, provenance, readout_rf,\n"
            "                                       receptive_fields)\n"
            "assert not any(isinstance(f, types.ModuleType) for f in (mei, provenance, readout_rf, receptive_fields))\n"
            "assert {'direction_tuning', 'surround_suppression', 'monet2_direction_tuning', 'mei'} <= set(REGISTRY)\n"
            "import twin_explorer.experiments as ex\nassert ex.mei is mei and 'run_batch' in dir(ex)\n")
    assert "torch" in _loaded_after(code)
