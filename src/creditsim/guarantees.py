"""Government financing guarantees (政府性融资担保) and re-guarantees: who pays for each default.

A :class:`GuaranteeBook` holds every guarantor's and re-guarantor's capital and liability, and the claims,
recoveries and losses filed for later months. The engine calls it when a guaranteed loan is made
(:meth:`GuaranteeBook.assign`), when a loan ends (:meth:`release`), when a guaranteed loan defaults
(:meth:`file_default`), to settle the claims due in a month (:meth:`settle`) and to close a month
(:meth:`close_month`). Money is in whole fen, like the engine's.

The waterfall of a guaranteed loan of amount A with coverage c, re-guarantee shares s_k and recovery R:

- at default the bank's balance turns non-performing and the guarantor's liability c·A is released;
- after the claim lag the guarantor pays the claim C = c·A to the bank, and each re-guarantor reimburses
  C·s_k to the guarantor; a party short of capital pays pro rata what it has and the rest is *unpaid*;
- after the recovery lag R is shared in the same ratio: (1 − c)·R to the bank, c·R·s_k to re-guarantor k and
  the rest to the guarantor;
- at write-off the bank writes off A − C − (1 − c)·R plus any claim left unpaid, and each party's loss is
  recognised: bank (1 − c)(A − R) + unpaid, guarantor c(1 − Σs)(A − R) − unpaid + its re-guarantors' unpaid,
  re-guarantor k c·s_k(A − R) − its unpaid. They add up to the net credit loss A − R.
"""

from __future__ import annotations

import numpy as np

from .capacity import pay_pro_rata
from .kernels import assign_guarantors
from .metrics import SCOPE_METRICS
from .scenario import Scenario, admitted
from .scenario.units import month_index

__all__ = ["GuaranteeBook"]

_G = {name: i for i, name in enumerate(SCOPE_METRICS["guarantor"])}
_R = {name: i for i, name in enumerate(SCOPE_METRICS["reguarantor"])}
#: Loans up to this amount (CNY) pay a re-guarantor's small-loan fee rate (国家融资担保基金: ≤ 500万).
SMALL_LOAN = 5e6


class GuaranteeBook:
    """Guarantors' and re-guarantors' state for one path.

    Parameters
    ----------
    scenario : Scenario
    horizon : int
        Rows of the filing arrays (months 0 .. M + write_off_months).
    fen : float
        Fen per CNY.
    """

    def __init__(self, scenario: Scenario, horizon: int, fen: float) -> None:
        s = scenario
        self.fen = fen
        guarantors, reguarantors = list(s.guarantors.values()), list(s.reguarantors.values())
        self.n, self.n_reg, n_banks = len(guarantors), len(reguarantors), len(s.banks)
        self.coverage = np.array([g.coverage for g in guarantors])
        self.fee = np.array([g.fee_rate for g in guarantors])
        self.subsidy = np.array([g.fee_subsidy for g in guarantors])
        self.cost = np.array([g.cost_rate for g in guarantors])
        self.elasticity = np.array([g.take_up_elasticity for g in guarantors])
        self.reference_price = np.array([g.reference_price for g in guarantors])
        self.leverage_cap = np.array([g.leverage_cap for g in guarantors])
        self.floor = np.array([g.capital_floor for g in guarantors]) * fen
        self.single = np.array([g.single_borrower_share for g in guarantors])
        self.max_line = np.array([g.max_line for g in guarantors]) * fen
        self.claim_lag = np.array([g.claim_lag_months for g in guarantors], dtype=np.int64)
        self.write_off_after_claim = s.risk.write_off_months - self.claim_lag  # months from a claim's due date to the loan's write-off
        self.bank_ok = np.array([admitted(g.banks, s.bank_names) for g in guarantors], dtype=bool).reshape(self.n, n_banks)
        self.segment_ok = np.array([admitted(g.segments, s.segment_names) for g in guarantors], dtype=bool).reshape(self.n, len(s.firms.segments))
        self.shares = np.array([[g.reguarantee.get(r, 0.0) for r in s.reguarantors] for g in guarantors]).reshape(self.n, self.n_reg)
        self.reg_fee = np.array([r.fee_rate for r in reguarantors])
        self.reg_fee_small = np.array([r.fee_rate if r.fee_rate_small is None else r.fee_rate_small for r in reguarantors])
        months = s.calendar.months
        self.injections = np.zeros((months + 1, self.n))
        for j, g in enumerate(guarantors):
            for injection in g.injections:
                t = month_index(injection.date) - s.start_index + 1
                if 1 <= t <= months:
                    self.injections[t, j] += injection.amount * fen
        self.top_up = [(g.top_up.below * fen, g.top_up.to * fen) if g.top_up else None for g in guarantors]

        self.capital = np.array([g.capital for g in guarantors]) * fen
        self.outstanding = np.zeros(self.n)  # liability c·A of performing guaranteed loans
        self.outstanding_small = np.zeros(self.n)
        self.reg_capital = np.array([r.capital for r in reguarantors]) * fen
        z = np.zeros
        self.due_claims = z((horizon, self.n, n_banks))
        self.due_reg_claims = z((horizon, self.n, self.n_reg))
        self.due_recoveries = z((horizon, self.n))
        self.due_reg_recoveries = z((horizon, self.n_reg))
        self.due_loss = z((horizon, self.n))
        self.due_reg_loss = z((horizon, self.n_reg))
        self.flows = z((self.n, len(_G)))
        self.reg_flows = z((self.n_reg, len(_R)))
        self.fiscal = 0.0

    # ------------------------------------------------------------------------------------------ lending
    def open_cover(self, segment: np.ndarray, bank: np.ndarray) -> np.ndarray:
        """Coverage each guarantor could give each applicant now, shape (n, guarantors): its coverage where the
        applicant is eligible (bank, segment) and the guarantor takes new business (capital at or above the floor,
        room under the leverage cap), else 0."""
        return np.where(self.bank_ok[:, bank].T & self.segment_ok[:, segment].T & self.taking(), self.coverage, 0.0)

    def taking(self) -> np.ndarray:
        """Which guarantors take new business now: capital at or above the floor and liability under the cap."""
        return (self.capital >= self.floor) & (self.outstanding < self.leverage_cap * self.capital)

    def assign(self, segment: np.ndarray, line: np.ndarray, bank: np.ndarray, amount: np.ndarray, wanted: np.ndarray,
               only: np.ndarray | None = None) -> np.ndarray:
        """Cover for the loans that want a guarantee: the first eligible guarantor (in scenario order) with room,
        or, where ``only`` is not -1, that guarantor alone.

        Room: capital at or above the floor, the borrower's liability c·line within the single-borrower cap,
        and outstanding liability within leverage_cap × capital: the loans are offered in order, each taken when
        its liability fits in the room left, so a loan that does not fit leaves room for later, smaller ones (as a
        guarantor decides application by application).

        Returns
        -------
        ndarray of int8
            The guarantor of each loan, -1 where none (not wanted, or no room).
        """
        only = np.full(amount.shape[0], -1, dtype=np.int64) if only is None else only
        issued = np.zeros(self.n)
        out = assign_guarantors(segment, line, bank, amount, wanted, only, self.capital, self.floor, self.coverage, self.bank_ok, self.segment_ok,
                                self.max_line, self.single, self.leverage_cap, SMALL_LOAN * self.fen, self.outstanding, self.outstanding_small, issued)
        self.flows[:, _G["guarantee_issued"]] += issued
        return out

    def take_up(self, guarantor: np.ndarray, loan_rate: np.ndarray) -> np.ndarray:
        """Probability that each borrower takes the guarantee offered at its all-in price (loan rate + fee − fee
        subsidy): ``exp(−elasticity × max(0, price − reference_price))``; 1 where no guarantee is offered."""
        g = np.maximum(guarantor, 0).astype(np.int64)
        price = loan_rate + self.fee[g] - self.subsidy[g]
        probability = np.exp(-self.elasticity[g] * np.maximum(price - self.reference_price[g], 0.0))
        return np.where(guarantor >= 0, probability, 1.0)

    def unassign(self, guarantor: np.ndarray, amount: np.ndarray) -> None:
        """Undo :meth:`assign` for loans that will not be made after all."""
        covered = guarantor >= 0
        if covered.any():
            g = guarantor[covered].astype(np.int64)
            self.flows[:, _G["guarantee_issued"]] -= np.bincount(g, np.round(self.coverage[g] * amount[covered]), self.n)
        self.release(guarantor, amount)

    def release(self, guarantor: np.ndarray, amount: np.ndarray) -> None:
        """Loans that end (repaid, renewed or defaulted) release their guarantee liability."""
        covered = guarantor >= 0
        if not covered.any():
            return
        g, a = guarantor[covered].astype(np.int64), amount[covered]
        liability = np.round(self.coverage[g] * a)
        self.outstanding -= np.bincount(g, liability, self.n)
        self.outstanding_small -= np.bincount(g, liability * (a <= SMALL_LOAN * self.fen), self.n)

    # ------------------------------------------------------------------------------------------ defaults
    def file_default(self, t: int, guarantor: np.ndarray, bank: np.ndarray, amount: np.ndarray, recovery: np.ndarray,
                     recovery_lag: int, write_off: int) -> tuple[np.ndarray, np.ndarray]:
        """File the claims, shared recoveries and losses of defaulting loans.

        Returns
        -------
        bank_recovery, claim : ndarray, shape (n,)
            Per loan, the bank's share of the recovery and the claim the guarantor owes (0 where uncovered).
        """
        bank_recovery, claim = recovery.copy(), np.zeros(amount.shape[0])
        covered = guarantor >= 0
        if not covered.any():
            return bank_recovery, claim
        g = guarantor[covered].astype(np.int64)
        c = self.coverage[g]
        a, r, b = amount[covered], recovery[covered], bank[covered]
        loan_claim = np.round(c * a)
        cover_recovery = np.round(c * r)
        reg_claim = np.round(loan_claim[:, None] * self.shares[g])  # (n, R)
        reg_recovery = np.round(cover_recovery[:, None] * self.shares[g])
        own_recovery = cover_recovery - reg_recovery.sum(axis=1)
        claim[covered] = loan_claim
        bank_recovery[covered] = r - cover_recovery
        due = t + self.claim_lag[g]
        np.add.at(self.due_claims, (due, g, b), loan_claim)
        np.add.at(self.due_reg_claims, (due, g), reg_claim)
        np.add.at(self.due_recoveries[t + recovery_lag], g, own_recovery)
        self.due_reg_recoveries[t + recovery_lag] += reg_recovery.sum(axis=0)
        np.add.at(self.due_loss[t + write_off], g, loan_claim - reg_claim.sum(axis=1) - own_recovery)
        self.due_reg_loss[t + write_off] += (reg_claim - reg_recovery).sum(axis=0)
        return bank_recovery, claim

    def settle(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Pay the claims due this month: re-guarantors reimburse guarantors, guarantors pay banks, each pro rata
        to what its capital allows.

        Returns
        -------
        paid, unpaid : ndarray, shape (guarantors, banks)
            Claims paid to each bank, and claims left unpaid (the bank will write them off).
        """
        due = self.due_claims[t]
        if self.n == 0 or not due.any():
            return np.zeros_like(due), np.zeros_like(due)
        reg_due = self.due_reg_claims[t]  # (G, R)
        reg_paid = pay_pro_rata(reg_due, self.reg_capital)
        self.reg_capital -= reg_paid.sum(axis=0)
        reg_unpaid = reg_due - reg_paid
        received = reg_paid.sum(axis=1)
        self.capital += received
        paid = pay_pro_rata(due.T, self.capital).T  # (G, B): a guarantor's capital covers its claims on all banks
        self.capital -= paid.sum(axis=1)
        unpaid = due - paid
        # the loss shifts: a guarantor's unpaid claims to the banks, a re-guarantor's unpaid reimbursements to the guarantor
        shift = t + self.write_off_after_claim
        np.add.at(self.due_loss, (shift, np.arange(self.n)), reg_unpaid.sum(axis=1) - unpaid.sum(axis=1))
        np.subtract.at(self.due_reg_loss, shift, reg_unpaid)
        f, rf = self.flows, self.reg_flows
        f[:, _G["guarantee_claims"]] += paid.sum(axis=1)
        f[:, _G["guarantee_unpaid_claims"]] += unpaid.sum(axis=1)
        f[:, _G["reguarantee_claims"]] += received
        rf[:, _R["reguarantee_claims_paid"]] += reg_paid.sum(axis=0)
        rf[:, _R["reguarantee_unpaid"]] += reg_unpaid.sum(axis=0)
        return paid, unpaid

    # ------------------------------------------------------------------------------------------ month end
    def start_month(self) -> None:
        self.flows[:] = 0.0
        self.reg_flows[:] = 0.0
        self.fiscal = 0.0

    def close_month(self, t: int) -> None:
        """Recoveries, fees, re-guarantee fees and operating costs, injections and top-ups, and the losses
        recognised this month."""
        if self.n == 0 and self.n_reg == 0:
            return
        f, rf = self.flows, self.reg_flows
        recovered, reg_recovered = self.due_recoveries[t], self.due_reg_recoveries[t]
        self.capital += recovered
        self.reg_capital += reg_recovered
        f[:, _G["guarantee_recoveries"]] = recovered
        rf[:, _R["reguarantor_recoveries"]] = reg_recovered
        fees = np.round(self.fee / 12.0 * self.outstanding)
        subsidy = np.round(self.subsidy / 12.0 * self.outstanding)
        large = self.outstanding - self.outstanding_small
        reg_fees = np.round(self.shares * (large[:, None] * self.reg_fee + self.outstanding_small[:, None] * self.reg_fee_small) / 12.0)
        # re-guarantee fees, then operating costs, are paid out of what the guarantor has: capital never goes negative
        self.capital += fees
        reg_fees = pay_pro_rata(reg_fees.T, self.capital).T
        self.capital -= reg_fees.sum(axis=1)
        costs = np.minimum(np.round(self.cost / 12.0 * self.outstanding), np.maximum(self.capital, 0.0))
        self.capital -= costs
        self.reg_capital += reg_fees.sum(axis=0)
        injected = self.injections[t].copy()
        for g, rule in enumerate(self.top_up):
            if rule is not None and self.capital[g] + injected[g] < rule[0]:
                injected[g] = rule[1] - self.capital[g]
        self.capital += injected
        f[:, _G["guarantee_fees"]] = fees
        f[:, _G["guarantee_fee_subsidy"]] = subsidy
        f[:, _G["reguarantee_fees"]] = reg_fees.sum(axis=1)
        f[:, _G["guarantor_costs"]] = costs
        f[:, _G["capital_injections"]] = injected
        f[:, _G["loss_guarantor"]] = self.due_loss[t]
        rf[:, _R["reguarantee_fees_received"]] = reg_fees.sum(axis=0)
        rf[:, _R["loss_reguarantor"]] = self.due_reg_loss[t]
        self.fiscal = float(subsidy.sum() + injected.sum())

    def record(self, guarantor_row: np.ndarray, reguarantor_row: np.ndarray) -> None:
        """Write this month's guarantor and re-guarantor metrics (in fen; the engine converts money to CNY)."""
        guarantor_row[:] = self.flows
        guarantor_row[:, _G["guarantee_outstanding"]] = self.outstanding
        guarantor_row[:, _G["guarantor_capital"]] = self.capital
        reguarantor_row[:] = self.reg_flows
        reguarantor_row[:, _R["reguarantor_capital"]] = self.reg_capital
