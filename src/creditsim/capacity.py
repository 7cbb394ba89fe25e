"""Limited money: what a payer short of money pays of what it owes. (Limited room, which loans fit under a
guarantor's or a pool's limit, is decided loan by loan in :func:`creditsim.kernels.assign_guarantors` and
:func:`creditsim.kernels.assign_pools`.)"""

from __future__ import annotations

import numpy as np

__all__ = ["pay_pro_rata"]


def pay_pro_rata(due: np.ndarray, available: np.ndarray, owed: np.ndarray | None = None) -> np.ndarray:
    """What each payer pays of the amounts it owes: all of it when its money allows, else its money shared in
    proportion, in whole fen (never more than it has).

    Parameters
    ----------
    due : ndarray, shape (k, payers)
        Amounts owed (fen); each column is one payer's.
    available : ndarray, shape (payers,)
        Money each payer has (fen; a negative amount pays nothing).
    owed : ndarray, shape (payers,), optional
        What each payer owes in all, when ``due`` is only part of it (default: the column sums of ``due``).

    Returns
    -------
    ndarray, shape (k, payers)
    """
    owed = due.sum(axis=0) if owed is None else owed
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(owed > available, np.maximum(available, 0.0) / owed, 1.0)
    return np.where(fraction < 1.0, np.floor(due * fraction), due)
