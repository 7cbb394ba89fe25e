"""Renewal without principal repayment (无还本续贷): the eligibility rules as a pure kernel.

The rules follow the 2014 notice (银监发〔2014〕36号: performing, no arrears, a working-capital loan, meets the
criteria of a new loan), the 2023 classification rules and the 2024 notice (金规〔2024〕13号: all small-micro
firms; medium firms' loans maturing before 2027-09-30): see ``../shared/MODEL-NOTES.md`` §3. The engine draws
each bank's uptake; this module only says which maturing loans may be renewed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import renewal_allowed_each
from .scenario import PRODUCTS, Scenario, admitted
from .scenario.units import month_index

__all__ = ["RenewalRules", "eligible"]

#: The month index used for "no last month".
_NO_END = month_index("2200-12")


@dataclass(frozen=True)
class RenewalRules:
    """A scenario's renewal rules as arrays, built once per run.

    Attributes
    ----------
    last_month : ndarray of int64, shape (segments,)
        The last month (:func:`creditsim.scenario.units.month_index`) a segment's loans may be renewed; -1 for a segment
        the rules do not admit.
    product_ok : ndarray of bool, shape (len(PRODUCTS),)
    max_term, max_consecutive, min_months_on_book : int
    max_pd : float
    """

    last_month: np.ndarray
    product_ok: np.ndarray
    max_term: int
    max_consecutive: int
    min_months_on_book: int
    max_pd: float

    @classmethod
    def of(cls, scenario: Scenario) -> RenewalRules | None:
        """The rules of ``scenario``, or None when renewal is off."""
        rules = scenario.renewal
        if rules is None or not rules.enabled:
            return None
        names = scenario.segment_names
        until = [rules.until_by_segment.get(name) or rules.until for name in names]
        last = [_NO_END if month is None else month_index(month) for month in until]
        return cls(
            last_month=np.where(admitted(rules.segments, names), last, -1).astype(np.int64),
            product_ok=np.array(admitted(rules.products, PRODUCTS)),
            max_term=rules.max_term_months, max_consecutive=rules.max_consecutive,
            min_months_on_book=rules.min_months_on_book, max_pd=rules.max_pd,
        )


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

    The engine applies the same per-loan rule (:func:`creditsim.kernels.renewal_allowed`) with the rules built
    once per run.

    Parameters
    ----------
    scenario : Scenario
    calendar_month : int
        The month of maturity, as :func:`creditsim.scenario.units.month_index`.
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
    rules = RenewalRules.of(scenario)
    if rules is None:
        return np.zeros(segment.shape[0], dtype=bool)
    def whole(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.int64)

    allowed: np.ndarray = renewal_allowed_each(
        rules.last_month, rules.product_ok, rules.max_term, rules.max_consecutive, rules.min_months_on_book, rules.max_pd, calendar_month,
        whole(segment), whole(product), whole(term), whole(renewals), whole(months_on_book), np.asarray(believed_pd, dtype=float),
    )
    return allowed
