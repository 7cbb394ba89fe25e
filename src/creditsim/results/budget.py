"""The government's budget for a plan's instruments: what it pays, for what, when, and what is left at the end.

Each path's fiscal outlay is split by instrument (each guarantor, re-guarantor and pool, and the interest
subsidy) and item, month by month:

=================================  ==========  =============================================================
item                               kind        amount
=================================  ==========  =============================================================
start-up capital                   one-off     ``government_share`` × starting capital (guarantors, re-guarantors),
                                               the government's contribution share × ``size`` (pools); at the start
scheduled injections               one-off     ``injections`` of a guarantor, as the engine made them
top-ups                            recurring   a guarantor's rule-based ``top_up`` (capital_injections beyond the
                                               scheduled ones); a pool's January ``top_up_to`` beyond its budget
fee subsidies                      recurring   guarantee_fee_subsidy (降费奖补)
annual budget                      recurring   the government's share of a pool's ``annual_budget``, each January
interest subsidy                   recurring   interest_subsidy (贷款贴息), all banks
=================================  ==========  =============================================================

The items add up, path by path and month by month, to the engine's ``fiscal_cost`` metric plus the start-up money
(:attr:`creditsim.scenario.Scenario.initial_fiscal_cost`). What is *left* at the end is the government's share of
the instruments' money on the last date (guarantors' and re-guarantors' capital × ``government_share``, pools'
balances × the government's contribution share): recoveries, fees and unspent budgets that stay in the
instruments. The *net cost* is the outlay less what is left. Present values discount month t by
(1 + ``discount_rate``)^(−t/12) (the scenario's field, 3% unless it says otherwise), what is left at the end date.

:func:`budget` summarises them over the paths (median and 5–95% band, mean with its Monte Carlo standard error);
against a baseline run on the same seed (by default :func:`baseline_scenario`: the scenario without its
instruments), it gives the fiscal cost per extra 亿 of lending, paired path by path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import _MISSING, ScenarioError
from ..scenario import Scenario, scenario_from_dict
from ..scenario.units import month_index
from .results import ALL, Results, mean_and_mcse
from .targets import Z95

__all__ = ["Budget", "budget", "budget_items", "baseline_scenario", "paired_ratio", "YI"]

#: CNY per 亿.
YI = 1e8
ONE_OFF, RECURRING = "one-off", "recurring"
_QUANTILES = {"median": 0.5, "p5": 0.05, "p95": 0.95}


@dataclass(frozen=True)
class BudgetItem:
    """One line of the budget: an instrument's item, its amount on every path and month (CNY, paths × dates)."""

    instrument: str
    kind: str   # "guarantor", "reguarantor", "pool" or "interest subsidy"
    item: str
    timing: str  # ONE_OFF or RECURRING
    amounts: np.ndarray


def budget_items(results: Results) -> list[BudgetItem]:
    """The budget's lines for every path and month, start-up money at the opening date (index 0).

    Returns
    -------
    list of BudgetItem
        Amounts in CNY, arrays of shape (paths, dates); lines that are zero on every path are left out.
    """
    s = results.scenario
    shape = (results.paths, len(results.dates))
    items: list[BudgetItem] = []

    def at_start(amount: float) -> np.ndarray:
        out = np.zeros(shape)
        out[:, 0] = amount
        return out

    def add(instrument: str, kind: str, item: str, timing: str, amounts: np.ndarray) -> None:
        if np.any(amounts != 0):
            items.append(BudgetItem(instrument, kind, item, timing, amounts))

    for name, g in s.guarantors.items():
        add(name, "guarantor", "start-up capital", ONE_OFF, at_start(g.government_share * g.capital))
        injected = results.values("capital_injections", name)
        scheduled, top_ups = _split(injected, _scheduled(s, g.injections, shape[1]))
        add(name, "guarantor", "scheduled injections", ONE_OFF, scheduled)
        add(name, "guarantor", "top-ups", RECURRING, top_ups)
        add(name, "guarantor", "fee subsidies", RECURRING, results.values("guarantee_fee_subsidy", name))
    for name, r in s.reguarantors.items():
        add(name, "reguarantor", "start-up capital", ONE_OFF, at_start(r.government_share * r.capital))
    for name, p in s.pools.items():
        share = p.contributions.get("government", 0.0)
        add(name, "pool", "start-up capital", ONE_OFF, at_start(share * p.size))
        budgeted, top_ups = _split(results.values("pool_contributions_government", name), share * p.annual_budget * _januaries(results))
        add(name, "pool", "annual budget", RECURRING, budgeted)
        add(name, "pool", "top-ups", RECURRING, top_ups)
    if s.interest_subsidy is not None:
        add("interest_subsidy", "interest subsidy", "interest subsidy", RECURRING, results.values("interest_subsidy", ALL))
    return items


def _split(paid: np.ndarray, planned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Money paid in each month (paths × dates) as the part planned for that month (a scheduled injection, a
    January budget) and the rest (a top-up); a rest under 1 CNY is the rounding of scaled-back fen, not a top-up."""
    rest = paid - np.minimum(paid, planned)
    rest[rest < 1.0] = 0.0
    return paid - rest, rest


def _scheduled(s: Scenario, injections, dates: int) -> np.ndarray:
    """Scheduled injections by date index (the engine's months 1..M)."""
    out = np.zeros(dates)
    for injection in injections:
        t = month_index(injection.date) - s.start_index + 1
        if 1 <= t < dates:
            out[t] += injection.amount
    return out


def _januaries(results: Results) -> np.ndarray:
    """1.0 at the simulated months that are Januaries (the pools' budget months), else 0."""
    return np.array([float(t > 0 and date.endswith("-01")) for t, date in enumerate(results.dates)])


def left_at_end(results: Results) -> np.ndarray:
    """The government's share of the money left in the instruments on the last date, CNY per path."""
    s = results.scenario
    left = np.zeros(results.paths)
    for name, g in s.guarantors.items():
        left += g.government_share * results.values("guarantor_capital", name)[:, -1]
    for name, r in s.reguarantors.items():
        left += r.government_share * results.values("reguarantor_capital", name)[:, -1]
    for name, p in s.pools.items():
        left += p.contributions.get("government", 0.0) * results.values("pool_balance", name)[:, -1]
    return left


def _describe(values: np.ndarray) -> dict[str, float]:
    """Median, 5th and 95th percentiles, mean and its Monte Carlo standard error of per-path amounts."""
    mean, mcse = mean_and_mcse(values)
    return {**{column: float(np.quantile(values, q)) for column, q in _QUANTILES.items()}, "mean": float(mean), "mcse": float(mcse)}


@dataclass(frozen=True)
class Budget:
    """The budget of a run (:func:`budget`); amounts in CNY.

    Attributes
    ----------
    items : DataFrame
        One row per instrument, item and year (``year`` "total" for the whole run): ``instrument, kind, item,
        timing`` (one-off or recurring), ``year``, and over the paths ``median, p5, p95, mean, mcse``.
    totals : DataFrame
        One row per line of the bottom line — ``one-off``, ``recurring``, ``outlay``, ``outlay (present value)``,
        ``left at the end``, ``net cost``, ``net cost (present value)`` — with ``median, p5, p95, mean, mcse``.
    per_extra_lending : Series or None
        Against a baseline (``baseline``: its name): ``extra_lending`` (the mean paired difference in the balance
        increase over the run, 新增, CNY) and its ``extra_lending_se``; for the ``outlay`` and the ``net_cost``
        (outlay less what is left): ``extra_outlay`` / ``extra_net_cost`` (mean paired differences, CNY), the fiscal
        cost per extra 亿 of lending ``outlay_per_yi`` / ``net_cost_per_yi`` (CNY per 亿) with ``…_se``,
        ``…_ci_low``, ``…_ci_high`` (95%), NaN with the reason in ``outlay_note`` / ``net_cost_note`` when the signs
        make the ratio meaningless (extra lending whose interval reaches 0; a cost that does not rise); ``note``
        says when the extra lending itself is not clearly positive.
    discount_rate : float
    """

    items: pd.DataFrame
    totals: pd.DataFrame
    per_extra_lending: pd.Series | None
    discount_rate: float

    @property
    def years(self) -> list[str]:
        """The calendar years of the run, in order (the columns of :meth:`by_line`)."""
        return [y for y in dict.fromkeys(self.items["year"]) if y != "total"]

    def by_line(self) -> pd.DataFrame:
        """:attr:`items` one row per line of the budget (``instrument, item, timing``, in order): the median of
        each year in a column named by the year (:attr:`years`), then the total's ``median, p5, p95``."""
        years = self.years
        medians = self.items.pivot_table(index=["instrument", "item", "timing"], columns="year", values="median", sort=False)[years]
        total = self.items[self.items["year"] == "total"].set_index(["instrument", "item", "timing"])[["median", "p5", "p95"]]
        return medians.join(total).reset_index()


def budget(results: Results, baseline: Results | None = None, discount_rate: float | None = None) -> Budget:
    """Summarise the government's outlay by instrument, item and year, one-off and recurring, in total and at
    present value, net of what is left in the instruments at the end; with ``baseline``, the cost per extra 亿.

    Parameters
    ----------
    results : Results
    baseline : Results, optional
        The same paths (same seed and path numbers) of a baseline, e.g. ``simulate(baseline_scenario(s), ...)``.
    discount_rate : float, optional
        Annual rate; the scenario's ``discount_rate`` when omitted.

    Raises
    ------
    ValueError
        When ``baseline`` does not hold the same paths and dates as ``results``.
    """
    rate = results.scenario.discount_rate if discount_rate is None else discount_rate
    items = budget_items(results)
    years = [date[:4] for date in results.dates]
    years[0] = years[1] if len(years) > 1 else years[0]  # start-up money counts in the first simulated year
    rows = []
    for line in items:
        head = {"instrument": line.instrument, "kind": line.kind, "item": line.item, "timing": line.timing}
        for year in sorted(set(years)):
            columns = [t for t, y in enumerate(years) if y == year]
            rows.append({**head, "year": year, **_describe(line.amounts[:, columns].sum(axis=1))})
        rows.append({**head, "year": "total", **_describe(line.amounts.sum(axis=1))})
    table = pd.DataFrame(rows, columns=["instrument", "kind", "item", "timing", "year", *_QUANTILES, "mean", "mcse"])
    discount = (1.0 + rate) ** (-np.arange(len(results.dates)) / 12.0)
    zero = np.zeros(results.paths)
    one_off = sum((line.amounts.sum(axis=1) for line in items if line.timing == ONE_OFF), zero)
    recurring = sum((line.amounts.sum(axis=1) for line in items if line.timing == RECURRING), zero)
    present = sum((line.amounts @ discount for line in items), zero)
    left = left_at_end(results)
    bottom = {
        "one-off": one_off, "recurring": recurring, "outlay": one_off + recurring, "outlay (present value)": present,
        "left at the end": left, "net cost": one_off + recurring - left, "net cost (present value)": present - left * discount[-1],
    }
    totals = pd.DataFrame([{"line": name, **_describe(values)} for name, values in bottom.items()])
    per = None
    if baseline is not None:
        if baseline.path_ids != results.path_ids or baseline.seed != results.seed or baseline.dates != results.dates:
            raise ValueError("baseline: must hold the same seed, paths and dates as the results")
        per = _per_extra_lending(results, baseline, one_off + recurring, one_off + recurring - left)
    return Budget(items=table, totals=totals, per_extra_lending=per, discount_rate=rate)


def _lending(results: Results) -> np.ndarray:
    """The balance increase over the run (新增贷款 of the inclusive book), CNY per path."""
    balance = results.values("balance")
    return balance[:, -1] - balance[:, 0]


def _per_extra_lending(results: Results, baseline: Results, outlay: np.ndarray, net: np.ndarray) -> pd.Series:
    base_outlay = sum((line.amounts.sum(axis=1) for line in budget_items(baseline)), np.zeros(baseline.paths))
    base_net = base_outlay - left_at_end(baseline)
    d_lending = (_lending(results) - _lending(baseline)) / YI
    out: dict[str, object] = {"baseline": baseline.scenario.name}
    note = ""
    for name, d_cost in (("outlay", outlay - base_outlay), ("net_cost", net - base_net)):
        ratio = paired_ratio(d_cost, d_lending)
        out["extra_lending"], out["extra_lending_se"] = ratio["mean_denominator"] * YI, ratio["se_denominator"] * YI
        out[f"extra_{name}"] = ratio["mean_numerator"]
        why = ""
        if not ratio["ci_low_denominator"] > 0:
            why = note = "the extra lending is not clearly positive (its 95% interval reaches 0 or below)"
        elif not ratio["mean_numerator"] > 0:
            why = f"the plan's {name.replace('_', ' ')} is no higher than the baseline's while it lends more"
        for column in ("ratio", "se", "ci_low", "ci_high"):
            out[f"{name}_per_yi" + ("" if column == "ratio" else f"_{column}")] = math.nan if why else ratio[column]
        out[f"{name}_note"] = why
    out["note"] = note
    return pd.Series(out)


def paired_ratio(numerator: np.ndarray, denominator: np.ndarray) -> dict[str, float]:
    """The ratio of the mean paired differences, mean(numerator) / mean(denominator), with a delta-method
    standard error over paths (common random numbers make both differences share their noise) and a 95%
    interval; also both means, and the denominator's standard error and 95% lower bound, which say whether the ratio means
    anything (a denominator whose interval reaches 0 makes it unbounded).

    Parameters
    ----------
    numerator, denominator : ndarray (paths,)
        Per-path differences variant − base.
    """
    n = numerator.shape[0]
    mean_n, mean_d = float(numerator.mean()), float(denominator.mean())
    ratio = mean_n / mean_d if mean_d != 0 else math.nan
    se = se_d = math.nan
    if n > 1:
        se_d = float(denominator.std(ddof=1) / math.sqrt(n))
        if mean_d != 0:
            cov = np.cov(numerator, denominator, ddof=1)
            se = math.sqrt(max((cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (mean_d**2 * n), 0.0))
    return {"ratio": ratio, "se": se, "ci_low": ratio - Z95 * se, "ci_high": ratio + Z95 * se, "mean_numerator": mean_n,
            "mean_denominator": mean_d, "se_denominator": se_d, "ci_low_denominator": mean_d - Z95 * se_d}


def baseline_scenario(scenario: Scenario) -> Scenario:
    """The scenario with its instruments switched off: no guarantors, re-guarantors, pools or interest subsidy
    (a loan wanted guaranteed is then made as the bank's product without a guarantee, see
    docs/explanation/model.md), and without targets or assumptions (a baseline is only compared).

    Raises
    ------
    ScenarioError
        When something else in the scenario names an instrument (a loan tape's cover, a campaign channel): name a
        baseline explicitly then.
    """
    data = scenario.to_dict()
    data.update(name=f"{scenario.name} without instruments", guarantors={}, reguarantors={}, pools={},
                interest_subsidy=None, targets={}, assumptions=[])
    try:
        return scenario_from_dict(data)
    except ScenarioError as error:
        raise ScenarioError("baseline", _MISSING, f"cannot switch the instruments off ({error}); name a baseline instead") from None
