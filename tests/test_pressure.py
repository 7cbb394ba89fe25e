"""Policy pressure (``[pressure]``, ``banks.NAME.growth_target``) in both engines: the shortfall recomputed from the
recorded balances by the documented rule, outreach applications against their Poisson mean, the pressed appetite
on a book whose beliefs are exact, a target never missed changing nothing, and the validation rules. The reference
comparison of ``tests/test_reference.py`` covers pressure in its renewal scenario."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import creditsim
from creditsim.errors import ScenarioError
from creditsim.metrics import SCOPE_METRICS
from creditsim.scenario import Scenario, scenario_from_dict
from helpers import ENGINES, run_engine


def _book(**sections: Any) -> dict[str, Any]:
    """Two banks, one segment of 4,000 firms (half of them borrowers at the start) with two grades (PD 2% and 5%,
    60/40), every firm a former borrower (so no applicant is ever declined for good), exact beliefs (no signal
    noise); 40 applications a month; all loans 10% a year outside the inclusive book, so the yardstick runs ahead
    of an inclusive book that hardly grows. 2021-01 to 2022-12. Bank ``a`` (max PD 4%) declines grade 2 unless
    pressed; bank ``b`` lends to both."""
    segment = {"firms": 4000, "unbanked_share": 0.5, "former_borrower_share": 1.0, "applications_per_month": 40, "pd": [0.02, 0.05],
               "grade_share": [0.6, 0.4], "rho": 0.1, "line_median": "100万", "line_p90": "300万"}
    bank = {"all_loans": "1000亿", "non_inclusive_growth": 0.10, "rate": 0.05, "term_mix": {"12": 1.0}, "product_mix": {"credit": 1.0}}
    return {
        "name": "pressure",
        "calendar": {"start": "2021-01", "months": 24},
        "firms": {"segments": {"firms": segment}},
        "banks": {"a": {**bank, "share": 0.5, "max_pd": 0.04}, "b": {**bank, "share": 0.5, "max_pd": 0.06}},
        "demand": {"reborrow_prob": 0.8},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.5, "collateral": 0.5}, "recovery_lag_months": 6, "write_off_months": 12},
        **sections,
    }


PRESSED = {"pressure": {"yardstick": True, "full_gap": 0.02, "appetite": 0.5, "outreach": 1.0},
           "assessment": {"rule": {"2021": "2019"}}}  # the yardstick in 2021 only (2022 assesses nothing)


def _pressed(**bank_a: Any) -> Scenario:
    data = _book(**PRESSED)
    data["banks"]["a"].update(bank_a)
    return scenario_from_dict(data)


def _expected_shortfall(r: creditsim.Results, scenario: Scenario, bank: str) -> tuple[np.ndarray, np.ndarray]:
    """The documented rule recomputed from the recorded month-end balances: per path and month t = 1..M, the shortfall
    at the start of month t and the pressure it sets."""
    balance, all_loans = r.values("balance", bank), r.values("all_loans_balance", bank)
    target = scenario.banks[bank].growth_target
    paths, months = balance.shape[0], balance.shape[1] - 1
    shortfall, pressure = np.zeros((paths, months)), np.zeros((paths, months))
    for t in range(1, months + 1):
        month = scenario.start_index + t - 1
        year, since = month // 12, min(month % 12, t - 1)
        base = t - 1 - since
        factors = []
        if str(year) in target:
            factors.append(np.full(paths, (1 + target[str(year)]) ** (since / 12)))
        if scenario.pressure.yardstick and scenario.assessment.rule_in(year) != "none":
            factors.append(all_loans[:, t - 1] / all_loans[:, base])
        if not factors:
            continue
        pace = balance[:, base] * np.max(factors, axis=0)
        shortfall[:, t - 1] = np.maximum(0.0, pace - balance[:, t - 1])
        pressure[:, t - 1] = np.minimum(1.0, shortfall[:, t - 1] / (pace * scenario.pressure.full_gap))
    return shortfall, pressure


@pytest.mark.parametrize("engine", ENGINES)
def test_the_shortfall_follows_the_documented_rule_from_the_recorded_balances(engine):
    """Bank a has a 30% target in 2022 and both the yardstick in 2021 (all loans +10%): each month's recorded
    growth_shortfall is max(0, pace − balance) with the pace from the balance and all loans at the start of the
    year, recomputed here from the recorded month-end series; none in January, none for b in 2022 (no rule, no
    target), and the banks do fall behind (else the test would be empty)."""
    scenario = _pressed(growth_target={"2022": 0.3})
    r = run_engine(engine, scenario, 4, 3)
    for bank in ("a", "b"):
        expected, _ = _expected_shortfall(r, scenario, bank)
        recorded = r.values("growth_shortfall", bank)[:, 1:]
        np.testing.assert_allclose(recorded, expected, rtol=1e-9, atol=0.02, err_msg=bank)
        assert (recorded[:, [0, 12]] == 0).all()  # January: a new base
    assert (r.values("growth_shortfall", "a")[:, 14:] > 0).all()  # 30% is out of reach
    assert (r.values("growth_shortfall", "b")[:, 13:] == 0).all() and (r.values("growth_shortfall", "b")[:, 2:12] > 0).any()


@pytest.mark.parametrize("engine", ENGINES)
def test_outreach_seeks_poisson_applications_at_the_documented_mean(engine):
    """Each month a pressed bank seeks Poisson(outreach × π × share × applications_per_month) applicants (no demand
    growth, firms never run short): the total over paths and months against the sum of the means, within 4
    standard errors (a Poisson total's variance is its mean)."""
    scenario = _pressed(growth_target={"2022": 0.3})
    r = run_engine(engine, scenario, 6, 11)
    for bank in ("a", "b"):
        _, pressure = _expected_shortfall(r, scenario, bank)
        mean = float((1.0 * pressure * 0.5 * 40).sum())
        got = float(r.values("outreach_applications", bank)[:, 1:].sum())
        assert mean > 50
        assert abs(got - mean) < 4 * math.sqrt(mean), (bank, got, mean)
    assert r.values("unmet_applications").sum() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pressed_bank_lends_to_the_grade_its_own_appetite_declines(engine):
    """Exact beliefs: bank a (max PD 4%) approves grade 2 (PD 5%) only when (1 + 0.5 π) × 4% ≥ 5%, i.e. π ≥ 0.5.
    In those months it approves every applicant; in the others it declines its grade-2 applicants (who stay
    without a loan and apply again, so they are well over 40% of the applicants by then)."""
    scenario = _pressed(growth_target={"2022": 0.3})
    r = run_engine(engine, scenario, 6, 5)
    _, pressure = _expected_shortfall(r, scenario, "a")
    applications, approvals = r.values("applications", "a")[:, 1:], r.values("approvals", "a")[:, 1:]
    high = pressure >= 0.5 + 1e-9
    assert high.sum() >= 10 and (~high).sum() >= 10
    np.testing.assert_array_equal(approvals[high], applications[high])
    assert (approvals[~high] <= applications[~high]).all() and approvals[~high].sum() < 0.7 * applications[~high].sum()


def test_a_target_never_missed_changes_nothing():
    """Bank a's target of −50% is always met, and the yardstick is off: every metric of every path is what the run
    without [pressure] gives (the pressure's draws are keyed apart, so none of the others moves), and the shortfall
    and outreach are 0."""
    data = _book(pressure={"full_gap": 0.02, "appetite": 0.5, "outreach": 1.0})
    data["banks"]["a"]["growth_target"] = {"2021": -0.5, "2022": -0.5}
    pressed = creditsim.simulate(scenario_from_dict(data), paths=3, seed=2, progress=False)
    plain = creditsim.simulate(scenario_from_dict(_book()), paths=3, seed=2, progress=False)
    for scope in SCOPE_METRICS:
        np.testing.assert_array_equal(pressed.groups[scope], plain.groups[scope], err_msg=scope)
    assert pressed.values("growth_shortfall").sum() == 0 and pressed.values("outreach_applications").sum() == 0


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"banks": {"a": {"growth_target": {"2022": 0.3}}}}, "pressure.outreach", "or pressure.appetite must be > 0"),
    ({"pressure": {"outreach": 1.0}}, "pressure.yardstick", "must be true, or a bank have a growth_target"),
    ({"pressure": {"outreach": 1.0}, "banks": {"a": {"growth_target": {"2023": 0.3}}}}, "banks.a.growth_target.2023", "must be a simulated year (2021–2022)"),
    ({"pressure": {"outreach": 1.0}, "banks": {"a": {"growth_target": {"y2022": 0.3}}}}, "banks.a.growth_target.y2022", "keys must be years"),
    ({"pressure": {"yardstick": True, "full_gap": 0}}, "pressure.full_gap", "must be > 0"),
])
def test_pressure_that_cannot_act_is_refused_naming_the_field(change, field, rule):
    data = _book()
    for section, value in change.items():
        if section == "banks":
            for name, fields in value.items():
                data["banks"][name].update(fields)
        else:
            data[section] = value
    with pytest.raises(ScenarioError) as raised:
        scenario_from_dict(data)
    message = str(raised.value)
    assert message.startswith(field) and rule in message and "\n" not in message, message
