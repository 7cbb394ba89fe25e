"""Results of a run: monthly metrics of every path, their Monte Carlo summary, and storage.

Metrics are held as arrays (paths × dates × banks × metrics) and shown as a tidy DataFrame with columns
``path, date, bank, metric, value``; bank ``"all"`` is the aggregate (sums; ratios recomputed from sums).
A results directory holds ``metrics.parquet`` (the tidy metrics, written a block of rows at a time, so that saving
holds no copy of the results), ``trace.parquet`` (the loans of the traced paths) and ``manifest.json``
(scenario, its digest, seed, paths, traced paths, creditsim version, the SHA-256 of the data files, and a digest of
the manifest itself); results saved by another version of creditsim are refused. It is written to a
temporary directory, marked incomplete, and renamed into place when complete, so a run killed while writing leaves no
directory at its place, only a hidden temporary one that :meth:`Results.load` refuses. Loading checks the manifest's
digest, its entries and their ranges, and the data files' hashes before reading anything else, then what the numbers
mean (:mod:`creditsim.results.stored`); nothing is unpickled.

The digests have no key: they catch an accident (a damaged or truncated file, results of another run copied in) and
an edit that was not re-signed, not someone who edits a file and recomputes the digests. Against that the checks of
what the numbers mean refuse whatever is not self-consistent (labels out of order, impossible values, an aggregate
that is not the sum of its entities); results that must be trusted across people are kept where only their author
can write, or signed by other means.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ResultsError, ScenarioError, one_line
from ..files import INCOMPLETE, check_destination, new_directory, open_regular, read_regular, write_directory
from ..metrics import METRICS, SCOPE_METRICS, SCOPES, entities, ratio_values
from ..model.state import TRACE
from ..scenario import Scenario, json_digest, scenario_from_dict
from ..scenario.units import month_label
from .stored import read_metrics, read_trace
from .trace import trace_table

__all__ = ["Results", "ALL", "PERCENTILES", "mean_and_mcse", "result_dates"]

#: Name of the aggregate over banks in the ``bank`` column.
ALL = "all"
#: Percentiles reported by :meth:`Results.summary`.
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
_MANIFEST = "manifest.json"
_DATA = "metrics.parquet"
_TRACE = "trace.parquet"
_FORMAT = 2
#: Rows of the tidy metrics built at a time when they are written: writing holds the results and a block of rows
#: (and a Parquet file a row group of them), whatever the number of paths.
BLOCK_ROWS = 64 * 1024
#: Rows of a row group of the metrics' Parquet file (pyarrow's default, so that the file is the one pandas writes).
ROW_GROUP = 1024 * 1024
_SELF_DIGEST = "manifest_sha256"
#: What a manifest must hold, with the JSON type of each entry.
_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": int, "creditsim_version": str, "seed": int, "paths": int, "path_ids": list, "traced": list, "dates": list,
    "scenario": dict, "scenario_sha256": str, "entities": dict, "files": dict,
}
METRIC_SCOPE = {m.name: m.scope for m in METRICS}
METRIC_KIND = {m.name: m.kind for m in METRICS}
METRIC_UNIT = {m.name: m.unit for m in METRICS}


class Results:
    """Monthly metrics of a set of Monte Carlo paths.

    Parameters
    ----------
    scenario : Scenario
    seed : int
    path_ids : sequence of int
        The path numbers, in the order of the first axis of the arrays.
    groups : dict of str to ndarray
        Per scope (see :data:`creditsim.metrics.SCOPES`), an array of shape (paths, M + 1, entities, metrics of
        the scope): the scope's named entities without the aggregate, or one column for the population; and
        optionally ``"trace"``, the engine's records of the traced paths' loans.
    traced : sequence of int
        The path numbers whose loans were traced.

    Attributes
    ----------
    scenario : Scenario
        The scenario that was run.
    seed : int
    path_ids : list of int
        The path numbers, in row order.
    dates : list of str
        The months 'YYYY-MM', from the opening position (the month before ``calendar.start``) to the end.
    banks : list of str
        The banks, then ``"all"``.
    entities : dict of str to list of str
        Per scope ("bank", "guarantor", "reguarantor", "pool", "population"), its entities, then ``"all"``.
    groups : dict of str to ndarray
        Per scope, the array of shape (paths, dates, entities, metrics of the scope), aggregate included.
    traced : list of int
        The path numbers whose loans are in :attr:`trace`.
    """

    def __init__(self, scenario: Scenario, seed: int, path_ids: list[int], groups: dict[str, np.ndarray], traced: Sequence[int] = ()) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        self.path_ids = [int(p) for p in path_ids]
        self.traced = sorted(int(p) for p in traced)
        self._trace: np.ndarray | pd.DataFrame = groups.get("trace", np.zeros(0, TRACE))
        self.entities = {scope: [*entities(scope, scenario), ALL] for scope in SCOPES}
        self.groups = {
            scope: groups[scope] if scope == "population" else _with_aggregate(scope, groups[scope], scenario) for scope in SCOPES
        }
        self.dates = result_dates(scenario)
        self.banks = self.entities["bank"]
        self._tables: dict[str, pd.DataFrame] = {}  # summary, targets and 两增, built once (results do not change)

    # ------------------------------------------------------------------------------------------ access
    @property
    def trace(self) -> pd.DataFrame:
        """Every loan of the traced paths (``simulate(..., trace=[...])``), one row each, from its start to how and
        when it ended (see :func:`creditsim.results.trace.trace_table`); no rows when no path was traced."""
        return self._trace_table().copy()

    def _trace_table(self) -> pd.DataFrame:
        """The trace table itself (not a copy), built from the engine's records the first time it is asked for."""
        if not isinstance(self._trace, pd.DataFrame):
            self._trace = trace_table(self._trace, self.scenario)
        return self._trace

    @property
    def paths(self) -> int:
        """The number of paths."""
        return len(self.path_ids)

    @property
    def bank_metrics(self) -> np.ndarray:
        """Bank metrics, shape (paths, dates, banks + 1, len(BANK_METRICS)); the last bank is "all"."""
        return self.groups["bank"]

    @property
    def population_metrics(self) -> np.ndarray:
        """Population metrics, shape (paths, dates, len(POPULATION_METRICS))."""
        return self.groups["population"][:, :, 0, :]

    def values(self, metric: str, bank: str = ALL) -> np.ndarray:
        """One metric of one entity (a bank, guarantor or re-guarantor, or "all") as an array (paths, dates)."""
        try:
            scope = METRIC_SCOPE[metric]
        except KeyError:
            raise KeyError(f"unknown metric {metric!r}") from None
        names = self.entities[scope]
        if bank not in names:
            raise KeyError(f"{metric} is reported for {', '.join(names)}; not for {bank!r}")
        return self.groups[scope][:, :, names.index(bank), SCOPE_METRICS[scope].index(metric)]

    def series(self, metric: str, scope: str | tuple[str, ...] | list[str] = ALL) -> np.ndarray:
        """One metric on one entity, "all", or several entities together, shape (paths, dates).

        Over several entities stocks and flows are summed and ratios recomputed from the sums (as for "all").
        """
        if isinstance(scope, str):
            return self.values(metric, scope)
        if len(scope) == 1:
            return self.values(metric, scope[0])
        def total(name: str) -> np.ndarray:
            return np.sum([self.values(name, entity) for entity in scope], axis=0)

        if METRIC_KIND[metric] == "ratio":
            return ratio_values(METRIC_SCOPE[metric], total, self.scenario)[metric]
        return total(metric)

    def targets(self) -> pd.DataFrame:
        """How likely each of the scenario's targets is met.

        Returns
        -------
        DataFrame
            One row per target: ``target, label, metric, measure, scope, when, comparison, threshold, unit`` (the
            metric's unit, which the threshold and the measured values are in: CNY, fraction, firms …); the
            share of paths on which it is met (``probability``) and its Wilson 95% interval (``ci_low``,
            ``ci_high``); the median and 5–95% band of the measured value (``median, p5, p95``); the median
            shortfall over the paths that miss it (``median_shortfall``, NaN when none does); ``paths``,
            ``source``; and ``note``, which says why a target whose date or period lies outside the run (or a
            test not assessed at its date) is not assessed (its figures are then NaN). A test target (``measure``
            "test") has the probability of passing and its interval only: no threshold, unit or value.
        """
        from .targets import targets_table

        return self._table("targets", targets_table)

    def two_increases(self) -> pd.DataFrame:
        """两增 and 两控, per bank and for all banks together, at each quarter-end and year-end of the run (see
        :mod:`creditsim.results.assessment`).

        Returns
        -------
        DataFrame
            One row per bank, assessment date and check: ``bank, year, date, check`` (``两增``: every check of
            the year's rule passes; ``loan_growth``: inclusive growth ≥ all-loan growth; ``borrowers``:
            borrowers ≥ the comparison date; ``两控``: both of its halves assessed pass; ``npl_ratio``: inclusive
            NPL ratio ≤ overall NPL ratio + the margin; ``loan_cost``: the year's loans so far at a lower average
            rate than the whole year before's, from the run's second calendar year), ``rule``, the share of paths
            passing (``probability``) with its Wilson 95% interval (``ci_low``, ``ci_high``), and the median margin
            (``median_margin``, in ``margin_unit``: ``fraction`` for the growth, NPL ratio and rate differences, 0.0288
            being 2.88 percentage points; ``firms`` for borrowers; NaN for the combined 两增 and 两控 rows).
        """
        from .assessment import two_increases_table

        return self._table("two_increases", two_increases_table)

    def cumulative(self, metric: str, bank: str = ALL) -> np.ndarray:
        """A flow summed over the simulated months, shape (paths,)."""
        return self.values(metric, bank)[:, 1:].sum(axis=1)

    @property
    def metrics(self) -> pd.DataFrame:
        """Tidy DataFrame: one row per path, date, entity and metric. The ``bank`` column names the entity the
        row describes: a bank, a guarantor, a re-guarantor, or "all"."""
        return self._metric_rows(0, self._metric_count())

    def _metric_count(self) -> int:
        """The rows of :attr:`metrics`."""
        return sum(values.size for values in self.groups.values())

    def _metric_rows(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start`` … ``stop − 1`` of :attr:`metrics`: scope by scope, each scope's array in its order (path,
        date, entity, metric), so that the rows can be built and written a block at a time."""
        all_entities = _entity_categories(self.entities)
        all_metrics = [m for scope in SCOPES for m in SCOPE_METRICS[scope]]
        path_ids = np.asarray(self.path_ids, dtype=np.int64)
        columns: dict[str, list[np.ndarray]] = {"path": [], "date": [], "bank": [], "metric": [], "value": []}
        offset = 0
        for scope in SCOPES:
            values = self.groups[scope]
            _, d, e, k = values.shape
            rows = np.arange(max(start - offset, 0), max(min(stop - offset, values.size), 0))
            offset += values.size
            path, rest = np.divmod(rows, d * e * k)
            date, rest = np.divmod(rest, e * k)
            entity, metric = np.divmod(rest, k)
            codes = np.array([all_entities.index(name) for name in self.entities[scope]])
            for column, part in (("path", path_ids[path]), ("date", date), ("bank", codes[entity]),
                                 ("metric", all_metrics.index(SCOPE_METRICS[scope][0]) + metric), ("value", values[path, date, entity, metric])):
                columns[column].append(part)
        return pd.DataFrame({
            "path": np.concatenate(columns["path"]),
            "date": pd.Categorical.from_codes(np.concatenate(columns["date"]), categories=self.dates),
            "bank": pd.Categorical.from_codes(np.concatenate(columns["bank"]), categories=all_entities),
            "metric": pd.Categorical.from_codes(np.concatenate(columns["metric"]), categories=all_metrics),
            "value": np.concatenate(columns["value"]),
        })

    def _metric_blocks(self, start: int = 0, stop: int | None = None) -> Iterator[pd.DataFrame]:
        """Rows ``start`` … ``stop − 1`` of :attr:`metrics` (all of them by default) in blocks of :data:`BLOCK_ROWS`
        rows, in order."""
        stop = self._metric_count() if stop is None else stop
        for first in range(start, stop, BLOCK_ROWS):
            yield self._metric_rows(first, min(first + BLOCK_ROWS, stop))

    def summary(self) -> pd.DataFrame:
        """Per metric, date and entity: mean, Monte Carlo standard error of the mean and percentiles.

        Returns
        -------
        DataFrame
            Columns ``metric, date, bank, unit, mean, mcse, p5, p25, p50, p75, p95`` (``unit``: the metric's, e.g.
            CNY or fraction). ``mcse`` is the sample standard
            deviation over paths divided by sqrt(paths) (NaN with one path). NaN values (a ratio with a zero
            denominator) are left out of that cell's statistics.
        """
        return self._table("summary", lambda results: pd.concat([
            _describe(results.values(metric, entity), metric, entity, results.dates)
            for scope in SCOPES
            for metric in SCOPE_METRICS[scope]
            for entity in results.entities[scope]
        ], ignore_index=True))

    def _table(self, name: str, build: Callable[[Results], pd.DataFrame] | None) -> pd.DataFrame:
        """A copy of the table ``name``, built by ``build(self)`` the first time it is asked for."""
        if name not in self._tables:
            self._tables[name] = build(self)
        return self._tables[name].copy()

    # ------------------------------------------------------------------------------------------ storage
    def manifest(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``manifest.json``: format, creditsim version, seed, paths, path numbers,
        entities, dates, the scenario and its digest (the data file's SHA-256 is added when saved)."""
        from .. import __version__

        return {
            "format": _FORMAT,
            "creditsim_version": __version__,
            "seed": self.seed,
            "paths": self.paths,
            "path_ids": self.path_ids,
            "traced": self.traced,
            "scenario_sha256": self.scenario.digest(),
            "scenario": self.scenario.to_dict(),
            "entities": self.entities,
            "dates": self.dates,
        }

    @staticmethod
    def check_target(directory: str | Path) -> Path:
        """Check that results can be written to ``directory`` (before spending time on a run).

        It may be missing, empty, or an earlier results directory (which :meth:`save` replaces); anything
        else is refused. It must be writable where it is (:func:`creditsim.files.check_destination`: its parent
        is created).

        Raises
        ------
        ResultsError
        """
        target = check_destination(directory, "results", directory=True)
        if target.exists() and not (target.is_dir() and (_is_results(target) or not any(target.iterdir()))):
            raise ResultsError(f"{target}: exists and is not a creditsim results directory; refusing to overwrite it")
        return target

    def save(self, directory: str | Path) -> Path:
        """Write the results to ``directory`` atomically (a temporary directory renamed into place).

        An existing results directory at that place is replaced; any other existing path is refused.

        Raises
        ------
        ResultsError
            When the target is refused by :meth:`check_target` or writing fails.
        """
        def write(staging: Path) -> None:
            self._write_metrics_parquet(staging / _DATA)
            self._trace_table().to_parquet(staging / _TRACE, index=False)
            manifest = self.manifest()
            manifest["files"] = {_DATA: _sha256(staging / _DATA), _TRACE: _sha256(staging / _TRACE)}
            manifest[_SELF_DIGEST] = json_digest(manifest)
            (staging / _MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")

        return write_directory(self.check_target(directory), write, replace=True)

    def _write_metrics_parquet(self, path: Path) -> None:
        """Write :attr:`metrics` to a Parquet file a row group at a time, each built a block of rows at a time: the
        file ``metrics.to_parquet(path, index=False)`` writes (same schema, pandas metadata and row groups), while
        holding only a row group's columns besides the results."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._metric_count()
        writer = None
        try:
            for first in range(0, rows, ROW_GROUP):
                blocks = self._metric_blocks(first, min(first + ROW_GROUP, rows))
                group = pa.concat_tables([pa.Table.from_pandas(block, preserve_index=False) for block in blocks])
                if writer is None:
                    writer = pq.ParquetWriter(path, group.schema, compression="snappy")
                writer.write_table(group, row_group_size=ROW_GROUP)
        finally:
            if writer is not None:
                writer.close()

    # ------------------------------------------------------------------------------------------ exports
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables the exports write, each computed once (results do not change) and returned as copies:
        ``summary`` (:meth:`summary`), ``targets`` (:meth:`targets`), ``two_increases`` (:meth:`two_increases`),
        ``banks`` (:func:`creditsim.bank_table`), ``budget`` and ``budget_totals`` (:func:`creditsim.budget`, its
        ``items`` and ``totals``) and ``instruments`` (:func:`creditsim.instrument_events`)."""
        from ..analysis.summaries import instrument_events
        from .banks import bank_table
        from .budget import budget

        if "budget" not in self._tables:
            spent = budget(self)
            self._tables.update(budget=spent.items, budget_totals=spent.totals)
        return {"summary": self.summary(), "targets": self.targets(), "two_increases": self.two_increases(),
                "banks": self._table("banks", bank_table), "budget": self._table("budget", None), "budget_totals": self._table("budget_totals", None),
                "instruments": self._table("instruments", instrument_events)}

    def to_csv(self, directory: str | Path) -> Path:
        """Write ``metrics.csv`` (the tidy metrics) and each of :meth:`tables` as ``NAME.csv`` (UTF-8 with a
        byte-order mark, so spreadsheet programs read the Chinese text; amounts in CNY, each row's unit in its
        ``unit`` column) to a new directory, atomically. Raises :class:`ResultsError` when ``directory`` exists."""
        def write(staging: Path) -> None:
            with open(staging / "metrics.csv", "w", encoding="utf-8-sig", newline="") as handle:  # the byte-order mark once
                for number, block in enumerate(self._metric_blocks()):
                    block.to_csv(handle, header=number == 0, index=False)
            for name, table in self.tables().items():
                table.to_csv(staging / f"{name}.csv", index=False, encoding="utf-8-sig")

        return write_directory(new_directory(directory), write)

    def to_parquet(self, directory: str | Path) -> Path:
        """Write the same tables as :meth:`to_csv` as Parquet files to a new directory, atomically."""
        def write(staging: Path) -> None:
            self._write_metrics_parquet(staging / "metrics.parquet")
            for name, table in self.tables().items():
                table.to_parquet(staging / f"{name}.parquet", index=False)

        return write_directory(new_directory(directory), write)

    def to_excel(self, path: str | Path) -> Path:
        """Write an Excel workbook of :meth:`tables` (the file written atomically; an existing file is replaced):
        amounts in 亿元, each value with its unit (a ``unit`` column, or the header) and number format, headers in
        English and Chinese (:mod:`creditsim.results.exports`)."""
        from .exports import ROW, Sheet, write_workbook

        tables = self.tables()
        chance = {"probability": "probability", "ci_low": "probability", "ci_high": "probability"}
        money = dict.fromkeys(("median", "p5", "p95", "mean", "mcse"), "CNY")
        sheets = {
            "targets": Sheet(tables["targets"], {**chance, **dict.fromkeys(("threshold", "median", "p5", "p95", "median_shortfall"), ROW)}),
            "two_increases": Sheet(tables["two_increases"].rename(columns={"margin_unit": "unit"}), {**chance, "median_margin": ROW}),
            "banks": Sheet(tables["banks"], dict.fromkeys(("median", "p5", "p95"), ROW)),
            "budget": Sheet(tables["budget"], money),
            "budget_totals": Sheet(tables["budget_totals"], money),
            "instruments": Sheet(tables["instruments"], chance),
            "summary": Sheet(tables["summary"], dict.fromkeys(("mean", "mcse", *(f"p{p}" for p in PERCENTILES)), ROW)),
        }
        return write_workbook(path, sheets)

    @classmethod
    def load(cls, directory: str | Path) -> Results:
        """Read results written by :meth:`save`, checking them before they are used.

        The manifest must be unchanged (its digest), complete and in range (seed ≥ 0, as many paths as path
        numbers, traced paths among them, this creditsim's version and format); each data file must be a regular
        file with its recorded SHA-256; the scenario must be valid with its recorded digest, and its entities and
        calendar those of the manifest. Then what the numbers mean is checked (:mod:`creditsim.results.stored`):
        the row counts from the files' metadata before any row is read, every row's labels, every value's type
        and range, the aggregate "all" against the sum of its entities, and every loan of the trace.

        Raises
        ------
        ResultsError
            Naming the file and the first thing that breaks a rule.
        """
        source = Path(directory)
        if os.path.lexists(source / INCOMPLETE):  # not Path.exists, which raises for a name too long
            raise ResultsError(f"{source}: was not completely written (a run was stopped while saving it)")
        manifest = _read_manifest(source)
        for name in (_DATA, _TRACE):
            if _sha256(source / name, "results data file") != manifest["files"][name]:
                raise ResultsError(f"{source}: {name} does not match the manifest's hash")
        try:
            scenario = scenario_from_dict(manifest["scenario"])
        except ScenarioError as exc:
            raise ResultsError(f"{source}: the scenario in {_MANIFEST} is not valid here: {exc}") from None
        if scenario.digest() != manifest["scenario_sha256"]:
            raise ResultsError(f"{source}: the scenario does not match its recorded digest")
        entity_lists = manifest["entities"]
        if entity_lists != {scope: [*entities(scope, scenario), ALL] for scope in SCOPES}:
            raise ResultsError(f"{source}: the entities in the manifest do not match its scenario")
        if manifest["dates"] != result_dates(scenario):
            raise ResultsError(f"{source}: the manifest's dates do not match its scenario's calendar")
        stored = read_metrics(source / _DATA, scenario, manifest["path_ids"], entity_lists, manifest["dates"])
        results = cls(scenario, manifest["seed"], manifest["path_ids"], {
            scope: values if scope == "population" else np.ascontiguousarray(values[:, :, :-1, :]) for scope, values in stored.items()
        }, traced=manifest["traced"])
        for scope in SCOPES:
            same = (results.groups[scope] == stored[scope]) | (np.isnan(results.groups[scope]) & np.isnan(stored[scope]))
            if not same.all():
                p, d, e, k = np.unravel_index(int(np.argmin(same)), same.shape)
                raise ResultsError(f"{source / _DATA}: {SCOPE_METRICS[scope][k]} of all on path {results.path_ids[p]} at {results.dates[d]} "
                                   f"is {float(stored[scope][p, d, e, k])!r}, not {float(results.groups[scope][p, d, e, k])!r}, "
                                   "what its entities add up to")
        del stored
        results._trace = read_trace(source / _TRACE, scenario, results.traced)
        return results


def result_dates(scenario: Scenario) -> list[str]:
    """The months 'YYYY-MM' of a run's results: the opening position (the month before ``calendar.start``), then each
    simulated month."""
    start = scenario.start_index - 1
    return [month_label(start + t) for t in range(scenario.calendar.months + 1)]


def _is_results(directory: Path) -> bool:
    """Whether a directory holds creditsim results and nothing else (so replacing it loses nothing of the user's):
    only the files :meth:`Results.save` writes, and a manifest naming the results format."""
    if not {p.name for p in directory.iterdir()} <= {_MANIFEST, _DATA, _TRACE, INCOMPLETE}:
        return False
    try:
        _read_manifest(directory)
    except ResultsError:
        return False
    return True


def _read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a results directory, checked against its own digest, for its entries and their ranges."""
    try:
        manifest = json.loads(read_regular(source / _MANIFEST, "results manifest"))
    except (ValueError, RecursionError) as exc:
        raise ResultsError(f"{source}: no readable {_MANIFEST} ({' '.join(str(exc).split()) or 'nested too deeply'})") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{source}: {_MANIFEST} is not a creditsim results manifest")
    from .. import __version__

    saved_by = manifest.get("creditsim_version")
    if saved_by != __version__:
        raise ResultsError(f"{source}: saved by creditsim {saved_by if isinstance(saved_by, str) else 'of an unknown version'}, "
                           f"which this creditsim {__version__} does not read; run it again with this version")
    if manifest.get("format") != _FORMAT:
        raise ResultsError(f"{source}: results format {manifest.get('format')!r} is not {_FORMAT}")
    recorded = manifest.pop(_SELF_DIGEST, None)
    if recorded != json_digest(manifest):
        raise ResultsError(f"{source}: {_MANIFEST} has been changed since it was written (its digest does not match)")
    for key in manifest.keys() - _MANIFEST_FIELDS.keys():
        raise ResultsError(f"{source}: {_MANIFEST} holds {key!r}, which a results manifest does not")
    for key, kind in _MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise ResultsError(f"{source}: {_MANIFEST} has no valid {key!r}")

    def whole(x: object) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63

    ids, traced, files = manifest["path_ids"], manifest["traced"], manifest["files"]
    rules: tuple[tuple[str, Callable[[], bool], str], ...] = (  # in order: a rule may rely on those before it
        ("seed", lambda: whole(manifest["seed"]), "a whole number ≥ 0 and below 2^63"),
        ("path_ids", lambda: bool(ids) and all(whole(p) for p in ids) and len(set(ids)) == len(ids), "distinct path numbers ≥ 0 and below 2^63"),
        ("paths", lambda: manifest["paths"] == len(ids), f"the number of path_ids ({len(ids)})"),
        ("traced", lambda: all(whole(p) for p in traced) and traced == sorted(set(traced)) and set(traced) <= set(ids), "distinct path_ids, in order"),
        ("files", lambda: files.keys() == {_DATA, _TRACE} and all(isinstance(h, str) for h in files.values()), f"the SHA-256 of {_DATA} and {_TRACE}"),
        ("dates", lambda: all(isinstance(x, str) for x in manifest["dates"]), "months written 'YYYY-MM'"),
    )
    for key, ok, rule in rules:
        if not ok():
            raise ResultsError(f"{source}: {_MANIFEST} has no valid {key!r} ({one_line(_shown(manifest[key]))}; must be {rule})")
    return manifest


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _entity_categories(entity_lists: dict[str, list[str]]) -> list[str]:
    """Every entity name once, scope by scope, with "all" last."""
    names = [name for scope in SCOPES for name in entity_lists[scope] if name != ALL]
    return [*names, ALL]


def _with_aggregate(scope: str, values: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Append the aggregate over a scope's entities: sums, with the ratios recomputed from the sums. The sums are
    made in their place in the new array, so that nothing but it is allocated besides ``values``."""
    names = SCOPE_METRICS[scope]
    p, d, e, k = values.shape
    out = np.empty((p, d, e + 1, k))
    out[:, :, :e] = values
    total = out[:, :, e]
    np.sum(values, axis=2, out=total)
    for name, ratio in ratio_values(scope, lambda m: total[..., names.index(m)], scenario).items():
        total[..., names.index(name)] = ratio
    return out


def mean_and_mcse(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over paths (axis 0) and its Monte Carlo standard error sd / sqrt(n), ignoring NaN (NaN for an all-NaN
    cell; the error is NaN with one path)."""
    n = np.sum(~np.isnan(v), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(v, axis=0)
        sd = np.nanstd(v, axis=0, ddof=1) if v.shape[0] > 1 else np.full(np.shape(mean), np.nan)
    return mean, sd / np.sqrt(n)


def _describe(v: np.ndarray, metric: str, bank: str, dates: list[str]) -> pd.DataFrame:
    mean, mcse = mean_and_mcse(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN cell is reported as NaN
        q = np.nanpercentile(v, PERCENTILES, axis=0)
    frame = pd.DataFrame({"metric": metric, "date": dates, "bank": bank, "unit": METRIC_UNIT[metric], "mean": mean, "mcse": mcse})
    for pct, row in zip(PERCENTILES, q, strict=True):
        frame[f"p{pct}"] = row
    return frame


def _sha256(path: Path, what: str = "file") -> str:
    """The SHA-256 of the regular file ``path`` (anything else is refused, see :func:`creditsim.files.open_regular`)."""
    digest = hashlib.sha256()
    with open_regular(path, what) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
