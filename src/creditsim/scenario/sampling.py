"""Simulating a sample of the firms: the scenario the engine runs, and the factors that scale its results back.

A plan scenario is written at full scale and simulates ``sample`` of its firms. :func:`sampled` multiplies every
field marked :data:`~creditsim.scenario.schema.SCALED` by the share (a rate of arrivals, a balance, a capital, a
budget) and every field marked :data:`~creditsim.scenario.schema.WHOLE` by the share, rounded to whole firms;
loan sizes, lines and per-loan limits are unchanged. :func:`scale_back` gives, per scope, the factor by which
each reported metric of such a run is multiplied back: 1 / sample for counts and amounts, 1 for ratios and flags.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import SCOPE_METRICS, SCOPES, metric
from .loan_tape import sampled_tape
from .schema import Guarantor, LoanTape, Scenario, _Model

__all__ = ["sampled", "scale_back"]


def sampled(scenario: Scenario) -> Scenario:
    """The scenario the engine runs for a ``sample`` below 1: every field marked ``SCALED`` multiplied by ``sample``,
    every field marked ``WHOLE`` multiplied and rounded to whole firms, and of each loan tape the firms
    :func:`~creditsim.scenario.loan_tape.sampled_tape` keeps; loan sizes, lines and per-loan limits unchanged (the
    single-borrower share of a guarantor's capital is divided by ``sample`` so that the limit in CNY
    stays the same). Returns the scenario itself when ``sample`` is 1.
    """
    if scenario.sample == 1.0:
        return scenario
    return _scaled(scenario, scenario.sample).model_copy(update={"sample": 1.0})


def scale_back(sample: float) -> dict[str, np.ndarray]:
    """Per scope, the factor by which each metric of a run on a ``sample`` of the firms is scaled back to the whole
    population: 1 / sample for counts and amounts (stocks and flows), 1 for ratios and flags."""
    return {scope: np.array([1.0 / sample if m.kind != "ratio" and m.unit in ("CNY", "firms", "loans") else 1.0
                             for m in map(metric, SCOPE_METRICS[scope])]) for scope in SCOPES}


def _scaled(value: Any, k: float) -> Any:
    """A scenario part with its :data:`SCALED` and :data:`WHOLE` fields multiplied by ``k``, recursively."""
    if isinstance(value, dict):
        return {key: _scaled(v, k) for key, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_scaled(v, k) for v in value)
    if isinstance(value, LoanTape):
        return sampled_tape(value, k)
    if not isinstance(value, _Model):
        return value
    update = {}
    for name, info in type(value).model_fields.items():
        field = getattr(value, name)
        marker = (info.json_schema_extra or {}).get("sampled") if isinstance(info.json_schema_extra, dict) else None
        if marker is None or field is None:
            update[name] = _scaled(field, k)
        else:
            update[name] = float(round(field * k)) if marker == "whole" else field * k
    if isinstance(value, Guarantor):
        update["single_borrower_share"] = value.single_borrower_share / k
    return value.model_copy(update=update)

