"""Renewal without principal repayment (无还本续贷): the eligibility rules as a pure kernel.

The rules follow the 2014 notice (银监发〔2014〕36号: performing, no arrears, a working-capital loan, meets the
criteria of a new loan), the 2023 classification rules and the 2024 notice (金规〔2024〕13号: all small-micro
firms; medium firms' loans maturing before 2027-09-30): see ``../shared/MODEL-NOTES.md`` §3. The engine draws
each bank's uptake; this module only says which maturing loans may be renewed.
"""

from __future__ import annotations

import numpy as np

from .scenario import PRODUCTS, Scenario, admitted
from .units import month_index

__all__ = ["eligible"]


def eligible(
    scenario: Scenario,
    calendar_month: int,
    segment: np.ndarray,
    product: np.ndarray,
    term: np.ndarray,
    renewals: np.ndarray,
    months_on_book: np.ndarray,
    believed_pd: np.ndarray,
) -> np.ndarray:
    """Which maturing, performing loans the scenario's renewal rules allow to be renewed.

    Parameters
    ----------
    scenario : Scenario
    calendar_month : int
        The month of maturity, as :func:`creditsim.units.month_index`.
    segment, product : ndarray of int, shape (n,)
        Indexes into the scenario's segments and :data:`creditsim.scenario.PRODUCTS`.
    term : ndarray of int, shape (n,)
        Term of the maturing loan, months.
    renewals : ndarray of int, shape (n,)
        Consecutive renewals the loan has had.
    months_on_book : ndarray of int, shape (n,)
        Months since the firm's first loan at the bank.
    believed_pd : ndarray of float, shape (n,)
        Annual PD of the firm as the bank believes it.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    rules = scenario.renewal
    n = segment.shape[0]
    if rules is None or not rules.enabled:
        return np.zeros(n, dtype=bool)
    names = scenario.segment_names
    last = np.array([month_index(rules.until_by_segment.get(name) or rules.until or "2200-12") for name in names])
    segment_ok = np.array(admitted(rules.segments, names))[segment] & (calendar_month <= last[segment])
    product_ok = np.array(admitted(rules.products, PRODUCTS))[product]
    return (
        segment_ok
        & product_ok
        & (term <= rules.max_term_months)
        & (renewals < rules.max_consecutive)
        & (months_on_book >= rules.min_months_on_book)
        & (believed_pd <= rules.max_pd)
    )
