"""The monthly metrics creditsim reports: one table, used by the engine, the results and the README.

Stocks are measured at the end of a month, flows over the month. Bank metrics are reported per bank and
summed into the aggregate ``"all"`` (ratios are recomputed from the sums); population metrics describe the
firm population and are reported for ``"all"`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["BANK_METRICS", "METRICS", "POPULATION_METRICS", "Metric", "metric", "metric_table_markdown", "ratio_values"]


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
    Metric("disbursed", "CNY", "flow", "bank", "New loans paid out in the month: first loans, re-borrowing and renewals."),
    Metric("repaid", "CNY", "flow", "bank", "Principal repaid at maturity in the month, including loans repaid by a renewal."),
    Metric("defaulted", "CNY", "flow", "bank", "Balance that turned non-performing in the month."),
    Metric("defaults", "loans", "flow", "bank", "Loans that defaulted in the month (solvency and liquidity defaults)."),
    Metric("recovered", "CNY", "flow", "bank", "Recoveries on non-performing loans in the month."),
    Metric("written_off", "CNY", "flow", "bank", "Non-performing balance written off in the month."),
    Metric("npl_balance", "CNY", "stock", "bank", "Non-performing balance (defaulted, not yet recovered or written off)."),
    Metric("npl_ratio", "fraction", "ratio", "bank", "NPL ratio as reported: npl_balance / balance, plus restructured_balance when renewal.distressed_classification is 'restructured' (NaN when the balance is 0)."),
    Metric("npl_ratio_recognised", "fraction", "ratio", "bank", "NPL ratio with every renewal to a distressed firm recognised: (npl_balance + restructured_balance) / balance."),
    Metric("interest_income", "CNY", "flow", "bank", "Interest accrued in the month on the performing balance at the start of the month."),
    Metric("credit_loan_disbursed", "CNY", "flow", "bank", "Credit (信用, unsecured) loans paid out in the month."),
    Metric("credit_loan_balance", "CNY", "stock", "bank", "Outstanding credit (信用) loans, performing and non-performing."),
    Metric("all_loans_balance", "CNY", "stock", "bank", "All the bank's loans (各项贷款): the loans outside the inclusive book on their growth path plus balance."),
    Metric("applications", "firms", "flow", "bank", "Loan applications from firms without a loan in the month (organic and campaign)."),
    Metric("approvals", "firms", "flow", "bank", "Applications approved (new borrowers) in the month."),
    Metric("reborrow_declined", "loans", "flow", "bank", "Maturing loans not re-lent because the PD the bank now believes the firm has is above its appetite."),
    Metric("graduated", "firms", "flow", "bank", "Borrowers that left the inclusive book in the month because their line passed the inclusive limit."),
    Metric("first_time_borrowers", "firms", "flow", "bank", "New borrowers that never borrowed before (首贷户) in the month."),
    Metric("first_loan_amount", "CNY", "flow", "bank", "First loans (首贷) paid out in the month."),
    Metric("first_time_borrower_lending", "CNY", "flow", "bank", "All lending in the month to firms that became 首贷户 within the scenario (first loans, re-borrowing, renewals)."),
    Metric("first_time_share", "fraction", "ratio", "bank", "first_time_borrowers / approvals: the share of 首贷户 among new borrowers (NaN without approvals)."),
    Metric("first_time_defaults", "loans", "flow", "bank", "Loans of firms that became 首贷户 within the scenario that defaulted in the month."),
    Metric("first_time_defaulted", "CNY", "flow", "bank", "Balance of those loans."),
    Metric("first_time_expected_defaults_believed", "firms", "flow", "bank", "Sum of the annual PDs the banks believe the month's 首贷户 have: the defaults a year they expect."),
    Metric("first_time_expected_defaults_true", "firms", "flow", "bank", "Sum of the true annual PDs of the month's 首贷户 (thin files: it can exceed the believed sum)."),
    Metric("campaign_applications", "firms", "flow", "bank", "Applications from firms reached by the first-loan campaign."),
    Metric("campaign_approvals", "firms", "flow", "bank", "Campaign applications approved (each a 首贷户)."),
    Metric("renewals", "loans", "flow", "bank", "Loans renewed without principal repayment (无还本续贷) in the month."),
    Metric("renewed", "CNY", "flow", "bank", "Balance renewed in the month (also counted in disbursed and repaid)."),
    Metric("renewal_balance", "CNY", "stock", "bank", "Performing balance of loans renewed without principal repayment (无还本续贷余额)."),
    Metric("restructured_balance", "CNY", "stock", "bank", "Performing balance of renewals to distressed firms, which will default before they mature (evergreening)."),
    Metric("bridge_cost", "CNY", "flow", "bank", "Cost of bridge money (倒贷) borrowed by liquidity-stressed firms to repay at maturity."),
    Metric("liquidity_defaults", "loans", "flow", "bank", "Loans that defaulted at maturity because a solvent firm could not repay on time."),
    Metric("firms", "firms", "stock", "population", "Operating firms in the inclusive population: firms without a loan plus performing borrowers (graduated firms have left it)."),
    Metric("unbanked_firms", "firms", "stock", "population", "Operating firms without a loan: 无贷户 and former borrowers."),
    Metric("never_borrowed_firms", "firms", "stock", "population", "Firms without a loan that never borrowed (无贷户), including those declined on their thin file."),
    Metric("firm_entries", "firms", "flow", "population", "Firms registered in the month (新增小微企业)."),
    Metric("firm_exits", "firms", "flow", "population", "Firms without a loan that closed in the month."),
    Metric("firm_failures", "firms", "flow", "population", "Firms that defaulted in the month, with or without a loan."),
    Metric("unmet_applications", "firms", "flow", "population", "Applications the demand rate asked for beyond the firms without a loan (the pool ran dry)."),
    Metric("campaign_reached", "firms", "flow", "population", "Firms that never borrowed reached by the campaign in the month."),
    Metric("campaign_shortfall", "firms", "flow", "population", "Reach the campaign planned beyond the firms left on the 无贷户 list."),
)

BANK_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.scope == "bank")
POPULATION_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.scope == "population")
_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``."""
    return _BY_NAME[name]


def ratio_values(get: Callable[[str], np.ndarray], restructured_reported: bool) -> dict[str, np.ndarray]:
    """The ratio metrics from the additive ones (the same formulas per bank and for the aggregate).

    Parameters
    ----------
    get : callable
        ``get(name)`` returns the values of an additive bank metric.
    restructured_reported : bool
        Renewals to distressed firms are reported as restructured, so the reported NPL ratio counts them.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        balance, npl, restructured = get("balance"), get("npl_balance"), get("restructured_balance")
        approvals = get("approvals")
        return {
            "npl_ratio": np.where(balance > 0, (npl + restructured if restructured_reported else npl) / balance, np.nan),
            "npl_ratio_recognised": np.where(balance > 0, (npl + restructured) / balance, np.nan),
            "first_time_share": np.where(approvals > 0, get("first_time_borrowers") / approvals, np.nan),
        }


def metric_table_markdown() -> str:
    """The metric table as Markdown (README section 'Metrics')."""
    rows = ["| metric | unit | kind | scope | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.unit} | {m.kind} | {m.scope} | {m.meaning} |" for m in METRICS]
    return "\n".join(rows)
