"""Memory a run's results need, checked against the memory available before the run starts.

Every path returns its monthly metrics, which the main process holds together: per scope, an array of
(paths, months + 1, entities + 1, metrics of the scope) float64 numbers. A request whose results alone would not
fit in the memory available (``MemAvailable`` of ``/proc/meminfo``) is refused up front, with the estimate, instead
of failing hours later. Where the available memory cannot be read, nothing is refused.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ScenarioError
from .metrics import SCOPE_METRICS, SCOPES, entities
from .scenario import Scenario

__all__ = ["available_bytes", "check_results_fit", "results_bytes"]

#: Share of the available memory the results may take (the rest is for the engine, the tables and the system).
RESULTS_SHARE = 0.5


def results_bytes(scenario: Scenario, paths: int) -> int:
    """Bytes of the per-path metric arrays of ``paths`` paths of ``scenario`` (aggregates included)."""
    dates = scenario.calendar.months + 1
    cells = sum((len(entities(scope, scenario)) + 1) * len(SCOPE_METRICS[scope]) for scope in SCOPES if scope != "population")
    cells += len(SCOPE_METRICS["population"])
    return int(paths) * dates * cells * 8


def available_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory available for new work, bytes (``MemAvailable``), or None where it cannot be read."""
    try:
        for line in Path(meminfo).read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_results_fit(scenarios: list[Scenario], paths: int, available: int | None = None) -> None:
    """Refuse a run whose results would take more than :data:`RESULTS_SHARE` of the available memory.

    Parameters
    ----------
    scenarios : list of Scenario
        The scenarios run on the same paths (two for a comparison).
    paths : int
    available : int, optional
        Bytes available; read from the system when omitted.

    Raises
    ------
    ScenarioError
        Naming ``paths``, the estimate and the memory available.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = sum(results_bytes(s, paths) for s in scenarios)
    if need > RESULTS_SHARE * available:
        most = max(1, int(RESULTS_SHARE * available * paths / need))
        raise ScenarioError("paths", paths, f"would need about {need / 1024**3:.1f} GiB for the results, more than half the "
                                            f"{available / 1024**3:.1f} GiB available; run at most about {most:,} paths here, "
                                            "or in batches of path numbers")
