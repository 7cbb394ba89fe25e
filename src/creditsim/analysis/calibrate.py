"""Fitting scenario parameters to observed series, and backtesting a fit on years it did not see.

Observations are a CSV file with columns ``date`` ('YYYY-MM', a month end), ``quantity``, ``value`` and,
optionally, ``scope`` (a bank, a list joined by '+', or "all", the default) and ``sd`` (the observation's
standard deviation; default :data:`DEFAULT_RELATIVE_SD` of the value). A quantity is a stock or ratio metric
at the date (``balance``, ``borrowers``, ``npl_ratio`` …), ``growth:STOCK``, the stock's growth over the 12
months to the date (at December: growth since the start of the year, as 两增 and the national series report it),
or ``total:FLOW``, a flow summed over the 12 months to the date (``total:disbursed``: a year's lending).

A parameter is a dotted scenario key. A key naming one number is fitted as that number; a key with ``*``
wildcards, or naming a list (such as a segment's ``pd``), is fitted as one multiplier of every value it
matches (a "PD scale"). The objective is the sum of squared standardised residuals between the observations
and the model's mean over the same paths and seed at every evaluation (common random numbers, so small
parameter changes move the mean smoothly rather than redrawing the noise); it is minimised with
:func:`scipy.optimize.least_squares` within bounds. Standard errors come from the Jacobian at the optimum
(Gauss–Newton: the inverse of JᵀJ for residuals standardised by their standard deviations, which include the
model mean's Monte Carlo error).
"""

from __future__ import annotations

import csv
import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..errors import DataError, ScenarioError
from ..results.results import METRIC_KIND, Results
from ..run.api import simulate
from ..scenario import Scenario, numeric_fields, scenario_from_dict
from ..scenario.units import month_index, parse_amount, parse_month, parse_rate

__all__ = ["DEFAULT_RELATIVE_SD", "Calibration", "Observation", "Parameter", "calibrate", "backtest", "against_data", "model_values",
           "parameters", "read_observations"]

#: Standard deviation of an observation given without one, as a share of its value.
DEFAULT_RELATIVE_SD = 0.02
#: Bounds of a multiplier.
SCALE_BOUNDS = (0.1, 10.0)


@dataclass(frozen=True)
class Observation:
    """One observed value: a quantity on a scope at the end of a month."""

    date: str
    quantity: str
    value: float
    scope: str | tuple[str, ...] = "all"
    sd: float = math.nan

    @property
    def metric(self) -> str:
        """The metric observed: the quantity without its ``growth:`` or ``total:`` prefix."""
        return self.quantity.partition(":")[2] or self.quantity

    @property
    def scope_text(self) -> str:
        """The scope as written in a data file (entities joined by "+")."""
        return self.scope if isinstance(self.scope, str) else "+".join(self.scope)

    @property
    def over_a_year(self) -> str | None:
        """"growth" or "total" for a quantity over the 12 months to the date, else None."""
        return self.quantity.partition(":")[0] if ":" in self.quantity else None


def read_observations(path: str | Path) -> list[Observation]:
    """Read and check an observations CSV (see the module docstring).

    Raises
    ------
    DataError
        Naming the file, row and column of the first problem.
    """
    source = Path(path)
    try:
        with open(source, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not rows:
        raise DataError(f"{source}: holds no observations")
    missing = {"date", "quantity", "value"} - set(rows[0])
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(sorted(missing))}; columns are date, quantity, value[, scope, sd]")
    out = []
    for number, row in enumerate(rows, start=2):
        def bad(column: str, rule: str, row: dict[str, Any] = row, number: int = number) -> DataError:
            return DataError(f"{source} row {number}: {column} = {row.get(column)!r}: {rule}")

        try:
            parse_month(row["date"])
        except (ValueError, TypeError):
            raise bad("date", "must be a month 'YYYY-MM'") from None
        quantity = (row["quantity"] or "").strip()
        how, _, name = quantity.rpartition(":")
        wanted = {"": ("stock", "ratio"), "growth": ("stock",), "total": ("flow",)}.get(how, ())
        if METRIC_KIND.get(name) not in wanted:
            raise bad("quantity", "must be a stock or ratio metric (balance, borrowers, npl_ratio …), growth:STOCK or total:FLOW")
        try:
            value = parse_amount(row["value"]) if not str(row["value"]).strip().endswith("%") else parse_rate(row["value"])
        except ValueError:
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                raise bad("value", "must be a number") from None
        if not math.isfinite(value):
            raise bad("value", "must be finite")
        scope_text = (row.get("scope") or "all").strip()
        scope: str | tuple[str, ...] = tuple(scope_text.split("+")) if "+" in scope_text else scope_text
        sd_text = (row.get("sd") or "").strip()
        try:
            sd = float(sd_text) if sd_text else math.nan
        except ValueError:
            raise bad("sd", "must be a number > 0") from None
        if sd_text and not sd > 0:
            raise bad("sd", "must be a number > 0")
        out.append(Observation(row["date"].strip(), quantity, value, scope, sd))
    return out


@dataclass(frozen=True)
class Parameter:
    """A fitted parameter: a dotted key and the scenario fields it sets.

    Attributes
    ----------
    key : str
        As given (may hold ``*``).
    fields : tuple of str
        The dotted fields it sets.
    scale : bool
        Fitted as a multiplier of the fields' values (wildcards or lists) rather than as the value itself.
    start, lower, upper : float
        Starting value and bounds.
    """

    key: str
    fields: tuple[str, ...]
    scale: bool
    start: float
    lower: float
    upper: float


def parameters(scenario: Scenario, keys: list[str]) -> list[Parameter]:
    """The parameters named by ``keys`` in ``scenario`` (see the module docstring).

    Raises
    ------
    ScenarioError
        For a key that matches no numeric field.
    """
    numeric = numeric_fields(scenario.to_dict())
    out = []
    for key in keys:
        fields = tuple(f for f in numeric if fnmatch.fnmatchcase(f, key))
        if not fields:
            hint = [f for f in numeric if f.endswith("." + key.rsplit(".", 1)[-1])][:3]
            raise ScenarioError(f"--fit {key}", key, "matches no numeric field of the scenario" + (f" (e.g. {', '.join(hint)})" if hint else ""))
        value = numeric[fields[0]]
        if "*" in key or len(fields) > 1 or isinstance(value, list):
            out.append(Parameter(key, fields, True, 1.0, *SCALE_BOUNDS))
            continue
        assert isinstance(value, float)
        lower, upper = (0.0, 1.0) if 0.0 <= value <= 1.0 and not float(value).is_integer() else (0.0, max(10 * abs(value), 1.0))
        if value < 0:
            lower, upper = -0.99, max(1.0, -10 * value)
        out.append(Parameter(key, fields, False, value, lower, upper))
    return out


def apply(scenario: Scenario, params: list[Parameter], values: np.ndarray) -> Scenario:
    """``scenario`` with the parameters set to ``values`` (validated)."""
    data = scenario.to_dict()
    current = numeric_fields(data)
    changes: dict[str, float | list[float]] = {}
    for p, v in zip(params, values, strict=True):
        for field in p.fields:
            old = current[field]
            changes[field] = [x * v for x in old] if isinstance(old, list) else (old * v if p.scale else float(v))
    return scenario_from_dict(data, changes)


def model_values(results: Results, observations: list[Observation]) -> np.ndarray:
    """The model's value of each observation on each path, shape (paths, observations)."""
    first = month_index(results.dates[0])
    out = np.empty((results.paths, len(observations)))
    for j, o in enumerate(observations):
        column = month_index(o.date) - first
        if not 0 <= column < len(results.dates) or (o.over_a_year and column < 12):
            raise DataError(f"observation {o.quantity} at {o.date} is outside the run ({results.dates[0]} to {results.dates[-1]}"
                            + (f"; {o.over_a_year} needs the 12 months before it inside the run)" if o.over_a_year else ")"))
        series = results.series(o.metric, o.scope)
        with np.errstate(invalid="ignore", divide="ignore"):
            if o.over_a_year == "growth":
                out[:, j] = series[:, column] / series[:, column - 12] - 1.0
            elif o.over_a_year == "total":
                out[:, j] = series[:, column - 11 : column + 1].sum(axis=1)
            else:
                out[:, j] = series[:, column]
    return out


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    scenario : Scenario
        The scenario with the fitted values.
    parameters : DataFrame
        Per parameter: ``key, fields, scale, start, fitted, se, lower, upper``.
    fit : DataFrame
        Per observation: ``date, quantity, scope, observed, sd, model_mean, model_p5, model_p95, z`` (the
        standardised residual).
    cost : float
        Half the sum of squared standardised residuals at the optimum.
    evaluations : int
        Runs of the model.
    message : str
        The optimiser's.
    """

    scenario: Scenario
    parameters: pd.DataFrame
    fit: pd.DataFrame
    cost: float
    evaluations: int
    message: str


def calibrate(scenario: Scenario, observations: list[Observation], keys: list[str], paths: int = 40, seed: int = 0,
              max_evaluations: int = 80, progress: Callable[[int, float], None] | None = None) -> Calibration:
    """Fit the parameters named by ``keys`` to ``observations`` (see the module docstring).

    Parameters
    ----------
    scenario : Scenario
        The starting point; its values of the fitted fields are the starting values.
    observations : list of Observation
    keys : list of str
    paths, seed : int
        Every evaluation runs these paths with this seed (common random numbers).
    max_evaluations : int
        Most evaluations of the objective by the optimiser (``max_nfev``). Each Jacobian it forms by finite
        differences runs the model once more per parameter, so a fit makes up to (1 + len(keys)) ×
        max_evaluations model runs; :attr:`Calibration.evaluations` reports how many it made.
    progress : callable, optional
        ``progress(evaluations, cost)`` after each model run.

    Raises
    ------
    ScenarioError, DataError
    """
    params = parameters(scenario, keys)
    if not observations:
        raise DataError("no observations to fit")
    observed = np.array([o.value for o in observations])
    sd_obs = np.array([o.sd if math.isfinite(o.sd) else DEFAULT_RELATIVE_SD * max(abs(o.value), 1e-12) for o in observations])
    calls = {"n": 0}
    evaluated: dict[bytes, np.ndarray] = {}  # each point's model values, so the optimum is not run again
    noise = {"mcse": np.zeros(len(observations))}

    def residuals(x: np.ndarray) -> np.ndarray:
        try:
            candidate = apply(scenario, params, x)
        except ScenarioError:
            return np.full(len(observations), 1e3)  # outside what the scenario allows
        values = model_values(simulate(candidate, paths=paths, seed=seed, progress=False), observations)  # the first run checks the observations' dates and scopes
        evaluated[x.tobytes()] = values
        calls["n"] += 1
        mean = np.nanmean(values, axis=0)
        if calls["n"] == 1:
            noise["mcse"] = np.nanstd(values, axis=0, ddof=1) / math.sqrt(paths) if paths > 1 else np.zeros(len(observations))
        r = (mean - observed) / np.sqrt(sd_obs**2 + noise["mcse"] ** 2)
        r = np.where(np.isfinite(r), r, 1e3)
        if progress is not None:
            progress(calls["n"], 0.5 * float(r @ r))
        return r

    x0 = np.array([p.start for p in params])
    lower, upper = np.array([p.lower for p in params]), np.array([p.upper for p in params])
    x0 = np.clip(x0, lower + 1e-9 * (upper - lower), upper - 1e-9 * (upper - lower))
    solution = least_squares(residuals, x0, bounds=(lower, upper), diff_step=0.05, x_scale=np.minimum(upper - lower, np.maximum(np.abs(x0), 0.1)),
                             max_nfev=max_evaluations, method="trf")
    jac = solution.jac
    try:
        cov = np.linalg.inv(jac.T @ jac)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        se = np.full(len(params), np.nan)
    fitted = apply(scenario, params, solution.x)
    values = evaluated.get(solution.x.tobytes())
    if values is None:
        values = model_values(simulate(fitted, paths=paths, seed=seed, progress=False), observations)
    mean = np.nanmean(values, axis=0)
    p5, p95 = np.nanpercentile(values, [5, 95], axis=0)
    table = pd.DataFrame({
        "key": [p.key for p in params], "fields": [", ".join(p.fields) for p in params], "scale": [p.scale for p in params],
        "start": [p.start for p in params], "fitted": solution.x, "se": se, "lower": lower, "upper": upper,
    })
    fit = pd.DataFrame({
        "date": [o.date for o in observations], "quantity": [o.quantity for o in observations],
        "scope": [o.scope_text for o in observations],
        "observed": observed, "sd": sd_obs, "model_mean": mean, "model_p5": p5, "model_p95": p95,
        "z": (mean - observed) / np.sqrt(sd_obs**2 + noise["mcse"] ** 2),
    })
    return Calibration(fitted, table, fit, float(solution.cost), calls["n"], str(solution.message))


def backtest(scenario: Scenario, observations: list[Observation], keys: list[str], train_until: int, paths: int = 40, seed: int = 0,
             projection_paths: int = 200, max_evaluations: int = 80) -> tuple[Calibration, pd.DataFrame]:
    """Fit on the observations up to the end of ``train_until`` and project the rest.

    Returns
    -------
    calibration : Calibration
        The fit on the training years.
    projection : DataFrame
        Per held-out observation: ``date, quantity, scope, observed, median, p5, p95, error`` (median −
        observed), ``relative_error`` and ``inside_90`` (the observation lies in the 5–95% band of
        ``projection_paths`` paths of the fitted scenario, run on a different seed from the fit's).
    """
    train = [o for o in observations if month_index(o.date) // 12 <= train_until]
    held_out = [o for o in observations if month_index(o.date) // 12 > train_until]
    if not train or not held_out:
        raise DataError(f"--train-until {train_until} leaves {len(train)} observations to fit and {len(held_out)} to test; both must be > 0")
    fit = calibrate(scenario, train, keys, paths=paths, seed=seed, max_evaluations=max_evaluations)
    return fit, against_data(fit.scenario, held_out, paths=projection_paths, seed=seed + 1)


def against_data(scenario: Scenario, observations: list[Observation], paths: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each observation against the scenario's runs: where the observed value lies in the model's distribution.

    Parameters
    ----------
    scenario : Scenario
    observations : list of Observation
        Each inside the scenario's months (see :func:`model_values`); values in the scenario's units, at full scale.
    paths : int
        Paths run (seed ``seed``).

    Returns
    -------
    DataFrame
        Per observation: ``date, quantity, scope, observed, median, p5, p95, error`` (median − observed),
        ``relative_error`` and ``inside_90`` (the observation lies in the model's 5–95% band).
    """
    values = model_values(simulate(scenario, paths=paths, seed=seed, progress=False), observations)
    observed = np.array([o.value for o in observations])
    p5, median, p95 = np.nanpercentile(values, [5, 50, 95], axis=0)
    return pd.DataFrame({
        "date": [o.date for o in observations], "quantity": [o.quantity for o in observations],
        "scope": [o.scope_text for o in observations],
        "observed": observed, "median": median, "p5": p5, "p95": p95, "error": median - observed,
        "relative_error": (median - observed) / np.abs(observed), "inside_90": (observed >= p5) & (observed <= p95),
    })
