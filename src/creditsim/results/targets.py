"""A plan's targets measured on the paths of a run: how likely each one is met.

Each :class:`~creditsim.scenario.Target` turns a metric's monthly path into one number per Monte Carlo path
(:func:`measure`, the end of :func:`target_path`); the target is met on a path when that number compares with the threshold as the target
says (an undefined value, such as a ratio with a zero denominator, is not met). The probability of meeting
it is the share of paths, with a Wilson 95% interval (:func:`wilson_interval`), which keeps its coverage near
the nominal rate even when the probability is close to 0 or 1 or the paths are few.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol

import numpy as np
import pandas as pd

from ..metrics import metric, ratio_values
from ..scenario import Scenario, Target
from ..scenario.units import month_index, month_label

__all__ = ["Runs", "SIGNS", "Z95", "condition", "measure", "met", "outside", "paired_difference_interval", "shortfall", "target_path", "targets_table",
           "wilson_interval"]


class Runs(Protocol):
    """What measuring a target needs of a run's results (:class:`creditsim.Results` has it)."""

    scenario: Scenario
    dates: list[str]
    banks: list[str]

    @property
    def paths(self) -> int: ...

    def values(self, metric: str, bank: str = ...) -> np.ndarray: ...

    def series(self, metric: str, scope: str | tuple[str, ...] | list[str] = ...) -> np.ndarray: ...


#: The standard normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int | np.ndarray, trials: int | np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial probability.

    Parameters
    ----------
    successes, trials : int or ndarray of int
        Paths on which the event happened, and paths (trials > 0).
    z : float
        Standard normal quantile (default: 95% two-sided).

    Returns
    -------
    low, high : ndarray of float
        The interval's bounds, in [0, 1].
    """
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the interval always holds k/n; keep it so where rounding would put an end a hair inside
    return np.clip(np.minimum(centre - half, p), 0.0, 1.0), np.clip(np.maximum(centre + half, p), 0.0, 1.0)


def paired_difference_interval(before: np.ndarray, after: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """Difference of two proportions measured on the same paths, p(after) − p(before), with a score-based
    interval for paired data.

    The difference is π₀₁ − π₁₀, the shares of paths where only ``after`` or only ``before`` holds. The interval
    combines the two shares' Wilson intervals (l, u) by the method of variance estimates recovery (MOVER, Zou and
    Donner 2008), with their multinomial correlation r = −sqrt(π₀₁π₁₀ / ((1 − π₀₁)(1 − π₁₀))):
    low = d − sqrt((π₀₁ − l₀₁)² + (u₁₀ − π₁₀)² − 2r(π₀₁ − l₀₁)(u₁₀ − π₁₀)), and high likewise. Unlike the normal
    (Wald) interval it is not empty when no path changes and keeps its coverage when changes are rare or go one
    way only, as they do on common random numbers when a parameter moves every path the same way.

    Parameters
    ----------
    before, after : ndarray of bool
        Whether the event happened on each path, in the two variants.
    z : float
        Standard normal quantile (default: 95% two-sided).

    Returns
    -------
    difference, low, high : float
    """
    x, y = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    n = x.size
    lost, gained = int(np.sum(x & ~y)), int(np.sum(~x & y))
    p10, p01 = lost / n, gained / n
    l10, u10 = (float(v) for v in wilson_interval(lost, n, z))
    l01, u01 = (float(v) for v in wilson_interval(gained, n, z))
    r = -math.sqrt(p10 * p01 / ((1 - p10) * (1 - p01))) if 0 < p10 < 1 and 0 < p01 < 1 else 0.0
    difference = p01 - p10
    below = math.sqrt(max((p01 - l01) ** 2 + (u10 - p10) ** 2 - 2 * r * (p01 - l01) * (u10 - p10), 0.0))
    above = math.sqrt(max((u01 - p01) ** 2 + (p10 - l10) ** 2 - 2 * r * (u01 - p01) * (p10 - l10), 0.0))
    return difference, max(difference - below, -1.0), min(difference + above, 1.0)


def target_path(results: Runs, target: Target) -> tuple[list[str], np.ndarray]:
    """The quantity a target compares with its threshold, month by month up to its date or the end of its
    period: the stock or ratio itself; the increase since the month before ``start``; the running total; or
    the running mean (for a ratio metric, the ratio of the running totals of its parts, so an average rate is
    weighted by volume, as 平均担保费率 is). The last column is what the target measures.

    Returns
    -------
    dates : list of str
        From the opening (stock, ratio) or the month before ``start`` to the target's date or ``end``.
    values : ndarray, shape (paths, len(dates))
    """
    if target.measure == "test":
        raise ValueError(f"a test target ({target.metric}) is measured at its date only, it has no path")
    if target.baseline == "year_before":
        dates, values = target_path(results, target.model_copy(update={"baseline": "none"}))
        return dates, values - measure(results, target.year_before())[:, None]
    first = month_index(results.dates[0])
    if target.measure in ("stock", "ratio"):
        assert target.date is not None
        stop = month_index(target.date) - first + 1
        return results.dates[:stop], results.series(target.metric, target.scope)[:, :stop]
    assert target.start is not None and target.end is not None
    start, end = month_index(target.start) - first, month_index(target.end) - first
    dates = results.dates[start - 1 : end + 1]

    def running(name: str) -> np.ndarray:
        window = results.series(name, target.scope)[:, start : end + 1]
        return np.cumsum(np.concatenate([np.zeros((window.shape[0], 1)), window], axis=1), axis=1)

    if target.measure == "increase":
        series = results.series(target.metric, target.scope)[:, start - 1 : end + 1]
        return dates, series - series[:, :1]
    if target.measure == "cumulative":
        return dates, running(target.metric)
    if metric(target.metric).kind == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            return dates, ratio_values(metric(target.metric).scope, running, results.scenario)[target.metric]
    with np.errstate(invalid="ignore", divide="ignore"):
        return dates, running(target.metric) / np.arange(len(dates))


def measure(results: Runs, target: Target) -> np.ndarray:
    """The value a target measures on each path, shape (paths,): the last column of :func:`target_path`; for a test
    target 1 where the test passes and 0 where it fails."""
    if target.measure == "test":
        from .assessment import passed

        assert isinstance(target.scope, str) and target.date is not None
        return passed(results, target.metric, target.scope, target.date).astype(float)
    return target_path(results, target)[1][:, -1]


#: How comparisons are written for people.
SIGNS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def condition(measure: str, metric_name: str, comparison: str, threshold: float, unit: str) -> str:
    """What a target asks, for people: ``≥ 100.0亿``; for a test target ``passes 两增``."""
    from ..scenario.units import format_value

    return f"passes {metric_name}" if measure == "test" else f"{SIGNS[comparison]} {format_value(threshold, unit)}"


def outside(target: Target, scenario: Scenario) -> str | None:
    """Why a target cannot be measured on a run of ``scenario`` (from its opening month to its last month), or
    None. A test target must also be assessed at its date (see :func:`creditsim.results.assessment.not_assessed`)."""
    if target.baseline == "year_before":
        why = outside(target.year_before(), scenario)
        if why is not None:
            return f"the year before: {why}"
    first = scenario.start_index - 1
    last = first + scenario.calendar.months
    first_date, last_date = month_label(first), month_label(last)
    if target.date is not None:
        if not first <= month_index(target.date) <= last:
            return f"{target.date} is outside the run ({first_date} to {last_date})"
        if target.measure == "test":
            from .assessment import not_assessed  # it measures with this module's tools

            return not_assessed(scenario.assessment, target.metric, target.date, first_date)
        return None
    assert target.start is not None and target.end is not None
    if month_index(target.start) <= first:
        return f"starts at {target.start}, before the first simulated month"
    return None if month_index(target.end) <= last else f"ends at {target.end}, after the run ends ({last_date})"


def met(values: np.ndarray, target: Target) -> np.ndarray:
    """Whether each measured value meets the target (NaN never does)."""
    with np.errstate(invalid="ignore"):
        return {">=": values >= target.value, "<=": values <= target.value, ">": values > target.value,
                "<": values < target.value}[target.comparison]


def shortfall(values: np.ndarray, target: Target) -> np.ndarray:
    """How far each value falls short of the threshold, in the metric's unit (≤ 0 where met)."""
    return target.value - values if target.comparison in (">=", ">") else values - target.value


def targets_table(results: Runs) -> pd.DataFrame:
    """One row per target of the results' scenario (see :meth:`creditsim.Results.targets`)."""
    rows = []
    for name, target in results.scenario.targets.items():
        described = {
            "target": name, "label": target.label, "metric": target.metric, "measure": target.measure,
            "scope": target.scope if isinstance(target.scope, str) else "+".join(target.scope),
            "when": target.date if target.date else f"{target.start}–{target.end}",
            "comparison": target.comparison, "threshold": math.nan if target.measure == "test" else target.value, "unit": target.unit,
            "paths": results.paths,
            "source": target.source,
        }
        why = outside(target, results.scenario)
        if why is not None:
            rows.append({**described, "note": f"not assessed: {why}"})
            continue
        values = measure(results, target)
        ok = met(values, target)
        k, n = int(ok.sum()), values.shape[0]
        low, high = wilson_interval(k, n)
        if target.measure == "test":
            values = np.full(n, math.nan)  # a test measures pass or fail only: no value, band or shortfall
        missed = shortfall(values[~ok], target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN values give NaN statistics
            p5, p50, p95 = np.nanpercentile(values, [5, 50, 95]) if not np.isnan(values).all() else (math.nan,) * 3
            gap = float(np.nanmedian(missed)) if missed.size and not np.isnan(missed).all() else math.nan
        rows.append({**described, "probability": k / n, "ci_low": float(low), "ci_high": float(high), "median": p50, "p5": p5, "p95": p95,
                     "median_shortfall": gap, "note": ""})
    columns = ["target", "label", "metric", "measure", "scope", "when", "comparison", "threshold", "unit", "probability", "ci_low", "ci_high",
               "median", "p5", "p95", "median_shortfall", "paths", "source", "note"]
    return pd.DataFrame(rows, columns=columns)
