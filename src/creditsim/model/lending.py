"""New borrowers: applications and the 首贷 campaign, the banks' decisions, and a new borrower's credit line and loans
(or, for a bank's loan tape, the loans the tape gives its firm).

Applications from a segment's firms without a loan are Poisson(applications_per_month × growth) a month, drawn without
replacement from all of them (:func:`creditsim.model.population.pick`); each applicant goes to a bank by share. A
bank behind its growth target (:mod:`.pressure`) seeks more applicants (outreach) and is decided at its pressed
appetite. Relief lending (``relief.lending``) adds applications in its windows, decided with its appetite. The
campaign's channels each reach Poisson(reach_per_month) firms that never borrowed (within the list left), of which a
share apply. A bank approves an applicant whose believed PD (a noisy signal for thin files) is within its appetite,
or within it net of the best cover open to the applicant, in which case every loan must carry that cover; a 无贷户
turned down that no cover would rescue is declined for good. See docs/explanation/model.md §1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .book import AHEAD, free_block, loan_rate, open_loan, overflow, set_end, set_state, take_block, take_slot
from .columns import BANK, BOOK, FEN, POPULATION
from .cover import best_offer, cover_loan, hold, offers, unassign
from .instruments import subsidy
from .params import APPLICANT, line_kind
from .population import default_month_of, pick
from .random import KEY, ndtri, normal, open_uniform, pick_column, poisson, uniform
from .state import BORROWING, CURSOR, DECLINED, FORMER, FORMER_FIRST_TIME, NEVER, OVERFLOW, STATES
from .structs import prefetch

__all__ = ["believed_pd", "new_borrower", "tape_borrower", "applications", "outreach_applications", "relief_applications", "campaign"]

# columns of the applicants' scratch array
_SEG, _GRADE, _STATE, _BANK = 0, 1, 2, 3
# where a batch of applicants comes from: demand (or a campaign channel), relief lending, a pressed bank's outreach
_DEMAND, _RELIEF, _OUTREACH = 0, 1, 2


@njit(cache=True, nogil=True, inline="always")
def believed_pd(p, segment, grade, signal, history):
    """The annual PD a bank believes a firm has: ``expit(logit(pd) + signal_sd z / sqrt(1 + k))``, k the repaid
    loans it has seen (thin files, k = 0, are the noisiest)."""
    sd = p.firms.signal_sd
    if sd == 0.0:
        return p.firms.pd[segment, grade]
    x = p.firms.pd_logit[segment, grade] + sd * signal / math.sqrt(1.0 + history)
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, nogil=True)
def new_borrower(p, s, t, firm, segment, grade, bank, signal, history, belief, first_time, first_loan, required, kind, opening):
    """Make a firm a borrower in month ``t`` with its credit line and loans; returns whether it became one.

    The line is lognormal (the segment's median and p90, its log-median moved by the shift of the borrower's
    ``kind``, see :func:`creditsim.model.params.line_kind`) truncated at the inclusive limit, drawn by inverse CDF; the firm takes 1 + Poisson(loans_per_borrower − 1) loans of equal size
    and one term (length-biased, and at a random age, in a seasoned opening book); each loan a product by its bank's
    mix and cover (:func:`creditsim.model.cover.cover_loan`). A firm that needs cover (``required`` ≥ 0) and does not
    get it for every loan is not made (its cover is undone). Draws are keyed by the firm and the month.
    """
    keys = s.keys
    mu = p.firms.line_mu[segment] + p.firms.line_shift[kind]
    sigma = p.firms.line_sigma[segment]
    u = open_uniform(keys[KEY.line], firm, t, 0) * p.firms.line_within[segment, kind]
    line = math.exp(mu + sigma * ndtri(u)) * FEN
    n = 1 + (poisson(keys[KEY.loan_count], firm, t, p.firms.extra_loans) if p.firms.extra_loans > 0.0 else 0)
    per_loan = max(math.floor(line / n), 1.0)
    seasoned = opening and p.firms.seasoned
    cumulative = p.banks.seasoned_term_cumulative if seasoned else p.banks.term_cumulative
    u_term = uniform(keys[KEY.term], firm, t, 0) if p.banks.term_choices[bank] > 1 else 0.0
    term = p.banks.terms[pick_column(cumulative, bank, u_term)]
    age = int(math.floor(uniform(keys[KEY.age], firm, t, 0) * term)) if seasoned else 0
    rate = loan_rate(p, bank, belief, t - age)
    first = take_block(s, n)
    if first < 0:
        return False
    accepted = True
    for j in range(n):
        u_product = uniform(keys[KEY.product], firm, t, j) if p.banks.product_choices[bank] > 1 else 0.0
        product = pick_column(p.banks.product_cumulative, bank, u_product)
        product, cover, as_required = cover_loan(p, s, t, firm, j, segment, bank, per_loan * n, per_loan, product, required, first_time,
                                                 rate, not opening)
        loan = s.loans[first + j]
        loan.amount = per_loan
        loan.index = j
        loan.product = product
        loan.renewals = 0
        loan.cover = cover
        loan.plan = 0
        accepted = accepted and as_required
    slot = take_slot(s) if accepted else -1
    if slot < 0:
        for j in range(n):
            unassign(p, s, s.loans[first + j].cover, per_loan)
        free_block(s, first, n)
        return False
    _borrow(p, s, t, slot, firm, first, n, per_loan * n, segment, grade, bank, term, age, signal, history, belief, first_time, required, opening)
    if first_loan:
        s.flows[bank, BANK.first_loan_amount] += per_loan * n
    return True


@njit(cache=True, nogil=True)
def tape_borrower(p, s, f, firm):
    """Make ``firm`` the opening borrower that firm ``f`` of a loan tape is (``p.tape``): its loans as the tape gives
    them (amount, product, cover held as an existing contract, their age and term), the signal and belief of an
    opening borrower; returns whether it became one (not when a table is full). No draw but the signal is made."""
    bank, segment, grade = p.tape.bank[f], p.tape.segment[f], p.tape.grade[f]
    start, n = p.tape.first[f], p.tape.first[f + 1] - p.tape.first[f]
    history = p.firms.known_history
    signal = normal(s.keys[KEY.signal], firm, 0, 0) if p.firms.signal_sd > 0.0 else 0.0
    belief = believed_pd(p, segment, grade, signal, history)
    first = take_block(s, n)
    if first < 0:
        return False
    slot = take_slot(s)
    if slot < 0:
        free_block(s, first, n)
        return False
    line = 0.0
    for j in range(n):
        loan = s.loans[first + j]
        loan.amount = p.tape.amount[start + j]
        loan.index = j
        loan.product = p.tape.product[start + j]
        loan.renewals = 0
        loan.cover = p.tape.cover[start + j]
        loan.plan = 0
        hold(p, s, loan.cover, loan.amount)
        line += loan.amount
    _borrow(p, s, 0, slot, firm, first, n, line, segment, grade, bank, p.tape.term[f], p.tape.age[f], signal, history, belief, False, -1, True)
    return True


@njit(cache=True, nogil=True, inline="always")
def _borrow(p, s, t, slot, firm, first, n, line, segment, grade, bank, term, age, signal, history, belief, first_time, required, opening):
    """Fill borrower row ``slot`` for ``firm``, whose ``n`` loans (rows ``first`` on) are made: they fall due at
    t + term − age; put them on the books (as a stock for the ``opening`` book, else as lending of month ``t``) and
    make the firm a borrower."""
    row = s.firms[firm]
    b = s.borrowers[slot]
    b.firm = firm
    b.first = first
    b.loans = n
    b.block = n
    b.bank = bank
    b.segment = segment
    b.grade = grade
    b.term = term
    b.maturity = t + term - age
    b.start = t - age
    b.since = t - age - (12 * p.firms.known_history if opening else 0)
    b.history = history
    b.repaid = 0
    b.cover = required
    b.first_time = first_time
    b.graduating = False
    b.masked = False
    b.evergreen = False
    b.deferred = False
    b.subsidised = subsidy.eligible(p, bank, segment, first_time)
    b.signal = signal
    b.belief = belief
    b.line = line
    b.default_month = default_month_of(p, s, firm)
    set_end(p, s, slot)
    for j in range(n):
        open_loan(p, s, slot, first + j, not opening)
    s.book[bank, BOOK.firms] += 1.0
    set_state(p, s, firm, BORROWING)
    row.slot = slot


@njit(cache=True, nogil=True)
def _decide(p, s, t, n, kind, source):
    """Decide the ``n`` applicants in the scratch arrays, all new borrowers of one ``kind`` (applicants, or those a
    campaign channel reached) and from one ``source`` (demand, relief lending or a pressed bank's outreach), in
    order, against the cover open when the batch starts."""
    campaign = kind != APPLICANT
    open_now = offers(p, s)
    for i in range(n):
        if i + AHEAD < n:
            prefetch(s.firms, s.scratch_firm[i + AHEAD])
        firm = s.scratch_firm[i]
        segment, grade, state, bank = s.scratch_int[i, _SEG], s.scratch_int[i, _GRADE], s.scratch_int[i, _STATE], s.scratch_int[i, _BANK]
        appetite = s.scratch_appetite[i]
        signal = normal(s.keys[KEY.signal], firm, t, 0) if p.firms.signal_sd > 0.0 else 0.0
        history = p.firms.known_history if state == FORMER else (1 if state == FORMER_FIRST_TIME else 0)
        believed = believed_pd(p, segment, grade, signal, history)
        first_time = state == NEVER or state == FORMER_FIRST_TIME
        alone = believed <= appetite and state != DECLINED
        cover = -1
        if not alone and state != DECLINED:
            share, best = best_offer(p, open_now, segment, bank, first_time)
            if best >= 0 and share > 0.0 and believed * (1.0 - share) <= appetite:
                cover = best
        flows = s.flows[bank]
        flows[BANK.applications] += 1.0
        if campaign:
            flows[BANK.campaign_applications] += 1.0
        if source == _OUTREACH:
            flows[BANK.outreach_applications] += 1.0
        if not alone and cover < 0:
            if state == NEVER:  # declined on its thin file itself, not for want of cover
                set_state(p, s, firm, DECLINED)
            continue
        if new_borrower(p, s, t, firm, segment, grade, bank, signal, history, believed, first_time, state == NEVER, cover, kind, False):
            flows[BANK.approvals] += 1.0
            if source == _RELIEF:
                flows[BANK.relief_disbursed] += s.borrowers[s.firms[firm].slot].line
            elif source == _OUTREACH:
                flows[BANK.outreach_approvals] += 1.0
            if cover >= 0:
                flows[BANK.cover_dependent_approvals] += 1.0
            if campaign:
                flows[BANK.campaign_approvals] += 1.0
            if state == NEVER:
                flows[BANK.first_time_borrowers] += 1.0
                flows[BANK.first_time_expected_defaults_believed] += believed
                flows[BANK.first_time_expected_defaults_true] += p.firms.pd[segment, grade]
        elif s.cursor[CURSOR.overflow] != 0:
            return
        elif cover >= 0:
            flows[BANK.cover_denied] += 1.0


@njit(cache=True, nogil=True)
def _in_cell_order(s, start, stop, n_grade):
    """Order the applicants start..stop (sorted by key) by (grade, state), stably: firms reach the banks cell by
    cell, each cell in random order."""
    n = stop - start
    if n <= 1:
        return
    cells = n_grade * STATES
    count = np.zeros(cells + 1, np.int64)
    firms = s.scratch_firm[start:stop].copy()
    keys = s.scratch_key[start:stop].copy()
    cell = np.empty(n, np.int64)
    for i in range(n):
        row = s.firms[firms[i]]
        cell[i] = row.grade * STATES + row.state
        count[cell[i] + 1] += 1
    for c in range(cells):
        count[c + 1] += count[c]
    for i in range(n):
        position = start + count[cell[i]]
        count[cell[i]] += 1
        s.scratch_firm[position] = firms[i]
        s.scratch_key[position] = keys[i]


@njit(cache=True, nogil=True)
def _set_applicant(p, s, i, bank, appetite):
    row = s.firms[s.scratch_firm[i]]
    s.scratch_int[i, _SEG] = row.segment
    s.scratch_int[i, _GRADE] = row.grade
    s.scratch_int[i, _STATE] = row.state
    s.scratch_int[i, _BANK] = bank
    s.scratch_appetite[i] = appetite


@njit(cache=True, nogil=True)
def applications(p, s, t):
    """Firms without a loan apply in month ``t``, segment by segment, and the banks decide, all in one batch."""
    n = 0
    for segment in range(p.firms.pd.shape[0]):
        end = _draw(p, s, t, segment, p.firms.applications[segment] * p.firms.application_growth[t], s.keys[KEY.applications], segment,
                    s.keys[KEY.apply_order], 0, n)
        if end < 0:
            return
        for i in range(n, end):
            bank = pick_column(p.banks.share_cumulative, 0, uniform(s.keys[KEY.bank], s.scratch_firm[i], t, 0))
            _set_applicant(p, s, i, bank, s.appetite[bank])
        n = end
    _decide(p, s, t, n, APPLICANT, _DEMAND)


@njit(cache=True, nogil=True)
def _draw(p, s, t, segment, mean, count_key, who, order_key, index, n):
    """Poisson(``mean``) applicants (the count drawn with ``count_key`` for ``who``) from ``segment``'s firms without
    a loan (picked with ``order_key`` at ``index``; those beyond the firms there are unmet), written to the scratch
    arrays from position ``n`` in cell order; returns where they end, or -1 when the scratch arrays overflowed."""
    wanted = poisson(count_key, who, t, mean)
    available = int(s.unbanked[segment].sum())
    if wanted > available:
        s.population[POPULATION.unmet_applications] += wanted - available
        wanted = available
    got = pick(s, s.open_bits[segment], order_key, t, index, wanted, available, s.scratch_firm[n:], s.scratch_key[n:])
    if got < 0:
        overflow(s, OVERFLOW.scratch)
        return -1
    _in_cell_order(s, n, n + got, p.firms.pd.shape[1])
    return n + got


@njit(cache=True, nogil=True)
def outreach_applications(p, s, t):
    """The applicants each bank under pressure seeks in month ``t`` (:mod:`.pressure`): from each segment's firms
    without a loan, Poisson(outreach × π × the bank's share × the segment's applications_per_month × growth), decided
    at the bank's appetite, one batch per bank."""
    q = p.pressure
    if q.outreach == 0.0:
        return
    n_seg = p.firms.pd.shape[0]
    for bank in range(s.pressure.shape[0]):
        if s.pressure[bank] == 0.0 or s.cursor[CURSOR.overflow] != 0:
            continue
        n = 0
        for segment in range(n_seg):
            mean = q.outreach * s.pressure[bank] * q.share[bank] * p.firms.applications[segment] * p.firms.application_growth[t]
            end = _draw(p, s, t, segment, mean, s.keys[KEY.outreach], bank * n_seg + segment, s.keys[KEY.outreach_order], bank, n)
            if end < 0:
                return
            for i in range(n, end):
                _set_applicant(p, s, i, bank, s.appetite[bank])
            n = end
        _decide(p, s, t, n, APPLICANT, _OUTREACH)


@njit(cache=True, nogil=True)
def relief_applications(p, s, t):
    """Relief lending in month ``t`` (``relief.lending``): each window open in the month adds Poisson(applications_per_month)
    applications from the firms without a loan of its segments, segment s's share Poisson(mean × a_s / A) (a_s its
    firms without a loan, A theirs over the window's segments: the applicants are a uniform draw from them all, none
    when A = 0); each applicant goes to one of the window's banks by share and is decided, as an applicant, against
    the window's appetite (or its bank's), one batch per window."""
    r = p.relief
    n_seg = p.firms.pd.shape[0]
    for window in range(r.lending_first.shape[0]):
        if t < r.lending_first[window] or t > r.lending_last[window] or s.cursor[CURSOR.overflow] != 0:
            continue
        eligible = 0
        for segment in range(n_seg):
            if r.lending_segment[window, segment]:
                eligible += s.unbanked[segment].sum()
        if eligible == 0:
            continue
        n = 0
        for segment in range(n_seg):
            if not r.lending_segment[window, segment]:
                continue
            mean = r.lending_applications[window] * s.unbanked[segment].sum() / eligible
            end = _draw(p, s, t, segment, mean, s.keys[KEY.relief_applications], window * n_seg + segment, s.keys[KEY.relief_order], window, n)
            if end < 0:
                return
            for i in range(n, end):
                bank = pick_column(r.lending_bank_cumulative, window, uniform(s.keys[KEY.relief_bank], s.scratch_firm[i], t, window))
                appetite = s.appetite[bank] if math.isnan(r.lending_max_pd[window]) else r.lending_max_pd[window]
                _set_applicant(p, s, i, bank, appetite)
            n = end
        _decide(p, s, t, n, APPLICANT, _RELIEF)


@njit(cache=True, nogil=True)
def campaign(p, s, t):
    """The 首贷 campaign in month ``t``: each channel, in order, reaches firms on the 无贷户 list (declined ones
    included); those in need apply to the channel's bank (or by share) and are decided as one batch."""
    n_channels = p.campaign.reach.shape[0]
    if n_channels == 0 or t < p.campaign.first or t > p.campaign.last:
        return
    n_seg, n_grade = p.firms.pd.shape
    for channel in range(n_channels):
        on_list = 0
        for segment in range(n_seg):
            if p.campaign.listed[segment]:
                for grade in range(n_grade):
                    on_list += s.unbanked[segment, grade, NEVER] + s.unbanked[segment, grade, DECLINED]
        planned = poisson(s.keys[KEY.reach], channel, t, p.campaign.reach[channel])
        reach = int(min(planned, on_list, s.campaign_left[0]))
        s.campaign_left[0] -= reach
        s.population[POPULATION.campaign_shortfall] += planned - reach
        s.population[POPULATION.campaign_reached] += reach
        if reach == 0:
            continue
        got = pick(s, s.campaign_bits[0], s.keys[KEY.reach_order], t, channel + 1, reach, on_list, s.scratch_firm, s.scratch_key)
        if got < 0:
            overflow(s, OVERFLOW.scratch)
            return
        n = 0
        for i in range(got):  # those in need apply
            if uniform(s.keys[KEY.need], s.scratch_firm[i], t, channel) < p.campaign.need[channel]:
                s.scratch_firm[n] = s.scratch_firm[i]
                s.scratch_key[n] = s.scratch_key[i]
                n += 1
        _by_segment(s, n, n_seg)
        start = 0
        while start < n:
            segment = s.firms[s.scratch_firm[start]].segment
            stop = start
            while stop < n and s.firms[s.scratch_firm[stop]].segment == segment:
                stop += 1
            _in_cell_order(s, start, stop, n_grade)
            start = stop
        for i in range(n):
            firm = s.scratch_firm[i]
            if p.campaign.bank[channel] >= 0:
                bank = p.campaign.bank[channel]
            else:
                bank = pick_column(p.banks.share_cumulative, 0, uniform(s.keys[KEY.channel_bank], firm, t, channel))
            appetite = s.appetite[bank] if math.isnan(p.campaign.max_pd[channel]) else p.campaign.max_pd[channel]
            _set_applicant(p, s, i, bank, appetite)
        _decide(p, s, t, n, line_kind(p, -1, channel), _DEMAND)


@njit(cache=True, nogil=True)
def _by_segment(s, n, n_seg):
    """Order the first ``n`` picked firms by segment, stably."""
    if n <= 1:
        return
    count = np.zeros(n_seg + 1, np.int64)
    firms = s.scratch_firm[:n].copy()
    keys = s.scratch_key[:n].copy()
    for i in range(n):
        count[s.firms[firms[i]].segment + 1] += 1
    for k in range(n_seg):
        count[k + 1] += count[k]
    for i in range(n):
        segment = s.firms[firms[i]].segment
        s.scratch_firm[count[segment]] = firms[i]
        s.scratch_key[count[segment]] = keys[i]
        count[segment] += 1
