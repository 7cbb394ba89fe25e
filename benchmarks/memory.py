"""Peak memory of each process of a run that writes everything, against the estimate it is checked against.

    python benchmarks/memory.py [--paths 2000] [--scenario FILE] [--workers 2] [--repeat 3] [--json]

Does what ``creditsim run SCENARIO --paths N --workers W --trace 0 --out DIR --report FILE --xlsx FILE --csv DIR``
does, step by step, in a fresh Python process per repetition: ``simulate`` (the workers simulate, the main process
gathers), the printed summary, ``Results.save``, the HTML report, the Excel workbook and the CSV tables. Reported
per step: the main process's peak resident memory during it (``VmHWM``, reset before the step through
``/proc/self/clear_refs``) and that peak less its resident memory before the step; the largest peak of any worker
(``RUSAGE_CHILDREN``, read once the workers have exited, before the report runs ``fc-list``, whose peak is counted
as the main process's resident memory when it was started); the results' bytes; and where this creditsim has them the
estimates of :mod:`creditsim.run.memory` (``MAIN_BYTES + main_bytes`` for the main process, ``engine_bytes``
for a worker). With ``--repeat`` the medians. The bundled default scenario when ``--scenario`` is not given.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPS = ("simulate", "summary", "save", "report", "workbook", "csv")
MIB = 1024**2


def _status(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def measure(paths: int, scenario_file: str | None, workers: int) -> dict[str, Any]:
    """One run, in this process: per step the main process's peak and its rise, then the workers' peak."""
    import creditsim
    from creditsim.present.cli import format_summary
    from creditsim.present.report import write_report
    from creditsim.run import memory

    scenario = creditsim.load_scenario(scenario_file)
    record: dict[str, Any] = {"paths": paths, "workers": workers, "import_peak": _status("VmHWM"),
                              "results_bytes": memory.results_bytes(scenario, paths)}
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        results = None

        def simulate() -> None:
            nonlocal results
            results = creditsim.simulate(scenario, paths=paths, seed=0, progress=False, workers=workers, trace=[0])

        actions = {"simulate": simulate, "summary": lambda: format_summary(results), "save": lambda: results.save(out / "results"),
                   "report": lambda: write_report(results, out / "report.html"), "workbook": lambda: results.to_excel(out / "tables.xlsx"),
                   "csv": lambda: results.to_csv(out / "csv")}
        for step in STEPS:
            Path("/proc/self/clear_refs").write_text("5")
            before, start = _status("VmRSS"), time.perf_counter()
            actions[step]()
            record[f"{step}_peak"] = _status("VmHWM")
            record[f"{step}_rise"] = record[f"{step}_peak"] - before
            record[f"{step}_s"] = round(time.perf_counter() - start, 1)
            if step == "simulate":  # the workers have exited; later children (the report's fc-list) are forks of this process
                record["worker_peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    record["main_peak"] = max(record[f"{step}_peak"] for step in ("import", *STEPS))
    if hasattr(memory, "main_bytes"):
        record["main_estimate"] = memory.MAIN_BYTES + memory.main_bytes([scenario], paths, traced=1)
        record["worker_estimate"] = memory.engine_bytes(scenario, 1, traced=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, default=2000)
    parser.add_argument("--scenario")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.paths, args.scenario, args.workers)))
        return
    command = [sys.executable, __file__, "--child", "--paths", str(args.paths), "--workers", str(args.workers)]
    command += ["--scenario", args.scenario] if args.scenario else []
    runs = [json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout) for _ in range(args.repeat)]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    if args.json:
        print(json.dumps(medians))
        return
    print(f"{args.paths} paths, {args.workers} workers, path 0 traced; medians of {len(runs)} run(s); results {medians['results_bytes'] / MIB:,.0f} MiB")
    print(f"{'step':<10}{'main peak MiB':>15}{'rise MiB':>10}{'s':>8}")
    print(f"{'import':<10}{medians['import_peak'] / MIB:>15,.0f}")
    for step in STEPS:
        print(f"{step:<10}{medians[f'{step}_peak'] / MIB:>15,.0f}{medians[f'{step}_rise'] / MIB:>10,.0f}{medians[f'{step}_s']:>8}")
    for who in ("main", "worker"):
        estimate = medians.get(f"{who}_estimate")
        shown = f"; estimate {estimate / MIB:,.0f} MiB ({medians[f'{who}_peak'] / estimate:.2f} of it)" if estimate else ""
        print(f"{who} process peak {medians[f'{who}_peak'] / MIB:,.0f} MiB{shown}")


if __name__ == "__main__":
    main()
