"""Checkpoints that cannot lie, and that a kill at any moment leaves recoverable.

Each task file is bound to its run (the digest of checkpoint.json: scenarios, seed, paths, chunk size, versions), its
task number and paths, and its arrays; a file copied from another checkpoint, one left from before checkpoint.json was
edited, one whose arrays break what the task returns, and a malformed checkpoint.json are refused in one line naming
the file. A run killed at every step of creating, writing and finishing its checkpoint and results is continued by
the same command, and by --resume whenever the checkpoint is there.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import creditsim
from creditsim.errors import ResultsError
from creditsim.present.cli import main
from creditsim.run import checkpoint as checkpoint_module
from creditsim.scenario import json_digest
from helpers import BASE_TOML, fuzz_signed_json

OVERRIDES = {"calendar.months": 2, "sample": "1:20"}
CLI_OVERRIDES = ["--set", "calendar.months=2", "--set", "sample=1:20"]


@pytest.fixture(scope="module")
def scenario():
    return creditsim.load_scenario(BASE_TOML, overrides=OVERRIDES)


@pytest.fixture(scope="module")
def made(scenario, tmp_path_factory) -> dict[int, Path]:
    """Finished checkpoints of the same two traced paths with seeds 1 and 2, one task a path."""
    base = tmp_path_factory.mktemp("checkpoints")
    for seed in (1, 2):
        creditsim.simulate(scenario, paths=2, seed=seed, chunk_size=1, trace=[1], checkpoint=base / f"seed{seed}", progress=False)
    return {seed: base / f"seed{seed}" for seed in (1, 2)}


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "ck"))


def _refused(capsys, argv: list[str], *names: str) -> str:
    """Exit 2 and exactly one line on stderr, naming each of ``names``, no traceback."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("creditsim: error: ") and "Traceback" not in out + err, err
    for name in names:
        assert name in err, err
    return err


def _resume(capsys, directory: Path, *names: str) -> str:
    return _refused(capsys, ["run", "--resume", str(directory), "--out", str(directory.parent / "out")], *names)


def _edit_manifest(directory: Path, change, sign: bool = True) -> None:
    """Change checkpoint.json; with ``sign`` its digest is recomputed (a deliberate edit)."""
    path = directory / "checkpoint.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    change(manifest)
    if sign:
        manifest["manifest_sha256"] = json_digest(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _rewrite_task(directory: Path, index: int, change, bind: bool = True, save=np.savez) -> Path:
    """Change the arrays of a task file; with ``bind`` its binding is recomputed, so that only the checks of its
    arrays' layout and values can catch the change."""
    path = directory / f"task-{index:05d}.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    special = {name: arrays.pop(name) for name in ("__paths__", "__run__", "__binding__")}
    arrays = change(arrays)
    if bind:
        identity = json.loads((directory / "checkpoint.json").read_text(encoding="utf-8"))["manifest_sha256"]
        special["__binding__"] = np.asarray(checkpoint_module._binding(identity, index, special["__paths__"].tolist(), arrays), dtype="<U64")
    save(path, **arrays, **special)
    return path


def test_a_task_file_of_another_run_is_refused(made, tmp_path, capsys, scenario):
    """A task file copied from the seed-2 checkpoint into the seed-1 one: continuing it from Python or with --resume
    is refused, naming the file, instead of mixing the two runs' numbers."""
    directory = _copy(made[1], tmp_path)
    shutil.copy(made[2] / "task-00000.npz", directory / "task-00000.npz")
    with pytest.raises(ResultsError, match=r"task-00000.npz: belongs to another run than checkpoint.json describes"):
        creditsim.simulate(scenario, paths=2, seed=1, chunk_size=1, trace=[1], checkpoint=directory, progress=False)
    _resume(capsys, directory, str(directory / "task-00000.npz"), "another run", "delete it to run that task again")
    shutil.copy(made[1] / "task-00001.npz", directory / "task-00000.npz")  # another task of the same run
    _resume(capsys, directory, str(directory / "task-00000.npz"), "holds other paths than task 0's")


@pytest.mark.parametrize(("change", "entry"), [
    (lambda m: m["run"].update(seed=2), "seed"),
    (lambda m: m["run"]["scenarios"][0]["banks"]["city_bank"].update(rate=0.2), "rate"),
])
def test_an_edited_checkpoint_json_is_refused(made, tmp_path, capsys, change, entry):
    """checkpoint.json with its seed or a bank's rate edited: refused by its digest; re-signed, its task files
    (bound to the run as it was) are refused, so no results claim seed 2 or a rate of 0.2 with the numbers of seed 1
    or the rate the tasks ran."""
    directory = _copy(made[1], tmp_path)
    _edit_manifest(directory, change, sign=False)
    _resume(capsys, directory, str(directory / "checkpoint.json"), "has been changed since it was written")
    shutil.rmtree(directory)
    directory = _copy(made[1], tmp_path)
    _edit_manifest(directory, change)
    _resume(capsys, directory, str(directory / "task-00000.npz"), "belongs to another run than checkpoint.json describes")
    assert not (directory.parent / "out").exists()


def _scaled(name: str, factor, index=(0, 1, 0, 0)):
    def change(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][index] *= factor
        return arrays
    return change


def _trace_field(field: str, value):
    def change(arrays):
        arrays["trace"] = arrays["trace"].copy()
        arrays["trace"][field][0] = value
        return arrays
    return change


@pytest.mark.parametrize(("index", "change", "message"), [
    (0, _scaled("bank", np.nan), r"balance of big_bank on path 0 at 2021-01 is nan: a stock or a count is a finite number ≥ 0"),
    (0, _scaled("bank", -1.0), r"balance of big_bank on path 0 at 2021-01 is -\d.*: a stock or a count is a finite number ≥ 0"),
    (0, _scaled("population", np.inf), r"firms of all on path 0 at 2021-01 is inf"),
    (0, lambda a: {**a, "bank": a["bank"].astype(np.float32)}, r"array bank is float32 of shape \(1, 3, 3, \d+\), not float64 of shape 1×3×3×\d+"),
    (0, lambda a: {**a, "bank": a["bank"][:, :2]}, r"array bank is float64 of shape \(1, 2, 3, \d+\), not float64 of shape 1×3×3×\d+"),
    (0, lambda a: {**a, "bank": a["bank"].astype(str)}, r"array bank is <U\d+ of shape"),
    (0, lambda a: {k: v for k, v in a.items() if k != "pool"}, r"lacks pool"),
    (0, lambda a: {**a, "more": np.zeros(1)}, r"holds more, which the task does not return"),
    (0, lambda a: {**a, "trace": np.zeros(0, [("path", "i8")])}, r"array trace is \[\('path', '<i8'\)\] of shape \(0,\), not"),
    (1, _trace_field("bank", 7), r"trace record 0: bank = 7 is not one of the scenario's banks"),
    (1, _trace_field("path", 0), r"trace record 0: path = 0 is not one of the traced paths"),
    (1, _trace_field("amount", -1.0), r"trace record 0: amount = -1.0 must be a finite amount > 0 \(fen\)"),
])
def test_task_arrays_that_break_what_the_task_returns_are_refused(made, tmp_path, capsys, index, change, message):
    """A task file re-bound after its arrays were changed (NaN, negative or infinite metrics, float32, the wrong
    shape, text, an array missing or one too many, a trace of other records or of impossible loans): one line naming
    the file, from the CLI with exit 2."""
    directory = _copy(made[1], tmp_path)
    path = _rewrite_task(directory, index, change)
    err = _resume(capsys, directory, f"{path}: ", "delete it to run that task again")
    assert __import__("re").search(message, err), err


def test_a_changed_or_foreign_task_file_is_refused_whatever_its_form(made, tmp_path, capsys):
    """A value changed without re-binding; a compressed archive; an object (pickled) array; not a zip file at all."""
    directory = _copy(made[1], tmp_path)
    path = _rewrite_task(directory, 0, _scaled("bank", 2.0), bind=False)
    _resume(capsys, directory, f"{path}: has been changed since it was written")
    _rewrite_task(directory, 0, lambda a: a, save=np.savez_compressed)
    _resume(capsys, directory, f"{path}: array ", "is compressed")
    _rewrite_task(directory, 0, lambda a: {**a, "bank": np.array([os.getcwd], dtype=object)}, bind=False)
    _resume(capsys, directory, f"{path}: array bank is object of shape (1,), not float64")
    path.write_bytes(b"not a zip file")
    _resume(capsys, directory, f"{path}: unreadable checkpoint file")


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(seed="x"), "run.seed = \"x\": must be a whole number ≥ 0"),
    (lambda r: r.pop("seed"), "run.seed is missing"),
    (lambda r: r.update(seed=-5), "run.seed = -5: must be a whole number ≥ 0"),
    (lambda r: r.update(paths=10**12), "run.paths = 1000000000000: its path numbers alone would take"),
    (lambda r: r.update(paths=0), "run.paths = 0: must be a count ≥ 1"),
    (lambda r: r.update(paths=[0, 0]), "run.paths = [0, 0]: must be a count ≥ 1 or distinct path numbers"),
    (lambda r: r.update(chunk_size="big"), "run.chunk_size = \"big\": must be a whole number ≥ 1"),
    (lambda r: r.update(trace=[5]), "run.trace = [5]: must be distinct path numbers of the run"),
    (lambda r: r.update(scenarios=[]), "run.scenarios = []: must be a list of scenarios"),
    (lambda r: r["scenarios"][0]["banks"]["city_bank"].update(max_pd=3), "a scenario in it is not valid here: banks.city_bank.max_pd = 3"),
])
def test_a_malformed_checkpoint_json_is_refused_in_one_line(made, tmp_path, capsys, change, message):
    """checkpoint.json re-signed with an entry of another type, out of range or missing (a count of 10^12 paths
    among them, refused before any list of them is made): one line naming the file and the entry."""
    directory = _copy(made[1], tmp_path)
    _edit_manifest(directory, lambda m: change(m["run"]))
    _resume(capsys, directory, f"{directory / 'checkpoint.json'}: ", message)


def test_a_malformed_sweep_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    directory = tmp_path / "ck"
    key = "banks.city_bank.max_pd"
    assert main(["sweep", str(BASE_TOML), *CLI_OVERRIDES, "--set", f"{key}=0.05,0.1", "--paths", "2", "--checkpoint", str(directory)]) == 0
    capsys.readouterr()
    _edit_manifest(directory, lambda m: m["run"]["sweep"].update(keys=5))
    _refused(capsys, ["sweep", "--resume", str(directory)], f"{directory / 'checkpoint.json'}: run.sweep is not a sweep's description")


SPECIAL = r"""
import os, shutil, sys
from pathlib import Path
from creditsim.present.cli import main

source, work = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("checkpoint.json", "task-00000.npz"):
    for kind in ("fifo", "zero"):
        directory = work / f"{name}-{kind}"
        shutil.copytree(source, directory)
        (directory / name).unlink()
        os.mkfifo(directory / name) if kind == "fifo" else (directory / name).symlink_to("/dev/zero")
        print(main(["run", "--resume", str(directory), "--out", str(work / "out")]), flush=True)
"""


def test_a_special_file_in_a_checkpoint_is_refused_at_once(made, tmp_path):
    """A FIFO or a link to /dev/zero in place of checkpoint.json or of a task file: refused at once, naming it."""
    child = subprocess.run([sys.executable, "-c", SPECIAL, str(made[1]), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert child.stdout.split() == ["2"] * 4, child
    lines = child.stderr.splitlines()
    assert len(lines) == 4 and "Traceback" not in child.stderr, child.stderr
    for line, (name, kind) in zip(lines, [(n, k) for n in ("checkpoint.json", "task-00000.npz") for k in ("a FIFO", "a device")], strict=True):
        assert line.startswith(f"creditsim: error: {tmp_path}/{name}-") and f"/{name}: the " in line and f"is {kind}, not a regular file" in line, line


# ------------------------------------------------------------------------------------------------ kills
#: In a child: run a checkpointed, traced command with --out once whole (the numbers to compare with, and a warm
#: compiled engine); then for k = 1, 2, … run it again in a forked process that SIGKILLs itself just before its k-th
#: change to the file system (a directory or file created, written to, renamed, removed or its mode changed), until
#: a run completes before reaching it. After each kill, what is left must be continued by `--resume` (whenever the
#: checkpoint directory is there) and by the same command, each to the same numbers and trace.
KILLS = r"""
import builtins, contextlib, io, os, shutil, signal, sys
from pathlib import Path
import numpy as np
from creditsim import Results
from creditsim.present.cli import main

work, scenario = Path(sys.argv[1]), sys.argv[2]

def command(base):
    return ["run", scenario, "--paths", "2", "--seed", "4", *sys.argv[3:], "--chunk-size", "1", "--trace", "1",
            "--checkpoint", str(base / "ck"), "--out", str(base / "out")]

def forked(task):
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        try:
            code = task()
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

def die_before(step):
    done = [0]
    def hook(function, changes=lambda *args, **kwargs: True):
        def wrapped(*args, **kwargs):
            if changes(*args, **kwargs):
                done[0] += 1
                if done[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return wrapped
    for name in ("mkdir", "replace", "rename", "unlink", "rmdir", "chmod"):
        setattr(os, name, hook(getattr(os, name)))
    os.open = hook(os.open, lambda path, flags, *args, **kwargs: flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    builtins.open = io.open = hook(io.open, lambda file, mode="r", *args, **kwargs: any(c in mode for c in "wax+"))

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    assert main(command(work / "whole")) == 0
expected = Results.load(work / "whole" / "out")

def same(out):
    r = Results.load(out)
    return all(np.array_equal(r.groups[s], expected.groups[s], equal_nan=True) for s in expected.groups) and r.trace.equals(expected.trace)

failed = []
step = 0
while True:
    step += 1
    base = work / f"killed{step}"
    base.mkdir()
    code = forked(lambda: (die_before(step), main(command(base)))[1])
    if code == 0:
        break
    assert code == -signal.SIGKILL, code
    left = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
    copy = Path(shutil.copytree(base, work / f"resumed{step}", symlinks=True))
    if (copy / "ck").exists():
        if forked(lambda: main(["run", "--resume", str(copy / "ck"), "--out", str(copy / "out")])) != 0 or not same(copy / "out"):
            failed.append(f"step {step}: --resume did not continue {left}")
    if forked(lambda: main(command(base))) != 0 or not same(base / "out"):
        failed.append(f"step {step}: the same command did not continue {left}")
print("steps", step - 1)
print("\n".join(failed))
"""


def test_a_run_killed_at_any_step_is_continued(tmp_path):
    """SIGKILL before each change a checkpointed run with --out makes to the file system, in turn: creating the
    checkpoint, writing each task, saving the results. Every time, the same command continues to the numbers and
    trace of an uninterrupted run, and so does --resume whenever the checkpoint directory is there (a run killed
    before it appeared has nothing to resume)."""
    child = subprocess.run([sys.executable, "-c", KILLS, str(tmp_path), str(BASE_TOML), *CLI_OVERRIDES], capture_output=True, text=True,
                           timeout=900)
    assert child.returncode == 0, child.stderr[-3000:]
    steps, *failed = child.stdout.strip().splitlines()
    assert not failed, failed
    assert int(steps.split()[1]) >= 20, steps  # the checkpoint's creation, two tasks and the results: every step of each


# ------------------------------------------------------------------------------------------------ fuzz
def _fuzz_arrays(arrays: dict[str, np.ndarray], rng: random.Random) -> dict[str, np.ndarray]:
    """One array of a task changed in a value, its dtype or shape, renamed, dropped, or one added."""
    name = rng.choice(sorted(arrays))
    array = arrays[name].copy()
    how = rng.choice(["value", "dtype", "shape", "rename", "drop", "add"])
    if how == "value" and array.size:
        flat = array.reshape(-1)
        k = rng.randrange(flat.size)
        if array.dtype.names:
            field = rng.choice(array.dtype.names)
            flat[field][k] = rng.choice([-1, 0, 100, 127]) if flat[field].dtype.kind in "iub" else rng.choice([np.nan, -np.inf, -1.0, 0.0])
        else:
            flat[k] = rng.choice([np.nan, np.inf, -1.0, 0.0, 1e300])
        arrays[name] = array
    elif how == "dtype":
        arrays[name] = array.astype(rng.choice([np.float32, np.int64, str])) if not array.dtype.names else array[array.dtype.names[0]]
    elif how == "shape":
        cut = rng.randrange(array.ndim)
        arrays[name] = array[tuple(slice(0, max(0, n - 1)) if axis == cut else slice(None) for axis, n in enumerate(array.shape))]
    elif how == "rename":
        arrays[f"{name}x"] = arrays.pop(name)
    elif how == "drop":
        arrays.pop(name)
    else:
        arrays["extra"] = np.zeros(1)
    return arrays


def test_fuzzed_checkpoints_are_continued_or_refused_in_one_line(made, tmp_path, capsys):
    """Seeded random edits of a finished checkpoint: an entry of checkpoint.json replaced by a value of any kind and
    re-signed, or an array of a task file changed in a value, its dtype or shape, renamed, dropped or one added, mostly
    re-bound. `run --resume` refuses each in one line naming the checkpoint (exit 2) or continues it (exit 0; a value
    its rule admits); nothing else, and a refusal leaves the task files as they were. Bounded to 60 edits or 20
    seconds."""
    rng, started, refused = random.Random(22), time.monotonic(), 0
    for k in range(60):
        if time.monotonic() - started > 20:
            break
        directory = Path(shutil.copytree(made[1], tmp_path / f"fuzz{k}" / "ck"))
        if rng.random() < 0.4:
            what = fuzz_signed_json(directory / "checkpoint.json", rng)
        else:
            index = rng.randrange(2)
            _rewrite_task(directory, index, lambda arrays: _fuzz_arrays(arrays, rng), bind=rng.random() < 0.8)
            what = f"task {index}"
        code = main(["run", "--resume", str(directory), "--out", str(directory.parent / "out")])
        out, err = capsys.readouterr()
        assert code in (0, 2) and "Traceback" not in out + err, what
        if code == 2:
            assert err.count("\n") == 1 and str(directory) in err, (what, err)
            refused += 1
        assert sorted(p.name for p in directory.glob("task-*")) == ["task-00000.npz", "task-00001.npz"], what
    assert refused >= 20, refused
