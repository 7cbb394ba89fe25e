"""Opt-in pytest-benchmark suite (not part of the default test run):

    pytest benchmarks/ --benchmark-enable
"""

from __future__ import annotations

import numpy as np
import pytest

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


def test_default_scenario_one_path(benchmark):
    scenario = creditsim.load_scenario()
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=5, iterations=1)


def test_standard_scenario_one_path(benchmark):
    from run import standard_scenario

    scenario = standard_scenario()
    benchmark.pedantic(creditsim.simulate, args=(scenario,), kwargs={"paths": 1, "seed": 0}, rounds=3, iterations=1)
