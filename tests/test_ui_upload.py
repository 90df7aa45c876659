"""The designer's video upload: a video becomes the stimulus shown; an empty, too large, non-video or unreadable file
shows why and the previous stimulus stays; a file arrives in chunks, and the browser refuses one over the limit."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from twin_explorer.stimuli import save_mp4  # noqa: E402
from twin_explorer.ui.designer import MAX_PREVIEW_DURATION_S, StimulusDesigner  # noqa: E402
from twin_explorer.ui.state import ExplorerState, get_twin  # noqa: E402
from twin_explorer.ui.upload import (  # noqa: E402
    ACCEPTED_UPLOADS, CHUNK_BYTES, MAX_UPLOAD_BYTES, MB, VideoUpload, video_from_upload)


def _npy_bytes(frames: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, frames)
    return buf.getvalue()


def _ramp(n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 36, 64), dtype=np.uint8)


@pytest.fixture
def designer(monkeypatch, tmp_path):
    monkeypatch.setenv("TWIN_EXPLORER_CACHE", str(tmp_path / "cache"))
    return StimulusDesigner(state=ExplorerState(get_twin("synthetic")))


@pytest.mark.parametrize("data, name, why", [
    (b"", "", "no file was chosen"),
    (b"hello", "notes.txt", "'notes.txt' is not a video file (extension '.txt')"),
    (b"", "clip.mp4", "'clip.mp4' is empty"),
    (b"x" * (2**20 + 1), "big.mp4", "'big.mp4' is 1.0 MB, over the 1 MB limit"),
    (b"not a video at all" * 10, "clip.mp4", "cannot read 'clip.mp4' as a video"),
    (b"\x93NUMPY garbage", "frames.npy", "cannot read 'frames.npy' as a video"),
])
def test_malformed_uploads_are_refused_with_the_reason(tmp_path, data, name, why):
    with pytest.raises(ValueError) as info:
        video_from_upload(data, name, max_s=10.0, folder=tmp_path, max_bytes=2**20)
    assert why in str(info.value)
    assert str(tmp_path) not in str(info.value)  # the stored file's path is not the user's business
    if "is not a video file" in why or "no file" in why:
        assert ACCEPTED_UPLOADS in str(info.value)


def test_an_uploaded_video_is_cut_to_the_preview_length(tmp_path):
    stim = video_from_upload(_npy_bytes(_ramp(30 * 12)), "long.npy", max_s=MAX_PREVIEW_DURATION_S, folder=tmp_path)
    assert stim.duration == pytest.approx(MAX_PREVIEW_DURATION_S)
    mp4 = tmp_path / "in.mp4"
    save_mp4(_ramp(30), mp4)
    stim = video_from_upload(mp4.read_bytes(), "clip.mp4", max_s=MAX_PREVIEW_DURATION_S, folder=tmp_path)
    assert stim.render().shape[0] == 30 and stim.duration == pytest.approx(1.0)


def test_designer_shows_an_upload_and_keeps_it_when_the_next_is_malformed(designer):
    upload = designer.upload
    before, shown = designer.stimulus, designer._result
    assert not upload.receive(b"garbage" * 100, "clip.mp4")  # nothing valid uploaded yet: the grating stays
    assert upload.message.visible and "Upload refused" in upload.message.object
    assert "previous stimulus is still shown" in upload.message.object
    assert designer.family == "DriftingGrating" and designer.stimulus is before and designer._result is shown

    frames = _ramp(15)
    assert upload.receive(_npy_bytes(frames), "mine.npy")
    assert not upload.message.visible
    assert designer.family == "VideoFile" and "VideoFile" in designer.family_select.options
    assert designer._result["params"]["family"] == "VideoFile"
    assert designer._result["frames"].shape[0] == 15 and designer._result["responses"].shape[0] == 15
    assert "path" not in designer.param_controls.widgets  # the stored file is not offered for editing
    video, n = designer.stimulus, designer.n_updates

    for data, name in ((b"", "empty.mp4"), (b"%PDF-1.4", "paper.pdf"), (b"junk" * 50, "broken.webm")):
        assert not upload.receive(data, name)
        assert upload.message.visible and name in upload.message.object
        assert designer.stimulus is video and designer.n_updates == n and designer.family == "VideoFile"
    # the previous families still work after a video
    designer.family = "DriftingGrating"
    assert designer._result["params"]["family"] == "DriftingGrating" and designer.stimulus is before


def _send_in_chunks(dropper, data: bytes, name: str, mime: str = "application/octet-stream") -> None:
    """What the browser's picker sends for one file: ``chunk_size`` pieces, each its own websocket message."""
    size = dropper.chunk_size
    total = -(-(len(data) + 1) // size)  # the picker's count (+1: an empty file is one chunk)
    for i in range(total):
        dropper._process_event(SimpleNamespace(event_name="upload_event", data={
            "chunk": i + 1, "data": data[i * size:(i + 1) * size], "name": name, "total_chunks": total,
            "type": mime}))


def test_the_picker_is_shown_once_its_scripts_are_in_the_page(designer):
    """Until the user asks, the page holds a button; then a loader of FilePond's scripts; once the browser ran them,
    the picker."""
    from twin_explorer.ui.scripts import ScriptLoader

    upload = designer.upload
    upload._slot[:] = [upload.open_button]  # as a new page has it
    upload.open_button.clicks += 1
    (loader,) = upload._slot.objects
    assert isinstance(loader, ScriptLoader) and loader.global_name == "FilePond"
    assert any("filepond" in s for s in loader.scripts) and all(s.startswith("static/") for s in loader.scripts)
    assert upload.file_input not in upload._slot.objects
    loader.ready = True  # what the browser sends once the scripts ran
    assert upload._slot.objects == [upload.file_input]


def test_the_picker_refuses_large_files_in_the_browser_and_sends_in_chunks(designer):
    dropper = designer.upload.file_input
    assert isinstance(dropper, pn.widgets.FileDropper) and not dropper.multiple
    # the browser refuses a file over the limit before sending any of it (no websocket message to lose)
    assert dropper.max_file_size == f"{MAX_UPLOAD_BYTES // MB}MB" and MAX_UPLOAD_BYTES == 10 * MB
    assert CHUNK_BYTES <= 5 * MB < 20 * 2**20 // 2  # each chunk far under Bokeh's websocket message limit


def test_a_chunked_upload_becomes_the_stimulus_and_leaves_no_copy(designer):
    dropper = designer.upload.file_input
    dropper.chunk_size = 1000  # several chunks for this small video
    frames = _ramp(15)
    data = _npy_bytes(frames)
    assert len(data) > 3 * dropper.chunk_size
    _send_in_chunks(dropper, data, "mine.npy")
    assert designer.family == "VideoFile" and designer._result["frames"].shape[0] == 15
    assert Path(designer.stimulus.path).read_bytes() == data  # the chunks joined in order
    assert dropper.value == {}  # received once, then dropped from the session


def test_a_too_large_file_that_arrives_anyway_is_refused_and_the_stimulus_stays(designer):
    """A browser that skipped the picker's size check: the server refuses the file with the reason."""
    dropper, upload = designer.upload.file_input, designer.upload
    before, shown, n = designer.stimulus, designer._result, designer.n_updates
    _send_in_chunks(dropper, b"\0" * (MAX_UPLOAD_BYTES + 1), "huge.mp4", "video/mp4")
    assert upload.message.visible and "'huge.mp4' is 10.0 MB, over the 10 MB limit" in upload.message.object
    assert "previous stimulus is still shown" in upload.message.object
    assert designer.stimulus is before and designer._result is shown and designer.n_updates == n
    _send_in_chunks(dropper, b"hello", "notes.txt", "text/plain")  # text arrives decoded: still refused by name
    assert "'notes.txt' is not a video file" in upload.message.object and designer.stimulus is before
    assert dropper.value == {}


def test_an_upload_is_released_when_nothing_holds_it():
    """Nothing global (such as Panel's js-callback registry) may lead back to an upload: every session's upload (and
    its session) would stay alive after the page closed."""
    import gc
    import weakref

    upload = VideoUpload(lambda stim, name: None, max_s=10.0)
    upload.open_button.clicks += 1
    upload._slot.objects[0].ready = True
    assert upload._slot.objects == [upload.file_input]
    ref = weakref.ref(upload)
    del upload
    gc.collect()
    assert ref() is None
