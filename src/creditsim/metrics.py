"""The monthly metrics creditsim reports: one table, used by the engine, the results and the README.

Stocks are measured at the end of a month, flows over the month. Bank metrics are reported per bank and
summed into the aggregate ``"all"`` (ratios are recomputed from the sums); population metrics describe the
firm population and are reported for ``"all"`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Metric", "METRICS", "BANK_METRICS", "POPULATION_METRICS", "metric_table_markdown"]


@dataclass(frozen=True)
class Metric:
    """One reported quantity."""

    name: str
    unit: str
    kind: Literal["stock", "flow", "ratio"]
    scope: Literal["bank", "population"]
    meaning: str


METRICS: tuple[Metric, ...] = (
    Metric("balance", "CNY", "stock", "bank", "Outstanding inclusive loans, performing and non-performing."),
    Metric("borrowers", "firms", "stock", "bank", "Firms with an outstanding balance (有贷款余额的户数), non-performing ones until written off."),
    Metric("loans", "loans", "stock", "bank", "Outstanding loans, non-performing ones until written off; a firm may hold several."),
    Metric("disbursed", "CNY", "flow", "bank", "New loans paid out in the month (first loans and re-borrowing)."),
    Metric("repaid", "CNY", "flow", "bank", "Principal repaid at maturity in the month."),
    Metric("defaulted", "CNY", "flow", "bank", "Balance that turned non-performing in the month."),
    Metric("defaults", "loans", "flow", "bank", "Loans that defaulted in the month."),
    Metric("recovered", "CNY", "flow", "bank", "Recoveries on non-performing loans in the month."),
    Metric("written_off", "CNY", "flow", "bank", "Non-performing balance written off in the month."),
    Metric("npl_balance", "CNY", "stock", "bank", "Non-performing balance (defaulted, not yet recovered or written off)."),
    Metric("npl_ratio", "fraction", "ratio", "bank", "npl_balance / balance (NaN when the balance is 0)."),
    Metric("interest_income", "CNY", "flow", "bank", "Interest accrued in the month on the performing balance at the start of the month."),
    Metric("credit_loan_disbursed", "CNY", "flow", "bank", "Credit (信用, unsecured) loans paid out in the month."),
    Metric("credit_loan_balance", "CNY", "stock", "bank", "Outstanding credit (信用) loans, performing and non-performing."),
    Metric("all_loans_balance", "CNY", "stock", "bank", "All the bank's loans (各项贷款): the loans outside the inclusive book on their growth path plus balance."),
    Metric("applications", "firms", "flow", "bank", "Loan applications from firms without a loan in the month."),
    Metric("approvals", "firms", "flow", "bank", "Applications approved (new borrowers) in the month."),
    Metric("graduated", "firms", "flow", "bank", "Borrowers that left the inclusive book in the month because their line passed the inclusive limit."),
    Metric("firms", "firms", "stock", "population", "Operating firms in the inclusive population: firms without a loan plus performing borrowers (graduated firms have left it)."),
    Metric("unbanked_firms", "firms", "stock", "population", "Operating firms without a loan: 无贷户 and former borrowers."),
    Metric("never_borrowed_firms", "firms", "stock", "population", "Firms without a loan that never borrowed in the scenario (无贷户; at the start every firm without a loan counts as one)."),
    Metric("firm_entries", "firms", "flow", "population", "Firms registered in the month (新增小微企业)."),
    Metric("firm_exits", "firms", "flow", "population", "Firms without a loan that closed in the month."),
    Metric("firm_failures", "firms", "flow", "population", "Firms that defaulted in the month, with or without a loan."),
    Metric("unmet_applications", "firms", "flow", "population", "Applications the demand rate asked for beyond the firms without a loan (the pool ran dry)."),
)

BANK_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.scope == "bank")
POPULATION_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.scope == "population")
_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``."""
    return _BY_NAME[name]


def metric_table_markdown() -> str:
    """The metric table as Markdown (README section 'Metrics')."""
    rows = ["| metric | unit | kind | scope | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.unit} | {m.kind} | {m.scope} | {m.meaning} |" for m in METRICS]
    return "\n".join(rows)
