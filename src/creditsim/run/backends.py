"""Where paths run: in this process, in local worker processes, or on a Dask cluster.

A run is split into tasks, each a chunk of one scenario's path numbers. A task runs its paths one after another
and returns per-path arrays: the scaled metrics, or a summary of them computed where the task ran (a sweep's
target values), so nothing larger than a task's metrics crosses a process or network boundary. The arrays are
put back in path order. Since every random number of a path is a function of (seed, path, purpose, firm, month,
index) only (:mod:`creditsim.model.random`), a path's numbers are bit-for-bit the same whatever the backend, the
number of workers, the threads and the chunk size.

Backends
--------
``serial``
    In this process.
``processes``
    Local worker processes (``workers``, default: the usable cores), started with the ``spawn`` method. Workers
    ignore Ctrl-C, which the parent handles by stopping them, and exit by themselves when the parent dies.
``dask``
    A ``dask.distributed`` cluster: the given ``client``, the scheduler at ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``), or else a ``LocalCluster`` of ``workers`` single-threaded worker processes. Needs
    the optional extra: ``pip install 'creditsim[dask]'``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, ResultsError
from ..metrics import SCOPE_METRICS, SCOPES, entities
from ..model.state import TRACE
from ..results.results import ALL, Results, result_dates
from ..results.stored import check_metric_values, check_trace
from ..scenario import Scenario
from .checkpoint import MANIFEST, Checkpoint, Layout, read_manifest
from .memory import check_memory
from .progress import Progress, ProgressArg

__all__ = ["BACKENDS", "Backend", "Summary", "default_chunk_size", "run_task", "run_scenarios"]

BACKENDS = ("serial", "processes", "dask")
#: The protocols of a Dask scheduler's address creditsim connects over: plain TCP or websockets, or either encrypted
#: with the TLS settings of Dask's configuration (``distributed.comm.tls``); an address without one is TCP.
SCHEDULER_PROTOCOLS = ("tcp", "ws", "tls", "wss")
#: Paths per task at most when the chunk size is left to :func:`default_chunk_size`.
MAX_CHUNK = 32

#: What a task returns: per-path arrays by name, each with the paths on axis 0.
Arrays = dict[str, np.ndarray]
#: A function run where the task runs, turning the task's results into smaller per-path arrays.
Summary = Callable[[Any], Arrays]


#: An engine: runs a task's paths and returns their metrics per scope and their trace (see
#: :func:`creditsim.model.engine.run_task`, and the reference engine's :func:`creditsim.reference.run_task`).
Engine = Callable[..., Arrays]


def run_task(engine: Engine, scenario: Scenario, seed: int, paths: Sequence[int], summary: Summary | None = None,
             on_path: Callable[[int], None] | None = None, trace: Sequence[int] = (), threads: int = 1) -> Arrays:
    """Run a task's paths with ``engine``.

    Parameters
    ----------
    engine : callable
        :func:`creditsim.model.engine.run_task` or the reference engine's :func:`creditsim.reference.run_task`.
    scenario : Scenario
        As written (with its ``sample``); the engine runs its sample and scales counts and amounts back.
    seed : int
    paths : sequence of int
    summary : callable, optional
        Applied to the task's :class:`~creditsim.results.Results`; its per-path arrays are returned instead of
        the metrics.
    on_path : callable, optional
        Called with the number of paths finished as they finish (in-process progress).
    trace : sequence of int
        Path numbers whose loans are traced (those of this task are).
    threads : int
        Threads the engine runs paths on.

    Returns
    -------
    dict of str to ndarray
        Per scope (:data:`creditsim.metrics.SCOPES`) the metrics, shape (paths, M + 1, entities, metrics), and
        ``"trace"``, or the summary's arrays.
    """
    mine = [int(p) for p in paths if int(p) in set(int(x) for x in trace)]
    groups = engine(scenario, int(seed), [int(p) for p in paths], trace=mine, threads=threads, on_path=on_path)
    if summary is None:
        return groups
    return summary(Results(scenario, int(seed), [int(p) for p in paths], groups))


def _check_count(name: str, value: object) -> None:
    """Refuse a worker count or chunk size that is given and not a whole number ≥ 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BackendError(f"{name} = {value!r}: must be a whole number ≥ 1")


def default_chunk_size(paths: int, workers: int) -> int:
    """Paths per task: about eight tasks per worker, for balance and fine checkpoints, at most :data:`MAX_CHUNK`
    so that a task's memory stays bounded whatever the number of paths."""
    return max(1, min(math.ceil(paths / (8 * max(workers, 1))), MAX_CHUNK))


class Backend:
    """Runs tasks on one of :data:`BACKENDS`; a context manager that keeps its workers between runs.

    Parameters
    ----------
    backend : {"serial", "processes", "dask"}, optional
        Default: "dask" when ``client`` or ``scheduler`` is given, "processes" when ``workers`` > 1, else
        "serial".
    workers : int, optional
        Worker processes ("processes", and the LocalCluster "dask" starts when given no client or scheduler);
        default the usable cores.
    client : dask.distributed.Client, optional
        A client of a running cluster (not closed here).
    scheduler : str, optional
        The address of a running ``dask.distributed`` scheduler.
    threads : int
        Threads each worker (or this process) runs paths on; the compiled engine releases the GIL, so they run
        at once. Results are the same whatever the number.

    Raises
    ------
    BackendError
        For an unknown backend, a bad worker count, Dask missing, or a scheduler that cannot be reached.
    """

    def __init__(self, backend: str | None = None, workers: int | None = None, client: Any = None, scheduler: str | None = None,
                 threads: int = 1) -> None:
        if backend is None:
            backend = "dask" if client is not None or scheduler else "processes" if workers and workers > 1 else "serial"
        if backend not in BACKENDS:
            raise BackendError(f"backend {backend!r}: must be one of {', '.join(BACKENDS)}")
        _check_count("workers", workers)
        _check_count("threads", threads)
        self.threads = threads
        if backend != "dask" and (client is not None or scheduler):
            raise BackendError(f"a Dask client or scheduler needs backend 'dask', not {backend!r}")
        if scheduler is not None:
            _check_scheduler(scheduler)
        self.name = backend
        self.workers = workers or (1 if backend == "serial" else len(os.sched_getaffinity(0)))
        self._client, self._scheduler = client, scheduler
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._other_children: set[int | None] = set()  # child processes that are not the pool's
        self._owned: list[Any] = []  # a Dask client and cluster started here, closed with the backend

    def __enter__(self) -> Backend:
        return self

    @property
    def local_workers(self) -> int:
        """Worker processes of this machine that simulate besides this one: the workers, or none for a serial run
        (which simulates in this process) or on a remote Dask cluster."""
        return 0 if self.name == "serial" or self._client is not None or self._scheduler else self.workers

    def slots(self) -> int:
        """How many tasks run at once: the local workers, or the threads of the Dask cluster's workers (connecting
        to it first)."""
        if self.name != "dask":
            return self.workers
        client = self._dask_client(_dask())
        return max(1, sum(client.nthreads().values()))

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers started here."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for thing in reversed(self._owned):
            thing.close()
        self._owned = []

    def _stop(self) -> None:
        """Stop at once (after Ctrl-C): cancel what is queued and end the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            for child in multiprocessing.active_children():
                if child.pid not in self._other_children:
                    child.terminate()
            self._pool = None

    # ------------------------------------------------------------------------------------------ running
    def run(self, engine: Engine, tasks: Sequence[tuple[Scenario, int, Sequence[int]]], summary: Summary | None,
            done: Callable[[int, Arrays], None], progress: Progress, trace: Sequence[int] = ()) -> None:
        """Run each task ``(scenario, seed, paths)`` and call ``done(index, arrays)`` as each completes (in
        completion order); ``progress`` advances by the task's paths."""
        if not tasks:
            return
        try:
            if self.name == "serial":
                for index, (scenario, seed, paths) in enumerate(tasks):
                    done(index, run_task(engine, scenario, seed, paths, summary, progress.advance, trace, self.threads))
            elif self.name == "processes":
                self._run_processes(engine, tasks, summary, done, progress, trace)
            else:
                self._run_dask(engine, tasks, summary, done, progress, trace)
        except KeyboardInterrupt:
            self._stop()
            raise

    def _run_processes(self, engine: Engine, tasks: Sequence[tuple[Scenario, int, Sequence[int]]], summary: Summary | None,
                       done: Callable[[int, Arrays], None], progress: Progress, trace: Sequence[int]) -> None:
        if self._pool is None:
            self._other_children = {child.pid for child in multiprocessing.active_children()}
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_started, initargs=(os.getpid(),))
        futures = {self._pool.submit(run_task, engine, scenario, seed, list(paths), summary, None, list(trace), self.threads): index
                   for index, (scenario, seed, paths) in enumerate(tasks)}
        try:
            for future in concurrent.futures.as_completed(futures):
                index = futures.pop(future)
                done(index, future.result())
                progress.advance(len(tasks[index][2]))
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._pool = None
            raise BackendError(f"a worker process failed to start or died (out of memory, or killed): {exc}") from None

    def _run_dask(self, engine: Engine, tasks: Sequence[tuple[Scenario, int, Sequence[int]]], summary: Summary | None,
                  done: Callable[[int, Arrays], None], progress: Progress, trace: Sequence[int]) -> None:
        distributed = _dask()
        client = self._dask_client(distributed)
        scattered: dict[int, Any] = {}
        for scenario, _, _ in tasks:
            if id(scenario) not in scattered:
                scattered[id(scenario)] = client.scatter(scenario, broadcast=True, hash=False)  # a key of this run's own
        futures = {client.submit(run_task, engine, scattered[id(scenario)], seed, list(paths), summary, None, list(trace), self.threads, pure=False): index
                   for index, (scenario, seed, paths) in enumerate(tasks)}
        try:
            for future in distributed.as_completed(list(futures)):
                index = futures.pop(future)
                try:
                    arrays = future.result()
                except (distributed.KilledWorker, distributed.comm.CommClosedError, distributed.client.FutureCancelledError) as exc:
                    raise BackendError(f"the Dask cluster lost a task ({type(exc).__name__}: {' '.join(str(exc).split())}); finished tasks kept in a "
                                       "checkpoint are not lost") from None
                future.release()
                done(index, arrays)
                progress.advance(len(tasks[index][2]))
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            for future in scattered.values():
                future.release()

    def _dask_client(self, distributed: Any) -> Any:
        if self._client is not None:
            return self._client
        try:
            if self._scheduler:
                client = distributed.Client(self._scheduler, timeout="15s")
                self._owned.append(client)
            else:
                cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None)
                self._owned.append(cluster)
                client = distributed.Client(cluster)
                self._owned.append(client)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendError(f"scheduler {self._scheduler or 'LocalCluster'}: cannot connect ({exc})") from None
        self._client = client
        _check_worker_versions(client)
        return client


def _check_scheduler(address: object) -> None:
    """Refuse a scheduler address creditsim cannot connect to, before anything runs: not a text, empty, or of a
    protocol other than :data:`SCHEDULER_PROTOCOLS` (``ucx://`` needs UCX-Py, ``inproc://`` is within one process:
    pass its ``client``), or an encrypted one without Dask's TLS settings."""
    if not isinstance(address, str) or not address.strip():
        raise BackendError(f"scheduler {address!r}: must be the address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786")
    protocol = address.partition("://")[0] if "://" in address else "tcp"
    if protocol not in SCHEDULER_PROTOCOLS:
        raise BackendError(f"scheduler {address}: creditsim connects over {', '.join(p + '://' for p in SCHEDULER_PROTOCOLS)}, not {protocol}://")
    if protocol in ("tls", "wss") and _dask().security.Security().get_connection_args("client")["ssl_context"] is None:
        raise BackendError(f"scheduler {address}: {protocol}:// needs Dask's TLS settings (distributed.comm.tls.ca-file and "
                           "distributed.comm.tls.client.cert/key in the Dask configuration); none are set")


def package_versions() -> dict[str, str]:
    """The versions that fix a path's numbers: creditsim (with a digest of its source files, so an edited
    install differs from a released one), numpy and numba."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("creditsim", "numpy", "numba"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found[package] = "unknown"
    found["creditsim_source"] = _source_digest()
    return found


@functools.cache
def _source_digest() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _check_worker_versions(client: Any) -> None:
    """Refuse a cluster whose workers run other versions than this process: their numbers could differ."""
    mine = package_versions()
    try:
        theirs = client.run(package_versions)
    except Exception as exc:  # a worker without creditsim cannot even unpickle the function
        raise BackendError(f"the Dask workers cannot run creditsim ({type(exc).__name__}: {exc}); install the same creditsim on every worker") from None
    for worker, versions in theirs.items():
        if versions != mine:
            differ = ", ".join(f"{k} {versions.get(k)} (here {v})" for k, v in mine.items() if versions.get(k) != v)
            raise BackendError(f"Dask worker {worker} runs {differ}; every worker needs the same versions as this machine, "
                               "or the numbers would differ")


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise BackendError("the 'dask' backend needs dask.distributed; install it with: pip install 'creditsim[dask]'") from None
    return distributed


def _worker_started(parent: int) -> None:
    """In each local worker: leave Ctrl-C to the parent, and exit when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_scenarios(
    scenarios: Sequence[Scenario],
    path_ids: Sequence[int],
    seed: int,
    backend: Backend,
    *,
    engine: Engine | None = None,
    summary: Summary | None = None,
    trace: Sequence[int] = (),
    chunk_size: int | None = None,
    progress: ProgressArg = None,
    description: str = "paths",
    checkpoint: str | os.PathLike[str] | None = None,
    about: dict[str, Any] | None = None,
) -> list[Arrays]:
    """Run the same paths of several scenarios (common random numbers) and return each scenario's per-path
    arrays in path order.

    Parameters
    ----------
    scenarios : sequence of Scenario
    path_ids : sequence of int
    seed : int
    backend : Backend
    engine : callable, optional
        Default :func:`creditsim.model.engine.run_task`.
    summary : callable, optional
        See :func:`run_task`; it must be picklable (a module-level function or a ``functools.partial`` of one)
        for the process and Dask backends.
    chunk_size : int, optional
        Paths per task; default :func:`default_chunk_size`. It changes nothing in the numbers.
    progress : None, bool or callable
        See :mod:`creditsim.run.progress`.
    trace : sequence of int
        Path numbers whose every loan is recorded (see :attr:`creditsim.Results.trace`).
    description : str
        Shown before the progress bar.
    checkpoint : path, optional
        A directory where completed tasks are kept; given again, the run continues from them (with the chunk size
        recorded there unless ``chunk_size`` is given).
    about : dict, optional
        More JSON-able description of the run for the checkpoint (what a sweep needs to be resumed).

    Returns
    -------
    list of dict of str to ndarray

    Raises
    ------
    ScenarioError
        Before anything runs, when the run's processes would not fit in memory: the main process with every path's
        metrics (kept without a ``summary``), gathered, summarised and written, and the local workers' engines
        (:func:`creditsim.run.memory.check_memory`).
    """
    check_memory(list(scenarios), len(path_ids) if summary is None else 0, backend.local_workers, backend.threads, traced=len(trace),
                 here=backend.name == "serial")
    if engine is None:
        from ..model.engine import run_task as engine
    _check_count("chunk_size", chunk_size)
    if chunk_size is None and checkpoint is not None and os.path.lexists(Path(checkpoint) / MANIFEST):
        chunk_size = read_manifest(checkpoint)["run"]["chunk_size"]  # continue as it was cut
    size = chunk_size or default_chunk_size(len(path_ids), backend.slots())
    chunks = [list(path_ids[i : i + size]) for i in range(0, len(path_ids), size)]
    tasks = [(scenario, int(seed), chunk) for scenario in scenarios for chunk in chunks]
    gathered = Gathered(len(scenarios), len(path_ids), size)
    store = None
    if checkpoint is not None:
        contiguous = list(path_ids) == list(range(len(path_ids)))
        run = {"scenarios": [s.to_dict() for s in scenarios], "seed": int(seed),
               "paths": len(path_ids) if contiguous else [int(p) for p in path_ids], "chunk_size": size,
               "engine": f"{engine.__module__}.{engine.__qualname__}", "summary": _name_of(summary),
               "trace": sorted(int(p) for p in trace), **(about or {})}
        layouts = [_layout(scenario, chunk, summary, trace) for scenario, _, chunk in tasks]
        store = Checkpoint(checkpoint, run, [t[2] for t in tasks], package_versions(), layouts)
        for index in range(len(tasks)):
            arrays = store.load(index)
            if arrays is not None:
                gathered.place(index, arrays)
    pending = [i for i in range(len(tasks)) if i not in gathered.done]
    kept = set(gathered.done)

    def done(position: int, arrays: Arrays) -> None:
        index = pending[position]
        if summary is None:
            arrays.setdefault("trace", np.zeros(0, TRACE))  # an engine that traces nothing (the reference) returns none
        if store is not None:
            store.save(index, arrays)
        gathered.place(index, arrays)

    with Progress(progress, len(path_ids) * len(scenarios), description) as bar:
        if gathered.done:  # tasks done before, from the checkpoint
            bar.advance(sum(len(tasks[i][2]) for i in gathered.done))
        backend.run(engine, [tasks[i] for i in pending], summary, done, bar, trace)
    for k in range(len(scenarios)):
        indices = range(k * len(chunks), (k + 1) * len(chunks))
        names = gathered.names[min(indices, key=lambda i: i in kept)]  # a task run now, if any, says what a task returns
        for i in indices:
            if gathered.names[i] != names:
                assert store is not None and i in kept  # tasks run now all return the same arrays
                raise ResultsError(f"{store.task_file(i)}: holds {', '.join(gathered.names[i])}, not {', '.join(names)} as the run's other tasks "
                                   "do; delete it to run that task again")
    return gathered.arrays()


#: The array of a task's results that is not per path: the records of its traced paths' loans, any number a path.
RECORDS = "trace"


class Gathered:
    """Each scenario's per-path arrays, filled in place as tasks finish (in any order): a scenario's array of a name
    is made when its first task comes back, and each task's rows are copied to its chunk's place, so gathering holds
    the results once and the tasks in flight, not every task's arrays besides the joined ones. The :data:`RECORDS`
    are kept per task and joined in task order at the end."""

    def __init__(self, scenarios: int, paths: int, chunk_size: int) -> None:
        self._paths, self._chunk_size = paths, chunk_size
        self._chunks = math.ceil(paths / chunk_size)
        self._arrays: list[Arrays] = [{} for _ in range(scenarios)]
        self._records: list[dict[int, np.ndarray]] = [{} for _ in range(scenarios)]
        self.done: set[int] = set()
        self.names: dict[int, list[str]] = {}  # per task, the names of the arrays it returned

    def place(self, index: int, arrays: Arrays) -> None:
        """Put the arrays of task ``index`` (scenario ``index // chunks``, chunk ``index % chunks``) in place."""
        k, chunk = divmod(index, self._chunks)
        start = chunk * self._chunk_size
        stop = min(start + self._chunk_size, self._paths)
        for name, array in arrays.items():
            if name == RECORDS:
                self._records[k][chunk] = array
                continue
            target = self._arrays[k].get(name)
            if target is None:
                target = self._arrays[k][name] = np.empty((self._paths, *array.shape[1:]), array.dtype)
            if array.shape != (stop - start, *target.shape[1:]):
                raise BackendError(f"task {index} returned {name} of shape {array.shape}, not {(stop - start, *target.shape[1:])} "
                                   f"(a row for each of its {stop - start} paths)")
            target[start:stop] = array
        self.names[index] = sorted(arrays)
        self.done.add(index)

    def arrays(self) -> list[Arrays]:
        """Each scenario's arrays, once every task is in place."""
        for arrays, records in zip(self._arrays, self._records, strict=True):
            if records:
                arrays[RECORDS] = np.concatenate([records[chunk] for chunk in sorted(records)])
        return self._arrays


def _layout(scenario: Scenario, paths: Sequence[int], summary: Summary | None, trace: Sequence[int]) -> Layout:
    """What the checkpoint file of a task running ``paths`` of ``scenario`` holds: with no ``summary``, per scope
    the metrics, float64 of shape (paths, M + 1, entities, metrics), and ``"trace"``, the traced paths' loan
    records, each checked as results are when loaded (:mod:`creditsim.results.stored`); with a summary, its
    float64 arrays of one number a path, none of them infinite."""
    n = len(paths)
    if summary is not None:
        def finite_or_nan(arrays: Arrays) -> None:
            for name, values in arrays.items():
                if np.isinf(values).any():
                    raise ResultsError(f"{name} holds an infinite value")

        return Layout({None: (np.dtype(np.float64), (n,))}, finite_or_nan)
    dates = result_dates(scenario)
    names = {scope: [ALL] if scope == "population" else entities(scope, scenario) for scope in SCOPES}
    traced = set(trace)
    mine = [p for p in paths if p in traced]

    def check(arrays: Arrays) -> None:
        for scope in SCOPES:
            check_metric_values(scope, arrays[scope], names[scope], paths, dates)
        check_trace(arrays["trace"], scenario, mine)

    shapes = {scope: (np.dtype(np.float64), (n, len(dates), len(names[scope]), len(SCOPE_METRICS[scope]))) for scope in SCOPES}
    return Layout({**shapes, "trace": (TRACE, (None,))}, check)


def _name_of(summary: Summary | None) -> Any:
    """A JSON-able name of a summary function (with a partial's arguments), for checkpoints."""
    if summary is None:
        return None
    func = getattr(summary, "func", summary)
    name = f"{func.__module__}.{func.__qualname__}"
    args = getattr(summary, "args", ())
    keywords = getattr(summary, "keywords", {})
    return [name, repr(args), repr(sorted(keywords.items()))]
