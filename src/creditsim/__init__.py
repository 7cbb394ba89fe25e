"""creditsim: a discrete-event Monte Carlo simulator of small- and micro-enterprise lending programmes.

>>> import creditsim
>>> scenario = creditsim.load_scenario()              # the bundled default
>>> results = creditsim.simulate(scenario, paths=2, seed=1)
>>> sorted(results.metrics.columns)
['bank', 'date', 'metric', 'path', 'value']
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .analysis.compare import Comparison, compare
from .analysis.search import Solution, solve
from .analysis.summaries import fiscal_costs, instrument_events, per_fiscal_cost
from .analysis.sweeps import Sweep, sweep
from .errors import BackendError, CreditsimError, ResultsError, ScenarioError, ScenarioWarning
from .metrics import METRICS
from .results import Budget, Results, bank_table, baseline_scenario, budget
from .run import Backend, simulate
from .scenario import Scenario, load_scenario

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
