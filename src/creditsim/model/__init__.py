"""The engine: a Monte Carlo path of a scenario, compiled.

The validated scenario is compiled once into parameters (:mod:`.params`); each path's mutable state (:mod:`.state`)
is changed by events written as compiled functions of (parameters, state, month) (:mod:`.population`,
:mod:`.lending`, :mod:`.maturity`, :mod:`.defaults`), the instruments behind one interface (:mod:`.cover`,
:mod:`.instruments`), and random numbers keyed by purpose, firm and month (:mod:`.random`). :mod:`.month` runs whole
paths in one compiled call; :mod:`.engine` runs a task's paths from Python.

Compiled code is cached on disk, in a directory named after a digest of creditsim's source (so that a change to any
module, not only the one that defines a function, compiles afresh): ``NUMBA_CACHE_DIR`` when set, else
``__pycache__/numba`` beside the package. Importing the engine marks its cache as used; in the package's own cache
directory (not a ``NUMBA_CACHE_DIR`` of the user's), the caches of other sources (about 50 MB each, left by
earlier versions or edits of the source) are removed once unused for :data:`STALE_CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numba

#: A cache directory of another source is removed when it has not been used for this long (a week), seconds.
STALE_CACHE_SECONDS = 7 * 86_400.0
_CACHE_NAME = re.compile(r"creditsim-[0-9a-f]{16}")


def _cache_directory() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or str(package / "__pycache__" / "numba")
    return os.path.join(base, f"creditsim-{digest.hexdigest()[:16]}")


def prune_caches(current: str, now: float | None = None) -> list[str]:
    """Remove the cache directories of other sources beside ``current`` (named ``creditsim-`` and a digest) unused
    for :data:`STALE_CACHE_SECONDS`: nothing written in them and no engine imported with them (an import touches
    its directory, see :func:`mark_used`) for that long. Returns the directories removed. Other files are left
    alone, and a directory that cannot be read or removed is skipped."""
    now = time.time() if now is None else now
    base, keep = os.path.dirname(current), os.path.basename(current)
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(base, name)
        if name == keep or not _CACHE_NAME.fullmatch(name) or not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            newest = max([os.path.getmtime(path)] + [entry.stat().st_mtime for entry in os.scandir(path)])
        except OSError:
            continue
        if now - newest > STALE_CACHE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def mark_used(directory: str) -> None:
    """Set the modification time of an existing cache directory to now (loading compiled code writes nothing)."""
    try:
        os.utime(directory)
    except OSError:
        pass


numba.config.CACHE_DIR = _cache_directory()
mark_used(numba.config.CACHE_DIR)
if not os.environ.get("NUMBA_CACHE_DIR"):
    prune_caches(numba.config.CACHE_DIR)
