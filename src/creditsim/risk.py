"""Correlated default: the one-factor Gaussian (Vasicek) model as pure, vectorised kernels.

Firm i of cohort c (segment × grade) defaults in factor period k when

    sqrt(rho_c) * Z_k + sqrt(1 - rho_c) * eps_ik < Phi^-1(p_c,P)

with Z_k the systematic factor of the period (P months long: 1, 3 or 12) and p_c,P = 1 - (1 - PD_c)^(P/12) the
period PD from the annual PD. Given Z_k the period default probability is

    p_c(Z_k) = Phi((Phi^-1(p_c,P) - sqrt(rho_c) Z_k) / sqrt(1 - rho_c)),

spread evenly over the period's months as the monthly hazard h = 1 - (1 - p_c(Z_k))^(1/P), so that the
probability of defaulting within the period is exactly p_c(Z_k). For a large pool over one annual period the
default rate then has the Vasicek distribution
P(DR <= x) = Phi((sqrt(1 - rho) Phi^-1(x) - Phi^-1(PD)) / sqrt(rho)).

Because the factor path is drawn up front, each firm's default month follows from one exponential draw E by
inverting its cohort's cumulative hazard: the first month t after the firm's start s with
Lambda_c(t) - Lambda_c(s) >= E. The engine's cost is then one draw per firm, not one per firm-month.
No kernel here draws random numbers: draws are passed in.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from .kernels import first_default

__all__ = ["monthly_hazards", "cumulative_hazard", "default_months", "vasicek_cdf", "beta_parameters"]


def monthly_hazards(
    annual_pd: np.ndarray, rho: np.ndarray, multiplier: np.ndarray, factor: np.ndarray, period_months: int
) -> np.ndarray:
    """Monthly default hazards of every cohort given a factor path.

    Parameters
    ----------
    annual_pd : ndarray, shape (C,)
        Annual PD of each cohort, in [0, 1].
    rho : ndarray, shape (C,)
        Asset correlation of each cohort, in [0, 1).
    multiplier : ndarray, shape (M,)
        PD multiplier (macro stress) of each simulated month; ``annual_pd * multiplier`` must stay ≤ 1.
    factor : ndarray, shape (ceil(M / period_months),)
        Systematic factor Z of each period, standard normal.
    period_months : int
        Months per factor period (1, 3 or 12).

    Returns
    -------
    ndarray, shape (C, M + 1)
        ``h[c, t]``: probability that a firm of cohort c alive at the end of month t-1 defaults in month t
        (t = 1..M); column 0 is 0.
    """
    months = multiplier.shape[0]
    pd_month = annual_pd[:, None] * multiplier[None, :]  # (C, M) annual PD in force each month
    with np.errstate(divide="ignore"):
        period_pd = -np.expm1(np.log1p(-pd_month) * (period_months / 12.0))  # 1 - (1 - pd)^(P/12)
    z = factor[np.arange(months) // period_months]  # (M,)
    sr = np.sqrt(rho)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = ndtr((ndtri(period_pd) - sr * z[None, :]) / np.sqrt(1.0 - rho)[:, None])
        hazard = -np.expm1(np.log1p(-conditional) / period_months)  # 1 - (1 - p)^(1/P)
    hazard = np.where(conditional >= 1.0, 1.0, hazard)
    out = np.zeros((annual_pd.shape[0], months + 1))
    out[:, 1:] = hazard
    return out


#: Cumulative hazard (nats) a month of certain default adds: e^-10000 is 0 in double precision and far above
#: any exponential draw, so the month is certain death, while later months keep finite differences.
CERTAIN_DEFAULT_NATS = 1e4


def cumulative_hazard(hazard: np.ndarray) -> np.ndarray:
    """``Lambda[c, t] = -sum_{k<=t} log(1 - h[c, k])``, a month with h = 1 adding :data:`CERTAIN_DEFAULT_NATS`."""
    nats = np.full(hazard.shape, CERTAIN_DEFAULT_NATS)
    possible = hazard < 1.0
    nats[possible] = -np.log1p(-hazard[possible])
    return np.cumsum(nats, axis=1)


def default_months(cum_hazard: np.ndarray, cohort: np.ndarray, start: np.ndarray | int, exp_draw: np.ndarray) -> np.ndarray:
    """Month of default of each firm, by inverting its cohort's cumulative hazard.

    Parameters
    ----------
    cum_hazard : ndarray, shape (C, M + 1)
        From :func:`cumulative_hazard`.
    cohort : ndarray of int, shape (n,)
        Cohort of each firm.
    start : int or ndarray of int, shape (n,)
        Month each firm is known to be alive at (its default can only come later).
    exp_draw : ndarray, shape (n,)
        Standard exponential draws, one per firm.

    Returns
    -------
    ndarray of int32, shape (n,)
        The first month t > start with ``Lambda[c, t] - Lambda[c, start] >= E``, or M + 1 when the firm
        survives the horizon.
    """
    start = np.broadcast_to(np.asarray(start, dtype=np.int64), cohort.shape)
    return first_default(np.ascontiguousarray(cum_hazard), cohort.astype(np.int64), np.ascontiguousarray(start), exp_draw)


def vasicek_cdf(x: np.ndarray | float, pd: float, rho: float) -> np.ndarray:
    """CDF of the large-pool default rate: ``Phi((sqrt(1-rho) Phi^-1(x) - Phi^-1(pd)) / sqrt(rho))``."""
    return ndtr((np.sqrt(1.0 - rho) * ndtri(np.asarray(x, dtype=float)) - ndtri(pd)) / np.sqrt(rho))


def beta_parameters(mean: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Shape parameters (a, b) of the Beta distribution with the given means and standard deviation.

    Used for loss given default; requires 0 < mean < 1 and sd² < mean (1 − mean), which the scenario checks.
    """
    concentration = mean * (1.0 - mean) / sd**2 - 1.0
    return mean * concentration, (1.0 - mean) * concentration
