"""What a run says: the monthly metrics of every path (:class:`Results`), measured against the plan's targets
(:mod:`.targets`) and the regulator's 两增 and 两控 tests (:mod:`.assessment`)."""

from .results import ALL, PERCENTILES, Results, mean_and_mcse

__all__ = ["ALL", "PERCENTILES", "Results", "mean_and_mcse"]
