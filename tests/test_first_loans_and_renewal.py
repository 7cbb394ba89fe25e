"""首贷户 (first-time borrowers) and 无还本续贷 (renewal without principal repayment) against independent truth:
the documented eligibility rules, closed forms for liquidity defaults and the campaign funnel, evergreening
as a shift of the same firms' defaults, thin-file beliefs, and common random numbers in compare()."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import logit, ndtr

from creditsim import compare, simulate
from creditsim.model.engine import run_task
from creditsim.model.renewal import eligible
from creditsim.scenario import PRODUCTS, scenario_from_dict
from creditsim.scenario.units import month_index
from helpers import assert_identities, default_data, small_default, with_changes


def pool_data(**changes: Any) -> dict[str, Any]:
    """One segment with three grades, one bank, no entry or exit: a small world for closed forms."""
    data: dict[str, Any] = {
        "name": "pool",
        "calendar": {"start": "2021-01", "months": 12},
        "firms": {
            "inclusive_line_limit": "1万亿",
            "segments": {
                "only": {
                    "firms": 10_000, "unbanked_share": 0.0, "pd": [0.01, 0.02, 0.05], "grade_share": [0.3, 0.4, 0.3],
                    "rho": 0.0, "line_median": "100万", "line_p90": "300万",
                }
            },
        },
        "banks": {
            "bank": {
                "share": 1.0, "all_loans": "1万亿", "non_inclusive_growth": 0.0, "max_pd": 1.0, "rate": 0.05,
                "term_mix": {"12": 1.0}, "product_mix": {"credit": 0.5, "collateral": 0.5},
            }
        },
        "demand": {"reborrow_prob": 1.0},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.4, "collateral": 0.3}, "recovery_lag_months": 6, "write_off_months": 12},
    }
    return with_changes(data, changes)


# ------------------------------------------------------------------------------------------------ renewal rules
def _renewals_checked_against_the_rules(r, s) -> int:
    """Every loan the trace says was renewed, checked against the scenario's rules re-implemented from the trace
    alone: the calendar month of its maturity, its segment, product, term (end − start), consecutive renewals, the
    months since its firm's first loan at the bank (the start of the firm's spell as a borrower: facilities, the
    loans made together, follow one another while one of their loans is renewed or re-borrowed; the opening book's
    relationships go back 12 months per known repaid loan) and the PD its bank believed (recovered from the loan's
    rate: the bank's rate + rate_per_pd × believed PD). Returns how many were checked."""
    rules = s.renewal
    trace = r.trace
    month = {label: pd.Period(label, "M").ordinal for label in set(trace["start"]) | set(trace["end"])}
    trace = trace.assign(start_m=trace["start"].map(month), end_m=trace["end"].map(month),
                         going_on=trace["how"].isin(["renewed", "reborrowed"]))
    facilities = (trace.groupby(["path", "firm", "start_m"], observed=True).agg(end_m=("end_m", "first"), going_on=("going_on", "any"))
                  .reset_index().sort_values(["path", "firm", "start_m"]))
    same_firm = (facilities[["path", "firm"]].shift() == facilities[["path", "firm"]]).all(axis=1)
    follows = same_firm & facilities["going_on"].shift(fill_value=False) & (facilities["end_m"].shift() == facilities["start_m"])
    spell = (~follows).cumsum()
    opening = pd.Period(r.dates[0], "M").ordinal
    first = facilities.groupby(spell)["start_m"].transform("min")
    facilities["spell_start"] = np.where(first > opening, first, first - 12 * s.risk.known_history_loans)
    renewed = trace[trace["how"] == "renewed"].merge(facilities[["path", "firm", "start_m", "spell_start"]], on=["path", "firm", "start_m"])
    last = {name: pd.Period(rules.until_by_segment.get(name) or rules.until or "2200-12", "M").ordinal for name in s.segment_names}
    believed = (renewed["rate"] - renewed["bank"].map({n: b.rate for n, b in s.banks.items()}).astype(float)) / \
        renewed["bank"].map({n: b.rate_per_pd for n, b in s.banks.items()}).astype(float)
    assert rules.enabled
    assert (renewed["end_m"] <= renewed["segment"].map(last).astype(int)).all()
    assert rules.segments is None or renewed["segment"].isin(rules.segments).all()
    assert renewed["product"].isin(rules.products).all()
    assert (renewed["end_m"] - renewed["start_m"] <= rules.max_term_months).all()
    assert (renewed["renewals"] < rules.max_consecutive).all()
    assert (renewed["end_m"] - renewed["spell_start"] >= rules.min_months_on_book).all()
    assert (believed <= rules.max_pd + 1e-9).all()
    return len(renewed)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    products=st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3, unique=True),
    max_term=st.sampled_from([6, 12, 24]),
    min_months=st.integers(0, 30),
    max_consecutive=st.integers(1, 3),
    max_pd=st.floats(0.005, 0.2),
    segments=st.lists(st.sampled_from(["micro", "small", "individual"]), min_size=1, max_size=3, unique=True),
    until=st.sampled_from([None, "2021-06", "2022-03"]),
    small_until=st.sampled_from([None, "2021-03"]),
    uptake=st.floats(0.2, 1.0),
)
def test_no_renewal_breaks_an_eligibility_rule(products, max_term, min_months, max_consecutive, max_pd, segments, until, small_until, uptake):
    """Property over random rules: every loan renewed (from the loan-level trace) satisfies every rule, the renewals
    counted in the metrics are exactly the renewed loans of the trace, and the running totals pass the audit."""
    rules: dict[str, Any] = {"enabled": True, "products": products, "max_term_months": max_term, "min_months_on_book": min_months,
                             "max_consecutive": max_consecutive, "max_pd": max_pd, "segments": segments}
    if until:
        rules["until"] = until
    if small_until:
        rules["until_by_segment"] = {"small": small_until}
    overrides = {"renewal": rules, "risk.signal_sd": 0.7, "liquidity.stress_prob": 0.05, "calendar.months": 18,
                 "firms.inclusive_line_limit": "600万", "firms.segments.small.line_median": "200万", "firms.segments.small.line_p90": "500万",
                 **{f"banks.{b}.renewal_uptake": uptake for b in ("big_bank", "city_bank", "rural_bank")}}
    s = small_default(**overrides)
    r = simulate(s, paths=2, seed=3, trace=[0, 1])
    checked = _renewals_checked_against_the_rules(r, s)
    renewed = r.trace.query("how == 'renewed'").groupby("path").size().reindex([0, 1], fill_value=0).to_numpy()
    np.testing.assert_array_equal(renewed, r.cumulative("renewals"))
    assert checked == renewed.sum()
    hows = r.trace.groupby(["path", "firm", "end"])["how"].agg(set)
    assert not any({"graduated", "renewed"} <= h for h in hows)  # a graduating firm repays everything instead
    assert_identities(r)
    run_task(s, 3, [0], audit=True)


def test_eligibility_kernel_applies_each_rule():
    """renewal.eligible on hand-made loans: each loan fails exactly the rule it was built to fail. The scheme allows
    believed PDs up to 10%; a renewal also meets the criteria of a new loan (银监发〔2014〕36号), so the PD the bank
    bears, net of its cover's share, must be within its appetite (big_bank 5%, rural_bank 12%)."""
    s = small_default(**{"renewal": {"enabled": True, "products": ["credit"], "max_term_months": 12, "min_months_on_book": 6,
                                     "max_consecutive": 2, "max_pd": 0.10, "segments": ["micro", "small"], "until": "2023-12",
                                     "until_by_segment": {"small": "2021-06"}}})
    micro, small, individual = 0, 1, 2
    credit, collateral = PRODUCTS.index("credit"), PRODUCTS.index("collateral")
    july_2021 = month_index("2021-07")
    big, rural = s.bank_names.index("big_bank"), s.bank_names.index("rural_bank")
    cases = {  # bank, segment, product, term, renewals, months on book, believed PD, cover's share -> eligible
        "all rules met": (big, micro, credit, 12, 1, 6, 0.05, 0.0, True),
        "segment not listed": (big, individual, credit, 12, 0, 24, 0.01, 0.0, False),
        "segment past its own last month": (big, small, credit, 12, 0, 24, 0.01, 0.0, False),
        "product": (big, micro, collateral, 12, 0, 24, 0.01, 0.0, False),
        "term": (big, micro, credit, 24, 0, 24, 0.01, 0.0, False),
        "consecutive renewals": (big, micro, credit, 12, 2, 24, 0.01, 0.0, False),
        "months on book": (big, micro, credit, 12, 0, 5, 0.01, 0.0, False),
        "believed PD above the scheme's": (rural, micro, credit, 12, 0, 24, 0.1001, 0.0, False),
        "above the bank's appetite": (big, micro, credit, 12, 0, 24, 0.06, 0.0, False),
        "within it net of cover": (big, micro, credit, 12, 0, 24, 0.06, 0.5, True),
        "within another bank's": (rural, micro, credit, 12, 0, 24, 0.06, 0.0, True),
    }
    columns = [np.array(c) for c in zip(*cases.values(), strict=True)]
    got = eligible(s, july_2021, *columns[:8])
    np.testing.assert_array_equal(got, columns[8].astype(bool), err_msg=str(list(cases)))
    assert not eligible(s, month_index("2024-01"), *[c[:1] for c in columns[:8]]).any()  # after renewal.until


# ------------------------------------------------------------------------------------------------ liquidity
def test_liquidity_defaults_match_the_closed_form_without_renewal():
    """No solvency risk, one maturity per firm in the year: liquidity defaults ~ Binomial(N, stress (1 - bridge))."""
    n, stress, bridge, paths = 10_000, 0.06, 0.4, 200
    s = scenario_from_dict(pool_data(**{"firms.segments.only.pd": [0.0, 0.0, 0.0], "liquidity": {"stress_prob": stress, "bridge_share": bridge}}))
    r = simulate(s, paths=paths, seed=5)
    count = r.cumulative("liquidity_defaults")
    p = stress * (1 - bridge)
    assert abs(count.mean() - n * p) < 4 * np.sqrt(n * p * (1 - p) / paths)
    assert abs(count.var(ddof=1) / (n * p * (1 - p)) - 1) < 4 * np.sqrt(2 / (paths - 1))
    np.testing.assert_array_equal(r.cumulative("defaults"), count)
    # bridge money costs bridge_cost × principal bridged: positive exactly when someone bridged
    assert (r.cumulative("bridge_cost") > 0).all()


def test_renewal_of_every_stressed_firm_removes_liquidity_defaults():
    """Every maturing loan eligible and every bank renewing: a stressed firm is renewed whether or not it meant
    to borrow again, so nobody defaults for lack of liquidity and nobody needs bridge money; firms that go on
    all renew, and only firms that leave unstressed repay."""
    s = scenario_from_dict(pool_data(**{
        "demand.reborrow_prob": 0.6,
        "liquidity": {"stress_prob": 0.3, "bridge_share": 0.2},
        "renewal": {"enabled": True, "max_consecutive": 100},
        "banks.bank.renewal_uptake": 1.0,
    }))
    r = simulate(s, paths=20, seed=6)
    assert r.cumulative("liquidity_defaults").sum() == 0
    assert r.cumulative("bridge_cost").sum() == 0
    assert (r.cumulative("renewals") > 0).all()
    off = simulate(scenario_from_dict(pool_data(**{"demand.reborrow_prob": 0.6, "liquidity": {"stress_prob": 0.3, "bridge_share": 0.2}})), paths=20, seed=6)
    assert (off.cumulative("liquidity_defaults") > 0).all()  # the same world without renewal has them


# ------------------------------------------------------------------------------------------------ evergreening
def _default_months(r) -> dict[tuple[int, int], str]:
    """The month each (path, firm) defaulted, from the trace (a firm's loans default together)."""
    defaults = r.trace.query("how in ['defaulted', 'liquidity_default']")
    months = defaults.groupby(["path", "firm"])["end"].agg(["min", "max"])
    assert (months["min"] == months["max"]).all()
    return months["min"].to_dict()


@pytest.mark.parametrize("classification", ["performing", "restructured"])
def test_evergreening_delays_the_same_firms_defaults(classification):
    """Renewing distressed firms: the same firms default (a firm is the same firm in both runs, with the same
    default clock), none earlier and some later; with the renewal reported as performing the reported NPL ratio is
    below the recognised one, as restructured it is equal."""
    months, term = 60, 12
    base = pool_data(**{"calendar.months": months, "firms.segments.only.pd": [0.03, 0.06, 0.12], "firms.segments.only.rho": 0.1})
    renewing = pool_data(**{
        "calendar.months": months, "firms.segments.only.pd": [0.03, 0.06, 0.12], "firms.segments.only.rho": 0.1,
        "renewal": {"enabled": True, "max_consecutive": 1, "distressed_classification": classification},
        "banks.bank.renewal_uptake": 1.0,
    })
    paths = [0, 1, 2]
    off = _default_months(simulate(scenario_from_dict(base), paths=paths, seed=9, trace=paths))
    r = simulate(scenario_from_dict(renewing), paths=paths, seed=9, trace=paths)
    on = _default_months(r)
    assert set(on) <= set(off)  # nobody defaults only because of renewal
    assert all(on[f] >= off[f] for f in on)  # nobody defaults earlier
    settled = {f for f, t in off.items() if pd.Period(t, "M") <= pd.Period(r.dates[-1], "M") - 2 * term}  # delays of at most two terms resolve in the horizon
    assert settled <= set(on)
    assert any(on[f] > off[f] for f in on)  # and some later
    reported, recognised = r.values("npl_ratio")[:, 1:], r.values("npl_ratio_recognised")[:, 1:]
    assert (r.values("restructured_balance") > 0).any()
    if classification == "performing":
        assert (reported <= recognised).all() and (reported < recognised).any()
    else:
        np.testing.assert_allclose(reported, recognised)


# ------------------------------------------------------------------------------------------------ campaign
def test_campaign_funnel_matches_reach_times_need_times_approval():
    """Expected first-time borrowers per month = reach × need × P(approved), where a firm of grade g with PD p_g
    is approved when expit(logit(p_g) + sd Z) <= max_pd: P = sum_g w_g(t) Phi((logit(max_pd) - logit(p_g)) / sd),
    w_g(t) the grade mix of the never-borrowed pool after t months of independent failures."""
    reach, need, sd, max_pd, months, paths = 2000.0, 0.3, 0.8, 0.03, 12, 300
    pd_ = np.array([0.01, 0.02, 0.05])
    share = np.array([0.3, 0.4, 0.3])
    s = scenario_from_dict(pool_data(**{
        "calendar.months": months,
        "firms.segments.only.firms": 2_000_000, "firms.segments.only.unbanked_share": 1.0,
        "banks.bank.max_pd": max_pd, "risk.signal_sd": sd,
        "campaign": {"channels": {"visits": {"reach_per_month": reach, "need": need}}},
    }))
    r = simulate(s, paths=paths, seed=12)
    monthly_hazard = 1 - (1 - pd_) ** (1 / 12)
    approve = ndtr((logit(max_pd) - logit(pd_)) / sd)
    expected = 0.0
    for t in range(1, months + 1):
        w = share * (1 - monthly_hazard) ** t
        expected += reach * need * float((w / w.sum()) @ approve)
    total = r.cumulative("first_time_borrowers")
    assert abs(total.mean() - expected) < 4 * total.std(ddof=1) / np.sqrt(paths), (total.mean(), expected)
    np.testing.assert_array_equal(total, r.cumulative("campaign_approvals"))
    np.testing.assert_array_equal(r.values("first_time_share")[:, 1:], 1.0)
    assert abs(r.cumulative("campaign_reached").mean() - reach * months) < 4 * np.sqrt(reach * months / paths)


def test_thin_files_default_at_their_true_rate_not_the_believed_one():
    """Approval on a noisy signal selects firms whose believed PD is below their true PD: over paths the sum of
    true PDs of the 首贷户 exceeds the believed sum, and their realised defaults over the next year match the
    true sum (rho = 0, terms longer than the year, so every first-time borrower is exposed all year)."""
    paths = 200
    s = scenario_from_dict(pool_data(**{
        "calendar.months": 13, "calendar.start": "2021-01",
        "firms.segments.only.firms": 1_000_000, "firms.segments.only.unbanked_share": 1.0,
        "firms.segments.only.pd": [0.02, 0.05, 0.15], "banks.bank.max_pd": 0.04, "banks.bank.term_mix": {"24": 1.0},
        "risk.signal_sd": 1.2,
        "campaign": {"end": "2021-01", "channels": {"visits": {"reach_per_month": 5000, "need": 1.0}}},
    }))
    r = simulate(s, paths=paths, seed=14)
    believed = r.cumulative("first_time_expected_defaults_believed")
    true = r.cumulative("first_time_expected_defaults_true")
    realised = r.values("first_time_defaults")[:, 2:14].sum(axis=1)  # the 12 months after the month-1 approvals
    se_true = np.sqrt(true.mean() / paths)
    assert abs(realised.mean() - true.mean()) < 4 * np.sqrt(realised.var(ddof=1) / paths + se_true**2)
    assert true.mean() - believed.mean() > 10 * se_true


# ------------------------------------------------------------------------------------------------ compare
def test_switching_renewal_off_changes_only_renewal():
    """Renewal rules evaluated and uptake drawn for every maturing firm, but no bank taking it up (uptake 0), or
    the rules switched off: every metric is bit-for-bit that of the scenario without renewal, so deciding about
    renewal moves no other random draw; switched on, the same opening firms carry the same default months."""
    data = default_data()
    data["calendar"]["months"] = 12
    del data["renewal"]
    no_uptake = {f"banks.{b}.renewal_uptake": 0.0 for b in data["banks"]}
    plain = scenario_from_dict(data)
    base = simulate(plain, paths=2, seed=4)
    for variant in (scenario_from_dict(data, {"renewal": {"enabled": False}}), scenario_from_dict(data, {"renewal": {"enabled": True}, **no_uptake})):
        r = simulate(variant, paths=2, seed=4)
        np.testing.assert_array_equal(r.bank_metrics, base.bank_metrics)
        np.testing.assert_array_equal(r.population_metrics, base.population_metrics)
    on = scenario_from_dict(data, {"renewal": {"enabled": True}})
    with_renewal = simulate(on, paths=2, seed=4, trace=[0, 1])
    assert with_renewal.cumulative("renewals")[0] > 0
    # switched on, a firm that never renewed defaults in the same month as without renewal: its default clock is its own
    without = _default_months(simulate(plain, paths=2, seed=4, trace=[0, 1]))
    renewed = set(map(tuple, with_renewal.trace.query("how == 'renewed'")[["path", "firm"]].to_numpy().tolist()))
    same = {k: v for k, v in _default_months(with_renewal).items() if k not in renewed}
    assert same and all(without.get(k) == v for k, v in same.items())


def test_compare_pairs_paths_and_reports_confidence_intervals():
    """compare(): B − A per path with its standard error; identical scenarios differ by exactly 0; common random
    numbers make the paired standard error far smaller than that of independent runs."""
    a = small_default(**{"liquidity.stress_prob": 0.05, "calendar.months": 18})
    b = small_default(**{"liquidity.stress_prob": 0.05, "calendar.months": 18, "renewal": {"enabled": True},
                         "banks.city_bank.renewal_uptake": 0.8, "banks.rural_bank.renewal_uptake": 0.8})
    same = compare(a, a, paths=6, seed=2)
    row = same.difference("balance")
    assert row["diff"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
    paths = 40
    c = compare(a, b, paths=paths, seed=2)
    d = c.difference("liquidity_defaults", total=True)
    assert d["ci_high"] < 0  # renewal removes liquidity defaults
    # same factor path, opening book and firms: the paired error is far below that of independent runs (whose
    # ratio would be 1 ± 0.16 with 40 paths)
    for name in ("npl_balance", "firms"):
        va, vb = c.base.values(name)[:, -1], c.variant.values(name)[:, -1]
        independent_se = np.sqrt(va.var(ddof=1) / paths + vb.var(ddof=1) / paths)
        assert c.difference(name)["diff_mcse"] < 0.5 * independent_se, name
    table = c.differences()
    assert {"metric", "date", "bank", "mean_a", "mean_b", "diff", "diff_mcse", "ci_low", "ci_high"} <= set(table.columns)
    # two simulate runs pair as a Comparison only on the same seed, paths and dates
    from creditsim import Comparison, ResultsError

    assert Comparison(simulate(a, paths=2, seed=2), simulate(b, paths=2, seed=2)).difference("balance")["diff"] != 0
    for other in (simulate(b, paths=2, seed=3), simulate(b, paths=[0, 2], seed=2), simulate(small_default(**{"calendar.months": 12}), paths=2, seed=2)):
        with pytest.raises(ResultsError, match="cannot be paired"):
            Comparison(simulate(a, paths=2, seed=2), other)


# ------------------------------------------------------------------------------------------------ calibration
def test_zhejiang_2020_reproduces_the_2020_figures():
    """scenarios/zhejiang-2020.toml reproduces (MODEL-NOTES §3–4, data/zhejiang_points.csv): a 普惠型 renewal
    balance near 9% of the inclusive balance in April 2020 (within 1 pp); first-time borrowers near 37.1% of new
    enterprise borrowers in Q1 2020 (within 3 pp); in H1 2020 4.4万 首贷户 and 2030.7亿 of first loans in the
    statistic's scope (small_micro_first_loan_amount), each within 30%; and the 2020 campaign's approval rate near
    29% of visited firms (within 6 pp). The statistic counts enterprises, and the scenario's individual segment has
    no 无贷户, so the 首贷户 metrics are the enterprises'; the share's denominator, new enterprise borrowers, is
    measured with the individuals' applications switched off, which leaves the enterprises' draws as they were (the
    scenario has no guarantor or pool whose room the two segments share): the same 首贷户 on every path."""
    from pathlib import Path

    import creditsim

    path = Path(__file__).resolve().parents[1] / "scenarios" / "zhejiang-2020.toml"
    s = creditsim.load_scenario(path)
    paths = 16
    r = simulate(s, paths=paths, seed=0)
    enterprises = simulate(creditsim.load_scenario(path, {"firms.segments.individual.applications_per_month": 0}), paths=paths, seed=0)
    april, q1 = r.dates.index("2020-04"), [r.dates.index(m) for m in ("2020-01", "2020-02", "2020-03")]
    h1 = [r.dates.index(f"2020-{m:02d}") for m in range(1, 7)]
    np.testing.assert_array_equal(enterprises.values("first_time_borrowers"), r.values("first_time_borrowers"))
    renewal_share = r.values("renewal_balance")[:, april] / r.values("balance")[:, april]
    first_share = enterprises.values("first_time_borrowers")[:, q1].sum(axis=1) / enterprises.values("approvals")[:, q1].sum(axis=1)
    for value, target, band in ((renewal_share, 0.09, 0.01), (first_share, 0.371, 0.03)):
        se = value.std(ddof=1) / np.sqrt(paths)
        assert abs(value.mean() - target) + 3 * se < band, (value.mean(), target, se)
    for name, target in (("first_time_borrowers", 4.4e4), ("small_micro_first_loan_amount", 2030.7e8)):
        value = r.values(name)[:, h1].sum(axis=1)
        se = value.std(ddof=1) / np.sqrt(paths)
        assert abs(value.mean() - target) + 3 * se < 0.3 * target, (name, value.mean(), target, se)
    approval = r.values("campaign_approvals")[:, 13:].sum() / r.values("campaign_reached")[:, 13:].sum()
    reached = r.values("campaign_reached")[:, 13:].sum() * s.sample  # firms reached in the simulated sample (the binomial's n)
    assert abs(approval - 4158 / 14458) < 3 * np.sqrt(approval * (1 - approval) / reached) + 0.01


# ------------------------------------------------------------------------------------------------ 首贷户 over time
def test_first_time_borrowers_keep_their_status_when_they_return():
    """A 首贷户 that repays and leaves comes back as a former 首贷户: its later loans count in
    first_time_borrower_lending (not as new 首贷户), so that lending exceeds the first loans alone."""
    s = scenario_from_dict(pool_data(**{
        "calendar.months": 24, "demand.reborrow_prob": 0.0, "banks.bank.term_mix": {"3": 1.0},
        "firms.segments.only.firms": 3000, "firms.segments.only.unbanked_share": 1.0,
        "firms.segments.only.applications_per_month": 150,
    }))
    r = simulate(s, paths=4, seed=21)
    later = r.cumulative("first_time_borrower_lending") - r.cumulative("first_loan_amount")
    assert (later > 0).all()
    assert (r.cumulative("first_time_borrowers") < r.cumulative("approvals")).all()
    np.testing.assert_allclose(r.cumulative("first_time_borrower_lending"), r.cumulative("disbursed"))  # every borrower is a 首贷户


def test_declined_thin_files_stay_declined():
    """A 无贷户 declined on its signal is declined again when it reapplies (same signal), so after every firm has
    applied the 首贷户 are N_g P_g summed over grades, P_g = Phi((logit(max_pd) - logit(p_g)) / sd); with a fresh
    signal at each application nearly every firm would eventually pass."""
    n, pd_, sd, max_pd, paths = 2000, np.array([0.002, 0.004]), 1.0, 0.003, 40
    s = scenario_from_dict(pool_data(**{
        "calendar.months": 24, "banks.bank.term_mix": {"36": 1.0}, "banks.bank.max_pd": max_pd, "risk.signal_sd": sd,
        "firms.segments.only.firms": n, "firms.segments.only.unbanked_share": 1.0, "firms.segments.only.pd": list(pd_),
        "firms.segments.only.grade_share": [0.5, 0.5], "firms.segments.only.applications_per_month": 300,
    }))
    r = simulate(s, paths=paths, seed=22)
    p = ndtr((logit(max_pd) - logit(pd_)) / sd)
    expected = float(n / 2 * p.sum())
    total = r.cumulative("first_time_borrowers")
    assert abs(total.mean() - expected) < 4 * total.std(ddof=1) / np.sqrt(paths) + 0.01 * expected  # 1%: pool failures before applying
    assert r.cumulative("applications").mean() > 3 * n  # every firm applied, most several times


def test_campaign_list_is_reached_once():
    """A list of L firms: the campaign reaches L firms in all and reports the rest of its plan as shortfall."""
    s = scenario_from_dict(pool_data(**{
        "calendar.months": 6, "firms.segments.only.firms": 100_000, "firms.segments.only.unbanked_share": 1.0,
        "campaign": {"list_size": 1000, "channels": {"visits": {"reach_per_month": 300, "need": 0.5}}},
    }))
    r = simulate(s, paths=5, seed=23)
    np.testing.assert_array_equal(r.cumulative("campaign_reached"), 1000)
    assert (r.cumulative("campaign_shortfall") > 0).all()


def test_learning_can_end_a_relationship():
    """Approved on an optimistic thin-file signal, a firm whose repayments reveal a PD above the bank's appetite
    is not lent to again; with exact knowledge (signal_sd = 0) no approved firm is ever refused later."""
    common = {"calendar.months": 24, "firms.segments.only.firms": 20_000, "firms.segments.only.unbanked_share": 1.0,
              "firms.segments.only.applications_per_month": 400, "banks.bank.max_pd": 0.03, "banks.bank.term_mix": {"6": 1.0}}
    noisy = simulate(scenario_from_dict(pool_data(**common, **{"risk.signal_sd": 1.0})), paths=3, seed=24)
    exact = simulate(scenario_from_dict(pool_data(**common)), paths=3, seed=24)
    assert (noisy.cumulative("reborrow_declined") > 0).all()
    assert exact.cumulative("reborrow_declined").sum() == 0
