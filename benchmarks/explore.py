"""How fast the explorer answers a lever: from the lever's change to the first (partial) results on the page, and to
all the paths.

    python benchmarks/explore.py [--paths 200] [--repeats 5] [--json]

The page of ``creditsim explore`` on the bundled 嘉兴 plan (its sample, 1:10), driven in this process as the server
drives it: the baseline is run first (and kept); then the county guarantor's fee is set to a new value each time
(1.1%, 1.0%, … — never a variant run before), and the clock runs from setting the lever to the page showing the first
batch (tables and chart drawn, marked partial) and to the page showing every path. Going back to a variant seen
before is timed too, and so is a change of seed (nothing kept: the baseline's and the variant's paths run in the
same batches), and so are the two shares of the time: the engine alone (new variants' paths run without the
page, on the same threads and on one), a lever check and a redraw of the page. The browser's share (a websocket message each way
on 127.0.0.1) is not counted. numpy's uniform rate, measured before and after, says how fast the shared machine was
meanwhile (see RESULTS.md, "Machine").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from run import uniform_rate

from creditsim.present.app import ExplorerPage
from creditsim.present.explorer import FIRST_PATHS, Explorer

LEVER = "guarantors.county.fee_rate"


def shown(page: ExplorerPage, variant: str, complete: bool, seed: int = 0, timeout: float = 600.0) -> None:
    """Refresh the page as its periodic callback does (every 10 ms here) until it shows a first batch of the variant
    made by the ``--set`` text ``variant`` with ``seed`` (or every path of it, with ``complete``)."""
    start = time.perf_counter()
    while True:
        page.refresh()
        text = page.status.object or ""
        if f"seed {seed} · variant: {variant}" in text and ("partial" not in text if complete else True):
            return
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"the page still says {text!r}")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    threads = len(os.sched_getaffinity(0))
    rates = [uniform_rate()]  # the machine's speed (shared, it moves): numpy's uniform rate before and after
    explorer = Explorer(None, paths=args.paths, seed=0, threads=threads)
    page = ExplorerPage(explorer)
    start = time.perf_counter()
    baseline = explorer.run(explorer.scenario)
    warm = time.perf_counter() - start
    first, complete = [], []
    for i in range(args.repeats):
        fee = round(1.1 - 0.1 * i, 2)
        t0 = time.perf_counter()
        page.move(LEVER, fee)  # checks the levers and starts the run, as letting the slider go in the browser does
        shown(page, f"{LEVER}={fee:g}%", complete=False)
        first.append(time.perf_counter() - t0)
        shown(page, f"{LEVER}={fee:g}%", complete=True)
        complete.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    page.move(LEVER, 1.1)  # seen before: kept
    shown(page, f"{LEVER}=1.1%", complete=True)
    back = time.perf_counter() - t0
    t0 = time.perf_counter()
    page.seed.value = 1  # a new seed: neither the baseline nor the variant is kept, and both run in the same batches
    shown(page, f"{LEVER}=1.1%", complete=False, seed=1)
    seed_first = time.perf_counter() - t0
    shown(page, f"{LEVER}=1.1%", complete=True, seed=1)
    seed_complete = time.perf_counter() - t0
    checks = []
    for i in range(10):  # a lever check, as the page makes one when a lever is let go: every lever read as --set reads it
        values = {**page.values(), LEVER: f"{0.4 + 0.01 * i:g}%"}
        t0 = time.perf_counter()
        explorer.variant(values)
        explorer.overrides(values)
        checks.append(time.perf_counter() - t0)
    redraws = []
    for _ in range(3):  # the page's share: a redraw of every table and the chart, all paths in
        t0 = time.perf_counter()
        page.show(page.comparison, True, page.moved)
        redraws.append(time.perf_counter() - t0)
    engine = []
    for fee in ("0.55%", "0.45%"):  # the engine's share: new variants' paths run without the page
        t0 = time.perf_counter()
        explorer.run(explorer.variant({LEVER: fee}))
        engine.append(time.perf_counter() - t0)
    one = Explorer(None, paths=args.paths, seed=0, threads=1)
    t0 = time.perf_counter()
    one.run(one.variant({LEVER: "0.35%"}), paths=50)
    per_path = (time.perf_counter() - t0) / 50
    rates.append(uniform_rate())
    result = {
        "uniform_rate_M_per_s": [round(r / 1e6) for r in rates],
        "engine_s": [round(v, 2) for v in engine], "one_thread_ms_per_path": round(1000 * per_path, 1),
        "redraw_median_s": round(statistics.median(redraws), 3), "lever_check_median_ms": round(1000 * statistics.median(checks), 1),
        "scenario": explorer.scenario.name, "paths": args.paths, "first_paths": FIRST_PATHS, "threads": threads, "baseline_s": round(warm, 2),
        "baseline_paths": baseline.paths, "first_s": [round(v, 3) for v in first], "complete_s": [round(v, 3) for v in complete],
        "first_median_s": round(statistics.median(first), 3), "complete_median_s": round(statistics.median(complete), 3), "back_s": round(back, 3),
        "new_seed_first_s": round(seed_first, 3), "new_seed_complete_s": round(seed_complete, 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['scenario']}, {args.paths} paths, {threads} threads; the baseline (compiling on a first run) {warm:.1f} s; "
              f"numpy's uniform rate {rates[0] / 1e6:.0f} M/s before, {rates[1] / 1e6:.0f} M/s after")
        print(f"lever → first {FIRST_PATHS} paths shown: median {result['first_median_s']:.2f} s (min {min(first):.2f}, max {max(first):.2f}) over {args.repeats}")
        print(f"lever → all {args.paths} paths shown:  median {result['complete_median_s']:.2f} s (min {min(complete):.2f}, max {max(complete):.2f})")
        print(f"back to a variant seen before: {back:.3f} s")
        print(f"a new seed (baseline and variant both run): first {FIRST_PATHS} paths shown {seed_first:.2f} s, all {args.paths} {seed_complete:.2f} s")
        print(f"the engine alone, all {args.paths} paths of a new variant: {', '.join(f'{v:.2f}' for v in engine)} s; "
              f"one thread: {1000 * per_path:.0f} ms a path (50 paths)")
        print(f"a redraw of the page, all paths in: median {result['redraw_median_s']:.2f} s of 3")
        print(f"a lever check (every lever read as --set reads it): median {result['lever_check_median_ms']:.0f} ms of 10")
    return 0


if __name__ == "__main__":
    sys.exit(main())
