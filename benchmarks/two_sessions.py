"""Two browser sessions of one served explorer, side by side in one image: each page has its own focused neuron and
stimulus family (the classroom case of issue 16).

``python -m benchmarks.two_sessions [--out assets/screenshots/two_sessions.png]`` (from the repository root; the
``dev`` extra's Playwright and Debian's chromium) serves the explorer on the synthetic twin, opens two pages in
separate browser contexts, sets each page's state from the page itself, and saves both screenshots as one PNG.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from twin_explorer.ui.app import create_app
from twin_explorer.ui.state import get_twin, unit_table

from .browser import CHROMIUM, CHROMIUM_ARGS, designer_updates, open_tab, serve_app

#: (focused neuron, stimulus family) of each page
SESSIONS: tuple[tuple[int, str], ...] = ((17, "Plaid"), (42, "GaussianDots"))


def side_by_side(images: list[bytes], labels: list[str], gap: int = 20) -> Image.Image:
    """PNG screenshots next to each other on white, each under its label."""
    pics = [Image.open(io.BytesIO(b)).convert("RGB") for b in images]
    head = 36
    out = Image.new("RGB", (sum(p.width for p in pics) + gap * (len(pics) - 1), max(p.height for p in pics) + head),
                    "white")
    draw, x = ImageDraw.Draw(out), 0
    for pic, label in zip(pics, labels):
        draw.text((x + 12, 10), label, fill="black", font_size=20)
        out.paste(pic, (x, head))
        x += pic.width + gap
    return out


def show_session(page: Any, url: str, unit: int, family: str, timeout_ms: float = 300_000) -> None:
    """Open the explorer on neuron ``unit`` and switch its designer to ``family``, from the page."""
    page.goto(f"{url}?unit={unit}", timeout=timeout_ms)
    page.get_by_text(f"Neuron {unit}").first.wait_for(timeout=timeout_ms)
    open_tab(page, "Stimulus designer")
    page.locator(".te-designer-status").first.wait_for(timeout=timeout_ms)
    n = designer_updates(page)
    page.locator(".bk-input-group", has=page.locator("label", has_text="Stimulus family")).locator("select") \
        .first.select_option(family)
    page.locator(f'.te-designer-status[data-updates="{n + 1}"]').wait_for(timeout=timeout_ms)
    page.locator("p", has_text=f"focused: {unit}").first.wait_for(timeout=timeout_ms)
    page.wait_for_timeout(1500)  # the preview and the plots painted


def two_sessions(url: str, sessions: tuple[tuple[int, str], ...] = SESSIONS, width: int = 1280,
                 height: int = 900) -> Image.Image:
    """Screenshots of one page per (neuron, family) in ``sessions``, each in its own browser context, composed."""
    from playwright.sync_api import sync_playwright  # dev dependency, only to take the screenshots

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            pages = [browser.new_context(viewport={"width": width, "height": height}).new_page() for _ in sessions]
            for page, (unit, family) in zip(pages, sessions):
                show_session(page, url, unit, family)
            shots = [page.screenshot() for page in pages]  # after both are set: neither changed the other
        finally:
            browser.close()
    return side_by_side(shots, [f"Session {i + 1}: neuron {u}, {f}" for i, (u, f) in enumerate(sessions)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="assets/screenshots/two_sessions.png")
    args = parser.parse_args(argv)
    twin = get_twin("synthetic")
    unit_table(twin)
    with serve_app(lambda: create_app(twin)) as url:
        image = two_sessions(url)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print("wrote", args.out, image.size)


if __name__ == "__main__":
    main()
