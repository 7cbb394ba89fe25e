"""The levers of a scenario: the fields a planner moves to ask "what if", generated from the scenario and its schema.

A lever is one field of the scenario, named by its dotted key as ``--set`` takes it, with what the schema says of
it: its unit (an amount in 亿/万, a rate or share in %, a count, true/false, a month), the values it admits, and
its description as help text. :func:`levers` lists those of a scenario: each guarantor's fee, coverage and capital;
each pool's size and payout share; 无还本续贷 on or off, its last month and each bank's uptake; each bank's risk
appetite; each 首贷 campaign channel's reach; and the macro stress path. A variant is the scenario with some levers
set, written as ``--set`` texts (:func:`setting`), so that a value a lever is given is read and refused exactly as on
the command line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ScenarioError
from ..scenario import Scenario
from ..scenario.changes import field_text
from ..scenario.loading import key_path, value_at
from ..scenario.schema import field_at, field_kind, field_range

__all__ = ["Lever", "levers", "setting", "STRESS"]

#: The key of the macro lever: the stress path's PD multiplier from a month on (``risk.stress``), written as one point.
STRESS = "risk.stress"

#: Each lever field's name in Chinese, shown before the schema's English name.
_ZH = {
    "fee_rate": "担保费率", "coverage": "分险比例", "capital": "资本金", "size": "资金池规模", "payout_share": "补偿比例",
    "enabled": "无还本续贷", "until": "续贷截止月份", "renewal_uptake": "无还本续贷覆盖面", "max_pd": "风险偏好（最高违约概率）",
    "reach_per_month": "每月触达无贷户", STRESS: "宏观压力：违约概率倍数",
}
#: The sections whose levers are listed, each with its fields, per named entity where the section is a table of them.
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("guarantors.*", ("fee_rate", "coverage", "capital")),
    ("pools.*", ("size", "payout_share")),
    ("renewal", ("enabled", "until")),
    ("banks.*", ("renewal_uptake", "max_pd")),
    ("campaign.channels.*", ("reach_per_month",)),
)


@dataclass(frozen=True)
class Lever:
    """One field of a scenario that the explorer lets a person move.

    Attributes
    ----------
    key : str
        The dotted key, as ``--set`` takes it (``guarantors.county.fee_rate``).
    group : str
        What the lever belongs to, for grouping (``guarantors.county``, ``renewal``, ``risk``).
    label : str
        The field's name in Chinese and in English (``担保费率 fee_rate``).
    unit : str
        ``"%"`` (a rate or share), ``"CNY"`` (an amount, written in 亿/万), ``"count"``, ``"bool"``, ``"month"`` or
        ``"stress"`` (the macro lever: a PD multiplier from a month).
    value : str
        The scenario's value, as a scenario file writes it (``"0.75%"``, ``"15亿"``, ``"true"``, ``""`` for none).
    low, high : float or None
        For a rate or share, the values the field admits, in % (0 and 100 for a share); None otherwise.
    help : str
        The field's description in the schema.
    """

    key: str
    group: str
    label: str
    unit: str
    value: str
    low: float | None
    high: float | None
    help: str


def levers(scenario: Scenario) -> list[Lever]:
    """The levers of ``scenario``, in the order of :data:`_FIELDS` and of the scenario's entities; a section the
    scenario lacks (no pools, no [renewal], no campaign) has none, and the macro lever comes last."""
    data = scenario.to_dict()
    found = []
    for section, names in _FIELDS:
        parent = section.removesuffix(".*")
        groups = [f"{parent}.{name}" for name in value_at(data, parent) or {}] if section.endswith(".*") else [section]
        for group in groups:
            if value_at(data, group) is None:
                continue
            found += [_lever(f"{group}.{name}", group, value_at(data, f"{group}.{name}")) for name in names]
    return [*found, _stress_lever(scenario)]


def _lever(key: str, group: str, value: object) -> Lever:
    model, name = field_at(key_path(key))  # type: ignore[misc]  # every key of _FIELDS is a field of the schema
    info = model.model_fields[name]
    span = field_range(model, name)
    unit = field_kind(model, name) or ("bool" if info.annotation is bool else "month")
    text = "" if value is None else field_text(key, value)
    return Lever(key, group, f"{_ZH.get(name, '')} {name}".strip(), unit, text, None if span is None else 100 * span[0],
                 None if span is None else 100 * span[1], info.description or "")


def _stress_lever(scenario: Scenario) -> Lever:
    """The macro lever: a PD multiplier on every firm from a month on, written ``1.5 from 2022-01`` (``1`` is none)."""
    points = scenario.risk.stress
    value = "; ".join(f"{p.pd_multiplier:g} from {p.date}" for p in points)
    return Lever(STRESS, "risk", f"{_ZH[STRESS]} macro stress", "stress", value or f"1 from {scenario.calendar.start}", None, None,
                 "Every firm's annual PD is multiplied by this factor from the month given on (e.g. '1.5 from 2022-01'; several "
                 "steps separated by ';'). The scenario's risk.stress path, in the form a person writes it here.")


def setting(values: Mapping[str, str]) -> list[str]:
    """The ``--set`` texts that give each lever (by key) its value as written in the explorer: ``key=text``, the macro
    lever as the stress path's points (``risk.stress=[{date = "2022-01", pd_multiplier = 1.5}]``). A blank value
    leaves its field as the scenario has it."""
    texts = []
    for key, text in values.items():
        text = text.strip()
        if not text:
            continue
        if key == STRESS:
            texts.append(f"{STRESS}=[{', '.join(_stress_point(step) for step in text.split(';'))}]")
        else:
            texts.append(f"{key}={text}")
    return texts


def _stress_point(step: str) -> str:
    """One point of the macro lever (``1.5 from 2022-01``) as a TOML table; the month is checked when the scenario is."""
    factor, between, month = step.strip().partition(" from ")
    try:
        number = float(factor)
    except ValueError:
        number = math.nan
    if not between or not math.isfinite(number) or not re.fullmatch(r"[\w-]{1,16}", month.strip()):
        raise ScenarioError(STRESS, step.strip(), "write each step as a PD multiplier and its first month, e.g. 1.5 from 2022-01")
    return f'{{date = "{month.strip()}", pd_multiplier = {number!r}}}'
