"""The firm population at the start of a scenario.

The opening position is a set of counts: borrowers by (segment, grade, bank) and firms without a loan by (segment,
grade, state). The engine gives each of these firms a row when a path starts (:func:`creditsim.model.month.start_path`;
the tables are described in :mod:`creditsim.model.state`). The counts are deterministic: a scenario's numbers are
apportioned with the largest-remainder rule, so who is where at the start does not depend on the seed (the opening
loans' lines, terms and ages are drawn). A bank with a loan tape (``banks.NAME.loan_tape``,
:mod:`creditsim.scenario.loan_tape`) has the tape's firms and loans as its opening borrowers instead of its share of
the segments' banked firms; they are firms of their segments too, so the firms without a loan are what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtri

from ..errors import ScenarioError
from .loan_tape import OpeningTapes, opening_tapes
from .units import amount_text

__all__ = ["NEVER", "FORMER", "FORMER_FIRST_TIME", "DECLINED", "POOL_STATES", "InitialPopulation", "apportion", "grade_table", "initial_population", "line_parameters", "truncated_lognormal_moments"]

#: States of a firm without a loan (the last axis of the pool): never borrowed (无贷户); borrowed before the
#: scenario or within it; became a 首贷户 within the scenario and repaid; never borrowed and declined on its
#: thin-file signal (a bank that asks again sees the same signal, so it is declined again).
NEVER, FORMER, FORMER_FIRST_TIME, DECLINED = 0, 1, 2, 3
POOL_STATES = 4

#: Standard deviations of the opening balance that a bank's all_loans must clear.
ALL_LOANS_MARGIN_SD = 6.0


@dataclass(frozen=True)
class InitialPopulation:
    """Who is who at the start.

    Attributes
    ----------
    pool : ndarray of int64, shape (segments, grades, POOL_STATES)
        Firms without a loan by segment, grade and state (NEVER, FORMER, FORMER_FIRST_TIME, DECLINED).
    borrowers : ndarray of int64, shape (segments, grades, banks)
        Initial borrowers by segment, grade and bank.
    line_shift : ndarray of float, shape (banks,)
        Added to the log-median of every segment's credit line in the bank's opening book, so that its expected
        balance equals the bank's initial_balance (0 where none is given).
    opening_mean, opening_sd : ndarray of float, shape (banks,)
        Expected opening inclusive balance of each bank's drawn borrowers (CNY) and its standard deviation across
        paths (0 for a bank with a loan tape).
    tapes : OpeningTapes
        The banks' loan tapes, resolved: their performing firms (``tapes.borrowers`` by segment, grade and bank,
        not in ``borrowers``), loans and non-performing loans.
    """

    pool: np.ndarray
    borrowers: np.ndarray
    line_shift: np.ndarray
    opening_mean: np.ndarray
    opening_sd: np.ndarray
    tapes: OpeningTapes


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split a whole number in proportion to weights, exactly (largest-remainder rule).

    Parameters
    ----------
    total : int
        What to split (≥ 0).
    weights : ndarray of float
        Non-negative weights; they need not sum to 1. All zero gives all zero (total must then be 0).

    Returns
    -------
    ndarray of int64
        Parts that sum to ``total``; part i is ``floor(total * w_i / sum(w))`` or one more.
    """
    weights = np.asarray(weights, dtype=float)
    if total == 0 or weights.sum() == 0:
        return np.zeros(weights.shape, dtype=np.int64)
    exact = total * weights / weights.sum()
    parts = np.floor(exact).astype(np.int64)
    short = total - int(parts.sum())
    if short:
        order = np.argsort(-(exact - parts), kind="stable")
        parts[order[:short]] += 1
    return parts


def grade_table(scenario) -> tuple[np.ndarray, np.ndarray]:
    """Annual PD and firm share by (segment, grade), padded with zero-share grades to a common width.

    Returns
    -------
    pd, share : ndarray of float, shape (segments, grades)
    """
    segments = list(scenario.firms.segments.values())
    width = max(len(s.pd) for s in segments)
    pd = np.zeros((len(segments), width))
    share = np.zeros((len(segments), width))
    for i, seg in enumerate(segments):
        pd[i, : len(seg.pd)] = seg.pd
        share[i, : len(seg.pd)] = seg.grade_share
    return pd, share


def initial_population(scenario) -> InitialPopulation:
    """Apportion each segment's firms to grades, borrowers to banks, and each bank's borrowers to the grades
    it accepts (PD ≤ max_pd) in proportion to the grade shares; a bank with a loan tape has the tape's performing
    firms instead of its share.

    Raises
    ------
    ScenarioError
        When a bank must hold borrowers of a segment but accepts none of its grades, when the borrowers
        of a grade exceed the firms of that grade, or for a row of a loan tape that breaks a rule
        (:func:`creditsim.scenario.loan_tape.opening_tapes`).
    """
    tapes = opening_tapes(scenario)
    pd, share = grade_table(scenario)
    banks = list(scenario.banks.items())
    bank_share = np.array([b.share for _, b in banks])
    n_seg, n_grade = pd.shape
    pool = np.zeros((n_seg, n_grade, POOL_STATES), dtype=np.int64)
    borrowers = np.zeros((n_seg, n_grade, len(banks)), dtype=np.int64)
    for i, (seg_name, seg) in enumerate(scenario.firms.segments.items()):
        firms_by_grade = apportion(int(seg.firms), share[i])
        banked = int(round(seg.firms * (1.0 - seg.unbanked_share)))
        per_bank = apportion(banked, bank_share)
        for j, (bank_name, bank) in enumerate(banks):
            if bank.loan_tape is not None:  # its borrowers are the tape's
                continue
            accepted = np.where(pd[i] <= bank.max_pd, share[i], 0.0)
            if per_bank[j] > 0 and accepted.sum() == 0:
                raise ScenarioError(
                    f"banks.{bank_name}.max_pd", bank.max_pd, f"accepts no grade of segment {seg_name}, which must give it {per_bank[j]} borrowers"
                )
            borrowers[i, :, j] = apportion(int(per_bank[j]), accepted)
        taped = tapes.borrowers[i].sum(axis=1)
        left = firms_by_grade - borrowers[i].sum(axis=1) - taped
        if (left < 0).any():
            g = int(np.argmin(left))
            among = f", {int(taped[g])} of them from loan tapes," if taped[g] else ""
            raise ScenarioError(
                f"firms.segments.{seg_name}.unbanked_share",
                seg.unbanked_share,
                f"leaves {int(borrowers[i, g].sum() + taped[g])} borrowers of grade {g} (PD {pd[i, g]:g}){among} but only {int(firms_by_grade[g])} firms "
                "of that grade exist: raise unbanked_share or the banks' max_pd" + (", or the segment's firms" if taped[g] else ""),
            )
        former = apportion(int(round(left.sum() * seg.former_borrower_share)), left.astype(float))
        pool[i, :, NEVER] = left - former
        pool[i, :, FORMER] = former
    shift, mean, sd = _opening_lines(scenario, borrowers.sum(axis=1).astype(float))
    return InitialPopulation(pool=pool, borrowers=borrowers, line_shift=shift, opening_mean=mean, opening_sd=sd, tapes=tapes)


def line_parameters(scenario) -> tuple[np.ndarray, np.ndarray]:
    """Log-mean and log-sd of each segment's (untruncated) lognormal credit line, from its median and p90."""
    segments = list(scenario.firms.segments.values())
    mu = np.log([seg.line_median for seg in segments])
    sigma = (np.log([seg.line_p90 for seg in segments]) - mu) / float(ndtri(0.9))
    return mu, sigma


def truncated_lognormal_moments(mu: np.ndarray, sigma: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of exp(mu + sigma Z) given that it is at most ``limit``.

    ``E[X | X <= L] = exp(mu + sigma^2 / 2) Phi(a - sigma) / Phi(a)`` and
    ``E[X^2 | X <= L] = exp(2 mu + 2 sigma^2) Phi(a - 2 sigma) / Phi(a)``, with ``a = (ln L - mu) / sigma``.
    """
    a = (math.log(limit) - mu) / sigma
    mean = np.exp(mu + sigma**2 / 2 + log_ndtr(a - sigma) - log_ndtr(a))
    second = np.exp(2 * mu + 2 * sigma**2 + log_ndtr(a - 2 * sigma) - log_ndtr(a))
    return mean, np.maximum(second - mean**2, 0.0)


#: The smallest average opening line a bank's initial_balance may imply, CNY (loans are whole fen; smaller is a
#: slip of units).
MIN_AVERAGE_LINE = 1000.0


def _opening_lines(scenario, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bank: the log-shift of the opening lines, and the opening balance's mean and sd (CNY).

    ``counts`` holds the opening borrowers by (segment, bank).
    """
    mu, sigma = line_parameters(scenario)
    limit = scenario.firms.inclusive_line_limit
    n_banks = counts.shape[1]
    shift, mean, sd = np.zeros(n_banks), np.zeros(n_banks), np.zeros(n_banks)

    def expected(j: int, delta: float) -> float:
        return float(counts[:, j] @ truncated_lognormal_moments(mu + delta, sigma, limit)[0])

    for j, (name, bank) in enumerate(scenario.banks.items()):
        target = None if bank.initial_balance is None else bank.initial_balance * (1.0 - bank.opening_npl_ratio)  # the performing part
        if target is not None:
            if counts[:, j].sum() == 0:
                raise ScenarioError(f"banks.{name}.initial_balance", bank.initial_balance, "is given but the bank has no opening borrowers")
            ceiling = counts[:, j].sum() * limit
            if target >= ceiling * (1 - 1e-9):
                raise ScenarioError(
                    f"banks.{name}.initial_balance", bank.initial_balance,
                    f"needs an average line of {amount_text(target / counts[:, j].sum(), 4)}, not below the inclusive limit {amount_text(limit)}",
                )
            average = target / counts[:, j].sum()
            if average < MIN_AVERAGE_LINE or expected(j, -60.0) >= target:
                raise ScenarioError(
                    f"banks.{name}.initial_balance", bank.initial_balance,
                    f"is too small for the bank's {counts[:, j].sum():,.0f} opening borrowers: an average line of {amount_text(average, 3)}, "
                    f"below {amount_text(MIN_AVERAGE_LINE)}",
                )
            shift[j] = brentq(lambda d, j=j, target=target: expected(j, d) / target - 1.0, -60.0, 60.0, xtol=1e-12)
        m, v = truncated_lognormal_moments(mu + shift[j], sigma, limit)
        mean[j] = float(counts[:, j] @ m)
        sd[j] = math.sqrt(float(counts[:, j] @ v))
        npl = 1.0 / (1.0 - bank.opening_npl_ratio)  # the opening NPL stock on top of the performing book
        if bank.all_loans < (mean[j] + ALL_LOANS_MARGIN_SD * sd[j]) * npl:
            raise ScenarioError(
                f"banks.{name}.all_loans", bank.all_loans,
                f"must exceed the bank's opening inclusive balance (expected {amount_text(mean[j] * npl, 4)} ± {amount_text(sd[j] * npl, 3)}) by {ALL_LOANS_MARGIN_SD:g} sd",
            )
    return shift, mean, sd
