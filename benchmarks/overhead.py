"""Where the engine's time goes: the figures behind "Where the time goes" in RESULTS.md.

    python benchmarks/overhead.py [--small 2000] [--paths 200] [--large 500000]

Prints

* the cost of the compiled code in a fresh process: importing creditsim, the first tiny path with an empty numba
  cache (everything is compiled, as on the first run after installing) and with the cache that run wrote (it is
  loaded: the cached start);
* for the benchmark scenario (``run.py``) of ``--small`` borrowers and of ``--large`` borrowers: the time of a
  path's opening (:func:`creditsim.model.month.start_path`: the opening population and book) and of a month
  (:func:`creditsim.model.month.month`), each called on its own from Python on one state, and the whole path
  through :func:`creditsim.model.engine.run_task` for comparison (what Python adds around the compiled call).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from run import benchmark_scenario, child_env

from creditsim.model.engine import run_task
from creditsim.model.month import month, start_path
from creditsim.model.params import parameters
from creditsim.model.state import capacities, new_state
from creditsim.model.structs import compiled
from creditsim.scenario.sampling import sampled

_FIRST_PATH = """
import time
start = time.perf_counter()
import creditsim
from run import benchmark_scenario
scenario = benchmark_scenario(2_000, months=3)
imported = time.perf_counter()
creditsim.simulate(scenario, paths=1, seed=0)
print(imported - start, time.perf_counter() - imported)
"""


def compiled_code_cost() -> dict[str, float]:
    """Seconds of a fresh process's import and first tiny path, with an empty numba cache (compiled) and with the
    cache that run wrote (loaded)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = child_env(NUMBA_CACHE_DIR=cache)
        for label in ("compile", "load"):
            run = subprocess.run([sys.executable, "-c", _FIRST_PATH], env=env, capture_output=True, text=True, check=True)
            imported, first_path = (float(v) for v in run.stdout.split())
            out[f"{label}_s"] = first_path
            out[f"{label}_import_s"] = imported
    return out


def path_cost(borrowers: int, paths: int) -> dict[str, float]:
    """Milliseconds of a path's opening and of a month (median month), and of a whole path through run_task, for
    the benchmark scenario of ``borrowers`` opening borrowers (averaged over ``paths`` paths)."""
    scenario = benchmark_scenario(borrowers)
    run_task(scenario, 0, [0])  # compiled code loaded
    p = parameters(sampled(scenario))
    state = new_state(p, capacities(p))
    P, S = compiled(p), compiled(state)
    opening, months = 0.0, []
    for path in range(paths):
        start = time.perf_counter()
        start_path(P, S, 0, path)
        opening += time.perf_counter() - start
        for t in range(1, p.calendar.months + 1):
            start = time.perf_counter()
            month(P, S, t, path, False)
            months.append(time.perf_counter() - start)
    start = time.perf_counter()
    run_task(scenario, 0, list(range(paths)))
    whole = (time.perf_counter() - start) / paths
    months.sort()
    return {"opening_ms": 1e3 * opening / paths, "month_ms": 1e3 * months[len(months) // 2], "months": p.calendar.months,
            "path_ms": 1e3 * whole, "parts_ms": 1e3 * (opening + sum(months)) / paths}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="opening borrowers of the small book (default 2000)")
    parser.add_argument("--paths", type=int, default=200, help="paths of the small book (default 200)")
    parser.add_argument("--large", type=int, default=500_000, help="opening borrowers of the large path (default 500000)")
    args = parser.parse_args(argv)
    k = compiled_code_cost()
    print(f"fresh process: importing creditsim {k['load_import_s']:.2f} s; first path {k['compile_s']:.1f} s with an empty numba cache "
          f"(compiling), {k['load_s']:.2f} s with the cache (loading)")
    for borrowers, paths in ((args.small, args.paths), (args.large, 3)):
        c = path_cost(borrowers, paths)
        print(f"{borrowers:,} borrowers ({paths} paths): opening {c['opening_ms']:.2f} ms, median month {c['month_ms']:.3f} ms "
              f"× {c['months']}; whole path {c['path_ms']:.2f} ms through run_task, {c['parts_ms']:.2f} ms as parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
