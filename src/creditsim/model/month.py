"""A path, month by month, in one compiled call.

:func:`run_paths` runs a task's paths one after another on one :class:`~creditsim.model.state.State`; for each it
opens the book (:func:`start_path`) and runs every month (:func:`month`), writing each month's metrics. The month's
events, each for every affected firm or loan at once, in this order:

1. the instruments open the month (pools' January budget and top-up), interest accrues on the performing balance at
   the start of the month and the interest subsidy is paid;
2. firms register; firms without a loan fail or close;
3. each bank's pressure from its growth targets sets its appetite (:mod:`.pressure`); firms without a loan apply and
   the banks decide, then the applicants pressed banks seek, then relief lending's applicants (:mod:`.lending`),
   then the 首贷 campaign's channels reach 无贷户;
4. loans end: first those whose firm's default month has come, then the maturing ones (two passes, see
   :mod:`.maturity`; a maturity in a deferral window may be deferred instead, :mod:`.relief`);
5. guarantee claims due this month are paid; recoveries, pool compensation and write-offs due this month are booked;
6. guarantors and pools close the month, and every metric is recorded.

A path stops early when a table runs out (``s.cursor[CURSOR.overflow]``): the caller grows the tables and runs it again.
"""

from __future__ import annotations

from numba import njit

from .audit import audit
from .book import ahead, new_firm
from .columns import BANK, BOOK
from .cover import offers
from .defaults import claims, default, opening_stock, resolutions, tape_stock
from .hazards import cumulative_hazards
from .instruments import guarantees, pools, subsidy
from .lending import applications, believed_pd, campaign, new_borrower, outreach_applications, relief_applications, tape_borrower
from .maturity import relend, repay, settle
from .params import line_kind
from .population import enter, leave, start_spell
from .pressure import press
from .random import KEY, normal, path_keys
from .record import record
from .state import BORROWING, CURSOR, OVERFLOW, STATES
from .trace import record_outstanding

__all__ = ["run_paths", "start_path", "month"]


@njit(cache=True, nogil=True)
def _reset(p, s):
    """Empty every table of the state for a new path (the trace of the task's earlier paths is kept)."""
    traced = s.cursor[CURSOR.traced]
    s.cursor[:] = 0
    s.cursor[CURSOR.traced] = traced
    s.audit[:] = 0.0
    s.audit_scale[:] = 0.0
    n_slots = s.ends.shape[0]
    s.ends[:] = -1
    for k in range(n_slots):  # free rows are handed out in ascending order
        s.free_slots[k] = n_slots - 1 - k
    s.cursor[CURSOR.free_slots] = n_slots
    s.block_free[:] = -1
    n_events = s.event_next.shape[0]
    for k in range(n_events):
        s.event_next[k] = k + 1 if k + 1 < n_events else -1
    s.cursor[CURSOR.free_events] = 0 if n_events > 0 else -1
    s.event_head[:] = -1
    s.unbanked[:] = 0
    s.open_bits[:] = 0
    s.campaign_bits[:] = 0
    s.book[:] = 0.0
    s.due[:] = 0.0
    s.flows[:] = 0.0
    s.population[:] = 0.0
    s.campaign_left[0] = p.campaign.list_size
    s.appetite[:] = p.banks.max_pd
    s.pressure[:] = 0.0
    s.year_start[:] = 0.0
    guarantees.reset(p, s)
    pools.reset(p, s)
    subsidy.reset(p, s)


@njit(cache=True, nogil=True)
def start_path(p, s, seed, path):
    """The opening (month 0): the path's keys and hazards, every firm of the opening population, the opening
    borrowers with their loans (seasoned, or new for a static pool; their cover is a stock, not a flow), then the
    firms of the banks' loan tapes with theirs (:func:`creditsim.model.lending.tape_borrower`), and the banks'
    opening stock of non-performing loans (:func:`creditsim.model.defaults.opening_stock`, and the tapes' npl loans,
    :func:`creditsim.model.defaults.tape_stock`)."""
    _reset(p, s)
    s.keys[:] = path_keys(seed, path, s.keys.shape[0])
    cumulative_hazards(p, s)
    n_seg, n_grade, n_bank = p.firms.opening_borrowers.shape
    for seg in range(n_seg):
        for grade in range(n_grade):
            for bank in range(n_bank):
                for _ in range(p.firms.opening_borrowers[seg, grade, bank]):
                    firm = new_firm(p, s, seg, grade, BORROWING, 0)
                    if firm < 0:
                        return
                    signal = normal(s.keys[KEY.signal], firm, 0, 0) if p.firms.signal_sd > 0.0 else 0.0
                    belief = believed_pd(p, seg, grade, signal, p.firms.known_history)
                    if not new_borrower(p, s, 0, firm, seg, grade, bank, signal, p.firms.known_history, belief, False, False, -1,
                                        line_kind(p, bank, -1), True):
                        return
    for seg in range(n_seg):
        for grade in range(n_grade):
            for state in range(STATES):
                for _ in range(p.firms.opening_unbanked[seg, grade, state]):
                    firm = new_firm(p, s, seg, grade, state, 0)
                    if firm < 0:
                        return
                    start_spell(p, s, firm, 1)
    for f in range(p.tape.bank.shape[0]):  # after the others, so that what a tape holds moves no other firm's row
        firm = new_firm(p, s, p.tape.segment[f], p.tape.grade[f], BORROWING, 0)
        if firm < 0 or not tape_borrower(p, s, f, firm):
            return
    guarantees.open_month(p, s)
    opening_stock(p, s)
    tape_stock(p, s)
    for bank in range(n_bank):
        other = p.banks.all_loans[bank] - s.book[bank, BOOK.balance] - s.book[bank, BOOK.npl_balance]
        if other < 0.0:
            s.cursor[CURSOR.overflow] = OVERFLOW.all_loans
            s.cursor[CURSOR.detail] = bank
            return
        s.book[bank, BOOK.other_loans] = other


@njit(cache=True, nogil=True)
def month(p, s, t, path, traced):
    """Month ``t`` of a path (see the module docstring)."""
    s.flows[:] = 0.0
    s.population[:] = 0.0
    guarantees.open_month(p, s)
    pools.open_month(p, s, p.calendar.january[t])
    for bank in range(s.book.shape[0]):
        s.flows[bank, BANK.interest_income] = s.book[bank, BOOK.rate_balance] / 12.0
    paid = subsidy.open_month(p, s, p.calendar.january[t])
    for bank in range(s.book.shape[0]):
        s.flows[bank, BANK.interest_subsidy] = s.subsidy.paid[bank, 0]
        s.flows[bank, BANK.interest_subsidy_unfunded] = s.subsidy.unfunded[bank]
    enter(p, s, t)
    leave(p, s, t)
    press(p, s, t)
    applications(p, s, t)
    outreach_applications(p, s, t)
    relief_applications(p, s, t)
    campaign(p, s, t)
    if s.cursor[CURSOR.overflow] != 0:
        return paid
    n_default, n = 0, 0
    ends, by_default, defaulting, maturing = s.ends, s.by_default, s.defaulting, s.maturing
    for slot in range(ends.shape[0]):  # this month's ending borrowers, in row order
        if ends[slot] == t:
            if by_default[slot]:
                defaulting[n_default] = slot
                n_default += 1
            else:
                maturing[n] = slot
                n += 1
    for k in range(n_default):  # defaults at the firm's default month first
        ahead(s, s.defaulting, k, n_default)
        default(p, s, t, s.defaulting[k], False, path, traced)
    going_on = 0
    for k in range(n):
        ahead(s, s.maturing, k, n)
        slot = s.maturing[k]
        if settle(p, s, t, slot, path, traced):
            s.maturing[going_on] = slot
            going_on += 1
    open_now = offers(p, s)
    for k in range(going_on):
        ahead(s, s.maturing, k, going_on)
        slot = s.maturing[k]
        if repay(p, s, t, slot, open_now, path, traced):
            relend(p, s, t, slot)
    claims(p, s, t)
    resolutions(p, s, t)
    guarantees.close_month(p, s, t)
    pools.close_month(p, s)
    return paid


@njit(cache=True, nogil=True)
def run_paths(p, s, seed, paths, traced, first, bank_out, guarantor_out, reguarantor_out, pool_out, population_out, trace_start, audits):
    """Run paths ``paths[first:]`` of a task on one state, writing path i's metrics at row i of the outputs
    (shape (paths, M + 1, entities, metrics), fen), where its trace starts in ``s.trace`` at ``trace_start[i]`` and,
    when auditing, the largest difference of each recount at ``audits[i]``. Returns the position of the path that
    ran out of a table, or -1 when every path ran (which table: ``s.cursor[CURSOR.overflow]``)."""
    months = p.calendar.months
    for i in range(first, paths.shape[0]):
        path = paths[i]
        trace_start[i] = s.cursor[CURSOR.traced]
        start_path(p, s, seed, path)
        if s.cursor[CURSOR.overflow] != 0:
            return i
        record(p, s, 0, bank_out[i, 0], guarantor_out[i, 0], reguarantor_out[i, 0], pool_out[i, 0], population_out[i, 0, 0], 0.0)
        if p.audit:
            audit(p, s, 0)
        for t in range(1, months + 1):
            paid = month(p, s, t, path, traced[i])
            if s.cursor[CURSOR.overflow] != 0:
                return i
            record(p, s, t, bank_out[i, t], guarantor_out[i, t], reguarantor_out[i, t], pool_out[i, t], population_out[i, t, 0], paid)
            if p.audit:
                audit(p, s, t)
        if traced[i]:
            record_outstanding(p, s, path)
            if s.cursor[CURSOR.overflow] != 0:
                return i
        audits[i, :] = s.audit
    trace_start[paths.shape[0]] = s.cursor[CURSOR.traced]
    return -1
