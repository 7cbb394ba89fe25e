"""The loan-level trace: for the paths asked for, a record of every loan when it ends (or at the horizon).

Each record (:data:`creditsim.model.state.TRACE`) holds the path, the firm (its identity for the whole run), its bank,
segment and grade, the month the loan started and the month it ended, how it ended (:data:`HOW`), its product, its
consecutive renewals, whether its firm is a 首贷户, its cover, its amount and its interest rate. The recovery and write-off months of a defaulted loan follow from
its end month and the scenario's lags.
"""

from __future__ import annotations

from numba import njit

from .book import loan_rate, overflow
from .state import CURSOR, OVERFLOW

__all__ = ["HOW", "REPAID", "REBORROWED", "RENEWED", "GRADUATED", "DEFAULTED", "LIQUIDITY_DEFAULT", "OUTSTANDING", "record_loan", "record_outstanding"]

#: How a loan ended: repaid (and not followed by a new loan); repaid and followed by a new loan to the same firm;
#: renewed without repayment of principal (无还本续贷); repaid when its firm's line passed the inclusive limit;
#: defaulted (its firm's default month came, or it could not repay or renew at a maturity while insolvent); a
#: solvent firm's liquidity default at maturity; still outstanding at the end of the run.
HOW = ("repaid", "reborrowed", "renewed", "graduated", "defaulted", "liquidity_default", "outstanding")
REPAID, REBORROWED, RENEWED, GRADUATED, DEFAULTED, LIQUIDITY_DEFAULT, OUTSTANDING = range(len(HOW))


@njit(cache=True, nogil=True)
def record_loan(p, s, path, slot, i, t, how, rate):
    """Append loan row ``i`` of borrower ``slot``, ended in month ``t`` as ``how``, made at annual ``rate``."""
    n = s.cursor[CURSOR.traced]
    if n >= s.trace.shape[0]:
        overflow(s, OVERFLOW.trace)
        return
    s.cursor[CURSOR.traced] = n + 1
    b = s.borrowers[slot]
    loan = s.loans[i]
    row = s.trace[n]
    row.path = path
    row.firm = b.firm
    row.bank = b.bank
    row.segment = b.segment
    row.grade = b.grade
    row.start = b.start
    row.end = t
    row.how = how
    row.product = loan.product
    row.renewals = loan.renewals
    row.first_time = b.first_time
    row.cover = loan.cover
    row.amount = loan.amount
    row.rate = rate


@njit(cache=True, nogil=True)
def record_outstanding(p, s, path):
    """At the horizon: append every loan still on the books, as outstanding."""
    months = p.calendar.months
    for slot in range(s.ends.shape[0]):
        if s.ends[slot] < 0:
            continue
        b = s.borrowers[slot]
        rate = loan_rate(p, b.bank, b.belief, b.start)
        for i in range(b.first, b.first + b.loans):
            record_loan(p, s, path, slot, i, months, OUTSTANDING, rate)
