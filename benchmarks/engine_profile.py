"""Where a path's time goes in the compiled engine: shares of a sampling profile by compiled function.

    python benchmarks/engine_profile.py [--paths 60] [--top 20]

Runs the bundled 嘉兴 plan (its 1:10 sample) on one thread under ``perf record`` (Debian's ``linux-perf``; a software
clock, so it works where the hardware counters are not exposed). perf cannot name the functions numba compiles, so
this process compiles the engine afresh (in a temporary cache: the compiled modules are then at hand), writes their
addresses to ``/tmp/perf-PID.map`` (perf's map of code made at run time) and reads the report back, adding up the
samples of each function (a function compiled into several callers is counted once). Shares are of the samples taken
in this process while the paths ran, so the Python around them and the compile are left out.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

_CACHE = tempfile.mkdtemp(prefix="creditsim-profile-")
os.environ["NUMBA_CACHE_DIR"] = _CACHE  # compile afresh: a module loaded from the cache does not keep its functions' names

from creditsim.model import month  # noqa: E402
from creditsim.model.engine import run_task  # noqa: E402
from creditsim.scenario import load_scenario  # noqa: E402


def _name(symbol: str) -> str:
    """``creditsim.model.maturity.repay`` from a numba symbol (an Itanium-mangled nested name), else the symbol."""
    if "_ZN" not in symbol:
        return symbol[:80]
    rest, parts = symbol[symbol.index("_ZN") + 3 :], []
    while rest[:1].isdigit():
        digits = re.match(r"\d+", rest).group()
        size = int(digits)
        parts.append(rest[len(digits) : len(digits) + size])
        rest = rest[len(digits) + size :]
    return ".".join(parts) or symbol[:80]


def write_map(path: str) -> int:
    """Write perf's map of every function compiled for the engine's entry point; returns how many."""
    seen: set[int] = set()
    entries: list[tuple[int, str]] = []

    def walk(library) -> None:
        if id(library) in seen:
            return
        seen.add(id(library))
        for function in library._final_module.functions:
            if not function.is_declaration:
                address = library.get_pointer_to_function(function.name)
                if address:
                    entries.append((address, _name(function.name)))
        for linked in getattr(library, "_linking_libraries", []):
            walk(linked)

    for overload in month.run_paths.overloads.values():
        walk(overload.library)
    entries.sort()
    with open(path, "w", encoding="utf-8") as out:
        for (address, name), following in zip(entries, [*entries[1:], (entries[-1][0] + 4096, "")], strict=True):
            out.write(f"{address:x} {max(following[0] - address, 1):x} {name}\n")
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=60)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if shutil.which("perf") is None:
        print("engine_profile.py: needs perf (Debian's linux-perf)", file=sys.stderr)
        return 2
    scenario = load_scenario(None)
    run_task(scenario, 0, range(1))  # compiles
    perf_map = f"/tmp/perf-{os.getpid()}.map"
    functions = write_map(perf_map)
    data = os.path.join(_CACHE, "perf.data")
    recorder = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", "-p", str(os.getpid()), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # perf attaches
    start = time.perf_counter()
    run_task(scenario, 0, range(1, args.paths + 1))
    elapsed = time.perf_counter() - start
    recorder.send_signal(2)
    recorder.wait()
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio"], capture_output=True, text=True,
                            check=True).stdout
    shares: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        found = re.match(r"\s*([\d.]+)%\s+\[\.\]\s+(.+?)(?:\s+-\s+-)?\s*$", line)
        if found:
            shares[found.group(2)] += float(found.group(1))
    os.remove(perf_map)
    shutil.rmtree(_CACHE, ignore_errors=True)
    total = sum(shares.values())
    print(f"{scenario.name}: {args.paths} paths on one thread in {elapsed:.2f} s ({1000 * elapsed / args.paths:.1f} ms a path); "
          f"{functions} compiled functions mapped; shares of the samples in user code:")
    for name, share in shares.most_common(args.top):
        print(f"{100 * share / total:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
