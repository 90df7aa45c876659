"""The teaching notebooks (shipped as ``bundled("apps")``) execute end to end (nbclient) on the default twin."""

from __future__ import annotations

import pytest

from twin_explorer.paths import bundled

APPS = bundled("apps")
NOTEBOOKS = sorted(APPS.glob("*.ipynb"))


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_first_experiment.ipynb", "02_tuning_and_receptive_fields.ipynb",
            "03_foundation_and_generalisation.ipynb", "04_function_to_morphology.ipynb"} <= names


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(APPS)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    # tqdm falls back to text bars with this warning when ipywidgets is missing (the `notebook` extra installs it)
    warnings = [o.text for o in outputs if o.output_type == "stream" and "IProgress not found" in o.text]
    assert not warnings, warnings
