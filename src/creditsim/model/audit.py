"""The month-by-month audit: every running total recounted from the tables themselves (slow; for tests).

After the opening and after every month, :func:`audit` recounts each stock the engine keeps as a running total
from the borrower, loan and firm tables and the filed resolutions, and keeps in ``s.audit`` the largest difference
of each recount (:data:`CHECKS`) seen so far on the path. They must all be 0, except ``rate × balance``, a sum of
non-integer products (interest rate × fen), whose rounding is compared relative to the largest balance seen.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..scenario import PRODUCTS
from .book import loan_rate
from .columns import BOOK, DUE
from .lending import believed_pd
from .population import default_month_of
from .state import AUDIT_CHECKS as CHECKS
from .state import BORROWING, CURSOR, STATES

__all__ = ["CHECKS", "audit"]

CREDIT = PRODUCTS.index("credit")


@njit(cache=True, nogil=True)
def _check(s, k, difference):
    s.audit[k] = max(s.audit[k], abs(difference))


@njit(cache=True, nogil=True)
def audit(p, s, t):
    """Recount the path's stocks at the end of month ``t`` (see the module docstring)."""
    n_bank = s.book.shape[0]
    n_g = p.guarantees.coverage.shape[0]
    n_p = p.pools.share.shape[0]
    months = p.calendar.months
    balance = np.zeros(n_bank)
    credit = np.zeros(n_bank)
    loans = np.zeros(n_bank)
    renewal = np.zeros(n_bank)
    restructured = np.zeros(n_bank)
    deferred = np.zeros(n_bank)
    rate_balance = np.zeros(n_bank)
    borrowers = np.zeros(n_bank)
    subsidised = np.zeros(n_bank)
    liability = np.zeros(n_g)
    small = np.zeros(n_g)
    principal = np.zeros(n_g)
    covered = np.zeros(n_p)
    bad_rows = 0.0
    largest_rate = 0.0
    live = 0
    for slot in range(s.ends.shape[0]):
        if s.ends[slot] < 0:
            continue
        live += 1
        b = s.borrowers[slot]
        bank = b.bank
        borrowers[bank] += 1.0
        if b.loans < 1 or b.loans > b.block or b.first < 0 or b.first + b.block > s.loans.shape[0]:
            bad_rows += 1.0
            continue
        line = 0.0
        rate = loan_rate(p, bank, b.belief, b.start)
        largest_rate = max(largest_rate, abs(rate))
        for i in range(b.first, b.first + b.loans):
            loan = s.loans[i]
            a = loan.amount
            line += a
            balance[bank] += a
            loans[bank] += 1.0
            rate_balance[bank] += a * rate
            if loan.product == CREDIT:
                credit[bank] += a
            if loan.renewals > 0:
                renewal[bank] += a
            if b.evergreen:
                restructured[bank] += a
            if b.deferred:
                deferred[bank] += a
            if b.subsidised:
                subsidised[bank] += a
            if loan.cover >= n_g:
                covered[loan.cover - n_g] += a
            elif loan.cover >= 0:
                owed = np.rint(p.guarantees.coverage[loan.cover] * a)
                liability[loan.cover] += owed
                principal[loan.cover] += a
                if a <= p.guarantees.small_loan:
                    small[loan.cover] += owed
        _check(s, 8, line - b.line)
        _check(s, 13, believed_pd(p, b.segment, b.grade, b.signal, b.history + b.repaid) - b.belief)
        firm = s.firms[b.firm]
        _check(s, 19, 0.0 if firm.state == BORROWING and firm.slot == slot else 1.0)
        distressed = b.default_month <= months and b.default_month <= b.maturity
        contracted = b.default_month <= months and b.default_month <= b.start + b.term  # by the maturity agreed, before any deferral
        by_default = distressed and not b.masked and not b.deferred
        _check(s, 24, 0.0 if s.by_default[slot] == by_default and b.evergreen == (contracted and b.masked) else 1.0)
        end = min(b.default_month if s.by_default[slot] else b.maturity, months + 1)
        _check(s, 20, 0.0 if default_month_of(p, s, b.firm) == b.default_month else 1.0)
        _check(s, 20, 0.0 if end == s.ends[slot] and s.ends[slot] > t else 1.0)
    scale = 1.0
    for bank in range(n_bank):
        scale = max(scale, s.book[bank, BOOK.balance], balance[bank])
    scale = max(scale * max(1.0, largest_rate), s.audit_scale[0])  # the largest seen: a book that has shrunk keeps the
    s.audit_scale[0] = scale                                       # rounding of the larger sums it was made of
    for bank in range(n_bank):
        book = s.book[bank]
        _check(s, 0, balance[bank] - book[BOOK.balance])
        _check(s, 1, credit[bank] - book[BOOK.credit])
        _check(s, 2, loans[bank] - book[BOOK.loans])
        _check(s, 3, renewal[bank] - book[BOOK.renewal])
        _check(s, 4, restructured[bank] - book[BOOK.restructured])
        _check(s, 26, deferred[bank] - book[BOOK.deferred])
        _check(s, 5, (rate_balance[bank] - book[BOOK.rate_balance]) / scale)
        _check(s, 6, borrowers[bank] - book[BOOK.firms])
        _check(s, 11, subsidised[bank] - s.subsidy.balance[bank])
        pending = 0.0
        pending_credit = 0.0
        pending_loans = 0.0
        pending_firms = 0.0
        for month in range(t + 1, s.due.shape[0]):
            due = s.due[month, bank]
            pending += due[DUE.recovered] + due[DUE.written_off]
            pending_credit += due[DUE.recovered_credit] + due[DUE.written_off_credit]
            pending_loans += due[DUE.loans]
            pending_firms += due[DUE.firms]
            for g in range(n_g):
                pending += s.guarantees.due_claims[month, g, bank]
        _check(s, 14, pending - book[BOOK.npl_balance])
        _check(s, 15, pending_credit - book[BOOK.npl_credit])
        _check(s, 16, pending_loans - book[BOOK.npl_loans])
        _check(s, 17, pending_firms - book[BOOK.npl_firms])
    for g in range(n_g):
        _check(s, 9, liability[g] - s.guarantees.outstanding[g])
        _check(s, 10, small[g] - s.guarantees.outstanding_small[g])
        _check(s, 25, principal[g] - s.guarantees.principal[g])
    for k in range(n_p):
        _check(s, 12, covered[k] - s.pools.covered[k])
    _check(s, 7, bad_rows)
    # the firms: counts by state, borrowers pointing at live rows, firms without a loan still due to leave later
    counts = np.zeros(s.unbanked.shape, np.int64)
    late = 0.0
    for firm in range(s.cursor[CURSOR.firms]):
        row = s.firms[firm]
        if row.state < STATES:
            counts[row.segment, row.grade, row.state] += 1
            if row.leave <= t:
                late += 1.0
        elif row.state == BORROWING:
            if row.slot < 0 or s.ends[row.slot] < 0 or s.borrowers[row.slot].firm != firm:
                late += 1.0
    difference = 0.0
    for seg in range(counts.shape[0]):
        for grade in range(counts.shape[1]):
            for state in range(counts.shape[2]):
                difference = max(difference, abs(counts[seg, grade, state] - s.unbanked[seg, grade, state]))
    _check(s, 18, difference)
    _check(s, 22, late)
    _check(s, 21, 0.0 if math.isfinite(balance.sum()) else 1.0)
    _check(s, 23, float(s.ends.shape[0] - live - s.cursor[CURSOR.free_slots]))
