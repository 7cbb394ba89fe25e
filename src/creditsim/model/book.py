"""The tables of a path and the banks' running totals: handing out and taking back rows, a firm's state, and adding a
loan to the books or taking it off.

Every stock the engine reports is a running total, changed by the same flows that are reported: :func:`open_loan`
adds a loan to its bank's performing book (and to the interest subsidy's), :func:`close_loan` takes it off (and
releases its cover, which :func:`creditsim.model.cover.cover_loan` took when the loan was offered), so the balance
identities hold by construction; money is whole fen, so the sums are exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..scenario import PRODUCTS
from .columns import BANK, BOOK
from .cover import release
from .instruments import subsidy
from .state import CURSOR, DECLINED, GONE, NEVER, OVERFLOW, STATES
from .structs import prefetch

__all__ = ["new_firm", "set_state", "schedule", "take_slot", "free_slot", "take_block", "free_block", "loan_rate", "set_end", "open_loan", "close_loan",
           "overflow", "ahead"]

CREDIT = PRODUCTS.index("credit")
AHEAD = 16  # how many borrowers ahead an event loop asks for rows (measured: 8 helps less, 32 no more)


@njit(cache=True, nogil=True, inline="always")
def ahead(s, slots, k, n):
    """Prefetch, while borrower ``slots[k]`` of ``slots[:n]`` is handled, the row of the one :data:`AHEAD` places on
    and the loans and firm row of the one half as far (whose row has arrived by then): the rows of a month's events
    are scattered over the tables, and a borrower's handling waits on them."""
    if k + AHEAD < n:
        prefetch(s.borrowers, slots[k + AHEAD])
    if k + AHEAD // 2 < n:
        b = s.borrowers[slots[k + AHEAD // 2]]
        prefetch(s.loans, b.first)
        prefetch(s.loans, b.first + b.loans - 1)
        prefetch(s.firms, b.firm)


@njit(cache=True, nogil=True, inline="always")
def overflow(s, code):
    """Mark that a table ran out (the path stops and runs again with larger tables)."""
    if s.cursor[CURSOR.overflow] == 0:
        s.cursor[CURSOR.overflow] = code


@njit(cache=True, nogil=True, inline="always")
def new_firm(p, s, segment, grade, state, clock):
    """A row for a firm entering the run in ``state`` (its default clock running from the end of month ``clock``); -1
    when the table is full."""
    f = s.cursor[CURSOR.firms]
    if f >= s.firms.shape[0]:
        overflow(s, OVERFLOW.firms)
        return -1
    s.cursor[CURSOR.firms] = f + 1
    row = s.firms[f]
    row.segment = segment
    row.grade = grade
    row.state = GONE
    row.clock = clock
    row.leave = -1
    row.slot = -1
    set_state(p, s, f, state)
    return f


@njit(cache=True, nogil=True, inline="always")
def set_state(p, s, firm, state):
    """Move a firm to ``state`` (see :data:`creditsim.model.state.STATES`), keeping the counts and bit sets of the
    firms without a loan."""
    row = s.firms[firm]
    old = row.state
    segment = row.segment
    if old < STATES:
        s.unbanked[segment, row.grade, old] -= 1
    if state < STATES:
        s.unbanked[segment, row.grade, state] += 1
    row.state = state
    block, bit = firm >> 6, np.uint64(1) << np.uint64(firm & 63)
    if state < STATES:
        s.open_bits[segment, block] |= bit
    else:
        s.open_bits[segment, block] &= ~bit
    if (state == NEVER or state == DECLINED) and p.campaign.listed[segment]:
        s.campaign_bits[0, block] |= bit
    else:
        s.campaign_bits[0, block] &= ~bit


@njit(cache=True, nogil=True, inline="always")
def schedule(s, firm, month, months):
    """File a firm without a loan under the month it leaves (fails or closes), if within the run."""
    s.firms[firm].leave = month
    if month > months:
        return
    node = s.cursor[CURSOR.free_events]
    if node < 0:
        overflow(s, OVERFLOW.events)
        return
    s.cursor[CURSOR.free_events] = s.event_next[node]
    s.event_firm[node] = firm
    s.event_next[node] = s.event_head[month]
    s.event_head[month] = node


@njit(cache=True, nogil=True, inline="always")
def take_slot(s):
    """A free borrower row; -1 when the table is full."""
    n = s.cursor[CURSOR.free_slots]
    if n == 0:
        overflow(s, OVERFLOW.borrowers)
        return -1
    s.cursor[CURSOR.free_slots] = n - 1
    if n > 1:  # the row the next new borrower takes
        prefetch(s.borrowers, s.free_slots[n - 2])
    return s.free_slots[n - 1]


@njit(cache=True, nogil=True, inline="always")
def free_slot(s, slot):
    s.ends[slot] = -1
    n = s.cursor[CURSOR.free_slots]
    s.free_slots[n] = slot
    s.cursor[CURSOR.free_slots] = n + 1


@njit(cache=True, nogil=True, inline="always")
def take_block(s, size):
    """The first row of ``size`` consecutive free loan rows: a freed block of that size, or new rows; -1 when the
    table is full."""
    if size > s.block_free.shape[0] - 1:
        overflow(s, OVERFLOW.loans)
        return -1
    first = s.block_free[size]
    if first >= 0:
        following = s.block_next[first]
        s.block_free[size] = following
        if following >= 0:  # what the next block of this size will need
            prefetch(s.block_next, following)
            prefetch(s.loans, following)
        return first
    top = s.cursor[CURSOR.loans_top]
    if top + size > s.loans.shape[0]:
        overflow(s, OVERFLOW.loans)
        return -1
    s.cursor[CURSOR.loans_top] = top + size
    return top


@njit(cache=True, nogil=True, inline="always")
def free_block(s, first, size):
    s.block_next[first] = s.block_free[size]
    s.block_free[size] = first


@njit(cache=True, nogil=True, inline="always")
def loan_rate(p, bank, belief, start):
    """The annual rate of a loan made in month ``start`` (before the run: the opening's) priced at ``belief`` (a
    believed PD): the bank's rate in the year of ``start`` plus rate_per_pd × belief. A borrower's loans carry the
    rate of their start and its belief (which change only at a maturity, after its loans have ended)."""
    return p.banks.rate[bank, max(start, 0)] + p.banks.rate_per_pd[bank] * belief


@njit(cache=True, nogil=True, inline="always")
def set_end(p, s, slot):
    """File borrower ``slot``'s loans under the month they end: its firm's default month when that comes by their
    maturity, unless they were made by a renewal (masked: they then default at maturity, evergreened), else their
    maturity; M + 1 when not within the run."""
    b = s.borrowers[slot]
    months = p.calendar.months
    distressed = b.default_month <= months and b.default_month <= b.maturity
    by_default = distressed and not b.masked
    b.evergreen = distressed and b.masked
    s.by_default[slot] = by_default
    s.ends[slot] = min(b.default_month if by_default else b.maturity, months + 1)


@njit(cache=True, nogil=True, inline="always")
def open_loan(p, s, slot, i, counted):
    """Add loan row ``i`` of borrower ``slot`` to the performing book (and its subsidy); ``counted`` adds it to the
    month's lending flows too (not for the opening book, which is a stock)."""
    b = s.borrowers[slot]
    loan = s.loans[i]
    a = loan.amount
    row = s.book[b.bank]
    row[BOOK.balance] += a
    row[BOOK.loans] += 1.0
    rate = loan_rate(p, b.bank, b.belief, b.start)
    row[BOOK.rate_balance] += a * rate
    credit = loan.product == CREDIT
    if credit:
        row[BOOK.credit] += a
    if loan.renewals > 0:
        row[BOOK.renewal] += a
    if b.evergreen:
        row[BOOK.restructured] += a
    if b.subsidised:
        subsidy.assign(p, s, b.bank, a)
    if counted:
        flows = s.flows[b.bank]
        flows[BANK.disbursed] += a
        flows[BANK.disbursed_interest] += a * rate
        if credit:
            flows[BANK.credit_loan_disbursed] += a
        if b.first_time:
            flows[BANK.first_time_borrower_lending] += a
        if loan.cover >= 0 and loan.cover < p.guarantees.coverage.shape[0]:
            flows[BANK.guaranteed_disbursed] += a


@njit(cache=True, nogil=True, inline="always")
def close_loan(p, s, slot, i):
    """Take loan row ``i`` of borrower ``slot`` off the performing book; its cover and subsidy release it."""
    b = s.borrowers[slot]
    loan = s.loans[i]
    a = loan.amount
    row = s.book[b.bank]
    row[BOOK.balance] -= a
    row[BOOK.loans] -= 1.0
    row[BOOK.rate_balance] -= a * loan_rate(p, b.bank, b.belief, b.start)
    if loan.product == CREDIT:
        row[BOOK.credit] -= a
    if loan.renewals > 0:
        row[BOOK.renewal] -= a
    if b.evergreen:
        row[BOOK.restructured] -= a
    if b.deferred:
        row[BOOK.deferred] -= a
    if b.subsidised:
        subsidy.release(p, s, b.bank, a)
    release(p, s, loan.cover, a)
