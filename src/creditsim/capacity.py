"""Limited money and room: which loans, offered in order, fit under a guarantor's or a pool's limit, and what a
payer short of money pays of what it owes."""

from __future__ import annotations

import numpy as np

__all__ = ["first_fit", "pay_pro_rata"]


def first_fit(sizes: np.ndarray, room: float) -> np.ndarray:
    """Which of the loans, offered one after the other, are taken within ``room``.

    Each loan is taken when it fits in what room is left after the loans taken before it; one that does not fit
    is refused, and later, smaller loans may still be taken (as a guarantor or pool decides application by
    application).

    Parameters
    ----------
    sizes : ndarray of float, shape (n,)
        What each loan would use of the room (liability or covered balance, fen), in the order offered; ≥ 0.
    room : float
        Room left under the limit, fen.

    Returns
    -------
    ndarray of bool, shape (n,)
        Taken loans.
    """
    taken = np.zeros(sizes.shape[0], dtype=bool)
    left = np.arange(sizes.shape[0])
    while left.size and room >= 0:
        used = np.cumsum(sizes[left])
        k = int(np.searchsorted(used, room, side="right"))  # the first k fit together
        taken[left[:k]] = True
        if k:
            room -= float(used[k - 1])
        left = left[k + 1 :]  # the loan at k does not fit: refused
        left = left[sizes[left] <= room]
    return taken


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
