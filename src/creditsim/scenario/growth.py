"""Rates given by year: a field that takes one annual rate or a table by year ('2021' = '8%'), and the cumulative
growth factors the engine and the assessment take from such rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["rates_by_year", "growth_factor", "application_growth"]


def rates_by_year(value: float | dict[str, float], years: Sequence[int] | np.ndarray) -> np.ndarray:
    """A field given as one rate or as a table by year ('2021' = rate), as the rate of each of ``years``."""
    years = np.asarray(years)
    return np.array([value[str(y)] for y in years.tolist()]) if isinstance(value, dict) else np.full(years.shape, float(value))


def growth_factor(scenario, rates) -> np.ndarray:
    """Cumulative growth factor of annual ``rates`` (one rate, or a table by year), shape (M + 1,): 1 at the
    opening (index 0), then each month t multiplied by the monthly equivalent of the rate of month t's year."""
    annual = rates_by_year(rates, (scenario.start_index + np.arange(scenario.calendar.months)) // 12)
    return np.cumprod(np.r_[1.0, (1.0 + annual) ** (1.0 / 12.0)])


def application_growth(scenario) -> np.ndarray:
    """Factor applied to every segment's applications_per_month in each month, shape (M + 1,) (index t is month t;
    index 0 unused): 1 in month 1, then growing each month at the monthly equivalent of ``demand.growth`` of that
    month's year: the :func:`growth_factor` of the month before."""
    return np.r_[1.0, growth_factor(scenario, scenario.demand.growth)[:-1]]
