"""The designer's stimulus preview: an ``<img>`` that plays the stimulus as an animated GIF once when it arrives or
comes into view (and when clicked) and shows its first frame as a PNG otherwise (a playing GIF costs the browser CPU
on every frame, also on a page left idle)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

#: The animated preview plays this many times each time it comes into view (or is clicked), then shows its still
#: frame. Once: each play of a 1 s preview cost the browser ~0.1 s of CPU (2 cores), and in a class whose pages
#: redraw every second or two three plays were half of each redraw's browser work.
PREVIEW_PLAYS = 1

# Shows the still frame while the preview is off screen (another tab, scrolled away) or the page is hidden, and the
# animation while it can be seen, for data-play-ms (then the still frame; a click, a return to view or to the page
# plays it again). Set up from the image's own onload (scripts in an HTML pane do not run; event attributes do),
# once per image.
_WATCH_VISIBILITY = (
    "if(!this.__te){this.__te=1;var i=this,seen=false,done=false,t=null,set=function(){"
    "var a=seen&&!document.hidden&&!done,s=a?i.dataset.anim:i.dataset.still;"
    "if(i.getAttribute('src')!==s){i.setAttribute('src',s);clearTimeout(t);"
    "if(a)t=setTimeout(function(){done=true;set();},+i.dataset.playMs);}};"
    "new IntersectionObserver(function(es){var now=es[es.length-1].isIntersecting;if(now&&!seen)done=false;"
    "seen=now;set();}).observe(i);"
    "document.addEventListener('visibilitychange',function(){if(!document.hidden)done=false;set();});"
    "i.addEventListener('click',function(){done=false;set();});}")


def preview_gif(frames: np.ndarray, fps: float, step: int = 2) -> bytes:
    """An animated GIF (half resolution) of a uint8 [T, H, W] video for the browser preview.

    Written as 8-bit greyscale frames, so no per-frame colour quantisation is needed (5× faster than through
    imageio's RGB path, which was a fifth of a redraw)."""
    small = np.ascontiguousarray(frames[:, ::step, ::step])
    images = [Image.fromarray(f, mode="L") for f in small]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0,
                   optimize=False)
    return buf.getvalue()


def still_png(frame: np.ndarray, step: int = 2) -> bytes:
    """A PNG (half resolution) of one uint8 [H, W] frame."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame[::step, ::step]), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def preview_html(frames: np.ndarray, fps: float) -> str:
    """An ``<img>`` that animates the stimulus (GIF) :data:`PREVIEW_PLAYS` times when it arrives, comes into view or
    is clicked, and shows its first frame (PNG) otherwise."""
    play_ms = int(PREVIEW_PLAYS * 1000 * len(frames) / fps)
    gif = "data:image/gif;base64," + base64.b64encode(preview_gif(frames, fps)).decode()
    still = "data:image/png;base64," + base64.b64encode(still_png(frames[0])).decode()
    return (f'<img class="te-preview" width="384" height="216" alt="stimulus preview" src="{still}" '
            f'data-still="{still}" data-anim="{gif}" style="image-rendering:pixelated" '
            f'data-play-ms="{play_ms}" title="click to play again" onload="{_WATCH_VISIBILITY}">')
