"""The 嘉兴 fee question, timed: how high may the county guarantors' fee be while the plan's average-fee target is met
with probability 0.9?

    python benchmarks/solve.py [--workers N] [--paths N] [--json]

Times, in one process, (a) ``creditsim.solve`` on the bundled 嘉兴 plan (target ``guarantee_fee``, varying
``guarantors.county.fee_rate`` over 0.5%–1.2%, largest value, seed 0) and (b) a sweep of the nine fees an earlier
version's solve tried (:data:`VALUES`), so that two versions can be compared on the same values and the same paths
even when their random numbers lead solve to try different ones. Prints the wall times, the values solve tried and
its answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import creditsim

#: The county fees solve tried with creditsim 0.1.0 (100 paths, seed 0): the fixed values of the timed sweep.
VALUES = ("0.5%", "0.85%", "1.025%", "1.1125%", "1.134375%", "1.1453125%", "1.15078125%", "1.15625%", "1.2%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    options = {"paths": args.paths, "seed": 0, "progress": False, "workers": args.workers}
    creditsim.simulate(None, paths=[10_000], seed=0, progress=False)  # imports and compiled code loaded before timing
    start = time.perf_counter()
    solution = creditsim.solve(None, "guarantee_fee", "guarantors.county.fee_rate", "0.5%:1.2%", largest=True, **options)
    solve_s = time.perf_counter() - start
    start = time.perf_counter()
    creditsim.sweep(None, {"guarantors.county.fee_rate": list(VALUES)}, **options)
    sweep_s = time.perf_counter() - start
    record = {"solve_wall_s": round(solve_s, 2), "sweep_wall_s": round(sweep_s, 2), "values_tried": len(solution.evaluations),
              "tried": [round(float(v), 8) for v in solution.evaluations["value"]], "answer": solution.message,
              "paths": args.paths, "workers": args.workers, "creditsim": creditsim.__version__}
    print(json.dumps(record, ensure_ascii=False) if args.json else "\n".join(f"{k}: {v}" for k, v in record.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
