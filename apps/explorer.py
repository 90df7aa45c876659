"""The twin_explorer web app: ``panel serve apps/explorer.py`` (or ``twin-explorer serve``)."""

from twin_explorer.ui.app import create_app

create_app().servable()
