"""Comparing two policies with common random numbers.

:func:`compare` runs scenario B against scenario A with the same seed. Every random number is keyed by its purpose,
the firm and the month (:mod:`creditsim.model.random`), so both runs see the same systematic factor, the same
opening book and the same draws for every firm whose history the policies do not change; the difference B − A per
path then measures the policy, not the noise, and its standard error is that of the paired differences.

A :class:`Comparison` says what B changed (:meth:`Comparison.changes`, from the two scenarios), how each target's
probability of being met moved (:meth:`Comparison.targets`) and how each bank's probability of passing 两增 and
两控 moved (:meth:`Comparison.two_increases`), each change with a paired score interval
(:func:`creditsim.results.targets.paired_difference_interval`), and the change in every metric
(:meth:`Comparison.difference`, :meth:`Comparison.differences`) with a paired normal interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ResultsError, ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES
from ..results.assessment import evaluations
from ..results.results import ALL, Results, mean_and_mcse
from ..results.targets import Z95, measure, met, outside, paired_difference_interval, wilson_interval
from ..run.api import backend_for, path_numbers
from ..run.backends import Backend, run_scenarios
from ..run.progress import ProgressArg
from ..scenario import Scenario, load_scenario
from ..scenario.changes import changed_fields, field_text

__all__ = ["UNCHANGED", "Comparison", "compare", "paired_probabilities", "paired_stats", "unchanged"]

#: A probability (P(met), P(pass)) counts as unchanged when it moves by less than this, one point, and the paired
#: 95% interval of its change includes 0; the command line folds such targets into one line.
UNCHANGED = 0.01


@dataclass
class Comparison:
    """Results of scenario A (``base``) and B (``variant``) on the same seed and paths.

    :func:`compare` runs both; two :func:`~creditsim.simulate` runs with the same seed, paths and dates can be
    paired directly as ``Comparison(base, variant)`` (e.g. several variants against one base run). It says what B
    changes (:meth:`changes`) and what that does: to each target's P(met) (:meth:`targets`), to each bank's 两增 and
    两控 P(pass) (:meth:`two_increases`) and to the metrics (:meth:`difference`, :meth:`differences`).

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

    def changes(self) -> pd.DataFrame:
        """The inputs B changes: every scenario field whose value differs between A and B
        (:func:`creditsim.scenario.changes.changed_fields`), whatever made them differ (two files, ``--set``, Python).

        Returns
        -------
        DataFrame
            One row per field, in file order: ``key`` (dotted, as ``--set`` takes it), ``a`` and ``b`` (the
            validated values: amounts in CNY, rates as fractions; None where absent) and ``a_text``, ``b_text`` (as
            a scenario file writes them: ``"1.2%"``, ``"5000万"``, ``"true"``).
        """
        rows = [{"key": key, "a": a, "b": b, "a_text": field_text(key, a), "b_text": field_text(key, b)}
                for key, a, b in changed_fields(self.base.scenario, self.variant.scenario)]
        return pd.DataFrame(rows, columns=["key", "a", "b", "a_text", "b_text"])

    def targets(self) -> pd.DataFrame:
        """Each target's probability of being met in A and in B, and the change, paired path by path.

        A target is measured in each run as that run's scenario defines it. P(met) of each side has its Wilson 95%
        interval; the change p_b − p_a its paired score 95% interval
        (:func:`~creditsim.results.targets.paired_difference_interval`), since path k of A and B share their random
        numbers.

        Returns
        -------
        DataFrame
            One row per target of A (then those only B has): ``target, label``, ``p_a, p_a_low, p_a_high``,
            ``p_b, p_b_low, p_b_high``, ``change, change_low, change_high`` (probabilities as fractions),
            ``unchanged`` (the change is below :data:`UNCHANGED` and its interval includes 0), ``paths`` and
            ``note``: why a target has no figures (outside either run, or a target of one scenario only).
        """
        a, b = self.base, self.variant
        names = [*a.scenario.targets, *(n for n in b.scenario.targets if n not in a.scenario.targets)]
        rows = []
        for name in names:
            ta, tb = a.scenario.targets.get(name), b.scenario.targets.get(name)
            label = {**b.scenario.targets, **a.scenario.targets}[name].label
            if ta is None or tb is None:
                rows.append({"target": name, "label": label, "note": f"a target of {'B' if ta is None else 'A'} only"})
                continue
            why = outside(ta, a.scenario) or outside(tb, b.scenario)
            if why is not None:
                rows.append({"target": name, "label": label, "note": f"not assessed: {why}"})
                continue
            hit_a, hit_b = met(measure(a, ta), ta), met(measure(b, tb), tb)
            rows.append({"target": name, "label": label, **paired_probabilities(hit_a, hit_b), "note": ""})
        columns = ["target", "label", "p_a", "p_a_low", "p_a_high", "p_b", "p_b_low", "p_b_high", "change", "change_low", "change_high",
                   "unchanged", "paths", "note"]
        return pd.DataFrame(rows, columns=columns)

    def two_increases(self) -> pd.DataFrame:
        """The probability of passing 两增 and 两控 (and each of their checks) in A and in B, and the change, paired
        path by path, per bank and for all banks, at every assessment date both runs assess
        (:mod:`creditsim.results.assessment`).

        Returns
        -------
        DataFrame
            One row per bank (then ``"all"``), date and check: ``bank, year, date, check, rule`` (A's rule, ``"2019
            → 2024"`` when B's differs), ``p_a, p_a_low, p_a_high, p_b, p_b_low, p_b_high, change, change_low,
            change_high, unchanged, paths`` as in :meth:`targets`.
        """
        passed_b = {(bank, year, date, check): (rule, passed) for bank, year, date, check, rule, passed, _ in evaluations(self.variant)}
        rows = []
        for bank, year, date, check, rule, passed, _ in evaluations(self.base):
            if (bank, year, date, check) not in passed_b:
                continue
            rule_b, after = passed_b[(bank, year, date, check)]
            shown = rule if rule == rule_b else f"{rule} → {rule_b}"
            rows.append({"bank": bank, "year": year, "date": date, "check": check, "rule": shown, **paired_probabilities(passed, after)})
        columns = ["bank", "year", "date", "check", "rule", "p_a", "p_a_low", "p_a_high", "p_b", "p_b_low", "p_b_high", "change", "change_low",
                   "change_high", "unchanged", "paths"]
        return pd.DataFrame(rows, columns=columns)


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
    path_ids = path_numbers(paths, seed, variants=2)
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


def paired_probabilities(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """An event's probability on the same paths before and after a change, and the change.

    Parameters
    ----------
    before, after : ndarray of bool, shape (paths,)
        Whether the event happened on each path (path k of both runs sharing its random numbers).

    Returns
    -------
    dict
        ``p_a, p_a_low, p_a_high`` and ``p_b, p_b_low, p_b_high`` (each share with its Wilson 95% interval),
        ``change, change_low, change_high`` (p_b − p_a with its paired score 95% interval,
        :func:`~creditsim.results.targets.paired_difference_interval`), ``unchanged`` (:func:`unchanged`) and ``paths``.
    """
    x, y = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    out: dict[str, Any] = {}
    for side, hit in (("p_a", x), ("p_b", y)):
        low, high = wilson_interval(int(hit.sum()), hit.size)
        out.update({side: float(hit.mean()), f"{side}_low": float(low), f"{side}_high": float(high)})
    change, change_low, change_high = paired_difference_interval(x, y)
    return {**out, "change": change, "change_low": change_low, "change_high": change_high,
            "unchanged": unchanged(change, change_low, change_high), "paths": int(x.size)}


def unchanged(change: float, low: float, high: float) -> bool:
    """Whether a change in probability is below :data:`UNCHANGED` and its 95% interval [low, high] includes 0."""
    return bool(abs(change) < UNCHANGED and low <= 0.0 <= high)
