"""Serve the explorer in-process and drive it in headless Chromium: the redraw benchmark and the test harness.

``python -m twin_explorer.ui.bench`` measures, in a real browser, the time from a stimulus parameter
change to the designer's plots being redrawn, and prints the median in milliseconds.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
import urllib.request
from contextlib import contextmanager
from typing import Any, Callable, Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(app_factory: Callable[[], Any], timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app_factory`` on a free localhost port in a background thread; yields the page URL."""
    import panel as pn

    port = free_port()
    server = pn.serve({"explorer": app_factory}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"], liveness=True)
    url = f"http://127.0.0.1:{port}/explorer"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the explorer did not answer on port {port} within {timeout:.0f} s")
                time.sleep(0.2)
        yield url
    finally:
        server.stop()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """A headless Debian-chromium page plus the list its console errors are collected into."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            browser.close()


def open_explorer(page: Any, url: str, timeout_ms: float = 90_000) -> None:
    """Load the app and wait until the designer has drawn once."""
    page.goto(url, timeout=timeout_ms)
    page.locator(".te-designer-status").first.wait_for(timeout=timeout_ms)


def designer_updates(page: Any) -> int:
    return int(page.locator(".te-designer-status").first.get_attribute("data-updates"))


def slider_handle(page: Any, label: str | None = None) -> Any:
    """The handle of the first slider whose title contains ``label`` (or the first slider at all)."""
    if label is None:
        return page.locator(".noUi-handle").first
    return page.locator(".bk-input-group", has=page.locator(".bk-slider-title", has_text=label)) \
        .locator(".noUi-handle").first


def nudge_slider(page: Any, label: str | None = None, key: str = "ArrowRight") -> None:
    """Change a slider by one keyboard step (fires the throttled change, as a mouse release does)."""
    handle = slider_handle(page, label)
    handle.focus()
    handle.press(key)


def open_tab(page: Any, title: str) -> None:
    page.locator(".bk-tab", has_text=title).first.click()


def measure_redraw(page: Any, repeats: int = 10, timeout_ms: float = 30_000, label: str = "Direction") -> list[float]:
    """Milliseconds from a slider key press to the redrawn designer (marker updated, next paint done)."""
    times = []
    for i in range(repeats):
        before = designer_updates(page)
        handle = slider_handle(page, label)
        handle.focus()
        t0 = time.perf_counter()
        handle.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        # Playwright's CSS engine pierces Bokeh's shadow roots; the marker is written in the same
        # server hold() as the plot data, so it arrives in the same patch.
        page.locator(f'.te-designer-status[data-updates="{before + 1}"]').wait_for(timeout=timeout_ms)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twin", default=None, help="registry name of the twin (default: the explorer's)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be ≥ 1")
    from twin_explorer.ui.app import create_app
    from twin_explorer.ui.state import get_twin

    twin = get_twin(args.twin)
    with serve_app(lambda: create_app(twin)) as url, chromium_page() as (page, errors):
        open_explorer(page, url)
        measure_redraw(page, repeats=2)  # warm-up: first plots, JIT, caches
        times = measure_redraw(page, repeats=args.repeats)
    print(f"twin {getattr(twin, 'id', '?')}: parameter change -> redrawn designer, median "
          f"{statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f}, n={len(times)})")
    if errors:
        print("browser console errors:", *errors, sep="\n  ")


if __name__ == "__main__":
    main()
