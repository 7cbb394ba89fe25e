"""A seeded fuzz over every input creditsim reads: scenario files, ``--set``, flags, saved results, checkpoints and the
loan trace (issue 22). Each case is one small, deterministic mutation drawn from a numpy Generator seeded with
:data:`SEED`, run through the command line, and held to one contract (:func:`check`):

* the command exits 0 or 2, within a time bound (a hang fails), without an unbounded allocation (a case that can
  allocate without bound runs in a fresh interpreter limited to :data:`ADDRESS_SPACE` bytes; a MemoryError, a kill
  or a crash fails; one that can block on a special file runs here under an alarm, which interrupts a blocking
  open);
* on 2, stderr is exactly one line starting ``creditsim: error:``, with nothing before or after it (no traceback,
  no ``Exception ignored``, no warning, no library log), and nothing on stdout: the refusal came before the work;
  on 0, stderr holds only creditsim's one-line warnings;
* a case may say more: that the input must be refused (it changes what the numbers mean, or the issue requires it),
  or accepted (it is valid); a saved directory that loads must mean exactly what the original meant (every number
  bit for bit, the seed, the path numbers, the traced paths, the scenario and the trace).

The surfaces and what each mutates, with the failure class of the issue each covers (0: a mistake that held before
the issue, kept as a guard):

==========  =====  ==========================================================================================
surface     class  mutation
==========  =====  ==========================================================================================
scenario    1      a dotted table header, or an inline table, nested hundreds to thousands of levels deep
scenario    2      an integer field written with more digits than Python converts
scenario    3      a bank named ``all`` (run), or with mathtext such as ``$\\frac$`` (a year's run with --report)
scenario    10     a target with a negative threshold, as a number or with its unit (must be accepted)
scenario    0      a byte-order mark (accepted), truncation at a random byte, odd unicode in the name, a value of
                   the wrong type, a section missing, an unknown key
set         1      a key thousands of levels deep
set         2      an integer value of thousands of digits; a sweep range of 10^8–10^12 values (isolated)
set         10     a negative numeric threshold (must be accepted)
set         0      a key with an empty part or full-width letters, no '=', a value nested too deeply
flags       2      --paths astronomical or in the tens of millions and up (isolated); --trace of a huge number
flags       4      --out, --report, --xlsx, --csv, --checkpoint with a 256–400 character name, '' or an unwritable
                   place; --scheduler tls://, ucx:// or ''; a FIFO as a scenario or an observations file
flags       9      --xlsx on a disk that fills up while the workbook is written (a file size limit, isolated)
flags       10     solve --range beyond floats; calibrate --fit with an empty item
flags       0      --paths, --seed, --chunk-size, --threads, --trace with garbage
results     5      metrics.parquet with rows shuffled, a label column dropped or rotated or two labels swapped,
                   values NaN, infinite or negative; manifest.json re-signed with seed, paths, path_ids, traced,
                   format or version edited; the parquet's pandas metadata malformed or nested deeply;
                   a FIFO in place of one of its files; manifest.json a link to an endless device (isolated)
trace       5      trace.parquet with amounts NaN, infinite or negative, an unknown bank, a month that is not one,
                   a column of another type, rows shuffled, malformed pandas metadata; a loan of an untraced path (0)
checkpoint  6      a task file of another seed's checkpoint; checkpoint.json with the seed or a bank's rate edited,
                   entries mistyped, missing or huge (isolated); a task's arrays NaN, negative, float32, of another
                   shape or dtype, missing or extra, its trace records out of range, the file truncated
checkpoint  7      the checkpoint as a kill leaves it while it is created (only its manifest's temporary file, empty
                   or half written) or a task is written (a task's temporary file half written, or none): the
                   same command, or --resume where there is a manifest, must continue it to the same results
==========  =====  ==========================================================================================

The runs are three months of a 1:50 sample of the tests' illustrative city, two paths (:data:`TINY`); the results,
trace and checkpoints the cases edit are made once per module (:class:`World`). Every edit of a results directory
is re-hashed and re-signed (the manifest's digest recomputed, as anyone can without a key), so only what the loader
reads and checks can refuse it; :func:`test_the_fuzz_tools_change_nothing_by_themselves` shows an untouched
re-signed copy loads as the original. Class 8 (the memory of the main process) is tested by test_memory.py.

The default suite runs :data:`CASES` case(s) of each kind (a minute or less); ``CREDITSIM_FUZZ_CASES=N`` draws N of
each (each with other random parameters), ``CREDITSIM_FUZZ_SEED=S`` another seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import string
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from creditsim import CreditsimError, Results
from creditsim.metrics import SCOPE_METRICS
from creditsim.present.cli import main
from creditsim.scenario import json_digest
from helpers import BASE_TOML, within

SEED = int(os.environ.get("CREDITSIM_FUZZ_SEED", "22"))
#: Cases drawn of each kind of mutation.
CASES = int(os.environ.get("CREDITSIM_FUZZ_CASES", "1"))
#: The address space of a fresh interpreter running an isolated case, bytes.
ADDRESS_SPACE = 3 * 1024**3
#: How long a case may run: in this process, and in a fresh interpreter (which imports creditsim first), seconds.
IN_PROCESS_SECONDS, ISOLATED_SECONDS = 60, 120
#: How long reading a special file may block before the case counts as hung, seconds.
HANG_SECONDS = 10

BASE = str(BASE_TOML)
TEXT = BASE_TOML.read_text(encoding="utf-8")
BANKS = ("big_bank", "city_bank", "rural_bank")
SHORT = ["--set", "calendar.months=3"]
#: Three months of a 1:50 sample of the firms (some 2,000 loans a path), two paths: the runs the cases make.
TINY = [*SHORT, "--set", "sample=1:50", "--paths", "2"]
#: The run the checkpoints hold, and the command that makes them (seed 1; the foreign one has seed 2).
CHECKPOINTED = ["run", BASE, *TINY, "--chunk-size", "1", "--trace", "0"]
LABELS = ("path", "date", "bank", "metric")
#: Metrics whose every value is a finite amount or count ≥ 0.
AMOUNTS = ("balance", "borrowers", "loans", "disbursed", "npl_balance")
OUTPUTS = {"--out": "", "--report": ".html", "--xlsx": ".xlsx", "--csv": "", "--checkpoint": ""}


# ================================================================================================ calls and outcomes
@dataclass
class Call:
    """How a case is run and what it must give besides the contract.

    ``argv`` runs the command; ``load`` instead loads a results directory (``creditsim report`` then shows the
    refusal). ``expect``: "refused", "accepted" or "either". ``reference``: what the results written to (or
    loaded from) ``written`` must mean when the command exits 0. ``isolated`` runs it in a fresh interpreter (with
    ``file_size``, a limit on the size of files it writes); ``after_work``: the failure may come after the run."""

    argv: list[str] | None = None
    load: Path | None = None
    expect: str = "either"
    reference: Results | None = None
    written: Path | None = None
    isolated: bool = False
    file_size: int | None = None
    after_work: bool = False
    seconds: float = IN_PROCESS_SECONDS


@dataclass
class Outcome:
    code: int | None
    out: str = ""
    err: str = ""
    escaped: str | None = None  # the traceback of an exception that escaped
    hung: bool = False


class Hung(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException, so no ``except Exception`` hides it)."""


@contextlib.contextmanager
def _as_a_user_sees_it() -> Iterator[tuple[io.StringIO, io.StringIO, list[warnings.WarningMessage]]]:
    """stdout and stderr captured; the warnings Python would print (each the first time: here every time, as the
    registry of earlier cases must not hide one), recorded, since under pytest they reach no stream; library logs
    printed to stderr as they are with no logging set up (pytest's handlers taken off the root logger)."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers, root.level = [], logging.WARNING
    try:
        with warnings.catch_warnings(record=True) as shown, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):  # hidden by default
                warnings.simplefilter("ignore", hidden)
            yield out, err, shown
    finally:
        root.handlers, root.level = handlers, level


def _in_process(run: Callable[[], Any], seconds: float) -> Outcome:
    """``run()`` (the command, or a load) in this process; its return value is the exit code. Warnings that are not
    creditsim's own lines count as printed on stderr (before the rest)."""
    code, escaped, hung = None, None, False
    with _as_a_user_sees_it() as (out, err, shown):
        try:
            with within(seconds, Hung):
                try:
                    code = run()
                except SystemExit as exit_:  # argparse's usage errors
                    code = exit_.code
        except Hung:
            hung = True
        except KeyboardInterrupt:
            raise
        except BaseException:  # anything that escapes is the failure being looked for
            escaped = traceback.format_exc(limit=-8)
    printed = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown) + err.getvalue()
    return Outcome(code, out.getvalue(), printed, escaped, hung)


#: Sets the limits (argv: address space, file size or 0), then becomes the command: a small interpreter of its own
#: rather than a preexec_fn, which is not safe in the threads that start the isolated cases.
LIMITED = """
import os, resource, signal, sys
space, size = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (space, space))
if size:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
os.execv(sys.executable, [sys.executable, "-m", "creditsim.present.cli", *sys.argv[3:]])
"""


def _isolated(argv: list[str], cwd: Path, file_size: int | None) -> Outcome:
    """The command in a fresh interpreter limited to ADDRESS_SPACE bytes (and ``file_size`` bytes a file), killed
    after ISOLATED_SECONDS."""
    try:
        done = subprocess.run([sys.executable, "-c", LIMITED, str(ADDRESS_SPACE), str(file_size or 0), *argv], capture_output=True, text=True,
                              cwd=cwd, timeout=ISOLATED_SECONDS)
    except subprocess.TimeoutExpired as expired:
        text = [b.decode(errors="replace") if isinstance(b, bytes) else (b or "") for b in (expired.stdout, expired.stderr)]
        return Outcome(None, *text, hung=True)
    if done.returncode < 0:
        return Outcome(None, done.stdout, done.stderr, escaped=f"killed by signal {-done.returncode}")
    return Outcome(done.returncode, done.stdout, done.stderr)


# ================================================================================================ the contract
def check(call: Call, outcome: Outcome, bound: str) -> None:
    """The contract every case is held to (see the module's docstring); ``bound`` names the time bound."""
    assert not outcome.hung, f"no answer within {bound}: a hang (stderr: {outcome.err[-300:]!r})"
    assert outcome.escaped is None, f"an exception escaped:\n{outcome.escaped}\nstderr: {outcome.err[-2000:]}"
    err = outcome.err
    assert outcome.code in (0, 2), f"exit {outcome.code}, stderr: {err[-2000:]}"
    for noise in ("Traceback", "Exception ignored", "MemoryError"):
        assert noise not in err, f"{noise!r} on stderr: {err[-2000:]}"
    lines = err.splitlines()
    if outcome.code == 2:
        assert len(lines) == 1 and err.endswith("\n") and lines[0].startswith("creditsim: error: "), \
            f"a refusal must be exactly one line 'creditsim: error: …', got {len(lines)} lines: {err[-2000:]}"
        if not call.after_work:
            assert outcome.out == "", f"refused after the work started (stdout: {outcome.out[:200]!r}); error: {lines[0]}"
        assert call.expect != "accepted", f"a valid input was refused: {lines[0]}"
    else:
        assert all(line.startswith("creditsim: warning: ") for line in lines), f"more than creditsim's warnings on stderr: {err[-2000:]}"
        assert call.expect != "refused", "accepted (exit 0) what must be refused"
        if call.reference is not None:
            loaded, results = _load(call.written, IN_PROCESS_SECONDS)
            assert loaded.code == 0 and not loaded.err, f"what the command wrote does not load: {loaded.escaped or loaded.err}"
            difference = differs(results, call.reference)
            assert difference is None, f"written with exit 0, it means something else than it claims: {difference}"


def _load(directory: Path, seconds: float) -> tuple[Outcome, Results | None]:
    """Results.load in this process, as an outcome (0: it loaded, 2: creditsim refused it) and what it loaded."""
    found: list[Results] = []

    def load() -> int:
        try:
            found.append(Results.load(directory))
        except CreditsimError:
            return 2
        return 0

    outcome = _in_process(load, seconds)
    return outcome, (found[0] if found else None)


def run_case(call: Call, cwd: Path) -> None:
    """Run a case in this process and hold it to :func:`check`. A results directory (``call.load``) that loads must
    mean what the original meant; one that is refused, is refused by ``creditsim report`` in one line."""
    if call.load is None:
        check(call, _in_process(partial(main, call.argv), call.seconds), f"{call.seconds} s")
        return
    loaded, results = _load(call.load, call.seconds)
    if loaded.code == 0:
        assert call.expect != "refused", "a changed results directory loaded (it must be refused)"
        difference = differs(results, call.reference)
        assert difference is None, f"a changed results directory loaded and means something else: {difference}"
        assert not loaded.err, f"loading printed {loaded.err[-2000:]}"
        return
    if loaded.code == 2:  # the refusal as the command shows it
        loaded = _in_process(partial(main, ["report", str(call.load), "-o", str(cwd / "report.html")]), call.seconds)
    check(call, loaded, f"{call.seconds} s")


def differs(a: Results, b: Results) -> str | None:
    """What differs in meaning between two results (None: nothing): the scenario, seed, path numbers, traced paths,
    dates, every number bit for bit, and the trace (as a set of loans: its row order means nothing)."""
    for name in ("seed", "path_ids", "traced", "dates", "entities"):
        if getattr(a, name) != getattr(b, name):
            return f"{name}: {getattr(a, name)} != {getattr(b, name)}"
    if a.scenario.digest() != b.scenario.digest():
        return "the scenario"
    for scope, values in b.groups.items():
        if a.groups[scope].dtype != values.dtype or a.groups[scope].shape != values.shape or a.groups[scope].tobytes() != values.tobytes():
            return f"the {scope} metrics"
    ta, tb = (t.sort_values(list(t.columns), kind="stable").reset_index(drop=True) for t in (a.trace, b.trace))
    try:
        pd.testing.assert_frame_equal(ta, tb)
    except AssertionError as exc:
        return f"the trace: {' '.join(str(exc).split())[:300]}"
    return None


# ================================================================================================ the world the cases edit
@dataclass
class World:
    """What the cases copy and edit: the results of :data:`CHECKPOINTED` with seed 1 (path 0 traced) and its
    checkpoint (one task a path), and the checkpoint of the same run with seed 2."""

    results: Path
    original: Results
    checkpoint: Path
    foreign: Path


def _command(argv: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0, argv


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    _command([*CHECKPOINTED, "--seed", "1", "--checkpoint", str(root / "ck1"), "--out", str(root / "results")])
    _command([*CHECKPOINTED, "--seed", "2", "--checkpoint", str(root / "ck2"), "--out", str(root / "results2")])
    return World(root / "results", Results.load(root / "results"), root / "ck1", root / "ck2")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_results(world: World, tmp: Path) -> Path:
    copy = tmp / "results"
    shutil.copytree(world.results, copy)
    return copy


def resign(directory: Path, change: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Edit the manifest with ``change``, then record the data files' hashes and the manifest's digest again, as a
    deliberate editor would."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    if change is not None:
        change(manifest)
    manifest["files"] = {name: _sha256(directory / name) for name in manifest["files"]}
    manifest["manifest_sha256"] = json_digest(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def edit_table(directory: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    """Read a parquet file of a results directory, change it, write it back and re-sign."""
    frame = pd.read_parquet(directory / name)
    frame = change(frame) if change is not None else frame
    frame.to_parquet(directory / name, index=False)
    resign(directory)


def edit_pandas_metadata(directory: Path, name: str, metadata: str) -> None:
    table = pq.read_table(directory / name)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), b"pandas": metadata.encode()}), directory / name)
    resign(directory)


# ================================================================================================ the cases
@dataclass(frozen=True)
class Case:
    surface: str
    issue_class: int
    kind: str
    what: str
    make: Callable[[Path, World], Call] = field(compare=False)

    @property
    def id(self) -> str:
        return f"c{self.issue_class}:{self.surface}:{self.kind}:{self.what}"


Draw = Callable[[np.random.Generator], tuple[str, Callable[[Path, World], Call]]]
KINDS: list[tuple[str, int, str, Draw]] = []


def kind(surface: str, issue_class: int, name: str) -> Callable[[Draw], Draw]:
    """Register a kind of mutation: ``draw(rng)`` returns a short description and ``make(tmp, world)``."""
    def register(draw: Draw) -> Draw:
        KINDS.append((surface, issue_class, name, draw))
        return draw
    return register


def pick(rng: np.random.Generator, options: Any) -> Any:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def scenario_file(tmp: Path, text: str | bytes) -> str:
    path = tmp / "scenario.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def validate(text: str | bytes, expect: str = "either") -> Callable[[Path, World], Call]:
    return lambda tmp, world: Call(["validate", scenario_file(tmp, text)], expect=expect)


def digits(rng: np.random.Generator) -> str:
    """An integer longer than Python converts from text (4300 digits)."""
    return "9" * int(rng.integers(4301, 20_000))


def renamed(text: str, old: str, new: str) -> str:
    """The scenario text with a bank renamed, in its table header and wherever it is named."""
    return text.replace(f"[banks.{old}]", f"[banks.'{new}']").replace(f'"{old}"', json.dumps(new))


# ------------------------------------------------------------------------------------------------ scenario files
@kind("scenario", 1, "deep-header")
def _(rng):
    depth = int(rng.integers(600, 3000))
    return f"depth={depth}", validate(TEXT + "\n[" + ".".join(["zz"] + ["a"] * depth) + "]\nx = 1\n", "refused")


@kind("scenario", 1, "deep-inline-table")
def _(rng):
    depth, bank = int(rng.integers(600, 3000)), pick(rng, BANKS)
    return f"depth={depth}", validate(TEXT.replace(f"[banks.{bank}]\n", f"[banks.{bank}]\nzz = {'{a=' * depth}1{'}' * depth}\n"), "refused")


INTEGER_LINES = [line for line in TEXT.splitlines() if line.split("=")[-1].strip().isdigit() and "=" in line and not line.startswith("#")]


@kind("scenario", 2, "huge-integer")
def _(rng):
    line = pick(rng, INTEGER_LINES)
    return line.split("=")[0].strip(), validate(TEXT.replace(line, f"{line.split('=')[0]}= {digits(rng)}", 1), "refused")


@kind("scenario", 3, "bank-named-all")
def _(rng):
    bank = pick(rng, BANKS)
    return bank, lambda tmp, world: Call(["run", scenario_file(tmp, renamed(TEXT, bank, "all")), *TINY], expect="refused")


@kind("scenario", 3, "bank-named-mathtext")
def _(rng):
    bank, name = pick(rng, BANKS), pick(rng, ["$\\frac$", "$x^$", "$\\sqrt{$", "a$b$\\"])
    return f"{bank}={name}", lambda tmp, world: Call(["run", scenario_file(tmp, renamed(TEXT, bank, name)), "--set", "calendar.months=12", "--set", "sample=1:50", "--paths", "2",
                                                     "--report", str(tmp / "report.html")])


@kind("scenario", 10, "negative-threshold")
def _(rng):
    n = int(rng.integers(1, 1000))
    metric, threshold = pick(rng, [("borrowers", f"{-n}"), ("npl_ratio", f"{-n / 1e5}"), ("balance", f'"-{n}亿"'), ("borrowers", f'"-{n}"')])
    measure = "ratio" if metric == "npl_ratio" else "stock"
    target = f'\n[targets.fuzz]\nmetric = "{metric}"\nmeasure = "{measure}"\ndate = "2021-12"\ncomparison = ">="\nthreshold = {threshold}\n'
    return f"{metric}={threshold}", validate(TEXT + target, "accepted")


@kind("scenario", 0, "byte-order-mark")
def _(rng):
    return "", validate(b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "accepted")


@kind("scenario", 0, "truncated")
def _(rng):
    data = TEXT.encode("utf-8")
    cut = int(rng.integers(1, len(data)))
    return f"at={cut}", validate(data[:cut])


ODD = ["\u202eevil", "a\u200db", "\u0301", "🏦" * 50, "\\u0000", "\\u0085", "x" * 5000, "\\ud800", "名\\t称"]


@kind("scenario", 0, "odd-unicode-name")
def _(rng):
    name = pick(rng, ODD)
    return f"#{ODD.index(name)}", validate(TEXT.replace('name = "illustrative-city"', f'name = "{name}"'))


SCALAR_LINES = [line for line in TEXT.splitlines() if " = " in line and not line.startswith("#") and not line.strip().startswith("[")]


@kind("scenario", 0, "wrong-type")
def _(rng):
    line, value = pick(rng, SCALAR_LINES), pick(rng, ["[1, 2]", "{a = 1}", "true", '"x"', "1979-05-27T07:32:00Z", "nan", "-inf"])
    return line.split("=")[0].strip(), validate(TEXT.replace(line, f"{line.split('=')[0]}= {value}", 1))


HEADERS = [line for line in TEXT.splitlines() if line.startswith("[")]


@kind("scenario", 0, "section-missing")
def _(rng):
    header = pick(rng, HEADERS)
    start = TEXT.index(header)
    following = [TEXT.index(h) for h in HEADERS if TEXT.index(h) > start]
    return header, validate(TEXT[:start] + TEXT[min(following, default=len(TEXT)):])


@kind("scenario", 0, "unknown-key")
def _(rng):
    header = pick(rng, HEADERS)
    return header, validate(TEXT.replace(header + "\n", header + "\nzz_unknown = 1\n", 1), "refused")


# ------------------------------------------------------------------------------------------------ --set
def validate_set(*items: str, expect: str = "either") -> Callable[[Path, World], Call]:
    return lambda tmp, world: Call(["validate", BASE, *(a for item in items for a in ("--set", item))], expect=expect)


@kind("set", 1, "deep-key")
def _(rng):
    depth = int(rng.integers(1000, 5000))
    return f"depth={depth}", validate_set(pick(rng, ["zz", "banks.big_bank", "targets"]) + ".a" * depth + "=1", expect="refused")


@kind("set", 2, "huge-integer")
def _(rng):
    key, sign = pick(rng, ["calendar.months", "firms.segments.micro.firms", "risk.recovery_lag_months", "banks.city_bank.rate"]), pick(rng, ["", "-"])
    return f"{key}={sign}9…", validate_set(f"{key}={sign}{digits(rng)}", expect="refused")


@kind("set", 2, "sweep-grid-too-large")
def _(rng):
    n = int(10 ** rng.uniform(8, 12))
    return f"n={n}", lambda tmp, world: Call(["sweep", BASE, "--set", f"banks.big_bank.max_pd=0.01:0.2:{n}", "--paths", "2"], expect="refused", isolated=True)


@kind("set", 10, "negative-threshold")
def _(rng):
    n = int(rng.integers(1, 10_000))
    return f"-{n}", validate_set("targets.fuzz.metric=borrowers", "targets.fuzz.measure=stock", "targets.fuzz.date=2021-12", f"targets.fuzz.threshold=-{n}",
                                 expect="accepted")


@kind("set", 0, "malformed-item")
def _(rng):
    item = pick(rng, ["banks..max_pd=0.1", "banks.big_bank.ｍａｘ_pd=0.1", "calendar.months", "=1", "name=" + "[" * 3000 + "]" * 3000,
                      "banks.big_bank.max_pd=0.1:0.2:3", "calendar.months=1e400", "calendar.start='2021-13'"])
    return item[:24], validate_set(item)


# ------------------------------------------------------------------------------------------------ flags
@kind("flags", 2, "paths-astronomical")
def _(rng):
    text = str(10 ** int(rng.integers(12, 30)))
    text = pick(rng, [text, f"{int(text):_}"])
    return f"{len(text)}-chars", lambda tmp, world: Call(["run", BASE, *SHORT, "--paths", text], expect="refused", isolated=True)


@kind("flags", 2, "paths-too-many")
def _(rng):
    paths = int(10 ** rng.uniform(np.log10(5e7), np.log10(3e9)))
    return str(paths), lambda tmp, world: Call(["run", BASE, *SHORT, "--paths", str(paths)], expect="refused", isolated=True)


@kind("flags", 2, "trace-huge")
def _(rng):
    number = str(10 ** int(rng.integers(10, 40)))
    return f"{len(number)}-digits", lambda tmp, world: Call(["run", BASE, *TINY, "--trace", number, "--out", str(tmp / "out")], expect="refused")


@kind("flags", 4, "name-too-long")
def _(rng):
    flag, length = pick(rng, OUTPUTS), int(rng.integers(256, 400))
    return f"{flag}={length}", lambda tmp, world: Call(["run", BASE, *TINY, flag, str(tmp / ("x" * length + OUTPUTS[flag]))], expect="refused")


@kind("flags", 4, "empty-value")
def _(rng):
    flag = pick(rng, [*OUTPUTS, "--scheduler"])
    return flag, lambda tmp, world: Call(["run", BASE, *TINY, flag, ""], expect="refused")


def _unwritable(tmp: Path, how: str) -> Path:
    """A place nothing can be written: a read-only directory (for root, who writes anywhere, /proc), or below a file."""
    if how == "read-only":
        if os.geteuid() == 0:
            return Path("/proc") / "creditsim-fuzz"
        (tmp / "read-only").mkdir()
        (tmp / "read-only").chmod(0o555)
        return tmp / "read-only" / "sub"
    (tmp / "a-file").write_text("", encoding="utf-8")
    return tmp / "a-file" / "sub"


@kind("flags", 4, "unwritable")
def _(rng):
    flag, how = pick(rng, OUTPUTS), pick(rng, ["read-only", "below-a-file"])
    return f"{flag}:{how}", lambda tmp, world: Call(["run", BASE, *TINY, flag, str(_unwritable(tmp, how) / f"x{OUTPUTS[flag]}")], expect="refused")


@kind("flags", 4, "scheduler-protocol")
def _(rng):
    address = pick(rng, ["tls://127.0.0.1:1", "ucx://127.0.0.1:1"])
    return address, lambda tmp, world: Call(["run", BASE, *TINY, "--scheduler", address])


def _fifo(tmp: Path, name: str) -> str:
    path = tmp / name
    os.mkfifo(path)
    return str(path)


OBSERVATIONS = "date,quantity,value\n2021-03,balance,800亿\n"


@kind("flags", 4, "fifo-input")
def _(rng):
    command = pick(rng, ["validate", "run", "calibrate"])

    def make(tmp: Path, world: World) -> Call:
        if command == "calibrate":
            argv = ["calibrate", BASE, *SHORT, "--data", _fifo(tmp, "data.csv"), "--fit", "demand.reborrow_prob", "--paths", "2"]
        else:
            argv = [command, _fifo(tmp, "scenario.toml"), *(TINY if command == "run" else [])]
        return Call(argv, expect="refused", seconds=HANG_SECONDS)
    return command, make


@kind("flags", 9, "xlsx-on-a-full-disk")
def _(rng):
    size = int(rng.integers(20_000, 70_000))  # below the workbook's 72 KB, and past where openpyxl writes its first part
    return f"{size}-bytes", lambda tmp, world: Call(["run", BASE, *TINY, "--xlsx", str(tmp / "w.xlsx")], isolated=True, file_size=size, after_work=True)


@kind("flags", 10, "range-beyond-floats")
def _(rng):
    lo = int(rng.integers(309, 400))
    range_ = pick(rng, [f"1e{lo}:1e{lo + 1}", f"1:1e{lo}", f"-1e{lo}:1"])
    return range_, lambda tmp, world: Call(["solve", BASE, "--target", "new_lending", "--vary", "banks.big_bank.max_pd", f"--range={range_}", "--paths", "2"],
                                          expect="refused")


@kind("flags", 10, "empty-list-item")
def _(rng):
    fit = pick(rng, [",", " , ", "demand.reborrow_prob,", ",demand.reborrow_prob"])

    def make(tmp: Path, world: World) -> Call:
        (tmp / "data.csv").write_text(OBSERVATIONS, encoding="utf-8")
        return Call(["calibrate", BASE, *SHORT, "--data", str(tmp / "data.csv"), "--fit", fit, "--paths", "2", "--max-evaluations", "2"], expect="refused")
    return repr(fit), make


@kind("flags", 0, "garbage-numbers")
def _(rng):
    flag, value = pick(rng, ["--paths", "--seed", "--chunk-size", "--threads"]), pick(rng, ["-5", "0", "abc", "1e3", "0x10", "²", "", " 2", "9" * 30])
    return f"{flag}={value[:8]}", lambda tmp, world: Call(["run", BASE, *SHORT, flag, value, *(["--paths", "2"] if flag != "--paths" else [])])


@kind("flags", 0, "garbage-trace")
def _(rng):
    value = pick(rng, ["0,,1", "-1", "a", "0,0", "1.5", ""])
    return repr(value), lambda tmp, world: Call(["run", BASE, *TINY, "--trace", value, "--out", str(tmp / "out")])


# ------------------------------------------------------------------------------------------------ results
def results_case(edit: Callable[[Path], None], expect: str = "either") -> Callable[[Path, World], Call]:
    """Copy the world's results, ``edit`` the copy, and load it: refused, or the original's meaning."""
    def make(tmp: Path, world: World) -> Call:
        copy = copy_results(world, tmp)
        edit(copy)
        return Call(load=copy, expect=expect, reference=world.original)
    return make


@kind("results", 5, "rows-shuffled")
def _(rng):
    seed = int(rng.integers(2**31))
    return f"seed={seed}", results_case(lambda d: edit_table(d, "metrics.parquet", lambda f: f.sample(frac=1.0, random_state=seed).reset_index(drop=True)))


@kind("results", 5, "label-dropped")
def _(rng):
    label = pick(rng, LABELS)
    return label, results_case(lambda d: edit_table(d, "metrics.parquet", lambda f: f.drop(columns=[label])), "refused")


def _rolled(column: pd.Series, by: int) -> Any:
    """The column rotated by ``by`` rows or, where that leaves it as it was (a label repeating with that period),
    by the next number of rows that changes it."""
    categorical = isinstance(column.dtype, pd.CategoricalDtype)
    values = column.cat.codes.to_numpy() if categorical else column.to_numpy()
    while np.array_equal(np.roll(values, by), values):
        by += 1
    return pd.Categorical.from_codes(np.roll(values, by), dtype=column.dtype) if categorical else np.roll(values, by)


@kind("results", 5, "label-rotated")
def _(rng):
    label, by = pick(rng, LABELS), int(rng.integers(1, 2000))

    def edit(f: pd.DataFrame) -> pd.DataFrame:
        f[label] = _rolled(f[label], by)
        return f
    return f"{label}+{by}", results_case(lambda d: edit_table(d, "metrics.parquet", edit), "refused")


@kind("results", 5, "labels-swapped")
def _(rng):
    label, first = pick(rng, LABELS), float(rng.uniform())

    def edit(f: pd.DataFrame) -> pd.DataFrame:
        values = list(f[label].cat.categories) if isinstance(f[label].dtype, pd.CategoricalDtype) else sorted(f[label].unique())
        a = int(first * len(values))
        b = (a + 1) % len(values)
        swap = {values[a]: values[b], values[b]: values[a]}
        if isinstance(f[label].dtype, pd.CategoricalDtype):
            f[label] = f[label].cat.rename_categories([swap.get(v, v) for v in f[label].cat.categories])
        else:
            f[label] = f[label].map(lambda v: swap.get(v, v))
        return f
    return label, results_case(lambda d: edit_table(d, "metrics.parquet", edit), "refused")


def _cell(rng: np.random.Generator, frame: pd.DataFrame, metric: str) -> Any:
    rows = np.flatnonzero((frame["metric"] == metric).to_numpy() & (frame["bank"] != "all").to_numpy())
    return rows[int(rng.integers(len(rows)))]


@kind("results", 5, "value-not-an-amount")
def _(rng):
    metric, value = pick(rng, AMOUNTS), pick(rng, [np.nan, np.inf, -np.inf, -1.0, -1e12])
    seed = int(rng.integers(2**31))

    def edit(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[_cell(np.random.default_rng(seed), f, metric), "value"] = value
        return f
    return f"{metric}={value}", results_case(lambda d: edit_table(d, "metrics.parquet", edit))


@kind("results", 5, "manifest-edited")
def _(rng):
    field_, value = pick(rng, [("seed", -5), ("seed", -int(rng.integers(1, 2**62))), ("seed", 2**64 + 1), ("seed", 10**30), ("paths", int(rng.integers(3, 10**6))),
                               ("paths", 0), ("path_ids", [1, 0]), ("path_ids", [0, 10**30]), ("path_ids", [0, int(rng.integers(2, 2**40))]),
                               ("traced", [0, 1]), ("traced", [])])
    expect = "refused" if field_ == "paths" else "either"
    return f"{field_}={str(value)[:12]}", results_case(lambda d: resign(d, lambda m: m.update({field_: value})), expect)


@kind("results", 5, "manifest-version")
def _(rng):
    field_, value = pick(rng, [("format", 999), ("format", "2"), ("creditsim_version", "999"), ("creditsim_version", 0.2)])
    return f"{field_}={value}", results_case(lambda d: resign(d, lambda m: m.update({field_: value})), "refused")


@kind("results", 5, "pandas-metadata")
def _(rng):
    depth = int(rng.integers(2000, 50_000))
    metadata = pick(rng, ['{"columns": 5}', '{"columns": [5]}', '{"index_columns": 5}', '{"columns": ' + "[" * depth + "]" * depth + "}", "{"])
    return metadata[:20], results_case(lambda d: edit_pandas_metadata(d, "metrics.parquet", metadata))


@kind("results", 5, "file-is-a-fifo")
def _(rng):
    name = pick(rng, ["manifest.json", "manifest.json", "metrics.parquet", "trace.parquet"])

    def make(tmp: Path, world: World) -> Call:
        copy = copy_results(world, tmp)
        (copy / name).unlink()
        os.mkfifo(copy / name)
        return Call(load=copy, expect="refused", reference=world.original, seconds=HANG_SECONDS)
    return name, make


@kind("results", 5, "manifest-endless")
def _(rng):
    device = pick(rng, ["/dev/zero", "/dev/urandom"])

    def make(tmp: Path, world: World) -> Call:
        copy = copy_results(world, tmp)
        (copy / "manifest.json").unlink()
        (copy / "manifest.json").symlink_to(device)
        return Call(["report", str(copy), "-o", str(tmp / "report.html")], expect="refused", isolated=True)
    return device, make


# ------------------------------------------------------------------------------------------------ the loan trace
def trace_case(edit: Callable[[np.random.Generator, pd.DataFrame], pd.DataFrame], rng: np.random.Generator, expect: str = "either"):
    seed = int(rng.integers(2**31))
    return results_case(lambda d: edit_table(d, "trace.parquet", lambda f: edit(np.random.default_rng(seed), f)), expect)


def _row(rng: np.random.Generator, frame: pd.DataFrame) -> int:
    return int(rng.integers(len(frame)))


def trace_cell(column: str, value: Any, rng: np.random.Generator) -> Callable[[Path, World], Call]:
    """A loan of the trace, drawn at random, with ``value`` in ``column``."""
    def edit(r: np.random.Generator, f: pd.DataFrame) -> pd.DataFrame:
        f.loc[_row(r, f), column] = value
        return f
    return trace_case(edit, rng)


@kind("trace", 5, "amount-not-an-amount")
def _(rng):
    column, value = pick(rng, ["amount", "rate"]), pick(rng, [np.nan, np.inf, -np.inf, -1.0])
    return f"{column}={value}", trace_cell(column, value, rng)


@kind("trace", 5, "unknown-name")
def _(rng):
    column = pick(rng, ["bank", "segment", "how", "product", "cover"])

    def edit(r: np.random.Generator, f: pd.DataFrame) -> pd.DataFrame:
        f[column] = f[column].cat.add_categories(["ghost"])
        f.loc[_row(r, f), column] = "ghost"
        return f
    return column, trace_case(edit, rng)


@kind("trace", 5, "not-a-month")
def _(rng):
    column, value = pick(rng, ["start", "end", "default_month"]), pick(rng, ["2021-13", "x", "", "2099-01", "1900-01"])
    return f"{column}={value}", trace_cell(column, value, rng)


@kind("trace", 5, "column-retyped")
def _(rng):
    column, dtype = pick(rng, [("amount", str), ("firm", float), ("first_time", np.int8), ("grade", str), ("renewals", float)])

    def edit(r: np.random.Generator, f: pd.DataFrame) -> pd.DataFrame:
        f[column] = f[column].astype(dtype)
        return f
    return f"{column}:{dtype.__name__}", trace_case(edit, rng)


@kind("trace", 5, "rows-shuffled")
def _(rng):
    return "", trace_case(lambda r, f: f.sample(frac=1.0, random_state=int(r.integers(2**31))).reset_index(drop=True), rng)


@kind("trace", 5, "pandas-metadata")
def _(rng):
    metadata = pick(rng, ['{"columns": 5}', '{"columns": [{"name": 5}]}', '{"columns": ' + "[" * 20_000 + "]" * 20_000 + "}"])
    return metadata[:20], results_case(lambda d: edit_pandas_metadata(d, "trace.parquet", metadata))


@kind("trace", 0, "untraced-path")
def _(rng):
    def edit(r: np.random.Generator, f: pd.DataFrame) -> pd.DataFrame:
        f.loc[_row(r, f), "path"] = int(r.integers(1, 10**6))
        return f
    return "", trace_case(edit, rng, "refused")


# ------------------------------------------------------------------------------------------------ checkpoints
def resume_case(edit: Callable[[Path, World], None], expect: str = "refused", isolated: bool = False) -> Callable[[Path, World], Call]:
    """Copy the world's checkpoint, ``edit`` the copy, and resume it: refused, or the uninterrupted run's results."""
    def make(tmp: Path, world: World) -> Call:
        copy = tmp / "ck"
        shutil.copytree(world.checkpoint, copy)
        edit(copy, world)
        return Call(["run", "--resume", str(copy), "--out", str(tmp / "out")], expect=expect, reference=world.original, written=tmp / "out",
                    isolated=isolated)
    return make


def edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, World], None]:
    def edit(directory: Path, world: World) -> None:
        manifest = json.loads((directory / "checkpoint.json").read_text(encoding="utf-8"))
        change(manifest)
        (directory / "checkpoint.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return edit


def edit_task(task: int, change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path, World], None]:
    def edit(directory: Path, world: World) -> None:
        path = directory / f"task-{task:05d}.npz"
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        change(arrays)
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    return edit


@kind("checkpoint", 6, "foreign-task")
def _(rng):
    task = int(rng.integers(2))

    def edit(directory: Path, world: World) -> None:
        shutil.copy(world.foreign / f"task-{task:05d}.npz", directory / f"task-{task:05d}.npz")
    return f"task={task}", resume_case(edit)


@kind("checkpoint", 6, "run-edited")
def _(rng):
    bank, seed, rate = pick(rng, BANKS), int(rng.integers(2, 2**31)), round(float(rng.uniform(0.05, 0.3)), 3)
    what, change = pick(rng, [(f"seed={seed}", lambda m: m["run"].update(seed=seed)),
                              (f"{bank}.rate={rate}", lambda m: m["run"]["scenarios"][0]["banks"][bank].update(rate=rate)),
                              ("months=2", lambda m: m["run"]["scenarios"][0]["calendar"].update(months=2)),
                              ("trace=[1]", lambda m: m["run"].update(trace=[1]))])
    return what, resume_case(edit_manifest(change))


@kind("checkpoint", 6, "run-malformed")
def _(rng):
    what, change = pick(rng, [("seed='x'", lambda m: m["run"].update(seed="x")), ("seed-missing", lambda m: m["run"].pop("seed")),
                              ("chunk_size='big'", lambda m: m["run"].update(chunk_size="big")), ("paths=-1", lambda m: m["run"].update(paths=-1)),
                              ("paths='2'", lambda m: m["run"].update(paths="2")), ("trace='x'", lambda m: m["run"].update(trace="x")),
                              ("scenarios=[5]", lambda m: m["run"].update(scenarios=[5])), ("versions-missing", lambda m: m.pop("versions")),
                              ("run=[]", lambda m: m.update(run=[]))])
    return what, resume_case(edit_manifest(change))


@kind("checkpoint", 6, "run-huge-paths")
def _(rng):
    paths = 10 ** int(rng.integers(9, 13))
    return f"paths={paths}", resume_case(edit_manifest(lambda m: m["run"].update(paths=paths)), isolated=True)


@kind("checkpoint", 6, "task-values")
def _(rng):
    task, metric, value = int(rng.integers(2)), pick(rng, AMOUNTS), pick(rng, [np.nan, np.inf, -1.0, -1e12, "float32"])
    date, bank = int(rng.integers(4)), int(rng.integers(len(BANKS)))

    def change(arrays: dict[str, np.ndarray]) -> None:
        if value == "float32":
            arrays["bank"] = arrays["bank"].astype(np.float32)
        else:
            arrays["bank"][0, date, bank, SCOPE_METRICS["bank"].index(metric)] = value
    return f"task{task}:{metric}={value}", resume_case(edit_task(task, change))


@kind("checkpoint", 6, "task-structure")
def _(rng):
    task, scope = int(rng.integers(2)), pick(rng, ["bank", "population", "trace", "__paths__"])
    what, change = pick(rng, [("shape", lambda a: a.update({scope: a[scope][..., :-1] if a[scope].ndim > 1 else a[scope][:0]})),
                              ("missing", lambda a: a.pop(scope)), ("extra", lambda a: a.update(zz=np.zeros(3))),
                              ("strings", lambda a: a.update({scope: np.zeros(a[scope].shape, dtype="<U3")})),
                              ("extra-axis", lambda a: a.update({scope: a[scope][None]}))])
    return f"task{task}:{scope}:{what}", resume_case(edit_task(task, change))


@kind("checkpoint", 6, "task-trace-records")
def _(rng):
    column, value = pick(rng, [("bank", 99), ("bank", -5), ("segment", 77), ("how", 50), ("product", 9), ("cover", 42), ("start", -30000), ("amount", np.nan)])
    row = int(rng.integers(1000))

    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays["trace"][row][column] = value
    return f"{column}={value}", resume_case(edit_task(0, change))


@kind("checkpoint", 6, "task-truncated")
def _(rng):
    task, keep = int(rng.integers(2)), float(rng.uniform(0.05, 0.95))

    def edit(directory: Path, world: World) -> None:
        path = directory / f"task-{task:05d}.npz"
        path.write_bytes(path.read_bytes()[: int(keep * path.stat().st_size)])
    return f"task{task}:{keep:.2f}", resume_case(edit)


def _temporary(rng: np.random.Generator, stem: str, suffix: str) -> str:
    """A name as the atomic writer's temporary file gets it (tempfile.mkstemp beside the target)."""
    return f".{stem}.{''.join(pick(rng, string.ascii_lowercase + string.digits + '_') for _ in range(8))}{suffix}"


def _interrupted(state: str, manifest_name: str, task_name: str, directory: Path, world: World) -> None:
    """A checkpoint directory as a kill leaves it: its manifest's temporary file empty or half written (killed while
    creating the checkpoint), or the manifest and a task's temporary file half written or none (killed while writing
    a task)."""
    directory.mkdir()
    manifest = (world.checkpoint / "checkpoint.json").read_bytes()
    if state.startswith("manifest"):
        (directory / manifest_name).write_bytes(b"" if state == "manifest-empty" else manifest[: len(manifest) // 2])
        return
    (directory / "checkpoint.json").write_bytes(manifest)
    if state == "task-half":
        task = (world.checkpoint / "task-00000.npz").read_bytes()
        (directory / task_name).write_bytes(task[: len(task) // 2])


def again(tmp: Path, world: World) -> Call:
    """The command that made the world's checkpoint, given a checkpoint directory in ``tmp``: it must continue."""
    return Call([*CHECKPOINTED, "--seed", "1", "--checkpoint", str(tmp / "ck"), "--out", str(tmp / "out")], expect="accepted",
                reference=world.original, written=tmp / "out")


@kind("checkpoint", 7, "killed-while-created")
def _(rng):
    state, name = pick(rng, ["manifest-empty", "manifest-half"]), _temporary(rng, "checkpoint", ".json")

    def make(tmp: Path, world: World) -> Call:
        _interrupted(state, name, "", tmp / "ck", world)
        return again(tmp, world)
    return state, make


@kind("checkpoint", 7, "killed-while-a-task-is-written")
def _(rng):
    state, name, resume = pick(rng, ["task-half", "no-task"]), _temporary(rng, "task-00000", ".npz"), bool(rng.integers(2))

    def make(tmp: Path, world: World) -> Call:
        _interrupted(state, "", name, tmp / "ck", world)
        if resume:
            return Call(["run", "--resume", str(tmp / "ck"), "--out", str(tmp / "out")], expect="accepted", reference=world.original, written=tmp / "out")
        return again(tmp, world)
    return f"{state}:{'resume' if resume else 'same-command'}", make


# ================================================================================================ drawing and running
def draw_cases(seed: int = SEED, per_kind: int = CASES) -> list[Case]:
    """``per_kind`` cases of each kind, their parameters drawn from one Generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    cases = []
    for surface, issue_class, name, draw in KINDS:
        for i in range(per_kind):
            what, make = draw(rng)
            cases.append(Case(surface, issue_class, name, f"{i}" + (f"[{what}]" if what else ""), make))
    return cases


ALL_CASES = draw_cases()
ISOLATED = {"paths-astronomical", "paths-too-many", "sweep-grid-too-large", "xlsx-on-a-full-disk", "run-huge-paths", "manifest-endless"}


@pytest.fixture(scope="module")
def isolated_runs(request, world, tmp_path_factory) -> dict[str, tuple[Call, Future[Outcome]]]:
    """The selected cases that run in a fresh interpreter, started together (two at a time) before the others run,
    so their imports overlap with the in-process cases: case id → (its Call, the future Outcome)."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if getattr(item, "callspec", None) is not None and isinstance(item.callspec.params.get("case"), Case)}
    pool = ThreadPoolExecutor(max_workers=2)
    request.addfinalizer(partial(pool.shutdown, wait=True))
    started = {}
    for case in ALL_CASES:
        if case.kind in ISOLATED and case.id in selected:
            tmp = tmp_path_factory.mktemp("isolated")
            call = case.make(tmp, world)
            if call.isolated:
                started[case.id] = (call, pool.submit(_isolated, call.argv, tmp, call.file_size))
    return started


@pytest.fixture(scope="module", autouse=True)
def _start_isolated_first(isolated_runs) -> None:
    """Start the isolated cases before the first case of the module."""


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_fuzz(case: Case, world: World, isolated_runs: dict[str, tuple[Call, Future[Outcome]]], tmp_path: Path) -> None:
    """One drawn case (see the module's docstring): the command's contract holds for it."""
    if case.id in isolated_runs:
        call, future = isolated_runs[case.id]
        check(call, future.result(), f"{ISOLATED_SECONDS} s (in a fresh interpreter of {ADDRESS_SPACE // 1024**3} GB)")
        return
    call = case.make(tmp_path, world)
    assert not call.isolated, f"{case.kind} must be listed in ISOLATED"
    run_case(call, tmp_path)


def test_every_kind_is_drawn_and_every_class_covered():
    """Each kind is drawn CASES times with its own parameters, the draw is the same for the same seed, and the
    kinds cover every failure class of the issue but the memory one (8, test_memory.py)."""
    assert len(ALL_CASES) == CASES * len(KINDS) and len({c.id for c in ALL_CASES}) == len(ALL_CASES)
    assert [c.id for c in draw_cases()] == [c.id for c in ALL_CASES]
    assert {c.issue_class for c in ALL_CASES} == {0, 1, 2, 3, 4, 5, 6, 7, 9, 10}
    assert {c.surface for c in ALL_CASES} == {"scenario", "set", "flags", "results", "trace", "checkpoint"}
    assert {name for _, _, name, _ in KINDS} >= ISOLATED


def test_the_fuzz_tools_change_nothing_by_themselves(world, tmp_path):
    """A results directory rewritten and re-signed by the fuzz's own tools without a change loads as the original,
    and so does a checkpoint whose files were read and written back: what refuses an edited case is the edit."""
    copy = copy_results(world, tmp_path)
    edit_table(copy, "metrics.parquet", None)
    edit_table(copy, "trace.parquet", None)
    assert differs(Results.load(copy), world.original) is None

    def rewrite(directory: Path, world: World) -> None:
        for edit in (edit_manifest(lambda m: None), edit_task(0, lambda a: None), edit_task(1, lambda a: None)):
            edit(directory, world)

    run_case(resume_case(rewrite, expect="accepted")(tmp_path / "resumed", world), tmp_path)


def test_the_contract_catches_what_it_is_for():
    """The contract fails a hang, an escaped exception, a second line, output before a refusal, a warning after a
    run, and a refusal of a valid input; it passes a clean refusal and a clean run."""
    refusal = Outcome(2, "", "creditsim: error: x: bad\n")
    check(Call(expect="refused"), refusal, "")
    check(Call(expect="accepted"), Outcome(0, "done\n", "creditsim: warning: y\n"), "")
    for call, outcome in [(Call(), Outcome(None, hung=True)), (Call(), Outcome(None, escaped="Traceback")), (Call(), Outcome(1, "", "")),
                          (Call(), Outcome(2, "", refusal.err + "Exception ignored in: <ZipFile>\n")), (Call(), Outcome(2, "summary\n", refusal.err)),
                          (Call(), Outcome(0, "", "RuntimeWarning: overflow\n")), (Call(expect="accepted"), refusal),
                          (Call(expect="refused"), Outcome(0, "", "")), (Call(), Outcome(2, "", "Warning: x\n" + refusal.err))]:
        with pytest.raises(AssertionError):
            check(call, outcome, "")
    check(Call(after_work=True), Outcome(2, "summary\n", refusal.err), "")
