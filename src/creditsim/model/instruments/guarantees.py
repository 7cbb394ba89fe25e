"""Government financing guarantees (政府性融资担保) and re-guarantees: who pays for each default.

A guarantor covers ``coverage`` of a guaranteed loan's loss; its re-guarantors take their shares of each claim.
This module owns the guarantors' and re-guarantors' books (capital, liability, the claims, recoveries and losses
filed for later months) and is the only code that changes them; the engine asks it to assign cover to a loan
(:func:`assign`), to release a loan that ends (:func:`release`), to file a default (:func:`file_default`), to
settle the month's claims (:func:`settle`) and to open and close a month.

The waterfall of a guaranteed loan of amount A with coverage c, re-guarantee shares s_k and recovery R:

- at default the bank's balance turns non-performing and the guarantor's liability (:func:`liability`) is released;
- after the claim lag the guarantor pays the claim C = round(c·A) to the bank, and each re-guarantor reimburses
  round(C·s_k); a party short of capital pays pro rata what it has and the rest is *unpaid*;
- after the recovery lag R is shared in the same ratio: R − round(c·R) to the bank, round(round(c·R)·s_k) to
  re-guarantor k and the rest to the guarantor; a re-guarantor that still owes its guarantor reimbursements left
  unpaid has its share set off against them (:func:`set_off_recoveries`);
- at write-off each party's loss is recognised: bank (1 − c)(A − R) + unpaid, guarantor c(1 − Σs)(A − R) − unpaid +
  its re-guarantors' unpaid − their set-offs, re-guarantor k c·s_k(A − R) − its unpaid + its set-offs (a set-off
  is recognised with the unpaid reimbursement it reverses). They add up to the net credit loss A − R.

Money is in whole fen.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import numpy as np
from numba import njit

from ...metrics import SCOPE_METRICS
from ...scenario import Scenario, admitted
from ...scenario.units import month_index
from ..columns import FEN, GUARANTOR, REGUARANTOR
from ..structs import FLOAT, FLOAT_1, FLOAT_2, FLOAT_3, FROZEN_BOOL_2, FROZEN_FLOAT_1, FROZEN_FLOAT_2, FROZEN_INT_1
from .payments import pay_pro_rata

__all__ = ["GuaranteeParams", "GuaranteeState", "SMALL_LOAN", "parameters", "new_state", "reset", "open_month", "taking", "liability",
           "written_off_month", "assign", "hold", "unassign", "release", "take_up", "file_default", "settle", "close_month", "record"]

#: Loans up to this amount (CNY) pay a re-guarantor's small-loan fee rate (国家融资担保基金: ≤ 500万).
SMALL_LOAN = 5e6


class GuaranteeParams(NamedTuple):
    """Guarantors' and re-guarantors' contracts, as arrays (G guarantors, R re-guarantors, B banks, S segments);
    money in fen."""

    coverage: Annotated[np.ndarray, FROZEN_FLOAT_1]          # (G,) share of a loan's loss the guarantor takes
    fee: Annotated[np.ndarray, FROZEN_FLOAT_1]               # (G,) annual fee on the guaranteed principal
    fee_subsidy: Annotated[np.ndarray, FROZEN_FLOAT_1]       # (G,) the part of it government pays
    cost: Annotated[np.ndarray, FROZEN_FLOAT_1]              # (G,) annual operating cost on the liability
    elasticity: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (G,) price response of take-up
    reference_price: Annotated[np.ndarray, FROZEN_FLOAT_1]   # (G,) all-in price at or below which every borrower takes the guarantee
    leverage_cap: Annotated[np.ndarray, FROZEN_FLOAT_1]      # (G,)
    floor: Annotated[np.ndarray, FROZEN_FLOAT_1]             # (G,) capital below which it gives no new guarantee, fen
    single: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (G,) single-borrower share of capital
    max_line: Annotated[np.ndarray, FROZEN_FLOAT_1]          # (G,) largest line of an eligible borrower, fen
    claim_lag: Annotated[np.ndarray, FROZEN_INT_1]         # (G,) int64, months from a default to its claim
    bank_ok: Annotated[np.ndarray, FROZEN_BOOL_2]           # (G, B) bool
    segment_ok: Annotated[np.ndarray, FROZEN_BOOL_2]        # (G, S) bool
    shares: Annotated[np.ndarray, FROZEN_FLOAT_2]            # (G, R) share of each claim passed to each re-guarantor
    reg_fee: Annotated[np.ndarray, FROZEN_FLOAT_1]           # (R,)
    reg_fee_small: Annotated[np.ndarray, FROZEN_FLOAT_1]     # (R,) on loans up to SMALL_LOAN
    injections: Annotated[np.ndarray, FROZEN_FLOAT_2]        # (M + 1, G) scheduled capital injections, fen
    top_below: Annotated[np.ndarray, FROZEN_FLOAT_1]         # (G,) top-up floor, fen (NaN: none)
    top_to: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (G,) top-up level, fen
    capital: Annotated[np.ndarray, FROZEN_FLOAT_1]           # (G,) starting capital, fen
    reg_capital: Annotated[np.ndarray, FROZEN_FLOAT_1]       # (R,) starting capital, fen
    small_loan: Annotated[float, FLOAT]             # fen


class GuaranteeState(NamedTuple):
    """One path's guarantee books (H rows of filings: months 0 .. M + write_off_months); money in fen."""

    capital: Annotated[np.ndarray, FLOAT_1]           # (G,)
    outstanding: Annotated[np.ndarray, FLOAT_1]       # (G,) liability on performing guaranteed loans
    outstanding_small: Annotated[np.ndarray, FLOAT_1]  # (G,) the part on loans up to SMALL_LOAN
    principal: Annotated[np.ndarray, FLOAT_1]         # (G,) principal of the performing guaranteed loans (the fee base)
    reg_capital: Annotated[np.ndarray, FLOAT_1]       # (R,)
    due_claims: Annotated[np.ndarray, FLOAT_3]        # (H, G, B)
    due_reg_claims: Annotated[np.ndarray, FLOAT_3]    # (H, G, R)
    due_recoveries: Annotated[np.ndarray, FLOAT_2]    # (H, G)
    due_reg_recoveries: Annotated[np.ndarray, FLOAT_3]  # (H, G, R) re-guarantor k's share of guarantor g's recoveries
    due_loss: Annotated[np.ndarray, FLOAT_2]          # (H, G)
    due_reg_loss: Annotated[np.ndarray, FLOAT_2]      # (H, R)
    flows: Annotated[np.ndarray, FLOAT_2]             # (G, guarantor metrics) this month's flows
    reg_flows: Annotated[np.ndarray, FLOAT_2]         # (R, re-guarantor metrics)
    paid: Annotated[np.ndarray, FLOAT_2]              # (G, B) claims paid this month
    unpaid: Annotated[np.ndarray, FLOAT_2]            # (G, B) claims left unpaid this month
    reg_paid: Annotated[np.ndarray, FLOAT_2]          # (R, G) reimbursements paid this month (workspace)
    due_reg_debt: Annotated[np.ndarray, FLOAT_3]      # (H, G, R) reimbursements left unpaid, not yet set off, by the month their loss moves
    reg_fees: Annotated[np.ndarray, FLOAT_2]          # (G, R) re-guarantee fees this month (workspace)
    fiscal: Annotated[np.ndarray, FLOAT_1]            # (1,) government money this month


def parameters(s: Scenario) -> GuaranteeParams:
    """The guarantee contracts of a (sampled) scenario."""
    guarantors, reguarantors = list(s.guarantors.values()), list(s.reguarantors.values())
    g, r, months = len(guarantors), len(reguarantors), s.calendar.months
    injections = np.zeros((months + 1, g))
    for j, spec in enumerate(guarantors):
        for injection in spec.injections:
            t = month_index(injection.date) - s.start_index + 1
            if 1 <= t <= months:
                injections[t, j] += injection.amount * FEN
    claim_lag = np.array([x.claim_lag_months for x in guarantors], dtype=np.int64)
    array = lambda values: np.array(values, dtype=np.float64).reshape(-1)  # noqa: E731
    return GuaranteeParams(
        coverage=array([x.coverage for x in guarantors]), fee=array([x.fee_rate for x in guarantors]),
        fee_subsidy=array([x.fee_subsidy for x in guarantors]), cost=array([x.cost_rate for x in guarantors]),
        elasticity=array([x.take_up_elasticity for x in guarantors]), reference_price=array([x.reference_price for x in guarantors]),
        leverage_cap=array([x.leverage_cap for x in guarantors]), floor=array([x.capital_floor * FEN for x in guarantors]),
        single=array([x.single_borrower_share for x in guarantors]), max_line=array([x.max_line * FEN for x in guarantors]),
        claim_lag=claim_lag,
        bank_ok=np.array([admitted(x.banks, s.bank_names) for x in guarantors], dtype=np.bool_).reshape(g, len(s.banks)),
        segment_ok=np.array([admitted(x.segments, s.segment_names) for x in guarantors], dtype=np.bool_).reshape(g, len(s.firms.segments)),
        shares=np.array([[x.reguarantee.get(name, 0.0) for name in s.reguarantors] for x in guarantors], dtype=np.float64).reshape(g, r),
        reg_fee=array([x.fee_rate for x in reguarantors]),
        reg_fee_small=array([x.fee_rate if x.fee_rate_small is None else x.fee_rate_small for x in reguarantors]),
        injections=injections,
        top_below=array([x.top_up.below * FEN if x.top_up else math.nan for x in guarantors]),
        top_to=array([x.top_up.to * FEN if x.top_up else math.nan for x in guarantors]),
        capital=array([x.capital * FEN for x in guarantors]), reg_capital=array([x.capital * FEN for x in reguarantors]),
        small_loan=SMALL_LOAN * FEN,
    )


def new_state(p: GuaranteeParams, horizon: int, banks: int) -> GuaranteeState:
    """Zeroed books for paths of ``horizon`` filing months (:func:`reset` starts each path)."""
    g, r = p.coverage.shape[0], p.reg_fee.shape[0]
    z = np.zeros
    return GuaranteeState(
        capital=z(g), outstanding=z(g), outstanding_small=z(g), principal=z(g), reg_capital=z(r), due_claims=z((horizon, g, banks)),
        due_reg_claims=z((horizon, g, r)), due_recoveries=z((horizon, g)), due_reg_recoveries=z((horizon, g, r)), due_loss=z((horizon, g)),
        due_reg_loss=z((horizon, r)), flows=z((g, len(SCOPE_METRICS["guarantor"]))), reg_flows=z((r, len(SCOPE_METRICS["reguarantor"]))),
        paid=z((g, banks)), unpaid=z((g, banks)), reg_paid=z((r, g)), due_reg_debt=z((horizon, g, r)), reg_fees=z((g, r)), fiscal=z(1),
    )


# ------------------------------------------------------------------------------------------------ the path and the month
@njit(cache=True, nogil=True)
def reset(p, s):
    """Start a path: starting capital, nothing outstanding or filed."""
    s.guarantees.capital[:] = p.guarantees.capital
    s.guarantees.reg_capital[:] = p.guarantees.reg_capital
    s.guarantees.outstanding[:] = 0.0
    s.guarantees.outstanding_small[:] = 0.0
    s.guarantees.principal[:] = 0.0
    s.guarantees.due_claims[:] = 0.0
    s.guarantees.due_reg_claims[:] = 0.0
    s.guarantees.due_recoveries[:] = 0.0
    s.guarantees.due_reg_recoveries[:] = 0.0
    s.guarantees.due_loss[:] = 0.0
    s.guarantees.due_reg_loss[:] = 0.0
    s.guarantees.due_reg_debt[:] = 0.0
    open_month(p, s)


@njit(cache=True, nogil=True)
def open_month(p, s):
    """Start the month's flows (the opening book's cover is a stock: month 0 starts afresh too)."""
    s.guarantees.flows[:] = 0.0
    s.guarantees.reg_flows[:] = 0.0
    s.guarantees.fiscal[0] = 0.0


@njit(cache=True, nogil=True, inline="always")
def taking(p, s, g):
    """Whether guarantor ``g`` takes new business now: capital at or above its floor and liability under its cap."""
    return s.guarantees.capital[g] >= p.guarantees.floor[g] and s.guarantees.outstanding[g] < p.guarantees.leverage_cap[g] * s.guarantees.capital[g]


# ------------------------------------------------------------------------------------------------ lending
@njit(cache=True, nogil=True, inline="always")
def liability(p, g, amount):
    """The liability guarantor ``g`` carries on a loan of ``amount`` fen: round(coverage × amount), whole fen."""
    return np.rint(p.guarantees.coverage[g] * amount)


@njit(cache=True, nogil=True, inline="always")
def assign(p, s, g, segment, bank, line, amount):
    """Guarantee one loan if guarantor ``g`` admits it and has room; returns whether it does.

    Room: capital at or above the floor; the bank and segment eligible; the borrower's line ≤ max_line and its
    liability coverage × line within the single-borrower share of capital (Art. 16); the loan's liability within
    leverage_cap × capital less what is outstanding (Art. 15). Loans are offered one at a time, so one that does not
    fit leaves the room to later, smaller ones, as a guarantor decides application by application.
    """
    if s.guarantees.capital[g] < p.guarantees.floor[g] or not p.guarantees.bank_ok[g, bank] or not p.guarantees.segment_ok[g, segment]:
        return False
    if line > p.guarantees.max_line[g] or p.guarantees.coverage[g] * line > p.guarantees.single[g] * s.guarantees.capital[g]:
        return False
    owed = liability(p, g, amount)
    if s.guarantees.outstanding[g] + owed > p.guarantees.leverage_cap[g] * s.guarantees.capital[g]:
        return False
    hold(p, s, g, amount)
    s.guarantees.flows[g, GUARANTOR.guarantee_issued] += owed
    return True


@njit(cache=True, nogil=True, inline="always")
def hold(p, s, g, amount):
    """Guarantor ``g`` carries the liability of one loan: one it has taken (:func:`assign`), or an existing guarantee
    of a bank's loan tape, held whatever room is left."""
    owed = liability(p, g, amount)
    s.guarantees.outstanding[g] += owed
    s.guarantees.principal[g] += amount
    if amount <= p.guarantees.small_loan:
        s.guarantees.outstanding_small[g] += owed


@njit(cache=True, nogil=True, inline="always")
def release(p, s, g, amount):
    """A guaranteed loan ends (repaid, renewed or defaulted): its liability is released."""
    owed = liability(p, g, amount)
    s.guarantees.outstanding[g] -= owed
    s.guarantees.principal[g] -= amount
    if amount <= p.guarantees.small_loan:
        s.guarantees.outstanding_small[g] -= owed


@njit(cache=True, nogil=True, inline="always")
def unassign(p, s, g, amount):
    """Undo :func:`assign` for a loan that is not made after all."""
    s.guarantees.flows[g, GUARANTOR.guarantee_issued] -= liability(p, g, amount)
    release(p, s, g, amount)


@njit(cache=True, nogil=True, inline="always")
def take_up(p, g, loan_rate):
    """Probability that a borrower takes guarantor ``g``'s guarantee at its all-in price (loan rate + fee − fee
    subsidy, a year): ``exp(−elasticity × max(0, price − reference_price))``."""
    price = loan_rate + p.guarantees.fee[g] - p.guarantees.fee_subsidy[g]
    return math.exp(-p.guarantees.elasticity[g] * max(price - p.guarantees.reference_price[g], 0.0))


# ------------------------------------------------------------------------------------------------ defaults
@njit(cache=True, nogil=True, inline="always")
def written_off_month(p, g, t):
    """The month a loan whose claim on guarantor ``g`` falls due in month ``t`` is written off: its default month
    plus the write-off months of that month's year. Only for a month with claims due (t > the claim lag)."""
    default_month = t - p.guarantees.claim_lag[g]
    return default_month + p.risk.write_off[default_month]


@njit(cache=True, nogil=True)
def file_default(p, s, t, g, bank, amount, recovery, recovery_lag, write_off):
    """File the claim, the shared recovery and the losses of a defaulting loan guaranteed by ``g``.

    Returns
    -------
    bank_recovery, claim : float
        The bank's share of the recovery, and the claim the guarantor owes the bank (fen).
    """
    claim = liability(p, g, amount)
    cover_recovery = np.rint(p.guarantees.coverage[g] * recovery)
    due = t + p.guarantees.claim_lag[g]
    s.guarantees.due_claims[due, g, bank] += claim
    reg_claims = 0.0
    reg_recoveries = 0.0
    for k in range(p.guarantees.shares.shape[1]):
        reg_claim = np.rint(claim * p.guarantees.shares[g, k])
        reg_recovery = np.rint(cover_recovery * p.guarantees.shares[g, k])
        s.guarantees.due_reg_claims[due, g, k] += reg_claim
        s.guarantees.due_reg_recoveries[t + recovery_lag, g, k] += reg_recovery
        s.guarantees.due_reg_loss[t + write_off, k] += reg_claim - reg_recovery
        reg_claims += reg_claim
        reg_recoveries += reg_recovery
    own_recovery = cover_recovery - reg_recoveries
    s.guarantees.due_recoveries[t + recovery_lag, g] += own_recovery
    s.guarantees.due_loss[t + write_off, g] += claim - reg_claims - own_recovery
    return recovery - cover_recovery, claim


@njit(cache=True, nogil=True)
def settle(p, s, t):
    """Pay the claims due in month ``t``: re-guarantors reimburse their guarantors, then each guarantor pays its
    banks, each pro rata to what its capital allows. Fills ``s.guarantees.paid`` and ``s.guarantees.unpaid`` (guarantor × bank); the
    loss of a claim left unpaid moves to the bank, that of an unpaid reimbursement to the guarantor."""
    n_g, n_r = p.guarantees.coverage.shape[0], p.guarantees.reg_fee.shape[0]
    s.guarantees.paid[:] = 0.0
    s.guarantees.unpaid[:] = 0.0
    if n_g == 0 or not s.guarantees.due_claims[t].any():
        return
    reg_due = s.guarantees.due_reg_claims[t]             # (G, R): re-guarantor k pays column k
    reg_paid = s.guarantees.reg_paid
    reg_owed = np.zeros(n_r)
    reg_due_t = np.ascontiguousarray(reg_due.T)
    for k in range(n_r):
        reg_owed[k] = reg_due_t[k].sum()
    pay_pro_rata(reg_due_t, s.guarantees.reg_capital, reg_owed, reg_paid)
    for k in range(n_r):
        paid_k = reg_paid[k].sum()
        s.guarantees.reg_capital[k] -= paid_k
        s.guarantees.reg_flows[k, REGUARANTOR.reguarantee_claims_paid] += paid_k
        s.guarantees.reg_flows[k, REGUARANTOR.reguarantee_unpaid] += reg_owed[k] - paid_k
    due = s.guarantees.due_claims[t]                     # (G, B)
    owed = np.zeros(n_g)
    for g in range(n_g):
        received = 0.0
        for k in range(n_r):
            received += reg_paid[k, g]
        s.guarantees.capital[g] += received
        s.guarantees.flows[g, GUARANTOR.reguarantee_claims] += received
        owed[g] = due[g].sum()
    pay_pro_rata(due, s.guarantees.capital, owed, s.guarantees.paid)
    for g in range(n_g):
        paid_g = s.guarantees.paid[g].sum()
        s.guarantees.capital[g] -= paid_g
        for b in range(due.shape[1]):
            s.guarantees.unpaid[g, b] = due[g, b] - s.guarantees.paid[g, b]
        if owed[g] > 0.0:  # claims of defaults in month t − claim lag: what is left unpaid moves at their write-off
            shift = written_off_month(p, g, t)
            reg_unpaid = 0.0
            for k in range(n_r):
                left = reg_due[g, k] - reg_paid[k, g]
                reg_unpaid += left
                s.guarantees.due_reg_debt[shift, g, k] += left
                s.guarantees.due_reg_loss[shift, k] -= left
            s.guarantees.due_loss[shift, g] += reg_unpaid - (owed[g] - paid_g)
        s.guarantees.flows[g, GUARANTOR.guarantee_claims] += paid_g
        s.guarantees.flows[g, GUARANTOR.guarantee_unpaid_claims] += owed[g] - paid_g


@njit(cache=True, nogil=True)
def set_off_recoveries(p, s, t):
    """Pay the re-guarantors their shares of the recoveries due in month ``t``, less what each still owes the
    guarantor: a reimbursement it left unpaid is set off against its share of that guarantor's later recoveries (the
    guarantor keeps that part; the oldest debts first), so a re-guarantor gains from a recovery only after it has
    paid its share of the claims. The set-off moves that much loss back from the guarantor to the re-guarantor, at
    the write-off that moved the unpaid reimbursement's loss the other way (or now, when that has passed)."""
    n_g, n_r = p.guarantees.coverage.shape[0], p.guarantees.reg_fee.shape[0]
    debts = s.guarantees.due_reg_debt
    for k in range(n_r):
        received = 0.0
        for g in range(n_g):
            left = s.guarantees.due_reg_recoveries[t, g, k]
            m = 0
            while left > 0.0 and m < debts.shape[0]:
                set_off = min(left, debts[m, g, k])
                if set_off > 0.0:
                    debts[m, g, k] -= set_off
                    left -= set_off
                    when = max(m, t)
                    s.guarantees.due_recoveries[t, g] += set_off
                    s.guarantees.due_loss[when, g] -= set_off
                    s.guarantees.due_reg_loss[when, k] += set_off
                    s.guarantees.reg_flows[k, REGUARANTOR.reguarantee_set_off] += set_off
                m += 1
            received += left
        s.guarantees.reg_capital[k] += received
        s.guarantees.reg_flows[k, REGUARANTOR.reguarantor_recoveries] = received


@njit(cache=True, nogil=True)
def close_month(p, s, t):
    """Recoveries, fees, re-guarantee fees, operating costs, injections and top-ups, and the losses recognised in
    month ``t``. Re-guarantee fees, then costs, are paid out of what the guarantor has: capital never goes negative."""
    n_g, n_r = p.guarantees.coverage.shape[0], p.guarantees.reg_fee.shape[0]
    if n_g == 0 and n_r == 0:
        return
    set_off_recoveries(p, s, t)
    for k in range(n_r):
        s.guarantees.reg_flows[k, REGUARANTOR.loss_reguarantor] = s.guarantees.due_reg_loss[t, k]
    reg_fees = s.guarantees.reg_fees
    owed = np.zeros(n_g)
    subsidy_paid = 0.0
    injected_all = 0.0
    for g in range(n_g):
        s.guarantees.capital[g] += s.guarantees.due_recoveries[t, g]
        s.guarantees.flows[g, GUARANTOR.guarantee_recoveries] = s.guarantees.due_recoveries[t, g]
        fees = np.rint(p.guarantees.fee[g] / 12.0 * s.guarantees.principal[g])  # 担保费: on the loan amount guaranteed
        subsidy = np.rint(p.guarantees.fee_subsidy[g] / 12.0 * s.guarantees.principal[g])
        large = s.guarantees.outstanding[g] - s.guarantees.outstanding_small[g]
        for k in range(n_r):
            reg_fees[g, k] = np.rint(p.guarantees.shares[g, k] * (large * p.guarantees.reg_fee[k] + s.guarantees.outstanding_small[g] * p.guarantees.reg_fee_small[k]) / 12.0)
            owed[g] += reg_fees[g, k]
        s.guarantees.capital[g] += fees
        s.guarantees.flows[g, GUARANTOR.guarantee_fees] = fees
        s.guarantees.flows[g, GUARANTOR.guarantee_fee_subsidy] = subsidy
        subsidy_paid += subsidy
    pay_pro_rata(reg_fees, s.guarantees.capital, owed, reg_fees)
    for g in range(n_g):
        paid = 0.0
        for k in range(n_r):
            paid += reg_fees[g, k]
            s.guarantees.reg_capital[k] += reg_fees[g, k]
            s.guarantees.reg_flows[k, REGUARANTOR.reguarantee_fees_received] += reg_fees[g, k]
        s.guarantees.capital[g] -= paid
        costs = min(np.rint(p.guarantees.cost[g] / 12.0 * s.guarantees.outstanding[g]), max(s.guarantees.capital[g], 0.0))
        s.guarantees.capital[g] -= costs
        injected = p.guarantees.injections[t, g]
        if not math.isnan(p.guarantees.top_below[g]) and s.guarantees.capital[g] + injected < p.guarantees.top_below[g]:
            injected = p.guarantees.top_to[g] - s.guarantees.capital[g]
        s.guarantees.capital[g] += injected
        injected_all += injected
        s.guarantees.flows[g, GUARANTOR.reguarantee_fees] = paid
        s.guarantees.flows[g, GUARANTOR.guarantor_costs] = costs
        s.guarantees.flows[g, GUARANTOR.capital_injections] = injected
        s.guarantees.flows[g, GUARANTOR.loss_guarantor] = s.guarantees.due_loss[t, g]
    s.guarantees.fiscal[0] = subsidy_paid + injected_all


@njit(cache=True, nogil=True)
def record(p, s, guarantor_rows, reguarantor_rows):
    """Write the month's guarantor and re-guarantor metrics (fen; converted to CNY after the run)."""
    for g in range(p.guarantees.coverage.shape[0]):
        guarantor_rows[g, :] = s.guarantees.flows[g]
        guarantor_rows[g, GUARANTOR.guarantee_outstanding] = s.guarantees.outstanding[g]
        guarantor_rows[g, GUARANTOR.guarantee_principal] = s.guarantees.principal[g]
        guarantor_rows[g, GUARANTOR.guarantor_capital] = s.guarantees.capital[g]
    for k in range(p.guarantees.reg_fee.shape[0]):
        reguarantor_rows[k, :] = s.guarantees.reg_flows[k]
        reguarantor_rows[k, REGUARANTOR.reguarantor_capital] = s.guarantees.reg_capital[k]
