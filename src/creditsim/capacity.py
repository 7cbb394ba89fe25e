"""Capacity of a guarantor or a pool: which loans, offered in order, fit under a limit."""

from __future__ import annotations

import numpy as np

__all__ = ["first_fit"]


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
