"""The designer's preview (ui/preview.py): the first frame as the still image, and a GIF of every frame at half
resolution that plays once when asked (pointer or click), never by itself. (It plays in a browser:
tests/test_app_browser.py.)"""

from __future__ import annotations

import base64
import io
import re
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from twin_explorer.ui.preview import (PREVIEW_FILES, PREVIEW_PATH, PREVIEW_PLAYS, PREVIEW_ROUTE, encode_preview,
                                      preview_html)


def _data(html: str, attr: str) -> bytes:
    url = re.search(f'{attr}="data:image/[a-z]+;base64,([^"]+)"', html).group(1)
    return base64.b64decode(url)


def test_preview_shows_the_first_frame_and_plays_once_on_request():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(45, 144, 256), dtype=np.uint8)
    html = preview_html(frames, fps=30.0)
    assert PREVIEW_PLAYS == 1
    assert f'data-play-ms="{int(1000 * 45 / 30.0)}"' in html  # one play of 1.5 s, then the still frame
    gif = Image.open(io.BytesIO(_data(html, "data-anim")))
    assert gif.n_frames == 45 and gif.size == (128, 72)
    gif.seek(7)
    assert np.array_equal(np.asarray(gif.convert("L")), frames[7, ::2, ::2])  # greyscale, not quantised
    still = np.asarray(Image.open(io.BytesIO(_data(html, "data-still"))))
    assert np.array_equal(still, frames[0, ::2, ::2])
    assert _data(html, " src") == _data(html, "data-still")  # what a page shows until it is asked to play
    assert "'mouseenter',play" in html and "'click',play" in html and "autoplay" not in html
    assert '<span class="te-play"' in html and "▶ play" in html


def test_served_preview_keeps_the_animation_out_of_the_page():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(30, 144, 256), dtype=np.uint8)
    preview = encode_preview(frames, fps=30.0)
    inline, served = preview.html(), preview.html(served=True)
    assert len(preview.gif) > 100_000 and len(served) < len(inline) - len(preview.gif)  # the GIF is not in the page
    url = re.search('data-anim="([^"]+)"', served).group(1)
    assert url == f"{PREVIEW_PATH}/{preview.key}.gif" and re.fullmatch(PREVIEW_ROUTE[0].lstrip("/"), url)
    assert PREVIEW_FILES.get(preview.key) == preview.gif  # what the route sends
    assert _data(served, "data-still") == _data(inline, "data-still")
    assert preview.nbytes == len(preview.gif) + len(preview.still)


def test_preview_route_sends_the_animation_or_says_it_is_gone():
    import panel as pn

    from benchmarks.browser import free_port
    from twin_explorer.ui.app import SERVE_OPTIONS

    preview = encode_preview(np.full((10, 144, 256), 7, np.uint8), fps=30.0)
    preview.html(served=True)  # keeps the animation for the route
    url = f"{PREVIEW_PATH}/{preview.key}.gif"
    port = free_port()
    server = pn.serve({"blank": lambda: pn.pane.Markdown("x")}, port=port, address="127.0.0.1", show=False,
                      threaded=True, **SERVE_OPTIONS)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/{url}", timeout=5) as resp:
                    body, kind = resp.read(), resp.headers["Content-Type"]
                break
            except urllib.error.URLError as exc:
                if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert body == preview.gif and kind == "image/gif"
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/{PREVIEW_PATH}/{'0' * 32}.gif", timeout=5)
        assert gone.value.code == 404
    finally:
        server.stop()
