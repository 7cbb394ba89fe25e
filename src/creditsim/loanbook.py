"""The loan book as an event calendar.

Each loan's end is known when it is made: it matures at the end of its term, or defaults earlier when its
firm's default month comes first. A loan is therefore stored once, in the bucket of the month it ends, as part
of a :class:`Loans` batch (a struct of arrays). Processing month t pops that month's bucket: the engine
touches each loan twice (when it is made and when it ends), never once a month. Loans that end after the
horizon wait in a last bucket that is never popped, so the book always holds every outstanding loan.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        Principal in whole fen (bullet: repaid in full at maturity).
    rate : float64
        Annual interest rate.
    product : int8
        Index into :data:`creditsim.scenario.PRODUCTS`.
    term : int32
        Contractual term, months.
    renewals : int16
        Consecutive renewals without principal repayment that led to this loan (0: not a renewal).
    evergreen : bool
        A renewal to a firm that defaults before it matures, filed at maturity (evergreening).
    guarantor : int8
        Index of the guarantor covering the loan, -1 for none.
    pool : int8
        Index of the risk pool covering the loan, -1 for none.
    subsidised : bool
        Government pays part of the loan's interest (贷款贴息).
    defaults : bool
        The loan ends in default (at its firm's default month) rather than at maturity.
    """

    firm: np.ndarray
    bank: np.ndarray
    amount: np.ndarray
    rate: np.ndarray
    product: np.ndarray
    term: np.ndarray
    renewals: np.ndarray
    evergreen: np.ndarray
    guarantor: np.ndarray
    pool: np.ndarray
    subsidised: np.ndarray
    defaults: np.ndarray

    def __len__(self) -> int:
        return self.firm.shape[0]

    def take(self, index: np.ndarray | slice) -> Loans:
        """The loans at ``index`` (an integer or boolean index, or a slice)."""
        return Loans(*(getattr(self, name)[index] for name in _FIELDS))

    @staticmethod
    def concat(batches: list[Loans]) -> Loans:
        if len(batches) == 1:
            return batches[0]
        return Loans(*(np.concatenate([getattr(b, name) for b in batches]) for name in _FIELDS))

    @staticmethod
    def empty() -> Loans:
        z = np.zeros
        return Loans(z(0, np.int64), z(0, np.int16), z(0), z(0), z(0, np.int8), z(0, np.int32), z(0, np.int16), z(0, bool), z(0, np.int8), z(0, np.int8), z(0, bool), z(0, bool))


class LoanBook:
    """Loans filed by the month they end: buckets 1..M, and bucket M + 1 for loans ending after the horizon."""

    def __init__(self, months: int) -> None:
        self.months = months
        self._buckets: list[list[Loans]] = [[] for _ in range(months + 2)]

    def file(self, loans: Loans, end: np.ndarray) -> None:
        """File each loan under its end month (months after the horizon go to bucket M + 1).

        The loans are ordered by end month with a stable radix sort on 16-bit months (unless they come ordered),
        so a firm's loans (made together, ending together) stay next to each other in their bucket.
        """
        if len(loans) == 0:
            return
        end = np.minimum(end, self.months + 1).astype(np.int16)
        if not (end[1:] >= end[:-1]).all():  # new borrowers come sorted (see Simulation._new_borrowers): no copy
            loans = loans.take(np.argsort(end, kind="stable"))
        counts = np.bincount(end, minlength=self.months + 2)
        stops = np.cumsum(counts)
        for month in np.flatnonzero(counts).tolist():
            self._buckets[month].append(loans.take(slice(int(stops[month] - counts[month]), int(stops[month]))))

    def pop(self, month: int) -> Loans:
        """All loans that end in ``month`` (removed from the book), ordered by borrower slot (stable: a firm's
        loans stay in the order they were filed), so the engine reads the borrower table in memory order."""
        batches, self._buckets[month] = self._buckets[month], []
        if not batches:
            return Loans.empty()
        loans = Loans.concat(batches)
        return loans.take(np.argsort(loans.firm, kind="stable"))

    def outstanding(self) -> Loans:
        """Every loan still in the book (for audits)."""
        batches = [b for bucket in self._buckets for b in bucket]
        return Loans.concat(batches) if batches else Loans.empty()


_FIELDS = ("firm", "bank", "amount", "rate", "product", "term", "renewals", "evergreen", "guarantor", "pool", "subsidised", "defaults")
