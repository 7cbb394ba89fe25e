"""The ``creditsim`` command.

``creditsim run [SCENARIO] [--paths N] [--seed S] [--set dotted.key=value ...] [--out DIR [--trace 0,3]] [--report FILE]
[--xlsx FILE] [--csv DIR] [--workers N | --scheduler ADDRESS] [--threads N] [--checkpoint DIR | --resume DIR]`` runs a scenario
(the bundled default when none is given) and prints the key metrics at the end date with their 5–95% band, the
targets and the 两增/两控 table, and writes what was asked for;
``creditsim sweep [SCENARIO] --set key=v1,v2 --set key=a:b:n ... [--all-targets]`` runs a grid of variants on common
random numbers and prints the keys varied and each target's probability per variant (targets that do not move folded
into one line); ``creditsim solve [SCENARIO] --target ID --probability P --vary
KEY --range LO:HI`` finds the smallest (or, with --largest, the largest) value meeting the target with that
probability;
``creditsim report RESULTS_DIR [-o FILE]`` writes the HTML report of saved results;
``creditsim calibrate SCENARIO --data FILE.csv --fit KEY,... [-o FILE.toml]`` fits parameters to observed series and
``creditsim backtest SCENARIO --data FILE.csv --fit KEY,... --train-until YEAR`` tests the fit on later years;
``creditsim compare [A] [B] [--set ...] [--set-base ...] [--all-targets]`` runs two policies with common random numbers
and prints the inputs B changes, each target's P(met) and each bank's 两增/两控 P(pass) in A and B with the paired
change, and B − A of the metrics, each with its 95% interval; ``creditsim validate SCENARIO`` checks a file. Exit codes: 0 success, 2 bad input (one line on stderr, no
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import textwrap
import threading
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from .. import __version__
from ..analysis.calibrate import Calibration, against_data, backtest, calibrate, read_observations
from ..analysis.compare import UNCHANGED, Comparison, compare
from ..analysis.search import Solution, solve
from ..analysis.summaries import instrument_events, per_fiscal_cost
from ..analysis.sweeps import KEY_METRICS, Sweep, field_value, resume_sweep, sweep
from ..analysis.uncertainty import Sensitivity, sensitivity, simulate_uncertain
from ..errors import CreditsimError, ResultsError, ScenarioError, ScenarioWarning, one_line
from ..files import check_destination, new_directory, write_file
from ..metrics import metric
from ..results.banks import bank_table, bank_view
from ..results.budget import Budget, baseline_scenario, budget
from ..results.exports import ROW, Sheet, write_workbook
from ..results.results import ALL, Results
from ..results.targets import Z95, condition
from ..run.api import simulate
from ..run.checkpoint import checkpointed_scenario, read_manifest
from ..scenario import Scenario, load_scenario, with_tests
from ..scenario.changes import field_text
from ..scenario.sources import cited_plans
from ..scenario.units import format_value, parse_rate
from .plots import sweep_figure
from .report import write_report

__all__ = ["build_parser", "main"]

DEFAULT_PATHS = 100
END_STOCKS = (
    "balance", "borrowers", "loans", "npl_balance", "npl_ratio", "npl_ratio_recognised", "credit_loan_balance", "renewal_balance",
    "all_loans_balance", "firms", "unbanked_firms", "never_borrowed_firms",
)
TOTAL_FLOWS = (
    "disbursed", "repaid", "defaulted", "defaults", "liquidity_defaults", "recovered", "written_off", "interest_income",
    "credit_loan_disbursed", "approvals", "first_time_borrowers", "first_loan_amount", "first_time_borrower_lending",
    "renewals", "renewed", "bridge_cost", "graduated",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``creditsim`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _terminated)  # a batch system's stop is handled like Ctrl-C
    try:
        with warnings.catch_warnings(), _library_logs(args):
            warnings.showwarning = _show_warning
            return int(args.handler(args))
    except CreditsimError as exc:
        print(f"creditsim: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `creditsim run | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        checkpoint = getattr(args, "checkpoint", None) or getattr(args, "resume", None)
        resume = f"; finished tasks are kept in {checkpoint}: continue with the same command" if checkpoint else ""
        if checkpoint and args.command in ("run", "sweep"):
            resume = f"; finished tasks are kept in {checkpoint}: continue with creditsim {args.command} --resume {checkpoint}"
        print(f"creditsim: interrupted{resume}", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: Loggers of the libraries a command may run on (Dask's, and the event loop under it), which log what they see of a
#: failure (a lost scheduler: dozens of lines of traceback) before creditsim says what it means in one line.
LIBRARY_LOGGERS = ("distributed", "tornado", "asyncio")


class _Held(logging.Handler):
    """Keeps log records instead of writing them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _library_logs(args: argparse.Namespace) -> Iterator[None]:
    """Hold the records of :data:`LIBRARY_LOGGERS` while a command runs: dropped when it ends with creditsim's one-line
    error or an interruption (which say what happened, alone), written as the libraries would have written them
    otherwise (the command finished, or failed in a way creditsim did not foresee)."""
    if getattr(args, "scheduler", None) is not None:
        with contextlib.suppress(ImportError):  # without Dask the backend says so, in one line
            import distributed  # noqa: F401  (Dask sets up its loggers when first imported: before they are held, not over it)
    names = [name for name in (*LIBRARY_LOGGERS, *logging.root.manager.loggerDict) if name.split(".")[0] in LIBRARY_LOGGERS]
    loggers = [logging.getLogger(name) for name in dict.fromkeys(names)]  # Dask gives some of its loggers handlers of their own
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    held = _Held()
    for logger in loggers:
        logger.handlers, logger.propagate = [held], False
    quiet = False
    try:
        yield
    except (CreditsimError, KeyboardInterrupt, BrokenPipeError):
        quiet = True
        raise
    finally:
        for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
        if not quiet:
            for record in held.records:
                logging.getLogger(record.name).handle(record)


_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """A scenario's warning as one line on stderr, as errors are (other warnings as Python shows them)."""
    if issubclass(category, ScenarioWarning):
        print(f"creditsim: warning: {one_line(str(message))}", file=sys.stderr)
    else:
        _python_showwarning(message, category, *args, **kwargs)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of the command is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"creditsim: error: {' '.join(message.split())} (see {self.prog} --help)\n")


_SEED_HELP = "seed of every random number (default 0): with the path number it fixes a path"
_TARGET_HELP = ("also assess one of the regulator's tests for a bank as a target, written TEST:BANK:YEAR (e.g. 两增:big_bank:2023, its year-end; "
                "or a quarter-end 2023-06; BANK may be 'all'); repeat for several. A target on a metric is written with --set targets.NAME.FIELD=…")
_ALL_TARGETS_HELP = "show every target, also those whose P(met) moves by less than a point with a paired 95%% interval holding 0 (folded into one line otherwise)"


def build_parser() -> argparse.ArgumentParser:
    """The ``creditsim`` command's argument parser (its help texts are the CLI reference, docs/reference/cli.md)."""
    parser = _Parser(prog="creditsim", description="Monte Carlo simulation of SME lending programmes.")
    parser.add_argument("--version", action="version", version=f"creditsim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario and print its key metrics")
    run.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file (default: the bundled default scenario)")
    run.add_argument("--paths", type=_positive_int, help=f"Monte Carlo paths (default {DEFAULT_PATHS})")
    run.add_argument("--seed", type=_non_negative_int, help=_SEED_HELP)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field, e.g. banks.city_bank.max_pd=0.05")
    _backend_arguments(run)
    kept = run.add_mutually_exclusive_group()
    kept.add_argument("--checkpoint", type=_path, metavar="DIR", help="keep finished tasks in DIR, so that an interrupted run can continue")
    kept.add_argument("--resume", type=_path, metavar="DIR", help="continue the run checkpointed in DIR (its scenario, seed, paths and traced paths)")
    run.add_argument("--out", type=_path, metavar="DIR", help="write the results (metrics.parquet, manifest.json) to DIR")
    run.add_argument("--trace", type=_path_list, metavar="PATHS",
                     help="record every loan of these paths, e.g. 0,3, and write them to DIR/trace.parquet (needs --out)")
    run.add_argument("--report", type=_path, metavar="FILE", help="write a self-contained HTML report to FILE")
    run.add_argument("--xlsx", type=_path, metavar="FILE", help="write the target, 两增 and summary tables as an Excel workbook")
    run.add_argument("--csv", type=_path, metavar="DIR", help="write the metrics and the summary, target and 两增 tables as CSV files to a new DIR")
    run.add_argument("--parameter-uncertainty", action="store_true",
                     help="draw each path's values of the scenario's [[assumptions]] from their ranges, so the bands carry the parameters' uncertainty too")
    run.add_argument("--target", dest="targets", action="append", default=[], metavar="TEST:BANK:YEAR", help=_TARGET_HELP)
    run.add_argument("--bank", dest="banks", action="append", default=[], metavar="NAME",
                     help="also print this bank's book and 两增 at each year-end (repeat for several; 'all' for the banks together)")
    run.set_defaults(handler=_run)

    bud = commands.add_parser("budget", help="the government's money by instrument and year, and its cost per extra 亿 of lending against a baseline")
    bud.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file (default: the bundled default scenario)")
    bud.add_argument("--paths", type=_positive_int, default=DEFAULT_PATHS, help=f"Monte Carlo paths (default {DEFAULT_PATHS})")
    bud.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    bud.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field of the scenario")
    bud.add_argument("--baseline", type=_path, metavar="FILE", help="the baseline scenario (default: the scenario without its instruments, or with --set-baseline)")
    bud.add_argument("--set-baseline", dest="baseline_overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a field of the baseline; without --baseline, the baseline is then the scenario with these changes")
    bud.add_argument("--xlsx", type=_path, metavar="FILE", help="write the budget tables as an Excel workbook")
    bud.add_argument("--csv", type=_path, metavar="FILE", help="write the budget by instrument, item and year as a CSV file")
    _backend_arguments(bud)
    bud.set_defaults(handler=_budget)

    sens = commands.add_parser("sensitivity", help="which documented assumption would move each target's P(met) most")
    sens.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file with [[assumptions]] (default: the bundled default scenario)")
    sens.add_argument("--paths", type=_positive_int, default=200, help="paths per variant (default 200; the same paths every variant)")
    sens.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    sens.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field first")
    sens.add_argument("--csv", type=_path, metavar="FILE.csv", help="write the table of every target and assumption")
    _backend_arguments(sens)
    sens.set_defaults(handler=_sensitivity)

    report = commands.add_parser("report", help="write the HTML report of saved results")
    report.add_argument("results", type=_path, help="a results directory written by run --out")
    report.add_argument("-o", "--output", type=_path, metavar="FILE", default="report.html", help="the HTML file (default report.html)")
    report.set_defaults(handler=_report)

    comp = commands.add_parser("compare", help="compare two policies with common random numbers")
    comp.add_argument("base", type=_path, nargs="?", help="scenario A (default: the bundled default scenario)")
    comp.add_argument("variant", type=_path, nargs="?", help="scenario B (default: scenario A, changed by --set)")
    comp.add_argument("--paths", type=_positive_int, default=DEFAULT_PATHS, help=f"Monte Carlo paths (default {DEFAULT_PATHS})")
    comp.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    comp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field of scenario B")
    comp.add_argument("--set-base", dest="base_overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field of scenario A")
    comp.add_argument("--target", dest="targets", action="append", default=[], metavar="TEST:BANK:YEAR", help=_TARGET_HELP)
    comp.add_argument("--all-targets", action="store_true", help=_ALL_TARGETS_HELP)
    _backend_arguments(comp)
    comp.set_defaults(handler=_compare)

    sw = commands.add_parser("sweep", help="run a grid of policy variants on common random numbers")
    sw.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file (default: the bundled default scenario)")
    sw.add_argument("--set", dest="grid", action="append", default=[], metavar="KEY=V1,V2|A:B:N",
                    help="a key and its values: a list (50万,100万) or a range a:b:n; one value fixes the key")
    sw.add_argument("--paths", type=_positive_int, help=f"paths per variant (default {DEFAULT_PATHS})")
    sw.add_argument("--seed", type=_non_negative_int, help=_SEED_HELP)
    sw.add_argument("--metrics", metavar="M,M", help=f"metrics per variant (default {','.join(KEY_METRICS)})")
    sw.add_argument("--plot", type=_path, metavar="FILE.png", help="write a chart of each target's probability against the first key")
    sw.add_argument("--target", dest="targets", action="append", default=[], metavar="TEST:BANK:YEAR", help=_TARGET_HELP)
    sw.add_argument("--all-targets", action="store_true", help=_ALL_TARGETS_HELP)
    sw.add_argument("--csv", type=_path, metavar="FILE.csv", help="write the table of targets and metrics per variant")
    kept = sw.add_mutually_exclusive_group()
    kept.add_argument("--checkpoint", type=_path, metavar="DIR", help="keep finished tasks in DIR, so that an interrupted sweep can continue")
    kept.add_argument("--resume", type=_path, metavar="DIR", help="continue the sweep checkpointed in DIR (its scenario, grid, seed and paths)")
    _backend_arguments(sw)
    sw.set_defaults(handler=_sweep)

    so = commands.add_parser("solve", help="find the smallest (or largest) parameter value meeting a target with a probability")
    so.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file (default: the bundled default scenario)")
    so.add_argument("--target", required=True, metavar="ID", help="a target of the scenario, or a test for a bank written TEST:BANK:YEAR (e.g. 两增:big_bank:2023)")
    so.add_argument("--probability", type=_probability, default=0.9, help="the probability asked for (default 0.9)")
    so.add_argument("--vary", required=True, metavar="KEY", help="the dotted key of one number, e.g. pools.fund.size")
    so.add_argument("--range", dest="range_", required=True, metavar="LO:HI", help="where to look, both ends in one unit, e.g. 1亿:10亿")
    so.add_argument("--largest", action="store_true", help="find the largest value (for a parameter that lowers the probability)")
    so.add_argument("--tolerance", metavar="X", help="locate the answer to within X, in the range's unit, e.g. 0.05%% (default range/64)")
    so.add_argument("--confidence", type=_probability, default=0.95, help="level of the answer's interval (default 0.95)")
    so.add_argument("--paths", type=_positive_int, default=400,
                    help="the most paths a value is run on (default 400; the same path numbers first every time)")
    so.add_argument("--initial-paths", type=_positive_int, metavar="N",
                    help="paths a value is first run on (default 25); more are added while its interval holds the level (N = --paths: a fixed design)")
    so.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    so.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field first")
    so.add_argument("--checkpoint", type=_path, metavar="DIR", help="keep each value's finished tasks in DIR; the same command continues from them")
    _backend_arguments(so)
    so.set_defaults(handler=_solve)

    for name, helptext in (("calibrate", "fit scenario parameters to observed series"),
                           ("backtest", "fit on the years up to --train-until and project the rest")):
        cal = commands.add_parser(name, help=helptext)
        cal.add_argument("scenario", type=_path, help="scenario TOML file")
        cal.add_argument("--data", type=_path, required=True, metavar="FILE.csv", help="observations: date, quantity, value[, scope, sd]")
        cal.add_argument("--fit", required=True, metavar="KEY,KEY", help="dotted scenario keys to fit (with * a common multiplier)")
        cal.add_argument("--paths", type=_positive_int, default=40, help="paths per model run (default 40; the same paths every run)")
        cal.add_argument("--seed", type=_non_negative_int, default=0, help="seed (default 0)")
        cal.add_argument("--max-evaluations", type=_positive_int, default=80,
                         help="most objective evaluations (default 80); each Jacobian adds one model run per fitted key")
        cal.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field first")
        if name == "calibrate":
            cal.add_argument("-o", "--output", type=_path, metavar="FILE.toml", help="write the calibrated scenario here")
            cal.set_defaults(handler=_calibrate)
        else:
            cal.add_argument("--train-until", type=_non_negative_int, required=True, metavar="YEAR", help="fit on observations up to the end of YEAR")
            cal.add_argument("--projection-paths", type=_positive_int, default=200, help="paths of the projection (default 200)")
            cal.set_defaults(handler=_backtest)

    observed = commands.add_parser("observed", help="each observation of a data file against the scenario's median and 90%% band")
    observed.add_argument("scenario", type=_path, help="scenario TOML file")
    observed.add_argument("--data", type=_path, required=True, metavar="FILE.csv", help="observations: date, quantity, value[, scope, sd], at full scale")
    observed.add_argument("--paths", type=_positive_int, default=200, help="paths (default 200)")
    observed.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    observed.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a scenario field first")
    observed.add_argument("--parameter-uncertainty", action="store_true",
                          help="draw each path's values of the scenario's [[assumptions]], so the bands carry the parameters' uncertainty too")
    observed.set_defaults(handler=_observed)

    ex = commands.add_parser("explore", help="a local web page to move the scenario's levers and watch P(target), 两增 and the budget respond")
    ex.add_argument("scenario", type=_path, nargs="?", help="scenario TOML file (default: the bundled default scenario)")
    ex.add_argument("--port", type=_port, default=5006, help="the port on 127.0.0.1 (default 5006)")
    ex.add_argument("--no-browser", action="store_true", help="serve the page without opening it in a browser")
    ex.add_argument("--paths", type=_positive_int, default=200, help="paths of each run, the baseline's and each variant's (default 200)")
    ex.add_argument("--seed", type=_non_negative_int, default=0, help=_SEED_HELP)
    ex.add_argument("--threads", type=_positive_int, help="threads the paths run on (default: the usable cores)")
    ex.set_defaults(handler=_explore)

    validate = commands.add_parser("validate", help="check a scenario file and say what is wrong")
    validate.add_argument("scenario", type=_path, help="scenario TOML file")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field before checking")
    validate.set_defaults(handler=_validate)
    return parser


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=1, help="local worker processes (default 1: this process)")
    where.add_argument("--scheduler", type=_address, metavar="ADDRESS", help="run on the dask.distributed scheduler at ADDRESS, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                        help="threads that run a process's paths at once (default 1; the numbers do not depend on it)")
    parser.add_argument("--chunk-size", type=_positive_int, metavar="N", help="paths per task (default: about 8 tasks per worker, ≤ 32)")


def _backend(args: argparse.Namespace) -> dict[str, Any]:
    """The backend keyword arguments of the run functions, from the command line."""
    if args.scheduler is not None:
        return {"backend": "dask", "scheduler": args.scheduler, "threads": args.threads, "chunk_size": args.chunk_size}
    return {"backend": "processes" if args.workers > 1 else "serial", "workers": args.workers, "threads": args.threads, "chunk_size": args.chunk_size}


def _probability(text: str) -> float:
    try:
        value = parse_rate(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a probability such as 0.9 or 90%, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _path(text: str) -> str:
    """A file or directory name: anything but the empty string (``--out ''`` must not quietly mean no output)."""
    if not text:
        raise argparse.ArgumentTypeError("must be a file or directory name, got ''")
    return text


def _address(text: str) -> str:
    """A scheduler's address: not empty (``--scheduler ''`` must not quietly mean this machine)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be the address of a dask.distributed scheduler, e.g. tcp://10.0.0.5:8786, got {text!r}")
    return text


def _positive_int(text: str) -> int:
    return _whole_number(text, least=1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, least=0)


def _port(text: str) -> int:
    port = _whole_number(text, least=1)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: must be from 1 to 65535")
    return port


def _whole_number(text: str, least: int) -> int:
    """A whole number of at least ``least``; anything else is refused with the one rule (-5 and 0 alike)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ {least}, got {text!r}")
    return value


def _path_list(text: str) -> list[int]:
    """Path numbers separated by commas, e.g. ``0,3``."""
    return [_non_negative_int(part.strip()) for part in text.split(",")]


def _explore(args: argparse.Namespace) -> int:
    from .app import serve

    serve(args.scenario, args.port, not args.no_browser, args.paths, args.seed, args.threads,
          ready=lambda url: print(f"creditsim explore: serving {url} (Ctrl-C to stop)", flush=True))
    return 0


def _validate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    banks, segments = len(scenario.banks), len(scenario.firms.segments)
    print(f"{args.scenario}: valid ({scenario.name}: {segments} segments, {banks} banks, {scenario.calendar.months} months from {scenario.calendar.start})")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.resume:
        scenario, args.paths, args.seed, args.chunk_size, args.trace = _resumed(args)
        args.checkpoint = args.resume
    else:
        scenario = with_tests(load_scenario(args.scenario, args.overrides), args.targets)
        args.paths = DEFAULT_PATHS if args.paths is None else args.paths
        args.seed = 0 if args.seed is None else args.seed
    if args.trace and not args.out:
        paths = ",".join(map(str, args.trace))
        if args.resume:
            raise ScenarioError("--resume", args.resume, f"continues a run that traces paths {paths}; give --out DIR, where the trace is written")
        raise ScenarioError("--trace", paths, "needs --out DIR, where the trace is written")
    if args.checkpoint and not args.resume:
        check_destination(args.checkpoint, "checkpoint", directory=True)
    if args.out:
        Results.check_target(args.out)
    if args.report:
        _check_file(args.report, (".html", ".htm"))
    if args.xlsx:
        _check_file(args.xlsx, (".xlsx",))
    if args.csv:
        new_directory(args.csv)
    for name in args.banks:
        if name not in (*scenario.bank_names, ALL):
            raise ScenarioError("--bank", name, f"is not a bank of the scenario ({', '.join(scenario.bank_names)}, or {ALL})")
    if args.parameter_uncertainty:
        _alone_with_uncertainty(args)
        results, drawn = simulate_uncertain(scenario, paths=args.paths, seed=args.seed)
        print(format_summary(results))
        print("\n" + format_draws(scenario, drawn))
    else:
        results = simulate(scenario, paths=args.paths, seed=args.seed, checkpoint=args.checkpoint, trace=args.trace or (), **_backend(args))
        print(format_summary(results))
    if args.banks:
        table = bank_table(results)
        for name in dict.fromkeys(args.banks):
            print("\n" + format_bank(table, name))
    written = []
    if args.out:
        written.append(f"results: {results.save(args.out)}")
    if args.report:
        written.append(f"report: {write_report(results, args.report, command=_command_line())}")
    if args.xlsx:
        written.append(f"workbook: {results.to_excel(args.xlsx)}")
    if args.csv:
        written.append(f"tables: {results.to_csv(args.csv)}")
    if written:
        print("\nwritten: " + "; ".join(written))
    return 0


def _alone_with_uncertainty(args: argparse.Namespace) -> None:
    """Refuse the flags a run with parameter uncertainty cannot honour: each of its paths runs its own variant."""
    given = [flag for flag, value in (("--out", args.out), ("--checkpoint", args.checkpoint), ("--resume", args.resume), ("--trace", args.trace),
                                      ("--workers", args.workers > 1), ("--scheduler", args.scheduler)) if value]
    if given:
        raise ScenarioError("--parameter-uncertainty", "", f"runs each path with its own draw of the assumptions, in this process; leave out {', '.join(given)}")


def format_draws(scenario: Scenario, drawn: pd.DataFrame) -> str:
    """The lines ``run --parameter-uncertainty`` prints under the summary: each assumption's range and the 5%, 50%
    and 95% points of the values its paths drew."""
    lines = [f"parameter uncertainty: each of the {len(drawn)} paths drew its own values of {len(drawn.columns)} assumptions "
             "(the bands above include them)",
             ""]
    width = max(12, *(len(a.key) + 2 for a in scenario.assumptions))
    lines[-1] = f"  {'assumption':<{width}}{'range':<22}{'drawn':<10}{'p5':>10}{'median':>10}{'p95':>10}"
    for a in scenario.assumptions:
        values = drawn[a.key].to_numpy()
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        lines.append(f"  {a.key:<{width}}{f'{a.low} – {a.high}':<22}{a.distribution:<10}{p5:>10.4g}{p50:>10.4g}{p95:>10.4g}")
    return "\n".join(lines)


def _sensitivity(args: argparse.Namespace) -> int:
    if args.csv:
        _check_file(args.csv, (".csv",))
    result = sensitivity(load_scenario(args.scenario, args.overrides), paths=args.paths, seed=args.seed, **_backend(args))
    table = result.table()
    print(format_sensitivity(result, table))
    if args.csv:
        print(f"\nwritten: table: {write_file(Path(args.csv), lambda tmp: table.to_csv(tmp, index=False, encoding='utf-8-sig'), 'table')}")
    return 0


def format_sensitivity(result: Sensitivity, table: pd.DataFrame) -> str:
    """The text ``creditsim sensitivity`` prints from :meth:`Sensitivity.table`: per target, P(met) as written and,
    most influential first, each assumption that moves it with its P(met) at its low and high end and the swing
    with its paired 95% interval (the CSV has every row)."""
    n = len(result.path_ids)
    lines = [f"creditsim {__version__} · sensitivity of {result.scenario.name} · {len(result.ranges)} assumptions at their ends × {n} paths · "
             f"seed {result.seed} · common random numbers"]
    width = max(12, *(len(r.assumption.key) + 2 for r in result.ranges))
    for name, rows in table.groupby("target", sort=False):
        first = rows.iloc[0]
        lines += ["", f"{name} ({result.scenario.targets[name].label or name}): P(met) {first.p_base:.2f} [{first.p_base_low:.2f}, {first.p_base_high:.2f}] as written"]
        moving = rows[(rows.p_low != rows.p_base) | (rows.p_high != rows.p_base)]
        if moving.empty:
            lines.append(f"  no assumption moves it on these paths ({first.p_base:.2f} at both ends of each)")
            continue
        lines.append(f"  {'assumption':<{width}}{'low → high':<24}{'P(low)':>8}{'P(high)':>9}   swing [95% CI]")
        for row in moving.itertuples():
            ends = f"{row.low} → {row.high}"
            lines.append(f"  {row.key:<{width}}{ends:<24}{row.p_low:>8.2f}{row.p_high:>9.2f}   {row.swing:+.2f} [{row.swing_low:+.2f}, {row.swing_high:+.2f}]")
    return "\n".join(lines)


def _resumed(args: argparse.Namespace) -> tuple[Scenario, int | list[int], int, int, list[int]]:
    """The scenario, paths, seed, chunk size and traced paths of the run checkpointed in ``--resume DIR``."""
    _fixed_by_checkpoint(args, {"SCENARIO": args.scenario, "--set": args.overrides, "--paths": args.paths, "--seed": args.seed,
                                "--chunk-size": args.chunk_size, "--trace": args.trace, "--target": args.targets})
    run = read_manifest(args.resume)["run"]
    if run["summary"] is not None or len(run["scenarios"]) != 1:
        raise ResultsError(f"{args.resume}: is the checkpoint of a sweep or comparison, not of a run; rerun that command with --checkpoint {args.resume}")
    return checkpointed_scenario(args.resume, run["scenarios"][0]), run["paths"], run["seed"], run["chunk_size"], run["trace"]


def _fixed_by_checkpoint(args: argparse.Namespace, flags: dict[str, object]) -> None:
    """Refuse, with ``--resume``, flags whose values the checkpoint fixes (rather than ignore them)."""
    given = [flag for flag, value in flags.items() if value is not None and value != []]
    if given:
        raise ScenarioError("--resume", args.resume, f"takes these from the checkpoint; leave out {', '.join(given)}")


def _sweep(args: argparse.Namespace) -> int:
    for name, suffixes in (("plot", (".png", ".svg", ".pdf")), ("csv", (".csv",))):
        if getattr(args, name):
            _check_file(getattr(args, name), suffixes)
    if args.resume:
        _fixed_by_checkpoint(args, {"SCENARIO": args.scenario, "--set": args.grid, "--paths": args.paths, "--seed": args.seed,
                                    "--metrics": args.metrics, "--chunk-size": args.chunk_size, "--target": args.targets})
        backend = _backend(args)
        backend.pop("chunk_size")
        result = resume_sweep(args.resume, **backend)
    else:
        if not args.grid:
            raise ScenarioError("--set", "", "a sweep needs at least one --set key=v1,v2 or key=a:b:n")
        if args.checkpoint:
            check_destination(args.checkpoint, "checkpoint", directory=True)
        metrics = _items("--metrics", args.metrics, "balance,npl_ratio") if args.metrics is not None else list(KEY_METRICS)
        result = sweep(with_tests(load_scenario(args.scenario), args.targets), args.grid, paths=DEFAULT_PATHS if args.paths is None else args.paths,
                       seed=args.seed or 0, metrics=metrics, checkpoint=args.checkpoint, **_backend(args))
    targets, key_metrics = result.targets(), result.key_metrics()
    print(format_sweep(result, targets, key_metrics, all_targets=args.all_targets))
    written = []
    if args.plot:
        if targets.empty:
            raise ScenarioError("--plot", args.plot, "needs a target assessed in the run, and every target lies outside it")
        figure = sweep_figure(result)
        written.append(f"chart: {write_file(Path(args.plot), lambda tmp: figure.savefig(tmp, format=Path(args.plot).suffix[1:]), 'chart')}")
    if args.csv:
        table = pd.concat([targets.assign(kind="target"), key_metrics.assign(kind="metric")], ignore_index=True)
        written.append(f"table: {write_file(Path(args.csv), lambda tmp: table.to_csv(tmp, index=False, encoding='utf-8-sig'), 'table')}")
    if written:
        print("\nwritten: " + "; ".join(written))
    return 0


def format_sweep(result: Sweep, targets: pd.DataFrame, table: pd.DataFrame, all_targets: bool = False) -> str:
    """The text ``creditsim sweep`` prints from the sweep's ``targets()`` and ``key_metrics()`` tables: the keys varied
    and their values, and the keys set (given one value), each beside the scenario's value; per target, each variant's probability with its 95% interval and the paired change from the
    previous value of the last key, the targets that do not move (``unchanged``) folded into one line unless
    ``all_targets``; then the key metrics' means."""
    keys = result.keys
    n = len(result.path_ids)
    lines = [f"creditsim {__version__} · sweep of {result.scenario.name} · {len(result.settings)} variants × {n} paths · seed {result.seed} · "
             "common random numbers"]
    lines += [f"varied: {key} = {', '.join(values)} (the scenario: {field_text(key, field_value(result.scenario, key))})"
              for key, values in result.varied().items()]
    lines += [f"set: {key} = {now} (the scenario: {before})" for key, (now, before) in result.fixed.items()]
    width = max(12, *(len(k) + 2 for k in keys))
    shown = [[field_text(k, field_value(s, k)) for k in keys] for s in result.scenarios]

    def head(title: str, columns: str) -> None:
        lines.extend(["", title, "".join(f"{k:<{width}}" for k in keys) + columns])

    def settings(i: int) -> str:
        return "".join(_pad(value, width) for value in shown[i])

    for name, why in result.not_assessed().items():
        lines += ["", f"target {name}: not assessed ({why})"]
    folded = list(dict.fromkeys(targets.loc[targets["unchanged"], "target"])) if not all_targets else []
    for name in dict.fromkeys(targets["target"]):
        if name in folded:
            continue
        t = result.scenario.targets[name]
        unit = t.unit
        asked = condition(t.measure, t.metric, t.comparison, t.value, unit)
        head(f"target {name}: " + (asked if t.measure == "test" else f"{t.metric} {asked}") + (f" ({t.label})" if t.label else ""),
             f"{'P(met)':>8}   {'95% CI':<14}{'median':>12}   {'change in P [95% CI]':<26}")
        for row in targets[targets["target"] == name].itertuples():
            ci = f"[{100 * row.ci_low:.0f}%, {100 * row.ci_high:.0f}%]"
            change = "" if np.isnan(row.change) else f"{100 * row.change:+.1f} [{100 * row.change_low:+.1f}, {100 * row.change_high:+.1f}] pts"
            lines.append(f"{settings(row.variant)}{100 * row.probability:>7.0f}%   {ci:<14}{format_value(row.median, unit):>12}   {change}")
    lines += _folded(folded, "across the variants")
    for name in result.metrics:
        unit = metric(name).unit
        when = "total" if metric(name).kind == "flow" else "at the end"
        head(f"{name} ({when}, mean over paths)", f"{'mean':>12}   {'95% CI':<28}{'change [95% CI]':<30}")
        for row in table[table["metric"] == name].itertuples():
            ci = f"[{format_value(row.ci_low, unit)}, {format_value(row.ci_high, unit)}]"
            change = "" if np.isnan(row.change) else (f"{format_value(row.change, unit)} [{format_value(row.change_low, unit)}, "
                                                       f"{format_value(row.change_high, unit)}]")
            lines.append(f"{settings(row.variant)}{format_value(row.mean, unit):>12}   {ci:<28}{change}")
    return "\n".join(lines)


def _folded(names: list[str], where: str) -> list[str]:
    """The line (wrapped) that names the targets folded away as unchanged."""
    if not names:
        return []
    text = (f"{len(names)} target{'s' if len(names) > 1 else ''} unchanged {where} (P(met) moves by less than {100 * UNCHANGED:.0f} point, "
            f"paired 95% interval holding 0; --all-targets shows them): {', '.join(names)}")
    return ["", *textwrap.wrap(text, 110, subsequent_indent="  ", break_on_hyphens=False)]


def _solve(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    if args.checkpoint:
        check_destination(args.checkpoint, "checkpoint", directory=True)
    answer = solve(scenario, args.target, args.vary, args.range_, args.probability, largest=args.largest, tolerance=args.tolerance,
                   confidence=args.confidence, paths=args.paths, seed=args.seed, initial_paths=args.initial_paths, checkpoint=args.checkpoint,
                   **_backend(args))
    print(format_solution(answer))
    return 0


def format_solution(answer: Solution) -> str:
    """The text ``creditsim solve`` prints: every value tried with its probability, then the answer."""
    lines = [f"creditsim {__version__} · solve · {answer.key} for P({answer.target}) ≥ {answer.level:.0%} · at most {answer.paths} paths a value · "
             f"seed {answer.seed} · common random numbers", "", f"{answer.key:<28}{'P(met)':>8}   {f'{answer.confidence:.0%} CI':<18}{'paths':>6}"]
    for row in answer.evaluations.itertuples():
        written = f"{row.value:.6g}{answer.unit}"
        lines.append(f"{written:<28}{100 * row.probability:>7.1f}%   {f'[{100 * row.ci_low:.1f}%, {100 * row.ci_high:.1f}%]':<18}{row.paths:>6}")
    lines += ["", answer.message]
    return "\n".join(lines)


def _calibrate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    if args.output:
        _check_file(args.output, (".toml",))
    keys = _items("--fit", args.fit, "demand.growth,banks.*.max_pd")
    fit = calibrate(scenario, read_observations(args.data), keys, paths=args.paths, seed=args.seed, max_evaluations=args.max_evaluations,
                    progress=_fit_progress)
    print(format_calibration(fit))
    if args.output:
        header = [f"Calibrated by creditsim {__version__} from {args.scenario} to {args.data} ({args.paths} paths, seed {args.seed}):"]
        header += [f"  {r.key} = {r.fitted:.6g} ± {r.se:.2g} (Monte Carlo part {r.se_mc:.2g})" for r in fit.parameters.itertuples()]

        def write(temporary: Path) -> None:
            temporary.write_text(fit.scenario.to_toml("\n".join(header)), encoding="utf-8")

        print(f"\ncalibrated scenario written to {write_file(Path(args.output), write, 'scenario')}")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    keys = _items("--fit", args.fit, "demand.growth,banks.*.max_pd")
    fit, projection = backtest(scenario, read_observations(args.data), keys, args.train_until, paths=args.paths, seed=args.seed,
                               projection_paths=args.projection_paths, max_evaluations=args.max_evaluations)
    print(format_calibration(fit))
    print(f"\nprojection after {args.train_until} ({args.projection_paths} paths)")
    print(format_against_data(projection, "held-out observations"))
    return 0


def _observed(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    observations = read_observations(args.data)
    results = simulate_uncertain(scenario, paths=args.paths, seed=args.seed)[0] if args.parameter_uncertainty else None
    table = against_data(scenario, observations, paths=args.paths, seed=args.seed, results=results)
    drawn = ", each drawing its values of the assumptions" if args.parameter_uncertainty else ""
    print(f"{scenario.name} against {args.data} ({args.paths} paths{drawn}, seed {args.seed})")
    print(format_against_data(table, "observations"))
    return 0


def format_against_data(table: pd.DataFrame, what: str) -> str:
    """Observations against the model's median and 5–95% band (:func:`creditsim.analysis.calibrate.against_data`)."""
    lines = [f"{'date':<9}{'quantity':<28}{'scope':<10}{'observed':>12}{'median':>12}{'5%–95% band':>26}{'error':>9}  in band"]
    for r in table.itertuples():
        band = f"[{r.p5:.4g}, {r.p95:.4g}]"
        lines.append(f"{r.date:<9}{r.quantity:<28}{r.scope:<10}{r.observed:>12.4g}{r.median:>12.4g}{band:>26}{100 * r.relative_error:>8.1f}%  "
                     f"{'yes' if r.inside_90 else 'no'}")
    lines.append(f"{int(table['inside_90'].sum())} of {len(table)} {what} inside the 90% band")
    return "\n".join(lines)


def _items(flag: str, text: str, example: str) -> list[str]:
    """The items of a list flag, ``--fit KEY,KEY`` or ``--metrics M,M``: each one named (an empty item, as in
    ``--fit ,``, is refused, not dropped)."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ScenarioError(flag, text, f"must name one or more items separated by commas, none empty, e.g. {example}")
    return items


def _fit_progress(evaluations: int, cost: float) -> None:
    if sys.stderr.isatty():
        print(f"\rrun {evaluations}: cost {cost:.4g}", end="", file=sys.stderr, flush=True)


def format_calibration(fit: Calibration) -> str:
    """The fitted parameters with their standard errors and the fit per observation.

    ``± se`` is a fitted value's standard error (the observations' error and the Monte Carlo noise together),
    ``se_mc`` its Monte Carlo part: how far another ``--seed`` would move the value (:class:`Calibration`).
    """
    lines = [f"fit: {fit.evaluations} model runs, cost {fit.cost:.4g} ({fit.message})", "",
             f"{'parameter':<54}{'start':>10}{'fitted':>10}{'± se':>10}{'se_mc':>10}   bounds"]
    for r in fit.parameters.itertuples():
        kind = " (multiplier)" if r.scale else ""
        lines.append(f"{r.key + kind:<54}{r.start:>10.4g}{r.fitted:>10.4g}{r.se:>10.2g}{r.se_mc:>10.2g}   [{r.lower:g}, {r.upper:g}]")
    lines += ["", f"{'date':<9}{'quantity':<24}{'scope':<10}{'observed':>14}{'model mean':>14}{'z':>8}"]
    for r in fit.fit.itertuples():
        lines.append(f"{r.date:<9}{r.quantity:<24}{r.scope:<10}{r.observed:>14.4g}{r.model_mean:>14.4g}{r.z:>8.2f}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    results = Results.load(args.results)
    _check_file(args.output, (".html", ".htm"))
    print(f"report written to {write_report(results, args.output)}")
    return 0


def _check_file(path: str, suffixes: tuple[str, ...]) -> None:
    """Refuse an output file early (before a run): one without the expected suffix (so ``--report city.toml``
    cannot overwrite a scenario), a directory, or one that cannot be written where it is
    (:func:`creditsim.files.check_destination`)."""
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ResultsError(f"{target}: must end in {' or '.join(suffixes)}")
    check_destination(target, "file")
    if target.is_dir():
        raise ResultsError(f"{target}: is a directory, not a file")


def _command_line() -> str:
    return " ".join(["creditsim", *sys.argv[1:]])


def _compare(args: argparse.Namespace) -> int:
    base = with_tests(load_scenario(args.base, args.base_overrides), args.targets)
    variant = with_tests(load_scenario(args.variant if args.variant is not None else args.base, args.overrides), args.targets)
    comparison = compare(base, variant, paths=args.paths, seed=args.seed, **_backend(args))
    print(format_comparison(comparison, all_targets=args.all_targets))
    return 0


def format_comparison(comparison: Comparison, all_targets: bool = False) -> str:
    """The text ``creditsim compare`` prints: the inputs B changes (both values); each target's P(met) in A and B
    with the paired change (targets that do not move folded into one line unless ``all_targets``); each bank's
    两增 and 两控 P(pass) at each year-end in A and B with the paired change; the end-date stocks and the totals of
    flows, A, B and B − A; and the extra lending and borrowers per extra CNY of fiscal cost, where the signs of the
    changes make such a ratio mean something."""
    a, b = comparison.base, comparison.variant
    lines = [f"creditsim {__version__} · compare · A: {a.scenario.name} · B: {b.scenario.name} · {a.paths} paths · seed {a.seed} · "
             "common random numbers"]
    changes = comparison.changes()
    if changes.empty:
        lines.append("B changes no input of A: the two scenarios are the same")
    else:
        lines.append(f"B changes {len(changes)} input{'s' if len(changes) > 1 else ''} of A:")
        lines += [f"  {row.key}: {row.a_text} → {row.b_text}" for row in changes.itertuples()]
    lines += _compared_targets(comparison.targets(), all_targets)
    lines += _compared_assessment(comparison.two_increases())
    lines += ["", f"{'at ' + a.dates[-1]:<30}{'mean A':>14}{'mean B':>14}{'B − A':>14}   95% CI of B − A"]
    for total, names in ((False, END_STOCKS), (True, TOTAL_FLOWS)):
        if total:
            lines += ["", f"{'total ' + a.dates[1] + ' → ' + a.dates[-1]:<30}"]
        for name in names:
            row = comparison.difference(name, ALL, total=total)
            unit = metric(name).unit
            lines.append(f"{name:<30}{format_value(row['mean_a'], unit):>14}{format_value(row['mean_b'], unit):>14}"
                         f"{format_value(row['diff'], unit):>14}   [{format_value(row['ci_low'], unit)}, {format_value(row['ci_high'], unit)}]")
    lines += _per_fiscal_cost_lines(comparison)
    return "\n".join(lines)


def _p(p: float, low: float, high: float) -> str:
    """A probability with its interval, in per cent: ``92% [85, 96]``."""
    return f"{100 * p:.0f}% [{100 * low:.0f}, {100 * high:.0f}]"


def _change(change: float, low: float, high: float) -> str:
    """A change in probability with its interval, in points: ``+3.0 [+0.4, +6.1] pts``."""
    return f"{100 * change:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] pts"


def _compared_targets(table: pd.DataFrame, all_targets: bool) -> list[str]:
    if table.empty:
        return []
    folded = [] if all_targets else list(table.loc[table["unchanged"].eq(True), "target"])
    width = max(30, *(len(name) + 2 for name in table["target"]))
    lines: list[str] = []
    for row in table.itertuples():
        if row.target in folded:
            continue
        if not lines:
            lines = ["", f"{'targets':<{width}}{'P(met) A [95% CI]':<20}{'P(met) B [95% CI]':<20}change in P [paired 95% CI]"]
        if row.note:
            lines.append(f"{row.target:<{width}}{row.note}")
            continue
        lines.append(f"{row.target:<{width}}{_p(row.p_a, row.p_a_low, row.p_a_high):<20}{_p(row.p_b, row.p_b_low, row.p_b_high):<20}"
                     f"{_change(row.change, row.change_low, row.change_high)}")
    return lines + _folded(folded, "from A to B")


def _compared_assessment(table: pd.DataFrame) -> list[str]:
    """两增 and 两控 at each year-end, per bank and for all banks: P(pass) in A and B and the paired change."""
    year_end = table[table["date"].str.endswith("-12") & table["check"].isin(["两增", "两控"])]
    if year_end.empty:
        return []
    lines = ["", _pad("at year-end", 30) + f"{'P(pass) A [95% CI]':<20}{'P(pass) B [95% CI]':<20}change in P [paired 95% CI]"]
    for check in ("两增", "两控"):
        for row in year_end[year_end["check"] == check].sort_values("year", kind="stable").itertuples():
            lines.append(_pad(f"{check} {row.bank} {row.year}", 30) + f"{_p(row.p_a, row.p_a_low, row.p_a_high):<20}"
                         f"{_p(row.p_b, row.p_b_low, row.p_b_high):<20}{_change(row.change, row.change_low, row.change_high)}")
    return lines


def _per_fiscal_cost_lines(comparison: Comparison) -> list[str]:
    """The extra lending and borrowers per extra CNY of fiscal cost, or why such a ratio means nothing here; nothing
    when the fiscal cost is the same on every path."""
    lending = per_fiscal_cost(comparison, "disbursed")
    if lending["extra_fiscal_cost_low"] == 0 == lending["extra_fiscal_cost_high"]:
        return []
    borrowers = per_fiscal_cost(comparison, "borrowers", total=False)
    cost = (f"{format_value(lending['extra_fiscal_cost'], 'CNY')} [{format_value(lending['extra_fiscal_cost_low'], 'CNY')}, "
            f"{format_value(lending['extra_fiscal_cost_high'], 'CNY')}]")
    lines = ["", f"fiscal cost B − A: {cost} (start-up money included)"]
    for label, row, scale, digits in (("extra lending (disbursed) per extra CNY", lending, 1.0, 2), ("extra borrowers at the end per extra 1万", borrowers, 1e4, 3)):
        if row["note"]:
            lines.append(f"{label:<42}not shown: {row['note']}")
        else:
            lines.append(f"{label:<42}{scale * row['per_cny']:.{digits}f}   [{scale * row['ci_low']:.{digits}f}, {scale * row['ci_high']:.{digits}f}]")
    return lines


def format_summary(results: Results) -> str:
    """The compact text summary ``creditsim run`` prints: end-date stocks and totals over the run, as the
    median and the 5–95% band across paths."""
    s = results.scenario
    first, last = results.dates[1], results.dates[-1]
    lines = [f"creditsim {__version__} · {s.name} · {results.paths} paths · seed {results.seed} · {first} → {last}"]
    if s.sample < 1:
        lines.append(f"simulated as a {field_text('sample', s.sample)} sample of the firms; every count and amount below is scaled back to the whole")
    lines += ["", f"{'at ' + last:<38}{'median':>14}   {'5%–95% band':<28}"]
    for name in END_STOCKS:
        lines.append(_line(name, results.values(name, ALL)[:, -1]))
    opening = results.values("balance", ALL)[:, 0]
    lines.append(_line("balance increase (新增, inclusive book)", results.values("balance", ALL)[:, -1] - opening, unit="CNY"))
    lines += ["", f"{'total ' + first + ' → ' + last:<38}"]
    for name in TOTAL_FLOWS:
        lines.append(_line(name, results.cumulative(name, ALL)))
    lines += _instrument_lines(results, last)
    lines += _target_lines(results)
    lines += _assessment_lines(results)
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (Chinese characters take two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - columns, 0)


#: A bank is reported at risk in a year when its probability of passing the year-end test is below this.
AT_RISK = 0.9


def _target_lines(results: Results) -> list[str]:
    """Each target: the probability it is met with its 95% interval, and the measured value's median and band."""
    table = results.targets()
    if table.empty:
        return []
    lines = ["", f"{'targets':<56}{'P(met)':>8}   {'95% CI':<12}{'median':>12}   5%–95% band"]
    for row in table.itertuples():
        unit = row.unit
        name = f"{row.target} {condition(row.measure, row.metric, row.comparison, row.threshold, unit)} ({row.when})"
        if row.note:
            lines.append(f"{_pad(name, 56)}{row.note}")
            continue
        ci = f"[{100 * row.ci_low:.0f}%, {100 * row.ci_high:.0f}%]"
        if row.measure == "test":  # pass or fail: no value to show
            lines.append(f"{_pad(name, 56)}{100 * row.probability:>7.0f}%   {ci}")
            continue
        band = f"[{format_value(row.p5, unit)}, {format_value(row.p95, unit)}]"
        lines.append(f"{_pad(name, 56)}{100 * row.probability:>7.0f}%   {ci:<12}{format_value(row.median, unit):>12}   {band}")
    plans = cited_plans(list(table["source"]))
    if plans:
        lines.append("set by " + "; ".join(plans))
    own = table[(table["measure"] == "increase") & (table["metric"] != "balance")]
    if len(own):
        lines.append("新增 targets measure the increase of their own metric, not the inclusive book's balance increase above: "
                     + ", ".join(f"{row.target} on {row.metric}" for row in own.itertuples()))
    return lines


def _assessment_lines(results: Results) -> list[str]:
    """两增 and 两控 at each year-end: the probability of passing by bank and year, and the banks at risk."""
    table = results.two_increases()
    year_end = table[table["date"].str.endswith("-12") & table["check"].isin(["两增", "两控"])]
    if year_end.empty:
        return []
    years = sorted(year_end["year"].unique())
    lines = ["", f"{'at year-end: P(pass) [95% CI]':<28}" + "".join(f"{y:>20}" for y in years)]
    at_risk: list[tuple[str, int, str]] = []
    for check in ("两增", "两控"):
        for bank in results.banks:
            rows = year_end[(year_end["bank"] == bank) & (year_end["check"] == check)].set_index("year")
            if rows.empty:
                continue
            cells = []
            for y in years:
                if y not in rows.index:
                    cells.append(f"{'–':>20}")
                    continue
                r = rows.loc[y]
                cells.append(f"{f'{100 * r.probability:.0f}% [{100 * r.ci_low:.0f}, {100 * r.ci_high:.0f}]':>20}")
                if r.probability < AT_RISK and bank != ALL:
                    at_risk.append((bank, y, check))
            lines.append(_pad(f"{check} {bank}", 28) + "".join(cells))
    grouped: dict[str, list[str]] = {}
    for bank, year, check in at_risk:
        grouped.setdefault(bank, []).append(f"{year} {check}")
    lines.append(f"at risk (P < {100 * AT_RISK:.0f}% at a year-end):" + ("" if grouped else " none"))
    lines += [f"  {bank}: {', '.join(items)}" for bank, items in grouped.items()]
    return lines


def _instrument_lines(results: Results, last: str) -> list[str]:
    """Per guarantor and pool: its position at the end date and its totals; the fiscal cost."""
    s = results.scenario
    if not (s.guarantors or s.pools or s.interest_subsidy):
        return []
    lines = ["", f"{'instruments at ' + last:<38}"]
    for name in s.guarantors:
        for metric_name in ("guarantee_outstanding", "guarantor_capital", "guarantee_leverage"):
            lines.append(_line(f"{name}.{metric_name}", results.values(metric_name, name)[:, -1], unit=metric(metric_name).unit))
        lines.append(_line(f"{name}.claims (total)", results.cumulative("guarantee_claims", name), unit="CNY"))
    for name in s.pools:
        lines.append(_line(f"{name}.pool_balance", results.values("pool_balance", name)[:, -1], unit="CNY"))
        lines.append(_line(f"{name}.payouts (total)", results.cumulative("pool_payouts", name), unit="CNY"))
    lines += _budget_lines(budget(results))
    events = instrument_events(results)
    if len(events):
        lines += ["", f"{'limits reached by ' + last:<50}{'probability':>12}   {'95% CI':<14}first month (median)"]
        for row in events.itertuples():
            ci = f"[{100 * row.ci_low:.0f}%, {100 * row.ci_high:.0f}%]"
            first = row.date_median if isinstance(row.date_median, str) else "–"
            lines.append(f"{row.entity + ': ' + row.event:<50}{100 * row.probability:>11.0f}%   {ci:<14}{first}")
    return lines


def _line(name: str, values: np.ndarray, unit: str | None = None) -> str:
    unit = unit or metric(name).unit
    values = values[~np.isnan(values)]
    if values.size == 0:
        return f"{name:<38}{'n/a':>14}"
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return f"{name:<38}{format_value(p50, unit):>14}   [{format_value(p5, unit)}, {format_value(p95, unit)}]"


#: How the bottom lines of a budget (:attr:`creditsim.Budget.totals`) are labelled.
BOTTOM_LINES = {
    "one-off": "one-off (start-up capital, scheduled injections)", "recurring": "recurring (budgets, top-ups, subsidies)",
    "outlay": "outlay", "outlay (present value)": "  … present value at {rate:g}%", "left at the end": "left in the instruments at the end",
    "net cost": "net cost (outlay − what is left)", "net cost (present value)": "  … present value at {rate:g}%",
}
_BUDGET_WIDTH = 52


def _budget_lines(result: Budget, by_year: bool = False) -> list[str]:
    """The government's money for the instruments: each instrument's items over the run (and by year), one-off and
    recurring, the outlay at present value, what is left in the instruments at the end and the net cost."""
    if result.items.empty:
        return []
    lines_by = result.by_line()
    years = result.years if by_year else []
    lines = ["", f"{'budget (government money), median':<{_BUDGET_WIDTH}}{''.join(f'{y:>12}' for y in years)}{'total':>12}   5%–95% band"]
    for row in lines_by.to_dict("records"):
        cells = "".join(f"{format_value(row[y], 'CNY'):>12}" for y in years)
        lines.append(_stat_line(f"{row['instrument']}: {row['item']} ({row['timing']})", (row["median"], row["p5"], row["p95"]), cells))
    pad = " " * (12 * len(years)) if by_year else ""
    lines += [_stat_line(BOTTOM_LINES[row.line].format(rate=100 * result.discount_rate), (row.median, row.p5, row.p95), pad)
              for row in result.totals.itertuples()]
    return lines


def _stat_line(name: str, stats: tuple[float, float, float], cells: str = "") -> str:
    """``name``, then ``cells``, then the median and the 5–95% band of an amount (``stats``: median, p5, p95)."""
    median, p5, p95 = stats
    return f"{_pad(name, _BUDGET_WIDTH)}{cells}{format_value(median, 'CNY'):>12}   [{format_value(p5, 'CNY')}, {format_value(p95, 'CNY')}]"


def _budget(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    if args.baseline is not None:
        base = load_scenario(args.baseline, args.baseline_overrides)
    elif args.baseline_overrides:
        base = load_scenario(args.scenario, args.overrides + args.baseline_overrides)
    else:
        base = baseline_scenario(scenario)
    if args.xlsx:
        _check_file(args.xlsx, (".xlsx",))
    if args.csv:
        _check_file(args.csv, (".csv",))
    comparison = compare(base, scenario, paths=args.paths, seed=args.seed, **_backend(args))
    result = budget(comparison.variant, baseline=comparison.base)
    print(format_budget(comparison.variant, result))
    written = []
    if args.xlsx:
        written.append(f"workbook: {write_budget_workbook(result, args.xlsx)}")
    if args.csv:
        written.append(f"table: {write_file(Path(args.csv), lambda tmp: result.items.to_csv(tmp, index=False, encoding='utf-8-sig'), 'table')}")
    if written:
        print("\nwritten: " + "; ".join(written))
    return 0


def format_budget(results: Results, result: Budget) -> str:
    """The text ``creditsim budget`` prints: the budget by instrument, item and year, its bottom lines, and the
    fiscal cost per extra 亿 of lending against the baseline."""
    s = results.scenario
    lines = [f"creditsim {__version__} · budget of {s.name} · {results.paths} paths · seed {results.seed} · "
             f"{results.dates[1]} → {results.dates[-1]} · common random numbers"]
    if result.items.empty:
        lines.append("\nthe scenario has no guarantor, re-guarantor, pool or interest subsidy: the government spends nothing on it")
    lines += _budget_lines(result, by_year=True)
    per = result.per_extra_lending
    if per is not None:
        lines += ["", f"against the baseline {per['baseline']} (same seed and paths), lending measured as the balance increase (新增) over the run:",
                  f"{_pad('extra lending (mean)', _BUDGET_WIDTH)}{format_value(per['extra_lending'], 'CNY'):>12}   "
                  f"± {format_value(Z95 * per['extra_lending_se'], 'CNY')} (95%)"]
        for name, label in (("outlay", "outlay"), ("net_cost", "net cost")):
            lines.append(f"{_pad(f'extra {label} (mean)', _BUDGET_WIDTH)}{format_value(per[f'extra_{name}'], 'CNY'):>12}")
            head = _pad(f"{label} per extra 亿 of lending", _BUDGET_WIDTH)
            if per[f"{name}_note"]:
                lines.append(f"{head}{'–':>12}   not given: {per[f'{name}_note']}")
            else:
                lines.append(f"{head}{format_value(per[f'{name}_per_yi'], 'CNY'):>12}   "
                             f"[{format_value(per[f'{name}_per_yi_ci_low'], 'CNY')}, {format_value(per[f'{name}_per_yi_ci_high'], 'CNY')}] (95%)")
    return "\n".join(lines)


def write_budget_workbook(result: Budget, path: str | Path) -> Path:
    """The budget as an Excel workbook: ``budget`` (by instrument, item and year), ``bottom line`` and, against a
    baseline, ``per extra lending`` (amounts, and costs per extra 亿, in 亿元); amounts in 亿元 with their unit."""
    money = dict.fromkeys(("median", "p5", "p95", "mean", "mcse"), "CNY")
    sheets = {"budget": Sheet(result.items, money), "bottom line": Sheet(result.totals, money)}
    per = result.per_extra_lending
    if per is not None:
        rows = [(key, per[key], "CNY") for key in per.index if key.startswith("extra_") or (key.endswith("per_yi") or "_per_yi_" in key)]
        rows += [(key, per[key], "") for key in ("baseline", "outlay_note", "net_cost_note", "note")]
        sheets["per extra lending"] = Sheet(pd.DataFrame(rows, columns=["item", "value", "unit"]), {"value": ROW})
    return write_workbook(path, sheets)


def format_bank(table: pd.DataFrame, bank: str) -> str:
    """One bank's rows of :func:`creditsim.bank_table` (:func:`creditsim.results.banks.bank_view`): each item at each
    year-end (and the last date) as the median, with the 5–95% band at the last date (for 两增 P(pass), its 95%
    interval)."""
    dates, rows = bank_view(table, bank)
    lines = [f"bank {bank}: median at" + " " * 18 + "".join(f"{d:>14}" for d in dates) + f"   band at {dates[-1]}"]
    for item, medians, band in rows:
        lines.append(f"{_pad(item, 40)}{''.join(f'{m:>14}' for m in medians)}" + ("" if band is None else f"   [{band[0]}, {band[1]}]"))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
