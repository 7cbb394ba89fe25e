"""Correlated default: the one-factor Gaussian (Vasicek) model.

Firm i of cohort c (segment × grade) defaults in factor period k when

    sqrt(rho_c) Z_k + sqrt(1 - rho_c) eps_ik < Phi^-1(p_c,P),

Z_k the systematic factor of the period (P months long: 1, 3 or 12) and p_c,P = 1 - (1 - PD_c m(t))^(P/12) the period
PD from the annual PD and the month's stress multiplier m(t). Given Z_k the period default probability is
p_c(Z_k) = Phi((Phi^-1(p_c,P) - sqrt(rho_c) Z_k) / sqrt(1 - rho_c)), spread over the period's months as the monthly
hazard h = 1 - (1 - p_c(Z_k))^(1/P), so that the probability of defaulting within the period is exactly p_c(Z_k).
For a large pool over one annual period the default rate has the Vasicek distribution
P(DR <= x) = Phi((sqrt(1 - rho) Phi^-1(x) - Phi^-1(PD)) / sqrt(rho)) (:func:`vasicek_cdf`).

Each firm draws its default month once for its whole life, when it enters the run: one exponential draw E inverts
its cohort's cumulative hazard Lambda_c(t) = sum_{u <= t} -log(1 - h_c(u)) along the path's factor
(:func:`default_month`). Because the hazards are fixed once the factor is drawn, the month's law given that the
firm is alive at any later month t is the same as drawing it again then: a firm's default month does not depend on
when, or whether, it borrows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.special import ndtr as _ndtr
from scipy.special import ndtri as _ndtri

from .random import KEY, ndtr, ndtri, normal

__all__ = ["CERTAIN_DEFAULT_NATS", "month_nats", "cumulative_hazards", "default_month", "vasicek_cdf"]

#: Cumulative hazard (nats) a month of certain default adds: e^-10000 is 0 in double precision and far above any
#: exponential draw, so the month is certain death, while later months keep finite differences.
CERTAIN_DEFAULT_NATS = 1e4


@njit(cache=True, nogil=True)
def month_nats(pd, rho, multiplier, z, period):
    """-log(1 − h): the cumulative hazard a month adds for a cohort of annual PD ``pd`` and asset correlation ``rho``
    in a month with stress multiplier ``multiplier`` and systematic factor ``z``, the factor's period being ``period``
    months: h = 1 − (1 − p(z))^(1/P), p(z) = Φ((Φ⁻¹(p_P) − √ρ z) / √(1 − ρ)), p_P = 1 − (1 − PD·m)^(P/12). A month of
    certain default adds :data:`CERTAIN_DEFAULT_NATS`."""
    annual = pd * multiplier
    if annual >= 1.0:
        return CERTAIN_DEFAULT_NATS
    if annual <= 0.0:
        return 0.0
    period_pd = -math.expm1(math.log1p(-annual) * (period / 12.0))
    conditional = ndtr((ndtri(period_pd) - math.sqrt(rho) * z) / math.sqrt(1.0 - rho))
    if conditional >= 1.0:
        return CERTAIN_DEFAULT_NATS
    return -math.log1p(-conditional) / period


@njit(cache=True, nogil=True)
def cumulative_hazards(p, s):
    """The path's cumulative hazards: ``s.cumulative_hazard[c, t] = Lambda_c(t)`` for each cohort c = segment × grades + grade and
    month t = 0..M (0 at t = 0), given the path's factor (one standard normal per period, keyed by the period); and
    ``s.surviving[c, a] = exp(-(Lambda_c(M) - Lambda_c(a)))``, the probability that a firm alive at the end of month a
    does not default by the end of the run."""
    n_seg, n_grade = p.firms.pd.shape
    out, surviving = s.cumulative_hazard, s.surviving
    months = out.shape[1] - 1
    period = p.firms.factor_months
    for seg in range(n_seg):
        for g in range(n_grade):
            c = seg * n_grade + g
            out[c, 0] = 0.0
            total = 0.0
            for t in range(1, months + 1):
                z = normal(s.keys[KEY.factor], (t - 1) // period, 0, 0)
                total += month_nats(p.firms.pd[seg, g], p.firms.rho[seg], p.firms.stress[t], z, period)
                out[c, t] = total
            for a in range(months + 1):
                surviving[c, a] = math.exp(-(out[c, months] - out[c, a]))


@njit(cache=True, nogil=True, inline="always")
def default_month(cumulative, cohort, alive, exponential):
    """The first month t > ``alive`` with Lambda(t) - Lambda(alive) >= E (binary search), or M + 1 when the firm
    outlives the horizon."""
    row = cumulative[cohort]
    target = row[alive] + exponential
    low, high = alive + 1, row.shape[0]
    while low < high:
        middle = (low + high) >> 1
        if row[middle] < target:
            low = middle + 1
        else:
            high = middle
    return low


def vasicek_cdf(x: np.ndarray | float, pd: float, rho: float) -> np.ndarray:
    """CDF of the large-pool default rate: ``Phi((sqrt(1-rho) Phi^-1(x) - Phi^-1(pd)) / sqrt(rho))``."""
    return _ndtr((np.sqrt(1.0 - rho) * _ndtri(np.asarray(x, dtype=float)) - _ndtri(pd)) / np.sqrt(rho))
