"""Exploring a scenario's levers: each variant run against the baseline on the same paths, a batch at a time, cached.

An :class:`Explorer` holds a scenario (a file, or the bundled default), its :func:`~creditsim.present.levers.levers`,
the number of paths and the seed. :meth:`Explorer.variant` makes the scenario with some levers moved, reading each
value as ``--set`` reads it (so a bad value is the command line's one-line error). :meth:`Explorer.run` runs a
scenario's paths in batches — the first few paths first, so that a first, partial answer comes at once — calling
back after each batch with the paths so far, until all are done or the run is cancelled; :meth:`Explorer.compare`
runs the paths the variant and the baseline lack in the same batches. Runs are kept by scenario and
seed, the most recently used first, within :data:`CACHE_BYTES`: going back to a variant seen before costs nothing,
and a run asked for more paths continues from those it has. Path k of every run is the same path whatever the batch
(creditsim's reproducibility), so the variant and the baseline are paired path by path (common random numbers) and
the numbers shown after the last batch are those of ``creditsim run`` with the same seed and paths.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..analysis.compare import Comparison
from ..results import Results
from ..run.backends import Backend, run_scenarios
from ..scenario import Scenario
from ..scenario.loading import read_scenario_file, scenario_setting
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
    threads : int, optional
        Threads the paths run on (in this process); default the usable cores.

    Raises
    ------
    ScenarioError
        When the scenario is not valid.
    """

    def __init__(self, scenario: str | Path | None = None, paths: int = 200, seed: int = 0, threads: int | None = None) -> None:
        self.source = None if scenario is None else Path(scenario)
        self._file = read_scenario_file(self.source)  # read once: every variant is of the file as it was then
        self.scenario = scenario_setting(*self._file, [])
        self.levers: list[Lever] = levers(self.scenario)
        self.paths, self.seed = paths, seed
        self._backend = Backend("serial", threads=threads or len(os.sched_getaffinity(0)))
        self._runs: OrderedDict[tuple[str, int], dict[str, np.ndarray]] = OrderedDict()  # per (digest, seed): paths 0..n-1
        self._running: dict[tuple[str, int], threading.Lock] = {}  # per run, held while a batch of its paths runs
        self._using: Counter[tuple[str, int]] = Counter()  # per run, the calls that need it (it is not evicted meanwhile)
        self._lock = threading.Lock()  # guards the three

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
        return scenario_setting(*self._file, setting(changed)) if changed else self.scenario

    def overrides(self, values: Mapping[str, str]) -> list[str]:
        """The ``--set`` texts of the levers moved: with the scenario file, the command that reproduces the variant."""
        return setting(self.changed(values))

    # ------------------------------------------------------------------------------------------ runs
    def cached(self, scenario: Scenario, seed: int | None = None) -> int:
        """How many paths of ``scenario`` (with ``seed``, default the explorer's) are kept."""
        return self._kept((scenario.digest(), self.seed if seed is None else seed))

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
        (results,) = self._together([scenario], None if update is None else lambda runs, complete: update(runs[0]), cancelled, paths, seed)
        return results

    def compare(self, variant: Scenario, update: Callable[[Comparison, bool], None] | None = None,
                cancelled: Callable[[], bool] | None = None, paths: int | None = None, seed: int | None = None) -> Comparison:
        """The variant against the baseline (the scenario) on the same paths (default the explorer's) and seed, the
        paths either lacks run in the same batches (so the first answer comes after one batch even when neither is
        kept), ``update(comparison, complete)`` called after each batch with the paths both have.

        Raises
        ------
        Cancelled
        """
        def paired(runs: list[Results], complete: bool) -> None:
            if update is not None:
                update(Comparison(*runs), complete)

        return Comparison(*self._together([self.scenario, variant], paired, cancelled, paths, seed))

    def _together(self, scenarios: list[Scenario], update: Callable[[list[Results], bool], None] | None, cancelled: Callable[[], bool] | None,
                  paths: int | None, seed: int | None) -> list[Results]:
        """The first ``paths`` paths of each of ``scenarios`` (the same paths, the same seed): a batch at a time, each
        batch the paths the scenario that has fewest kept lacks, run for every scenario that lacks them;
        ``update(runs, complete)`` is called with the paths all have, at once when some are kept and after each batch."""
        paths, seed = self.paths if paths is None else paths, self.seed if seed is None else seed
        keys = [(scenario.digest(), seed) for scenario in scenarios]
        distinct = dict(zip(keys, scenarios, strict=True))
        with self._lock:
            for key in distinct:
                self._using[key] += 1  # kept from eviction while this call needs it
        try:
            shown = -1
            while True:
                have = min(paths, *(self._kept(key) for key in distinct))
                if update is not None and 0 < have < paths and have != shown:
                    update([self._results(key, scenario, have) for key, scenario in zip(keys, scenarios, strict=True)], False)
                shown = have
                if have >= paths:
                    break
                stop = min(paths, FIRST_PATHS if have == 0 else have + BATCH_PATHS)
                for key, scenario in distinct.items():
                    self._extend(key, scenario, stop, cancelled)
            results = [self._results(key, scenario, paths) for key, scenario in zip(keys, scenarios, strict=True)]
        finally:
            with self._lock:
                for key in distinct:
                    self._using[key] -= 1
        if update is not None:
            update(results, True)
        return results

    def _extend(self, key: tuple[str, int], scenario: Scenario, stop: int, cancelled: Callable[[], bool] | None) -> None:
        """Run the paths of ``scenario`` up to ``stop`` that are not kept, as one task split over the threads, unless
        ``cancelled()`` says the request is over (asked once the run's turn has come). Batches of one scenario and seed
        take turns (a page's older request, another tab), so the paths kept are one run's."""
        with self._lock:
            running = self._running.setdefault(key, threading.Lock())
        with running:
            done = self._kept(key)
            if done >= stop:
                return
            if cancelled is not None and cancelled():
                raise Cancelled
            arrays = run_scenarios([scenario], range(done, stop), key[1], self._backend, chunk_size=stop - done, progress=False)[0]
            arrays.pop("trace", None)
            with self._lock:
                kept = self._runs.pop(key, None)
                self._runs[key] = arrays if kept is None else {name: np.concatenate([kept[name], arrays[name]]) for name in arrays}
                self._evict()

    def _kept(self, key: tuple[str, int]) -> int:
        with self._lock:
            run = self._runs.get(key)
        return 0 if run is None else len(run["bank"])

    def _results(self, key: tuple[str, int], scenario: Scenario, paths: int) -> Results:
        """The first ``paths`` paths kept of a run (the most recently used run from now)."""
        with self._lock:
            run = self._runs[key]
            self._runs.move_to_end(key)
            groups = {name: values[:paths] for name, values in run.items()}
        return Results(scenario, key[1], list(range(paths)), groups)

    def _evict(self) -> None:
        """Drop the least recently used runs until the rest fit in :data:`CACHE_BYTES`; a run that a call is still
        running or reading is kept whatever its size. Called with the lock held."""
        for key in list(self._runs):
            if sum(a.nbytes for run in self._runs.values() for a in run.values()) <= CACHE_BYTES:
                return
            if not self._using[key]:
                del self._runs[key]
