"""The memory check before a run: the estimate is the results' exact size, and a run that would not fit is refused
before it starts, with one line naming paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import creditsim
from creditsim.run.memory import (
    BYTES_PER_WORKER,
    RUN_SHARE,
    available_bytes,
    check_memory,
    engine_bytes,
    results_bytes,
    tables,
    trace_bytes,
)
from creditsim.scenario import load_scenario, scenario_from_dict


def test_estimate_is_the_size_of_the_results():
    """results_bytes is exactly the bytes of the per-path metric arrays a run returns (every scope, aggregates
    included), for one and for several paths."""
    scenario = load_scenario(overrides={"calendar.months": 3})
    for paths in (1, 3):
        results = creditsim.simulate(scenario, paths=paths, seed=0, progress=False)
        assert results_bytes(scenario, paths) == sum(array.nbytes for array in results.groups.values())


def test_a_run_that_would_not_fit_is_refused_up_front(monkeypatch):
    """Without local workers (a remote cluster) the results, twice while they are joined, may take RUN_SHARE of the
    memory: 1,000 paths fit in 2.5 times their size and not in less; the refusal says how many paths would fit."""
    scenario = load_scenario()
    need = results_bytes(scenario, 1000)
    check_memory([scenario], 1000, workers=0, available=int(2 * need / RUN_SHARE) + 2)
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 1000: would need about .* GiB for the results") as info:
        check_memory([scenario], 1000, workers=0, available=int(2 * need / RUN_SHARE) - 2)
    assert "at most about 999 paths" in str(info.value)
    with pytest.raises(creditsim.ScenarioError, match="at most about 499 paths"):  # a comparison holds both runs
        check_memory([scenario, scenario], 1000, workers=0, available=int(2 * need / RUN_SHARE) - 2)
    monkeypatch.setattr("creditsim.run.memory.available_bytes", lambda: None)
    check_memory([scenario], 10**9)  # where the available memory cannot be read, nothing is refused


def test_traced_paths_count_in_the_estimate():
    """What tracing a path adds to the estimate (the engine's trace table, and the records in the results) is above
    what it adds to the memory the engine allocates (measured with tracemalloc) and within 4× of it, and grows with
    the traced paths; a run that fits untraced is refused traced."""
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
    added = engine_bytes(scenario, 1, traced=True) - engine_bytes(scenario, 1) + trace_bytes(scenario, 1)
    assert 0 < peaks[1] - peaks[0] < added < 4 * (peaks[1] - peaks[0]), (peaks, added)
    assert trace_bytes(scenario, 0) == 0 and trace_bytes(scenario, 3) == 3 * trace_bytes(scenario, 1) > 0
    need = results_bytes(scenario, 100)
    available = int(2 * need / RUN_SHARE) + 2
    check_memory([scenario], 100, workers=0, available=available)
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 100: would need about"):
        check_memory([scenario], 100, workers=0, available=available, traced=2)


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
        estimate = engine_bytes(s, threads) - BYTES_PER_WORKER
        assert peak < estimate < 4 * peak, (threads, peak, estimate)


def test_a_population_too_large_for_the_workers_is_refused_naming_sample():
    """A run whose engines would not fit beside its results is refused on ``sample`` when the firms are the larger
    part (the 浙江 2018 plan unsampled: 7.6 million firms and 3 million borrowers), with the firms, the borrowers and
    the workers; fewer workers or a sample fit. When the processes themselves are the larger part, the refusal names
    ``workers``."""
    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "zhejiang-2018.toml", overrides={"sample": 1})
    need = 2 * results_bytes(scenario, 10) + 4 * engine_bytes(scenario)
    available = int(need / RUN_SHARE) - 1
    with pytest.raises(creditsim.ScenarioError, match=rf"^sample = 1\.0: leaves about {tables(scenario).firms:,} firms and .* for 4 worker\(s\)"):
        check_memory([scenario], 10, workers=4, available=available)
    check_memory([scenario], 10, workers=3, available=available)
    check_memory([scenario_from_dict(scenario.to_dict(), {"sample": "1:100"})], 10, workers=4, available=available)
    with pytest.raises(creditsim.ScenarioError, match=r"^workers = 40: would need about .* use fewer workers$"):
        check_memory([scenario_from_dict(scenario.to_dict(), {"sample": "1:100"})], 10, workers=40, available=available)


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
