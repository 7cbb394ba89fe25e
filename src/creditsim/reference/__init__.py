"""The reference engine: the specification of the core lending model, in code.

It simulates the model the obvious way, one SimPy process per loan and one Python object per firm, slow on
purpose and independent of :mod:`creditsim.model`: it shares the scenario schema, the units and the opening
position, none of the engine's event logic or random numbers (it draws from named streams, :mod:`.streams`). It
exists to be compared with the engine (``tests/test_reference.py``) and to measure the engine's speed against a
naive peer (``benchmarks/run.py``).
"""

from .engine import MODELLED, NOT_MODELLED, ReferenceSimulation, check_supported, run_task, simulate

__all__ = ["MODELLED", "NOT_MODELLED", "ReferenceSimulation", "check_supported", "run_task", "simulate"]
