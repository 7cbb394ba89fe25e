"""The 嘉兴 fee question, timed: how high may the county guarantors' fee be while the plan's average-fee target is met
with probability 0.9? The sequential design against the fixed one, side by side.

    python benchmarks/solve.py [--paths N] [--tolerance X] [--repeats R] [--workers N] [--json]

Runs ``creditsim.solve`` on the bundled 嘉兴 plan (target ``guarantee_fee``, varying ``guarantors.county.fee_rate``
over 0.5%–1.2%, largest value, seed 0, tolerance 0.05%) with at most ``--paths`` paths a value, alternately with the
sequential design (the default: 25 paths first, more only where a value's interval holds the level) and the fixed
design (``initial_paths = paths``: every value on every path), ``--repeats`` times each (A B A B …, so a noisy
machine slows both alike). Prints each design's median wall time, their ratio, the runs of a path each needed and
both answers with their intervals (which must agree).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import creditsim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=100, help="the most paths a value is run on (default 100)")
    parser.add_argument("--tolerance", default="0.05%", help="how closely to locate the answer (default 0.05%%)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each design (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: this process)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    creditsim.simulate(None, paths=[10_000], seed=0, progress=False)  # imports and compiled code loaded before timing
    designs = {"sequential": None, "fixed": args.paths}
    times: dict[str, list[float]] = {name: [] for name in designs}
    answers = {}
    for _ in range(args.repeats):
        for name, initial in designs.items():
            start = time.perf_counter()
            answer = creditsim.solve(None, "guarantee_fee", "guarantors.county.fee_rate", "0.5%:1.2%", largest=True, tolerance=args.tolerance,
                                     paths=args.paths, seed=0, initial_paths=initial, progress=False, workers=args.workers)
            times[name].append(time.perf_counter() - start)
            answers[name] = answer
    record = {
        **{f"{name}_median_s": round(statistics.median(t), 2) for name, t in times.items()},
        **{f"{name}_s": [round(x, 2) for x in t] for name, t in times.items()},
        "ratio_sequential_to_fixed": round(statistics.median(times["sequential"]) / statistics.median(times["fixed"]), 3),
        **{f"{name}_path_runs": int(a.evaluations["paths"].sum()) for name, a in answers.items()},
        **{f"{name}_answer": f"{a.text} {a.ci_text}" for name, a in answers.items()},
        "paths": args.paths, "tolerance": args.tolerance, "workers": args.workers, "creditsim": creditsim.__version__,
    }
    print(json.dumps(record, ensure_ascii=False) if args.json else "\n".join(f"{k}: {v}" for k, v in record.items()))
    return 0 if answers["sequential"].ci_text == answers["fixed"].ci_text else 1


if __name__ == "__main__":
    sys.exit(main())
