"""The public entry points: :func:`simulate` runs a scenario's Monte Carlo paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Simulation
from .errors import ScenarioError
from .metrics import SCOPE_METRICS, SCOPES, metric
from .results import Results
from .scenario import Scenario, load_scenario

__all__ = ["simulate"]


def simulate(
    scenario: Scenario | str | Path | None = None,
    paths: int | Iterable[int] = 100,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Results:
    """Run Monte Carlo paths of a scenario.

    Parameters
    ----------
    scenario : Scenario, str or Path, optional
        A validated scenario, or a scenario file to load; the bundled default when omitted.
    paths : int or iterable of int
        How many paths (numbered 0..paths-1), or the path numbers themselves. Path k's result depends only
        on (scenario, seed, k): never on which other paths run with it.
    seed : int
        Seed of every random stream (≥ 0).
    progress : callable, optional
        Called as ``progress(done, total)`` after each path.

    Returns
    -------
    Results
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return run_paths(Simulation, scenario, paths, seed, progress)


def run_paths(engine: Callable[[Scenario, int, int], Any], scenario: Scenario, paths: int | Iterable[int], seed: int,
              progress: Callable[[int, int], None] | None = None) -> Results:
    """Run ``engine(scenario, seed, path).run()`` for each path and collect the metrics (see :func:`simulate`).

    ``engine`` is :class:`creditsim.engine.Simulation` or the reference engine's
    :class:`creditsim.reference.ReferenceSimulation`; both expose the same metric arrays.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError("seed", seed, "must be a whole number ≥ 0")
    if isinstance(paths, bool):
        raise ScenarioError("paths", paths, "must be a whole number ≥ 1 or a list of path numbers")
    if isinstance(paths, (int, np.integer)):
        if paths < 1:
            raise ScenarioError("paths", paths, "must be ≥ 1")
        path_ids = list(range(int(paths)))
    else:
        path_ids = [int(p) for p in paths]
        if not path_ids or min(path_ids) < 0 or len(set(path_ids)) != len(path_ids):
            raise ScenarioError("paths", path_ids, "must be distinct path numbers ≥ 0")
    runs: dict[str, list[np.ndarray]] = {scope: [] for scope in SCOPES}
    sample, scale_back = scenario.sampled(), sample_scaling(scenario.sample)
    for done, path in enumerate(path_ids, start=1):
        sim = engine(sample, int(seed), path).run()
        metrics = {"bank": sim.bank_metrics, "guarantor": sim.guarantor_metrics, "reguarantor": sim.reguarantor_metrics,
                   "pool": sim.pool_metrics, "population": sim.population_metrics[:, None, :]}
        for scope in SCOPES:
            runs[scope].append(metrics[scope] * scale_back[scope])
        if progress is not None:
            progress(done, len(path_ids))
    return Results(scenario, int(seed), path_ids, {scope: np.stack(arrays) for scope, arrays in runs.items()})


def sample_scaling(sample: float) -> dict[str, np.ndarray]:
    """Per scope, the factor by which each metric of a run on a ``sample`` of the firms is scaled back to the
    whole population: 1 / sample for counts and amounts (stocks and flows), 1 for ratios and flags."""
    return {scope: np.array([1.0 / sample if m.kind != "ratio" and m.unit in ("CNY", "firms", "loans") else 1.0
                             for m in map(metric, SCOPE_METRICS[scope])]) for scope in SCOPES}
