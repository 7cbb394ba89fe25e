"""Risk compensation pools (风险补偿资金池): a fund that pays a share of the net loss of the loans it covers.

Partner banks lend up to ``leverage`` × the pool's balance to eligible firms; when a covered loan is written off the
pool pays ``payout_share`` of its net loss (balance less recoveries), within a per-loan and an annual cap and its
balance; what it cannot pay the bank bears. The pool is funded at the start, by a January budget and by a January
top-up to a level, in the contributors' shares; it gives no new cover while its balance is below a floor or the
non-performing share of its covered loans is above a threshold. This module owns the pools' books; money is in
whole fen.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import numpy as np
from numba import njit

from ...metrics import SCOPE_METRICS
from ...scenario import PRODUCTS, Scenario, admitted
from ..columns import FEN, POOL
from ..structs import BOOL_1, FLOAT_1, FLOAT_2, FLOAT_3, FROZEN_BOOL_1, FROZEN_BOOL_2, FROZEN_FLOAT_1
from .payments import pay_pro_rata

__all__ = ["PoolParams", "PoolState", "parameters", "new_state", "reset", "open_month", "taking", "assign", "hold", "release", "file_default",
           "settle", "close_month", "record"]


class PoolParams(NamedTuple):
    """Pools' rules, as arrays (P pools, B banks, S segments); money in fen."""

    leverage: Annotated[np.ndarray, FROZEN_FLOAT_1]          # (P,)
    share: Annotated[np.ndarray, FROZEN_FLOAT_1]             # (P,) payout share of a covered loan's net loss
    max_loan: Annotated[np.ndarray, FROZEN_FLOAT_1]          # (P,) fen
    max_per_loan: Annotated[np.ndarray, FROZEN_FLOAT_1]      # (P,) fen (inf: no cap)
    max_per_year: Annotated[np.ndarray, FROZEN_FLOAT_1]      # (P,) fen (inf: no cap)
    bank_ok: Annotated[np.ndarray, FROZEN_BOOL_2]           # (P, B) bool
    segment_ok: Annotated[np.ndarray, FROZEN_BOOL_2]        # (P, S) bool
    product_ok: Annotated[np.ndarray, FROZEN_BOOL_2]        # (P, products) bool
    first_only: Annotated[np.ndarray, FROZEN_BOOL_1]        # (P,) bool: only 首贷户
    budget: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (P,) January budget, fen
    top_up_to: Annotated[np.ndarray, FROZEN_FLOAT_1]         # (P,) January top-up level, fen (NaN: none)
    floor: Annotated[np.ndarray, FROZEN_FLOAT_1]             # (P,) no new cover below this balance, fen
    npl_threshold: Annotated[np.ndarray, FROZEN_FLOAT_1]     # (P,) no new cover above this covered NPL ratio
    government: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (P,) contribution shares
    guarantor_share: Annotated[np.ndarray, FROZEN_FLOAT_1]   # (P,)
    bank_share: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (P,)
    size: Annotated[np.ndarray, FROZEN_FLOAT_1]              # (P,) starting balance, fen


class PoolState(NamedTuple):
    """One path's pool books (H rows of filings); money in fen."""

    balance: Annotated[np.ndarray, FLOAT_1]           # (P,)
    covered: Annotated[np.ndarray, FLOAT_1]           # (P,) performing covered balance
    covered_npl: Annotated[np.ndarray, FLOAT_1]       # (P,) covered balance defaulted and not yet written off
    paid_this_year: Annotated[np.ndarray, FLOAT_1]    # (P,)
    suspended: Annotated[np.ndarray, BOOL_1]         # (P,) bool
    due_payouts: Annotated[np.ndarray, FLOAT_3]       # (H, P, B) compensation requested at write-off
    due_payouts_credit: Annotated[np.ndarray, FLOAT_3]  # (H, P, B) the part on credit (信用) loans
    due_npl_release: Annotated[np.ndarray, FLOAT_2]   # (H, P)
    flows: Annotated[np.ndarray, FLOAT_2]             # (P, pool metrics)
    paid: Annotated[np.ndarray, FLOAT_2]              # (P, B) paid this month
    paid_credit: Annotated[np.ndarray, FLOAT_2]       # (P, B) the part on credit loans
    fiscal: Annotated[np.ndarray, FLOAT_1]            # (1,) government money this month


def parameters(s: Scenario) -> PoolParams:
    """The pools of a (sampled) scenario."""
    pools = list(s.pools.values())
    n, banks, segments = len(pools), len(s.banks), len(s.firms.segments)
    array = lambda values: np.array(values, dtype=np.float64).reshape(-1)  # noqa: E731
    return PoolParams(
        leverage=array([x.leverage for x in pools]), share=array([x.payout_share for x in pools]),
        max_loan=array([x.max_loan * FEN for x in pools]),
        max_per_loan=array([math.inf if x.max_payout_per_loan is None else x.max_payout_per_loan * FEN for x in pools]),
        max_per_year=array([math.inf if x.max_payout_per_year is None else x.max_payout_per_year * FEN for x in pools]),
        bank_ok=np.array([admitted(x.banks, s.bank_names) for x in pools], dtype=np.bool_).reshape(n, banks),
        segment_ok=np.array([admitted(x.segments, s.segment_names) for x in pools], dtype=np.bool_).reshape(n, segments),
        product_ok=np.array([[name in x.products for name in PRODUCTS] for x in pools], dtype=np.bool_).reshape(n, len(PRODUCTS)),
        first_only=np.array([x.first_time_only for x in pools], dtype=np.bool_).reshape(n),
        budget=array([x.annual_budget * FEN for x in pools]),
        top_up_to=array([math.nan if x.top_up_to is None else x.top_up_to * FEN for x in pools]),
        floor=array([x.suspend_below * FEN for x in pools]), npl_threshold=array([x.suspend_npl_ratio for x in pools]),
        government=array([x.contributions.get("government", 0.0) for x in pools]),
        guarantor_share=array([x.contributions.get("guarantor", 0.0) for x in pools]),
        bank_share=array([x.contributions.get("bank", 0.0) for x in pools]),
        size=array([x.size * FEN for x in pools]),
    )


def new_state(p: PoolParams, horizon: int, banks: int) -> PoolState:
    """Zeroed books for paths of ``horizon`` filing months (:func:`reset` starts each path)."""
    n = p.share.shape[0]
    z = np.zeros
    return PoolState(balance=z(n), covered=z(n), covered_npl=z(n), paid_this_year=z(n), suspended=z(n, np.bool_),
                     due_payouts=z((horizon, n, banks)), due_payouts_credit=z((horizon, n, banks)), due_npl_release=z((horizon, n)),
                     flows=z((n, len(SCOPE_METRICS["pool"]))), paid=z((n, banks)), paid_credit=z((n, banks)), fiscal=z(1))


@njit(cache=True, nogil=True)
def reset(p, s):
    """Start a path: the starting balances, nothing covered or filed."""
    s.pools.balance[:] = p.pools.size
    s.pools.covered[:] = 0.0
    s.pools.covered_npl[:] = 0.0
    s.pools.paid_this_year[:] = 0.0
    s.pools.suspended[:] = False
    s.pools.due_payouts[:] = 0.0
    s.pools.due_payouts_credit[:] = 0.0
    s.pools.due_npl_release[:] = 0.0
    s.pools.flows[:] = 0.0
    s.pools.fiscal[0] = 0.0


@njit(cache=True, nogil=True)
def open_month(p, s, january):
    """Reset the month's flows; in January reset the annual cap and pay in the budget and the top-up, in the
    contributors' shares."""
    s.pools.flows[:] = 0.0
    s.pools.fiscal[0] = 0.0
    if not january:
        return
    for k in range(p.pools.share.shape[0]):
        s.pools.paid_this_year[k] = 0.0
        added = p.pools.budget[k]
        if not math.isnan(p.pools.top_up_to[k]):
            added += max(p.pools.top_up_to[k] - (s.pools.balance[k] + added), 0.0)
        s.pools.balance[k] += added
        s.pools.flows[k, POOL.pool_contributions] = added
        s.pools.flows[k, POOL.pool_contributions_government] = added * p.pools.government[k]
        s.pools.flows[k, POOL.pool_contributions_guarantor] = added * p.pools.guarantor_share[k]
        s.pools.flows[k, POOL.pool_contributions_bank] = added * p.pools.bank_share[k]
        s.pools.fiscal[0] += added * p.pools.government[k]


@njit(cache=True, nogil=True, inline="always")
def taking(p, s, k):
    """Whether pool ``k`` takes new business now: not suspended, covered loans under leverage × balance."""
    return not s.pools.suspended[k] and s.pools.covered[k] < p.pools.leverage[k] * s.pools.balance[k]


@njit(cache=True, nogil=True, inline="always")
def admits(p, k, segment, bank, product, first_time):
    """Whether pool ``k``'s rules admit a loan of this bank, segment and product (and firm, when only 首贷户)."""
    return p.pools.bank_ok[k, bank] and p.pools.segment_ok[k, segment] and p.pools.product_ok[k, product] and (first_time or not p.pools.first_only[k])


@njit(cache=True, nogil=True, inline="always")
def assign(p, s, k, segment, bank, product, amount, first_time):
    """Cover one loan without a guarantee if pool ``k`` admits it and has room; returns whether it does. Room: not
    suspended and the loan within leverage × balance less what is covered (loans are offered one at a time, so
    one that does not fit leaves room to later, smaller ones)."""
    if s.pools.suspended[k] or not admits(p, k, segment, bank, product, first_time) or amount > p.pools.max_loan[k]:
        return False
    if s.pools.covered[k] + amount > p.pools.leverage[k] * s.pools.balance[k]:
        return False
    hold(p, s, k, amount)
    return True


@njit(cache=True, nogil=True, inline="always")
def hold(p, s, k, amount):
    """Pool ``k`` covers one loan: one it has taken (:func:`assign`), or an existing cover of a bank's loan tape, held
    whatever room is left."""
    s.pools.covered[k] += amount


@njit(cache=True, nogil=True, inline="always")
def release(p, s, k, amount):
    """A covered loan ends: it leaves the pool's covered balance."""
    s.pools.covered[k] -= amount


@njit(cache=True, nogil=True)
def file_default(p, s, t, k, bank, amount, recovery, credit, write_off):
    """File the compensation a covered default will ask for at write-off: payout_share × (balance − recovery),
    within the per-loan cap."""
    request = min(np.rint(p.pools.share[k] * (amount - recovery)), p.pools.max_per_loan[k])
    s.pools.due_payouts[t + write_off, k, bank] += request
    if credit:
        s.pools.due_payouts_credit[t + write_off, k, bank] += request
    s.pools.covered_npl[k] += amount
    s.pools.due_npl_release[t + write_off, k] += amount


@njit(cache=True, nogil=True)
def settle(p, s, t):
    """Pay the compensation due in month ``t`` within the balance and what is left of the annual cap, pro rata
    across banks; fills ``s.pools.paid`` and ``s.pools.paid_credit`` (pool × bank)."""
    n = p.pools.share.shape[0]
    s.pools.paid[:] = 0.0
    s.pools.paid_credit[:] = 0.0
    for k in range(n):
        s.pools.covered_npl[k] -= s.pools.due_npl_release[t, k]
    if n == 0 or not s.pools.due_payouts[t].any():
        return
    owed = np.zeros(n)
    available = np.zeros(n)
    for k in range(n):
        owed[k] = s.pools.due_payouts[t, k].sum()
        available[k] = min(s.pools.balance[k], p.pools.max_per_year[k] - s.pools.paid_this_year[k])
    pay_pro_rata(s.pools.due_payouts[t], available, owed, s.pools.paid)
    pay_pro_rata(s.pools.due_payouts_credit[t], available, owed, s.pools.paid_credit)  # the same share of each bank's credit part
    for k in range(n):
        total = s.pools.paid[k].sum()
        s.pools.balance[k] -= total
        s.pools.paid_this_year[k] += total
        s.pools.flows[k, POOL.pool_payouts] += total
        s.pools.flows[k, POOL.pool_unpaid] += owed[k] - total
        s.pools.flows[k, POOL.loss_pool] += total
        s.pools.flows[k, POOL.loss_government] += total * p.pools.government[k]


@njit(cache=True, nogil=True)
def close_month(p, s):
    """Suspend (or resume) new cover by the balance floor and the covered NPL ratio."""
    for k in range(p.pools.share.shape[0]):
        total = s.pools.covered[k] + s.pools.covered_npl[k]
        ratio = s.pools.covered_npl[k] / total if total > 0.0 else 0.0
        s.pools.suspended[k] = s.pools.balance[k] < p.pools.floor[k] or ratio > p.pools.npl_threshold[k]


@njit(cache=True, nogil=True)
def record(p, s, rows):
    """Write the month's pool metrics (fen; converted to CNY after the run)."""
    for k in range(p.pools.share.shape[0]):
        rows[k, :] = s.pools.flows[k]
        rows[k, POOL.pool_balance] = s.pools.balance[k]
        rows[k, POOL.pool_covered] = s.pools.covered[k]
        rows[k, POOL.pool_suspended] = 1.0 if s.pools.suspended[k] else 0.0
