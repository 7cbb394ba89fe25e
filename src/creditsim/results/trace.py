"""The loan-level trace as a table: every loan of the traced paths, when it started and how and when it ended.

The engine records a loan when it ends, or at the horizon if it is still outstanding (see
:mod:`creditsim.model.trace`); :func:`trace_table` turns the records into a tidy DataFrame with the scenario's names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.state import TRACE
from ..model.trace import HOW
from ..scenario import PRODUCTS, Scenario
from ..scenario.growth import rates_by_year
from ..scenario.units import month_label

__all__ = ["HOW", "COLUMNS", "trace_table", "empty_trace"]

#: The trace's columns.
COLUMNS = ("path", "firm", "bank", "segment", "grade", "start", "end", "how", "product", "renewals", "first_time", "cover", "amount", "rate",
           "default_month", "recovery_month", "write_off_month")


def trace_table(records: np.ndarray, scenario: Scenario) -> pd.DataFrame:
    """The trace records of a run (``creditsim.model.state.TRACE``, amounts in fen) as a table.

    Columns: ``path``; ``firm`` (the firm's number for the whole run, in the simulated sample); ``bank``,
    ``segment`` (names) and ``grade`` (0 is the best); ``start`` and ``end``, the months ('YYYY-MM') the loan started
    and ended (an opening loan may have started before the run; ``end`` is the last month for an outstanding loan);
    ``how`` it ended (:data:`HOW`); ``product``; ``renewals`` (consecutive renewals that led to it); ``first_time``
    (its firm became a 首贷户 in the run); ``cover`` (the guarantor or pool covering it, '' for none); ``amount`` (CNY);
    ``rate`` (annual, the bank's rate plus its premium for the PD it believed the firm had when it lent); and for a
    defaulted loan the month its default is recognised (its ``end``: the firm's default month, or for a loan a
    renewal masked, the month it fell due) and the months of its bank's recovery and write-off after it (the
    scenario's lags, the write-off months of the year of default; a guaranteed loan's claim is paid after the
    guarantor's claim lag).
    """
    first = scenario.start_index - 1
    months = sorted(set(records["start"].tolist()) | set(records["end"].tolist()))
    label = {t: month_label(first + t) for t in months}
    covers = [*scenario.guarantors, *scenario.pools]
    defaulted = np.isin(records["how"], [HOW.index("defaulted"), HOW.index("liquidity_default")])
    r = scenario.risk

    frame = pd.DataFrame({
        "path": records["path"].astype(np.int64),
        "firm": records["firm"].astype(np.int64),
        "bank": pd.Categorical.from_codes(records["bank"].astype(np.int64), categories=scenario.bank_names),
        "segment": pd.Categorical.from_codes(records["segment"].astype(np.int64), categories=scenario.segment_names),
        "grade": records["grade"].astype(np.int64),
        "start": [label[int(t)] for t in records["start"]],
        "end": [label[int(t)] for t in records["end"]],
        "how": pd.Categorical.from_codes(records["how"].astype(np.int64), categories=list(HOW)),
        "product": pd.Categorical.from_codes(records["product"].astype(np.int64), categories=list(PRODUCTS)),
        "renewals": records["renewals"].astype(np.int64),
        "first_time": records["first_time"].astype(bool),
        "cover": pd.Categorical([covers[c] if c >= 0 else "" for c in records["cover"].tolist()], categories=["", *covers]),
        "amount": records["amount"] / 100.0,
        "rate": records["rate"].astype(np.float64),
    })
    ends = records["end"].astype(np.int64)
    write_off = rates_by_year(r.write_off_months, (first + ends) // 12).astype(np.int64)  # those of the year of default
    for column, lag in (("default_month", 0), ("recovery_month", np.full(len(ends), r.recovery_lag_months)), ("write_off_month", write_off)):
        frame[column] = [month_label(first + t + int(k)) if d else None for t, k, d in zip(ends.tolist(), np.broadcast_to(lag, ends.shape).tolist(), defaulted.tolist(), strict=True)]
    return frame


def empty_trace(scenario: Scenario) -> pd.DataFrame:
    """A trace table without rows (a run that traced no path)."""
    return trace_table(np.zeros(0, TRACE), scenario)
