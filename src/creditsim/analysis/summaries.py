"""Summaries of what the instruments cost and how they fail, across paths.

- :func:`instrument_events`: for each guarantor and pool, the probability (with a Wilson 95% interval) that it
  becomes insolvent, reaches its leverage cap, ends a month above it (claims cutting the capital behind guarantees
  issued within it), cannot pay a pool compensation in full or is suspended, and the distribution of the month it
  first happens;
- :func:`fiscal_costs`: the fiscal cost of each path, in total and as a net present value;
- :func:`per_fiscal_cost`: the extra lending (or any other metric) a policy brings per extra CNY of fiscal cost,
  from a :class:`~creditsim.analysis.compare.Comparison`, with a delta-method confidence interval, and whether the
  signs of the two changes make that ratio mean anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results.budget import paired_ratio
from ..results.results import Results
from ..results.targets import wilson_interval
from .compare import Comparison, paired_stats

__all__ = ["fiscal_costs", "instrument_events", "per_fiscal_cost"]


def _events(results: Results) -> list[tuple[str, str, np.ndarray]]:
    """(entity, event, boolean array paths × dates) for every instrument event of the scenario."""
    s = results.scenario
    out = []
    for name, g in s.guarantors.items():
        out.append((name, "insolvent (claims left unpaid)", results.values("guarantee_unpaid_claims", name) > 0))
        leverage = results.values("guarantee_leverage", name)
        out.append((name, "leverage cap reached", leverage >= g.leverage_cap * (1 - 1e-6)))
        # never by issuing (a guarantee is issued only within the cap), but when claims cut the capital behind
        # guarantees already issued: a breach the regulator would see at the month end
        out.append((name, "leverage above its cap (claims cut its capital)", leverage > g.leverage_cap * (1 + 1e-6)))
        if g.capital_floor > 0:
            out.append((name, "capital below its floor", results.values("guarantor_capital", name) < g.capital_floor))
    for name in s.reguarantors:
        out.append((name, "insolvent (reimbursements left unpaid)", results.values("reguarantee_unpaid", name) > 0))
    for name in s.pools:
        out.append((name, "depleted (compensation left unpaid)", results.values("pool_unpaid", name) > 0))
        out.append((name, "suspended", results.values("pool_suspended", name) > 0))
    return out


def instrument_events(results: Results) -> pd.DataFrame:
    """How likely each guarantor, re-guarantor and pool is to hit each limit within the horizon, and when.

    Returns
    -------
    DataFrame
        Columns ``entity, event, probability, ci_low, ci_high`` (Wilson 95%), and among the paths where it
        happens the first month's ``date_p5, date_median, date_p95``.
    """
    rows = []
    for entity, event, happened in _events(results):
        hit = happened[:, 1:].any(axis=1)
        first = np.argmax(happened[:, 1:], axis=1) + 1  # index into results.dates
        low, high = (float(v) for v in wilson_interval(int(hit.sum()), results.paths))
        months = np.sort(first[hit])
        rows.append({
            "entity": entity, "event": event, "probability": hit.mean(), "ci_low": low, "ci_high": high,
            **{column: _date_quantile(months, q, results.dates) for column, q in (("date_p5", 0.05), ("date_median", 0.5), ("date_p95", 0.95))},
        })
    return pd.DataFrame(rows, columns=["entity", "event", "probability", "ci_low", "ci_high", "date_p5", "date_median", "date_p95"])


def _date_quantile(months: np.ndarray, q: float, dates: list[str]) -> str | None:
    """The date at quantile q of sorted month indexes (nearest rank), None when there are none."""
    if months.size == 0:
        return None
    return dates[int(months[min(months.size - 1, int(q * (months.size - 1) + 0.5))])]


def fiscal_costs(results: Results, discount_rate: float | None = None) -> pd.DataFrame:
    """Each path's fiscal cost over the simulated months: the total, and its present value at the start.

    Parameters
    ----------
    results : Results
    discount_rate : float, optional
        Annual rate; the scenario's ``discount_rate`` when omitted. Month t is discounted by (1 + r)^(-t/12).

    Returns
    -------
    DataFrame
        Columns ``path, initial, total, npv`` (CNY): the government's start-up money (its share of starting
        capital and pool sizes, the same on every path), and the total and present value including it. Describe
        it (quantiles, mean) for the distribution.
    """
    rate = results.scenario.discount_rate if discount_rate is None else discount_rate
    initial = results.scenario.initial_fiscal_cost
    flows = results.values("fiscal_cost")[:, 1:]
    discount = (1.0 + rate) ** (-np.arange(1, flows.shape[1] + 1) / 12.0)
    return pd.DataFrame({"path": results.path_ids, "initial": initial, "total": initial + flows.sum(axis=1), "npv": initial + flows @ discount})


def per_fiscal_cost(comparison: Comparison, metric: str = "disbursed", total: bool = True) -> pd.Series:
    """Extra ``metric`` of the variant over the base per extra CNY of fiscal cost, with a 95% interval, and whether
    that ratio means anything.

    The ratio of the mean paired differences, ``mean(Δ metric) / mean(Δ fiscal cost)`` — the fiscal cost in
    total, start-up money included (:func:`fiscal_costs`) — with a delta-method standard error over paths
    (common random numbers make both differences share their noise). It reads as "extra metric per extra CNY"
    only when B clearly costs more (the 95% interval of Δ fiscal cost lies above 0) and the metric did not clearly
    fall; otherwise ``note`` says why not (when both fell, say, swapping A and B gives A's extra per extra CNY).

    Parameters
    ----------
    comparison : Comparison
        Base A (e.g. without the instrument) and variant B (with it).
    metric : str
        A flow (``total=True``: summed over the months, e.g. disbursed) or a stock (``total=False``: at the end
        date, e.g. borrowers).

    Returns
    -------
    Series
        ``extra, extra_low, extra_high``: the mean Δ metric (its unit) with its paired normal 95% interval;
        ``extra_fiscal_cost, extra_fiscal_cost_low, extra_fiscal_cost_high`` likewise, CNY; ``per_cny, se, ci_low,
        ci_high``: the ratio (metric's unit per CNY), its standard error and 95% interval (NaN when Δ fiscal cost
        averages 0); ``note``: empty when the ratio is an extra per extra CNY, else why it is not.
    """
    a, b = comparison.base, comparison.variant
    before, after = (a.cumulative(metric), b.cumulative(metric)) if total else (a.values(metric)[:, -1], b.values(metric)[:, -1])
    cost_a, cost_b = fiscal_costs(a)["total"].to_numpy(), fiscal_costs(b)["total"].to_numpy()  # start-up money included
    dm, dc = after - before, cost_b - cost_a
    ratio = paired_ratio(dm, dc)
    extra, cost = paired_stats(before, after), paired_stats(cost_a, cost_b)
    return pd.Series({"extra": ratio["mean_numerator"], "extra_low": float(extra["ci_low"]), "extra_high": float(extra["ci_high"]),
                      "extra_fiscal_cost": ratio["mean_denominator"], "extra_fiscal_cost_low": float(cost["ci_low"]),
                      "extra_fiscal_cost_high": float(cost["ci_high"]), "per_cny": ratio["ratio"], "se": ratio["se"], "ci_low": ratio["ci_low"],
                      "ci_high": ratio["ci_high"],
                      "note": _ratio_note(metric, _sign(extra), _sign(cost), bool((dc == 0).all()))}, dtype=object)


def _sign(stats: dict[str, np.ndarray]) -> int:
    """+1 when a paired 95% interval lies above 0, −1 below it, 0 when it holds 0."""
    return 1 if stats["ci_low"] > 0 else -1 if stats["ci_high"] < 0 else 0


def _ratio_note(metric: str, extra: int, cost: int, same_cost: bool) -> str:
    """Why Δ metric / Δ fiscal cost is not an extra metric per extra CNY ('' when it is), from the signs of both changes."""
    if same_cost:
        return "the fiscal cost is the same in A and B on every path"
    if cost == 0:
        return "the change in fiscal cost is not clearly different from 0"
    if cost > 0:
        return f"{metric} fell while fiscal cost rose: B costs more for less" if extra < 0 else ""
    if extra < 0:
        return f"{metric} and fiscal cost both fell (swap A and B for A's extra {metric} per extra CNY)"
    if extra > 0:
        return f"{metric} rose while fiscal cost fell: the rise costs nothing extra"
    return f"fiscal cost fell and {metric} did not clearly change"
