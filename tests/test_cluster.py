"""The batch runner on real process-based dask clusters: ``LocalCluster(processes=True)``, GPU-pinned worker
processes (one ``CUDA_VISIBLE_DEVICES`` each; no GPU is needed to check the pinning), and a cluster started as
separate ``dask scheduler`` / ``dask worker`` processes on 127.0.0.1, one of which is killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from cluster_tasks import expected, make_twin, probe  # noqa: E402  (tests/ is on sys.path; workers import it by name)

from twin_explorer.experiments.batch import BatchRunner, TwinSpec  # noqa: E402
from twin_explorer.experiments.cluster import gpu_worker_specs, local_cluster, wants_gpu  # noqa: E402
from twin_explorer.experiments.results_store import read_results  # noqa: E402

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
WORKER_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]),
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def specs(*scans_units):
    return [TwinSpec(factory=make_twin, options={"scan": s, "n": n}) for s, n in scans_units]


@pytest.fixture(autouse=True)
def worker_path(monkeypatch):
    """Spawned worker processes inherit the environment: let them import cluster_tasks and this checkout."""
    monkeypatch.setenv("PYTHONPATH", WORKER_ENV["PYTHONPATH"])


def test_local_process_cluster_runs_all_scans_into_one_store(tmp_path):
    seen = []
    with local_cluster(n_workers=2, gpus=None) as cluster, distributed.Client(cluster) as client:
        assert isinstance(cluster, distributed.LocalCluster) and not wants_gpu(client)
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids  # separate worker processes
        runner = BatchRunner(probe, chunk_size=2, cache_dir=tmp_path / "cache", client=client,
                             progress=lambda d, t: seen.append((d, t)), store=tmp_path / "all.nc")
        out = runner.run(specs((0, 5), (1, 3), (2, 4)), level=170)
    assert list(out) == ["scan-0", "scan-1", "scan-2"] and runner.computed == 3 + 2 + 2
    assert seen[-1] == (7, 7)
    stored = read_results(tmp_path / "all.nc")
    assert list(stored) == ["scan-0", "scan-1", "scan-2"]
    for scan, name in enumerate(stored):
        ds = stored[name]
        np.testing.assert_allclose(ds.response.values, expected(scan, ds.unit.values, 170), rtol=1e-6)
        assert set(ds.pid.values) <= pids  # computed on the workers, not here
        assert (ds.builds.values == 1).all()  # each worker built each scan's twin once, however many chunks
    assert sum(len(set(ds.pid.values)) for ds in stored.values()) > 3  # both workers took part


def test_gpu_worker_specs_pin_one_device_each():
    """No GPU here: the pinning (env + resource per worker process) is what a GPU machine relies on; the
    separate-process test below runs workers started that way."""
    from distributed import Nanny

    spec = gpu_worker_specs([0, "1"])
    assert list(spec) == ["gpu-0", "gpu-1"] and all(w["cls"] is Nanny for w in spec.values())
    assert [w["options"]["env"] for w in spec.values()] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert all(w["options"]["resources"] == {"GPU": 1} and w["options"]["host"] == "127.0.0.1" for w in spec.values())
    with pytest.raises(ValueError, match="distinct CUDA device ids"):
        gpu_worker_specs(["0", "0"])
    with pytest.raises(ValueError, match="one worker per GPU"):
        local_cluster(n_workers=3, gpus=["0", "1"])
    with pytest.raises(ValueError, match="gpus must be"):
        local_cluster(gpus="cuda")


class ProcessCluster:
    """``dask scheduler`` + ``dask worker`` processes on 127.0.0.1; every wait is bounded; always torn down."""

    def __init__(self, folder: Path, n_workers: int = 2, timeout_s: float = 60) -> None:
        self.file = folder / "scheduler.json"
        self.timeout_s = timeout_s
        self.procs: list[subprocess.Popen] = []
        self.logs = folder
        self.n_workers = n_workers

    def _spawn(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "dask", *args], env=env or WORKER_ENV, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=self.logs)
        self.procs.append(proc)
        return proc

    def __enter__(self) -> "ProcessCluster":
        self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.file))
        # the workers start at once, importing while the scheduler starts: ``--scheduler-file`` makes a worker wait
        # for the file to appear. Each is pinned to "its GPU" as on a GPU machine (CUDA_VISIBLE_DEVICES + the GPU
        # resource)
        self.workers = [self._spawn(f"worker{i}", "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                                    "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}",
                                    "--resources", "GPU=1", "--death-timeout", str(int(self.timeout_s)),
                                    env={**WORKER_ENV, "CUDA_VISIBLE_DEVICES": str(i)})
                        for i in range(self.n_workers)]
        deadline = time.monotonic() + self.timeout_s
        while not self.file.exists():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                self.__exit__()
                raise RuntimeError(f"dask scheduler did not start: {(self.logs / 'scheduler.log').read_text()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        # the test has asserted everything by now: stop at once rather than wait for graceful shutdowns
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=10)


def test_separate_processes_survive_a_killed_worker_and_resume(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    cache = tmp_path / "cache"
    twin = specs((1, 6))[0]
    kw = dict(level=140, sleep_s=1.0, marker_dir=str(markers))
    with ProcessCluster(tmp_path) as pc, distributed.Client(scheduler_file=str(pc.file), timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        assert wants_gpu(client)  # so every chunk asks for one GPU: never two on one device
        victim = pc.workers[0]
        runner = BatchRunner(probe, chunk_size=1, cache_dir=cache, client=client, progress=False)
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(ds=runner.run(twin, **kw)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(f"{victim.pid}-") for p in markers.iterdir()):
            assert time.monotonic() < deadline, "the worker never started a chunk"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)  # mid-chunk: it sleeps 1 s inside the experiment
        thread.join(timeout=90)
        assert not thread.is_alive() and "ds" in result, "the run did not complete after a worker was killed"
        killed_unit = next(int(p.name.split("-")[1]) for p in markers.iterdir() if p.name.startswith(f"{victim.pid}-"))
        ds = result["ds"]
        np.testing.assert_allclose(ds.response.values, expected(1, range(6), 140), rtol=1e-6)
        assert victim.pid not in set(ds.pid.values)  # its chunk was redone by the surviving worker
        assert int(ds.pid.sel(unit=killed_unit)) == pc.workers[1].pid
        assert set(ds.gpu.values) == {"1"}  # the survivor's own device
        # a rerun (even a fresh runner, as after the driver itself died) computes nothing already finished
        files = sorted(cache.rglob("*.nc"))
        assert len(files) == 6
        files[2].unlink()  # as if the run had died before this chunk finished
        again = BatchRunner(probe, chunk_size=1, cache_dir=cache, client=client, progress=False)
        ds2 = again.run(twin, **kw)
        assert again.computed == 1
        np.testing.assert_allclose(ds2.response.values, ds.response.values)


def test_cli_batch_writes_every_scan_to_one_store(tmp_path, capsys):
    from twin_explorer.cli import main
    from twin_explorer.twins import make_bundle

    args = ["batch", "direction_tuning", "--twin", "synthetic", "--n-neurons", "6", "-p", "directions=6",
            "-p", "duration_s=0.5", "--chunk-size", "4", "--cache", str(tmp_path / "cache"),
            "--store", str(tmp_path / "all.nc")]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    text = capsys.readouterr().out
    assert exit_.value.code == 0 and "2 chunks computed" in text, text
    (name, ds), = read_results(tmp_path / "all.nc").items()
    assert ds.sizes["unit"] == 6 and "gosi" in ds
    with pytest.raises(SystemExit):
        main(args)
    assert "0 chunks computed" in capsys.readouterr().out  # resumed entirely from the cache
    bundle = make_bundle(tmp_path / "bundle", scans="8-5,4-7", units=3)
    with pytest.raises(SystemExit) as exit_:
        main(["batch", "direction_tuning", "--bundle", str(bundle), "--scans", "7-4"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "8-5" in err and "4-7" in err
