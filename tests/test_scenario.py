"""Tests of the scenario loader: units, validation rules, error messages, overrides and the reference.

Every rule is checked against the bundled default scenario with one thing broken, through
:func:`creditsim.scenario.scenario_from_dict` overrides or an edited deep copy of the data. Each bad input must
raise :class:`~creditsim.errors.ScenarioError` whose ``field`` is the dotted field and whose message starts
with it.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest

import creditsim
from creditsim import ScenarioError, load_scenario
from creditsim import scenario as scenario_module
from creditsim.scenario import scenario_from_dict, units
from creditsim.scenario.document import reference_markdown
from helpers import BASE_TOML

DEFAULT_TOML = Path(creditsim.__file__).parent / "scenarios" / "default.toml"
with open(BASE_TOML, "rb") as _handle:
    BASE_DATA: dict[str, Any] = tomllib.load(_handle)


@pytest.fixture
def base_dict() -> dict[str, Any]:
    """The tests' base scenario as raw TOML data (not yet validated), a fresh copy per test."""
    return copy.deepcopy(BASE_DATA)


def edited(base: dict[str, Any], edit) -> dict[str, Any]:
    """A deep copy of ``base`` changed in place by ``edit``."""
    data = copy.deepcopy(base)
    edit(data)
    return data


def assert_field(exc: pytest.ExceptionInfo[ScenarioError], field: str) -> None:
    """The error names ``field``, and its one-line message starts with it."""
    assert exc.value.field == field
    message = str(exc.value)
    assert message.startswith(field)
    assert "\n" not in message


# ================================================================================================ units
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (5_000_000, 5e6),
        (1200.5, 1200.5),
        (0, 0.0),
        ("300亿", 3e10),
        ("1.1万亿", 1.1e12),
        ("50万", 5e5),
        ("800万元", 8e6),
        ("1200元", 1200.0),
        (" 50 万 ", 5e5),
        ("1e3万", 1e7),
    ],
)
def test_parse_amount_accepts(text, expected):
    """Amounts: plain numbers, or strings with 万 / 亿 / 万亿 and an optional 元."""
    assert units.parse_amount(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value", ["3亿亿", "5 billion", "-5万", "abc", "", "5万万", True, False, -1, -0.5, float("nan"), float("inf"), None, [5], {"a": 1}])
def test_parse_amount_rejects(value):
    """Amounts reject double units, foreign units, negatives, text, bools, NaN / inf and non-scalars."""
    with pytest.raises(ValueError):
        units.parse_amount(value)


@pytest.mark.parametrize(("text", "expected"), [(0.008, 0.008), ("0.8%", 0.008), ("5%", 0.05), (1, 1.0), ("0.25", 0.25), ("-3%", -0.03)])
def test_parse_rate_accepts(text, expected):
    """Rates: a fraction (0.008) or a percentage string ("0.8%")."""
    assert units.parse_rate(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value", ["abc", "5 %%", "%", "0.8 pct", True, float("nan"), float("inf"), float("-inf"), None, [0.1]])
def test_parse_rate_rejects(value):
    """Rates reject text, bools, NaN / inf and non-scalars."""
    with pytest.raises(ValueError):
        units.parse_rate(value)


@pytest.mark.parametrize(("text", "expected"), [(15000, 15000.0), ("1.5万", 15000.0), ("53万户", 530000.0), ("14458家", 14458.0), (2.5, 2.5)])
def test_parse_count_accepts(text, expected):
    """Counts: plain numbers or strings such as "1.5万", "53万户"."""
    assert units.parse_count(text) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value", ["3亿亿", "5 billion", "-5万", "abc", "1.5万元", True, -1, float("nan"), float("inf")])
def test_parse_count_rejects(value):
    """Counts reject bad units, negatives, text, bools and NaN / inf."""
    with pytest.raises(ValueError):
        units.parse_count(value)


@pytest.mark.parametrize(("text", "expected"), [("2021-01", "2021-01"), (" 2023-12 ", "2023-12"), ("1900-01", "1900-01")])
def test_parse_month_accepts(text, expected):
    """Months are strings "YYYY-MM", returned in that normal form."""
    assert units.parse_month(text) == expected


@pytest.mark.parametrize("value", ["2021-13", "2021-00", "2021-1", "21-01", "2021/01", "2021-01-01", "1899-12", 202101, 2021.01, True, None])
def test_parse_month_rejects(value):
    """Months reject month 13 / 00, one-digit months, other separators, years out of range and non-strings."""
    with pytest.raises(ValueError):
        units.parse_month(value)


def test_month_index_counts_months():
    """month_index differences count months, and month_label inverts it."""
    assert units.month_index("2021-03") - units.month_index("2020-12") == 3
    assert units.month_label(units.month_index("2021-07")) == "2021-07"


@pytest.mark.parametrize(
    ("override", "attribute", "expected"),
    [
        ({"banks.big_bank.all_loans": "3000亿"}, lambda s: s.banks["big_bank"].all_loans, 3e11),
        ({"banks.big_bank.all_loans": "1.1万亿"}, lambda s: s.banks["big_bank"].all_loans, 1.1e12),
        ({"firms.segments.micro.line_median": "50万"}, lambda s: s.firms.segments["micro"].line_median, 5e5),
        ({"firms.inclusive_line_limit": "800万元"}, lambda s: s.firms.inclusive_line_limit, 8e6),
        ({"banks.big_bank.all_loans": 3e11}, lambda s: s.banks["big_bank"].all_loans, 3e11),
        ({"banks.big_bank.rate": "0.8%"}, lambda s: s.banks["big_bank"].rate, 0.008),
        ({"banks.big_bank.rate": 0.008}, lambda s: s.banks["big_bank"].rate, 0.008),
        ({"firms.segments.micro.firms": "1.5万"}, lambda s: s.firms.segments["micro"].firms, 15000.0),
        ({"calendar.start": "2022-06"}, lambda s: s.calendar.start, "2022-06"),
    ],
)
def test_units_in_scenario_fields(base_dict, override, attribute, expected):
    """Scenario fields accept the units of their kind (amount, rate, count, month)."""
    value = attribute(scenario_from_dict(base_dict, override))
    assert value == (pytest.approx(expected, rel=1e-12) if isinstance(expected, float) else expected)


# ================================================================================================ unknown keys
@pytest.mark.parametrize(
    ("override", "field", "hint"),
    [
        ({"nmae": "x"}, "nmae", "name"),
        ({"calendar.mnths": 5}, "calendar.mnths", "months"),
        ({"risk.lgd_sdd": 0.1}, "risk.lgd_sdd", "lgd_sd"),
        ({"banks.big_bank.max_pdd": 0.1}, "banks.big_bank.max_pdd", "max_pd"),
        ({"firms.segments.micro.line_medain": "50万"}, "firms.segments.micro.line_medain", "line_median"),
    ],
)
def test_unknown_key_names_field_and_hints(base_dict, override, field, hint):
    """Unknown keys (top level, nested, in a bank, in a segment) are errors with a 'did you mean' hint."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, override)
    assert_field(exc, field)
    assert "unknown field" in str(exc.value)
    assert f"did you mean '{hint}'" in str(exc.value)


def test_unknown_key_without_close_match_lists_allowed(base_dict):
    """An unknown key with no close match lists the allowed fields instead of a hint."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"calendar.zzzzzz": 1})
    assert_field(exc, "calendar.zzzzzz")
    assert "allowed: start, months" in str(exc.value)


def test_unknown_key_in_stress_point(base_dict):
    """An unknown key inside an element of the stress array is named with its index."""
    stress = [{"date": "2021-06", "pd_multiplier": 2, "pd_multiplyer": 2}]
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"risk.stress": stress})
    assert_field(exc, "risk.stress.0.pd_multiplyer")
    assert "did you mean 'pd_multiplier'" in str(exc.value)


@pytest.mark.parametrize(("table", "name", "key", "hint"), [("banks", "rate", "max_pdd", "max_pd"), ("firms.segments", "firms", "line_medain", "line_median")])
def test_unknown_key_hint_when_name_collides_with_field(base_dict, table, name, key, hint):
    """A misspelled key in a bank or segment whose *name* is also a field name still gets its hint."""

    def rename(data):
        node = data["banks"] if table == "banks" else data["firms"]["segments"]
        old = "big_bank" if table == "banks" else "micro"
        node[name] = node.pop(old)

    data = edited(base_dict, rename)
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data, {f"{table}.{name}.{key}": 1})
    assert_field(exc, f"{table}.{name}.{key}")
    assert f"did you mean '{hint}'" in str(exc.value)


# ================================================================================================ wrong types, NaN, ranges
BAD_VALUES = [
    # wrong types
    pytest.param({"calendar.months": "36"}, "calendar.months", id="str-for-int"),
    pytest.param({"calendar.months": 6.5}, "calendar.months", id="float-for-int"),
    pytest.param({"calendar.months": True}, "calendar.months", id="bool-for-int"),
    pytest.param({"calendar": [1, 2]}, "calendar", id="list-for-section"),
    pytest.param({"banks.big_bank.term_mix": [12, 24]}, "banks.big_bank.term_mix", id="list-for-table"),
    pytest.param({"banks": [1]}, "banks", id="list-for-banks"),
    pytest.param({"demand.reborrow_prob": True}, "demand.reborrow_prob", id="bool-for-probability"),
    pytest.param({"firms.segments.micro.line_median": False}, "firms.segments.micro.line_median", id="bool-for-amount"),
    pytest.param({"risk.lgd_sd": True}, "risk.lgd_sd", id="bool-for-number"),
    pytest.param({"banks.big_bank.label": 5}, "banks.big_bank.label", id="int-for-str"),
    pytest.param({"firms.segments.micro.pd": "0.01"}, "firms.segments.micro.pd", id="str-for-list"),
    pytest.param({"firms.segments.micro.pd": [0.005, "abc", 0.02, 0.04, 0.08]}, "firms.segments.micro.pd.1", id="bad-list-item"),
    pytest.param({"risk.factor_frequency": "weekly"}, "risk.factor_frequency", id="bad-literal"),
    pytest.param({"banks.big_bank": 5}, "banks.big_bank", id="scalar-for-bank"),
    # NaN and infinity
    pytest.param({"banks.big_bank.rate": math.nan}, "banks.big_bank.rate", id="nan-rate"),
    pytest.param({"banks.big_bank.all_loans": math.inf}, "banks.big_bank.all_loans", id="inf-amount"),
    pytest.param({"firms.segments.micro.firms": -math.inf}, "firms.segments.micro.firms", id="-inf-count"),
    pytest.param({"risk.lgd_sd": math.nan}, "risk.lgd_sd", id="nan-number"),
    pytest.param({"calendar.months": math.nan}, "calendar.months", id="nan-int"),
    pytest.param({"demand.growth": math.inf}, "demand.growth", id="inf-growth"),
    pytest.param({"banks.big_bank.non_inclusive_growth": math.nan}, "banks.big_bank.non_inclusive_growth", id="nan-growth-union"),
    pytest.param({"firms.segments.micro.pd": [0.005, math.nan, 0.02, 0.04, 0.08]}, "firms.segments.micro.pd.1", id="nan-in-list"),
    # out of range
    pytest.param({"banks.big_bank.max_pd": 1.3}, "banks.big_bank.max_pd", id="probability-1.3"),
    pytest.param({"banks.big_bank.rate": "130%"}, "banks.big_bank.rate", id="probability-130%"),
    pytest.param({"firms.segments.micro.exit_rate": -0.01}, "firms.segments.micro.exit_rate", id="negative-probability"),
    pytest.param({"banks.big_bank.all_loans": -5}, "banks.big_bank.all_loans", id="negative-amount"),
    pytest.param({"firms.segments.micro.line_median": 0}, "firms.segments.micro.line_median", id="zero-positive-amount"),
    pytest.param({"firms.segments.micro.entry_per_year": -1}, "firms.segments.micro.entry_per_year", id="negative-count"),
    pytest.param({"calendar.months": 0}, "calendar.months", id="months-0"),
    pytest.param({"calendar.months": 601}, "calendar.months", id="months-601"),
    pytest.param({"risk.recovery_lag_months": -1}, "risk.recovery_lag_months", id="negative-lag"),
    pytest.param({"firms.segments.micro.rho": 1}, "firms.segments.micro.rho", id="rho-1"),
    pytest.param({"firms.segments.micro.rho": 1.0}, "firms.segments.micro.rho", id="rho-1.0"),
    pytest.param({"demand.growth": "-100%"}, "demand.growth", id="growth--100%"),
    pytest.param({"demand.loans_per_borrower": 0.5}, "demand.loans_per_borrower", id="loans-per-borrower<1"),
    pytest.param({"risk.stress": [{"date": "2021-06", "pd_multiplier": -1}]}, "risk.stress.0.pd_multiplier", id="negative-multiplier"),
    pytest.param({"firms.segments.micro.firms": 60000.5}, "firms.segments.micro.firms", id="fractional-firms"),
    pytest.param({"banks.big_bank.initial_balance": "4000亿"}, "banks.big_bank.initial_balance", id="initial-balance>all-loans"),
    pytest.param({"risk.lgd_sd": 0.49}, "risk.lgd_sd", id="lgd-sd-too-large"),
    # bad units
    pytest.param({"banks.big_bank.all_loans": "5 billion"}, "banks.big_bank.all_loans", id="unit-billion"),
    pytest.param({"banks.big_bank.all_loans": "3亿亿"}, "banks.big_bank.all_loans", id="unit-double"),
    pytest.param({"firms.segments.micro.firms": "6万元"}, "firms.segments.micro.firms", id="unit-yuan-on-count"),
    pytest.param({"banks.big_bank.rate": "4.2 pct"}, "banks.big_bank.rate", id="unit-rate"),
    pytest.param({"calendar.start": "2021-13"}, "calendar.start", id="month-13"),
    pytest.param({"calendar.start": 202101}, "calendar.start", id="month-int"),
    pytest.param({"calendar.start": "2021-1"}, "calendar.start", id="month-one-digit"),
]


@pytest.mark.parametrize(("override", "field"), BAD_VALUES)
def test_bad_value_names_field(base_dict, override, field):
    """Wrong types, NaN / inf, out-of-range values and bad units are ScenarioErrors naming the dotted field."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, override)
    assert_field(exc, field)


def test_error_message_shows_value_and_rule(base_dict):
    """The message is 'field = value: rule'."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"banks.big_bank.max_pd": 1.3})
    assert str(exc.value) == "banks.big_bank.max_pd = 1.3: must be in [0, 1]"
    assert exc.value.value == 1.3
    assert exc.value.rule == "must be in [0, 1]"


def test_scenario_error_is_value_error_and_creditsim_error(base_dict):
    """ScenarioError derives from CreditsimError and ValueError."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"calendar.months": 0})
    assert isinstance(exc.value, creditsim.CreditsimError)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("parser", [units.parse_amount, units.parse_count, units.parse_rate])
def test_huge_integer_is_value_error(parser):
    """An integer beyond the float range is rejected with ValueError, like any other bad number."""
    with pytest.raises(ValueError):
        parser(10**400)


@pytest.mark.parametrize("field", ["firms.segments.micro.firms", "banks.big_bank.rate", "risk.lgd_sd"])
def test_huge_integer_names_field(base_dict, field):
    """A 400-digit integer is a ScenarioError naming the field."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {field: 10**400})
    assert_field(exc, field)


def test_absurd_firm_count_names_firms(base_dict):
    """An absurd firm count (beyond int64) is rejected as firms.segments.NAME.firms, not as a garbled unbanked_share error."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"firms.segments.micro.firms": 1e20})
    assert_field(exc, "firms.segments.micro.firms")


def test_bad_bank_name_field_has_no_pydantic_marker(base_dict):
    """A bank name with a space is an error on the banks table, without pydantic's '[key]' marker."""
    data = edited(base_dict, lambda d: d["banks"].__setitem__("big bank", d["banks"].pop("big_bank")))
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data)
    assert exc.value.field.startswith("banks")
    assert "[key]" not in exc.value.field


def test_bad_year_in_growth_table_names_year(base_dict):
    """A bad rate in the non_inclusive_growth table names the year entry."""
    table = {"2021": "5%", "2022": "abc", "2023": "5%"}
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"banks.big_bank.non_inclusive_growth": table})
    assert_field(exc, "banks.big_bank.non_inclusive_growth.2022")


# ================================================================================================ missing fields
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("name",), "name"),
        (("calendar",), "calendar"),
        (("calendar", "start"), "calendar.start"),
        (("firms", "segments"), "firms.segments"),
        (("firms", "segments", "micro", "pd"), "firms.segments.micro.pd"),
        (("banks", "city_bank", "share"), "banks.city_bank.share"),
        (("demand", "reborrow_prob"), "demand.reborrow_prob"),
        (("risk", "lgd"), "risk.lgd"),
    ],
)
def test_missing_required_field(base_dict, path, field):
    """A missing required field is an error naming it ('is required')."""

    def drop(data):
        node = data
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(edited(base_dict, drop))
    assert_field(exc, field)
    assert str(exc.value) == f"{field}: is required"


def test_empty_scenario_is_missing_name():
    """An empty scenario reports its first missing required field."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({})
    assert_field(exc, "name")


# ================================================================================================ cross-field rules
RULES = [
    pytest.param({"banks.big_bank.share": 0.5}, "banks.*.share", id="bank-shares"),
    pytest.param({"firms.segments.micro.grade_share": [0.15, 0.25, 0.30, 0.20, 0.20]}, "firms.segments.micro.grade_share", id="grade-share-sum"),
    pytest.param({"firms.segments.micro.grade_share": [0.5, 0.5]}, "firms.segments.micro.grade_share", id="grade-share-length"),
    pytest.param({"firms.segments.micro.pd": [], "firms.segments.micro.grade_share": []}, "firms.segments.micro.pd", id="no-grades"),
    pytest.param({"banks.big_bank.term_mix": {"12": 0.6, "24": 0.6}}, "banks.big_bank.term_mix", id="term-mix-sum"),
    pytest.param({"banks.big_bank.term_mix": {}}, "banks.big_bank.term_mix", id="term-mix-empty"),
    pytest.param({"banks.big_bank.product_mix": {"credit": 0.6, "guaranteed": 0.6, "collateral": 0.0}}, "banks.big_bank.product_mix", id="product-mix-sum"),
    pytest.param({"banks.big_bank.product_mix": {"credt": 0.5, "guaranteed": 0.5}}, "banks.big_bank.product_mix.credt", id="product-mix-unknown"),
    pytest.param({"risk.lgd.mortgage": 0.5}, "risk.lgd.mortgage", id="lgd-unknown"),
    pytest.param({"firms.segments.micro.line_p90": "80万"}, "firms.segments.micro.line_p90", id="p90-equal-median"),
    pytest.param({"firms.segments.micro.line_p90": "50万"}, "firms.segments.micro.line_p90", id="p90-below-median"),
    pytest.param(
        {"firms.segments.micro.line_median": "1000万", "firms.segments.micro.line_p90": "2000万"},
        "firms.segments.micro.line_median",
        id="median-at-limit",
    ),
    pytest.param({"firms.inclusive_line_limit": "50万"}, "firms.segments.micro.line_median", id="limit-below-median"),
    pytest.param({"risk.write_off_months": 6}, "risk.write_off_months", id="write-off-before-recovery"),
    pytest.param(
        {"risk.stress": [{"date": "2021-06", "pd_multiplier": 2}, {"date": "2021-03", "pd_multiplier": 1}]},
        "risk.stress.1.date",
        id="stress-out-of-order",
    ),
    pytest.param(
        {"risk.stress": [{"date": "2021-06", "pd_multiplier": 2}, {"date": "2021-06", "pd_multiplier": 1}]},
        "risk.stress.1.date",
        id="stress-same-date",
    ),
    pytest.param({"risk.stress": [{"date": "2021-06", "pd_multiplier": 9}]}, "risk.stress", id="stress-pd-above-1"),
    pytest.param({"banks.big_bank.non_inclusive_growth": {"2021": 0.1, "2022": 0.1}}, "banks.big_bank.non_inclusive_growth", id="growth-missing-year"),
    pytest.param(
        {"banks.big_bank.non_inclusive_growth": {"2021": 0.1, "2022": 0.1, "2023": 0.1, "y2024": 0.1}},
        "banks.big_bank.non_inclusive_growth.y2024",
        id="growth-bad-year-key",
    ),
    pytest.param({"banks.big_bank.term_mix": {"12.5": 0.6, "24": 0.4}}, "banks.big_bank.term_mix.12.5", id="term-not-whole"),
    pytest.param({"banks.big_bank.term_mix": {"a": 1.0}}, "banks.big_bank.term_mix.a", id="term-not-number"),
    pytest.param({"banks.big_bank.term_mix": {"0": 1.0}}, "banks.big_bank.term_mix.0", id="term-zero"),
    pytest.param({"banks.big_bank.term_mix": {"361": 1.0}}, "banks.big_bank.term_mix.361", id="term-too-long"),
    pytest.param({"banks.big_bank.max_pd": 0.001}, "banks.big_bank.max_pd", id="max-pd-accepts-no-grade"),
    pytest.param({"firms.segments.micro.unbanked_share": 0.0}, "firms.segments.micro.unbanked_share", id="unbanked-share-too-low"),
    pytest.param({"banks": {}}, "banks", id="no-banks"),
    pytest.param({"firms.segments": {}}, "firms.segments", id="no-segments"),
]


@pytest.mark.parametrize(("override", "field"), RULES)
def test_cross_field_rule(base_dict, override, field):
    """Cross-field rules (sums, lengths, orders, products, bounds between fields) name the offending field."""
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, override)
    assert_field(exc, field)


def test_shares_need_not_be_exact(base_dict):
    """Shares summing to 1 within floating-point error are accepted."""
    grade = [0.1, 0.2, 0.3, 0.2, 0.2]  # 0.1 + 0.2 is not exactly 0.3
    scenario_from_dict(base_dict, {"firms.segments.micro.grade_share": grade})


def test_lgd_missing_product(base_dict):
    """risk.lgd must give every product."""
    data = edited(base_dict, lambda d: d["risk"]["lgd"].pop("guaranteed"))
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data)
    assert_field(exc, "risk.lgd.guaranteed")


def test_lgd_misspelled_product_hints(base_dict):
    """An unknown product in risk.lgd gets a 'did you mean' hint."""

    def misspell(data):
        data["risk"]["lgd"]["credt"] = data["risk"]["lgd"].pop("credit")

    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(edited(base_dict, misspell))
    assert_field(exc, "risk.lgd.credt")
    assert "did you mean 'credit'" in str(exc.value)


def test_growth_table_covering_every_year_is_valid(base_dict):
    """A non_inclusive_growth table with a rate for every simulated year validates."""
    table = {"2021": "8%", "2022": 0.07, "2023": "6%"}
    s = scenario_from_dict(base_dict, {"banks.big_bank.non_inclusive_growth": table})
    assert s.banks["big_bank"].non_inclusive_growth == {"2021": pytest.approx(0.08), "2022": 0.07, "2023": pytest.approx(0.06)}


def test_growth_table_years_follow_the_calendar(base_dict):
    """The years a growth table must cover follow calendar.start and calendar.months (2021-07 + 12 months → 2021, 2022)."""
    table = {"2021": 0.1, "2022": 0.1}
    scenario_from_dict(base_dict, {"calendar.start": "2021-07", "calendar.months": 12, "banks.big_bank.non_inclusive_growth": table})
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(base_dict, {"calendar.start": "2021-07", "calendar.months": 19, "banks.big_bank.non_inclusive_growth": table})
    assert_field(exc, "banks.big_bank.non_inclusive_growth")
    assert "2023" in str(exc.value)


def test_stress_path_in_order_is_valid(base_dict):
    """A stress path with increasing dates and multipliers keeping PD ≤ 1 validates."""
    stress = [{"date": "2021-06", "pd_multiplier": 2}, {"date": "2022-01", "pd_multiplier": 1.5}]
    s = scenario_from_dict(base_dict, {"risk.stress": stress})
    assert [p.date for p in s.risk.stress] == ["2021-06", "2022-01"]


# ================================================================================================ files
def test_missing_file(tmp_path):
    """A missing file is a ScenarioError naming the path."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert_field(exc, str(path))
    assert "cannot read" in str(exc.value)


def test_directory_is_not_a_file(tmp_path):
    """A directory given as scenario is a ScenarioError naming it."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(tmp_path)
    assert_field(exc, str(tmp_path))


def test_not_utf8_file(tmp_path):
    """A file that is not UTF-8 is a ScenarioError naming the path."""
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert_field(exc, str(path))
    assert "UTF-8" in str(exc.value)


def test_invalid_toml_file(tmp_path):
    """A file that is not TOML is a ScenarioError naming the path, on one line."""
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[calendar\nstart = 1\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert_field(exc, str(path))
    assert "not valid TOML" in str(exc.value)


def test_empty_file(tmp_path):
    """An empty file is refused as empty (not as a scenario missing its fields); a file of only comments parses
    as TOML and then misses the required fields."""
    path = tmp_path / "empty.toml"
    path.write_bytes(b"")
    with pytest.raises(ScenarioError, match="is empty"):
        load_scenario(path)
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert_field(exc, "name")
    assert "is required" in str(exc.value)


def test_file_with_error_names_field(tmp_path):
    """A valid TOML file with a bad value names the field, not the file."""
    text = DEFAULT_TOML.read_text(encoding="utf-8").replace("max_pd = 0.05", "max_pd = 1.3")
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert_field(exc, "banks.big_bank.max_pd")


def test_load_file_equals_bundled_default():
    """Loading the default file by path gives the same scenario as load_scenario() with no path."""
    assert load_scenario(DEFAULT_TOML) == load_scenario()
    assert load_scenario(str(DEFAULT_TOML)).digest() == load_scenario().digest()


# ================================================================================================ --set overrides
def test_set_rate_with_percent():
    """--set values are TOML when they can be, else text: '5%' is parsed by the rate parser."""
    s = load_scenario(None, ["banks.big_bank.rate=5%"])
    assert s.banks["big_bank"].rate == pytest.approx(0.05)


def test_set_unquoted_units():
    """--set accepts unquoted unit strings such as 50万, and TOML numbers and strings."""
    s = load_scenario(None, ["firms.segments.micro.line_median=50万", "calendar.months=12", 'name="renamed"', "calendar.start=2022-03"])
    assert s.firms.segments["micro"].line_median == 5e5
    assert s.calendar.months == 12
    assert s.name == "renamed"
    assert s.calendar.start == "2022-03"


def test_set_toml_table_and_array():
    """--set values may be TOML inline tables and arrays."""
    s = load_scenario(None, ["banks.big_bank.term_mix={12 = 1.0}", 'risk.stress=[{date = "2021-06", pd_multiplier = 2}]'])
    assert s.banks["big_bank"].term_mix == {"12": 1.0}
    assert s.risk.stress[0].pd_multiplier == 2.0


def test_parse_overrides():
    """parse_overrides reads values as TOML, falling back to the text."""
    assert scenario_module.parse_overrides(["a.b=1", "c=50万", "d = 0.5 ", "e=true", "f=x=y"]) == {"a.b": 1, "c": "50万", "d": 0.5, "e": True, "f": "x=y"}


@pytest.mark.parametrize("item", ["noequals", "=5", " =5"])
def test_set_without_key_or_equals(item):
    """An override that is not dotted.key=value names '--set'."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert_field(exc, "--set")


@pytest.mark.parametrize(("item", "field"), [("calendar.months.x=1", "calendar.months"), ("name.first=1", "name"), ("firms.segments.micro.pd.0=0.5", "firms.segments.micro.pd")])
def test_set_subkey_of_scalar(item, field):
    """Overriding a subkey of a scalar (or list) is an error naming the scalar."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert_field(exc, field)
    assert "is not a table" in str(exc.value)


def test_set_bad_value_names_field():
    """A bad --set value is an error naming the overridden field."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, ["banks.city_bank.max_pd=nan"])
    assert_field(exc, "banks.city_bank.max_pd")


def test_set_unknown_field_hints():
    """An unknown --set field is an unknown-field error with a hint."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, ["demand.reborow_prob=0.5"])
    assert_field(exc, "demand.reborow_prob")
    assert "did you mean 'reborrow_prob'" in str(exc.value)


def test_overrides_do_not_change_input(base_dict):
    """scenario_from_dict works on a copy: the caller's data is left unchanged."""
    before = copy.deepcopy(base_dict)
    scenario_from_dict(base_dict, {"banks.big_bank.rate": 0.09, "risk.stress": [{"date": "2021-06", "pd_multiplier": 2}]})
    assert base_dict == before


# ================================================================================================ round trip, freezing
def test_bundled_default_validates():
    """The bundled default scenario is valid."""
    s = load_scenario()
    assert s.name == "jiaxing-2021"
    assert s.segment_names == ["micro", "small", "individual"]
    assert s.bank_names == ["big_bank", "city_bank", "rural_bank"]
    assert s.calendar.months == 36


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "risk.stress": [{"date": "2021-06", "pd_multiplier": 2}, {"date": "2022-01", "pd_multiplier": 1}],
            "banks.big_bank.non_inclusive_growth": {"2021": "8%", "2022": "7%", "2023": "6%"},
            "banks.big_bank.initial_balance": "300亿",
            "risk.factor_frequency": "quarterly",
        },
    ],
)
def test_round_trip(overrides):
    """scenario_from_dict(s.to_dict()) equals s and has the same digest."""
    s = load_scenario(None, overrides)
    again = scenario_from_dict(s.to_dict())
    assert again == s
    assert again.digest() == s.digest()


def test_digest_changes_with_content():
    """Different scenarios have different digests."""
    assert load_scenario().digest() != load_scenario(None, {"banks.big_bank.rate": 0.043}).digest()


@pytest.mark.parametrize(
    "assign",
    [
        lambda s: setattr(s, "name", "x"),
        lambda s: setattr(s.calendar, "months", 3),
        lambda s: setattr(s.banks["big_bank"], "max_pd", 0.5),
        lambda s: setattr(s.firms.segments["micro"], "rho", 0.5),
    ],
)
def test_scenario_is_frozen(assign):
    """Scenarios and their sections are frozen: assigning an attribute raises."""
    s = load_scenario()
    with pytest.raises(pydantic.ValidationError):
        assign(s)


# ================================================================================================ reference
SECTION_MODELS = [
    scenario_module.Scenario,
    scenario_module.Calendar,
    scenario_module.Firms,
    scenario_module.Segment,
    scenario_module.Bank,
    scenario_module.Demand,
    scenario_module.Risk,
    scenario_module.StressPoint,
]


@pytest.mark.parametrize("model", SECTION_MODELS, ids=lambda m: m.__name__)
def test_reference_mentions_every_field(model):
    """The generated reference documents every field: a table row, or a section heading for sub-tables."""
    text = reference_markdown()
    for name in model.model_fields:
        assert f"| `{name}` |" in text or f"## [{name}]" in text, name


def test_reference_mentions_every_field_name_anywhere():
    """Every field name of every section model appears in the generated reference."""
    text = reference_markdown()
    missing = [f"{m.__name__}.{name}" for m in SECTION_MODELS for name in m.model_fields if name not in text]
    assert missing == []


def test_reference_types_are_readable():
    """The reference's type column names the kind of value (amount, rate, count…), never a Python repr."""
    text = reference_markdown()
    assert "<class" not in text
    assert "| `rho` | share/rate in [0, 1] |" in text


@pytest.mark.parametrize("key", ["012", "0", "361", "12.5", "x"])
def test_term_keys_must_be_canonical_whole_months(key):
    """term_mix keys are whole months 1..360 written without leading zeros (so '012' cannot alias '12')."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(BASE_DATA, {"banks.big_bank.term_mix": {key: 0.5, "24": 0.5}})
    assert info.value.field == f"banks.big_bank.term_mix.{key}"


def test_all_loans_must_clear_the_expected_opening_book():
    """A bank's all_loans below its expected opening inclusive balance (plus 6 sd) is refused at validation,
    not by chance during a run."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(BASE_DATA, {"banks.big_bank.all_loans": "300亿"})
    assert info.value.field == "banks.big_bank.all_loans"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_every_bundled_scenario_validates_and_runs(path):
    """Each file in scenarios/ loads, and two paths of its first six months run with exact identities (of its whole
    run when it has dated relief events, whose windows must lie inside the run)."""
    from creditsim import simulate

    s = load_scenario(path)
    if not (s.relief.deferrals or s.relief.lending):
        s = load_scenario(path, {"calendar.months": 6})
    r = simulate(s, paths=2, seed=0)
    assert np.isfinite(r.values("balance")).all()


# ================================================================================================ units and errors that help
@pytest.mark.parametrize(("text", "expected"), [("5千万", 5e7), ("3百万", 3e6), ("2千", 2e3), ("1.5千万元", 1.5e7), ("5千元", 5e3)])
def test_amounts_take_qianwan_baiwan_and_qian(text, expected):
    """千万, 百万 and 千 are units of amounts (and counts), in the one grammar of 万 and 亿."""
    assert units.parse_amount(text) == pytest.approx(expected, rel=1e-12)
    assert units.parse_count(text.removesuffix("元") + "户") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("cny", "text"), [(5.5e10, "550亿"), (5e8, "5亿"), (3e7, "3000万"), (1.2e12, "1.2万亿"), (1200, "1200元"), (-2e9, "-20亿")])
def test_amount_text_writes_amounts_as_people_do(cny, text):
    assert units.amount_text(cny) == text
    assert units.parse_quantity(text, "CNY") == cny


@pytest.mark.parametrize(("item", "field", "number"), [
    ("guarantors.county.capital=15", "guarantors.county.capital", "15"),
    ("pools.ip_pledge.size=5000", "pools.ip_pledge.size", "5000"),
    ('pools.ip_pledge.size="5000"', "pools.ip_pledge.size", "'5000'"),
    ("targets.new_lending.threshold=1000", "targets.new_lending.threshold", "1000"),   # a target on a metric in CNY
    ("targets.first_time_lending.threshold=2.5", "targets.first_time_lending.threshold", "2.5"),
    ('guarantors.county.injections=[{date = "2022-01", amount = 3}]', "guarantors.county.injections.0.amount", "3"),
    ('assumptions=[{key = "pools.ip_pledge.size", low = 1, high = 3, note = "x"}]', "assumptions.0.low", "1"),
])
def test_a_bare_amount_set_is_refused_naming_the_field_and_its_units(item, field, number):
    """An amount given to --set as a bare number (or bare text) other than 0 is refused: a guarantor's capital, a
    pool's size, the threshold of a target on a CNY metric, an amount inside a table, an assumption's ends."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert str(exc.value).startswith(f"{field} = {number}: an amount needs its unit (亿, 万 or 元), e.g. ")


def test_a_bare_amount_in_a_file_is_refused(tmp_path):
    text = DEFAULT_TOML.read_text(encoding="utf-8").replace('capital = "15亿"', "capital = 1500000000")
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value) == "guarantors.county.capital = 1500000000: an amount needs its unit (亿, 万 or 元), e.g. 15亿 for 1500000000 元"


@pytest.mark.parametrize(("item", "check"), [
    ("guarantors.county.capital=15亿", lambda s: s.guarantors["county"].capital == 1.5e9),
    ("guarantors.county.capital=1500000000元", lambda s: s.guarantors["county"].capital == 1.5e9),
    ("pools.ip_pledge.size=0", lambda s: s.pools["ip_pledge"].size == 0),               # 0 is 0 in any unit
    ("targets.borrowers_2021.threshold=1000", lambda s: s.targets["borrowers_2021"].value == 1000),  # a count, not an amount
    ("banks.big_bank.max_pd=0.05", lambda s: s.banks["big_bank"].max_pd == 0.05),
])
def test_amounts_with_units_zero_and_other_numbers_are_accepted(item, check):
    assert check(load_scenario(None, [item]))


def test_python_may_give_amounts_in_yuan():
    """From Python (a dict of overrides, scenario_from_dict), a plain number is an amount in CNY."""
    s = load_scenario(None, {"guarantors.county.capital": 1.5e9, "targets.new_lending.threshold": 1e11})
    assert s.guarantors["county"].capital == 1.5e9 and s.targets["new_lending"].value == 1e11
    assert scenario_from_dict(s.to_dict()) == s


def test_a_sweep_or_a_range_written_without_units_is_refused():
    """A sweep's values and a range to solve over are text too: an amount among them needs its unit."""
    with pytest.raises(ScenarioError, match=r"^pools\.ip_pledge\.size = 6000: an amount needs its unit"):
        creditsim.sweep(None, ["pools.ip_pledge.size=5亿,6000"], paths=2)
    with pytest.raises(ScenarioError, match=r"^pools\.ip_pledge\.size = 1000: an amount needs its unit"):
        creditsim.solve(None, target="ip_pool", vary="pools.ip_pledge.size", range_="1000:5000", paths=2)


@pytest.mark.parametrize(("item", "message"), [
    ("banks.big_bank.rate=0.5", "banks.big_bank.rate = 0.5: is 50% a year, more than any interest rate (at most 30%); did you mean '0.5%'?"),
    ('banks.big_bank.rate={2020 = 0.045, 2021 = 4.5, 2022 = 0.045, 2023 = 0.045}',
     "banks.big_bank.rate.2021 = 4.5: is 450% a year, more than any interest rate (at most 30%); did you mean '4.5%'?"),
    ("guarantors.county.fee_rate=0.8", "guarantors.county.fee_rate = 0.8: is 80% a year, more than any fee rate (at most 10%); did you mean '0.8%'?"),
    ("interest_subsidy.rate=1", "interest_subsidy.rate = 1: is 100% a year, more than any interest rate (at most 30%); did you mean '1%'?"),
    ("banks.big_bank.rate=50%", "banks.big_bank.rate = '50%': is 50% a year, more than any interest rate (at most 30%)"),
    ("demand.growth=30", "demand.growth = 30: is 3000% a year, more than any growth rate (at most 1000%); did you mean '30%'?"),
])
def test_an_implausible_rate_is_refused_with_the_value_probably_meant(item, message):
    """A rate above what its kind can be (schema.MAX_RATES) is refused; written as a number whose percentage would be
    plausible, the message offers it."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert str(exc.value) == message


@pytest.mark.parametrize(("item", "field"), [
    ("renewal.until=2019-01", "renewal.until"),
    ("renewal.until_by_segment={micro = '2020-12'}", "renewal.until_by_segment.micro"),
    ("campaign.end=2020-06", "campaign.end"),
])
def test_a_date_that_switches_a_measure_off_before_the_run_is_refused(item, field):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert_field(exc, field)
    assert "is before the run starts (2021-01), which would switch" in str(exc.value)


def test_a_date_ending_a_measure_within_the_run_is_valid():
    s = load_scenario(None, ["renewal.until=2021-01", "campaign.end=2021-06"])
    assert (s.renewal.until, s.campaign.end) == ("2021-01", "2021-06")


def test_a_table_by_year_reaching_outside_the_run_is_warned():
    """Years of tables by year outside the run are not used: one warning names the first table and counts the
    others; the scenario is valid."""
    with pytest.warns(creditsim.ScenarioWarning) as caught:
        s = load_scenario(None, ["calendar.months=6"])
    assert s.calendar.months == 6
    assert [str(w.message) for w in caught] == [
        "banks.big_bank.non_inclusive_growth and 5 other tables by year: give years outside the run (2021-01 to 2021-06), "
        "which are not used: 2022, 2023"]
    with pytest.warns(creditsim.ScenarioWarning, match=r"^demand\.growth: gives years outside the run \(2021-01 to 2023-12\), which are not used: 2019$"):
        load_scenario(None, {"demand.growth": {"2019": 0.1, "2021": 0.1, "2022": 0.1, "2023": 0.1}})
    with pytest.warns(creditsim.ScenarioWarning, match=r"^guarantors\.county\.injections\.0\.date = '2020-06': is outside the run"):
        load_scenario(None, ['guarantors.county.injections=[{date = "2020-06", amount = "1亿"}]'])


@pytest.mark.parametrize(("item", "message"), [
    ("banks.nobank.max_pd=0.1", "banks.nobank: unknown bank; the banks are big_bank, city_bank, rural_bank"),
    ("banks.big_bnk.max_pd=0.1", "banks.big_bnk: unknown bank (did you mean 'big_bank'?); the banks are big_bank, city_bank, rural_bank"),
    ("guarantors.nope.capital=5亿", "guarantors.nope: unknown guarantor; the guarantors are credit_fund, county"),
    ("reguarantors.nope.capital=5亿", "reguarantors.nope: unknown re-guarantor; the re-guarantors are provincial, national_fund"),
    ("pools.nope.size=5亿", "pools.nope: unknown pool; the pools are ip_pledge"),
    ("firms.segments.nope.rho=0.1", "firms.segments.nope: unknown segment; the segments are micro, small, individual"),
    ("targets.nope.threshold=1", "targets.nope: unknown target; the targets are new_lending, credit_loans, first_time_borrowers, "
                                 "first_time_lending, growth_2021, growth_2022, growth_2023, borrowers_2021, borrowers_2022, borrowers_2023, "
                                 "guarantee_fee, ip_pool, new_firms"),
    ("campaign.channels.nope.need=0.1", "campaign.channels.nope: unknown channel; the channels are visits, loan_code"),
])
def test_setting_a_field_of_an_unknown_entity_names_it_and_the_known_ones(item, message):
    """--set may change a field of a bank (guarantor, pool …) the scenario has; an unknown name is named with the
    known ones, not reported as the first field such an entity would need."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, [item])
    assert str(exc.value) == message


def test_a_whole_new_entity_may_still_be_set():
    """A new pool (bank, guarantor …) given whole, as a table or field by field, is not an unknown name."""
    s = load_scenario(None, ['pools.second={size = "1亿", payout_share = 0.5}'])
    assert s.pools["second"].size == 1e8
    assert load_scenario(None, ['pools.second.size=1亿', "pools.second.payout_share=0.5"]).pools["second"] == s.pools["second"]


def test_a_misspelt_key_in_a_file_is_named_with_its_hint(tmp_path):
    """A misspelt key is both unknown and, for the key meant, missing: the unknown key is named, with its hint."""
    path = tmp_path / "s.toml"
    path.write_text(DEFAULT_TOML.read_text(encoding="utf-8").replace("reborrow_prob", "reborow_prob"), encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert str(exc.value).startswith("demand.reborow_prob = ")
    assert str(exc.value).endswith(": unknown field (did you mean 'reborrow_prob'?)")


def test_a_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DEFAULT_TOML.read_bytes())
    assert load_scenario(path) == load_scenario(DEFAULT_TOML)


@pytest.mark.parametrize(("items", "message"), [
    (["banks.big_bank.initial_balance=6000亿"], "banks.big_bank.initial_balance = 6000亿: must be ≤ all_loans (5600亿)"),
    (["firms.segments.micro.line_p90=30万"], "firms.segments.micro.line_p90 = 30万: must be > line_median (80万)"),
    (["firms.inclusive_line_limit=40万"], "firms.segments.micro.line_median = 80万: must be < firms.inclusive_line_limit (40万)"),
])
def test_errors_show_amounts_in_the_users_units(items, message):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(None, items)
    assert str(exc.value) == message
    assert exc.value.value == units.parse_amount(message.split(" = ")[1].split(":")[0])  # the value itself stays in CNY
