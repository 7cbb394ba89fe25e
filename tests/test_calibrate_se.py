"""The calibration's standard errors against independent truths: closed forms of the sandwich, and on a toy model
with common random numbers the spread of the fitted values over seeds and over draws of the observations.

The toy is what makes a fit's Monte Carlo error hard to see: each path has a factor that moves all its
observations together (correlation across observations) and its own slopes (how steeply its observations respond
to the parameters), and the model cannot match every observation (large residuals), so the paths' slopes move the
fit too. It is linear in the parameters, so the first-order (delta-method) answer is exact up to the noise of the
slopes' and values' means over 20 paths.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from creditsim.analysis.calibrate import fit_paths, sandwich

D = np.array([[1.0, 0.2], [0.8, 0.5], [0.5, 1.0], [0.2, 1.2], [1.0, 1.0], [0.3, -0.5]])  # mean response to the parameters
ALPHA = np.array([[0.4, 0.0], [0.3, 0.1], [0.0, 0.3], [0.1, 0.4], [0.2, 0.2], [0.5, 0.0]])  # how much a path's slopes vary
TRUE = np.array([1.0, 2.0])
OFFSET = np.array([0.3, -0.2, 0.25, -0.3, 0.1, 0.2])  # what the model cannot fit: residuals of 2–6 sd
SD = np.full(6, 0.05)
OBSERVED = D @ TRUE + OFFSET
PATHS = 20
START, LOWER, UPPER = np.array([0.5, 1.0]), np.zeros(2), np.full(2, 10.0)


def toy(seed: int):
    """The toy model on one seed's paths: ``run(x)`` gives each path's six values, the same random numbers for every
    x. A path's value of observation j is Σ_k D_jk x_k (1 + ALPHA_jk u_pk) + 0.2 (f_p + e_pj): u_p its slopes, f_p
    a factor shared by its observations (correlation 0.5), e_pj its own noise."""
    rng = np.random.default_rng(seed)
    u, f, e = rng.standard_normal((PATHS, 2)), rng.standard_normal(PATHS), rng.standard_normal((PATHS, 6))
    noise = 0.2 * (f[:, None] + e)

    def run(x: np.ndarray) -> np.ndarray:
        return np.einsum("jk,pjk->pj", D * x, 1.0 + ALPHA[None] * u[:, None, :]) + noise

    return run


def sd_tolerance(samples: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Three standard errors of log(sd of ``samples`` ÷ rms of ``estimates``), per column: the sampling error of
    an sd over n draws, √(2/(n − 1) + κ/n)/2 relative (κ the excess kurtosis), and of the rms of n estimates,
    combined."""
    n = len(samples)
    of_sd = 0.5 * np.sqrt(2.0 / (n - 1) + stats.kurtosis(samples, axis=0) / n)
    squares = estimates**2
    of_rms = 0.5 * squares.std(axis=0, ddof=1) / squares.mean(axis=0) / np.sqrt(n)
    return 3.0 * np.hypot(of_sd, of_rms)


def test_sandwich_reduces_to_its_closed_forms():
    """With the same slopes on every path the Monte Carlo part is A S Aᵀ / n, A = (JᵀJ)⁻¹Jᵀ and S the paths'
    covariance, and with unit sds the observations' part is Gauss–Newton's (JᵀJ)⁻¹; one path, or a singular
    Jacobian, gives NaN."""
    rng = np.random.default_rng(3)
    n, m = 30, 6
    jac = rng.standard_normal((m, 2))
    values = rng.standard_normal((n, m)) @ rng.standard_normal((m, m))  # correlated across observations
    slopes = np.broadcast_to(jac, (n, m, 2)).copy()
    observed = values.mean(axis=0) + rng.standard_normal(m)  # residuals: no part in the Monte Carlo error when slopes are equal
    se, se_mc = sandwich(values, slopes, observed, np.ones(m))
    a = np.linalg.inv(jac.T @ jac) @ jac.T
    np.testing.assert_allclose(se_mc**2, np.diag(a @ np.cov(values, rowvar=False) @ a.T) / n, rtol=1e-10)
    np.testing.assert_allclose(se**2 - se_mc**2, np.diag(np.linalg.inv(jac.T @ jac)), rtol=1e-10)
    assert np.isnan(sandwich(values[:1], slopes[:1], observed, np.ones(m))).all()
    assert np.isnan(sandwich(values, np.zeros_like(slopes), observed, np.ones(m))).all()


def test_monte_carlo_part_is_the_spread_over_seeds():
    """Fitted on 1,000 seeds of 20 paths, the sd of each fitted value matches the root mean square of the reported
    se_mc within three of its standard errors (about 7%). The same check rejects the Monte Carlo error with each
    observation's paths independent and one Jacobian for every path (what the Gauss–Newton errors assumed)."""
    seeds = range(1000)
    fits = [fit_paths(toy(seed), START, LOWER, UPPER, OBSERVED, SD) for seed in seeds]
    fitted = np.array([f.x for f in fits])
    se_mc = np.array([f.se_mc for f in fits])
    assert np.isfinite(se_mc).all() and (se_mc > 0).all()
    assert (np.array([f.se for f in fits]) > se_mc).all()
    ratio = fitted.std(axis=0, ddof=1) / np.sqrt(np.mean(se_mc**2, axis=0))
    tolerance = sd_tolerance(fitted, se_mc)
    assert (np.abs(np.log(ratio)) < tolerance).all(), (ratio, tolerance)

    naive = []
    for seed, f in zip(seeds, fits, strict=True):
        run = toy(seed)
        values = run(f.x)
        steps = 0.05 * f.x
        slopes = np.stack([(run(f.x + np.eye(2)[k] * steps[k]) - values) / steps[k] for k in range(2)], axis=2)
        rng = np.random.default_rng(seed)
        unpaired = np.stack([rng.permutation(values[:, j]) for j in range(6)], axis=1)
        one_jacobian = np.broadcast_to(slopes.mean(axis=0), slopes.shape)
        naive.append(sandwich(unpaired / f.weights, one_jacobian / f.weights[:, None], OBSERVED / f.weights, SD / f.weights)[1])
    naive_ratio = fitted.std(axis=0, ddof=1) / np.sqrt(np.mean(np.array(naive) ** 2, axis=0))
    assert (np.log(naive_ratio) > sd_tolerance(fitted, np.array(naive))).all(), naive_ratio


def test_observations_part_is_the_spread_over_draws_of_the_observations():
    """On one seed's paths, fits to 500 draws of the observations (each normal with its sd) spread as the reported
    observations' part √(se² − se_mc²) says, within three standard errors of an sd over 500 draws."""
    run = toy(0)
    base = fit_paths(run, START, LOWER, UPPER, OBSERVED, SD)
    rng = np.random.default_rng(11)
    fitted = np.array([fit_paths(run, START, LOWER, UPPER, OBSERVED + SD * rng.standard_normal(6), SD).x for _ in range(500)])
    reported = np.sqrt(base.se**2 - base.se_mc**2)
    ratio = fitted.std(axis=0, ddof=1) / reported
    n = len(fitted)
    tolerance = 3.0 * 0.5 * np.sqrt(2.0 / (n - 1) + stats.kurtosis(fitted, axis=0) / n)
    assert (np.abs(np.log(ratio)) < tolerance).all(), (ratio, tolerance)
