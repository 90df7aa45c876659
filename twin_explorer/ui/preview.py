"""The designer's stimulus preview: an ``<img>`` showing the stimulus's first frame (PNG) that plays the stimulus as
an animated GIF when the pointer enters it or it is clicked, once, then shows the still frame again.

It does not play by itself when a new stimulus arrives: one play of a 1 s preview cost the browser ~0.18 s of CPU
(2 cores, software rendering: 0.34 s → 0.13 s per designer redraw without it, alternated runs), which in a class
moving sliders every second was most of each redraw's browser work, and also ran while a page stood idle.

Served by ``twin-explorer serve``, the animation is not in the page at all until it is played: the page fetches it
from this server (:class:`PreviewHandler`, routed by ``ui.app.SERVE_OPTIONS``). A 1 s grating's GIF is 80-340 KB;
sent inside the page's HTML it went to every session on every redraw as 0.1-0.45 MB of JSON, played or not.
Elsewhere (a notebook, a plain ``panel serve``) it is a data URI in the page.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image
from tornado.web import HTTPError, RequestHandler

from twin_explorer.store import BytesLRU

#: Each play (pointer entering the preview, or a click) shows the animation this many times, then the still frame.
PREVIEW_PLAYS = 1
#: Where served previews' animations are fetched from, relative to the page (``/explorer`` → ``/te-preview/…``).
PREVIEW_PATH = "te-preview"
#: The animations this server can send: the most recently shown, bounded in bytes (a few hundred previews).
PREVIEW_FILES = BytesLRU(64 * 2**20, sizeof=len)
#: Whether served pages fetch animations from :class:`PreviewHandler`: set by ``ui.app.prepare_server``, whose
#: ``SERVE_OPTIONS`` add its route (a plain ``panel serve`` has neither, and its pages carry data URIs).
ANIMATIONS_SERVED = False

# Set up from the image's own onload (scripts in an HTML pane do not run; event attributes do), once per image: a
# click or the pointer entering plays the animation (data-anim) for data-play-ms, then the still frame
# (data-still) comes back; leaving the view (another tab, scrolled away) or a hidden page stops it at once. The badge
# after the image says it can be played and hides while it plays. The page keeps one list of its previews and one
# visibility listener for all of them; each new image drops the replaced ones (each redraw makes a new image, and a
# listener per image kept every replaced preview, data and all, in the page's memory). An animation that cannot be
# fetched (the server dropped it) leaves the still frame.
_PLAY_ON_REQUEST = (
    "if(!this.__te){this.__te=1;var i=this,b=i.nextElementSibling,seen=true,want=false,t=null,set=function(){"
    "var a=want&&seen&&!document.hidden,s=a?i.dataset.anim:i.dataset.still;"
    "if(i.getAttribute('src')!==s){i.setAttribute('src',s);clearTimeout(t);"
    "if(a)t=setTimeout(function(){want=false;set();},+i.dataset.playMs);}"
    "if(b)b.style.visibility=a?'hidden':'';},"
    "play=function(){want=true;set();},"
    "S=window.__tePreviews||(window.__tePreviews=new Set());"
    "if(!window.__teVisibility){window.__teVisibility=1;document.addEventListener('visibilitychange',"
    "function(){window.__tePreviews.forEach(function(p){p.stop();});});}"
    "S.forEach(function(p){if(!p.img.isConnected){p.observer.disconnect();p.stop();S.delete(p);}});"
    "var o=new IntersectionObserver(function(es){seen=es[es.length-1].isIntersecting;if(!seen)want=false;set();});"
    "o.observe(i);S.add({img:i,observer:o,stop:function(){want=false;set();}});"
    "i.addEventListener('click',play);i.addEventListener('mouseenter',play);"
    "i.addEventListener('error',function(){if(i.getAttribute('src')!==i.dataset.still){want=false;set();}});}")

_BADGE_STYLE = ("position:absolute;left:6px;bottom:6px;padding:1px 7px;border-radius:3px;font-size:12px;"
                "line-height:18px;background:rgba(0,0,0,0.55);color:#fff;pointer-events:none")


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


@dataclass(frozen=True)
class Preview:
    """A stimulus's preview, encoded (in a worker): its animation (GIF), its still frame (PNG) and how long one play
    lasts."""

    gif: bytes
    still: bytes
    play_ms: int
    seconds: float

    @property
    def nbytes(self) -> int:  # what a result cache counts (store.nbytes)
        return len(self.gif) + len(self.still)

    @cached_property
    def key(self) -> str:
        """The animation's name on the server (a hash of its bytes; computed once, the preview is shown often)."""
        return hashlib.blake2b(self.gif, digest_size=16).hexdigest()

    def html(self, served: bool = False) -> str:
        """The ``<img>`` (with its "▶ play" badge). ``served``: the animation is fetched from this server when played
        (:func:`serve_animation` is called here); otherwise it is a data URI in the page."""
        anim = serve_animation(self) if served else "data:image/gif;base64," + base64.b64encode(self.gif).decode()
        still = "data:image/png;base64," + base64.b64encode(self.still).decode()
        return (f'<div style="position:relative;display:inline-block;line-height:0">'
                f'<img class="te-preview" width="384" height="216" alt="stimulus preview (first frame)" '
                f'src="{still}" data-still="{still}" data-anim="{anim}" style="image-rendering:pixelated;'
                f'cursor:pointer" data-play-ms="{self.play_ms}" '
                f'title="point at it or click to play the stimulus ({self.seconds:.2g} s)" '
                f'onload="{_PLAY_ON_REQUEST}"><span class="te-play" style="{_BADGE_STYLE}">▶ play</span></div>')


def encode_preview(frames: np.ndarray, fps: float) -> Preview:
    """The preview of a uint8 [T, H, W] video: :data:`PREVIEW_PLAYS` plays of every frame, the first frame still."""
    return Preview(gif=preview_gif(frames, fps), still=still_png(frames[0]),
                   play_ms=int(PREVIEW_PLAYS * 1000 * len(frames) / fps), seconds=len(frames) / fps)


def preview_html(frames: np.ndarray, fps: float) -> str:
    """The preview's ``<img>`` with its animation in the page (:meth:`Preview.html`)."""
    return encode_preview(frames, fps).html()


def serve_animation(preview: Preview) -> str:
    """Keep ``preview``'s animation where :class:`PreviewHandler` sends it from; returns its URL, relative to the
    page."""
    key = preview.key
    if PREVIEW_FILES.get(key) is None:  # (a get also marks it recently used)
        PREVIEW_FILES.put(key, preview.gif)
    return f"{PREVIEW_PATH}/{key}.gif"


class PreviewHandler(RequestHandler):
    """``GET /te-preview/<key>.gif``: a preview's animation (names are hashes of the content, so it never changes:
    the browser may keep it)."""

    def get(self, key: str) -> None:
        gif = PREVIEW_FILES.get(key)
        if gif is None:
            raise HTTPError(404, reason="no such preview (it may have been dropped: redraw the stimulus)")
        self.set_header("Content-Type", "image/gif")
        self.set_header("Cache-Control", "public, max-age=86400, immutable")
        self.write(gif)


#: The route of :class:`PreviewHandler`, for ``pn.serve(extra_patterns=...)``.
PREVIEW_ROUTE = (rf"/{PREVIEW_PATH}/([0-9a-f]{{32}})\.gif", PreviewHandler)
