"""Scenarios: the user's description of a lending programme, loaded through one door.

A scenario is TOML written in the user's language (amounts in 万/亿, rates in %, months ``"YYYY-MM"``).
:func:`load_scenario` parses units, applies ``--set`` overrides, validates every field (:mod:`.schema`) and every
cross-field rule (:mod:`.rules`), and returns a frozen :class:`Scenario`. Every problem raises
:class:`~creditsim.errors.ScenarioError` naming the dotted field, the value and the rule; the engine trusts what
comes out. :mod:`.opening` apportions the opening population, :mod:`.sampling` gives the sample the engine runs and
the factors that scale its results back, :mod:`.loan_tape` reads a bank's loan tape and resolves it against the
scenario, :mod:`.growth` turns rates by year into growth paths, and
:mod:`.document` writes the field reference (``docs/reference/scenario.md``) from the schema.
"""

from .loading import (
    DEFAULT_SCENARIO,
    MAX_SCENARIO_BYTES,
    key_path,
    load_scenario,
    parse_overrides,
    scenario_from_dict,
    value_at,
    with_tests,
)
from .schema import (
    FACTOR_MONTHS,
    MEASURES,
    PRODUCTS,
    TESTS,
    TWO_INCREASES_RULES,
    Assessment,
    Assumption,
    Bank,
    Calendar,
    Campaign,
    Channel,
    Deferral,
    Demand,
    Firms,
    Guarantor,
    Injection,
    InterestSubsidy,
    Liquidity,
    LoanTape,
    Pool,
    Pressure,
    Reguarantor,
    Relief,
    ReliefLending,
    Renewal,
    Risk,
    Scenario,
    Segment,
    StressPoint,
    Target,
    TopUp,
    admitted,
    json_digest,
    key_fields,
    numeric_fields,
)

__all__ = [
    "DEFAULT_SCENARIO", "MAX_SCENARIO_BYTES", "FACTOR_MONTHS", "MEASURES", "PRODUCTS", "TESTS", "TWO_INCREASES_RULES", "Assessment", "Assumption", "Bank", "Calendar",
    "Campaign", "Channel", "Deferral", "Demand", "Firms", "Guarantor", "Injection", "InterestSubsidy", "Liquidity", "LoanTape", "Pool", "Pressure", "Reguarantor", "Relief",
    "ReliefLending", "Renewal", "Risk", "Scenario", "Segment", "StressPoint", "Target", "TopUp", "admitted", "json_digest", "key_fields", "key_path", "load_scenario", "numeric_fields",
    "parse_overrides", "scenario_from_dict", "value_at", "with_tests",
]
