"""Interactive views (Panel components) over any twin: each works alone in Jupyter and inside the app.

``StimulusDesigner(twin)``, ``NeuronBrowser(twin)``, ``TuningView(twin)``, ``ReceptiveFieldView(twin)``,
``MEIView(twin)``, ``AnatomyView(twin)`` and ``Explorer(twin)`` (all of them); ``create_app()`` builds the
served page. Views share an :class:`ExplorerState` when given the same ``state=``.
"""

from __future__ import annotations

_EXPORTS = {
    "ExplorerState": "state", "get_twin": "state", "available_twins": "state",
    "StimulusDesigner": "designer", "NeuronBrowser": "browser", "TuningView": "tuning",
    "ReceptiveFieldView": "receptive_fields", "MEIView": "mei", "AnatomyView": "anatomy",
    "Explorer": "app", "create_app": "app", "TaskRunner": "tasks", "RESULTS": "tasks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'twin_explorer.ui' has no attribute {name!r}")
