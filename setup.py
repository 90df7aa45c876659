"""Build hook: ship the bundled data inside the wheel.

The repository's top-level ``assets/demo_twin``, ``assets/anatomy`` and ``apps/`` stay the source of truth;
``build_py`` copies them to ``twin_explorer/_bundled/<name>`` in the build, where
``twin_explorer.paths.bundled(name)`` finds them in an installed package. Editable installs copy nothing:
``bundled`` falls back to the checkout. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# never read by a running explorer: build caches, the notebook generator, and the model card's figures (PNG/HTML,
# shown on GitHub next to MODEL_CARD.md; the data behind them ships)
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "make_notebooks.py", "*.png", "*.html")


def bundled_folders() -> dict[str, str]:
    """``paths.BUNDLED`` (name -> checkout folder), read without importing the package (its dependencies
    are not installed while building)."""
    tree = ast.parse((ROOT / "twin_explorer" / "paths.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "BUNDLED":
            return ast.literal_eval(node.value)
    raise RuntimeError("twin_explorer/paths.py defines no BUNDLED mapping")


class BuildWithBundledData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders directly
        for name, source in bundled_folders().items():
            target = Path(self.build_lib) / "twin_explorer" / "_bundled" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / source, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithBundledData})
