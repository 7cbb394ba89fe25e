"""Loading a scenario: the one door. A TOML file (or the bundled default), ``--set`` overrides applied as dotted
keys, amounts in the file and ``--set`` checked for their units (:mod:`creditsim.scenario.written`), every field
validated by the schema and every cross-field rule by :mod:`creditsim.scenario.rules`; a problem is a one-line
:class:`~creditsim.errors.ScenarioError` naming the dotted field, the value (an amount in 亿/万) and the rule.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import _MISSING, ScenarioError
from ..files import read_regular
from .loan_tape import read_loan_tape
from .rules import check_rules
from .schema import TESTS, Scenario, field_at, is_amount, model_at, nesting
from .units import amount_text
from .written import refuse_bare_amounts_in

__all__ = ["DEFAULT_SCENARIO", "MAX_DEPTH", "MAX_SCENARIO_BYTES", "load_scenario", "parse_overrides", "read_scenario_file", "scenario_from_dict", "scenario_setting", "key_path", "value_at", "with_tests"]

#: The bundled default scenario, run by ``creditsim run`` with no file.
DEFAULT_SCENARIO = "default.toml"
#: The largest scenario file read, in bytes (the plans' files are 15–25 KB); a larger file is refused unread.
MAX_SCENARIO_BYTES = 1024**2
#: The most levels of tables and lists scenario data may nest, counting a dotted key's steps (``banks.NAME.rate.2021``
#: is four): the deepest place of the schema (a loan tape's column, ``banks.NAME.loan_tape.amount[0]``, is five) and
#: two more, so that a key a little too deep is still named by its field's own rule. Deeper data is refused before
#: anything else reads it.
MAX_DEPTH = nesting(Scenario) + 2


def load_scenario(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> Scenario:
    """Load, override and validate a scenario file.

    Parameters
    ----------
    path : str or Path, optional
        A TOML scenario file; the bundled default scenario when omitted.
    overrides : dict or list of str, optional
        Values to set before validation, as ``{"banks.city.max_pd": 0.05}`` or as the CLI's
        ``["banks.city.max_pd=0.05"]`` strings (values parsed as TOML, else taken as text). The file and the strings
        are text a person wrote, so an amount there needs its unit (``"15亿"``, ``"1200元"``; 0 may be bare); a
        dict's values are Python's, where a plain number of CNY is accepted.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        When the file cannot be read or parsed, or any field or rule is violated.
    """
    data, base = read_scenario_file(path)
    written = parse_overrides(overrides) if isinstance(overrides, list) else {}
    given = overrides if isinstance(overrides, dict) else {}
    return _validated(data, written, given, base, text=True)


def read_scenario_file(path: str | Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """A scenario file's TOML data (the bundled default's when ``path`` is None), read and parsed but not validated,
    and the folder its loan tapes are read from: :func:`scenario_setting` makes scenarios of it without reading the
    file again.

    Raises
    ------
    ScenarioError
        When the file cannot be read or parsed.
    """
    if path is None:
        text = resources.files("creditsim").joinpath("scenarios", DEFAULT_SCENARIO).read_text(encoding="utf-8")
        source = DEFAULT_SCENARIO
    else:
        source = str(path)
        raw_bytes = read_regular(path, "scenario file", most=MAX_SCENARIO_BYTES, error=lambda rule: ScenarioError(source, _MISSING, rule))
        if not raw_bytes.strip():
            raise ScenarioError(source, _MISSING, "is empty")
        try:
            text = raw_bytes.decode("utf-8").removeprefix("\ufeff")  # the byte-order mark some editors write
        except UnicodeDecodeError:
            raise ScenarioError(source, _MISSING, "is not UTF-8 text") from None
        if "\x00" in text:
            raise ScenarioError(source, _MISSING, "is binary, not a TOML text file")
    try:
        data = _toml(text, source)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, _MISSING, f"is not valid TOML: {exc}") from None
    return data, None if path is None else Path(path).parent


def scenario_setting(data: dict[str, Any], base: Path | None, settings: list[str]) -> Scenario:
    """The scenario of a file's data (:func:`read_scenario_file`) with the ``--set`` texts ``settings``, checked as
    :func:`load_scenario` checks the file with them.

    Raises
    ------
    ScenarioError
        For the first field or rule violated.
    """
    return _validated(data, parse_overrides(settings), {}, base, text=True)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=50万"]`` into ``{"a.b": 1, "c": "50万"}``; values are read as TOML when they can be."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError("--set", item, "must be written dotted.key=value")
        try:
            parsed[key] = _toml(f"v = {value.strip()}", key)["v"]
        except tomllib.TOMLDecodeError:
            parsed[key] = value.strip()
        check_depth(parsed[key], key_path(key))
    return parsed


def _toml(text: str, where: str) -> dict[str, Any]:
    """``text`` parsed as TOML (a malformed text raises ``tomllib.TOMLDecodeError``).

    Raises
    ------
    ScenarioError
        Naming ``where``, for arrays or tables nested deeper than the parser can go, or an integer of more digits
        than Python converts (``sys.get_int_max_str_digits()``, 4300 by default).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except RecursionError:
        raise ScenarioError(where, _MISSING, "nests arrays or tables too deeply") from None
    except ValueError:  # the only other error of tomllib: an integer longer than int() converts
        raise ScenarioError(where, _MISSING, f"holds an integer of more than {sys.get_int_max_str_digits()} digits") from None


def check_depth(data: Any, steps: Sequence[str | int] = ()) -> None:
    """Refuse scenario data (or a value set at the key of ``steps``) that nests deeper than :data:`MAX_DEPTH`,
    walking it without recursion, so that no later step (a copy, the schema) recurses past Python's limit.

    Raises
    ------
    ScenarioError
        Naming the first place too deep, e.g. ``zz.a.a.a.a.a.a.a…: nests 8 levels of tables or lists …``.
    """
    pending: list[tuple[list[str | int], Any]] = [(list(steps), data)]
    while pending:
        place, node = pending.pop()
        if len(place) > MAX_DEPTH:
            shown = _shown_key(place[: MAX_DEPTH + 1])
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            raise ScenarioError(shown, _MISSING, f"nests more than {MAX_DEPTH} levels of tables or lists; no field of a scenario is deeper "
                                                 f"than {MAX_DEPTH - 2} (e.g. banks.NAME.loan_tape.amount[0])")
        if isinstance(node, dict):
            pending += [([*place, key], value) for key, value in node.items()]
        elif isinstance(node, list | tuple):
            pending += [([*place, i], value) for i, value in enumerate(node)]


def with_tests(scenario: Scenario, written: Sequence[str], field: str = "--target") -> Scenario:
    """``scenario`` with a test target added for each text written ``TEST:BANK:WHEN``: one of the regulator's
    tests (两增, 两控 or one of their checks, :data:`~creditsim.scenario.TESTS`), a bank or ``all``, and a year (its
    year-end) or a quarter-end ``YYYY-MM``, e.g. ``两增:big_bank:2023``. The target is named by the text as
    written; a text naming a target the scenario has already is left as it is.

    Raises
    ------
    ScenarioError
        Naming ``field`` when a text is not written so, or names an unknown test or bank.
    """
    data = scenario.to_dict()
    for text in written:
        if text in data["targets"]:
            continue
        parts = [part.strip() for part in text.split(":")]
        if len(parts) != 3 or not all(parts):
            raise ScenarioError(field, text, f"must name a target of the scenario ({', '.join(scenario.targets) or 'none'}) or a test written TEST:BANK:YEAR, e.g. 两增:{scenario.bank_names[0]}:2023")
        test, bank, when = parts
        if test not in TESTS:
            hint = difflib.get_close_matches(test, TESTS, n=1)
            raise ScenarioError(field, text, f"unknown test {test!r}" + (f" (did you mean '{hint[0]}'?)" if hint else f"; tests are {', '.join(TESTS)}"))
        if bank not in (*scenario.bank_names, "all"):
            raise ScenarioError(field, text, f"unknown bank {bank!r}; banks are {', '.join([*scenario.bank_names, 'all'])}")
        if not re.fullmatch(r"\d{4}(-\d{2})?", when):
            raise ScenarioError(field, text, "must end in a year (its year-end, e.g. 2023) or a quarter-end YYYY-MM")
        data["targets"][text] = {"metric": test, "measure": "test", "scope": bank, "date": when if "-" in when else f"{when}-12"}
    try:
        return scenario_from_dict(data)
    except ScenarioError as exc:
        raise ScenarioError(field, exc.value, exc.rule) from None


def scenario_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None, base: str | Path | None = None) -> Scenario:
    """Validate scenario data (as read from TOML) after applying dotted-key overrides.

    A bank's ``loan_tape`` given as a file name is read from ``base`` (the directory of the scenario file; the
    working directory when None); given as a table (as :meth:`Scenario.to_dict` writes it) it is checked as it is.
    """
    return _validated(data, {}, overrides or {}, base, text=False)


def _validated(data: dict[str, Any], written: dict[str, Any], given: dict[str, Any], base: str | Path | None, *, text: bool) -> Scenario:
    """Scenario data with the overrides a person wrote (``--set``) and those Python gave applied, then checked.

    With ``text`` the data and the written overrides are a file's text, whose amounts must carry their units
    (:mod:`creditsim.scenario.written`); Python's values are taken as they are.
    """
    check_depth(data)
    for key, value in (*written.items(), *given.items()):
        check_depth(value, key_path(key))
    data = json.loads(json.dumps(data, default=str))  # a deep copy that the overrides may change
    made_up = [entity for key, value in written.items() for entity in _set_dotted(data, key, value)]
    if text:
        refuse_bare_amounts_in(data)
    made_up += [entity for key, value in given.items() for entity in _set_dotted(data, key, value)]
    _read_loan_tapes(data, base)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _scenario_error(exc, made_up, data) from None
    try:
        check_rules(scenario)
    except ScenarioError as exc:
        raise _in_user_units(exc) from None
    return scenario


def _in_user_units(error: ScenarioError) -> ScenarioError:
    """An error about a field of amounts shows its value as the user writes amounts (550亿, not 55000000000.0)."""
    found = field_at(error.field.split("."))
    value = error.value
    if found is None or not is_amount(*found) or isinstance(value, bool) or not isinstance(value, int | float):
        return error
    return ScenarioError(error.field, value, error.rule, shown=amount_text(value))


def _read_loan_tapes(data: dict[str, Any], base: str | Path | None) -> None:
    """Replace each bank's loan tape file name by the file's columns (checked row by row by the schema)."""
    banks = data.get("banks")
    if not isinstance(banks, dict):
        return
    for name, bank in banks.items():
        if isinstance(bank, dict) and isinstance(bank.get("loan_tape"), str):
            bank["loan_tape"] = read_loan_tape(bank["loan_tape"], base, f"banks.{name}.loan_tape")


_KEY_PART = re.compile(r"^([^.\[\]]+)((?:\[[0-9]+\])*)$")


def key_path(key: str) -> list[str | int]:
    """The steps of a dotted key: ``"risk.stress[0].pd_multiplier"`` gives ``["risk", "stress", 0, "pd_multiplier"]``.

    Raises
    ------
    ScenarioError
        For an empty part or a bad index.
    """
    steps: list[str | int] = []
    for part in key.split("."):
        match = _KEY_PART.match(part.strip())
        if match is None:
            raise ScenarioError(key, _MISSING, "is not a dotted key such as banks.city.max_pd or firms.segments.micro.pd[0]")
        steps.append(match.group(1))
        steps += [int(index) for index in re.findall(r"\[([0-9]+)\]", match.group(2))]
    return steps


def value_at(data: Any, key: str) -> Any:
    """The value at a dotted key in scenario data (:meth:`Scenario.to_dict`), or None when there is none."""
    node = data
    for step in key_path(key):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> list[list[str | int]]:
    """Set a dotted key in scenario data; returns the place of the bank (segment, guarantor …) it made up when the
    key names a field of one the data does not have (``banks.nobank.max_pd``), else nothing."""
    steps = key_path(key)
    made_up: list[list[str | int]] = []
    node: Any = data
    for depth, (step, following) in enumerate(zip(steps[:-1], steps[1:], strict=True)):
        where = _shown_key(steps[: depth + 1])
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ScenarioError(_shown_key(steps[:depth]), node, f"has no item [{step}], so '{key}' cannot be set")
            child = node[step]
        else:
            child = node.get(step) if isinstance(node, dict) else None
            if child is None:
                if depth > 0 and str(steps[depth - 1]) in _NAMED_TABLES and model_at(steps[: depth + 1]) is not None:
                    made_up.append(steps[: depth + 1])
                child = [] if isinstance(following, int) else {}
                node[step] = child
        if isinstance(following, int) and not isinstance(child, list):
            raise ScenarioError(where, child, f"is not a list, so '{key}' cannot be set")
        if not isinstance(following, int) and not isinstance(child, dict):
            raise ScenarioError(where, child, f"is not a table, so '{key}' cannot be set")
        node = child
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(_shown_key(steps[:-1]), node, f"has no item [{last}], so '{key}' cannot be set")
    node[last] = value
    return made_up


def _unknown_entity(errors: list[Any], made_up: list[list[str | int]], data: dict[str, Any]) -> ScenarioError | None:
    """An override may give a bank (segment, guarantor …) field by field, but one that lacks a required field is
    most likely a misspelt name: ``banks.nobank.max_pd`` is named as an unknown bank, with the known ones."""
    for entity in made_up:
        place = [str(step) for step in entity]
        if any(e["type"] == "missing" and _field_of(e)[: len(place)] == place for e in errors):
            kind = _NAMED_TABLES[place[-2]]
            table = value_at(data, ".".join(place[:-1]))
            known = [str(name) for name in table if [*entity[:-1], name] not in made_up] if isinstance(table, dict) else []
            hint = difflib.get_close_matches(place[-1], known, n=1)
            listed = f"the {kind}s are {', '.join(known)}" if known else f"the scenario has no {kind}"
            return ScenarioError(".".join(place), _MISSING, f"unknown {kind}" + (f" (did you mean '{hint[0]}'?)" if hint else "") + f"; {listed}")
    return None


def _shown_key(steps: Sequence[str | int]) -> str:
    """Dotted key text of key steps (indices in brackets)."""
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


_TYPE_RULES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
    "finite_number": "must be finite",
}


def _field_of(error: Any) -> list[str]:
    """The dotted location of a pydantic error, without pydantic's own markers: validators, and the branch of a
    field that takes alternatives ('float', 'str', "literal['in_force', …]", 'dict[str,…]'), which follows the
    field's name (but not a table of named entities, where it is a name)."""
    loc = [str(p) for p in error["loc"]]
    return [p for i, p in enumerate(loc)
            if "function-" not in p and not (i > 0 and loc[i - 1] not in _NAMED_TABLES and _BRANCH.match(p))]


#: Fields that are tables of named entities (what follows them is a name, never a union branch), and what each
#: entity is called.
_NAMED_TABLES = {"segments": "segment", "banks": "bank", "guarantors": "guarantor", "reguarantors": "re-guarantor", "pools": "pool",
                 "targets": "target", "channels": "channel"}
_BRANCH = re.compile(r"^(float|str|int|bool|literal\[.*\]|dict\[.*\]|tuple\[.*\]|list\[.*\])$")


def _scenario_error(exc: ValidationError, made_up: list[list[str | int]], data: dict[str, Any]) -> ScenarioError:
    """The first validation error, as a one-line ScenarioError naming the dotted field (or the bank, guarantor … an
    override made up, see :func:`_unknown_entity`).

    Where a field accepts alternatives (one rate or a table by year) pydantic reports each branch; the
    deepest location under the first error's field names the real culprit.
    """
    errors = exc.errors(include_url=False)
    unknown = _unknown_entity(errors, made_up, data)
    if unknown is not None:
        return unknown
    # a misspelt key is both an unknown key and a missing one: the unknown key, with its hint, is the one to name
    first = _field_of(next((e for e in errors if e["type"] == "extra_forbidden"), errors[0]))
    error = max((e for e in errors if _field_of(e)[: len(first)] == first), key=lambda e: len(_field_of(e)))
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ScenarioError):  # a rule that names its own place (a loan tape's row and column)
        return cause
    loc = _field_of(error)
    kind = error["type"]
    value = error.get("input", _MISSING)
    if loc and loc[-1] == "[key]":  # a bad bank or segment name
        return ScenarioError(".".join(loc[:-2]), loc[-2], str(error["msg"]).removeprefix("Value error, "))
    field = ".".join(loc) or "scenario"
    if kind == "missing":
        return ScenarioError(field, _MISSING, "is required")
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], known, n=1)
        rule = "unknown field" + (f" (did you mean '{hint[0]}'?)" if hint else f"; allowed: {', '.join(known)}" if known else "")
        return ScenarioError(field, value, rule)
    if kind == "value_error":
        return ScenarioError(field, value, str(error["msg"]).removeprefix("Value error, "))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(error.get("ctx", {}).values()), "?")
        op = {"greater_than_equal": "≥", "less_than_equal": "≤", "greater_than": ">", "less_than": "<"}[kind]
        return ScenarioError(field, value, f"must be {op} {bound}")
    return ScenarioError(field, value, _TYPE_RULES.get(kind) or str(error["msg"]).lower())


def _known_fields(loc: list[str]) -> list[str]:
    """Field names allowed at a location of the schema (for 'did you mean')."""
    model = model_at(loc)
    return [] if model is None else list(model.model_fields)
