"""The month's metrics: each scope's row written from the running totals and the month's flows (money in fen;
the engine's caller converts it to CNY and computes the ratios, see :mod:`.engine`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .columns import BANK, BOOK, POPULATION
from .instruments import guarantees, pools
from .state import DECLINED, NEVER

__all__ = ["record"]


@njit(cache=True, nogil=True)
def record(p, s, t, bank_rows, guarantor_rows, reguarantor_rows, pool_rows, population_row, fiscal_extra):
    """Write month ``t``'s rows: flows, then the stocks at the month's end."""
    for bank in range(s.book.shape[0]):
        row = bank_rows[bank]
        row[:] = s.flows[bank]
        book = s.book[bank]
        balance = book[BOOK.balance] + book[BOOK.npl_balance]
        row[BANK.balance] = balance
        row[BANK.borrowers] = book[BOOK.firms] + book[BOOK.npl_firms]
        row[BANK.loans] = book[BOOK.loans] + book[BOOK.npl_loans]
        row[BANK.npl_balance] = book[BOOK.npl_balance]
        row[BANK.credit_loan_balance] = book[BOOK.credit] + book[BOOK.npl_credit]
        row[BANK.renewal_balance] = book[BOOK.renewal]
        row[BANK.restructured_balance] = book[BOOK.restructured]
        row[BANK.deferred_balance] = book[BOOK.deferred]
        row[BANK.all_loans_balance] = np.rint(book[BOOK.other_loans] * p.banks.other_growth[t, bank]) + balance
        row[BANK.small_micro_balance] = np.rint(p.banks.small_micro_outside[bank] * p.banks.small_micro_growth[t, bank]) + balance
        row[BANK.small_micro_first_loan_amount] = (np.rint(p.banks.first_loans_outside[bank]) if t > 0 else 0.0) + row[BANK.first_loan_amount]
    guarantees.record(p, s, guarantor_rows, reguarantor_rows)
    pools.record(p, s, pool_rows)
    population_row[:] = s.population
    unbanked = 0.0
    never = 0.0
    n_seg, n_grade, n_state = s.unbanked.shape
    for seg in range(n_seg):
        for grade in range(n_grade):
            for state in range(n_state):
                unbanked += s.unbanked[seg, grade, state]
            never += s.unbanked[seg, grade, NEVER] + s.unbanked[seg, grade, DECLINED]
    performing = 0.0
    for bank in range(s.book.shape[0]):
        performing += s.book[bank, BOOK.firms]
    population_row[POPULATION.unbanked_firms] = unbanked
    population_row[POPULATION.never_borrowed_firms] = never
    population_row[POPULATION.firms] = unbanked + performing
    population_row[POPULATION.fiscal_cost] = s.guarantees.fiscal[0] + s.pools.fiscal[0] + fiscal_extra
