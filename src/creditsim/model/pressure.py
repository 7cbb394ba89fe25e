"""Policy pressure: a bank behind the pace of its growth targets pushes its new lending (``[pressure]``).

A bank's target in a calendar year is the highest of its mandated growth (``banks.NAME.growth_target``), grown
over the months since the start of the year, (1 + g)^(k/12), and, with ``pressure.yardstick`` in a year whose 两增
rule assesses growth, the growth of its all loans since the start of the year (the yardstick of 两增's growth
clause). At the start of month t the bank compares its balance at the end of month t − 1 with the pace, its
balance at the start of the year (or of the run) times the target's factor: the shortfall
max(0, pace − balance), as a share of the pace, sets its pressure π = min(1, shortfall / (pace × full_gap)).
Under pressure the bank approves new borrowers up to (1 + appetite × π) × max_pd (at most 1) and seeks extra
applicants (:func:`creditsim.model.lending.outreach_applications`). January (and the run's first month) resets
the base, so a new year starts without pressure. See docs/explanation/model.md §1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .columns import BANK, BOOK

__all__ = ["press"]


@njit(cache=True, nogil=True)
def press(p, s, t):
    """Each bank's pressure and appetite for month ``t`` (see the module docstring); its shortfall is recorded as
    ``growth_shortfall``."""
    q = p.pressure
    if not q.on:
        return
    base = t == 1 or p.calendar.january[t]
    since = min(p.calendar.month_index[t] % 12, t - 1)  # months since the base: the year's, or the run's start
    for bank in range(s.book.shape[0]):
        balance = s.book[bank, BOOK.balance] + s.book[bank, BOOK.npl_balance]
        all_loans = np.rint(s.book[bank, BOOK.other_loans] * p.banks.other_growth[t - 1, bank]) + balance
        if base:
            s.year_start[bank, 0] = balance
            s.year_start[bank, 1] = all_loans
        factor = -1.0
        g = q.target[t, bank]
        if not math.isnan(g):
            factor = (1.0 + g) ** (since / 12.0)
        if q.yardstick[t] and s.year_start[bank, 1] > 0.0:
            factor = max(factor, all_loans / s.year_start[bank, 1])
        pace = s.year_start[bank, 0] * factor
        shortfall = max(0.0, pace - balance) if factor > 0.0 else 0.0
        pressure = min(1.0, shortfall / (pace * q.full_gap)) if shortfall > 0.0 else 0.0
        s.pressure[bank] = pressure
        s.appetite[bank] = min(1.0, p.banks.max_pd[bank] * (1.0 + q.appetite * pressure))
        s.flows[bank, BANK.growth_shortfall] = shortfall
