"""Where the engine's time goes: the figures behind "Where the time goes" in RESULTS.md.

    python benchmarks/overhead.py [--small 2000] [--paths 50] [--large 500000]

Prints, for the benchmark scenario of ``--small`` borrowers (see ``run.py``), the fixed cost of a path in
milliseconds — building a :class:`~creditsim.engine.Simulation`, opening its book, one simulated month —
averaged over ``--paths`` paths; and, for one path of ``--large`` borrowers, the time the maturity step
(:meth:`Simulation._maturities`, re-lending included) takes per maturing loan and its share of the path; and the
cost of the compiled kernels in a fresh process: compiling them (empty numba cache) and loading them (cached).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import benchmark_scenario

import creditsim
from creditsim.engine import Simulation


def path_overhead(borrowers: int, paths: int) -> dict[str, float]:
    """Milliseconds per path to build a Simulation, to open its book, and per simulated month."""
    scenario = benchmark_scenario(borrowers)
    creditsim.simulate(scenario, paths=[10_000], seed=0)  # warm up
    start = time.perf_counter()
    for p in range(paths):
        Simulation(scenario, 0, p)
    built = time.perf_counter()
    for p in range(paths):
        Simulation(scenario, 0, p)._open()
    opened = time.perf_counter()
    for p in range(paths):
        Simulation(scenario, 0, p).run()
    ran = time.perf_counter()
    build = (built - start) / paths
    open_ = (opened - built) / paths - build
    month = ((ran - opened) / paths - build - open_) / scenario.calendar.months
    return {"build_ms": 1e3 * build, "open_ms": 1e3 * open_, "month_ms": 1e3 * month}


def maturity_cost(borrowers: int) -> dict[str, float]:
    """Nanoseconds of the maturity step per maturing loan over one path, and the step's share of the path."""
    scenario = benchmark_scenario(borrowers)
    creditsim.simulate(benchmark_scenario(2_000, months=3), paths=[10_000], seed=0)  # warm up
    spent = {"seconds": 0.0, "loans": 0}
    step = Simulation._maturities

    def timed(sim: Simulation, t: int, loans) -> None:
        start = time.perf_counter()
        step(sim, t, loans)
        spent["seconds"] += time.perf_counter() - start
        spent["loans"] += len(loans)

    Simulation._maturities = timed  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        Simulation(scenario, 0, 0).run()
        total = time.perf_counter() - start
    finally:
        Simulation._maturities = step  # type: ignore[method-assign]
    return {"maturing_loans": spent["loans"], "ns_per_maturing_loan": 1e9 * spent["seconds"] / spent["loans"],
            "maturity_share": spent["seconds"] / total, "path_s": total}


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


def kernel_cost() -> dict[str, float]:
    """Seconds of a fresh process's first tiny path: with an empty numba cache (the kernels are compiled, as on
    the first run after installing) and with the cache that run wrote (they are loaded)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        for label in ("compile", "load"):
            run = subprocess.run([sys.executable, "-c", _FIRST_PATH], env=env, capture_output=True, text=True, check=True)
            imported, first_path = (float(v) for v in run.stdout.split())
            out[f"{label}_s"] = first_path
            out["import_s"] = imported
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="opening borrowers of the small book (default 2000)")
    parser.add_argument("--paths", type=int, default=50, help="paths of the small book (default 50)")
    parser.add_argument("--large", type=int, default=500_000, help="opening borrowers of the large path (default 500000)")
    args = parser.parse_args(argv)
    o = path_overhead(args.small, args.paths)
    print(f"{args.small:,}-borrower book, {args.paths} paths: build {o['build_ms']:.2f} ms, open {o['open_ms']:.2f} ms, "
          f"{o['month_ms']:.2f} ms per month")
    k = kernel_cost()
    print(f"first path of a fresh process: {k['compile_s']:.1f} s compiling the kernels (empty cache), {k['load_s']:.2f} s loading them "
          f"(cached); importing creditsim {k['import_s']:.2f} s")
    m = maturity_cost(args.large)
    print(f"{args.large:,}-borrower path ({m['path_s']:.2f} s): {m['maturing_loans']:,} maturing loans, "
          f"{m['ns_per_maturing_loan']:.0f} ns each in the maturity step ({m['maturity_share']:.0%} of the path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
