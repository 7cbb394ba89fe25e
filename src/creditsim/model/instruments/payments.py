"""Limited money: what a payer short of money pays of what it owes."""

from __future__ import annotations

import math

from numba import njit

__all__ = ["pay_pro_rata"]


@njit(cache=True, nogil=True)
def pay_pro_rata(due, available, owed, out):
    """What each payer pays of the amounts it owes: all of it when its money allows, else its money shared in
    proportion to the amounts, in whole fen rounded down (never more than it has).

    Parameters
    ----------
    due : float64 (payers, k)
        Row p holds what payer p owes, fen.
    available : float64 (payers,)
        Money each payer has, fen (a negative amount pays nothing).
    owed : float64 (payers,)
        What each payer owes in all: the row sums of ``due``, or more when ``due`` is only part of it.
    out : float64 (payers, k)
        Written with the amounts paid.
    """
    for p in range(due.shape[0]):
        if owed[p] > available[p] and owed[p] > 0.0:
            fraction = max(available[p], 0.0) / owed[p]
            for k in range(due.shape[1]):
                out[p, k] = math.floor(due[p, k] * fraction)
        else:
            for k in range(due.shape[1]):
                out[p, k] = due[p, k]
