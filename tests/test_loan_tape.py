"""A bank's opening book from its loan tape (``banks.NAME.loan_tape``): a hand-computed book in both engines, CSV and
Parquet read alike, the tape kept in saved scenarios and results, each kind of bad row refused in one line naming
the file, row and column (and through the command line, exit 2), the PD-to-grade rule, sampling, and the other
banks and firms left alone."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from creditsim import Results, reference, simulate
from creditsim.errors import ScenarioError
from creditsim.model.engine import run_task
from creditsim.present.cli import main
from creditsim.scenario import load_scenario, scenario_from_dict
from creditsim.scenario.loan_tape import nearest_grade, sampled_tape
from creditsim.scenario.opening import initial_population
from helpers import assert_identities, small_default, with_changes

#: The hand-computed tape: firm A has two loans (one guaranteed by county) falling due in 2021-03, month 3; B one
#: in 2021-06, month 6; C one covered by pool fund, beyond the run; D an npl loan that defaulted a month before the
#: opening (its recovery still to come), E two npl loans that defaulted four months before it (recovered already).
BOOK = """\
firm,amount,start,maturity,product,grade,cover,status,defaulted
A,500000,2020-04,2021-03,credit,0,,performing,
A,300000,2020-04,2021-03,guaranteed,0,county,performing,
B,100万,2020-07,2021-06,collateral,1,,performing,
C,200000,2020-12,2021-12,信用,2,fund,performing,
D,400000,2019-06,2020-06,credit,1,,npl,2020-11
E,250000,2019-01,2020-01,collateral,2,,npl,2020-08
E,150000,2019-01,2020-01,collateral,2,,npl,2020-08
"""


def tape_data(**changes: Any) -> dict[str, Any]:
    """One segment of 1,000 firms with PD 0 (no defaults) and no demand, one bank whose whole book is ``book.csv``;
    every maturing loan is re-borrowed (same amount, as credit, 12 months); recovery after 3 months, write-off after
    6; a guarantor and a first-time-only pool (which the re-borrowed loans cannot have)."""
    data: dict[str, Any] = {
        "name": "tape",
        "calendar": {"start": "2021-01", "months": 6},
        "firms": {"segments": {"only": {"firms": 1000, "unbanked_share": 1.0, "pd": [0.0, 0.0, 0.0], "grade_share": [0.3, 0.4, 0.3], "rho": 0.0,
                                        "line_median": "100万", "line_p90": "300万"}}},
        "banks": {"city": {"share": 1.0, "all_loans": "1亿", "non_inclusive_growth": 0.0, "max_pd": 1.0, "rate": 0.06,
                           "term_mix": {"12": 1.0}, "product_mix": {"credit": 1.0}, "loan_tape": "book.csv"}},
        "demand": {"reborrow_prob": 1.0},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.4, "collateral": 0.3}, "recovery_lag_months": 3, "write_off_months": 6},
        "guarantors": {"county": {"capital": "1亿", "coverage": 0.8, "fee_rate": 0.01}},
        "pools": {"fund": {"size": "1000万", "payout_share": 0.5, "first_time_only": True}},
    }
    return with_changes(data, changes)


def write_tape(directory: Path, text: str = BOOK, name: str = "book.csv") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tape_scenario(tmp_path):
    write_tape(tmp_path)
    return scenario_from_dict(tape_data(), base=tmp_path)


# ------------------------------------------------------------------------------------------------ the book by hand
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_the_opening_book_is_the_tape_computed_by_hand(tape_scenario, engine):
    """Performing: A 50万 + 30万, B 100万, C 20万 = 200万 in 4 loans of 3 firms; npl: D 40万 (defaulted 1 month before
    the opening, so its recovery round(40万 × (1 − 0.5)) = 20万 comes in month 3 − 1 = 2 and the rest is written off in
    month 6 − 1 = 5) and E 25万 + 15万 (4 months before: recovered already, written off whole in month 6 − 4 = 2), 3
    loans of 2 firms. Interest in month 1: 200万 × 6% / 12 = 1万. A falls due in month 3 and B in month 6, each
    repaid and lent again; C beyond the run. The guarantor carries 0.8 × 30万 until month 3, the pool 20万 throughout."""
    run = simulate if engine == "fast" else reference.simulate
    results = run(tape_scenario, paths=2, seed=1)
    v = results.values
    wan = 1e4
    expected = {
        "balance": [280, 280, 220, 220, 220, 200, 200],
        "npl_balance": [80, 80, 20, 20, 20, 0, 0],
        "borrowers": [5 / wan, 5 / wan, 4 / wan, 4 / wan, 4 / wan, 3 / wan, 3 / wan],
        "loans": [7 / wan, 7 / wan, 5 / wan, 5 / wan, 5 / wan, 4 / wan, 4 / wan],
        "interest_income": [0, 1, 1, 1, 1, 1, 1],
        "recovered": [0, 0, 20, 0, 0, 0, 0],
        "written_off": [0, 0, 40, 0, 0, 20, 0],
        "loss_bank": [0, 0, 40, 0, 0, 20, 0],
        "net_loss": [0, 0, 40, 0, 0, 20, 0],
        "repaid": [0, 0, 0, 80, 0, 0, 100],
        "disbursed": [0, 0, 0, 80, 0, 0, 100],
        "defaulted": [0] * 7,
        "credit_loan_balance": [110, 110, 90, 120, 120, 100, 200],  # credit: A's 50万, C, D (and A, B lent again as credit)
    }
    expected["all_loans_balance"] = [1e4 - 280 + b for b in expected["balance"]]  # 1亿 less the opening book, plus the book
    for name, values in expected.items():
        for path in range(2):
            np.testing.assert_allclose(v(name)[path] / wan, values, rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(v("npl_ratio")[:, 0], 80 / 280)
    np.testing.assert_allclose(v("guarantee_outstanding", "county")[0], [24e4] * 3 + [0] * 4)
    np.testing.assert_allclose(v("pool_covered", "fund")[0], [20e4] * 7)
    np.testing.assert_allclose(v("unbanked_firms")[0], 1000 - 3)  # the tape's performing firms are firms of the segment


def test_npl_loans_and_their_firms_count_until_written_off(tape_scenario):
    """Through the engine's own recount (audit) every month, and the balance identities."""
    run_task(tape_scenario, 5, [0, 1], audit=True)
    assert_identities(simulate(tape_scenario, paths=2, seed=5))


def test_csv_and_parquet_read_alike(tmp_path, tape_scenario):
    """The same tape as Parquet gives the same columns (but for the file's name) and the same paths."""
    frame = pd.read_csv(tmp_path / "book.csv", dtype=str, keep_default_na=False)
    frame.to_parquet(tmp_path / "book.parquet", index=False)
    parquet = scenario_from_dict(tape_data(**{"banks.city.loan_tape": "book.parquet"}), base=tmp_path)
    a, b = tape_scenario.banks["city"].loan_tape, parquet.banks["city"].loan_tape
    assert b.file == "book.parquet"
    assert a.model_copy(update={"file": ""}) == b.model_copy(update={"file": ""})
    np.testing.assert_array_equal(simulate(tape_scenario, paths=3, seed=2).groups["bank"], simulate(parquet, paths=3, seed=2).groups["bank"])


def test_parquet_with_typed_columns(tmp_path):
    """A Parquet tape may hold numbers as numbers, dates as dates and empty cells as nulls."""
    frame = pd.DataFrame({
        "amount": [500000.0, 200000.0], "start": pd.to_datetime(["2020-04-15", "2020-12-01"]).date,
        "maturity": ["2021-03", "2021-12"], "product": ["credit", "credit"], "pd": [0.0, 0.0],
        "cover": [None, "fund"], "status": ["performing", "performing"],
    })
    frame.to_parquet(tmp_path / "typed.parquet", index=False)
    s = scenario_from_dict(tape_data(**{"banks.city.loan_tape": "typed.parquet"}), base=tmp_path)
    tape = s.banks["city"].loan_tape
    assert tape.start == ("2020-04", "2020-12") and tape.cover == ("", "fund") and tape.grade is None


def test_a_saved_scenario_holds_its_tape(tmp_path, tape_scenario):
    """to_toml, to_dict and saved results carry the tape's rows, so they read back without the file."""
    (tmp_path / "book.csv").unlink()
    again = load_scenario(write_tape(tmp_path, tape_scenario.to_toml(), "saved.toml"))
    assert again == tape_scenario and again.digest() == tape_scenario.digest()
    assert scenario_from_dict(tomllib.loads(tape_scenario.to_toml())).digest() == tape_scenario.digest()
    results = simulate(tape_scenario, paths=2, seed=1)
    loaded = Results.load(results.save(tmp_path / "out"))
    assert loaded.scenario.banks["city"].loan_tape == tape_scenario.banks["city"].loan_tape


def test_the_tape_path_is_taken_from_the_scenario_file(tmp_path):
    """A scenario file names its tape relative to its own directory, wherever it is run from."""
    directory = tmp_path / "plans"
    directory.mkdir()
    write_tape(directory)
    data = tape_data()
    toml = directory / "plan.toml"
    import tomli_w

    toml.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert load_scenario(toml).banks["city"].loan_tape.loans == 7


# ------------------------------------------------------------------------------------------------ bad tapes
HEADER = "firm,amount,start,maturity,product,grade,cover,status,defaulted\n"
GOOD = "A,500000,2020-04,2021-03,credit,0,,performing,\n"


def _rows(*rows: str) -> str:
    return HEADER + GOOD + "".join(row + "\n" for row in rows)


BAD_TAPES = {
    "unknown column": ("firm,amount,rate,start,maturity,product,grade,status\nA,1,0.05,2020-04,2021-03,credit,0,performing\n",
                       "loan tape book.csv, row 1, column rate: unknown column; the columns are amount, start, maturity, product, status, grade, pd, "
                       "segment, cover, firm, defaulted"),
    "missing column": ("amount,start,product,grade,status\n1,2020-04,credit,0,performing\n", "loan tape book.csv, row 1, column maturity: is missing"),
    "grade and pd": ("amount,start,maturity,product,grade,pd,status\n1,2020-04,2021-03,credit,0,0.01,performing\n",
                     "loan tape book.csv, row 1, column pd: give grade or pd, not both"),
    "neither grade nor pd": ("amount,start,maturity,product,status\n1,2020-04,2021-03,credit,performing\n",
                             "loan tape book.csv, row 1, column grade: is missing (give each loan's grade, or its annual PD in a column pd)"),
    "duplicate column": ("amount,start,maturity,product,grade,status,grade\n1,2020-04,2021-03,credit,0,performing,0\n",
                         "loan tape book.csv, row 1, column grade: appears twice"),
    "empty file": ("", "loan tape book.csv: is empty"),
    "header only": (HEADER, "loan tape book.csv: holds no loans"),
    "short row": (_rows("B,500000,2020-04"), "loan tape book.csv, row 3: has 3 fields; the header has 9"),
    "amount zero": (_rows("B,0,2020-04,2021-03,credit,0,,performing,"), "loan tape book.csv, row 3, column amount: '0' must be > 0"),
    "amount negative": (_rows("B,-5,2020-04,2021-03,credit,0,,performing,"),
                        "loan tape book.csv, row 3, column amount: '-5' is not an amount in CNY, such as 500000 or '50万'"),
    "amount not a number": (_rows("B,\"1,000\",2020-04,2021-03,credit,0,,performing,"),
                            "loan tape book.csv, row 3, column amount: '1,000' is not an amount in CNY, such as 500000 or '50万'"),
    "amount below a fen": (_rows("B,100.001,2020-04,2021-03,credit,0,,performing,"),
                           "loan tape book.csv, row 3, column amount: '100.001' has more than two decimals: amounts are whole fen"),
    "amount empty": (_rows("B,,2020-04,2021-03,credit,0,,performing,"), "loan tape book.csv, row 3, column amount: is empty"),
    "bad month": (_rows("B,500000,2020-04,2019-13,credit,0,,performing,"),
                  "loan tape book.csv, row 3, column maturity: '2019-13' is not a month (YYYY-MM)"),
    "bad product": (_rows("B,500000,2020-04,2021-03,loan,0,,performing,"),
                    "loan tape book.csv, row 3, column product: 'loan' is not a product (credit, guaranteed, collateral, 信用, 担保, 抵押, 质押)"),
    "bad status": (_rows("B,500000,2020-04,2021-03,credit,0,,overdue,"),
                   "loan tape book.csv, row 3, column status: 'overdue' is not a status (performing, npl)"),
    "bad grade": (_rows("B,500000,2020-04,2021-03,credit,A,,performing,"),
                  "loan tape book.csv, row 3, column grade: 'A' is not a grade: grades are numbered 0, 1, 2 … in the order of the segment's pd"),
    "grade beyond the segment's": (_rows("B,500000,2020-04,2021-03,credit,3,,performing,"),
                                   "loan tape book.csv, row 3, column grade: 3 is not a grade of segment only, whose grades are 0 to 2"),
    "start in the run": (_rows("B,500000,2021-02,2021-09,credit,0,,performing,"),
                         "loan tape book.csv, row 3, column start: '2021-02' is not before calendar.start (2021-01): the tape is the book at the opening"),
    "maturity before start": (_rows("B,500000,2020-04,2020-04,credit,0,,npl,"),
                              "loan tape book.csv, row 3, column maturity: '2020-04' is not after the loan's start (2020-04)"),
    "performing loan already due": (_rows("B,500000,2020-01,2020-12,credit,0,,performing,"),
                                    "loan tape book.csv, row 3, column maturity: '2020-12' is before calendar.start (2021-01): a performing loan of the "
                                    "opening book falls due in the run (or it is npl)"),
    "term too long": (_rows("B,500000,1990-01,2021-03,credit,0,,performing,"),
                      "loan tape book.csv, row 3, column maturity: '2021-03' makes a term of 374 months, more than 360"),
    "default month of a performing loan": (_rows("B,500000,2020-04,2021-03,credit,0,,performing,2020-11"),
                                           "loan tape book.csv, row 3, column defaulted: '2020-11' is given for a performing loan: only an npl loan "
                                           "has a default month"),
    "default in the run": (_rows("B,500000,2020-04,2021-03,credit,0,,npl,2021-01"),
                           "loan tape book.csv, row 3, column defaulted: '2021-01' is not before calendar.start (2021-01)"),
    "default before the loan": (_rows("B,500000,2020-04,2021-03,credit,0,,npl,2020-02"),
                                "loan tape book.csv, row 3, column defaulted: '2020-02' is before the loan's start (2020-04)"),
    "default already written off": (_rows("B,500000,2019-04,2020-03,credit,0,,npl,2020-06"),
                                    "loan tape book.csv, row 3, column defaulted: '2020-06' is 6 months before the opening: the loan was written off "
                                    "by then (risk.write_off_months = 6 in the opening's year)"),
    "unknown cover": (_rows("B,500000,2020-04,2021-03,guaranteed,0,province,performing,"),
                      "loan tape book.csv, row 3, column cover: 'province' is not a guarantor or pool of the scenario (guarantors: county; pools: fund)"),
    "npl loan with a cover that cannot exist": (_rows("B,500000,2020-04,2021-03,credit,0,county,npl,2020-11"),
                                                "loan tape book.csv, row 3, column cover: guarantor county covers guaranteed loans, and this loan is credit"),
    "pool on a guaranteed loan": (_rows("B,500000,2020-04,2021-03,guaranteed,0,fund,performing,"),
                                  "loan tape book.csv, row 3, column cover: pool fund covers credit loans, and this loan is guaranteed"),
    "pool above its max_loan": (_rows("B,300万,2020-04,2021-03,credit,0,fund,performing,"),
                                "loan tape book.csv, row 3, column cover: pool fund covers loans up to its max_loan (200万), and this loan is 300万"),
    "firm with another maturity": (_rows("A,200000,2020-04,2021-06,credit,0,,performing,"),
                                   "loan tape book.csv, row 3, column maturity: firm 'A' has maturity 2021-03 on row 2: a firm's loans share one start "
                                   "and maturity (the engine's borrower has one facility)"),
    "firm partly npl": (_rows("A,200000,2020-04,2021-03,credit,0,,npl,2020-11"),
                        "loan tape book.csv, row 3, column status: firm 'A' has status performing on row 2: a firm's loans default together: all "
                        "performing or all npl"),
    "firm of two grades": (_rows("A,200000,2020-04,2021-03,credit,1,,performing,"),
                           "loan tape book.csv, row 3, column grade: firm 'A' has grade 0 on row 2: a firm has one grade"),
    "firm above the inclusive limit": (_rows("A,996万,2020-04,2021-03,credit,0,,performing,"),
                                       "loan tape book.csv, row 3, column amount: firm 'A''s loans add up to 1046万, above "
                                       "firms.inclusive_line_limit (1000万): a loan tape holds the inclusive book"),
}


@pytest.mark.parametrize(("text", "message"), list(BAD_TAPES.values()), ids=list(BAD_TAPES))
def test_a_bad_tape_is_refused_in_one_line_naming_row_and_column(tmp_path, text, message):
    write_tape(tmp_path, text)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(tape_data(), base=tmp_path)
    assert str(error.value) == message


BAD_BANKS = {
    "segment left out of two": ({"firms.segments.other": {"firms": 10, "unbanked_share": 1.0, "pd": [0.01], "grade_share": [1.0], "rho": 0.1,
                                                           "line_median": "10万", "line_p90": "30万"}},
                                "loan tape book.csv, row 1, column segment: is missing: the scenario has 2 segments (only, other), so each loan names "
                                "its own"),
    "cover that does not admit the bank": ({"guarantors.county.banks": ["rural"], "banks.rural": {
                                               "share": 0.0, "all_loans": "1亿", "non_inclusive_growth": 0.0, "max_pd": 1.0, "rate": 0.06,
                                               "term_mix": {"12": 1.0}, "product_mix": {"credit": 1.0}}, "banks.city.share": 1.0},
                                           "loan tape book.csv, row 3, column cover: guarantor county does not admit bank city (its banks: rural)"),
    "guarantor's max_line": ({"guarantors.county.max_line": "50万"},
                             "loan tape book.csv, row 3, column cover: firm 'A''s line (80万) is above guarantor county's max_line (50万)"),
    "initial_balance": ({"banks.city.initial_balance": "200万"},
                        "banks.city.initial_balance = 200万: must be left out with loan_tape: the tape is the bank's opening book"),
    "opening_npl_ratio": ({"banks.city.opening_npl_ratio": 0.02},
                          "banks.city.opening_npl_ratio = 0.02: must be left out with loan_tape: the tape's npl loans are the bank's opening NPLs"),
    "all_loans below the tape": ({"banks.city.all_loans": "250万"},
                                 "banks.city.all_loans = 250万: must be ≥ the loan tape's balance (280万: 200万 performing, 80万 npl)"),
    "not a tape file": ({"banks.city.loan_tape": "book.xlsx"}, "banks.city.loan_tape = 'book.xlsx': must name a loan tape file ending in .csv or .parquet"),
    "missing file": ({"banks.city.loan_tape": "nowhere.csv"}, "banks.city.loan_tape = 'nowhere.csv': cannot read the file: No such file or directory"),
    "more tape firms than firms": ({"firms.segments.only.firms": 2},
                                   "firms.segments.only.unbanked_share = 1.0: leaves 1 borrowers of grade 2 (PD 0), 1 of them from loan tapes, but only 0 "
                                   "firms of that grade exist: raise unbanked_share or the banks' max_pd, or the segment's firms"),
}


@pytest.mark.parametrize(("changes", "message"), list(BAD_BANKS.values()), ids=list(BAD_BANKS))
def test_a_tape_that_does_not_fit_its_scenario_is_refused(tmp_path, changes, message):
    write_tape(tmp_path)
    with pytest.raises(ScenarioError) as error:
        scenario_from_dict(tape_data(**changes), base=tmp_path)
    assert str(error.value) == message


def test_a_bad_tape_exits_2_with_one_line_and_no_traceback(tmp_path, capsys):
    write_tape(tmp_path, _rows("B,500000,2020-04,2019-13,credit,0,,performing,"))
    import tomli_w

    plan = tmp_path / "plan.toml"
    plan.write_text(tomli_w.dumps(tape_data()), encoding="utf-8")
    for command in (["validate", str(plan)], ["run", str(plan), "--paths", "1"]):
        code = main(command)
        out, err = capsys.readouterr()
        assert code == 2
        assert err.splitlines() == ["creditsim: error: loan tape book.csv, row 3, column maturity: '2019-13' is not a month (YYYY-MM)"]
        assert "Traceback" not in out + err


# ------------------------------------------------------------------------------------------------ the rules
def test_a_pd_goes_to_the_nearest_grade_on_the_log_odds_scale(tmp_path):
    """Grades 1%, 2%, 5%: a PD of 3.4% is nearer 2% in PD points but nearer 5% in log-odds (0.40 against 0.55), so it is
    grade 2; 0 goes to the smallest PD, ties to the first grade."""
    grades = (0.01, 0.02, 0.05)
    assert [nearest_grade(pd, grades) for pd in (0.034, 0.03, 0.0, 0.5, 0.01)] == [2, 1, 0, 2, 0]
    assert nearest_grade(0.02, (0.02, 0.02)) == 0
    write_tape(tmp_path, "amount,start,maturity,product,pd,status\n500000,2020-04,2021-03,credit,3.4%,performing\n")
    s = scenario_from_dict(tape_data(**{"firms.segments.only.pd": list(grades)}), base=tmp_path)
    assert initial_population(s).tapes.grade.tolist() == [2]


def test_other_banks_and_firms_keep_their_rows_whatever_the_tape_holds(tmp_path):
    """Tape firms take their rows after every other opening firm: two tapes with the same firms by segment and grade
    but other amounts, dates, products and npl loans leave the other banks' paths the same bit for bit (without
    applications, through which a firm that leaves the tape's bank could borrow from another); the other banks keep
    their share of the banked firms."""
    base = small_default(**{f"firms.segments.{name}.applications_per_month": 0 for name in ("micro", "small", "individual")},
                         **{"campaign.channels": {}})
    data = base.to_dict()
    tape = "firm,amount,start,maturity,product,segment,grade,status,defaulted\n"
    rows_a = [f"f{i},{100000 + 1000 * i},2020-0{1 + i % 9},2021-0{1 + i % 9},credit,micro,{i % 5},performing," for i in range(40)]
    rows_b = [f"f{i},{300000 + 7000 * i},2020-1{i % 3},2022-0{1 + i % 9},collateral,micro,{i % 5},performing," for i in range(40)]
    npl_b = ["x,50000,2019-01,2020-01,credit,small,2,npl,2020-06"]
    write_tape(tmp_path, tape + "\n".join(rows_a) + "\n", "a.csv")
    write_tape(tmp_path, tape + "\n".join(rows_b + npl_b) + "\n", "b.csv")
    a = scenario_from_dict(with_changes(data, {"banks.city_bank.loan_tape": "a.csv", "banks.city_bank.opening_npl_ratio": 0.0,
                                               "banks.city_bank.initial_balance": None}), base=tmp_path)
    b = scenario_from_dict(with_changes(a.to_dict(), {"banks.city_bank.loan_tape": "b.csv"}), base=tmp_path)
    drawn = initial_population(base).borrowers
    for s in (a, b):
        start = initial_population(s)
        np.testing.assert_array_equal(start.borrowers[..., [0, 2]], drawn[..., [0, 2]])
        assert start.borrowers[..., 1].sum() == 0 and start.tapes.borrowers[..., 1].sum() == 40
    ra, rb = simulate(a, paths=3, seed=4), simulate(b, paths=3, seed=4)
    for bank in ("big_bank", "rural_bank"):
        np.testing.assert_array_equal(ra.groups["bank"][:, :, s.bank_names.index(bank)], rb.groups["bank"][:, :, s.bank_names.index(bank)], err_msg=bank)
    assert ra.cumulative("defaults", "big_bank").sum() > 0 and ra.cumulative("repaid", "big_bank").sum() > 0
    assert not np.array_equal(ra.values("balance", "city_bank"), rb.values("balance", "city_bank"))


def test_identities_and_audit_hold_with_a_risky_tape_in_a_full_scenario(tmp_path):
    """A tape of risky firms (with guarantees, and npl loans) in the tests' city with every instrument: the running
    totals match their recount every month, and the balance identities hold."""
    data = small_default().to_dict()
    data["guarantors"] = {"county": {"capital": "5亿", "coverage": 0.8, "fee_rate": 0.01}}
    data["pools"] = {"fund": {"size": "1亿", "payout_share": 0.5}}
    rows = ["firm,amount,start,maturity,product,segment,pd,cover,status,defaulted"]
    for i in range(60):
        product, cover = ("guaranteed", "county") if i % 3 == 0 else ("credit", "fund") if i % 3 == 1 else ("collateral", "")
        rows.append(f"f{i},{50000 + 3000 * i},2020-{1 + i % 12:02d},2021-{1 + i % 12:02d},{product},{('micro', 'small', 'individual')[i % 3]},"
                    f"{0.01 + 0.002 * i:.3f},{cover},performing,")
        rows.append(f"f{i},{20000 + 100 * i},2020-{1 + i % 12:02d},2021-{1 + i % 12:02d},credit,{('micro', 'small', 'individual')[i % 3]},"
                    f"{0.01 + 0.002 * i:.3f},,performing,")
    rows += [f"n{i},{80000 + 500 * i},2019-03,2020-03,{('credit', 'collateral')[i % 2]},micro,0.05,,npl,2020-{1 + i % 12:02d}" for i in range(30)]
    write_tape(tmp_path, "\n".join(rows) + "\n")
    s = scenario_from_dict(with_changes(data, {"banks.city_bank.loan_tape": "book.csv", "banks.city_bank.opening_npl_ratio": 0.0,
                                               "banks.city_bank.initial_balance": None}), base=tmp_path)
    run_task(s, 3, [0, 1], audit=True)
    results = simulate(s, paths=6, seed=3)
    assert_identities(results)
    assert results.cumulative("defaults", "city_bank").sum() > 0


def test_a_sample_runs_evenly_spaced_firms_of_the_tape(tmp_path):
    """At 1:2 the engine runs round(n / 2) of the n performing firms, evenly spaced in tape order (positions
    floor((j + ½) n / m)), and as many of the npl firms; a firm keeps all its loans; the results are scaled back."""
    rows = [f"p{i},{(i + 1) * 10000},2020-04,2021-03,credit,0,performing," for i in range(5)]
    rows.insert(1, "p0,7000,2020-04,2021-03,credit,0,performing,")
    rows += [f"n{i},{(i + 1) * 1000},2019-04,2020-03,credit,0,npl,2020-11" for i in range(4)]
    write_tape(tmp_path, "firm,amount,start,maturity,product,grade,status,defaulted\n" + "\n".join(rows) + "\n")
    s = scenario_from_dict(tape_data(**{"sample": "1:2"}), base=tmp_path)
    kept = sampled_tape(s.banks["city"].loan_tape, 0.5)
    assert kept.firm == ("p0", "p0", "p2", "p4", "n1", "n3")  # 3 of 5 performing (round(2.5) = 3, half up), 2 of 4 npl
    results = simulate(s, paths=1, seed=0)
    np.testing.assert_allclose(results.values("balance")[0, 0], 2 * (10000 + 7000 + 30000 + 50000 + 2000 + 4000))


def test_sampling_may_not_leave_a_tape_empty(tmp_path):
    write_tape(tmp_path)
    with pytest.raises(ScenarioError, match="^sample = 0.1: leaves none of the 3 performing firms of banks.city.loan_tape in the sample$"):
        scenario_from_dict(tape_data(sample=0.1), base=tmp_path)
