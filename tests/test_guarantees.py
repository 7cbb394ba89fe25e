"""Guarantees, re-guarantees and risk pools against the contracts, closed forms and the parties' ledgers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditsim import simulate
from creditsim.model.engine import run_task
from creditsim.scenario import scenario_from_dict
from creditsim.scenario.schema import MAX_RATES
from helpers import assert_guarantee_rules, assert_identities, assert_ledgers, assert_pool_rules, with_changes
from test_first_loans_and_renewal import pool_data

FOUR_LAYERS = {"provincial": 0.25, "national_fund": 0.25}  # with coverage 0.8: bank 20 / guarantor 40 / 20 / 20


def guarantee_data(*, firms: int = 1, pd: float = 1.0, capital: float = 1e9, reguarantee: dict[str, float] | None = None,
                   coverage: float = 0.8, months: int = 12, **changes: Any) -> dict[str, Any]:
    """A pool whose loans are all guaranteed by one guarantor; one line of about 100万 each."""
    data = pool_data(**{
        "calendar.months": months,
        "firms.segments.only.firms": firms, "firms.segments.only.pd": [pd, pd, pd],
        "firms.segments.only.line_median": "100万", "firms.segments.only.line_p90": "100.1万",
        "banks.bank.product_mix": {"guaranteed": 1.0}, "banks.bank.term_mix": {"24": 1.0},
        "risk.lgd": {"credit": 0.45, "guaranteed": 0.45, "collateral": 0.45},
        "risk.recovery_lag_months": 4, "risk.write_off_months": 6,
        "guarantors": {"fund": {"capital": capital, "coverage": coverage, "fee_rate": "0.75%", "fee_subsidy": "0.25%", "cost_rate": "0.3%",
                                "single_borrower_share": 1.0, "claim_lag_months": 2, "reguarantee": reguarantee or {}}},
        "reguarantors": {"provincial": {"capital": "10亿", "fee_rate": "0.5%"},
                         "national_fund": {"capital": "100亿", "fee_rate": "0.5%", "fee_rate_small": "0.3%"}},
    })
    return with_changes(data, changes)


def test_a_guarantor_with_a_long_claim_lag_beside_one_paying_at_once():
    """Two guarantors, one paying claims in the month of default and one 40 months after it, on a run shorter than
    the long lag (write-off 40 months after a default in the run, 45 for the opening year's): the month's claims of the first never
    touch the second's filings (it has none yet), every claim and write-off lands where the contract puts it, and
    money balances across every party, month by month with the audit on."""
    data = guarantee_data(firms=400, pd=0.3, months=8, **{
        "risk.write_off_months": {"2020": 45, "2021": 40}, "guarantors.fund.claim_lag_months": 0,
        "banks.bank.term_mix": {"12": 1.0}})
    data["guarantors"]["slow"] = {**data["guarantors"]["fund"], "claim_lag_months": 40}
    s = scenario_from_dict(data)
    r = simulate(s, paths=3, seed=2)
    assert r.values("guarantee_claims", "fund")[:, 1:].sum() > 0
    assert r.values("guarantee_claims", "slow").sum() == 0
    assert_identities(r)
    assert_guarantee_rules(r)
    run_task(s, 3, [0, 1], audit=True)


@pytest.mark.parametrize(("layers", "shares"), [({}, {"bank": 0.2, "guarantor": 0.8}),
                                                 (FOUR_LAYERS, {"bank": 0.2, "guarantor": 0.4, "reguarantor": 0.4})])
def test_single_default_follows_the_contract_split(layers, shares):
    """One guaranteed loan of amount A defaults in month 1 (PD 1); LGD 0.45. Before recoveries the claim is 0.8 A
    (re-guarantors reimbursing 0.25 of it each); recoveries 0.55 A and the final loss 0.45 A are shared 20:80,
    or 20:40:20:20 with the re-guarantors."""
    r = simulate(scenario_from_dict(guarantee_data(reguarantee=layers)), paths=1, seed=1)
    a = r.values("balance")[0, 0]
    cents = 0.03
    assert r.values("defaulted")[0, 1] == pytest.approx(a, abs=cents)
    claims = r.values("guarantee_claims", "fund")[0]
    assert claims[3] == pytest.approx(0.8 * a, abs=cents) and claims.sum() == pytest.approx(0.8 * a, abs=cents)  # month 1 + lag 2
    assert r.cumulative("reguarantee_claims", "fund")[0] == pytest.approx(0.8 * a * sum(layers.values()), abs=cents)
    recovered_total = r.cumulative("recovered")[0] - claims.sum() + r.cumulative("guarantee_recoveries", "fund")[0] + r.cumulative("reguarantor_recoveries")[0]
    assert recovered_total == pytest.approx(0.55 * a, abs=cents)
    assert r.cumulative("recovered")[0] - claims.sum() == pytest.approx(0.2 * 0.55 * a, abs=cents)  # the bank's share
    assert r.values("net_loss")[0, 7] == pytest.approx(0.45 * a, abs=cents)  # recognised at write-off, month 1 + 6
    for party, share in shares.items():
        assert r.cumulative(f"loss_{party}")[0] == pytest.approx(share * 0.45 * a, abs=cents), party
    assert_ledgers(r)
    assert_identities(r)


def test_insolvent_guarantor_pays_what_it_has_and_the_bank_bears_the_rest():
    """Five guaranteed loans of about 100万 default together against capital of 100万: the re-guarantors reimburse
    0.4 of the claims, the guarantor pays its capital plus that and leaves the rest unpaid; the banks write the
    unpaid part off on top of their 20%."""
    r = simulate(scenario_from_dict(guarantee_data(firms=5, capital=1e6, reguarantee=FOUR_LAYERS)), paths=1, seed=1)
    a = r.values("balance")[0, 0]
    capital_at_claim = r.values("guarantor_capital", "fund")[0, 2]  # fees have come in since the start
    paid = r.cumulative("guarantee_claims", "fund")[0]
    unpaid = r.cumulative("guarantee_unpaid_claims", "fund")[0]
    assert unpaid > 0
    assert paid == pytest.approx(capital_at_claim + 0.4 * a, abs=0.1)
    assert paid + unpaid == pytest.approx(0.8 * a, abs=0.1)
    assert r.cumulative("loss_bank")[0] == pytest.approx(0.2 * 0.45 * a + unpaid, abs=0.1)
    assert r.values("guarantor_capital", "fund")[0, 3] == pytest.approx(0.0, abs=0.01)
    assert_ledgers(r)
    assert_identities(r)


# ------------------------------------------------------------------------------------------------ closed forms
def test_expected_claims_and_losses_match_pd_lgd_coverage_exposure():
    """Independent defaults (rho = 0), constant exposure: over the first year E[claims] = PD × c × exposure and the
    guarantor's loss on those defaults E = PD × LGD × c (1 - sum s) × exposure; fees are fee_rate / 12 of the
    guaranteed principal every month, which is the bank's whole performing balance (every loan is guaranteed), not
    the liability c × balance."""
    n, pd, c, lgd, paths = 5000, 0.04, 0.8, 0.45, 60
    data = guarantee_data(firms=n, pd=pd, coverage=c, months=20, reguarantee=FOUR_LAYERS,
                          **{"risk.recovery_lag_months": 1, "risk.write_off_months": 2, "guarantors.fund.claim_lag_months": 0,
                             "banks.bank.term_mix": {"12": 1.0}})
    r = simulate(scenario_from_dict(data), paths=paths, seed=31)
    exposure = r.values("balance")[:, 0]
    claims = r.values("guarantee_claims", "fund")[:, 1:13].sum(axis=1)
    amounts = exposure / n  # lines are all within 0.1% of 100万
    se = np.sqrt(pd * (1 - pd) * n * (c * amounts.mean()) ** 2 / paths)
    assert abs(claims.mean() - pd * c * exposure.mean()) < 4 * se
    loss = r.values("loss_guarantor", "fund")[:, 1:15].sum(axis=1)  # write-offs of months 1..12 land by month 14
    assert abs(loss.mean() - pd * lgd * c * 0.5 * exposure.mean()) < 4 * se * lgd * 0.5
    balance = (r.values("balance") - r.values("npl_balance"))[:, 1:]  # performing
    np.testing.assert_allclose(r.values("guarantee_principal", "fund")[:, 1:], balance, rtol=1e-12)
    np.testing.assert_allclose(r.values("guarantee_fees", "fund")[:, 1:], 0.0075 / 12 * balance, atol=0.006)
    np.testing.assert_allclose(r.values("guarantee_fee_subsidy", "fund")[:, 1:], 0.0025 / 12 * balance, atol=0.006)
    np.testing.assert_allclose(r.values("guarantee_fee_rate", "fund")[:, 1:], 0.0075, rtol=1e-6)
    np.testing.assert_allclose(r.cumulative("fiscal_cost"), r.cumulative("guarantee_fee_subsidy", "fund"), rtol=1e-12)
    assert_ledgers(r)


# ------------------------------------------------------------------------------------------------ caps
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    capital=st.sampled_from(["2000万", "1亿", "5亿"]), leverage=st.sampled_from([3.0, 10.0, 15.0]),
    coverage=st.floats(0.2, 0.8), floor=st.sampled_from([0.0, 1.5e7]), max_line=st.sampled_from(["100万", "1000万"]),
    lag=st.integers(0, 6), provincial=st.floats(0.0, 0.5), injection=st.booleans(), pd_scale=st.floats(0.5, 3.0),
)
def test_guarantee_caps_and_ledgers_hold_in_random_schemes(capital, leverage, coverage, floor, max_line, lag, provincial, injection, pd_scale):
    """Property: for random schemes on the default city, no guaranteed loan breaks a cap or an eligibility rule (from
    the loan-level trace), the running totals pass the audit, the parties' ledgers and the balance identities hold,
    and nobody's capital goes negative."""
    from helpers import small_default

    guarantor: dict[str, Any] = {"capital": capital, "leverage_cap": leverage, "coverage": coverage, "capital_floor": floor,
                                 "max_line": max_line, "claim_lag_months": lag, "fee_rate": "0.8%",
                                 "reguarantee": {"provincial": provincial}, "segments": ["micro", "individual"], "banks": ["city_bank", "rural_bank"]}
    if injection:
        guarantor["injections"] = [{"date": "2021-07", "amount": "2000万"}]
        guarantor["top_up"] = {"below": "1000万", "to": "3000万"}
    s = small_default(**{"guarantors": {"fund": guarantor}, "reguarantors": {"provincial": {"capital": "3000万", "fee_rate": "0.5%"}},
                         "risk.stress": [{"date": "2021-04", "pd_multiplier": pd_scale}], "calendar.months": 24})
    run_task(s, 5, [0], audit=True)
    r = simulate(s, paths=2, seed=5, trace=[0, 1])
    assert assert_guarantee_rules(r) > 0
    assert_ledgers(r)
    assert_identities(r)


def test_taizhou_fund_scenario_matches_its_may_2018_figures():
    """scenarios/taizhou-guarantee-fund.toml against the fund's May 2018 figures (MODEL-NOTES §5): guaranteed
    balance 58.96亿 (mean within 12%), leverage ≈ 10× capital, the fee 0.75%, the fund's capital near its initial
    5亿 (within 10%), and the cumulative payouts of 0.68% of outstanding inside the simulated 5–95% band (one
    observed history of a correlated-default world: its spread across paths is wide)."""
    from pathlib import Path

    import creditsim

    s = creditsim.load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "taizhou-guarantee-fund.toml")
    paths = 40
    r = simulate(s, paths=paths, seed=0)
    g = "taizhou_fund"
    balance = r.values("guarantee_principal", g)[:, -1]
    payout = r.cumulative("guarantee_claims", g) / balance
    assert abs(balance.mean() - 58.96e8) + 3 * balance.std(ddof=1) / np.sqrt(paths) < 0.12 * 58.96e8, balance.mean()
    low, high = np.percentile(payout, [5, 95])
    assert low < 0.0068 < high, (low, high)
    assert abs(r.values("guarantee_leverage", g)[:, -1].mean() - 10) < 0.5
    np.testing.assert_allclose(r.values("guarantee_fee_rate", g)[:, 1:], 0.0075, rtol=1e-6)
    assert abs(r.values("guarantor_capital", g)[:, -1].mean() / 5e8 - 1) < 0.1
    assert_ledgers(r)


# ------------------------------------------------------------------------------------------------ risk pools
def pool_world(**pool: Any) -> dict[str, Any]:
    """Credit loans of about 100万 covered by one pool funded 4:4:2."""
    data = guarantee_data(**{"banks.bank.product_mix": {"credit": 1.0}})
    del data["guarantors"]
    data["pools"] = {"pool": {"size": "1000万", "contributions": {"government": 0.4, "guarantor": 0.4, "bank": 0.2},
                              "payout_share": 0.6, "max_loan": "200万", **pool}}
    return data


def test_pool_pays_its_share_of_the_net_loss_at_write_off():
    """One covered loan of amount A defaults in month 1 with LGD 0.45: at write-off (month 7) the pool pays
    0.6 × 0.45 A and the bank bears 0.4 × 0.45 A; the government's part of the payout is its 40% contribution."""
    r = simulate(scenario_from_dict(pool_world()), paths=1, seed=1)
    a = r.values("balance")[0, 0]
    payout = r.values("pool_payouts", "pool")[0]
    assert payout[7] == pytest.approx(0.6 * 0.45 * a, abs=0.02) and payout.sum() == payout[7]
    assert r.cumulative("loss_bank")[0] == pytest.approx(0.4 * 0.45 * a, abs=0.02)
    assert r.cumulative("loss_government", "pool")[0] == pytest.approx(0.4 * payout[7], abs=0.02)
    assert_ledgers(r)
    assert_identities(r)


def test_pool_caps_leave_the_rest_to_the_banks():
    """Five covered defaults against an annual cap of 50万: the pool pays 50万 in the year and reports the rest
    unpaid, which the banks write off; a per-loan cap of 10万 limits each request."""
    capped = simulate(scenario_from_dict(with_changes(pool_world(max_payout_per_year="50万"), {"firms.segments.only.firms": 5})), paths=1, seed=1)
    a = capped.values("balance")[0, 0]
    assert capped.cumulative("pool_payouts", "pool")[0] == pytest.approx(5e5, abs=0.01)
    assert capped.cumulative("pool_unpaid", "pool")[0] == pytest.approx(0.6 * 0.45 * a - 5e5, abs=0.1)
    per_loan = simulate(scenario_from_dict(with_changes(pool_world(max_payout_per_loan="10万"), {"firms.segments.only.firms": 5})), paths=1, seed=1)
    assert per_loan.cumulative("pool_payouts", "pool")[0] == pytest.approx(5 * 1e5, abs=0.01)
    for r in (capped, per_loan):
        assert_ledgers(r)
        assert_identities(r)


def test_expected_pool_payouts_match_pd_lgd_share_exposure():
    """Independent defaults, every loan covered: payouts for defaults of the first year (written off 2 months
    later) have mean PD × LGD × payout_share × exposure."""
    n, pd, lgd, share, paths = 5000, 0.04, 0.45, 0.6, 60
    data = with_changes(pool_world(size="5亿"), {"firms.segments.only.firms": n, "firms.segments.only.pd": [pd] * 3, "calendar.months": 16,
                                                 "risk.recovery_lag_months": 1, "risk.write_off_months": 2, "banks.bank.term_mix": {"12": 1.0}})
    r = simulate(scenario_from_dict(data), paths=paths, seed=32)
    exposure = r.values("balance")[:, 0]
    payouts = r.values("pool_payouts", "pool")[:, 1:15].sum(axis=1)
    se = np.sqrt(pd * (1 - pd) * n * (lgd * share * exposure.mean() / n) ** 2 / paths)
    assert abs(payouts.mean() - pd * lgd * share * exposure.mean()) < 4 * se
    assert_ledgers(r)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.sampled_from(["200万", "2000万"]), leverage=st.sampled_from([5.0, 10.0]), share=st.floats(0.4, 0.8),
    per_year=st.sampled_from([None, "100万"]), floor=st.sampled_from([0.0, 1.5e6]), npl=st.sampled_from([1.0, 0.05]),
    first_only=st.booleans(), budget=st.sampled_from([0.0, 5e5]), pd_scale=st.floats(0.5, 4.0),
)
def test_pools_never_go_negative_or_cover_what_they_should_not(size, leverage, share, per_year, floor, npl, first_only, budget, pd_scale):
    """Property over random pools on the default city: no cover while suspended, beyond leverage or for an
    ineligible loan (from the loan-level trace); balance never negative; the audit, ledgers and balance identities
    exact."""
    from helpers import small_default

    pool: dict[str, Any] = {"size": size, "leverage": leverage, "payout_share": share, "suspend_below": floor, "suspend_npl_ratio": npl,
                            "first_time_only": first_only, "annual_budget": budget, "products": ["credit", "collateral"]}
    if per_year:
        pool["max_payout_per_year"] = per_year
    s = small_default(**{"pools": {"pool": pool}, "risk.stress": [{"date": "2021-04", "pd_multiplier": pd_scale}], "calendar.months": 24,
                         "risk.recovery_lag_months": 3, "risk.write_off_months": 6})
    run_task(s, 6, [0], audit=True)
    r = simulate(s, paths=2, seed=6, trace=[0, 1])
    assert_pool_rules(r)
    assert_ledgers(r)
    assert_identities(r)


# ------------------------------------------------------------------------------------------------ subsidies and summaries
def test_interest_subsidy_is_rate_times_eligible_balance_within_the_budget():
    """Every loan subsidised at 1 pp: each month government pays 1%/12 of the performing balance at the start of
    the month until the annual budget is spent, and borrowers pay the rest; fiscal_cost is what government paid."""
    data = with_changes(pool_data(**{"firms.segments.only.pd": [0.0, 0.0, 0.0], "calendar.months": 24}), {"interest_subsidy": {"rate": 0.01, "annual_budget": "50万"}})
    r = simulate(scenario_from_dict(data), paths=2, seed=3)
    balance_at_start = r.values("balance")[:, :-1]
    due = r.values("interest_subsidy")[:, 1:] + r.values("interest_subsidy_unfunded")[:, 1:]
    np.testing.assert_allclose(due, np.round(balance_at_start * 100 * 0.01 / 12) / 100, atol=0.011)
    for year in (slice(1, 13), slice(13, 25)):
        paid = r.values("interest_subsidy")[:, year].sum(axis=1)
        assert (paid <= 5e5 + 1e-6).all() and (paid > 5e5 - 1.0).all()  # the budget binds in both years
    np.testing.assert_allclose(r.cumulative("fiscal_cost"), r.cumulative("interest_subsidy"), rtol=1e-12)


def test_instrument_summaries():
    """instrument_events: an always-insolvent guarantor has probability 1 with the Wilson interval of 1 in n, first
    in the month its claims fall due; fiscal_costs' NPV is the discounted sum; per_fiscal_cost is the ratio of
    paired mean differences."""
    from creditsim import compare, fiscal_costs, instrument_events, per_fiscal_cost
    from creditsim.results.targets import wilson_interval

    s = scenario_from_dict(guarantee_data(firms=5, capital=1e6, reguarantee=FOUR_LAYERS))
    r = simulate(s, paths=6, seed=1)
    events = instrument_events(r).set_index(["entity", "event"])
    insolvent = events.loc[("fund", "insolvent (claims left unpaid)")]
    assert insolvent["probability"] == 1.0 and insolvent["date_median"] == r.dates[3]
    assert (insolvent["ci_low"], insolvent["ci_high"]) == pytest.approx(wilson_interval(6, 6))
    low, high = wilson_interval(6, 6)
    assert 0.55 < low < 0.62 and high == 1.0  # 95% Wilson for 6 of 6
    costs = fiscal_costs(r, discount_rate=0.05)
    flows = r.values("fiscal_cost")[:, 1:]
    initial = 1e6 + 10e8 + 100e8  # the guarantor's and both re-guarantors' starting capital, all government money
    np.testing.assert_allclose(costs["initial"], initial)
    np.testing.assert_allclose(costs["npv"], initial + flows @ (1.05 ** (-np.arange(1, flows.shape[1] + 1) / 12)), rtol=1e-12)
    np.testing.assert_allclose(costs["total"], initial + flows.sum(axis=1), rtol=1e-12)
    base = scenario_from_dict(pool_data(**{"firms.segments.only.firms": 200, "calendar.months": 12}))
    subsidised = scenario_from_dict(with_changes(pool_data(**{"firms.segments.only.firms": 200, "calendar.months": 12}), {"interest_subsidy": {"rate": 0.01}}))
    c = compare(base, subsidised, paths=5, seed=2)
    row = per_fiscal_cost(c, "interest_subsidy")
    assert row["per_cny"] == pytest.approx(1.0, rel=1e-9)  # every extra yuan of fiscal cost is a yuan of interest subsidy
    assert per_fiscal_cost(c, "interest_income")["per_cny"] == 0.0  # the bank earns its full rate either way


def test_a_guarantor_full_to_its_cap_that_pays_claims_ends_above_it_and_is_flagged_with_the_month():
    """A guarantor issues guarantees only within leverage_cap × capital, but claims paid later cut the capital
    behind guarantees already issued: its leverage then ends a month above the cap. instrument_events flags that
    breach apart from reaching the cap, with the first month it happens on each path (recomputed here from the
    recorded leverage)."""
    from creditsim import instrument_events

    data = guarantee_data(firms=60, pd=0.3, capital=1e6, months=12, **{"guarantors.fund.claim_lag_months": 1})
    r = simulate(scenario_from_dict(data), paths=4, seed=3)
    leverage = r.values("guarantee_leverage", "fund")
    above = leverage[:, 1:] > 10 * (1 + 1e-6)
    assert above.any(axis=1).all()
    events = instrument_events(r).set_index(["entity", "event"])
    breach = events.loc[("fund", "leverage above its cap (claims cut its capital)")]
    assert breach["probability"] == 1.0
    first = np.sort(np.argmax(above, axis=1) + 1)
    assert breach["date_median"] == r.dates[int(first[min(3, int(0.5 * 3 + 0.5))])]
    assert events.loc[("fund", "leverage cap reached"), "probability"] == 1.0


def test_costs_and_fees_never_push_capital_below_zero():
    """An insolvent guarantor whose costs exceed its fees, and one paying the highest re-guarantee fee: capital stays at
    or above 0 (fees and costs are paid out of what it has) and still rolls forward exactly."""
    for changes in ({"guarantors.fund.cost_rate": "1%"}, {"reguarantors.provincial.fee_rate": MAX_RATES["fee rate"]}):
        data = with_changes(guarantee_data(firms=10, capital=1e6, reguarantee={"provincial": 1.0} if "reguarantors.provincial.fee_rate" in changes else {}), changes)
        data["firms"]["segments"]["only"]["pd"] = [1.0, 0.0, 0.0]
        r = simulate(scenario_from_dict(data), paths=2, seed=1)
        assert (r.values("guarantor_capital", "fund") >= 0).all()
        assert_ledgers(r)
        assert_identities(r)


def test_opening_cover_is_a_stock_and_compare_pairs_only_shared_entities():
    """Row 0 holds the opening guarantee liability with zero flows; comparing a scenario with a guarantor against
    one with a pool pairs only what both have."""
    from creditsim import compare

    with_guarantor = scenario_from_dict(guarantee_data(firms=20, pd=0.1))
    r = simulate(with_guarantor, paths=1, seed=1)
    assert r.values("guarantee_outstanding", "fund")[0, 0] > 0 and r.values("guarantee_issued", "fund")[0, 0] == 0
    with_pool = scenario_from_dict(with_changes(pool_world(), {"firms.segments.only.firms": 20, "firms.segments.only.pd": [0.1] * 3}))
    table = compare(with_guarantor, with_pool, paths=2, seed=1).differences()
    assert "fund" not in set(table["bank"]) and "pool" not in set(table["bank"]) and "all" in set(table["bank"])


# ------------------------------------------------------------------------------------------------ banks lend against cover
def test_cover_widens_approval_to_pd_times_uncovered_share():
    """With a guarantee covering c of the loss (room never binds), a bank approves a firm whose believed PD b has
    b (1 - c) <= its appetite A: the campaign's approvals follow reach × need × sum_g w_g Phi((logit(A / (1 - c))
    - logit(p_g)) / sd), and those with A < b are the cover-dependent ones."""
    from scipy.special import logit, ndtr

    reach, need, sd, appetite, c, months, paths = 2000.0, 0.3, 0.8, 0.02, 0.5, 6, 150
    pd_ = np.array([0.01, 0.02, 0.05])
    share = np.array([0.3, 0.4, 0.3])
    data = pool_data(**{
        "calendar.months": months, "firms.segments.only.firms": 2_000_000, "firms.segments.only.unbanked_share": 1.0,
        "banks.bank.max_pd": appetite, "risk.signal_sd": sd, "banks.bank.product_mix": {"credit": 1.0},
        "campaign": {"channels": {"visits": {"reach_per_month": reach, "need": need}}},
        "guarantors": {"fund": {"capital": "100亿", "coverage": c, "fee_rate": "0.5%", "single_borrower_share": 1.0, "max_line": "1万亿"}},
    })
    r = simulate(scenario_from_dict(data), paths=paths, seed=41)
    hazard = 1 - (1 - pd_) ** (1 / 12)
    with_cover = ndtr((logit(appetite / (1 - c)) - logit(pd_)) / sd)
    alone = ndtr((logit(appetite) - logit(pd_)) / sd)
    expected_all = expected_dependent = 0.0
    for t in range(1, months + 1):
        w = share * (1 - hazard) ** t
        w /= w.sum()
        expected_all += reach * need * float(w @ with_cover)
        expected_dependent += reach * need * float(w @ (with_cover - alone))
    approvals, dependent = r.cumulative("approvals"), r.cumulative("cover_dependent_approvals")
    assert abs(approvals.mean() - expected_all) < 4 * approvals.std(ddof=1) / np.sqrt(paths)
    assert abs(dependent.mean() - expected_dependent) < 4 * dependent.std(ddof=1) / np.sqrt(paths)
    assert r.cumulative("cover_denied").sum() == 0
    # a cover-dependent firm's loans are guaranteed although the bank makes only credit loans on its own
    np.testing.assert_array_less(0, r.cumulative("guaranteed_disbursed"))


def test_cover_adds_exactly_the_cover_dependent_borrowers_in_the_first_month():
    """Common random numbers: in month 1 both runs see the same applicants and signals, so the guarantee adds
    exactly its cover-dependent approvals."""
    from creditsim import compare

    base = pool_data(**{"calendar.months": 2, "firms.segments.only.firms": 200_000, "firms.segments.only.unbanked_share": 0.9,
                        "firms.segments.only.applications_per_month": 800, "banks.bank.max_pd": 0.015, "risk.signal_sd": 1.0,
                        "banks.bank.product_mix": {"credit": 1.0}})
    covered = with_changes(pool_data(**{"calendar.months": 2, "firms.segments.only.firms": 200_000, "firms.segments.only.unbanked_share": 0.9,
                                        "firms.segments.only.applications_per_month": 800, "banks.bank.max_pd": 0.015, "risk.signal_sd": 1.0,
                                        "banks.bank.product_mix": {"credit": 1.0}}),
                           {"guarantors": {"fund": {"capital": "100亿", "coverage": 0.8, "fee_rate": "0.5%", "single_borrower_share": 1.0}}})
    c = compare(scenario_from_dict(base), scenario_from_dict(covered), paths=3, seed=42)
    extra = c.variant.values("approvals")[:, 1] - c.base.values("approvals")[:, 1]
    np.testing.assert_array_equal(extra, c.variant.values("cover_dependent_approvals")[:, 1])
    assert (extra > 0).all()


def test_no_cover_dependent_lending_while_the_pool_is_suspended():
    """The only cover is a pool for 首贷户 (so the opening book does not fill it) that suspends above a covered NPL
    ratio of 2%: in a month that starts with the pool suspended, no applicant is approved on its cover (and those who
    would be are denied); in the other months some are."""
    data = pool_data(**{
        "calendar.months": 30, "firms.segments.only.firms": 100_000, "firms.segments.only.unbanked_share": 0.8,
        "firms.segments.only.applications_per_month": 600, "firms.segments.only.pd": [0.02, 0.05, 0.1],
        "firms.segments.only.rho": 0.2, "banks.bank.max_pd": 0.04, "risk.signal_sd": 0.8, "banks.bank.product_mix": {"credit": 1.0},
        "risk.recovery_lag_months": 3, "risk.write_off_months": 6,
        "pools": {"p": {"size": "5亿", "payout_share": 0.6, "max_loan": "1000万", "suspend_npl_ratio": 0.02, "first_time_only": True}},
    })
    r = simulate(scenario_from_dict(data), paths=4, seed=43)
    suspended_at_start = r.values("pool_suspended", "p")[:, :-1] > 0
    dependent = r.values("cover_dependent_approvals")[:, 1:]
    assert suspended_at_start.any() and (~suspended_at_start).any()
    assert (dependent[suspended_at_start] == 0).all()
    assert dependent[~suspended_at_start].sum() > 0
    assert_ledgers(r)
    assert_identities(r)


@pytest.mark.parametrize("subsidy", [0.0, 0.005])
def test_guarantee_take_up_follows_the_all_in_price(subsidy):
    """Every new loan priced alike (rate 5%, fee 1%, less a subsidy): borrowers take the guarantee with probability
    exp(−k (price − reference)); the declined share of offered guarantees is binomial around 1 − that."""
    k, reference, paths = 50.0, 0.04, 30
    data = guarantee_data(firms=200_000, pd=0.0, months=6, **{
        "firms.segments.only.unbanked_share": 1.0, "firms.segments.only.applications_per_month": 500,
        "guarantors.fund.fee_rate": "1%", "guarantors.fund.fee_subsidy": subsidy, "guarantors.fund.capital": "100亿",
        "guarantors.fund.take_up_elasticity": k, "guarantors.fund.reference_price": reference,
    })
    r = simulate(scenario_from_dict(data), paths=paths, seed=44)
    declined = r.cumulative("guarantee_declined")
    amounts = r.cumulative("guaranteed_disbursed")
    taken = amounts / (r.values("balance")[:, -1] / np.maximum(r.values("loans")[:, -1], 1))  # loans of ≈ 100万 each
    offered = declined + taken
    p_decline = 1 - np.exp(-k * (0.05 + 0.01 - subsidy - reference))
    share = declined.sum() / offered.sum()
    assert abs(share - p_decline) < 4 * np.sqrt(p_decline * (1 - p_decline) / offered.sum()) + 0.002, (share, p_decline)
    assert_ledgers(r)


# ------------------------------------------------------------------------------------------------ further rules
@pytest.mark.parametrize("fallback", ["collateral", "credit"])
def test_a_loan_the_guarantor_has_no_room_for_is_made_as_the_banks_fallback_product(fallback):
    """A guarantor without room (capital 1 CNY): every new loan meant to be guaranteed is made as the bank's
    ``without_guarantee`` product, uncovered, and counted in ``guarantee_unavailable``; the opening book's
    guaranteed loans, existing contracts, stay guaranteed (by a party the scenario does not model)."""
    data = guarantee_data(firms=3000, pd=0.0, capital=1.0, months=12, **{
        "firms.segments.only.unbanked_share": 0.5, "firms.segments.only.applications_per_month": 40,
        "banks.bank.term_mix": {"12": 1.0}, "banks.bank.without_guarantee": fallback,
    })
    r = simulate(scenario_from_dict(data), paths=2, seed=46, trace=[0, 1])
    trace = r.trace
    new = trace["start"] >= "2021-01"
    assert new.sum() > 500 and (~new).sum() > 500
    assert (trace.loc[~new, "product"] == "guaranteed").all() and (trace.loc[new, "product"] == fallback).all()
    assert (trace["cover"] == "").all()
    np.testing.assert_array_equal(r.cumulative("guarantee_unavailable"), new.groupby(trace["path"]).sum().to_numpy())
    credit = r.cumulative("credit_loan_disbursed")
    np.testing.assert_array_equal(credit, r.cumulative("disbursed") if fallback == "credit" else 0.0)
    assert (r.cumulative("guaranteed_disbursed") == 0).all()
    assert_ledgers(r)


def test_unequal_reguarantee_shares_reach_the_right_reguarantors():
    """Shares 0.3 (provincial) and 0.1 (national fund) of the claim, coverage 0.8: losses 0.2 / 0.48 / 0.24 /
    0.08 of the net loss for bank / guarantor / provincial / national fund, each re-guarantor on its own."""
    r = simulate(scenario_from_dict(guarantee_data(reguarantee={"provincial": 0.3, "national_fund": 0.1})), paths=1, seed=1)
    a = r.values("balance")[0, 0]
    loss = 0.45 * a
    for party, entity, share in (("loss_bank", "all", 0.2), ("loss_guarantor", "fund", 0.48),
                                 ("loss_reguarantor", "provincial", 0.24), ("loss_reguarantor", "national_fund", 0.08)):
        assert r.cumulative(party, entity)[0] == pytest.approx(share * loss, abs=0.03), (party, entity)
    assert r.cumulative("reguarantee_claims_paid", "provincial")[0] == pytest.approx(0.3 * 0.8 * a, abs=0.03)
    assert_ledgers(r)


@pytest.mark.parametrize("capital", ["10万", "1万"])
def test_insolvent_reguarantor_leaves_its_share_to_the_guarantor_until_recoveries_set_it_off(capital):
    """A re-guarantor with little capital owes 0.25 of a claim of 0.8 A (A about 100万, LGD 0.45): it pays what it
    has (month 3), the guarantor pays the bank in full and the unpaid reimbursement U is the re-guarantor's debt.
    Its share of the recovery, 0.25 × 0.8 × 0.55 A (month 5), is set off against U: the guarantor keeps
    min(U, that share) and the re-guarantor receives the rest. With 10万 U is about 6万 and the recovery covers it,
    so each party bears its contractual loss (re-guarantor 0.2 × 0.45 A, guarantor 0.6 × 0.45 A); with 1万 U is
    about 15万, more than the recovery's 8.8万, so the re-guarantor receives nothing and bears what it paid, and the
    guarantor the rest. No party's loss is negative."""
    data = with_changes(guarantee_data(reguarantee={"provincial": 0.25}), {"reguarantors.provincial.capital": capital})
    r = simulate(scenario_from_dict(data), paths=1, seed=1)
    a = r.values("balance")[0, 0]
    paid = r.cumulative("reguarantee_claims_paid", "provincial")[0]
    unpaid = r.cumulative("reguarantee_unpaid", "provincial")[0]
    assert paid + unpaid == pytest.approx(0.25 * 0.8 * a, abs=0.03) and 0 < paid <= float(capital[:-1]) * 1e4
    assert r.cumulative("guarantee_unpaid_claims", "fund")[0] == 0
    share = 0.25 * 0.8 * 0.55 * a
    set_off = min(unpaid, share)
    assert r.cumulative("reguarantee_set_off", "provincial")[0] == pytest.approx(set_off, abs=0.05)
    assert r.cumulative("reguarantor_recoveries", "provincial")[0] == pytest.approx(share - set_off, abs=0.05)
    assert r.cumulative("guarantee_recoveries", "fund")[0] == pytest.approx(0.75 * 0.8 * 0.55 * a + set_off, abs=0.05)
    assert r.cumulative("loss_guarantor", "fund")[0] == pytest.approx(0.75 * 0.8 * 0.45 * a + unpaid - set_off, abs=0.05)
    assert r.cumulative("loss_reguarantor", "provincial")[0] == pytest.approx(paid - (share - set_off), abs=0.05)
    assert r.cumulative("loss_reguarantor", "provincial")[0] >= 0
    if capital == "10万":
        assert r.cumulative("loss_reguarantor", "provincial")[0] == pytest.approx(0.2 * 0.45 * a, abs=0.05)
    assert_ledgers(r)


def test_injections_and_top_ups_restore_capital():
    """A scheduled injection adds its amount in its month; a top-up brings capital that ended below its floor
    back to its level; both are fiscal costs."""
    data = with_changes(guarantee_data(firms=5, capital=1e6, reguarantee=FOUR_LAYERS, months=12), {
        "guarantors.fund.injections": [{"date": "2021-09", "amount": "50万"}],
        "guarantors.fund.top_up": {"below": "20万", "to": "80万"},
    })
    r = simulate(scenario_from_dict(data), paths=1, seed=1)
    injected = r.values("capital_injections", "fund")[0]
    capital = r.values("guarantor_capital", "fund")[0]
    september = r.dates.index("2021-09")
    topped = np.flatnonzero(injected[1:] > 0) + 1
    assert injected[september] >= 5e5
    first = topped[0]  # the claims (month 3) exhaust the capital: the top-up restores it at once
    assert first == 3 and capital[first] == pytest.approx(8e5, abs=0.01)
    np.testing.assert_allclose(r.cumulative("fiscal_cost"), r.cumulative("capital_injections", "fund") + r.cumulative("guarantee_fee_subsidy", "fund"))
    assert_ledgers(r)


def test_a_full_guarantor_denies_cover_dependent_applicants():
    """A guarantor whose small capital allows a few guarantees: once its room is used, applicants who need its
    cover are denied, and its liability never passes leverage × the capital it had when it issued them. (Within a
    month loans are made before claims are paid, so a month ends with liability at most the larger of last
    month's and leverage × last month's capital; claims paid later can bring capital below a tenth of the
    liability, which stops new business but is not a breach of issuance.)"""
    data = pool_data(**{
        "calendar.months": 6, "firms.segments.only.firms": 200_000, "firms.segments.only.unbanked_share": 1.0,
        "firms.segments.only.applications_per_month": 800, "banks.bank.max_pd": 0.015, "risk.signal_sd": 1.0,
        "banks.bank.product_mix": {"credit": 1.0},
        "guarantors": {"fund": {"capital": "200万", "coverage": 0.8, "fee_rate": "0.5%", "single_borrower_share": 1.0, "max_line": "1万亿"}},
    })
    r = simulate(scenario_from_dict(data), paths=3, seed=45)
    assert (r.cumulative("cover_dependent_approvals") > 0).all() and (r.cumulative("cover_denied") > 0).all()
    liability, capital = r.values("guarantee_outstanding", "fund"), r.values("guarantor_capital", "fund")
    assert (liability[:, 1:] <= np.maximum(liability[:, :-1], 10 * capital[:, :-1]) + 1e-6).all()
    assert_ledgers(r)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=40), st.integers(-10, 20_000))
def test_pool_capacity_takes_each_loan_that_fits_in_the_room_left(sizes, room):
    """Capacity is allocated application by application: the pool's assign, loan after loan, against the plain loop
    over the loans (room in fen: leverage 1 × the balance)."""
    from creditsim.model.instruments import pools
    from creditsim.model.params import parameters
    from creditsim.model.state import capacities, new_state
    from creditsim.model.structs import compiled

    data = pool_world(size=1.0, leverage=1.0, max_loan="1万亿")
    params = parameters(scenario_from_dict(data))
    state = new_state(params, capacities(params))
    state.pools.balance[0] = float(room)
    p, s = compiled(params), compiled(state)
    left, expected = room, []
    for size in sizes:
        expected.append(size <= left)
        left -= size if size <= left else 0
    got = [pools.assign(p, s, 0, 0, 0, 0, float(size), True) for size in sizes]
    assert got == expected
    assert state.pools.covered[0] == sum(size for size, taken in zip(sizes, expected, strict=True) if taken)


def test_a_loan_that_does_not_fit_leaves_room_for_smaller_ones():
    """Room for 1000万 of liability: 12 lines of about 120万 (liability about 96万 each) reach the guarantor before 30
    lines of about 10万 (8万 each). Ten large ones fit, the next two do not, and the small ones fill what is left,
    leaving less room than one more small loan needs: the opening book's cover (from the loan-level trace) is exactly
    first fit re-done by hand on its loans, in order."""
    def segment(firms: int, line: float) -> dict[str, Any]:
        return {"firms": firms, "unbanked_share": 0.0, "pd": [0.01], "grade_share": [1.0], "rho": 0.1, "line_median": line, "line_p90": line * 1.001}

    data = {
        "name": "first-fit", "calendar": {"start": "2021-01", "months": 1},
        "firms": {"segments": {"big": segment(12, 1.2e6), "tiny": segment(30, 1e5)}},
        "banks": {"bank": {"share": 1.0, "all_loans": "1亿", "non_inclusive_growth": 0.0, "max_pd": 1.0, "rate": 0.05,
                           "term_mix": {"12": 1.0}, "product_mix": {"guaranteed": 1.0}}},
        "demand": {"reborrow_prob": 1.0},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.5, "collateral": 0.5}},
        "guarantors": {"fund": {"capital": "100万", "coverage": 0.8, "fee_rate": 0.0, "leverage_cap": 10, "single_borrower_share": 1.0}},
    }
    r = simulate(scenario_from_dict(data), paths=1, seed=0, trace=[0])
    opening = r.trace[r.trace["start"] <= r.dates[0]].sort_values("firm")  # the opening book reaches the guarantor firm by firm
    liability = np.round(0.8 * opening["amount"].to_numpy() * 100) / 100
    room, expected = 10 * 1e6, []
    for owed in liability:  # first fit, by hand
        expected.append(owed <= room)
        room -= owed if owed <= room else 0.0
    covered = (opening["cover"] == "fund").to_numpy()
    np.testing.assert_array_equal(covered, expected)
    big = (opening["segment"] == "big").to_numpy()
    assert covered[big].sum() == 10 and not covered[big][10:].any() and covered[~big].sum() >= 4
    assert room == pytest.approx(10 * 1e6 - r.values("guarantee_outstanding", "fund")[0, 0], abs=0.01)
    assert 0 <= room < liability[~big][~covered[~big]].min()  # the small ones left out no longer fit
