"""The package as installed: every module imports without side effects, and the wheel ships the bundled data.

The full check of an installed wheel in a fresh environment (load_twin, anatomy sample, ``twin-explorer serve``)
is ``.ci/check_wheel.py``, run by ``.ci/run``.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import twin_explorer
from twin_explorer.paths import BUNDLED

REPO = Path(__file__).resolve().parents[1]


def test_importing_every_module_runs_nothing() -> None:
    names = [m.name for m in pkgutil.walk_packages(twin_explorer.__path__, "twin_explorer.")]
    assert "twin_explorer.__main__" in names and "twin_explorer.cli" in names
    for name in names:
        try:
            importlib.import_module(name)
        except SystemExit as exc:  # e.g. a module that runs the CLI when imported
            pytest.fail(f"importing {name} exited ({exc.code})")
    assert not any(name.endswith(".ui.bench") for name in names), "the browser harness belongs in benchmarks/"


def test_a_broken_view_fails_the_app_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """No view is dropped quietly: the app does not import when one of its views does not."""
    monkeypatch.setitem(sys.modules, "twin_explorer.ui.browser", None)  # importing it now raises ImportError
    monkeypatch.delitem(sys.modules, "twin_explorer.ui.app", raising=False)
    with pytest.raises(ImportError, match="twin_explorer.ui.browser"):
        importlib.import_module("twin_explorer.ui.app")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built (no dependencies, no build isolation) from a copy of the sources, so no build/ is left here."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "twin_explorer", src / "twin_explorer", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in BUNDLED.values():
        shutil.copytree(REPO / folder, src / folder)
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                           "-w", str(dist)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = dist.glob("twin_explorer-*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.slow
def test_wheel_ships_the_bundled_data_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    files = set(wheel.namelist())
    for required in ("demo_twin/model.safetensors", "demo_twin/config.json", "demo_twin/units.csv",
                     "anatomy/manifest.json", "anatomy/tables/synapses_pni_2.csv.gz", "apps/explorer.py",
                     "apps/01_first_experiment.ipynb", "apps/README.md"):
        assert f"twin_explorer/_bundled/{required}" in files, required
    # every bundled file is a copy of the repository's source of truth
    for name in files:
        if name.startswith("twin_explorer/_bundled/"):
            bundle, rest = name.removeprefix("twin_explorer/_bundled/").split("/", 1)
            assert (REPO / BUNDLED[bundle] / rest).read_bytes() == wheel.read(name), name
    # no screenshots, figures, tests, benchmarks or caches
    unwanted = [n for n in files if n.endswith((".png", ".html", ".pyc")) or n.startswith(("tests/", "benchmarks/"))
                or "screenshots" in n or "make_notebooks" in n]
    assert not unwanted, unwanted
    entry_points = next(n for n in files if n.endswith(".dist-info/entry_points.txt"))
    assert "twin-explorer = twin_explorer.cli:main" in wheel.read(entry_points).decode()
    metadata = next(n for n in files if n.endswith(".dist-info/METADATA"))
    assert f"Version: {twin_explorer.__version__}" in wheel.read(metadata).decode()
    assert sum(i.file_size for i in wheel.infolist()) < 20e6  # stays a small download
