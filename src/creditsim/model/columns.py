"""Column numbers of the arrays the compiled engine writes, as global named tuples (compile-time constants in
numba): the metrics of each scope (:data:`creditsim.metrics.SCOPE_METRICS`), a bank's running totals (:data:`BOOK`)
and the resolutions filed for a later month (:data:`DUE`)."""

from __future__ import annotations

from collections import namedtuple

from ..metrics import SCOPE_METRICS

__all__ = ["BANK", "GUARANTOR", "REGUARANTOR", "POOL", "POPULATION", "BOOK", "DUE", "FEN"]

#: Fen per CNY: the engine keeps money in whole fen, held in float64 (exact sums below 2^53 fen, about 90万亿 CNY).
FEN = 100.0


def _columns(scope: str):
    names = SCOPE_METRICS[scope]
    return namedtuple(f"{scope.title()}Columns", names)(*range(len(names)))


BANK = _columns("bank")
GUARANTOR = _columns("guarantor")
REGUARANTOR = _columns("reguarantor")
POOL = _columns("pool")
POPULATION = _columns("population")

#: A bank's running totals, fen or counts (the columns of ``State.book``): the performing book, the
#: non-performing one, and the loans outside the inclusive book.
BookColumns = namedtuple("BookColumns", ["balance", "credit", "loans", "firms", "rate_balance", "renewal", "restructured",
                                         "subsidised", "npl_balance", "npl_credit", "npl_loans", "npl_firms", "other_loans",
                                         "deferred"])
BOOK = BookColumns(*range(len(BookColumns._fields)))

#: What a month's resolutions take out of a bank's non-performing book (the columns of ``State.due``, by month).
DueColumns = namedtuple("DueColumns", ["recovered", "recovered_credit", "written_off", "written_off_credit", "loans", "firms", "net_loss"])
DUE = DueColumns(*range(len(DueColumns._fields)))
