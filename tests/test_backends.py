"""Backends: every path's metrics bit-for-bit the same serially, on local worker processes and on a Dask
LocalCluster on loopback, whatever the workers and the chunk size; checkpoints that survive a killed run;
Ctrl-C that stops the workers; clear errors when a backend cannot run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import creditsim
from creditsim.analysis.sweeps import sweep
from creditsim.errors import BackendError, ResultsError
from creditsim.present.cli import main
from creditsim.run.backends import MAX_CHUNK, Backend, default_chunk_size
from creditsim.run.progress import Progress
from helpers import BASE_TOML, assert_same_bits

PATHS = [0, 3, 4, 7, 9, 12]  # not contiguous: the path numbers, not their positions, fix the streams


@pytest.fixture(scope="module")
def scenario():
    """The illustrative city over 12 months, on a 1:2 sample so that scaling back is exercised too."""
    return creditsim.load_scenario(BASE_TOML, overrides={"calendar.months": 12, "sample": "1:2"})


@pytest.fixture(scope="module")
def serial(scenario):
    return creditsim.simulate(scenario, paths=PATHS, seed=5)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_serial_chunks_are_bit_identical(scenario, serial, chunk_size):
    assert_same_bits(serial, creditsim.simulate(scenario, paths=PATHS, seed=5, chunk_size=chunk_size))


def test_one_path_alone_is_bit_identical(scenario, serial):
    alone = creditsim.simulate(scenario, paths=[PATHS[3]], seed=5)
    for scope in serial.groups:
        assert alone.groups[scope][0].tobytes() == serial.groups[scope][3].tobytes()


@pytest.mark.parametrize(("workers", "chunk_size"), [(2, 1), (2, 4), (3, None)])
def test_processes_are_bit_identical(scenario, serial, workers, chunk_size):
    assert_same_bits(serial, creditsim.simulate(scenario, paths=PATHS, seed=5, workers=workers, chunk_size=chunk_size))


@pytest.mark.parametrize("chunk_size", [1, 5])
def test_dask_local_cluster_is_bit_identical(scenario, serial, dask_client, chunk_size):
    assert_same_bits(serial, creditsim.simulate(scenario, paths=PATHS, seed=5, client=dask_client, chunk_size=chunk_size))


def test_dask_by_scheduler_address_is_bit_identical(scenario, serial, dask_client):
    address = dask_client.scheduler.address
    assert_same_bits(serial, creditsim.simulate(scenario, paths=PATHS, seed=5, scheduler=address, chunk_size=2))


def test_sweep_summaries_are_bit_identical_across_backends(scenario, dask_client):
    grid = {"banks.city_bank.max_pd": [0.05, 0.1]}
    a = sweep(scenario, grid, paths=PATHS, seed=5)
    b = sweep(scenario, grid, paths=PATHS, seed=5, client=dask_client, chunk_size=2)
    c = sweep(scenario, grid, paths=PATHS, seed=5, workers=2, chunk_size=3)
    for other in (b, c):
        for mine, theirs in zip(a.values, other.values, strict=True):
            assert mine.keys() == theirs.keys()
            assert all(mine[k].tobytes() == theirs[k].tobytes() for k in mine)


def test_compare_runs_both_scenarios_on_one_backend(scenario):
    variant = creditsim.load_scenario(BASE_TOML, overrides={"calendar.months": 12, "sample": "1:2", "banks.city_bank.max_pd": 0.05})
    serial = creditsim.compare(scenario, variant, paths=PATHS[:3], seed=5)
    local = creditsim.compare(scenario, variant, paths=PATHS[:3], seed=5, workers=2, chunk_size=1)
    assert_same_bits(serial.base, local.base)
    assert_same_bits(serial.variant, local.variant)


def test_chunks_stay_bounded_whatever_the_paths():
    assert default_chunk_size(1, 1) == 1
    assert default_chunk_size(10**6, 2) == MAX_CHUNK
    assert default_chunk_size(200, 2) == 13  # about eight tasks per worker


def test_backend_errors_are_clear(monkeypatch, scenario):
    with pytest.raises(BackendError, match="must be one of serial, processes, dask"):
        creditsim.simulate(scenario, paths=1, backend="gpu")
    with pytest.raises(BackendError, match="workers = 0"):
        creditsim.simulate(scenario, paths=1, backend="processes", workers=0)
    with pytest.raises(BackendError, match="chunk_size = 0"):
        creditsim.simulate(scenario, paths=1, chunk_size=0)
    with pytest.raises(BackendError, match="needs backend 'dask'"):
        creditsim.simulate(scenario, paths=1, backend="serial", scheduler="tcp://127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(BackendError, match=r"pip install 'creditsim\[dask\]'"):
        creditsim.simulate(scenario, paths=1, backend="dask")


def test_cli_backend_errors_are_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["run", "--paths", "1", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "creditsim[dask]" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "nonsense", "tcp://127.0.0.1:notaport"])
def test_unreachable_or_bad_scheduler_is_one_line(capsys, address):
    pytest.importorskip("distributed")
    assert main(["run", str(BASE_TOML), "--paths", "1", "--set", "calendar.months=2", "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"creditsim: error: scheduler {address}: cannot connect") and err.count("\n") == 1


def test_workers_with_other_versions_are_refused():
    from creditsim.run.backends import _check_worker_versions, package_versions

    class Cluster:  # a client whose one worker reports another numpy
        def run(self, function):
            return {"tcp://10.0.0.6:4000": {**function(), "numpy": "1.0.0"}}

    assert "creditsim_source" in package_versions()
    with pytest.raises(BackendError, match=r"worker tcp://10.0.0.6:4000 runs numpy 1.0.0 \(here "):
        _check_worker_versions(Cluster())


# ------------------------------------------------------------------------------------------ progress
def test_progress_is_quiet_off_a_terminal_and_counts_every_path(scenario, capsys):
    seen: list[tuple[int, int]] = []
    creditsim.simulate(scenario, paths=PATHS[:3], seed=5, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    seen.clear()
    creditsim.simulate(scenario, paths=PATHS[:4], seed=5, workers=2, chunk_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 4), (4, 4)]
    creditsim.simulate(scenario, paths=1, seed=5)  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""


def test_progress_bar_when_asked(capsys):
    with Progress(True, 3) as bar:
        bar.advance(3)
    err = capsys.readouterr().err
    assert "3/3" in err and "100%" in err


# ------------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_continues_to_the_same_numbers(scenario, serial, tmp_path):
    directory = tmp_path / "ck"
    first = creditsim.simulate(scenario, paths=PATHS[:2], seed=5, chunk_size=1, checkpoint=directory / "part")
    assert sorted(p.name for p in (directory / "part").iterdir()) == ["checkpoint.json", "task-00000.npz", "task-00001.npz"]
    # a run killed after two of its six tasks: keep those two files only
    creditsim.simulate(scenario, paths=PATHS, seed=5, chunk_size=1, checkpoint=directory / "full")
    for name in ("task-00002.npz", "task-00003.npz", "task-00004.npz", "task-00005.npz"):
        (directory / "full" / name).unlink()
    calls: list[int] = []
    resumed = creditsim.simulate(scenario, paths=PATHS, seed=5, chunk_size=1, checkpoint=directory / "full",
                                 progress=lambda done, total: calls.append(done))
    assert_same_bits(serial, resumed)
    assert calls == [2, 3, 4, 5, 6]  # the two kept tasks count as done at once and are not run again
    assert first.paths == 2


def test_checkpoint_of_another_run_is_refused(scenario, tmp_path):
    creditsim.simulate(scenario, paths=2, seed=5, chunk_size=1, checkpoint=tmp_path / "ck")
    with pytest.raises(ResultsError, match="another run .*seed"):
        creditsim.simulate(scenario, paths=2, seed=6, chunk_size=1, checkpoint=tmp_path / "ck")
    with pytest.raises(ResultsError, match="another run .*chunk_size"):
        creditsim.simulate(scenario, paths=2, seed=5, chunk_size=2, checkpoint=tmp_path / "ck")
    (tmp_path / "ck" / "task-00001.npz").write_bytes(b"not a zip file")
    with pytest.raises(ResultsError, match="task-00001.npz: unreadable checkpoint file"):
        creditsim.simulate(scenario, paths=2, seed=5, chunk_size=1, checkpoint=tmp_path / "ck")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError, match="not a creditsim checkpoint"):
        creditsim.simulate(scenario, paths=2, seed=5, checkpoint=tmp_path / "other")
    (tmp_path / "other" / ".checkpoint.k1ll_3d0.json").write_bytes(b"")  # an earlier creditsim killed writing its manifest
    with pytest.raises(ResultsError, match="not a creditsim checkpoint"):  # still refused: notes.txt is not creditsim's
        creditsim.simulate(scenario, paths=2, seed=5, checkpoint=tmp_path / "other")
    (tmp_path / "other" / "notes.txt").unlink()
    assert_same_bits(creditsim.simulate(scenario, paths=2, seed=5, checkpoint=tmp_path / "other"),
                     creditsim.simulate(scenario, paths=2, seed=5))
    assert not [p.name for p in (tmp_path / "other").iterdir() if p.name.startswith(".")]  # the leftover is gone


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "creditsim.present.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for_tasks(directory: Path, count: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(list(directory.glob("task-*.npz"))) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


RUN = [str(BASE_TOML), "--paths", "40", "--seed", "3", "--set", "calendar.months=24", "--chunk-size", "1"]


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    """SIGKILL a checkpointed run part-way, continue it with --resume, and compare with an uninterrupted run."""
    checkpoint = tmp_path / "ck"
    run = _cli("run", *RUN, "--checkpoint", str(checkpoint))
    _wait_for_tasks(checkpoint, 3, run)
    run.kill()
    run.communicate()
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in checkpoint.glob("task-*.npz")}
    assert 3 <= len(kept) < 40 and not list(checkpoint.glob(".*"))  # complete files only, and work left to do
    resumed = _cli("run", "--resume", str(checkpoint), "--workers", "2", "--out", str(tmp_path / "resumed"))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert {name: (checkpoint / name).stat().st_ino for name in kept} == {name: ino for name, (ino, _) in kept.items()}  # not redone
    whole = creditsim.simulate(creditsim.load_scenario(BASE_TOML, overrides={"calendar.months": 24}), paths=40, seed=3)
    assert_same_bits(whole, creditsim.Results.load(tmp_path / "resumed"))
    for flags in (["--paths", "3"], ["--seed", "0"], ["--set", "calendar.months=3"]):  # the checkpoint fixes the run
        assert main(["run", "--resume", str(checkpoint), *flags]) == 2


def _default_sigint() -> None:
    """In the child before it starts: Ctrl-C's default action, even when the tests themselves run where SIGINT is
    ignored (a shell's background job), which the child would inherit and Python would keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_workers_cleanly(tmp_path):
    # The same run, short, first: on a fresh checkout it compiles what the parent and the workers need, so that the
    # signal below does not arrive during a compilation (which defers Ctrl-C until it ends, a minute or more).
    warm = _cli("run", str(BASE_TOML), "--paths", "4", "--seed", "3", "--set", "calendar.months=24", "--chunk-size", "1", "--workers", "2",
                "--checkpoint", str(tmp_path / "warm"))
    assert warm.communicate(timeout=900) and warm.returncode == 0
    checkpoint = tmp_path / "ck"
    long_run = [str(BASE_TOML), "--paths", "2000", "--seed", "3", "--set", "calendar.months=24", "--chunk-size", "1"]  # far from done at the signal
    run = _cli("run", *long_run, "--workers", "2", "--checkpoint", str(checkpoint), preexec_fn=_default_sigint)
    _wait_for_tasks(checkpoint, 2, run)
    psutil = pytest.importorskip("psutil")  # installed with dask.distributed
    children = [child.pid for child in psutil.Process(run.pid).children()]
    assert len(children) >= 2
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.strip().splitlines() == [f"creditsim: interrupted; finished tasks are kept in {checkpoint}: continue with creditsim run --resume {checkpoint}"]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "worker processes outlived the run"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def test_backend_is_reused_between_runs(scenario, serial):
    with Backend("processes", workers=2) as backend:
        a = creditsim.simulate(scenario, paths=PATHS, seed=5, backend=backend)
        b = creditsim.simulate(scenario, paths=PATHS, seed=5, backend=backend, chunk_size=1)
    assert_same_bits(serial, a)
    assert_same_bits(serial, b)
