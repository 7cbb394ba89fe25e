"""Running a task's paths with the compiled engine: parameters compiled once, a state per thread, one compiled call
for many paths, and the metrics converted and scaled back.

:func:`run_task` is what a backend runs (:mod:`creditsim.run.backends`): it simulates the scenario's sample
(:func:`creditsim.scenario.sampling.sampled`), runs the paths on ``threads`` threads (the compiled code releases the
GIL; each thread has its own :class:`~creditsim.model.state.State` and writes its paths' rows), grows a table and
runs a path again when it ran out of room, converts money from fen to CNY, fills in the ratios and scales counts and
amounts back to the whole population. A path's numbers depend only on (scenario, seed, path): never on the task,
the threads or the batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, metric, ratio_values
from ..scenario import Scenario
from ..scenario.sampling import sampled, scale_back
from .audit import CHECKS
from .columns import BOOK, FEN
from .month import run_paths
from .params import Params, parameters
from .state import CURSOR, OVERFLOW, TRACE, Capacity, State, capacities, new_state
from .structs import compiled

__all__ = ["run_task", "AUDIT_TOLERANCE"]

#: Recounts whose running totals are sums of non-integer products (interest rate × fen) agree to rounding.
AUDIT_TOLERANCE = {"rate × balance": 1e-9}
#: A batch of paths runs for about this long between progress reports, seconds.
BATCH_SECONDS = 0.25
_MONEY = {scope: np.array([metric(name).unit == "CNY" for name in SCOPE_METRICS[scope]]) for scope in SCOPES}


def run_task(scenario: Scenario, seed: int, paths: Sequence[int], *, trace: Sequence[int] = (), threads: int = 1, audit: bool = False,
             on_path: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Simulate ``paths`` of ``scenario`` (as written, with its ``sample``).

    Parameters
    ----------
    scenario : Scenario
    seed : int
    paths : sequence of int
        Path numbers.
    trace : sequence of int
        Path numbers (among ``paths``) whose every loan is recorded.
    threads : int
        Threads that run paths at once (each with its own state).
    audit : bool
        Recount every running total from the tables after each month and raise AssertionError on a difference.
    on_path : callable, optional
        Called with the number of paths finished, as batches finish.

    Returns
    -------
    dict of str to ndarray
        Per scope (:data:`creditsim.metrics.SCOPES`) the metrics, shape (paths, M + 1, entities, metrics), counts and
        amounts scaled back; and ``"trace"``, the traced paths' loans (:data:`creditsim.model.state.TRACE` records,
        amounts in fen of the sample) in path order.
    """
    params = parameters(sampled(scenario), audit)
    path_ids = np.asarray([int(p) for p in paths], dtype=np.int64)
    traced = np.isin(path_ids, np.asarray(list(trace), dtype=np.int64))
    outputs = _outputs(params, path_ids.shape[0])
    audits = np.zeros((path_ids.shape[0], len(CHECKS)))
    capacity = capacities(params, bool(traced.any()))
    bounds = np.linspace(0, path_ids.shape[0], min(max(threads, 1), path_ids.shape[0]) + 1).astype(int)
    chunks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    def work(chunk: tuple[int, int]) -> np.ndarray:
        a, b = chunk
        return _run_chunk(params, capacity, int(seed), path_ids[a:b], traced[a:b], {k: v[a:b] for k, v in outputs.items()}, audits[a:b], on_path)

    try:
        if len(chunks) == 1:
            traces = [work(chunks[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
                traces = list(pool.map(work, chunks))
    except _AllLoansTooSmall as exc:
        name = scenario.bank_names[exc.bank]
        raise ScenarioError(f"banks.{name}.all_loans", scenario.banks[name].all_loans,
                            f"is below the bank's opening inclusive balance ({exc.balance / scenario.sample:.6g})") from None
    if audit:
        _check_audit(audits, path_ids)
    groups = _finish(outputs, scenario)
    groups["trace"] = np.concatenate(traces) if traces else np.zeros(0, TRACE)
    return groups


def _outputs(p: Params, n_paths: int) -> dict[str, np.ndarray]:
    """Zeroed metric arrays of ``n_paths`` paths, per scope (fen, as the engine writes them)."""
    dates = p.calendar.months + 1
    entities = {"bank": p.banks.max_pd.shape[0], "guarantor": p.guarantees.coverage.shape[0], "reguarantor": p.guarantees.reg_fee.shape[0],
                "pool": p.pools.share.shape[0], "population": 1}
    return {scope: np.zeros((n_paths, dates, entities[scope], len(SCOPE_METRICS[scope]))) for scope in SCOPES}


def _run_chunk(p: Params, capacity: Capacity, seed: int, paths: np.ndarray, traced: np.ndarray, outputs: dict[str, np.ndarray],
               audits: np.ndarray, on_path: Callable[[int], None] | None) -> np.ndarray:
    """Run one thread's paths in batches on one state, growing a table and running a path again when it runs out."""
    state = new_state(p, capacity)
    structs = compiled(p), compiled(state)
    trace_start = np.zeros(paths.shape[0] + 1, np.int64)
    done, batch = 0, 1
    while done < paths.shape[0]:
        stop = min(done + batch, paths.shape[0])
        started = time.perf_counter()
        first = done
        while True:
            failed = run_paths(*structs, seed, paths[:stop], traced[:stop], first, outputs["bank"], outputs["guarantor"], outputs["reguarantor"],
                               outputs["pool"], outputs["population"], trace_start, audits)
            if failed < 0:
                break
            state = _grown(p, state, failed, trace_start)
            structs = structs[0], compiled(state)
            first = failed
        if on_path is not None:
            on_path(stop - done)
        elapsed = time.perf_counter() - started
        batch = int(min(max(1, batch * BATCH_SECONDS / max(elapsed, 1e-6)), 4 * batch + 1)) if on_path is not None else paths.shape[0]
        done = stop
    return state.trace[: trace_start[paths.shape[0]]].copy()


class _AllLoansTooSmall(Exception):
    """A bank's all_loans is below its opening inclusive balance (found when the opening book is built)."""

    def __init__(self, bank: int, balance: float) -> None:
        self.bank, self.balance = bank, balance


def _grown(p: Params, state: State, failed: int, trace_start: np.ndarray) -> State:
    """A state whose table that ran out is larger, holding the trace of the paths before ``failed``."""
    code = int(state.cursor[CURSOR.overflow])
    if code == OVERFLOW.all_loans:
        bank = int(state.cursor[CURSOR.detail])
        raise _AllLoansTooSmall(bank, float(state.book[bank, BOOK.balance]) / FEN)
    c = _capacity_of(state)
    name = OVERFLOW._fields[code - 1]
    grown = c._replace(**{name: 2 * getattr(c, name) + 1024})
    if name == "loans":
        grown = grown._replace(blocks=2 * c.blocks + 16)
    fresh = new_state(p, grown)
    kept = int(trace_start[failed])
    fresh.trace[:kept] = state.trace[:kept]
    fresh.cursor[CURSOR.traced] = kept
    return fresh


def _capacity_of(state: State) -> Capacity:
    return Capacity(firms=state.firms.shape[0], borrowers=state.borrowers.shape[0], loans=state.loans.shape[0], events=state.event_next.shape[0],
                    scratch=state.scratch_firm.shape[0], trace=state.trace.shape[0], blocks=state.block_free.shape[0] - 1)


def _check_audit(audits: np.ndarray, path_ids: np.ndarray) -> None:
    """Raise AssertionError naming every recount that differs from its running total."""
    wrong = {name: float(audits[:, k].max()) for k, name in enumerate(CHECKS) if audits[:, k].max() > AUDIT_TOLERANCE.get(name, 0.0)}
    if wrong:
        raise AssertionError(f"running totals differ from a recount of the tables: {wrong}")


def _finish(outputs: dict[str, np.ndarray], scenario: Scenario) -> dict[str, np.ndarray]:
    """Money from fen to CNY, the ratios, and counts and amounts scaled back to the whole population."""
    factors = scale_back(scenario.sample)
    for scope, values in outputs.items():
        names = SCOPE_METRICS[scope]
        values[..., _MONEY[scope]] /= FEN
        for name, ratio in ratio_values(scope, lambda m, values=values, names=names: values[..., names.index(m)], scenario).items():
            values[..., names.index(name)] = ratio
        values *= factors[scope]
    return outputs
