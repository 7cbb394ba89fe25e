"""Comparing two policies with common random numbers.

:func:`compare` runs scenario B against scenario A with the same seed. Every random number is keyed by its purpose,
the firm and the month (:mod:`creditsim.model.random`), so both runs see the same systematic factor, the same
opening book and the same draws for every firm whose history the policies do not change; the difference B − A per
path then measures the policy, not the noise, and its standard error is that of the paired differences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ResultsError, ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, metric
from ..results.results import ALL, Results, mean_and_mcse
from ..results.targets import Z95
from ..run.api import backend_for, path_numbers
from ..run.backends import Backend, run_scenarios
from ..run.progress import ProgressArg
from ..scenario import Scenario, load_scenario

__all__ = ["Comparison", "compare", "format_comparison", "paired_stats"]



@dataclass
class Comparison:
    """Results of scenario A (``base``) and B (``variant``) on the same seed and paths.

    :func:`compare` runs both; two :func:`~creditsim.simulate` runs with the same seed, paths and dates can be
    paired directly as ``Comparison(base, variant)`` (e.g. several variants against one base run).

    Raises
    ------
    ResultsError
        When the two runs differ in seed, path numbers or dates, so their paths cannot be paired.
    """

    base: Results
    variant: Results

    def __post_init__(self) -> None:
        a, b = self.base, self.variant
        if a.seed != b.seed or a.path_ids != b.path_ids or a.dates != b.dates:
            raise ResultsError("runs cannot be paired: a comparison needs the same seed, path numbers and dates "
                               f"(seed {a.seed} and {b.seed}, {a.paths} and {b.paths} paths, {a.dates[1]}–{a.dates[-1]} and {b.dates[1]}–{b.dates[-1]})")

    def difference(self, name: str, bank: str = ALL, total: bool = False) -> pd.Series:
        """Mean of A and B and of the paired difference B − A, with its standard error and 95% CI.

        Parameters
        ----------
        name : str
            A metric.
        bank : str
            A bank, or ``"all"``.
        total : bool
            Compare the flow summed over the simulated months instead of the value at the end date.
        """
        a = self.base.cumulative(name, bank) if total else self.base.values(name, bank)[:, -1]
        b = self.variant.cumulative(name, bank) if total else self.variant.values(name, bank)[:, -1]
        return pd.Series({key: float(value) for key, value in paired_stats(a, b).items()})

    def differences(self) -> pd.DataFrame:
        """:meth:`difference` of every metric, bank and date (columns metric, date, bank, mean_a, mean_b,
        diff, diff_mcse, ci_low, ci_high)."""
        frames = []
        for scope in SCOPES:
            shared = [e for e in self.base.entities[scope] if e in self.variant.entities[scope]]  # a guarantor or pool in one only has no pair
            for name, bank in ((name, bank) for name in SCOPE_METRICS[scope] for bank in shared):
                stats = paired_stats(self.base.values(name, bank), self.variant.values(name, bank))
                frame = pd.DataFrame(stats)
                frame.insert(0, "bank", bank)
                frame.insert(0, "date", self.base.dates)
                frame.insert(0, "metric", name)
                frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def compare(
    base: Scenario | str | Path | None,
    variant: Scenario | str | Path | None,
    paths: int | Iterable[int] = 100,
    seed: int = 0,
    progress: ProgressArg = None,
    *,
    backend: str | Backend | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    threads: int = 1,
    chunk_size: int | None = None,
) -> Comparison:
    """Run two scenarios on the same seed and paths (common random numbers).

    Parameters
    ----------
    base, variant : Scenario, str or Path
        Scenarios A and B (a path is loaded; None is the bundled default).
    paths, seed, progress, backend, workers, client, scheduler, threads, chunk_size
        As for :func:`creditsim.simulate`; the progress counts both runs' paths, which run on one backend.

    Returns
    -------
    Comparison
    """
    a = base if isinstance(base, Scenario) else load_scenario(base)
    b = variant if isinstance(variant, Scenario) else load_scenario(variant)
    if a.calendar != b.calendar or a.bank_names != b.bank_names:
        raise ScenarioError("calendar", b.calendar.start, "the two scenarios must share the calendar and the bank names to be compared")
    path_ids = path_numbers(paths, seed)
    with backend_for(backend, workers, client, scheduler, threads) as runner:
        groups = run_scenarios([a, b], path_ids, seed, runner, chunk_size=chunk_size, progress=progress)
    return Comparison(Results(a, seed, path_ids, groups[0]), Results(b, seed, path_ids, groups[1]))


def paired_stats(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Paired statistics over paths (axis 0), NaN-aware: the means of A and B, and the mean of B − A with its
    Monte Carlo standard error and normal 95% interval (``mean_a, mean_b, diff, diff_mcse, ci_low, ci_high``)."""
    mean, se = mean_and_mcse(b - a)
    return {
        "mean_a": mean_and_mcse(a)[0],
        "mean_b": mean_and_mcse(b)[0],
        "diff": mean,
        "diff_mcse": se,
        "ci_low": mean - Z95 * se,
        "ci_high": mean + Z95 * se,
    }


def format_comparison(comparison: Comparison, stocks: tuple[str, ...], flows: tuple[str, ...], fmt: Callable[[float, str], str]) -> str:
    """The text table ``creditsim compare`` prints: end-date stocks and totals of flows, A, B and B − A."""
    a, b = comparison.base, comparison.variant
    lines = [
        f"A: {a.scenario.name}   B: {b.scenario.name}   {a.paths} paths · seed {a.seed} · common random numbers",
        "",
        f"{'at ' + a.dates[-1]:<30}{'mean A':>14}{'mean B':>14}{'B − A':>14}   95% CI of B − A",
    ]
    for total, names in ((False, stocks), (True, flows)):
        if total:
            lines += ["", f"{'total ' + a.dates[1] + ' → ' + a.dates[-1]:<30}"]
        for name in names:
            row = comparison.difference(name, ALL, total=total)
            unit = metric(name).unit
            lines.append(
                f"{name:<30}{fmt(float(row['mean_a']), unit):>14}{fmt(float(row['mean_b']), unit):>14}{fmt(float(row['diff']), unit):>14}"
                f"   [{fmt(float(row['ci_low']), unit)}, {fmt(float(row['ci_high']), unit)}]"
            )
    return "\n".join(lines)
