"""Defaults and the loss waterfall: a defaulting borrower's loans turn non-performing; their recoveries, guarantee
claims, pool compensation and write-offs are filed for later months and booked when they fall due.

A defaulted loan of amount A has a recovery R = round(A (1 − LGD)), LGD the product's mean or a Beta draw around it
(keyed by the firm, the month and the loan), booked after ``recovery_lag_months``; what is not recovered is written
off after ``write_off_months`` (those of the year of the default: the banks' pace of NPL disposal), when every
party's loss is recognised. A guaranteed loan's claim and a covered loan's
compensation are the instruments' (see :mod:`.cover`); the bank books a paid claim or compensation as a recovery.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..scenario import PRODUCTS
from .book import close_loan, free_block, free_slot, loan_rate, set_state
from .columns import BANK, BOOK, DUE, POPULATION
from .cover import file_default
from .instruments import guarantees, pools
from .random import KEY, beta
from .state import GONE
from .trace import DEFAULTED, LIQUIDITY_DEFAULT, record_loan

__all__ = ["default", "claims", "resolutions", "opening_stock", "tape_stock"]

CREDIT = PRODUCTS.index("credit")


@njit(cache=True, nogil=True)
def default(p, s, t, slot, liquidity, path, traced):
    """Every loan of borrower ``slot`` defaults in month ``t`` (a liquidity default when ``liquidity``); the firm
    fails and leaves the run."""
    b = s.borrowers[slot]
    bank, firm = b.bank, b.firm
    flows = s.flows[bank]
    book = s.book[bank]
    for i in range(b.first, b.first + b.loans):
        close_loan(p, s, slot, i)
        loan = s.loans[i]
        a = loan.amount
        credit = loan.product == CREDIT
        lgd = beta(s.keys[KEY.lgd], firm, t, loan.index * 1024, p.risk.lgd_a[loan.product], p.risk.lgd_b[loan.product]) if p.risk.lgd_random else p.risk.lgd_mean[loan.product]
        recovery = np.rint(a * (1.0 - lgd))
        bank_recovery, claim = file_default(p, s, t, loan.cover, bank, a, recovery, credit)
        due_recovery = s.due[t + p.risk.recovery_lag, bank]
        due_write_off = s.due[t + p.risk.write_off[t], bank]
        due_recovery[DUE.recovered] += bank_recovery
        due_write_off[DUE.written_off] += a - claim - bank_recovery
        if credit:
            due_recovery[DUE.recovered_credit] += bank_recovery
            due_write_off[DUE.written_off_credit] += a - claim - bank_recovery
            book[BOOK.npl_credit] += a
        due_write_off[DUE.net_loss] += a - recovery
        due_write_off[DUE.loans] += 1.0
        book[BOOK.npl_balance] += a
        book[BOOK.npl_loans] += 1.0
        flows[BANK.defaulted] += a
        flows[BANK.defaults] += 1.0
        if b.first_time:
            flows[BANK.first_time_defaults] += 1.0
            flows[BANK.first_time_defaulted] += a
        if liquidity:
            flows[BANK.liquidity_defaults] += 1.0
        if traced:
            record_loan(p, s, path, slot, i, t, LIQUIDITY_DEFAULT if liquidity else DEFAULTED, loan_rate(p, bank, b.belief, b.start))
    s.due[t + p.risk.write_off[t], bank, DUE.firms] += 1.0
    book[BOOK.npl_firms] += 1.0
    book[BOOK.firms] -= 1.0
    s.population[POPULATION.firm_failures] += 1.0
    set_state(p, s, firm, GONE)
    s.firms[firm].slot = -1
    free_block(s, b.first, b.block)
    free_slot(s, slot)


@njit(cache=True, nogil=True)
def opening_stock(p, s):
    """File each bank's opening stock of non-performing loans (``opening_npl_ratio`` of its inclusive book, NPLs ÷
    performing + NPLs, after the opening borrowers are made).

    The stock is defaults of equal size in each of the W = ``write_off_months`` (the opening year's) months before the start, split by the
    bank's product mix: a cohort of age a (months since its default, 0 … W − 1) of amount A_k of product k has its
    recovery R_k = round(A_k (1 − LGD_k)) (the product's mean LGD) due in month L − a when a < L
    (L = ``recovery_lag_months``; an older cohort's recovery came before the start and left A_k − R_k) and its
    write-off A_k − R_k, the bank's loss, in month W − a. The cohort size A solves Σ_a outstanding = the stock:
    A (L + (W − L) Σ_k w_k LGD_k) = ratio ÷ (1 − ratio) × the performing balance. Each cohort counts
    round(A_k ÷ the bank's mean opening loan) loans (at least one), each a firm. Its cover was settled before the
    start: no claim or compensation is filed.
    """
    n_w, n_l = p.risk.write_off[0], p.risk.recovery_lag
    for bank in range(s.book.shape[0]):
        ratio = p.banks.opening_npl_ratio[bank]
        book = s.book[bank]
        if ratio <= 0.0 or book[BOOK.loans] == 0.0:
            continue
        share = p.banks.product_share[bank]
        held = 0.0  # months of a cohort still on the book, each product net of a recovery already made
        for k in range(share.shape[0]):
            held += share[k] * (n_l + (n_w - n_l) * p.risk.lgd_mean[k])
        cohort = ratio / (1.0 - ratio) * book[BOOK.balance] / held
        mean_loan = book[BOOK.balance] / book[BOOK.loans]
        for age in range(n_w):
            for k in range(share.shape[0]):
                a = np.rint(cohort * share[k])
                if a <= 0.0:
                    continue
                recovery = np.rint(a * (1.0 - p.risk.lgd_mean[k]))
                loans = max(1.0, np.rint(a / mean_loan))
                if age < n_l:
                    _file_stock(p, s, bank, k == CREDIT, age, a, recovery, loans, loans)
                else:
                    _file_stock(p, s, bank, k == CREDIT, age, a - recovery, 0.0, loans, loans)


@njit(cache=True, nogil=True)
def tape_stock(p, s):
    """File the banks' loan tapes' non-performing loans (``p.tape``): a loan of amount A (what the bank carries) and
    product k that defaulted a months before the opening has, when a < L (``recovery_lag_months``), its recovery
    R = round(A (1 − LGD_k)) (the product's mean LGD) due in month L − a (an older loan's recovery came before the
    start and A is what it left: R = 0), and its write-off A − R, the bank's loss, in month W − a
    (W = ``write_off_months`` of the opening's year, as for the opening stock; the tape holds only loans with a < W). Each loan counts in the bank's loans, and its
    firm among its borrowers, until written off. Its cover was settled before the start: no claim or compensation
    is filed."""
    for i in range(p.tape.npl_bank.shape[0]):
        bank, product, age = p.tape.npl_bank[i], p.tape.npl_product[i], p.tape.npl_age[i]
        a = p.tape.npl_amount[i]
        recovery = np.rint(a * (1.0 - p.risk.lgd_mean[product])) if age < p.risk.recovery_lag else 0.0
        _file_stock(p, s, bank, product == CREDIT, age, a, recovery, 1.0, 1.0 if p.tape.npl_firm[i] else 0.0)


@njit(cache=True, nogil=True, inline="always")
def _file_stock(p, s, bank, credit, age, outstanding, recovery, loans, firms):
    """File NPLs of the opening book that defaulted ``age`` months before the start: ``outstanding`` on the bank's
    book, of which ``recovery`` is still to be recovered in month L − age (when age < L = ``recovery_lag_months``;
    0 otherwise) and the rest written off, the bank's loss, in month W − age (W the opening year's
    ``write_off_months``); ``loans`` loans and ``firms`` firms count until then."""
    book = s.book[bank]
    if age < p.risk.recovery_lag:
        recovered = s.due[p.risk.recovery_lag - age, bank]
        recovered[DUE.recovered] += recovery
        if credit:
            recovered[DUE.recovered_credit] += recovery
    written = s.due[p.risk.write_off[0] - age, bank]
    written[DUE.written_off] += outstanding - recovery
    written[DUE.net_loss] += outstanding - recovery
    written[DUE.loans] += loans
    written[DUE.firms] += firms
    book[BOOK.npl_balance] += outstanding
    book[BOOK.npl_loans] += loans
    book[BOOK.npl_firms] += firms
    if credit:
        written[DUE.written_off_credit] += outstanding - recovery
        book[BOOK.npl_credit] += outstanding


@njit(cache=True, nogil=True)
def claims(p, s, t):
    """Guarantee claims due in month ``t``: a paid claim is a recovery of the bank's; one left unpaid the bank writes
    off when the loan is written off."""
    guarantees.settle(p, s, t)
    for g in range(p.guarantees.coverage.shape[0]):
        for bank in range(s.book.shape[0]):
            received = s.guarantees.paid[g, bank]
            s.book[bank, BOOK.npl_balance] -= received
            s.flows[bank, BANK.recovered] += received
            if s.guarantees.unpaid[g, bank] > 0.0:
                s.due[guarantees.written_off_month(p, g, t), bank, DUE.written_off] += s.guarantees.unpaid[g, bank]


@njit(cache=True, nogil=True)
def resolutions(p, s, t):
    """Recoveries, pool compensation and write-offs due in month ``t``: a pool's compensation is a recovery that
    reduces the write-off."""
    pools.settle(p, s, t)
    for bank in range(s.book.shape[0]):
        due = s.due[t, bank]
        for k in range(p.pools.share.shape[0]):
            due[DUE.written_off] -= s.pools.paid[k, bank]
            due[DUE.recovered] += s.pools.paid[k, bank]
            due[DUE.written_off_credit] -= s.pools.paid_credit[k, bank]
            due[DUE.recovered_credit] += s.pools.paid_credit[k, bank]
        book = s.book[bank]
        book[BOOK.npl_balance] -= due[DUE.recovered] + due[DUE.written_off]
        book[BOOK.npl_credit] -= due[DUE.recovered_credit] + due[DUE.written_off_credit]
        book[BOOK.npl_loans] -= due[DUE.loans]
        book[BOOK.npl_firms] -= due[DUE.firms]
        flows = s.flows[bank]
        flows[BANK.recovered] += due[DUE.recovered]
        flows[BANK.written_off] = due[DUE.written_off]
        flows[BANK.loss_bank] = due[DUE.written_off]
        flows[BANK.net_loss] = due[DUE.net_loss]
