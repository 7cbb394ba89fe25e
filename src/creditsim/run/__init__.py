"""Running paths: :func:`simulate` on a backend (this process, local worker processes or a Dask cluster), with
checkpoints, a memory check before anything starts, and progress."""

from .api import simulate
from .backends import Backend

__all__ = ["Backend", "simulate"]
