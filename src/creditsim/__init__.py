"""creditsim: a discrete-event Monte Carlo simulator of small- and micro-enterprise lending programmes.

>>> import creditsim
>>> scenario = creditsim.load_scenario()              # the bundled default
>>> results = creditsim.simulate(scenario, paths=2, seed=1)
>>> sorted(results.metrics.columns)
['bank', 'date', 'metric', 'path', 'value']
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .analysis.compare import Comparison, compare
from .analysis.search import Solution, solve
from .analysis.summaries import fiscal_costs, instrument_events, per_fiscal_cost
from .analysis.sweeps import Sweep, sweep
from .errors import BackendError, CreditsimError, ResultsError, ScenarioError, ScenarioWarning
from .metrics import METRICS
from .results import Budget, Results, bank_table, baseline_scenario, budget
from .run import Backend, simulate
from .scenario import Scenario, load_scenario


def explore(scenario: str | Path | None = None, paths: int = 200, seed: int = 0, threads: int | None = None) -> Any:
    """The explorer of a scenario file (None: the bundled default) in a notebook: its levers, and every target's
    P(met), a fan chart, 两增 by bank, the budget and who bears the losses, baseline against the variant the levers
    make, updated as they move (the page ``creditsim explore`` serves; see :func:`creditsim.present.app.explore` for
    the parameters). Shown inline when it is the last value of a cell.

    Raises
    ------
    ScenarioError
        When the scenario is not valid.
    """
    from .present.app import explore as page

    return page(scenario, paths, seed, threads)


try:
    __version__ = version("creditsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "simulate",
    "sweep",
    "Sweep",
    "solve",
    "Solution",
    "Backend",
    "compare",
    "Comparison",
    "explore",
    "fiscal_costs",
    "instrument_events",
    "per_fiscal_cost",
    "budget",
    "Budget",
    "baseline_scenario",
    "bank_table",
    "load_scenario",
    "Scenario",
    "Results",
    "METRICS",
    "CreditsimError",
    "BackendError",
    "ScenarioError",
    "ScenarioWarning",
    "ResultsError",
]
