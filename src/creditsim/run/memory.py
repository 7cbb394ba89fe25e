"""Memory a run needs, checked against the memory available before the run starts.

Two things take memory. Every path returns its monthly metrics, which the main process holds together: per scope,
an array of (paths, months + 1, entities + 1, metrics of the scope) float64 numbers (:func:`results_bytes`, exact).
And each local worker (this process for a serial run) simulates one path at a time, holding a row per borrower and
one per loan (:func:`engine_bytes`, an upper estimate from the expected peak of borrowers). A request that would not
fit in the memory available (``MemAvailable`` of ``/proc/meminfo``) is refused up front, with the estimate, instead
of failing hours later. Where the available memory cannot be read, nothing is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ScenarioError
from ..metrics import SCOPE_METRICS, SCOPES, entities
from ..scenario import Scenario

__all__ = ["available_bytes", "check_memory", "engine_bytes", "peak_borrowers", "results_bytes"]

#: Share of the available memory the results and the workers' engines may take together.
RUN_SHARE = 0.8
#: Engine memory of a borrower with one loan, and of each further loan, bytes: kept above what the engine allocates
#: (tests/test_memory.py checks it at 200,000 borrowers); the borrower table grows by doubling, so the bytes per
#: borrower fall with size and at 5 million the estimate is about three times the memory used (benchmarks/RESULTS.md).
BYTES_PER_BORROWER = 500
BYTES_PER_LOAN = 200
#: A worker's memory before any borrower: the interpreter, numpy, scipy, pandas, numba's compiled kernels (a
#: process running 10,000 borrowers peaks at 262 MiB).
BYTES_PER_WORKER = 320 * 1024**2


def results_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes of the per-path metric arrays of ``paths`` paths of ``scenario`` (aggregates included)."""
    dates = scenario.calendar.months + 1
    cells = sum((len(entities(scope, scenario)) + 1) * len(SCOPE_METRICS[scope]) for scope in SCOPES if scope != "population")
    cells += len(SCOPE_METRICS["population"])
    return int(paths) * dates * cells * 8


def peak_borrowers(scenario: Scenario) -> float:
    """An upper estimate of the borrowers a path of ``scenario`` holds at once: the opening borrowers plus every
    expected application and campaign application over the run (as if all were approved and none left), at most
    every firm there will be; in the sample the engine runs (see ``sample``)."""
    from ..scenario.growth import application_growth

    s = scenario
    months = s.calendar.months
    segments = s.firms.segments.values()
    opening = sum(seg.firms * (1.0 - seg.unbanked_share) for seg in segments)
    applications = sum(seg.applications_per_month for seg in segments) * float(np.sum(application_growth(s)[1:]))
    campaign = sum(c.reach_per_month * c.need for c in s.campaign.channels.values()) * months
    if s.campaign.list_size is not None:
        campaign = min(campaign, s.campaign.list_size)
    ever = sum(seg.firms + seg.entry_per_year * months / 12.0 for seg in segments)
    return min(ever, opening + applications + campaign) * s.sample


def engine_bytes(scenario: Scenario) -> int:
    """An upper estimate of the memory, bytes, of a worker simulating one path of ``scenario``."""
    loans = BYTES_PER_BORROWER + (scenario.demand.loans_per_borrower - 1.0) * BYTES_PER_LOAN
    return int(BYTES_PER_WORKER + peak_borrowers(scenario) * loans)


def available_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory available for new work, bytes (``MemAvailable``), or None where it cannot be read."""
    try:
        for line in Path(meminfo).read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(scenarios: list[Scenario], paths: int, workers: int = 1, available: int | None = None) -> None:
    """Refuse a run whose results (twice: gathered from the tasks, then joined) and ``workers`` local engines would
    take more than :data:`RUN_SHARE` of the available memory. The error names ``paths`` when the results are the
    larger part, else ``workers`` when the processes themselves are, else ``sample``.

    Parameters
    ----------
    scenarios : list of Scenario
        The scenarios run on the same paths (two for a comparison).
    paths : int
    workers : int
        Local processes simulating at once (1 for a serial run; 0 when every path runs on a remote cluster).
    available : int, optional
        Bytes available; read from the system when omitted.

    Raises
    ------
    ScenarioError
        Naming ``paths``, ``workers`` or ``sample``, with the estimates and the memory available.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    gib = 1024**3
    need = sum(results_bytes(s, paths) for s in scenarios)
    biggest = max(scenarios, key=engine_bytes)
    engines = workers * engine_bytes(biggest)
    room = (RUN_SHARE * available - engines) / 2  # the results are gathered from the tasks, then joined
    if need > room and need > engines:
        most = max(1, int(max(room, 0) * paths / need))
        raise ScenarioError("paths", paths, f"would need about {need / gib:.1f} GiB for the results, more than the "
                                            f"{max(room, 0) / gib:.1f} GiB they may take of the {available / gib:.1f} GiB available; "
                                            f"run at most about {most:,} paths here, or in batches of path numbers")
    if 2 * need + engines > RUN_SHARE * available:
        if 2 * workers * BYTES_PER_WORKER >= engines:  # the processes themselves, not the borrowers
            raise ScenarioError("workers", workers, f"would need about {engines / gib:.1f} GiB ({BYTES_PER_WORKER / 1024**2:.0f} MiB a process "
                                                    f"and {peak_borrowers(biggest):,.0f} borrowers a path) besides {need / gib:.1f} GiB of results, "
                                                    f"more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available; use fewer workers")
        raise ScenarioError("sample", biggest.sample, f"leaves about {peak_borrowers(biggest):,.0f} borrowers a path to simulate, "
                                                      f"{engines / gib:.1f} GiB for {workers} worker(s) besides {need / gib:.1f} GiB of results, "
                                                      f"more than {RUN_SHARE:.0%} of the {available / gib:.1f} GiB available; "
                                                      "simulate a sample of the firms (e.g. sample = '1:100') or use fewer workers")
