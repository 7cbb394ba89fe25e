"""The budget (creditsim.results.budget): the government's outlay by instrument, item and year, checked against
the engine's own fiscal_cost metric, the scenario's contracts and hand-computed present values."""

from __future__ import annotations

import numpy as np
import pytest

from creditsim import fiscal_costs, simulate
from creditsim.errors import ScenarioError
from creditsim.results.budget import YI, baseline_scenario, budget, budget_items
from creditsim.scenario import scenario_from_dict
from helpers import with_changes
from test_guarantees import FOUR_LAYERS, guarantee_data
from test_loan_tape import tape_data, write_tape


def every_instrument(months: int = 24) -> dict:
    """A guarantor with a fee subsidy, a scheduled injection and a top-up rule, two re-guarantors (one with a
    government share of 0.5), a pool funded 4:4:2 with an annual budget and a January top-up, and an interest
    subsidy: every line of the budget."""
    data = guarantee_data(firms=40, pd=0.2, capital=1e6, reguarantee=FOUR_LAYERS, months=months,
                          **{"banks.bank.product_mix": {"guaranteed": 0.5, "credit": 0.5}})
    return with_changes(data, {
        "guarantors.fund.injections": [{"date": "2021-09", "amount": "50万"}],
        "guarantors.fund.top_up": {"below": "95万", "to": "120万"},
        "reguarantors.provincial.government_share": 0.5,
        "pools": {"pool": {"size": "100万", "contributions": {"government": 0.4, "guarantor": 0.4, "bank": 0.2},
                           "payout_share": 0.5, "annual_budget": "30万", "top_up_to": "200万"}},
        "interest_subsidy": {"rate": 0.01},
    })


@pytest.fixture(scope="module")
def run():
    return simulate(scenario_from_dict(every_instrument()), paths=4, seed=3)


def test_the_items_add_up_to_the_engines_fiscal_cost_path_by_path_and_month_by_month(run):
    """The engine sums the government's money each month in one metric (fiscal_cost); the budget rebuilds it
    from the instruments' own flows and the scenario's start-up money, so the two must agree in every cell."""
    items = budget_items(run)
    total = sum(line.amounts for line in items)
    np.testing.assert_allclose(total[:, 1:], run.values("fiscal_cost")[:, 1:], atol=0.01)
    np.testing.assert_allclose(total[:, 0], run.scenario.initial_fiscal_cost, atol=0.01)
    np.testing.assert_allclose(total.sum(axis=1), fiscal_costs(run)["total"], atol=0.01)
    lines = {(line.instrument, line.item) for line in items}
    assert lines == {("fund", "start-up capital"), ("fund", "scheduled injections"), ("fund", "top-ups"), ("fund", "fee subsidies"),
                     ("provincial", "start-up capital"), ("national_fund", "start-up capital"), ("pool", "start-up capital"),
                     ("pool", "annual budget"), ("pool", "top-ups"), ("interest_subsidy", "interest subsidy")}


def test_each_item_follows_its_contract(run):
    """Start-up money is government_share × capital (0.5 × 10亿 for the provincial re-guarantor) and 0.4 × the
    pool's size; the scheduled 50万 injection falls in 2021-09; the pool's budget is 0.4 × 30万 each January
    (2022-01: the run starts in 2021-01, which is a January too); the top-up rule's money is recurring."""
    by = {(line.instrument, line.item): line for line in budget_items(run)}
    assert by["provincial", "start-up capital"].amounts[:, 0] == pytest.approx(0.5 * 10e8)
    assert by["pool", "start-up capital"].amounts[:, 0] == pytest.approx(0.4 * 1e6)
    september = run.dates.index("2021-09")
    scheduled = by["fund", "scheduled injections"]
    assert scheduled.timing == "one-off" and (scheduled.amounts[:, september] == pytest.approx(5e5))
    assert np.count_nonzero(scheduled.amounts) == run.paths
    januaries = [run.dates.index("2021-01"), run.dates.index("2022-01")]
    budgeted = by["pool", "annual budget"].amounts
    assert budgeted[:, januaries] == pytest.approx(np.full((run.paths, 2), 0.4 * 3e5))
    assert np.count_nonzero(budgeted) == 2 * run.paths
    assert by["fund", "top-ups"].timing == "recurring" and by["fund", "top-ups"].amounts.sum() > 0


def test_years_totals_present_value_and_what_is_left(run):
    """Each item's years add up to its total; the present value discounts month t by (1 + r)^(−t/12); what is
    left is the government's share of the end capital and balance; net cost = outlay − left."""
    b = budget(run, discount_rate=0.05)
    items = budget_items(run)
    for line in items:
        rows = b.items[(b.items["instrument"] == line.instrument) & (b.items["item"] == line.item)].set_index("year")
        assert set(rows.index) == {"2021", "2022", "total"}
        assert rows.loc["2021", "mean"] + rows.loc["2022", "mean"] == pytest.approx(rows.loc["total", "mean"])
        assert rows.loc["total", "mean"] == pytest.approx(line.amounts.sum(axis=1).mean())
    totals = b.totals.set_index("line")
    outlay = sum(line.amounts for line in items)
    discount = 1.05 ** (-np.arange(len(run.dates)) / 12)
    assert totals.loc["outlay (present value)", "mean"] == pytest.approx((outlay @ discount).mean())
    left = (run.values("guarantor_capital", "fund")[:, -1] + 0.5 * run.values("reguarantor_capital", "provincial")[:, -1]
            + run.values("reguarantor_capital", "national_fund")[:, -1] + 0.4 * run.values("pool_balance", "pool")[:, -1])
    assert totals.loc["left at the end", "mean"] == pytest.approx(left.mean())
    assert totals.loc["net cost", "mean"] == pytest.approx(outlay.sum(axis=1).mean() - left.mean())
    assert totals.loc["net cost (present value)", "mean"] == pytest.approx((outlay @ discount - left * discount[-1]).mean())
    one_off = sum(line.amounts.sum(axis=1) for line in items if line.timing == "one-off")
    assert totals.loc["one-off", "mean"] == pytest.approx(one_off.mean())
    assert totals.loc["one-off", "mean"] + totals.loc["recurring", "mean"] == pytest.approx(totals.loc["outlay", "mean"])
    assert b.per_extra_lending is None


def test_cost_per_extra_yi_is_the_ratio_of_paired_differences_and_only_where_lending_rises():
    """Against the scenario without instruments (same seed and paths), the cost per extra 亿 is the mean extra
    outlay over the mean extra balance increase in 亿. Firms the bank lends to only with cover (max_pd below
    the riskiest grade's PD) make the extra lending; against itself the extra lending is zero and no ratio is
    given, with the reason."""
    data = every_instrument(months=12)
    data = with_changes(data, {"banks.bank.max_pd": 0.1, "firms.segments.only.pd": [0.01, 0.02, 0.2], "firms.segments.only.unbanked_share": 0.5,
                               "firms.segments.only.applications_per_month": 20})
    s = scenario_from_dict(data)
    base = baseline_scenario(s)
    assert not base.guarantors and not base.pools and not base.reguarantors and base.interest_subsidy is None
    r, r0 = simulate(s, paths=6, seed=5), simulate(base, paths=6, seed=5)
    per = budget(r, baseline=r0).per_extra_lending
    extra_cost = fiscal_costs(r)["total"].to_numpy() - fiscal_costs(r0)["total"].to_numpy()
    lending = lambda x: x.values("balance")[:, -1] - x.values("balance")[:, 0]  # noqa: E731
    extra = lending(r) - lending(r0)
    left = lambda x: budget(x).totals.set_index("line").loc["left at the end", "mean"]  # noqa: E731
    assert per["extra_outlay"] == pytest.approx(extra_cost.mean()) and per["extra_lending"] == pytest.approx(extra.mean())
    assert per["extra_net_cost"] == pytest.approx(extra_cost.mean() - left(r) + left(r0))
    assert extra.mean() > 0 and per["note"] == "" and per["outlay_note"] == ""
    assert per["outlay_per_yi"] == pytest.approx(extra_cost.mean() / (extra.mean() / YI))
    assert per["outlay_per_yi_ci_low"] < per["outlay_per_yi"] < per["outlay_per_yi_ci_high"]
    itself = budget(r, baseline=r).per_extra_lending
    assert np.isnan(itself["outlay_per_yi"]) and np.isnan(itself["net_cost_per_yi"]) and "not clearly positive" in itself["note"]
    with pytest.raises(ValueError, match="same seed"):
        budget(r, baseline=simulate(base, paths=6, seed=6))


def test_a_baseline_drops_the_targets_on_instruments_and_cannot_drop_a_loan_tapes_cover(tmp_path):
    """Targets (which may name an instrument) go with the instruments; a loan tape whose loans name their
    guarantor cannot lose it, and the error says to name a baseline instead."""
    data = every_instrument(months=12)
    data["targets"] = {"fee": {"metric": "guarantee_fee_rate", "scope": "fund", "measure": "ratio", "comparison": "<=",
                               "threshold": "1%", "date": "2021-12"}}
    assert not baseline_scenario(scenario_from_dict(data)).targets
    write_tape(tmp_path)
    with pytest.raises(ScenarioError, match="^baseline: cannot switch the instruments off .*name a baseline instead$"):
        baseline_scenario(scenario_from_dict(tape_data(), base=tmp_path))
