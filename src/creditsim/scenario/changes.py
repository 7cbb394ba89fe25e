"""What differs between two scenarios, field by field, and a field's value as a scenario file writes it.

:func:`changed_fields` compares two validated scenarios (their :meth:`~creditsim.scenario.Scenario.to_dict`) and
lists every dotted key whose value differs, with both values; :func:`field_text` shows a value in the unit its field is
written in (amounts in 万/亿, rates and shares in %, counts in 万), from the field's type in the schema. So a
comparison or a sweep can say what it changed however the scenarios were made: two files, ``--set``, or Python.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ScenarioError
from .loading import key_path
from .schema import Scenario, field_at, field_kind
from .units import amount_text

__all__ = ["changed_fields", "field_text", "field_unit"]

#: Fields that only describe (prose and display names): they change no number, so a difference in them is not listed.
PROSE = frozenset({"description", "label", "source", "note"})
#: Lists of numbers up to this long are compared item by item (``pd[0]``); a longer list (a loan tape's column) as one value.
ITEMWISE = 12


def changed_fields(a: Scenario, b: Scenario) -> list[tuple[str, Any, Any]]:
    """Every field whose value differs between two scenarios, in file order.

    Parameters
    ----------
    a, b : Scenario

    Returns
    -------
    list of (key, value in a, value in b)
        ``key`` is dotted as ``--set`` takes it (``guarantors.county.fee_rate``, ``firms.segments.micro.pd[0]``);
        values are as validated (amounts in CNY, rates as fractions), None where the field or table is absent on
        one side. A table present on one side only is listed field by field; prose fields (:data:`PROSE`) are left out.
    """
    found: list[tuple[str, Any, Any]] = []
    _walk(a.to_dict(), b.to_dict(), "", found)
    return found


def _walk(x: Any, y: Any, key: str, found: list[tuple[str, Any, Any]]) -> None:
    if x == y:
        return
    if isinstance(x, dict) or isinstance(y, dict):
        if isinstance(x, dict | None) and isinstance(y, dict | None):
            left, right = x or {}, y or {}
            for name in [*left, *(n for n in right if n not in left)]:
                if name not in PROSE:
                    _walk(left.get(name), right.get(name), f"{key}.{name}" if key else name, found)
            return
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y) and (len(x) <= ITEMWISE or all(isinstance(v, dict) for v in x + y)):
        if all(isinstance(v, dict) or _number(v) for v in x + y):
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                _walk(u, v, f"{key}[{i}]", found)
            return
    found.append((key, x, y))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def field_unit(key: str) -> str:
    """The unit a dotted key's value is written in (:func:`creditsim.scenario.schema.field_kind` of the field it
    names): ``"CNY"`` (amounts), ``"%"`` (rates and shares), ``"count"``, ``"sample"`` (the sample share), or ``""``
    (plain numbers, text, months, true/false; also an unknown key)."""
    try:
        found = field_at(key_path(key))
    except ScenarioError:
        return ""
    return "" if found is None else field_kind(*found)


def field_text(key: str, value: Any) -> str:
    """A field's value as a scenario file would write it, in its unit (:func:`field_unit`): ``"1亿"``, ``"0.5%"``,
    ``"53万"``, ``"1:10"``, ``true``; a list or table item by item, each in its own field's unit; ``none`` for an
    absent value.

    Examples
    --------
    >>> field_text("guarantors.county.fee_rate", 0.005), field_text("pools.fund.size", 2e8), field_text("renewal.enabled", False)
    ('0.5%', '2亿', 'false')
    >>> field_text("guarantors.county.top_up", {"below": 1.45e9, "to": 1.5e9})
    '{below = 14.5亿, to = 15亿}'
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {field_text(f'{key}.{k}', v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return f"[{', '.join(field_text(f'{key}[{i}]', v) for i, v in enumerate(value))}]" if len(value) <= ITEMWISE else f"{len(value)} values"
    return _shown(value, field_unit(key))


def _shown(value: Any, unit: str) -> str:
    """One value (not a list or table) in a unit of :func:`field_unit`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if not _number(value) or not math.isfinite(value):
        return str(value)
    if unit == "%":
        return f"{100 * value:.6g}%"
    if unit == "sample" and 0 < value < 1 and abs(1 / value - round(1 / value)) < 1e-9:
        return f"1:{round(1 / value)}"
    if unit in ("CNY", "count"):
        return amount_text(value, 6, small="")
    return f"{value:.6g}"
