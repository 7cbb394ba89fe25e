"""Maturities: what a borrower does when its loans fall due, and the loans that follow.

At maturity each loan of a solvent firm is wanted again with ``demand.reborrow_prob`` at its grown amount; a firm
whose line would pass the inclusive limit graduates instead. A solvent firm may be liquidity-stressed; renewal
(无还本续贷) is asked for by loans that go on, by stressed firms and by insolvent (masked) ones, and granted when the
rules allow and the bank takes it up. A stressed firm that must still repay something bridges or defaults; an
insolvent one that must repay defaults. Otherwise every loan is repaid (a renewal repays it with the new loan), the
bank's view of a firm that repaid sharpens, and wanted loans are re-lent when the bank still believes in the firm
(or in its cover). See docs/explanation/model.md §1, §3 and §4.

A borrower whose maturity falls in a deferral window may have its loans deferred instead (:mod:`.relief`).

A month's maturities run in two passes over the borrowers whose loans end (in row order): :func:`settle` decides
and closes every maturing loan (or defaults the firm); then, borrower by borrower, :func:`repay` books repayments and
decides what goes on against the cover open once every maturing loan has ended, and :func:`relend` makes the
renewals and re-borrowed loans.
Every draw is keyed by the firm, the month and the loan.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .book import close_loan, free_block, free_slot, loan_rate, open_loan, set_end, set_state
from .columns import BANK, BOOK
from .cover import cover_loan, share
from .defaults import default
from .lending import believed_pd
from .population import start_spell
from .random import KEY, pick_column, uniform
from .relief import defer, deferral_window
from .renewal import allowed
from .state import FORMER, FORMER_FIRST_TIME, GONE, RENEWED, WANTED
from .trace import GRADUATED, REBORROWED, REPAID, record_loan
from .trace import RENEWED as HOW_RENEWED

__all__ = ["settle", "repay", "relend"]


@njit(cache=True, nogil=True)
def settle(p, s, t, slot, path, traced):
    """Pass 1 for one maturing borrower: deferral (:mod:`.relief`: a deferred borrower's loans stay on the books and
    it goes no further), re-borrowing wishes, graduation, liquidity stress and renewal; a firm that
    defaults here fails (see :func:`creditsim.model.defaults.default`); the others' maturing loans leave the
    performing book (releasing their cover). Returns whether the borrower goes on to :func:`repay`."""
    b = s.borrowers[slot]
    firm = b.firm
    window = deferral_window(p, t, b)
    if window >= 0 and uniform(s.keys[KEY.deferral], firm, t, 0) < p.relief.deferral_uptake[window]:
        defer(p, s, t, slot, window)
        return False
    insolvent = b.default_month <= t
    growth = p.firms.term_growth[b.segment, b.term]
    change = 0.0
    wanting = False
    for i in range(b.first, b.first + b.loans):
        loan = s.loans[i]
        want = not b.graduating and uniform(s.keys[KEY.reborrow], firm, t, loan.index) < p.firms.reborrow_prob
        loan.plan = WANTED if want else 0
        change += np.rint(loan.amount * growth) - loan.amount if want else -loan.amount
        wanting = wanting or want
    if b.line + change > p.firms.limit and wanting and not insolvent:
        b.graduating = True
    stressed = p.risk.stress_prob > 0.0 and not insolvent and uniform(s.keys[KEY.stress], firm, t, 0) < p.risk.stress_prob
    taken = p.renewal.on and uniform(s.keys[KEY.uptake], firm, t, 0) < p.banks.uptake[b.bank]
    month = p.calendar.month_index[t]
    to_repay = False
    for i in range(b.first, b.first + b.loans):
        loan = s.loans[i]
        if b.graduating:
            loan.plan = 0
        asks = (loan.plan & WANTED != 0 or stressed or insolvent) and not b.graduating
        covered = share(p, loan.cover) if loan.cover >= 0 else 0.0
        if asks and taken and allowed(p, month, b.bank, b.segment, loan.product, b.term, loan.renewals, t - b.since, b.belief, covered):
            loan.plan |= RENEWED
        else:
            to_repay = True
    bridges = stressed and to_repay and uniform(s.keys[KEY.bridge], firm, t, 0) < p.risk.bridge_share
    liquidity = stressed and to_repay and not bridges
    if liquidity or (insolvent and to_repay):
        default(p, s, t, slot, liquidity, path, traced)
        return False
    b.bridged = bridges
    for i in range(b.first, b.first + b.loans):
        close_loan(p, s, slot, i)
    b.deferred = False
    return True


@njit(cache=True, nogil=True)
def repay(p, s, t, slot, open_now, path, traced):
    """Pass 2, first: repayments and renewals are booked; a firm that repaid a loan has shown its bank one more repayment
    and its believed PD is recomputed; wanted loans are re-lent where the bank still lends (a firm lent to only
    because of cover: where its instrument still takes new business and the PD net of its share is within the
    appetite); a firm left without a loan graduates out or joins the firms without a loan. Returns whether the
    borrower has loans to make in :func:`relend`."""
    b = s.borrowers[slot]
    firm = b.firm
    bank = b.bank
    flows = s.flows[bank]
    rate = loan_rate(p, bank, b.belief, b.start)  # the rate of the loans that end (before the belief changes)
    repaid_one = False
    for i in range(b.first, b.first + b.loans):
        loan = s.loans[i]
        a = loan.amount
        flows[BANK.repaid] += a
        if loan.plan & RENEWED:
            flows[BANK.renewals] += 1.0
            flows[BANK.renewed] += a
        else:
            repaid_one = True
            if b.bridged:
                flows[BANK.bridge_cost] += a * p.risk.bridge_cost
    if repaid_one:
        b.repaid += 1
        b.belief = believed_pd(p, b.segment, b.grade, b.signal, b.history + b.repaid)
    if b.cover >= 0:
        credible = open_now[b.cover] and b.belief * (1.0 - share(p, b.cover)) <= p.banks.max_pd[bank]
    else:
        credible = b.belief <= p.banks.max_pd[bank]
    growth = p.firms.term_growth[b.segment, b.term]
    renewing = False
    kept = 0
    for i in range(b.first, b.first + b.loans):
        loan = s.loans[i]
        renew = loan.plan & RENEWED != 0
        again = loan.plan & WANTED != 0 and not renew
        if again and not credible:
            flows[BANK.reborrow_declined] += 1.0
            again = False
        if traced:
            how = HOW_RENEWED if renew else (REBORROWED if again else (GRADUATED if b.graduating else REPAID))
            record_loan(p, s, path, slot, i, t, how, rate)
        if not (renew or again):
            b.line -= loan.amount
            continue
        renewing = renewing or renew
        target = s.loans[b.first + kept]
        if again:
            grown = np.rint(loan.amount * growth)
            b.line += grown - loan.amount
            target.amount = grown
            target.renewals = 0
            target.product = pick_column(p.banks.product_cumulative, bank, uniform(s.keys[KEY.product], firm, t, loan.index))
        else:
            target.amount = loan.amount
            target.renewals = loan.renewals + 1
            target.product = loan.product
        target.index = loan.index
        target.plan = RENEWED if renew else 0
        kept += 1
    b.loans = kept
    if kept > 0:
        if not renewing:
            u = uniform(s.keys[KEY.term], firm, t, 0) if p.banks.term_choices[bank] > 1 else 0.0
            b.term = p.banks.terms[pick_column(p.banks.term_cumulative, bank, u)]
        b.masked = renewing
        return True
    s.book[bank, BOOK.firms] -= 1.0
    row = s.firms[firm]
    row.slot = -1
    if b.graduating:
        flows[BANK.graduated] += 1.0
        set_state(p, s, firm, GONE)
    else:
        set_state(p, s, firm, FORMER_FIRST_TIME if b.first_time else FORMER)
        start_spell(p, s, firm, t + 1)
    free_block(s, b.first, b.block)
    free_slot(s, slot)
    return False


@njit(cache=True, nogil=True)
def relend(p, s, t, slot):
    """Pass 2, then: the renewals (same amount, term and product, one more consecutive renewal) and re-borrowed loans (the
    grown amount, the firm's fresh term, a fresh product) are made with cover assigned anew (which may change the
    product, see :func:`creditsim.model.cover.cover_loan`) and priced at the bank's
    rate this year for the belief now. A firm lent to because of cover asks its instrument again; without room (or when the
    borrower declines the guarantee) the loan is still made, uncovered (``reborrowed_uncovered``). Loans made by a renewal are masked: a firm
    that will default before they mature defaults only when they fall due (evergreening)."""
    b = s.borrowers[slot]
    firm = b.firm
    b.start = t
    b.maturity = t + b.term
    rate = loan_rate(p, b.bank, b.belief, t)
    set_end(p, s, slot)
    for i in range(b.first, b.first + b.loans):
        loan = s.loans[i]
        product, cover, as_required = cover_loan(p, s, t, firm, loan.index, b.segment, b.bank, b.line, loan.amount, loan.product, b.cover,
                                                 b.first_time, rate, True)
        if not as_required:
            s.flows[b.bank, BANK.reborrowed_uncovered] += loan.amount
        loan.product = product
        loan.cover = cover
        loan.plan = 0
        open_loan(p, s, slot, i, True)

