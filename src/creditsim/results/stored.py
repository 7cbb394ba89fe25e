"""What stored numbers must mean before they are read back: the rules of :meth:`creditsim.Results.load` and of
checkpoints (:mod:`creditsim.run.checkpoint`).

The digests of a results directory and of a checkpoint show that its bytes are those written (an accident or an
edit that was not re-signed); these rules check what the numbers say, so that a file that was damaged, edited and
re-signed, or copied from elsewhere cannot pass for results:

* sizes first: a Parquet file's row count and columns are read from its metadata and checked against what the
  manifest implies (and the memory available) before any row is read;
* labels: every row of ``metrics.parquet`` is labelled (path, date, entity, metric), exactly in the order
  :meth:`~creditsim.Results.save` writes, with the manifest's path numbers and dates and the scenario's entities;
  rows shuffled, dropped, repeated or relabelled are refused, never reshaped by position;
* values (:func:`check_metric_values`): float64; a ratio is NaN (its denominator was 0) or finite; a flag 0 or 1;
  stocks and counts are finite and ≥ 0; other amounts finite;
* the loan trace (:func:`check_trace`): each record's path one of the traced ones, its bank, segment, grade, cover,
  product and ending among the scenario's, its months within the run, its amount finite and positive; read from a
  results directory, every column must be what :func:`creditsim.results.trace.trace_table` makes of the records.

Nothing here unpickles, and the pandas metadata of a Parquet file is never interpreted (the Arrow columns are read
directly), so a malformed one cannot crash the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ResultsError
from ..metrics import METRICS, SCOPE_METRICS, SCOPES
from ..model.state import TRACE
from ..model.trace import HOW
from ..scenario import PRODUCTS, Scenario
from ..scenario.units import month_index, parse_month
from .trace import COLUMNS, trace_table

__all__ = ["check_metric_values", "check_trace", "read_metrics", "read_trace"]

_KIND = {m.name: m.kind for m in METRICS}
_UNIT = {m.name: m.unit for m in METRICS}
#: The columns of ``metrics.parquet`` and what each must be.
METRIC_COLUMNS = {"path": "int64", "date": "labels", "bank": "labels", "metric": "labels", "value": "double"}
#: The columns of ``trace.parquet`` and what each must be.
TRACE_COLUMNS = {
    "path": "int64", "firm": "int64", "bank": "labels", "segment": "labels", "grade": "int64", "start": "text", "end": "text",
    "how": "labels", "product": "labels", "renewals": "int64", "first_time": "bool", "cover": "labels", "amount": "double",
    "rate": "double", "default_month": "text", "recovery_month": "text", "write_off_month": "text",
}
assert tuple(TRACE_COLUMNS) == COLUMNS
#: Bytes a loaded row takes at most while it is read and checked: metrics (the value, a label column at a time,
#: the arrays made of them) and the trace (the Arrow table, the records, the table made of them).
_METRIC_ROW_BYTES = 32
_TRACE_ROW_BYTES = 512


# ------------------------------------------------------------------------------------------------ values
def check_metric_values(scope: str, values: np.ndarray, names: Sequence[str], path_ids: Sequence[int], dates: Sequence[str]) -> None:
    """Check the values of a scope's metrics, shape (paths, dates, entities, metrics of the scope): float64; a
    ratio NaN or finite; a flag 0 or 1; a stock or a count (firms, loans) finite and ≥ 0; any other flow finite.

    Parameters
    ----------
    scope : str
    values : ndarray
    names, path_ids, dates : sequence
        The entities, path numbers and dates of the axes, to name the first value that breaks the rule.

    Raises
    ------
    ResultsError
        Naming the metric, entity, path and date of the first value that breaks its rule, and the rule.
    """
    if values.dtype != np.float64:
        raise ResultsError(f"{scope} metrics are {values.dtype}, not float64 numbers")
    for k, metric in enumerate(SCOPE_METRICS[scope]):
        v = values[..., k]
        with np.errstate(invalid="ignore"):
            if _KIND[metric] == "ratio":
                bad, rule = np.isinf(v), "a ratio is NaN (a denominator of 0) or a finite number"
            elif _UNIT[metric] == "flag":
                bad, rule = (v != 0) & (v != 1), "a flag is 0 or 1"
            elif _KIND[metric] == "stock" or _UNIT[metric] in ("firms", "loans"):
                bad, rule = ~(np.isfinite(v) & (v >= 0)), "a stock or a count is a finite number ≥ 0"
            else:
                bad, rule = ~np.isfinite(v), "an amount is a finite number"
        if bad.any():
            p, d, e = np.unravel_index(int(np.argmax(bad)), bad.shape)
            raise ResultsError(f"{metric} of {names[e]} on path {path_ids[p]} at {dates[d]} is {float(v[p, d, e])!r}: {rule}")


def check_trace(records: np.ndarray, scenario: Scenario, traced: Sequence[int]) -> None:
    """Check the loan trace records of ``traced`` paths of ``scenario`` (:data:`creditsim.model.state.TRACE`).

    Raises
    ------
    ResultsError
        Naming the first record and field that breaks its rule.
    """
    if records.dtype != TRACE or records.ndim != 1:
        raise ResultsError(f"the trace is {records.dtype} of shape {records.shape}, not one row of trace records per loan")
    segments = [scenario.firms.segments[name] for name in scenario.segment_names]
    grades = np.asarray([len(s.pd) for s in segments])
    segment = records["segment"].astype(np.int64)
    known = (0 <= segment) & (segment < len(segments))
    covers = len(scenario.guarantors) + len(scenario.pools)
    months = scenario.calendar.months
    rules = (
        ("path", np.isin(records["path"], np.asarray(list(traced), dtype=np.int64)), "is not one of the traced paths"),
        ("firm", records["firm"] >= 0, "must be ≥ 0"),
        ("bank", (0 <= records["bank"]) & (records["bank"] < len(scenario.bank_names)), "is not one of the scenario's banks"),
        ("segment", known, "is not one of the scenario's segments"),
        ("grade", known & (0 <= records["grade"]) & (records["grade"] < grades[np.where(known, segment, 0)]), "is not a grade of its segment"),
        ("end", (0 <= records["end"]) & (records["end"] <= months), f"must be a month of the run (0 to {months})"),
        ("start", records["start"] <= records["end"], "must not be after its end"),
        ("how", (0 <= records["how"]) & (records["how"] < len(HOW)), f"must be one of {', '.join(HOW)}"),
        ("product", (0 <= records["product"]) & (records["product"] < len(PRODUCTS)), f"must be one of {', '.join(PRODUCTS)}"),
        ("renewals", records["renewals"] >= 0, "must be ≥ 0"),
        ("cover", (-1 <= records["cover"]) & (records["cover"] < covers), "is not one of the scenario's guarantors or pools"),
        ("amount", np.isfinite(records["amount"]) & (records["amount"] > 0), "must be a finite amount > 0 (fen)"),
        ("rate", np.isfinite(records["rate"]), "must be a finite number"),
    )
    for field, ok, rule in rules:
        if not ok.all():
            row = int(np.argmin(ok))
            raise ResultsError(f"trace record {row}: {field} = {records[field][row].item()!r} {rule}")


# ------------------------------------------------------------------------------------------------ Parquet
def _parquet(path: Path, columns: dict[str, str], what: str) -> pq.ParquetFile:
    """``path`` opened as Parquet, its columns' names and (when it has rows) types checked against ``columns`` from the
    metadata alone."""
    from ..files import open_regular

    try:
        handle = open_regular(path, what)
        data = pq.ParquetFile(handle)
        schema = data.schema_arrow
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:  # pyarrow's errors derive from these
        raise ResultsError(f"{path}: not readable as Parquet ({' '.join(str(exc).split())})") from None
    if schema.names != list(columns):
        raise ResultsError(f"{path}: its columns are {', '.join(map(str, schema.names)) or 'none'}, not {', '.join(columns)}")
    for name, kind in columns.items() if data.metadata.num_rows else ():  # an empty column's type says nothing (pandas writes any)
        t = schema.field(name).type
        fits = {
            "int64": pa.types.is_int64(t), "double": pa.types.is_float64(t), "bool": pa.types.is_boolean(t),
            "text": pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t),
            "labels": pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)),
        }[kind]
        if not fits:
            wanted = {"int64": "int64", "double": "float64", "bool": "bool", "text": "text", "labels": "labels (a dictionary of text)"}[kind]
            raise ResultsError(f"{path}: column {name} holds {t} values, not {wanted}")
    return data


def _column(data: pq.ParquetFile, name: str, path: Path, nulls: bool = False) -> pa.ChunkedArray:
    try:
        column = data.read(columns=[name]).column(0)
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        raise ResultsError(f"{path}: column {name} is not readable ({' '.join(str(exc).split())})") from None
    if not nulls and column.null_count:
        raise ResultsError(f"{path}: column {name} has {column.null_count} missing values")
    return column


def _numbers(data: pq.ParquetFile, name: str, path: Path) -> np.ndarray:
    """Column ``name`` as numbers; a missing float is NaN (as pandas writes one), a missing whole number is refused."""
    column = _column(data, name, path, nulls=pa.types.is_floating(data.schema_arrow.field(name).type))
    return column.to_numpy()


def _codes(data: pq.ParquetFile, name: str, labels: Sequence[str], path: Path) -> np.ndarray:
    """The labels of column ``name`` as their positions in ``labels``; a label that is not one of them is refused."""
    position = {label: i for i, label in enumerate(labels)}
    column = _column(data, name, path)
    codes = np.empty(len(column), dtype=np.int32)
    at = 0
    for chunk in column.chunks:
        dictionary = chunk.dictionary.to_pylist()
        lookup = np.asarray([position.get(label, -1) for label in dictionary] or [-1], dtype=np.int32)
        indices = chunk.indices.to_numpy()
        unknown = lookup[indices] < 0
        if unknown.any():
            row = at + int(np.argmax(unknown))
            raise ResultsError(f"{path}: row {row}: {name} {dictionary[indices[row - at]]!r} is not one of the {len(labels)} the manifest names")
        codes[at : at + len(chunk)] = lookup[indices]
        at += len(chunk)
    return codes


def _check_memory(path: Path, rows: int, row_bytes: int) -> None:
    """Refuse to read ``rows`` rows when they would not fit in the memory available."""
    from ..run.memory import RUN_SHARE, available_bytes

    available = available_bytes()
    if available is not None and rows * row_bytes > RUN_SHARE * available:
        raise ResultsError(f"{path}: its {rows:,} rows would take about {rows * row_bytes / 1024**3:.1f} GiB to read, more than "
                           f"{RUN_SHARE:.0%} of the {available / 1024**3:.1f} GiB available")


# ------------------------------------------------------------------------------------------------ metrics
def read_metrics(path: Path, scenario: Scenario, path_ids: Sequence[int], entity_lists: dict[str, list[str]],
                 dates: Sequence[str]) -> dict[str, np.ndarray]:
    """The metrics of ``metrics.parquet`` per scope, shape (paths, dates, entities with "all", metrics of the scope),
    after checking their count, labels and values against the manifest's path numbers, dates and entities.

    Raises
    ------
    ResultsError
        Naming the file, and the first row or value that breaks a rule.
    """
    p, d = len(path_ids), len(dates)
    sizes = [p * d * len(entity_lists[scope]) * len(SCOPE_METRICS[scope]) for scope in SCOPES]
    data = _parquet(path, METRIC_COLUMNS, "results data file")
    rows = data.metadata.num_rows
    if rows != sum(sizes):
        raise ResultsError(f"{path}: has {rows:,} rows, the manifest implies {sum(sizes):,} "
                           f"({p} paths × {d} dates × the entities and metrics of each scope)")
    _check_memory(path, rows, _METRIC_ROW_BYTES)
    all_entities = [*(name for scope in SCOPES for name in entity_lists[scope] if name != "all"), "all"]
    all_metrics = [m for scope in SCOPES for m in SCOPE_METRICS[scope]]
    e = {scope: len(entity_lists[scope]) for scope in SCOPES}
    k = {scope: len(SCOPE_METRICS[scope]) for scope in SCOPES}
    ids = np.asarray(path_ids, dtype=np.int64)
    first = {scope: all_metrics.index(SCOPE_METRICS[scope][0]) for scope in SCOPES}
    # per label column, what each scope's rows (paths, dates, entities, metrics) must hold, and how a label is shown
    order = {
        "path": ({s: ids.reshape(p, 1, 1, 1) for s in SCOPES}, None),
        "date": ({s: np.arange(d).reshape(1, d, 1, 1) for s in SCOPES}, list(dates)),
        "bank": ({s: np.asarray([all_entities.index(n) for n in entity_lists[s]]).reshape(1, 1, e[s], 1) for s in SCOPES}, all_entities),
        "metric": ({s: np.arange(first[s], first[s] + k[s]).reshape(1, 1, 1, k[s]) for s in SCOPES}, all_metrics),
    }
    for name, (expected, labels) in order.items():
        got = _numbers(data, name, path) if labels is None else _codes(data, name, labels, path)
        offset = 0
        for scope, size in zip(SCOPES, sizes, strict=True):
            block = got[offset : offset + size].reshape(p, d, e[scope], k[scope])
            same = block == expected[scope]
            if not same.all():
                at = int(np.argmin(same))
                wanted = np.broadcast_to(expected[scope], block.shape).ravel()[at]
                value, wanted = (int(block.ravel()[at]), int(wanted)) if labels is None else (labels[block.ravel()[at]], labels[wanted])
                raise ResultsError(f"{path}: row {offset + at} is labelled {name} {value!r} where the manifest implies {wanted!r}; "
                                   "its rows were shuffled, dropped or relabelled")
            offset += size
    values = _numbers(data, "value", path)
    groups, offset = {}, 0
    for scope, size in zip(SCOPES, sizes, strict=True):
        groups[scope] = values[offset : offset + size].reshape(p, d, e[scope], k[scope])
        offset += size
        try:
            check_metric_values(scope, groups[scope], entity_lists[scope], path_ids, dates)
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc}") from None
    return groups


# ------------------------------------------------------------------------------------------------ trace
def read_trace(path: Path, scenario: Scenario, traced: Sequence[int]) -> np.ndarray:
    """The loan trace records stored in ``trace.parquet``, after checking them (:func:`check_trace`) and that every
    column is what :func:`creditsim.results.trace.trace_table` makes of them.

    Raises
    ------
    ResultsError
        Naming the file, and the first row that breaks a rule.
    """
    data = _parquet(path, TRACE_COLUMNS, "results data file")
    rows = data.metadata.num_rows
    if rows and not traced:
        raise ResultsError(f"{path}: holds {rows:,} loans, and no path was traced")
    records = np.zeros(rows, TRACE)
    if not rows:
        return records
    _check_memory(path, rows, _TRACE_ROW_BYTES)
    for name in ("path", "firm", "grade", "renewals"):
        values = _numbers(data, name, path)
        info = np.iinfo(TRACE[name])
        outside = (values < info.min) | (values > info.max)
        if outside.any():
            row = int(np.argmax(outside))
            raise ResultsError(f"{path}: row {row}: {name} = {values[row]} is outside what the trace holds ({info.min} to {info.max})")
        records[name] = values
    records["first_time"] = _numbers(data, "first_time", path)
    covers = ["", *scenario.guarantors, *scenario.pools]
    for name, labels in (("bank", scenario.bank_names), ("segment", scenario.segment_names), ("how", HOW), ("product", PRODUCTS), ("cover", covers)):
        records[name] = _codes(data, name, labels, path) - (name == "cover")
    first = scenario.start_index - 1
    for name in ("start", "end"):
        column = _column(data, name, path).to_numpy()
        labels, inverse = np.unique(column.astype(str), return_inverse=True)
        months = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels.tolist()):
            try:
                if parse_month(label) != label:
                    raise ValueError("must be written 'YYYY-MM'")
            except ValueError as exc:
                raise ResultsError(f"{path}: column {name} holds {label!r}, which is not a month: {exc}") from None
            months[i] = month_index(label) - first
        info = np.iinfo(TRACE[name])
        if len(months) and (months.min() < info.min or months.max() > info.max):
            raise ResultsError(f"{path}: column {name} holds a month outside what the trace holds")
        records[name] = months[inverse]
    records["amount"] = np.rint(_numbers(data, "amount", path) * 100.0)  # fen, as the engine records them
    records["rate"] = _numbers(data, "rate", path)
    try:
        check_trace(records, scenario, traced)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    table = trace_table(records, scenario)
    for name in ("start", "end", "amount", "default_month", "recovery_month", "write_off_month"):
        stored, made = _column(data, name, path, nulls=True).combine_chunks(), pa.array(table[name], from_pandas=True)
        if name != "amount":
            stored, made = stored.cast(pa.large_string()), made.cast(pa.large_string())
        if not stored.equals(made):
            row, (was, wanted) = next((i, pair) for i, pair in enumerate(zip(stored.to_pylist(), made.to_pylist(), strict=True)) if pair[0] != pair[1])
            raise ResultsError(f"{path}: row {row}: {name} is {was!r}, not {wanted!r} as the loan's other columns imply")
    return records
