"""Memory a run needs, checked against the memory available before the run starts.

Two things take memory. Every path returns its monthly metrics, which the main process holds together: per scope,
an array of (paths, months + 1, entities + 1, metrics of the scope) float64 numbers (:func:`results_bytes`, exact).
And each thread of each local worker (this process for a serial run) simulates one path at a time on its own
state: a row for every firm of the run, one per borrower and one per loan (:func:`engine_bytes`, from the tables'
first sizes, :func:`creditsim.model.state.capacities`; a path that needs more grows a table and runs again). A
traced path adds its loans' records, in the engine's trace table and in the results (:func:`trace_bytes`). A
request that would not fit in the memory available (``MemAvailable`` of ``/proc/meminfo``) is refused up front, with
the estimate, instead of failing hours later. Where the available memory cannot be read, nothing is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, entities
from ..model.params import parameters
from ..model.state import TRACE, Capacity, capacities, state_bytes
from ..scenario import Scenario
from ..scenario.sampling import sampled

__all__ = ["available_bytes", "check_memory", "engine_bytes", "results_bytes", "trace_bytes", "tables"]

#: Share of the available memory the results and the workers' engines may take together.
RUN_SHARE = 0.8
#: A worker's memory before any path: the interpreter, numpy, scipy, pandas and the engine's compiled code.
BYTES_PER_WORKER = 320 * 1024**2


def results_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes of the per-path metric arrays of ``paths`` paths of ``scenario`` (aggregates included)."""
    dates = scenario.calendar.months + 1
    cells = sum((len(entities(scope, scenario)) + 1) * len(SCOPE_METRICS[scope]) for scope in SCOPES if scope != "population")
    cells += len(SCOPE_METRICS["population"])
    return int(paths) * dates * cells * 8


def trace_bytes(scenario: Scenario, traced: int) -> int:
    """Bytes of the trace of ``traced`` paths of ``scenario`` in the results: each path's first-size trace table of
    records, twice (the records and the table made of them)."""
    if traced <= 0:
        return 0
    return int(traced) * 2 * TRACE.itemsize * capacities(parameters(sampled(scenario)), traced=True).trace


def tables(scenario: Scenario) -> Capacity:
    """The first sizes of the tables a path of ``scenario`` holds (in the sample the engine runs, see ``sample``)."""
    return capacities(parameters(sampled(scenario)))


def engine_bytes(scenario: Scenario, threads: int = 1, traced: bool = False) -> int:
    """An estimate of the memory, bytes, of a worker simulating paths of ``scenario`` on ``threads`` threads (with a
    trace table when ``traced``): each thread's state, with a quarter more for what a task allocates besides (its
    paths' metrics, the compiled structures, temporaries), and the worker's fixed part."""
    p = parameters(sampled(scenario))
    return int(BYTES_PER_WORKER + threads * 1.25 * state_bytes(p, capacities(p, traced=traced)))


def available_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory available for new work, bytes (``MemAvailable``), or None where it cannot be read."""
    try:
        for line in Path(meminfo).read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(scenarios: list[Scenario], paths: int, workers: int = 1, threads: int = 1, available: int | None = None,
                 traced: int = 0) -> None:
    """Refuse a run whose results (twice: gathered from the tasks, then joined) and ``workers`` local engines of
    ``threads`` threads would take more than :data:`RUN_SHARE` of the available memory. The error names ``paths``
    when the results are the larger part, else ``workers`` when the processes themselves are, else ``sample``.

    Parameters
    ----------
    scenarios : list of Scenario
        The scenarios run on the same paths (two for a comparison).
    paths : int
    workers : int
        Local processes simulating at once (1 for a serial run; 0 when every path runs on a remote cluster).
    threads : int
        Threads of each process, each with its own state.
    available : int, optional
        Bytes available; read from the system when omitted.
    traced : int
        Paths whose loans are traced.

    Raises
    ------
    ScenarioError
        Naming ``paths``, ``workers`` or ``sample``, with the estimates and the memory available.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    gib = 1024**3
    need = sum(results_bytes(s, paths) + trace_bytes(s, traced) for s in scenarios)
    if workers:
        sizes = [engine_bytes(s, threads, traced > 0) for s in scenarios]
        biggest = scenarios[sizes.index(max(sizes))]
        engines = workers * max(sizes)
    else:
        biggest, engines = scenarios[0], 0
    room = (RUN_SHARE * available - engines) / 2  # the results are gathered from the tasks, then joined
    if need > room and need > engines:
        most = max(1, int(max(room, 0) * paths / need))
        raise ScenarioError("paths", paths, f"would need about {need / gib:.1f} GiB for the results, more than the "
                                            f"{max(room, 0) / gib:.1f} GiB they may take of the {available / gib:.1f} GiB available; "
                                            f"run at most about {most:,} paths here, or in batches of path numbers")
    if 2 * need + engines > RUN_SHARE * available:
        size = tables(biggest)
        if 2 * workers * BYTES_PER_WORKER >= engines:  # the processes themselves, not the firms
            raise ScenarioError("workers", workers, f"would need about {engines / gib:.1f} GiB ({BYTES_PER_WORKER / 1024**2:.0f} MiB a process "
                                                    f"and {size.firms:,} firms a path) besides {need / gib:.1f} GiB of results, "
                                                    f"more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available; use fewer workers")
        raise ScenarioError("sample", biggest.sample, f"leaves about {size.firms:,} firms and {size.borrowers:,} borrower rows a path to simulate, "
                                                      f"{engines / gib:.1f} GiB for {workers} worker(s) of {threads} thread(s) besides "
                                                      f"{need / gib:.1f} GiB of results, more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB "
                                                      "available; simulate a sample of the firms (e.g. sample = '1:100') or use fewer workers")
