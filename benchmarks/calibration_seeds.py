"""Are the calibration's standard errors honest? The same fit on ten seeds, its spread against what each fit reports.

    python benchmarks/calibration_seeds.py [SCENARIO --data FILE.csv --fit KEY,KEY] [--seeds 10] [--first-seed 0]
                                           [--paths 40] [--max-evaluations 80] [--set KEY=VALUE] [--quick] [--json]

Fits ``--fit`` to ``--data`` (``creditsim.analysis.calibrate.calibrate``) with ``--seeds`` seeds from ``--first-seed``
(0, 1, …, 9 by default), the same paths, budget and starting values each time, and prints

* per seed: the fitted values with their reported ``se`` and ``se_mc``, the cost, the model runs and the
  optimiser's message;
* per parameter: the mean and the spread (sd) of the fitted values over the seeds, the root mean square of the
  reported ``se_mc`` and ``se`` (√ of the mean variance), and ``sd / se_mc``. The fits share the observations, so
  only the Monte Carlo noise moves them from seed to seed: ``sd / se_mc`` near 1 means ``se_mc`` is honest; the sd
  of ten values is itself uncertain, by about ±24% (1/√(2 · 9)), so a ratio within [1/1.5, 1.5] is as good as ten
  seeds can tell;
* per pair of the first three seeds and parameter: the difference, its standard error √(se_mc_a² + se_mc_b²), and
  whether each fitted value lies within two reported standard errors (``se``) of the other.

Without a scenario it fits a small synthetic problem with a known truth (``calibration-small.toml``: the tests'
illustrative city shrunk to 6,000 firms and 30 months, re-borrowing probability 0.9; ``calibration-small.csv``: the
mean of 400 paths, seed 99, of the same scenario with re-borrowing 0.8 and every PD × 1.5) for
``demand.reborrow_prob,firms.segments.*.pd``. ``--quick`` runs 10 paths and at most 40 evaluations a fit (a
``--paths`` or ``--max-evaluations`` given wins). A version of creditsim without ``se_mc`` is measured too (its
``se_mc`` printed as nan), so that two commits can be compared with the same command.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

import creditsim
from creditsim.analysis.calibrate import calibrate, read_observations

HERE = Path(__file__).resolve().parent
SMALL = HERE / "calibration-small.toml"
SMALL_DATA = HERE / "calibration-small.csv"
SMALL_KEYS = "demand.reborrow_prob,firms.segments.*.pd"


def fit_seeds(scenario: Any, observations: list[Any], keys: list[str], seeds: list[int], paths: int, max_evaluations: int) -> list[dict[str, Any]]:
    """One fit per seed: its fitted values, ``se``, ``se_mc`` (NaN when the version has none), cost, runs, message and
    wall time."""
    out = []
    for seed in seeds:
        start = time.perf_counter()
        fit = calibrate(scenario, observations, keys, paths=paths, seed=seed, max_evaluations=max_evaluations)
        table = fit.parameters
        se_mc = table["se_mc"] if "se_mc" in table else np.full(len(table), np.nan)
        out.append({"seed": seed, "fitted": [float(v) for v in table["fitted"]], "se": [float(v) for v in table["se"]],
                    "se_mc": [float(v) for v in se_mc], "cost": float(fit.cost), "evaluations": int(fit.evaluations),
                    "message": fit.message, "wall_s": round(time.perf_counter() - start, 2)})
    return out


def summary(keys: list[str], fits: list[dict[str, Any]]) -> dict[str, Any]:
    """Per parameter the spread over seeds against the reported errors; per pair of the first three seeds, the
    difference against its standard error."""
    fitted = np.array([f["fitted"] for f in fits])
    se, se_mc = np.array([f["se"] for f in fits]), np.array([f["se_mc"] for f in fits])
    sd = fitted.std(axis=0, ddof=1)
    rms_mc, rms = np.sqrt(np.mean(se_mc**2, axis=0)), np.sqrt(np.mean(se**2, axis=0))
    parameters = [{"key": key, "mean": float(fitted[:, k].mean()), "sd": float(sd[k]), "rms_se_mc": float(rms_mc[k]), "rms_se": float(rms[k]),
                   "sd_over_se_mc": float(sd[k] / rms_mc[k]), "sd_over_se": float(sd[k] / rms[k])} for k, key in enumerate(keys)]
    pairs = []
    for a, b in combinations(range(min(3, len(fits))), 2):
        for k, key in enumerate(keys):
            diff = fitted[b, k] - fitted[a, k]
            error = math.hypot(se_mc[a, k], se_mc[b, k])
            pairs.append({"seeds": [fits[a]["seed"], fits[b]["seed"]], "key": key, "difference": float(diff), "se_mc_of_difference": float(error),
                          "z": float(diff / error), "within_2_se": bool(abs(diff) <= 2 * se[a, k] and abs(diff) <= 2 * se[b, k])})
    return {"parameters": parameters, "pairs": pairs}


def report(args: argparse.Namespace, fits: list[dict[str, Any]], result: dict[str, Any]) -> str:
    keys = [p["key"] for p in result["parameters"]]
    lines = [f"{args.scenario} · {args.data} · {len(fits)} seeds · {args.paths} paths · at most {args.max_evaluations} evaluations · "
             f"creditsim {creditsim.__version__}", ""]
    for f in fits:
        values = "  ".join(f"{v:.4g} ± {s:.2g} (mc {m:.2g})" for v, s, m in zip(f["fitted"], f["se"], f["se_mc"], strict=True))
        lines.append(f"seed {f['seed']:>2}: {values}   cost {f['cost']:.3g}, {f['evaluations']} runs, {f['wall_s']:.1f} s, {f['message'][:24]}")
    lines += ["", f"{'parameter':<44}{'mean':>10}{'sd':>10}{'rms se_mc':>11}{'rms se':>10}{'sd/se_mc':>10}{'sd/se':>8}"]
    for p in result["parameters"]:
        lines.append(f"{p['key']:<44}{p['mean']:>10.4g}{p['sd']:>10.3g}{p['rms_se_mc']:>11.3g}{p['rms_se']:>10.3g}"
                     f"{p['sd_over_se_mc']:>10.2f}{p['sd_over_se']:>8.2f}")
    lines += ["", f"{'seeds':<8}{'parameter':<44}{'difference':>12}{'its se_mc':>11}{'z':>7}   within 2 se of each other"]
    for q in result["pairs"]:
        lines.append(f"{q['seeds'][0]}, {q['seeds'][1]:<5}{q['key']:<44}{q['difference']:>12.3g}{q['se_mc_of_difference']:>11.3g}{q['z']:>7.2f}   "
                     f"{'yes' if q['within_2_se'] else 'no'}")
    wall = sum(f["wall_s"] for f in fits)
    lines += ["", f"{wall:.0f} s in all ({wall / len(fits):.1f} s a fit); keys {', '.join(keys)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", help=f"scenario TOML file (default {SMALL.name}, with its data and keys)")
    parser.add_argument("--data", help="observations CSV (required with a scenario)")
    parser.add_argument("--fit", help="dotted keys to fit, comma-separated (required with a scenario)")
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--paths", type=int, help="paths per model run (default 40; 10 with --quick)")
    parser.add_argument("--max-evaluations", type=int, help="optimiser's budget (default 80; 40 with --quick)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field first")
    parser.add_argument("--quick", action="store_true", help="10 paths, at most 40 evaluations")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.scenario is None:
        args.scenario, args.data, args.fit = str(SMALL), args.data or str(SMALL_DATA), args.fit or SMALL_KEYS
    elif not (args.data and args.fit):
        parser.error("a scenario needs --data and --fit")
    args.paths = args.paths or (10 if args.quick else 40)
    args.max_evaluations = args.max_evaluations or (40 if args.quick else 80)
    overrides = dict(item.split("=", 1) for item in args.overrides)
    scenario = creditsim.load_scenario(args.scenario, overrides)
    keys = [key.strip() for key in args.fit.split(",") if key.strip()]
    creditsim.simulate(scenario, paths=1, seed=0, progress=False)  # compiled code loaded before timing
    fits = fit_seeds(scenario, read_observations(args.data), keys, list(range(args.first_seed, args.first_seed + args.seeds)), args.paths, args.max_evaluations)
    result = summary(keys, fits)
    if args.json:
        print(json.dumps({"scenario": args.scenario, "data": args.data, "keys": keys, "overrides": overrides, "paths": args.paths,
                          "max_evaluations": args.max_evaluations, "creditsim": creditsim.__version__, "fits": fits, **result}, ensure_ascii=False))
    else:
        print(report(args, fits, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
