"""Opt-in pytest-benchmark suite (not part of the default test run):

    pytest benchmarks/ --benchmark-enable

Kernels of the engine and whole runs of the benchmark scenarios (see ``run.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from run import benchmark_scenario

import creditsim
from creditsim.risk import cumulative_hazard, default_months, monthly_hazards


@pytest.fixture(scope="module")
def hazards():
    rng = np.random.default_rng(0)
    pd = rng.uniform(0.001, 0.1, 30)
    h = monthly_hazards(pd, np.full(30, 0.15), np.ones(36), rng.standard_normal(3), 12)
    return cumulative_hazard(h)


def test_default_months_one_million_firms(benchmark, hazards):
    rng = np.random.default_rng(1)
    cohort = rng.integers(0, 30, 1_000_000)
    e = rng.standard_exponential(1_000_000)
    benchmark(default_months, hazards, cohort, 0, e)


def test_illustrative_city_one_path(benchmark):
    """The illustrative city (tests/data/illustrative-city.toml, the bundled default before the 嘉兴 plan)."""
    scenario = creditsim.load_scenario(Path(__file__).resolve().parent.parent / "tests" / "data" / "illustrative-city.toml")
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=5, iterations=1)


@pytest.mark.parametrize("borrowers", [20_000, 500_000])
def test_benchmark_scenario_one_path(benchmark, borrowers):
    scenario = benchmark_scenario(borrowers)
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=3, iterations=1)


def test_small_book_many_paths(benchmark):
    scenario = benchmark_scenario(2_000)
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 100, "seed": 0}, rounds=1, iterations=1)
