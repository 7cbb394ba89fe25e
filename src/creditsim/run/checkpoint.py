"""Checkpoints: the completed tasks of a run kept in a directory, so that an interrupted run can continue.

A checkpoint directory holds ``checkpoint.json`` (what the run is: scenarios, seed, path numbers, chunk size, what
each task returns, and the versions of creditsim (with a digest of its source), numpy and numba, which fix the
numbers; and a digest of all that) and one ``task-NNNNN.npz`` per completed task: its arrays, its path numbers, the
digest of the run it belongs to and a digest binding them together (run, task number, paths, arrays). A run given
the directory again skips the tasks already there; since a path's numbers depend only on (scenario, seed, path),
the continued run ends with the same numbers as an uninterrupted one. Nothing is unpickled when reading.

Written so that a kill at any moment leaves something to continue from: the directory is created whole (filled
beside its place with ``checkpoint.json`` and renamed into it), so a killed run leaves either no checkpoint (the same
command starts again) or one the same command or ``--resume`` continues; each task file is written under a
temporary name and renamed into place, so only complete ones are at their names.

Read back, each file is checked before it is used, and refused in one line naming it:

* ``checkpoint.json``: a regular file, this creditsim's version and format, unchanged (its digest), and every entry
  of the run of its type and in range (seed, paths, chunk size, traced paths);
* a task file: a regular file, an uncompressed archive of exactly the arrays the task returns, each of the dtype
  and shape it must have (checked from the headers before an array is read); of this run (a file copied from
  another checkpoint, or left from before ``checkpoint.json`` was edited, is not), of this task and its paths,
  unchanged since written (its binding), and with values its :class:`Layout` admits.

Like the results' digests, these have no key: they catch accidents and edits that were not re-signed, not someone
who rewrites the digests (see :mod:`creditsim.results.results`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ResultsError, ScenarioError, one_line
from ..files import open_regular, read_regular, write_directory, write_file
from ..scenario import Scenario, json_digest, scenario_from_dict

__all__ = ["Checkpoint", "Layout", "MANIFEST", "checkpointed_scenario", "read_manifest"]

MANIFEST = "checkpoint.json"
_FORMAT = 2
_SELF_DIGEST = "manifest_sha256"
#: What every task file holds besides the task's arrays: its path numbers, the digest of its run, and its binding.
_PATHS, _RUN, _BINDING = "__paths__", "__run__", "__binding__"
_DIGEST = np.dtype("<U64")
#: The temporary file of a manifest or a task file being written (:func:`creditsim.files.write_file`): all that a kill
#: can leave in a checkpoint directory of an earlier creditsim whose manifest was not yet in place.
_LEFTOVER = re.compile(r"\.(checkpoint|task-\d{5})\.[a-z0-9_]{8}\.(json|npz)")
#: The entries of a run's description every checkpoint has, each with the rule it must meet.
_RUN_ENTRIES = ("scenarios", "seed", "paths", "chunk_size", "engine", "summary", "trace")
#: Bytes a path number takes at least while a run is set up (in its list of path numbers).
_PATH_BYTES = 8

#: The shape of an array: a length per axis, None for one that may be anything.
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Layout:
    """What the file of one task must hold besides its path numbers.

    Attributes
    ----------
    arrays : dict
        Per array name its dtype and :data:`Shape`; under the name None, the dtype and shape of each array of a
        task whose names are not known in advance (they must then be the same in every task of a scenario).
    check : callable
        Called with the arrays read; raises :class:`ResultsError` (without the file's name, which is added) when a
        value breaks a rule.
    """

    arrays: dict[str | None, tuple[np.dtype, Shape]]
    check: Callable[[dict[str, np.ndarray]], None]


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The description of the run checkpointed in ``directory``, checked: this creditsim's version and format,
    unchanged since written, and every entry of the run of its type and in range.

    Raises
    ------
    ResultsError
        When the directory holds no readable checkpoint, naming ``checkpoint.json`` and what is wrong.
    """
    from .. import __version__

    path = Path(directory) / MANIFEST
    if not os.path.lexists(path):
        raise ResultsError(f"{directory}: not a creditsim checkpoint (it holds no {MANIFEST})")
    try:
        manifest = json.loads(read_regular(path, "checkpoint manifest"))
    except (ValueError, RecursionError) as exc:
        raise ResultsError(f"{path}: not readable ({' '.join(str(exc).split()) or 'nested too deeply'})") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{path}: is not a creditsim checkpoint manifest")
    if isinstance(manifest.get("format"), int) and manifest["format"] != _FORMAT:
        raise ResultsError(f"{directory}: a checkpoint of format {manifest['format']}, which this creditsim (checkpoint format {_FORMAT}) "
                           "does not read; start a new checkpoint")
    versions = manifest.get("versions")
    made_by = versions.get("creditsim") if isinstance(versions, dict) else None
    if made_by != __version__:
        raise ResultsError(f"{directory}: checkpointed by creditsim {made_by if isinstance(made_by, str) else 'of an unknown version'}, "
                           f"which this creditsim {__version__} does not continue; start a new checkpoint")
    recorded = manifest.pop(_SELF_DIGEST, None)
    if recorded != json_digest(manifest):
        raise ResultsError(f"{path}: has been changed since it was written (its digest does not match)")
    if manifest.keys() != {"format", "versions", "run"} or not isinstance(manifest["run"], dict):
        raise ResultsError(f"{path}: is not a creditsim checkpoint manifest of format {_FORMAT} (format, versions, run)")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items()):
        raise ResultsError(f"{path}: versions = {_shown(versions)}: must name a version of each package")
    _check_run(path, manifest["run"])
    return manifest


def checkpointed_scenario(directory: str | os.PathLike[str], data: dict[str, Any]) -> Scenario:
    """A scenario recorded in the checkpoint in ``directory``, validated.

    Raises
    ------
    ResultsError
        When it is not valid here, naming ``checkpoint.json``.
    """
    try:
        return scenario_from_dict(data)
    except ScenarioError as exc:
        raise ResultsError(f"{Path(directory) / MANIFEST}: a scenario in it is not valid here: {exc}") from None


def _check_run(path: Path, run: dict[str, Any]) -> None:
    """Refuse a run description with an entry missing, of another type or out of range (one line naming it)."""
    from .memory import available_bytes

    def whole(x: object, low: int = 0) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and low <= x < 2**63

    for key in _RUN_ENTRIES:
        if key not in run:
            raise ResultsError(f"{path}: run.{key} is missing")
    paths, trace, scenarios = run["paths"], run["trace"], run["scenarios"]
    rules: list[tuple[str, Callable[[], bool], str]] = [
        ("scenarios", lambda: isinstance(scenarios, list) and bool(scenarios) and all(isinstance(s, dict) for s in scenarios), "must be a list of scenarios"),
        ("seed", lambda: whole(run["seed"]), "must be a whole number ≥ 0 and below 2^63"),
        ("paths", lambda: whole(paths, 1) or (isinstance(paths, list) and bool(paths) and all(whole(p) for p in paths) and len(set(paths)) == len(paths)),
         "must be a count ≥ 1 or distinct path numbers ≥ 0, below 2^63"),
        ("chunk_size", lambda: whole(run["chunk_size"], 1), "must be a whole number ≥ 1"),
        ("engine", lambda: isinstance(run["engine"], str), "must name the engine"),
        ("summary", lambda: run["summary"] is None or (isinstance(run["summary"], list) and all(isinstance(x, str) for x in run["summary"])),
         "must be null or name a summary"),
        ("trace", lambda: isinstance(trace, list) and all(whole(p) for p in trace) and trace == sorted(set(trace))
         and (all(p < paths for p in trace) if isinstance(paths, int) else set(trace) <= set(paths)), "must be distinct path numbers of the run, in order"),
    ]
    for key, ok, rule in rules:
        if not ok():
            raise ResultsError(f"{path}: run.{key} = {_shown(run[key])}: {rule}")
    count = paths if isinstance(paths, int) else len(paths)
    available = available_bytes()
    if available is not None and count * len(scenarios) * _PATH_BYTES > available:
        raise ResultsError(f"{path}: run.paths = {count}: its path numbers alone would take {count * len(scenarios) * _PATH_BYTES / 1024**3:.1f} GiB, "
                           f"more than the {available / 1024**3:.1f} GiB available")


def _shown(value: object) -> str:
    text = one_line(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= 60 else text[:57] + "..."


class Checkpoint:
    """The completed tasks of one run in ``directory``.

    Parameters
    ----------
    directory : str or Path
        Created when missing (whole: with its ``checkpoint.json``). When it holds a checkpoint already, that must be
        of the same run.
    run : dict
        JSON-able description of the run (scenarios, seed, paths, chunking, task output; the entries
        :func:`read_manifest` checks, and any more); with the package versions it identifies the run.
    tasks : sequence of sequence of int
        Each task's path numbers, in task order.
    versions : dict
        What fixes the numbers besides the run (package versions); a checkpoint made under others is refused.
    layouts : sequence of Layout
        What each task's file must hold.

    Raises
    ------
    ResultsError
        When ``directory`` holds anything else, a checkpoint of another run, or cannot be written.
    """

    def __init__(self, directory: str | os.PathLike[str], run: dict[str, Any], tasks: Sequence[Sequence[int]],
                 versions: dict[str, str], layouts: Sequence[Layout]) -> None:
        self.directory = Path(directory)
        self.tasks = [list(map(int, t)) for t in tasks]
        self.layouts = list(layouts)
        wanted = {"format": _FORMAT, "versions": versions, "run": run}
        self.identity = json_digest(wanted)
        if os.path.lexists(self.directory):
            if not self.directory.is_dir():
                raise ResultsError(f"{self.directory}: exists and is not a directory")
            if os.path.lexists(self.directory / MANIFEST):
                found = read_manifest(self.directory)
                if found["versions"] != versions:
                    raise ResultsError(f"{self.directory}: checkpointed by {found['versions']}, not {versions}, whose numbers may differ; "
                                       "start a new checkpoint")
                if json_digest(found["run"]) != json_digest(run):
                    differ = sorted(k for k in set(run) | set(found["run"]) if run.get(k) != found["run"].get(k))
                    raise ResultsError(f"{self.directory}: holds a checkpoint of another run (its {', '.join(differ)} differ); "
                                       "resume it with the same settings or use a new directory")
                return
            entries = list(self.directory.iterdir())
            if any(not _LEFTOVER.fullmatch(entry.name) for entry in entries):
                raise ResultsError(f"{self.directory}: exists and is not a creditsim checkpoint; refusing to use it")
            for entry in entries:  # a checkpoint killed while its manifest was first written: begin it again
                entry.unlink()
        try:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"{self.directory}: cannot create the checkpoint directory ({exc.strerror or exc})") from None
        text = json.dumps({**wanted, _SELF_DIGEST: self.identity}, ensure_ascii=False, indent=1)

        def write(staging: Path) -> None:
            (staging / MANIFEST).write_text(text, encoding="utf-8")

        write_directory(self.directory, write, marked=False)  # an empty directory at its place is replaced

    def task_file(self, index: int) -> Path:
        """Where task ``index``'s arrays are kept."""
        return self.directory / f"task-{index:05d}.npz"

    def load(self, index: int) -> dict[str, np.ndarray] | None:
        """Task ``index``'s arrays if it completed, else None.

        Raises
        ------
        ResultsError
            When the file is not a complete, unchanged task file of this run and task with the arrays and values
            its :class:`Layout` admits; the message names the file.
        """
        path = self.task_file(index)
        if not os.path.lexists(path):
            return None
        again = "; delete it to run that task again"
        try:
            with open_regular(path, "checkpoint file") as handle, zipfile.ZipFile(handle) as archive:
                arrays = _read_arrays(archive, self.layouts[index], len(self.tasks[index]))
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc}{again}") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ResultsError(f"{path}: unreadable checkpoint file ({' '.join(str(exc).split())}){again}") from None
        if str(arrays.pop(_RUN)) != self.identity:
            raise ResultsError(f"{path}: belongs to another run than {MANIFEST} describes (copied from another checkpoint, or "
                               f"{MANIFEST} was changed){again}")
        if arrays.pop(_PATHS).tolist() != self.tasks[index]:
            raise ResultsError(f"{path}: holds other paths than task {index}'s{again}")
        if str(arrays.pop(_BINDING)) != _binding(self.identity, index, self.tasks[index], arrays):
            raise ResultsError(f"{path}: has been changed since it was written (its binding digest does not match){again}")
        try:
            self.layouts[index].check(arrays)
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc}{again}") from None
        return arrays

    def save(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep task ``index``'s arrays (atomically), bound to the run, the task and its paths."""
        paths = self.tasks[index]
        content = {**arrays, _PATHS: np.asarray(paths, dtype=np.int64), _RUN: np.asarray(self.identity, dtype=_DIGEST),
                   _BINDING: np.asarray(_binding(self.identity, index, paths, arrays), dtype=_DIGEST)}

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as handle:
                np.savez(handle, **content)  # type: ignore[arg-type]

        write_file(self.task_file(index), write, "checkpoint file")


def _binding(identity: str, index: int, paths: Sequence[int], arrays: dict[str, np.ndarray]) -> str:
    """The digest binding a task's arrays to its run, its number and its paths."""
    digest = hashlib.sha256(f"{identity}\0{index}\0{json.dumps(list(paths))}".encode())
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"\0{name}\0{np.lib.format.dtype_to_descr(array.dtype)}\0{array.shape}\0".encode())
        for field in array.dtype.names or (None,):  # field by field: a record's padding is not kept by np.save
            digest.update(np.ascontiguousarray(array if field is None else array[field]).tobytes())
    return digest.hexdigest()


def _read_arrays(archive: zipfile.ZipFile, layout: Layout, paths: int) -> dict[str, np.ndarray]:
    """The arrays of a task file, each checked against ``layout`` from its header before it is read.

    Raises
    ------
    ResultsError
        Without the file's name.
    """
    fixed = {_PATHS: (np.dtype(np.int64), (paths,)), _RUN: (_DIGEST, ()), _BINDING: (_DIGEST, ())}
    specs = {**{k: v for k, v in layout.arrays.items() if k is not None}, **fixed}
    members = archive.infolist()
    names = [m.filename.removesuffix(".npy") for m in members]
    strange = [m.filename for m in members if not m.filename.endswith(".npy")] or sorted({n for n in names if names.count(n) > 1})
    if strange:
        raise ResultsError(f"holds {', '.join(strange)}, not one array of each name")
    missing = sorted(specs.keys() - set(names))
    extra = sorted(set(names) - specs.keys()) if None not in layout.arrays else []
    if missing or extra:
        raise ResultsError(", ".join(filter(None, (missing and f"lacks {', '.join(missing)}", extra and f"holds {', '.join(extra)}, which the task does not return"))))
    arrays = {}
    for member, name in zip(members, names, strict=True):
        dtype, shape = specs.get(name) or layout.arrays[None]
        if member.compress_type != zipfile.ZIP_STORED:
            raise ResultsError(f"array {name} is compressed; creditsim writes them stored")
        with archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise ResultsError(f"array {name} is of .npy format {version}, not one creditsim writes")
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            found, fortran, found_dtype = header(stream)
            start = stream.tell()
        if found_dtype.hasobject or found_dtype != dtype or len(found) != len(shape) or any(w is not None and w != f for w, f in zip(shape, found, strict=True)):
            wanted = "×".join("any" if w is None else str(w) for w in shape) or "a scalar"
            raise ResultsError(f"array {name} is {found_dtype} of shape {found}, not {dtype} of shape {wanted}")
        if member.file_size != start + int(np.prod(found, dtype=np.int64)) * found_dtype.itemsize:
            raise ResultsError(f"array {name} is not as long as its header says")
        with archive.open(member) as stream:
            arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
    return arrays
