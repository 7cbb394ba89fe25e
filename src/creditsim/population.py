"""The firm population at the start of a scenario.

Firms without a loan are held as counts by (segment, grade, ever borrowed); only borrowers are individual
rows in the engine (see :mod:`creditsim.borrowers`). The start is deterministic: a scenario's numbers are
apportioned with the largest-remainder rule, so the opening book does not depend on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError

__all__ = ["InitialPopulation", "initial_population", "apportion", "grade_table"]


@dataclass(frozen=True)
class InitialPopulation:
    """Who is who at the start.

    Attributes
    ----------
    pool : ndarray of int64, shape (segments, grades, 2)
        Firms without a loan by segment, grade and whether they ever borrowed (index 1) or not (index 0).
    borrowers : ndarray of int64, shape (segments, grades, banks)
        Initial borrowers by segment, grade and bank.
    """

    pool: np.ndarray
    borrowers: np.ndarray


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
    it accepts (PD ≤ max_pd) in proportion to the grade shares.

    Raises
    ------
    ScenarioError
        When a bank must hold borrowers of a segment but accepts none of its grades, or when the borrowers
        of a grade exceed the firms of that grade.
    """
    pd, share = grade_table(scenario)
    banks = list(scenario.banks.items())
    bank_share = np.array([b.share for _, b in banks])
    n_seg, n_grade = pd.shape
    pool = np.zeros((n_seg, n_grade, 2), dtype=np.int64)
    borrowers = np.zeros((n_seg, n_grade, len(banks)), dtype=np.int64)
    for i, (seg_name, seg) in enumerate(scenario.firms.segments.items()):
        firms_by_grade = apportion(int(seg.firms), share[i])
        banked = int(round(seg.firms * (1.0 - seg.unbanked_share)))
        per_bank = apportion(banked, bank_share)
        for j, (bank_name, bank) in enumerate(banks):
            accepted = np.where(pd[i] <= bank.max_pd, share[i], 0.0)
            if per_bank[j] > 0 and accepted.sum() == 0:
                raise ScenarioError(
                    f"banks.{bank_name}.max_pd", bank.max_pd, f"accepts no grade of segment {seg_name}, which must give it {per_bank[j]} borrowers"
                )
            borrowers[i, :, j] = apportion(int(per_bank[j]), accepted)
        left = firms_by_grade - borrowers[i].sum(axis=1)
        if (left < 0).any():
            g = int(np.argmin(left))
            raise ScenarioError(
                f"firms.segments.{seg_name}.unbanked_share",
                seg.unbanked_share,
                f"leaves {int(borrowers[i, g].sum())} borrowers of grade {g} (PD {pd[i, g]:g}) but only {int(firms_by_grade[g])} firms "
                "of that grade exist: raise unbanked_share or the banks' max_pd",
            )
        pool[i, :, 0] = left
    return InitialPopulation(pool=pool, borrowers=borrowers)
