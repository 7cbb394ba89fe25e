"""The exception hierarchy of creditsim.

Every error creditsim raises on purpose derives from :class:`CreditsimError`, so a caller can catch the
library's errors without catching programming errors.
"""

from __future__ import annotations

__all__ = ["BackendError", "CreditsimError", "DataError", "ScenarioError", "ScenarioWarning", "ResultsError", "one_line"]


class CreditsimError(Exception):
    """Base class of every error creditsim raises on purpose."""


class ScenarioError(CreditsimError, ValueError):
    """A scenario file or override is invalid.

    The message is one line naming the dotted field, the offending value and the rule, e.g.
    ``banks.city_bank.max_pd = 1.3: must be in [0, 1]``; about a row of a bank's loan tape, naming the file, the row
    and the column, e.g. ``loan tape book.csv, row 17, column maturity: '2019-13' is not a month (YYYY-MM)``.
    """

    def __init__(self, field: str, value: object, rule: str, *, shown: str | None = None) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        shown = _show(value) if shown is None else shown  # ``shown``: the value in the user's units, e.g. 550亿
        super().__init__(one_line(f"{field} = {shown}: {rule}" if shown is not None else f"{field}: {rule}"))


class ScenarioWarning(UserWarning):
    """A scenario is valid but holds something the run will not use (a year of a table by year outside the run, a
    capital injection before it starts); the message is one line naming the dotted field, like a ScenarioError's."""


class ResultsError(CreditsimError):
    """A results directory is missing, incomplete or does not match its manifest."""


class BackendError(CreditsimError):
    """Paths cannot be run where asked: an unknown backend, a bad worker count, Dask not installed, a scheduler
    that cannot be reached, or a worker that died."""


class DataError(CreditsimError):
    """A file of observations (for calibration or a backtest) is missing or invalid; the message names the
    file, row and column."""


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (a newline in a key, a tab, an escape) written as its
    Python escape, so an error is one line whatever the user typed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(value: object) -> str | None:
    """Render a value for an error message (``None`` when there is nothing to show)."""
    if value is _MISSING:
        return None
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - never shown
        return "<missing>"


_MISSING = _Missing()
