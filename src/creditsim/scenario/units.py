"""Parsing of the values people write in scenario files: amounts in 万/亿, rates in %, months.

Every parser takes what a TOML file can hold (int, float or str) and returns a plain number, or raises
``ValueError`` whose message is the rule that was broken; the scenario loader adds the field name.

Examples
--------
>>> parse_amount("1.1万亿")
1100000000000.0
>>> parse_amount("800万元")
8000000.0
>>> parse_amount("5千万")
50000000.0
>>> amount_text(5.5e10)
'550亿'
>>> parse_rate("0.8%")
0.008
>>> month_index("2021-03") - month_index("2020-12")
3
"""

from __future__ import annotations

import math
import re

__all__ = [
    "UNIT_MULTIPLIERS",
    "MAX_AMOUNT",
    "MAX_COUNT",
    "parse_amount",
    "parse_number",
    "parse_count",
    "parse_rate",
    "parse_month",
    "month_index",
    "parse_quantity",
    "month_label",
    "format_amount",
    "format_value",
    "amount_text",
]

#: Chinese magnitude units accepted in amounts and counts (longest first, so 万亿 wins over 亿 and 千万 over 千).
UNIT_MULTIPLIERS: dict[str, float] = {"万亿": 1e12, "千万": 1e7, "百万": 1e6, "亿": 1e8, "万": 1e4, "千": 1e3}
#: The largest amount accepted, CNY: 1000万亿, four times the loans of every bank in China. A larger amount is a
#: slip of units, and sums of such amounts in fen would no longer be exact.
MAX_AMOUNT = 1e15
#: The largest count accepted (firms, loans, applications a month): 10亿, more firms than China has.
MAX_COUNT = 1e9

_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_UNITS = "|".join(UNIT_MULTIPLIERS)
_AMOUNT_RE = re.compile(rf"^\s*({_NUMBER})\s*({_UNITS})?\s*(元)?\s*$")
_COUNT_RE = re.compile(rf"^\s*({_NUMBER})\s*({_UNITS})?\s*(户|家|个|笔)?\s*$")
_RATE_RE = re.compile(rf"^\s*(-?{_NUMBER})\s*(%)?\s*$")
_MONTH_RE = re.compile(r"^\s*([0-9]{4})-([0-9]{2})\s*$")


def parse_number(value: object, example: str = "1.5") -> float:
    """A finite real number from an int or float (bools are not numbers here).

    ``example`` shows, in the error message, what the field accepts besides a plain number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number or a string such as {example}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("must be finite") from None
    if not math.isfinite(number):
        raise ValueError("must be finite")
    return number


def _with_units(value: object, pattern: re.Pattern[str], rule: str, example: str, most: float, most_text: str) -> float:
    """A number in [0, ``most``], plain or a string matching ``pattern`` (number, optional unit of
    :data:`UNIT_MULTIPLIERS`, optional suffix)."""
    if isinstance(value, str):
        match = pattern.match(value)
        if match is None:
            raise ValueError(rule)
        number = float(match.group(1)) * UNIT_MULTIPLIERS.get(match.group(2) or "", 1.0)
    else:
        number = parse_number(value, example)
    if not math.isfinite(number):
        raise ValueError("must be finite")
    if number < 0:
        raise ValueError("must be ≥ 0")
    if number > most:
        raise ValueError(f"must be at most {most_text}; check the unit")
    return number


def parse_amount(value: object) -> float:
    """An amount of money in CNY.

    Parameters
    ----------
    value : int, float or str
        A plain number of CNY, or a string with a Chinese unit: ``"300亿"``, ``"1.1万亿"``, ``"50万"``,
        ``"800万元"``, ``"5千万"``, ``"3百万"``, ``"1200元"``. (A scenario file or ``--set`` must give the unit of a
        number other than 0: :func:`creditsim.scenario.written.refuse_bare_amounts`.)

    Returns
    -------
    float
        The amount in CNY, in [0, :data:`MAX_AMOUNT`].
    """
    rule = "must be an amount such as '50万', '300亿' or '1.1万亿' (units 万, 亿, 万亿, 千万, 百万, 千, 元)"
    return _with_units(value, _AMOUNT_RE, rule, "'300亿'", MAX_AMOUNT, "1000万亿 (1e15 CNY)")


def parse_count(value: object) -> float:
    """A count of firms, borrowers or events in [0, :data:`MAX_COUNT`] (may be a rate, so not forced to an integer).

    Accepts plain numbers and strings such as ``"53万"``, ``"1.5万户"``, ``"14458家"``.
    """
    return _with_units(value, _COUNT_RE, "must be a count such as 15000, '1.5万' or '53万户' (units 万, 亿)", "'1.5万'", MAX_COUNT, "10亿 (1e9)")


def parse_quantity(value: object, unit: str) -> float:
    """A value in a metric's unit, which may be negative: a rate for a fraction (``"1%"``, ``0.01``), an amount
    for CNY (``"1000亿"``), a count for firms or loans (``"1.5万户"``), else a plain number.

    Raises
    ------
    ValueError
        Naming what the unit accepts (a percentage only suits a fraction).
    """
    if isinstance(value, str) and value.strip().startswith("-"):
        rest = value.strip()[1:]
        if rest.lstrip().startswith(("-", "+")):
            raise ValueError("must have one sign at most")
        return -parse_quantity(rest, unit)
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:  # a number's sign, as a text's
        return -parse_quantity(-value, unit)
    if isinstance(value, str) and value.strip().endswith("%") and unit != "fraction":
        raise ValueError("a percentage only suits a fraction")
    if unit == "fraction":
        rate = parse_rate(value)
        if abs(rate) > 1.0:
            raise ValueError("must be a fraction such as 0.03 or '3%'")
        return rate
    if unit == "CNY":
        return parse_amount(value)
    if unit in ("firms", "loans"):
        return parse_count(value)
    return parse_number(value, "2.5")


def parse_rate(value: object) -> float:
    """A rate or share as a fraction: ``0.008`` or ``"0.8%"`` both give 0.008."""
    if isinstance(value, str):
        match = _RATE_RE.match(value)
        if match is None:
            raise ValueError("must be a fraction such as 0.008 or a percentage such as '0.8%'")
        rate = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    else:
        rate = parse_number(value, "'0.8%'")
    if not math.isfinite(rate):
        raise ValueError("must be finite")
    return rate


def parse_month(value: object) -> str:
    """A calendar month written ``"YYYY-MM"``; returned in that normal form."""
    if not isinstance(value, str):
        raise ValueError("must be a month written as a string 'YYYY-MM', e.g. '2021-01'")
    match = _MONTH_RE.match(value)
    if match is None:
        raise ValueError("must be a month written 'YYYY-MM', e.g. '2021-01'")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise ValueError("month must be between 01 and 12")
    if not 1900 <= year <= 2200:
        raise ValueError("year must be between 1900 and 2200")
    return f"{year:04d}-{month:02d}"


def month_index(month: str) -> int:
    """Months since January of year 0 for a ``"YYYY-MM"`` string (so differences count months)."""
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def month_label(index: int) -> str:
    """Inverse of :func:`month_index`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def format_value(value: float, unit: str) -> str:
    """A metric's value for people: amounts as :func:`format_amount`, fractions as percentages, ratios with ×,
    counts whole (three significant figures below 100); "–" when undefined."""
    if value is None or not math.isfinite(value):
        return "–"
    if unit == "CNY":
        return format_amount(value)
    if unit == "fraction":
        return f"{100 * value:.2f}%"
    if unit == "ratio":
        return f"{value:.2f}×"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def format_amount(cny: float) -> str:
    """A human-readable amount: ``1.23万亿``, ``456.7亿``, ``89.0万`` or plain CNY."""
    if not math.isfinite(cny):
        return str(cny)
    size = abs(cny)
    if size >= 1e12:
        return f"{cny / 1e12:.3g}万亿"
    if size >= 1e8:
        return f"{cny / 1e8:,.1f}亿"
    if size >= 1e4:
        return f"{cny / 1e4:,.1f}万"
    return f"{cny:,.0f}"


def amount_text(cny: float, digits: int = 12, small: str = "元") -> str:
    """An amount as a scenario file writes it, to ``digits`` significant digits in the largest of 万亿, 亿 and 万 it
    reaches: ``550亿``, ``3000万``, ``1.2万亿``, ``1200元`` (errors show amounts so); ``small`` is the suffix below
    1万 (``""`` for a count: ``53万``, ``800``)."""
    if not math.isfinite(cny):
        return str(cny)
    size = abs(cny)
    unit = next((u for u in ("万亿", "亿", "万") if size >= UNIT_MULTIPLIERS[u]), small)
    return f"{'-' if cny < 0 else ''}{size / UNIT_MULTIPLIERS.get(unit, 1.0):.{digits}g}{unit}"
