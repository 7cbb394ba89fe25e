"""Valid input always runs correctly: random scenarios over the valid ranges, and the extremes of each range.

A scenario that validates must run, keep every identity (balances, NPL, each party's ledger, the net loss split)
and every cap (leverage, fee, pool cover, budgets), report finite stocks and flows (a ratio may be NaN where its
denominator is 0, never infinite), and a scenario the model cannot run must be refused before it starts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditsim import Results, ScenarioError, simulate
from creditsim.metrics import METRICS
from creditsim.model.engine import run_task
from creditsim.scenario import scenario_from_dict
from creditsim.scenario.units import month_label
from helpers import assert_guarantee_rules, assert_identities, assert_ledgers, assert_pool_rules, pool_scenario

PRODUCTS = ("credit", "guaranteed", "collateral")
SEGMENTS = ("micro", "small", "individual")
BANKS = ("big_bank", "city_bank", "rural_bank")


def assert_sound(r: Results) -> None:
    """Identities, ledgers, caps and finite outputs of a run."""
    assert_identities(r)
    assert_ledgers(r)
    s = r.scenario
    for m in METRICS:
        for entity in r.entities[m.scope]:
            v = r.values(m.name, entity)
            if m.kind == "ratio":
                assert not np.isinf(v).any(), (m.name, entity)
            else:
                assert np.isfinite(v).all(), (m.name, entity)
                # a loss can be negative: recoveries are shared in the coverage ratio even with a claim left unpaid
                assert m.name == "net_loss" or m.name.startswith("loss_") or (v >= -1e-6).all(), (m.name, entity)
    fen = 0.01 / s.sample  # rounding to a fen in the sample the engine runs, scaled back
    for name, g in s.guarantors.items():  # the fee, on the guaranteed principal, is rounded to whole fen once a month
        fees, principal = r.values("guarantee_fees", name), r.values("guarantee_principal", name)
        assert (fees <= g.fee_cap / 12 * principal + fen / 2).all(), name
    years = np.array([int(d[:4]) for d in r.dates])
    for name, pool in s.pools.items():
        if pool.max_payout_per_year is not None:
            paid = r.values("pool_payouts", name)
            for year in set(years[1:].tolist()):
                assert (paid[:, years == year].sum(axis=1) <= pool.max_payout_per_year + fen).all(), (name, year)
    for table in (r.targets(), r.two_increases()):  # probabilities, where assessed
        p = table["probability"].dropna()
        assert ((p >= 0) & (p <= 1)).all()
    sub = s.interest_subsidy
    if sub is not None and sub.annual_budget is not None:
        paid = r.values("interest_subsidy")
        for year in set(years[1:].tolist()):
            assert (paid[:, years == year].sum(axis=1) <= sub.annual_budget + fen).all(), year


# ------------------------------------------------------------------------------------------------ random valid scenarios
def _shares(draw, n: int) -> list[float]:
    """n shares that sum to 1 (some may be 0)."""
    weights = [draw(st.sampled_from([0, 1, 2, 5])) for _ in range(n)]
    if sum(weights) == 0:
        weights[0] = 1
    return [w / sum(weights) for w in weights]


@st.composite
def scenarios(draw) -> dict[str, Any]:
    """A scenario drawn over the valid ranges of every section; small populations so a path takes a fraction of a
    second. Draws may break a cross-field rule (e.g. a bank's all_loans below its opening book): validation
    refuses those, which the property allows."""
    rate = st.floats(0.0, 1.0)
    months = draw(st.integers(1, 60))
    first = draw(st.integers(2018, 2030)) * 12 + draw(st.integers(0, 11))
    start = month_label(first)
    segments = {}
    for name in draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3, unique=True)):
        grades = draw(st.integers(1, 4))
        median = draw(st.floats(1e4, 3e6))
        segments[name] = {
            "firms": draw(st.integers(0, 1500)), "unbanked_share": draw(rate), "former_borrower_share": draw(rate),
            "entry_per_year": draw(st.floats(0, 500)), "exit_rate": draw(rate), "applications_per_month": draw(st.floats(0, 60)),
            "pd": [draw(st.floats(0.0, 0.6)) for _ in range(grades)], "grade_share": _shares(draw, grades),
            "rho": draw(st.one_of(st.just(0.0), st.floats(0.0, 0.99))), "line_median": median,
            "line_p90": median * draw(st.floats(1.01, 5.0)), "line_growth": draw(st.floats(-0.5, 1.0)),
        }
    banks = {}
    chosen = draw(st.lists(st.sampled_from(BANKS), min_size=1, max_size=3, unique=True))
    for name, share in zip(chosen, _shares(draw, len(chosen)), strict=True):
        terms = draw(st.lists(st.sampled_from(["1", "6", "12", "24", "36", "60"]), min_size=1, max_size=3, unique=True))
        banks[name] = {
            "share": share, "all_loans": "1000亿", "non_inclusive_growth": draw(st.floats(-0.5, 1.0)), "max_pd": draw(st.one_of(st.just(1.0), st.just(1.0), rate)),
            "rate": draw(st.floats(0.0, 0.2)), "rate_per_pd": draw(st.floats(0.0, 10.0)), "renewal_uptake": draw(rate),
            "term_mix": dict(zip(terms, _shares(draw, len(terms)), strict=True)),
            "product_mix": dict(zip(PRODUCTS, _shares(draw, 3), strict=True)),
            "other_npl_ratio": draw(rate),
        }
    banked = sum(seg["firms"] * (1 - seg["unbanked_share"]) for seg in segments.values())
    for bank in banks.values():
        if draw(st.integers(0, 3)) == 0 and banked * bank["share"] >= 1:  # the opening book calibrated to a balance
            line = min(seg["line_median"] for seg in segments.values())
            bank["initial_balance"] = max(2000.0, banked * bank["share"] * line * draw(st.floats(0.3, 3.0)))
        bank["small_micro_outside"] = draw(st.sampled_from([0.0, 1e8, 1e10]))
    stress_dates = sorted(draw(st.sets(st.integers(first, first + months), max_size=2)))
    lag = draw(st.integers(0, 12))
    lgd = {p: draw(st.floats(0.05, 0.95)) for p in PRODUCTS}
    data: dict[str, Any] = {
        "name": "random", "calendar": {"start": start, "months": months},
        "firms": {"inclusive_line_limit": "1000万", "segments": segments}, "banks": banks,
        "demand": {"growth": draw(st.floats(-0.5, 2.0)), "reborrow_prob": draw(rate), "loans_per_borrower": draw(st.floats(1.0, 4.0))},
        "risk": {
            "factor_frequency": draw(st.sampled_from(["monthly", "quarterly", "annual"])), "lgd": lgd,
            "lgd_sd": draw(st.one_of(st.just(0.0), st.floats(1e-6, 0.2))), "recovery_lag_months": lag,
            "write_off_months": lag + draw(st.integers(0, 12)), "signal_sd": draw(st.floats(0.0, 3.0)),
            "known_history_loans": draw(st.integers(0, 10)),
            "stress": [{"date": month_label(d), "pd_multiplier": draw(st.floats(0.0, 1.6))} for d in stress_dates],
        },
        "liquidity": {"stress_prob": draw(st.floats(0.0, 0.3)), "bridge_share": draw(rate), "bridge_cost": draw(st.floats(0.0, 0.1))},
        "sample": draw(st.sampled_from([1, 1, 0.5])),
        "assessment": {"rule": draw(st.sampled_from(["in_force", "2018", "2019", "2024", "none"]))},
        "targets": {"growth": {"metric": "balance", "measure": "increase", "start": start, "end": month_label(first + months - 1),
                               "threshold": draw(st.sampled_from(["-1亿", 0, "1亿"]))},
                    "npl": {"metric": "npl_ratio", "measure": "ratio", "date": month_label(first + months - 1), "comparison": "<=", "threshold": "3%"},
                    "defaults": {"metric": "defaults", "measure": "cumulative", "start": start, "end": month_label(first + months - 1),
                                 "comparison": "<", "threshold": 50, "scope": list(banks)[:1]}},
    }
    if draw(st.booleans()):
        data["renewal"] = {"max_term_months": draw(st.integers(1, 36)), "min_months_on_book": draw(st.integers(0, 24)),
                           "max_consecutive": draw(st.integers(1, 5)), "max_pd": draw(rate),
                           "distressed_classification": draw(st.sampled_from(["performing", "restructured"]))}
    if draw(st.booleans()):
        data["campaign"] = {"channels": {"visits": {"reach_per_month": draw(st.floats(0, 100)), "need": draw(rate),
                                                    "line_scale": draw(st.floats(0.05, 2.0)), "bank": draw(st.sampled_from([None, *banks]))}},
                            "list_size": draw(st.one_of(st.none(), st.integers(0, 500))),
                            "start": month_label(first + draw(st.integers(0, months - 1))), "end": month_label(first + months - 1)}
        data["campaign"]["channels"]["visits"] = {k: v for k, v in data["campaign"]["channels"]["visits"].items() if v is not None}
        data["campaign"] = {k: v for k, v in data["campaign"].items() if v is not None}
    reguarantors = {f"re{i}": {"capital": draw(st.sampled_from([1e5, 1e7, 1e9])), "fee_rate": draw(st.floats(0.0, 0.01)),
                               "government_share": draw(rate)} for i in range(draw(st.integers(0, 2)))}
    guarantors = {}
    for i in range(draw(st.integers(0, 2))):
        fee = draw(st.floats(0.0, 0.01))
        passed = {r: s * draw(st.floats(0.0, 1.0)) for r, s in zip(reguarantors, _shares(draw, len(reguarantors)), strict=True)} if reguarantors else {}
        guarantors[f"g{i}"] = {
            "capital": draw(st.sampled_from([1e5, 1e7, 1e9])), "coverage": draw(st.floats(0.0, 0.8)), "fee_rate": fee,
            "fee_subsidy": fee * draw(rate), "cost_rate": draw(st.floats(0.0, 0.02)), "leverage_cap": draw(st.floats(1.0, 15.0)),
            "capital_floor": draw(st.sampled_from([0.0, 1e6])), "single_borrower_share": draw(rate),
            "claim_lag_months": draw(st.integers(0, lag)), "reguarantee": passed, "take_up_elasticity": draw(st.floats(0.0, 50.0)),
        }
        if draw(st.booleans()):
            guarantors[f"g{i}"]["top_up"] = {"below": 1e6, "to": 5e6}
        if draw(st.booleans()):
            guarantors[f"g{i}"].update(banks=draw(st.lists(st.sampled_from(list(banks)), min_size=1, unique=True)),
                                       segments=draw(st.lists(st.sampled_from(list(segments)), min_size=1, unique=True)))
    pools = {}
    if draw(st.booleans()):
        pools["pool"] = {"size": draw(st.sampled_from([0.0, 1e6, 1e8])), "payout_share": draw(rate), "leverage": draw(st.floats(0.0, 20.0)),
                         "annual_budget": draw(st.sampled_from([0.0, 1e6])), "first_time_only": draw(st.booleans()),
                         "products": draw(st.sampled_from([["credit"], ["credit", "collateral"]])),
                         "max_payout_per_year": draw(st.sampled_from([None, 1e5])), "suspend_npl_ratio": draw(rate),
                         "contributions": dict(zip(("government", "guarantor", "bank"), _shares(draw, 3), strict=True)),
                         "max_loan": draw(st.sampled_from([5e5, 2e6, 1e7])), "top_up_to": draw(st.sampled_from([None, 2e6]))}
        pools["pool"] = {k: v for k, v in pools["pool"].items() if v is not None}
    data.update(guarantors=guarantors, reguarantors=reguarantors, pools=pools)
    if draw(st.booleans()):
        data["interest_subsidy"] = {"rate": min(b["rate"] for b in banks.values()) * draw(rate),
                                    "annual_budget": draw(st.sampled_from([1e4, 1e6]))}
    return data


#: The fields of the cross-field rules a drawn scenario may break: the opening book apportioned to the banks must
#: fit each bank's max_pd and the grades' firms, and its balance the bank's all_loans and initial_balance; a
#: sample must leave each segment a firm.
OPENING_BOOK_RULES = {"max_pd", "unbanked_share", "initial_balance", "all_loans", "small_micro_outside", "sample"}


def test_random_valid_scenarios_run_with_every_identity_and_cap():
    """Property over 200 drawn scenarios: each is refused by validation with a ScenarioError (one of the opening
    book's cross-field rules), or it runs: an audited path keeps every running total equal to its recount and every cap,
    and two paths keep every identity, ledger and cap. Most draws (at least half) run, so the property is not vacuous."""
    ran, refused = [], []

    @settings(max_examples=200, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios())
    def property_(data: dict[str, Any]) -> None:
        try:
            s = scenario_from_dict(data)
        except ScenarioError as exc:  # the opening book must fit the banks' appetite and balances
            assert exc.field.rsplit(".", 1)[-1] in OPENING_BOOK_RULES, str(exc)
            refused.append(exc.field)
            return
        run_task(s, 3, [0], audit=True)
        r = simulate(s, paths=2, seed=3, progress=False, trace=[0, 1])
        assert_sound(r)
        assert_guarantee_rules(r)
        assert_pool_rules(r)
        ran.append(s)

    property_()
    assert len(ran) >= 0.5 * (len(ran) + len(refused)), (len(ran), sorted(set(refused)))


# ------------------------------------------------------------------------------------------------ extremes
def _pool(**changes: Any) -> dict[str, Any]:
    base = dict(firms=2000, unbanked_share=0.0, pd=0.05, rho=0.1, months=24, term_mix={"12": 1.0}, reborrow_prob=0.8)
    base.update(changes)
    return pool_scenario(**base).to_dict()


def test_pd_zero_never_defaults():
    r = simulate(scenario_from_dict(_pool(pd=0.0, applications_per_month=20, unbanked_share=0.5)), paths=3, seed=1, progress=False)
    assert_sound(r)
    assert r.values("defaults").sum() == 0 and r.values("npl_balance").max() == 0


def test_pd_one_defaults_every_borrower_in_the_first_month():
    """Annual PD 1 is a monthly hazard of 1: all 2,000 opening borrowers default in month 1 and nothing performs
    after it; what is not recovered after 6 months is written off at month 13, leaving no balance."""
    r = simulate(scenario_from_dict(_pool(pd=1.0)), paths=3, seed=1, progress=False)
    assert_sound(r)
    assert (r.values("defaults")[:, 1] == 2000).all() and r.values("defaults")[:, 2:].sum() == 0
    np.testing.assert_array_equal((r.values("balance") - r.values("npl_balance"))[:, 1:], 0.0)
    np.testing.assert_array_equal(r.values("balance")[:, 13:], 0.0)


@pytest.mark.parametrize("rho", [0.0, 0.999])
def test_extreme_correlation_keeps_the_mean_default_rate(rho):
    """ρ = 0 and ρ = 0.999: the one-factor model's mean annual default rate is the PD whatever ρ (Vasicek), so the
    mean over 300 paths of a year's default fraction of the 2,000 borrowers (who all re-borrow, so none leaves) is
    within 4 Monte Carlo standard errors of 0.1. At ρ = 0.999 a year's defaults are almost all or nothing."""
    r = simulate(scenario_from_dict(_pool(pd=0.1, rho=rho, months=12, reborrow_prob=1.0)), paths=300, seed=2, progress=False)
    assert_sound(r)
    fraction = r.values("defaults")[:, 1:].sum(axis=1) / 2000
    se = fraction.std(ddof=1) / math.sqrt(fraction.size)
    assert abs(fraction.mean() - 0.1) < 4 * max(se, 1e-12)
    if rho > 0.99:
        assert np.mean((fraction < 0.01) | (fraction > 0.99)) > 0.9


def test_every_firm_without_a_loan_closing_within_the_year():
    """exit_rate 1 (an annual probability of closing of 1 is a monthly one of 1): every firm without a loan at the
    start of a month closes in it (and so may firms whose loans end in it)."""
    data = _pool(unbanked_share=0.5, applications_per_month=0.0)
    data["firms"]["segments"]["only"].update(exit_rate=1.0, entry_per_year=120)
    r = simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)
    assert_sound(r)
    assert (r.values("firm_exits")[:, 1:] >= r.values("unbanked_firms")[:, :-1]).all()


def test_a_single_firm():
    r = simulate(scenario_from_dict(_pool(firms=1, applications_per_month=1, unbanked_share=1.0)), paths=5, seed=1, progress=False)
    assert_sound(r)
    assert r.values("borrowers").max() <= 1


@pytest.mark.parametrize("case", ["no_borrowers", "no_appetite"])
def test_no_bank_lending(case):
    """Nobody borrows (every firm unbanked, no applications), or every application is refused (max_pd 0): the
    book stays empty, ratios are NaN not infinite, and the targets and 两增 tables and the summary still build."""
    changes = {"applications_per_month": 0.0} if case == "no_borrowers" else {"applications_per_month": 50.0}
    data = _pool(unbanked_share=1.0, **changes)
    data["banks"]["bank"]["max_pd"] = 0.0
    data["targets"] = {"growth": {"metric": "balance", "measure": "increase", "start": "2021-01", "end": "2021-12", "threshold": "1亿"}}
    r = simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)
    assert_sound(r)
    assert r.values("balance").max() == 0 and r.values("disbursed").sum() == 0
    assert np.isnan(r.values("npl_ratio")).all()
    if case == "no_appetite":
        assert r.values("applications").sum() > 0 and r.values("approvals").sum() == 0
    assert r.targets()["probability"].iloc[0] == 0.0
    assert len(r.two_increases()) > 0 and len(r.summary()) > 0


def test_a_pool_of_size_zero_covers_nothing_until_it_is_funded():
    """A pool that starts empty covers no loan; funded every January, it covers loans from then on."""
    data = _pool(unbanked_share=0.5, applications_per_month=50)
    data["pools"] = {"pool": {"size": 0, "payout_share": 0.5}}
    r = simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)
    assert_sound(r)
    assert r.values("pool_covered", "pool").max() == 0 and r.values("pool_payouts", "pool").sum() == 0
    data["calendar"]["start"] = "2021-02"
    data["pools"]["pool"]["annual_budget"] = "100万"
    r = simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)
    assert_sound(r)
    covered = r.values("pool_covered", "pool")
    assert covered[:, :12].max() == 0 and covered[:, 12:].max() > 0  # the first January is month 12


def test_a_ten_year_horizon():
    """120 months with growth tables over every year, entries and exits: runs with every identity."""
    data = _pool(unbanked_share=0.5, applications_per_month=30, months=120, term_mix={"12": 0.5, "36": 0.5})
    data["demand"]["growth"] = {str(y): 0.05 for y in range(2021, 2031)}
    data["firms"]["segments"]["only"]["entry_per_year"] = 200
    data["firms"]["segments"]["only"]["exit_rate"] = 0.05
    r = simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)
    assert_sound(r)
    assert r.dates[-1] == "2030-12" and len(r.two_increases()) > 0


def test_a_population_too_large_to_simulate_is_refused_before_it_starts():
    """500 million borrowers in one path would take hundreds of GiB: refused naming sample, before any path runs;
    the same population as a 1:10,000 sample is accepted."""
    data = pool_scenario(firms=1000, unbanked_share=0.0, pd=0.02, rho=0.1, months=12, term_mix={"12": 1.0}, reborrow_prob=0.5,
                         line_median="1万", line_p90="3万").to_dict()
    data["firms"]["segments"]["only"]["firms"] = 5e8
    data["banks"]["bank"]["all_loans"] = "100万亿"
    from creditsim.run.memory import available_bytes, check_memory, engine_bytes

    if available_bytes() is None or available_bytes() > 2 * engine_bytes(scenario_from_dict(data)):
        pytest.skip("this machine's memory would hold the engine")
    with pytest.raises(ScenarioError, match=r"^sample = 1\.0: leaves about 500,0\d\d,\d\d\d firms and"):
        simulate(scenario_from_dict(data), paths=1, seed=1, progress=False)
    data["sample"] = "1:10000"
    check_memory([scenario_from_dict(data)], 1)
