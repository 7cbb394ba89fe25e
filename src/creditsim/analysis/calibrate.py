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
:func:`scipy.optimize.least_squares` within bounds.

Standard errors are a sandwich (:func:`sandwich`) with two parts. The observations' part is what another draw of
the observations would move the fit by. The Monte Carlo part is what another seed would move it by: with common
random numbers the fit is the best fit to its own paths, and another set of paths moves both the model's mean and
how it responds to the parameters. Both are measured path by path at the optimum: each path's values and its
finite-difference slopes (the runs of the optimiser's last Jacobian), so that a path whose systematic factor moves all its
growth figures together counts once, not once per observation, and a path that responds more steeply than the
others pulls the fit harder when the residuals are large (a fit that cannot match every observation).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ..errors import DataError, ScenarioError
from ..files import read_regular
from ..results.results import METRIC_KIND, Results
from ..run.api import simulate
from ..scenario import Scenario, key_fields, numeric_fields, scenario_from_dict
from ..scenario.units import month_index, parse_amount, parse_month, parse_rate

__all__ = ["DEFAULT_RELATIVE_SD", "DIFF_STEP", "MAX_DATA_BYTES", "Calibration", "Fit", "Observation", "Parameter", "calibrate", "backtest", "against_data",
           "fit_paths", "model_values", "parameters", "read_observations", "sandwich"]

#: Standard deviation of an observation given without one, as a share of its value.
DEFAULT_RELATIVE_SD = 0.02
#: The largest observations file read, bytes (16 MiB: a hundred thousand rows); a larger file (or a FIFO, device or
#: directory) is refused before it is read.
MAX_DATA_BYTES = 16 * 1024**2
#: Bounds of a multiplier.
SCALE_BOUNDS = (0.1, 10.0)
#: Step of the finite differences, as a share of the parameter's value: the optimiser's Jacobian and the paths'
#: slopes of the standard errors (the same points, so the optimiser's runs are reused).
DIFF_STEP = 0.05


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
    content = read_regular(source, "observations file", most=MAX_DATA_BYTES, error=lambda rule: DataError(f"{source}: {rule}"))
    try:
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    except UnicodeDecodeError:
        raise DataError(f"{source}: is not UTF-8 text") from None
    except csv.Error as exc:
        raise DataError(f"{source}: is not a CSV file ({exc})") from None
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
        For no key, or a key that matches no numeric field.
    """
    if not keys:
        raise ScenarioError("--fit", "", "names no key: give the dotted keys to fit, e.g. demand.growth,banks.*.max_pd")
    numeric = numeric_fields(scenario.to_dict())
    out = []
    for key in keys:
        fields, multiplier = key_fields(numeric, key)
        if not fields:
            hint = [f for f in numeric if f.endswith("." + key.rsplit(".", 1)[-1])][:3]
            raise ScenarioError(f"--fit {key}", key, "matches no numeric field of the scenario" + (f" (e.g. {', '.join(hint)})" if hint else ""))
        if multiplier:
            out.append(Parameter(key, fields, True, 1.0, *SCALE_BOUNDS))
            continue
        value = numeric[fields[0]]
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
        Per parameter: ``key, fields, scale, start, fitted, se, se_mc, lower, upper``. ``se`` is the fitted value's
        standard error, the observations' error and the Monte Carlo noise together (√(se_obs² + se_mc²), see
        :func:`sandwich`): how far the fit would move with another draw of the observations (each within its
        ``sd``) and another seed. ``se_mc`` is its Monte Carlo part alone, the standard deviation of the fitted
        value over seeds at the same number of paths: more paths shrink it (as 1/√paths), while the observations'
        part, √(se² − se_mc²), stays. Both linearise the fit at the fitted values: NaN when JᵀJ is singular, and
        also when fewer than two paths have every value finite; they mean little for a value on a bound, for a fit
        that stopped short of its optimum (:attr:`message` says so) or where the model jumps within
        :data:`DIFF_STEP` of the fitted value.
    fit : DataFrame
        Per observation: ``date, quantity, scope, observed, sd, model_mean, model_p5, model_p95, z`` (the
        standardised residual).
    cost : float
        Half the sum of squared standardised residuals at the optimum.
    evaluations : int
        Runs of the model, the standard errors' (up to one per parameter) included.
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
        max_evaluations model runs, and the standard errors up to one more per parameter;
        :attr:`Calibration.evaluations` reports how many it made.
    progress : callable, optional
        ``progress(evaluations, cost)`` after each model run of the optimiser.

    Raises
    ------
    ScenarioError, DataError
    """
    params = parameters(scenario, keys)
    if not observations:
        raise DataError("no observations to fit")
    observed = np.array([o.value for o in observations])
    sd_obs = np.array([o.sd if math.isfinite(o.sd) else DEFAULT_RELATIVE_SD * max(abs(o.value), 1e-12) for o in observations])

    def run(x: np.ndarray) -> np.ndarray | None:
        try:
            candidate = apply(scenario, params, x)
        except ScenarioError:
            return None  # outside what the scenario allows
        return model_values(simulate(candidate, paths=paths, seed=seed, progress=False), observations)  # the first run checks the observations' dates and scopes

    start = np.array([p.start for p in params])
    lower, upper = np.array([p.lower for p in params]), np.array([p.upper for p in params])
    result = fit_paths(run, start, lower, upper, observed, sd_obs, max_evaluations=max_evaluations, progress=progress)
    fitted = apply(scenario, params, result.x)  # a ScenarioError if the scenario allows no value the fit tried
    values = result.values
    mean = np.nanmean(values, axis=0)
    p5, p95 = np.nanpercentile(values, [5, 95], axis=0)
    table = pd.DataFrame({
        "key": [p.key for p in params], "fields": [", ".join(p.fields) for p in params], "scale": [p.scale for p in params],
        "start": [p.start for p in params], "fitted": result.x, "se": result.se, "se_mc": result.se_mc, "lower": lower, "upper": upper,
    })
    fit = pd.DataFrame({
        "date": [o.date for o in observations], "quantity": [o.quantity for o in observations],
        "scope": [o.scope_text for o in observations],
        "observed": observed, "sd": sd_obs, "model_mean": mean, "model_p5": p5, "model_p95": p95,
        "z": (mean - observed) / result.weights,
    })
    return Calibration(fitted, table, fit, result.cost, result.evaluations, result.message)


@dataclass(frozen=True)
class Fit:
    """The outcome of :func:`fit_paths`.

    Attributes
    ----------
    x : ndarray
        The fitted values.
    se : ndarray
        Their standard errors, the observations' error and the Monte Carlo noise together (:func:`sandwich`).
    se_mc : ndarray
        The Monte Carlo part of ``se``: the standard deviation of ``x`` over seeds.
    values : ndarray
        The model's values at ``x``, shape (paths, observations); no rows when the model runs nowhere the
        optimiser went (``se`` and ``se_mc`` are NaN then).
    weights : ndarray
        Each residual's standard deviation in the objective: √(sd² + mcse²), mcse the Monte Carlo standard error
        of the model's mean measured once, at the start.
    cost : float
        Half the sum of squared standardised residuals at ``x``.
    evaluations : int
        Runs of the model.
    message : str
        The optimiser's.
    """

    x: np.ndarray
    se: np.ndarray
    se_mc: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    cost: float
    evaluations: int
    message: str


def fit_paths(run: Callable[[np.ndarray], np.ndarray | None], start: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              observed: np.ndarray, sd: np.ndarray, max_evaluations: int = 80,
              progress: Callable[[int, float], None] | None = None) -> Fit:
    """Fit a model's mean over paths to observations by least squares, with its standard errors.

    The engine of :func:`calibrate`, for any model that gives values path by path.

    Parameters
    ----------
    run : callable
        ``run(x)``: the model's value of each observation on each path at parameters ``x``, shape (paths,
        observations), on the same random numbers whatever ``x`` (common random numbers); None for parameters the
        model does not allow. A value may be NaN on a path (the mean leaves it out).
    start, lower, upper : ndarray
        Starting values and bounds of the parameters.
    observed, sd : ndarray
        Each observation's value and standard deviation.
    max_evaluations : int
        Most evaluations of the objective by the optimiser (:func:`scipy.optimize.least_squares`' ``max_nfev``).
    progress : callable, optional
        ``progress(evaluations, cost)`` after each evaluation.

    Returns
    -------
    Fit
        The standard errors from the paths' values and slopes at the fitted values (:func:`sandwich`): the slopes
        are forward differences of :data:`DIFF_STEP` of the value (the points of the optimiser's last Jacobian,
        whose runs are reused), backward at an upper bound.
    """
    evaluated: dict[bytes, np.ndarray | None] = {}  # each point's values: the optimiser's Jacobian points are reused for the slopes

    def values_at(x: np.ndarray) -> np.ndarray | None:
        key = np.asarray(x, dtype=float).tobytes()
        if key not in evaluated:
            evaluated[key] = run(np.asarray(x, dtype=float))
        return evaluated[key]

    start = np.clip(np.asarray(start, dtype=float), lower + 1e-9 * (upper - lower), upper - 1e-9 * (upper - lower))
    first = values_at(start)
    paths = 0 if first is None else first.shape[0]
    with np.errstate(invalid="ignore"):
        mcse = np.nanstd(first, axis=0, ddof=1) / math.sqrt(paths) if paths > 1 else np.zeros(len(observed))
    weights = np.sqrt(sd**2 + np.nan_to_num(mcse) ** 2)

    def residuals(x: np.ndarray) -> np.ndarray:
        values = values_at(x)
        if values is None:
            return np.full(len(observed), 1e3)
        r = (_mean(values) - observed) / weights
        r = np.where(np.isfinite(r), r, 1e3)
        if progress is not None:
            progress(len(evaluated), 0.5 * float(r @ r))
        return r

    solution = least_squares(residuals, start, bounds=(lower, upper), diff_step=DIFF_STEP,
                             x_scale=np.minimum(upper - lower, np.maximum(np.abs(start), 0.1)), max_nfev=max_evaluations, method="trf")
    x = solution.x
    values = values_at(x)
    if values is None:  # the model ran nowhere the optimiser went, the start included
        nan = np.full(len(x), np.nan)
        return Fit(x, nan, nan.copy(), np.empty((0, len(observed))), weights, float(solution.cost), len(evaluated), str(solution.message))
    slopes = np.full(values.shape + (len(x),), np.nan)
    for k in range(len(x)):
        for step in _steps(x[k], lower[k], upper[k]):
            moved = x.copy()
            moved[k] += step
            shifted = values_at(moved)
            if shifted is not None:
                slopes[:, :, k] = (shifted - values) / (moved[k] - x[k])
                break
    scaled, scaled_slopes = values / weights, slopes / weights[:, None]
    se, se_mc = sandwich(scaled, scaled_slopes, observed / weights, sd / weights)
    return Fit(x, se, se_mc, values, weights, float(solution.cost), len(evaluated),
               str(solution.message) + _off_optimum(x, lower, upper, scaled, scaled_slopes, observed / weights, se_mc))


#: A fit whose Gauss–Newton step from the fitted values moves one of them by more than this many se_mc is
#: reported as not converged (:func:`_off_optimum`).
OFF_OPTIMUM = 2.0


def _off_optimum(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, values: np.ndarray, slopes: np.ndarray, observed: np.ndarray,
                 se_mc: np.ndarray) -> str:
    """A note for the optimiser's message when the fit stopped short of the optimum of its own paths: the
    Gauss–Newton step from the fitted values (standardised quantities, as for :func:`sandwich`) moves a value not
    held by a bound by more than :data:`OFF_OPTIMUM` of its ``se_mc``. An optimiser can stop there when the
    objective is rough at small steps (paths' discrete events) and its trust region shrinks below them; the
    standard errors describe the neighbourhood of an optimum and not such a point. Empty otherwise."""
    jac = _mean(slopes.reshape(len(values), -1)).reshape(slopes.shape[1:])
    residual = _mean(values) - observed
    if not (np.isfinite(jac).all() and np.isfinite(residual).all() and np.isfinite(se_mc).all()):
        return ""
    step = -np.linalg.lstsq(jac, residual, rcond=None)[0]
    span = upper - lower
    held = ((x <= lower + 1e-6 * span) & (step < 0)) | ((x >= upper - 1e-6 * span) & (step > 0))
    off = np.where(held, 0.0, np.abs(step) / np.where(se_mc > 0, se_mc, np.inf))
    if off.max() <= OFF_OPTIMUM:
        return ""
    return (f" Short of the optimum of its paths: a Gauss–Newton step from the fitted values moves them by up to {off.max():.1f} × se_mc, "
            "and the standard errors hold only at an optimum (give the fit a larger budget, or start it elsewhere).")


def _steps(x: float, lower: float, upper: float) -> list[float]:
    """The finite-difference steps to try from ``x``: forward by :data:`DIFF_STEP` of its value (the step
    :func:`scipy.optimize.least_squares` takes, so that its runs are reused), backward when that leaves the bounds."""
    step = DIFF_STEP * abs(x) if x != 0 else DIFF_STEP * min(1.0, upper - lower)
    step = step if x >= 0 else -step
    if not lower <= x + step <= upper:
        step = -step
    if not lower <= x + step <= upper:  # the bounds are closer than the step on both sides
        step = upper - x if upper - x >= x - lower else lower - x
    return [step, -step]


def _mean(values: np.ndarray) -> np.ndarray:
    """The mean over paths, leaving out NaN (NaN for an observation with no value on any path)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=0) / np.where(count > 0, count, np.nan)


def sandwich(values: np.ndarray, slopes: np.ndarray, observed: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors of a least-squares fit of a mean over paths, and their Monte Carlo part.

    The fit minimises ½ Σ_j (m_j(x) − y_j)², m_j the mean over the paths of observation j's value, on the same
    paths for every x (common random numbers); every quantity here is divided by the residual's standard
    deviation in the objective (its weight). At the fitted values, with the paths' values v_p and slopes D_p
    (∂v_p/∂x), their means m and J, r = m − y and B = (JᵀJ)⁻¹, the delta method gives the fitted values'
    covariance as the sum of

    - the observations' part ``B Jᵀ diag(sd²) J B``: over draws of the observations, each with its sd;
    - the Monte Carlo part ``B Cov(φ) B / n`` over n paths, with ``φ_p = Jᵀ(v_p − m) + (D_p − J)ᵀ r``: over
      seeds. The first term is how a path moves the mean, with the paths' full covariance across observations
      (a path whose systematic factor raises every growth figure counts once, not once per figure); the second
      is how it moves the Jacobian, which matters when the residuals are large (a fit that cannot match every
      observation is balanced by how steeply each one responds, and that differs from path to path).

    With small residuals this is the sandwich ``A (Σ_obs + Σ_mc / n) Aᵀ``, ``A = (JᵀJ)⁻¹Jᵀ``, Σ_mc the paths'
    covariance; the Gauss–Newton ``(JᵀJ)⁻¹`` equals it only when the observations' errors and the Monte Carlo
    noise are independent across observations and the weights are their standard deviations.

    Parameters
    ----------
    values : ndarray, shape (paths, observations)
        Each path's values at the fitted values.
    slopes : ndarray, shape (paths, observations, parameters)
        Each path's derivatives of its values (finite differences on the same random numbers).
    observed, sd : ndarray, shape (observations,)
        The observations and their standard deviations.

    Returns
    -------
    se : ndarray, shape (parameters,)
        Standard errors: √ of the diagonal of both parts together.
    se_mc : ndarray, shape (parameters,)
        Their Monte Carlo part: √ of the diagonal of the Monte Carlo part, the standard deviation of the fitted
        values over seeds. NaN, and ``se`` with it, when fewer than two paths have every value and slope finite;
        both NaN when JᵀJ is singular.
    """
    k = slopes.shape[2]
    nan = np.full(k, np.nan)
    mean, jac = _mean(values), _mean(slopes.reshape(len(values), -1)).reshape(slopes.shape[1:])
    if not (np.isfinite(mean).all() and np.isfinite(jac).all()):
        return nan, nan.copy()
    try:
        bread = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return nan, nan.copy()
    observations_part = bread @ (jac.T * sd**2) @ jac @ bread
    complete = np.isfinite(values).all(axis=1) & np.isfinite(slopes).all(axis=(1, 2))
    n = int(complete.sum())
    if n < 2:
        return nan, nan.copy()
    residual = mean - observed
    phi = (values[complete] - mean) @ jac + np.einsum("pjk,j->pk", slopes[complete] - jac, residual)
    mc_part = bread @ np.atleast_2d(np.cov(phi, rowvar=False)) @ bread / n
    return np.sqrt(np.clip(np.diag(observations_part + mc_part), 0.0, None)), np.sqrt(np.clip(np.diag(mc_part), 0.0, None))


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


def against_data(scenario: Scenario, observations: list[Observation], paths: int = 200, seed: int = 0, results: Results | None = None) -> pd.DataFrame:
    """Each observation against the scenario's runs: where the observed value lies in the model's distribution.

    Parameters
    ----------
    scenario : Scenario
    observations : list of Observation
        Each inside the scenario's months (see :func:`model_values`); values in the scenario's units, at full scale.
    paths : int
        Paths run (seed ``seed``).
    results : Results, optional
        Runs of the scenario made already (e.g. with parameter uncertainty,
        :func:`creditsim.analysis.uncertainty.simulate_uncertain`), used instead of running ``paths``.

    Returns
    -------
    DataFrame
        Per observation: ``date, quantity, scope, observed, median, p5, p95, error`` (median − observed),
        ``relative_error`` and ``inside_90`` (the observation lies in the model's 5–95% band).
    """
    runs = results if results is not None else simulate(scenario, paths=paths, seed=seed, progress=False)
    values = model_values(runs, observations)
    observed = np.array([o.value for o in observations])
    p5, median, p95 = np.nanpercentile(values, [5, 50, 95], axis=0)
    return pd.DataFrame({
        "date": [o.date for o in observations], "quantity": [o.quantity for o in observations],
        "scope": [o.scope_text for o in observations],
        "observed": observed, "median": median, "p5": p5, "p95": p95, "error": median - observed,
        "relative_error": (median - observed) / np.abs(observed), "inside_90": (observed >= p5) & (observed <= p95),
    })
