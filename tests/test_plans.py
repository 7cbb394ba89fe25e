"""The plan scenarios: scenarios/README.md lists every target of each plan, each listed target is in its
scenario with the same source clause, and the modelling devices the plans need (a sampled population, targets
against the year before, small-micro loans outside the inclusive book) do what they say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from creditsim import load_scenario, simulate
from creditsim.results import mean_and_mcse
from creditsim.results.targets import measure
from creditsim.scenario.sampling import sampled
from helpers import small_default

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PLANS = ["zhejiang-2018", "hangzhou-2018", "zhejiang-chuying-2019", "jiaxing-2021", "wenzhou-2025"]


def listed_targets() -> dict[str, list[tuple[str, str]]]:
    """(target, source) rows of each plan's target table (headed "| target | plan wording | source | …") in
    scenarios/README.md, by scenario."""
    listed: dict[str, list[tuple[str, str]]] = {}
    current, in_table = None, False
    for line in (SCENARIOS / "README.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `(.+)\.toml`", line)
        if heading:
            current = heading.group(1)
            listed[current] = []
        in_table = line.startswith("| target | plan wording | source |") or (in_table and line.startswith("|"))
        row = re.match(r"^\| `(\w+)` \| (.+?) \| (\S+ \S+) \|", line)
        if current and in_table and row:
            listed[current].append((row.group(1), row.group(3)))
    return listed


def test_every_plan_has_a_scenario_and_a_target_table():
    assert sorted(listed_targets()) == sorted(PLANS)


@pytest.mark.parametrize("plan", PLANS)
def test_each_listed_target_is_in_its_scenario_and_each_target_is_listed(plan):
    """Both ways: the README's list is the scenario's, with the same source clause."""
    scenario = load_scenario(SCENARIOS / f"{plan}.toml")
    listed = dict(listed_targets()[plan])
    assert set(listed) == set(scenario.targets)
    for name, source in listed.items():
        assert scenario.targets[name].source == source, name


def test_the_bundled_default_is_the_jiaxing_plan():
    """The package's default.toml is a verbatim copy of scenarios/jiaxing-2021.toml, comments included."""
    from importlib import resources

    bundled = resources.files("creditsim").joinpath("scenarios", "default.toml").read_text(encoding="utf-8")
    assert bundled == (SCENARIOS / "jiaxing-2021.toml").read_text(encoding="utf-8")


def test_a_sample_estimates_the_whole_population():
    """Expected stocks and flows of a 1-in-4 sample, scaled back, equal the whole population's (within 4
    combined Monte Carlo standard errors), and ratios agree."""
    whole = simulate(small_default(), paths=12, seed=5)
    sample = simulate(small_default(sample="1:4"), paths=48, seed=5)
    for name in ("balance", "borrowers", "disbursed", "first_time_borrowers", "defaulted", "npl_ratio", "approval_rate"):
        (m1, e1), (m2, e2) = (mean_and_mcse(r.series(name)[:, -1]) for r in (whole, sample))
        assert abs(m1 - m2) <= 4 * np.hypot(e1, e2), name


def test_sampled_scenario_scales_aggregates_and_keeps_per_loan_limits():
    s = small_default(**{"sample": 0.1, "guarantors.fund.capital": "10亿", "guarantors.fund.coverage": 0.8,
                         "guarantors.fund.fee_rate": "1%", "guarantors.fund.capital_floor": "1亿"})
    k = sampled(s)
    assert k.sample == 1.0 and sampled(sampled(s)) == k
    assert k.firms.segments["micro"].firms == 200 and k.firms.segments["micro"].applications_per_month == pytest.approx(1.2)
    assert k.banks["big_bank"].all_loans == pytest.approx(s.banks["big_bank"].all_loans / 10)
    g, h = s.guarantors["fund"], k.guarantors["fund"]
    assert h.capital == pytest.approx(1e8) and h.capital_floor == pytest.approx(1e7)
    assert h.single_borrower_share * h.capital == pytest.approx(g.single_borrower_share * g.capital)  # 1亿 per borrower either way
    assert k.firms.inclusive_line_limit == s.firms.inclusive_line_limit and k.firms.segments["micro"].line_median == s.firms.segments["micro"].line_median


def test_sample_too_small_for_a_segment_is_refused():
    from creditsim import ScenarioError

    with pytest.raises(ScenarioError, match="sample"):
        small_default(sample="1:100000")


def test_year_before_targets_measure_the_change_over_twelve_months():
    targets = {
        "more_borrowers": {"metric": "borrowers", "measure": "stock", "date": "2022-12", "baseline": "year_before", "comparison": ">", "threshold": 0},
        "rate_up": {"metric": "approval_rate", "measure": "average", "start": "2022-01", "end": "2022-12", "baseline": "year_before", "threshold": 0},
        "too_early": {"metric": "borrowers", "measure": "stock", "date": "2021-06", "baseline": "year_before", "threshold": 0},
    }
    r = simulate(small_default(**{"calendar.months": 24, "targets": targets}), paths=6, seed=2)
    borrowers = r.series("borrowers")
    end = r.dates.index("2022-12")
    np.testing.assert_array_equal(measure(r, r.scenario.targets["more_borrowers"]), borrowers[:, end] - borrowers[:, end - 12])
    approvals, applications = r.series("approvals"), r.series("applications")
    year = lambda a, b: approvals[:, a:b].sum(axis=1) / applications[:, a:b].sum(axis=1)  # noqa: E731
    np.testing.assert_allclose(measure(r, r.scenario.targets["rate_up"]), year(13, 25) - year(1, 13))
    table = r.targets().set_index("target")
    assert table.loc["too_early", "note"].startswith("not assessed: the year before")


def test_small_micro_balance_and_derived_ratios():
    """small_micro_balance is the inclusive balance plus the outside book on its growth path; approval_rate and
    inclusive_share are their ratios."""
    r = simulate(small_default(**{"banks.big_bank.small_micro_outside": "50亿", "banks.big_bank.small_micro_outside_growth": "6%"}), paths=2, seed=1)
    months = np.arange(len(r.dates))
    outside = 5e9 * 1.06 ** (months / 12)
    np.testing.assert_allclose(r.series("small_micro_balance", "big_bank") - r.series("balance", "big_bank"), np.broadcast_to(outside, (2, months.size)), rtol=1e-9)
    np.testing.assert_array_equal(r.series("small_micro_balance", "city_bank"), r.series("balance", "city_bank"))
    np.testing.assert_allclose(r.series("inclusive_share"), r.series("balance") / r.series("all_loans_balance"))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(r.series("approval_rate")[:, 1:], (r.series("approvals") / r.series("applications"))[:, 1:])


def test_zhejiang_2018_credit_share_follows_the_data():
    """Credit (信用) loans were 12.5% of Zhejiang's 普惠型 book in April 2020 (scenarios/zhejiang-2018.toml): the
    scenario's median over paths lands within 5 points of it, now that a loan its bank wanted guaranteed and that
    found no guarantor room is made with collateral instead of silently on credit."""
    s = load_scenario(SCENARIOS / "zhejiang-2018.toml")
    r = simulate(s, paths=8, seed=0)
    april = r.dates.index("2020-04")
    share = r.values("credit_loan_balance")[:, april] / r.values("balance")[:, april]
    assert abs(np.median(share) - 0.125) < 0.05, share


def test_zhejiang_chuying_first_time_borrowers_follow_the_data():
    """The 首贷户 of zhejiang-chuying-2019, in the scope of the statistic (small and micro enterprises; 首贷金额 over
    all small-micro loans, lines above 1000万 included: small_micro_first_loan_amount): 4.4万 firms and 2030.7亿 of
    first loans in H1 2020, and 6.46万 firms in H1 2021 (data/zhejiang_points.csv), each within 30% (the mean over
    the paths, 3 Monte Carlo standard errors included). Counted in every segment and over 普惠型 first loans only,
    the scenario had about 12万 首贷户 in H1 2020 with 715亿 (59万 each)."""
    s = load_scenario(SCENARIOS / "zhejiang-chuying-2019.toml", {"calendar.months": 30})
    paths = 8
    r = simulate(s, paths=paths, seed=0)
    for name, first, last, reported in (("first_time_borrowers", "2020-01", "2020-06", 4.4e4),
                                        ("small_micro_first_loan_amount", "2020-01", "2020-06", 2030.7e8),
                                        ("first_time_borrowers", "2021-01", "2021-06", 6.46e4)):
        value = r.values(name)[:, r.dates.index(first):r.dates.index(last) + 1].sum(axis=1)
        mean, se = mean_and_mcse(value)
        assert abs(mean - reported) + 3 * se < 0.3 * reported, (name, first, mean, se, reported)


@pytest.mark.parametrize("name", [*PLANS, "zhejiang-2020"])
def test_plans_open_with_a_realistic_share_of_all_loans_and_npls(name):
    """Every plan opens (month 0) with its inclusive book between 5% and 40% of all loans (Zhejiang's was about 15%
    in 2020: 1.95万亿 of 13万亿, data/zhejiang_points.csv) and an NPL ratio above 0.5% (the opening NPL stock)."""
    r = simulate(load_scenario(SCENARIOS / f"{name}.toml"), paths=2, seed=0)
    share, npl = r.values("inclusive_share")[:, 0], r.values("npl_ratio")[:, 0]
    assert ((0.05 < share) & (share < 0.40)).all(), share
    assert (npl > 0.005).all(), npl
