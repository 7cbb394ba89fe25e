"""The memory check before a run: the estimate is the results' exact size, and a run that would not fit is refused
before it starts, with one line naming paths."""

from __future__ import annotations

import pytest

import creditsim
from creditsim.memory import available_bytes, check_results_fit, results_bytes
from creditsim.scenario import load_scenario


def test_estimate_is_the_size_of_the_results():
    """results_bytes is exactly the bytes of the per-path metric arrays a run returns (every scope, aggregates
    included), for one and for several paths."""
    scenario = load_scenario(overrides={"calendar.months": 3})
    for paths in (1, 3):
        results = creditsim.simulate(scenario, paths=paths, seed=0, progress=False)
        assert results_bytes(scenario, paths) == sum(array.nbytes for array in results.groups.values())


def test_a_run_that_would_not_fit_is_refused_up_front(monkeypatch):
    scenario = load_scenario()
    need = results_bytes(scenario, 1000)
    check_results_fit([scenario], 1000, available=2 * need + 1)  # fits in half of what is available
    with pytest.raises(creditsim.ScenarioError, match=r"^paths = 1000: would need about .* GiB for the results") as info:
        check_results_fit([scenario], 1000, available=2 * need - 1)
    assert "at most about 999 paths" in str(info.value)
    with pytest.raises(creditsim.ScenarioError, match="at most about 499 paths"):  # a comparison holds both runs
        check_results_fit([scenario, scenario], 1000, available=2 * need - 1)
    monkeypatch.setattr("creditsim.memory.available_bytes", lambda: None)
    check_results_fit([scenario], 10**9)  # where the available memory cannot be read, nothing is refused


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12345678 kB\n", encoding="ascii")
    assert available_bytes(meminfo) == 12345678 * 1024
    meminfo.write_text("MemTotal: 1 kB\n", encoding="ascii")
    assert available_bytes(meminfo) is None
    assert available_bytes(tmp_path / "missing") is None


def test_a_million_paths_is_refused_by_the_command_line_in_one_line(capsys):
    """On this machine (24 GiB) a million 嘉兴 paths need about 79 GiB of results: exit 2 before any path runs."""
    from creditsim.cli import main

    if available_bytes() is None or available_bytes() > 2 * results_bytes(load_scenario(), 10**6):
        pytest.skip("the machine's available memory would hold a million paths' results")
    assert main(["run", "--paths", "1000000"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("creditsim: error: paths = 1000000: would need about") and err.count("\n") == 1
