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
import pytest

from creditsim import Results, ResultsError, simulate
from creditsim.scenario import json_digest, load_scenario

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
    (lambda m: m.update(path_ids=[0]), "rows, the manifest implies"),
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
    with pytest.raises(ResultsError, match="missing or does not match"):
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
    with pytest.raises(ResultsError, match="holds object values, not float64"):
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
        with pytest.raises(ResultsError, match="values, not float64 numbers"):
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


def test_checkpoint_files_are_read_without_pickles(tmp_path):
    """A checkpoint task file holding a pickled object array is refused as unreadable, not unpickled."""
    from creditsim.run.checkpoint import Checkpoint

    store = Checkpoint(tmp_path / "ck", {"run": 1}, [[0]], {})
    np.savez(tmp_path / "ck" / "task-00000.npz", bank=np.array([os.getcwd], dtype=object))
    with pytest.raises(ResultsError, match="unreadable checkpoint file"):
        store.load(0)
