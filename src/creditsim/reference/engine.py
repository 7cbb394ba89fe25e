"""The reference engine: the model of :mod:`creditsim.model` written the obvious way, one loan at a time.

This module is the specification of the core lending model in code. It is slow on purpose: every loan is a
SimPy process that lives from its origination to its end, every firm is a plain Python object, and every
decision is a scalar draw. The fast engine must give the same *distributions* of every metric listed in
:data:`MODELLED`; ``tests/test_reference.py`` checks that it does.

Units
-----
Time is in months: month t (1..M) is the interval (t − 1, t] of the SimPy clock, and the month closes (its
metrics are recorded) at time t exactly; month 0 is the opening book. Money is held in whole fen (0.01 CNY,
see :data:`FEN`) and reported in CNY. PDs are annual; hazards are monthly.

The model
---------
*Firms.* A firm belongs to a segment and a credit grade (its true annual PD). Firms without a loan are counts
by (segment, grade, state) — never borrowed (无贷户), former borrower, former first-time borrower (首贷户 that
repaid), or never borrowed and declined on its thin file. A borrower is a :class:`Firm` object holding its
bank, its credit line (单户授信: the sum of its loans), the PD its bank believes it has, and its loans.

*Correlated defaults.* The systematic factor Z is drawn once per factor period (1, 3 or 12 months, standard
normal); :meth:`ReferenceSimulation._hazards` turns it into each cohort's conditional monthly hazard h_c(t).
Every month each firm draws a Bernoulli(h_c(t)): a borrower that was a borrower at the start of the month
defaults when it succeeds, and so does a firm without a loan (counted per cell: a binomial of the cell's count).

*Loans.* A loan is a bullet loan: principal repaid at maturity. Its process sleeps until the maturity phase of
its maturity month, unless its firm defaults first (the firm interrupts it). At maturity the firm settles all
its loans at once (they share one term, so they mature together):

0. in a deferral window (``relief.deferrals``, 延期还本付息) that admits the firm (bank, segment, believed PD), its
   loans are deferred with the window's uptake: they stay as they are and fall due ``months`` later, and a default
   that comes meanwhile makes the firm insolvent (postponed, as when masked) until then; nothing else happens;
1. each loan is wanted again with probability ``demand.reborrow_prob``; a wanted loan would grow to
   ``round(A (1 + line_growth)^(term / 12))``; a solvent firm whose line would then pass the inclusive limit
   graduates instead (it repays everything and leaves the inclusive book);
2. a firm that wants a loan again, or that is insolvent, asks for renewal (无还本续贷); its bank takes renewal up
   for the firm with probability ``renewal_uptake``, and each loan that the rules allow (segment, date, product,
   term, consecutive renewals, months on book, believed PD: see :class:`creditsim.scenario.Renewal`) is renewed:
   a new loan of the same amount, term and product repays it;
3. an insolvent firm (one whose default was hidden by a renewal) that must repay any loan defaults on all of
   them now; otherwise every maturing loan is repaid (a renewal repays it with the new loan);
4. a firm that repaid a loan has shown its bank one more repayment, and its believed PD is recomputed;
5. wanted loans that were not renewed are re-lent when the bank believes the firm's PD within its ``max_pd``
   (a new term per firm and a new product per loan); the firm's line follows its loans; these loans and the
   renewals are made once every loan maturing in the month has ended;
6. a firm left without a loan joins the firms without a loan (or has graduated).

*Evergreening.* While a firm's current loans came from a maturity at which it renewed a loan, its default is
hidden: the Bernoulli success makes the firm insolvent, and the default is recognised when the loans fall due
and cannot all be renewed. ``restructured_balance`` is the balance of such masked loans of firms whose (true)
default comes before the loan matures; it needs hindsight, so it is filled in when the path is complete.

*Cover.* A loan of the guaranteed product gets the first guarantor (in scenario order) that takes it, else a new
loan is made as the bank's ``without_guarantee`` product (collateral or credit) and an opening loan stays
guaranteed (by a party the scenario does not model); a loan without a guarantee gets the first pool that takes it. A guarantor or pool takes
a loan when it fits in the room left under its leverage limit; one that does not fit is refused, and a later,
smaller loan may still be taken. Loans reach them in this order each month: the month's new borrowers (in
order of segment, grade and state), then, once every maturing loan has ended, the renewals and re-borrowing.

*Defaults and losses.* A defaulted loan of amount A turns non-performing. Its recovery R = round(A (1 − LGD))
(LGD the product's mean, or a Beta draw with that mean and ``risk.lgd_sd``) comes ``recovery_lag_months``
later; the rest is written off ``write_off_months`` (those of the default's year) after the default. A guaranteed loan's guarantor pays the
claim C = round(c A) after its claim lag (pro rata with the month's other claims when its capital falls short;
the bank writes off what is unpaid), takes round(c R) of the recovery, and loses what it paid less that. A loan
covered by a risk pool asks the pool for min(round(s (A − R)), cap) at write-off; the pool pays within its
balance and annual cap (pro rata), and what it pays is a recovery that reduces the bank's write-off.

*Order of events within month t* (the engine's, :func:`creditsim.model.month.month`), each at its own moment
``t − 1 + phase / 16`` of the clock (see :class:`Phase`):

1. ``OPEN``: institutions start the month (a pool's January budget and top-up); interest accrues on the
   performing balance at the start of the month;
2. ``POPULATION``: firms register (Poisson per segment, grade by share), firms without a loan fail (hazard of
   month t) and then close (``exit_rate``);
3. ``APPLICATIONS``: firms without a loan apply (Poisson per segment, drawn without replacement), each to a bank
   by share, which approves it when the PD it believes the firm has is within its ``max_pd`` (a firm declined on
   its thin file is declined whenever it asks again) — under pressure from its growth targets (``[pressure]``), the
   bank's appetite is raised first and it seeks extra applicants after demand's; approved firms borrow their first
   loans; then relief lending's applicants (``relief.lending``), decided against the window's appetite;
4. ``DEFAULTS``: every borrower that held a loan at the start of the month draws its Bernoulli default; a
   defaulting firm's loans turn non-performing (or, when masked, the firm turns insolvent);
5. ``MATURITIES``: loans that mature this month are settled, firm by firm, as above (steps 1–4 and 6);
6. ``RELENDING``: once every maturing loan has ended, the renewals and re-borrowed loans are made (step 5);
7. ``CLAIMS`` / ``CLAIMS_PAID``: guarantee claims due this month are filed, then each guarantor pays them;
8. ``RESOLUTIONS`` / ``PAYOUTS``: recoveries due this month come in; loans due for write-off ask their pool for
   compensation, each pool pays, and the rest is written off;
9. ``CLOSE``: guarantors book their share of the month's recoveries, earn fees (on the guaranteed principal at month end)
   and pay costs; pools suspend or resume new cover; every metric is recorded.

Scope
-----
Modelled: the opening seasoned book (or a bank's loan tape) and NPL stock, population entries, exits and failures, applications, thin-file beliefs
(``risk.signal_sd``), maturity, repayment, re-borrowing with line growth and graduation, several loans per
borrower, renewal with evergreening, correlated defaults with macro stress, recoveries and write-offs,
guarantees (coverage, eligibility, leverage cap, capital floor, single-borrower cap, claim lag, fees, fee
subsidy, operating costs, pro-rata payment when short of capital), risk pools (eligibility, leverage, payout
share and caps, January budget and top-up, suspension), relief (deferral of principal and relief lending) and policy
pressure (growth targets, the yardstick, appetite and outreach). Not modelled, and refused with a
:class:`~creditsim.errors.ScenarioError` when switched on: the first-loan campaign, liquidity stress, interest
subsidies, re-guarantors, capital injections and top-ups, price-dependent guarantee take-up, and lending that
depends on cover (an applicant the bank would decline alone but approves because a guarantee or pool covers
part of the loss).

Random numbers come from named streams, one per component (:func:`creditsim.reference.streams.stream`), consumed in
order. The fast engine computes each number from a key of its purpose, firm and month instead
(:mod:`creditsim.model.random`), so the two engines share distributions only: with equal seeds their paths, the
systematic factor included, differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import simpy
from scipy.special import ndtr, ndtri

from ..errors import ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, metric, ratio_values
from ..results.results import Results
from ..scenario import FACTOR_MONTHS, PRODUCTS, Deferral, Guarantor, Pool, Scenario, load_scenario
from ..scenario.growth import application_growth, rates_by_year
from ..scenario.loan_tape import OpeningTapes
from ..scenario.opening import DECLINED, FORMER, FORMER_FIRST_TIME, NEVER, POOL_STATES, initial_population, line_parameters
from ..scenario.sampling import sampled, scale_back
from ..scenario.units import month_index
from .streams import stream

__all__ = ["FEN", "MODELLED", "NOT_MODELLED", "Phase", "Firm", "Loan", "GuaranteeFund", "RiskPool", "ReferenceSimulation", "check_supported", "run_task", "simulate"]

#: Fen per CNY: money is kept in whole fen.
FEN = 100.0
_CREDIT, _GUARANTEED = PRODUCTS.index("credit"), PRODUCTS.index("guaranteed")
_NOT_MODELLED_RULE = "is not modelled by the reference engine"

#: The metrics the reference engine reproduces, per scope (money in CNY); every other metric is NaN in its results.
MODELLED: dict[str, tuple[str, ...]] = {
    "bank": (
        "balance", "borrowers", "loans", "disbursed", "repaid", "defaulted", "defaults", "recovered", "written_off", "npl_balance",
        "npl_ratio", "npl_ratio_recognised", "interest_income", "disbursed_interest", "new_loan_rate", "credit_loan_disbursed", "credit_loan_balance", "all_loans_balance", "inclusive_share",
        "applications", "approvals", "approval_rate", "reborrow_declined", "graduated", "first_time_borrowers", "first_loan_amount",
        "first_time_borrower_lending", "first_time_share", "first_time_defaults", "first_time_defaulted",
        "first_time_expected_defaults_believed", "first_time_expected_defaults_true", "renewals", "renewed", "renewal_balance",
        "restructured_balance", "guaranteed_disbursed", "guarantee_unavailable", "net_loss", "loss_bank", "deferred", "deferred_balance",
        "relief_disbursed", "growth_shortfall", "outreach_applications", "outreach_approvals",
    ),
    "guarantor": (
        "guarantee_outstanding", "guarantee_principal", "guarantee_issued", "guarantee_fees", "guarantee_fee_subsidy", "guarantee_fee_rate", "guarantee_claims",
        "guarantee_unpaid_claims", "guarantee_recoveries", "guarantor_costs", "guarantor_capital", "guarantee_leverage", "loss_guarantor",
    ),
    "reguarantor": (),
    "pool": SCOPE_METRICS["pool"],
    "population": ("firms", "unbanked_firms", "never_borrowed_firms", "firm_entries", "firm_exits", "firm_failures", "unmet_applications", "fiscal_cost"),
}
#: The metrics it does not reproduce (NaN in its results), per scope.
NOT_MODELLED: dict[str, tuple[str, ...]] = {scope: tuple(m for m in SCOPE_METRICS[scope] if m not in MODELLED[scope]) for scope in SCOPES}


class Phase(IntEnum):
    """Moments of a month: month t's phase p happens at clock time ``t − 1 + p / 16`` (CLOSE at t exactly)."""

    OPEN = 1
    POPULATION = 2
    APPLICATIONS = 3
    DEFAULTS = 4
    MATURITIES = 5
    RELENDING = 6
    CLAIMS = 7
    CLAIMS_PAID = 8
    RESOLUTIONS = 10
    PAYOUTS = 11
    CLOSE = 16


def at(month: int, phase: Phase) -> float:
    """Clock time of a phase of a month (exact in binary floating point)."""
    return month - 1 + phase / 16


# ================================================================================================ scope
def check_supported(scenario: Scenario) -> None:
    """Refuse the scenario features the reference engine does not model.

    Raises
    ------
    ScenarioError
        ``<field> = <value>: is not modelled by the reference engine`` for the first such feature switched on.
    """
    s = scenario
    if s.campaign.channels:
        raise ScenarioError("campaign.channels", list(s.campaign.channels), _NOT_MODELLED_RULE)
    if s.liquidity.stress_prob > 0:
        raise ScenarioError("liquidity.stress_prob", s.liquidity.stress_prob, _NOT_MODELLED_RULE)
    if s.interest_subsidy is not None:
        raise ScenarioError("interest_subsidy.rate", s.interest_subsidy.rate, _NOT_MODELLED_RULE)
    if s.reguarantors:
        raise ScenarioError("reguarantors", list(s.reguarantors), _NOT_MODELLED_RULE)
    for name, g in s.guarantors.items():
        if g.reguarantee:
            raise ScenarioError(f"guarantors.{name}.reguarantee", dict(g.reguarantee), _NOT_MODELLED_RULE)
        if g.injections:
            raise ScenarioError(f"guarantors.{name}.injections", len(g.injections), _NOT_MODELLED_RULE)
        if g.top_up is not None:
            raise ScenarioError(f"guarantors.{name}.top_up.below", g.top_up.below, _NOT_MODELLED_RULE)
        if g.take_up_elasticity > 0:
            raise ScenarioError(f"guarantors.{name}.take_up_elasticity", g.take_up_elasticity, _NOT_MODELLED_RULE)
    _check_no_cover_dependence(s)


def _check_no_cover_dependence(s: Scenario) -> None:
    """Cover-dependent lending happens when an applicant the bank declines on its own has believed PD × (1 − share)
    within the bank's appetite for a guarantor or pool open to it. It is refused whenever it is possible: with a
    noisy belief (any believed PD can occur) or with a grade above a bank's max_pd that some cover brings within."""
    shares: list[tuple[str, float, Guarantor | Pool]] = [(f"guarantors.{n}", g.coverage, g) for n, g in s.guarantors.items()]
    shares += [(f"pools.{n}", p.payout_share, p) for n, p in s.pools.items() if "credit" in p.products]
    for bank_name, bank in s.banks.items():
        for seg_name, seg in s.firms.segments.items():
            for _, share, inst in shares:
                if share <= 0 or (inst.banks is not None and bank_name not in inst.banks) or (inst.segments is not None and seg_name not in inst.segments):
                    continue
                if s.risk.signal_sd > 0:
                    raise ScenarioError("risk.signal_sd", s.risk.signal_sd, f"{_NOT_MODELLED_RULE} together with guarantees or pools (cover-dependent lending)")
                if any(pd > bank.max_pd and pd * (1 - share) <= bank.max_pd for pd, w in zip(seg.pd, seg.grade_share, strict=True) if w > 0):
                    raise ScenarioError(f"banks.{bank_name}.max_pd", bank.max_pd, f"{_NOT_MODELLED_RULE} (cover-dependent lending to segment {seg_name})")


# ================================================================================================ actors
@dataclass(eq=False, slots=True)
class Firm:
    """A borrower: a firm with at least one performing loan (a plain object; its loans are the processes).

    Attributes
    ----------
    segment, grade, cohort : int
        Segment, credit grade and their flat index ``segment × grades + grade``.
    bank : int
        Its bank (all its loans are with that bank).
    line : float
        Credit line (单户授信), fen: the sum of its performing loans.
    first_time : bool
        It became a borrower in the scenario without ever having borrowed before (首贷户).
    signal : float
        Standard normal draw behind its bank's error about its PD.
    history, repaid : int
        Repaid loans its bank had seen when it became a borrower, and has seen since.
    belief : float
        The annual PD its bank believes it has.
    since : int
        Month of its first loan at its bank (negative for the opening book's long relationships).
    joined : int
        Month it became a borrower: it faces its first default draw as a borrower in the next month.
    loans : list of Loan
        Its performing loans (they share one maturity).
    masked : bool
        Its current loans came from a maturity at which it renewed: a default is hidden until they mature.
    deferred : bool
        Its loans' last maturity was deferred (延期还本付息): a default is postponed until they fall due.
    insolvent : bool
        It has defaulted while masked or deferred.
    default_month : int or None
        Month of its (true) default, recognised or not.
    settled : int
        Last month its maturing loans were settled.
    """

    segment: int
    grade: int
    cohort: int
    bank: int
    line: float
    first_time: bool
    signal: float
    history: int
    belief: float
    since: int
    joined: int
    repaid: int = 0
    loans: list[Loan] = field(default_factory=list)
    masked: bool = False
    deferred: bool = False
    insolvent: bool = False
    default_month: int | None = None
    settled: int = -1


@dataclass(eq=False, slots=True)
class StockCohort:
    """Part of a bank's opening stock of non-performing loans: the loans of one product that defaulted in one month
    before the start.

    Attributes
    ----------
    bank : int
    credit : bool
        Credit loans (counted in the credit-loan balance).
    npl : float
        Its non-performing balance, fen.
    loans : float
        Its loans.
    firms : float
        Its firms (one per loan, but a loan tape's firm with several npl loans counts once).
    """

    bank: int
    credit: bool
    npl: float
    loans: float
    firms: float


@dataclass(eq=False, slots=True)
class Loan:
    """One loan: bullet, fixed rate, with at most one guarantor or one pool covering it.

    Attributes
    ----------
    firm : Firm
    bank, product : int
        Lending bank; index into :data:`creditsim.scenario.PRODUCTS`.
    amount : float
        Principal, whole fen.
    rate : float
        Annual interest rate: the bank's rate + ``rate_per_pd`` × the firm's believed PD when the loan is made.
    term, start, maturity : int
        Term in months, month made, month it falls due (``start + term``; earlier for the seasoned opening book).
    renewals : int
        Consecutive renewals that led to it (0: not a renewal).
    masked : bool
        Made at a maturity at which its firm renewed (see :attr:`Firm.masked`).
    deferred : int
        Months its maturity was deferred in all (``maturity − deferred`` is the maturity agreed when it was made).
    guarantor, pool : int
        Index of the guarantor or pool covering it, -1 for none.
    liability : float
        The guarantor's liability round(coverage × amount), fen (0 without a guarantor).
    npl : float
        Non-performing balance still on the bank's books, fen (after default).
    ended : str
        How it ended: "" while performing, then "repaid", "renewed" or "defaulted".
    process : simpy.Process or None
        Its life.
    """

    firm: Firm
    bank: int
    amount: float
    rate: float
    product: int
    term: int
    start: int
    maturity: int
    renewals: int
    masked: bool
    deferred: int = 0
    guarantor: int = -1
    pool: int = -1
    liability: float = 0.0
    npl: float = 0.0
    ended: str = ""
    process: simpy.Process | None = None


class GuaranteeFund:
    """A guarantor (政府性融资担保机构): its capital, liability, and the month's claims, recoveries and fees.

    Parameters
    ----------
    spec : Guarantor
        Its scenario entry.
    scenario : Scenario
    env : simpy.Environment
    """

    FLOWS = ("guarantee_issued", "guarantee_fees", "guarantee_fee_subsidy", "guarantee_claims", "guarantee_unpaid_claims",
             "guarantee_recoveries", "guarantor_costs", "loss_guarantor")

    def __init__(self, spec: Guarantor, scenario: Scenario, env: simpy.Environment) -> None:
        self.env = env
        self.coverage, self.fee_rate, self.fee_subsidy, self.cost_rate = spec.coverage, spec.fee_rate, spec.fee_subsidy, spec.cost_rate
        self.leverage_cap, self.single_share, self.claim_lag = spec.leverage_cap, spec.single_borrower_share, spec.claim_lag_months
        self.floor, self.max_line = spec.capital_floor * FEN, spec.max_line * FEN
        self.banks = {i for i, b in enumerate(scenario.banks) if spec.banks is None or b in spec.banks}
        self.segments = {i for i, x in enumerate(scenario.firms.segments) if spec.segments is None or x in spec.segments}
        self.capital = spec.capital * FEN
        self.outstanding = 0.0  # liability on performing guaranteed loans, fen
        self.principal = 0.0  # their principal, the fee base, fen
        self.flows = dict.fromkeys(self.FLOWS, 0.0)
        self.fiscal = 0.0
        self._claims: list[tuple[float, simpy.Event]] = []
        self._recoveries = 0.0

    def start_month(self) -> None:
        self.flows = dict.fromkeys(self.FLOWS, 0.0)
        self.fiscal = 0.0

    def takes(self, bank: int, segment: int, line: float, liability: float) -> bool:
        """Whether it guarantees a loan with this liability now: eligible bank and segment, line within max_line,
        capital at or above the floor, the borrower's liability coverage × line within the single-borrower cap, and
        the liability fitting in the room left under leverage_cap × capital."""
        eligible = (
            bank in self.banks and segment in self.segments and line <= self.max_line and self.capital >= self.floor
            and self.coverage * line <= self.single_share * self.capital
        )
        return eligible and self.outstanding + liability <= self.leverage_cap * self.capital

    def issue(self, liability: float, amount: float) -> None:
        self.outstanding += liability
        self.principal += amount
        self.flows["guarantee_issued"] += liability

    def release(self, liability: float, amount: float) -> None:
        """A guaranteed loan ended (repaid, renewed or defaulted)."""
        self.outstanding -= liability
        self.principal -= amount

    def claim(self, amount: float) -> simpy.Event:
        """File a claim due this month; the event succeeds with the amount paid when the month's claims are settled."""
        event = self.env.event()
        self._claims.append((amount, event))
        return event

    def settle(self) -> None:
        """Pay the claims filed this month in full, or pro rata (in whole fen) when they exceed the capital."""
        for (amount, event), paid in zip(self._claims, _pro_rata([amount for amount, _ in self._claims], self.capital), strict=True):
            self.capital -= paid
            self.flows["guarantee_claims"] += paid
            self.flows["guarantee_unpaid_claims"] += amount - paid
            event.succeed(paid)
        self._claims = []

    def recover(self, amount: float) -> None:
        """Its share of a recovery, booked at the month's close."""
        self._recoveries += amount

    def close_month(self) -> None:
        """Recoveries in; fees (and the government's part of them) on the guaranteed principal at month end; costs
        (on the liability) out of what capital there is."""
        self.capital += self._recoveries
        self.flows["guarantee_recoveries"] = self._recoveries
        self._recoveries = 0.0
        fees = round(self.fee_rate / 12.0 * self.principal)
        subsidy = round(self.fee_subsidy / 12.0 * self.principal)
        self.capital += fees
        costs = min(round(self.cost_rate / 12.0 * self.outstanding), max(self.capital, 0.0))
        self.capital -= costs
        self.flows.update(guarantee_fees=fees, guarantee_fee_subsidy=subsidy, guarantor_costs=costs)
        self.fiscal = subsidy


class RiskPool:
    """A risk compensation pool (风险补偿资金池): its balance, covered loans and the month's payouts.

    Parameters
    ----------
    spec : Pool
        Its scenario entry.
    scenario : Scenario
    env : simpy.Environment
    """

    FLOWS = ("pool_contributions", "pool_contributions_government", "pool_contributions_guarantor", "pool_contributions_bank",
             "pool_payouts", "pool_unpaid", "loss_pool", "loss_government")

    def __init__(self, spec: Pool, scenario: Scenario, env: simpy.Environment) -> None:
        self.env = env
        self.spec = spec
        self.start_index = scenario.start_index
        self.share, self.leverage = spec.payout_share, spec.leverage
        self.max_loan = spec.max_loan * FEN
        self.max_per_loan = math.inf if spec.max_payout_per_loan is None else spec.max_payout_per_loan * FEN
        self.max_per_year = math.inf if spec.max_payout_per_year is None else spec.max_payout_per_year * FEN
        self.banks = {i for i, b in enumerate(scenario.banks) if spec.banks is None or b in spec.banks}
        self.segments = {i for i, x in enumerate(scenario.firms.segments) if spec.segments is None or x in spec.segments}
        self.products = {PRODUCTS.index(p) for p in spec.products}
        self.government = spec.contributions.get("government", 0.0)
        self.balance = spec.size * FEN
        self.covered = 0.0  # performing covered balance, fen
        self.covered_npl = 0.0  # covered balance that defaulted and is not yet written off
        self.paid_this_year = 0.0
        self.suspended = False
        self.flows = dict.fromkeys(self.FLOWS, 0.0)
        self.fiscal = 0.0
        self._requests: list[tuple[float, simpy.Event]] = []

    def start_month(self, t: int) -> None:
        """Reset the flows; in January reset the annual cap and add the budget and the top-up, in the contributors' shares."""
        self.flows = dict.fromkeys(self.FLOWS, 0.0)
        self.fiscal = 0.0
        if (self.start_index + t - 1) % 12 != 0:
            return
        self.paid_this_year = 0.0
        added = self.spec.annual_budget * FEN
        if self.spec.top_up_to is not None:
            added += max(self.spec.top_up_to * FEN - (self.balance + added), 0.0)
        self.balance += added
        c = self.spec.contributions
        self.flows.update(pool_contributions=added, pool_contributions_government=added * c.get("government", 0.0),
                          pool_contributions_guarantor=added * c.get("guarantor", 0.0), pool_contributions_bank=added * c.get("bank", 0.0))
        self.fiscal = added * self.government

    def takes(self, bank: int, segment: int, product: int, amount: float, first_time: bool) -> bool:
        """Whether it covers a loan without a guarantee now: not suspended, eligible bank, segment and product, the
        loan within max_loan, a 首贷户 if it covers only those, and the loan fitting in the room left under
        leverage × balance."""
        eligible = (
            not self.suspended and bank in self.banks and segment in self.segments and product in self.products
            and amount <= self.max_loan and (first_time or not self.spec.first_time_only)
        )
        return eligible and self.covered + amount <= self.leverage * self.balance

    def request(self, amount: float) -> simpy.Event:
        """Ask for compensation due this month; the event succeeds with the amount paid."""
        event = self.env.event()
        self._requests.append((amount, event))
        return event

    def settle(self) -> None:
        """Pay the month's requests within the balance and what is left of the annual cap, pro rata (whole fen)."""
        available = min(self.balance, self.max_per_year - self.paid_this_year)
        for (amount, event), paid in zip(self._requests, _pro_rata([amount for amount, _ in self._requests], available), strict=True):
            self.balance -= paid
            self.paid_this_year += paid
            self.flows["pool_payouts"] += paid
            self.flows["pool_unpaid"] += amount - paid
            self.flows["loss_pool"] += paid
            self.flows["loss_government"] += paid * self.government
            event.succeed(paid)
        self._requests = []

    def close_month(self) -> None:
        """No new cover while the balance is below the floor or the covered NPL ratio is above the threshold."""
        total = self.covered + self.covered_npl
        npl_ratio = self.covered_npl / total if total > 0 else 0.0
        self.suspended = self.balance < self.spec.suspend_below * FEN or npl_ratio > self.spec.suspend_npl_ratio


def _pro_rata(amounts: list[float], available: float) -> list[float]:
    """What a payer with ``available`` fen pays of each amount it owes: all of them when it can, else each amount
    times available / owed, rounded down to whole fen."""
    owed = sum(amounts)
    if owed <= available:
        return amounts
    fraction = max(available, 0.0) / owed
    return [math.floor(amount * fraction) for amount in amounts]


class _Draws:
    """Scalar draws from one named stream, handed out from blocks (numpy draws arrays much faster than scalars)."""

    __slots__ = ("rng", "_uniforms", "_normals")
    BLOCK = 2048

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._uniforms: Iterator[float] = iter(())
        self._normals: Iterator[float] = iter(())

    def uniform(self) -> float:
        """U(0, 1)."""
        for u in self._uniforms:
            return u
        self._uniforms = iter(self.rng.random(self.BLOCK).tolist())
        return next(self._uniforms)

    def normal(self) -> float:
        """N(0, 1)."""
        for z in self._normals:
            return z
        self._normals = iter(self.rng.standard_normal(self.BLOCK).tolist())
        return next(self._normals)

    def choice(self, cumulative: list[float]) -> int:
        """Index i with probability cumulative[i] − cumulative[i − 1] (the last entry is 1)."""
        u = self.uniform()
        for i, c in enumerate(cumulative):
            if u < c:
                return i
        return len(cumulative) - 1

    def poisson(self, mean: float) -> int:
        return int(self.rng.poisson(mean)) if mean > 0 else 0


def _cumulative(weights: Iterable[float]) -> list[float]:
    w = list(weights)
    total = math.fsum(w)
    out = list(np.cumsum(np.asarray(w) / total))
    out[-1] = 1.0
    return [float(c) for c in out]


# ================================================================================================ one path
class ReferenceSimulation:
    """One Monte Carlo path of a scenario, simulated loan by loan.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario that :func:`check_supported` accepts.
    seed : int
        The run's seed.
    path : int
        The path number; with ``seed`` it fixes every random stream.

    Attributes
    ----------
    env : simpy.Environment
        The clock (months; see :class:`Phase`).
    bank_metrics : ndarray, shape (M + 1, banks, len(BANK_METRICS))
        Row 0 the opening book, row t the end of month t; NaN for the metrics it does not model.
    guarantor_metrics, reguarantor_metrics, pool_metrics : ndarray, shape (M + 1, entities, metrics of the scope)
    population_metrics : ndarray, shape (M + 1, len(POPULATION_METRICS))
    """

    BANK_FLOWS = ("disbursed", "repaid", "defaulted", "defaults", "recovered", "written_off", "interest_income", "disbursed_interest", "credit_loan_disbursed",
                  "applications", "approvals", "reborrow_declined", "graduated", "first_time_borrowers", "first_loan_amount",
                  "first_time_borrower_lending", "first_time_defaults", "first_time_defaulted", "first_time_expected_defaults_believed",
                  "first_time_expected_defaults_true", "renewals", "renewed", "guaranteed_disbursed", "guarantee_unavailable", "net_loss", "loss_bank",
                  "deferred", "relief_disbursed", "growth_shortfall", "outreach_applications", "outreach_approvals")
    POPULATION_FLOWS = ("firm_entries", "firm_exits", "firm_failures", "unmet_applications")

    def __init__(self, scenario: Scenario, seed: int, path: int) -> None:
        check_supported(scenario)
        self.scenario = s = scenario
        self.months = m = s.calendar.months
        self.application_growth = application_growth(s)  # applications' growth factor by month
        self.env = simpy.Environment()
        self.draw = {name: _Draws(stream(seed, path, name)) for name in
                     ("population", "macro", "defaults", "demand", "loans", "reborrow", "recoveries", "signals", "renewal", "relief",
                      "outreach")}
        segments, banks = list(s.firms.segments.values()), list(s.banks.values())
        self.segments, self.banks = segments, banks
        self.rate = [rates_by_year(b.rate, (s.start_index - 1 + np.arange(m + 1)) // 12).tolist() for b in banks]  # of a loan made in month t
        self.write_off = [int(k) for k in rates_by_year(s.risk.write_off_months, (s.start_index - 1 + np.arange(m + 1)) // 12)]  # after a default in month t
        self.n_banks = len(banks)
        self.n_grades = max(len(seg.pd) for seg in segments)
        self.pd = [list(seg.pd) + [0.0] * (self.n_grades - len(seg.pd)) for seg in segments]
        self.grade_cum = [_cumulative(list(seg.grade_share) + [0.0] * (self.n_grades - len(seg.pd))) for seg in segments]

        # the systematic factor, one standard normal per factor period, and each cohort's monthly hazards given it
        period = FACTOR_MONTHS[s.risk.factor_frequency]
        factor = self.draw["macro"].rng.standard_normal(math.ceil(m / period))
        rho = np.repeat([seg.rho for seg in segments], self.n_grades)
        self.hazard = self._hazards(rho, factor, period)

        self.line_mu, self.line_sigma = (v.tolist() for v in line_parameters(s))
        self.log_limit = math.log(s.firms.inclusive_line_limit)
        self.bank_cum = _cumulative(b.share for b in banks)
        self.term_values = {j: sorted(int(k) for k in b.term_mix) for j, b in enumerate(banks)}
        self.term_cum = {j: _cumulative(b.term_mix[str(k)] for k in self.term_values[j]) for j, b in enumerate(banks)}
        self.seasoned_term_cum = {j: _cumulative(b.term_mix[str(k)] * k for k in self.term_values[j]) for j, b in enumerate(banks)}
        self.product_cum = [_cumulative(b.product_mix.get(p, 0.0) for p in PRODUCTS) for b in banks]
        self.lgd_mean = [s.risk.lgd[p] for p in PRODUCTS]

        # state: borrowers (ordered, so that draws are assigned in a reproducible order), loans, firms without a loan
        self.borrowers: dict[Firm, None] = {}
        self.performing: dict[Loan, None] = {}
        self.non_performing: dict[Loan, None] = {}
        self.npl_stock: dict[StockCohort, None] = {}  # the opening NPLs not yet written off
        self.masked_loans: list[Loan] = []
        self._relending: list[tuple[Firm, list[tuple[float, int, int, int]]]] = []
        self.unbanked = np.zeros((len(segments), self.n_grades, POOL_STATES), dtype=np.int64)
        self.funds = [GuaranteeFund(g, s, self.env) for g in s.guarantors.values()]
        self.pools = [RiskPool(p, s, self.env) for p in s.pools.values()]
        self.t = 0
        self.interest_next = [0.0] * self.n_banks
        self.flows = [dict.fromkeys(self.BANK_FLOWS, 0.0) for _ in banks]
        self.pop_flows = dict.fromkeys(self.POPULATION_FLOWS, 0.0)
        self.other_loans = [0.0] * self.n_banks
        self.other_growth = self._other_loans_growth()
        self.appetite = [b.max_pd for b in banks]  # each bank's appetite for new borrowers this month
        self.pressure = [0.0] * self.n_banks
        self.year_start = [(0.0, 0.0)] * self.n_banks  # balance and all loans at the start of the year (or run)

        nan = np.nan
        self.bank_metrics = np.full((m + 1, self.n_banks, len(SCOPE_METRICS["bank"])), nan)
        self.guarantor_metrics = np.full((m + 1, len(self.funds), len(SCOPE_METRICS["guarantor"])), nan)
        self.reguarantor_metrics = np.full((m + 1, 0, len(SCOPE_METRICS["reguarantor"])), nan)
        self.pool_metrics = np.full((m + 1, len(self.pools), len(SCOPE_METRICS["pool"])), nan)
        self.population_metrics = np.full((m + 1, len(SCOPE_METRICS["population"])), nan)

    # ------------------------------------------------------------------------------------------ setup helpers
    def _hazards(self, rho: np.ndarray, factor: np.ndarray, period: int) -> list[list[float]]:
        """Each cohort's monthly hazard given the factor path, ``h[c][t]`` for t = 0..M (0 at t = 0): the period PD
        p_P = 1 − (1 − PD·m(t))^(P/12), conditional on the period's factor Z: p(Z) = Φ((Φ⁻¹(p_P) − √ρ Z) / √(1 − ρ)),
        spread over the period's months, h = 1 − (1 − p(Z))^(1/P)."""
        multiplier = self._stress_multipliers()
        out = []
        for c, pd in enumerate(np.ravel(self.pd).tolist()):
            row = [0.0]
            for t in range(1, self.months + 1):
                annual = pd * multiplier[t - 1]
                if annual >= 1.0:
                    row.append(1.0)
                    continue
                period_pd = 1.0 - (1.0 - annual) ** (period / 12.0)
                z = float(factor[(t - 1) // period])
                conditional = float(ndtr((ndtri(period_pd) - math.sqrt(rho[c]) * z) / math.sqrt(1.0 - rho[c]))) if period_pd > 0 else 0.0
                row.append(1.0 - (1.0 - conditional) ** (1.0 / period))
            out.append(row)
        return out

    def _stress_multipliers(self) -> np.ndarray:
        """PD multiplier in force in each simulated month (1 before the first stress point)."""
        s = self.scenario
        out = np.ones(self.months)
        for t in range(1, self.months + 1):
            for point in s.risk.stress:
                if s.start_index + t - 1 >= month_index(point.date):
                    out[t - 1] = point.pd_multiplier
        return out

    def _other_loans_growth(self) -> list[list[float]]:
        """Growth factor since the start of each bank's loans outside the inclusive book, by month 0..M."""
        s = self.scenario
        out = [[1.0] * self.n_banks]
        for t in range(1, self.months + 1):
            year = (s.start_index + t - 1) // 12
            row = []
            for j, bank in enumerate(s.banks.values()):
                g = bank.non_inclusive_growth
                annual = g[str(year)] if isinstance(g, dict) else g
                row.append(out[-1][j] * (1.0 + annual) ** (1.0 / 12.0))
            out.append(row)
        return out

    # ------------------------------------------------------------------------------------------ running
    def run(self) -> ReferenceSimulation:
        """Build the opening book, simulate months 1..M, and fill in the hindsight metrics; returns ``self``."""
        self._open()
        self.env.process(self._clock())
        self.env.run(until=self.months + 1 / 32)
        self._finish()
        return self

    def _until(self, month: int, phase: Phase) -> simpy.Timeout:
        return self.env.timeout(at(month, phase) - self.env.now)

    def _clock(self) -> Generator[simpy.Event, Any, None]:
        """The month's institution-level events; the loans' processes act at MATURITIES, CLAIMS and RESOLUTIONS."""
        for t in range(1, self.months + 1):
            yield self._until(t, Phase.OPEN)
            self._start_month(t)
            yield self._until(t, Phase.POPULATION)
            self._population(t)
            yield self._until(t, Phase.APPLICATIONS)
            self._press(t)
            self._applications(t)
            self._outreach(t)
            self._relief_lending(t)
            yield self._until(t, Phase.DEFAULTS)
            self._defaults(t)
            yield self._until(t, Phase.RELENDING)
            self._relend(t)
            yield self._until(t, Phase.CLAIMS_PAID)
            for fund in self.funds:
                fund.settle()
            yield self._until(t, Phase.PAYOUTS)
            for pool in self.pools:
                pool.settle()
            yield self._until(t, Phase.CLOSE)
            for fund in self.funds:
                fund.close_month()
            for pool in self.pools:
                pool.close_month()
            self._record(t)

    def _open(self) -> None:
        """Month 0: firms without a loan, and the opening borrowers with their seasoned loans (a loan's term is drawn
        length-biased, P(k) ∝ share(k) × k, and its age uniformly in 0..k − 1, so it matures in 1..k months)."""
        s = self.scenario
        start = initial_population(s)
        self.unbanked[:] = start.pool
        for seg, grade, bank in np.ndindex(start.borrowers.shape):
            for _ in range(int(start.borrowers[seg, grade, bank])):
                z = self.draw["signals"].normal()
                history = s.risk.known_history_loans
                self._new_borrower(0, seg, grade, bank, z, history, self._believed_pd(seg, grade, z, history), first_time=False,
                                   line_shift=float(start.line_shift[bank]), opening=True)
        self._open_tapes(start.tapes)
        for fund in self.funds:
            fund.start_month()  # the opening book's cover is a stock, not a flow of month 0
        self._open_npl_stock()
        stock = self._recount()
        balance = [a + b for a, b in zip(stock["balance"], stock["npl"], strict=True)]
        for j, (name, b) in enumerate(s.banks.items()):
            self.other_loans[j] = b.all_loans * FEN - balance[j]
            if self.other_loans[j] < 0:
                raise ScenarioError(f"banks.{name}.all_loans", b.all_loans, f"is below the bank's opening inclusive balance ({balance[j] / FEN:.6g})")
        self._record(0)

    def _open_tapes(self, tapes: OpeningTapes) -> None:
        """The banks' loan tapes (:mod:`creditsim.scenario.loan_tape`): each performing firm an opening borrower with its
        loans as the tape gives them, each keeping its cover (an existing contract, whatever room is left); each npl
        loan A of age a (months since its default) a stock cohort whose recovery round(A (1 − mean LGD)) is due in month
        L − a when a < L and whose write-off of the rest comes in month W − a."""
        s = self.scenario
        r = s.risk
        history = r.known_history_loans
        n_g = len(self.funds)
        for f in range(tapes.bank.shape[0]):
            seg, grade, bank = int(tapes.segment[f]), int(tapes.grade[f]), int(tapes.bank[f])
            age, term = int(tapes.age[f]), int(tapes.term[f])
            rows = range(int(tapes.first[f]), int(tapes.first[f + 1]))
            z = self.draw["signals"].normal()
            firm = Firm(segment=seg, grade=grade, cohort=seg * self.n_grades + grade, bank=bank, line=float(sum(tapes.amount[i] for i in rows)),
                        first_time=False, signal=z, history=history, belief=self._believed_pd(seg, grade, z, history), since=-age - 12 * history, joined=0)
            self.borrowers[firm] = None
            firm.loans = [self._make_loan(firm, 0, float(tapes.amount[i]), term, term - age, int(tapes.product[i]), 0, False, True,
                                          held=int(tapes.cover[i]) if tapes.cover[i] < n_g else -1,
                                          pool=int(tapes.cover[i]) - n_g if tapes.cover[i] >= n_g else -1) for i in rows]
        for i in range(tapes.npl_bank.shape[0]):
            amount, product, age = float(tapes.npl_amount[i]), int(tapes.npl_product[i]), int(tapes.npl_age[i])
            pending = age < r.recovery_lag_months
            recovery = round(amount * (1.0 - self.lgd_mean[product])) if pending else 0.0
            cohort = StockCohort(int(tapes.npl_bank[i]), product == _CREDIT, amount, 1.0, 1.0 if tapes.npl_firm[i] else 0.0)
            self.npl_stock[cohort] = None
            self.env.process(self._stock_resolution(cohort, self.write_off[0] - age, r.recovery_lag_months - age if pending else 0, recovery))

    def _open_npl_stock(self) -> None:
        """Each bank's opening NPLs: ``opening_npl_ratio`` of NPLs ÷ (performing + NPLs), as loans that defaulted in
        equal monthly amounts over the ``write_off_months`` (the opening year's) before the start, in the bank's product mix. Of a month's
        defaults of product k, amount A_k, the recovery round(A_k (1 − mean LGD_k)) is still due ``recovery_lag_months``
        after that month if it lies in the run (else it was received and A_k less it remains), and the write-off of the
        rest ``write_off_months`` after it. One loan (and firm) per mean opening loan of the bank, at least one."""
        r = self.scenario.risk
        months_off, months_rec = self.write_off[0], r.recovery_lag_months
        stock = self._recount()
        for j, bank in enumerate(self.banks):
            if bank.opening_npl_ratio <= 0 or stock["loans"][j] == 0:
                continue
            mix = [bank.product_mix.get(p, 0.0) for p in PRODUCTS]
            held = sum(w * (months_rec + (months_off - months_rec) * g) for w, g in zip(mix, self.lgd_mean, strict=True))
            monthly = bank.opening_npl_ratio / (1.0 - bank.opening_npl_ratio) * stock["balance"][j] / held
            mean_loan = stock["balance"][j] / stock["loans"][j]
            for months_ago in range(months_off):
                for k, (w, g) in enumerate(zip(mix, self.lgd_mean, strict=True)):
                    amount = round(monthly * w)
                    if amount <= 0:
                        continue
                    recovery = round(amount * (1.0 - g))
                    pending = months_ago < months_rec
                    loans = max(1.0, round(amount / mean_loan))
                    cohort = StockCohort(j, k == _CREDIT, amount if pending else amount - recovery, loans, loans)
                    self.npl_stock[cohort] = None
                    self.env.process(self._stock_resolution(cohort, months_off - months_ago, months_rec - months_ago if pending else 0, recovery))

    def _stock_resolution(self, cohort: StockCohort, write_off: int, recovery_month: int, recovery: float) -> Generator[simpy.Event, Any, None]:
        """An opening NPL cohort's recovery (in month ``recovery_month``, 0: none left) and write-off (RESOLUTIONS) of what
        is left, its net loss."""
        flows = self.flows[cohort.bank]  # reset in place each month
        if recovery_month > 0:
            yield self._until(recovery_month, Phase.RESOLUTIONS)
            cohort.npl -= recovery
            flows["recovered"] += recovery
        yield self._until(write_off, Phase.RESOLUTIONS)
        flows["written_off"] += cohort.npl
        flows["loss_bank"] += cohort.npl
        flows["net_loss"] += cohort.npl
        cohort.npl = 0.0
        del self.npl_stock[cohort]

    # ------------------------------------------------------------------------------------------ the month's events
    def _start_month(self, t: int) -> None:
        """OPEN: reset the flows; pools' January money; interest on the performing balance at the start of the month."""
        self.t = t
        for flows in (*self.flows, self.pop_flows):  # in place: loans in their non-performing life hold these
            for name in flows:
                flows[name] = 0.0
        for fund in self.funds:
            fund.start_month()
        for pool in self.pools:
            pool.start_month(t)
        for j in range(self.n_banks):
            self.flows[j]["interest_income"] = self.interest_next[j]

    def _population(self, t: int) -> None:
        """POPULATION: each segment registers Poisson(entry_per_year / 12) new firms (never borrowed, grade by share);
        then each firm without a loan fails with its cohort's hazard of month t, and each survivor closes with
        probability 1 − (1 − exit_rate)^(1/12)."""
        draw = self.draw["population"]
        for i, seg in enumerate(self.segments):
            n = draw.poisson(seg.entry_per_year / 12.0)
            for _ in range(n):
                self.unbanked[i, draw.choice(self.grade_cum[i]), NEVER] += 1
            self.pop_flows["firm_entries"] += n
        for i, seg in enumerate(self.segments):
            exit_prob = -math.expm1(math.log1p(-seg.exit_rate) / 12.0) if seg.exit_rate < 1.0 else 1.0
            for g in range(self.n_grades):
                h = self.hazard[i * self.n_grades + g][t]
                for state in range(POOL_STATES):
                    count = int(self.unbanked[i, g, state])
                    if count == 0:
                        continue
                    failures = int(self.draw["defaults"].rng.binomial(count, h))
                    exits = int(draw.rng.binomial(count - failures, exit_prob))
                    self.unbanked[i, g, state] -= failures + exits
                    self.pop_flows["firm_failures"] += failures
                    self.pop_flows["firm_exits"] += exits

    def _applications(self, t: int) -> None:
        """APPLICATIONS: each segment's firms without a loan make Poisson(applications_per_month × growth factor of month t)
        applications (at most one per firm; the excess is unmet), applicants drawn one by one without replacement.

        Each goes to a bank by share. The bank believes the firm's PD is ``expit(logit(pd) + signal_sd z / sqrt(1 + k))``
        with z a fresh standard normal and k the repaid loans it can see (the opening history for former borrowers,
        1 for a 首贷户 that repaid, 0 for a firm that never borrowed), and approves when that is within its max_pd,
        except that a firm once declined on its thin file is declined again. A declined 无贷户 is marked declined.
        """
        draw = self.draw["demand"]
        growth = self.application_growth[t]
        applicants = []
        for i, seg in enumerate(self.segments):
            applicants += self._pick_applicants(draw, i, draw.poisson(seg.applications_per_month * growth))
        for i, grade, state in sorted(applicants):
            bank = draw.choice(self.bank_cum)
            if not self._decide(t, i, grade, state, bank, self.appetite[bank], source="demand"):
                self.unbanked[i, grade, DECLINED if state == NEVER else state] += 1

    def _press(self, t: int) -> None:
        """APPLICATIONS, first: each bank's pressure from its growth targets (``[pressure]``). The pace is the balance
        at the start of the year (or of the run) times the highest of (1 + growth_target)^(k/12), k the months since,
        and (with ``pressure.yardstick``, in a year whose 两增 rule assesses growth) the growth of all loans since;
        the shortfall of the balance at the end of month t − 1 behind it, as a share of the pace over ``full_gap``,
        is the pressure π (at most 1), and the bank's appetite for new borrowers is min(1, (1 + appetite π) max_pd)."""
        s = self.scenario
        q = s.pressure
        if q.appetite == 0 and q.outreach == 0:
            return
        month = s.start_index + t - 1
        year, since = month // 12, min(month % 12, t - 1)
        names = SCOPE_METRICS["bank"]
        for j, bank in enumerate(self.banks):
            balance = float(self.bank_metrics[t - 1, j, names.index("balance")])
            all_loans = float(self.bank_metrics[t - 1, j, names.index("all_loans_balance")])
            if since == 0:
                self.year_start[j] = (balance, all_loans)
            start_balance, start_all = self.year_start[j]
            factors = []
            if str(year) in bank.growth_target:
                factors.append((1.0 + bank.growth_target[str(year)]) ** (since / 12.0))
            if q.yardstick and s.assessment.rule_in(year) != "none" and start_all > 0:
                factors.append(all_loans / start_all)
            pace = start_balance * max(factors) if factors else 0.0
            shortfall = max(0.0, pace - balance)
            self.pressure[j] = min(1.0, shortfall / (pace * q.full_gap)) if shortfall > 0 else 0.0
            self.appetite[j] = min(1.0, bank.max_pd * (1.0 + q.appetite * self.pressure[j]))
            self.flows[j]["growth_shortfall"] = shortfall

    def _outreach(self, t: int) -> None:
        """APPLICATIONS, after demand's: each bank under pressure π seeks Poisson(outreach × π × its share ×
        applications_per_month × growth factor) applicants from each segment's firms without a loan, decided at its
        appetite; they count in outreach_applications and, approved, outreach_approvals."""
        q, draw = self.scenario.pressure, self.draw["outreach"]
        if q.outreach == 0:
            return
        growth = self.application_growth[t]
        for j, bank in enumerate(self.banks):
            if self.pressure[j] == 0:
                continue
            applicants = []
            for i, seg in enumerate(self.segments):
                applicants += self._pick_applicants(draw, i, draw.poisson(q.outreach * self.pressure[j] * bank.share * seg.applications_per_month * growth))
            for i, grade, state in sorted(applicants):
                if not self._decide(t, i, grade, state, j, self.appetite[j], source="outreach"):
                    self.unbanked[i, grade, DECLINED if state == NEVER else state] += 1

    def _pick_applicants(self, draw: _Draws, seg: int, wanted: int) -> list[tuple[int, int, int]]:
        """``wanted`` applicants (segment, grade, state) drawn one by one without replacement from segment ``seg``'s
        firms without a loan, which they leave; those beyond the firms there are unmet."""
        applicants = []
        cells = self.unbanked[seg].ravel().tolist()  # firms without a loan by (grade, state)
        available = sum(cells)
        if wanted > available:
            self.pop_flows["unmet_applications"] += wanted - available
        for _ in range(min(wanted, available)):
            k = int(draw.uniform() * available)
            cell = 0
            while k >= cells[cell]:
                k -= cells[cell]
                cell += 1
            cells[cell] -= 1
            available -= 1
            grade, state = divmod(cell, POOL_STATES)
            self.unbanked[seg, grade, state] -= 1
            applicants.append((seg, grade, state))
        return applicants

    def _relief_lending(self, t: int) -> None:
        """APPLICATIONS, after the others: each relief lending window open in month t adds Poisson(applications_per_month)
        applications, uniformly from the firms without a loan of its segments (segment by segment, Poisson(mean × the
        segment's share of those firms); none when there are none), each to one of its banks by share, approved when
        the believed PD is within the window's max_pd (else the bank's); what they borrow is relief_disbursed."""
        s, draw = self.scenario, self.draw["relief"]
        for window in s.relief.lending:
            if not month_index(window.start) <= s.start_index + t - 1 <= month_index(window.end):
                continue
            admitted_segments = [i for i, name in enumerate(s.segment_names) if window.segments is None or name in window.segments]
            eligible = sum(int(self.unbanked[i].sum()) for i in admitted_segments)
            if eligible == 0:
                continue
            means = {i: window.applications_per_month * int(self.unbanked[i].sum()) / eligible for i in admitted_segments}
            applicants = []
            for i in admitted_segments:
                applicants += self._pick_applicants(draw, i, draw.poisson(means[i]))
            banks = _cumulative(b.share if window.banks is None or name in window.banks else 0.0 for name, b in s.banks.items())
            for i, grade, state in sorted(applicants):
                bank = draw.choice(banks)
                appetite = self.appetite[bank] if window.max_pd is None else window.max_pd
                if not self._decide(t, i, grade, state, bank, appetite, source="relief"):
                    self.unbanked[i, grade, DECLINED if state == NEVER else state] += 1

    def _decide(self, t: int, seg: int, grade: int, state: int, bank: int, appetite: float, source: str) -> bool:
        """One application from ``source`` ("demand", "relief" or "outreach"): the bank's belief, its decision against
        ``appetite`` (the highest believed PD it approves), and the new borrower when approved (its loans counted in
        relief_disbursed for a relief application, the approval in outreach_approvals for an outreach one)."""
        s = self.scenario
        z = self.draw["signals"].normal()
        history = s.risk.known_history_loans if state == FORMER else 1 if state == FORMER_FIRST_TIME else 0
        believed = self._believed_pd(seg, grade, z, history)
        flows = self.flows[bank]
        flows["applications"] += 1
        if source == "outreach":
            flows["outreach_applications"] += 1
        if state == DECLINED or believed > appetite:
            return False
        flows["approvals"] += 1
        if source == "outreach":
            flows["outreach_approvals"] += 1
        firm = self._new_borrower(t, seg, grade, bank, z, history, believed, first_time=state in (NEVER, FORMER_FIRST_TIME),
                                  line_shift=0.0, opening=False)
        if source == "relief":
            flows["relief_disbursed"] += firm.line
        if state == NEVER:
            flows["first_time_borrowers"] += 1
            flows["first_loan_amount"] += firm.line
            flows["first_time_expected_defaults_believed"] += believed
            flows["first_time_expected_defaults_true"] += self.pd[seg][grade]
        return True

    def _defaults(self, t: int) -> None:
        """DEFAULTS: every borrower that held a loan at the start of month t (and has not defaulted) draws
        U < h_c(t). A masked or deferred firm turns insolvent (its default is hidden, or postponed, until its loans fall
        due); any other firm fails and its loans turn non-performing now."""
        exposed = [f for f in self.borrowers if f.joined < t and f.default_month is None]
        for firm, u in zip(exposed, self.draw["defaults"].rng.random(len(exposed)).tolist(), strict=True):
            if u < self.hazard[firm.cohort][t]:
                firm.default_month = t
                if firm.masked or firm.deferred:
                    firm.insolvent = True
                else:
                    self._fail(firm)
                    for loan in firm.loans:
                        assert loan.process is not None
                        loan.process.interrupt("default")

    def _fail(self, firm: Firm) -> None:
        """A firm fails: it leaves the borrowers (its loans are turned non-performing by their processes)."""
        del self.borrowers[firm]
        self.pop_flows["firm_failures"] += 1
        for loan in firm.loans:
            loan.ended = "defaulted"

    # ------------------------------------------------------------------------------------------ borrowers and loans
    def _believed_pd(self, seg: int, grade: int, z: float, history: float) -> float:
        """``expit(logit(pd) + signal_sd z / sqrt(1 + history))``: the annual PD a bank believes a firm has."""
        pd, sd = self.pd[seg][grade], self.scenario.risk.signal_sd
        if sd == 0.0 or pd in (0.0, 1.0):
            return pd
        x = math.log(pd / (1.0 - pd)) + sd * z / math.sqrt(1.0 + history)
        return 1.0 / (1.0 + math.exp(-x))

    def _new_borrower(self, t: int, seg: int, grade: int, bank: int, z: float, history: int, belief: float, first_time: bool,
                      line_shift: float, opening: bool) -> Firm:
        """A firm becomes a borrower: its credit line is lognormal (the segment's median and p90, the log-median
        shifted by ``line_shift``) conditioned on not passing the inclusive limit (drawn again until it does not);
        it takes 1 + Poisson(loans_per_borrower − 1) loans of equal size (whole fen), one term from its bank's mix,
        one product per loan from its bank's mix. The opening book's loans are seasoned (length-biased terms at a
        random age) unless ``firms.opening_book`` is "new"."""
        s, draw = self.scenario, self.draw["loans"]
        seasoned = opening and s.firms.opening_book == "seasoned"
        mu, sigma = self.line_mu[seg] + line_shift, self.line_sigma[seg]
        while True:
            log_line = mu + sigma * draw.normal()
            if log_line <= self.log_limit:
                break
        n_loans = 1 + draw.poisson(s.demand.loans_per_borrower - 1.0)
        per_loan = max(math.floor(math.exp(log_line) * FEN / n_loans), 1.0)
        terms = self.term_values[bank]
        term = terms[draw.choice(self.seasoned_term_cum[bank] if seasoned else self.term_cum[bank])]
        age = int(draw.uniform() * term) if seasoned else 0
        firm = Firm(segment=seg, grade=grade, cohort=seg * self.n_grades + grade, bank=bank, line=per_loan * n_loans, first_time=first_time,
                    signal=z, history=history, belief=belief, since=t - age - (12 * s.risk.known_history_loans if opening else 0), joined=t)
        self.borrowers[firm] = None
        firm.loans = [self._make_loan(firm, t, per_loan, term, t + term - age, draw.choice(self.product_cum[bank]), 0, False, opening)
                      for _ in range(n_loans)]
        return firm

    def _make_loan(self, firm: Firm, t: int, amount: float, term: int, maturity: int, product: int, renewals: int, masked: bool,
                   seasoned: bool = False, held: int | None = None, pool: int = -1) -> Loan:
        """Make a loan and start its life.

        Cover: a guaranteed-product loan gets the first guarantor (scenario order) that takes it, else a new loan is
        made as the bank's ``without_guarantee`` product (``guarantee_unavailable``) and an opening loan stays
        guaranteed; a loan without a guarantee gets the first pool that takes it. A loan of a loan tape (``held`` not
        None) keeps the cover the tape gives it, guarantor ``held`` or ``pool`` (-1: none), whatever room is left.
        """
        bank = firm.bank
        flows = self.flows[bank]
        spec = self.banks[bank]
        loan = Loan(firm, bank, amount, self.rate[bank][t] + spec.rate_per_pd * firm.belief, product, term, t, maturity, renewals, masked)
        if held is not None:
            if held >= 0:
                liability = round(self.funds[held].coverage * amount)
                self.funds[held].issue(liability, amount)
                loan.guarantor, loan.liability = held, liability
            if pool >= 0:
                self.pools[pool].covered += amount
                loan.pool = pool
        elif product == _GUARANTEED and self.funds:
            for g, fund in enumerate(self.funds):
                liability = round(fund.coverage * amount)
                if fund.takes(bank, firm.segment, firm.line, liability):
                    fund.issue(liability, amount)
                    loan.guarantor, loan.liability = g, liability
                    break
            else:  # an opening loan stays guaranteed, by a party the scenario does not model
                if not seasoned:
                    loan.product = PRODUCTS.index(spec.without_guarantee)
                    flows["guarantee_unavailable"] += 1
        if loan.guarantor < 0 and held is None:
            for p, candidate in enumerate(self.pools):
                if candidate.takes(bank, firm.segment, loan.product, amount, firm.first_time):
                    candidate.covered += amount
                    loan.pool = p
                    break
        if not seasoned:
            flows["disbursed"] += amount
            flows["disbursed_interest"] += amount * loan.rate
            flows["credit_loan_disbursed"] += amount if loan.product == _CREDIT else 0.0
            flows["guaranteed_disbursed"] += amount if loan.guarantor >= 0 else 0.0
            flows["first_time_borrower_lending"] += amount if firm.first_time else 0.0
        self.performing[loan] = None
        if masked:
            self.masked_loans.append(loan)
        loan.process = self.env.process(self._life(loan))
        return loan

    def _end(self, loan: Loan, how: str) -> None:
        """A loan leaves the performing book (its guarantee liability and pool cover are released)."""
        loan.ended = how
        del self.performing[loan]
        if loan.guarantor >= 0:
            self.funds[loan.guarantor].release(loan.liability, loan.amount)
        if loan.pool >= 0:
            self.pools[loan.pool].covered -= loan.amount

    # ------------------------------------------------------------------------------------------ a loan's life
    def _life(self, loan: Loan) -> Generator[simpy.Event, Any, None]:
        """From origination to the end: sleep until the maturity phase of the maturity month (or until the firm's
        default interrupts), be settled with the firm's other loans (and, when deferred, sleep on until the new
        maturity), and if it defaulted, live on as a non-performing loan until written off."""
        while True:
            due = loan.maturity
            try:
                yield self.env.timeout(at(due, Phase.MATURITIES) - self.env.now)
            except simpy.Interrupt:
                break  # its firm defaulted this month (DEFAULTS)
            if loan.firm.settled != due:
                self._settle_maturity(loan.firm, due)
            if loan.maturity != due:  # deferred: it sleeps on until its new maturity
                continue
            if loan.ended != "defaulted":
                return
            break
        yield from self._non_performing(loan, self.t)

    def _settle_maturity(self, firm: Firm, t: int) -> None:
        """MATURITIES: settle a firm's maturing loans (all of its loans; see the module docstring, steps 1–6)."""
        s, draw = self.scenario, self.draw["reborrow"]
        firm.settled = t
        loans = firm.loans
        bank = self.banks[firm.bank]
        flows = self.flows[firm.bank]
        # 0. deferral: the first window open this month that admits the firm defers its loans with the window's uptake
        window = self._deferral_window(firm, t)
        if window is not None and self.draw["relief"].uniform() < window.uptake:
            for loan in loans:
                loan.maturity = t + window.months
                loan.deferred += window.months
            flows["deferred"] += sum(loan.amount for loan in loans)
            firm.deferred = True
            return
        firm.deferred = False
        insolvent = firm.insolvent
        # 1. who wants to borrow again, and whether the firm graduates instead
        want = [draw.uniform() < s.demand.reborrow_prob for _ in loans]
        growth = self.segments[firm.segment].line_growth
        grown = [round(loan.amount * (1.0 + growth) ** (loan.term / 12.0)) for loan in loans]
        line_if_reborrowed = firm.line + sum(g - loan.amount if w else -loan.amount for loan, g, w in zip(loans, grown, want, strict=True))
        graduating = not insolvent and any(want) and line_if_reborrowed > s.firms.inclusive_line_limit * FEN
        if graduating:
            want = [False] * len(loans)
        # 2. renewal is asked for by a firm that wants to go on, and by an insolvent one; the bank takes it up per firm
        asks = [(w or insolvent) and not graduating for w in want]
        renew = [False] * len(loans)
        if s.renewal is not None and s.renewal.enabled:
            taken = self.draw["renewal"].uniform() < bank.renewal_uptake
            renew = [a and taken and self._may_renew(loan, t) for loan, a in zip(loans, asks, strict=True)]
        # 3. an insolvent firm that must repay defaults on everything; otherwise every loan is repaid
        must_repay = not all(renew)
        if insolvent and must_repay:
            self._fail(firm)
            return
        for loan, r in zip(loans, renew, strict=True):
            self._end(loan, "renewed" if r else "repaid")
            flows["repaid"] += loan.amount
            if r:
                flows["renewals"] += 1
                flows["renewed"] += loan.amount
        # 4. a repayment sharpens the bank's view of the firm
        if must_repay:
            firm.repaid += 1
            firm.belief = self._believed_pd(firm.segment, firm.grade, firm.signal, firm.history + firm.repaid)
        # 5. re-lending to firms the bank still believes in; renewals keep amount, term and product
        again = [w and not r for w, r in zip(want, renew, strict=True)]
        credible = firm.belief <= bank.max_pd
        if not credible:
            flows["reborrow_declined"] += sum(again)
            again = [False] * len(loans)
        renewing = any(renew)
        fresh_term = self.term_values[firm.bank][draw.choice(self.term_cum[firm.bank])]
        new_loans = []
        for loan, g, r, a in zip(loans, grown, renew, again, strict=True):
            if r:
                new_loans.append((loan.amount, loan.term, loan.product, loan.renewals + 1))
                continue
            firm.line -= loan.amount
            if a:
                firm.line += g
                new_loans.append((g, loan.term if renewing else fresh_term, draw.choice(self.product_cum[firm.bank]), 0))
        firm.masked = renewing
        firm.loans = []
        if new_loans:  # made at RELENDING, once every loan maturing this month has ended
            self._relending.append((firm, new_loans))
            return
        # 6. a firm left without a loan leaves the inclusive book (graduation) or joins the firms without a loan
        del self.borrowers[firm]
        if graduating:
            flows["graduated"] += 1
        else:
            self.unbanked[firm.segment, firm.grade, FORMER_FIRST_TIME if firm.first_time else FORMER] += 1

    def _relend(self, t: int) -> None:
        """RELENDING: the month's renewals and re-borrowed loans, firm by firm in the order they matured."""
        for firm, new_loans in self._relending:
            firm.loans = [self._make_loan(firm, t, amount, term, t + term, product, renewals, masked=firm.masked)
                          for amount, term, product, renewals in new_loans]
        self._relending = []

    def _deferral_window(self, firm: Firm, t: int) -> Deferral | None:
        """The first deferral window (延期还本付息) open in month t that admits the firm: its bank and segment listed,
        the PD its bank believes it has within the window's max_pd."""
        s = self.scenario
        for window in s.relief.deferrals:
            if (month_index(window.start) <= s.start_index + t - 1 <= month_index(window.end)
                    and (window.banks is None or s.bank_names[firm.bank] in window.banks)
                    and (window.segments is None or s.segment_names[firm.segment] in window.segments)
                    and firm.belief <= window.max_pd):
                return window
        return None

    def _may_renew(self, loan: Loan, t: int) -> bool:
        """The renewal rules (银监发〔2014〕36号, 金规〔2024〕13号) for one maturing loan: listed segment, not after the
        segment's last renewal month, eligible product, term ≤ max_term_months, fewer than max_consecutive renewals
        so far, at least min_months_on_book since the firm's first loan at the bank, believed PD ≤ max_pd, and the
        criteria of a new loan: believed PD × (1 − the share of loss its guarantor or pool bears) ≤ the bank's
        max_pd."""
        rules, s = self.scenario.renewal, self.scenario
        assert rules is not None
        firm = loan.firm
        segment = s.segment_names[firm.segment]
        last = rules.until_by_segment.get(segment) or rules.until
        return (
            (rules.segments is None or segment in rules.segments)
            and (last is None or s.start_index + t - 1 <= month_index(last))
            and PRODUCTS[loan.product] in rules.products
            and loan.term <= rules.max_term_months
            and loan.renewals < rules.max_consecutive
            and t - firm.since >= rules.min_months_on_book
            and firm.belief <= rules.max_pd
            and firm.belief * (1.0 - self._cover_share(loan)) <= self.banks[loan.bank].max_pd
        )

    def _cover_share(self, loan: Loan) -> float:
        """The share of a loan's loss its guarantor or pool bears (0 without cover)."""
        if loan.guarantor >= 0:
            return self.funds[loan.guarantor].coverage
        return self.pools[loan.pool].share if loan.pool >= 0 else 0.0

    def _lgd(self, product: int) -> float:
        """The product's mean LGD, or a Beta draw with that mean and sd ``risk.lgd_sd``:
        a = m κ, b = (1 − m) κ with κ = m (1 − m) / sd² − 1."""
        mean, sd = self.lgd_mean[product], self.scenario.risk.lgd_sd
        if sd == 0.0:
            return mean
        kappa = mean * (1.0 - mean) / sd**2 - 1.0
        return float(self.draw["recoveries"].rng.beta(mean * kappa, (1.0 - mean) * kappa))

    def _non_performing(self, loan: Loan, t: int) -> Generator[simpy.Event, Any, None]:
        """A loan defaulted in month t: non-performing until written off at t + write_off_months (of t's year).

        Its guarantor's claim comes at t + claim_lag (CLAIMS), the recovery at t + recovery_lag (RESOLUTIONS), the pool's
        compensation and the write-off of the rest at its write-off (RESOLUTIONS, after the pools pay).
        """
        r = self.scenario.risk
        amount, flows = loan.amount, self.flows[loan.bank]
        first_time = loan.firm.first_time
        self._end(loan, "defaulted")
        loan.npl = amount
        self.non_performing[loan] = None
        flows["defaulted"] += amount
        flows["defaults"] += 1
        if first_time:
            flows["first_time_defaults"] += 1
            flows["first_time_defaulted"] += amount
        recovery = round(amount * (1.0 - self._lgd(loan.product)))
        fund = self.funds[loan.guarantor] if loan.guarantor >= 0 else None
        claim = round(fund.coverage * amount) if fund else 0.0
        cover_recovery = round(fund.coverage * recovery) if fund else 0.0
        bank_recovery = recovery - cover_recovery
        pool = self.pools[loan.pool] if loan.pool >= 0 else None
        if pool:
            pool.covered_npl += amount
        # the claim and the recovery, in time order
        steps = [(at(t + r.recovery_lag_months, Phase.RESOLUTIONS), "recovery")]
        if fund:
            steps.append((at(t + fund.claim_lag, Phase.CLAIMS), "claim"))
        paid_claim = 0.0
        for when, what in sorted(steps):
            yield self.env.timeout(when - self.env.now)
            if what == "claim":
                assert fund is not None
                paid_claim = yield fund.claim(claim)
                loan.npl -= paid_claim
                flows["recovered"] += paid_claim
            else:
                loan.npl -= bank_recovery
                flows["recovered"] += bank_recovery
                if fund:
                    fund.recover(cover_recovery)
        # write-off: the pool compensates first, the bank writes off the rest (with any claim left unpaid)
        yield self.env.timeout(at(t + self.write_off[t], Phase.RESOLUTIONS) - self.env.now)
        compensation = 0.0
        if pool:
            pool.covered_npl -= amount
            compensation = yield pool.request(min(round(pool.share * (amount - recovery)), pool.max_per_loan))
            loan.npl -= compensation
            flows["recovered"] += compensation
        written_off = loan.npl  # amount − claim − bank's recovery + unpaid claim − compensation
        loan.npl = 0.0
        del self.non_performing[loan]
        flows["written_off"] += written_off
        flows["loss_bank"] += written_off
        flows["net_loss"] += amount - recovery
        if fund:
            fund.flows["loss_guarantor"] += paid_claim - cover_recovery

    # ------------------------------------------------------------------------------------------ records
    def _recount(self) -> dict[str, list[float]]:
        """Stocks per bank (fen or counts), counted from the loans and firms themselves."""
        nb = self.n_banks
        balance, credit, renewal, loans, rate_x_balance = [0.0] * nb, [0.0] * nb, [0.0] * nb, [0.0] * nb, [0.0] * nb
        deferred = [0.0] * nb
        for loan in self.performing:
            b, amount = loan.bank, loan.amount
            balance[b] += amount
            if loan.firm.deferred:
                deferred[b] += amount
            loans[b] += 1
            rate_x_balance[b] += amount * loan.rate
            if loan.product == _CREDIT:
                credit[b] += amount
            if loan.renewals:
                renewal[b] += amount
        npl, npl_credit, npl_loans = [0.0] * nb, [0.0] * nb, [0.0] * nb
        npl_firms: list[dict[Firm, None]] = [{} for _ in range(nb)]
        for loan in self.non_performing:
            b = loan.bank
            npl[b] += loan.npl
            npl_loans[b] += 1
            npl_firms[b][loan.firm] = None
            if loan.product == _CREDIT:
                npl_credit[b] += loan.npl
        npl_stock_firms = [0.0] * nb
        for cohort in self.npl_stock:
            b = cohort.bank
            npl[b] += cohort.npl
            npl_loans[b] += cohort.loans
            npl_stock_firms[b] += cohort.firms
            if cohort.credit:
                npl_credit[b] += cohort.npl
        borrowers = [0.0] * nb
        for firm in self.borrowers:
            borrowers[firm.bank] += 1
        return {"balance": balance, "credit": credit, "renewal": renewal, "deferred": deferred, "loans": loans, "rate_x_balance": rate_x_balance, "npl": npl,
                "npl_credit": npl_credit, "npl_loans": npl_loans, "borrowers": borrowers, "npl_firms": [len(f) + extra for f, extra in zip(npl_firms, npl_stock_firms, strict=True)]}

    def _record(self, t: int) -> None:
        """CLOSE: write row t of every scope (money converted to CNY; ratios and hindsight metrics come in :meth:`_finish`)."""
        stock = self._recount()
        for j in range(self.n_banks):
            balance = stock["balance"][j] + stock["npl"][j]
            _put(self.bank_metrics[t, j], "bank", {
                **self.flows[j],
                "balance": balance,
                "borrowers": stock["borrowers"][j] + stock["npl_firms"][j],
                "loans": stock["loans"][j] + stock["npl_loans"][j],
                "npl_balance": stock["npl"][j],
                "credit_loan_balance": stock["credit"][j] + stock["npl_credit"][j],
                "renewal_balance": stock["renewal"][j],
                "deferred_balance": stock["deferred"][j],
                "restructured_balance": 0.0,  # filled in with hindsight
                "all_loans_balance": round(self.other_loans[j] * self.other_growth[t][j]) + balance,
            })
            self.interest_next[j] = stock["rate_x_balance"][j] / 12.0
        for g, fund in enumerate(self.funds):
            stocks = {"guarantee_outstanding": fund.outstanding, "guarantee_principal": fund.principal, "guarantor_capital": fund.capital}
            _put(self.guarantor_metrics[t, g], "guarantor", {**fund.flows, **stocks})
        for p, pool in enumerate(self.pools):
            _put(self.pool_metrics[t, p], "pool", {**pool.flows, "pool_balance": pool.balance, "pool_covered": pool.covered,
                                                   "pool_suspended": float(pool.suspended)})
        pop, pop_names = self.population_metrics[t], SCOPE_METRICS["population"]
        _put(pop, "population", self.pop_flows)
        unbanked = float(self.unbanked.sum())
        pop[pop_names.index("unbanked_firms")] = unbanked
        pop[pop_names.index("never_borrowed_firms")] = float(self.unbanked[:, :, [NEVER, DECLINED]].sum())
        pop[pop_names.index("firms")] = unbanked + len(self.borrowers)
        pop[pop_names.index("fiscal_cost")] = (sum(f.fiscal for f in self.funds) + sum(p.fiscal for p in self.pools)) / FEN

    def _finish(self) -> None:
        """After the last month: restructured_balance with hindsight, money in CNY, ratios."""
        names = SCOPE_METRICS["bank"]
        k = names.index("restructured_balance")
        for loan in self.masked_loans:
            d = loan.firm.default_month
            if d is not None and d <= loan.maturity - loan.deferred:  # a renewal to a firm that defaults before its agreed maturity
                self.bank_metrics[loan.start : min(loan.maturity, self.months + 1), loan.bank, k] += loan.amount
        for scope, rows in (("bank", self.bank_metrics), ("guarantor", self.guarantor_metrics), ("pool", self.pool_metrics)):
            scope_names = SCOPE_METRICS[scope]
            money = [i for i, name in enumerate(scope_names) if metric(name).unit == "CNY"]
            rows[..., money] /= FEN

            def get(name: str, rows: np.ndarray = rows, scope_names: tuple[str, ...] = scope_names) -> np.ndarray:
                return rows[..., scope_names.index(name)]

            for name, values in ratio_values(scope, get, self.scenario).items():
                rows[..., scope_names.index(name)] = values


# ================================================================================================ runs
def _put(row: np.ndarray, scope: str, values: dict[str, float]) -> None:
    """Write metric values into a row of a scope's metric array, by metric name."""
    names = SCOPE_METRICS[scope]
    for name, value in values.items():
        row[names.index(name)] = value


def run_task(scenario: Scenario, seed: int, paths: Sequence[int], *, trace: Sequence[int] = (), threads: int = 1,
             on_path: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Run paths of a scenario (as written, with its ``sample``) with the reference engine: the same task a backend
    gives :func:`creditsim.model.engine.run_task`, and the same arrays back (its metrics scaled back to the whole
    population; no trace). ``threads`` is ignored: the reference runs one path at a time."""
    if list(trace):
        raise ScenarioError("trace", list(trace), "the reference engine keeps no loan-level trace")
    sample, factors = sampled(scenario), scale_back(scenario.sample)
    runs: dict[str, list[np.ndarray]] = {scope: [] for scope in SCOPES}
    for path in paths:
        sim = ReferenceSimulation(sample, int(seed), int(path)).run()
        metrics = {"bank": sim.bank_metrics, "guarantor": sim.guarantor_metrics, "reguarantor": sim.reguarantor_metrics,
                   "pool": sim.pool_metrics, "population": sim.population_metrics[:, None, :]}
        for scope in SCOPES:
            runs[scope].append(metrics[scope] * factors[scope])
        if on_path is not None:
            on_path(1)
    return {scope: np.stack(arrays) for scope, arrays in runs.items()}


def simulate(scenario: Scenario | str | Path | None, paths: int | Iterable[int] = 100, seed: int = 0) -> Results:
    """Run Monte Carlo paths of a scenario with the reference engine.

    Parameters
    ----------
    scenario : Scenario, str or Path, optional
        A validated scenario, or a scenario file to load; the bundled default when None (which has a campaign and
        liquidity stress, so it is refused).
    paths : int or iterable of int
        How many paths (numbered 0..paths-1), or the path numbers.
    seed : int
        Seed of every random stream (≥ 0).

    Returns
    -------
    Results
        Shaped like :func:`creditsim.simulate`'s; the metrics not in :data:`MODELLED` are NaN.

    Raises
    ------
    ScenarioError
        For a feature the reference does not model (see :func:`check_supported`), or a bad seed or path list.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    check_supported(scenario)
    from ..run.api import run_paths

    return run_paths(run_task, scenario, paths, seed)
