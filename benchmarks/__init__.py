"""Benchmarks and harnesses that need a source checkout (a browser, the test tree); not part of the package.

``python -m benchmarks.browser``: the designer redraw benchmark and the screenshots, in headless Chromium. The
benchmarks that run from an installed package are CLI commands: ``twin-explorer bench engine|demo``.
"""
