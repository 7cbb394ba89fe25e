"""Throughput of the engine against the machine's own limit.

Prints, for the standard benchmark scenario (the bundled default scaled to about 1,000,000 borrowers, 36
months, every instrument on; one path), the engine's throughput in borrower-months per second and, measured in
the same process, how many uniform random numbers numpy's default generator draws per second, and the ratio
of the two.

    python benchmarks/run.py [--paths N] [--json]

A borrower-month is one borrower with a balance during one month: the sum over simulated months of the
``borrowers`` metric (bank "all").
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import numpy as np

import creditsim

#: Scale of the standard scenario relative to the bundled default (≈ 72,700 opening borrowers → ≈ 1,000,000).
STANDARD_SCALE = 13.75


def standard_scenario(scale: float = STANDARD_SCALE) -> creditsim.Scenario:
    """The bundled default with every count, amount and rate of arrival multiplied by ``scale``."""
    base = creditsim.load_scenario()
    overrides: dict[str, object] = {}
    for name, seg in base.firms.segments.items():
        overrides[f"firms.segments.{name}.firms"] = round(seg.firms * scale)
        overrides[f"firms.segments.{name}.entry_per_year"] = seg.entry_per_year * scale
        overrides[f"firms.segments.{name}.applications_per_month"] = seg.applications_per_month * scale
    for name, bank in base.banks.items():
        overrides[f"banks.{name}.all_loans"] = bank.all_loans * scale
        if bank.initial_balance is not None:
            overrides[f"banks.{name}.initial_balance"] = bank.initial_balance * scale
    for name, channel in base.campaign.channels.items():
        overrides[f"campaign.channels.{name}.reach_per_month"] = channel.reach_per_month * scale
    return creditsim.load_scenario(None, overrides)


def uniform_rate(size: int = 10_000_000, repeats: int = 5) -> float:
    """Uniform doubles per second drawn by numpy's default generator (best of several draws)."""
    rng = np.random.default_rng(0)
    out = np.empty(size)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        rng.random(out=out)
        best = min(best, time.perf_counter() - start)
    return size / best


def engine_rate(scenario: creditsim.Scenario, paths: int, seed: int = 0) -> tuple[float, float, float]:
    """(borrower-months per second, wall seconds, borrower-months) of a run of ``paths`` paths."""
    creditsim.simulate(scenario, paths=[10_000], seed=seed)  # warm up imports and caches on a discarded path
    start = time.perf_counter()
    results = creditsim.simulate(scenario, paths=paths, seed=seed)
    wall = time.perf_counter() - start
    borrower_months = float(results.values("borrowers")[:, 1:].sum())
    return borrower_months / wall, wall, borrower_months


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1, help="paths of the standard scenario (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    scenario = standard_scenario()
    uniforms = uniform_rate()
    throughput, wall, borrower_months = engine_rate(scenario, args.paths)
    record = {
        "scenario": "standard",
        "paths": args.paths,
        "borrower_months": borrower_months,
        "wall_s": round(wall, 3),
        "borrower_months_per_s": round(throughput),
        "uniform_per_s": round(uniforms),
        "ratio_to_uniform": round(throughput / uniforms, 4),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "creditsim": creditsim.__version__,
    }
    if args.json:
        print(json.dumps(record))
    else:
        print(f"standard scenario: {borrower_months / 1e6:.1f}M borrower-months in {wall:.2f} s ({args.paths} path(s))")
        print(f"engine throughput     {throughput / 1e6:10.2f} M borrower-months/s")
        print(f"numpy uniform draws   {uniforms / 1e6:10.1f} M/s")
        print(f"ratio                 {throughput / uniforms:10.4f}   (borrower-months per uniform draw time)")
        print(f"peak memory           {record['peak_rss_bytes'] / 2**20:10.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
