"""Uncertainty beyond Monte Carlo: the scenario's documented assumptions (``[[assumptions]]``), varied one at a time
(:func:`sensitivity`: which assumption would move each target's P(met) most) or drawn path by path
(:func:`simulate_uncertain`: projections that carry the parameters' uncertainty).

An assumption names a dotted key and a plausible range [low, high]: one number set to a value, or, for a key with
``*`` wildcards or naming a list, a multiplier of every value it matches (as :func:`creditsim.analysis.calibrate.parameters`
reads keys). Each end is validated as a scenario variant, so an end the field does not allow is refused naming it.

*Sensitivity* runs the scenario as it is and with each assumption at its low and at its high end, every variant on
the same paths and seed (common random numbers), and reports per target P(met) at each, and the swing
P(high) − P(low) with a paired 95% interval (:func:`creditsim.results.targets.paired_difference_interval`): on
common random numbers an assumption that cannot touch a target swings it by exactly 0.

*Parameter uncertainty* draws each assumption's value for each path — uniformly on [low, high], or normal with
[low, high] its central 90% interval, truncated to the bounds the key allows — from a uniform keyed by the seed,
the path and the assumption's key (so a path's values never depend on the other paths, and adding an assumption
leaves the others' draws alone), and runs path k of the scenario with its values. Path k's result is therefore
that of ``simulate(variant_k, paths=[k], seed=seed)``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from ..errors import ScenarioError
from ..results.results import Results
from ..results.targets import met, outside, paired_difference_interval, wilson_interval
from ..run.api import backend_for, path_numbers, simulate
from ..run.backends import Backend, Gathered, run_scenarios
from ..run.memory import check_memory
from ..run.progress import ProgressArg
from ..scenario import Assumption, Scenario, scenario_from_dict
from .calibrate import Parameter, apply, parameters
from .sweeps import path_summary

__all__ = ["Range", "Sensitivity", "ranges", "sensitivity", "draws", "simulate_uncertain"]

#: The standard normal quantile of a central 90% interval.
Z90 = float(ndtri(0.95))


@dataclass(frozen=True)
class Range:
    """An assumption resolved against its scenario: the parameter it sets and its ends in the parameter's terms
    (the field's value, or a multiplier)."""

    index: int
    assumption: Assumption
    parameter: Parameter
    low: float
    high: float


def ranges(scenario: Scenario) -> list[Range]:
    """The scenario's assumptions with their ends resolved and each end validated as a variant.

    Raises
    ------
    ScenarioError
        Naming ``assumptions.I.low`` or ``.high`` for an end its field does not allow, or a high end not above
        the low one.
    """
    out = []
    for i, a in enumerate(scenario.assumptions):
        (p,) = parameters(scenario, [a.key])
        ends = []
        for end in ("low", "high"):
            given = getattr(a, end)
            try:
                if p.scale:
                    ends.append(float(given))
                else:
                    variant = scenario_from_dict(scenario.to_dict(), {p.fields[0]: given})
                    (resolved,) = parameters(variant, [a.key])
                    ends.append(resolved.start)
            except ScenarioError as error:
                raise ScenarioError(f"assumptions.{i}.{end}", given, f"is not a value {a.key} allows ({error})") from None
        if not ends[0] < ends[1]:
            raise ScenarioError(f"assumptions.{i}.high", a.high, f"must be above low ({a.low})")
        out.append(Range(i, a, p, ends[0], ends[1]))
    return out


def _without_assumptions(scenario: Scenario) -> Scenario:
    return scenario_from_dict({**scenario.to_dict(), "assumptions": []})


def _variant(base: Scenario, r: Range, value: float) -> Scenario:
    """``base`` (without assumptions) with range ``r``'s parameter at ``value`` (a value or a multiplier)."""
    try:
        return apply(base, [r.parameter], np.array([value]))
    except ScenarioError as error:
        raise ScenarioError(f"assumptions.{r.index}", r.assumption.key, f"at {value:g} breaks a rule ({error})") from None


# ---------------------------------------------------------------------------------------------- sensitivity
@dataclass
class Sensitivity:
    """Each assumption at its ends against the scenario as it is, on the same paths.

    Attributes
    ----------
    scenario : Scenario
    ranges : list of Range
    seed : int
    path_ids : list of int
    hits : dict of str to ndarray
        Per target, bool (1 + 2 × assumptions, paths): met on each path, the scenario as it is first, then each
        assumption's low and high ends.
    """

    scenario: Scenario
    ranges: list[Range]
    seed: int
    path_ids: list[int]
    hits: dict[str, np.ndarray]

    def table(self) -> pd.DataFrame:
        """Per target and assumption, most influential first within each target: P(met) at the low end, as is and at
        the high end (``p_low, p_base, p_high``, each with Wilson 95% bounds for the base), and the swing
        ``p_high − p_low`` with its paired 95% interval (``swing_low, swing_high``).

        Returns
        -------
        DataFrame
            Columns ``target, key, low, high, p_low, p_base, p_base_low, p_base_high, p_high, swing, swing_low,
            swing_high, note, paths``.
        """
        rows = []
        for name, hit in self.hits.items():
            base = hit[0]
            base_low, base_high = wilson_interval(int(base.sum()), base.size)
            for k, r in enumerate(self.ranges):
                low, high = hit[1 + 2 * k], hit[2 + 2 * k]
                swing, swing_low, swing_high = paired_difference_interval(low, high)
                rows.append({"target": name, "key": r.assumption.key, "low": r.assumption.low, "high": r.assumption.high,
                             "p_low": float(low.mean()), "p_base": float(base.mean()), "p_base_low": float(base_low), "p_base_high": float(base_high),
                             "p_high": float(high.mean()), "swing": swing, "swing_low": swing_low, "swing_high": swing_high,
                             "note": r.assumption.note, "paths": base.size})
        columns = ["target", "key", "low", "high", "p_low", "p_base", "p_base_low", "p_base_high", "p_high", "swing", "swing_low", "swing_high",
                   "note", "paths"]
        table = pd.DataFrame(rows, columns=columns)
        if table.empty:
            return table
        order = {name: i for i, name in enumerate(self.hits)}
        table = table.assign(_t=table["target"].map(order), _s=-table["swing"].abs())
        return table.sort_values(["_t", "_s"], kind="stable").drop(columns=["_t", "_s"]).reset_index(drop=True)


def sensitivity(scenario: Scenario, paths: int | Sequence[int] = 200, seed: int = 0, progress: ProgressArg = None, *,
                backend: str | Backend | None = None, workers: int | None = None, client: Any = None, scheduler: str | None = None,
                threads: int = 1, chunk_size: int | None = None) -> Sensitivity:
    """Each assumption of ``scenario`` at its low and high end, one at a time, against the scenario as it is.

    Parameters
    ----------
    scenario : Scenario
        With ``[[assumptions]]`` and targets inside its run.
    paths, seed
        The paths every variant runs (common random numbers), as :func:`creditsim.simulate` takes them.
    progress, backend, workers, client, scheduler, threads, chunk_size
        As for :func:`creditsim.simulate`.

    Raises
    ------
    ScenarioError
        When the scenario has no assumptions or no target inside its run, or an end is not allowed.
    """
    if not scenario.assumptions:
        raise ScenarioError("assumptions", [], "lists none: write each assumption and its plausible range as [[assumptions]] (key, low, high, note)")
    assessed = [name for name, t in scenario.targets.items() if outside(t, scenario) is None]
    if not assessed:
        raise ScenarioError("targets", list(scenario.targets), "has no target inside the run: sensitivity reports how each target's P(met) moves")
    found = ranges(scenario)
    ids = path_numbers(paths, seed, variants=1 + 2 * len(found))
    base = _without_assumptions(scenario)
    variants = [base] + [_variant(base, r, value) for r in found for value in (r.low, r.high)]
    with backend_for(backend, workers, client, scheduler, threads) as runner:
        arrays = run_scenarios(variants, ids, seed, runner, summary=functools.partial(path_summary, metrics=()), chunk_size=chunk_size, progress=progress,
                               description=f"paths × {len(variants)} variants")
    hits = {name: np.array([met(a[f"target:{name}"], v.targets[name]) for a, v in zip(arrays, variants, strict=True)]) for name in assessed}
    return Sensitivity(scenario, found, seed, list(ids), hits)


# ---------------------------------------------------------------------------------------------- parameter uncertainty
def _uniform(seed: int, path: int, key: str) -> float:
    """A uniform in (0, 1) keyed by the seed, the path and an assumption's key."""
    digest = hashlib.blake2b(f"{seed}/{path}/{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 11) * 2.0**-53 + 2.0**-54


def _value(r: Range, u: float) -> float:
    """Range ``r``'s value at uniform ``u``: uniform on [low, high], or normal with [low, high] its central 90%
    interval truncated to the parameter's bounds (inverse CDF)."""
    if r.assumption.distribution == "uniform":
        return r.low + u * (r.high - r.low)
    mean, sd = (r.low + r.high) / 2.0, (r.high - r.low) / (2.0 * Z90)
    a, b = ndtr((r.parameter.lower - mean) / sd), ndtr((r.parameter.upper - mean) / sd)
    return float(mean + sd * ndtri(a + u * (b - a)))


def draws(scenario: Scenario, paths: int | Sequence[int], seed: int = 0) -> pd.DataFrame:
    """Each path's values of the scenario's assumptions (a value, or a multiplier for a key that scales), one row per
    path, one column per key."""
    return _draws(ranges(scenario), path_numbers(paths, seed), seed)


def _draws(found: list[Range], ids: Sequence[int], seed: int) -> pd.DataFrame:
    return pd.DataFrame({r.assumption.key: [_value(r, _uniform(seed, k, r.assumption.key)) for k in ids] for r in found},
                        index=pd.Index(list(ids), name="path"))


def simulate_uncertain(scenario: Scenario, paths: int | Sequence[int] = 100, seed: int = 0, progress: ProgressArg = None) -> tuple[Results, pd.DataFrame]:
    """Run each path with its own draw of the scenario's assumptions (see the module docstring).

    Parameters
    ----------
    scenario : Scenario
        With ``[[assumptions]]``.
    paths, seed, progress
        As for :func:`creditsim.simulate`.

    Returns
    -------
    results : Results
        Path k as ``simulate(variant_k, paths=[k], seed=seed)`` gives it, under ``scenario`` (its targets, banks and
        instruments are those of every variant).
    values : DataFrame
        Each path's drawn values (:func:`draws`).

    Raises
    ------
    ScenarioError
        For a scenario without assumptions; before any path runs, when this process could not simulate the paths
        and hold their metrics (:func:`creditsim.run.memory.check_memory`).
    """
    if not scenario.assumptions:
        raise ScenarioError("assumptions", [], "lists none: parameter uncertainty draws each path's values from [[assumptions]]")
    found = ranges(scenario)
    values = _draws(found, path_numbers(paths, seed), seed)
    base = _without_assumptions(scenario)
    ids = list(values.index)
    check_memory([scenario], len(ids))  # this process simulates every path and keeps its metrics
    gathered = Gathered(1, len(ids), 1)  # each path's metrics in their place, without the aggregates Results adds
    for n, k in enumerate(ids):
        variant = apply(base, [r.parameter for r in found], values.loc[k, [r.assumption.key for r in found]].to_numpy(dtype=float))
        one = simulate(variant, paths=[k], seed=seed, progress=False)
        gathered.place(n, {scope: array if scope == "population" else array[:, :, :-1] for scope, array in one.groups.items()})
        if callable(progress):
            progress(n + 1, len(ids))
    (groups,) = gathered.arrays()
    return Results(scenario, seed, ids, groups), values

