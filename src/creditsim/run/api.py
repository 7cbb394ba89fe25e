"""The public entry point :func:`simulate`, which runs a scenario's Monte Carlo paths on a backend."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ScenarioError
from ..model import engine as model_engine
from ..results.results import Results
from ..scenario import Scenario, load_scenario
from .backends import Backend, Engine, run_scenarios
from .progress import ProgressArg

__all__ = ["MAX_PATHS", "simulate", "path_numbers", "trace_numbers", "backend_for"]

#: The most runs of a path one command makes (a sweep's: its variants × paths): a million. The Monte Carlo error of a
#: probability is then below 0.05 points; more is run in batches of path numbers. A larger count is refused before
#: anything is allocated or run.
MAX_PATHS = 1_000_000


def simulate(
    scenario: Scenario | str | Path | None = None,
    paths: int | Iterable[int] = 100,
    seed: int = 0,
    progress: ProgressArg = None,
    *,
    backend: str | Backend | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    threads: int = 1,
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    trace: Iterable[int] = (),
) -> Results:
    """Run Monte Carlo paths of a scenario, serially, on local worker processes or on a Dask cluster.

    Parameters
    ----------
    scenario : Scenario, str or Path, optional
        A validated scenario, or a scenario file to load; the bundled default when omitted.
    paths : int or iterable of int
        How many paths (numbered 0..paths-1), or the path numbers themselves. Path k's result depends only
        on (scenario, seed, k): never on which other paths run with it, the backend, the workers or the chunks.
    seed : int
        Seed of every random number (≥ 0): with a path's number it fixes the path.
    progress : None, bool or callable
        None shows a progress bar on a terminal or in a notebook and nothing otherwise; True or False force it
        on or off; a callable is called as ``progress(done, total)`` instead.
    backend : {"serial", "processes", "dask"} or Backend, optional
        Where the paths run (see :mod:`creditsim.run.backends`); default "dask" when ``client`` or ``scheduler`` is
        given, "processes" when ``workers`` > 1, else "serial". A :class:`~creditsim.run.backends.Backend` is used
        as it is and left open.
    workers : int, optional
        Local worker processes (default: the usable cores).
    client : dask.distributed.Client, optional
        A running Dask cluster's client.
    scheduler : str, optional
        The address of a running ``dask.distributed`` scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    threads : int
        Threads each process runs paths on (the compiled engine releases the GIL); default 1.
    chunk_size : int, optional
        Paths per task (default: about eight tasks per worker, at most 32 paths).
    checkpoint : str or Path, optional
        Keep completed tasks in this directory; calling again with the same arguments continues from them.
    trace : iterable of int
        Path numbers whose every loan is recorded: :attr:`Results.trace` gives them as a table.

    Returns
    -------
    Results

    Raises
    ------
    ScenarioError
        For a bad scenario, seed or path list.
    BackendError
        When the backend cannot run (Dask missing, a scheduler out of reach, a worker died).
    ResultsError
        When the checkpoint directory belongs to another run.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return run_paths(model_engine.run_task, scenario, paths, seed, progress, backend=backend, workers=workers, client=client,
                     scheduler=scheduler, threads=threads, chunk_size=chunk_size, checkpoint=checkpoint, trace=trace)


def run_paths(engine: Engine, scenario: Scenario, paths: int | Iterable[int], seed: int, progress: ProgressArg = None, *,
              backend: str | Backend | None = None, workers: int | None = None, client: Any = None, scheduler: str | None = None,
              threads: int = 1, chunk_size: int | None = None, checkpoint: str | os.PathLike[str] | None = None,
              trace: Iterable[int] = ()) -> Results:
    """Run a scenario's paths with ``engine`` and collect the metrics (see :func:`simulate`).

    ``engine`` is :func:`creditsim.model.engine.run_task` or the reference engine's :func:`creditsim.reference.run_task`.
    """
    path_ids = path_numbers(paths, seed)
    traced = trace_numbers(trace, path_ids)
    with backend_for(backend, workers, client, scheduler, threads) as runner:
        (groups,) = run_scenarios([scenario], path_ids, int(seed), runner, engine=engine, chunk_size=chunk_size, progress=progress,
                                  checkpoint=checkpoint, trace=traced)
    return Results(scenario, int(seed), path_ids, groups, traced=traced)


def backend_for(backend: str | Backend | None, workers: int | None = None, client: Any = None,
                scheduler: str | None = None, threads: int = 1) -> AbstractContextManager[Backend]:
    """A context manager giving the :class:`Backend` to run on: ``backend`` itself when it is one (left open),
    else a new one (closed on exit)."""
    if isinstance(backend, Backend):
        return nullcontext(backend)
    return Backend(backend, workers, client, scheduler, threads)


def trace_numbers(trace: Iterable[int], path_ids: Sequence[int]) -> list[int]:
    """The path numbers to trace, checked: distinct numbers among the run's paths.

    Raises
    ------
    ScenarioError
        For a number that is not one of the run's paths, or one given twice.
    """
    if isinstance(trace, (str, bytes)) or not isinstance(trace, Iterable):
        raise ScenarioError("trace", trace, "must be a list of path numbers")
    numbers = []
    for p in itertools.islice(trace, len(path_ids) + 1):  # one more than the paths already names one twice
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise ScenarioError("trace", p, "must be whole path numbers")
        numbers.append(int(p))
    known = path_ids if isinstance(path_ids, range) else set(path_ids)
    for p in numbers:
        if p not in known:
            raise ScenarioError("trace", p, "is not one of the run's paths")
    if len(set(numbers)) != len(numbers):
        raise ScenarioError("trace", numbers, "names a path twice")
    return sorted(numbers)


def path_numbers(paths: int | Iterable[int], seed: int, variants: int = 1) -> Sequence[int]:
    """The path numbers a ``paths`` argument names, after checking it and the seed: for a count, a ``range`` (nothing
    is allocated before the run's memory is checked), else the numbers as a list.

    Parameters
    ----------
    paths : int or iterable of int
    seed : int
    variants : int
        The scenarios run on every path (a sweep's grid), which the runs of a path are counted over.

    Raises
    ------
    ScenarioError
        For a seed that is not a whole number in [0, 2^63), or paths that are not a count ≥ 1 or distinct numbers in
        [0, 2^63), or more than :data:`MAX_PATHS` runs of a path in all.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ScenarioError("seed", seed, "must be a whole number ≥ 0 and below 2^63")
    if isinstance(paths, bool):
        raise ScenarioError("paths", paths, "must be a whole number ≥ 1 or a list of path numbers")
    most = MAX_PATHS // variants
    rule = f"must be at most {MAX_PATHS:,} (MAX_PATHS); run more in batches of path numbers"
    if variants > 1:
        rule = (f"must be at most {most:,} for {variants:,} variants: a command runs a path at most {MAX_PATHS:,} times (MAX_PATHS); "
                "run more in batches of path numbers")
    if isinstance(paths, (int, np.integer)):
        if paths < 1:
            raise ScenarioError("paths", paths, "must be ≥ 1")
        if paths > most:
            raise ScenarioError("paths", paths, rule)
        return range(int(paths))
    path_ids = [int(p) for p in itertools.islice(paths, most + 1)]
    if len(path_ids) > most:
        raise ScenarioError("paths", f"{most + 1:,} or more path numbers", rule)
    if not path_ids or min(path_ids) < 0 or max(path_ids) >= 2**63 or len(set(path_ids)) != len(path_ids):
        raise ScenarioError("paths", path_ids, "must be distinct path numbers ≥ 0 and below 2^63")
    return path_ids
