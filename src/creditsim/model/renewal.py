"""Renewal without principal repayment (无还本续贷): which maturing loans the rules allow to be renewed.

The rules follow the 2014 notice (银监发〔2014〕36号: performing, no arrears, a working-capital loan, meets the
criteria of a new loan: the bank's own appetite, as for a new loan, besides the scheme's ``max_pd``), the 2023 classification rules and the 2024 notice (金规〔2024〕13号: all small-micro firms;
medium firms' loans maturing before 2027-09-30); see docs/explanation/model.md §4. A bank takes renewal up for a
share of its firms (a draw per firm and maturity, in :mod:`.maturity`); this module only says which loans may be
renewed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..scenario import Scenario
from .params import parameters
from .structs import compiled

__all__ = ["allowed", "eligible"]


@njit(cache=True, nogil=True, inline="always")
def allowed(p, calendar_month, bank, segment, product, term, renewals, months_on_book, believed_pd, cover_share):
    """Whether the renewal rules allow one maturing, performing loan of ``bank`` to be renewed in ``calendar_month``
    (a :func:`creditsim.scenario.units.month_index`): the segment listed and not past its last month, an eligible
    product, term ≤ max_term_months, fewer than max_consecutive renewals so far, at least min_months_on_book since
    the firm's first loan at the bank, a believed PD ≤ max_pd, and the criteria of a new loan: the PD the bank
    bears, believed PD × (1 − ``cover_share``, the share of loss the loan's guarantor or pool bears), within the
    bank's ``max_pd``."""
    return (
        p.renewal.on
        and calendar_month <= p.renewal.last_month[segment]
        and p.renewal.product_ok[product]
        and term <= p.renewal.max_term
        and renewals < p.renewal.max_consecutive
        and months_on_book >= p.renewal.min_months_on_book
        and believed_pd <= p.renewal.max_pd
        and believed_pd * (1.0 - cover_share) <= p.banks.max_pd[bank]
    )


@njit(cache=True, nogil=True)
def _each(p, calendar_month, bank, segment, product, term, renewals, months_on_book, believed_pd, cover_share):
    out = np.empty(segment.shape[0], np.bool_)
    for i in range(segment.shape[0]):
        out[i] = allowed(p, calendar_month, bank[i], segment[i], product[i], term[i], renewals[i], months_on_book[i], believed_pd[i], cover_share[i])
    return out


def eligible(scenario: Scenario, calendar_month: int, bank: np.ndarray, segment: np.ndarray, product: np.ndarray, term: np.ndarray,
             renewals: np.ndarray, months_on_book: np.ndarray, believed_pd: np.ndarray, cover_share: np.ndarray) -> np.ndarray:
    """Which maturing, performing loans a scenario's renewal rules allow to be renewed (the rule the engine applies).

    Parameters
    ----------
    scenario : Scenario
    calendar_month : int
        The month of maturity, as :func:`creditsim.scenario.units.month_index`.
    bank, segment, product : ndarray of int, shape (n,)
        Indexes into the scenario's banks, segments and :data:`creditsim.scenario.PRODUCTS`.
    term : ndarray of int, shape (n,)
        Term of the maturing loan, months.
    renewals : ndarray of int, shape (n,)
        Consecutive renewals the loan has had.
    months_on_book : ndarray of int, shape (n,)
        Months since the firm's first loan at the bank.
    believed_pd : ndarray of float, shape (n,)
        Annual PD of the firm as the bank believes it.
    cover_share : ndarray of float, shape (n,)
        Share of the loss the loan's guarantor or pool bears (0 without cover).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    whole = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
    result: np.ndarray = _each(compiled(parameters(scenario)), int(calendar_month), whole(bank), whole(segment), whole(product), whole(term), whole(renewals),
                               whole(months_on_book), np.asarray(believed_pd, dtype=float), np.asarray(cover_share, dtype=float))
    return result
