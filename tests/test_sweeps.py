"""Sweeps and policy search against closed forms.

The scenario is a static pool of n firms with one loan each for a year, annual PD ``pd`` and asset correlation ρ:
its defaults D in the year are a Binomial(n, p(Z)) mixture over the systematic factor Z (the Vasicek model,
checked on its own in ``test_closed_forms.py``), so P(D ≤ c) and P(D ≥ c) are known exactly for every PD, and
so is the PD at which either reaches a probability. Every random test is seeded; tolerances are multiples of
the Monte Carlo standard error.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

import creditsim
from creditsim.analysis.sweeps import KEY_METRICS, parse_grid, resume_sweep
from creditsim.errors import ScenarioError
from creditsim.present.cli import main
from creditsim.present.plots import sweep_figure
from creditsim.results.targets import paired_difference_interval
from creditsim.scenario import scenario_from_dict
from helpers import BASE_TOML, assert_same_bits, default_count_cdf, pool_scenario

N, RHO = 2000, 0.12
FEW, SOME = 80, 10  # targets: at most FEW defaults in 2021, at least SOME
PD_KEY = "firms.segments.only.pd[0]"


def _pool(pd: float = 0.03):
    data = pool_scenario(firms=N, unbanked_share=0.0, pd=pd, rho=RHO, months=12, term_mix={"12": 1.0}, reborrow_prob=1.0).to_dict()
    year = {"metric": "defaults", "measure": "cumulative", "start": "2021-01", "end": "2021-12"}
    data["targets"] = {"few_defaults": {**year, "comparison": "<=", "threshold": FEW},
                       "some_defaults": {**year, "comparison": ">=", "threshold": SOME}}
    return scenario_from_dict(data)


def p_few(pd: float) -> float:
    return float(default_count_cdf(FEW, N, pd, RHO))


def p_some(pd: float) -> float:
    return 1.0 - float(default_count_cdf(SOME - 1, N, pd, RHO))


@pytest.fixture(scope="module")
def pool():
    return _pool()


@pytest.fixture(scope="module")
def swept(pool):
    return creditsim.sweep(pool, {PD_KEY: "0.01:0.03:3"}, paths=400, seed=11, workers=2)


def test_sweep_probabilities_match_the_closed_form(swept):
    table = swept.targets()
    assert list(table[PD_KEY]) == [0.01, 0.01, 0.02, 0.02, 0.03, 0.03]
    for row in table.to_dict("records"):
        pd = row[PD_KEY]
        exact = p_few(pd) if row["target"] == "few_defaults" else p_some(pd)
        se = np.sqrt(exact * (1 - exact) / row["paths"])
        assert abs(row["probability"] - exact) < 4 * se, (row["target"], pd, row["probability"], exact)
        assert row["ci_low"] <= row["probability"] <= row["ci_high"]
    for i, pd in enumerate((0.01, 0.02, 0.03)):  # the measured counts: E[D] = n · pd exactly
        d = swept.values[i]["target:few_defaults"]
        assert abs(d.mean() - N * pd) < 4 * d.std(ddof=1) / np.sqrt(d.size)


def _count_variance(q: np.ndarray) -> float:
    """Var of a Binomial(N, q(Z)) mixture over the systematic factor Z: N E[q(1 − q)] + N² Var(q)."""
    z = np.linspace(-9.0, 9.0, 6001)
    w = stats.norm.pdf(z) * (z[1] - z[0])
    return float(N * (w @ (q(z) * (1 - q(z)))) + N**2 * (w @ q(z) ** 2 - (w @ q(z)) ** 2))


def _conditional_pd(pd: float):
    return lambda z: ndtr((ndtri(pd) - np.sqrt(RHO) * z) / np.sqrt(1 - RHO))


def _variance_ok(sample: np.ndarray, sigma2: float) -> None:
    """The sample variance within 4 standard errors of sigma2; Var(s²) ≈ (m4 − s⁴) / n from the sample."""
    s2 = sample.var(ddof=1)
    se = np.sqrt((np.mean((sample - sample.mean()) ** 4) - s2**2) / sample.size)
    assert abs(s2 - sigma2) < 4 * se, (s2, sigma2, se)


def test_neighbouring_differences_are_far_less_noisy_than_independent_seeds(pool, swept):
    """Common random numbers: the same firms and factor draws at every PD, so D(0.02) − D(0.01) counts the firms
    whose draw falls between the two conditional PDs, a mixture with variance N E[Δ(1 − Δ)] + N² Var(Δ),
    Δ = p₂(Z) − p₁(Z); on independent seeds the variance is Var D(0.01) + Var D(0.02), about 7 times more."""
    d1, d2 = swept.values[0]["target:few_defaults"], swept.values[1]["target:few_defaults"]
    independent = creditsim.sweep(pool, {PD_KEY: [0.02]}, paths=400, seed=12, workers=2).values[0]["target:few_defaults"]
    p1, p2 = _conditional_pd(0.01), _conditional_pd(0.02)
    common, apart = _count_variance(lambda z: p2(z) - p1(z)), _count_variance(p1) + _count_variance(p2)
    assert common < 0.2 * apart  # the closed forms: far less noisy
    _variance_ok(d2 - d1, common)
    _variance_ok(independent - d1, apart)
    assert np.var(d2 - d1, ddof=1) < 0.2 * np.var(independent - d1, ddof=1)
    assert (d2 >= d1).all()  # a higher PD never removes a default on the same path
    npl = [v["metric:npl_ratio"] for v in swept.values[:2]]
    assert np.var(npl[1] - npl[0], ddof=1) < 0.2 * (np.var(npl[0], ddof=1) + np.var(npl[1], ddof=1))
    # the table's change in probability is the paired difference with its paired score interval, narrower than
    # the normal interval of two independent samples of the same size
    row = swept.targets().query("variant == 1 and target == 'few_defaults'").iloc[0]
    hit0, hit1 = d1 <= FEW, d2 <= FEW
    assert (row.change, row.change_low, row.change_high) == pytest.approx(paired_difference_interval(hit0, hit1))
    assert row.change == pytest.approx(hit1.mean() - hit0.mean()) and row.change_low < row.change < row.change_high
    unpaired = 2 * 1.959963984540054 * np.sqrt(hit0.var(ddof=1) / hit0.size + hit1.var(ddof=1) / hit1.size)
    assert row.change_high - row.change_low < unpaired


def test_sweep_key_metrics_and_chart(swept):
    metrics = swept.key_metrics()
    assert set(metrics["metric"]) == set(KEY_METRICS)
    borrowers = metrics[metrics["metric"] == "borrowers"]
    assert (borrowers["mean"] == N).all()  # nobody leaves a static pool that always re-borrows
    figure = sweep_figure(swept)
    assert isinstance(figure, Figure) and len([ax for ax in figure.axes if ax.get_visible()]) == 2
    with pytest.raises(KeyError, match="no assessed target"):
        sweep_figure(swept, "nope")


def test_two_key_grid_runs_the_product_last_key_fastest(pool):
    result = creditsim.sweep(pool, [f"{PD_KEY}=0.01,0.02", "firms.segments.only.rho=0.05,0.1"], paths=4, seed=1)
    assert result.settings == [{PD_KEY: 0.01, "firms.segments.only.rho": 0.05}, {PD_KEY: 0.01, "firms.segments.only.rho": 0.1},
                               {PD_KEY: 0.02, "firms.segments.only.rho": 0.05}, {PD_KEY: 0.02, "firms.segments.only.rho": 0.1}]
    assert [s.firms.segments["only"].pd[0] for s in result.scenarios] == [0.01, 0.01, 0.02, 0.02]
    table = result.targets()
    # the change is measured against the previous value of the last key only
    changes = table[table["target"] == "few_defaults"]["change"].isna().tolist()
    assert changes == [True, False, True, False]
    figure = sweep_figure(result, "few_defaults")
    assert len(figure.axes[0].get_lines()) >= 2  # one line per value of the second key


def test_single_values_are_fixed_not_swept(pool):
    result = creditsim.sweep(pool, [f"{PD_KEY}=0.01,0.02", "firms.segments.only.rho=0.2"], paths=3, seed=1)
    assert result.keys == [PD_KEY] and result.scenario.firms.segments["only"].rho == 0.2
    assert all(s.firms.segments["only"].rho == 0.2 for s in result.scenarios)
    assert not np.isnan(result.targets()["change"].iloc[-1])  # the fixed key does not break the pairing


def test_no_assessed_target_is_said_not_hidden(pool, capsys):
    short = creditsim.sweep(pool, {"calendar.months": [6]}, paths=2, seed=1)
    assert short.targets().empty and list(short.targets().columns)[:3] == ["variant", "calendar.months", "target"]
    assert set(short.not_assessed()) == {"few_defaults", "some_defaults"}
    with pytest.raises(KeyError, match="nothing to plot"):
        sweep_figure(short)


def test_sweep_resumes_from_its_checkpoint(pool, tmp_path):
    whole = creditsim.sweep(pool, {PD_KEY: [0.01, 0.02], "firms.segments.only.rho": [0.1]}, paths=6, seed=3, chunk_size=2,
                            checkpoint=tmp_path / "ck")
    for name in ("task-00001.npz", "task-00004.npz"):
        (tmp_path / "ck" / name).unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ck").glob("task-*.npz")}
    again = resume_sweep(tmp_path / "ck", workers=2)
    assert again.keys == whole.keys and again.settings == whole.settings
    assert again.fixed == whole.fixed and whole.fixed["firms.segments.only.rho"] == ("10%", "12%")  # the key set, shown as before
    assert all(a[k].tobytes() == b[k].tobytes() for a, b in zip(whole.values, again.values, strict=True) for k in a)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ck").glob("task-*.npz") if p.name in kept} == kept  # not redone
    creditsim.simulate(pool, paths=2, checkpoint=tmp_path / "run-ck")
    with pytest.raises(creditsim.ResultsError, match="not of a sweep"):
        resume_sweep(tmp_path / "run-ck")


def test_grid_parsing():
    grid = parse_grid(["pools.p.size=1亿:3亿:3", "a.b=[0.5,0.5],[0.4,0.6]", "c=0.5%:1.5%:3", "d=true,false", "e=7"])
    assert grid == {"pools.p.size": ["1亿", "2亿", "3亿"], "a.b": [[0.5, 0.5], [0.4, 0.6]], "c": ["0.5%", "1%", "1.5%"],
                    "d": [True, False], "e": [7]}
    for bad, rule in (("k=1亿:5:3", "same unit"), ("k=1:2:1", "n ≥ 2"), ("k=", "one or more values"), ("k", "dotted.key=value"),
                      ("k=1,,2", "one or more values"), ("k=0.05:0.1", "a:b:n")):
        with pytest.raises(ScenarioError, match=rule):
            parse_grid([bad])
    with pytest.raises(ScenarioError, match="given twice"):
        parse_grid(["k=1", "k=2"])
    assert parse_grid(["sample=1:100,1:50"]) == {"sample": ["1:100", "1:50"]}  # a sample is written with a colon


def test_sweep_refuses_bad_variants_naming_the_field(pool):
    with pytest.raises(ScenarioError, match=r"firms.segments.only.pd = \[0.03\]: has no item \[3\]"):
        creditsim.sweep(pool, {"firms.segments.only.pd[3]": [0.1]}, paths=1)
    with pytest.raises(ScenarioError, match="firms.segments.only.rho = 1.5: must be in"):
        creditsim.sweep(pool, {"firms.segments.only.rho": [0.1, 1.5]}, paths=1)
    with pytest.raises(ScenarioError, match="metrics"):
        creditsim.sweep(pool, {"firms.segments.only.rho": [0.1]}, paths=1, metrics=["guarantee_claims"])


# ------------------------------------------------------------------------------------------ solve
@pytest.mark.parametrize(("target", "largest", "exact"), [
    ("few_defaults", True, lambda pd: p_few(pd)),    # the largest PD at which P(D ≤ 80) ≥ 0.9
    ("some_defaults", False, lambda pd: p_some(pd)),  # the smallest PD at which P(D ≥ 10) ≥ 0.9
])
def test_solve_finds_the_closed_form_answer(pool, target, largest, exact):
    answer = creditsim.solve(pool, target, PD_KEY, "0.5%:5%", 0.9, largest=largest, confidence=0.99, paths=300, seed=4, workers=2)
    truth = 100 * brentq(lambda pd: exact(pd) - 0.9, 0.001, 0.2)  # in the range's unit, %
    assert answer.reachable and answer.unit == "%"
    assert answer.ci_low is not None and answer.ci_high is not None
    assert answer.ci_low <= truth <= answer.ci_high, (answer.message, truth)
    assert abs(answer.value - truth) <= answer.ci_high - answer.ci_low
    assert answer.probability >= 0.9
    # the interval inverts the Wilson test on the values tried: a value whose interval holds the level lies in
    # it; one whose interval lies above the level, on the favourable side; one below, on the other side
    tried = answer.evaluations
    sure, excluded = tried[tried["ci_low"] >= 0.9]["value"], tried[tried["ci_high"] < 0.9]["value"]
    undecided = tried[(tried["ci_low"] < 0.9) & (tried["ci_high"] >= 0.9)]["value"]
    assert undecided.between(answer.ci_low, answer.ci_high).all() and len(sure) and len(excluded)
    # each end of the interval is the outer end of its bracket: the first value where P is surely at the level
    # and the last where the level is excluded
    if largest:
        assert sure.max() == answer.ci_low and excluded.min() == answer.ci_high
    else:
        assert sure.min() == answer.ci_high and excluded.max() == answer.ci_low
    # located to the default tolerance, 1/64 of the range
    beyond = answer.evaluations[(answer.evaluations["value"] > answer.value) if largest else (answer.evaluations["value"] < answer.value)]
    nearest = beyond["value"].min() if largest else beyond["value"].max()
    assert abs(nearest - answer.value) <= 4.5 / 64 + 1e-12
    assert beyond.set_index("value").loc[nearest, "probability"] < 0.9


def test_sequential_solve_adds_paths_only_where_undecided_and_agrees_with_the_fixed_design(pool):
    """The sequential design runs every value on the same first paths and adds paths (doubling, up to ``paths``)
    only while the value's Wilson interval holds the level: each value ends either decided (the level outside its
    interval) or on every path. Values far from the answer stop early; the answer's own value and its interval's
    undecided values have every path, so the answer is the fixed design's (every value on every path) within the
    tolerance, for fewer runs of a path."""
    common = dict(largest=True, confidence=0.95, paths=200, seed=4)
    sequential = creditsim.solve(pool, "few_defaults", PD_KEY, "0.5%:5%", 0.9, **common)
    fixed = creditsim.solve(pool, "few_defaults", PD_KEY, "0.5%:5%", 0.9, initial_paths=200, **common)
    tried = sequential.evaluations
    decided = (tried["ci_low"] >= 0.9) | (tried["ci_high"] < 0.9)
    assert (decided | (tried["paths"] == 200)).all()
    assert set(tried["paths"]) <= {25, 50, 100, 200} and (tried["paths"] < 200).any()
    assert tried.set_index("value").loc[sequential.value, "paths"] == 200
    assert (fixed.evaluations["paths"] == 200).all()
    assert abs(sequential.value - fixed.value) <= 4.5 / 64 + 1e-12
    assert tried["paths"].sum() < 0.8 * fixed.evaluations["paths"].sum()  # 1,975 runs of a path against 2,600 here
    truth = 100 * brentq(lambda pd: p_few(pd) - 0.9, 0.001, 0.2)
    assert sequential.ci_low <= truth <= sequential.ci_high


def test_an_end_of_the_range_that_clearly_meets_is_shown_to_meet():
    """At a PD so low that no path has more than a few defaults, every path meets the target: 25 paths (all met)
    cannot show P ≥ 0.9 at 95% (Wilson's lower bound is 0.87), so the fixed design on 25 paths says the interval
    runs past the range's end; the sequential design adds paths there until the bound passes the level (50 paths)
    and gives the interval's end inside the range."""
    pool = _pool()
    common = dict(largest=True, confidence=0.95, seed=4, tolerance="0.25%")
    fixed = creditsim.solve(pool, "few_defaults", PD_KEY, "0.1%:5%", 0.9, paths=25, **common)
    assert fixed.ci_low is None and fixed.ci_text.startswith("[below 0.1%")
    sequential = creditsim.solve(pool, "few_defaults", PD_KEY, "0.1%:5%", 0.9, paths=400, **common)
    low_end = sequential.evaluations.iloc[0]  # sorted by value: the range's low end, 0.1%
    assert low_end["value"] == pytest.approx(0.1)
    assert low_end["probability"] == 1.0 and low_end["ci_low"] >= 0.9 and low_end["paths"] == 50
    assert sequential.ci_low is not None and not sequential.ci_text.startswith("[below")


def test_solve_for_a_banks_two_increases_test():
    """A bank planner's question: how fast may the big bank's other loans grow with P(it passes 两增 at the end of
    2022) ≥ 0.9? The target is written TEST:BANK:YEAR; P at the answer is the 两增 table's P(pass) of a run of
    that variant on the same paths, and the next value tried beyond the answer falls below the level."""
    two_years = {"calendar.months": 24}  # 2021 and 2022
    city = creditsim.load_scenario(BASE_TOML, overrides=two_years)
    key = "banks.big_bank.non_inclusive_growth"
    answer = creditsim.solve(city, "两增:big_bank:2022", key, "0%:6%", 0.9, largest=True, tolerance="1.5%", paths=40, seed=3)
    assert answer.reachable and answer.unit == "%" and answer.target == "两增:big_bank:2022"
    tried = answer.evaluations.set_index("value")
    paths = int(tried.loc[answer.value, "paths"])
    run = creditsim.simulate(creditsim.load_scenario(BASE_TOML, overrides={**two_years, key: answer.text}), paths=paths, seed=3)
    two = run.two_increases().set_index(["bank", "date", "check"])
    assert two.loc[("big_bank", "2022-12", "两增"), "probability"] == pytest.approx(answer.probability) and answer.probability >= 0.9
    beyond = tried[tried.index > answer.value]
    assert len(beyond) and beyond["probability"].iloc[0] < 0.9
    with pytest.raises(ScenarioError, match=r"--target = '两增:big_bank:2023': cannot be solved for: it is not assessed in the run \(2023-12 is outside"):
        creditsim.solve(city, "两增:big_bank:2023", key, "0%:6%")


def test_solve_not_reachable_and_range_ends(pool):
    out = creditsim.solve(pool, "few_defaults", PD_KEY, "3%:5%", 0.99, largest=True, paths=60, seed=4)
    assert not out.reachable and out.value is None and out.message.startswith("not reachable in range")
    assert list(out.evaluations["value"]) == [3.0, 5.0]  # the two ends settle it
    edge = creditsim.solve(pool, "few_defaults", PD_KEY, "0.1%:0.2%", 0.9, largest=True, paths=60, seed=4)
    assert edge.reachable and edge.value == pytest.approx(0.2) and "may lie beyond it" in edge.message and edge.ci_high is None


def test_solve_integer_field(pool):
    """risk.recovery_lag_months is a whole number: the answer and every value tried are whole, and the answer is
    the last whole number at which the probability holds (the next one was tried and fails)."""
    data = pool.to_dict()
    data["targets"] = {"recovered": {"metric": "recovered", "measure": "cumulative", "start": "2021-01", "end": "2021-12",
                                     "comparison": ">=", "threshold": "1万"}}
    data["risk"]["write_off_months"] = 12
    scenario = scenario_from_dict(data)
    out = creditsim.solve(scenario, "recovered", "risk.recovery_lag_months", "0:12", 0.9, largest=True, paths=100, seed=2)
    assert out.reachable and float(out.value).is_integer() and out.evaluations["value"].map(float.is_integer).all()
    table = out.evaluations.set_index("value")
    assert table.loc[out.value, "probability"] >= 0.9 > table.loc[out.value + 1, "probability"]


def test_solve_bad_input(pool):
    for kwargs, rule in (({"target": "nope"}, "must name a target of the scenario"), ({"vary": "risk.lgd"}, "one number"), ({"vary": "risk.bogus"}, "unknown field"),
                         ({"range_": "5%:1%"}, "lo < hi"), ({"range_": "1%:2"}, "same unit"), ({"probability": 1.0}, r"\(0, 1\)"),
                         ({"tolerance": float("inf")}, "width of the range"), ({"tolerance": 1e-9}, "give a larger one"),
                         ({"tolerance": "0.1亿"}, "the range's unit"), ({"tolerance": "fine"}, "the range's unit")):
        args = {"target": "few_defaults", "vary": PD_KEY, "range_": "1%:2%", "probability": 0.9, "tolerance": None, **kwargs}
        with pytest.raises(ScenarioError, match=rule):
            creditsim.solve(pool, args["target"], args["vary"], args["range_"], args["probability"], tolerance=args["tolerance"], paths=2)
    with pytest.raises(ScenarioError, match=r"--initial-paths = 30: must be a whole number in \[1, 20\]"):
        creditsim.solve(pool, "few_defaults", PD_KEY, "1%:2%", 0.9, paths=20, initial_paths=30)


# ------------------------------------------------------------------------------------------ command line
def test_cli_sweep_and_solve(pool, tmp_path, capsys):
    path = tmp_path / "pool.toml"
    path.write_text(pool.to_toml(), encoding="utf-8")
    code = main(["sweep", str(path), "--set", f"{PD_KEY}=1%,3%", "--paths", "20", "--plot", str(tmp_path / "p.png"),
                 "--csv", str(tmp_path / "t.csv"), "--metrics", "balance,npl_ratio"])
    out = capsys.readouterr().out
    assert code == 0 and "target few_defaults: defaults ≤ 80" in out and "change in P" in out
    assert (tmp_path / "p.png").stat().st_size > 1000 and "few_defaults" in (tmp_path / "t.csv").read_text(encoding="utf-8-sig")
    code = main(["solve", str(path), "--target", "few_defaults", "--vary", PD_KEY, "--range", "1%:5%", "--largest", "--paths", "20",
                 "--tolerance", "1%"])  # written in the range's unit
    out = capsys.readouterr().out
    assert code == 0 and f"largest {PD_KEY} with P(few_defaults) ≥ 90%" in out
    code = main(["sweep", str(path), "--set", f"{PD_KEY}=1%,3%", "--paths", "4", "--checkpoint", str(tmp_path / "ck")])
    assert code == 0 and main(["sweep", "--resume", str(tmp_path / "ck"), "--paths", "8"]) == 2  # the checkpoint fixes the paths
    assert "leave out --paths" in capsys.readouterr().err
    for argv in (["sweep", str(path), "--set", "firms.segments.only.rho=1亿:5:3"], ["solve", str(path), "--target", "x", "--vary", "firms.segments.only.rho", "--range", "0:1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("creditsim: error:") and err.count("\n") == 1


def test_sweep_header_lists_the_varied_input_and_folds_targets_that_do_not_move(pool, tmp_path, capsys):
    """The header names each varied key with its values in the field's unit and the scenario's value (a key given
    one value as set); a target whose P(met) moves by less
    than a point across the variants, every paired interval holding 0, is folded into one line unless --all-targets."""
    data = pool.to_dict()
    data["targets"]["anything"] = {"metric": "defaults", "measure": "cumulative", "start": "2021-01", "end": "2021-12", "threshold": 0}
    scenario = scenario_from_dict(data)
    result = creditsim.sweep(scenario, {PD_KEY: [0.01, 0.03]}, paths=20, seed=1)
    assert result.varied() == {PD_KEY: ["1%", "3%"]}
    unchanged = result.targets().groupby("target")["unchanged"].agg(["all", "any"])
    assert unchanged.loc["anything"].all() and not unchanged.loc["few_defaults"].any()
    assert not creditsim.sweep(scenario, {PD_KEY: [0.01]}, paths=3, seed=1).targets()["unchanged"].any()  # one variant: nothing to fold
    path = tmp_path / "pool.toml"
    path.write_text(scenario.to_toml(), encoding="utf-8")
    assert main(["sweep", str(path), "--set", f"{PD_KEY}=0.01,0.03", "--paths", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert f"varied: {PD_KEY} = 1%, 3% (the scenario: 3%)" in out.splitlines()
    assert "target few_defaults:" in out and "target anything:" not in out
    assert out[out.index("\n1 target unchanged across the variants"):].split("\n\n")[0].endswith(": anything")
    assert main(["sweep", str(path), "--set", f"{PD_KEY}=0.01,0.03", "--paths", "20", "--seed", "1", "--all-targets"]) == 0
    out = capsys.readouterr().out
    assert "target anything:" in out and "unchanged across" not in out
    assert any(line.startswith("3%") for line in out.splitlines())  # each variant's row in the field's unit too
    # a key given one value is set for every variant, beside the scenario's value
    assert main(["sweep", str(path), "--set", f"{PD_KEY}=0.01,0.03", "--set", "calendar.months=6", "--paths", "3", "--seed", "1"]) == 0
    assert "set: calendar.months = 6 (the scenario: 12)" in capsys.readouterr().out.splitlines()


def test_threads_leave_sweep_solve_and_compare_unchanged(pool, tmp_path, capsys):
    """threads=2 runs each process's paths on two threads: sweep, solve and compare give the same numbers, from
    Python and from the command line (--threads)."""
    grid = {PD_KEY: [0.01, 0.03]}
    one, two = (creditsim.sweep(pool, grid, paths=6, seed=2, threads=n) for n in (1, 2))
    assert all(a[k].tobytes() == b[k].tobytes() for a, b in zip(one.values, two.values, strict=True) for k in a)
    solved = [creditsim.solve(pool, "few_defaults", PD_KEY, "1%:5%", largest=True, paths=6, seed=2, tolerance=0.01, threads=n) for n in (1, 2)]
    assert solved[0].evaluations.equals(solved[1].evaluations) and solved[0].message == solved[1].message
    riskier = _pool(pd=0.02)
    compared = [creditsim.compare(pool, riskier, paths=6, seed=2, threads=n) for n in (1, 2)]
    for side in ("base", "variant"):
        assert_same_bits(getattr(compared[0], side), getattr(compared[1], side))
    path = tmp_path / "pool.toml"
    path.write_text(pool.to_toml(), encoding="utf-8")
    printed = []
    for threads in ("1", "2"):
        assert main(["sweep", str(path), "--set", f"{PD_KEY}=1%,3%", "--paths", "6", "--seed", "2", "--threads", threads]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "--paths", "2", "--threads", "0"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("creditsim: error: argument --threads") and err.count("\n") == 1
