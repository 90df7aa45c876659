"""The command line: --version, one clear line for user errors, tracebacks only with --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

import twin_explorer
from twin_explorer.cli import main


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run ``twin-explorer ARGS`` in-process; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_version_from_python_m() -> None:
    done = subprocess.run([sys.executable, "-m", "twin_explorer", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"twin_explorer {twin_explorer.__version__}"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture) -> None:
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0
    for command in ("serve", "predict", "bench", "notebooks", "--version", "--debug"):
        assert command in out


@pytest.mark.parametrize("args, names", [
    (("serve", "--port", "abc"), "--port"),
    (("serve", "--port", "70000"), "--port"),
    (("bench", "engine", "--frames", "1"), "--frames"),
    (("no-such-command",), "no-such-command"),
])
def test_bad_option_value_is_one_clear_line(capsys: pytest.CaptureFixture, args: tuple[str, ...], names: str) -> None:
    status, out, err = run_cli(capsys, *args)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "error" in err and names in err and "Traceback" not in err + out


def test_non_video_file_is_one_clear_line(capsys: pytest.CaptureFixture, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    status, out, err = run_cli(capsys, "predict", str(notes), "--output", str(tmp_path / "r.npy"))
    assert status == 1
    assert len(err.strip().splitlines()) == 1, err
    assert str(notes) in err and "--debug" in err and "Traceback" not in err + out
    assert not (tmp_path / "r.npy").exists()


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    status, _, err = run_cli(capsys, "predict", str(notes), "--output", str(tmp_path / "r.npy"), "--debug")
    assert status == 1
    assert "Traceback (most recent call last)" in err and str(notes) in err


def test_notebooks_are_copied_and_not_overwritten(capsys: pytest.CaptureFixture, tmp_path) -> None:
    folder = tmp_path / "nb"
    status, out, _ = run_cli(capsys, "notebooks", str(folder))
    assert status == 0 and f"jupyter lab {folder}" in out
    copied = sorted(p.name for p in folder.glob("*.ipynb"))
    assert len(copied) == 4 and copied[0].startswith("01_")
    status, _, err = run_cli(capsys, "notebooks", str(folder))
    assert status == 2 and "--force" in err


def test_bench_without_a_benchmark_shows_its_help(capsys: pytest.CaptureFixture) -> None:
    status, out, err = run_cli(capsys, "bench")
    assert status == 2
    assert "engine" in out and "demo" in out and "error" not in err
