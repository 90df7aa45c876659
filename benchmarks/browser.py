"""Serve the explorer in-process and drive it in headless Chromium: the redraw benchmark and the browser test harness.

Outside the installed package (it needs Playwright and Debian's chromium, dev dependencies); the tests import it
through pytest's ``pythonpath = ["."]``. ``python -m benchmarks.browser`` (from the repository root) measures, in a
real browser, the time from a stimulus parameter change to the designer's plots being redrawn, and prints the
median in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import panel as pn
from playwright.sync_api import sync_playwright

from twin_explorer.ui.app import SERVE_OPTIONS, create_app, prepare_server, settle_startup_objects
from twin_explorer.ui.state import get_anatomy, get_twin, unit_table

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(app_factory: Callable[[], Any], timeout: float = 60.0, reuse_pages: bool = True,
              **serve_kwargs: Any) -> Iterator[str]:
    """Serve ``app_factory`` on a free localhost port in a background thread, as ``twin-explorer serve`` does
    (``reuse_pages=False``: each page's HTML waits for a session made for it, as under a plain ``panel serve``);
    yields the page URL."""
    port = free_port()
    prepare_server()
    pn.config.reuse_sessions = reuse_pages
    settle_startup_objects()  # the caller warmed its twin, as twin-explorer serve does before serving
    server = pn.serve({"explorer": app_factory}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"], liveness=True, **{**SERVE_OPTIONS, **serve_kwargs})
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
        if reuse_pages:  # the server's own first page, kept for the reuse, as twin-explorer serve asks for it
            with urllib.request.urlopen(url, timeout=300) as resp:  # (ui.app.warm_page)
                resp.read()
        yield url
    finally:
        server.stop()


def _connect_page(url: str, token: str) -> Any:
    """A Bokeh client session connected with the token a served page carries (as the page's own scripts do)."""
    from bokeh.client.session import ClientSession
    from bokeh.util.token import get_session_id

    class PageSession(ClientSession):
        @property
        def token(self) -> str:
            return token

    websocket_url = re.sub(r"^http", "ws", url.split("?")[0]) + "/ws"
    session = PageSession(session_id=get_session_id(token), websocket_url=websocket_url)
    session.pull()  # connects and receives the session's document: the server has built the session
    return session


def open_page_session(url: str, timeout: float = 300.0) -> tuple[float, Any]:
    """What a browser asks of the server for one page, without a browser: the page's HTML, then a connection to
    its session (where the server builds it). Returns (seconds until the HTML had arrived, the connected Bokeh
    client session: ``close()`` it). Call from a thread of its own (the client runs its own event loop)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        html = resp.read().decode()
    html_s = time.perf_counter() - t0
    return html_s, _connect_page(url, page_token(html))


def _render_item(html: str) -> dict[str, Any]:
    match = re.search(r'const render_items = (\[.*?\]);', html)
    if match is None:
        raise RuntimeError("no render item (session token, roots) in the page")
    return json.loads(match.group(1))[0]


def page_token(html: str) -> str:
    """The session token a served page's HTML carries (its session's id: ``bokeh.util.token.get_session_id``)."""
    return _render_item(html)["token"]


def page_roots_missing(html: str) -> list[str]:
    """The ids of the page's roots that have no element in its HTML to be drawn into: a page that lists one shows
    nothing (the browser stops at "could not find #… HTML tag")."""
    return [root for root, element in _render_item(html).get("roots", {}).items() if f'id="{element}"' not in html]


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[tuple[Any, list[str]]]:
    """A headless Debian-chromium page plus the list its console errors are collected into."""
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


LOCAL_PREFIXES = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost", "data:", "blob:")


def block_external(page: Any) -> list[str]:
    """Abort every request ``page`` makes to anywhere but this machine (a classroom without internet); returns the
    list the blocked URLs are recorded in."""
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(LOCAL_PREFIXES):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A headless Debian-chromium browser; each ``browser.new_page()`` is a separate app session."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
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


# Waits in the page for the designer's marker to reach ``target`` and for two more animation frames (the paint),
# timing from the key press (a capturing keydown listener) with the page's own clock. Playwright's own waiting
# polls with back-off (up to 500 ms between looks), which once made every redraw look half a second slower.
_REDRAW_PROBE = """
([target, timeoutMs, checkPreview]) => new Promise((resolve, reject) => {
  const deep = (root, selector) => {  // first match, looking into shadow roots too
    const hit = root.querySelector(selector);
    if (hit) return hit;
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { const h = deep(el.shadowRoot, selector); if (h) return h; }
    }
    return null;
  };
  const start = deep(document, '.te-designer-status');
  if (!start) { reject(new Error('no designer status marker on the page')); return; }
  const container = start.parentNode;  // the HTML pane replaces its content, not itself
  // the preview: its <img> is replaced on update (a new stimulus's animation in data-anim), so keep the (shadow)
  // root that holds it
  const img0 = deep(document, 'img.te-preview');
  const previewRoot = img0 ? img0.getRootNode() : null;
  const gif0 = img0 ? img0.dataset.anim : null;
  const gif = () => { const img = previewRoot && previewRoot.querySelector('img.te-preview');
                      return img ? img.dataset.anim : gif0; };
  let t0 = null, plots = null, painting = false;
  window.addEventListener('keydown', () => { t0 = performance.now(); }, {capture: true, once: true});
  const deadline = performance.now() + timeoutMs;
  const tick = () => {
    const el = container.querySelector('.te-designer-status');
    if (t0 !== null && !painting && el && Number(el.dataset.updates) >= target) {
      painting = true;
      requestAnimationFrame(() => requestAnimationFrame(() => { plots = performance.now() - t0; }));
    }
    if (plots !== null && (!checkPreview || !previewRoot || gif() !== gif0)) {
      const p = plots;
      requestAnimationFrame(() => requestAnimationFrame(() => resolve([p, performance.now() - t0])));
    } else if (performance.now() > deadline) {
      reject(new Error('the designer did not redraw in time'));
    } else {
      requestAnimationFrame(tick);
    }
  };
  requestAnimationFrame(tick);
})
"""


def measure_redraw(page: Any, repeats: int = 10, timeout_ms: float = 30_000, label: str = "Direction",
                   fresh: bool = False, previews: list[float] | None = None) -> list[float]:
    """Milliseconds from a slider key press to the redrawn designer plots (marker updated, next paint done), timed
    in the page. If ``previews`` is a list, the time until the new preview (its still frame) is shown too is
    appended to it (the preview follows the plots by one server tick).

    The slider goes back and forth (after the first pair the twin's predictions come from the cache: the
    redraw alone), or with ``fresh`` always forward (every press renders and predicts a new stimulus)."""
    times = []
    for i in range(repeats):
        before = designer_updates(page)
        handle = slider_handle(page, label)
        handle.focus()
        # the probe starts waiting (and listening for the key) before the key is pressed
        page.evaluate("(args) => { window.__teRedraw = (%s)(args); }" % _REDRAW_PROBE.strip(),
                      [before + 1, timeout_ms, previews is not None])
        handle.press("ArrowRight" if fresh or i % 2 == 0 else "ArrowLeft")
        plots, preview = page.evaluate("() => window.__teRedraw")
        times.append(float(plots))
        if previews is not None:
            previews.append(float(preview))
    return times


def _wait_until(predicate: Callable[[], bool], timeout_s: float, page: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s")
        page.wait_for_timeout(200)


def take_screenshots(twin: Any, folder: str, timeout_s: float = 600.0) -> list[str]:
    """Serve the explorer on ``twin``, run every view's computation from the page (tuning and receptive fields of
    all neurons, an MEI) with a neuron that has a reconstructed skeleton focused, and save one PNG per view."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    apps: list[Any] = []

    def factory() -> Any:
        apps.append(create_app(twin))
        return apps[-1]

    anatomy = get_anatomy()
    unit = None
    if anatomy is not None:  # a coregistered neuron with a skeleton, so the anatomy view shows a morphology
        pop = anatomy.resolve_units(twin.units)
        skel = pop[pop["nucleus_id"].isin(anatomy.skeleton_ids) & (pop["match"] == "unique")]
        unit = int(skel.index[0]) if len(skel) else None
    saved = []
    with serve_app(factory) as url, chromium_page(1500, 1100) as (page, errors):
        page.goto(url + (f"?unit={unit}" if unit is not None else ""), timeout=timeout_s * 1000)
        if unit is not None:  # a ?unit= link opens the Neurons tab on that neuron's page
            page.get_by_text(f"Neuron {unit}").first.wait_for(timeout=timeout_s * 1000)
        else:
            page.locator(".te-designer-status").first.wait_for(timeout=timeout_s * 1000)
        views = apps[-1].explorer.views

        def shot(name: str) -> None:
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"{name}.png"))
            saved.append(str(out / f"{name}.png"))

        open_tab(page, "Neurons")
        shot("neurons")
        open_tab(page, "Stimulus designer")
        nudge_slider(page, "Direction")
        shot("designer")
        # each view's own "finished" text (its result table or summary), shown once the result is drawn
        for title, button, done in (("Tuning", "Measure tuning", "preferred direction (°)"),
                                    ("Receptive fields", "Map receptive fields", "centre azimuth (°)"),
                                    ("MEI", "Optimise MEI", "response to its MEI")):
            open_tab(page, title)
            page.get_by_role("button", name=button).click()
            page.get_by_text(done).first.wait_for(timeout=timeout_s * 1000)
            _wait_until(lambda v=views[title]: not v.runner.running, timeout_s, page)
            shot(title.lower().replace(" ", "_"))
        open_tab(page, "Anatomy")
        page.wait_for_timeout(3000)
        shot("anatomy")
    if errors:
        print("browser console errors:", *errors, sep="\n  ")
    return saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--twin", default=None, help="registry name of the twin (default: the explorer's)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--screenshots", default=None, metavar="DIR",
                        help="instead of timing, run every view on the twin and save one screenshot per view in DIR")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be ≥ 1")
    twin = get_twin(args.twin)
    unit_table(twin)  # warm the ground truth and coregistration outside the page load
    if args.screenshots:
        for path in take_screenshots(twin, args.screenshots):
            print("wrote", path)
        return
    with serve_app(lambda: create_app(twin)) as url, chromium_page() as (page, errors):
        open_explorer(page, url)
        measure_redraw(page, repeats=2)  # warm-up: first plots, JIT, caches
        cached_previews: list[float] = []
        fresh_previews: list[float] = []
        times = measure_redraw(page, repeats=args.repeats, previews=cached_previews)
        fresh = measure_redraw(page, repeats=args.repeats, fresh=True, previews=fresh_previews)
    for what, t, p in (("new stimulus (render + predict + redraw)", fresh, fresh_previews),
                       ("cached prediction (redraw)", times, cached_previews)):
        print(f"twin {getattr(twin, 'id', '?')}: parameter change -> redrawn designer plots, {what}: median "
              f"{statistics.median(t):.0f} ms (min {min(t):.0f}, max {max(t):.0f}, n={len(t)}); "
              f"new preview shown after {statistics.median(p):.0f} ms")
    if errors:
        print("browser console errors:", *errors, sep="\n  ")


if __name__ == "__main__":
    main()
