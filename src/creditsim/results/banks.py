"""Each bank's book at each year-end of the run (and its last date), across paths: what a bank planner reads
first — balance, borrowers, 首贷户 and first loans, the NPL ratio, 无还本续贷 — beside its 两增 margins and
probability of passing.

:func:`bank_table` gives one row per bank (and "all"), date and item: the median and the 5–95% band over paths.
Stocks are at the date; flows (``first_time_borrowers``, ``first_loan_amount``, ``renewed``) are summed over the
calendar year up to the date (from the run's start in its first year). 两增's rows are the year's assessment at a
year-end: the margins of its checks (``loan_growth`` in percentage points, ``borrowers`` in firms) with their
bands, and ``两增 P(pass)`` with its Wilson 95% interval in ``p5``/``p95``; none at a date 两增 does not assess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import metric
from ..scenario.units import format_value
from .assessment import evaluations
from .results import Results
from .targets import wilson_interval

__all__ = ["BANK_ITEMS", "bank_table", "bank_view", "shown"]

#: The items of the table: (metric, how it is read: "stock" at the date or "year" summed over the year to date).
BANK_ITEMS: tuple[tuple[str, str], ...] = (
    ("balance", "stock"), ("borrowers", "stock"), ("first_time_borrowers", "year"), ("first_loan_amount", "year"),
    ("npl_ratio", "stock"), ("renewal_balance", "stock"), ("renewed", "year"),
)
#: 两增's checks shown, with the unit of their margins in the table.
_MARGINS = {"loan_growth": "points", "borrowers": "firms"}


def bank_dates(results: Results) -> list[int]:
    """Columns of the table: each year-end inside the run, and the last date."""
    columns = [t for t, date in enumerate(results.dates) if t > 0 and date.endswith("-12")]
    last = len(results.dates) - 1
    return columns + ([last] if last not in columns else [])


def bank_table(results: Results) -> pd.DataFrame:
    """Each bank's book and 两增 at each year-end (and the last date).

    Returns
    -------
    DataFrame
        Columns ``bank, date, item, unit, median, p5, p95`` (amounts in CNY, ratios as fractions, 两增's
        ``loan_growth`` margin in percentage points; for ``两增 P(pass)`` the probability and its 95% interval).
    """
    columns = bank_dates(results)
    wanted = {results.dates[t] for t in columns}
    tests = {(bank, date, check): (passed, margin) for bank, _, date, check, _, passed, margin in evaluations(results)
             if date in wanted and check in ("两增", *_MARGINS)}
    rows = []

    def add(bank: str, date: str, item: str, unit: str, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        if values.size:
            p5, p50, p95 = np.percentile(values, [5, 50, 95])
            rows.append({"bank": bank, "date": date, "item": item, "unit": unit, "median": p50, "p5": p5, "p95": p95})

    for bank in results.banks:
        for t in columns:
            date = results.dates[t]
            year_start = max(1, t - int(date[5:7]) + 1)
            for name, how in BANK_ITEMS:
                values = results.values(name, bank)
                add(bank, date, name, metric(name).unit, values[:, t] if how == "stock" else values[:, year_start : t + 1].sum(axis=1))
            for check, unit in _MARGINS.items():
                if (bank, date, check) in tests:
                    margin = tests[bank, date, check][1]
                    add(bank, date, f"两增 {check} margin", unit, 100 * margin if unit == "points" else margin)
            if (bank, date, "两增") in tests:
                passed = tests[bank, date, "两增"][0]
                low, high = wilson_interval(int(passed.sum()), passed.size)
                rows.append({"bank": bank, "date": date, "item": "两增 P(pass)", "unit": "probability", "median": float(passed.mean()),
                             "p5": float(low), "p95": float(high)})
    return pd.DataFrame(rows, columns=["bank", "date", "item", "unit", "median", "p5", "p95"])


def shown(value: float, unit: str) -> str:
    """One value of :func:`bank_table` for people: margins in points as ``+1.23 pts``, probabilities as ``95%``,
    the rest by :func:`creditsim.scenario.units.format_value`."""
    if unit == "points":
        return f"{value:+.2f} pts"
    if unit == "probability":
        return f"{100 * value:.0f}%"
    return format_value(value, unit)


def bank_view(table: pd.DataFrame, bank: str) -> tuple[list[str], list[tuple[str, list[str], tuple[str, str] | None]]]:
    """One bank's rows of :func:`bank_table` as text, the way the CLI and the report show them.

    Returns
    -------
    dates : list of str
        The table's dates, in order.
    rows : list of (item, medians, band)
        Per item: its median at each date ("–" where it has none) and its 5–95% band at the last date (for
        ``两增 P(pass)``, the 95% interval), None where it has none there.
    """
    rows = table[table["bank"] == bank]
    dates = list(dict.fromkeys(rows["date"]))
    view = []
    for item, group in rows.groupby("item", sort=False):
        group = group.set_index("date")
        unit = group["unit"].iloc[0]
        medians = [shown(group.loc[d, "median"], unit) if d in group.index else "–" for d in dates]
        band = (shown(group.loc[dates[-1], "p5"], unit), shown(group.loc[dates[-1], "p95"], unit)) if dates[-1] in group.index else None
        view.append((item, medians, band))
    return dates, view
