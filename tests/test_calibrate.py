"""Calibration and backtest: on data simulated from known parameters, the fit recovers them."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from creditsim import simulate
from creditsim.analysis.calibrate import Observation, apply, backtest, calibrate, model_values, parameters, read_observations
from creditsim.errors import DataError, ScenarioError
from creditsim.present.cli import main
from creditsim.scenario import scenario_from_dict
from helpers import small_default

KEYS = ["demand.reborrow_prob", "firms.segments.*.pd"]
TRUTH = np.array([0.8, 1.5])  # re-borrowing probability; every PD × 1.5
SPEC = [("2021-12", "balance"), ("2022-12", "balance"), ("2021-12", "borrowers"), ("2022-12", "borrowers"), ("2021-12", "npl_ratio"),
        ("2022-12", "npl_ratio"), ("2022-12", "total:approvals"), ("2023-06", "balance"), ("2023-06", "npl_ratio")]


@pytest.fixture(scope="module")
def start():
    """The shrunk default with re-borrowing at 0.9 and the default PDs: the starting point of the fits."""
    return small_default(**{"demand.reborrow_prob": 0.9})


@pytest.fixture(scope="module")
def observed(start):
    """The truth's mean over 200 paths (seed 99, not the fit's seed) of balances, borrowers, NPL ratios and a
    year's approvals."""
    truth = apply(start, parameters(start, KEYS), TRUTH)
    values = model_values(simulate(truth, paths=200, seed=99), [Observation(d, q, 0.0) for d, q in SPEC]).mean(axis=0)
    return [Observation(d, q, float(v)) for (d, q), v in zip(SPEC, values, strict=True)]


def write_csv(path, observations) -> None:
    rows = ["date,quantity,value,scope,sd"] + [f"{o.date},{o.quantity},{o.value!r},all," for o in observations]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_calibration_recovers_known_parameters(start, observed):
    """From (0.9, 1.0) the fit on 2021–2023 observations finds each parameter within 3 of its standard errors of the
    truth, and within about two of the errors a fit of 40 paths reports (se 0.014 and 0.066–0.072 on seeds 1–3, of
    which the Monte Carlo part se_mc is 0.003–0.004 and 0.029–0.041): the re-borrowing probability within 0.03 and
    the PD multiplier within 0.15."""
    fit = calibrate(start, [o for o in observed if o.date < "2023"], KEYS, paths=40, seed=1, max_evaluations=40)
    got = fit.parameters.set_index("key")
    for key, true, tolerance in zip(KEYS, TRUTH, (0.03, 0.15), strict=True):
        fitted, se, se_mc = got.loc[key, "fitted"], got.loc[key, "se"], got.loc[key, "se_mc"]
        assert abs(fitted - true) <= tolerance, (key, fitted)
        assert 0 < se_mc < se and abs(fitted - true) <= 3 * se, (key, fitted, se, se_mc)
    assert got.loc["firms.segments.*.pd", "scale"] and not got.loc["demand.reborrow_prob", "scale"]
    assert fit.scenario.demand.reborrow_prob == pytest.approx(got.loc["demand.reborrow_prob", "fitted"])
    assert fit.scenario.firms.segments["micro"].pd[0] == pytest.approx(start.firms.segments["micro"].pd[0] * got.loc["firms.segments.*.pd", "fitted"])
    assert (np.abs(fit.fit["z"]) < 4).all()


def test_backtest_projects_the_held_out_year_inside_its_band(start, observed, tmp_path, capsys):
    """Fit the re-borrowing probability on 2021–2022 (PDs fixed at the truth) and project 2023: the held-out
    observations lie inside the 90% band of the projection. Through the command line."""
    truth_pd = apply(start, parameters(start, ["firms.segments.*.pd"]), np.array([TRUTH[1]]))
    fit, projection = backtest(truth_pd, observed, ["demand.reborrow_prob"], train_until=2022, paths=10, seed=1, projection_paths=60,
                               max_evaluations=10)
    assert abs(fit.parameters.loc[0, "fitted"] - TRUTH[0]) <= 0.02
    assert list(projection["date"]) == ["2023-06", "2023-06"] and projection["inside_90"].all()
    assert (projection["p5"] <= projection["median"]).all() and (projection["median"] <= projection["p95"]).all()
    data = tmp_path / "observed.csv"
    write_csv(data, observed)
    scenario = tmp_path / "s.toml"
    scenario.write_text(truth_pd.to_toml(), encoding="utf-8")
    assert main(["backtest", str(scenario), "--data", str(data), "--fit", "demand.reborrow_prob", "--train-until", "2022", "--paths", "6",
                 "--projection-paths", "20", "--max-evaluations", "6"]) == 0
    out = capsys.readouterr().out
    assert "held-out observations inside the 90% band" in out and "demand.reborrow_prob" in out


def test_calibrate_command_writes_a_scenario_that_validates(start, observed, tmp_path, capsys):
    data = tmp_path / "observed.csv"
    write_csv(data, [o for o in observed if o.quantity in ("balance", "borrowers")])
    scenario = tmp_path / "s.toml"
    scenario.write_text(start.to_toml("a comment"), encoding="utf-8")
    out_file = tmp_path / "calibrated.toml"
    assert main(["calibrate", str(scenario), "--data", str(data), "--fit", "demand.reborrow_prob", "--paths", "6", "--max-evaluations", "8",
                 "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "calibrated scenario written" in out and "se_mc" in out.splitlines()[2]
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("# Calibrated by creditsim") and "demand.reborrow_prob = " in text and "(Monte Carlo part " in text
    calibrated = scenario_from_dict(tomllib.loads(text))
    assert calibrated.demand.reborrow_prob != start.demand.reborrow_prob and 0.7 < calibrated.demand.reborrow_prob < 0.9


def test_a_scenario_round_trips_through_toml(start):
    assert scenario_from_dict(tomllib.loads(start.to_toml("x"))).digest() == start.digest()


@pytest.mark.parametrize(("text", "message"), [
    ("date,quantity\n2021-12,balance\n", "missing column(s) value"),
    ("date,quantity,value\n2021-13,balance,1\n", "row 2: date = '2021-13': must be a month 'YYYY-MM'"),
    ("date,quantity,value\n2021-12,disbursed,1\n", "row 2: quantity = 'disbursed': must be a stock or ratio metric"),
    ("date,quantity,value\n2021-12,growth:npl_ratio,1\n", "row 2: quantity = 'growth:npl_ratio'"),
    ("date,quantity,value\n2021-12,balance,lots\n", "row 2: value = 'lots': must be a number"),
    ("date,quantity,value,sd\n2021-12,balance,1,-2\n", "row 2: sd = '-2': must be a number > 0"),
    ("date,quantity,value\n", "holds no observations"),
])
def test_bad_observation_files_name_the_row_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_observations(path)


def test_bad_fit_keys_and_dates_outside_the_run_are_one_line_errors(start, tmp_path, capsys):
    with pytest.raises(ScenarioError, match="matches no numeric field"):
        parameters(start, ["demand.reborow_prob"])
    with pytest.raises(DataError, match="outside the run"):
        calibrate(start, [Observation("2030-12", "balance", 1.0)], ["demand.reborrow_prob"], paths=2)
    data = tmp_path / "observed.csv"
    data.write_text("date,quantity,value\n2021-12,balance,6e9\n", encoding="utf-8")
    assert main(["calibrate", "nowhere.toml", "--data", str(data), "--fit", "demand.growth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_observed_puts_each_observation_against_the_model_band(start, tmp_path, capsys):
    """`creditsim observed`: an observation at the model's own median (same paths and seed) is inside its 90% band,
    one at twice the median is not, and the table and count say so; an observation outside the run is a one-line
    error (exit 2)."""
    from creditsim.analysis.calibrate import against_data

    results = simulate(start, paths=8, seed=4)
    date = results.dates[-1]
    median = float(np.median(results.values("balance")[:, -1]))
    points = [Observation(date, "balance", median), Observation(date, "balance", 2 * median)]
    table = against_data(start, points, paths=8, seed=4)
    assert list(table["inside_90"]) == [True, False]
    np.testing.assert_allclose(table["median"], median, rtol=1e-12)
    np.testing.assert_allclose(table["relative_error"], [0.0, -0.5], atol=1e-12)
    data, scenario = tmp_path / "observed.csv", tmp_path / "s.toml"
    write_csv(data, points)
    scenario.write_text(start.to_toml(), encoding="utf-8")
    assert main(["observed", str(scenario), "--data", str(data), "--paths", "8", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(date)]
    assert [row.split()[-1] for row in rows] == ["yes", "no"] and "1 of 2 observations inside the 90% band" in out
    write_csv(data, [Observation("2031-01", "balance", median)])
    assert main(["observed", str(scenario), "--data", str(data), "--paths", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
