"""The engine against closed forms: M/G/∞ occupancy, the Vasicek default-rate distribution, binomial counts.

Every test is seeded; tolerances are multiples of the Monte Carlo standard error, and the KS tests use a
fixed significance level (p > 0.001). Each distribution test also shows it has power: the same sample
against a wrong parameter is rejected.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from creditsim import simulate
from creditsim.model.hazards import vasicek_cdf
from helpers import default_count_cdf, pool_scenario

pytestmark = pytest.mark.slow


def _poisson_moments_ok(sample: np.ndarray, mu: float, z: float = 4.0) -> None:
    """Sample mean and variance of iid Poisson(mu) within z standard errors of mu."""
    n = sample.size
    mean_se = np.sqrt(mu / n)
    # Var(s^2) = mu4/n - sigma^4 (n-3)/(n(n-1)), with mu4 = mu + 3 mu^2 for the Poisson
    var_se = np.sqrt((mu + 3 * mu**2) / n - mu**2 * (n - 3) / (n * (n - 1)))
    assert abs(sample.mean() - mu) < z * mean_se, (sample.mean(), mu, mean_se)
    assert abs(sample.var(ddof=1) - mu) < z * var_se, (sample.var(ddof=1), mu, var_se)


@pytest.mark.parametrize(
    ("term_mix", "mean_term", "months"),
    [({"12": 1.0}, 12.0, 15), ({"6": 0.5, "18": 0.5}, 12.0, 20), ({"3": 0.2, "9": 0.8}, 7.8, 10)],
)
def test_mg_infinity_occupancy_is_poisson(term_mix, mean_term, months):
    """Poisson arrivals (rate λ), terms drawn from a distribution G, no defaults and no re-borrowing: after
    the longest term the number of loans outstanding is Poisson(λ E[T]) (M/G/∞)."""
    lam = 40.0
    scenario = pool_scenario(
        firms=1e5, unbanked_share=1.0, pd=0.0, rho=0.0, months=months, term_mix=term_mix,
        reborrow_prob=0.0, applications_per_month=lam,
    )
    results = simulate(scenario, paths=2000, seed=11)
    loans = results.values("loans")[:, -1]
    _poisson_moments_ok(loans, lam * mean_term)
    np.testing.assert_array_equal(results.values("borrowers")[:, -1], loans)  # one loan per borrower
    with pytest.raises(AssertionError):  # power: a 10% larger mean is rejected
        _poisson_moments_ok(loans, 1.1 * lam * mean_term)


def _finite_pool_cdf(x: np.ndarray, n: int, pd: float, rho: float) -> np.ndarray:
    """CDF of (D + U) / n, D the default count of n firms and U ~ Uniform(0, 1) independent of D.

    D is a Binomial(n, p(Z)) mixture over Z ~ N(0, 1) with p(Z) = Phi((Phi^-1(pd) - sqrt(rho) Z) / sqrt(1 - rho));
    adding U makes the distribution continuous, so the KS test applies exactly (no large-pool approximation).
    """
    k = np.floor(n * x)
    below, upto = default_count_cdf(k - 1, n, pd, rho), default_count_cdf(k, n, pd, rho)
    return below + (n * x - k) * (upto - below)


def _one_year_default_rates(pd: float, rho: float, n: int, paths: int, seed: int, frequency: str = "annual") -> np.ndarray:
    """Default counts in the first year of a static pool of n borrowers (one loan each, always re-borrowing)."""
    scenario = pool_scenario(
        firms=n, unbanked_share=0.0, pd=pd, rho=rho, months=12, term_mix={"12": 1.0}, reborrow_prob=1.0,
        factor_frequency=frequency,
    )
    results = simulate(scenario, paths=paths, seed=seed)
    assert (results.values("borrowers")[:, 0] == n).all()
    return results.cumulative("defaults")


@pytest.mark.parametrize(("pd", "rho"), [(0.02, 0.12), (0.05, 0.24)])
def test_vasicek_default_rate_distribution(pd, rho):
    """A homogeneous pool with an annual factor: the one-year default rate follows the Vasicek distribution
    (KS over 600 paths), both as the large-pool formula and as the exact finite-pool mixture."""
    n, paths = 20_000, 600
    defaults = _one_year_default_rates(pd, rho, n, paths, seed=21)
    rate = defaults / n
    assert stats.kstest(rate, lambda x: vasicek_cdf(x, pd, rho)).pvalue > 1e-3
    jitter = np.random.default_rng(5).random(paths)
    exact = stats.kstest((defaults + jitter) / n, lambda x: _finite_pool_cdf(np.atleast_1d(x), n, pd, rho))
    assert exact.pvalue > 1e-3
    # power: the same sample is rejected against half the correlation or a 25% higher PD
    assert stats.kstest(rate, lambda x: vasicek_cdf(x, pd, rho / 2)).pvalue < 1e-3
    assert stats.kstest(rate, lambda x: vasicek_cdf(x, 1.25 * pd, rho)).pvalue < 1e-3


def test_independent_defaults_are_binomial():
    """With rho = 0 the one-year default count of n firms is Binomial(n, pd) (KS on the jittered count)."""
    n, pd, paths = 5_000, 0.03, 800
    defaults = _one_year_default_rates(pd, 0.0, n, paths, seed=31)
    jitter = np.random.default_rng(6).random(paths)
    assert stats.kstest((defaults + jitter) / n, lambda x: _finite_pool_cdf(np.atleast_1d(x), n, pd, 0.0)).pvalue > 1e-3
    assert stats.kstest((defaults + jitter) / n, lambda x: _finite_pool_cdf(np.atleast_1d(x), n, 1.1 * pd, 0.0)).pvalue < 1e-3
    mean_se = np.sqrt(n * pd * (1 - pd) / paths)
    assert abs(defaults.mean() - n * pd) < 4 * mean_se


@pytest.mark.parametrize("frequency", ["monthly", "quarterly", "annual"])
def test_mean_annual_default_rate_is_pd_at_every_factor_frequency(frequency):
    """Whatever the factor frequency, the expected one-year default rate is the annual PD."""
    n, pd, rho, paths = 5_000, 0.04, 0.2, 400
    defaults = _one_year_default_rates(pd, rho, n, paths, seed=41, frequency=frequency)
    se = defaults.std(ddof=1) / np.sqrt(paths)
    assert abs(defaults.mean() - n * pd) < 4 * se, (defaults.mean(), n * pd, se)


@pytest.mark.parametrize("write_off", [12, {"2020": 12, "2021": 6, "2022": 6}])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_opening_npl_stock_follows_its_pipeline(engine, write_off):
    """An opening stock of NPLs (4% of the book; products credit and collateral half each, LGD 0.5 and 0.3; recovery
    after 6 months, write-off after 12; no new defaults): monthly cohorts A_k = round(A w_k) with
    A = 0.04 / 0.96 × performing / (0.5 (6 + 6 × 0.5) + 0.5 (6 + 6 × 0.3)) = … / 8.4; in months 1–6 the recoveries
    R_k = round(A_k (1 − LGD_k)) of the six youngest cohorts, in months 1–12 the write-off of A_k − R_k of one
    cohort each, the bank's loss; nothing left at month 12. Both engines, computed by hand from the month-0
    performing balance. The stock is disposed of at the opening year's pace: faster write-offs for later defaults
    (a table by year) leave it alone."""
    from creditsim import reference
    from creditsim.scenario import scenario_from_dict
    from helpers import with_changes
    from test_first_loans_and_renewal import pool_data

    data = with_changes(pool_data(), {
        "calendar.months": 14, "firms.segments.only.pd": [0.0, 0.0, 0.0], "firms.segments.only.firms": 400,
        "banks.bank.term_mix": {"36": 1.0}, "banks.bank.opening_npl_ratio": 0.04,
        "risk.recovery_lag_months": 6, "risk.write_off_months": write_off,
    })
    run = simulate if engine == "fast" else reference.simulate
    v = run(scenario_from_dict(data), paths=2, seed=3).values
    without = run(scenario_from_dict(with_changes(data, {"banks.bank.opening_npl_ratio": 0.0})), paths=2, seed=3).values  # the same performing book
    for path in range(2):
        performing = (v("balance") - v("npl_balance"))[path, 0] * 100  # fen
        a = 0.04 / 0.96 * performing / 8.4
        cohort = [np.rint(a * 0.5), np.rint(a * 0.5)]
        recovery = [np.rint(cohort[0] * 0.5), np.rint(cohort[1] * 0.7)]
        loss = sum(c - x for c, x in zip(cohort, recovery, strict=True))
        held = 6 * sum(cohort) + 6 * loss
        np.testing.assert_allclose(v("npl_balance")[path, 0] * 100, held, rtol=1e-12)
        np.testing.assert_allclose(v("npl_ratio")[path, 0], 0.04, rtol=1e-6)
        np.testing.assert_allclose(v("recovered")[path, 1:7] * 100, sum(recovery), rtol=1e-12)
        np.testing.assert_allclose(v("recovered")[path, 7:], 0.0, atol=1e-9)
        np.testing.assert_allclose(v("written_off")[path, 1:13] * 100, loss, rtol=1e-12)
        np.testing.assert_allclose(v("loss_bank")[path, 1:13] * 100, loss, rtol=1e-12)
        np.testing.assert_allclose(v("net_loss")[path, 1:13] * 100, loss, rtol=1e-12)
        np.testing.assert_allclose(v("npl_balance")[path, 12:], 0.0, atol=1e-9)
        np.testing.assert_allclose(v("all_loans_balance")[path, 0], 1e12, rtol=1e-12)  # the NPLs are part of all loans
        np.testing.assert_allclose((v("balance") - v("npl_balance"))[path], without("balance")[path], rtol=1e-12)
        credit_npl = 6 * cohort[0] + 6 * (cohort[0] - recovery[0])
        np.testing.assert_allclose((v("credit_loan_balance") - without("credit_loan_balance"))[path, 0] * 100, credit_npl, rtol=1e-9)
        assert v("borrowers")[path, 0] > without("borrowers")[path, 0]  # the stock's firms count until written off
        np.testing.assert_allclose(v("borrowers")[path, 12:], without("borrowers")[path, 12:])
