"""Bad input never crashes: thousands of malformed scenarios, each refused with a ScenarioError naming the field
that is wrong, and through the command line with exit 2 and one line on stderr.

The malformed scenarios are the bundled default (every section present: campaign, renewal, guarantors,
re-guarantors, pools, interest subsidy, targets) with one mistake a user can make: a value of the wrong type, NaN
or infinite, negative or enormous, a probability outside [0, 1], a unit that does not exist, an impossible date,
an unknown or misspelt key, a missing field or section, no banks, a name used twice, re-guarantee shares that do
not add up or pass claims to a bank or back to the guarantor, or a target on an unknown metric. Each knows the
field the error must name. The kind of each field (amount, count, probability…) is read from the schema, so a
field added later is covered without changing this file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from creditsim.errors import ScenarioError, one_line
from creditsim.metrics import METRICS
from creditsim.present.cli import main
from creditsim.scenario import Scenario, scenario_from_dict

DEFAULT = resources.files("creditsim").joinpath("scenarios", "default.toml")
BASE: dict[str, Any] = tomllib.loads(DEFAULT.read_text(encoding="utf-8"))
EXAMPLES = 2000


# ------------------------------------------------------------------------------------------------ the schema
def _validator(annotation: Any, metadata: list[Any], inside: bool) -> str | None:
    """Name of the value parser of a scalar field (``parse_amount``, ``_probability``…) or its Python type; with
    ``inside``, of the items of the field's list or table."""
    for item in metadata:
        func = getattr(item, "func", None)
        if func is not None and func.__name__ != "_as_tuple" and not inside:
            return func.__name__
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _validator(args[0], [*metadata, *annotation.__metadata__], inside)
    if origin is Literal:
        return "literal"
    if origin in (dict, tuple, list):
        return _validator(args[-1] if origin is dict else args[0], [], False) if inside else None
    if args:  # a union: the branch that holds what the data holds
        branches = [a for a in args if a is not type(None)]
        containers = [a for a in branches if get_origin(get_args(a)[0] if get_origin(a) is Annotated else a) in (dict, tuple, list)]
        scalars = [a for a in branches if a not in containers]
        for branch in (containers if inside else scalars):
            found = _validator(branch, metadata if not inside else [], inside)
            if found is not None:
                return found
        return None
    return annotation.__name__ if annotation in (int, bool, str, float) else None


def _leaves(node: Any, model: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str, dict[str, Any]]]:
    """Every scalar in the data with the kind of its field and the field's bounds (for whole numbers)."""
    found = []
    for key, value in node.items():
        info = model.model_fields[key]
        inner = _model_inside(info.annotation)
        if inner is None:
            bounds = {name: getattr(m, name.lower()) for m in info.metadata for name in ("Ge", "Le") if type(m).__name__ == name}
            for sub, _ in _scalars(value, (*path, key)):
                kind = _validator(info.annotation, info.metadata, inside=len(sub) > len(path) + 1)
                assert kind is not None, sub
                found.append((sub, kind, bounds))
        elif isinstance(value, list):
            found += [leaf for i, item in enumerate(value) for leaf in _leaves(item, inner, (*path, key, i))]
        elif get_origin(_strip_none(info.annotation)) is dict:  # a table of named entities
            found += [leaf for name, item in value.items() for leaf in _leaves(item, inner, (*path, key, name))]
        else:
            found += _leaves(value, inner, (*path, key))
    return found


def _scalars(value: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _scalars(v, (*path, k))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _scalars(v, (*path, i))]
    return [(path, value)]


def _strip_none(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else annotation


def _model_inside(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_inside(arg)
        if found is not None:
            return found
    return None


def _tables(node: Any, model: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every table of fields in the data (the scenario, its sections, each bank…) with its model."""
    found = [(path, model)]
    for key, value in node.items():
        info = model.model_fields[key]
        inner = _model_inside(info.annotation)
        if inner is None:
            continue
        if isinstance(value, list):
            found += [t for i, item in enumerate(value) for t in _tables(item, inner, (*path, key, i))]
        elif get_origin(_strip_none(info.annotation)) is dict:
            found += [t for name, item in value.items() for t in _tables(item, inner, (*path, key, name))]
        else:
            found += _tables(value, inner, (*path, key))
    return found


LEAVES = _leaves(BASE, Scenario)
TABLES = _tables(BASE, Scenario)
KINDS = sorted({kind for _, kind, _ in LEAVES})


def _field(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


# ------------------------------------------------------------------------------------------------ mistakes
WRONG_TYPES = [True, [], [1, 2], {}, {"a": 1}, "", "2021-01-01T00:00:00"]
NOT_FINITE = [math.nan, math.inf, -math.inf]
BAD_UNITS = ["3亿亿", "5 billion", "5B", "亿3", "3 亿元元", "1,000万", "3e", "--3", "3万万", "二十亿", "3.5.1亿", "5 %%"]
#: Mistakes a value of each kind can hold (besides a wrong type); each must be refused for a field of that kind.
BAD_VALUES: dict[str, list[Any]] = {
    "parse_amount": [*NOT_FINITE, -1, -0.01, "-5亿", 1e16, "20000万亿", 10**30, *BAD_UNITS],
    "_positive_amount": [*NOT_FINITE, 0, -1, "0万", "-5亿", 1e16, "20000万亿", *BAD_UNITS],
    "parse_count": [*NOT_FINITE, -1, "-3万", 1.1e9, "11亿", "12万元", *BAD_UNITS],
    "_probability": [*NOT_FINITE, -0.1, 1.5, "150%", "-1%", "5 percent", "0.5.5", 2],
    "_growth": [*NOT_FINITE, -1, -1.5, "-100%", 11, "1200%", "x%", "5 percent"],
    "_interest_rate": [*NOT_FINITE, -0.01, 0.5, "31%", "-1%", "5 percent", 2],
    "_fee_rate": [*NOT_FINITE, -0.01, 0.2, "11%", "-1%", "5 percent", 2],
    "_non_negative": [*NOT_FINITE, -1, -1e-9, "5"],
    "parse_month": ["2021-13", "2021-00", "2021-1", "21-01", "2021/01", "1899-12", "2201-01", "2021-02-30", 202101, "January 2021"],
    "_sample": [0, -0.5, 1.5, "1:0", "a:b", "0:100", *NOT_FINITE, "1/100"],
    "_comparison": ["=", "==", "≠", "gt", 1],
    "int": [1.5, "12", -(10**6), 10**6, *NOT_FINITE],
    "_write_off_months": [1.5, "12", -1, 241, True, *NOT_FINITE],
    "bool": ["true", "yes", 1, 0],
    "literal": ["weekly", "Monthly", 3],
    "str": [1, 1.5],
    "float": [*NOT_FINITE, *BAD_UNITS, "150%"],  # a target's threshold: any number, negative too, in its metric's unit
}
#: Misspellings of a key: a letter dropped, two swapped, a letter doubled, a capital, a space, Chinese punctuation.
MISSPELL = [
    lambda k: k[:-1], lambda k: k[1:], lambda k: k[:1] + k[2:1:-1] + k[1:2] + k[3:] if len(k) > 3 else k + "s",
    lambda k: k + k[-1], lambda k: k.capitalize() if k != k.capitalize() else k.upper(), lambda k: k.replace("_", " ") if "_" in k else k + " ",
    lambda k: k.replace("_", "-") if "_" in k else k + "_", lambda k: k + "：", lambda k: k + "\n",
]


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _at(data, path[:-1])[path[-1]] = value


def _delete(data: Any, path: tuple[Any, ...]) -> None:
    del _at(data, path[:-1])[path[-1]]


Mistake = tuple[str, dict[str, Any], tuple[str, ...]]  # what, the scenario data, the fields the error may name


@st.composite
def bad_value(draw) -> Mistake:
    path, kind, bounds = draw(st.sampled_from(LEAVES))
    right = {"str": str, "bool": bool}.get(kind, type(None))
    choices = BAD_VALUES[kind] + [w for w in WRONG_TYPES if not isinstance(w, right)]
    if kind == "int":
        choices = [*choices, bounds.get("Ge", 0) - 1, bounds.get("Le", 10**9) + 1]
    value = draw(st.sampled_from(choices))
    data = copy.deepcopy(BASE)
    _set(data, path, value)
    return f"{_field(path)} = {value!r}", data, (_field(path),)


@st.composite
def unknown_key(draw) -> Mistake:
    path, model = draw(st.sampled_from(TABLES))
    table = _at(BASE, path)
    allowed = set(model.model_fields)
    misspelt = {f(k) for k in table for f in MISSPELL} | {"zz_unknown", "备注", "Name", "bank_share"}
    key = draw(st.sampled_from(sorted(misspelt - allowed - {""})))
    data = copy.deepcopy(BASE)
    _at(data, path)[key] = draw(st.sampled_from([1, "x", 0.5]))
    return f"unknown key {key!r} in {_field(path) or 'the scenario'}", data, (_field((*path, key)),)


@st.composite
def missing_field(draw) -> Mistake:
    """A required field or section left out (one with no default in the schema)."""
    path, model = draw(st.sampled_from(TABLES))
    required = [k for k, info in model.model_fields.items() if info.is_required() and k in _at(BASE, path)]
    if not required:
        path, model, required = (), Scenario, ["calendar"]
    key = draw(st.sampled_from(required))
    data = copy.deepcopy(BASE)
    _delete(data, (*path, key))
    return f"{_field((*path, key))} missing", data, (_field((*path, key)),)


def _named(kind: str) -> list[str]:
    return list(BASE[kind])


STRUCTURE: list[tuple[str, Any, tuple[str, ...]]] = [
    ("no banks", lambda d: d.update(banks={}), ("banks",)),
    ("no segments", lambda d: d["firms"].update(segments={}), ("firms.segments",)),
    ("banks not a table", lambda d: d.update(banks=[]), ("banks",)),
    ("a bank with an empty name", lambda d: d["banks"].update({"": d["banks"]["big_bank"]}), ("banks",)),
    ("a bank named with a dot", lambda d: d["banks"].update({"big.bank": d["banks"]["big_bank"]}), ("banks",)),
    ("a guarantor named as a bank", lambda d: d["guarantors"].update(big_bank=d["guarantors"][_named("guarantors")[0]]), ("guarantors.big_bank",)),
    ("a re-guarantor named as a guarantor", lambda d: d["reguarantors"].update({_named("guarantors")[0]: d["reguarantors"][_named("reguarantors")[0]]}),
     (f"guarantors.{_named('guarantors')[0]}", f"reguarantors.{_named('guarantors')[0]}")),
    ("a pool named as a bank", lambda d: d["pools"].update(big_bank=d["pools"][_named("pools")[0]]), ("pools.big_bank",)),
    ("a segment listed twice for renewal", lambda d: d["renewal"].update(segments=["micro", "micro"]), ("renewal.segments.1",)),
    ("a bank listed twice for a guarantor", lambda d: d["guarantors"][_named("guarantors")[0]].update(banks=["big_bank", "big_bank"]),
     (f"guarantors.{_named('guarantors')[0]}.banks.1",)),
    ("a target scoped to a bank twice", lambda d: d["targets"][next(iter(d["targets"]))].update(scope=["big_bank", "big_bank"]),
     (f"targets.{next(iter(BASE['targets']))}.scope",)),
    ("re-guarantee shares above 1", lambda d: d["guarantors"][_named("guarantors")[0]].update(reguarantee={r: 0.6 for r in _named("reguarantors")}),
     (f"guarantors.{_named('guarantors')[0]}.reguarantee",)),
    ("re-guarantee to the guarantor itself", lambda d: d["guarantors"][_named("guarantors")[0]].update(reguarantee={_named("guarantors")[0]: 0.2}),
     (f"guarantors.{_named('guarantors')[0]}.reguarantee.{_named('guarantors')[0]}",)),
    ("re-guarantee to a bank", lambda d: d["guarantors"][_named("guarantors")[0]].update(reguarantee={"big_bank": 0.2}),
     (f"guarantors.{_named('guarantors')[0]}.reguarantee.big_bank",)),
    ("re-guarantee to a re-guarantor that does not exist", lambda d: d.update(reguarantors={}),
     tuple(f"guarantors.{g}.reguarantee.{r}" for g in _named("guarantors") for r in _named("reguarantors"))),
    ("a negative re-guarantee share", lambda d: d["guarantors"][_named("guarantors")[0]].update(reguarantee={_named("reguarantors")[0]: -0.25}),
     (f"guarantors.{_named('guarantors')[0]}.reguarantee.{_named('reguarantors')[0]}",)),
    ("bank shares that do not add up", lambda d: d["banks"]["big_bank"].update(share=d["banks"]["big_bank"]["share"] / 2), ("banks.*.share",)),
    ("grade shares that do not add up", lambda d: d["firms"]["segments"]["micro"].update(grade_share=[0.5] * len(d["firms"]["segments"]["micro"]["pd"])),
     ("firms.segments.micro.grade_share",)),
    ("one grade share too many", lambda d: d["firms"]["segments"]["micro"]["grade_share"].append(0.0), ("firms.segments.micro.grade_share",)),
    ("a term mix that does not add up", lambda d: d["banks"]["big_bank"].update(term_mix={"12": 0.5}), ("banks.big_bank.term_mix",)),
    ("a term of 0 months", lambda d: d["banks"]["big_bank"].update(term_mix={"0": 1.0}), ("banks.big_bank.term_mix.0",)),
    ("an unknown product", lambda d: d["banks"]["big_bank"].update(product_mix={"credit": 0.5, "mortgage": 0.5}), ("banks.big_bank.product_mix.mortgage",)),
    ("campaign ends before it starts", lambda d: d["campaign"].update(start="2022-06", end="2022-01"), ("campaign.end",)),
    ("stress dates out of order", lambda d: d["risk"].update(stress=[{"date": "2022-01", "pd_multiplier": 2.0}, {"date": "2021-06", "pd_multiplier": 1.0}]),
     ("risk.stress.1.date",)),
    ("write-off before recovery", lambda d: d["risk"].update(recovery_lag_months=24, write_off_months=12), ("risk.write_off_months",)),
    ("a year's write-off before recovery", lambda d: d["risk"].update(recovery_lag_months=12, write_off_months={"2020": 24, "2021": 6, "2022": 24, "2023": 24}),
     ("risk.write_off_months.2021",)),
    ("write-off months missing the opening's year", lambda d: d["risk"].update(write_off_months={"2021": 24, "2022": 24, "2023": 24}), ("risk.write_off_months",)),
    ("a bank's rate missing a year", lambda d: d["banks"]["big_bank"].update(rate={"2020": "5%", "2021": "5%", "2023": "4%"}), ("banks.big_bank.rate",)),
    ("line p90 below the median", lambda d: d["firms"]["segments"]["micro"].update(line_p90="1万"), ("firms.segments.micro.line_p90",)),
    ("a target on an unknown metric", lambda d: d["targets"][next(iter(d["targets"]))].update(metric="new_loans"), (f"targets.{next(iter(BASE['targets']))}.metric",)),
    ("a target scoped to an unknown bank", lambda d: d["targets"][next(iter(d["targets"]))].update(scope="no_bank"), (f"targets.{next(iter(BASE['targets']))}.scope",)),
    ("a guarantor fee above its cap", lambda d: d["guarantors"][_named("guarantors")[0]].update(fee_rate="3%"), (f"guarantors.{_named('guarantors')[0]}.fee_rate",)),
    ("a channel of an unknown bank", lambda d: d["campaign"]["channels"][next(iter(d["campaign"]["channels"]))].update(bank="no_bank"),
     (f"campaign.channels.{next(iter(BASE['campaign']['channels']))}.bank",)),
    ("a stress that makes a PD above 1", lambda d: d["risk"].update(stress=[{"date": "2021-06", "pd_multiplier": 1000.0}]), ("risk.stress",)),
]
#: The bounds that keep a valid scenario's numbers finite, each found by a crash or an overflow in a run.
STRUCTURE += [
    ("a risk premium of 1100% at PD 1", lambda d: d["banks"]["big_bank"].update(rate_per_pd=11), ("banks.big_bank.rate_per_pd",)),
    ("101 loans a borrower", lambda d: d["demand"].update(loans_per_borrower=101), ("demand.loans_per_borrower",)),
    ("an LGD sd that underflows", lambda d: d["risk"].update(lgd_sd=1e-300), ("risk.lgd_sd",)),
    ("an LGD sd that overflows", lambda d: d["risk"].update(lgd_sd=1e300), ("risk.lgd_sd",)),
    ("applications that grow past 10亿 a month", lambda d: d.update(demand={**d["demand"], "growth": 10.0}) or d["firms"]["segments"]["micro"].update(applications_per_month="1亿"),
     ("firms.segments.micro.applications_per_month",)),
    ("an opening balance of 1000 CNY", lambda d: d["banks"]["big_bank"].update(initial_balance=1000), ("banks.big_bank.initial_balance",)),
    ("a pool levered 1e300 times", lambda d: d["pools"][_named("pools")[0]].update(leverage=1e300), (f"pools.{_named('pools')[0]}.leverage",)),
    ("a threshold with two signs", lambda d: d["targets"][next(iter(d["targets"]))].update(threshold="--3"), (f"targets.{next(iter(BASE['targets']))}.threshold",)),
    ("a rule table of no year", lambda d: d["assessment"].update(rule={}), ("assessment.rule",)),
    ("a term written in superscript digits", lambda d: d["banks"]["big_bank"].update(term_mix={"¹²": 1.0}), ("banks.big_bank.term_mix.¹²",)),
    ("a growth year in full-width digits", lambda d: d["demand"].update(growth={"２０２１": 0.1}), ("demand.growth.２０２１",)),
]
#: Relief windows: dates within the run and in order, values in range, known names.
_DEFERRAL = {"start": "2021-03", "end": "2021-12", "months": 6, "uptake": 0.5}
_LENDING = {"start": "2021-03", "end": "2021-12", "applications_per_month": 100}
STRUCTURE += [
    ("a deferral window starting before the run", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "start": "2019-01"}]}), ("relief.deferrals.0.start",)),
    ("a deferral window ending after the run", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "end": "2030-01"}]}), ("relief.deferrals.0.end",)),
    ("a deferral window ending before it starts", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "start": "2022-01", "end": "2021-06"}]}),
     ("relief.deferrals.0.end",)),
    ("a deferral of 0 months", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "months": 0}]}), ("relief.deferrals.0.months",)),
    ("a deferral of 37 months", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "months": 37}]}), ("relief.deferrals.0.months",)),
    ("a deferral uptake of 150%", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "uptake": "150%"}]}), ("relief.deferrals.0.uptake",)),
    ("a deferral by an unknown bank", lambda d: d.update(relief={"deferrals": [{**_DEFERRAL, "banks": ["no_bank"]}]}), ("relief.deferrals.0.banks.0",)),
    ("a deferral window without its months", lambda d: d.update(relief={"deferrals": [{k: v for k, v in _DEFERRAL.items() if k != "months"}]}),
     ("relief.deferrals.0.months",)),
    ("relief lending for an unknown segment", lambda d: d.update(relief={"lending": [{**_LENDING, "segments": ["no_segment"]}]}), ("relief.lending.0.segments.0",)),
    ("relief lending ending before it starts", lambda d: d.update(relief={"lending": [{**_LENDING, "start": "2022-01", "end": "2021-06"}]}),
     ("relief.lending.0.end",)),
    ("relief lending of -5 applications", lambda d: d.update(relief={"lending": [{**_LENDING, "applications_per_month": -5}]}),
     ("relief.lending.0.applications_per_month",)),
    ("relief lending with an appetite of 2", lambda d: d.update(relief={"lending": [{**_LENDING, "max_pd": 2}]}), ("relief.lending.0.max_pd",)),
    ("an unknown relief measure", lambda d: d.update(relief={"moratorium": []}), ("relief.moratorium",)),
]
#: Every section a scenario needs, left out.
STRUCTURE += [(f"no [{section}]", lambda d, section=section: d.pop(section), (section,)) for section in ("calendar", "firms", "banks", "demand", "risk", "name")]


@st.composite
def bad_structure(draw) -> Mistake:
    what, change, fields = draw(st.sampled_from(STRUCTURE))
    data = copy.deepcopy(BASE)
    change(data)
    return what, data, fields


@st.composite
def bad_target(draw) -> Mistake:
    """A target whose metric is unknown: misspelt, in Chinese, or a metric's name with another scope's prefix."""
    name = draw(st.sampled_from(list(BASE["targets"])))
    known = [m.name for m in METRICS]
    metric = draw(st.one_of(st.sampled_from([f(m) for m in known for f in MISSPELL[:4]]), st.sampled_from(["新增贷款", "", "balance ", "Balance"]), st.text(max_size=8)))
    if metric in known:
        metric += "_x"
    data = copy.deepcopy(BASE)
    data["targets"][name]["metric"] = metric
    return f"targets.{name}.metric = {metric!r}", data, (f"targets.{name}.metric",)


MISTAKES = st.one_of(bad_value(), bad_value(), bad_value(), unknown_key(), missing_field(), bad_structure(), bad_target())


# ------------------------------------------------------------------------------------------------ TOML out
def _toml_key(key: Any) -> str:
    return _toml_value(str(key))


def _toml_value(value: Any) -> str:
    """A value as TOML (inline tables and arrays), the way a user's file can hold it: NaN and ±inf included."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):  # a basic string: quotes, backslashes and control characters escaped
        return '"' + "".join(f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or c == "\x7f" else c for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(data: dict[str, Any]) -> str:
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in data.items())


def test_toml_writer_round_trips_the_default():
    assert tomllib.loads(toml_text(BASE)) == BASE
    text = toml_text({"a": [math.inf, -math.inf, 1, "x\x7f\\\"\n"], "b": {"c d": {"e": True}}})
    assert tomllib.loads(text)["b"] == {"c d": {"e": True}} and tomllib.loads(text)["a"] == [math.inf, -math.inf, 1, "x\x7f\\\"\n"]


def test_the_schema_walk_finds_every_kind_of_field():
    """The default has fields of every kind the mistakes know, and the walk finds hundreds of them."""
    assert len(LEAVES) > 250 and len(TABLES) > 30
    assert set(KINDS) <= set(BAD_VALUES), set(KINDS) - set(BAD_VALUES)
    assert {"parse_amount", "_positive_amount", "parse_count", "_probability", "_growth", "_non_negative", "parse_month", "int", "bool", "literal"} <= set(KINDS)


# ------------------------------------------------------------------------------------------------ the property
def _names(error: ScenarioError, fields: tuple[str, ...], data: dict[str, Any]) -> bool:
    """The error names one of the fields, or a place inside one that the data really has (an item of a list, a
    value of a table), never a made-up suffix."""
    return any(error.field == f or (error.field.startswith(f + ".") and _exists(data, error.field)) for f in fields)


def _exists(data: Any, field: str) -> bool:
    node = data
    for part in field.split("."):
        if isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


def _check(mistake: Mistake, directory: Path) -> None:
    """The mistake raises ScenarioError naming its field (one line, starting with the field), and `creditsim
    validate` on the file exits 2 with one line on stderr naming the same field."""
    what, data, fields = mistake
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    error = info.value
    assert _names(error, fields, data), (what, error.field, str(error))
    assert "\n" not in str(error) and str(error).startswith(one_line(error.field))
    path = directory / "scenario.toml"
    path.write_text(toml_text(data), encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", str(path)])
    assert code == 2, what
    message = err.getvalue()
    assert message.count("\n") == 1 and message.startswith(f"creditsim: error: {one_line(error.field)}"), (what, message)


def test_every_malformed_scenario_is_one_error_naming_its_field(tmp_path):
    """EXAMPLES malformed scenarios (a fixed, derandomized set): each is refused with a ScenarioError naming its
    field, and by `creditsim validate` with exit 2 and one line; together they touch over 150 fields."""
    seen: list[str] = []

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(MISTAKES)
    def property_(mistake: Mistake) -> None:
        _check(mistake, tmp_path)
        seen.append(mistake[0].split(" = ")[0])

    property_()
    assert len(seen) >= EXAMPLES and len(set(seen)) > 150, (len(seen), len(set(seen)))


@pytest.mark.parametrize(("what", "change", "fields"), STRUCTURE, ids=[what for what, _, _ in STRUCTURE])
def test_each_structural_mistake(tmp_path, what, change, fields):
    """Every structural mistake and every bound, each once (the property draws them at random)."""
    data = copy.deepcopy(BASE)
    change(data)
    _check((what, data, fields), tmp_path)


# ------------------------------------------------------------------------------------------------ through the command line
@pytest.mark.parametrize(("content", "message"), [
    (b"[banks.a]\nshare = 1\n[banks.a]\nshare = 2\n", "is not valid TOML"),  # a table given twice
    (b"name = 'x'\nname = 'y'\n", "is not valid TOML"),                      # a key given twice
    (b"!!python/object/apply:os.system ['echo hi']\n", "is not valid TOML"),   # YAML tags mean nothing in TOML
    (b"name = \"__import__('os').system('echo hi')\"\n", "calendar"),       # a string is a string, never code
    (b"\xef\xbb\xbfname = 'x'\n", "calendar"),                                 # a byte-order mark (some editors write one) is read past
    (b"name = 'x'\r\n[calendar]\r\nstart = '2021-01'\r\n", "months"),       # Windows line ends are fine
    (b"name = " + b"[" * 3000 + b"]" * 3000 + b"\n", "nests arrays or tables too deeply"),  # 6 KB that recurse
])
def test_toml_tricks_are_data_or_one_line_errors(tmp_path, content, message, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_deeply_nested_override_is_one_line(capsys):
    assert main(["validate", "--set", "name=" + "[" * 3000 + "]" * 3000, str(DEFAULT)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nests arrays or tables too deeply" in err, err


def test_the_console_script_reports_malformed_files_in_one_line(tmp_path):
    """The installed script (a process of its own: what a user runs), on one malformed file of each kind of
    mistake: exit 2, one line on stderr naming the field, nothing on stdout, no traceback."""
    from test_cli import _console_command

    cases = [
        ("NaN share", {**copy.deepcopy(BASE), "banks": {**BASE["banks"], "big_bank": {**BASE["banks"]["big_bank"], "share": math.nan}}}, ("banks.big_bank.share",)),
        ("3亿亿", {**copy.deepcopy(BASE), "pools": {"ip_pledge": {**BASE["pools"]["ip_pledge"], "size": "3亿亿"}}}, ("pools.ip_pledge.size",)),
        ("misspelt key", {**copy.deepcopy(BASE), "calender": BASE["calendar"]}, ("calender",)),
    ]
    files = []
    for i, (_, data, _) in enumerate(cases):
        files.append(tmp_path / f"bad{i}.toml")
        files[-1].write_text(toml_text(data), encoding="utf-8")
    for path, (what, _, fields) in zip(files, cases, strict=True):
        done = subprocess.run([*_console_command(), "validate", str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stdout == "", what
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"creditsim: error: {fields[0]}"), (what, done.stderr)


# ------------------------------------------------------------------------------------------------ amounts need their unit
_CNY_METRICS = {m.name for m in METRICS if m.unit == "CNY"}
#: Every amount of the bundled default: each field of amounts, and each target's threshold on a metric in CNY.
AMOUNTS = [path for path, kind, _ in LEAVES if kind in ("parse_amount", "_positive_amount")]
AMOUNTS += [("targets", name, "threshold") for name, target in BASE["targets"].items() if target["metric"] in _CNY_METRICS]


def test_every_kind_of_amount_is_covered():
    assert len(AMOUNTS) > 25 and {path[0] for path in AMOUNTS} >= {"firms", "banks", "guarantors", "reguarantors", "pools", "interest_subsidy", "targets"}


@pytest.mark.parametrize("path", AMOUNTS, ids=_field)
def test_a_bare_amount_in_a_file_is_refused_naming_its_field_and_units(tmp_path, path, capsys):
    """An amount written as a bare number (15, or "15") in a scenario file is refused, naming the field and the
    units it takes, whatever the field (the rule is one, for every amount of the schema); 0 stays allowed bare."""
    for bare in (15, "15"):
        data = copy.deepcopy(BASE)
        _set(data, path, bare)
        file = tmp_path / "scenario.toml"
        file.write_text(toml_text(data), encoding="utf-8")
        assert main(["validate", str(file)]) == 2
        shown = repr(bare) if isinstance(bare, str) else bare
        assert capsys.readouterr().err == f"creditsim: error: {_field(path)} = {shown}: an amount needs its unit (亿, 万 or 元), e.g. 15亿 or 15万\n"
