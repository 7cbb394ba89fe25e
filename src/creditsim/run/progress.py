"""Progress of long runs: a bar on a terminal or in a notebook, nothing when output goes elsewhere.

The bar is tqdm's (its notebook widget in Jupyter when ipywidgets is installed, text otherwise). Functions that
run paths take ``progress``: None shows a bar only when someone is watching (stderr is a terminal, or the code
runs in a Jupyter kernel), True always, False never, and a callable ``progress(done, total)`` is called instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["ProgressArg", "Progress", "interactive"]

#: What the ``progress`` argument of the run functions accepts.
ProgressArg = bool | Callable[[int, int], None] | None


def interactive() -> bool:
    """Whether someone is watching: stderr is a terminal, or this is a Jupyter kernel."""
    if _in_notebook():
        return True
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class Progress:
    """Counts work done and shows it (see the module docstring for ``progress``).

    Parameters
    ----------
    progress : None, bool or callable
    total : int
        Units of work in all (paths).
    description : str
        Shown before the bar.
    """

    def __init__(self, progress: ProgressArg, total: int, description: str = "paths") -> None:
        self.total, self.done = int(total), 0
        self._callback = progress if callable(progress) else None
        show = interactive() if progress is None else progress is True
        self._bar: Any = _bar(self.total, description) if show else None

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bar(total: int, description: str) -> Any:
    if _in_notebook():
        try:
            from tqdm.notebook import tqdm as notebook_bar

            return notebook_bar(total=total, desc=description, unit="path")
        except ImportError:  # no ipywidgets: the text bar, which a notebook shows too
            pass
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="path", file=sys.stderr, dynamic_ncols=True)
