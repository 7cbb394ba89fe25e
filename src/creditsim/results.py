"""Results of a run: monthly metrics of every path, their Monte Carlo summary, and storage.

Metrics are held as arrays (paths × dates × banks × metrics) and shown as a tidy DataFrame with columns
``path, date, bank, metric, value``; bank ``"all"`` is the aggregate (sums; ratios recomputed from sums).
A results directory holds ``metrics.parquet`` and ``manifest.json`` (scenario, its digest, seed, paths,
creditsim version and the SHA-256 of the data file); it is written to a temporary directory and renamed into
place when complete, and :meth:`Results.load` refuses a directory whose data does not match its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ResultsError
from .metrics import BANK_METRICS, POPULATION_METRICS, ratio_values
from .scenario import Scenario, scenario_from_dict
from .units import month_label

__all__ = ["Results", "ALL", "PERCENTILES"]

#: Name of the aggregate over banks in the ``bank`` column.
ALL = "all"
#: Percentiles reported by :meth:`Results.summary`.
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
_MANIFEST = "manifest.json"
_DATA = "metrics.parquet"
_FORMAT = 1


class Results:
    """Monthly metrics of a set of Monte Carlo paths.

    Parameters
    ----------
    scenario : Scenario
    seed : int
    path_ids : sequence of int
        The path numbers, in the order of the first axis of the arrays.
    bank_metrics : ndarray, shape (paths, M + 1, banks, len(BANK_METRICS))
    population_metrics : ndarray, shape (paths, M + 1, len(POPULATION_METRICS))
    """

    def __init__(self, scenario: Scenario, seed: int, path_ids: list[int], bank_metrics: np.ndarray, population_metrics: np.ndarray) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        self.path_ids = [int(p) for p in path_ids]
        self.bank_metrics = _with_aggregate(bank_metrics, scenario.restructured_reported)
        self.population_metrics = population_metrics
        start = scenario.start_index - 1
        self.dates = [month_label(start + t) for t in range(bank_metrics.shape[1])]
        self.banks = [*scenario.bank_names, ALL]

    # ------------------------------------------------------------------------------------------ access
    @property
    def paths(self) -> int:
        return len(self.path_ids)

    def values(self, metric: str, bank: str = ALL) -> np.ndarray:
        """One metric as an array of shape (paths, dates); population metrics exist for ``"all"`` only."""
        if metric in BANK_METRICS:
            if bank not in self.banks:
                raise KeyError(f"unknown bank {bank!r}; banks are {', '.join(self.banks)}")
            return self.bank_metrics[:, :, self.banks.index(bank), BANK_METRICS.index(metric)]
        if metric in POPULATION_METRICS:
            if bank != ALL:
                raise KeyError(f"{metric} is a population metric, reported for bank 'all' only")
            return self.population_metrics[:, :, POPULATION_METRICS.index(metric)]
        raise KeyError(f"unknown metric {metric!r}")

    @property
    def metrics(self) -> pd.DataFrame:
        """Tidy DataFrame: one row per path, date, bank and metric."""
        p, d, b, k = self.bank_metrics.shape
        bank_part = pd.DataFrame(
            {
                "path": np.repeat(self.path_ids, d * b * k),
                "date": np.tile(np.repeat(np.arange(d), b * k), p),
                "bank": np.tile(np.repeat(np.arange(b), k), p * d),
                "metric": np.tile(np.arange(k), p * d * b),
                "value": self.bank_metrics.ravel(),
            }
        )
        kp = self.population_metrics.shape[2]
        pop_part = pd.DataFrame(
            {
                "path": np.repeat(self.path_ids, d * kp),
                "date": np.tile(np.repeat(np.arange(d), kp), p),
                "bank": b - 1,
                "metric": np.tile(np.arange(k, k + kp), p * d),
                "value": self.population_metrics.ravel(),
            }
        )
        frame = pd.concat([bank_part, pop_part], ignore_index=True)
        frame["path"] = frame["path"].astype(np.int64)
        frame["date"] = pd.Categorical.from_codes(frame["date"], categories=self.dates)
        frame["bank"] = pd.Categorical.from_codes(frame["bank"], categories=self.banks)
        frame["metric"] = pd.Categorical.from_codes(frame["metric"], categories=[*BANK_METRICS, *POPULATION_METRICS])
        return frame

    def summary(self) -> pd.DataFrame:
        """Per metric, date and bank: mean, Monte Carlo standard error of the mean and percentiles.

        Returns
        -------
        DataFrame
            Columns ``metric, date, bank, mean, mcse, p5, p25, p50, p75, p95``. ``mcse`` is the sample standard
            deviation over paths divided by sqrt(paths) (NaN with one path). NaN values (a ratio with a zero
            denominator) are left out of that cell's statistics.
        """
        rows = []
        for metric in (*BANK_METRICS, *POPULATION_METRICS):
            for bank in self.banks if metric in BANK_METRICS else [ALL]:
                v = self.values(metric, bank)
                rows.append(_describe(v, metric, bank, self.dates))
        return pd.concat(rows, ignore_index=True)

    def cumulative(self, metric: str, bank: str = ALL) -> np.ndarray:
        """A flow summed over the simulated months, shape (paths,)."""
        return self.values(metric, bank)[:, 1:].sum(axis=1)

    # ------------------------------------------------------------------------------------------ storage
    def manifest(self) -> dict[str, Any]:
        from . import __version__

        return {
            "format": _FORMAT,
            "creditsim_version": __version__,
            "seed": self.seed,
            "paths": self.paths,
            "path_ids": self.path_ids,
            "scenario_sha256": self.scenario.digest(),
            "scenario": self.scenario.to_dict(),
            "banks": self.banks,
            "dates": self.dates,
        }

    @staticmethod
    def check_target(directory: str | Path) -> Path:
        """Check that results can be written to ``directory`` (before spending time on a run).

        It may be missing, empty, or an earlier results directory (which :meth:`save` replaces); anything
        else is refused. Its parent must be a directory that can be created and written to.

        Raises
        ------
        ResultsError
        """
        target = Path(directory)
        if target.exists() and not (target.is_dir() and ((target / _MANIFEST).exists() or not any(target.iterdir()))):
            raise ResultsError(f"{target}: exists and is not a creditsim results directory; refusing to overwrite it")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"{target}: cannot create its parent directory ({exc.strerror or exc})") from None
        if not os.access(target.parent, os.W_OK):
            raise ResultsError(f"{target}: its parent directory is not writable")
        return target

    def save(self, directory: str | Path) -> Path:
        """Write the results to ``directory`` atomically (a temporary directory renamed into place).

        An existing results directory at that place is replaced; any other existing path is refused.

        Raises
        ------
        ResultsError
            When the target is refused by :meth:`check_target` or writing fails.
        """
        target = self.check_target(directory)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError as exc:
            raise ResultsError(f"{target}: cannot write there ({exc.strerror or exc})") from None
        try:
            self.metrics.to_parquet(staging / _DATA, index=False)
            manifest = self.manifest()
            manifest["files"] = {_DATA: _sha256(staging / _DATA)}
            (staging / _MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
            if target.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                os.replace(target, retired / "old")
                os.replace(staging, target)
                shutil.rmtree(retired)
            else:
                os.replace(staging, target)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ResultsError(f"{target}: writing the results failed ({exc.strerror or exc})") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | Path) -> Results:
        """Read results written by :meth:`save`, checking the data against the manifest."""
        source = Path(directory)
        try:
            manifest = json.loads((source / _MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ResultsError(f"{source}: no readable {_MANIFEST} ({exc})") from None
        if manifest.get("format") != _FORMAT:
            raise ResultsError(f"{source}: results format {manifest.get('format')!r} is not {_FORMAT}")
        data = source / _DATA
        if not data.exists() or _sha256(data) != manifest.get("files", {}).get(_DATA):
            raise ResultsError(f"{source}: {_DATA} is missing or does not match the manifest's hash")
        scenario = scenario_from_dict(manifest["scenario"])
        if scenario.digest() != manifest["scenario_sha256"]:
            raise ResultsError(f"{source}: the scenario does not match its recorded digest")
        frame = pd.read_parquet(data)
        path_ids = manifest["path_ids"]
        banks, dates = manifest["banks"], manifest["dates"]
        p, d = len(path_ids), len(dates)
        names = [*BANK_METRICS, *POPULATION_METRICS]
        if list(frame["metric"].cat.categories) != names or list(frame["bank"].cat.categories) != banks:
            raise ResultsError(f"{source}: metrics or banks differ from this version of creditsim")
        k, kp = len(BANK_METRICS), len(POPULATION_METRICS)
        n_bank_rows = p * d * len(banks) * k
        values = frame["value"].to_numpy()
        if values.shape[0] != n_bank_rows + p * d * kp:
            raise ResultsError(f"{source}: {_DATA} has {values.shape[0]} rows, the manifest implies {n_bank_rows + p * d * kp}")
        bank_metrics = values[:n_bank_rows].reshape(p, d, len(banks), k)[:, :, :-1, :]
        population = values[n_bank_rows:].reshape(p, d, kp)
        return cls(scenario, manifest["seed"], path_ids, np.ascontiguousarray(bank_metrics), np.ascontiguousarray(population))


def _with_aggregate(bank_metrics: np.ndarray, restructured_reported: bool) -> np.ndarray:
    """Append the aggregate over banks as the last bank: sums, with the ratios recomputed from the sums."""
    total = bank_metrics.sum(axis=2, keepdims=True)
    for name, values in ratio_values(lambda m: total[..., BANK_METRICS.index(m)], restructured_reported).items():
        total[..., BANK_METRICS.index(name)] = values
    return np.concatenate([bank_metrics, total], axis=2)


def _describe(v: np.ndarray, metric: str, bank: str, dates: list[str]) -> pd.DataFrame:
    n = np.sum(~np.isnan(v), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN cell is reported as NaN
        mean = np.nanmean(v, axis=0)
        sd = np.nanstd(v, axis=0, ddof=1) if v.shape[0] > 1 else np.full(v.shape[1], np.nan)
        q = np.nanpercentile(v, PERCENTILES, axis=0)
    frame = pd.DataFrame({"metric": metric, "date": dates, "bank": bank, "mean": mean, "mcse": sd / np.sqrt(n)})
    for pct, row in zip(PERCENTILES, q, strict=True):
        frame[f"p{pct}"] = row
    return frame


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
