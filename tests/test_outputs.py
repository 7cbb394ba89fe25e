"""Outputs that can be trusted: a run killed while writing never leaves results at their place, and
Results.load refuses whatever does not match what was written (data, manifest, structure) without unpickling."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from creditsim import Results, ResultsError, simulate
from creditsim.scenario import json_digest, load_scenario
from helpers import fuzz_signed_json

#: A child that simulates, then saves results; ``stage`` chooses where it kills itself with SIGKILL.
CHILD = r"""
import os, signal, sys
import pandas as pd
import creditsim
from creditsim import files

target, stage = sys.argv[1], sys.argv[2]
r = creditsim.simulate(creditsim.load_scenario(overrides={"calendar.months": 3}), paths=2, seed=0, progress=False)
die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if stage == "loop":  # save again and again, until the parent kills it
    print("ready", flush=True)
    i = 0
    while True:
        r.save(os.path.join(target, f"r{i}"))
        i += 1
if stage == "replace":  # an earlier results directory is at the target
    r.save(target)
if stage == "data":  # killed with the data file written, before the manifest
    write = pd.DataFrame.to_parquet
    def to_parquet(self, *args, **kwargs):
        write(self, *args, **kwargs)
        die()
    pd.DataFrame.to_parquet = to_parquet
elif stage == "manifest":  # killed half-way through writing the manifest
    from pathlib import Path
    def write_text(self, text, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(text[: len(text) // 2])
            handle.flush()
        die()
    Path.write_text = write_text
else:  # killed at the rename into place (for "replace": the second rename, the earlier results moved away)
    rename = os.replace
    calls = []
    def replace(*args):
        calls.append(args)
        if stage == "rename" or len(calls) == 2:
            die()
        rename(*args)
    files.os.replace = replace
r.save(target)
"""


def _child(target: Path, stage: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(target), stage], stdout=subprocess.PIPE, text=True, **kwargs)


def _leftovers(parent: Path, name: str) -> list[Path]:
    """The hidden temporary directories a write of ``parent / name`` leaves."""
    return sorted(p for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize("stage", ["data", "manifest", "rename"])
def test_a_run_killed_while_saving_leaves_nothing_at_the_target(tmp_path, stage):
    """Killed after the data file, half-way through the manifest, or at the rename: no directory at the target,
    and the hidden staging directory left beside it is refused by Results.load, even when every file in it was
    written (it is still marked incomplete)."""
    target = tmp_path / "results"
    child = _child(target, stage)
    child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert not target.exists()
    with pytest.raises(ResultsError):
        Results.load(target)
    (staging,) = _leftovers(tmp_path, "results")
    assert (staging / "manifest.json").exists() == (stage != "data")
    with pytest.raises(ResultsError, match="was not completely written"):
        Results.load(staging)


def test_a_run_killed_while_replacing_earlier_results_leaves_them_loadable(tmp_path):
    """Killed between moving the earlier results aside and renaming the new ones into place: nothing at the
    target, and the earlier results are whole in the hidden directory beside it (neither is lost)."""
    target = tmp_path / "results"
    child = _child(target, "replace")
    child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert not target.exists()
    kept = [Results.load(p / "old") for p in _leftovers(tmp_path, "results") if (p / "old").exists()]
    assert len(kept) == 1 and kept[0].paths == 2


def test_runs_killed_at_random_moments_never_leave_a_partial_result(tmp_path):
    """A child saving results over and over is killed at seeded random moments, five times: every directory at
    a target loads and equals the results unless it is marked incomplete (killed between the rename and removing
    the mark), and then it is refused; every hidden leftover is refused."""
    expected = simulate(load_scenario(overrides={"calendar.months": 3}), paths=2, seed=0, progress=False).groups

    def check(directory: Path) -> None:
        loaded = Results.load(directory).groups
        assert all(np.array_equal(loaded[scope], expected[scope], equal_nan=True) for scope in expected)

    refused = 0
    for k, delay in enumerate(random.Random(10).sample(range(50, 400), 5)):
        out = tmp_path / f"kill{k}"
        out.mkdir()
        child = _child(out, "loop")
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay / 1000)
        child.kill()
        child.wait(timeout=60)
        for entry in out.iterdir():
            if entry.name.startswith("."):  # killed before its mark was made (empty), or marked
                with pytest.raises(ResultsError):
                    check(entry)
                refused += 1
            elif (entry / ".incomplete").exists():  # killed between the rename and removing the mark
                with pytest.raises(ResultsError, match="was not completely written"):
                    check(entry)
            else:
                check(entry)
    assert refused >= 1, "no kill landed in the middle of a write; the test did not test anything"


# ------------------------------------------------------------------------------------------------ tampering
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "results"
    simulate(load_scenario(overrides={"calendar.months": 3}), paths=2, seed=0, progress=False).save(out)
    return out


def _copy(saved: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in saved.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    return copy


def _rewrite_manifest(directory: Path, change, sign: bool = True) -> None:
    """Change the manifest; with ``sign`` its digest is recomputed, so only the deeper checks can catch it."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    change(manifest)
    if sign:
        manifest["manifest_sha256"] = json_digest(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_an_edited_manifest_is_refused(saved, tmp_path):
    """Changing the seed in the manifest (its data untouched) is caught by the manifest's digest."""
    copy = _copy(saved, tmp_path)
    _rewrite_manifest(copy, lambda m: m.update(seed=1), sign=False)
    with pytest.raises(ResultsError, match="changed since it was written"):
        Results.load(copy)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("path_ids"), "no valid 'path_ids'"),
    (lambda m: m.update(path_ids=["0", 1]), "no valid 'path_ids'"),
    (lambda m: m.update(seed=True), "no valid 'seed'"),
    (lambda m: m.update(files=[]), "no valid 'files'"),
    (lambda m: m.update(dates=m["dates"][:-1]), "dates do not match"),
    (lambda m: m.update(dates=[*m["dates"][1:], "2099-01"]), "dates do not match"),
    (lambda m: m.update(path_ids=[1, 1]), "no valid 'path_ids'"),
    (lambda m: m.update(path_ids=[-1, 0]), "no valid 'path_ids'"),
    (lambda m: m.update(path_ids=[0], paths=1), "rows, the manifest implies"),
    (lambda m: m.update(path_ids=[0]), "no valid 'paths'"),
    (lambda m: m.update(seed=-5), "no valid 'seed'"),
    (lambda m: m.update(traced=[7]), "no valid 'traced'"),
    (lambda m: m.update(format=999), "format 999 is not 2"),
    (lambda m: m.update(creditsim_version="999"), "saved by creditsim 999"),
    (lambda m: m.update(note="mine"), "holds 'note', which a results manifest does not"),
    (lambda m: m["files"].update({"other.parquet": "0" * 64}), "no valid 'files'"),
    (lambda m: m["scenario"].update(seed=1), "scenario in manifest.json is not valid here: seed = 1: unknown field"),
    (lambda m: m["scenario"]["calendar"].update(months=4), "does not match its recorded digest"),
    (lambda m: m.update(format=1), "format 1 is not 2"),
        (lambda m: m.update(creditsim_version="0.1.0"), "saved by creditsim 0.1.0, which this creditsim .* does not read"),
])
def test_a_manifest_that_does_not_fit_its_data_is_refused(saved, tmp_path, change, message):
    """A re-signed manifest with a missing or mistyped entry, or one that does not fit the data or the scenario:
    one ResultsError or ScenarioError, never a KeyError or a reshape error."""
    from creditsim import CreditsimError

    copy = _copy(saved, tmp_path)
    _rewrite_manifest(copy, change)
    with pytest.raises(CreditsimError, match=message):
        Results.load(copy)


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"\xff\xfe", b'{"format": 1', b"[" * 100_000 + b"]" * 100_000])
def test_a_manifest_that_is_not_one_is_refused(saved, tmp_path, content):
    copy = _copy(saved, tmp_path)
    (copy / "manifest.json").write_bytes(content)
    with pytest.raises(ResultsError, match="manifest"):
        Results.load(copy)


def test_data_that_does_not_match_the_recorded_hash_is_refused(saved, tmp_path):
    """One byte changed, the file truncated, or the file replaced by a directory."""
    copy = _copy(saved, tmp_path)
    data = copy / "metrics.parquet"
    original = data.read_bytes()
    for changed in (original[:100] + bytes([original[100] ^ 1]) + original[101:], original[: len(original) // 2]):
        data.write_bytes(changed)
        with pytest.raises(ResultsError, match="does not match the manifest's hash"):
            Results.load(copy)
    data.unlink()
    data.mkdir()
    with pytest.raises(ResultsError, match="metrics.parquet: the results data file is a directory, not a regular file"):
        Results.load(copy)


def test_loading_never_unpickles(saved, tmp_path, monkeypatch):
    """Results.load works with pickle's loaders replaced by a trap; a data file whose values are a pickled
    object (the right metric categories, re-hashed and re-signed, so only the reader stands in the way) is refused
    for its value type, and the trap is never sprung."""
    import creditsim.results.results as results_module

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    assert Results.load(saved).paths == 2
    copy = _copy(saved, tmp_path)
    payload = tmp_path / "payload.parquet"
    categories = pd.read_parquet(saved / "metrics.parquet", columns=["metric"])["metric"].cat.categories
    metric = pd.Categorical(["balance"], categories=categories)
    pd.DataFrame({"metric": metric, "value": [pickle.dumps(os.getcwd)]}).to_parquet(payload)
    (copy / "metrics.parquet").write_bytes(payload.read_bytes())
    _rewrite_manifest(copy, lambda m: m["files"].update({"metrics.parquet": results_module._sha256(copy / "metrics.parquet")}))
    with pytest.raises(ResultsError, match="its columns are metric, value, not path, date, bank, metric, value"):
        Results.load(copy)


def test_values_of_another_type_are_refused(saved, tmp_path):
    """Strings or float32 numbers in place of the float64 values, re-hashed and re-signed: one ResultsError."""
    import creditsim.results.results as results_module

    for values in (lambda v: v.astype(str), lambda v: v.astype(np.float32)):
        copy = _copy(saved, tmp_path)
        frame = pd.read_parquet(copy / "metrics.parquet")
        frame["value"] = values(frame["value"].to_numpy())
        frame.to_parquet(copy / "metrics.parquet", index=False)
        digest = results_module._sha256(copy / "metrics.parquet")
        _rewrite_manifest(copy, lambda m, digest=digest: m["files"].update({"metrics.parquet": digest}))
        with pytest.raises(ResultsError, match=r"column value holds (large_string|string|float) values, not float64"):
            Results.load(copy)
        shutil.rmtree(copy)


def test_a_directory_with_a_manifest_and_other_files_is_not_overwritten(tmp_path):
    """Saving to a directory that holds a file named manifest.json beside the user's own files is refused: only
    a directory holding nothing but creditsim results is replaced."""
    from creditsim.present.cli import main

    project = tmp_path / "project"
    project.mkdir()
    (project / "manifest.json").write_text("{}", encoding="utf-8")
    (project / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["run", "--paths", "2", "--set", "calendar.months=3", "--out", str(project)]) == 2
    assert (project / "notes.txt").read_text(encoding="utf-8") == "mine"
    (project / "notes.txt").unlink()
    with pytest.raises(ResultsError, match="not a creditsim results directory"):  # a manifest of something else
        Results.check_target(project)


# ------------------------------------------------------------------------------------------------ what the numbers mean
def _resave(directory: Path, name: str, table: pd.DataFrame | pa.Table) -> None:
    """Write ``table`` as ``name`` of a results directory and re-hash and re-sign the manifest, so that only the checks
    of what the numbers mean stand in the way (a deliberate edit, which the digests without a key cannot stop)."""
    import creditsim.results.results as results_module

    if isinstance(table, pd.DataFrame):
        table.to_parquet(directory / name, index=False)
    else:
        pq.write_table(table, directory / name)
    digest = results_module._sha256(directory / name)
    _rewrite_manifest(directory, lambda m: m["files"].update({name: digest}))


def _metrics(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(directory / "metrics.parquet")


def _where(frame: pd.DataFrame, metric: str, bank: str, path: int = 0, date: str = "2021-02") -> pd.Series:
    return (frame["metric"] == metric) & (frame["bank"] == bank) & (frame["path"] == path) & (frame["date"] == date)


def _shuffled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _rotated(frame: pd.DataFrame) -> pd.DataFrame:
    column = frame["bank"]
    frame["bank"] = pd.Categorical(np.roll(column.to_numpy(), 1), categories=column.cat.categories)
    return frame


def _swapped_paths(frame: pd.DataFrame) -> pd.DataFrame:
    frame["path"] = 1 - frame["path"]  # each path's rows labelled as the other's
    return frame


def _set(metric: str, value: float, bank: str = "big_bank"):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[_where(frame, metric, bank), "value"] = value
        return frame
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_shuffled, r"row \d+ is labelled path \d where the manifest implies \d; its rows were shuffled, dropped or relabelled"),
    (_rotated, r"row 0 is labelled bank 'all' where the manifest implies 'big_bank'"),
    (_swapped_paths, r"row 0 is labelled path 1 where the manifest implies 0"),
    (lambda f: f.iloc[:-10], r"has [\d,]+ rows, the manifest implies [\d,]+ \(2 paths × 4 dates"),
    (lambda f: pd.concat([f, f.iloc[:1]]), r"has [\d,]+ rows, the manifest implies [\d,]+"),
    (lambda f: f.iloc[np.r_[1:len(f), 0]], r"row \d+ is labelled path 1 where the manifest implies 0"),
    (lambda f: f.assign(date=pd.Categorical(f["date"].astype(str).replace("2021-02", "2021-12"))), r"row \d+: date '2021-12' is not one of"),
    (_set("balance", np.nan), r"balance of big_bank on path 0 at 2021-02 is nan: a stock or a count is a finite number ≥ 0"),
    (_set("balance", -7.9e7), r"balance of big_bank on path 0 at 2021-02 is -79000000.0: a stock or a count is a finite number ≥ 0"),
    (_set("disbursed", np.inf), r"disbursed of big_bank on path 0 at 2021-02 is inf: an amount is a finite number"),
    (_set("loans", -1.0), r"loans of big_bank .* a stock or a count is a finite number ≥ 0"),
    (_set("defaults", np.nan), r"defaults of big_bank .* a stock or a count"),
    (_set("npl_ratio", np.inf), r"npl_ratio of big_bank .* is inf: a ratio is NaN \(a denominator of 0\) or a finite number"),
    (_set("pool_suspended", 0.5, "ip_pledge"), r"pool_suspended of ip_pledge .* is 0.5: a flag is 0 or 1"),
    (_set("balance", 1.0), r"balance of all on path 0 at 2021-02 is .*, not .*, what its entities add up to"),
])
def test_data_whose_labels_or_values_were_changed_is_refused(saved, tmp_path, change, message):
    """metrics.parquet rewritten, re-hashed and re-signed: rows shuffled, rotated, relabelled, dropped or repeated, or
    a value that its metric cannot take (NaN or negative balances and counts, infinite amounts and ratios, a flag of
    0.5), or an entity's value that its aggregate does not add up to: one ResultsError naming the file and the row
    or value, never data reshaped by position."""
    copy = _copy(saved, tmp_path)
    _resave(copy, "metrics.parquet", change(_metrics(copy)))
    with pytest.raises(ResultsError, match=f"{copy / 'metrics.parquet'}: {message}"):
        Results.load(copy)


def test_the_pandas_metadata_is_not_interpreted(saved, tmp_path):
    """A Parquet file's pandas metadata malformed ("columns": 5, or nested 100,000 deep) is not read at all: the
    results load with the same numbers."""
    expected = Results.load(saved)
    for metadata in ('{"columns": 5}', "[" * 100_000 + "]" * 100_000):
        copy = _copy(saved, tmp_path)
        table = pq.read_table(copy / "metrics.parquet")
        _resave(copy, "metrics.parquet", table.replace_schema_metadata({"pandas": metadata}))
        loaded = Results.load(copy)
        assert all(np.array_equal(loaded.groups[s], expected.groups[s], equal_nan=True) for s in expected.groups)
        shutil.rmtree(copy)


def test_a_data_file_of_many_rows_is_refused_from_its_metadata(saved, tmp_path):
    """A small file declaring ten million rows (constant columns compress well) is refused from its metadata, in
    well under a second and before its rows are read (the Arrow memory pool's peak does not move); so is a manifest
    that implies more rows than fit in memory."""
    copy = _copy(saved, tmp_path)
    rows = 1_000_000
    codes = pa.array(np.zeros(rows, np.int8))
    chunk = pa.table({"path": pa.array(np.zeros(rows, np.int64)), "date": pa.DictionaryArray.from_arrays(codes, pa.array(["2021-01"])),
                      "bank": pa.DictionaryArray.from_arrays(codes, pa.array(["all"])),
                      "metric": pa.DictionaryArray.from_arrays(codes, pa.array(["balance"])), "value": pa.array(np.zeros(rows))})
    with pq.ParquetWriter(copy / "metrics.parquet", chunk.schema) as writer:
        for _ in range(10):
            writer.write_table(chunk)
    del chunk
    import creditsim.results.results as results_module

    digest = results_module._sha256(copy / "metrics.parquet")
    _rewrite_manifest(copy, lambda m: m["files"].update({"metrics.parquet": digest}))
    assert (copy / "metrics.parquet").stat().st_size < 2_000_000
    pool = pa.default_memory_pool()
    peak, started = pool.max_memory(), time.perf_counter()
    with pytest.raises(ResultsError, match=r"metrics.parquet: has 10,000,000 rows, the manifest implies [\d,]+ \(2 paths × 4 dates"):
        Results.load(copy)
    assert time.perf_counter() - started < 1.0 and pool.max_memory() == peak


def test_results_that_would_not_fit_in_memory_are_refused_before_reading(saved, monkeypatch):
    from creditsim.run import memory

    monkeypatch.setattr(memory, "available_bytes", lambda *args: 10_000)
    with pytest.raises(ResultsError, match=r"metrics.parquet: its [\d,]+ rows would take about .* GiB to read, more than 80% of the"):
        Results.load(saved)


# ------------------------------------------------------------------------------------------------ the trace
@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("traced") / "results"
    simulate(load_scenario(overrides={"calendar.months": 3, "sample": "1:100"}), paths=2, seed=0, trace=[1], progress=False).save(out)
    return out


def _trace(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(directory / "trace.parquet")


def _defaulted(frame: pd.DataFrame) -> pd.Series:
    return frame["how"].isin(["defaulted", "liquidity_default"])


def _trace_set(column: str, value, rows=slice(0, 1)):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[rows], column] = value
        return frame
    return change


def _not_defaulted_in(month: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[~_defaulted(frame), "default_month"] = month
        return frame
    return change


def _relabelled(column: str, categories: list[str]):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = pd.Categorical.from_codes(frame[column].cat.codes, categories=categories)
        return frame
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_trace_set("path", 0), r"trace record 0: path = 0 is not one of the traced paths"),
    (_trace_set("amount", -5.0), r"trace record 0: amount = -500.0 must be a finite amount > 0 \(fen\)"),
    (_trace_set("rate", np.inf), r"trace record 0: rate = inf must be a finite number"),
    (_trace_set("grade", 99), r"trace record 0: grade = 99 is not a grade of its segment"),
    (_trace_set("firm", 2**40), r"row 0: firm = 1099511627776 is outside what the trace holds"),
    (_trace_set("end", "2021-13"), r"column end holds '2021-13', which is not a month"),
    (_trace_set("end", "2030-01"), r"trace record 0: end = 109 must be a month of the run \(0 to 3\)"),
    (_trace_set("amount", 1000.001), r"row 0: amount is 1000.001, not 1000.0 as the loan's other columns imply"),
    (_not_defaulted_in("2021-01"), r"row \d+: default_month is '2021-01', not None as the loan's other columns imply"),
    (_relabelled("bank", ["big_bank", "city_bank", "other_bank"]), r"row \d+: bank 'other_bank' is not one of the 3 the manifest names"),
    (lambda f: f.drop(columns=["rate"]), r"its columns are .*, not path, firm"),
    (lambda f: f.assign(grade=f["grade"].astype(float)), r"column grade holds double values, not int64"),
])
def test_a_trace_that_was_changed_is_refused(traced, tmp_path, change, message):
    """trace.parquet rewritten, re-hashed and re-signed: a loan of a path that was not traced, an impossible amount,
    rate, grade, firm or month, a column its other columns contradict, a bank the scenario does not have, a column
    missing or of another type: one ResultsError naming the file."""
    copy = _copy(traced, tmp_path)
    _resave(copy, "trace.parquet", change(_trace(copy)))
    with pytest.raises(ResultsError, match=f"{copy / 'trace.parquet'}: {message}"):
        Results.load(copy)


def test_a_trace_loads_as_it_was_written(traced):
    loaded = Results.load(traced).trace
    pd.testing.assert_frame_equal(loaded, _trace(traced), check_dtype=False, check_categorical=False)
    assert len(loaded) > 100 and set(loaded["path"]) == {1}


# ------------------------------------------------------------------------------------------------ special files
SPECIAL = r"""
import os, shutil, sys
from pathlib import Path
from creditsim import Results, ResultsError

source, work = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("manifest.json", "metrics.parquet", "trace.parquet"):
    for kind in ("fifo", "zero"):
        results = Path(shutil.copytree(source, work / f"{name}-{kind}"))
        (results / name).unlink()
        os.mkfifo(results / name) if kind == "fifo" else (results / name).symlink_to("/dev/zero")
        try:
            Results.load(results)
        except ResultsError as exc:
            print(exc, flush=True)
"""


def test_a_special_file_in_place_of_a_results_file_is_refused_at_once(saved, tmp_path):
    """A FIFO (which blocks whoever opens it for reading) or a link to /dev/zero (which never ends) in place of a
    file of the results: refused at once, naming it, instead of hanging or growing without bound."""
    child = subprocess.run([sys.executable, "-c", SPECIAL, str(saved), str(tmp_path)], capture_output=True, text=True, timeout=120)
    expected = []
    for name in ("manifest.json", "metrics.parquet", "trace.parquet"):
        what = "results manifest" if name == "manifest.json" else "results data file"
        for kind, shown in (("fifo", "a FIFO"), ("zero", "a device")):
            expected.append(f"{tmp_path / f'{name}-{kind}' / name}: the {what} is {shown}, not a regular file; refusing to read it")
    assert child.stdout.splitlines() == expected, child


def test_report_refuses_changed_results_in_one_line(saved, tmp_path, capsys):
    """`creditsim report` on results whose rows were shuffled: exit 2, one line naming the file, no traceback."""
    from creditsim.present.cli import main

    copy = _copy(saved, tmp_path)
    _resave(copy, "metrics.parquet", _shuffled(_metrics(copy)))
    assert main(["report", str(copy), "-o", str(tmp_path / "r.html")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("creditsim: warning: ")]  # years unused
    assert len(lines) == 1 and lines[0].startswith(f"creditsim: error: {copy / 'metrics.parquet'}: row ") and "is labelled path" in lines[0]
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------------------------------------ fuzz
def _fuzz_table(directory: Path, name: str, rng: random.Random) -> tuple[str, bool]:
    """Change one table in one way (two rows swapped, a row dropped or repeated, a cell or a column's type changed),
    re-hashed and re-signed; also whether the change must be refused (rows of the metrics out of their order)."""
    frame = pd.read_parquet(directory / name)
    if frame.empty:
        return "nothing (an empty table)", False
    i, j = rng.sample(range(len(frame)), 2)
    column = rng.choice(list(frame.columns))
    how = rng.choice(["swap", "drop", "repeat", "cell", "type"])
    if how == "swap":
        order = np.arange(len(frame))
        order[[i, j]] = order[[j, i]]
        frame = frame.iloc[order]
    elif how == "drop":
        frame = frame.drop(frame.index[i])
    elif how == "repeat":
        frame = pd.concat([frame, frame.iloc[[i]]])
    elif how == "cell":
        values = np.array(frame[column].astype(object), dtype=object)
        values[i] = rng.choice([np.nan, np.inf, -1e9, 0.0, 7, "x", "2021-13", None, values[j]])
        try:
            frame[column] = pd.array(values, dtype=frame[column].dtype)
        except (TypeError, ValueError):
            frame[column] = values.astype(str)
    else:
        try:
            frame[column] = frame[column].astype(rng.choice(["float32", "int64", "float64"]))
        except (TypeError, ValueError):
            frame[column] = frame[column].astype(str)
    _resave(directory, name, frame.reset_index(drop=True))
    return f"{name}: {how} {column} rows {i}, {j}", name == "metrics.parquet" and how in ("swap", "drop", "repeat")


def test_fuzzed_results_are_loaded_or_refused_in_one_line(saved, traced, tmp_path):
    """Seeded random edits of results, re-signed so that only the checks of what they mean stand in the way: a
    manifest entry replaced by a value of any kind, rows of the metrics or the trace swapped, dropped or repeated,
    a cell or a column's type changed. Each is refused with one ResultsError line naming the results, or loads;
    nothing else (no other exception, no hang). Rows of the metrics swapped, dropped or repeated are always refused.
    Bounded to 60 edits or 20 seconds."""
    rng, started, refused = random.Random(22), time.monotonic(), 0
    for k in range(60):
        if time.monotonic() - started > 20:
            break
        copy = Path(shutil.copytree(rng.choice([saved, traced]), tmp_path / f"fuzz{k}"))
        kind = rng.choice(["manifest", "metrics.parquet", "trace.parquet"])
        what, must_refuse = (fuzz_signed_json(copy / "manifest.json", rng), False) if kind == "manifest" else _fuzz_table(copy, kind, rng)
        try:
            Results.load(copy)
        except ResultsError as exc:
            assert "\n" not in str(exc) and str(copy) in str(exc), what
            refused += 1
        else:
            assert not must_refuse, what
        shutil.rmtree(copy)
    assert refused >= 20, refused
