"""The designer's video upload: a file picker that turns the user's video into a ``VideoFile`` stimulus, or says
what was wrong with the file and keeps the stimulus shown before.

Uploads are stored under the cache folder ``uploads``, named by their content hash (the same video uploaded by
several sessions is stored once, and the designer's result cache keys on that name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import panel as pn

from twin_explorer.paths import cache_dir
from twin_explorer.stimuli import VideoFile
from twin_explorer.stimuli.video import ARRAY_EXTS, VIDEO_EXTS
from twin_explorer.store import atomic_path, content_hash

MAX_UPLOAD_BYTES = 10 * 2**20
UPLOAD_EXTS = VIDEO_EXTS + ARRAY_EXTS
ACCEPTED_UPLOADS = (f"a video ({', '.join(e.lstrip('.') for e in VIDEO_EXTS)}) or a .npy array of frames, "
                    f"at most {MAX_UPLOAD_BYTES // 2**20} MB")


def video_from_upload(data: bytes | None, filename: str | None, max_s: float, folder: str | Path | None = None,
                      max_bytes: int = MAX_UPLOAD_BYTES) -> VideoFile:
    """A ``VideoFile`` stimulus of an uploaded file (its first ``max_s`` seconds at most), stored in ``folder``
    (default the ``uploads`` cache folder). Raises ValueError saying what was wrong and what is accepted."""
    name = Path(str(filename or "")).name
    if not name:
        raise ValueError(f"no file was chosen; accepted: {ACCEPTED_UPLOADS}")
    ext = Path(name).suffix.lower()
    if ext not in UPLOAD_EXTS:
        raise ValueError(f"{name!r} is not a video file (extension {ext or 'none'!r}); accepted: {ACCEPTED_UPLOADS}")
    if not data:
        raise ValueError(f"{name!r} is empty; accepted: {ACCEPTED_UPLOADS}")
    if len(data) > max_bytes:
        raise ValueError(f"{name!r} is {len(data) / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit; "
                         "shorten or shrink the video")
    target_dir = cache_dir("uploads", folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{content_hash(data)[:24]}{ext}"
    if not path.exists():
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
    try:
        stim = VideoFile(path)
        if stim.duration > max_s:  # reads the file: an unreadable one fails here
            stim.duration_s = max_s
        stim.render()
    except Exception as exc:  # PyAV and numpy raise many kinds; the user gets the reason either way
        detail = str(exc).replace(str(path), name)
        raise ValueError(f"cannot read {name!r} as a video: {detail}") from None
    return stim


class VideoUpload(pn.viewable.Viewer):
    """A file picker; ``on_video(stimulus, filename)`` gets each upload that reads as a video, and a refused one
    shows why under the picker."""

    def __init__(self, on_video: Callable[[VideoFile, str], None], max_s: float, folder: str | Path | None = None,
                 **params: Any) -> None:
        super().__init__(**params)
        self._on_video, self._max_s, self._folder = on_video, max_s, folder
        self.file_input = pn.widgets.FileInput(accept=",".join(UPLOAD_EXTS), multiple=False,
                                               sizing_mode="stretch_width")
        self.help = pn.pane.Markdown(f"**Your own video**: {ACCEPTED_UPLOADS}; the first {max_s:g} s are shown.",
                                     margin=(10, 10, 0, 10), styles={"font-size": "0.9em"})
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["te-upload-message"],
                                     sizing_mode="stretch_width")
        self.file_input.param.watch(lambda e: self.receive(e.obj.value, e.obj.filename), "value")

    def receive(self, data: bytes | None, filename: str | None) -> bool:
        """Check an uploaded file and hand it on; a refused file shows why (the stimulus shown stays). True if
        accepted."""
        try:
            stim = video_from_upload(data, filename, self._max_s, self._folder)
        except ValueError as exc:
            self.message.object = f"**Upload refused:** {exc}. The previous stimulus is still shown."
            self.message.visible = True
            return False
        self.message.visible = False
        self._on_video(stim, Path(str(filename)).name)
        return True

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.help, self.file_input, self.message, sizing_mode="stretch_width")
