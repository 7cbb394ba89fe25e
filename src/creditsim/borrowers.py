"""Borrowers: the firms that hold loans, one row each, in numpy arrays with reusable slots.

A firm becomes a row when it takes its first loan in the scenario (or is in the opening book) and gives the
row back when its last loan ends; between loans it is a count in the pool of firms without a loan
(:mod:`creditsim.population`). Rows are recycled through a free list, so memory follows the number of
current borrowers, not of everyone who ever borrowed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BorrowerTable"]


class BorrowerTable:
    """Current borrowers, as arrays indexed by slot.

    Attributes
    ----------
    segment, grade : ndarray of int8
        Segment and credit grade (true PD class) of the firm.
    bank : ndarray of int16
        The firm's bank (all its loans are with that bank).
    default_month : ndarray of int32
        Month the firm defaults (M + 1: not within the horizon).
    loans : ndarray of int32
        Number of performing loans the firm holds.
    line : ndarray of float64
        Total of the firm's loan sizes in fen: its credit line (单户授信总额).
    graduating : ndarray of bool
        The firm's line passed the inclusive limit; its loans are not renewed in the inclusive book.
    first_time : ndarray of bool
        The firm became a borrower in the scenario without ever having borrowed (首贷户).
    signal : ndarray of float64
        Standard normal draw behind the bank's error about the firm's PD (see ``risk.signal_sd``).
    history, repaid : ndarray of int16
        Repaid loans the bank had seen when the firm became a borrower, and repaid since: its belief sharpens
        with their sum.
    since : ndarray of int32
        Month of the firm's first loan at its bank (negative for the opening book's long relationships).
    belief : ndarray of float64
        The annual PD the bank believes the firm has (kept in step with signal, history and repaid).
    cover : ndarray of int8
        For a firm the bank lends to only because of cover, the instrument: a guarantor index, or the number of
        guarantors plus a pool index; -1 for a firm the bank lends to on its own.
    """

    def __init__(self, capacity: int = 1024) -> None:
        capacity = max(int(capacity), 16)
        self.segment = np.zeros(capacity, np.int8)
        self.grade = np.zeros(capacity, np.int8)
        self.bank = np.zeros(capacity, np.int16)
        self.default_month = np.zeros(capacity, np.int32)
        self.loans = np.zeros(capacity, np.int32)
        self.line = np.zeros(capacity, np.float64)
        self.graduating = np.zeros(capacity, np.bool_)
        self.first_time = np.zeros(capacity, np.bool_)
        self.signal = np.zeros(capacity, np.float64)
        self.history = np.zeros(capacity, np.int16)
        self.repaid = np.zeros(capacity, np.int16)
        self.since = np.zeros(capacity, np.int32)
        self.belief = np.zeros(capacity, np.float64)
        self.cover = np.zeros(capacity, np.int8)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # a stack: the top is the end
        self._n_free = capacity

    _FIELDS = ("segment", "grade", "bank", "default_month", "loans", "line", "graduating", "first_time", "signal", "history", "repaid", "since", "belief", "cover")

    @property
    def capacity(self) -> int:
        return int(self.loans.shape[0])

    @property
    def live(self) -> np.ndarray:
        """Slots in use (for audits; O(capacity))."""
        used = np.ones(self.capacity, bool)
        used[self._free[: self._n_free]] = False
        return np.flatnonzero(used)

    def add(self, n: int) -> np.ndarray:
        """Take ``n`` free slots (growing the arrays when needed) and return them; the caller writes every column
        of the new rows (see :func:`creditsim.kernels.add_borrowers`)."""
        if n > self._n_free:
            self._grow(max(2 * self.capacity, self.capacity + n - self._n_free))
        slots = np.sort(self._free[self._n_free - n : self._n_free])  # ascending: new rows are written in memory order
        self._n_free -= n
        return slots

    def release(self, slots: np.ndarray) -> None:
        """Give slots back (each at most once)."""
        n = slots.shape[0]
        self._free[self._n_free : self._n_free + n] = slots
        self._n_free += n

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        for name in self._FIELDS:
            current = getattr(self, name)
            grown = np.zeros(capacity, current.dtype)
            grown[:old] = current
            setattr(self, name, grown)
        free = np.empty(capacity, dtype=np.int64)
        free[: self._n_free] = self._free[: self._n_free]
        free[self._n_free : self._n_free + capacity - old] = np.arange(capacity - 1, old - 1, -1)
        self._free = free
        self._n_free += capacity - old
