"""Policy search: the smallest (or largest) value of one parameter at which a target is met with a given probability.

:func:`solve` brackets the answer on common random numbers: every value tried runs the same paths with the
same seed, so the estimated probability P̂(x) moves with the parameter, not with sampling noise. Assuming the
probability changes in one direction over the range (rising for "smallest", falling for "largest"), it bisects
three boundaries at once, all on the same runs:

* the answer: the smallest x (or largest) at which P̂(x) ≥ level;
* the confidence interval: the values at which the level lies inside the Wilson interval of P̂(x), i.e. the
  values that the paths cannot tell apart from the answer. Its ends are where the interval's upper bound
  first reaches the level and where its lower bound does.

Each boundary is located to within ``tolerance`` (default 1/64 of the range; whole numbers for an integer
field). When P̂ stays below the level across the range the answer is "not reachable in range".
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import norm

from .api import backend_for, path_numbers
from .backends import Backend, run_scenarios
from .errors import ScenarioError
from .progress import ProgressArg
from .scenario import Scenario, load_scenario
from .sweep import _VALUE, _written, field_value, parse_range, path_summary, variant
from .targets import met, outside, wilson_interval
from .units import month_label

__all__ = ["Solution", "solve"]

#: How many values a search tries at most (two ends and the bisections).
MAX_EVALUATIONS = 40


@dataclass
class Solution:
    """The answer of :func:`solve`.

    Attributes
    ----------
    target, key : str
        The target and the parameter varied.
    level : float
        The probability asked for.
    direction : {"smallest", "largest"}
    reachable : bool
        Whether P̂ reaches the level somewhere in the range.
    value : float or None
        The answer, in the unit the range was written in (None when not reachable).
    ci_low, ci_high : float or None
        The confidence interval of the answer in that unit; None where it extends beyond the range.
    text, ci_text : str
        The answer and its interval as written in scenario files (e.g. ``"2.5亿"``).
    unit : str
        The unit of the range as written ('' for plain numbers).
    probability, probability_low, probability_high : float
        P̂ at the answer (or at the favourable end when not reachable) and its Wilson interval.
    confidence : float
    evaluations : DataFrame
        Every value tried: ``value, probability, ci_low, ci_high``, sorted by value.
    paths, seed : int
    message : str
        One line for people.
    """

    target: str
    key: str
    level: float
    direction: str
    reachable: bool
    value: float | None
    ci_low: float | None
    ci_high: float | None
    text: str
    ci_text: str
    unit: str
    probability: float
    probability_low: float
    probability_high: float
    confidence: float
    evaluations: pd.DataFrame
    paths: int
    seed: int
    message: str


def solve(
    scenario: Scenario | str | Path | None,
    target: str,
    vary: str,
    range_: str | tuple[Any, Any],
    probability: float = 0.9,
    *,
    largest: bool = False,
    tolerance: float | None = None,
    confidence: float = 0.95,
    paths: int | Iterable[int] = 200,
    seed: int = 0,
    progress: ProgressArg = None,
    backend: str | Backend | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Solution:
    """Find the smallest (or largest) value of ``vary`` in a range at which ``target`` is met with probability
    ≥ ``probability``.

    Parameters
    ----------
    scenario : Scenario, str or Path, optional
        The base scenario (None: the bundled default).
    target : str
        A target of the scenario.
    vary : str
        A dotted key naming one number (e.g. ``pools.fund.size``).
    range_ : str or (lo, hi)
        ``"1亿:5亿"`` or ``("1亿", "5亿")``: both ends in the same unit.
    probability : float
        The level, in (0, 1).
    largest : bool
        Find the largest value instead (for a parameter that lowers the probability as it grows).
    tolerance : float, optional
        How closely to locate each boundary, in the range's unit (default (hi − lo) / 64; at least 1 for an
        integer field).
    confidence : float
        Level of the Wilson intervals that give the answer's interval.
    paths, seed, progress, backend, workers, client, scheduler, chunk_size
        As for :func:`creditsim.simulate`; every value tried runs the same paths, on one backend.
    checkpoint : str or Path, optional
        A directory of per-value checkpoints (``x-VALUE`` subdirectories), so a rerun skips what is done.

    Returns
    -------
    Solution

    Raises
    ------
    ScenarioError
        For an unknown target or key, a bad range, level or tolerance.
    """
    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if target not in base.targets:
        raise ScenarioError("--target", target, f"is not a target of the scenario (targets: {', '.join(base.targets) or 'none'})")
    if outside(base.targets[target], *_run_dates(base)) is not None:
        raise ScenarioError(f"targets.{target}", target, "lies outside the run, so it cannot be solved for")
    if not 0.0 < probability < 1.0:
        raise ScenarioError("--probability", probability, "must be in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise ScenarioError("--confidence", confidence, "must be in (0, 1)")
    text = range_ if isinstance(range_, str) else f"{range_[0]}:{range_[1]}"
    ends = parse_range(text, "--range", count=2)
    unit = _VALUE.match(ends[0]).group(2)  # type: ignore[union-attr]
    lo, hi = float(ends[0][: len(ends[0]) - len(unit)]), float(ends[1][: len(ends[1]) - len(unit)])
    if not lo < hi:
        raise ScenarioError("--range", text, "must be written lo:hi with lo < hi")
    current = field_value(base, vary)
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        if current is None:
            variant(base, {vary: ends[0]})  # an unknown key is named by validation
        raise ScenarioError(vary, current, "must name one number to be solved for")
    integer = isinstance(current, int) and not unit
    if tolerance is None:
        tolerance = (hi - lo) / 64
    if not tolerance > 0:
        raise ScenarioError("--tolerance", tolerance, "must be > 0")
    if integer:
        tolerance = max(tolerance, 1.0)
    path_ids = path_numbers(paths, seed)
    z = float(norm.ppf(0.5 + confidence / 2))
    tried: dict[float, tuple[int, int]] = {}

    def x_of(t: float) -> float:
        x = hi - t * (hi - lo) if largest else lo + t * (hi - lo)
        return float(round(x)) if integer else x

    with backend_for(backend, workers, client, scheduler) as runner:

        def evaluate(x: float) -> tuple[float, float, float]:
            if x not in tried:
                if len(tried) >= MAX_EVALUATIONS:
                    raise ScenarioError("--tolerance", tolerance, f"needs more than {MAX_EVALUATIONS} values; give a larger one")
                written = _written(x, unit) if unit or not integer else str(int(x))
                scenario_x = variant(base, {vary: written})
                (values,) = run_scenarios([scenario_x], path_ids, int(seed), runner, summary=_summary, chunk_size=chunk_size, progress=progress,
                                          checkpoint=None if checkpoint is None else Path(checkpoint) / f"x-{written}")
                hit = met(values[f"target:{target}"], scenario_x.targets[target])
                tried[x] = (int(hit.sum()), hit.size)
            k, n = tried[x]
            low, high = wilson_interval(k, n, z)
            return k / n, float(low), float(high)

        tests = {"answer": lambda r: r[0] >= probability, "reach": lambda r: r[2] >= probability, "sure": lambda r: r[1] >= probability}
        boundaries: dict[str, float | None] = {}
        for name, holds in tests.items():
            boundaries[name] = _first(holds, evaluate, x_of, tolerance / (hi - lo), integer)
    evaluations = pd.DataFrame([{"value": x, **dict(zip(("probability", "ci_low", "ci_high"), evaluate(x), strict=True))}
                                for x in sorted(tried)])
    direction = "largest" if largest else "smallest"
    label = f"P({target}) ≥ {probability:.0%}"
    answer = boundaries["answer"]
    if answer is None:
        p, p_low, p_high = evaluate(x_of(1.0))
        message = (f"not reachable in range: {label} is not reached for {vary} in {text} "
                   f"(P = {p:.3f} [{p_low:.3f}, {p_high:.3f}] at {_written(x_of(1.0), unit)})")
        return Solution(target, vary, probability, direction, False, None, None, None, "not reachable in range", "", unit,
                        p, p_low, p_high, confidence, evaluations, len(path_ids), int(seed), message)
    value = x_of(answer)
    p, p_low, p_high = evaluate(value)
    # the interval's ends as values; None where it extends past an end of the range
    reach, sure = boundaries["reach"], boundaries["sure"]
    near = None if reach == 0.0 else x_of(reach)  # type: ignore[arg-type]
    far = None if sure is None else x_of(sure)
    ci_low, ci_high = (far, near) if largest else (near, far)
    low_text = "below " + _written(lo, unit) if ci_low is None else _written(ci_low, unit)
    high_text = "above " + _written(hi, unit) if ci_high is None else _written(ci_high, unit)
    ci_text = f"[{low_text}, {high_text}]"
    answer_text = _written(value, unit)
    edge = f" (already met at the end of the range; the {direction} value may lie beyond it)" if answer == 0.0 else ""
    message = (f"{direction} {vary} with {label}: {answer_text}{edge}; {confidence:.0%} CI {ci_text}; "
               f"P = {p:.3f} [{p_low:.3f}, {p_high:.3f}] there ({len(path_ids)} paths, seed {seed}, located to ±{_written(tolerance, unit)})")
    return Solution(target, vary, probability, direction, True, value, ci_low, ci_high, answer_text, ci_text, unit, p, p_low, p_high,
                    confidence, evaluations, len(path_ids), int(seed), message)


_summary = functools.partial(path_summary, metrics=())


def _run_dates(scenario: Scenario) -> tuple[str, str]:
    """The opening month and the last simulated month of a scenario."""
    first = scenario.start_index - 1
    return month_label(first), month_label(first + scenario.calendar.months)


def _first(holds: Callable[[tuple[float, float, float]], bool], evaluate: Callable[[float], tuple[float, float, float]],
           x_of: Callable[[float], float], tolerance: float, integer: bool) -> float | None:
    """The smallest t in [0, 1] (to within ``tolerance``) at which ``holds(evaluate(x_of(t)))``, assuming it holds
    from some t on: 0 when it holds at 0, None when it fails at 1; otherwise the upper end of the final bracket,
    where it was seen to hold. Bisection on the dyadic points of [0, 1], so searches share their runs."""
    if holds(evaluate(x_of(0.0))):
        return 0.0
    if not holds(evaluate(x_of(1.0))):
        return None
    a, b = 0.0, 1.0
    while b - a > tolerance and (not integer or abs(x_of(b) - x_of(a)) > 1):
        middle = (a + b) / 2
        if holds(evaluate(x_of(middle))):
            b = middle
        else:
            a = middle
    return b
