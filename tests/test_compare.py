"""What a comparison says changed: the inputs B changes (with both values, in their units), each target's P(met)
and each bank's 两增/两控 P(pass) in A and B with the paired change, targets that do not move folded away, and the
extra lending per extra CNY of fiscal cost only where the signs of the changes make that ratio mean something."""

from __future__ import annotations

import numpy as np
import pytest

import creditsim
from creditsim.analysis.compare import UNCHANGED, paired_probabilities, unchanged
from creditsim.present.cli import main
from creditsim.results.assessment import evaluations
from creditsim.results.targets import measure, met, paired_difference_interval, wilson_interval
from creditsim.scenario import load_scenario, scenario_from_dict
from creditsim.scenario.changes import changed_fields, field_text, field_unit
from helpers import small_default, with_changes
from test_first_loans_and_renewal import pool_data

#: Liquidity defaults of the small default over 2021 at most this: P(met) about 0.75 with renewal and 0.3 without
#: (seed 1, 20 paths), so switching renewal off moves it clearly.
FEW_LIQUIDITY_DEFAULTS = 33
TARGETS = {
    "few_liquidity_defaults": {"metric": "liquidity_defaults", "measure": "cumulative", "start": "2021-01", "end": "2021-12",
                               "comparison": "<=", "threshold": FEW_LIQUIDITY_DEFAULTS},
    "any_balance": {"metric": "balance", "measure": "stock", "date": "2021-12", "threshold": 0},  # met on every path
    "later": {"metric": "balance", "measure": "stock", "date": "2023-12", "threshold": 0},  # after the run
}


def _renewal(enabled: bool):
    """The small default over 2021 with liquidity stress, renewal on or off, and the targets above."""
    return small_default(**{"calendar.months": 12, "liquidity.stress_prob": 0.05, "renewal.enabled": enabled, "targets": TARGETS})


@pytest.fixture(scope="module")
def renewal_off():
    return creditsim.compare(_renewal(True), _renewal(False), paths=20, seed=1, progress=False)


# ------------------------------------------------------------------------------------------ changed inputs
def test_changed_fields_come_from_both_scenarios_in_their_units():
    """The difference is read from the two validated scenarios, not from how they were made: each field with A's
    and B's value as a scenario file writes it; prose is left out."""
    a = load_scenario()
    b = load_scenario(overrides={"renewal.enabled": False, "guarantors.county.fee_rate": 0.005, "firms.segments.micro.pd[0]": "1%",
                                 "banks.big_bank.rate.2021": "4%", "sample": "1:20", "pools.ip_pledge.size": 2e8,
                                 "firms.segments.micro.firms": "25万", "description": "another text"})
    shown = {key: (field_text(key, x), field_text(key, y)) for key, x, y in changed_fields(a, b)}
    assert shown == {
        "sample": ("1:10", "1:20"),
        "firms.segments.micro.firms": ("20万", "25万"),
        "firms.segments.micro.pd[0]": ("0.5%", "1%"),
        "banks.big_bank.rate.2021": ("4.1%", "4%"),
        "renewal.enabled": ("true", "false"),
        "guarantors.county.fee_rate": ("1.2%", "0.5%"),
        "pools.ip_pledge.size": ("5000万", "2亿"),
    }
    assert changed_fields(a, load_scenario()) == []
    # a table on one side only is listed field by field, the absent side as none
    no_renewal = scenario_from_dict(with_changes(a.to_dict(), {"renewal": None}))
    assert ("renewal.max_term_months", 12, None) in changed_fields(a, no_renewal)
    assert field_text("guarantors.county.top_up", {"below": 1.45e9, "to": 1.5e9}) == "{below = 14.5亿, to = 15亿}"  # each field in its unit
    assert [field_unit(k) for k in ("demand.growth", "banks.big_bank.all_loans", "calendar.months", "banks.big_bank.term_mix.12", "no.such")] == [
        "%", "CNY", "", "%", ""]


def test_comparison_lists_the_changed_inputs_from_python(renewal_off):
    changes = renewal_off.changes()
    assert changes.to_dict("records") == [{"key": "renewal.enabled", "a": True, "b": False, "a_text": "true", "b_text": "false"}]


# ------------------------------------------------------------------------------------------ targets and 两增
def test_targets_carry_p_met_of_both_runs_and_the_paired_change(renewal_off):
    table = renewal_off.targets().set_index("target")
    a, b = renewal_off.base, renewal_off.variant
    for name in ("few_liquidity_defaults", "any_balance"):
        target = a.scenario.targets[name]
        hit_a, hit_b = met(measure(a, target), target), met(measure(b, target), target)
        row = table.loc[name]
        assert row.p_a == hit_a.mean() and row.p_b == hit_b.mean()
        assert (row.p_a_low, row.p_a_high) == pytest.approx(wilson_interval(int(hit_a.sum()), hit_a.size))
        assert (row.change, row.change_low, row.change_high) == pytest.approx(paired_difference_interval(hit_a, hit_b))
    moved = table.loc["few_liquidity_defaults"]
    assert moved.change < 0 and moved.change_high < 0 and not moved.unchanged  # without renewal, more liquidity defaults
    assert table.loc["any_balance", "unchanged"] and table.loc["any_balance", "change"] == 0
    assert table.loc["later", "note"].startswith("not assessed") and np.isnan(table.loc["later", "p_a"])


def test_two_increases_per_bank_in_both_runs_and_the_paired_change(renewal_off):
    table = renewal_off.two_increases()
    year_end = table[(table["check"] == "两增") & (table["date"] == "2021-12")]
    assert list(year_end["bank"]) == ["big_bank", "city_bank", "rural_bank", "all"]
    passed = [{(e[0], e[2], e[3]): e[5] for e in evaluations(side)} for side in (renewal_off.base, renewal_off.variant)]
    alone = renewal_off.base.two_increases().set_index(["bank", "date", "check"])
    for row in year_end.itertuples():
        before, after = passed[0][(row.bank, row.date, row.check)], passed[1][(row.bank, row.date, row.check)]
        assert row.p_a == alone.loc[(row.bank, row.date, row.check), "probability"] and row.p_b == after.mean()
        assert (row.change, row.change_low, row.change_high) == pytest.approx(paired_difference_interval(before, after))


def test_unchanged_means_below_a_point_with_an_interval_holding_zero():
    assert unchanged(0.0, -0.05, 0.05) and unchanged(UNCHANGED / 2, -0.01, 0.03)
    assert not unchanged(UNCHANGED, -0.01, 0.05)  # a whole point
    assert not unchanged(0.005, 0.001, 0.02)  # small but clearly not 0
    same = paired_probabilities(np.ones(50, bool), np.ones(50, bool))
    assert same["change"] == 0 and same["unchanged"] and same["paths"] == 50


# ------------------------------------------------------------------------------------------ command line
def test_cli_compare_shows_the_change_delta_p_per_target_and_two_increases_per_bank(renewal_off, tmp_path, capsys):
    """The done-when of issue 21: `compare --set renewal.enabled=false` shows the changed input, ΔP(met) per
    target and Δ两增 per bank; a target that does not move is folded into one line unless --all-targets."""
    path = tmp_path / "city.toml"
    path.write_text(_renewal(True).to_toml(), encoding="utf-8")
    assert main(["compare", str(path), "--set", "renewal.enabled=false", "--paths", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "B changes 1 input of A:" in out and "  renewal.enabled: true → false" in lines
    row = renewal_off.targets().set_index("target").loc["few_liquidity_defaults"]
    shown = next(line for line in lines if line.startswith("few_liquidity_defaults "))
    assert f"{100 * row.p_a:.0f}% [" in shown and f"{100 * row.change:+.1f} [{100 * row.change_low:+.1f}, {100 * row.change_high:+.1f}] pts" in shown
    assert not any(line.startswith("any_balance ") for line in lines)
    assert out[out.index("\n1 target unchanged from A to B"):].split("\n\n")[0].endswith(": any_balance")
    assert any(line.startswith("later ") and "not assessed" in line for line in lines)
    for bank in ("big_bank", "city_bank", "rural_bank", "all"):
        assert any(line.startswith(f"两增 {bank} 2021") and line.endswith(" pts") for line in lines), bank
    assert main(["compare", str(path), "--set", "renewal.enabled=false", "--paths", "20", "--seed", "1", "--all-targets"]) == 0
    assert any(line.startswith("any_balance ") for line in capsys.readouterr().out.splitlines())


def _cover(guarantor: bool) -> dict:
    """A small world whose bank lends more with a guarantee than without it (it covers firms above its appetite);
    the guarantor's capital is government money, so with it the fiscal cost is higher on every path."""
    data = pool_data(**{"calendar.months": 2, "firms.segments.only.firms": 50_000, "firms.segments.only.unbanked_share": 0.9,
                        "firms.segments.only.applications_per_month": 800, "banks.bank.max_pd": 0.015, "risk.signal_sd": 1.0,
                        "banks.bank.product_mix": {"credit": 1.0}})
    if guarantor:
        data["guarantors"] = {"fund": {"capital": "1亿", "coverage": 0.8, "fee_rate": "0.5%", "single_borrower_share": 1.0}}
    return data


def test_extra_lending_per_extra_cny_only_where_the_signs_make_it_one(tmp_path, capsys):
    """With the guarantor B lends more and costs more: the ratio is shown. The other way round both fall: no
    ratio, and the line says why. Two scenario files: the header lists the guarantor's fields, none in A."""
    files = {}
    for name, guarantor in (("bare", False), ("covered", True)):
        files[name] = tmp_path / f"{name}.toml"
        files[name].write_text(scenario_from_dict(_cover(guarantor)).to_toml(), encoding="utf-8")
    more = creditsim.compare(scenario_from_dict(_cover(False)), scenario_from_dict(_cover(True)), paths=3, seed=42, progress=False)
    row = creditsim.per_fiscal_cost(more)
    assert row["extra_low"] > 0 and row["extra_fiscal_cost_low"] > 0 and row["note"] == "" and row["per_cny"] > 0
    assert main(["compare", str(files["bare"]), str(files["covered"]), "--paths", "3", "--seed", "42"]) == 0
    out = capsys.readouterr().out
    assert "  guarantors.fund.capital: none → 1亿" in out.splitlines() and "  guarantors.fund.fee_rate: none → 0.5%" in out.splitlines()
    ratio = next(line for line in out.splitlines() if line.startswith("extra lending (disbursed) per extra CNY"))
    assert f"{row['per_cny']:.2f}   [" in ratio

    less = creditsim.compare(scenario_from_dict(_cover(True)), scenario_from_dict(_cover(False)), paths=3, seed=42, progress=False)
    row = creditsim.per_fiscal_cost(less)
    assert row["extra_high"] < 0 and row["extra_fiscal_cost_high"] < 0
    assert row["note"] == "disbursed and fiscal cost both fell (swap A and B for A's extra disbursed per extra CNY)"
    assert main(["compare", str(files["covered"]), str(files["bare"]), "--paths", "3", "--seed", "42"]) == 0
    ratio = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("extra lending (disbursed) per extra CNY"))
    assert ratio.endswith(f"not shown: {row['note']}")
    # no change in cost at all: no ratio either
    same = creditsim.compare(scenario_from_dict(_cover(True)), scenario_from_dict(_cover(True)), paths=2, seed=42, progress=False)
    assert creditsim.per_fiscal_cost(same)["note"] == "the fiscal cost is the same in A and B on every path"
