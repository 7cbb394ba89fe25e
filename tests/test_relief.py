"""Relief (``relief.deferrals``, 延期还本付息, and ``relief.lending``) in both engines: a hand-computed deferral, the
uptake and appetite rules, and relief lending's applications against their Poisson mean (seeded; tolerances from
the Monte Carlo standard error). The reference comparison of ``tests/test_reference.py`` covers both in its
renewal scenario."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import creditsim
from creditsim.model.engine import run_task
from creditsim.scenario import Scenario, scenario_from_dict
from helpers import ENGINES, run_engine


def _book(**sections: Any) -> dict[str, Any]:
    """Two segments of firms all borrowing from one bank at the start, every loan new with a 3-month term (so the
    whole opening book matures in month 3, 2021-03); no entries, exits, applications or re-borrowing. Segment
    ``safe`` never defaults; segment ``doomed`` has PD 0.5 under a stress path that is 0 until 2021-05 and 2 from
    then, so each of its firms defaults in month 5, for certain."""
    segment = {"firms": 100, "unbanked_share": 0.0, "pd": [0.5], "grade_share": [1.0], "rho": 0.1, "line_median": "100万", "line_p90": "300万"}
    return {
        "name": "relief",
        "calendar": {"start": "2021-01", "months": 12},
        "firms": {"opening_book": "new", "segments": {"safe": {**segment, "firms": 300, "pd": [0.0]}, "doomed": segment}},
        "banks": {"bank": {"share": 1.0, "all_loans": "1万亿", "non_inclusive_growth": 0.0, "max_pd": 1.0, "rate": 0.05, "term_mix": {"3": 1.0},
                           "product_mix": {"credit": 1.0}}},
        "demand": {"reborrow_prob": 0.0},
        "risk": {"lgd": {"credit": 0.5, "guaranteed": 0.5, "collateral": 0.5}, "recovery_lag_months": 6, "write_off_months": 12,
                 "stress": [{"date": "2021-01", "pd_multiplier": 0.0}, {"date": "2021-05", "pd_multiplier": 2.0}]},
        **sections,
    }


def _deferral(**fields: Any) -> dict[str, Any]:
    return {"deferrals": [{"start": "2021-03", "end": "2021-03", "months": 6, "uptake": 1.0, **fields}]}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deferral_moves_every_maturity_out_and_postpones_the_defaults_to_it(engine):
    """Uptake 1: the book maturing in month 3 is deferred whole (deferred = the balance) and matures in month 9
    (3 + 6): nothing is repaid, lent or defaulted in months 1–8, the balance stays and is all under deferral; the
    doomed firms, whose default month 5 falls in the deferral, default in month 9, the safe ones repay then."""
    scenario = scenario_from_dict(_book(relief=_deferral()))
    v = run_engine(engine, scenario, 3, 5).values
    balance = v("balance")[:, 0]
    assert (balance > 0).all()
    np.testing.assert_array_equal(v("deferred")[:, 3], balance)
    np.testing.assert_array_equal(np.delete(v("deferred"), 3, axis=1), 0.0)
    for month in range(3, 9):
        np.testing.assert_array_equal(v("deferred_balance")[:, month], balance)
        np.testing.assert_array_equal(v("balance")[:, month], balance)
    np.testing.assert_array_equal(v("deferred_balance")[:, [0, 1, 2, 9, 10, 11, 12]], 0.0)
    for flow in ("repaid", "defaulted", "disbursed"):
        np.testing.assert_array_equal(v(flow)[:, 1:9], 0.0)
    defaulted = v("defaulted")[:, 9]
    assert (defaulted > 0).all()
    np.testing.assert_array_equal(v("defaulted")[:, 10:], 0.0)
    np.testing.assert_allclose(defaulted + v("repaid")[:, 9], balance, rtol=0, atol=0.005)  # whole fen, in CNY
    np.testing.assert_array_equal(v("firm_failures")[:, 9], 100.0)
    np.testing.assert_array_equal(v("firm_failures")[:, 1:9], 0.0)


def test_without_the_deferral_the_same_book_repays_in_month_3_and_the_doomed_firms_fail_in_month_5():
    """The control: the same book without relief."""
    v = creditsim.simulate(scenario_from_dict(_book()), paths=2, seed=5, progress=False).values
    np.testing.assert_array_equal(v("repaid")[:, 3], v("balance")[:, 0])
    np.testing.assert_array_equal(v("firm_failures")[:, 5], 100.0)
    np.testing.assert_array_equal(v("deferred_balance"), 0.0)


def test_the_audit_recounts_the_deferred_balance():
    """The month-by-month audit (deferred balance, end months) holds with deferrals, renewal and relief lending."""
    data = _book(relief={**_deferral(end="2021-10", uptake=0.6, months=3), "lending": [{"start": "2021-02", "end": "2021-08", "applications_per_month": 20}]})
    data["firms"]["segments"]["safe"].update(unbanked_share=0.5, applications_per_month=5)
    data["demand"]["reborrow_prob"] = 0.8
    data["banks"]["bank"].update(renewal_uptake=0.5, term_mix={"3": 0.5, "6": 0.5})
    data["renewal"] = {"enabled": True}
    run_task(scenario_from_dict(data), 13, [0, 1, 2, 3], audit=True)


def _uptake_book(uptake: float) -> Scenario:
    data = _book(relief=_deferral(uptake=uptake, banks=["first"]))
    data["firms"]["segments"] = {"safe": data["firms"]["segments"]["safe"] | {"firms": 2000}}
    bank = data["banks"].pop("bank")
    data["banks"] = {"first": bank | {"share": 0.5}, "second": bank | {"share": 0.5}}
    return scenario_from_dict(data)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_share_of_borrowers_deferred_is_the_uptake_and_only_the_listed_banks_defer(engine):
    """Uptake 0.3 at the first bank only: its borrowers still on the book after month 3 (the deferred ones: nothing
    else keeps a borrower) are a Binomial(n, 0.3) share of its n borrowers, within 4 binomial standard errors on each
    path and pooled; the second bank defers none."""
    scenario = _uptake_book(0.3)
    results = run_engine(engine, scenario, 10, 3)
    n, kept = results.values("borrowers", "first")[:, 0], results.values("borrowers", "first")[:, 3]
    assert (n > 800).all()
    share = kept / n
    assert (np.abs(share - 0.3) <= 4 * np.sqrt(0.3 * 0.7 / n)).all(), share
    assert abs(kept.sum() / n.sum() - 0.3) <= 4 * math.sqrt(0.3 * 0.7 / n.sum())
    np.testing.assert_array_equal(results.values("borrowers", "second")[:, 3], 0.0)
    np.testing.assert_array_equal(results.values("deferred", "second"), 0.0)


def test_a_deferral_leaves_out_borrowers_believed_above_its_max_pd():
    """The doomed firms (PD 0.5 as their bank believes it) are above the window's max_pd of 0.1: they repay in
    month 3 and fail in month 5 as firms without a loan; the safe ones are deferred."""
    v = creditsim.simulate(scenario_from_dict(_book(relief=_deferral(max_pd=0.1))), paths=2, seed=5, progress=False).values
    np.testing.assert_allclose(v("deferred")[:, 3] + v("repaid")[:, 3], v("balance")[:, 0], rtol=0, atol=0.005)
    assert (v("repaid")[:, 3] > 0).all() and (v("deferred")[:, 3] > 0).all()
    np.testing.assert_array_equal(v("firm_failures")[:, 5], 100.0)
    np.testing.assert_array_equal(v("defaulted"), 0.0)


def _lending_book() -> Scenario:
    """20,000 firms without a loan, PD 3%; the bank lends to none of them (max_pd 1%, and no applications) but
    relief lending from 2021-03 to 2021-08 takes 50 applications a month at an appetite of 5%; loans of 36 months,
    so no maturity in the year."""
    data = _book(relief={"lending": [{"start": "2021-03", "end": "2021-08", "applications_per_month": 50, "max_pd": 0.05}]})
    data["firms"]["segments"] = {"only": {"firms": 20000, "unbanked_share": 1.0, "pd": [0.03], "grade_share": [1.0], "rho": 0.1,
                                          "line_median": "100万", "line_p90": "300万"}}
    data["banks"]["bank"].update(max_pd=0.01, term_mix={"36": 1.0})
    data["risk"].pop("stress")
    return scenario_from_dict(data)


@pytest.mark.parametrize("engine", ENGINES)
def test_relief_lending_adds_its_poisson_applications_at_its_appetite(engine):
    """Over the six months the applications are Poisson(6 × 50) a path: their mean over the paths is within 4
    standard errors (sqrt(300 / paths)); none come outside the window; every one is approved (PD 3% ≤ 5%, the bank's
    own 1% not applied), and what they borrow is relief_disbursed, all of disbursed."""
    paths = 40
    scenario = _lending_book()
    v = run_engine(engine, scenario, paths, 11).values
    applications = v("applications")
    np.testing.assert_array_equal(applications[:, [1, 2, 9, 10, 11, 12]], 0.0)
    total = applications[:, 3:9].sum(axis=1)
    assert abs(total.mean() - 300.0) <= 4 * math.sqrt(300.0 / paths), total.mean()
    np.testing.assert_array_equal(v("approvals"), applications)
    np.testing.assert_array_equal(v("relief_disbursed"), v("disbursed"))
    assert (v("relief_disbursed")[:, 3:9].sum(axis=1) > 0).all()
