"""The fast engine against the reference engine (:mod:`creditsim.reference`): same distributions of the key metrics.

The reference engine is the model written the obvious way (a SimPy process per loan, a Bernoulli default draw
per firm and month); the fast engine is vectorised and draws each firm's default month by inverting the
cumulative hazard. Both run the same small scenarios at fixed, *different* seeds (so their samples are
independent), and for every compared metric, entity and month:

* the distributions over paths must agree: a two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``) for
  metrics with many distinct values, a χ² test of homogeneity for discrete metrics with at most
  :data:`MAX_CATEGORIES` distinct values (monthly defaults, graduations, approvals …). KS assumes continuous data:
  with ties its p-values are too large (on Poisson(2) counts, 300 paths each, it rejects 0.3% of equal pairs at a
  nominal 5%; χ² 3.3%), so it would lose power exactly where counts are small (at 1e-3 it detects a 30% shift of
  Poisson(2) in 57% of trials, χ² in 69%). The χ² categories are runs of adjacent values merged until each holds
  at least :data:`MIN_CELL` paths of the pooled sample (expected count ≥ 5 per engine);
* the means must agree within z standard errors of the difference, ``|m_a − m_b| ≤ z sqrt(se_a² + se_b²)``, with
  ``se = sd / sqrt(paths)`` (the Monte Carlo standard error of each sample).

Flows are compared both in the month and summed over months 1..t (the cumulative sums have far more power
against a changed PD). All the tests of a scenario form one family: Bonferroni at :data:`FAMILY_ALPHA` overall,
so each p-value must exceed ``FAMILY_ALPHA / tests`` and z is the two-sided normal quantile of that level
(each check counts as two tests: with about 120–400 checks a scenario, p must exceed about 1e-6 to 4e-6 and
z stay below 4.6–4.9). The seeds are fixed, so every run of this file sees the same numbers. A power check runs
the same comparison against the fast engine on a perturbed scenario (PD × 1.3; re-borrowing 0.85 → 0.75) and
requires it to be rejected.

Scenarios (24 months, about 500 borrowers, 300 paths per engine): (1) a plain credit book with correlated
defaults (monthly factor), re-borrowing, line growth and graduation, no renewal; (2) 无还本续贷 with evergreening,
two segments with several grades, two banks, thin-file beliefs, a quarterly factor and a stress step, deferral of
principal (延期还本付息) and relief lending; (3) a
guarantor and a risk pool whose capacity binds, with claims and payouts (annual factor). Budget: the whole file
runs in about 65–75 s on the project's 2-core machine: the fast engine about 20 s and the reference about 31 s
for the three scenarios (the reference does about 400,000 borrower-months a second on them), 6 s per power check.

Where capacity binds, the allocation of cover depends on the order in which loans reach a guarantor or pool.
Both engines follow the same rules: every loan maturing in a month ends before any is re-lent, and each loan,
in order, is covered when it fits in the room left (first fit: a loan that does not fit is refused and later,
smaller ones may still be taken). The earlier rule of the fast engine, which took a batch's loans only until the
first that did not fit, made ``guarantee_unavailable`` about 8% higher in scenario (3) over the 24 months, and
this comparison told the two rules apart (means 5.8 se apart).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import stats

import creditsim
from creditsim import reference
from creditsim.errors import ScenarioError
from creditsim.metrics import SCOPE_METRICS, metric
from creditsim.results import Results
from creditsim.scenario import Scenario, scenario_from_dict
from helpers import small_default, with_changes

#: Family-wise error rate of all the tests of one scenario (Bonferroni).
FAMILY_ALPHA = 1e-3
#: Paths per engine and scenario.
PATHS = 300
#: Months compared (each scenario runs 24 months).
MONTHS = (6, 12, 18, 24)
#: Least pooled paths in a χ² category.
MIN_CELL = 10
#: A metric with at most this many distinct pooled values is compared with χ² rather than KS.
MAX_CATEGORIES = 20
#: The fast engine's seed, and the reference's: a different one, so that the two samples are independent. The
#: reference seed was chosen among 202..207, without looking at the fast engine, as the one whose sample is the
#: most typical of the reference's own distribution (every compared mean within 2.6 se of the other five seeds'
#: pooled mean; 202's sample lay 4.2 se out). The fast engine's draws change whenever it is optimised, and a fixed
#: reference sample far in a tail would make false alarms at those changes far likelier than FAMILY_ALPHA.
FAST_SEED, REFERENCE_SEED = 101, 206

STOCKS = ("balance", "borrowers", "loans", "npl_balance", "credit_loan_balance")
FLOWS = ("disbursed", "repaid", "defaulted", "defaults", "recovered", "written_off", "net_loss", "interest_income", "disbursed_interest", "applications",
         "approvals")


# ------------------------------------------------------------------------------------------------ scenarios
def _segment(**fields: Any) -> dict[str, Any]:
    base = {"firms": 1000, "unbanked_share": 0.5, "former_borrower_share": 0.5, "entry_per_year": 100, "exit_rate": 0.05,
            "applications_per_month": 10, "pd": [0.03], "grade_share": [1.0], "rho": 0.15, "line_median": "100万", "line_p90": "400万"}
    return {**base, **fields}


def _bank(**fields: Any) -> dict[str, Any]:
    base = {"share": 1.0, "all_loans": "1000亿", "non_inclusive_growth": 0.05, "max_pd": 1.0, "rate": 0.05, "rate_per_pd": 0.2,
            "term_mix": {"12": 0.6, "24": 0.4}, "product_mix": {"credit": 1.0}}
    return {**base, **fields}


def _data(**sections: Any) -> dict[str, Any]:
    return {
        "name": "reference-check",
        "calendar": {"start": "2021-01", "months": 24},
        "firms": {"inclusive_line_limit": "1000万", "segments": {"only": _segment()}},
        "banks": {"bank": _bank()},
        "demand": {"reborrow_prob": 0.85, "loans_per_borrower": 1.0},
        "risk": {"factor_frequency": "annual", "lgd": {"credit": 0.5, "guaranteed": 0.4, "collateral": 0.3}, "recovery_lag_months": 6,
                 "write_off_months": 12},
        **sections,
    }


def plain_book(**changes: Any) -> Scenario:
    """(1) A plain credit book: one segment and grade (PD 3%, ρ 0.15, monthly factor), one bank, credit loans of 12 and
    24 months at a flat rate, re-borrowing 0.85 with 10% line growth and an inclusive limit that makes some firms
    graduate, 1.4 loans per borrower, Beta LGD, entries, exits and applications; no renewal. About 500 borrowers."""
    data = _data()
    data["firms"]["inclusive_line_limit"] = "800万"
    data["firms"]["segments"]["only"] = _segment(firms=1000, applications_per_month=10, line_growth=0.10)
    data["banks"]["bank"]["rate_per_pd"] = 0.0  # so that a changed PD shows only through defaults
    data["demand"]["loans_per_borrower"] = 1.4
    data["risk"].update(lgd_sd=0.15, factor_frequency="monthly")
    return scenario_from_dict(with_changes(data, changes))


def renewal_book(**changes: Any) -> Scenario:
    """(2) 无还本续贷 with evergreening: two segments with three and two grades, two banks with different appetites,
    uptakes, terms and products; renewal of loans up to 12 months after 6 months on book, at most twice, for
    believed PD ≤ 6%, distressed renewals reported as restructured; thin-file beliefs (signal_sd 0.5); a quarterly
    factor and PD × 2 from month 7, so that renewals reach distressed firms; an opening stock of NPLs (3% and 2% of
    the banks' books) in the recovery and write-off pipeline; the city bank's rate falls by year; relief: maturities
    from 2021-04 to 2021-12 deferred by 6 months for 60% of the firms believed at most 6% (defaults postponed, some
    onto masked loans), and relief lending at the city bank (8 applications a month, appetite 10%) from 2021-04 to
    2021-09; policy pressure: the big bank's growth target of 30% in 2021 and the 两增 yardstick (all loans' 5%)
    for both, full at a 5% shortfall, with appetite × 1.5 and outreach of its share of demand at full pressure.
    About 550 borrowers."""
    data = _data()
    data["firms"]["segments"] = {
        "micro": _segment(firms=750, unbanked_share=0.5, applications_per_month=8, pd=[0.01, 0.03, 0.07], grade_share=[0.3, 0.4, 0.3],
                          rho=0.12, line_median="50万", line_p90="200万", line_growth=0.05),
        "small": _segment(firms=330, unbanked_share=0.45, applications_per_month=3, pd=[0.01, 0.04], grade_share=[0.6, 0.4], rho=0.15,
                          line_median="200万", line_p90="600万", former_borrower_share=0.3),
    }
    data["banks"] = {
        "big": _bank(share=0.6, max_pd=0.05, renewal_uptake=0.6, term_mix={"12": 0.8, "24": 0.2}, product_mix={"credit": 0.5, "collateral": 0.5},
                     opening_npl_ratio=0.03, growth_target={"2021": 0.3}),
        "city": _bank(share=0.4, max_pd=0.08, rate={"2020": 0.07, "2021": 0.06, "2022": 0.05}, renewal_uptake=0.9, term_mix={"6": 0.3, "12": 0.7},
                      product_mix={"credit": 0.3, "guaranteed": 0.3, "collateral": 0.4}, opening_npl_ratio=0.02),
    }
    data["demand"]["loans_per_borrower"] = 1.2
    data["risk"].update(factor_frequency="quarterly", signal_sd=0.5, known_history_loans=3, stress=[{"date": "2021-07", "pd_multiplier": 2.0}])
    data["renewal"] = {"enabled": True, "products": ["credit", "collateral"], "max_term_months": 12, "min_months_on_book": 6, "max_consecutive": 2,
                       "max_pd": 0.06, "distressed_classification": "restructured"}
    data["relief"] = {"deferrals": [{"start": "2021-04", "end": "2021-12", "months": 6, "uptake": 0.6, "max_pd": 0.06}],
                      "lending": [{"start": "2021-04", "end": "2021-09", "applications_per_month": 8, "max_pd": 0.1, "banks": ["city"]}]}
    data["pressure"] = {"yardstick": True, "full_gap": 0.05, "appetite": 0.5, "outreach": 1.0}
    return scenario_from_dict(with_changes(data, changes))


def covered_book(**changes: Any) -> Scenario:
    """(3) Guarantees and a risk pool with claims: two segments, two banks lending credit, guaranteed and collateral
    loans; a guarantor (coverage 0.7, claim lag 3, fee 0.8% of which 0.3% subsidised, costs 0.2%, leverage cap 8)
    whose capital makes the cap bind; a pool paying 50% of the net loss of credit loans up to 300万 of one bank,
    leverage 5, with a January budget. PD 2–6% with an annual factor, write-off after 9 months (7 for a default in
    2022: faster disposal), so claims and payouts come within the 24 months. About 500 borrowers."""
    data = _data()
    data["firms"]["segments"] = {
        "micro": _segment(firms=650, applications_per_month=8, pd=[0.02, 0.06], grade_share=[0.6, 0.4], rho=0.12, line_median="60万", line_p90="250万"),
        "small": _segment(firms=330, applications_per_month=4, pd=[0.02, 0.05], grade_share=[0.7, 0.3], rho=0.15, line_median="150万",
                          line_p90="500万"),
    }
    data["banks"] = {
        "big": _bank(share=0.55, product_mix={"credit": 0.4, "guaranteed": 0.4, "collateral": 0.2}),
        "city": _bank(share=0.45, rate=0.06, term_mix={"12": 0.8, "24": 0.2}, product_mix={"credit": 0.5, "guaranteed": 0.3, "collateral": 0.2}),
    }
    data["risk"].update(recovery_lag_months=6, write_off_months={"2020": 9, "2021": 9, "2022": 7}, factor_frequency="annual")
    data["guarantors"] = {"fund": {"capital": "1200万", "coverage": 0.7, "fee_rate": "0.8%", "fee_subsidy": "0.3%", "cost_rate": "0.2%",
                                   "leverage_cap": 8, "claim_lag_months": 3, "single_borrower_share": 0.5}}
    data["pools"] = {"pool": {"size": "1600万", "leverage": 5, "payout_share": 0.5, "max_loan": "300万", "banks": ["city"], "annual_budget": "500万",
                              "contributions": {"government": 0.8, "bank": 0.2}}}
    return scenario_from_dict(with_changes(data, changes))


# ------------------------------------------------------------------------------------------------ the comparison
@dataclass(frozen=True)
class Check:
    """One compared quantity: a metric of an entity at a month, in the month or summed over months 1..month."""

    metric: str
    entity: str
    month: int
    cumulative: bool

    def values(self, results: Results) -> np.ndarray:
        v = results.values(self.metric, self.entity)
        return v[:, 1 : self.month + 1].sum(axis=1) if self.cumulative else v[:, self.month]

    def __str__(self) -> str:
        return f"{self.metric}[{self.entity}] {'months 1..' if self.cumulative else 'month '}{self.month}"


@dataclass(frozen=True)
class Outcome:
    check: Check
    test: str  # "ks", "chi2" or "constant"
    p: float
    mean_a: float
    mean_b: float
    z: float  # |mean difference| in standard errors of the difference


def checks_for(stocks: tuple[str, ...], flows: tuple[str, ...], entities: tuple[str, ...] = ("all",)) -> list[Check]:
    """Stocks at each compared month; flows in the month and cumulated to it; for each entity."""
    out = []
    for entity in entities:
        for month in MONTHS:
            out += [Check(m, entity, month, False) for m in stocks]
            out += [Check(m, entity, month, c) for m in flows for c in (False, True)]
    assert all(m in reference.MODELLED[_scope(m)] for m in (*stocks, *flows))
    return out


def _scope(metric: str) -> str:
    return next(scope for scope, names in SCOPE_METRICS.items() if metric in names)


def distribution_test(a: np.ndarray, b: np.ndarray) -> tuple[str, float]:
    """p-value of 'a and b come from one distribution': χ² on merged categories for discrete data with few values,
    else two-sample KS; two constant samples give 1 when equal and 0 when not."""
    pooled = np.concatenate([a, b])
    values, counts = np.unique(pooled, return_counts=True)
    if values.shape[0] == 1:
        return "constant", 1.0
    if values.shape[0] <= MAX_CATEGORIES:
        uppers, run = [], 0  # each category: the values up to its upper end, at least MIN_CELL pooled paths
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            run += count
            if run >= MIN_CELL:
                uppers.append(value)
                run = 0
        edges = np.array(uppers[:-1] + [np.inf])  # the last category also takes a short run of the largest values
        if edges.shape[0] >= 2:
            table = np.array([np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.shape[0]) for x in (a, b)])
            table = table[:, table.sum(axis=0) > 0]
            if table.shape[1] >= 2:
                return "chi2", float(stats.chi2_contingency(table, correction=False).pvalue)
    return "ks", float(stats.ks_2samp(a, b).pvalue)


def compare(fast: Results, ref: Results, checks: list[Check]) -> list[Outcome]:
    """Each check's distribution test and standardised difference of means, fast engine against the reference."""
    out = []
    for check in checks:
        a, b = check.values(fast), check.values(ref)
        assert np.isfinite(a).all() and np.isfinite(b).all(), f"{check}: NaN values"
        test, p = distribution_test(a, b)
        se = np.sqrt(a.var(ddof=1) / a.shape[0] + b.var(ddof=1) / b.shape[0])
        diff = abs(a.mean() - b.mean())
        z = diff / se if se > 0 else (0.0 if diff == 0 else np.inf)
        out.append(Outcome(check, test, p, float(a.mean()), float(b.mean()), float(z)))
    return out


def family_level(outcomes: list[Outcome]) -> tuple[float, float]:
    """Bonferroni: the per-test level for the p-values and the z bound for the means (each check is two tests)."""
    level = FAMILY_ALPHA / (2 * len(outcomes))
    return level, float(stats.norm.isf(level / 2))


def rejections(outcomes: list[Outcome]) -> list[str]:
    """The failed tests of a family, described."""
    level, z_max = family_level(outcomes)
    failed = []
    for o in outcomes:
        if o.p < level:
            failed.append(f"{o.check}: {o.test} p = {o.p:.2e} < {level:.1e} (means fast {o.mean_a:.6g}, reference {o.mean_b:.6g})")
        elif o.z > z_max:
            failed.append(f"{o.check}: means fast {o.mean_a:.6g}, reference {o.mean_b:.6g} differ by {o.z:.1f} se > {z_max:.2f}")
    return failed


# ------------------------------------------------------------------------------------------------ runs (once per module)
@dataclass(frozen=True)
class Plan:
    """What to compare for one scenario: bank stocks and flows of some entities, and other scopes' metrics."""

    build: Callable[..., Scenario]
    stocks: tuple[str, ...]
    flows: tuple[str, ...]
    banks: tuple[str, ...] = ("all",)
    others: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # (entity, stocks, flows)

    def checks(self) -> list[Check]:
        out = checks_for(self.stocks, self.flows, self.banks)
        for entity, stocks, flows in self.others:
            out += checks_for(stocks, flows, (entity,))
        return out


PLANS = {
    "plain": Plan(plain_book, (*STOCKS, "firms", "unbanked_firms"), (*FLOWS, "graduated", "firm_failures", "firm_entries", "firm_exits")),
    "renewal": Plan(renewal_book, (*STOCKS, "renewal_balance", "restructured_balance", "deferred_balance", "growth_shortfall"),
                    (*FLOWS, "renewals", "renewed", "reborrow_declined", "deferred", "relief_disbursed", "outreach_applications", "outreach_approvals"),
                    banks=("all", "big", "city")),
    "covered": Plan(covered_book, STOCKS, (*FLOWS, "guaranteed_disbursed", "guarantee_unavailable", "loss_bank"), others=(
        ("fund", ("guarantee_outstanding", "guarantor_capital"), ("guarantee_issued", "guarantee_fees", "guarantee_claims", "guarantee_recoveries",
                                                               "loss_guarantor")),
        ("pool", ("pool_balance", "pool_covered"), ("pool_payouts", "loss_pool")),
    )),
}


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Results, Results]]:
    """Each scenario's fast and reference runs (PATHS paths each, at different seeds), computed once."""
    out = {}
    for name, plan in PLANS.items():
        scenario = plan.build()
        out[name] = (creditsim.simulate(scenario, paths=PATHS, seed=FAST_SEED), reference.simulate(scenario, paths=PATHS, seed=REFERENCE_SEED))
    return out


# ------------------------------------------------------------------------------------------------ the comparisons
@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLANS))
def test_fast_engine_matches_the_reference(runs, name):
    """Every compared metric, month and entity: same distribution (KS or χ²) and same mean within the Monte Carlo
    error, Bonferroni over the scenario's family at FAMILY_ALPHA."""
    fast, ref = runs[name]
    outcomes = compare(fast, ref, PLANS[name].checks())
    failed = rejections(outcomes)
    assert not failed, f"{len(failed)} of {2 * len(outcomes)} tests rejected:\n" + "\n".join(failed)


@pytest.mark.slow
def test_the_comparison_rejects_a_fast_engine_with_pd_times_1_3(runs):
    """Power: the fast engine run with every PD × 1.3 is told apart from the reference at the true PD, by the same
    family of tests at the same level, and the rejections are about defaults."""
    _, ref = runs["plain"]
    perturbed = creditsim.simulate(plain_book(**{"firms.segments.only.pd": [0.039]}), paths=PATHS, seed=FAST_SEED)
    failed = rejections(compare(perturbed, ref, PLANS["plain"].checks()))
    assert failed, "PD × 1.3 was not detected"
    assert any(name in line for line in failed for name in ("defaults", "defaulted", "firm_failures", "npl_balance")), failed


@pytest.mark.slow
def test_the_comparison_rejects_a_fast_engine_with_less_reborrowing(runs):
    """Power: re-borrowing 0.85 → 0.75 in the fast engine is detected in the balance and the borrowers."""
    _, ref = runs["plain"]
    perturbed = creditsim.simulate(plain_book(**{"demand.reborrow_prob": 0.75}), paths=PATHS, seed=FAST_SEED)
    failed = rejections(compare(perturbed, ref, PLANS["plain"].checks()))
    assert any(line.startswith(("balance", "borrowers")) for line in failed), failed


def test_the_distribution_test_keeps_its_level_and_has_power():
    """On Poisson counts (the χ² branch) and normal draws (the KS branch) with PATHS samples each: equal
    distributions are not rejected at the family's per-test level, a 50% shift of the mean is. (Smaller shifts
    of a mean are the means test's job: an omnibus test has less power against a pure shift.)"""
    rng = np.random.default_rng(3)
    level = FAMILY_ALPHA / 400
    for draw in (lambda m: rng.poisson(2.0 * m, PATHS), lambda m: rng.normal(10.0 * m, 5.0, PATHS)):
        same = [distribution_test(draw(1.0), draw(1.0)) for _ in range(20)]
        assert min(p for _, p in same) > level, same
        shifted = distribution_test(draw(1.0), draw(1.5))
        assert shifted[1] < level, shifted
    assert distribution_test(rng.poisson(2.0, PATHS), rng.poisson(2.0, PATHS))[0] == "chi2"
    assert distribution_test(np.zeros(5), np.zeros(5)) == ("constant", 1.0)


# ------------------------------------------------------------------------------------------------ the reference itself
def assert_reference_ledgers(r: Results) -> None:
    """The reference's own books, every path and month: balance and NPL roll forward from the flows; net loss is
    shared by bank, guarantors and pools; guarantor capital and pool balance roll forward from their flows."""
    for bank in r.banks:
        v = {m: r.values(m, bank) for m in ("balance", "disbursed", "repaid", "recovered", "written_off", "npl_balance", "defaulted")}
        rolled = v["balance"][:, :-1] + (v["disbursed"] - v["repaid"] - v["recovered"] - v["written_off"])[:, 1:]
        np.testing.assert_allclose(v["balance"][:, 1:], rolled, rtol=1e-9, atol=0.005, err_msg=bank)
        npl = v["npl_balance"][:, :-1] + (v["defaulted"] - v["recovered"] - v["written_off"])[:, 1:]
        np.testing.assert_allclose(v["npl_balance"][:, 1:], npl, rtol=1e-9, atol=0.005, err_msg=bank)
        assert (v["npl_balance"] >= -0.005).all() and (r.values("borrowers", bank) <= r.values("loans", bank)).all()
    parties = r.values("loss_bank") + r.values("loss_guarantor") + r.values("loss_pool")
    np.testing.assert_allclose(r.values("net_loss"), parties, rtol=1e-9, atol=0.005)
    for g in r.entities["guarantor"]:
        cap = r.values("guarantor_capital", g)
        flows = r.values("guarantee_fees", g) - r.values("guarantor_costs", g) - r.values("guarantee_claims", g) + r.values("guarantee_recoveries", g)
        np.testing.assert_allclose(cap[:, 1:], cap[:, :-1] + flows[:, 1:], rtol=1e-9, atol=0.005, err_msg=g)
    for p in r.entities["pool"]:
        balance = r.values("pool_balance", p)
        np.testing.assert_allclose(balance[:, 1:], balance[:, :-1] + (r.values("pool_contributions", p) - r.values("pool_payouts", p))[:, 1:],
                                   rtol=1e-9, atol=0.005, err_msg=p)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLANS))
def test_reference_books_balance(runs, name):
    assert_reference_ledgers(runs[name][1])


@pytest.mark.slow
def test_reference_results_are_shaped_like_the_fast_engines(runs):
    """Same scopes, entities, dates and array shapes; exactly the metrics outside MODELLED are NaN."""
    fast, ref = runs["covered"]
    assert ref.entities == fast.entities and ref.dates == fast.dates and ref.seed == REFERENCE_SEED
    for scope in SCOPE_METRICS:
        assert ref.groups[scope].shape == fast.groups[scope].shape, scope
        for k, name in enumerate(SCOPE_METRICS[scope]):
            values = ref.groups[scope][..., : len(ref.entities[scope]) - 1 if scope != "population" else 1, k]
            if values.size == 0:  # no entities (the aggregate over none is 0 in both engines)
                continue
            nan = np.isnan(values)
            if name in reference.MODELLED[scope]:
                assert metric(name).kind == "ratio" or not nan.any(), f"{scope}.{name} is modelled but has NaN"  # a ratio of nothing is NaN
            else:
                assert nan.all(), f"{scope}.{name} is not modelled but has values"


def test_one_path_depends_only_on_seed_and_path():
    s = plain_book(**{"calendar.months": 6})
    a = reference.simulate(s, paths=[3], seed=5).values("balance")
    b = reference.simulate(s, paths=[1, 3], seed=5).values("balance")
    np.testing.assert_array_equal(a[0], b[1])


@pytest.mark.parametrize(("changes", "field"), [
    ({"campaign": {"channels": {"visits": {"reach_per_month": 10, "need": 0.5}}}}, "campaign.channels"),
    ({"liquidity": {"stress_prob": 0.03, "bridge_share": 0.5}}, "liquidity.stress_prob"),
    ({"interest_subsidy": {"rate": 0.01}}, "interest_subsidy.rate"),
    ({"reguarantors": {"national": {"capital": "10亿", "fee_rate": 0.005}}}, "reguarantors"),
    ({"guarantors": {"fund": {"capital": "1亿", "coverage": 0.7, "fee_rate": 0.008, "take_up_elasticity": 5.0}}}, "guarantors.fund.take_up_elasticity"),
    ({"guarantors": {"fund": {"capital": "1亿", "coverage": 0.7, "fee_rate": 0.008, "injections": [{"date": "2021-06", "amount": "1000万"}]}}},
     "guarantors.fund.injections"),
    ({"guarantors": {"fund": {"capital": "1亿", "coverage": 0.7, "fee_rate": 0.008, "top_up": {"below": "5000万", "to": "1亿"}}}},
     "guarantors.fund.top_up.below"),
    ({"guarantors": {"fund": {"capital": "1亿", "coverage": 0.7, "fee_rate": 0.008}}, "risk.signal_sd": 0.5}, "risk.signal_sd"),
    ({"pools": {"pool": {"size": "1000万", "payout_share": 0.5}}, "banks.bank.max_pd": 0.025, "firms.segments.only.pd": [0.02, 0.04],
      "firms.segments.only.grade_share": [0.5, 0.5], "firms.segments.only.unbanked_share": 0.8}, "banks.bank.max_pd"),
])
def test_features_it_does_not_model_are_refused(changes, field):
    """A feature the reference does not model is refused, naming the field, never silently ignored."""
    scenario = plain_book(**changes)
    with pytest.raises(ScenarioError, match="is not modelled by the reference engine") as info:
        reference.simulate(scenario, paths=1)
    assert info.value.field == field
    with pytest.raises(ScenarioError, match="is not modelled by the reference engine"):
        reference.ReferenceSimulation(scenario, 0, 0)


def test_the_bundled_default_is_refused_for_its_campaign():
    with pytest.raises(ScenarioError, match="campaign.channels"):
        reference.simulate(small_default(), paths=1)
