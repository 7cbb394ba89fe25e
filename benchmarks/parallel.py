"""Speed-up and memory of the backends: one process against two local workers and a two-worker Dask LocalCluster.

    python benchmarks/parallel.py [--paths 200] [--borrowers 100000] [--json]

Runs ``benchmark_scenario(borrowers)`` (``run.py``: the illustrative city scaled to that many opening borrowers,
every instrument on, 36 months) for ``paths`` paths, seed 0, each configuration in a fresh Python process:

* ``serial``: this process, one path after another;
* ``processes-2``: two local worker processes (``workers=2``);
* ``dask-2``: a ``dask.distributed.LocalCluster`` of two single-threaded worker processes on loopback;
* ``processes-2`` again with a quarter of the paths and with 3.2 times the paths (so that tasks reach their
  largest size, 32 paths), to show that a worker's memory does not grow with the number of paths.

Wall time includes starting the workers (and the cluster). Reported per configuration: wall seconds, paths per
second, borrower-months per second, the speed-up over ``serial``, the peak RSS of the main process and the largest
peak RSS of any worker process (``RUSAGE_CHILDREN``, read after the workers have exited). Every configuration's
metrics are checked to be bit-identical to the serial run's (by a SHA-256 of the metric arrays).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run import child_env


def measure(config: str, borrowers: int, paths: int) -> dict[str, Any]:
    """Run one configuration in this process and return its record."""
    from run import benchmark_scenario

    import creditsim

    scenario = benchmark_scenario(borrowers)
    creditsim.simulate(benchmark_scenario(2_000, months=3), paths=[10_000], seed=0, progress=False)  # warm imports and kernels
    kwargs: dict[str, Any] = {"serial": {}, "processes-2": {"workers": 2}, "dask-2": {"backend": "dask", "workers": 2}}[config]
    start = time.perf_counter()
    results = creditsim.simulate(scenario, paths=paths, seed=0, progress=False, **kwargs)
    wall = time.perf_counter() - start
    digest = hashlib.sha256(b"".join(results.groups[scope].tobytes() for scope in sorted(results.groups))).hexdigest()
    borrower_months = float(results.values("borrowers")[:, 1:].sum())
    return {
        "config": config, "borrowers": borrowers, "paths": paths, "wall_s": round(wall, 2), "paths_per_s": round(paths / wall, 3),
        "borrower_months_per_s": round(borrower_months / wall), "main_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "worker_peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 if config != "serial" else None,
        "metrics_sha256": digest, "cpus": len(os.sched_getaffinity(0)),
    }


def measure_in_child(config: str, borrowers: int, paths: int) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).resolve()), "--config", config, "--borrowers", str(borrowers), "--paths", str(paths)]
    out = subprocess.run(args, capture_output=True, text=True, env=child_env())
    if out.returncode != 0:
        raise SystemExit(f"{config} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--borrowers", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="one JSON object per configuration")
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.config:
        print(json.dumps(measure(args.config, args.borrowers, args.paths)))
        return 0
    runs = [("serial", args.paths), ("processes-2", args.paths), ("dask-2", args.paths), ("processes-2", max(args.paths // 4, 2)),
            ("processes-2", round(args.paths * 3.2))]
    records = [measure_in_child(config, args.borrowers, paths) for config, paths in runs]
    serial = records[0]
    for r in records:
        r["speedup"] = round(serial["wall_s"] / r["wall_s"] * r["paths"] / serial["paths"], 2)
        r["identical_to_serial"] = r["metrics_sha256"] == serial["metrics_sha256"] if r["paths"] == serial["paths"] else None
    if args.json:
        for r in records:
            print(json.dumps(r))
        return 0
    print(f"{args.borrowers:,} opening borrowers, 36 months, seed 0, {records[0]['cpus']} cores")
    print(f"{'config':<13}{'paths':>6}{'wall s':>9}{'paths/s':>9}{'bm/s':>9}{'speed-up':>10}{'main RSS':>10}{'worker RSS':>12}  identical")
    for r in records:
        worker = f"{r['worker_peak_rss_bytes'] / 2**20:.0f} MiB" if r["worker_peak_rss_bytes"] else "–"
        same = {True: "yes", False: "NO", None: "–"}[r["identical_to_serial"]]
        print(f"{r['config']:<13}{r['paths']:>6}{r['wall_s']:>9.1f}{r['paths_per_s']:>9.2f}{r['borrower_months_per_s'] / 1e6:>8.1f}M"
              f"{r['speedup']:>9.2f}×{r['main_peak_rss_bytes'] / 2**20:>6.0f} MiB{worker:>12}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
