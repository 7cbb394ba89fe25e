"""Exploring a scenario's levers: each variant run against the baseline on the same paths, a batch at a time, cached.

An :class:`Explorer` holds a scenario (a file, or the bundled default), its :func:`~creditsim.present.levers.levers`,
the number of paths and the seed. :meth:`Explorer.variant` makes the scenario with some levers moved, reading each
value as ``--set`` reads it (so a bad value is the command line's one-line error). :meth:`Explorer.run` runs a
scenario's paths in batches — the first few paths first, so that a first, partial answer comes at once — calling
back after each batch with the paths so far, until all are done or the run is cancelled. Runs are kept by scenario and
seed, the most recently used first, within :data:`CACHE_BYTES`: going back to a variant seen before costs nothing,
and a run asked for more paths continues from those it has. Path k of every run is the same path whatever the batch
(creditsim's reproducibility), so the variant and the baseline are paired path by path (common random numbers) and
the numbers shown after the last batch are those of ``creditsim run`` with the same seed and paths.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..analysis.compare import Comparison
from ..results import Results
from ..run.backends import Backend, run_scenarios
from ..scenario import Scenario, load_scenario
from .levers import Lever, levers, setting

__all__ = ["Explorer", "Cancelled", "CACHE_BYTES", "FIRST_PATHS", "BATCH_PATHS"]

#: The most bytes of runs kept (each run's metrics); the least recently used run is dropped first.
CACHE_BYTES = 1024**3
#: Paths of the first batch of a run: enough for a first look, few enough to come within a second.
FIRST_PATHS = 16
#: Paths of each later batch: the answer is updated this often.
BATCH_PATHS = 48


class Cancelled(Exception):
    """A run stopped because a newer request replaced it."""


class Explorer:
    """A scenario, its levers and the runs made of it and its variants.

    Parameters
    ----------
    scenario : str, Path or None
        A scenario file, or None for the bundled default.
    paths : int
        Paths of each run (numbered 0..paths-1).
    seed : int
        The seed of every run: the variant and the baseline share it, so their paths are paired.
    threads : int
        Threads the paths run on (in this process).

    Raises
    ------
    ScenarioError
        When the scenario is not valid.
    """

    def __init__(self, scenario: str | Path | None = None, paths: int = 200, seed: int = 0, threads: int = 2) -> None:
        self.source = None if scenario is None else Path(scenario)
        self.scenario = load_scenario(self.source)
        self.levers: list[Lever] = levers(self.scenario)
        self.paths, self.seed = paths, seed
        self._backend = Backend("serial", threads=threads)
        self._runs: OrderedDict[tuple[str, int], dict[str, np.ndarray]] = OrderedDict()  # per (digest, seed): paths 0..n-1
        self._running: dict[tuple[str, int], threading.Lock] = {}  # per run, held while its paths are run (one thread at a time)
        self._lock = threading.Lock()  # guards both

    # ------------------------------------------------------------------------------------------ variants
    def changed(self, values: Mapping[str, str]) -> dict[str, str]:
        """The levers ``values`` (by key, as written) moves away from the scenario's values."""
        known = {lever.key: lever.value for lever in self.levers}
        return {key: text for key, text in values.items() if text.strip() != known.get(key, "")}

    def variant(self, values: Mapping[str, str]) -> Scenario:
        """The scenario with the levers set to ``values`` (by key, as written: ``"0.5%"``, ``"20亿"``).

        Raises
        ------
        ScenarioError
            The one-line error ``--set`` gives for the first value a field refuses.
        """
        changed = self.changed(values)
        return load_scenario(self.source, setting(changed)) if changed else self.scenario

    def overrides(self, values: Mapping[str, str]) -> list[str]:
        """The ``--set`` texts of the levers moved: with the scenario file, the command that reproduces the variant."""
        return setting(self.changed(values))

    # ------------------------------------------------------------------------------------------ runs
    def cached(self, scenario: Scenario, seed: int | None = None) -> int:
        """How many paths of ``scenario`` (with ``seed``, default the explorer's) are kept."""
        with self._lock:
            run = self._runs.get((scenario.digest(), self.seed if seed is None else seed))
        return 0 if run is None else len(run["bank"])

    def run(self, scenario: Scenario, update: Callable[[Results], None] | None = None, cancelled: Callable[[], bool] | None = None,
            paths: int | None = None, seed: int | None = None) -> Results:
        """The first ``paths`` paths (default the explorer's) of ``scenario``, from the cache as far as they are kept,
        the rest run a batch at a time; ``update`` is called with the results so far after each batch (and at once
        with those kept), and ``cancelled`` asked before each batch.

        Raises
        ------
        Cancelled
            When ``cancelled()`` returned True; the batches done are kept.
        """
        paths, seed = self.paths if paths is None else paths, self.seed if seed is None else seed
        key = (scenario.digest(), seed)
        with self._lock:
            running = self._running.setdefault(key, threading.Lock())
        with running:  # another thread running these paths (a page's older request, another tab) finishes its batch first
            done = self.cached(scenario, seed)
            if done and update is not None and done < paths:
                update(self._results(scenario, seed, done))
            while done < paths:
                if cancelled is not None and cancelled():
                    raise Cancelled
                stop = min(paths, FIRST_PATHS if done == 0 else done + BATCH_PATHS)
                arrays = run_scenarios([scenario], range(done, stop), seed, self._backend, progress=False)[0]
                arrays.pop("trace", None)
                with self._lock:
                    kept = self._runs.pop(key, None)  # never evicted while it runs (see _evict)
                    self._runs[key] = arrays if kept is None else {name: np.concatenate([kept[name], arrays[name]]) for name in arrays}
                    self._evict()
                done = stop
                if update is not None and done < paths:
                    update(self._results(scenario, seed, done))
            results = self._results(scenario, seed, paths)
        if update is not None:
            update(results)
        return results

    def compare(self, variant: Scenario, update: Callable[[Comparison, bool], None] | None = None,
                cancelled: Callable[[], bool] | None = None, paths: int | None = None, seed: int | None = None) -> Comparison:
        """The variant against the baseline (the scenario) on the same paths (default the explorer's) and seed: the
        baseline's paths first (kept after the first time), then the variant's a batch at a time,
        ``update(comparison, complete)`` called after each batch with the paths both have.

        Raises
        ------
        Cancelled
        """
        paths = self.paths if paths is None else paths
        base = self.run(self.scenario, cancelled=cancelled, paths=paths, seed=seed)

        def paired(results: Results) -> None:
            if update is not None:
                update(Comparison(_first(base, results.paths), results), results.paths == paths)

        return Comparison(base, self.run(variant, paired, cancelled, paths, seed))

    def _results(self, scenario: Scenario, seed: int, paths: int) -> Results:
        with self._lock:
            run = self._runs[(scenario.digest(), seed)]
            self._runs.move_to_end((scenario.digest(), seed))
            groups = {name: values[:paths] for name, values in run.items()}
        return Results(scenario, seed, list(range(paths)), groups)

    def _evict(self) -> None:
        """Drop the least recently used runs until the rest fit in :data:`CACHE_BYTES`; a run whose paths are being run
        (and so the newest) is kept whatever its size. Called with the lock held."""
        for key in list(self._runs):
            if sum(a.nbytes for run in self._runs.values() for a in run.values()) <= CACHE_BYTES:
                return
            if not self._running[key].locked():
                del self._runs[key]


def _first(results: Results, paths: int) -> Results:
    """The first ``paths`` paths of ``results``."""
    if paths == results.paths:
        return results
    groups = {scope: values[:paths, :, :-1] if scope != "population" else values[:paths] for scope, values in results.groups.items()}
    return Results(results.scenario, results.seed, results.path_ids[:paths], groups)
