"""creditsim: a discrete-event Monte Carlo simulator of small- and micro-enterprise lending programmes.

>>> import creditsim
>>> scenario = creditsim.load_scenario()              # the bundled default
>>> results = creditsim.simulate(scenario, paths=2, seed=1)
>>> sorted(results.metrics.columns)
['bank', 'date', 'metric', 'path', 'value']
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import simulate
from .compare import Comparison, compare
from .errors import CreditsimError, ResultsError, ScenarioError
from .metrics import METRICS
from .results import Results
from .scenario import Scenario, load_scenario
from .summaries import fiscal_costs, instrument_events, per_fiscal_cost

try:
    __version__ = version("creditsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "simulate",
    "compare",
    "Comparison",
    "fiscal_costs",
    "instrument_events",
    "per_fiscal_cost",
    "load_scenario",
    "Scenario",
    "Results",
    "METRICS",
    "CreditsimError",
    "ScenarioError",
    "ResultsError",
]
