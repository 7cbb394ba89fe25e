"""Each bank's view (creditsim.bank_table, ``run --bank``) and the ``budget`` command, checked against the run's
own metrics and its 两增 assessment."""

from __future__ import annotations

import numpy as np
import pytest

import creditsim
from creditsim.present.cli import main
from creditsim.results.banks import bank_table
from creditsim.scenario.units import format_amount
from helpers import small_default


@pytest.fixture(scope="module")
def results() -> creditsim.Results:
    """20 paths of the shrunk default over 2021-01 … 2022-06: two year-ends and a last date mid-year."""
    return creditsim.simulate(small_default(**{"calendar.months": 18}), paths=20, seed=4)


def test_each_bank_at_each_year_end_is_its_metrics_and_its_two_increases(results):
    """Stocks at the date, flows summed over the calendar year to date (from the start in the first year), the
    band the 5th and 95th percentiles over paths; 两增's loan-growth margin in percentage points and its P(pass)
    as the assessment computes them, at each date it assesses."""
    table = bank_table(results).set_index(["bank", "date", "item"])
    dates = list(dict.fromkeys(table.index.get_level_values("date")))
    assert dates == ["2021-12", "2022-06"]
    for bank in results.banks:
        t = results.dates.index("2022-06")
        balance = results.values("balance", bank)[:, t]
        row = table.loc[(bank, "2022-06", "balance")]
        assert row["median"] == pytest.approx(np.median(balance)) and row["p5"] == pytest.approx(np.percentile(balance, 5))
        first = results.values("first_time_borrowers", bank)
        january = results.dates.index("2022-01")
        assert table.loc[(bank, "2022-06", "first_time_borrowers"), "median"] == pytest.approx(np.median(first[:, january : t + 1].sum(axis=1)))
        assert table.loc[(bank, "2021-12", "first_time_borrowers"), "median"] == pytest.approx(np.median(first[:, 1:13].sum(axis=1)))
        assessed = results.two_increases().set_index(["bank", "date", "check"])
        assert table.loc[(bank, "2021-12", "两增 P(pass)"), "median"] == pytest.approx(assessed.loc[(bank, "2021-12", "两增"), "probability"])
        assert table.loc[(bank, "2021-12", "两增 loan_growth margin"), "median"] == pytest.approx(
            100 * assessed.loc[(bank, "2021-12", "loan_growth"), "median_margin"])
        assert table.loc[(bank, "2021-12", "两增 loan_growth margin"), "unit"] == "points"
        # the last date, a quarter-end, has its 两增 assessment too (against the start of the year under the 2019 rule)
        assert table.loc[(bank, "2022-06", "两增 P(pass)"), "median"] == pytest.approx(assessed.loc[(bank, "2022-06", "两增"), "probability"])


def test_run_prints_a_banks_view_and_refuses_an_unknown_bank(capsys):
    """``run --bank NAME`` adds the bank's book at each year-end; an unknown name exits 2 with one line listing
    the banks."""
    args = ["run", "--paths", "3", "--set", "calendar.months=14", "--bank", "city_bank", "--bank", "all"]
    assert main(args) == 0
    out = capsys.readouterr().out
    block = out.split("bank city_bank: median at")[1]
    assert "2021-12" in block and "balance" in block and "两增 P(pass)" in block and "first_time_borrowers" in block
    assert "bank all: median at" in out
    assert main(["run", "--paths", "3", "--bank", "nobank"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bank = 'nobank': is not a bank of the scenario (big_bank, city_bank, rural_bank, or all)" in err[0]


def test_run_shows_the_budget_with_start_up_money_apart(capsys):
    """The run's summary splits the government's money: start-up capital per instrument (one-off) apart from the
    recurring items, then the outlay, its present value, what is left and the net cost."""
    assert main(["run", "--paths", "3", "--set", "calendar.months=14"]) == 0
    out = capsys.readouterr().out
    block = out.split("budget (government money), median")[1]
    s = creditsim.load_scenario()
    for name, g in s.guarantors.items():
        assert f"{name}: start-up capital (one-off)" in block and format_amount(g.government_share * g.capital) in block
    for line in ("one-off (start-up capital, scheduled injections)", "recurring (budgets, top-ups, subsidies)", "outlay",
                 "left in the instruments at the end", "net cost (outlay − what is left)"):
        assert line in block, line
    assert "fiscal cost incl. start-up" not in out


def test_budget_command_gives_years_and_the_cost_per_extra_yi(tmp_path, capsys):
    """``creditsim budget`` runs the scenario and its baseline (here named by --set-baseline) on the same paths and
    prints the budget by year and the cost per extra 亿; against a baseline that equals the scenario there is no
    extra lending and it says so instead of printing a ratio; --xlsx writes the tables."""
    common = ["budget", "--paths", "3", "--set", "calendar.months=14"]
    assert main([*common, "--xlsx", str(tmp_path / "b.xlsx")]) == 0
    out = capsys.readouterr().out
    assert "2021" in out.split("budget (government money), median")[1].splitlines()[0]
    assert "against the baseline jiaxing-2021 without instruments" in out and "outlay per extra 亿 of lending" in out
    assert (tmp_path / "b.xlsx").exists()
    assert main([*common, "--set-baseline", "calendar.months=14"]) == 0
    out = capsys.readouterr().out
    assert "not given: the extra lending is not clearly positive" in out
    assert main([*common, "--baseline", str(tmp_path / "missing.toml")]) == 2
    errors = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("creditsim: error:")]
    assert len(errors) == 1 and "missing.toml: cannot read the file" in errors[0]
