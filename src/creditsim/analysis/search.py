"""Policy search: the smallest (or largest) value of one parameter at which a target is met with a given probability.

:func:`solve` brackets the answer on common random numbers: every value tried runs the same paths with the
same seed, so the estimated probability P̂(x) moves with the parameter, not with sampling noise. Assuming the
probability changes in one direction over the range (rising for "smallest", falling for "largest"), it bisects
three boundaries at once, all on the same runs:

* the answer: the smallest x (or largest) at which P̂(x) ≥ level;
* the confidence interval: the values at which the level lies inside the Wilson interval of P̂(x), i.e. the
  values that the paths cannot tell apart from the answer. Its ends are where the interval's upper bound
  first reaches the level and where its lower bound does, each taken at the outer end of its final bracket.

Each boundary is located to within ``tolerance`` (default 1/64 of the range; whole numbers for an integer
field). When P̂ stays below the level across the range the answer is "not reachable in range"; when the values
tried show P̂ moving both ways, the message says so.

The design is sequential: a value is first run on ``initial_paths`` paths, and more paths (doubling, up to
``paths``, always the same path numbers first, so common random numbers hold throughout) are added only while the
level lies inside its Wilson interval, i.e. while the paths cannot yet tell on which side of the level the value
lies. Values far from the answer are decided on a few paths; the values that bound the answer and its interval
get the full ``paths``, and an end of the range that clearly meets the level gets the paths it needs to show it.
``initial_paths = paths`` is the fixed design (every value on every path).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import ScenarioError
from ..results.targets import met, outside, wilson_interval
from ..run.api import backend_for, path_numbers
from ..run.backends import Backend, run_scenarios
from ..run.progress import ProgressArg
from ..scenario import Scenario, load_scenario, parse_overrides, with_tests
from ..scenario.written import refuse_bare_amounts
from .sweeps import field_value, parse_range, path_summary, value_and_unit, variant, written

__all__ = ["Solution", "solve"]

#: How many values a search may need at most (two ends and three bisections); a tolerance needing more is refused.
MAX_EVALUATIONS = 40
#: The paths a value is first run on, unless ``initial_paths`` says otherwise.
INITIAL_PATHS = 25


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
        Every value tried: ``value, probability, ci_low, ci_high`` and the ``paths`` it was run on, sorted by value.
    paths, seed : int
        The most paths a value was run on, and the seed.
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
    tolerance: float | str | None = None,
    confidence: float = 0.95,
    paths: int | Iterable[int] = 400,
    seed: int = 0,
    initial_paths: int | None = None,
    progress: ProgressArg = None,
    backend: str | Backend | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    threads: int = 1,
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
        A target of the scenario, or one of the regulator's tests for a bank written ``TEST:BANK:YEAR`` (e.g.
        ``"两增:big_bank:2023"``, see :func:`creditsim.scenario.with_tests`): P(target) is then the probability of
        passing it.
    vary : str
        A dotted key naming one number (e.g. ``pools.fund.size``).
    range_ : str or (lo, hi)
        ``"1亿:5亿"`` or ``("1亿", "5亿")``: both ends in the same unit (written as text, an amount needs its unit;
        numbers are taken as Python's, an amount in CNY).
    probability : float
        The level, in (0, 1).
    largest : bool
        Find the largest value instead (for a parameter that lowers the probability as it grows).
    tolerance : float or str, optional
        How closely to locate each boundary, in the range's unit: a number (``0.05`` for a range in %) or
        written with the unit (``"0.05%"``); default (hi − lo) / 64, at least 1 for an integer field.
    confidence : float
        Level of the Wilson intervals that give the answer's interval.
    paths : int or iterable of int
        The most paths a value is run on (the path numbers as for :func:`creditsim.simulate`).
    initial_paths : int, optional
        The paths a value is first run on (default the smaller of 25 and ``paths``); more are added while its
        Wilson interval holds the level. ``paths`` gives the fixed design.
    seed, progress, backend, workers, client, scheduler, threads, chunk_size
        As for :func:`creditsim.simulate`; every value runs the same first paths, on one backend.
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
    base = with_tests(scenario if isinstance(scenario, Scenario) else load_scenario(scenario), [target])
    why = outside(base.targets[target], base)
    if why is not None:
        raise ScenarioError("--target", target, f"cannot be solved for: it is not assessed in the run ({why})")
    if not 0.0 < probability < 1.0:
        raise ScenarioError("--probability", probability, "must be in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise ScenarioError("--confidence", confidence, "must be in (0, 1)")
    text = range_ if isinstance(range_, str) else f"{range_[0]}:{range_[1]}"
    ends = parse_range(text, "--range", count=2)
    if isinstance(range_, str) or any(isinstance(end, str) for end in range_):  # text, where an amount needs its unit
        for end in ends:
            refuse_bare_amounts(parse_overrides([f"{vary}={end}"]), base.to_dict())
    (lo, unit), (hi, _) = (value_and_unit(end) or (0.0, "") for end in ends)
    if not lo < hi:
        raise ScenarioError("--range", text, "must be written lo:hi with lo < hi")
    current = field_value(base, vary)
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        if current is None:
            variant(base, {vary: written(lo, unit)})  # an unknown key is named by validation
        raise ScenarioError(vary, current, "must name one number to be solved for")
    integer = isinstance(current, int) and not unit
    if tolerance is None:
        tolerance = (hi - lo) / 64
    elif isinstance(tolerance, str):
        parsed = value_and_unit(tolerance.strip())
        if parsed is None or parsed[1] not in ("", unit):
            raise ScenarioError("--tolerance", tolerance, f"must be a number in the range's unit, e.g. {written((hi - lo) / 64, unit)}")
        tolerance = parsed[0]
    if not (math.isfinite(tolerance) and 0 < tolerance <= hi - lo):
        raise ScenarioError("--tolerance", tolerance, f"must be a number in (0, {written(hi - lo, unit)}], the width of the range")
    if integer:
        tolerance = max(tolerance, 1.0)
    steps = max(math.ceil(math.log2((hi - lo) / tolerance)), 0)
    if 2 + 3 * steps > MAX_EVALUATIONS:  # two ends, then up to three bisections
        raise ScenarioError("--tolerance", tolerance, f"would need up to {2 + 3 * steps} values tried (at most {MAX_EVALUATIONS}); give a larger one")
    path_ids = path_numbers(paths, seed)
    first = min(INITIAL_PATHS, len(path_ids)) if initial_paths is None else int(initial_paths)
    if not 1 <= first <= len(path_ids):
        raise ScenarioError("--initial-paths", initial_paths, f"must be a whole number in [1, {len(path_ids)}] (at most --paths)")
    z = float(norm.ppf(0.5 + confidence / 2))
    tried: dict[float, np.ndarray] = {}  # per value, whether the target is met on each path run so far (in path order)
    digits = max(0, 1 - math.floor(math.log10(tolerance)))  # decimals shown: the tolerance's first two digits

    def x_of(t: float) -> float:
        x = hi - t * (hi - lo) if largest else lo + t * (hi - lo)
        return float(round(x)) if integer else x

    def shown(x: float) -> str:
        return f"{x:.{digits}f}".rstrip("0").rstrip(".") + unit if not integer else f"{x:.0f}"

    with backend_for(backend, workers, client, scheduler, threads) as runner:

        def run(x: float, upto: int) -> None:
            """Run value x on the path numbers up to ``upto`` it has not run yet."""
            done = tried.get(x, np.zeros(0, dtype=bool))
            text_x = written(x, unit)
            scenario_x = variant(base, parse_overrides([f"{vary}={text_x}"]))  # read as --set reads it: "12" is a number
            (values,) = run_scenarios([scenario_x], path_ids[done.size:upto], int(seed), runner, summary=_summary, chunk_size=chunk_size,
                                      progress=progress, description=f"{vary} = {shown(x)} (paths {done.size}–{upto - 1})",
                                      checkpoint=None if checkpoint is None else Path(checkpoint) / f"x-{text_x}-{done.size}-{upto}")
            tried[x] = np.concatenate([done, met(values[f"target:{target}"], scenario_x.targets[target])])

        def evaluate(x: float) -> tuple[float, float, float]:
            n = tried[x].size if x in tried else first
            while True:
                if x not in tried or tried[x].size < n:
                    run(x, n)
                k = int(tried[x].sum())
                low, high = (float(v) for v in wilson_interval(k, n, z))
                if not low < probability <= high or n == len(path_ids):  # decided, or on every path there is
                    return k / n, low, high
                n = min(2 * n, len(path_ids))

        tests = {"answer": lambda r: r[0] >= probability, "reach": lambda r: r[2] >= probability, "sure": lambda r: r[1] >= probability}
        brackets = {name: _bracket(holds, evaluate, x_of, tolerance) for name, holds in tests.items()}
    evaluations = pd.DataFrame([{"value": x, **dict(zip(("probability", "ci_low", "ci_high"), evaluate(x), strict=True)), "paths": tried[x].size}
                                for x in sorted(tried)])
    direction = "largest" if largest else "smallest"
    label = f"P({target}) ≥ {probability:.0%}"
    answer = brackets["answer"][1]
    if answer is None:
        p, p_low, p_high = evaluate(x_of(1.0))
        message = (f"not reachable in range: {label} is not reached for {vary} in {text} "
                   f"(P = {p:.3f} [{p_low:.3f}, {p_high:.3f}] at {shown(x_of(1.0))})")
        return Solution(target, vary, probability, direction, False, None, None, None, "not reachable in range", "", unit,
                        p, p_low, p_high, confidence, evaluations, len(path_ids), int(seed), message)
    value = x_of(answer)
    p, p_low, p_high = evaluate(value)
    # the interval's ends, each the outer end of its bracket (so the interval is never narrower than the truth
    # within the tolerance); None where it extends past an end of the range
    near = brackets["reach"][0]  # the last value tried at which the level is excluded
    far = brackets["sure"][1]    # the first value tried at which P surely reaches the level
    near_x, far_x = (None if t is None else x_of(t) for t in (near, far))
    ci_low, ci_high = (far_x, near_x) if largest else (near_x, far_x)
    low_text = "below " + shown(lo) if ci_low is None else shown(ci_low)
    high_text = "above " + shown(hi) if ci_high is None else shown(ci_high)
    ci_text = f"[{low_text}, {high_text}]"
    notes = []
    if answer == 0.0:
        notes.append(f"already met at the end of the range; the {direction} value may lie beyond it")
    ordered = evaluations["probability"].to_numpy()[:: -1 if largest else 1]
    if (np.diff(ordered) < 0).any():
        notes.append("P does not move in one direction over the values tried, so this is one crossing of the level, not necessarily the only one")
    message = (f"{direction} {vary} with {label}: {shown(value)}; {confidence:.0%} CI {ci_text}; "
               f"P = {p:.3f} [{p_low:.3f}, {p_high:.3f}] there ({tried[value].size} paths; {len(tried)} values tried on "
               f"{sum(hits.size for hits in tried.values())} runs of a path, at most {len(path_ids)} each; seed {seed}; located to ±{shown(tolerance)})"
               + "".join(f"; note: {n}" for n in notes))
    return Solution(target, vary, probability, direction, True, value, ci_low, ci_high, shown(value), ci_text, unit, p, p_low, p_high,
                    confidence, evaluations, len(path_ids), int(seed), message)


_summary = functools.partial(path_summary, metrics=())


def _bracket(holds: Callable[[tuple[float, float, float]], bool], evaluate: Callable[[float], tuple[float, float, float]],
             x_of: Callable[[float], float], tolerance: float) -> tuple[float | None, float | None]:
    """Where ``holds(evaluate(x_of(t)))`` starts to hold for t in [0, 1], assuming it holds from some t on: the
    bracket (a, b] with a the last t tried where it fails and b the first where it holds, bisected until the values
    x_of(a) and x_of(b) are within ``tolerance``. (None, 0.0) when it holds at 0; (1.0, None) when it fails at 1.
    Bisection on the dyadic points of [0, 1], so several searches share their runs."""
    if holds(evaluate(x_of(0.0))):
        return None, 0.0
    if not holds(evaluate(x_of(1.0))):
        return 1.0, None
    a, b = 0.0, 1.0
    while abs(x_of(b) - x_of(a)) > tolerance:
        middle = (a + b) / 2
        if holds(evaluate(x_of(middle))):
            b = middle
        else:
            a = middle
    return a, b
