"""Policy sweeps: a grid of scenario variants run on common random numbers.

:func:`sweep` sets dotted scenario keys to each combination of their values and runs every variant on the same
seed and path numbers. Each random number is keyed by (seed, path, purpose, firm, month)
(:mod:`creditsim.model.random`), so the variants share the firms, the macro path and each firm's draws (its default
clock among them) wherever the parameter does not change them. A difference between neighbouring variants is then measured path by path
(paired), and its noise is that of the policy's effect, not of two independent samples.

Values are written as on the command line: ``["1亿", "2亿"]``, or a range ``"1亿:5亿:5"`` (five values from 1亿 to
5亿, evenly spaced in the unit written; both ends in the same unit). Each variant is validated like a scenario
file, so a bad value is refused with the field named.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ResultsError, ScenarioError
from ..metrics import METRICS, metric
from ..results.results import ALL, Results, mean_and_mcse
from ..results.targets import Z95, measure, met, outside, paired_difference_interval, wilson_interval
from ..run.api import backend_for, path_numbers
from ..run.backends import Arrays, Backend, run_scenarios
from ..run.checkpoint import MANIFEST, checkpointed_scenario, read_manifest
from ..run.progress import ProgressArg
from ..scenario import Scenario, load_scenario, parse_overrides, scenario_from_dict, value_at
from ..scenario.changes import field_text
from ..scenario.written import refuse_bare_amounts
from .compare import UNCHANGED, paired_stats, unchanged
from .summaries import fiscal_costs

__all__ = ["KEY_METRICS", "MAX_VARIANTS", "Sweep", "sweep", "resume_sweep", "field_value", "parse_grid", "parse_range", "path_summary", "value_and_unit", "variant", "written"]

#: Metrics a sweep reports per variant besides the targets: stocks and ratios at the end date, flows summed
#: over the run (``fiscal_cost`` includes the government's start-up money).
KEY_METRICS: tuple[str, ...] = ("balance", "borrowers", "npl_ratio", "disbursed", "first_time_borrowers", "fiscal_cost")
#: The most variants a sweep runs (and values a range a:b:n gives): each is validated as a scenario (about 10 ms and
#: 40 KB each) and run on every path. A larger grid is refused before any value is made.
MAX_VARIANTS = 1000

_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_RANGE = re.compile(r"^\s*([^:,]+?)\s*:\s*([^:,]+?)\s*:\s*([0-9]+)\s*$")
_HALF_RANGE = re.compile(rf"^\s*{_NUMBER}[^:,]*:\s*{_NUMBER}[^:,]*$")
_VALUE = re.compile(rf"^\s*({_NUMBER})\s*(\S*)\s*$")


def parse_range(text: str, field_name: str, count: int | None = None) -> list[str]:
    """The values of a range ``"a:b:n"`` (or of ``"a:b"`` with ``count``): n values from a to b, evenly spaced,
    written in the unit of a and b (``"1亿:3亿:3"`` gives ``["1亿", "2亿", "3亿"]``).

    Raises
    ------
    ScenarioError
        Naming ``field_name`` when the ends are not finite numbers in one unit, or n is not in [2, :data:`MAX_VARIANTS`]
        (checked before any value is made).
    """
    parts = [p.strip() for p in text.split(":")]
    if count is None:
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            raise ScenarioError(field_name, text, "a range must be written a:b:n, e.g. 1亿:5亿:5")
        count = int(parts[2]) if len(parts[2]) <= len(str(MAX_VARIANTS)) else MAX_VARIANTS + 1
    elif len(parts) != 2:
        raise ScenarioError(field_name, text, "a range must be written lo:hi, e.g. 1亿:5亿")
    ends = [value_and_unit(p) for p in parts[:2]]
    if ends[0] is None or ends[1] is None or ends[0][1] != ends[1][1]:
        raise ScenarioError(field_name, text, "both ends of a range must be numbers in the same unit, e.g. 1亿:5亿 or 0.5%:2%")
    (a, unit), (b, _) = ends
    if not math.isfinite(b - a):  # an end beyond a float's range (1e400), or ends whose distance is
        raise ScenarioError(field_name, text, "the ends of a range must be finite numbers, less than 1e308 apart")
    if not 2 <= count <= MAX_VARIANTS:
        raise ScenarioError(field_name, text, f"a range needs n ≥ 2 values, and at most {MAX_VARIANTS:,} (MAX_VARIANTS)")
    return [written(v, unit) for v in np.linspace(a, b, count)]


def value_and_unit(text: str) -> tuple[float, str] | None:
    """``"2.5亿"`` as (2.5, "亿"), ``"3"`` as (3.0, ""); None when the text does not start with a number."""
    match = _VALUE.match(text)
    return None if match is None else (float(match.group(1)), match.group(2))


def written(number: float, unit: str) -> str:
    """A number in a unit as scenario files write it: ``written(2.5, "亿")`` is ``"2.5亿"`` (ten significant digits)."""
    return f"{number:.10g}{unit}"


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """Turn ``["key=v1,v2", "key2=a:b:n"]`` into ``{"key": [v1, v2], "key2": [...]}``.

    Values are read like ``--set`` values (TOML when they parse, else text); commas inside brackets or
    quotes do not split (``key=[0.5,0.5],[0.4,0.6]`` gives two lists).

    Raises
    ------
    ScenarioError
        For an item without ``=``, a key given twice, or an empty or bad value list.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError("--set", item, "must be written dotted.key=value or dotted.key=v1,v2,... or dotted.key=a:b:n")
        if key in grid:
            raise ScenarioError(key, text, "is given twice; list its values once, separated by commas")
        if _RANGE.match(text):
            pieces = parse_range(text, key)
        elif _HALF_RANGE.match(text) and key.split(".")[-1] != "sample":  # sample = '1:100' is a value, not a range
            raise ScenarioError(key, text, "a range must be written a:b:n (n values from a to b), e.g. 1亿:5亿:5")
        else:
            pieces = _split(text)
        if not pieces or any(not p.strip() for p in pieces):
            raise ScenarioError(key, text, "needs one or more values separated by commas")
        grid[key] = [parse_overrides([f"{key}={p}"])[key] for p in pieces]
    return grid


def _split(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes."""
    pieces: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def variant(scenario: Scenario, settings: dict[str, Any]) -> Scenario:
    """``scenario`` with dotted keys set to values (validated like a file).

    Raises
    ------
    ScenarioError
        Naming the key when a value breaks a rule or the key is unknown.
    """
    return scenario_from_dict(scenario.to_dict(), settings)


def field_value(scenario: Scenario, key: str) -> Any:
    """The validated value of a dotted key (amounts in CNY, rates as fractions), or None when it is not set."""
    return value_at(scenario.to_dict(), key)


def path_summary(results: Results, metrics: tuple[str, ...]) -> Arrays:
    """Per path: what each target measures (``target:NAME``; targets outside the run left out) and each metric of
    ``metrics`` (``metric:NAME``: a stock or ratio at the end date, a flow summed over the run, ``fiscal_cost``
    with the start-up money), on all banks. Runs where the paths ran, so only these numbers travel."""
    out: Arrays = {}
    for name, target in results.scenario.targets.items():
        if outside(target, results.scenario) is None:
            out[f"target:{name}"] = measure(results, target)
    for name in metrics:
        if name == "fiscal_cost":
            out[f"metric:{name}"] = fiscal_costs(results)["total"].to_numpy()
        elif metric(name).kind == "flow":
            out[f"metric:{name}"] = results.cumulative(name, ALL)
        else:
            out[f"metric:{name}"] = results.values(name, ALL)[:, -1]
    return out


@dataclass
class Sweep:
    """The variants of a sweep and, per variant, each target's measured value and the key metrics on every path.

    Attributes
    ----------
    scenario : Scenario
        The base scenario.
    keys : list of str
        The swept dotted keys.
    settings : list of dict
        Per variant, the value of each key as given.
    scenarios : list of Scenario
        The validated variants.
    seed : int
    path_ids : list of int
        The paths every variant ran (common random numbers).
    values : list of dict of str to ndarray
        Per variant, ``target:NAME`` and ``metric:NAME`` arrays over paths.
    metrics : tuple of str
    fixed : dict of str to (str, str)
        The keys given one value, set in ``scenario`` for every variant: their value and the value they had before,
        as a scenario file writes them (``{"calendar.months": ("6", "12")}``).
    """

    scenario: Scenario
    keys: list[str]
    settings: list[dict[str, Any]]
    scenarios: list[Scenario]
    seed: int
    path_ids: list[int]
    values: list[Arrays]
    metrics: tuple[str, ...] = field(default=KEY_METRICS)
    fixed: dict[str, tuple[str, str]] = field(default_factory=dict)

    def _neighbour(self, i: int) -> int | None:
        """The variant before ``i`` along the last key with the other keys the same, if any."""
        if i == 0:
            return None
        same = all(self.settings[i - 1][k] == self.settings[i][k] for k in self.keys[:-1])
        return i - 1 if same else None

    def targets(self) -> pd.DataFrame:
        """Per variant and target: the probability of meeting it with its Wilson 95% interval, the median measured
        value (NaN for a test target), and the change in probability from the neighbouring variant (the previous value of the last key)
        with a paired score 95% interval (:func:`creditsim.results.targets.paired_difference_interval`). Targets outside
        the run are left out (see :meth:`not_assessed`).

        Returns
        -------
        DataFrame
            Columns ``variant``, each key, ``target, probability, ci_low, ci_high, median, change, change_low,
            change_high, unchanged, paths`` (``change`` NaN for the first value of the last key). ``unchanged`` holds
            on every row of a target whose P(met) spans less than :data:`~creditsim.analysis.compare.UNCHANGED` (one
            point) across the variants and whose every paired interval includes 0 (never with one variant).
        """
        rows = []
        for i, settings in enumerate(self.settings):
            for name in self.scenario.targets:
                values = self.values[i].get(f"target:{name}")
                if values is None:
                    continue
                target = self.scenarios[i].targets[name]
                hit = met(values, target)
                low, high = wilson_interval(int(hit.sum()), hit.size)
                valued = target.measure != "test" and not np.isnan(values).all()  # a test has pass or fail only
                row = {"variant": i, **settings, "target": name, "probability": float(hit.mean()), "ci_low": float(low),
                       "ci_high": float(high), "median": float(np.nanmedian(values)) if valued else math.nan}
                j = self._neighbour(i)
                before = met(self.values[j][f"target:{name}"], self.scenarios[j].targets[name]) if j is not None else None
                row.update(_change_columns(None if before is None else paired_difference_interval(before, hit)))
                row.update(unchanged=False, paths=hit.size)
                rows.append(row)
        columns = ["variant", *self.keys, "target", "probability", "ci_low", "ci_high", "median", "change", "change_low", "change_high", "unchanged", "paths"]
        table = pd.DataFrame(rows, columns=columns)
        for _, group in table.groupby("target", sort=False):
            steps = group.dropna(subset=["change"])
            still = len(self.settings) > 1 and group["probability"].max() - group["probability"].min() < UNCHANGED and all(
                unchanged(r.change, r.change_low, r.change_high) for r in steps.itertuples())
            table.loc[group.index, "unchanged"] = still
        return table

    def varied(self) -> dict[str, list[str]]:
        """Each swept key's values, in the order the variants take them, as a scenario file writes them in the field's
        unit (``{"guarantors.county.fee_rate": ["0.8%", "1%", "1.2%"]}``)."""
        return {key: list(dict.fromkeys(field_text(key, field_value(s, key)) for s in self.scenarios)) for key in self.keys}

    def not_assessed(self) -> dict[str, str]:
        """The targets left out of some variant because they lie outside its run, with the reason."""
        found: dict[str, str] = {}
        for i, scenario in enumerate(self.scenarios):
            for name, target in scenario.targets.items():
                why = outside(target, scenario)
                if why is not None and name not in found:
                    found[name] = why if len(self.scenarios) == 1 else f"{why} (variant {i})"
        return found

    def key_metrics(self) -> pd.DataFrame:
        """Per variant and metric of :attr:`metrics`: the mean over paths with its 95% interval, and the paired
        change from the neighbouring variant with its 95% interval.

        Returns
        -------
        DataFrame
            Columns ``variant``, each key, ``metric, unit, mean, ci_low, ci_high, change, change_low, change_high``.
        """
        rows = []
        for i, settings in enumerate(self.settings):
            for name in self.metrics:
                values = self.values[i][f"metric:{name}"]
                mean, se = (float(x) for x in mean_and_mcse(values))
                j = self._neighbour(i)
                paired = paired_stats(self.values[j][f"metric:{name}"], values) if j is not None else None
                change = None if paired is None else (float(paired["diff"]), float(paired["ci_low"]), float(paired["ci_high"]))
                rows.append({"variant": i, **settings, "metric": name, "unit": metric(name).unit, "mean": mean,
                             "ci_low": mean - Z95 * se, "ci_high": mean + Z95 * se, **_change_columns(change)})
        return pd.DataFrame(rows)


def _change_columns(change: tuple[float, float, float] | None) -> dict[str, float]:
    mean, low, high = change if change is not None else (math.nan, math.nan, math.nan)
    return {"change": mean, "change_low": low, "change_high": high}


def sweep(
    scenario: Scenario | str | Path | None,
    grid: dict[str, Sequence[Any] | str] | Iterable[str],
    paths: int | Iterable[int] = 100,
    seed: int = 0,
    progress: ProgressArg = None,
    *,
    metrics: Sequence[str] = KEY_METRICS,
    backend: str | Backend | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    threads: int = 1,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> Sweep:
    """Run every combination of parameter values on common random numbers.

    Parameters
    ----------
    scenario : Scenario, str or Path, optional
        The base scenario (None: the bundled default).
    grid : dict or iterable of str
        ``{"pools.fund.size": ["1亿", "2亿"], "guarantors.fund.fee_rate": "0.5%:1.5%:3"}`` (a string value is a
        range ``a:b:n`` or a comma-separated list), or the CLI's ``["pools.fund.size=1亿,2亿", ...]``. Written as
        text, an amount needs its unit; a list's numbers are taken as Python's (an amount in CNY). Variants
        are the product of the keys' values, the last key changing fastest; a key with one value is set in the base
        scenario and not swept.
    paths, seed, progress, backend, workers, client, scheduler, threads, chunk_size, checkpoint
        As for :func:`creditsim.simulate`; every variant runs the same paths, all on one backend. The checkpoint
        records the grid, so :func:`resume_sweep` can continue it from the directory alone.
    metrics : sequence of str
        Metrics reported per variant (see :func:`path_summary`).

    Returns
    -------
    Sweep

    Raises
    ------
    ScenarioError
        For a bad key or value (naming it), an unknown metric, or a bad seed or path list.
    """
    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    written = parse_grid([f"{key}={values}" for key, values in grid.items() if isinstance(values, str)] if isinstance(grid, dict) else grid)
    data = base.to_dict()
    for key, values in written.items():  # text a person wrote, where an amount needs its unit
        for value in values:
            refuse_bare_amounts({key: value}, data)
    table = {key: written[key] if isinstance(values, str) else list(values) for key, values in grid.items()} if isinstance(grid, dict) else written
    if not table:
        raise ScenarioError("--set", "", "a sweep needs at least one key=values")
    for key, values in table.items():
        if not values:
            raise ScenarioError(key, values, "needs one or more values")
    size = math.prod(len(values) for values in table.values())
    if size > MAX_VARIANTS:
        raise ScenarioError("--set", " × ".join(str(len(values)) for values in table.values()),
                            f"makes {size:,} variants, more than a sweep runs ({MAX_VARIANTS:,}, MAX_VARIANTS); sweep fewer values, or in parts")
    path_ids = path_numbers(paths, seed, variants=size)
    fixed = {key: values[0] for key, values in table.items() if len(values) == 1}
    given = base
    if len(fixed) < len(table):  # keys with one value set the base; the others are swept
        base = variant(base, fixed)
        table = {key: values for key, values in table.items() if key not in fixed}
    else:
        fixed = {}
    shown = {key: (field_text(key, field_value(base, key)), field_text(key, field_value(given, key))) for key in fixed}
    for name in metrics:
        if name != "fiscal_cost" and (name not in {m.name for m in METRICS} or metric(name).scope != "bank"):
            raise ScenarioError("metrics", name, "must be a bank metric (see the metric table) or fiscal_cost")
    keys = list(table)
    settings = [dict(zip(keys, combination, strict=True)) for combination in itertools.product(*table.values())]
    scenarios = [variant(base, s) for s in settings]
    summary = functools.partial(path_summary, metrics=tuple(metrics))
    with backend_for(backend, workers, client, scheduler, threads) as runner:
        about = {"sweep": {"base": given.to_dict(), "fixed": fixed, "keys": keys, "settings": settings, "metrics": list(metrics)}}
        values = run_scenarios(scenarios, path_ids, int(seed), runner, summary=summary, chunk_size=chunk_size, progress=progress,
                               description=f"{len(scenarios)} variants", checkpoint=checkpoint, about=about)
    return Sweep(base, keys, settings, scenarios, int(seed), list(path_ids), values, tuple(metrics), shown)


def resume_sweep(directory: str | os.PathLike[str], progress: ProgressArg = None, *, backend: str | Backend | None = None,
                 workers: int | None = None, client: Any = None, scheduler: str | None = None, threads: int = 1) -> Sweep:
    """Continue the sweep checkpointed in ``directory`` (its scenario, grid, paths, seed and metrics).

    Raises
    ------
    ResultsError
        When ``directory`` holds no checkpoint of a sweep.
    """
    run = read_manifest(directory)["run"]
    about = run.get("sweep")
    if not isinstance(about, dict):
        raise ResultsError(f"{directory}: is the checkpoint of a run, not of a sweep; continue it with creditsim run --resume {directory}")
    keys, settings, metrics, fixed = about.get("keys"), about.get("settings"), about.get("metrics"), about.get("fixed")
    if not (isinstance(about.get("base"), dict) and isinstance(keys, list) and all(isinstance(k, str) for k in keys) and isinstance(settings, list)
            and all(isinstance(s, dict) and s.keys() == set(keys) for s in settings) and isinstance(metrics, list)
            and all(isinstance(m, str) for m in metrics) and isinstance(fixed, dict) and all(isinstance(k, str) for k in fixed)):
        raise ResultsError(f"{Path(directory) / MANIFEST}: run.sweep is not a sweep's description (base, keys set, keys, settings of each key, metrics)")
    grid = {key: list({json.dumps(s[key], sort_keys=True): s[key] for s in settings}.values()) for key in keys}
    grid.update({key: [value] for key, value in fixed.items()})  # keys set for every variant
    return sweep(checkpointed_scenario(directory, about["base"]), grid, run["paths"], run["seed"], progress, metrics=metrics, backend=backend,
                 workers=workers, client=client, scheduler=scheduler, threads=threads, chunk_size=run["chunk_size"], checkpoint=directory)
