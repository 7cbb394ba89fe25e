"""The engine: a Monte Carlo path of a scenario, compiled.

The validated scenario is compiled once into parameters (:mod:`.params`); each path's mutable state (:mod:`.state`)
is changed by events written as compiled functions of (parameters, state, month) (:mod:`.population`,
:mod:`.lending`, :mod:`.maturity`, :mod:`.defaults`), the instruments behind one interface (:mod:`.cover`,
:mod:`.instruments`), and random numbers keyed by purpose, firm and month (:mod:`.random`). :mod:`.month` runs whole
paths in one compiled call; :mod:`.engine` runs a task's paths from Python.

Compiled code is cached on disk, in a directory named after a digest of creditsim's source (so that a change to any
module, not only the one that defines a function, compiles afresh): ``NUMBA_CACHE_DIR`` when set, else
``__pycache__/numba`` beside the package.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba


def _cache_directory() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or str(package / "__pycache__" / "numba")
    return os.path.join(base, f"creditsim-{digest.hexdigest()[:16]}")


numba.config.CACHE_DIR = _cache_directory()
