"""The memory check before a run: the estimate counts every process (the workers' engines, the main process's
results, gathering, summaries and outputs), each process's measured peak stays within it, and a run that would
not fit is refused before it starts, with one line naming paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import creditsim
from creditsim.metrics import METRICS, SCOPE_METRICS, SCOPES, entities
from creditsim.results import results as results_module
from creditsim.run.memory import (
    BYTES_PER_PROCESS,
    MAIN_BYTES,
    RUN_SHARE,
    WRITING_BYTES,
    available_bytes,
    check_memory,
    engine_bytes,
    gathered_bytes,
    main_bytes,
    results_bytes,
    tables,
    trace_bytes,
)
from creditsim.scenario import load_scenario, scenario_from_dict
from helpers import BASE_TOML


def test_estimate_is_the_size_of_the_results():
    """results_bytes is exactly the bytes of the per-path metric arrays a run returns (every scope, aggregates
    included), and gathered_bytes those of the engine's arrays they are built from, for one and for several paths."""
    from creditsim.model.engine import run_task

    scenario = load_scenario(overrides={"calendar.months": 3})
    for paths in (1, 3):
        results = creditsim.simulate(scenario, paths=paths, seed=0, progress=False)
        assert results_bytes(scenario, paths) == sum(array.nbytes for array in results.groups.values())
        groups = run_task(scenario, 0, list(range(paths)))
        assert gathered_bytes(scenario, paths) == sum(groups[scope].nbytes for scope in SCOPES)


def _fits(scenarios, paths, **kwargs) -> bool:
    try:
        check_memory(scenarios, paths, **kwargs)
    except creditsim.ScenarioError:
        return False
    return True


def test_a_run_that_would_not_fit_is_refused_up_front(monkeypatch):
    """On a remote cluster the main process alone counts: its fixed part and main_bytes (the results, and the larger
    of gathering and writing) fit in RUN_SHARE of the memory or the run is refused on paths, naming a number of
    paths that fits while one more would not; a comparison keeps both runs, so fewer fit."""
    scenario = load_scenario()
    remote = {"workers": 0, "here": False}
    available = int((MAIN_BYTES + main_bytes([scenario], 1000)) / RUN_SHARE) + 2
    check_memory([scenario], 1000, available=available, **remote)
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 1000: would need about .* GiB for the results") as info:
        check_memory([scenario], 1000, available=available - 4, **remote)
    most = int(str(info.value).split("at most about ")[1].split()[0].replace(",", ""))
    assert most == 999
    with pytest.raises(creditsim.ScenarioError, match="at most about") as info:  # a comparison holds both runs
        check_memory([scenario, scenario], 1000, available=available, **remote)
    most = int(str(info.value).split("at most about ")[1].split()[0].replace(",", ""))
    assert 400 < most < 600
    assert _fits([scenario, scenario], most, available=available, **remote)
    assert not _fits([scenario, scenario], most + 1, available=available, **remote)
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 1: would need about .* even for one path"):
        check_memory([scenario], 1, available=MAIN_BYTES, **remote)
    monkeypatch.setattr("creditsim.run.memory.available_bytes", lambda: None)
    check_memory([scenario], 10**9)  # where the available memory cannot be read, nothing is refused


def test_the_main_process_is_counted_beside_the_workers():
    """Local workers add their engines to the main process's part; a serial run simulates in the main process,
    which then counts one engine instead of its fixed part."""
    scenario = load_scenario()
    main = main_bytes([scenario], 100)
    engine = engine_bytes(scenario)
    for workers, here, need in ((2, False, MAIN_BYTES + main + 2 * engine), (0, True, MAIN_BYTES + engine - BYTES_PER_PROCESS + main)):
        assert _fits([scenario], 100, workers=workers, here=here, available=int(need / RUN_SHARE) + 2)
        assert not _fits([scenario], 100, workers=workers, here=here, available=int(need / RUN_SHARE) - 2)
    assert main_bytes([scenario], 0) == 0  # a sweep keeps summaries, not the paths' metrics


def test_traced_paths_count_in_the_estimate():
    """What tracing a path adds to a worker's estimate (the engine's trace table) is above what it adds to the memory
    the engine allocates (measured with tracemalloc) and within 4× of it; the main process's part grows with the
    traced paths, and a run that fits untraced is refused traced, naming paths or, when the trace alone does not
    fit, trace."""
    import tracemalloc

    from creditsim.model.engine import run_task

    scenario = load_scenario()
    run_task(scenario, 0, [0], trace=[0])  # compile first: numba's caches are not the engine's
    peaks = []
    for trace in ((), (0,)):
        tracemalloc.start()
        try:
            run_task(scenario, 0, [0], trace=trace)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    added = engine_bytes(scenario, 1, traced=True) - engine_bytes(scenario, 1)
    assert 0 < peaks[1] - peaks[0] < added < 4 * (peaks[1] - peaks[0]), (peaks, added)
    assert trace_bytes(scenario, 0) == 0 and trace_bytes(scenario, 3) == 3 * trace_bytes(scenario, 1) > 0
    assert main_bytes([scenario], 100, traced=2) == main_bytes([scenario], 100) + trace_bytes(scenario, 2)
    remote = {"workers": 0, "here": False}
    available = int((MAIN_BYTES + main_bytes([scenario], 100)) / RUN_SHARE) + 2
    check_memory([scenario], 100, available=available, **remote)
    traced = int((MAIN_BYTES + main_bytes([scenario], 100, traced=2)) / RUN_SHARE) - 2
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 100: would need about .* at most about 99 paths"):
        check_memory([scenario], 100, available=traced, traced=2, **remote)
    with pytest.raises(creditsim.ScenarioError, match=r"^trace = 2: 2 traced path\(s\) would need about .* trace fewer paths$"):
        check_memory([scenario], 100, available=available, traced=2, **remote)


@pytest.mark.parametrize(("unbanked", "applications", "loans_per_borrower"), [(0.0, 0.0, 1.0), (0.0, 0.0, 3.0), (1.0, 20_000.0, 1.0)])
def test_engine_estimate_bounds_what_the_engine_allocates(unbanked, applications, loans_per_borrower):
    """The engine estimate (less the worker's fixed part, which tracemalloc does not see) is above the peak of the
    memory the engine allocates for a path (its state, the path's metrics, the compiled structures), and within 4×
    of it: an opening book of 200,000 borrowers with one or three loans each, and 200,000 firms taking first loans
    over ten months. On one thread and on two (a state each)."""
    import tracemalloc

    from creditsim.model.engine import run_task
    from helpers import pool_scenario

    s = pool_scenario(firms=200_000, unbanked_share=unbanked, pd=0.02, rho=0.1, months=10, term_mix={"12": 0.5, "36": 0.5},
                      reborrow_prob=0.9, applications_per_month=applications, line_median="1万", line_p90="3万")
    s = scenario_from_dict(s.to_dict(), {"demand.loans_per_borrower": loans_per_borrower})
    assert tables(s).firms >= 200_000
    run_task(s, 0, [0])  # compile first: numba's caches are not the engine's
    for threads in (1, 2):
        tracemalloc.start()
        try:
            run_task(s, 0, list(range(threads)), threads=threads)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        estimate = engine_bytes(s, threads) - BYTES_PER_PROCESS
        assert peak < estimate < 4 * peak, (threads, peak, estimate)


def test_a_population_too_large_for_the_workers_is_refused_naming_sample():
    """A run whose engines would not fit beside the main process is refused on ``sample`` when the firms are the
    larger part (the 浙江 2018 plan unsampled: 7.6 million firms and 3 million borrowers), with the firms, the
    borrowers and the processes; fewer workers or a sample fit. When the processes themselves are the larger part,
    the refusal names ``workers``."""
    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "zhejiang-2018.toml", overrides={"sample": 1})
    need = MAIN_BYTES + main_bytes([scenario], 10) + 4 * engine_bytes(scenario)
    available = int(need / RUN_SHARE) - 1
    with pytest.raises(creditsim.ScenarioError, match=rf"^sample = 1\.0: leaves about {tables(scenario).firms:,} firms and .* \(4 simulating on 1 thread"):
        check_memory([scenario], 10, workers=4, here=False, available=available)
    check_memory([scenario], 10, workers=3, here=False, available=available)
    check_memory([scenario_from_dict(scenario.to_dict(), {"sample": "1:100"})], 10, workers=4, here=False, available=available)
    with pytest.raises(creditsim.ScenarioError, match=r"^workers = 40: would need about .* use fewer workers$"):
        check_memory([scenario_from_dict(scenario.to_dict(), {"sample": "1:100"})], 10, workers=40, here=False, available=available)


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12345678 kB\n", encoding="ascii")
    assert available_bytes(meminfo) == 12345678 * 1024
    meminfo.write_text("MemTotal: 1 kB\n", encoding="ascii")
    assert available_bytes(meminfo) is None
    assert available_bytes(tmp_path / "missing") is None


def test_a_million_paths_is_refused_by_the_command_line_in_one_line(capsys):
    """On this machine (24 GiB) a million 嘉兴 paths need about 79 GiB of results: exit 2 before any path runs."""
    from creditsim.present.cli import main

    if available_bytes() is None or available_bytes() > 3 * results_bytes(load_scenario(), 10**6):
        pytest.skip("the machine's available memory would hold a million paths' results")
    assert main(["run", "--paths", "1000000"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("creditsim: error: paths = 1000000: would need about") and err.count("\n") == 1


METRIC = {m.name: m for m in METRICS}


def _synthetic_results(paths: int, months: int = 36) -> creditsim.Results:
    """Results of the default scenario's shape holding random numbers (no engine run): what writing them costs does
    not depend on the values."""
    scenario = load_scenario(overrides={"calendar.months": months})
    rng = np.random.default_rng(7)
    groups = {scope: rng.random((paths, months + 1, len(entities(scope, scenario)) if scope != "population" else 1, len(SCOPE_METRICS[scope])))
              for scope in SCOPES}
    for scope, values in groups.items():  # a flag is 0 or 1, as loading checks
        flags = [k for k, name in enumerate(SCOPE_METRICS[scope]) if METRIC[name].unit == "flag"]
        values[..., flags] = np.round(values[..., flags])
    return creditsim.Results(scenario, 0, list(range(paths)), groups)


def test_the_metrics_are_written_a_block_at_a_time_as_the_same_files(tmp_path, monkeypatch):
    """metrics.parquet, written a row group at a time from blocks of rows, is byte for byte the file pandas writes
    of the whole metrics table with the same row groups; metrics.csv, a block at a time, the file pandas writes of
    the whole table (one byte-order mark, one header)."""
    results = _synthetic_results(3, months=5)
    monkeypatch.setattr(results_module, "BLOCK_ROWS", 700)
    monkeypatch.setattr(results_module, "ROW_GROUP", 2000)
    rows = len(results.metrics)
    assert rows > 2 * 2000
    results.save(tmp_path / "saved")
    results.metrics.to_parquet(tmp_path / "whole.parquet", index=False, row_group_size=2000)
    assert (tmp_path / "saved" / "metrics.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    results.to_csv(tmp_path / "csv")
    results.metrics.to_csv(tmp_path / "whole.csv", index=False, encoding="utf-8-sig")
    assert (tmp_path / "csv" / "metrics.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    results.to_parquet(tmp_path / "parquet")
    assert (tmp_path / "parquet" / "metrics.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    loaded = creditsim.Results.load(tmp_path / "saved")
    for scope in SCOPES:
        np.testing.assert_array_equal(loaded.groups[scope], results.groups[scope])


def _status_bytes(key: str) -> int:
    """A figure of this process's /proc/self/status, bytes."""
    return int(Path("/proc/self/status").read_text().split(f"{key}:")[1].split()[0]) * 1024


def test_saving_holds_a_block_not_a_copy_of_the_results(tmp_path):
    """Saving 300 paths of the default scenario's shape (28 MiB of results, 3.7 million rows) raises this process's
    peak resident memory by less than WRITING_BYTES, not by a multiple of the results (it rose by 10.7 times them
    when the whole metrics table was built first)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc to measure a peak")
    results = _synthetic_results(300)
    size = sum(array.nbytes for array in results.groups.values())
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = _status_bytes("VmRSS")
    results.save(tmp_path / "saved")
    rise = _status_bytes("VmHWM") - before
    assert 10.7 * size > WRITING_BYTES > rise, (rise, size)


_RUN_PEAKS = """
import json, resource, sys
from pathlib import Path
from creditsim.present.cli import main
from creditsim.run.backends import Backend
workers, close = [], Backend.close
def closed(self):  # the workers' peak once they have exited: later children (fc-list) count this process's memory
    close(self)
    workers.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
Backend.close = closed
code = main(sys.argv[1:])
peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"code": code, "main": peak, "workers": workers[0]}))
"""


def test_every_process_of_a_run_that_writes_everything_stays_within_its_estimate(tmp_path):
    """``creditsim run --workers 2 --trace 0 --out --report --xlsx --csv`` in a fresh process: the main process's peak
    resident memory over the whole run (import, gathering, the printed summary, saving, the report, the workbook,
    the CSV tables) is within what the check counts for it (MAIN_BYTES + main_bytes), and the workers' peak
    within engine_bytes."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc to measure a peak")
    scenario = load_scenario(BASE_TOML, overrides={"calendar.months": 6})
    creditsim.simulate(scenario, paths=[0], seed=0, progress=False, trace=[0])  # compile here: compiling is not running
    paths = 8
    argv = ["run", str(BASE_TOML), "--set", "calendar.months=6", "--paths", str(paths), "--workers", "2", "--trace", "0",
            "--out", str(tmp_path / "out"), "--report", str(tmp_path / "report.html"), "--xlsx", str(tmp_path / "tables.xlsx"),
            "--csv", str(tmp_path / "csv")]
    done = subprocess.run([sys.executable, "-c", _RUN_PEAKS, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    peaks = json.loads(done.stdout.splitlines()[-1])
    assert peaks["code"] == 0 and (tmp_path / "out" / "trace.parquet").exists()
    main_estimate = MAIN_BYTES + main_bytes([scenario], paths, traced=1)
    worker_estimate = engine_bytes(scenario, 1, traced=True)
    assert 0 < peaks["main"] < main_estimate, (peaks, main_estimate)
    assert 0 < peaks["workers"] < worker_estimate, (peaks, worker_estimate)
