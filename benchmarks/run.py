"""creditsim's published performance figures: the engine against the machine's limit and against the naive peer.

    python benchmarks/run.py [--quick] [--json] [--plot FILE]

Runs the benchmark scenarios — the bundled default scaled to ``small`` (20,000 opening borrowers), ``city``
(500,000) and ``province`` (5,000,000), every instrument on (campaign, renewal, liquidity stress, a government
guarantee fund with a re-guarantor, a risk pool and an interest subsidy), 36 months, one path — plus the points
of the scaling curve (10,000 to 1,000,000 borrowers), a small book run for many paths (2,000 borrowers ×
1,000 paths) on one thread and on two, the per-loan reference engine (:mod:`creditsim.reference`) against the
fast engine on ``small-core`` (``small`` with only the instruments the reference models), and ``static-pool``
(``static-pool.toml``: 10,000 loans made at the opening, PD 2%, LGD 45%, ρ 0.12, one year, 1,000 paths). Each
measurement runs in a fresh process, so its peak memory is its own; numpy's uniform random-number rate is
measured in the same process. Every figure but the two-thread row is measured on one thread.

Prints, per scenario, the throughput in borrower-months per second, the uniform rate, the ratio of the two, the
reference speedup (``small-core`` only), wall time, peak RSS, bytes per loan and the memory estimate a run is
checked against before it starts (:mod:`creditsim.run.memory`; it should be above the peak RSS), then the
performance floors side by side. With ``--json``: one JSON object per line with keys ``scenario,
borrower_months_per_s, uniform_per_s, ratio_to_uniform, reference_speedup, wall_s, peak_rss_bytes,
bytes_per_loan, memory_estimate_bytes`` (and a few descriptive ones); the many-paths rows add
``many_paths_cost_ratio`` (their cost per borrower-month ÷ the city path's) and ``static-pool`` adds
``loan_years_per_s`` (10,000 × 1 year × 1,000 paths ÷ wall seconds), ``loan_years_ratio_to_uniform`` and
``vasicek_ks_pvalue`` (its one-year default rates against the Vasicek distribution). ``--quick`` skips
``province`` and the 1,000,000-borrower point and shortens the reference run and the many-paths runs.

Definitions
-----------
borrower-month
    One borrower with a balance during one month: the sum over simulated months of the ``borrowers`` metric
    (bank "all"), over every path.
peak RSS
    The process's resident-memory high-water mark during the run (what the imports and the scenario hold
    included).
bytes per loan
    (the run's own peak RSS − RSS just before it) ÷ the most loans outstanding in any month of any path; the
    run's peak is read from the kernel's VmHWM after resetting it (``/proc/self/clear_refs``) before the run.
    It includes the stored results and every temporary, so it is only meaningful for large books.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

import creditsim
from creditsim.run.memory import BYTES_PER_PROCESS, MAIN_BYTES, engine_bytes, main_bytes
from creditsim.scenario import scenario_from_dict
from creditsim.scenario.opening import initial_population
from creditsim.scenario.units import parse_amount, parse_count

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One measurement: a benchmark scenario of ``borrowers`` opening borrowers run for ``paths`` paths."""

    name: str
    borrowers: int
    paths: int = 1
    months: int = 36
    core: bool = False  # only the instruments the reference engine models
    reference: bool = False  # also run the reference engine on the same scenario
    curve: bool = False  # a point of the scaling curve
    threads: int = 1  # threads running the paths (the gated figures are on one)
    file: str = ""  # a scenario file in benchmarks/ instead of the benchmark scenario (borrowers and months unused)


def cases(quick: bool) -> list[Case]:
    """The measurements of a full (or ``--quick``) run, smallest first."""
    out = [
        Case("curve-10k", 10_000, curve=True),
        Case("small", 20_000, curve=True),
        Case("curve-100k", 100_000, curve=True),
        Case("city", 500_000, curve=True),
        Case("book-2k-x1000" if not quick else "book-2k-x100", 2_000, paths=1000 if not quick else 100),
        Case("book-2k-x1000-threads-2" if not quick else "book-2k-x100-threads-2", 2_000, paths=1000 if not quick else 100, threads=2),
        Case("small-core", 20_000, months=36 if not quick else 12, core=True, reference=True),
        Case("static-pool", 10_000, paths=1000, months=12, file="static-pool.toml"),  # its 10,000 opening loans
    ]
    if not quick:
        out += [Case("curve-1m", 1_000_000, curve=True), Case("province", 5_000_000, curve=True)]
    return out


# ------------------------------------------------------------------------------------------------ scenarios
def _default_data() -> dict[str, Any]:
    """The illustrative city the benchmarks have always scaled (tests/data/illustrative-city.toml; before the 嘉兴
    plan became the bundled default it was the default), so figures stay comparable across versions."""
    import tomllib

    return tomllib.loads((Path(__file__).resolve().parent.parent / "tests" / "data" / "illustrative-city.toml").read_text(encoding="utf-8"))


def benchmark_scenario(borrowers: int, months: int = 36, core: bool = False) -> creditsim.Scenario:
    """The illustrative city scaled to about ``borrowers`` opening borrowers, with every instrument on.

    Every count, amount and arrival rate is multiplied by the same factor. Added on top of the default's
    campaign, renewal and liquidity stress: a government guarantee fund (capital 1.5% of the opening balance,
    so its 10× cap binds on part of the guaranteed demand) re-guaranteed 25% by a provincial re-guarantor, a
    risk pool of 0.5% of the opening balance for credit loans, a 1-point interest subsidy for 首贷户, an opening
    NPL stock of 2% with write-off after 24 months (18 from the run's second year), a year of principal deferral
    (uptake 30%; months 7–18, or to the end of a shorter run; none in a run under a year) and half a year of relief lending (a tenth of demand's applications), and policy pressure (两增's
    yardstick for every bank, 30% growth for the first bank in the second year, or the first of a one-year run; appetite 0.3, outreach 0.5).
    ``core`` keeps only what :mod:`creditsim.reference` models: no campaign, liquidity stress, re-guarantor or
    interest subsidy, and exact beliefs with every bank lending to every grade (so no loan depends on cover).
    """
    data = _default_data()
    base = initial_population(scenario_from_dict(data))
    scale = borrowers / float(base.borrowers.sum())
    opening = float(base.opening_mean.sum()) * scale  # CNY
    for seg in data["firms"]["segments"].values():
        seg["firms"] = round(parse_count(seg["firms"]) * scale)
        seg["entry_per_year"] = seg["entry_per_year"] * scale
        seg["applications_per_month"] = seg["applications_per_month"] * scale
    for bank in data["banks"].values():
        bank["all_loans"] = parse_amount(bank["all_loans"]) * scale
    for channel in data["campaign"]["channels"].values():
        channel["reach_per_month"] = channel["reach_per_month"] * scale
    data["calendar"]["months"] = months
    data["guarantors"] = {"fund": {"capital": 0.015 * opening, "coverage": 0.8, "fee_rate": "0.8%", "fee_subsidy": "0.3%",
                                   "cost_rate": "0.3%", "claim_lag_months": 3, "reguarantee": {"provincial": 0.25}}}
    data["reguarantors"] = {"provincial": {"capital": 0.01 * opening, "fee_rate": "0.5%"}}
    data["pools"] = {"pool": {"size": 0.005 * opening, "contributions": {"government": 0.6, "bank": 0.4}, "payout_share": 0.5,
                              "annual_budget": 0.002 * opening}}
    data["interest_subsidy"] = {"rate": "1%", "first_time_only": True}
    # the mechanisms of answers that hold against the data: an opening NPL stock with faster disposal in the second
    # year, a year of principal deferral and half a year of relief lending, and policy pressure (the yardstick for
    # every bank, a mandated 30% for the first)
    first_year = int(data["calendar"]["start"][:4])
    data["risk"]["write_off_months"] = {str(first_year - 1 + k): 24 if k < 2 else 18 for k in range(months // 12 + 2)}
    for bank in data["banks"].values():
        bank["opening_npl_ratio"] = "2%"
    next(iter(data["banks"].values()))["growth_target"] = {str(first_year + min(1, (months - 1) // 12)): "30%"}
    if months >= 12:  # the windows lie in months 7–18 (a shorter warm-up run has none)
        last = min(18, months)
        data["relief"] = {"deferrals": [{"start": f"{first_year}-07", "end": f"{first_year + (last - 1) // 12}-{(last - 1) % 12 + 1:02d}", "months": 6,
                                         "uptake": 0.3}],
                          "lending": [{"start": f"{first_year}-07", "end": f"{first_year}-12",
                                       "applications_per_month": 0.1 * sum(s["applications_per_month"] for s in data["firms"]["segments"].values())}]}
    data["pressure"] = {"yardstick": True, "appetite": 0.3, "outreach": 0.5}
    if core:
        for key in ("campaign", "liquidity", "interest_subsidy", "reguarantors"):
            data.pop(key, None)
        data["guarantors"]["fund"]["reguarantee"] = {}
        data["risk"]["signal_sd"] = 0.0  # with max_pd 1 below: no lending that depends on cover
        for bank in data["banks"].values():
            bank["max_pd"] = 1.0
    return scenario_from_dict(data)


# ------------------------------------------------------------------------------------------------ measuring
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


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (``VmRSS``, ``VmHWM``), bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so the next peak is the run's own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _timed(run, scenario: creditsim.Scenario, paths: int, **options: Any) -> tuple[float, Any]:
    """(wall seconds, results) of ``run(scenario, paths=paths, seed=0, **options)``."""
    start = time.perf_counter()
    results = run(scenario, paths=paths, seed=0, **options)
    return time.perf_counter() - start, results


def _borrower_months(results: Any) -> float:
    return float(results.values("borrowers")[:, 1:].sum())


def opening_loans(scenario: creditsim.Scenario) -> int:
    """The loans a scenario opens with (one per opening borrower in a static pool: one loan per borrower)."""
    return int(initial_population(scenario).borrowers.sum())


def vasicek_ks(results: Any, scenario: creditsim.Scenario) -> float:
    """The p-value of a KS test of the paths' one-year default rates against the Vasicek distribution of the
    scenario's single segment and grade (:func:`creditsim.model.hazards.vasicek_cdf`)."""
    from scipy import stats

    from creditsim.model.hazards import vasicek_cdf

    (segment,) = scenario.firms.segments.values()
    rates = results.cumulative("defaults") / opening_loans(scenario)
    return float(stats.kstest(rates, lambda x: vasicek_cdf(x, segment.pd[0], segment.rho)).pvalue)


def measure(case: Case) -> dict[str, Any]:
    """Run one case in this process and return its record."""
    if case.file:
        scenario = creditsim.load_scenario(HERE / case.file)
        creditsim.simulate(scenario, paths=[10_000], seed=0)  # warm imports and caches
    else:
        scenario = benchmark_scenario(case.borrowers, case.months, case.core)
        creditsim.simulate(benchmark_scenario(2_000, months=3, core=case.core), paths=[10_000], seed=0)  # warm imports and caches
    uniforms = uniform_rate()
    _reset_peak()
    before = _status_bytes("VmRSS")
    wall, results = _timed(creditsim.simulate, scenario, case.paths, threads=case.threads)
    borrower_months, loans = _borrower_months(results), float(results.values("loans").max())
    peak = _status_bytes("VmHWM")
    throughput = borrower_months / wall
    record: dict[str, Any] = {
        "scenario": case.name,
        "borrower_months_per_s": round(throughput),
        "uniform_per_s": round(uniforms),
        "ratio_to_uniform": round(throughput / uniforms, 4),
        "reference_speedup": None,
        "wall_s": round(wall, 3),
        "peak_rss_bytes": peak,
        "bytes_per_loan": round((peak - before) / loans, 1),
        # what a serial run is checked against: this process simulating, and keeping the paths' metrics
        "memory_estimate_bytes": MAIN_BYTES + engine_bytes(scenario, case.threads) - BYTES_PER_PROCESS + main_bytes([scenario], case.paths),
        "borrowers": case.borrowers,
        "paths": case.paths,
        "months": case.months,
        "borrower_months": borrower_months,
        "curve": case.curve,
        "threads": case.threads,
    }
    if case.name == "static-pool":
        record["loan_years_per_s"] = round(opening_loans(scenario) * case.paths * case.months / 12 / wall)
        record["loan_years_ratio_to_uniform"] = round(record["loan_years_per_s"] / uniforms, 4)
        record["vasicek_ks_pvalue"] = round(vasicek_ks(results, scenario), 4)
    if case.reference:
        from creditsim import reference

        ref_wall, ref_results = _timed(reference.simulate, scenario, 1)
        ref_borrower_months = _borrower_months(ref_results)
        record["reference_borrower_months_per_s"] = round(ref_borrower_months / ref_wall)
        record["reference_wall_s"] = round(ref_wall, 3)
        record["reference_speedup"] = round(throughput / (ref_borrower_months / ref_wall), 1)
    record.update(python=platform.python_version(), numpy=np.__version__, numba=numba.__version__, creditsim=creditsim.__version__)
    return record


def child_env(**more: str) -> dict[str, str]:
    """The environment of a benchmark's child process: this one's and ``more``, with the benchmarks directory put
    before the caller's ``PYTHONPATH`` (so a worktree's benchmark measures that worktree's creditsim)."""
    return {**os.environ, **more, "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])}


def measure_in_child(case: Case) -> dict[str, Any]:
    """Run one case in a fresh Python process (so peak memory is the case's own)."""
    args = [sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(case.__dict__)]
    out = subprocess.run(args, capture_output=True, text=True, env=child_env())
    if out.returncode != 0:
        raise SystemExit(f"benchmark case {case.name} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ reporting
def goals(records: list[dict[str, Any]]) -> list[str]:
    """The engine's performance floors (one thread, every instrument on), each with the measured figure."""
    by = {r["scenario"]: r for r in records}
    lines = []
    for name, floor in (("small", 0.08), ("city", 0.15), ("province", 0.15)):
        if name in by:
            ratio = by[name]["ratio_to_uniform"]
            lines.append(f"throughput / uniform rate on {name} ≥ {floor}: {ratio:.3f} ({'met' if ratio >= floor else 'not met'})")
    if "small-core" in by:
        speedup = by["small-core"]["reference_speedup"]
        lines.append(f"speedup over the reference engine ≥ 300 (aim 1000): {speedup:.0f}× ({'met' if speedup >= 300 else 'not met'})")
    book = next((r for r in records if r["scenario"].startswith("book-") and r["threads"] == 1), None)
    if book and "many_paths_cost_ratio" in book:
        ratio = book["many_paths_cost_ratio"]
        lines.append(f"many small paths ({book['scenario']}) ÷ one city path, cost per borrower-month ≤ 2: {ratio:.2f} ({'met' if ratio <= 2 else 'not met'})")
    threaded = next((r for r in records if r["scenario"].startswith("book-") and r["threads"] > 1), None)
    if book and threaded:
        lines.append(f"threads (reported, not gated): {threaded['threads']} threads run {threaded['scenario']} {book['wall_s'] / threaded['wall_s']:.2f}× as fast as one")
    curve = sorted((r for r in records if r["curve"]), key=lambda r: r["borrowers"])
    big = [r for r in curve if r["borrowers"] >= 100_000]
    if len(big) >= 2 and "province" in by:
        cost = np.array([1.0 / r["borrower_months_per_s"] for r in big])
        low, high = cost.min() / np.median(cost) - 1.0, cost.max() / np.median(cost) - 1.0
        met = -0.3 <= low and high <= 0.3
        lines.append(f"cost per borrower-month within ±30% of the median from 10⁵ to 5×10⁶ borrowers: {low:+.0%} to {high:+.0%} ({'met' if met else 'not met'})")
        smallest = curve[0]
        at_10k = (1.0 / smallest["borrower_months_per_s"]) / np.median(cost)
        lines.append(f"cost at {smallest['borrowers']:,} borrowers within 2× of that median: {at_10k:.2f}× ({'met' if 0.5 <= at_10k <= 2 else 'not met'})")
        peak = by["province"]["peak_rss_bytes"] / 2**30
        lines.append(f"province peak memory ≤ 2 GiB: {peak:.2f} GiB ({'met' if peak <= 2 else 'not met'})")
    if "static-pool" in by:
        pool = by["static-pool"]
        ratio = pool["loan_years_ratio_to_uniform"]
        lines.append(f"static pool: loan-years per second ≥ 0.05 × the uniform rate: {pool['loan_years_per_s'] / 1e6:.1f} M/s, {ratio:.3f} "
                     f"({'met' if ratio >= 0.05 else 'not met'}); KS against Vasicek p = {pool['vasicek_ks_pvalue']:.3f}")
    return lines


def plot(records: list[dict[str, Any]], path: Path) -> None:
    """Seconds per borrower-month against borrowers (the scaling curve), written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = sorted((r for r in records if r["curve"]), key=lambda r: r["borrowers"])
    x = [r["borrowers"] for r in curve]
    y = [1e9 / r["borrower_months_per_s"] for r in curve]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x, y, "o-", label="fast engine, one path")
    median = float(np.median(y))
    ax.axhspan(0.7 * median, 1.3 * median, color="0.9", label="±30% of the median")
    two_draws = 2e9 / curve[0]["uniform_per_s"]
    ax.axhline(two_draws, color="C2", ls="--", label="two uniform draws (goal)")
    for r in records:
        if r["scenario"].startswith("book-"):
            ax.plot([r["borrowers"]], [1e9 / r["borrower_months_per_s"]], "s", color="C3", label=f"{r['paths']} paths of {r['borrowers']:,}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("opening borrowers")
    ax.set_ylabel("ns per borrower-month")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip province and the 1M point; shorter reference and many-paths runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object per scenario")
    parser.add_argument("--plot", type=Path, help="write the scaling curve to this PNG file")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: measure one case in this process
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(measure(Case(**json.loads(args.case)))))
        return 0
    records = []
    if not args.json:
        print(f"{'scenario':<14} {'borrowers':>10} {'paths':>5} {'wall s':>8} {'bm/s':>9} {'uniform/s':>10} {'ratio':>7} {'vs ref':>7} {'peak RSS':>9} {'B/loan':>7} {'estimate':>9}")
    for case in cases(args.quick):
        r = measure_in_child(case)
        city = next((x for x in records if x["scenario"] == "city"), None)
        if case.name.startswith("book-") and city:
            r["many_paths_cost_ratio"] = round(city["borrower_months_per_s"] / r["borrower_months_per_s"], 3)
        records.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            ref = f"{r['reference_speedup']:.0f}×" if r["reference_speedup"] else ""
            print(f"{r['scenario']:<14} {r['borrowers']:>10,} {r['paths']:>5} {r['wall_s']:>8.2f} {r['borrower_months_per_s'] / 1e6:>8.1f}M "
                  f"{r['uniform_per_s'] / 1e6:>9.0f}M {r['ratio_to_uniform']:>7.4f} {ref:>7} {r['peak_rss_bytes'] / 2**20:>7.0f}Mi {r['bytes_per_loan']:>7.0f} {r['memory_estimate_bytes'] / 2**20:>7.0f}Mi",
                  flush=True)
    if not args.json:
        print()
        print("\n".join(goals(records)))
    if args.plot:
        plot(records, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
