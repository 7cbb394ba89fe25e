"""Deferral of principal (延期还本付息, ``relief.deferrals``): a borrower's maturing loans fall due later.

At a maturity in a deferral window, a borrower the window admits (its bank and segment, a believed PD within the
window's ``max_pd``) has its loans deferred with the window's uptake (one draw keyed by the firm and the month; where
windows overlap, the first that admits the borrower decides). A deferred borrower's loans stay on the books as they
are (same loans, cover and rate; nothing repaid, lent or renewed) and fall due ``months`` later; its firm's default,
if it comes before then, is postponed to the new maturity, where the firm is insolvent and is settled as any
insolvent borrower (:func:`creditsim.model.maturity.settle`: it defaults unless every loan is renewed). A
maturity that falls in a window again may be deferred again. See docs/explanation/model.md §4.
"""

from __future__ import annotations

from numba import njit

from .columns import BANK, BOOK

__all__ = ["deferral_window", "defer"]


@njit(cache=True, nogil=True, inline="always")
def deferral_window(p, t, b):
    """The first deferral window open in month ``t`` that admits borrower row ``b`` (its bank, its segment, its
    believed PD), or -1."""
    r = p.relief
    for window in range(r.deferral_first.shape[0]):
        if (r.deferral_first[window] <= t <= r.deferral_last[window] and r.deferral_bank[window, b.bank]
                and r.deferral_segment[window, b.segment] and b.belief <= r.deferral_max_pd[window]):
            return window
    return -1


@njit(cache=True, nogil=True)
def defer(p, s, t, slot, window):
    """Defer borrower ``slot``'s loans maturing in month ``t`` by the window's months: they are filed under the new
    maturity (never under the firm's default month, which is postponed to it) and their balance counts in the
    month's ``deferred`` and, until they end, in ``deferred_balance``."""
    b = s.borrowers[slot]
    amount = 0.0
    for i in range(b.first, b.first + b.loans):
        amount += s.loans[i].amount
    s.flows[b.bank, BANK.deferred] += amount
    if not b.deferred:
        s.book[b.bank, BOOK.deferred] += amount
    b.deferred = True
    b.maturity = t + p.relief.deferral_months[window]
    s.by_default[slot] = False
    s.ends[slot] = min(b.maturity, p.calendar.months + 1)
