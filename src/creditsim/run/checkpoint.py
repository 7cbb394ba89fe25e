"""Checkpoints: the completed tasks of a run kept in a directory, so that an interrupted run can continue.

A checkpoint directory holds ``checkpoint.json`` (what the run is: scenarios, seed, path numbers, chunk size,
what each task returns, and the versions of creditsim (with a digest of its source), numpy and numba, which fix
the numbers) and one
``task-NNNNN.npz`` per completed task (its arrays and its path numbers). Each file is written under a temporary
name and renamed into place, so a killed run leaves only complete files. A run given the directory again skips
the tasks already there; since a path's numbers depend only on (scenario, seed, path), the continued run ends
with the same numbers as an uninterrupted one. Nothing is unpickled when reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ResultsError
from ..files import write_file
from ..scenario import json_digest

__all__ = ["Checkpoint", "MANIFEST", "read_manifest"]

MANIFEST = "checkpoint.json"
_FORMAT = 1


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The description of the run checkpointed in ``directory``.

    Raises
    ------
    ResultsError
        When the directory holds no readable checkpoint.
    """
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{directory}: not a creditsim checkpoint (no readable {MANIFEST}: {exc})") from None
    if isinstance(manifest, dict) and isinstance(manifest.get("format"), int) and manifest["format"] != _FORMAT:
        raise ResultsError(f"{directory}: a checkpoint of format {manifest['format']}, which this creditsim (checkpoint format {_FORMAT}) "
                           "does not read; start a new checkpoint")
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT or not isinstance(manifest.get("run"), dict):
        raise ResultsError(f"{directory}: {MANIFEST} is not a creditsim checkpoint of format {_FORMAT}")
    return manifest


class Checkpoint:
    """The completed tasks of one run in ``directory``.

    Parameters
    ----------
    directory : str or Path
        Created when missing. When it holds a checkpoint already, that must be of the same run.
    run : dict
        JSON-able description of the run (scenarios, seed, paths, chunking, task output); with the package
        versions it identifies the run.
    tasks : sequence of sequence of int
        Each task's path numbers, in task order.
    versions : dict
        What fixes the numbers besides the run (package versions); a checkpoint made under others is refused.

    Raises
    ------
    ResultsError
        When ``directory`` holds anything else, a checkpoint of another run, or cannot be written.
    """

    def __init__(self, directory: str | os.PathLike[str], run: dict[str, Any], tasks: Sequence[Sequence[int]],
                 versions: dict[str, str]) -> None:
        self.directory = Path(directory)
        self.tasks = [list(map(int, t)) for t in tasks]
        wanted = {"format": _FORMAT, "versions": versions, "run": run}
        if self.directory.exists():
            if not self.directory.is_dir():
                raise ResultsError(f"{self.directory}: exists and is not a directory")
            if not (self.directory / MANIFEST).exists():
                if any(self.directory.iterdir()):
                    raise ResultsError(f"{self.directory}: exists and is not a creditsim checkpoint; refusing to use it")
            else:
                found = read_manifest(self.directory)
                theirs = found.get("versions") if isinstance(found.get("versions"), dict) else {}
                if theirs.get("creditsim") != versions.get("creditsim"):
                    raise ResultsError(f"{self.directory}: checkpointed by creditsim {theirs.get('creditsim', 'of an unknown version')}, "
                                       f"which this creditsim {versions.get('creditsim')} does not continue; start a new checkpoint")
                if found.get("versions") != wanted["versions"]:
                    raise ResultsError(f"{self.directory}: checkpointed by {found.get('versions')}, not {wanted['versions']}, "
                                       "whose numbers may differ; start a new checkpoint")
                if json_digest(found["run"]) != json_digest(run):
                    differ = sorted(k for k in set(run) | set(found["run"]) if run.get(k) != found["run"].get(k))
                    raise ResultsError(f"{self.directory}: holds a checkpoint of another run (its {', '.join(differ)} differ); "
                                       "resume it with the same settings or use a new directory")
                return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"{self.directory}: cannot create the checkpoint directory ({exc.strerror or exc})") from None
        text = json.dumps(wanted, ensure_ascii=False, indent=1)

        def write(temporary: Path) -> None:
            temporary.write_text(text, encoding="utf-8")

        write_file(self.directory / MANIFEST, write, "checkpoint manifest")

    def _file(self, index: int) -> Path:
        return self.directory / f"task-{index:05d}.npz"

    def load(self, index: int) -> dict[str, np.ndarray] | None:
        """Task ``index``'s arrays if it completed, else None.

        Raises
        ------
        ResultsError
            When the file is unreadable or holds other paths than the task's.
        """
        path = self._file(index)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{path}: unreadable checkpoint file ({exc}); delete it to run that task again") from None
        paths = arrays.pop("__paths__", None)
        if paths is None or paths.tolist() != self.tasks[index]:
            raise ResultsError(f"{path}: holds other paths than task {index}'s; delete it to run that task again")
        return arrays

    def save(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep task ``index``'s arrays (atomically)."""
        content = {**arrays, "__paths__": np.asarray(self.tasks[index], dtype=np.int64)}

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as handle:
                np.savez(handle, **content)  # type: ignore[arg-type]

        write_file(self._file(index), write, "checkpoint file")
