"""Memory a run needs in each of its processes, checked against the memory available before the run starts.

Each process that simulates (each local worker; this process for a serial run) runs one path at a time per thread
on its own state: a row for every firm of the run, one per borrower and one per loan (:func:`engine_bytes`, from the
tables' first sizes, :func:`creditsim.model.state.capacities`; a path that needs more grows a table and runs
again). The main process holds every path's monthly metrics: per scope, an array of (paths, months + 1, entities
+ 1, metrics of the scope) float64 numbers (:func:`results_bytes`, exact). While it gathers them it holds the
engine's arrays too, which the aggregates are added to (:func:`gathered_bytes`); afterwards, while it summarises
and writes them (``--out``, ``--report``, ``--xlsx``, ``--csv``), a few per-path series at a time, a block of the
metrics' rows, a chart or an Excel workbook (:func:`writing_bytes`) — never a copy of the results. A traced path
adds its loans' records and the table made of them (:func:`trace_bytes`). :func:`main_bytes` is the main process's
part beyond its fixed one, the larger of gathering and writing.

A request whose processes would not fit in :data:`RUN_SHARE` of the memory available (``MemAvailable`` of
``/proc/meminfo``) is refused up front, with the estimate, instead of failing hours later, at its very end
(``benchmarks/RESULTS.md`` compares the estimate with each process's measured peak). Where the available memory
cannot be read, nothing is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, entities
from ..model.params import parameters
from ..model.state import TRACE, Capacity, capacities, state_bytes
from ..scenario import Scenario
from ..scenario.sampling import sampled

__all__ = ["available_bytes", "check_memory", "engine_bytes", "gathered_bytes", "main_bytes", "results_bytes", "trace_bytes", "tables",
           "writing_bytes"]

#: Share of the available memory the run's processes may take together.
RUN_SHARE = 0.8
#: A worker process before any path: the interpreter, numpy, scipy, pandas, pyarrow and the engine's compiled code,
#: and for a Dask worker distributed's (measured at 200 paths of the bundled scenario, whose state takes about 10 MiB:
#: a process-pool worker peaks at 324 MiB, a Dask worker at 343).
BYTES_PER_PROCESS = 352 * 1024**2
#: The main process before it keeps any path: the same libraries, what writes the outputs (matplotlib, openpyxl),
#: the engine's parameters it sizes the run with, the pool of workers (measured 300–315 MiB).
MAIN_BYTES = 384 * 1024**2
#: What the main process holds at most besides the results while it writes them: a row group of the metrics'
#: Parquet file and the blocks of rows it is built from, a chart, a block of CSV (measured 125–131 MiB for
#: ``--out``, 50 for ``--report``, 85 for ``--xlsx``, 22 for ``--csv``, from 200 to 20,000 paths).
WRITING_BYTES = 192 * 1024**2
#: (paths, dates) float64 series a summary, a target's measure or a chart holds at once besides the results, at
#: most (measured: about 10).
SUMMARY_SERIES = 16
#: Bytes of an Excel workbook while it is written, per cell of its summary sheet (openpyxl holds every cell of
#: every sheet; measured 540–570).
WORKBOOK_BYTES_PER_CELL = 768
#: Columns of the summary sheet (:meth:`creditsim.Results.summary`).
SUMMARY_COLUMNS = 11
#: Bytes per trace record of the table made of the records (:func:`creditsim.results.trace.trace_table`) while it is
#: built (measured about 220; 110 once built).
TRACE_TABLE_BYTES = 224


def _cells(scenario: Scenario, aggregates: bool = True) -> int:
    """Numbers of a path of ``scenario`` per date: every scope's entities (and their aggregates) times its metrics."""
    extra = 1 if aggregates else 0
    return sum((len(entities(scope, scenario)) + extra) * len(SCOPE_METRICS[scope]) for scope in SCOPES if scope != "population") \
        + len(SCOPE_METRICS["population"])


def results_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes of the per-path metric arrays of ``paths`` paths of ``scenario`` (aggregates included)."""
    return int(paths) * (scenario.calendar.months + 1) * _cells(scenario) * 8


def gathered_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes of the engine's arrays of ``paths`` paths of ``scenario`` (without the aggregates), which the main
    process fills as tasks finish and holds while it builds the results from them."""
    return int(paths) * (scenario.calendar.months + 1) * _cells(scenario, aggregates=False) * 8


def trace_bytes(scenario: Scenario, traced: int) -> int:
    """Bytes the main process holds for the trace of ``traced`` paths of ``scenario``: per path, as many records as
    the engine's first-size trace table holds (a generous first size: about eight times the records of a path of
    the bundled scenario), each with the table made of them (the larger part, while it is built; the tasks' records
    are joined before)."""
    if traced <= 0:
        return 0
    records = capacities(parameters(sampled(scenario)), traced=True).trace
    return int(traced) * records * (TRACE.itemsize + TRACE_TABLE_BYTES)


def writing_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes the main process holds besides the results while it summarises ``paths`` paths of ``scenario`` and
    writes them: the larger of :data:`WRITING_BYTES` and an Excel workbook of the summary (a row per date, entity
    and metric), and :data:`SUMMARY_SERIES` series of (paths, dates)."""
    dates = scenario.calendar.months + 1
    workbook = WORKBOOK_BYTES_PER_CELL * SUMMARY_COLUMNS * dates * _cells(scenario)
    return max(WRITING_BYTES, workbook) + SUMMARY_SERIES * int(paths) * dates * 8


def main_bytes(scenarios: Sequence[Scenario], paths: int, traced: int = 0) -> int:
    """Bytes the main process holds for a run of ``paths`` paths of each of ``scenarios`` besides its fixed part
    (:data:`MAIN_BYTES`) and any simulating: the results and the trace, and the larger of what gathering
    (:func:`gathered_bytes`) and summarising and writing (:func:`writing_bytes`) add to them; nothing for a run that
    keeps no path's metrics (``paths`` 0: a sweep's summaries)."""
    if paths <= 0 and traced <= 0:
        return 0
    kept = sum(results_bytes(s, paths) + trace_bytes(s, traced) for s in scenarios)
    return kept + max(sum(gathered_bytes(s, paths) for s in scenarios), max(writing_bytes(s, paths) for s in scenarios))


def tables(scenario: Scenario) -> Capacity:
    """The first sizes of the tables a path of ``scenario`` holds (in the sample the engine runs, see ``sample``)."""
    return capacities(parameters(sampled(scenario)))


def engine_bytes(scenario: Scenario, threads: int = 1, traced: bool = False) -> int:
    """An estimate of the memory, bytes, of a process simulating paths of ``scenario`` on ``threads`` threads (with a
    trace table when ``traced``): each thread's state, with a quarter more for what a task allocates besides (its
    paths' metrics, the compiled structures, temporaries), and the process's fixed part."""
    p = parameters(sampled(scenario))
    return int(BYTES_PER_PROCESS + threads * 1.25 * state_bytes(p, capacities(p, traced=traced)))


def available_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory available for new work, bytes (``MemAvailable``), or None where it cannot be read."""
    try:
        for line in Path(meminfo).read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(scenarios: list[Scenario], paths: int, workers: int = 0, threads: int = 1, available: int | None = None,
                 traced: int = 0, here: bool = True) -> None:
    """Refuse a run whose processes would take more than :data:`RUN_SHARE` of the available memory together: the main
    process (:data:`MAIN_BYTES` and :func:`main_bytes`, and an engine's state when it simulates) and ``workers`` local
    worker processes (:func:`engine_bytes` each). The error names ``paths`` when what the main process keeps for the
    paths outweighs the simulating and fewer paths would fit, else ``trace`` when the traced paths alone do not fit,
    else ``sample`` when the simulating states outweigh the processes' fixed parts, else ``workers`` when there are
    workers, else ``paths`` (not even one path fits beside the main process's fixed part).

    Parameters
    ----------
    scenarios : list of Scenario
        The scenarios run on the same paths (two for a comparison).
    paths : int
        Paths whose metrics the main process keeps (0 when a summary of them is kept instead).
    workers : int
        Local worker processes simulating besides this one (0 for a serial run and when every path runs on a remote
        cluster).
    threads : int
        Threads of each simulating process, each with its own state.
    available : int, optional
        Bytes available; read from the system when omitted.
    traced : int
        Paths whose loans are traced.
    here : bool
        Whether this process simulates (a serial run).

    Raises
    ------
    ScenarioError
        Naming ``paths``, ``trace``, ``workers`` or ``sample``, with the estimates and the memory available.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    gib, limit = 1024**3, RUN_SHARE * available
    sizes = [engine_bytes(s, threads, traced > 0) for s in scenarios]
    biggest = scenarios[sizes.index(max(sizes))]
    processes = MAIN_BYTES + (max(sizes) - BYTES_PER_PROCESS if here else 0) + workers * max(sizes)
    kept = main_bytes(scenarios, paths, traced)
    if processes + kept <= limit:
        return
    beside = f"besides {processes / gib:.1f} GiB for the processes, more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available"
    if kept >= processes - MAIN_BYTES:  # the paths take more than the simulating: fewer paths, if any fit
        low, high = 0, int(paths)  # the most paths that fit: main_bytes grows with the paths
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if processes + main_bytes(scenarios, middle, traced) <= limit else (low, middle - 1)
        if low >= 1:
            raise ScenarioError("paths", paths, f"would need about {kept / gib:.1f} GiB for the results (kept, summarised and written by the "
                                                f"main process) {beside}; run at most about {low:,} paths here, or in batches of path numbers")
        if traced and processes + main_bytes(scenarios, 1, 0) <= limit:
            raise ScenarioError("trace", traced, f"{traced} traced path(s) would need about {sum(trace_bytes(s, traced) for s in scenarios) / gib:.1f} "
                                                 f"GiB for their loans' records {beside}; trace fewer paths")
    size, fixed = tables(biggest), MAIN_BYTES + workers * BYTES_PER_PROCESS
    if processes - fixed > fixed:  # the simulating states, not the processes themselves
        raise ScenarioError("sample", biggest.sample, f"leaves about {size.firms:,} firms and {size.borrowers:,} borrower rows a path to simulate, "
                                                      f"{processes / gib:.1f} GiB for the processes ({workers + int(here)} simulating on {threads} thread(s)) "
                                                      f"besides {kept / gib:.1f} GiB of results, more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB "
                                                      "available; simulate a sample of the firms (e.g. sample = '1:100') or use fewer workers")
    if workers:
        raise ScenarioError("workers", workers, f"would need about {processes / gib:.1f} GiB ({BYTES_PER_PROCESS / 1024**2:.0f} MiB a process "
                                                f"and {size.firms:,} firms a path) besides {kept / gib:.1f} GiB of results, "
                                                f"more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available; use fewer workers")
    raise ScenarioError("paths", paths, f"would need about {(processes + main_bytes(scenarios, 1, traced)) / gib:.1f} GiB in this process "
                                        f"even for one path, more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available")
