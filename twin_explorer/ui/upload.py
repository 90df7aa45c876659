"""The designer's video upload: a file picker that turns the user's video into a ``VideoFile`` stimulus, or says
what was wrong with the file and keeps the stimulus shown before.

The picker is Panel's ``FileDropper``: the browser refuses a file over :data:`MAX_UPLOAD_BYTES` itself, saying so
next to the file, before sending anything (a plain file input sends the whole file as one websocket message, and
one over Bokeh's 20 MB message limit never arrived: the user saw nothing), and an accepted file travels in
:data:`CHUNK_BYTES` pieces. Its scripts (FilePond, served by the app itself) load only when the user asks for the
picker (through a ``ui.scripts.ScriptLoader``): FilePond runs an animation-frame loop from the moment its script
runs, and every idle page that loaded it used 0.06 of a core (about 0.01 without it). A notebook that ran
``pn.extension("filedropper")`` has them already.

Uploads are stored under the cache folder ``uploads``, named by their content hash (the same video uploaded by
several sessions is stored once, and the designer's result cache keys on that name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import panel as pn
from panel.models.file_dropper import FileDropper as FileDropperModel

from twin_explorer.paths import cache_dir
from twin_explorer.stimuli import VideoFile
from twin_explorer.stimuli.video import ARRAY_EXTS, VIDEO_EXTS
from twin_explorer.store import atomic_path, content_hash

from .scripts import show_when_loaded

MB = 10**6  # decimal megabytes, as the browser's picker counts them (its limit and ours then say the same)
MAX_UPLOAD_BYTES = 10 * MB
#: One websocket message per chunk, well under Bokeh's 20 MB message limit.
CHUNK_BYTES = 4 * MB
UPLOAD_EXTS = VIDEO_EXTS + ARRAY_EXTS
ACCEPTED_UPLOADS = (f"a video ({', '.join(e.lstrip('.') for e in VIDEO_EXTS)}) or a .npy array of frames, "
                    f"at most {MAX_UPLOAD_BYTES // MB} MB")


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
        raise ValueError(f"{name!r} is {len(data) / MB:.1f} MB, over the {max_bytes / MB:.0f} MB limit; "
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
    shows why under the picker (a file over the size limit: in the picker, from the browser)."""

    def __init__(self, on_video: Callable[[VideoFile, str], None], max_s: float, folder: str | Path | None = None,
                 **params: Any) -> None:
        super().__init__(**params)
        self._on_video, self._max_s, self._folder = on_video, max_s, folder
        # no accepted_filetypes: browsers give .npy no MIME type, and the picker would refuse it without a reason
        # shown once its scripts are in the page (see the module docstring)
        self.file_input = pn.widgets.FileDropper(multiple=False, max_file_size=f"{MAX_UPLOAD_BYTES // MB}MB",
                                                 chunk_size=CHUNK_BYTES, previews=[], layout="compact",
                                                 sizing_mode="stretch_width")
        self.open_button = pn.widgets.Button(label="Choose a video file…",  # no icon: icons come from a CDN
                                             css_classes=["te-upload-open"], margin=(5, 10))
        self.open_button.on_click(self._load_picker)
        self._slot = pn.Column(self.open_button, sizing_mode="stretch_width")
        self.help = pn.pane.Markdown(f"**Your own video**: {ACCEPTED_UPLOADS}; the first {max_s:g} s are shown.",
                                     margin=(10, 10, 0, 10), styles={"font-size": "0.9em"})
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["te-upload-message"],
                                     sizing_mode="stretch_width")
        self.file_input.param.watch(self._on_files, "value")

    def _load_picker(self, _event: Any = None) -> None:
        """The button asked for the picker: its scripts load in the page (ui/scripts.py), then it replaces them."""
        show_when_loaded(self._slot, self.file_input, FileDropperModel, "filedropper", "Loading the file picker…")

    def _on_files(self, event: Any) -> None:
        """Each file the picker completed (its last chunk arrived): checked once and then dropped from the picker's
        value, so a session holds no copy of it."""
        files = event.new
        for name in list(files):
            data = files.pop(name)
            self.receive(data.encode() if isinstance(data, str) else data, name)  # text/* arrive decoded

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
        return pn.Column(self.help, self._slot, self.message, sizing_mode="stretch_width")
