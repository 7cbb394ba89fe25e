"""Targets and the regulator's tests (两增, 两控) on hand-built metric paths, against hand-computed answers; the
Wilson interval's coverage against the exact binomial coverage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from creditsim import Results
from creditsim.errors import ScenarioError
from creditsim.metrics import SCOPE_METRICS, SCOPES, entities
from creditsim.results.targets import paired_difference_interval, wilson_interval
from creditsim.scenario import Assessment, scenario_from_dict, with_tests
from helpers import default_data

BANK = SCOPE_METRICS["bank"]


def two_bank_data(months: int = 24, **changes: Any) -> dict[str, Any]:
    """The default scenario with two banks, 2021-01 on."""
    data = default_data()
    data["calendar"]["months"] = months
    data["banks"] = {name: {**data["banks"]["big_bank"], "share": 0.5} for name in ("a", "b")}
    data["campaign"]["channels"] = {k: {**v, "bank": "a"} if "bank" in v else v for k, v in data["campaign"]["channels"].items()}
    data.update(changes)
    return data


def hand_built(data: dict[str, Any], paths: int, fill: dict[tuple[str, str], np.ndarray]) -> Results:
    """Results whose bank metrics are zero except ``fill[(metric, bank)]`` (shape (paths, dates)); ratios are
    recomputed from the filled additive metrics, as the engine does."""
    scenario = scenario_from_dict(data)
    dates = scenario.calendar.months + 1
    groups = {scope: np.zeros((paths, dates, max(len(entities(scope, scenario)), 1), len(SCOPE_METRICS[scope]))) for scope in SCOPES}
    for (name, bank), values in fill.items():
        groups["bank"][:, :, scenario.bank_names.index(bank), BANK.index(name)] = values
    from creditsim.metrics import ratio_values

    bank_values = groups["bank"]
    for name, values in ratio_values("bank", lambda m: bank_values[..., BANK.index(m)], scenario).items():
        bank_values[..., BANK.index(name)] = values
    return Results(scenario, seed=0, path_ids=list(range(paths)), groups=groups)


def ramp(paths: int, dates: int, start: np.ndarray, step: np.ndarray) -> np.ndarray:
    """start + step × month for each path."""
    return start[:, None] + step[:, None] * np.arange(dates)[None, :]


# ------------------------------------------------------------------------------------------------ targets
def test_each_kind_of_measurement_against_hand_computed_answers():
    """Five paths, two banks, 24 months: balance = 100 + 10·path + (1 + path)·t (bank a) and 50 + t (bank b);
    disbursed = path + 1 a month each; npl_balance = 2·path (a) and 1 (b)."""
    paths, dates = 5, 25
    p = np.arange(paths, dtype=float)
    a_balance = ramp(paths, dates, 100 + 10 * p, 1 + p)
    b_balance = ramp(paths, dates, np.full(paths, 50.0), np.ones(paths))
    flow = np.repeat((p + 1)[:, None], dates, axis=1)
    flow[:, 0] = 0.0
    targets = {
        "stock": {"metric": "balance", "measure": "stock", "date": "2021-12", "threshold": 125, "scope": "a"},
        "opening": {"metric": "balance", "measure": "stock", "date": "2020-12", "threshold": 120, "comparison": "<"},
        "increase": {"metric": "balance", "measure": "increase", "start": "2022-01", "end": "2022-12", "threshold": 36, "scope": "a"},
        "from_opening": {"metric": "balance", "measure": "increase", "start": "2021-01", "end": "2021-06", "threshold": 18, "scope": "a"},
        "average_ratio": {"metric": "npl_ratio", "measure": "average", "start": "2021-01", "end": "2021-02", "threshold": "1%", "scope": "a", "comparison": "<"},
        "cumulative": {"metric": "disbursed", "measure": "cumulative", "start": "2021-07", "end": "2022-06", "threshold": "48", "scope": ["a", "b"]},
        "average": {"metric": "balance", "measure": "average", "start": "2021-01", "end": "2021-03", "threshold": 112, "scope": "a", "comparison": ">"},
        "ratio": {"metric": "npl_ratio", "measure": "ratio", "date": "2022-12", "threshold": "2%", "comparison": "≤", "scope": ["a", "b"]},
    }
    data = two_bank_data(targets=targets)
    r = hand_built(data, paths, {("balance", "a"): a_balance, ("balance", "b"): b_balance, ("disbursed", "a"): flow, ("disbursed", "b"): flow,
                                 ("npl_balance", "a"): np.repeat((2 * p)[:, None], dates, axis=1), ("npl_balance", "b"): np.ones((paths, dates))})
    table = r.targets().set_index("target")
    expected = {
        # 2021-12 is month 12: 100 + 10p + 12(1 + p) = 112 + 22p ≥ 125 for p ≥ 1
        "stock": (112 + 22 * p, 4 / 5),
        # the opening (all banks): 100 + 10p + 50 < 120 never holds
        "opening": (150 + 10 * p, 0 / 5),
        # 12 months of (1 + p): 12 + 12p ≥ 36 for p ≥ 2
        "increase": (12 + 12 * p, 3 / 5),
        # from the opening (month 0) to month 6: 6(1 + p) ≥ 18 for p ≥ 2
        "from_opening": (6 + 6 * p, 3 / 5),
        # a ratio averaged over months 1–2 is the ratio of the sums: 2·2p / (2(100 + 10p) + 3(1 + p)) < 1% for p = 0
        "average_ratio": (4 * p / (203 + 23 * p), 1 / 5),
        # 12 months × 2 banks × (p + 1) = 24 + 24p ≥ 48 for p ≥ 1
        "cumulative": (24 + 24 * p, 4 / 5),
        # months 1..3: 100 + 10p + 2(1 + p) = 102 + 12p > 112 for p ≥ 1 (p = 0 is 102, not >)
        "average": (102 + 12 * p, 4 / 5),
        # month 24: (2p + 1) / (100 + 10p + 24(1 + p) + 74) ≤ 2%
        "ratio": ((2 * p + 1) / (198 + 34 * p), np.mean((2 * p + 1) / (198 + 34 * p) <= 0.02)),
    }
    for name, (values, probability) in expected.items():
        row = table.loc[name]
        assert row["probability"] == pytest.approx(probability), name
        assert row["median"] == pytest.approx(np.median(values)), name
        assert row["p5"] == pytest.approx(np.percentile(values, 5)) and row["p95"] == pytest.approx(np.percentile(values, 95)), name
        threshold = row["threshold"]
        missed = values[~{">=": values >= threshold, "<=": values <= threshold, ">": values > threshold, "<": values < threshold}[row["comparison"]]]
        gap = (threshold - missed) if row["comparison"] in (">=", ">") else (missed - threshold)
        assert (np.isnan(row["median_shortfall"]) and missed.size == 0) or row["median_shortfall"] == pytest.approx(np.median(gap)), name
        low, high = wilson_interval(round(probability * paths), paths)
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(float(low)), pytest.approx(float(high)))
    assert table.loc["cumulative", "scope"] == "a+b" and table.loc["increase", "when"] == "2022-01–2022-12"


def test_wilson_interval_matches_its_formula_at_the_edges():
    """k = 0 and k = n: the interval touches 0 (or 1) and its other end is z²/(n + z²) from it."""
    z = 1.959963984540054
    low, high = wilson_interval(0, 40)
    assert low == 0.0 and high == pytest.approx(z * z / (40 + z * z))
    low, high = wilson_interval(40, 40)
    assert high == 1.0 and low == pytest.approx(40 / (40 + z * z))


def test_wilson_interval_matches_scipy_for_every_count():
    """Against scipy's Wilson score interval (an independent implementation), for every k up to n."""
    for n in (1, 7, 60, 200):
        for k in range(n + 1):
            expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            low, high = wilson_interval(k, n)
            assert (float(low), float(high)) == (pytest.approx(expected.low, abs=1e-12), pytest.approx(expected.high, abs=1e-12))


@pytest.mark.parametrize(("p", "n"), [(0.5, 60), (0.9, 100), (0.05, 200)])
def test_target_probability_interval_covers_the_true_probability_at_the_nominal_rate(p, n):
    """Simulation study: 400 runs of n paths whose measured value is uniform, against a threshold met with
    probability p. The share of runs whose interval covers p equals the exact coverage of the Wilson interval
    (summed over the binomial distribution with scipy's intervals) within 4 standard errors, and that exact
    coverage is near 95%; the mean coverage over a grid of p is within a point of 95% (a Wald interval's is not)."""
    def covers(k: int) -> bool:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        return bool(ci.low <= p <= ci.high)

    exact = sum(stats.binom.pmf(k, n, p) for k in range(n + 1) if covers(k))
    assert 0.93 <= exact <= 0.97
    rng = np.random.default_rng(20261122)
    data = two_bank_data(months=12, targets={"t": {"metric": "balance", "measure": "stock", "date": "2021-12", "threshold": p, "comparison": "<"}})
    runs, covered = 400, 0
    for _ in range(runs):
        values = np.zeros((n, 13))
        values[:, 12] = rng.random(n)  # P(value < p) = p
        row = hand_built(data, n, {("balance", "a"): values}).targets().iloc[0]
        covered += row["ci_low"] <= p <= row["ci_high"]
    se = np.sqrt(exact * (1 - exact) / runs)
    assert abs(covered / runs - exact) <= 4 * se


def test_wilson_mean_coverage_is_nominal_where_the_wald_interval_falls_short():
    """Mean exact coverage over p in [0.02, 0.98] at n = 60: the Wilson interval's is 95% ± 1 point; the Wald
    interval p̂ ± z·sqrt(p̂(1 − p̂)/n) falls below 93% (so the check can tell them apart)."""
    n, z = 60, 1.959963984540054
    k = np.arange(n + 1)
    low, high = wilson_interval(k, n)
    wald = (k / n - z * np.sqrt(k / n * (1 - k / n) / n), k / n + z * np.sqrt(k / n * (1 - k / n) / n))
    grid = np.linspace(0.02, 0.98, 97)

    def mean_coverage(lo: np.ndarray, hi: np.ndarray) -> float:
        return float(np.mean([stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum() for p in grid]))

    assert abs(mean_coverage(low, high) - 0.95) <= 0.01
    assert mean_coverage(*wald) < 0.93


@pytest.mark.parametrize("n", [30, 100])
def test_paired_difference_interval_has_nominal_exact_coverage(n):
    """Exact coverage, by enumerating every outcome of n paired paths (the two discordant counts are multinomial),
    over cell probabilities (π₁₀, π₀₁) from balanced to rare and one-way changes (as on common random numbers):
    at least 94.5% everywhere and 95–99% on average; the paired Wald interval d ± z·sd/√n falls to 90% or
    below where changes are rare (so the check can tell them apart)."""
    z = 1.959963984540054
    lost, gained = np.array([(b, c) for b in range(n + 1) for c in range(n + 1 - b)]).T
    intervals, walds = [], []
    for b, c in zip(lost, gained, strict=True):
        before = np.r_[np.ones(b, bool), np.zeros(c, bool), np.zeros(n - b - c, bool)]
        after = np.r_[np.zeros(b, bool), np.ones(c, bool), np.zeros(n - b - c, bool)]
        d, low, high = paired_difference_interval(before, after)
        assert -1 <= low <= d <= high <= 1 and high > low
        intervals.append((low, high))
        sd = np.std(after.astype(float) - before, ddof=1) / np.sqrt(n)
        walds.append((d - z * sd, d + z * sd))
    cells = [(0.05, 0.1), (0.1, 0.1), (0.02, 0.05), (0.2, 0.05), (0.01, 0.02), (0.05, 0.3), (0.0, 0.02), (0.0, 0.2), (0.3, 0.0), (0.3, 0.3)]

    def coverage(bounds: list[tuple[float, float]], p10: float, p01: float) -> float:
        weight = stats.multinomial.pmf(np.c_[lost, gained, n - lost - gained], n, [p10, p01, 1 - p10 - p01])
        low, high = np.array(bounds).T
        return float(weight[(low <= p01 - p10 + 1e-12) & (p01 - p10 - 1e-12 <= high)].sum())

    ours = [coverage(intervals, *cell) for cell in cells]
    assert min(ours) >= 0.945 and 0.95 <= np.mean(ours) <= 0.99, ours
    assert min(coverage(walds, *cell) for cell in cells) <= 0.90


def assert_refused(base: dict[str, Any], cases: list[tuple[dict[str, Any], str]]) -> None:
    """Each change to the target ``base`` (a None value removes the field) is refused with exactly its message."""
    for change, message in cases:
        target = {k: v for k, v in {**base, **change}.items() if v is not None}
        with pytest.raises(ScenarioError) as error:
            scenario_from_dict(two_bank_data(targets={"t": target}))
        assert str(error.value) == message


def test_target_fields_are_checked():
    base = {"metric": "balance", "measure": "increase", "start": "2021-01", "end": "2022-12", "threshold": "100亿"}
    cases = [
        ({"metric": "balanse"}, "targets.t.metric = 'balanse': unknown metric (did you mean 'balance'?)"),
        ({"metric": "disbursed"}, "targets.t.measure = 'increase': cannot measure disbursed, a flow metric (use cumulative or average)"),
        ({"end": "2020-12"}, "targets.t.end = '2020-12': must not be before start (2021-01)"),
        ({"date": "2021-06"}, "targets.t.date = '2021-06': does not apply to a increase target (use start and end)"),
        ({"threshold": "100 apples"}, "targets.t.threshold = '100 apples': must be an amount such as '50万', '300亿' or '1.1万亿' (units 万, 亿, 万亿, 千万, 百万, 千, 元) (balance is in CNY)"),
        ({"threshold": "5%"}, "targets.t.threshold = '5%': a percentage only suits a fraction (balance is in CNY)"),
        ({"metric": "borrowers", "threshold": "100亿元"}, "targets.t.threshold = '100亿元': must be a count such as 15000, '1.5万' or '53万户' (units 万, 亿) (borrowers is in firms)"),
        ({"comparison": "=="}, "targets.t.comparison = '==': input should be '>=', '<=', '>' or '<'"),
        ({"scope": ["a", "c"]}, "targets.t.scope = 'c': balance is reported for a, b, all"),
        ({"scope": ["a", "all"]}, "targets.t.scope = ['a', 'all']: 'all' cannot be part of a list"),
        ({"metric": "npl_ratio", "measure": "ratio", "start": None, "end": None, "date": "2022-12", "threshold": 3}, "targets.t.threshold = 3.0: must be a fraction such as 0.03 or '3%' (npl_ratio is in fraction)"),
    ]
    assert_refused(base, cases)


def test_a_target_outside_the_run_is_reported_as_not_assessed():
    """A run shortened below a target's period (e.g. ``--set calendar.months=6``) still runs; the target's row
    says why it is not assessed and holds no figures."""
    targets = {"late": {"metric": "balance", "measure": "increase", "start": "2021-01", "end": "2023-12", "threshold": 1},
               "early": {"metric": "balance", "measure": "stock", "date": "2020-11", "threshold": 1},
               "in": {"metric": "balance", "measure": "stock", "date": "2021-06", "threshold": 1}}
    r = hand_built(two_bank_data(months=6, targets=targets), 2, {("balance", "a"): np.full((2, 7), 5.0)})
    table = r.targets().set_index("target")
    assert table.loc["late", "note"] == "not assessed: ends at 2023-12, after the run ends (2021-06)"
    assert table.loc["early", "note"] == "not assessed: 2020-11 is outside the run (2020-12 to 2021-06)"
    assert np.isnan(table.loc["late", "probability"]) and table.loc["in", "probability"] == 1.0 and table.loc["in", "note"] == ""


# ------------------------------------------------------------------------------------------------ 两增 and 两控
def test_rule_in_force_by_year():
    in_force = Assessment()
    assert [in_force.rule_in(y) for y in (2016, 2018, 2019, 2022, 2023, 2024, 2026)] == ["none", "2018", "2019", "2019", "none", "2024", "2024"]
    data = two_bank_data(assessment={"rule": {"2021": 2019, "2022": "2024"}})
    assert scenario_from_dict(data).assessment.rule == {"2021": "2019", "2022": "2024"}
    assert Assessment(rule="2018").rule_in(2025) == "2018"
    assert Assessment(rule={"2021": "2024"}).rule_in(2021) == "2024" and Assessment(rule={"2021": "2024"}).rule_in(2022) == "none"


def two_increase_paths(rule: str | dict[str, str], targets: dict[str, Any] | None = None) -> Results:
    """One path, 2021-01 to 2022-12 (dates 0..24, date 0 = 2020-12), all loans flat at 1000.

    Bank a: balance 100 through 2021-06, then 80, then from 2022-01 rising 2 a month (2022-06: 92); growth
    since the start of 2022 (80 → 92, +15%) beats all loans (0%), but against 2021-06 (100) it is −8%.
    Bank b: balance rising 1% a month (passes growth) while borrowers fall by one a month (fails borrowers).
    """
    dates = 25
    a = np.full(dates, 100.0)
    a[7:13] = 80.0
    a[13:] = 80.0 + 2.0 * np.arange(1, 13)
    b = 100.0 * 1.01 ** np.arange(dates)
    flat = np.full((1, dates), 1000.0)
    borrowers_b = 500.0 - np.arange(dates)
    data = two_bank_data(months=24, assessment={"rule": rule}, targets=targets or {})
    return hand_built(data, 1, {
        ("balance", "a"): a[None], ("balance", "b"): b[None], ("all_loans_balance", "a"): flat, ("all_loans_balance", "b"): flat,
        ("borrowers", "a"): np.full((1, dates), 300.0), ("borrowers", "b"): borrowers_b[None],
    })


def test_two_increases_start_of_year_against_same_date_last_year():
    """At 2022-06 bank a passes the 2019 rule (since the start of the year) and fails the 2018 rule (against
    2021-06); the 2018 rule is not evaluated in 2021 (its comparison date is before the run)."""
    since_start = two_increase_paths("2019").two_increases().set_index(["bank", "date", "check"])
    year_on_year = two_increase_paths("2018").two_increases().set_index(["bank", "date", "check"])
    growth_2019 = since_start.loc[("a", "2022-06", "loan_growth")]
    growth_2018 = year_on_year.loc[("a", "2022-06", "loan_growth")]
    assert growth_2019["probability"] == 1.0 and growth_2019["median_margin"] == pytest.approx(92 / 80 - 1)
    assert growth_2018["probability"] == 0.0 and growth_2018["median_margin"] == pytest.approx(92 / 100 - 1)
    assert ("a", "2021-06", "loan_growth") in since_start.index and ("a", "2021-06", "loan_growth") not in year_on_year.index
    # 2021-09 against the start of 2021: 80 / 100 − 1 < 0
    assert since_start.loc[("a", "2021-09", "两增"), "probability"] == 0.0


def test_a_bank_can_pass_growth_and_fail_borrowers():
    """Bank b grows 1% a month but loses a borrower a month: loan_growth passes, borrowers and so 两增 fail;
    under the 2024 rule (growth only) 两增 passes."""
    table = two_increase_paths("2019").two_increases().set_index(["bank", "date", "check"])
    assert table.loc[("b", "2022-12", "loan_growth"), "probability"] == 1.0
    assert table.loc[("b", "2022-12", "loan_growth"), "median_margin"] == pytest.approx(1.01**12 - 1)
    assert table.loc[("b", "2022-12", "borrowers"), "probability"] == 0.0
    assert table.loc[("b", "2022-12", "borrowers"), "median_margin"] == pytest.approx(-12)
    assert table.loc[("b", "2022-12", "两增"), "probability"] == 0.0
    growth_only = two_increase_paths("2024").two_increases().set_index(["bank", "date", "check"])
    assert growth_only.loc[("b", "2022-12", "两增"), "probability"] == 1.0
    assert ("b", "2022-12", "borrowers") not in growth_only.index


def test_two_increases_for_all_banks_use_the_sums():
    """All banks at 2022-12, since the start of 2022: balance (80 + 24 = 104, plus b) against the sum at 2021-12."""
    table = two_increase_paths("2019").two_increases().set_index(["bank", "date", "check"])
    b = 100.0 * 1.01 ** np.arange(25)
    growth = (104 + b[24]) / (80 + b[12]) - 1
    assert table.loc[("all", "2022-12", "loan_growth"), "median_margin"] == pytest.approx(growth)
    assert table.loc[("all", "2022-12", "borrowers"), "median_margin"] == pytest.approx(-12)


def test_a_test_target_is_met_where_the_bank_passes_the_test():
    """A test target is met on a path where its bank passes its test at its date, as the hand-built paths above
    pass or fail (bank a: 两增 fails at 2021-09 and passes at 2022-06 since the start of the year; bank b passes
    loan growth at 2022-12 and fails borrowers, so 两增), and has no value, band or threshold to show."""
    def test(check: str, bank: str, date: str) -> dict[str, str]:
        return {"metric": check, "measure": "test", "scope": bank, "date": date}

    targets = {"a_2021q3": test("两增", "a", "2021-09"), "a_2022q2": test("两增", "a", "2022-06"), "b_growth": test("loan_growth", "b", "2022-12"),
               "b_borrowers": test("borrowers", "b", "2022-12"), "b": test("两增", "b", "2022-12"), "banks": test("两增", "all", "2022-12")}
    table = two_increase_paths("2019", targets).targets().set_index("target")
    assert table["probability"].to_dict() == {"a_2021q3": 0.0, "a_2022q2": 1.0, "b_growth": 1.0, "b_borrowers": 0.0, "b": 0.0, "banks": 0.0}
    assert (table["note"] == "").all() and table[["threshold", "median", "p5", "p95", "median_shortfall"]].isna().all().all()
    assert (table["unit"] == "").all() and table.loc["b", "when"] == "2022-12"


def test_a_test_target_not_assessed_at_its_date_says_why():
    """Where the rule makes no such test at the date, the target is not assessed, with the reason."""
    def test(check: str, date: str, bank: str = "a") -> dict[str, str]:
        return {"metric": check, "measure": "test", "scope": bank, "date": date}

    targets = {"before_run": test("两增", "2021-06"), "no_borrowers": test("borrowers", "2022-12"), "late": test("两增", "2023-12"),
               "cost": test("loan_cost", "2021-12"), "cost_2022": test("loan_cost", "2022-12"), "npl": test("npl_ratio", "2021-03")}
    notes = two_increase_paths("2018", targets).targets().set_index("target")["note"]
    assert notes["before_run"] == "not assessed: its comparison date lies before the run's opening (2020-12)"
    assert notes["late"] == "not assessed: 2023-12 is outside the run (2020-12 to 2022-12)"
    assert notes["cost"] == "not assessed: the whole year before 2021 must lie inside the run"
    assert notes["cost_2022"] == notes["npl"] == notes["no_borrowers"] == ""
    by_year = two_increase_paths({"2021": "none", "2022": "2024"}, targets).targets().set_index("target")["note"]
    assert by_year["no_borrowers"] == "not assessed: the 2024 rule of 两增 does not check borrowers"
    assert by_year["before_run"] == "not assessed: 两增 has no numeric test in 2021 (rule 'none')"
    assert by_year["npl"] == "not assessed: 两控 is not assessed in 2021"


def test_test_target_fields_are_checked():
    base = {"metric": "两增", "measure": "test", "date": "2022-12", "scope": "a"}
    cases = [
        ({"metric": "load_cost"}, "targets.t.metric = 'load_cost': unknown test (did you mean 'loan_cost'?)"),
        ({"metric": "balance"}, "targets.t.metric = 'balance': unknown test; a test target names one of 两增, loan_growth, borrowers, 两控, npl_ratio, loan_cost"),
        ({"date": None}, "targets.t.date: is required for a test target (the quarter- or year-end it is assessed at)"),
        ({"date": "2022-11"}, "targets.t.date = '2022-11': must be a quarter-end (March, June, September or December): the tests are assessed there"),
        ({"threshold": "1%"}, "targets.t.threshold = '1%': does not apply to a test target (it is met where the test passes)"),
        ({"start": "2022-01"}, "targets.t.start = '2022-01': does not apply to a test target (it is met where the test passes)"),
        ({"comparison": "<"}, "targets.t.comparison = '<': does not apply to a test target (it is met where the test passes)"),
        ({"scope": ["a", "b"]}, "targets.t.scope = ['a', 'b']: a test is assessed for one bank or all of them: a, b, all"),
        ({"scope": "c"}, "targets.t.scope = 'c': a test is assessed for one bank or all of them: a, b, all"),
        ({"measure": "stock"}, "targets.t.threshold: is required for a stock target"),
    ]
    assert_refused(base, cases)


def test_tests_written_on_the_command_line():
    """``TEST:BANK:YEAR`` adds a test target named so, at the year-end (or the quarter-end written); a text that is
    not so written, or names an unknown test or bank, is refused naming --target."""
    s = scenario_from_dict(two_bank_data())
    added = with_tests(s, ["两增:a:2022", "两控:all:2021-06", "两增:a:2022"])
    assert list(added.targets)[-2:] == ["两增:a:2022", "两控:all:2021-06"]
    assert added.targets["两增:a:2022"].model_dump(include={"metric", "measure", "scope", "date"}) == {"metric": "两增", "measure": "test", "scope": "a", "date": "2022-12"}
    assert added.targets["两控:all:2021-06"].date == "2021-06"
    targets = ", ".join(s.targets)
    cases = [
        ("new_lending", None),  # a target of the scenario: left as it is
        ("两增:a", f"--target = '两增:a': must name a target of the scenario ({targets}) or a test written TEST:BANK:YEAR, e.g. 两增:a:2023"),
        ("borrower:a:2022", "--target = 'borrower:a:2022': unknown test 'borrower' (did you mean 'borrowers'?)"),
        ("两增:c:2022", "--target = '两增:c:2022': unknown bank 'c'; banks are a, b, all"),
        ("两增:a:22", "--target = '两增:a:22': must end in a year (its year-end, e.g. 2023) or a quarter-end YYYY-MM"),
        ("两增:a:2022-05", "--target = '2022-05': must be a quarter-end (March, June, September or December): the tests are assessed there"),
    ]
    for text, message in cases:
        if message is None:
            assert with_tests(s, [text]).targets == s.targets
            continue
        with pytest.raises(ScenarioError) as error:
            with_tests(s, [text])
        assert str(error.value) == message


def test_npl_control_against_the_overall_ratio_plus_three_points():
    """Bank a: inclusive balance 100 with NPL 5 (5%), 900 other loans at other_npl_ratio 1.5%: overall
    (5 + 13.5) / 1000 = 1.85%, so the limit is 4.85% and a fails by 0.15 points; with NPL 4 (overall 1.75%,
    limit 4.75%) it passes by 0.75 points."""
    dates = 13
    data = two_bank_data(months=12)
    for npl, passed, margin in ((5.0, 0.0, 0.0485 - 0.05), (4.0, 1.0, 0.0475 - 0.04)):
        r = hand_built(data, 1, {("balance", "a"): np.full((1, dates), 100.0), ("all_loans_balance", "a"): np.full((1, dates), 1000.0),
                                 ("npl_balance", "a"): np.full((1, dates), npl), ("balance", "b"): np.full((1, dates), 100.0),
                                 ("all_loans_balance", "b"): np.full((1, dates), 1000.0)})
        row = r.two_increases().set_index(["bank", "date", "check"]).loc[("a", "2021-12", "npl_ratio")]
        assert row["probability"] == passed and row["median_margin"] == pytest.approx(margin)
        # all banks: NPL (npl + 0) / 200 against (npl + 2 × 13.5) / 2000 + 3 points
        total = r.two_increases().set_index(["bank", "date", "check"]).loc[("all", "2021-12", "npl_ratio")]
        assert total["median_margin"] == pytest.approx((npl + 27) / 2000 + 0.03 - npl / 200)


def test_npl_control_with_other_loans_npl_by_year():
    """other_npl_ratio as a table by year: 1% in 2021 (overall (5 + 9) / 1000 = 1.4%, limit 4.4% < 5%: fails),
    3% in 2022 (overall (5 + 27) / 1000 = 3.2%, limit 6.2%: passes)."""
    dates = 25
    data = two_bank_data(months=24)
    data["banks"]["a"]["other_npl_ratio"] = {"2020": "1%", "2021": "1%", "2022": "3%"}
    flat = {("balance", "a"): np.full((1, dates), 100.0), ("all_loans_balance", "a"): np.full((1, dates), 1000.0),
            ("npl_balance", "a"): np.full((1, dates), 5.0), ("balance", "b"): np.full((1, dates), 100.0), ("all_loans_balance", "b"): np.full((1, dates), 1000.0)}
    table = hand_built(data, 1, flat).two_increases().set_index(["bank", "date", "check"])
    assert table.loc[("a", "2021-12", "npl_ratio"), "median_margin"] == pytest.approx(0.014 + 0.03 - 0.05)
    assert table.loc[("a", "2022-12", "npl_ratio"), "median_margin"] == pytest.approx(0.032 + 0.03 - 0.05)
    data["banks"]["a"]["other_npl_ratio"] = {"2021": "1%", "2022": "3%"}
    with pytest.raises(ScenarioError, match="banks.a.other_npl_ratio: has no ratio for year 2020"):
        scenario_from_dict(data)


def test_loan_cost_half_against_the_year_before():
    """Bank a lends 100 a month: at 5% through 2021 (interest 5 a month), at 4.5% in 2022 Q1, 6% in Q2, 4% after.
    2022-03: 4.5% < 5%, passes by 0.5 points; 2022-06: (13.5 + 18) / 600 = 5.25%, fails by 0.25; 2022-12:
    (13.5 + 18 + 24) / 1200 = 4.625%, passes by 0.375. 2021 has no year before inside the run: no cost half, 两控
    is its NPL half. 两控 passes when both halves do; without ``assessment.loan_cost`` only the NPL half counts."""
    dates = 25
    interest = np.r_[0.0, np.full(12, 5.0), np.full(3, 4.5), np.full(3, 6.0), np.full(6, 4.0)][None, :]
    fill = {("disbursed", "a"): np.r_[0.0, np.full(24, 100.0)][None, :], ("disbursed_interest", "a"): interest,
            ("balance", "a"): np.full((1, dates), 100.0), ("all_loans_balance", "a"): np.full((1, dates), 1000.0),
            ("balance", "b"): np.full((1, dates), 100.0), ("all_loans_balance", "b"): np.full((1, dates), 1000.0)}
    table = hand_built(two_bank_data(months=24), 1, fill).two_increases().set_index(["bank", "date", "check"])
    for date, margin in (("2022-03", 0.005), ("2022-06", -0.0025), ("2022-12", 0.00375)):
        assert table.loc[("a", date, "loan_cost"), "median_margin"] == pytest.approx(margin)
        assert table.loc[("a", date, "loan_cost"), "margin_unit"] == "fraction"  # a rate difference: 0.003 is 0.3 points
        assert table.loc[("a", date, "两控"), "probability"] == float(margin > 0)
        assert table.loc[("a", date, "npl_ratio"), "probability"] == 1.0
    assert ("a", "2021-12", "loan_cost") not in table.index and table.loc[("a", "2021-12", "两控"), "probability"] == 1.0
    assert table.loc[("b", "2022-12", "loan_cost"), "probability"] == 0.0  # b lends nothing: its cost cannot fall
    unassessed = hand_built(two_bank_data(months=24, assessment={"loan_cost": False}), 1, fill).two_increases()
    assert "loan_cost" not in set(unassessed["check"])
    assert unassessed.set_index(["bank", "date", "check"]).loc[("a", "2022-06", "两控"), "probability"] == 1.0


def test_a_targets_source_reads_as_the_plan_with_its_issuer_year_and_clause():
    """Every target of the bundled plan scenarios names one of the five documents (../shared/seeds), and cite()
    gives its title, issuer and year with the clause; a source naming no known document stays as written."""
    from pathlib import Path

    from creditsim.scenario import load_scenario
    from creditsim.scenario.sources import PLANS, cite

    assert cite("004_a4906bae605cc669.txt 一(三)") == "嘉兴市小微企业三年成长计划(2021—2023年) · 嘉兴市人民政府办公室, 2021 · 一(三)"
    assert cite("003_bb91904e8da33d94.txt, 一、主要目标").startswith("浙江省“小微企业三年成长计划”(2018—2020年) · 浙江省人民政府办公厅, 浙政办发〔2018〕34号, 2018 · 一")
    assert cite("a bank's own plan, 2024") == "a bank's own plan, 2024"
    scenarios = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))
    sources = [t.source for path in scenarios for t in load_scenario(path).targets.values()]
    assert sources and all(any(file in source for file in PLANS) for source in sources if source)
