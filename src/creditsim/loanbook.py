"""The loan book as an event calendar.

Each loan's end is known when it is made: it matures at ``start + term``, or defaults earlier when its firm's
default month comes first. A loan is therefore stored once, in the bucket of the month it ends, as part of
a :class:`Loans` batch (a struct of arrays). Processing month t pops that month's bucket: the engine touches
each loan twice (when it is made and when it ends), never once a month. Loans that end after the horizon
are not stored; they stay in the running totals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Loans", "LoanBook"]


@dataclass
class Loans:
    """A batch of loans (all arrays of one length).

    Attributes
    ----------
    firm : int64
        Borrower slot (see :class:`~creditsim.borrowers.BorrowerTable`).
    bank : int16
        Lending bank.
    amount : float64
        Principal, CNY (bullet: repaid in full at maturity).
    rate : float64
        Annual interest rate.
    product : int8
        Index into :data:`creditsim.scenario.PRODUCTS`.
    start : int32
        Month the loan was made (0 for the opening book).
    term : int32
        Contractual term, months.
    defaults : bool
        The loan ends in default (at its firm's default month) rather than at maturity.
    """

    firm: np.ndarray
    bank: np.ndarray
    amount: np.ndarray
    rate: np.ndarray
    product: np.ndarray
    start: np.ndarray
    term: np.ndarray
    defaults: np.ndarray

    def __len__(self) -> int:
        return self.firm.shape[0]

    def take(self, index: np.ndarray) -> "Loans":
        """The loans at ``index`` (an integer or boolean index)."""
        return Loans(*(getattr(self, f.name)[index] for f in fields(self)))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    @staticmethod
    def concat(batches: list["Loans"]) -> "Loans":
        if len(batches) == 1:
            return batches[0]
        return Loans(*(np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(Loans)))

    @staticmethod
    def empty() -> "Loans":
        return Loans(
            np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0), np.zeros(0), np.zeros(0, np.int8),
            np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool),
        )


class LoanBook:
    """Loans filed by the month they end, for months 1..M."""

    def __init__(self, months: int) -> None:
        self.months = months
        self._buckets: list[list[Loans]] = [[] for _ in range(months + 2)]

    def file(self, loans: Loans, end: np.ndarray) -> None:
        """File each loan under its end month; loans ending after the horizon are not kept."""
        keep = end <= self.months
        if not keep.all():
            loans, end = loans.take(keep), end[keep]
        if len(loans) == 0:
            return
        order = np.argsort(end, kind="stable")
        end_sorted = end[order]
        loans = loans.take(order)
        months, first = np.unique(end_sorted, return_index=True)
        bounds = np.append(first, len(end_sorted))
        for month, lo, hi in zip(months.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
            self._buckets[month].append(loans.take(slice(lo, hi)))

    def pop(self, month: int) -> Loans:
        """All loans that end in ``month`` (removed from the book)."""
        batches, self._buckets[month] = self._buckets[month], []
        return Loans.concat(batches) if batches else Loans.empty()

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for bucket in self._buckets for b in bucket)
