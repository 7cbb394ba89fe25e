"""The regulator's annual tests of each bank's inclusive lending: 两增 and 两控 (``../shared/MODEL-NOTES.md`` §2).

两增 (two increases): the bank's inclusive loan balance grows at least as fast as all its loans (各项贷款), and
the number of borrowers with a balance (有贷款余额的户数) does not fall. The comparison date depends on the
rule: ``"2018"`` compares with the same date a year earlier (同比) and checks both; ``"2019"`` (2019–2022)
compares with the start of the year (较年初) and checks both; ``"2024"`` compares with the start of the year and
checks growth only; ``"none"`` (before 2018, and 2023) has no numeric test. 两控 (two controls) has two halves:
the NPL half, the inclusive NPL ratio at most the bank's overall NPL ratio plus ``assessment.npl_margin`` (3
percentage points), the overall NPL ratio counting the inclusive NPL as reported and the loans outside the
inclusive book at the bank's ``other_npl_ratio`` (one ratio or one per year); and the cost half (when
``assessment.loan_cost``), the loans paid out since the start of the year at a lower average rate (weighted by
amount, ``new_loan_rate``) than those of the whole year before, assessed from the run's second calendar year (the
year before must lie inside the run). ``两控`` passes when both halves assessed pass.

Each test is evaluated per bank and for all banks together, at every quarter-end and year-end the run covers
(with its comparison date inside the run), on every path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..scenario import Assessment
from ..scenario.growth import rates_by_year
from ..scenario.units import month_index
from .targets import Runs, wilson_interval

__all__ = ["CHECKS", "MARGIN_UNITS", "RULES", "evaluations", "not_assessed", "passed", "two_increases_table"]

#: Per rule: the comparison date ("start_of_year" or "same_date_last_year") and the 两增 checks it makes.
RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "2018": ("same_date_last_year", ("loan_growth", "borrowers")),
    "2019": ("start_of_year", ("loan_growth", "borrowers")),
    "2024": ("start_of_year", ("loan_growth",)),
}
#: The rows of each assessment date: 两增 (all the rule's checks) and each of its checks, 两控 (both halves) and each
#: half.
CHECKS: tuple[str, ...] = ("两增", "loan_growth", "borrowers", "两控", "npl_ratio", "loan_cost")
#: Units of each check's margin, as the metrics' units: a growth, NPL ratio or rate difference is a fraction (0.0288 is
#: 2.88 percentage points), the borrowers' a count of firms.
MARGIN_UNITS: dict[str, str] = {"loan_growth": "fraction", "borrowers": "firms", "npl_ratio": "fraction", "loan_cost": "fraction"}


def _npl_control_applies(assessment: Assessment, year: int) -> bool:
    """两控 exists from 2019 (in force); a scenario that chooses its rules applies it in every year it assesses
    两增."""
    return year >= 2019 if assessment.rule == "in_force" else assessment.rule_in(year) != "none"


def _reference(basis: str, column: int, calendar_month: int) -> int:
    """The column a 两增 assessment at ``column`` (calendar month ``calendar_month``, 0 = January) compares with:
    the same month a year earlier, or the end of the year before (the start of this year)."""
    return column - 12 if basis == "same_date_last_year" else column - (calendar_month + 1)


def not_assessed(assessment: Assessment, check: str, date: str, first_date: str) -> str | None:
    """Why ``check`` (one of :data:`CHECKS`) is not assessed at the quarter-end ``date`` of a run whose opening
    month is ``first_date`` (the run reaching ``date``), or None when :func:`evaluations` assesses it there."""
    year, calendar_month = divmod(month_index(date), 12)
    column = month_index(date) - month_index(first_date)
    if column < 1:
        return f"{date} is not a simulated month"
    if check in ("两增", "loan_growth", "borrowers"):
        rule = assessment.rule_in(year)
        if rule not in RULES:
            return f"两增 has no numeric test in {year} (rule '{rule}')"
        basis, checks = RULES[rule]
        if check != "两增" and check not in checks:
            return f"the {rule} rule of 两增 does not check {check}"
        if _reference(basis, column, calendar_month) < 0:
            return f"its comparison date lies before the run's opening ({first_date})"
        return None
    if not _npl_control_applies(assessment, year):
        return f"两控 is not assessed in {year}"
    if check == "loan_cost":
        if not assessment.loan_cost:
            return "assessment.loan_cost is false"
        if column - calendar_month - 12 < 1:
            return f"the whole year before {year} must lie inside the run"
    return None


def passed(results: Runs, check: str, bank: str, date: str) -> np.ndarray:
    """Whether ``bank`` (or "all") passes ``check`` at ``date`` on each path, shape (paths,) (the check assessed
    there, see :func:`not_assessed`)."""
    for _, _, label, name, _, ok, _ in evaluations(results, entities=(bank,)):
        if label == date and name == check:
            return ok
    raise ValueError(f"{check} is not assessed for {bank} at {date}")


def evaluations(results: Runs, entities: tuple[str, ...] | None = None) -> Iterator[tuple[str, int, str, str, str, np.ndarray, np.ndarray | None]]:
    """Every test on every path: ``(bank, year, date, check, rule, passed, margin)`` per bank (and "all"; or only
    ``entities``), assessment date and check, ``passed`` and ``margin`` of shape (paths,) (``margin`` None for the
    combined 两增 and 两控 checks; see :meth:`creditsim.Results.two_increases` for the units)."""
    s = results.scenario
    first = month_index(results.dates[0])
    years = (first + np.arange(len(results.dates))) // 12
    other_npl = {bank: rates_by_year(s.banks[bank].other_npl_ratio, years) * (results.values("all_loans_balance", bank) - results.values("balance", bank))
                 for bank in s.bank_names}
    for entity in results.banks if entities is None else entities:
        balance, all_loans = results.values("balance", entity), results.values("all_loans_balance", entity)
        borrowers = results.values("borrowers", entity)
        inclusive_npl = results.values("npl_ratio", entity)
        disbursed, interest = results.values("disbursed", entity), results.values("disbursed_interest", entity)
        with np.errstate(invalid="ignore", divide="ignore"):
            outside = sum(other_npl.values()) if entity == "all" else other_npl[entity]
            overall_npl = (np.nan_to_num(inclusive_npl * balance) + outside) / all_loans
        for column, label in enumerate(results.dates):
            year, calendar_month = divmod(first + column, 12)
            if column == 0 or (calendar_month + 1) % 3:
                continue  # quarter-ends (and so year-ends) inside the simulated months
            rule = s.assessment.rule_in(year)
            if rule in RULES:
                basis, checks = RULES[rule]
                reference = _reference(basis, column, calendar_month)
                if reference >= 0:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        margins = {
                            "loan_growth": (balance[:, column] / balance[:, reference] - 1) - (all_loans[:, column] / all_loans[:, reference] - 1),
                            "borrowers": borrowers[:, column] - borrowers[:, reference],
                        }
                        passed = {check: margins[check] >= 0 for check in checks}
                    yield entity, year, label, "两增", rule, np.logical_and.reduce(list(passed.values())), None
                    for check in checks:
                        yield entity, year, label, check, rule, passed[check], margins[check]
            if _npl_control_applies(s.assessment, year):
                margins = {"npl_ratio": overall_npl[:, column] + s.assessment.npl_margin - inclusive_npl[:, column]}
                start = column - calendar_month  # the column of this year's January
                if s.assessment.loan_cost and start - 12 >= 1:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        before = _average_rate(interest, disbursed, start - 12, start)
                        margins["loan_cost"] = before - _average_rate(interest, disbursed, start, column + 1)
                with np.errstate(invalid="ignore"):
                    passed = {check: margin > 0 if check == "loan_cost" else margin >= 0 for check, margin in margins.items()}
                yield entity, year, label, "两控", rule, np.logical_and.reduce(list(passed.values())), None
                for check in margins:
                    yield entity, year, label, check, rule, passed[check], margins[check]


def _average_rate(interest: np.ndarray, disbursed: np.ndarray, first: int, end: int) -> np.ndarray:
    """The amount-weighted average rate of the loans paid out in columns ``first`` … ``end − 1``, shape (paths,) (NaN
    without lending)."""
    lent = disbursed[:, first:end].sum(axis=1)
    return np.where(lent > 0, interest[:, first:end].sum(axis=1) / lent, np.nan)


def two_increases_table(results: Runs) -> pd.DataFrame:
    """Probability of passing each test, per bank (and "all"), assessment date and check (see
    :meth:`creditsim.Results.two_increases`)."""
    rows = [_row(*evaluation) for evaluation in evaluations(results)]
    columns = ["bank", "year", "date", "check", "rule", "probability", "ci_low", "ci_high", "median_margin", "margin_unit"]
    return pd.DataFrame(rows, columns=columns)


def _row(bank: str, year: int, date: str, check: str, rule: str, passed: np.ndarray, margin: np.ndarray | None) -> dict[str, object]:
    k, n = int(passed.sum()), passed.shape[0]
    low, high = wilson_interval(k, n)
    median = float(np.nanmedian(margin)) if margin is not None and not np.isnan(margin).all() else np.nan
    unit = MARGIN_UNITS.get(check, "")
    return {"bank": bank, "year": year, "date": date, "check": check, "rule": rule, "probability": k / n, "ci_low": float(low),
            "ci_high": float(high), "median_margin": median, "margin_unit": unit}
