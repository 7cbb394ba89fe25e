"""What a person writes: an amount of money with its unit.

A scenario file and ``--set`` are text a person wrote, where ``capital = 15`` is far more likely to mean 15亿 than
15 元. So there an amount (a field in CNY, a target's threshold on a metric in CNY, the ends of an assumption about
an amount) written as a bare number other than 0 is refused, naming the field and the units it takes: 元 may be
written, but it must be written. Python callers (:func:`~creditsim.scenario.scenario_from_dict`, a dict of
overrides) may give plain numbers of 元, as :meth:`~creditsim.scenario.Scenario.to_dict` writes them.

>>> refuse_bare_amounts({"guarantors.county.capital": 15}, {})
Traceback (most recent call last):
creditsim.errors.ScenarioError: guarantors.county.capital = 15: an amount needs its unit (亿, 万 or 元), e.g. 15亿 or 15万
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ScenarioError
from .schema import field_at, is_amount
from .units import amount_text, parse_amount, parse_quantity

__all__ = ["refuse_bare_amounts", "refuse_bare_amounts_in", "needs_unit", "with_units"]

_BARE = re.compile(r"^\s*-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\s*$")


def refuse_bare_amounts(values: dict[str, Any], data: dict[str, Any]) -> None:
    """Refuse an amount written as a bare number among dotted keys and the values a person wrote for them (``--set``,
    a sweep's values, a range to solve over).

    Parameters
    ----------
    values : dict
        Dotted keys and their values as written, e.g. ``{"pools.fund.size": 5000}``; a value may be a whole table.
    data : dict
        The scenario the keys change, as data: its targets' metrics give the unit of their thresholds.

    Raises
    ------
    ScenarioError
        Naming the field: ``pools.fund.size = 5000: an amount needs its unit (亿, 万 or 元), e.g. 5000亿 or 5000万``.
    """
    from .loading import key_path

    for key, value in values.items():
        _refuse(key_path(key), value, data)


def refuse_bare_amounts_in(data: dict[str, Any]) -> None:
    """Refuse an amount written as a bare number anywhere in scenario data read from a file (see
    :func:`refuse_bare_amounts`)."""
    for key, value in data.items():
        _refuse([key], value, data)


def with_units(data: dict[str, Any]) -> dict[str, Any]:
    """Scenario data (as :meth:`~creditsim.scenario.Scenario.to_dict` gives it) with every amount written with its
    unit, exactly (``"550亿"``, else ``"1234567.89元"``), so that a file holding it loads back to the same scenario."""

    def write(steps: list[str | int], value: Any) -> Any:
        if isinstance(value, dict):
            return {key: write([*steps, key], item) for key, item in value.items()}
        if isinstance(value, list):
            return [write([*steps, i], item) for i, item in enumerate(value)]
        if isinstance(value, int | float) and not isinstance(value, bool) and value != 0 and _in_cny(steps, data):
            text = amount_text(value)
            return text if parse_quantity(text, "CNY") == value else f"{value!r}元"
        return value

    return write([], data)


def _refuse(steps: list[str | int], value: Any, data: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse([*steps, key], item, data)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse([*steps, i], item, data)
    elif _bare(value) and _in_cny(steps, data):
        raise ScenarioError(".".join(map(str, steps)), value, needs_unit(value))


def needs_unit(value: object) -> str:
    """The rule an amount written as a bare number breaks, with an example: the number in 亿 and 万 when it is
    small, else the number of 元 in the largest unit it reaches (1000000000 is 10亿)."""
    number = float(str(value))
    text = f"{number:.15g}"
    example = f"{text}亿 or {text}万" if abs(number) < 1e4 else f"{amount_text(number)} for {text} 元"
    return f"an amount needs its unit (亿, 万 or 元), e.g. {example}"


def _bare(value: object) -> bool:
    """A number other than 0 without a unit, as a number or as text (negative too: a threshold may be); one too
    large for any amount, or not finite, is left to the field's own rule."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    if isinstance(value, str) and not _BARE.match(value):
        return False
    try:
        return parse_amount(abs(float(value))) != 0
    except (ValueError, OverflowError):
        return False


def _in_cny(steps: Sequence[str | int], data: dict[str, Any]) -> bool:
    """Whether the value at a place in scenario data is an amount in CNY: a field of amounts, the threshold of a
    target on a metric in CNY, or an end of an assumption about one field of amounts."""
    from ..metrics import METRICS

    found = field_at(steps)
    if found is None:
        return False
    model, name = found
    if model.__name__ == "Target" and name == "threshold":
        target = _at(data, steps[:-1])
        units = {m.name: m.unit for m in METRICS}
        return isinstance(target, dict) and units.get(target.get("metric")) == "CNY"  # type: ignore[arg-type]
    if model.__name__ == "Assumption" and name in ("low", "high"):
        assumption = _at(data, steps[:-1])
        key = assumption.get("key") if isinstance(assumption, dict) else None
        return isinstance(key, str) and "*" not in key and _in_cny(_key_steps(key), data)
    return is_amount(model, name)


def _key_steps(key: str) -> list[str | int]:
    from .loading import key_path

    try:
        return key_path(key)
    except ScenarioError:
        return []


def _at(data: Any, steps: Sequence[str | int]) -> Any:
    """The value at a place in scenario data, or None."""
    for step in steps:
        if isinstance(data, dict) and step in data or isinstance(data, list) and isinstance(step, int) and step < len(data):
            data = data[step]
        else:
            return None
    return data
