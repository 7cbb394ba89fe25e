"""Tests of the ``creditsim`` command: ``run`` and ``validate``, exit codes and error reporting.

The command is called in-process through :func:`creditsim.present.cli.main` (output captured with ``capsys``); one test
runs the installed console script in a subprocess. Runs are kept short with ``--set calendar.months=6`` and
two or three paths.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas.testing as pdt
import pytest

import creditsim
from creditsim.present.cli import build_parser, main

DEFAULT_TOML = Path(creditsim.__file__).parent / "scenarios" / "default.toml"
SHORT = ["--set", "calendar.months=6"]


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """Call ``main(argv)`` in-process; return (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *names: str) -> None:
    """Exit code 2, exactly one stderr line 'creditsim: error: …' naming every given name, no traceback (a warning
    line before it is allowed: the six-month runs of SHORT leave years of the default's tables by year unused)."""
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("creditsim: warning: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("creditsim: error: ")
    for name in names:
        assert name in lines[0]
    assert "Traceback" not in err and "Traceback" not in out


@pytest.fixture(scope="module")
def seed1_output() -> str:
    """stdout of ``run --paths 3 --seed 1`` on the six-month default (computed once per module)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["run", "--paths", "3", "--seed", "1", *SHORT]) == 0
    return buffer.getvalue()


# ================================================================================================ run
def test_run_prints_summary(capsys):
    """`run` on the default prints the summary (balance, npl_ratio …) and exits 0."""
    code, out, err = run_cli(capsys, ["run", "--paths", "3", "--seed", "1", *SHORT])
    assert code == 0
    assert "balance" in out
    assert "npl_ratio" in out
    assert "3 paths" in out and "seed 1" in out
    assert "2021-01 → 2021-06" in out
    assert "Traceback" not in err


def test_run_sweep_and_compare_take_a_banks_test_as_a_target(capsys):
    """--target TEST:BANK:YEAR adds the regulator's test for a bank to the targets: `run` prints its P(pass), the
    same as the 两增 table's; `sweep` and `compare` show it per variant; a mistyped one is one line, exit 2."""
    code, out, err = run_cli(capsys, ["run", "--paths", "4", "--seed", "1", "--target", "两增:big_bank:2021-06", "--target", "两控:all:2021-06", *SHORT])
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("两增:big_bank:2021-06 passes 两增 (2021-06)"))
    table = creditsim.simulate(creditsim.load_scenario(None, overrides={"calendar.months": 6}), paths=4, seed=1).two_increases()
    row = table[(table["bank"] == "big_bank") & (table["date"] == "2021-06") & (table["check"] == "两增")].iloc[0]
    assert line.split()[4] == f"{100 * row.probability:.0f}%"
    assert any(line.startswith("两控:all:2021-06 passes 两控 (2021-06)") for line in out.splitlines())
    code, out, err = run_cli(capsys, ["sweep", "--set", "banks.big_bank.non_inclusive_growth=10%,40%", "--paths", "4", "--all-targets",
                                      "--target", "两增:big_bank:2021-06", *SHORT])
    assert code == 0, err
    assert "target 两增:big_bank:2021-06: passes 两增" in out
    code, out, err = run_cli(capsys, ["compare", "--set", "banks.big_bank.non_inclusive_growth=40%", "--paths", "4", "--all-targets",
                                      "--target", "两增:big_bank:2021-06", *SHORT, "--set-base", "calendar.months=6"])
    assert code == 0, err
    assert any(line.startswith("两增:big_bank:2021-06 ") for line in out.splitlines())
    assert_one_line_error(*run_cli(capsys, ["run", "--paths", "2", "--target", "两增:nobank:2021", *SHORT]), "--target", "unknown bank 'nobank'", "big_bank")


def test_run_same_seed_same_output(capsys, seed1_output):
    """The same seed gives identical printed output."""
    code, out, _ = run_cli(capsys, ["run", "--paths", "3", "--seed", "1", *SHORT])
    assert code == 0
    assert out == seed1_output


def test_run_different_seed_different_output(capsys, seed1_output):
    """A different seed gives different output."""
    code, out, _ = run_cli(capsys, ["run", "--paths", "3", "--seed", "2", *SHORT])
    assert code == 0
    assert out != seed1_output
    assert "seed 2" in out


def test_run_scenario_file_and_set(capsys, tmp_path):
    """`run FILE --set …` runs the given file with the overrides applied."""
    path = tmp_path / "s.toml"
    path.write_text(DEFAULT_TOML.read_text(encoding="utf-8").replace('name = "jiaxing-2021"', 'name = "from-file"'), encoding="utf-8")
    code, out, _ = run_cli(capsys, ["run", str(path), "--paths", "2", *SHORT, "--set", "calendar.months=3"])
    assert code == 0
    assert "from-file" in out
    assert "2021-01 → 2021-03" in out  # the later --set wins


def test_run_out_writes_results(capsys, tmp_path):
    """`run --out DIR` writes manifest.json and metrics.parquet equal to the in-process simulate() result."""
    out_dir = tmp_path / "results"
    overrides = ["calendar.months=6", "banks.big_bank.rate=5%"]
    argv = ["run", "--paths", "2", "--seed", "7", "--out", str(out_dir)]
    for item in overrides:
        argv += ["--set", item]
    code, out, _ = run_cli(capsys, argv)
    assert code == 0
    assert (out_dir / "manifest.json").is_file()
    assert (out_dir / "metrics.parquet").is_file()
    assert str(out_dir) in out

    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    expected = creditsim.simulate(creditsim.load_scenario(None, overrides), paths=2, seed=7)
    assert manifest["seed"] == 7
    assert manifest["paths"] == 2
    assert manifest["scenario_sha256"] == expected.scenario.digest()

    loaded = creditsim.Results.load(out_dir)
    pdt.assert_frame_equal(loaded.metrics, expected.metrics)


def test_run_trace_writes_the_traced_paths_loans(capsys, tmp_path):
    """`run --trace 0,2 --out DIR` saves the loan-level trace of paths 0 and 2: what simulate(trace=[0, 2]) records."""
    out_dir = tmp_path / "traced"
    code, _, _ = run_cli(capsys, ["run", "--paths", "3", "--seed", "4", *SHORT, "--trace", "2,0", "--out", str(out_dir)])
    assert code == 0 and (out_dir / "trace.parquet").is_file()
    expected = creditsim.simulate(creditsim.load_scenario(None, ["calendar.months=6"]), paths=3, seed=4, trace=[0, 2])
    loaded = creditsim.Results.load(out_dir)
    assert sorted(loaded.trace["path"].unique()) == [0, 2]
    pdt.assert_frame_equal(loaded.trace.reset_index(drop=True), expected.trace.reset_index(drop=True))


@pytest.mark.parametrize(("trace", "out", "names"), [(["--trace", "0,1"], False, ["--trace", "--out"]),
                                                     (["--trace", "0,7"], True, ["trace", "7"]),
                                                     (["--trace", "0,x"], True, ["--trace", "whole number"])])
def test_run_bad_trace(capsys, tmp_path, trace, out, names):
    """A trace without --out, of a path the run does not have, or not a list of numbers: one line, exit 2."""
    argv = ["run", "--paths", "2", *SHORT, *trace] + (["--out", str(tmp_path / "r")] if out else [])
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert_one_line_error(code, *capsys.readouterr(), *names)
    assert not (tmp_path / "r").exists()


def test_resume_continues_a_traced_run_with_its_trace(capsys, tmp_path):
    """`run --resume DIR` takes the traced paths from the checkpoint: a finished traced run resumed writes the same
    trace; resuming it without --out, or giving --trace again, stops with one line."""
    checkpoint, first, second = tmp_path / "ck", tmp_path / "first", tmp_path / "second"
    argv = ["run", "--paths", "2", *SHORT, "--trace", "1", "--checkpoint", str(checkpoint), "--out", str(first)]
    assert run_cli(capsys, argv)[0] == 0
    assert run_cli(capsys, ["run", "--resume", str(checkpoint), "--out", str(second)])[0] == 0
    pdt.assert_frame_equal(creditsim.Results.load(second).trace, creditsim.Results.load(first).trace)
    assert_one_line_error(*run_cli(capsys, ["run", "--resume", str(checkpoint)]), "--resume", "traces paths 1", "--out")
    assert_one_line_error(*run_cli(capsys, ["run", "--resume", str(checkpoint), "--trace", "1", "--out", str(tmp_path / "x")]),
                          "--resume", "--trace")


# ================================================================================================ bad input
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--set", "banks.big_bank.max_pd=1.3"], "banks.big_bank.max_pd"),
        (["--set", "calendar.months=abc"], "calendar.months"),
        (["--set", "banks.big_bank.rate=nan"], "banks.big_bank.rate"),
        (["--set", "firms.segments.micro.line_median=5 billion"], "firms.segments.micro.line_median"),
        (["--set", "demand.reborow_prob=0.5"], "demand.reborow_prob"),
        (["--set", "noequals"], "--set"),
        (["--set", "calendar.months.x=1"], "calendar.months"),
    ],
)
def test_run_bad_set(capsys, extra, field):
    """A bad --set value or unknown field exits 2 with one 'creditsim: error:' line naming the field."""
    code, out, err = run_cli(capsys, ["run", "--paths", "2", *SHORT, *extra])
    assert_one_line_error(code, out, err, field)
    assert out == ""  # nothing was run


def test_run_unknown_field_hints(capsys):
    """An unknown field's error line carries the 'did you mean' hint."""
    code, out, err = run_cli(capsys, ["run", "--paths", "2", "--set", "banks.city_bank.max_pdd=0.1"])
    assert_one_line_error(code, out, err, "banks.city_bank.max_pdd", "did you mean 'max_pd'")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_file(capsys, tmp_path, command):
    """A missing scenario file exits 2 with one error line naming the file."""
    path = tmp_path / "missing.toml"
    code, out, err = run_cli(capsys, [command, str(path)])
    assert_one_line_error(code, out, err, str(path))


@pytest.mark.parametrize("command", ["run", "validate"])
def test_invalid_toml_file(capsys, tmp_path, command):
    """A file that is not valid TOML exits 2 with one error line naming the file."""
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[calendar\n', encoding="utf-8")
    code, out, err = run_cli(capsys, [command, str(path)])
    assert_one_line_error(code, out, err, str(path), "TOML")


def test_not_utf8_file(capsys, tmp_path):
    """A file that is not UTF-8 exits 2 with one error line naming the file."""
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00bad")
    code, out, err = run_cli(capsys, ["validate", str(path)])
    assert_one_line_error(code, out, err, str(path), "UTF-8")


@pytest.mark.parametrize("value", ["0", "abc", "-1", "-5", "1.5"])
def test_bad_paths_is_usage_error(capsys, value):
    """--paths must be a whole number ≥ 1: argparse exits 2 naming --paths, with the one rule whatever the mistake
    (-5 and 0 alike), without a traceback."""
    with pytest.raises(SystemExit) as exc:
        main(["run", "--paths", value])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert err == f"creditsim: error: argument --paths: must be a whole number ≥ 1, got {value!r} (see creditsim run --help)\n"
    assert out == ""


@pytest.mark.parametrize("command", [["validate", str(DEFAULT_TOML)], ["run", "--paths", "2"]])
def test_a_bare_amount_set_exits_2_naming_the_field_and_its_units(capsys, command):
    """`--set guarantors.county.capital=15` would give the guarantor 15 元: it is refused with one line naming the
    field and the units an amount takes, before anything runs."""
    code, out, err = run_cli(capsys, [*command, "--set", "guarantors.county.capital=15"])
    assert code == 2 and out == ""
    assert err == "creditsim: error: guarantors.county.capital = 15: an amount needs its unit (亿, 万 or 元), e.g. 15亿 or 15万\n"


def test_a_scenario_warning_is_one_line_and_the_run_goes_on(capsys):
    """A table by year reaching outside a shortened run is warned of in one line on stderr, without a traceback; the
    command succeeds."""
    code, out, err = run_cli(capsys, ["validate", str(DEFAULT_TOML), "--set", "calendar.months=6"])
    assert code == 0 and "valid" in out
    assert err == ("creditsim: warning: banks.big_bank.non_inclusive_growth and 5 other tables by year: give years outside the run "
                   "(2021-01 to 2021-06), which are not used: 2022, 2023\n")


@pytest.mark.parametrize("argv", [["run", "--seed", "-1"], ["run", "--seed", "x"], [], ["frobnicate"], ["run", "--bogus"]])
def test_other_usage_errors(capsys, argv):
    """Other command-line mistakes (bad --seed, no or unknown command, unknown option) exit 2 with one line and
    no traceback (not argparse's usage text)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert err.startswith("creditsim: error:") and err.count("\n") == 1 and "--help" in err
    assert "Traceback" not in err and "Traceback" not in out


@pytest.mark.parametrize(("content", "rule"), [
    (b"", "is empty"), (b"  \n\n", "is empty"), (b'name = "x"\x00\n', "is binary"),
    ("name = 'x'\n".encode("utf-16"), "not UTF-8"), (b"#" * (1024**2 + 1), "larger than 1 MiB"),
])
def test_unreadable_scenario_files(capsys, tmp_path, content, rule):
    """Empty, binary, UTF-16 and oversized files are refused with one line naming the file; an oversized file is
    refused without being read past the limit."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, ["validate", str(path)])
    assert_one_line_error(code, out, err, str(path), rule)


def test_huge_integer_set_is_one_line_error(capsys):
    """A --set integer too large for a float exits 2 with one line naming the field."""
    code, out, err = run_cli(capsys, ["validate", str(DEFAULT_TOML), "--set", "firms.segments.micro.firms=1" + "0" * 400])
    assert_one_line_error(code, out, err, "firms.segments.micro.firms")


# ================================================================================================ validate
def test_validate_default_file(capsys):
    """`validate` on the bundled default file exits 0 and prints 'valid' with the scenario's shape."""
    code, out, err = run_cli(capsys, ["validate", str(DEFAULT_TOML)])
    assert code == 0
    assert "valid" in out
    assert "3 segments, 3 banks, 36 months from 2021-01" in out
    assert err == ""


def test_validate_with_set(capsys):
    """`validate --set` checks the overridden scenario."""
    code, out, _ = run_cli(capsys, ["validate", str(DEFAULT_TOML), "--set", "calendar.months=12"])
    assert code == 0
    assert "12 months" in out


def test_validate_bad_file(capsys, tmp_path):
    """`validate` on a file with a bad value exits 2 with one line naming the field."""
    path = tmp_path / "bad.toml"
    path.write_text(DEFAULT_TOML.read_text(encoding="utf-8").replace("rho = 0.12", "rho = 1.0"), encoding="utf-8")
    code, out, err = run_cli(capsys, ["validate", str(path)])
    assert_one_line_error(code, out, err, "firms.segments.micro.rho")
    assert out == ""


# ================================================================================================ console script
def _console_command() -> list[str]:
    """The installed ``creditsim`` script next to this interpreter, else ``python -m creditsim.present.cli``."""
    script = Path(sys.executable).with_name("creditsim")
    return [str(script)] if script.is_file() and os.access(script, os.X_OK) else [sys.executable, "-m", "creditsim.present.cli"]


def test_console_script(tmp_path):
    """The real console script runs (exit 0, summary on stdout) and reports bad input as one line, exit 2."""
    command = _console_command()
    ok = subprocess.run([*command, "run", "--paths", "2", "--seed", "1", *SHORT], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "balance" in ok.stdout and "npl_ratio" in ok.stdout
    assert "Traceback" not in ok.stderr

    bad = subprocess.run([*command, "run", "--paths", "2", "--set", "banks.big_bank.max_pd=1.3"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("creditsim: error: banks.big_bank.max_pd")
    assert "Traceback" not in bad.stderr
    assert bad.stdout == ""


def test_unwritable_out_is_refused_before_the_run(tmp_path, capsys):
    """--out under a regular file is a one-line error (exit 2) found before any path is simulated."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["run", "--paths", "1", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("creditsim: error: ")
    assert "Traceback" not in err


def test_run_reports_instruments_and_their_limits(capsys):
    """With a guarantor, the summary shows its position, the budget with its start-up money apart and its present
    value, and the probability of each limit with a 95% interval."""
    from pathlib import Path

    taizhou = Path(__file__).resolve().parents[1] / "scenarios" / "taizhou-guarantee-fund.toml"
    assert main(["run", str(taizhou), "--paths", "3", "--set", "calendar.months=8"]) == 0
    out = capsys.readouterr().out
    for text in ("taizhou_fund.guarantee_outstanding", "taizhou_fund: start-up capital (one-off)", "present value", "leverage cap reached",
                 "leverage above its cap (claims cut its capital)", "95% CI"):
        assert text in out, text


def test_every_command_prints_its_help(capsys):
    """``creditsim --help`` and each command's ``--help`` print their usage and exit 0 (a stray '%' in a help text
    breaks argparse's formatting only when the help is printed)."""
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for argv in ([], *([name] for name in subparsers.choices)):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, "--help"])
        out, err = capsys.readouterr()
        assert stopped.value.code == 0 and out.startswith("usage: creditsim") and not err, argv
        if not argv:  # the root help lists every command, its help texts rendered
            assert all(name in out for name in subparsers.choices) and "median and 90% band" in out


def test_a_sampled_run_says_it_is_scaled_back_and_which_xinzeng_is_which(capsys):
    """The bundled 嘉兴 scenario is simulated as a 1:10 sample: the summary says its figures are scaled back; its
    balance increase is the inclusive book's, and the plan's 新增 target is measured on all small-micro loans,
    which the summary says beside the targets."""
    assert main(["run", "--paths", "2", "--set", "calendar.months=14"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1] == "simulated as a 1:10 sample of the firms; every count and amount below is scaled back to the whole"
    assert "balance increase (新增, inclusive book)" in out
    plans = [line for line in out.splitlines() if line.startswith("set by ")]
    assert plans == ["set by 嘉兴市小微企业三年成长计划(2021—2023年) · 嘉兴市人民政府办公室, 2021 · " + ", ".join(
        dict.fromkeys(t.source.split(" ", 1)[1] for t in creditsim.load_scenario().targets.values()))]
    assert "新增 targets measure the increase of their own metric, not the inclusive book's balance increase above: new_lending on small_micro_balance" in out
    assert main(["run", "--paths", "1", "--set", "calendar.months=2", "--set", "sample=1"]) == 0
    assert "simulated as a" not in capsys.readouterr().out
