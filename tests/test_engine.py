"""Conservation of money, the month-by-month audit, reproducibility, keyed draws and the pure kernels of the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtr, ndtri

from creditsim import Results, ResultsError, ScenarioError, simulate
from creditsim.metrics import METRICS
from creditsim.model.engine import run_task
from creditsim.model.hazards import CERTAIN_DEFAULT_NATS, default_month, month_nats
from creditsim.scenario import scenario_from_dict
from creditsim.scenario.opening import initial_population
from helpers import assert_identities, pool_scenario, small_default

SCENARIO_VARIANTS = [
    {},
    {"risk.factor_frequency": "monthly", "risk.lgd_sd": 0.0},
    {"risk.stress": [{"date": "2021-07", "pd_multiplier": 3.0}, {"date": "2022-07", "pd_multiplier": 0.5}]},
    {"risk.recovery_lag_months": 0, "risk.write_off_months": 0},
    {"risk.recovery_lag_months": 3, "risk.write_off_months": 3, "demand.loans_per_borrower": 2.5},
    {"firms.inclusive_line_limit": "300万", "firms.segments.small.line_median": "150万", "firms.segments.small.line_p90": "290万",
     "demand.loans_per_borrower": 3.0, "firms.segments.small.line_growth": 0.3},
    {"banks.big_bank.initial_balance": "5亿", "banks.city_bank.initial_balance": "30亿"},
    {  # every first-loan and renewal instrument at once, with a stress path to make firms distressed
        "risk.signal_sd": 0.9, "banks.big_bank.rate_per_pd": 0.4,
        "liquidity": {"stress_prob": 0.08, "bridge_share": 0.5},
        "renewal": {"enabled": True, "min_months_on_book": 6, "max_consecutive": 2, "max_pd": 0.06, "until": "2022-12",
                    "distressed_classification": "restructured"},
        "banks.city_bank.renewal_uptake": 0.7, "banks.rural_bank.renewal_uptake": 1.0,
        "risk.stress": [{"date": "2021-09", "pd_multiplier": 2.5}],
        "firms.segments.micro.former_borrower_share": 0.4,
        "campaign": {"segments": ["micro", "individual"], "start": "2021-03", "end": "2022-06",
                     "channels": {"visits": {"reach_per_month": 200, "need": 0.4},
                                  "loan_code": {"reach_per_month": 400, "need": 0.2, "line_scale": 0.3, "bank": "rural_bank"}}},
    },
]


@pytest.mark.parametrize("overrides", SCENARIO_VARIANTS)
def test_running_totals_match_a_recount_of_the_book_every_month(overrides):
    """Audit: after the opening and after every month, each running total (performing balance, credit balance,
    loans, borrowers, each borrower's loans and line, beliefs and default months, guarantee liability, pool cover,
    subsidised balance, NPL balance, loans and borrowers, the firms without a loan by state) equals its recount from
    the tables and the filed resolutions (creditsim.model.audit); run_task raises AssertionError otherwise."""
    run_task(small_default(**overrides), 13, [0, 1], audit=True)


def test_the_audit_catches_a_changed_running_total(monkeypatch):
    """The audit is not a test that cannot fail: with a recount off by one fen it raises naming the recount."""
    from creditsim.model import engine

    monkeypatch.setattr(engine, "AUDIT_TOLERANCE", {})
    audits = np.zeros((1, len(engine.CHECKS)))
    audits[0, engine.CHECKS.index("performing balance")] = 1.0
    with pytest.raises(AssertionError, match="performing balance"):
        engine._check_audit(audits, np.array([0]))


@pytest.mark.parametrize("overrides", SCENARIO_VARIANTS)
def test_balance_identities_hold_on_every_path(overrides):
    """The foundation's two identities on every path, bank and month of several scenarios."""
    results = simulate(small_default(**overrides), paths=8, seed=3)
    assert_identities(results)
    assert results.cumulative("defaults").sum() > 0  # the scenarios exercise defaults


def test_stocks_roll_forward_from_flows_and_npl_is_resolved():
    """Defaulted balance leaves the book as recovery plus write-off: with every default early enough, the
    cumulative recovered + written off equals the cumulative defaulted of those months."""
    s = small_default(**{"risk.recovery_lag_months": 2, "risk.write_off_months": 4, "risk.lgd_sd": 0.1})
    r = simulate(s, paths=4, seed=8)
    defaulted = r.values("defaulted")[:, 1:-4].sum(axis=1)  # defaults of months 1..M-4 are resolved by month M
    resolved = (r.values("recovered") + r.values("written_off"))[:, 1:].sum(axis=1)
    late = r.values("defaulted")[:, -4:].sum(axis=1)
    assert (resolved >= defaulted * (1 - 1e-12)).all()
    assert (resolved <= (defaulted + late) * (1 + 1e-12)).all()


def test_initial_balance_is_met_in_expectation_with_the_predicted_spread():
    """With an initial_balance the opening lines' lognormal is shifted so the expected opening balance equals
    it: the mean over paths is within 4 standard errors, the spread matches the truncated-lognormal variance
    (chi-square bounds), and no opening line (a firm's opening loans together, from the trace) passes the inclusive
    limit."""
    target, paths = 12.5e8, 60
    s = small_default(**{"banks.city_bank.initial_balance": target, "calendar.months": 1})
    predicted_sd = initial_population(s).opening_sd[s.bank_names.index("city_bank")]
    r = simulate(s, paths=paths, seed=2, trace=range(paths))
    opening = r.values("balance", "city_bank")[:, 0]
    assert abs(opening.mean() - target) < 4 * predicted_sd / np.sqrt(paths)
    low, high = stats.chi2.ppf([0.0005, 0.9995], paths - 1) / (paths - 1)
    assert low < opening.var(ddof=1) / predicted_sd**2 < high
    trace = r.trace
    lines = trace[trace["start"] <= r.dates[0]].groupby(["path", "firm"])["amount"].sum()
    assert 0 < lines.max() <= s.firms.inclusive_line_limit


def test_graduations_follow_the_truncated_line_distribution():
    """Lines X are lognormal truncated at the limit L and grow by g at each yearly renewal (no defaults,
    always renewed): a firm graduates at its first renewal when X (1 + g) > L, at its second when
    X (1 + g)^2 > L >= X (1 + g). Expected counts: N P(X > L/(1+g)^k | X <= L), k = 1, 2."""
    n, paths, g = 20_000, 40, 0.2
    s = pool_scenario(firms=n, unbanked_share=0.0, pd=0.0, rho=0.0, months=24, term_mix={"12": 1.0}, reborrow_prob=1.0,
                      line_median="300万", line_p90="900万", line_growth=g, inclusive_line_limit="1000万")
    r = simulate(s, paths=paths, seed=17)
    mu, sigma = np.log(3e6), (np.log(9e6) - np.log(3e6)) / ndtri(0.9)
    a = (np.log(1e7) - mu) / sigma
    for months, k in ((slice(1, 13), 1), (slice(1, 25), 2)):
        q = 1 - ndtr((np.log(1e7 / (1 + g) ** k) - mu) / sigma) / ndtr(a)
        counts = r.values("graduated")[:, months].sum(axis=1)
        se = np.sqrt(n * q * (1 - q) / paths)
        assert abs(counts.mean() - n * q) < 4 * se, (k, counts.mean(), n * q, se)
    np.testing.assert_array_equal(r.values("borrowers")[:, -1], n - r.cumulative("graduated"))


def test_population_accounting():
    """With no entry, exit or failure the population is constant and the unbanked are everyone but the
    borrowers; while no borrower has returned to the pool (terms longer than the horizon), never-borrowed
    firms fall by exactly the approvals."""
    common = dict(firms=50_000, unbanked_share=1.0, pd=0.0, rho=0.0, months=18, reborrow_prob=0.3, applications_per_month=400)
    returning = simulate(pool_scenario(term_mix={"6": 1.0}, **common), paths=3, seed=23)
    np.testing.assert_array_equal(returning.values("firms"), 50_000)
    np.testing.assert_array_equal(returning.values("unbanked_firms"), 50_000 - returning.values("borrowers"))
    assert (returning.values("never_borrowed_firms")[:, -1] > 50_000 - returning.cumulative("approvals")).all()
    first_loans_only = simulate(pool_scenario(term_mix={"24": 1.0}, **common), paths=3, seed=23)
    approved = np.cumsum(first_loans_only.values("approvals"), axis=1)
    np.testing.assert_array_equal(first_loans_only.values("never_borrowed_firms"), 50_000 - approved)


def test_same_seed_same_numbers_and_paths_are_independent_of_batch():
    """A seed fixes every number; path k is the same alone, among 4 or among 60 paths."""
    s = small_default(**{"calendar.months": 8})
    a = simulate(s, paths=4, seed=99)
    b = simulate(s, paths=4, seed=99)
    np.testing.assert_array_equal(a.bank_metrics, b.bank_metrics)
    np.testing.assert_array_equal(a.population_metrics, b.population_metrics)
    alone = simulate(s, paths=[3], seed=99)
    many = simulate(s, paths=60, seed=99)
    np.testing.assert_array_equal(alone.bank_metrics[0], a.bank_metrics[3])
    np.testing.assert_array_equal(many.bank_metrics[3], a.bank_metrics[3])
    other_seed = simulate(s, paths=[3], seed=100)
    assert not np.array_equal(other_seed.bank_metrics[0], alone.bank_metrics[0])


def test_a_decision_draws_only_its_own_numbers():
    """The LGD spread draws only LGDs: changing it leaves originations, defaults and borrowers untouched and changes
    only what depends on recoveries."""
    s0 = small_default(**{"risk.lgd_sd": 0.0})
    s1 = small_default(**{"risk.lgd_sd": 0.25})
    r0, r1 = simulate(s0, paths=3, seed=5), simulate(s1, paths=3, seed=5)
    for name in ("disbursed", "repaid", "defaulted", "defaults", "borrowers", "loans", "interest_income", "firms"):
        np.testing.assert_array_equal(r0.values(name), r1.values(name), err_msg=name)
    assert not np.array_equal(r0.values("recovered"), r1.values("recovered"))


def test_save_and_load_round_trip_exactly(tmp_path):
    """Results.save / Results.load give back the same metrics, scenario, seed and paths."""
    r = simulate(small_default(**{"calendar.months": 6}), paths=3, seed=4)
    r.save(tmp_path / "out")
    back = Results.load(tmp_path / "out")
    pd.testing.assert_frame_equal(back.metrics, r.metrics)
    assert back.scenario == r.scenario and back.seed == 4 and back.path_ids == [0, 1, 2]
    manifest = r.manifest()
    assert manifest["scenario_sha256"] == r.scenario.digest() and manifest["paths"] == 3
    r.save(tmp_path / "out")  # replacing an earlier results directory is allowed
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError):
        r.save(tmp_path / "other")
    data = tmp_path / "out" / "metrics.parquet"
    data.write_bytes(data.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ResultsError, match="hash"):
        Results.load(tmp_path / "out")


def test_summary_matches_numpy():
    """summary(): mean, standard error and percentiles per metric, date and bank, as numpy computes them."""
    r = simulate(small_default(**{"calendar.months": 5}), paths=6, seed=2)
    summary = r.summary().set_index(["metric", "date", "bank"])
    v = r.values("balance", "big_bank")[:, -1]
    row = summary.loc[("balance", r.dates[-1], "big_bank")]
    assert row["mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert row["mcse"] == pytest.approx(v.std(ddof=1) / np.sqrt(6), rel=1e-12)
    for pct in (5, 25, 50, 75, 95):
        assert row[f"p{pct}"] == pytest.approx(np.percentile(v, pct), rel=1e-12)
    assert set(summary.index.get_level_values("metric")) == set(r.metrics["metric"].cat.categories)


def test_aggregate_is_the_sum_of_banks():
    """Bank 'all' holds the sum over banks of every additive metric; its ratios are recomputed from the sums."""
    r = simulate(small_default(**{"calendar.months": 12, "campaign": {"channels": {"v": {"reach_per_month": 50, "need": 0.5}}}}), paths=2, seed=6)
    banks = r.banks[:-1]
    for m in METRICS:
        if m.scope == "bank" and m.kind != "ratio":
            np.testing.assert_allclose(r.values(m.name), sum(r.values(m.name, b) for b in banks), rtol=1e-12, err_msg=m.name)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(r.values("npl_ratio"), r.values("npl_balance") / r.values("balance"), rtol=1e-12)
        np.testing.assert_allclose(r.values("first_time_share"), r.values("first_time_borrowers") / r.values("approvals"), rtol=1e-12)


# ------------------------------------------------------------------------------------------------ kernels
def test_month_hazards_reproduce_the_conditional_period_pd():
    """Given Z, the probability of defaulting within a factor period is Phi((Phi^-1(p_P) - sqrt(rho) Z)/sqrt(1-rho)),
    p_P = 1 - (1 - PD)^(P/12); PD 0 never defaults and PD 1 always does."""
    pd_, rho = np.array([0.01, 0.1, 0.0, 1.0]), np.array([0.2, 0.05, 0.3, 0.1])
    for period in (1, 3, 12):
        for z in (-1.5, 0.3, 2.0):
            nats = np.array([month_nats(p, r, 1.0, z, period) for p, r in zip(pd_, rho, strict=True)])
            p_period = 1 - (1 - pd_) ** (period / 12)
            with np.errstate(divide="ignore"):
                expected = ndtr((ndtri(p_period) - np.sqrt(rho) * z) / np.sqrt(1 - rho))
            np.testing.assert_allclose(-np.expm1(-nats[:3] * period), expected[:3], rtol=1e-12, atol=1e-15)
            assert nats[3] == CERTAIN_DEFAULT_NATS
    assert month_nats(0.02, 0.1, 2.5, 0.0, 12) == pytest.approx(month_nats(0.05, 0.1, 1.0, 0.0, 12), rel=1e-12)  # a stress multiplier


def test_default_months_match_a_month_by_month_reference():
    """Inverting the cumulative hazard agrees with walking month by month."""
    rng = np.random.default_rng(0)
    months = 40
    hazard = np.zeros((5, months + 1))
    hazard[:, 1:] = rng.uniform(0, 0.15, (5, months))
    hazard[3, 1:] = 0.0          # never defaults
    hazard[4, 20] = 1.0          # certain default in month 20
    nats = np.where(hazard < 1.0, -np.log1p(-np.minimum(hazard, 0.999)), CERTAIN_DEFAULT_NATS)
    cumulative = np.cumsum(nats, axis=1)
    for i in range(3000):
        cohort, start, e = rng.integers(0, 5), rng.integers(0, months + 1), rng.standard_exponential()
        acc, t = 0.0, start + 1
        while t <= months:  # reference: accumulate -log(1-h) month by month after the start
            if hazard[cohort, t] >= 1:
                break
            acc += -np.log1p(-hazard[cohort, t])
            if acc >= e:
                break
            t += 1
        assert default_month(cumulative, cohort, start, e) == t, (i, t)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    pd=st.floats(0.0, 0.3), rho=st.floats(0.0, 0.9), reborrow=st.floats(0.0, 1.0),
    term=st.sampled_from(["1", "6", "12", "30"]), lgd=st.floats(0.0, 1.0), apps=st.floats(0.0, 50.0),
    frequency=st.sampled_from(["monthly", "quarterly", "annual"]),
)
def test_identities_hold_for_random_valid_pools(pd, rho, reborrow, term, lgd, apps, frequency):
    """Property: for random valid parameters the identities hold and no stock goes negative."""
    s = pool_scenario(firms=3000, unbanked_share=0.5, pd=pd, rho=rho, months=18, term_mix={term: 1.0},
                      reborrow_prob=reborrow, applications_per_month=apps, factor_frequency=frequency, lgd=lgd)
    r = simulate(s, paths=2, seed=1)
    assert_identities(r)
    for name in ("balance", "borrowers", "loans", "firms", "unbanked_firms"):
        assert (r.values(name) >= 0).all()


def test_applications_grow_at_the_rate_of_each_year():
    """demand.growth as a table by year: in month t the expected applications are applications_per_month times
    the product of the monthly rates of the months before it: (1 + g_2021)^((t − 1)/12) in 2021 and
    (1 + g_2021)(1 + g_2022)^((t − 13)/12) in 2022 (a year's rate grows demand over that year). Summed over 200
    paths, each month's applications against that Poisson mean (4 standard errors)."""
    from creditsim.scenario.growth import application_growth

    data = {"firms": 10**5, "unbanked_share": 1.0, "pd": 0.0, "rho": 0.0, "months": 24, "reborrow_prob": 0.0, "applications_per_month": 500.0,
            "term_mix": {"36": 1.0}}
    base = pool_scenario(**data)
    s = scenario_from_dict({**base.to_dict(), "demand": {**base.to_dict()["demand"], "growth": {"2021": 0.1, "2022": 0.5}}})
    factor = application_growth(s)
    t = np.arange(1, 25)
    expected = np.where(t <= 12, 1.1 ** ((t - 1) / 12), 1.1 * 1.5 ** ((t - 13) / 12))
    np.testing.assert_allclose(factor[1:], expected, rtol=1e-12)
    r = simulate(s, paths=200, seed=8)
    counts = r.values("applications")[:, 1:].sum(axis=0)
    mean = 200 * 500.0 * expected  # a month of shift (3.4% in 2022) would be 3 to 5 of these bounds off
    assert (np.abs(counts - mean) <= 4 * np.sqrt(mean)).all()


@pytest.mark.parametrize(("options", "field", "rule"), [({"seed": -1}, "seed", "≥ 0"), ({"seed": 2**63}, "seed", "below 2^63"),
                                                        ({"seed": True}, "seed", "whole number"), ({"paths": [0, 2**63]}, "paths", "below 2^63"),
                                                        ({"paths": [3, 3]}, "paths", "distinct"), ({"paths": 0}, "paths", "≥ 1")])
def test_bad_seed_or_paths_is_refused_in_one_line(options, field, rule):
    """A seed or path number the keyed draws cannot take (negative, 2^63 or more, not a whole number) is refused
    before anything runs, naming the field."""
    with pytest.raises(ScenarioError) as info:
        simulate(small_default(), **{"paths": 1, "seed": 0, "progress": False, **options})
    assert info.value.field == field and rule in str(info.value) and "\n" not in str(info.value)


def test_loans_carry_the_rate_of_the_year_they_were_made():
    """Rates by year without a risk premium (the default scenario, 2021-01 on, its opening in 2020): every loan's
    rate is its bank's rate in the year it started, the opening book's the opening year's; the month's
    new_loan_rate is the year's rate; month 1's interest is the performing opening book × the 2020 rate / 12."""
    rates = {"2020": 0.06, "2021": 0.05, "2022": 0.04, "2023": 0.03}
    banks = ("big_bank", "city_bank", "rural_bank")
    s = small_default(**{f"banks.{b}.rate_per_pd": 0.0 for b in banks}, **{f"banks.{b}.rate": rates for b in banks})
    r = simulate(s, paths=2, seed=5, trace=[0, 1])
    first = r.dates[0]
    year = r.trace["start"].where(r.trace["start"] > first, "2020").str[:4]
    np.testing.assert_allclose(r.trace["rate"], year.map(rates).astype(float), rtol=0, atol=1e-15)
    assert set(year) == set(rates)
    lent = r.values("disbursed")[:, 1:] > 0
    expected = np.array([rates[d[:4]] for d in r.dates[1:]])
    np.testing.assert_allclose(r.values("new_loan_rate")[:, 1:][lent], np.broadcast_to(expected, lent.shape)[lent], rtol=1e-12)
    performing = r.values("balance")[:, 0] - r.values("npl_balance")[:, 0]
    np.testing.assert_allclose(r.values("interest_income")[:, 1], performing * rates["2020"] / 12, rtol=1e-9)


def test_a_rate_table_must_cover_the_opening_year():
    """The opening book is priced at the opening year's rate, so a table must give it."""
    with pytest.raises(ScenarioError, match=r"banks.big_bank.rate: has no rate for year 2020 \(the opening's year"):
        small_default(**{"banks.big_bank.rate": {"2021": "5%", "2022": "4%", "2023": "3%"}})
