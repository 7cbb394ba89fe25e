"""The engine's per-loan loops, compiled with numba.

Each event type touches every affected loan once; written as numpy expressions that takes dozens of passes
over the loans (gathers from the borrower table, masks, ``bincount``s), each a temporary array. These kernels
do the same work in one pass per event, in the same order, with the same arithmetic: the engine's results
are identical to the numpy expressions they replace. Random numbers are drawn by the engine, in bulk, from
its numpy streams, and passed in; the kernels draw nothing.

Money is in whole fen (float64), as in the engine; ``rint`` rounds half to even, as ``numpy.round`` does.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CLOSE_TOTALS", "MATURITY_FLOWS", "OPEN_TOTALS", "add_borrowers", "assign_guarantors", "assign_pools", "close_loans", "maturity_choices", "price_loans", "renewable", "renewal_allowed", "renewal_allowed_each", "repay_and_relend"]

#: Columns of the per-bank totals :func:`price_loans` returns (fen, except ``loans``).
OPEN_TOTALS = ("balance", "credit", "loans", "rate_balance", "renewal", "restructured", "subsidised", "first_time", "guaranteed")
#: Columns of the per-bank totals :func:`close_loans` returns.
CLOSE_TOTALS = ("balance", "credit", "loans", "rate_balance", "renewal", "restructured", "subsidised")
#: Columns of the per-bank flows :func:`repay_and_relend` returns.
MATURITY_FLOWS = ("repaid", "bridged", "renewals", "renewed", "reborrow_declined", "graduated", "left")


@njit(cache=True, nogil=True)
def price_loans(firm, bank, amount, product, renewals, masked, maturity, guarantor,
                firm_segment, firm_first_time, firm_belief, firm_default_month,
                base_rate, rate_per_pd, subsidy_bank_ok, subsidy_segment_ok, first_time_only, months, credit, n_banks):
    """Price new loans, decide how each ends, and total them per bank.

    Parameters
    ----------
    firm : int64 (n,)
        Borrower slot of each loan; ``firm_*`` are the borrower table's columns.
    bank, amount, product, renewals, masked, maturity, guarantor : (n,)
        The loans' bank, principal (fen), product, renewals, evergreened flag, maturity month and guarantor.
    base_rate, rate_per_pd : float64 (banks,)
        Each bank's rate: ``base_rate + rate_per_pd × believed PD``, annual.
    subsidy_bank_ok, subsidy_segment_ok : bool (banks,), (segments,)
        Where the interest subsidy applies; ``first_time_only`` limits it to 首贷户.
    months : int
        The horizon M: a default month of M + 1 means no default.
    credit : int
        Product index of credit loans.

    Returns
    -------
    rate : float64 (n,)
    subsidised, defaults, evergreen : bool (n,)
        Subsidised; ends in default at its firm's default month; an evergreened renewal (distress masked).
    end : int64 (n,)
        The month the loan ends: its default month or its maturity, capped at M + 1.
    totals : float64 (banks, len(OPEN_TOTALS))
    """
    n = firm.shape[0]
    rate = np.empty(n)
    subsidised = np.empty(n, np.bool_)
    defaults = np.empty(n, np.bool_)
    evergreen = np.empty(n, np.bool_)
    end = np.empty(n, np.int64)
    totals = np.zeros((n_banks, 9))
    for i in range(n):
        f = firm[i]
        b = bank[i]
        a = amount[i]
        first = firm_first_time[f]
        sub = subsidy_bank_ok[b] and subsidy_segment_ok[firm_segment[f]] and (first or not first_time_only)
        r = base_rate[b] + rate_per_pd[b] * firm_belief[f]
        month = firm_default_month[f]
        distressed = month <= months and month <= maturity[i]
        d = distressed and not masked[i]
        e = distressed and masked[i]
        rate[i] = r
        subsidised[i] = sub
        defaults[i] = d
        evergreen[i] = e
        end[i] = min(month if d else maturity[i], months + 1)
        row = totals[b]
        row[0] += a
        if product[i] == credit:
            row[1] += a
        row[2] += 1.0
        row[3] += a * r
        if renewals[i] > 0:
            row[4] += a
        if e:
            row[5] += a
        if sub:
            row[6] += a
        if first:
            row[7] += a
        if guarantor[i] >= 0:
            row[8] += a
    return rate, subsidised, defaults, evergreen, end, totals


@njit(cache=True, nogil=True)
def close_loans(keep, bank, amount, rate, product, renewals, evergreen, subsidised, guarantor, pool,
                coverage, small_loan, credit, n_banks, n_pools):
    """Totals of the loans that end (those where ``keep`` is true), to take out of the running totals.

    Returns
    -------
    totals : float64 (banks, len(CLOSE_TOTALS))
    liability : float64 (guarantors, 2)
        Guarantee liability released, ``rint(coverage × amount)``: all of it, and on loans ≤ ``small_loan`` fen.
    covered : float64 (pools,)
        Pool-covered balance released.
    """
    totals = np.zeros((n_banks, 7))
    liability = np.zeros((coverage.shape[0], 2))
    covered = np.zeros(n_pools)
    for i in range(bank.shape[0]):
        if not keep[i]:
            continue
        a = amount[i]
        row = totals[bank[i]]
        row[0] += a
        if product[i] == credit:
            row[1] += a
        row[2] += 1.0
        row[3] += a * rate[i]
        if renewals[i] > 0:
            row[4] += a
        if evergreen[i]:
            row[5] += a
        if subsidised[i]:
            row[6] += a
        g = guarantor[i]
        if g >= 0:
            owed = np.rint(coverage[g] * a)
            liability[g, 0] += owed
            if a <= small_loan:
                liability[g, 1] += owed
        p = pool[i]
        if p >= 0:
            covered[p] += a
    return totals, liability, covered


@njit(cache=True, nogil=True)
def add_borrowers(accepted, end, per_firm, slots, segment, grade, bank, signal, first_time, history, cover, belief,
                  default_month, per_loan, since, loan_amount, loan_product, loan_guarantor, loan_pool, term, maturity,
                  t_segment, t_grade, t_bank, t_signal, t_first_time, t_history, t_cover, t_belief, t_default_month,
                  t_line, t_loans, t_since, t_repaid, t_graduating):
    """Write new borrowers into the borrower table, in the order they came, and lay out their loans ordered by
    the month they end (a stable counting sort: each loan is written once, straight to its place), so that the
    loan book files them without another copy.

    Parameters
    ----------
    accepted : int64 (m,)
        The firms that became borrowers, as indexes into the per-firm arrays, in the order they came.
    end, per_firm : int64 (n,)
        Per firm: the month its loans end, and how many loans it has.
    slots : int64 (m,)
        Free rows of the borrower table, one per accepted firm.
    segment ... since : (n,)
        Per-firm values to write (``per_loan`` × ``per_firm`` is the credit line).
    loan_amount, loan_product, loan_guarantor, loan_pool : (loans,)
        The accepted firms' loans, firm after firm in the order the firms came.
    term, maturity : int64 (n,)
        Per firm; its loans share them.
    t_* : the borrower table's columns, written at ``slots``.

    Returns
    -------
    firm, bank, amount, term, maturity, product, guarantor, pool : (loans,)
        The loans in end order: borrower slot, bank (int16), principal, term, maturity, product, guarantor, pool.
    """
    m = accepted.shape[0]
    n_loans = loan_amount.shape[0]
    last = 0
    for k in range(m):
        last = max(last, end[accepted[k]])
    position = np.zeros(last + 2, np.int64)  # where each end month's loans start in the output
    for k in range(m):
        position[end[accepted[k]] + 1] += per_firm[accepted[k]]
    for e in range(1, last + 2):
        position[e] += position[e - 1]
    out_firm = np.empty(n_loans, np.int64)
    out_bank = np.empty(n_loans, np.int16)
    out_amount = np.empty(n_loans)
    out_term = np.empty(n_loans, np.int64)
    out_maturity = np.empty(n_loans, np.int64)
    out_product = np.empty(n_loans, np.int8)
    out_guarantor = np.empty(n_loans, np.int8)
    out_pool = np.empty(n_loans, np.int8)
    src = 0
    for k in range(m):
        i = accepted[k]
        s = slots[k]
        t_segment[s] = segment[i]
        t_grade[s] = grade[i]
        t_bank[s] = bank[i]
        t_signal[s] = signal[i]
        t_first_time[s] = first_time[i]
        t_history[s] = history[i]
        t_cover[s] = cover[i]
        t_belief[s] = belief[i]
        t_default_month[s] = default_month[i]
        t_line[s] = per_loan[i] * per_firm[i]
        t_loans[s] = per_firm[i]
        t_since[s] = since[i]
        t_repaid[s] = 0
        t_graduating[s] = False
        q = position[end[i]]
        position[end[i]] += per_firm[i]
        for _ in range(per_firm[i]):
            out_firm[q] = s
            out_bank[q] = bank[i]
            out_amount[q] = loan_amount[src]
            out_term[q] = term[i]
            out_maturity[q] = maturity[i]
            out_product[q] = loan_product[src]
            out_guarantor[q] = loan_guarantor[src]
            out_pool[q] = loan_pool[src]
            q += 1
            src += 1
    return out_firm, out_bank, out_amount, out_term, out_maturity, out_product, out_guarantor, out_pool


@njit(cache=True, nogil=True)
def maturity_choices(t, firms, inverse, amount, term, u_reborrow, reborrow_prob, u_stress, stress_prob, u_bridge, bridge_share,
                     line_growth, line_limit, t_default_month, t_graduating, t_segment, t_line):
    """What each firm with maturing loans wants: re-borrowing, graduation, liquidity stress, renewal.

    A masked (evergreened) firm whose default month has come is insolvent. A loan is re-borrowed with
    probability ``reborrow_prob`` (``u_reborrow`` per loan), grown by the segment's line growth over its term; a
    firm whose line would then pass ``line_limit`` (fen) graduates (``t_graduating`` is set). A solvent firm is
    liquidity-stressed with ``stress_prob`` and can bridge with ``bridge_share`` (``u_stress``, ``u_bridge`` per
    firm). Renewal is asked for by loans that go on and by stressed and insolvent firms, never by graduates.

    Parameters
    ----------
    firms, inverse : int64 (firms,), (n,)
        The maturing loans' firms (borrower slots, in order of appearance) and each loan's index into them.
    amount, term : (n,)
        Principal (fen) and term (months) of each maturing loan.

    Returns
    -------
    want, asks : bool (n,)
        The loan would be re-borrowed; renewal is asked for it.
    grown : float64 (n,)
        The re-borrowed amount, fen.
    insolvent, stressed, bridges : bool (firms,)
    """
    n = amount.shape[0]
    n_firms = firms.shape[0]
    want = np.empty(n, np.bool_)
    asks = np.empty(n, np.bool_)
    grown = np.empty(n)
    insolvent = np.empty(n_firms, np.bool_)
    stressed = np.zeros(n_firms, np.bool_)
    bridges = np.zeros(n_firms, np.bool_)
    change = np.zeros(n_firms)
    wanting = np.zeros(n_firms, np.bool_)
    for k in range(n_firms):
        insolvent[k] = t_default_month[firms[k]] <= t
    for i in range(n):
        k = inverse[i]
        f = firms[k]
        w = u_reborrow[i] < reborrow_prob and not t_graduating[f]
        g = np.rint(amount[i] * (1.0 + line_growth[t_segment[f]]) ** (term[i] / 12.0))
        want[i] = w
        grown[i] = g
        change[k] += g - amount[i] if w else -amount[i]
        wanting[k] = wanting[k] or w
    for k in range(n_firms):
        f = firms[k]
        if t_line[f] + change[k] > line_limit and wanting[k] and not insolvent[k]:
            t_graduating[f] = True
        if stress_prob > 0:
            stressed[k] = u_stress[k] < stress_prob and not insolvent[k]
            bridges[k] = u_bridge[k] < bridge_share
    for i in range(n):
        k = inverse[i]
        graduating = t_graduating[firms[k]]
        want[i] = want[i] and not graduating
        asks[i] = (want[i] or stressed[k] or insolvent[k]) and not graduating
    return want, asks, grown, insolvent, stressed, bridges


@njit(cache=True, nogil=True)
def repay_and_relend(firms, inverse, skip, bank, amount, renew, want, grown, bridged, max_pd, cover_share, cover_open,
                     pd_logit, pd, signal_sd, former, former_first_time, pool,
                     t_bank, t_segment, t_grade, t_signal, t_history, t_repaid, t_belief, t_cover, t_line, t_loans,
                     t_graduating, t_first_time, n_banks):
    """Maturing loans that do not default, firm by firm: repayment or renewal, the sharper belief after a
    repayment, re-borrowing where the bank still lends, and firms left without a loan.

    A firm that repaid a loan has shown the bank one more repayment, and the bank re-lends on that sharper
    view: ``expit(logit(pd) + signal_sd z / sqrt(1 + k))``. A loan is re-borrowed when the firm wants it and the
    believed PD is within the bank's appetite, or, for a firm lent to only because of cover, when that cover
    still takes new business and the PD net of its share is. A firm whose last loan is gone leaves the borrower
    table: a graduate leaves the inclusive book, any other joins the firms without a loan (``pool``, counts by
    segment, grade and state; ``former_first_time`` for 首贷户, else ``former``).

    Parameters
    ----------
    firms, inverse : the loans' firms and each loan's index into them (see :func:`maturity_choices`).
    skip : bool (firms,)
        Firms whose loans defaulted instead (already handled).
    renew, want : bool (n,); grown : float64 (n,)
        Renewed; wanted again; the re-borrowed amount (fen).
    bridged : bool (firms,)
        The firm bridged its repayment with borrowed money.
    cover_share, cover_open : (instruments,)
        Per guarantor then pool: the share of loss it covers, and whether it takes new business.

    Returns
    -------
    flows : float64 (banks, len(MATURITY_FLOWS))
        Repaid amount, amount repaid with bridge money, renewals, renewed amount, re-borrowing declined,
        graduates and firms that left (by the firm's bank).
    cont : bool (n,)
        The loan goes on: renewed or re-borrowed.
    new_amount : float64 (n,)
        Amount of the loan that goes on.
    leaving : int64 (firms that left,)
        Borrower slots to release, in order.
    """
    n = amount.shape[0]
    n_firms = firms.shape[0]
    flows = np.zeros((n_banks, 7))
    cont = np.zeros(n, np.bool_)
    new_amount = np.empty(n)
    leaving = np.empty(n_firms, np.int64)
    n_leaving = 0
    i = 0
    for k in range(n_firms):
        f = firms[k]
        start = i
        while i < n and inverse[i] == k:
            i += 1
        if skip[k]:
            continue
        repaid_one = False
        for j in range(start, i):
            b = bank[j]
            a = amount[j]
            flows[b, 0] += a
            if renew[j]:
                flows[b, 2] += 1.0
                flows[b, 3] += a
            else:
                repaid_one = True
                if bridged[k]:
                    flows[b, 1] += a
        if repaid_one:
            t_repaid[f] += 1
            if signal_sd == 0.0:
                t_belief[f] = pd[t_segment[f], t_grade[f]]
            else:
                x = pd_logit[t_segment[f], t_grade[f]] + signal_sd * t_signal[f] / np.sqrt(1.0 + (float(t_history[f]) + t_repaid[f]))
                t_belief[f] = 1.0 / (1.0 + np.exp(-x))
        change = 0.0
        for j in range(start, i):
            b = bank[j]
            again = want[j] and not renew[j]
            via = t_cover[f]
            if via >= 0:
                credible = cover_open[via] and t_belief[f] * (1.0 - cover_share[via]) <= max_pd[b]
            else:
                credible = t_belief[f] <= max_pd[b]
            if again and not credible:
                flows[b, 4] += 1.0
                again = False
            new_amount[j] = amount[j] if renew[j] else grown[j]
            if again:
                change += grown[j] - amount[j]
            elif not renew[j]:
                change -= amount[j]
            cont[j] = again or renew[j]
            if not cont[j]:
                t_loans[f] -= 1
        t_line[f] += change
        if t_loans[f] == 0:
            b = t_bank[f]
            flows[b, 6] += 1.0
            if t_graduating[f]:
                flows[b, 5] += 1.0
            else:
                pool[t_segment[f], t_grade[f], former_first_time if t_first_time[f] else former] += 1
            leaving[n_leaving] = f
            n_leaving += 1
    return flows, cont, new_amount, leaving[:n_leaving]


@njit(cache=True, nogil=True)
def assign_guarantors(segment, line, bank, amount, wanted, only, capital, floor, coverage, bank_ok, segment_ok, max_line,
                      single, leverage_cap, small_loan, outstanding, outstanding_small, issued):
    """Guarantees for the loans that want one: each guarantor in scenario order takes the eligible loans not yet
    covered, in order, while their liability fits (see :meth:`creditsim.guarantees.GuaranteeBook.assign`).

    ``only`` (per loan, -1 for any) restricts a loan to one guarantor. ``outstanding``, ``outstanding_small``
    (liability on loans ≤ ``small_loan`` fen) and ``issued`` (per guarantor, fen) are updated in place.

    Returns
    -------
    int8 (n,)
        The guarantor of each loan, -1 where none.
    """
    n = amount.shape[0]
    out = np.full(n, -1, np.int8)
    for g in range(capital.shape[0]):
        if capital[g] < floor[g]:
            continue
        c = coverage[g]
        room = leverage_cap[g] * capital[g] - outstanding[g]
        used = 0.0
        small = 0.0
        for i in range(n):
            if not wanted[i] or out[i] >= 0 or not bank_ok[g, bank[i]] or not segment_ok[g, segment[i]]:
                continue
            if line[i] > max_line[g] or c * line[i] > single[g] * capital[g] or (only[i] >= 0 and only[i] != g):
                continue
            liability = np.rint(c * amount[i])
            if used + liability <= room:
                out[i] = g
                used += liability
                if amount[i] <= small_loan:
                    small += liability
        outstanding[g] += used
        outstanding_small[g] += small
        issued[g] += used
    return out


@njit(cache=True, nogil=True)
def assign_pools(segment, bank, product, amount, first_time, guarantor, only, suspended, room, bank_ok, segment_ok,
                 product_ok, max_loan, first_only, covered):
    """Risk-pool cover for eligible loans without a guarantee: each pool in scenario order that is not suspended
    takes the eligible loans not yet covered, in order, while they fit in ``room`` (fen; see
    :meth:`creditsim.pools.PoolBook.assign`). ``covered`` (per pool, fen) is updated in place.

    Returns
    -------
    int8 (n,)
        The pool of each loan, -1 where none.
    """
    n = amount.shape[0]
    out = np.full(n, -1, np.int8)
    for p in range(room.shape[0]):
        if suspended[p]:
            continue
        used = 0.0
        for i in range(n):
            if out[i] >= 0 or guarantor[i] >= 0 or not bank_ok[p, bank[i]] or not segment_ok[p, segment[i]]:
                continue
            if not product_ok[p, product[i]] or amount[i] > max_loan[p] or not (first_time[i] or not first_only[p]):
                continue
            if only[i] >= 0 and only[i] != p:
                continue
            if used + amount[i] <= room[p]:
                out[i] = p
                used += amount[i]
        covered[p] += used
    return out


@njit(cache=True, nogil=True)
def pick(cum, row, u):
    """Inverse-CDF choice: the first column of ``cum[row]`` whose cumulative probability exceeds ``u`` (rows
    end in +inf, so every u in [0, 1) finds one)."""
    col = 0
    while cum[row, col] <= u:
        col += 1
    return col


@njit(cache=True, nogil=True)
def continuing_loans(inverse, alive, renew, cont, firm, bank, term, product, renewals, new_amount, u_term, term_cum, terms,
                     u_product, product_cum, t_bank, t_segment, t_line, t_first_time, t_cover, t_belief):
    """The new loans of firms that go on at maturity, in the order of the maturing loans.

    A renewal keeps its amount, term and product and counts one more consecutive renewal; a firm that renews
    any loan has its distress masked until its loans fall due again. A re-borrowed loan takes the firm's fresh
    term (one per surviving firm, ``u_term`` in firm order) and a fresh product (``u_product``, one per
    continuing loan, so the stream's use does not depend on the renewal policy).

    Returns
    -------
    firm, bank, amount, term, product, renewals, masked : (loans going on,)
    segment, line, first_time, cover, belief : (loans going on,)
        The firm's columns, for cover assignment.
    """
    n = inverse.shape[0]
    n_firms = alive.shape[0]
    renewing = np.zeros(n_firms, np.bool_)
    for i in range(n):
        if renew[i]:
            renewing[inverse[i]] = True
    fresh = np.zeros(n_firms, np.int64)
    q = 0
    for i in range(n):
        k = inverse[i]
        if alive[k] and (i == 0 or inverse[i - 1] != k):
            fresh[k] = terms[pick(term_cum, t_bank[firm[i]], u_term[q])]
            q += 1
    m = 0
    for i in range(n):
        if cont[i]:
            m += 1
    out_firm = np.empty(m, np.int64)
    out_bank = np.empty(m, np.int16)
    out_amount = np.empty(m)
    out_term = np.empty(m, np.int64)
    out_product = np.empty(m, np.int8)
    out_renewals = np.empty(m, np.int16)
    out_masked = np.empty(m, np.bool_)
    out_segment = np.empty(m, np.int8)
    out_line = np.empty(m)
    out_first_time = np.empty(m, np.bool_)
    out_cover = np.empty(m, np.int64)
    out_belief = np.empty(m)
    j = 0
    for i in range(n):
        if not cont[i]:
            continue
        k = inverse[i]
        f = firm[i]
        b = bank[i]
        drawn = pick(product_cum, b, u_product[j])
        out_firm[j] = f
        out_bank[j] = b
        out_amount[j] = new_amount[i]
        out_term[j] = term[i] if renewing[k] else fresh[k]
        out_masked[j] = renewing[k]
        out_product[j] = product[i] if renew[i] else drawn
        out_renewals[j] = renewals[i] + 1 if renew[i] else 0
        out_segment[j] = t_segment[f]
        out_line[j] = t_line[f]
        out_first_time[j] = t_first_time[f]
        out_cover[j] = t_cover[f]
        out_belief[j] = t_belief[f]
        j += 1
    return (out_firm, out_bank, out_amount, out_term, out_product, out_renewals, out_masked,
            out_segment, out_line, out_first_time, out_cover, out_belief)


@njit(cache=True, nogil=True)
def pick_each(cum, row, u):
    """:func:`pick` for arrays: one column per (row, u) pair, int64."""
    out = np.empty(u.shape[0], np.int64)
    for i in range(u.shape[0]):
        out[i] = pick(cum, row[i], u[i])
    return out


@njit(cache=True, nogil=True)
def first_default(cum_hazard, cohort, start, exp_draw):
    """Month of default of each firm, by inverting its cohort's cumulative hazard (see
    :func:`creditsim.risk.default_months`).

    Returns
    -------
    int32 (n,)
        The first month t > start with ``Lambda[c, t] - Lambda[c, start] >= E`` (a binary search along the
        cohort's row), or M + 1 when the firm survives the horizon.
    """
    width = cum_hazard.shape[1]
    out = np.empty(cohort.shape[0], np.int32)
    for i in range(cohort.shape[0]):
        row = cum_hazard[cohort[i]]
        target = row[start[i]] + exp_draw[i]
        lo, hi = start[i] + 1, width  # the first t in [start + 1, M + 1) with Lambda[t] >= target, else M + 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if row[mid] < target:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo
    return out


@njit(cache=True, nogil=True)
def lay_out_loans(per_firm, per_loan, bank, u_product, product_cum, segment, line, first_time, cover, belief):
    """The loans of new borrowers, firm after firm: each firm's line split evenly over its loans, a product
    drawn per loan from its bank's mix (``u_product``, one per loan), and the firm's columns cover assignment
    needs.

    Returns
    -------
    owner : int64 (loans,)
        Index of each loan's firm.
    bank, amount, product, segment, line, first_time, cover, belief : (loans,)
    """
    n_loans = u_product.shape[0]
    owner = np.empty(n_loans, np.int64)
    out_bank = np.empty(n_loans, np.int64)
    amount = np.empty(n_loans)
    product = np.empty(n_loans, np.int8)
    out_segment = np.empty(n_loans, np.int64)
    out_line = np.empty(n_loans)
    out_first_time = np.empty(n_loans, np.bool_)
    out_cover = np.empty(n_loans, np.int64)
    out_belief = np.empty(n_loans)
    q = 0
    for i in range(per_firm.shape[0]):
        for _ in range(per_firm[i]):
            owner[q] = i
            out_bank[q] = bank[i]
            amount[q] = per_loan[i]
            product[q] = pick(product_cum, bank[i], u_product[q])
            out_segment[q] = segment[i]
            out_line[q] = per_loan[i] * per_firm[i]
            out_first_time[q] = first_time[i]
            out_cover[q] = cover[i]
            out_belief[q] = belief[i]
            q += 1
    return owner, out_bank, amount, product, out_segment, out_line, out_first_time, out_cover, out_belief


@njit(cache=True, nogil=True)
def renewal_allowed(last_month, product_ok, max_term, max_consecutive, min_months_on_book, max_pd, calendar_month,
                    segment, product, term, renewals, months_on_book, believed_pd):
    """Whether the renewal rules (see :class:`creditsim.renewal.RenewalRules`) allow one maturing, performing
    loan to be renewed in ``calendar_month``."""
    return (
        calendar_month <= last_month[segment]
        and product_ok[product]
        and term <= max_term
        and renewals < max_consecutive
        and months_on_book >= min_months_on_book
        and believed_pd <= max_pd
    )


@njit(cache=True, nogil=True)
def renewal_allowed_each(last_month, product_ok, max_term, max_consecutive, min_months_on_book, max_pd, calendar_month,
                         segment, product, term, renewals, months_on_book, believed_pd):
    """:func:`renewal_allowed` for arrays of loans."""
    out = np.empty(segment.shape[0], np.bool_)
    for i in range(segment.shape[0]):
        out[i] = renewal_allowed(last_month, product_ok, max_term, max_consecutive, min_months_on_book, max_pd, calendar_month,
                                 segment[i], product[i], term[i], renewals[i], months_on_book[i], believed_pd[i])
    return out


@njit(cache=True, nogil=True)
def renewable(last_month, product_ok, max_term, max_consecutive, min_months_on_book, max_pd, calendar_month, t,
              firm, product, term, renewals, inverse, taken, t_segment, t_since, t_belief):
    """Maturing loans in month ``t`` that the renewal rules allow and whose firm's bank takes renewal up
    (``taken``, per firm)."""
    out = np.empty(firm.shape[0], np.bool_)
    for i in range(firm.shape[0]):
        f = firm[i]
        out[i] = taken[inverse[i]] and renewal_allowed(
            last_month, product_ok, max_term, max_consecutive, min_months_on_book, max_pd, calendar_month,
            t_segment[f], product[i], term[i], renewals[i], t - t_since[f], t_belief[f])
    return out


@njit(cache=True, nogil=True)
def cover_requests(required, product, n_guarantors, guaranteed, credit):
    """What each new loan asks of the guarantors and pools.

    ``required`` (per loan, -1 none) names the instrument a cover-dependent firm needs: a guarantor index, or
    ``n_guarantors`` plus a pool index; it forces the product that instrument covers (guaranteed, or credit).

    Returns
    -------
    product : int8 (n,)
    wanted : bool (n,)
        The loan asks for a guarantee (its product is the guaranteed one).
    only_guarantor, only_pool : int64 (n,)
        The one guarantor or pool the loan may take (-1: any; a loan that needs a guarantor takes no pool).
    """
    n = required.shape[0]
    out_product = np.empty(n, np.int8)
    wanted = np.empty(n, np.bool_)
    only_guarantor = np.full(n, -1, np.int64)
    only_pool = np.full(n, -1, np.int64)
    for i in range(n):
        r = required[i]
        if r >= n_guarantors:
            out_product[i] = credit
            only_pool[i] = r - n_guarantors
        elif r >= 0:
            out_product[i] = guaranteed
            only_guarantor[i] = r
            only_pool[i] = 127
        else:
            out_product[i] = product[i]
        wanted[i] = out_product[i] == guaranteed
    return out_product, wanted, only_guarantor, only_pool


@njit(cache=True, nogil=True)
def cover_outcome(required, n_guarantors, wanted, offered, guarantor, product, bank, credit, n_banks):
    """After guarantors have decided: a loan that wanted a guarantee and has none becomes a credit loan (in
    place in ``product``), and the loans left without the guarantee they asked for are counted per bank.

    Parameters
    ----------
    offered, guarantor : int8 (n,)
        The guarantor that offered cover (-1 none), and the one the borrower took.

    Returns
    -------
    unavailable : float64 (banks,)
        Loans that asked for a guarantee on their own (not a required one) and found no guarantor with room.
    """
    unavailable = np.zeros(n_banks)
    for i in range(required.shape[0]):
        if wanted[i] and guarantor[i] < 0:
            product[i] = credit
            if offered[i] < 0 and required[i] < 0:
                unavailable[bank[i]] += 1.0
    return unavailable


@njit(cache=True, nogil=True)
def covered_as_required(required, n_guarantors, guarantor, pool):
    """Whether each loan has the instrument its firm requires (always true where none is required)."""
    out = np.empty(required.shape[0], np.bool_)
    for i in range(required.shape[0]):
        r = required[i]
        out[i] = pool[i] >= 0 if r >= n_guarantors else (guarantor[i] >= 0 if r >= 0 else True)
    return out
