"""Risk compensation pools (风险补偿资金池): a fund that pays a share of the net loss of the loans it covers.

Partner banks lend up to ``leverage`` × the pool's balance to eligible firms; when a covered loan is written off
the pool pays ``payout_share`` of its net loss (balance less recoveries), within a per-loan and an annual cap and
its balance. What it cannot pay the bank bears. The pool is funded at the start, by a January budget and by a
January top-up to a level, in the contributors' shares; it gives no new cover while its balance is below a floor
or the non-performing share of its covered loans is above a threshold. Money is in whole fen.
"""

from __future__ import annotations

import numpy as np

from .capacity import pay_pro_rata
from .kernels import assign_pools
from .metrics import SCOPE_METRICS
from .scenario import PRODUCTS, Scenario, admitted

__all__ = ["PoolBook"]

_P = {name: i for i, name in enumerate(SCOPE_METRICS["pool"])}


class PoolBook:
    """Risk pools' state for one path.

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
        pools = list(s.pools.values())
        self.n, n_banks = len(pools), len(s.banks)
        self.start_index = s.start_index
        self.leverage = np.array([p.leverage for p in pools])
        self.share = np.array([p.payout_share for p in pools])
        self.max_loan = np.array([p.max_loan for p in pools]) * fen
        self.max_per_loan = np.array([np.inf if p.max_payout_per_loan is None else p.max_payout_per_loan * fen for p in pools])
        self.max_per_year = np.array([np.inf if p.max_payout_per_year is None else p.max_payout_per_year * fen for p in pools])
        self.bank_ok = np.array([admitted(p.banks, s.bank_names) for p in pools], dtype=bool).reshape(self.n, n_banks)
        self.segment_ok = np.array([admitted(p.segments, s.segment_names) for p in pools], dtype=bool).reshape(self.n, len(s.firms.segments))
        self.product_ok = np.array([[x in p.products for x in PRODUCTS] for p in pools], dtype=bool).reshape(self.n, len(PRODUCTS))
        self.first_only = np.array([p.first_time_only for p in pools], dtype=bool)
        self.budget = np.array([p.annual_budget for p in pools]) * fen
        self.top_up_to = np.array([np.nan if p.top_up_to is None else p.top_up_to * fen for p in pools])
        self.floor = np.array([p.suspend_below for p in pools]) * fen
        self.npl_threshold = np.array([p.suspend_npl_ratio for p in pools])
        self.government = np.array([p.contributions.get("government", 0.0) for p in pools])
        self.guarantor_share = np.array([p.contributions.get("guarantor", 0.0) for p in pools])
        self.bank_share = np.array([p.contributions.get("bank", 0.0) for p in pools])

        self.balance = np.array([p.size for p in pools]) * fen
        self.covered = np.zeros(self.n)
        self.covered_npl = np.zeros(self.n)  # covered balance that defaulted and is not yet written off
        self.paid_this_year = np.zeros(self.n)
        self.suspended = np.zeros(self.n, dtype=bool)
        self.due_payouts = np.zeros((horizon, self.n, n_banks))
        self.due_payouts_credit = np.zeros((horizon, self.n, n_banks))  # the part on credit (信用) loans
        self.due_npl_release = np.zeros((horizon, self.n))
        self.flows = np.zeros((self.n, len(_P)))
        self.fiscal = 0.0

    def open_cover(self, segment: np.ndarray, bank: np.ndarray, first_time: np.ndarray) -> np.ndarray:
        """Payout share each pool could give each applicant's credit loans now, shape (n, pools): its share where
        eligible (bank, segment, credit loans, 首贷户 if required) and the pool is neither suspended nor full, else 0."""
        taking = self.taking() & self.product_ok[:, PRODUCTS.index("credit")]
        eligible = self.bank_ok[:, bank].T & self.segment_ok[:, segment].T & (first_time[:, None] | ~self.first_only)
        return np.where(eligible & taking, self.share, 0.0)

    def taking(self) -> np.ndarray:
        """Which pools take new business now: not suspended and covered loans under leverage × balance."""
        return ~self.suspended & (self.covered < self.leverage * self.balance)

    def assign(self, segment: np.ndarray, bank: np.ndarray, product: np.ndarray, amount: np.ndarray, first_time: np.ndarray,
               guarantor: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
        """Cover for eligible loans without a guarantee: the first pool (in scenario order) that is not suspended
        and has room within leverage × balance, or, where ``only`` is not -1, that pool alone. The loans are offered
        in order, each taken when it fits in the room left (a loan that does not fit leaves room for later, smaller
        ones).

        Returns
        -------
        ndarray of int8
            The pool of each loan, -1 where none.
        """
        only = np.full(amount.shape[0], -1, dtype=np.int64) if only is None else only
        room = self.leverage * self.balance - self.covered
        return assign_pools(segment, bank, product, amount, first_time, guarantor, only, self.suspended, room, self.bank_ok, self.segment_ok,
                            self.product_ok, self.max_loan, self.first_only, self.covered)

    def release(self, pool: np.ndarray, amount: np.ndarray) -> None:
        """Covered loans that end leave the pool's covered balance."""
        covered = pool >= 0
        if covered.any():
            self.covered -= np.bincount(pool[covered].astype(np.int64), amount[covered], self.n)

    def file_default(self, t: int, pool: np.ndarray, bank: np.ndarray, amount: np.ndarray, recovery: np.ndarray, credit: np.ndarray,
                     write_off: int) -> None:
        """File the compensation a covered default will ask for at write-off: payout_share × (balance − recovery),
        within the per-loan cap."""
        covered = pool >= 0
        if not covered.any():
            return
        p, a = pool[covered].astype(np.int64), amount[covered]
        request = np.minimum(np.round(self.share[p] * (a - recovery[covered])), self.max_per_loan[p])
        np.add.at(self.due_payouts[t + write_off], (p, bank[covered]), request)
        np.add.at(self.due_payouts_credit[t + write_off], (p, bank[covered]), request * credit[covered])
        self.covered_npl += np.bincount(p, a, self.n)
        np.add.at(self.due_npl_release[t + write_off], p, a)

    def settle(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Pay the compensation due this month within balance and the annual cap, pro rata across banks.

        Returns
        -------
        paid, paid_credit : ndarray, shape (pools, banks)
            Compensation paid to each bank, and the part of it on credit (信用) loans.
        """
        due = self.due_payouts[t]
        self.covered_npl -= self.due_npl_release[t]
        if self.n == 0 or not due.any():
            return np.zeros_like(due), np.zeros_like(due)
        owed = due.sum(axis=1)
        available = np.minimum(self.balance, self.max_per_year - self.paid_this_year)
        paid = pay_pro_rata(due.T, available).T
        paid_credit = pay_pro_rata(self.due_payouts_credit[t].T, available, owed=owed).T  # the same share of each bank's credit part
        total = paid.sum(axis=1)
        self.balance -= total
        self.paid_this_year += total
        self.flows[:, _P["pool_payouts"]] += total
        self.flows[:, _P["pool_unpaid"]] += owed - total
        self.flows[:, _P["loss_pool"]] += total
        self.flows[:, _P["loss_government"]] += total * self.government
        return paid, paid_credit

    def start_month(self, t: int) -> None:
        """Reset the month's flows; in January reset the annual cap and pay in the budget and top-up."""
        self.flows[:] = 0.0
        self.fiscal = 0.0
        if self.n == 0 or (self.start_index + t - 1) % 12 != 0:
            return
        self.paid_this_year[:] = 0.0
        added = self.budget.copy()
        top = ~np.isnan(self.top_up_to)
        added[top] += np.maximum(self.top_up_to[top] - (self.balance[top] + added[top]), 0.0)
        self.balance += added
        self.flows[:, _P["pool_contributions"]] = added
        self.flows[:, _P["pool_contributions_government"]] = added * self.government
        self.flows[:, _P["pool_contributions_guarantor"]] = added * self.guarantor_share
        self.flows[:, _P["pool_contributions_bank"]] = added * self.bank_share
        self.fiscal = float((added * self.government).sum())

    def close_month(self) -> None:
        """Suspend (or resume) new cover by the balance floor and the covered NPL ratio."""
        with np.errstate(invalid="ignore", divide="ignore"):
            npl_ratio = np.where(self.covered + self.covered_npl > 0, self.covered_npl / (self.covered + self.covered_npl), 0.0)
        self.suspended = (self.balance < self.floor) | (npl_ratio > self.npl_threshold)

    def record(self, rows: np.ndarray) -> None:
        """Write this month's pool metrics (in fen; the engine converts money to CNY)."""
        rows[:] = self.flows
        rows[:, _P["pool_balance"]] = self.balance
        rows[:, _P["pool_covered"]] = self.covered
        rows[:, _P["pool_suspended"]] = self.suspended
