"""The monthly metrics creditsim reports: one table, used by the engine, the results and the metric reference (docs/reference/metrics.md).

Stocks are measured at the end of a month, flows over the month. Each metric has a scope: bank metrics are
reported per bank, guarantor metrics per guarantee institution, re-guarantor metrics per re-guarantor, each
also summed into the aggregate ``"all"`` (ratios are recomputed from the sums); population metrics describe
the firm population and are reported for ``"all"`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["BANK_METRICS", "METRICS", "POPULATION_METRICS", "SCOPES", "SCOPE_METRICS", "Metric", "entities", "metric", "metric_table_markdown", "ratio_values"]


@dataclass(frozen=True)
class Metric:
    """One reported quantity."""

    name: str
    unit: str
    kind: Literal["stock", "flow", "ratio"]
    scope: Literal["bank", "guarantor", "reguarantor", "pool", "population"]
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
    Metric("disbursed_interest", "CNY", "flow", "bank", "A year's interest on the loans paid out in the month at their rates (Σ amount × annual rate): with disbursed it gives new_loan_rate."),
    Metric("new_loan_rate", "fraction", "ratio", "bank", "disbursed_interest / disbursed: the average annual rate of the loans paid out in the month, weighted by amount (新发放贷款利率; NaN without lending)."),
    Metric("credit_loan_disbursed", "CNY", "flow", "bank", "Credit (信用, unsecured) loans paid out in the month."),
    Metric("credit_loan_balance", "CNY", "stock", "bank", "Outstanding credit (信用) loans, performing and non-performing."),
    Metric("all_loans_balance", "CNY", "stock", "bank", "All the bank's loans (各项贷款): the loans outside the inclusive book on their growth path plus balance."),
    Metric("small_micro_balance", "CNY", "stock", "bank", "All small-micro loans (小微企业贷款): balance plus the small-micro loans outside the inclusive book on their growth path (banks.NAME.small_micro_outside)."),
    Metric("inclusive_share", "fraction", "ratio", "bank", "balance / all_loans_balance: the inclusive book's share of all loans; it rises over a year exactly when inclusive loans grow faster than all loans (两增's growth clause)."),
    Metric("applications", "firms", "flow", "bank", "Loan applications from firms without a loan in the month (organic and campaign)."),
    Metric("approvals", "firms", "flow", "bank", "Applications approved (new borrowers) in the month."),
    Metric("approval_rate", "fraction", "ratio", "bank", "approvals / applications: the share of applications from firms without a loan that are approved (申贷获得率 of new borrowers; NaN without applications)."),
    Metric("reborrow_declined", "loans", "flow", "bank", "Maturing loans not re-lent because the PD the bank now believes the firm has is above its appetite."),
    Metric("reborrowed_uncovered", "CNY", "flow", "bank", "Loans re-lent or renewed to a firm the bank approved only because of cover, made without that cover because its instrument had no room for them or the borrower declined the guarantee at its price (docs/explanation/model.md §1)."),
    Metric("graduated", "firms", "flow", "bank", "Borrowers that left the inclusive book in the month because their line passed the inclusive limit."),
    Metric("first_time_borrowers", "firms", "flow", "bank", "New borrowers that never borrowed before (首贷户) in the month."),
    Metric("first_loan_amount", "CNY", "flow", "bank", "First loans (首贷) paid out in the month."),
    Metric("small_micro_first_loan_amount", "CNY", "flow", "bank", "First loans to 首贷户 as the 首贷金额 statistic counts them, small-micro loans above the inclusive limit included: first_loan_amount plus the first loans outside the inclusive book (banks.NAME.first_loans_outside / 12)."),
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
    Metric("deferred", "CNY", "flow", "bank", "Performing balance whose maturity was deferred in the month (延期还本付息, relief.deferrals): the loans stay on the books, unpaid, until their new maturity."),
    Metric("deferred_balance", "CNY", "stock", "bank", "Performing balance under deferral: the loans of borrowers whose last maturity was deferred, until they fall due again."),
    Metric("relief_disbursed", "CNY", "flow", "bank", "First loans paid out in the month to borrowers approved through relief lending (relief.lending); included in disbursed."),
    Metric("growth_shortfall", "CNY", "stock", "bank", "How far the bank's balance was behind the pace of its growth target (banks.NAME.growth_target, or 两增's yardstick with pressure.yardstick) at the start of the month: the shortfall that set its pressure (0 when on pace or without a target)."),
    Metric("outreach_applications", "firms", "flow", "bank", "Applications the bank sought in the month because it was behind its growth target (pressure.outreach); included in applications."),
    Metric("outreach_approvals", "firms", "flow", "bank", "Outreach applications approved in the month (new borrowers); included in approvals."),
    Metric("bridge_cost", "CNY", "flow", "bank", "Cost of bridge money (倒贷) borrowed by liquidity-stressed firms to repay at maturity."),
    Metric("liquidity_defaults", "loans", "flow", "bank", "Loans that defaulted at maturity because a solvent firm could not repay on time."),
    Metric("cover_dependent_approvals", "firms", "flow", "bank", "New borrowers approved only because a guarantee or pool covers part of the loss: believed PD × (1 − cover share) within the bank's appetite."),
    Metric("cover_denied", "firms", "flow", "bank", "Applicants the bank would approve with cover but whose loans found no guarantor or pool with room."),
    Metric("guaranteed_disbursed", "CNY", "flow", "bank", "Guaranteed loans paid out in the month (with a guarantor's cover)."),
    Metric("guarantee_declined", "loans", "flow", "bank", "Guaranteed loans offered whose borrowers declined the guarantee at its all-in price: made as the bank's without_guarantee product (collateral or credit), or not at all for a firm that needed the cover."),
    Metric("guarantee_unavailable", "loans", "flow", "bank", "Loans meant to be guaranteed that found no guarantor with capacity (leverage cap, capital floor, single-borrower cap): made as the bank's without_guarantee product (collateral or credit)."),
    Metric("interest_subsidy", "CNY", "flow", "bank", "Interest on the bank's eligible loans paid by government in the month (贷款贴息); included in interest_income."),
    Metric("interest_subsidy_unfunded", "CNY", "flow", "bank", "Subsidy due in the month beyond the annual budget, paid instead by the borrowers."),
    Metric("net_loss", "CNY", "flow", "bank", "Net credit loss of the bank's loans resolved in the month: defaulted balance less all recoveries, recognised at write-off."),
    Metric("loss_bank", "CNY", "flow", "bank", "The bank's share of net_loss (its write-offs: the uncovered share of the loss and any claim a guarantor could not pay)."),
    Metric("guarantee_outstanding", "CNY", "stock", "guarantor", "Outstanding guarantee liability: coverage × the balance of the performing loans it guarantees."),
    Metric("guarantee_principal", "CNY", "stock", "guarantor", "Balance of the performing loans it guarantees (担保余额 by loan amount): the base of its fee."),
    Metric("guarantee_issued", "CNY", "flow", "guarantor", "Guarantee liability taken on in the month."),
    Metric("guarantee_fees", "CNY", "flow", "guarantor", "Guarantee fees earned in the month (fee_rate / 12 × guarantee_principal at month end: 担保费 is charged on the loan amount guaranteed), borrowers' and government's parts together."),
    Metric("guarantee_fee_subsidy", "CNY", "flow", "guarantor", "The part of guarantee_fees paid by government."),
    Metric("guarantee_fee_rate", "fraction", "ratio", "guarantor", "Annualised average fee over the book: 12 × guarantee_fees / guarantee_principal (the fee is charged on the loan amount guaranteed)."),
    Metric("guarantee_claims", "CNY", "flow", "guarantor", "Claims (代偿) paid to banks in the month."),
    Metric("guarantee_unpaid_claims", "CNY", "flow", "guarantor", "Claims due in the month that the guarantor could not pay (insolvency); the banks bear them."),
    Metric("guarantee_recoveries", "CNY", "flow", "guarantor", "The guarantor's own share of recoveries (追偿) received in the month."),
    Metric("reguarantee_fees", "CNY", "flow", "guarantor", "Re-guarantee fees paid to re-guarantors in the month."),
    Metric("reguarantee_claims", "CNY", "flow", "guarantor", "Claims reimbursed to the guarantor by its re-guarantors in the month."),
    Metric("guarantor_costs", "CNY", "flow", "guarantor", "Operating costs in the month (cost_rate / 12 × outstanding liability)."),
    Metric("capital_injections", "CNY", "flow", "guarantor", "Capital injected by government in the month (scheduled and top-ups)."),
    Metric("guarantor_capital", "CNY", "stock", "guarantor", "Net assets at month end."),
    Metric("guarantee_leverage", "ratio", "ratio", "guarantor", "guarantee_outstanding / guarantor_capital (NaN when capital is 0)."),
    Metric("loss_guarantor", "CNY", "flow", "guarantor", "The guarantor's share of net_loss of loans resolved in the month."),
    Metric("reguarantor_capital", "CNY", "stock", "reguarantor", "Net assets of the re-guarantor at month end."),
    Metric("reguarantee_fees_received", "CNY", "flow", "reguarantor", "Re-guarantee fees received in the month."),
    Metric("reguarantee_claims_paid", "CNY", "flow", "reguarantor", "Claims reimbursed to guarantors in the month."),
    Metric("reguarantee_unpaid", "CNY", "flow", "reguarantor", "Reimbursements due that the re-guarantor could not pay; its guarantors bear them until its later recoveries set them off (reguarantee_set_off)."),
    Metric("reguarantee_set_off", "CNY", "flow", "reguarantor", "Of the re-guarantor's share of recoveries due in the month, what its guarantors kept against reimbursements it had left unpaid (the loss moves back to the re-guarantor)."),
    Metric("reguarantor_recoveries", "CNY", "flow", "reguarantor", "The re-guarantor's share of recoveries received in the month, after the set-off."),
    Metric("loss_reguarantor", "CNY", "flow", "reguarantor", "The re-guarantor's share of net_loss of loans resolved in the month."),
    Metric("pool_balance", "CNY", "stock", "pool", "The pool's balance at month end."),
    Metric("pool_covered", "CNY", "stock", "pool", "Performing balance of the loans the pool covers."),
    Metric("pool_contributions", "CNY", "flow", "pool", "Money paid into the pool in the month (January budgets and top-ups; the start balance is the opening)."),
    Metric("pool_contributions_government", "CNY", "flow", "pool", "The government's part of pool_contributions."),
    Metric("pool_contributions_guarantor", "CNY", "flow", "pool", "The guarantors' part of pool_contributions."),
    Metric("pool_contributions_bank", "CNY", "flow", "pool", "The partner banks' part of pool_contributions."),
    Metric("pool_payouts", "CNY", "flow", "pool", "Compensation paid to banks in the month."),
    Metric("pool_unpaid", "CNY", "flow", "pool", "Compensation due that the pool could not pay (balance or annual cap); the banks bear it."),
    Metric("pool_suspended", "flag", "stock", "pool", "1 while the pool gives no new cover (balance below its floor, or covered NPL ratio above its threshold)."),
    Metric("loss_pool", "CNY", "flow", "pool", "The pool's share of net_loss (its payouts)."),
    Metric("loss_government", "CNY", "flow", "pool", "The government's part of loss_pool, by its contribution share (a breakdown, not a further party)."),
    Metric("firms", "firms", "stock", "population", "Operating firms in the inclusive population: firms without a loan plus performing borrowers (graduated firms have left it)."),
    Metric("unbanked_firms", "firms", "stock", "population", "Operating firms without a loan: 无贷户 and former borrowers."),
    Metric("never_borrowed_firms", "firms", "stock", "population", "Firms without a loan that never borrowed (无贷户), including those declined on their thin file."),
    Metric("firm_entries", "firms", "flow", "population", "Firms registered in the month (新增小微企业)."),
    Metric("firm_exits", "firms", "flow", "population", "Firms without a loan that closed in the month."),
    Metric("firm_failures", "firms", "flow", "population", "Firms that defaulted in the month, with or without a loan."),
    Metric("unmet_applications", "firms", "flow", "population", "Applications the demand rate asked for beyond the firms without a loan (the pool ran dry)."),
    Metric("campaign_reached", "firms", "flow", "population", "Firms that never borrowed reached by the campaign in the month."),
    Metric("campaign_shortfall", "firms", "flow", "population", "Reach the campaign planned beyond the firms left on the 无贷户 list."),
    Metric("fiscal_cost", "CNY", "flow", "population", "Government spending in the month: guarantee fee subsidies, capital injections, its pool contributions and interest subsidies."),
)

#: The scopes, in the order results store them; all but "population" have named entities.
SCOPES: tuple[str, ...] = ("bank", "guarantor", "reguarantor", "pool", "population")
#: Metric names of each scope, in table order.
SCOPE_METRICS: dict[str, tuple[str, ...]] = {scope: tuple(m.name for m in METRICS if m.scope == scope) for scope in SCOPES}
BANK_METRICS: tuple[str, ...] = SCOPE_METRICS["bank"]
POPULATION_METRICS: tuple[str, ...] = SCOPE_METRICS["population"]
_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``."""
    return _BY_NAME[name]


def entities(scope: str, scenario) -> list[str]:
    """The named entities of a scope in a scenario (empty for the population, which has only "all")."""
    if scope == "bank":
        return scenario.bank_names
    if scope == "guarantor":
        return list(scenario.guarantors)
    if scope == "reguarantor":
        return list(scenario.reguarantors)
    if scope == "pool":
        return list(scenario.pools)
    return []


def ratio_values(scope: str, get: Callable[[str], np.ndarray], scenario) -> dict[str, np.ndarray]:
    """The ratio metrics of a scope from its additive ones (the same formulas per entity and for "all").

    Parameters
    ----------
    scope : str
        One of :data:`SCOPES`.
    get : callable
        ``get(name)`` returns the values of an additive metric of the scope.
    scenario : Scenario
        For the reporting rules (whether restructured renewals count in the reported NPL ratio).
    """
    if scope != "bank":
        return _guarantee_ratios(get) if scope == "guarantor" else {}
    restructured_reported = scenario.restructured_reported
    with np.errstate(invalid="ignore", divide="ignore"):
        balance, npl, restructured = get("balance"), get("npl_balance"), get("restructured_balance")
        approvals = get("approvals")
        return {
            "npl_ratio": np.where(balance > 0, (npl + restructured if restructured_reported else npl) / balance, np.nan),
            "npl_ratio_recognised": np.where(balance > 0, (npl + restructured) / balance, np.nan),
            "first_time_share": np.where(approvals > 0, get("first_time_borrowers") / approvals, np.nan),
            "approval_rate": np.where(get("applications") > 0, approvals / get("applications"), np.nan),
            "new_loan_rate": np.where(get("disbursed") > 0, get("disbursed_interest") / get("disbursed"), np.nan),
            "inclusive_share": np.where(get("all_loans_balance") > 0, balance / get("all_loans_balance"), np.nan),
        }


def _guarantee_ratios(get: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        outstanding, capital, principal = get("guarantee_outstanding"), get("guarantor_capital"), get("guarantee_principal")
        return {
            "guarantee_fee_rate": np.where(principal > 0, 12 * get("guarantee_fees") / principal, np.nan),
            "guarantee_leverage": np.where(capital > 0, outstanding / capital, np.nan),
        }


def metric_table_markdown() -> str:
    """The metric table as Markdown (docs/reference/metrics.md)."""
    rows = ["| metric | unit | kind | scope | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.unit} | {m.kind} | {m.scope} | {m.meaning} |" for m in METRICS]
    return "\n".join(rows)
