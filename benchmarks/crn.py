"""Common random numbers on the 嘉兴 plan: how well a policy change keeps the paths paired.

    python benchmarks/crn.py [--paths 200] [--traced 20] [--json]

Runs the bundled 嘉兴 plan twice on the same seed (0) and paths: the baseline with the county guarantors' fee at
0.75%, the variant at 0.5%. With the loan-level trace of the first ``--traced`` paths it reports

* ``matched``: the share of the baseline's loans that have a counterpart in the variant — the same path, firm and
  start month;
* ``same_end``: of those, the share that end the same way (repaid, renewed, defaulted, …) in the same month;

and over all paths, for the cumulative ``defaults`` (loans, every bank) and a few other totals, the variance of the
paired difference variant − baseline next to the variance of the baseline itself: pairing works when the first
is far below twice the second. Runs under an engine without a trace (creditsim 0.1) print the variances only, so
that versions can be compared with the same command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

import creditsim

OVERRIDE = "guarantors.county.fee_rate"
BASELINE, VARIANT = "0.75%", "0.5%"
TOTALS = ("defaults", "defaulted", "disbursed", "first_time_borrowers")


def _run(fee: str, paths: int, traced: int) -> Any:
    scenario = creditsim.load_scenario(overrides={OVERRIDE: fee})
    options: dict[str, Any] = {"paths": paths, "seed": 0, "progress": False}
    if traced:
        options["trace"] = list(range(traced))
    return creditsim.simulate(scenario, **options)


def pairing(base: Any, variant: Any) -> dict[str, float]:
    """The share of the baseline's traced loans with a counterpart (path, firm, start) in the variant, and the
    share of those that end the same way in the same month."""
    key = ["path", "firm", "start"]
    a = base.trace[key + ["how", "end"]].astype({"how": str})
    b = variant.trace[key + ["how", "end"]].astype({"how": str})
    a = a.assign(n=a.groupby(key).cumcount())  # a firm may start two loans in one month
    b = b.assign(n=b.groupby(key).cumcount())
    both = a.merge(b, on=key + ["n"], suffixes=("_a", "_b"))
    same = (both["how_a"] == both["how_b"]) & (both["end_a"] == both["end_b"])
    return {"loans": len(a), "matched": len(both) / len(a), "same_end": float(same.mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--traced", type=int, default=20, help="paths whose loans are traced (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    traced = args.traced if "trace" in creditsim.simulate.__code__.co_varnames else 0
    start = time.perf_counter()
    base, variant = _run(BASELINE, args.paths, traced), _run(VARIANT, args.paths, traced)
    record: dict[str, Any] = {"paths": args.paths, "wall_s": round(time.perf_counter() - start, 2), "creditsim": creditsim.__version__}
    for metric in TOTALS:
        x, y = base.cumulative(metric, "all"), variant.cumulative(metric, "all")
        record[metric] = {"var_paired_diff": float(np.var(y - x, ddof=1)), "var_base": float(np.var(x, ddof=1)), "mean_diff": float(np.mean(y - x))}
    if traced:
        record["trace"] = pairing(base, variant)
    if args.json:
        print(json.dumps(record))
        return 0
    print(f"嘉兴 plan, county fee {BASELINE} → {VARIANT}, {args.paths} paths, seed 0 ({record['wall_s']:.0f} s, creditsim {creditsim.__version__})")
    if traced:
        t = record["trace"]
        print(f"traced paths 0–{traced - 1}: {t['loans']:,} baseline loans, {t['matched']:.1%} with a counterpart (path, firm, start month), "
              f"{t['same_end']:.1%} of those ending the same way in the same month")
    for metric in TOTALS:
        m = record[metric]
        print(f"{metric:<22} var(variant − baseline) {m['var_paired_diff']:.4g}   var(baseline) {m['var_base']:.4g}   mean difference {m['mean_diff']:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
