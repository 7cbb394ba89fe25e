"""Opt-in pytest-benchmark suite (not part of the default test run):

    pytest benchmarks/ --benchmark-enable

Whole runs of the benchmark scenarios (see ``run.py``), the static pool, and the compiled month on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run import benchmark_scenario

import creditsim
from creditsim.model.engine import run_task
from creditsim.model.month import month, start_path
from creditsim.model.params import parameters
from creditsim.model.state import capacities, new_state
from creditsim.model.structs import compiled
from creditsim.scenario.sampling import sampled

HERE = Path(__file__).resolve().parent


def test_illustrative_city_one_path(benchmark):
    """The illustrative city (tests/data/illustrative-city.toml, the bundled default before the 嘉兴 plan)."""
    scenario = creditsim.load_scenario(HERE.parent / "tests" / "data" / "illustrative-city.toml")
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=5, iterations=1)


@pytest.mark.parametrize("borrowers", [20_000, 500_000])
def test_benchmark_scenario_one_path(benchmark, borrowers):
    scenario = benchmark_scenario(borrowers)
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=3, iterations=1)


def test_small_book_many_paths(benchmark):
    scenario = benchmark_scenario(2_000)
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 100, "seed": 0}, rounds=1, iterations=1)


def test_static_pool_1000_paths(benchmark):
    scenario = creditsim.load_scenario(HERE / "static-pool.toml")
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1000, "seed": 0}, rounds=3, iterations=1)


def test_one_month_of_a_city(benchmark):
    """Month 13 of a 500,000-borrower path, from the same state each round (the path is re-run up to month 12)."""
    scenario = benchmark_scenario(500_000)
    run_task(scenario, 0, [0])
    p = parameters(sampled(scenario))
    P, S = compiled(p), compiled(new_state(p, capacities(p)))

    def setup():
        start_path(P, S, 0, 0)
        for t in range(1, 13):
            month(P, S, t, 0, False)
        return (P, S, 13, 0, False), {}

    benchmark.pedantic(month, setup=setup, rounds=3, iterations=1)
