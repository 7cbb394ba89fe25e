"""The feasibility tables of scenarios/README.md, from runs of 1000 paths, seed 0.

    python scenarios/feasibility.py [NAME ...] [--check] [--write] [--verbose] [--paths N]

For each plan scenario (``zhejiang-2018``, ``hangzhou-2018``, ``zhejiang-chuying-2019``, ``jiaxing-2021``,
``wenzhou-2025``, or the ones named), runs ``scenarios/NAME.toml`` for 1000 paths with seed 0 in this process
(serially: the run ``creditsim run scenarios/NAME.toml --paths 1000`` makes, so the figures are the ones it
prints) and prints, in the README's format, the table of targets (P(met) with its Wilson 95% interval, the
median and 5–95% band of the measured quantity, the threshold), the table of 两增 and 两控 at year-ends (P(pass)
by bank and year, a year without a numeric test left out) and the figures the notes beside them quote, each a
median over paths (:func:`quoted_figures`). Each run is timed: the wall time of :func:`creditsim.simulate`
alone (loading the scenario left out; the first run after installation also compiles the kernels).

With ``--check``, each target's P(met) is compared with the README's table as it is, by a two-sided
two-proportion z-test (:func:`two_proportion_test`; the README's runs have 1000 paths too), and the targets
whose difference is significant at 1% after a Bonferroni correction over all the targets compared are printed
(every comparison with ``--verbose``); the exit status is 1 if there is any. With ``--write``, the README's feasibility tables, the run times in their
headings and the date and commit of the runs (in the paragraph above the plans) are replaced in place, the
file written atomically; with both, the comparison is with the README before it is written. ``--write`` needs
the published settings (1000 paths).

Notes
-----
The README's prose quotes figures from these runs too (growth rates, medians, counts); the script does not
edit prose. It prints those figures per scenario, for whoever updates the notes.

Exit status: 0, or 1 when ``--check`` finds a significant difference, or 2 for a README whose tables cannot be
found or do not list the scenario's targets.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from creditsim import Results, load_scenario, simulate
from creditsim.files import write_file
from creditsim.metrics import metric
from creditsim.results.results import ALL
from creditsim.scenario.units import format_value

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"

#: The plan scenarios with a feasibility table in the README, in its order.
PLANS = ["zhejiang-2018", "hangzhou-2018", "zhejiang-chuying-2019", "jiaxing-2021", "wenzhou-2025"]
#: The published settings.
PATHS, SEED = 1000, 0
#: The family-wise significance level of ``--check``.
ALPHA = 0.01

TWO_HEADING = "两增 and 两控 at year-ends, P(pass) by bank (a year without a numeric test is left out):"
DATED = re.compile(r"\(\d{4}-\d{2}-\d{2}, at commit [0-9a-f]{7,40}\)")
TARGET_ROW = re.compile(r"^\| `(\w+)` \| (?:(\d\.\d{3}) \[[^]]*\]|not assessed[^|]*) \|[^|]*\| *([^|]*?) *\|$")


@dataclass(frozen=True)
class Run:
    """One scenario's run: its name, results and the wall time of the simulation in seconds."""

    name: str
    results: Results
    seconds: float


@dataclass(frozen=True)
class Difference:
    """One target's P(met) in the README (``old``) and in the new run (``new``), with the z statistic and the
    two-sided p-value of their difference."""

    scenario: str
    target: str
    old: float
    new: float
    z: float
    p_value: float


def run_plan(name: str, paths: int = PATHS, seed: int = SEED) -> Run:
    """Run ``scenarios/NAME.toml`` as ``creditsim run scenarios/NAME.toml --paths PATHS --seed SEED`` does.

    Parameters
    ----------
    name : str
        A plan scenario's file name without ``.toml``.
    paths, seed : int

    Returns
    -------
    Run
    """
    scenario = load_scenario(HERE / f"{name}.toml", [])
    start = time.perf_counter()
    results = simulate(scenario, paths=paths, seed=seed, progress=False, backend="serial", workers=1)
    return Run(name, results, time.perf_counter() - start)


def heading(run: Run) -> str:
    """The line above a scenario's target table: the command, and how long the run took."""
    return (f"Feasibility, {run.results.paths} paths, seed {run.results.seed} (`creditsim run scenarios/{run.name}.toml "
            f"--paths {run.results.paths}`, {run.seconds:.0f} s on this machine):")


def target_table(results: Results) -> list[str]:
    """The Markdown table of a run's targets: P(met) [Wilson 95% CI], median (5–95%), threshold."""
    lines = ["| target | P(met) [95% CI] | median (5–95%) | threshold |", "|---|---|---|---|"]
    for row in results.targets().itertuples():
        if row.note:
            lines.append(f"| `{row.target}` | {row.note} | | |")
            continue
        unit = metric(row.metric).unit
        probability = f"{row.probability:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"
        median = f"{format_value(row.median, unit)} ({format_value(row.p5, unit)} – {format_value(row.p95, unit)})"
        lines.append(f"| `{row.target}` | {probability} | {median} | {row.comparison} {format_value(row.threshold, unit)} |")
    return lines


def assessment_table(results: Results) -> list[str]:
    """The Markdown table of 两增 and 两控 at year-ends: P(pass) by bank (rows, "all" last) and year and test
    (columns; a year without a numeric test has no column)."""
    table = results.two_increases()
    year_end = table[table["date"].str.endswith("-12") & table["check"].isin(["两增", "两控"])]
    columns = [(year, check) for year in sorted(year_end["year"].unique()) for check in ("两增", "两控")
               if ((year_end["year"] == year) & (year_end["check"] == check)).any()]
    probability = year_end.set_index(["bank", "year", "check"])["probability"]
    lines = ["| bank | " + " | ".join(f"{year} {check}" for year, check in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for bank in results.banks:
        cells = [f"{probability[(bank, year, check)]:.2f}" if (bank, year, check) in probability.index else "–" for year, check in columns]
        lines.append(f"| {bank} | " + " | ".join(cells) + " |")
    return lines


def quoted_figures(results: Results) -> list[str]:
    """The figures the README's notes quote, each the median over paths: year-end on year-end growth of the
    inclusive (普惠型) book, all small-micro loans and all loans; the inclusive book, small-micro loans and credit
    (信用) loans at the opening and the end; the inclusive NPL ratio, the renewal balance and its share of the inclusive book at the
    end; 首贷户 a month."""
    dates = results.dates
    ends = [i for i, d in enumerate(dates) if d.endswith("-12")]
    last = len(dates) - 1
    series = {name: results.series(name, ALL)
              for name in ("balance", "small_micro_balance", "credit_loan_balance", "all_loans_balance", "renewal_balance", "npl_ratio")}
    median = lambda v: float(np.nanmedian(v))  # noqa: E731
    lines = []
    for before, after in itertools.pairwise(ends):
        growth = {name: median(series[name][:, after] / series[name][:, before] - 1)
                  for name in ("balance", "small_micro_balance", "all_loans_balance")}
        lines.append(f"  growth {dates[after][:4]}: inclusive book {100 * growth['balance']:.1f}%, small-micro loans "
                     f"{100 * growth['small_micro_balance']:.1f}%, all loans {100 * growth['all_loans_balance']:.1f}%")
    for name, label in (("balance", "inclusive book"), ("small_micro_balance", "small-micro loans"), ("credit_loan_balance", "credit loans")):
        lines.append(f"  {label}: {format_value(median(series[name][:, 0]), 'CNY')} at {dates[0]}, "
                     f"{format_value(median(series[name][:, last]), 'CNY')} at {dates[last]}")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = series["renewal_balance"][:, last] / series["balance"][:, last]
    lines.append(f"  at {dates[last]}: NPL ratio {100 * median(series['npl_ratio'][:, last]):.2f}%, renewal balance "
                 f"{format_value(median(series['renewal_balance'][:, last]), 'CNY')} ({100 * median(share):.1f}% of the inclusive book)")
    first_time = results.cumulative("first_time_borrowers", ALL) / last
    lines.append(f"  首贷户 a month: {median(first_time):,.0f} ({dates[1]} to {dates[last]})")
    return lines


def two_proportion_test(k_old: int, n_old: int, k_new: int, n_new: int) -> tuple[float, float]:
    """Two-sided z-test of equal proportions with the pooled variance.

    Parameters
    ----------
    k_old, n_old, k_new, n_new : int
        Successes and trials of the two samples.

    Returns
    -------
    z, p_value : float
        ``(p_new − p_old) / sqrt(p̄(1 − p̄)(1/n_old + 1/n_new))`` and its two-sided normal p-value; 0 and 1 when
        the pooled proportion p̄ is 0 or 1 (no difference is possible).
    """
    pooled = (k_old + k_new) / (n_old + n_new)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    z = (k_new / n_new - k_old / n_old) / math.sqrt(pooled * (1 - pooled) * (1 / n_old + 1 / n_new))
    return z, math.erfc(abs(z) / math.sqrt(2))


class ReadmeError(Exception):
    """The README has no feasibility table of a scenario where one is expected, or it lists other targets."""


@dataclass(frozen=True)
class Blocks:
    """Line numbers (0-based, end exclusive) of a scenario's feasibility heading and tables in the README."""

    heading: int
    table_end: int
    two_end: int | None  # the end of the 两增/两控 table, None when the README has none


def find_blocks(lines: list[str], name: str) -> Blocks:
    """Where the README's feasibility heading and tables of scenario ``name`` are (the ``### `NAME.toml```
    section's line starting "Feasibility, ", the table after it and the 两增/两控 table after that, if any)."""
    try:
        start = lines.index(f"### `{name}.toml`")
    except ValueError:
        raise ReadmeError(f"{README}: no section ### `{name}.toml`") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### "))), len(lines))
    found = next((i for i in range(start, end) if lines[i].startswith("Feasibility, ")), None)
    if found is None or not lines[found + 2].startswith("| target | P(met)"):
        raise ReadmeError(f"{README}: no feasibility table in the section of {name}")
    table_end = next(i for i in range(found + 2, end + 1) if i == end or not lines[i].startswith("|"))
    two = next((i for i in range(table_end, end) if lines[i] == TWO_HEADING), None)
    if two is None:
        return Blocks(found, table_end, None)
    two_end = next(i for i in range(two + 2, end + 1) if i == end or not lines[i].startswith("|"))
    return Blocks(found, table_end, two_end)


def published(lines: list[str], blocks: Blocks) -> dict[str, tuple[float | None, str]]:
    """The README's P(met) (None for a target not assessed) and threshold of each target in a table."""
    rows: dict[str, tuple[float | None, str]] = {}
    for line in lines[blocks.heading + 4 : blocks.table_end]:
        row = TARGET_ROW.match(line)
        if row is None:
            raise ReadmeError(f"{README}: cannot read the row {line!r}")
        rows[row.group(1)] = (None if row.group(2) is None else float(row.group(2)), row.group(3))
    return rows


def check(lines: list[str], runs: Sequence[Run]) -> list[Difference]:
    """Each assessed target's P(met) in the README against the new run's.

    Returns
    -------
    list of Difference
        One per target assessed in both (their number is the Bonferroni divisor of the test's level).

    Raises
    ------
    ReadmeError
        When a table lists other targets or thresholds than the run.
    """
    differences = []
    for run in runs:
        old = published(lines, find_blocks(lines, run.name))
        table = run.results.targets()
        new = {row.target: row for row in table.itertuples()}
        if list(old) != list(new):
            raise ReadmeError(f"{README}: the table of {run.name} lists {list(old)}, the scenario {list(new)}")
        for name, (p_old, threshold) in old.items():
            row = new[name]
            if threshold and threshold != f"{row.comparison} {format_value(row.threshold, metric(row.metric).unit)}":
                raise ReadmeError(f"{README}: {run.name}.{name}: threshold {threshold!r} in the README, the scenario's differs")
            if p_old is None or row.note:
                continue
            k_old, k_new = round(p_old * PATHS), int(round(row.probability * row.paths))
            z, p_value = two_proportion_test(k_old, PATHS, k_new, int(row.paths))
            differences.append(Difference(run.name, name, p_old, float(row.probability), z, p_value))
    return differences


def replaced(text: str, runs: Sequence[Run], date: str, commit: str) -> str:
    """The README with each run's feasibility heading and tables, and the date and commit of the runs, replaced."""
    lines = text.splitlines()
    for run in runs:  # found again after each replacement, which may change the line numbers after it
        blocks = find_blocks(lines, run.name)
        new = [heading(run), "", *target_table(run.results)]
        end = blocks.table_end
        if blocks.two_end is not None:
            new += ["", TWO_HEADING, "", *assessment_table(run.results)]
            end = blocks.two_end
        lines[blocks.heading : end] = new
    out = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    out, count = DATED.subn(f"({date}, at commit {commit})", out)
    if count != 1:
        raise ReadmeError(f"{README}: expected one '(YYYY-MM-DD, at commit …)' giving when the runs were made, found {count}")
    return out


def head_commit() -> str:
    """The short hash of the checked-out commit."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Recompute the feasibility tables of scenarios/README.md.")
    parser.add_argument("plans", nargs="*", metavar="NAME", help=f"plan scenarios (default: all of {', '.join(PLANS)})")
    parser.add_argument("--check", action="store_true", help="test each target's P(met) against the README's; exit 1 if any differs at 1%% (Bonferroni)")
    parser.add_argument("--write", action="store_true", help="replace the tables, timings and the date and commit line in the README")
    parser.add_argument("--verbose", action="store_true", help="with --check, print every comparison, not only the significant ones")
    parser.add_argument("--paths", type=int, default=PATHS, help=f"paths per run (default {PATHS}; --write needs {PATHS})")
    args = parser.parse_args(argv)
    if args.write and args.paths != PATHS:
        parser.error(f"--write needs the published {PATHS} paths")
    unknown = sorted(set(args.plans) - set(PLANS))
    if unknown:
        parser.error(f"not a plan scenario with a feasibility table: {', '.join(unknown)} (choose from {', '.join(PLANS)})")
    if args.paths < 1:
        parser.error("--paths must be ≥ 1")
    plans = [name for name in PLANS if name in args.plans] if args.plans else PLANS
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        for name in plans:  # before running anything: the README must have the tables
            find_blocks(lines, name)
        runs = []
        for name in plans:
            print(f"running {name} ({args.paths} paths, seed {SEED}) …", file=sys.stderr, flush=True)
            run = run_plan(name, args.paths)
            runs.append(run)
            print(f"### {name}\n\n{heading(run)}\n\n" + "\n".join(target_table(run.results)), flush=True)
            print(f"\n{TWO_HEADING}\n\n" + "\n".join(assessment_table(run.results)), flush=True)
            print("\nfigures the notes quote (medians over paths):\n" + "\n".join(quoted_figures(run.results)) + "\n", flush=True)
        status = 0
        if args.check:
            differences = check(lines, runs)
            tests = len(differences)
            level = ALPHA / max(tests, 1)
            significant = [d for d in differences if d.p_value < level]
            print(f"check: {tests} targets' P(met) against the README's (two-proportion z-test, {PATHS} vs {args.paths} paths); "
                  f"significant at {ALPHA:.0%} after Bonferroni: p < {level:.2g}")
            for d in differences if args.verbose else significant:
                mark = "  SIGNIFICANT" if d.p_value < level else ""
                print(f"  {d.scenario}.{d.target}: {d.old:.3f} → {d.new:.3f} (z = {d.z:+.2f}, p = {d.p_value:.2g}){mark}")
            print(f"{len(significant)} significant" + (": " + ", ".join(f"{d.scenario}.{d.target}" for d in significant) if significant else ""))
            status = 1 if significant else 0
        if args.write:
            new_text = replaced(text, runs, datetime.date.today().isoformat(), head_commit())

            def write(path: Path) -> None:
                path.write_text(new_text, encoding="utf-8")

            write_file(README, write, "README")
            print(f"written: {README}")
    except ReadmeError as exc:
        print(f"feasibility.py: error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
