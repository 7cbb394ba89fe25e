"""The interest subsidy (贷款贴息): government pays part of the interest on eligible loans, within an annual budget.

A loan is subsidised when it is made if its bank and its firm's segment are eligible (and the firm is a 首贷户, when
the subsidy is for them only). Each month government pays ``rate`` / 12 of the subsidised balance at the start of
the month, within what is left of the calendar year's budget, pro rata across banks when short; borrowers pay what
the budget does not. This module owns the subsidised balance and the budget's use; money is in whole fen.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import numpy as np
from numba import njit

from ...scenario import Scenario, admitted
from ..columns import FEN
from ..structs import BOOL, FLOAT, FLOAT_1, FLOAT_2, FROZEN_BOOL_1
from .payments import pay_pro_rata

__all__ = ["SubsidyParams", "SubsidyState", "parameters", "new_state", "reset", "open_month", "eligible", "assign", "release"]


class SubsidyParams(NamedTuple):
    """The subsidy's terms (B banks, S segments)."""

    on: Annotated[bool, BOOL]
    rate: Annotated[float, FLOAT]                   # annual, paid by government on the subsidised balance
    first_time_only: Annotated[bool, BOOL]
    bank_ok: Annotated[np.ndarray, FROZEN_BOOL_1]           # (B,) bool
    segment_ok: Annotated[np.ndarray, FROZEN_BOOL_1]        # (S,) bool
    budget: Annotated[float, FLOAT]                 # a calendar year, fen (inf: no cap)


class SubsidyState(NamedTuple):
    """One path's subsidy books (fen)."""

    balance: Annotated[np.ndarray, FLOAT_1]           # (B,) subsidised performing balance
    spent: Annotated[np.ndarray, FLOAT_1]             # (1,) this calendar year
    paid: Annotated[np.ndarray, FLOAT_2]              # (B, 1) paid this month
    unfunded: Annotated[np.ndarray, FLOAT_1]          # (B,) due this month beyond the budget (borrowers pay it)
    due: Annotated[np.ndarray, FLOAT_2]               # (B, 1) workspace


def parameters(s: Scenario) -> SubsidyParams:
    """The interest subsidy of a (sampled) scenario (off when it has none)."""
    sub = s.interest_subsidy
    return SubsidyParams(
        on=sub is not None, rate=float(sub.rate) if sub else 0.0, first_time_only=bool(sub.first_time_only) if sub else False,
        bank_ok=np.array(admitted(sub.banks if sub else [], s.bank_names), dtype=np.bool_),
        segment_ok=np.array(admitted(sub.segments if sub else [], s.segment_names), dtype=np.bool_),
        budget=math.inf if sub is None or sub.annual_budget is None else float(sub.annual_budget * FEN),
    )


def new_state(p: SubsidyParams, banks: int) -> SubsidyState:
    z = np.zeros
    return SubsidyState(balance=z(banks), spent=z(1), paid=z((banks, 1)), unfunded=z(banks), due=z((banks, 1)))


@njit(cache=True, nogil=True)
def reset(p, s):
    s.subsidy.balance[:] = 0.0
    s.subsidy.spent[0] = 0.0
    s.subsidy.paid[:] = 0.0
    s.subsidy.unfunded[:] = 0.0


@njit(cache=True, nogil=True)
def open_month(p, s, january):
    """Government pays its part of the month's interest on the subsidised balance at the start of the month, within
    what is left of the year's budget (reset each January); fills ``s.subsidy.paid`` and ``s.subsidy.unfunded``. Returns what
    government paid (fen)."""
    s.subsidy.paid[:] = 0.0
    s.subsidy.unfunded[:] = 0.0
    if not p.subsidy.on:
        return 0.0
    if january:
        s.subsidy.spent[0] = 0.0
    owed = np.zeros(1)
    for b in range(s.subsidy.balance.shape[0]):
        s.subsidy.due[b, 0] = np.rint(s.subsidy.balance[b] * p.subsidy.rate / 12.0)
        owed[0] += s.subsidy.due[b, 0]
    left = np.full(1, p.subsidy.budget - s.subsidy.spent[0])
    paid_t = np.zeros((1, s.subsidy.balance.shape[0]))
    pay_pro_rata(np.ascontiguousarray(s.subsidy.due.T), left, owed, paid_t)  # the budget is one payer for every bank
    total = 0.0
    for b in range(s.subsidy.balance.shape[0]):
        s.subsidy.paid[b, 0] = paid_t[0, b]
        s.subsidy.unfunded[b] = s.subsidy.due[b, 0] - paid_t[0, b]
        total += paid_t[0, b]
    s.subsidy.spent[0] += total
    return total


@njit(cache=True, nogil=True, inline="always")
def eligible(p, bank, segment, first_time):
    """Whether a loan made now to this firm is subsidised."""
    return p.subsidy.on and p.subsidy.bank_ok[bank] and p.subsidy.segment_ok[segment] and (first_time or not p.subsidy.first_time_only)


@njit(cache=True, nogil=True, inline="always")
def assign(p, s, bank, amount):
    """A subsidised loan is made."""
    s.subsidy.balance[bank] += amount


@njit(cache=True, nogil=True, inline="always")
def release(p, s, bank, amount):
    """A subsidised loan ends."""
    s.subsidy.balance[bank] -= amount
