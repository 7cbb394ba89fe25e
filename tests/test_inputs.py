"""No input given as a scenario file, ``--set``, a flag, a path or an address produces a traceback, a hang or an
unbounded allocation: each is refused in one line (exit 2) before the work it makes pointless, and the line is the
only thing printed.

The rules: data nested deeper than any scenario field (:data:`~creditsim.scenario.loading.MAX_DEPTH`); integers longer
than Python converts; counts of paths and variants beyond :data:`~creditsim.run.api.MAX_PATHS` and
:data:`~creditsim.analysis.sweeps.MAX_VARIANTS`, and the memory check, all before a path list or a variant is made;
entity names of letters, digits, '_' and '-', never ``all``; outputs tried where they will be written, inputs that
are regular files read with a bound, scheduler addresses of a protocol creditsim connects over; nothing after a clean
error (library log records held, no half-written workbook, no font warnings); and the smaller rules of negative
thresholds, finite ranges and empty lists. A seeded fuzz over ``--set`` and the flags ends the file.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import itertools
import logging
import os
import random
import resource
import signal
import string
import sys
import time
import tomllib
import tracemalloc
import warnings
from collections.abc import Iterator
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import creditsim
from creditsim.analysis.sweeps import MAX_VARIANTS, sweep
from creditsim.errors import BackendError, ResultsError, ScenarioError
from creditsim.files import check_destination
from creditsim.present import cli, plots
from creditsim.present.cli import main
from creditsim.results.exports import Sheet, write_workbook
from creditsim.run.api import MAX_PATHS
from creditsim.run.memory import check_memory
from creditsim.scenario import scenario_from_dict
from creditsim.scenario.loading import MAX_DEPTH
from creditsim.scenario.schema import Scenario, nesting
from helpers import BASE_TOML, small_default, within

DEFAULT = Path(str(package_files.files("creditsim").joinpath("scenarios", "default.toml")))
BASE: dict[str, Any] = tomllib.loads(DEFAULT.read_text(encoding="utf-8"))
SHORT = ["--set", "calendar.months=3"]
#: A file name longer than any file system takes (255 bytes).
LONG = "x" * 300


def one_line_error(code: int | None, err: str, *names: str) -> str:
    """Exit 2 and exactly one line on stderr, creditsim's error naming ``names``: nothing before or after it."""
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("creditsim: error: "), err
    assert "Traceback" not in err and "Warning" not in err
    for name in names:
        assert name in err, (name, err)
    return err


def cli_error(capsys, argv: list[str], *names: str) -> str:
    """Run the command in-process; it must end with one line naming ``names`` (a usage error exits through argparse)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return one_line_error(code, err, *names)


class Reached(Exception):
    """The run was reached: every check before it passed."""


#: The modules that start runs (each imports run_scenarios).
RUNNERS = ("run.api", "analysis.sweeps", "analysis.search", "analysis.compare")


def _reached(*args: Any, **kwargs: Any) -> Any:
    raise Reached


@pytest.fixture
def runs_reached(monkeypatch):
    """Stop every command where its paths would start running, with :class:`Reached`."""
    for module in RUNNERS:
        monkeypatch.setattr(f"creditsim.{module}.run_scenarios", _reached)


@pytest.fixture
def no_work(monkeypatch):
    """Make every run fail loudly if it starts: a refusal must come before it."""
    def started(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the work started before the input was refused")

    for name in ("simulate", "sweep", "solve", "calibrate", "compare"):
        monkeypatch.setattr(cli, name, started)


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The most bytes Python allocated in the block (``found[0]`` after it)."""
    found: list[int] = []
    tracemalloc.start()
    try:
        yield found
    finally:
        found.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def toml_file(directory: Path, text: str) -> Path:
    path = directory / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ================================================================================================ 1. nesting
def test_the_depth_limit_covers_every_field_of_the_schema():
    """The limit is the schema's deepest place (a loan tape's column) and a margin, so no valid scenario meets it."""
    assert nesting(Scenario) == 5 and MAX_DEPTH == 7


def test_a_table_header_nested_a_thousand_deep_is_one_line(tmp_path, capsys):
    path = toml_file(tmp_path, BASE_TOML.read_text(encoding="utf-8") + "\n[" + ".".join(["zz"] + ["a"] * 988) + "]\nx = 1\n")
    err = cli_error(capsys, ["validate", str(path)], "zz.a.a.a.a.a.a.a", f"more than {MAX_DEPTH} levels")
    assert "…" not in err or len(err) < 300


@pytest.mark.parametrize("key", ["zz" + ".a" * 3000, "banks.big_bank.rate.2021" + ".x" * 10])
def test_a_deep_set_key_is_one_line(capsys, key):
    cli_error(capsys, ["validate", str(BASE_TOML), "--set", f"{key}=1"], key[:10], "levels")


def test_deep_data_from_python_is_a_scenario_error():
    data = copy.deepcopy(BASE)
    node = data["banks"]["big_bank"]
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ScenarioError, match="levels of tables or lists"):
        scenario_from_dict(data)
    with pytest.raises(ScenarioError, match="levels of tables or lists"):
        scenario_from_dict(BASE, {"a" + ".b" * 2000: 1})


# ================================================================================================ 2. sizes and counts
def test_an_integer_longer_than_python_converts_is_one_line(tmp_path, capsys):
    digits = "9" * 5000
    path = toml_file(tmp_path, BASE_TOML.read_text(encoding="utf-8").replace("months = 36", f"months = {digits}"))
    cli_error(capsys, ["validate", str(path)], str(path), "integer of more than")
    cli_error(capsys, ["validate", str(BASE_TOML), "--set", f"calendar.months={digits}"], "calendar.months", "integer of more than")


@pytest.mark.parametrize("paths", ["99999999999999999999999", "1000000000000", "1000000000", "50000000", str(MAX_PATHS + 1)])
def test_absurd_path_counts_are_refused_at_once(capsys, paths):
    """Refused by the cap, in far less than a path list of that length takes to build, with nothing allocated."""
    started = time.perf_counter()
    with peak_memory() as peak:
        cli_error(capsys, ["run", str(BASE_TOML), "--paths", paths, *SHORT], "paths", "MAX_PATHS")
    assert time.perf_counter() - started < 5 and peak[0] < 30 * 1024**2


def test_the_memory_check_comes_before_any_path_list(monkeypatch):
    """A count under the cap that does not fit in memory is refused by the memory check with no path list built."""
    monkeypatch.setattr("creditsim.run.memory.available_bytes", lambda: 1024**3)
    scenario = creditsim.load_scenario(BASE_TOML)
    with peak_memory() as check, pytest.raises(ScenarioError, match="run at most about"):
        check_memory([scenario], MAX_PATHS)  # what the check itself takes
    with peak_memory() as peak, pytest.raises(ScenarioError, match="run at most about"):
        creditsim.simulate(scenario, paths=MAX_PATHS)
    assert peak[0] < check[0] + 4 * 1024**2  # a list of a million path numbers alone takes 36 MB


def test_path_numbers_from_an_endless_iterator_are_refused():
    with pytest.raises(ScenarioError, match="MAX_PATHS"):
        creditsim.simulate(small_default(), paths=itertools.count())


@pytest.mark.parametrize(("argv", "rule"), [
    (["--set", "banks.big_bank.max_pd=0.1:0.2:1000000000"], "MAX_VARIANTS"),
    (["--set", "banks.big_bank.max_pd=0.1:0.2:" + "9" * 5000], "MAX_VARIANTS"),
    (["--set", "banks.big_bank.max_pd=0.01:0.05:40", "--set", "banks.city_bank.max_pd=0.01:0.05:40"], "1,600 variants"),
    (["--set", "banks.big_bank.max_pd=0.01:0.05:1000", "--paths", "1001"], "for 1,000 variants"),
])
def test_a_sweep_too_large_is_refused_before_any_variant(capsys, monkeypatch, argv, rule):
    def made(*args: Any) -> Any:
        raise AssertionError("a variant was made")

    monkeypatch.setattr("creditsim.analysis.sweeps.variant", made)
    started = time.perf_counter()
    cli_error(capsys, ["sweep", str(BASE_TOML), *argv], rule)
    assert time.perf_counter() - started < 5


def test_the_variant_limit_counts_the_whole_grid():
    columns = MAX_VARIANTS // 7 + 1
    with pytest.raises(ScenarioError, match=f"{7 * columns:,} variants"):
        sweep(small_default(), {"banks.big_bank.max_pd": [0.05] * 7, "banks.city_bank.max_pd": [0.05] * columns}, paths=1)


# ================================================================================================ 3. names
NAMED = [("firms", "segments", "micro"), ("banks", "big_bank"), ("guarantors", "county"), ("reguarantors", "provincial"),
         ("pools", "ip_pledge"), ("targets", "new_lending"), ("campaign", "channels", "visits")]


def _renamed(place: tuple[str, ...], name: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    table = data
    for step in place[:-1]:
        table = table[step]
    table[name] = table.pop(place[-1])
    return data


@pytest.mark.parametrize("place", NAMED, ids=[".".join(p) for p in NAMED])
@pytest.mark.parametrize("name", ["all", "$\\frac$", "a b", "bank🏦", "a+b", "x" * 65, "a*", ""])
def test_a_name_the_program_gives_meaning_to_is_refused(place, name):
    """Every named table refuses the aggregate's name and characters a key, a list or a chart gives a meaning to."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(_renamed(place, name))
    assert info.value.field == ".".join(place[:-1]) and info.value.value == name
    assert ("reserved" if name == "all" else "letters, digits") in str(info.value)


@pytest.mark.parametrize("name", ["城商行", "bank-2", "Bank_3"])
def test_names_of_letters_digits_and_dashes_are_taken(name):
    assert name in scenario_from_dict(_renamed(("targets", "new_lending"), name)).targets


def test_a_bank_named_all_is_refused_by_validate(tmp_path, capsys):
    path = toml_file(tmp_path, BASE_TOML.read_text(encoding="utf-8").replace("[banks.big_bank]", "[banks.all]"))
    cli_error(capsys, ["validate", str(path)], "banks = 'all'", "reserved")


@pytest.fixture(scope="module")
def labelled():
    """Two paths of a small scenario whose target's label holds mathtext and a character no font has."""
    scenario = small_default()
    data = scenario.to_dict()
    data["targets"] = {"t": {"label": "$\\frac$ 新增 🏦 $x", "metric": "borrowers", "measure": "stock", "date": "2021-12", "threshold": 1000}}
    return creditsim.simulate(scenario_from_dict(data), paths=2, seed=1, progress=False)


def test_users_text_is_drawn_as_written_without_warnings(labelled):
    """A label is drawn as text, not mathtext, and a character the font lacks as '?', with no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = plots.fan_chart(labelled, "borrowers", target="t")
        figure.savefig(io.BytesIO(), format="png")
        plots.target_chart(labelled).savefig(io.BytesIO(), format="png")
    assert plots._name("$\\frac$") == "\\$\\frac\\$"


# ================================================================================================ 4. paths and addresses
@pytest.mark.parametrize("flag", ["--out", "--report", "--xlsx", "--csv", "--checkpoint", "--scheduler"])
def test_an_empty_path_or_address_is_refused(capsys, no_work, flag):
    cli_error(capsys, ["run", str(BASE_TOML), flag, ""], flag)


@pytest.mark.parametrize(("argv", "name"), [
    (["run", "--out", LONG], LONG), (["run", "--report", LONG + ".html"], LONG), (["run", "--xlsx", LONG + ".xlsx"], LONG),
    (["run", "--csv", LONG], LONG), (["run", "--checkpoint", LONG], LONG), (["run", "--out", "dir/" + LONG + "/x"], LONG),
    (["sweep", "--set", "banks.big_bank.max_pd=0.05,0.06", "--plot", LONG + ".png"], LONG),
    (["sweep", "--set", "banks.big_bank.max_pd=0.05,0.06", "--checkpoint", LONG], LONG),
])
def test_a_name_too_long_is_refused_before_the_run(capsys, no_work, tmp_path, monkeypatch, argv, name):
    monkeypatch.chdir(tmp_path)
    cli_error(capsys, [argv[0], str(BASE_TOML), *argv[1:]], name, "too long")


@pytest.mark.parametrize("argv", [["report", LONG], ["report", LONG + "/x"], ["compare", LONG, LONG], ["run", "--resume", LONG],
                                  ["sweep", "--resume", LONG], ["validate", LONG + ".toml"]])
def test_a_name_too_long_to_read_is_one_line(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    cli_error(capsys, argv, LONG)


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A directory nothing can be created in: read-only to its owner, or /proc for root (who may write anywhere else)."""
    if os.geteuid() == 0:
        return Path("/proc")
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    return directory


@pytest.mark.parametrize(("flag", "name"), [("--out", "results"), ("--report", "r.html"), ("--xlsx", "w.xlsx"), ("--csv", "tables"),
                                            ("--checkpoint", "kept")])
def test_every_output_of_run_is_tried_before_the_run(capsys, no_work, unwritable, flag, name):
    cli_error(capsys, ["run", str(BASE_TOML), flag, str(unwritable / "creditsim-test" / name)], "creditsim-test", "cannot")


def test_check_destination_leaves_nothing_behind(tmp_path):
    for directory in (False, True):
        check_destination(tmp_path / "deeper" / "out.csv", "table", directory=directory)
    assert [p.name for p in tmp_path.rglob("*")] == ["deeper"]
    with pytest.raises(ResultsError, match="empty"):
        check_destination("", "table")


@pytest.mark.parametrize("address", ["tls://127.0.0.1:1", "wss://127.0.0.1:1", "ucx://127.0.0.1:1", "inproc://x"])
def test_a_scheduler_of_another_protocol_is_refused_before_connecting(capsys, address):
    pytest.importorskip("distributed")
    started = time.perf_counter()
    cli_error(capsys, ["run", str(BASE_TOML), "--paths", "1", *SHORT, "--scheduler", address], f"scheduler {address}")
    assert time.perf_counter() - started < 10
    with pytest.raises(BackendError, match="scheduler"):
        creditsim.Backend(scheduler=address)


def test_an_empty_scheduler_is_refused_by_the_api():
    with pytest.raises(BackendError, match="scheduler ''"):
        creditsim.simulate(small_default(), paths=1, scheduler="")


@pytest.mark.parametrize("special", ["fifo", "device", "directory"])
def test_special_files_are_refused_unread(capsys, tmp_path, special):
    """A FIFO with no writer, an endless device (/dev/zero) and a directory, as a scenario, an observations file and a
    loan tape: refused at once, nothing read from them."""
    path = tmp_path / f"{special}.csv"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    path = str(path)
    tape = toml_file(tmp_path, BASE_TOML.read_text(encoding="utf-8").replace("[banks.big_bank]\n", f'[banks.big_bank]\nloan_tape = "{path}"\n'))
    with within(20):
        cli_error(capsys, ["validate", path], path, "not a regular file")
        cli_error(capsys, ["calibrate", str(BASE_TOML), "--data", path, "--fit", "demand.growth"], path, "not a regular file")
        cli_error(capsys, ["validate", str(tape)], "banks.big_bank.loan_tape", "not a regular file")


# ================================================================================================ 9. nothing after a clean error
def test_a_workbook_on_a_full_disk_is_one_error_and_nothing_after(tmp_path, monkeypatch):
    """A disk that fills up while the workbook is written (a limit on the size of a file stands for it: each sheet's
    temporary file fits, the workbook does not) fails the write, and leaves no half-written zip to fail again when
    it is collected ("Exception ignored in ZipFile.__del__" after the clean line)."""
    letters = random.Random(0)
    text = ["".join(letters.choices(string.ascii_letters, k=300)) for _ in range(8)]  # incompressible
    sheets = {f"sheet{i}": Sheet(pd.DataFrame({"note": text})) for i in range(4)}
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    previous, (soft, hard) = signal.signal(signal.SIGXFSZ, signal.SIG_IGN), resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, hard))
        with pytest.raises(ResultsError, match="File too large"):
            write_workbook(tmp_path / "w.xlsx", sheets)
        gc.collect()  # while the disk is still full
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert ignored == [] and list(tmp_path.iterdir()) == []


def test_library_logs_are_dropped_after_a_clean_error_and_kept_otherwise(capsys, monkeypatch):
    """What Dask logs of a lost scheduler (dozens of lines of traceback, through loggers with handlers of their own)
    does not reach its handlers when creditsim ends with its one line; after a command that finishes, it does."""
    pytest.importorskip("distributed")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    monkeypatch.setattr(logging.getLogger("distributed.client"), "handlers", [handler])

    def lost(*args: Any, **kwargs: Any) -> Any:
        logging.getLogger("distributed.client").error("Traceback (most recent call last):\nCommClosedError")
        raise BackendError("the Dask cluster lost a task")

    monkeypatch.setattr(cli, "simulate", lost)
    assert main(["run", str(BASE_TOML), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    one_line_error(2, capsys.readouterr().err, "lost a task")
    assert seen == []

    def finished(*args: Any, **kwargs: Any) -> Any:
        logging.getLogger("distributed.client").warning("kept")
        return 0

    monkeypatch.setattr(cli, "_validate", finished)
    assert main(["validate", str(BASE_TOML)]) == 0
    assert seen == ["kept"] and logging.getLogger("distributed.client").handlers == [handler]


# ================================================================================================ 10. smaller rules
@pytest.mark.parametrize(("metric", "threshold", "value"), [
    ("borrowers", -5, -5.0), ("borrowers", "-1.5万", -15000.0), ("balance", "-5亿", -5e8), ("npl_ratio", -0.01, -0.01),
])
def test_a_threshold_may_be_negative_as_a_number_or_a_text(metric, threshold, value):
    data = copy.deepcopy(BASE)
    measure = "ratio" if metric == "npl_ratio" else "stock"
    data["targets"] = {"t": {"metric": metric, "measure": measure, "date": "2021-12", "threshold": threshold}}
    assert scenario_from_dict(data).targets["t"].value == value


def test_a_bare_negative_amount_still_needs_its_unit(tmp_path, capsys):
    path = toml_file(tmp_path, BASE_TOML.read_text(encoding="utf-8") + '\n[targets.t]\nmetric = "balance"\nmeasure = "stock"\ndate = "2021-12"\nthreshold = -5\n')
    cli_error(capsys, ["validate", str(path)], "targets.t.threshold", "needs its unit")


@pytest.mark.parametrize("range_", ["1e400:1e401", "-1e308:1e308", "1:1e309"])
def test_a_range_beyond_floats_is_one_line_and_no_warning(capsys, runs_reached, range_):
    argv = ["solve", str(DEFAULT), "--target", "new_lending", "--vary", "pools.ip_pledge.leverage", f"--range={range_}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cli_error(capsys, argv, "--range", "finite")


@pytest.mark.parametrize(("argv", "flag"), [
    (["calibrate", str(BASE_TOML), "--data", "data.csv", "--fit", ","], "--fit"),
    (["calibrate", str(BASE_TOML), "--data", "data.csv", "--fit", "demand.growth,"], "--fit"),
    (["sweep", str(BASE_TOML), "--set", "banks.big_bank.max_pd=0.05,0.06", "--metrics", ","], "--metrics"),
])
def test_an_empty_item_of_a_list_flag_is_refused(capsys, no_work, tmp_path, monkeypatch, argv, flag):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("date,quantity,value\n2021-12,balance,100亿\n", encoding="utf-8")
    cli_error(capsys, argv, flag)


# ================================================================================================ fuzz
_KEYS = ["calendar.months", "banks.big_bank.max_pd", "banks.big_bank.rate.2021", "firms.segments.micro.pd[0]", "banks.all.max_pd",
         "zz" + ".a" * 40, "banks." + "x" * 300 + ".max_pd", "banks..max_pd", "firms.segments.micro.pd[99999999999999999999]", "name",
         "banks.$\\frac$.share", "targets.t.threshold"]
_VALUES = ["9" * 5000, "-" + "9" * 4400, "1e400", "nan", "-inf", "[" * 60 + "]" * 60, "{a={b={c={d={e={f={g=1}}}}}}}", "''", "'-5亿'",
           "0.1:0.2:1000000000", ",", "1_000", "0x10", "'2021-13'", "'$\\frac$'", "-5", "36", "0.05", "'1:100'", "'𝟘'"]
_FLAGS = [["--paths", "99999999999999999999999"], ["--paths", "0"], ["--paths", "5"], ["--seed", "9" * 30], ["--out", ""], ["--out", "x" * 300],
          ["--report", "r.txt"], ["--xlsx", ""], ["--csv", "."], ["--scheduler", ""], ["--scheduler", "ucx://h:1"], ["--trace", "0,,1"],
          ["--chunk-size", "9" * 40], ["--threads", "0"], ["--bank", "all"], ["--bank", "$x"], ["--checkpoint", "x" * 300]]


@settings(max_examples=150, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(["validate", "run", "sweep"]),
       sets=st.lists(st.tuples(st.sampled_from(_KEYS), st.sampled_from(_VALUES)), max_size=3),
       flags=st.lists(st.sampled_from(_FLAGS), max_size=3))
def test_fuzzed_sets_and_flags_are_refused_in_one_line_or_reach_the_run(command, sets, flags):
    """Nasty --set keys and values and flags, drawn together (seeded): each command either reaches its run (every
    check passed) or ends with exit 2 and one line, at once, with nothing else printed."""
    argv = [command, str(BASE_TOML), *(arg for key, value in sets for arg in ("--set", f"{key}={value}"))]
    argv += [arg for flag in flags for arg in flag] if command != "validate" else []
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), within(30):
        for module in RUNNERS:
            patch.setattr(f"creditsim.{module}.run_scenarios", _reached)
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        except Reached:
            return
    if code != 0:
        one_line_error(code, err.getvalue())

