"""What a run says: the monthly metrics of every path (:class:`Results`), measured against the plan's targets
(:mod:`.targets`) and the regulator's 两增 and 两控 tests (:mod:`.assessment`), each bank's book (:mod:`.banks`) and
the government's budget (:mod:`.budget`)."""

from .banks import bank_table
from .budget import Budget, baseline_scenario, budget
from .results import ALL, PERCENTILES, Results, mean_and_mcse

__all__ = ["ALL", "PERCENTILES", "Results", "mean_and_mcse", "Budget", "baseline_scenario", "bank_table", "budget"]
