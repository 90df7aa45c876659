"""``python -m twin_explorer``: the same as the ``twin-explorer`` command."""

from .cli import main

if __name__ == "__main__":  # importing this module (e.g. by a tool walking the package) runs nothing
    main()
