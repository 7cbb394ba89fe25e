"""Uncertainty beyond Monte Carlo (``[[assumptions]]``): sensitivity's P(met) at each end is the run at that value
(common random numbers, so an assumption that cannot touch a target swings it by exactly 0); with parameter
uncertainty path k is the run of its own variant alone, its draws do not depend on the other paths, and they follow
their distribution (seeded; tolerances from the sampling error); assumptions that cannot be varied are refused
naming the field."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

import creditsim
from creditsim.analysis.calibrate import apply
from creditsim.analysis.uncertainty import draws, ranges, sensitivity, simulate_uncertain
from creditsim.errors import ScenarioError
from creditsim.metrics import SCOPE_METRICS
from creditsim.present.cli import main
from creditsim.results.targets import met
from creditsim.scenario import Scenario, scenario_from_dict

ASSUMPTIONS = [
    {"key": "firms.segments.firms.applications_per_month", "low": 20, "high": 60, "note": "demand between half and one and a half times"},
    {"key": "discount_rate", "low": "2%", "high": "5%", "note": "moves only the fiscal cost's present value"},
    {"key": "firms.segments.*.pd", "low": 0.8, "high": 1.25, "distribution": "normal", "note": "a PD scale, its 90% interval"},
]


def _data(assumptions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One bank and one segment of 3,000 firms (half borrowing at the start), 40 applications a month, 2021-01 to
    2021-12, and a target on the year's balance increase set near its median, so that demand moves P(met)."""
    return {
        "name": "assumptions",
        "calendar": {"start": "2021-01", "months": 12},
        "firms": {"segments": {"firms": {"firms": 3000, "unbanked_share": 0.5, "former_borrower_share": 0.6, "applications_per_month": 40,
                                         "pd": [0.02, 0.06], "grade_share": [0.7, 0.3], "rho": 0.1, "line_median": "100万", "line_p90": "300万"}}},
        "banks": {"bank": {"share": 1.0, "all_loans": "1000亿", "non_inclusive_growth": 0.1, "max_pd": 0.1, "rate": 0.05, "term_mix": {"12": 1.0},
                           "product_mix": {"credit": 1.0}}},
        "demand": {"reborrow_prob": 0.8},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.5, "collateral": 0.5}, "recovery_lag_months": 6, "write_off_months": 12},
        "targets": {"increase": {"label": "余额增长", "metric": "balance", "measure": "increase", "start": "2021-01", "end": "2021-12",
                                 "threshold": "2.4亿"}},
        "assumptions": ASSUMPTIONS if assumptions is None else assumptions,
    }


def _scenario(**changes: Any) -> Scenario:
    return scenario_from_dict(_data(), changes)


def test_each_end_is_the_run_at_that_value_and_an_assumption_that_cannot_touch_a_target_swings_it_by_zero():
    scenario = _scenario()
    result = sensitivity(scenario, paths=40, seed=3)
    table = result.table().set_index("key")
    target = scenario.targets["increase"]
    plain = scenario_from_dict({**scenario.to_dict(), "assumptions": []})
    for key, value in (("firms.segments.firms.applications_per_month", 20), ("firms.segments.firms.applications_per_month", 60)):
        run = creditsim.simulate(scenario_from_dict(plain.to_dict(), {key: value}), paths=40, seed=3, progress=False)
        balance = run.values("balance")
        expected = met(balance[:, -1] - balance[:, 0], target).mean()
        assert table.loc[key, "p_low" if value == 20 else "p_high"] == expected
    base = creditsim.simulate(plain, paths=40, seed=3, progress=False).values("balance")
    assert table["p_base"].iloc[0] == met(base[:, -1] - base[:, 0], target).mean()
    demand = table.loc["firms.segments.firms.applications_per_month"]
    assert demand.p_low < demand.p_base < demand.p_high and demand.swing_low > 0
    rate = table.loc["discount_rate"]
    assert rate.swing == 0 and rate.swing_low <= 0 <= rate.swing_high
    assert result.table()["key"].iloc[0] == "firms.segments.firms.applications_per_month"  # the largest swing first


def test_with_parameter_uncertainty_path_k_is_its_variant_run_alone_whatever_the_other_paths():
    scenario = _scenario()
    results, values = simulate_uncertain(scenario, paths=[2, 5, 7], seed=4)
    alone = draws(scenario, [5], seed=4)
    np.testing.assert_array_equal(alone.loc[5].to_numpy(), values.loc[5].to_numpy())
    found = ranges(scenario)
    plain = scenario_from_dict({**scenario.to_dict(), "assumptions": []})
    variant = apply(plain, [r.parameter for r in found], values.loc[5].to_numpy())
    single = creditsim.simulate(variant, paths=[5], seed=4, progress=False)
    assert results.path_ids == [2, 5, 7]
    for scope in SCOPE_METRICS:
        np.testing.assert_array_equal(results.groups[scope][1], single.groups[scope][0], err_msg=scope)
    assert len({round(v, 9) for v in values["firms.segments.firms.applications_per_month"]}) == 3


def test_draws_follow_their_distributions():
    """2,000 paths: the uniform's draws pass a KS test against U(low, high); the normal's fall inside its stated 90%
    interval on 90% of paths within 4 binomial standard errors and centre on its midpoint."""
    values = draws(_scenario(), 2000, seed=0)
    uniform = values["firms.segments.firms.applications_per_month"]
    assert stats.kstest(uniform, stats.uniform(20, 40).cdf).pvalue > 1e-3
    scale = values["firms.segments.*.pd"].to_numpy()
    inside = np.mean((scale >= 0.8) & (scale <= 1.25))
    assert abs(inside - 0.9) < 4 * math.sqrt(0.09 / 2000)
    sd = 0.45 / (2 * 1.6448536)
    assert abs(np.median(scale) - 1.025) < 4 * 1.2533 * sd / math.sqrt(2000)


@pytest.mark.parametrize(("assumption", "field", "rule"), [
    ({"key": "banks.bank.nothing"}, "assumptions.0.key", "matches no numeric field"),
    ({"key": "targets.increase.threshold"}, "assumptions.0.key", "must not be a key of targets"),
    ({"key": "firms.segments.*.pd", "low": "80%"}, "assumptions.0.low", "must be a number > 0"),
    ({"key": "firms.segments.*.pd", "low": 1.3}, "assumptions.0.high", "must be above low"),
    ({"note": ""}, "assumptions.0.note", "at least 1 character"),
])
def test_an_assumption_that_cannot_be_varied_is_refused_naming_the_field(assumption, field, rule):
    data = _data([{**ASSUMPTIONS[2], **assumption}])
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(data)
    message = str(raised.value)
    assert message.startswith(field) and rule in message and "\n" not in message, message


def test_an_end_its_field_does_not_allow_is_refused_naming_the_end():
    scenario = scenario_from_dict(_data([{"key": "banks.bank.max_pd", "low": "5%", "high": "150%", "note": "too wide"}]))
    with pytest.raises(ScenarioError, match=r"^assumptions\.0\.high = '150%': is not a value banks\.bank\.max_pd allows"):
        ranges(scenario)


def test_the_commands_print_the_sensitivity_and_refuse_what_uncertainty_cannot_honour(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(_scenario().to_toml(), encoding="utf-8")
    assert main(["sensitivity", str(path), "--paths", "10"]) == 0
    out = capsys.readouterr().out
    assert "increase (余额增长): P(met)" in out and "firms.segments.firms.applications_per_month" in out and "swing [95% CI]" in out
    assert main(["run", str(path), "--paths", "3", "--parameter-uncertainty"]) == 0
    assert "parameter uncertainty: each of the 3 paths drew its own values of 3 assumptions" in capsys.readouterr().out
    data = tmp_path / "observed.csv"
    data.write_text("date,quantity,value\n2021-12,growth:balance,0.1\n", encoding="utf-8")
    assert main(["observed", str(path), "--data", str(data), "--paths", "4", "--parameter-uncertainty"]) == 0
    assert "(4 paths, each drawing its values of the assumptions, seed 0)" in capsys.readouterr().out
    assert main(["run", str(path), "--paths", "3", "--parameter-uncertainty", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("creditsim: error: --parameter-uncertainty") and "leave out --out" in err and err.count("\n") == 1


def test_parameter_uncertainty_that_would_not_fit_in_memory_is_refused_before_any_path(monkeypatch):
    """Every path's metrics stay in this process: a run whose paths would not fit is refused naming paths before the
    first path is simulated."""
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a path ran")

    monkeypatch.setattr("creditsim.run.memory.available_bytes", lambda: 1024**3)
    monkeypatch.setattr("creditsim.analysis.uncertainty.simulate", never)
    with pytest.raises(ScenarioError, match=r"^paths = 100000: would need about .* GiB for the results .* run at most about [\d,]+ paths"):
        simulate_uncertain(_scenario(), paths=100_000, seed=1)
