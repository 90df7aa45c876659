"""Check an installed (non-editable) twin_explorer from outside the checkout: run by .ci/run in a fresh venv.

Checks, each printed as it passes: the package is imported from site-packages, not a checkout; the bundled data
(demo twin, anatomy sample, app and notebooks) is inside it; ``load_twin()`` is the demo twin and predicts; the
anatomy sample loads from the package; ``twin-explorer --version``; ``twin-explorer bench engine`` runs (tiny);
``twin-explorer serve --port P`` answers HTTP on localhost and stops. Runs every check; exits non-zero if any
failed.

Usage (any folder but the checkout): ``python /path/to/.ci/check_wheel.py``
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
SERVE_TIMEOUT_S = 240


def ok(message: str) -> None:
    print(f"ok   {message}", flush=True)


def check_installed_package() -> Path:
    import twin_explorer

    package = Path(twin_explorer.__file__).resolve().parent
    assert "site-packages" in package.parts, f"twin_explorer imported from {package}, not an installed package"
    assert CHECKOUT not in package.parents, f"twin_explorer imported from the checkout ({package})"
    ok(f"twin_explorer {twin_explorer.__version__} imported from {package}")
    return package


def check_bundled(package: Path) -> None:
    from twin_explorer.paths import BUNDLED, bundled

    for name in BUNDLED:
        folder = bundled(name)
        assert package in folder.parents, f"bundled {name!r} read from {folder}, outside the installed package"
    assert (bundled("demo_twin") / "model.safetensors").is_file()
    assert (bundled("apps") / "explorer.py").is_file() and len(list(bundled("apps").glob("*.ipynb"))) >= 4
    ok(f"bundled data inside the package: {', '.join(BUNDLED)}")


def check_twin() -> None:
    import numpy as np

    import twin_explorer

    twin = twin_explorer.load_twin()
    assert twin.id.startswith("demo"), f"load_twin() gave {twin.id!r}, not the bundled demo twin"
    frames = np.full((30, *twin.frame_shape), 128, dtype=np.uint8)
    out = twin.predict(frames)
    assert out.shape == (30, twin.n_units) and np.isfinite(out).all() and out.std() > 0, out.shape
    ok(f"load_twin(): {twin.id}, {twin.n_units} units, predicted {out.shape}")


def check_anatomy(package: Path) -> None:
    from twin_explorer.anatomy import Anatomy

    sample = Anatomy.sample()
    assert package in sample.folder.resolve().parents, f"anatomy sample read from {sample.folder}"
    assert len(sample.nuclei) > 0 and len(sample.skeleton_ids) > 0, repr(sample)
    ok(f"anatomy sample: {sample!r}")


def cli(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(["twin-explorer", *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"twin-explorer {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def check_version() -> None:
    import twin_explorer

    out = cli("--version").strip()
    assert out.endswith(twin_explorer.__version__), out
    ok(f"twin-explorer --version: {out}")


def check_bench_engine() -> None:
    out = cli("bench", "engine", "--units", "50", "--frames", "2", "--batch", "1", "--threads", "1")
    assert "frames/s" in out, out
    ok("twin-explorer bench engine: " + out.strip().splitlines()[-1][:100])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_serve() -> None:
    port = free_port()
    server = subprocess.Popen(["twin-explorer", "serve", "--port", str(port), "--no-show"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/explorer"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            assert server.poll() is None, f"twin-explorer serve exited {server.returncode}:\n{server.stdout.read()}"
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    html = resp.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, f"twin-explorer serve did not answer on {url} in time"
                time.sleep(1)
        assert resp.status == 200 and "twin_explorer" in html, (resp.status, html[:300])
        ok(f"twin-explorer serve answered {url} ({len(html)} bytes of HTML)")
    finally:
        server.send_signal(signal.SIGINT)  # as Ctrl+C
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.returncode is not None
    ok(f"twin-explorer serve stopped (exit {server.returncode})")


def main() -> None:
    if Path.cwd().resolve() == CHECKOUT or CHECKOUT in Path.cwd().resolve().parents:
        sys.exit("run this from outside the checkout, so that the installed package is the one imported")
    package = check_installed_package()
    failed = []
    for check in (lambda: check_bundled(package), check_twin, lambda: check_anatomy(package), check_version,
                  check_bench_engine, check_serve):
        try:
            check()
        except Exception:  # report every failing check, not only the first
            traceback.print_exc()
            failed.append(check)
    if failed:
        sys.exit(f"{len(failed)} wheel check(s) failed")
    print("the installed wheel works")


if __name__ == "__main__":
    main()
