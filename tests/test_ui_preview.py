"""The designer's preview (ui/preview.py): a GIF of every frame at half resolution that plays once per arrival,
and the first frame as the still image."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from twin_explorer.ui.preview import PREVIEW_PLAYS, preview_html


def _data(html: str, attr: str) -> bytes:
    url = re.search(f'{attr}="data:image/[a-z]+;base64,([^"]+)"', html).group(1)
    return base64.b64decode(url)


def test_preview_plays_once_then_shows_the_first_frame():
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
    assert _data(html, " src") == _data(html, "data-still")  # what a page shows before it plays
