"""Scenario files: the typed, validated description of a lending programme.

A scenario is TOML written in the user's language (amounts in 万/亿, rates in %, months ``"YYYY-MM"``). It is
loaded through one door, :func:`load_scenario`, which parses units, applies ``--set`` overrides, validates every
field and every cross-field rule, and returns a frozen :class:`Scenario`. Every problem raises
:class:`~creditsim.errors.ScenarioError` naming the dotted field, the value and the rule. The engine trusts
what comes out.

The field reference (``docs/reference/scenario.md``) is generated from this module by
:func:`reference_markdown`, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import _MISSING, ScenarioError
from .units import MAX_COUNT, month_index, month_label, parse_amount, parse_count, parse_month, parse_number, parse_quantity, parse_rate

__all__ = [
    "admitted",
    "json_digest",
    "rates_by_year",
    "Scenario",
    "Calendar",
    "Segment",
    "Firms",
    "Bank",
    "Demand",
    "StressPoint",
    "Risk",
    "Liquidity",
    "Renewal",
    "Campaign",
    "Channel",
    "Guarantor",
    "Reguarantor",
    "Injection",
    "TopUp",
    "Pool",
    "InterestSubsidy",
    "Target",
    "Assessment",
    "MEASURES",
    "TWO_INCREASES_RULES",
    "PRODUCTS",
    "FACTOR_MONTHS",
    "DEFAULT_SCENARIO",
    "load_scenario",
    "scenario_from_dict",
    "parse_overrides",
    "reference_markdown",
]

#: Loan products: 信用 (credit, unsecured), 担保 (guaranteed), 抵押/质押 (collateral).
PRODUCTS: tuple[str, ...] = ("credit", "guaranteed", "collateral")
#: Months per period of the systematic factor.
FACTOR_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3, "annual": 12}
#: Firms a segment may reach (numpy's hypergeometric sampler needs fewer than 10^9).
MAX_SEGMENT_FIRMS = 1e9
#: The bundled default scenario, run by ``creditsim run`` with no file.
DEFAULT_SCENARIO = "default.toml"
#: The largest scenario file read, in bytes (the plans' files are 15–25 KB); a larger file is refused unread.
MAX_SCENARIO_BYTES = 1024**2
#: The highest annual growth rate accepted (1000%); a larger one is a percentage written as a fraction.
MAX_GROWTH = 10.0
#: The highest leverage of a risk pool (pools.*.leverage).
MAX_POOL_LEVERAGE = 100.0
#: The most loans a borrower may take at once on average (demand.loans_per_borrower).
MAX_LOANS_PER_BORROWER = 100.0
#: The highest risk premium per unit of believed PD (banks.*.rate_per_pd): at PD 1 the rate rises by 1000%.
MAX_RATE_PER_PD = 10.0
#: The smallest non-zero sd of LGD (risk.lgd_sd): below it the Beta distribution is a point (and its shape
#: parameters overflow).
MIN_LGD_SD = 1e-6


# --------------------------------------------------------------------------------------------------- value types
def _probability(value: object) -> float:
    rate = parse_rate(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("must be in [0, 1]")
    return rate


def _growth(value: object) -> float:
    rate = parse_rate(value)
    if rate <= -1.0:
        raise ValueError("must be > -100%")
    if rate > MAX_GROWTH:
        raise ValueError(f"must be at most {MAX_GROWTH:.0%} a year; a rate is a fraction: 30% is 0.3 or '30%'")
    return rate


def _non_negative(value: object) -> float:
    number = parse_number(value, "2.5")
    if number < 0:
        raise ValueError("must be ≥ 0")
    return number


def _positive_amount(value: object) -> float:
    amount = parse_amount(value)
    if amount <= 0:
        raise ValueError("must be > 0")
    return amount


def _name(value: object) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in ". \t\n=,"):
        raise ValueError("names must be non-empty and contain no dots, spaces, '=' or ','")
    return value


def _as_tuple(value: object) -> object:
    """TOML arrays arrive as lists; a scenario keeps them as tuples so it cannot be changed in place."""
    return tuple(value) if isinstance(value, list) else value


Amount = Annotated[float, BeforeValidator(parse_amount)]
PositiveAmount = Annotated[float, BeforeValidator(_positive_amount)]
Count = Annotated[float, BeforeValidator(parse_count)]
Probability = Annotated[float, BeforeValidator(_probability)]
Growth = Annotated[float, BeforeValidator(_growth)]
NonNegative = Annotated[float, BeforeValidator(_non_negative)]
Month = Annotated[str, BeforeValidator(parse_month)]


def _sample(value: object) -> float:
    """A sampling fraction: a number in (0, 1] or a string '1:100'."""
    if isinstance(value, str):
        one, sep, n = value.partition(":")
        try:
            fraction = float(one) / float(n) if sep else math.nan
        except (ValueError, ZeroDivisionError):
            fraction = math.nan
        if not math.isfinite(fraction):
            raise ValueError("must be a fraction such as 0.01 or a ratio such as '1:100'")
    else:
        fraction = parse_number(value, "'1:100'")
    if not 0.0 < fraction <= 1.0:
        raise ValueError("must be in (0, 1]")
    return fraction


#: Field markers for ``sample``: an aggregate count or amount the engine scales by the sample share (a rate of
#: arrivals, a balance, a capital, a budget), or a count of whole firms, scaled and rounded. Per-loan sizes and
#: limits carry no marker and are never scaled.
SCALED: dict[str, Any] = {"sampled": "scaled"}
WHOLE: dict[str, Any] = {"sampled": "whole"}


class _Model(BaseModel):
    """Frozen, strict, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --------------------------------------------------------------------------------------------------- sections
class Calendar(_Model):
    """When the simulation runs."""

    start: Month = Field(description="First simulated month, 'YYYY-MM'. The opening balances are those at the end of the month before.")
    months: int = Field(ge=1, le=600, description="Number of simulated months (1–600).")


class Segment(_Model):
    """One segment of the firm population (micro firms, small firms, 个体工商户 …)."""

    label: str = Field("", description="Display name, e.g. '小型企业'.")
    firms: Count = Field(description="Firms in the segment at the start (count; '12万' allowed).", json_schema_extra=WHOLE)
    unbanked_share: Probability = Field(description="Share of the segment's firms with no loan at the start (无贷户 and former borrowers).")
    former_borrower_share: Probability = Field(0.0, description="Share of the firms without a loan at the start that borrowed before (the rest are 无贷户, never borrowed).")
    entry_per_year: Count = Field(0.0, description="New firms registered per year (新增小微企业), Poisson, spread evenly over months.", json_schema_extra=SCALED)
    exit_rate: Probability = Field(0.0, description="Annual probability that a firm without a loan closes.")
    applications_per_month: Count = Field(0.0, description="Loan applications per month from the segment's unbanked firms (Poisson); grows at demand.growth.", json_schema_extra=SCALED)
    pd: Annotated[tuple[Probability, ...], BeforeValidator(_as_tuple)] = Field(description="Annual probability of default of each credit grade (true PD).")
    grade_share: Annotated[tuple[Probability, ...], BeforeValidator(_as_tuple)] = Field(description="Share of the segment's firms in each grade; same length as pd, sums to 1.")
    rho: Probability = Field(description="Asset correlation ρ with the systematic factor (one-factor Gaussian model), in [0, 1).")
    line_median: PositiveAmount = Field(description="Median credit line (单户授信) of a borrower at first loan, CNY.")
    line_p90: PositiveAmount = Field(description="90th percentile of the credit line at first loan, CNY (> line_median); lines are lognormal.")
    line_growth: Growth = Field(0.0, description="Annual growth of a borrower's loan size when it re-borrows.")


class Firms(_Model):
    """The firm population."""

    inclusive_line_limit: PositiveAmount = Field(1e7, description="Credit line above which a borrower leaves the inclusive (普惠型) book; 1000万 by the regulator's definition.")
    segments: dict[Annotated[str, BeforeValidator(_name)], Segment] = Field(description="The segments, keyed by name.")


class Bank(_Model):
    """A bank (or a group of banks assessed together)."""

    label: str = Field("", description="Display name.")
    share: Probability = Field(description="Share of borrowers: of the initial inclusive borrowers and of new applications. Shares sum to 1.")
    initial_balance: PositiveAmount | None = Field(None, description="Initial inclusive loan balance, CNY; when given, the initial book's loan sizes are scaled to it.", json_schema_extra=SCALED)
    all_loans: PositiveAmount = Field(description="Initial balance of all the bank's loans (各项贷款), inclusive ones included, CNY.", json_schema_extra=SCALED)
    non_inclusive_growth: Growth | dict[str, Growth] = Field(description="Annual growth of the bank's loans outside the inclusive book: one rate, or a table by year ('2021' = '8%') covering every simulated year.")
    max_pd: Probability = Field(description="Risk appetite: the highest annual PD the bank lends to.")
    rate: Probability = Field(description="Annual interest rate on its inclusive loans (before the risk premium).")
    rate_per_pd: NonNegative = Field(0.0, description="Risk-based pricing: the rate rises by rate_per_pd × the PD the bank believes the firm has (at most 10).")
    renewal_uptake: Probability = Field(0.0, description="Share of the firms with eligible maturing loans whose loans the bank renews without principal repayment (无还本续贷).")
    term_mix: dict[str, Probability] = Field(description="Share of new loans by term in months, e.g. {12 = 0.6, 24 = 0.3, 36 = 0.1}; sums to 1. Loans repay at maturity (bullet).")
    product_mix: dict[str, Probability] = Field(description="Share of new loans by product: credit (信用), guaranteed (担保), collateral (抵押/质押); sums to 1.")
    small_micro_outside: Amount = Field(0.0, description="Small-micro loans of the bank outside the inclusive book at the start (小微企业贷款 less 普惠型: borrowers whose lines pass the inclusive limit), CNY; part of all_loans. Not simulated loan by loan: they follow small_micro_outside_growth, and with the inclusive balance they give small_micro_balance, the measure of plans' 小微企业贷款 targets.", json_schema_extra=SCALED)
    small_micro_outside_growth: Growth | dict[str, Growth] = Field(0.0, description="Annual growth of small_micro_outside: one rate, or a table by year covering every simulated year.")
    other_npl_ratio: Probability | dict[str, Probability] = Field(0.015, description="NPL ratio of the bank's loans outside the inclusive book: one ratio, or a table by year ('2021' = '1.6%') covering every simulated year; with the inclusive NPL it gives the bank's overall NPL ratio, the yardstick of 两控. Default 1.5%, the low end of all commercial banks' 1.5–1.9%.")


class Demand(_Model):
    """How borrowers come and stay."""

    growth: Growth | dict[str, Growth] = Field(0.0, description="Annual growth of applications_per_month of every segment: one rate, or a table by year ('2020' = '30%') covering every simulated year.")
    reborrow_prob: Probability = Field(description="Probability that a maturing loan is followed by a new loan to the same firm.")
    loans_per_borrower: NonNegative = Field(1.0, description="Mean number of loans a borrower takes at once (1–100): 1 + Poisson(loans_per_borrower − 1); the line is split evenly.")


class StressPoint(_Model):
    """One step of the macro stress path."""

    date: Month = Field(description="Month from which the multiplier applies (until the next point).")
    pd_multiplier: NonNegative = Field(description="Factor applied to every annual PD from this month on.")


class Risk(_Model):
    """Defaults, losses and recoveries."""

    factor_frequency: Literal["monthly", "quarterly", "annual"] = Field("annual", description="How often the systematic factor Z is redrawn: monthly, quarterly or annual.")
    stress: Annotated[tuple[StressPoint, ...], BeforeValidator(_as_tuple)] = Field((), description="Macro stress path: PD multipliers by date, in date order; before the first point the multiplier is 1.")
    lgd: dict[str, Probability] = Field(description="Mean loss given default by product (credit, guaranteed, collateral).")
    lgd_sd: NonNegative = Field(0.0, description="Standard deviation of a loan's LGD (Beta distributed around the mean); 0 for a fixed LGD, else at least 1e-6.")
    recovery_lag_months: int = Field(12, ge=0, le=120, description="Months from default to the recovery of (1 − LGD) of the defaulted balance (0–120).")
    write_off_months: int = Field(24, ge=0, le=240, description="Months from default to the write-off of what was not recovered (≥ recovery_lag_months, ≤ 240).")
    signal_sd: NonNegative = Field(0.0, description="Thin files: standard deviation, in log-odds, of the bank's error about a firm's PD when the firm has no credit history; with k repaid loans it is signal_sd / sqrt(1 + k).")
    known_history_loans: int = Field(4, ge=0, le=100, description="Repaid loans the bank is taken to have seen from firms that borrowed before the scenario (opening borrowers and former borrowers).")


class Liquidity(_Model):
    """Liquidity stress at maturity, separate from solvency."""

    stress_prob: Probability = Field(0.0, description="Probability that a solvent firm cannot repay principal on time at a maturity.")
    bridge_share: Probability = Field(0.0, description="Share of stressed firms that borrow bridge money (倒贷) to repay; the others default (liquidity defaults).")
    bridge_cost: Probability = Field(0.02, description="Cost of bridge money as a share of the principal bridged.")


class Renewal(_Model):
    """Renewal without principal repayment (无还本续贷): which maturing loans may be renewed.

    A renewal is a new loan that repays the old one (counted in both disbursed and repaid); the firm repays no
    principal, so liquidity stress cannot push it into default. Each bank renews the eligible loans of a share
    ``banks.NAME.renewal_uptake`` of its firms.
    """

    enabled: bool = Field(True, description="Renewal is allowed (set false to switch a scenario's renewal off; without a [renewal] section there is none).")
    products: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = Field(PRODUCTS, description="Eligible products.")
    max_term_months: int = Field(12, ge=1, le=360, description="Longest eligible term (working-capital loans), months.")
    min_months_on_book: int = Field(0, ge=0, le=600, description="Months since the firm's first loan at the bank (in the scenario, or its seasoned opening loan) required.")
    max_consecutive: int = Field(3, ge=1, le=100, description="Most consecutive renewals of a loan.")
    max_pd: Probability = Field(1.0, description="Highest PD, as the bank believes it, of an eligible firm.")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all); leave medium firms out by not listing their segment.")
    until: Month | None = Field(None, description="Last month in which loans can be renewed (e.g. '2027-09').")
    until_by_segment: dict[str, Month] = Field(default_factory=dict, description="Last month of renewal for particular segments, overriding until (e.g. {medium = '2027-09'} per 金规〔2024〕13号).")
    distressed_classification: Literal["performing", "restructured"] = Field("performing", description="How a renewal to a firm that will default before the renewed loan matures is reported: as performing (evergreening masks it) or as restructured (counted in the reported NPL ratio, per the 2023 rules).")


class Channel(_Model):
    """One outreach channel of a first-loan campaign (visits, a 贷款码 QR-code channel …)."""

    reach_per_month: Count = Field(description="Firms without any past loan reached per month.", json_schema_extra=SCALED)
    need: Probability = Field(description="Share of reached firms that express a need for credit and apply.")
    bank: str | None = Field(None, description="The bank that handles the channel's applications (default: by bank share).")
    line_scale: NonNegative = Field(1.0, description="First-loan size relative to the segment's line distribution (e.g. 0.2 for small 贷款码 loans).")
    max_pd: Probability | None = Field(None, description="Highest believed PD approved through this channel (default: the bank's max_pd).")


class Campaign(_Model):
    """A first-loan (首贷) campaign that reaches firms which never borrowed, of which some apply.

    Banks approve campaign applicants on a noisy signal of their PD (thin files, ``risk.signal_sd``).
    """

    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Segments on the 无贷户 list (default all).")
    list_size: Count | None = Field(None, description="Firms on the 无贷户 list (e.g. '53万'): the campaign's total reach over the run stops there. Each month's reach is drawn from the firms that never borrowed, so a firm reached that did not apply may be reached again. Default: no limit but those firms.", json_schema_extra=WHOLE)
    start: Month | None = Field(None, description="First month of the campaign (default: the scenario's start).")
    end: Month | None = Field(None, description="Last month of the campaign (default: the scenario's end).")
    channels: dict[Annotated[str, BeforeValidator(_name)], Channel] = Field(default_factory=dict, description="The outreach channels, keyed by name.")


class Injection(_Model):
    """A scheduled capital injection (资本补充) by government."""

    date: Month = Field(description="Month of the injection.")
    amount: PositiveAmount = Field(description="Amount injected, CNY.", json_schema_extra=SCALED)


class TopUp(_Model):
    """A rule-based top-up (资本持续补充机制): when capital ends a month below ``below``, government restores it to ``to``."""

    below: PositiveAmount = Field(description="Capital below which the top-up is made, CNY.", json_schema_extra=SCALED)
    to: PositiveAmount = Field(description="Capital the top-up restores, CNY (> below).", json_schema_extra=SCALED)


class Guarantor(_Model):
    """A government financing guarantee institution (政府性融资担保机构)."""

    label: str = Field("", description="Display name.")
    capital: PositiveAmount = Field(description="Net assets at the start, CNY.", json_schema_extra=SCALED)
    government_share: Probability = Field(1.0, description="Share of the starting capital put up by government (台州: 4亿 of 5亿); counted in the initial fiscal cost.")
    leverage_cap: NonNegative = Field(10.0, description="Outstanding guarantee liability may not exceed leverage_cap × capital (10, or 15 for guarantors mainly serving small-micro firms: 国务院令第683号 Art. 15).")
    capital_floor: Amount = Field(0.0, description="No new guarantees while capital is below this, CNY.", json_schema_extra=SCALED)
    single_borrower_share: Probability = Field(0.1, description="A borrower's guarantee liability may not exceed this share of capital (Art. 16: 10%).")
    coverage: Probability = Field(description="Share of a guaranteed loan's loss the guarantor takes; the bank keeps the rest (at least 20%).")
    fee_rate: Probability = Field(description="Annual guarantee fee on the outstanding guarantee liability.")
    fee_cap: Probability = Field(0.01, description="Highest fee rate allowed (国办发〔2019〕6号: average ≤ 1%).")
    fee_subsidy: Probability = Field(0.0, description="Part of the annual fee rate paid by government (降费奖补); the borrower pays the rest.")
    cost_rate: Probability = Field(0.0, description="Annual operating cost as a share of the outstanding guarantee liability.")
    take_up_elasticity: NonNegative = Field(0.0, description="Price response of demand for the guarantee: a borrower takes it with probability exp(−take_up_elasticity × (all-in price − reference_price)) when its all-in price (loan rate + fee − fee subsidy, a year) is above reference_price, always otherwise (0: always).")
    reference_price: Probability = Field(0.06, description="All-in annual price at or below which every borrower offered the guarantee takes it.")
    reguarantee: dict[str, Probability] = Field(default_factory=dict, description="Share of each claim passed to each re-guarantor, by re-guarantor name (e.g. a 2:4:2:2 split with coverage 0.8 is {provincial = 0.25, national_fund = 0.25}).")
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Banks whose loans it guarantees (default all).")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    max_line: PositiveAmount = Field(1e7, description="Largest credit line of an eligible borrower, CNY (1000万 for 普惠 guarantees).")
    claim_lag_months: int = Field(3, ge=0, le=60, description="Months from a default to the claim payment (代偿); recoveries (追偿) are shared in the coverage ratio when they come.")
    injections: Annotated[tuple[Injection, ...], BeforeValidator(_as_tuple)] = Field((), description="Scheduled capital injections.")
    top_up: TopUp | None = Field(None, description="Rule-based capital top-up (default none).")


class Reguarantor(_Model):
    """A re-guarantor: a provincial re-guarantee company or the 国家融资担保基金."""

    label: str = Field("", description="Display name.")
    capital: PositiveAmount = Field(description="Net assets at the start, CNY.", json_schema_extra=SCALED)
    government_share: Probability = Field(1.0, description="Share of the starting capital put up by government; counted in the initial fiscal cost.")
    fee_rate: Probability = Field(description="Annual re-guarantee fee on its share of the outstanding liability (国家融资担保基金: 0.5%).")
    fee_rate_small: Probability | None = Field(None, description="Fee rate on loans of at most 500万 (国家融资担保基金: 0.3%; default fee_rate).")


class Pool(_Model):
    """A risk compensation pool (风险补偿资金池) that pays a share of the net loss of the loans it covers."""

    label: str = Field("", description="Display name.")
    size: Amount = Field(description="Balance at the start, CNY (0: a pool that starts empty and is funded by annual_budget or top_up_to).", json_schema_extra=SCALED)
    contributions: dict[str, Probability] = Field(default_factory=lambda: {"government": 1.0}, description="Who funds the pool and its top-ups, by share: government, guarantor, bank (e.g. 4:4:2 as {government = 0.4, guarantor = 0.4, bank = 0.2}).")
    leverage: NonNegative = Field(10.0, description="Covered loans outstanding may not exceed leverage × the pool's balance (5–10×; at most 100).")
    payout_share: Probability = Field(description="Share of a covered loan's net loss (balance less recoveries) the pool pays at write-off (40–80%).")
    max_loan: PositiveAmount = Field(2e6, description="Largest eligible loan, CNY (often 200万).")
    max_payout_per_loan: PositiveAmount | None = Field(None, description="Largest payout on one loan, CNY (default: no cap).")
    max_payout_per_year: PositiveAmount | None = Field(None, description="Largest payout in a calendar year, CNY (default: no cap).", json_schema_extra=SCALED)
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Partner banks (default all).")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    products: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = Field(("credit",), description="Eligible products (a guaranteed loan is never also covered by a pool).")
    first_time_only: bool = Field(False, description="Cover only loans to 首贷户.")
    annual_budget: Amount = Field(0.0, description="Added every January of the simulation, a first month in January included, CNY (funded by the contribution shares).", json_schema_extra=SCALED)
    top_up_to: Amount | None = Field(None, description="Every January the pool is topped up to this balance, CNY (default: no top-up).", json_schema_extra=SCALED)
    suspend_below: Amount = Field(0.0, description="No new cover while the balance is below this, CNY.", json_schema_extra=SCALED)
    suspend_npl_ratio: Probability = Field(1.0, description="No new cover while the non-performing share of covered loans is above this.")


class InterestSubsidy(_Model):
    """An interest subsidy (贷款贴息): government pays part of the interest on eligible loans, within a budget."""

    rate: Probability = Field(description="Annual interest paid by government on an eligible loan's balance (e.g. 0.01: one percentage point); the borrower pays the bank's rate less this.")
    first_time_only: bool = Field(False, description="Only loans to 首贷户.")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible banks (default all).")
    annual_budget: PositiveAmount | None = Field(None, description="Most government pays in a calendar year, CNY (default: no cap); once spent, borrowers pay the full rate until January.", json_schema_extra=SCALED)


def _comparison(value: object) -> object:
    return {"≥": ">=", "≤": "<=", "＞": ">", "＜": "<"}.get(value, value) if isinstance(value, str) else value


#: How a target measures its metric (see :class:`Target`).
MEASURES: tuple[str, ...] = ("stock", "increase", "cumulative", "average", "ratio")


class Target(_Model):
    """A target of a plan: one metric, measured over a date or a period, compared with a threshold.

    ``stock`` (余额) is the metric at the end of ``date``; ``increase`` (新增) is the stock at the end of ``end``
    less the stock at the end of the month before ``start``; ``cumulative`` (累计) sums a flow over the months
    ``start`` to ``end``; ``average`` is the mean of the monthly values over those months; ``ratio`` is a ratio
    metric at the end of ``date``. Over several banks (``scope`` a list) stocks and flows are summed and ratios
    recomputed from the sums.
    """

    label: str = Field("", description="The target as the plan words it, e.g. '新增小微企业贷款1000亿元'.")
    source: str = Field("", description="Where the plan sets it: document and clause, e.g. '004_a4906bae605cc669.txt 一(三)'.")
    metric: str = Field(description="The metric measured (see docs/reference/metrics.md).")
    measure: Literal["stock", "increase", "cumulative", "average", "ratio"] = Field(description="How the metric is measured: stock (余额) or ratio at a date, increase (新增), cumulative flow (累计) or average over a period.")
    comparison: Annotated[Literal[">=", "<=", ">", "<"], BeforeValidator(_comparison)] = Field(">=", description="How the measured value must compare with the threshold: '>=', '<=', '>' or '<' (≥ and ≤ accepted).")
    threshold: float | str = Field(description="The target value in the metric's unit: an amount for money ('1000亿'), a count for firms or loans (15000, '1.5万户'), a rate for a fraction ('1%'); may be negative.")
    date: Month | None = Field(None, description="The date of a stock or ratio target, 'YYYY-MM' (month end); the opening month (before calendar.start) is allowed. A target outside the run is reported as not assessed.")
    start: Month | None = Field(None, description="First month of the period of an increase, cumulative or average target.")
    end: Month | None = Field(None, description="Last month of the period of an increase, cumulative or average target.")
    scope: Annotated[str | tuple[str, ...], BeforeValidator(_as_tuple)] = Field("all", description="Whom it is measured on: 'all', one bank (or guarantor, re-guarantor, pool for their metrics), or a list of them summed.")
    baseline: Literal["none", "year_before"] = Field("none", description="'year_before': the target compares the change from the same measure twelve months earlier with the threshold (e.g. 申贷获得率不低于上年: the approval rate averaged over 2020 less its 2019 average, ≥ 0); 'none': the measure itself.")

    def year_before(self) -> Target:
        """The same target twelve months earlier (its dates shifted back a year, no baseline)."""
        def back(month: str | None) -> str | None:
            return None if month is None else month_label(month_index(month) - 12)

        return self.model_copy(update={"date": back(self.date), "start": back(self.start), "end": back(self.end), "baseline": "none"})

    @property
    def value(self) -> float:
        """The threshold as a number in the metric's unit (CNY, firms, loans or a fraction)."""
        from .metrics import metric

        return parse_quantity(self.threshold, metric(self.metric).unit)


def _year_text(value: object) -> object:
    """A rule named by its year may be written as a number (2019) or text ("2019")."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: 两增 rules: which comparison date and which checks (see :class:`Assessment`).
TWO_INCREASES_RULES: tuple[str, ...] = ("2018", "2019", "2024", "none")


class Assessment(_Model):
    """How the regulator's annual tests (两增, 两控) are assessed, per bank and in aggregate, at quarter-ends and
    year-ends (see ``../shared/MODEL-NOTES.md`` §2)."""

    rule: Literal["in_force", "2018", "2019", "2024", "none"] | dict[str, Annotated[Literal["2018", "2019", "2024", "none"], BeforeValidator(_year_text)]] = Field(
        "in_force", description="The 两增 rule: '2018' (同比: inclusive growth ≥ all-loan growth and borrowers ≥ the same date last year), '2019' (较年初: both since the start of the year), '2024' (growth since the start of the year only), 'none'; 'in_force' applies each year's rule (before 2018 → 'none', 2018 → '2018', 2019–2022 → '2019', 2023 → 'none', 2024 on → '2024'); or a table by year (years left out: 'none').")
    npl_margin: Probability = Field(0.03, description="两控: the inclusive NPL ratio may exceed the bank's overall NPL ratio by at most this (3 percentage points).")


class Scenario(_Model):
    """A complete, validated scenario. Build one with :func:`load_scenario` or :func:`scenario_from_dict`."""

    name: str = Field(description="Short name of the scenario.")
    description: str = Field("", description="What the scenario represents and where its numbers come from.")
    sample: Annotated[float, BeforeValidator(_sample)] = Field(1.0, description="Share of the firm population the engine simulates: 1 (every firm), or e.g. '1:100'. Counts and amounts in the file are the real ones; the engine runs a sample of firms with every aggregate (firms, entries, applications, campaign reach, balances, capital, pools, budgets) scaled by the share, loan sizes and per-loan limits unchanged, and every count and amount it reports is scaled back. Ratios are unaffected; idiosyncratic noise is that of the sample (wider bands than the whole population would have), the systematic factor's is not.")
    calendar: Calendar
    firms: Firms
    banks: dict[Annotated[str, BeforeValidator(_name)], Bank] = Field(description="The banks, keyed by name.")
    demand: Demand
    risk: Risk
    liquidity: Liquidity = Field(default_factory=Liquidity, description="Liquidity stress at maturity (default: none).")
    renewal: Renewal | None = Field(None, description="Renewal without principal repayment (default: none).")
    campaign: Campaign = Field(default_factory=Campaign, description="First-loan campaign (default: none).")
    guarantors: dict[Annotated[str, BeforeValidator(_name)], Guarantor] = Field(default_factory=dict, description="Guarantee institutions, keyed by name (default none).")
    reguarantors: dict[Annotated[str, BeforeValidator(_name)], Reguarantor] = Field(default_factory=dict, description="Re-guarantors, keyed by name (default none).")
    pools: dict[Annotated[str, BeforeValidator(_name)], Pool] = Field(default_factory=dict, description="Risk compensation pools, keyed by name (default none).")
    interest_subsidy: InterestSubsidy | None = Field(None, description="Interest subsidy on eligible loans (default none).")
    discount_rate: Probability = Field(0.03, description="Annual rate at which fiscal costs are discounted to the start for their net present value.")
    assessment: Assessment = Field(default_factory=Assessment, description="How 两增 and 两控 are assessed (default: the rule in force each year, NPL margin 3pp).")
    targets: dict[Annotated[str, BeforeValidator(_name)], Target] = Field(default_factory=dict, description="The plan's targets, keyed by name (default none).")

    # ------------------------------------------------------------------ derived views used by the engine
    @property
    def segment_names(self) -> list[str]:
        """The firm segments' names, in file order."""
        return list(self.firms.segments)

    @property
    def bank_names(self) -> list[str]:
        """The banks' names, in file order (the order of the bank entities in results)."""
        return list(self.banks)

    @property
    def start_index(self) -> int:
        """Month index (see :func:`creditsim.units.month_index`) of the first simulated month."""
        return month_index(self.calendar.start)

    @property
    def restructured_reported(self) -> bool:
        """Renewals to distressed firms are reported as restructured, so the reported NPL ratio counts them."""
        return self.renewal is not None and self.renewal.distressed_classification == "restructured"

    @property
    def initial_fiscal_cost(self) -> float:
        """Government money put into the instruments at the start, CNY: its share of guarantors' and
        re-guarantors' starting capital and of pools' starting size."""
        return math.fsum(
            [g.government_share * g.capital for g in self.guarantors.values()]
            + [r.government_share * r.capital for r in self.reguarantors.values()]
            + [p.contributions.get("government", 0.0) * p.size for p in self.pools.values()]
        )

    def sampled(self) -> Scenario:
        """The scenario the engine runs for a ``sample`` below 1: every field marked :data:`SCALED` multiplied by
        ``sample``, every field marked :data:`WHOLE` multiplied and rounded to whole firms; loan sizes, lines and
        per-loan limits unchanged (the single-borrower share of a guarantor's capital is divided by ``sample``
        so that the limit in CNY stays the same). Returns the scenario itself when ``sample`` is 1.
        """
        if self.sample == 1.0:
            return self
        return _scaled(self, self.sample).model_copy(update={"sample": 1.0})

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain JSON-able data that :func:`scenario_from_dict` accepts again."""
        return self.model_dump(mode="json")

    def to_toml(self, header: str = "") -> str:
        """The scenario as TOML that :func:`load_scenario` reads back to an equal scenario (amounts in CNY, rates
        as fractions); ``header`` lines are written first as comments."""
        import tomli_w

        def present(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: present(v) for k, v in value.items() if v is not None}
            if isinstance(value, list):
                return [present(v) for v in value]
            return value

        comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        return comments + tomli_w.dumps(present(self.to_dict()))

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: equal digests mean equal scenarios."""
        return json_digest(self.to_dict())


def _scaled(value: Any, k: float) -> Any:
    """A scenario part with its :data:`SCALED` and :data:`WHOLE` fields multiplied by ``k``, recursively."""
    if isinstance(value, dict):
        return {key: _scaled(v, k) for key, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_scaled(v, k) for v in value)
    if not isinstance(value, _Model):
        return value
    update = {}
    for name, info in type(value).model_fields.items():
        field = getattr(value, name)
        marker = (info.json_schema_extra or {}).get("sampled") if isinstance(info.json_schema_extra, dict) else None
        if marker is None or field is None:
            update[name] = _scaled(field, k)
        else:
            update[name] = float(round(field * k)) if marker == "whole" else field * k
    if isinstance(value, Guarantor):
        update["single_borrower_share"] = value.single_borrower_share / k
    return value.model_copy(update=update)


def admitted(names: Sequence[str] | None, everyone: Sequence[str]) -> list[bool]:
    """For each of ``everyone`` (bank or segment names, in scenario order), whether a list of eligible names
    admits it; None (the field left out) admits all."""
    return [names is None or name in names for name in everyone]


# --------------------------------------------------------------------------------------------------- loading
def json_digest(data: Any) -> str:
    """SHA-256 of JSON-able data in canonical form (sorted keys, no spaces): equal data, equal digests."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_scenario(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> Scenario:
    """Load, override and validate a scenario file.

    Parameters
    ----------
    path : str or Path, optional
        A TOML scenario file; the bundled default scenario when omitted.
    overrides : dict or list of str, optional
        Values to set before validation, as ``{"banks.city.max_pd": 0.05}`` or as the CLI's
        ``["banks.city.max_pd=0.05"]`` strings (values parsed as TOML, else taken as text).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        When the file cannot be read or parsed, or any field or rule is violated.
    """
    if path is None:
        text = resources.files("creditsim").joinpath("scenarios", DEFAULT_SCENARIO).read_text(encoding="utf-8")
        source = DEFAULT_SCENARIO
    else:
        source = str(path)
        try:
            with open(path, "rb") as file:
                raw_bytes = file.read(MAX_SCENARIO_BYTES + 1)  # never more than the limit, whatever the file
        except OSError as exc:
            raise ScenarioError(source, _MISSING, f"cannot read the file: {exc.strerror or exc}") from None
        if len(raw_bytes) > MAX_SCENARIO_BYTES:
            raise ScenarioError(source, _MISSING, f"is larger than {MAX_SCENARIO_BYTES // 1024**2} MiB, the most a scenario file may be")
        if not raw_bytes.strip():
            raise ScenarioError(source, _MISSING, "is empty")
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(source, _MISSING, "is not UTF-8 text") from None
        if "\x00" in text:
            raise ScenarioError(source, _MISSING, "is binary, not a TOML text file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, _MISSING, f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, _MISSING, "nests arrays or tables too deeply") from None
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return scenario_from_dict(data, overrides)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=50万"]`` into ``{"a.b": 1, "c": "50万"}``; values are read as TOML when they can be."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScenarioError("--set", item, "must be written dotted.key=value")
        try:
            parsed[key] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed[key] = value.strip()
        except RecursionError:
            raise ScenarioError(key, _MISSING, "nests arrays or tables too deeply") from None
    return parsed


def scenario_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate scenario data (as read from TOML) after applying dotted-key overrides."""
    data = json.loads(json.dumps(data, default=str))  # a deep copy that the overrides may change
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _scenario_error(exc) from None
    _check_rules(scenario)
    return scenario


_KEY_PART = re.compile(r"^([^.\[\]]+)((?:\[[0-9]+\])*)$")


def key_path(key: str) -> list[str | int]:
    """The steps of a dotted key: ``"risk.stress[0].pd_multiplier"`` gives ``["risk", "stress", 0, "pd_multiplier"]``.

    Raises
    ------
    ScenarioError
        For an empty part or a bad index.
    """
    steps: list[str | int] = []
    for part in key.split("."):
        match = _KEY_PART.match(part.strip())
        if match is None:
            raise ScenarioError(key, _MISSING, "is not a dotted key such as banks.city.max_pd or firms.segments.micro.pd[0]")
        steps.append(match.group(1))
        steps += [int(index) for index in re.findall(r"\[([0-9]+)\]", match.group(2))]
    return steps


def value_at(data: Any, key: str) -> Any:
    """The value at a dotted key in scenario data (:meth:`Scenario.to_dict`), or None when there is none."""
    node = data
    for step in key_path(key):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return None
        elif not isinstance(node, dict) or step not in node:
            return None
        node = node[step]
    return node


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    steps = key_path(key)
    node: Any = data
    for depth, (step, following) in enumerate(zip(steps[:-1], steps[1:], strict=True)):
        where = _shown_key(steps[: depth + 1])
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ScenarioError(_shown_key(steps[:depth]), node, f"has no item [{step}], so '{key}' cannot be set")
            child = node[step]
        else:
            child = node.get(step) if isinstance(node, dict) else None
            if child is None:
                child = [] if isinstance(following, int) else {}
                node[step] = child
        if isinstance(following, int) and not isinstance(child, list):
            raise ScenarioError(where, child, f"is not a list, so '{key}' cannot be set")
        if not isinstance(following, int) and not isinstance(child, dict):
            raise ScenarioError(where, child, f"is not a table, so '{key}' cannot be set")
        node = child
    last = steps[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(_shown_key(steps[:-1]), node, f"has no item [{last}], so '{key}' cannot be set")
    node[last] = value


def _shown_key(steps: Sequence[str | int]) -> str:
    """Dotted key text of key steps (indices in brackets)."""
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


_TYPE_RULES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
    "finite_number": "must be finite",
}


def _field_of(error: Any) -> list[str]:
    """The dotted location of a pydantic error, without pydantic's own markers: validators, and the branch of a
    field that takes alternatives ('float', 'str', "literal['in_force', …]", 'dict[str,…]'), which follows the
    field's name (but not a table of named entities, where it is a name)."""
    loc = [str(p) for p in error["loc"]]
    return [p for i, p in enumerate(loc)
            if "function-" not in p and not (i > 0 and loc[i - 1] not in _NAMED_TABLES and _BRANCH.match(p))]


#: Fields that are tables of named entities: what follows them is a name, never a union branch.
_NAMED_TABLES = {"segments", "banks", "guarantors", "reguarantors", "pools", "targets", "channels"}
_BRANCH = re.compile(r"^(float|str|int|bool|literal\[.*\]|dict\[.*\]|tuple\[.*\]|list\[.*\])$")


def _scenario_error(exc: ValidationError) -> ScenarioError:
    """The first validation error, as a one-line ScenarioError naming the dotted field.

    Where a field accepts alternatives (one rate or a table by year) pydantic reports each branch; the
    deepest location under the first error's field names the real culprit.
    """
    errors = exc.errors(include_url=False)
    first = _field_of(errors[0])
    error = max((e for e in errors if _field_of(e)[: len(first)] == first), key=lambda e: len(_field_of(e)))
    loc = _field_of(error)
    kind = error["type"]
    value = error.get("input", _MISSING)
    if loc and loc[-1] == "[key]":  # a bad bank or segment name
        return ScenarioError(".".join(loc[:-2]), loc[-2], str(error["msg"]).removeprefix("Value error, "))
    field = ".".join(loc) or "scenario"
    if kind == "missing":
        return ScenarioError(field, _MISSING, "is required")
    if kind == "extra_forbidden":
        known = _known_fields(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], known, n=1)
        rule = "unknown field" + (f" (did you mean '{hint[0]}'?)" if hint else f"; allowed: {', '.join(known)}" if known else "")
        return ScenarioError(field, value, rule)
    if kind == "value_error":
        return ScenarioError(field, value, str(error["msg"]).removeprefix("Value error, "))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bound = next(iter(error.get("ctx", {}).values()), "?")
        op = {"greater_than_equal": "≥", "less_than_equal": "≤", "greater_than": ">", "less_than": "<"}[kind]
        return ScenarioError(field, value, f"must be {op} {bound}")
    return ScenarioError(field, value, _TYPE_RULES.get(kind) or str(error["msg"]).lower())


def _known_fields(loc: list[str]) -> list[str]:
    """Field names allowed at a location of the schema (for 'did you mean'), walking the schema itself:
    a table of banks or segments consumes the next part of the location as a name, whatever it is."""
    model: Any = Scenario
    parts = iter(loc)
    for part in parts:
        info = model.model_fields.get(part)
        if info is None:
            return []
        inner = _model_of(info.annotation)
        if inner is None:
            return []
        origin = getattr(info.annotation, "__origin__", None)
        if origin in (dict, tuple):
            next(parts, None)  # the bank or segment name, or the index in a list of tables
        model = inner
    return list(model.model_fields)


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------------------------------- rules
def _check_rules(s: Scenario) -> None:
    """Cross-field rules that single fields cannot express."""
    if not s.firms.segments:
        raise ScenarioError("firms.segments", _MISSING, "must hold at least one segment")
    if not s.banks:
        raise ScenarioError("banks", _MISSING, "must hold at least one bank")
    limit = s.firms.inclusive_line_limit
    max_multiplier = max([1.0] + [p.pd_multiplier for p in s.risk.stress])
    for name, seg in s.firms.segments.items():
        f = f"firms.segments.{name}"
        if not seg.pd:
            raise ScenarioError(f"{f}.pd", seg.pd, "must list at least one grade")
        if len(seg.grade_share) != len(seg.pd):
            raise ScenarioError(f"{f}.grade_share", seg.grade_share, f"must have one share per grade ({len(seg.pd)} grades in pd)")
        _check_sum(f"{f}.grade_share", seg.grade_share)
        if seg.rho >= 1.0:
            raise ScenarioError(f"{f}.rho", seg.rho, "must be < 1")
        if seg.line_p90 <= seg.line_median:
            raise ScenarioError(f"{f}.line_p90", seg.line_p90, f"must be > line_median ({seg.line_median:g})")
        if seg.line_median >= limit:
            raise ScenarioError(f"{f}.line_median", seg.line_median, f"must be < firms.inclusive_line_limit ({limit:g})")
        if seg.firms != math.floor(seg.firms):
            raise ScenarioError(f"{f}.firms", seg.firms, "must be a whole number of firms")
        if seg.firms > 0 and round(seg.firms * s.sample) < 1:
            raise ScenarioError("sample", s.sample, f"leaves no firm of segment {name} ({seg.firms:g} firms) in the sample")
        if seg.firms + seg.entry_per_year * s.calendar.months / 12 >= MAX_SEGMENT_FIRMS:
            raise ScenarioError(f"{f}.firms", seg.firms, f"with its entries over the horizon must stay below {MAX_SEGMENT_FIRMS:.0e} firms (the sampler's limit)")
        worst = max(seg.pd) * max_multiplier
        if worst > 1.0:
            raise ScenarioError("risk.stress", max_multiplier, f"makes an annual PD above 1 in segment {name} ({max(seg.pd):g} × {max_multiplier:g})")
    _check_sum("banks.*.share", [b.share for b in s.banks.values()])
    years = range(int(s.calendar.start[:4]), int(s.calendar.start[:4]) + (int(s.calendar.start[5:]) - 1 + s.calendar.months - 1) // 12 + 1)
    for name, bank in s.banks.items():
        f = f"banks.{name}"
        if not bank.term_mix:
            raise ScenarioError(f"{f}.term_mix", bank.term_mix, "must list at least one term")
        for key in bank.term_mix:
            if not _ascii_digits(key) or str(int(key)) != key or not 1 <= int(key) <= 360:
                raise ScenarioError(f"{f}.term_mix.{key}", bank.term_mix[key], "terms must be whole months from 1 to 360, written without leading zeros")
        _check_sum(f"{f}.term_mix", list(bank.term_mix.values()))
        _check_products(f"{f}.product_mix", bank.product_mix)
        _check_sum(f"{f}.product_mix", list(bank.product_mix.values()))
        if bank.rate_per_pd > MAX_RATE_PER_PD:
            raise ScenarioError(f"{f}.rate_per_pd", bank.rate_per_pd, f"must be at most {MAX_RATE_PER_PD:g} (the premium at PD 1 is rate_per_pd, as a fraction)")
        if bank.initial_balance is not None and bank.initial_balance > bank.all_loans:
            raise ScenarioError(f"{f}.initial_balance", bank.initial_balance, f"must be ≤ all_loans ({bank.all_loans:g})")
        _check_by_year(f"{f}.non_inclusive_growth", bank.non_inclusive_growth, years, "rate")
        _check_by_year(f"{f}.small_micro_outside_growth", bank.small_micro_outside_growth, years, "rate")
        if bank.small_micro_outside + (bank.initial_balance or 0.0) > bank.all_loans:
            raise ScenarioError(f"{f}.small_micro_outside", bank.small_micro_outside, f"with initial_balance must be ≤ all_loans ({bank.all_loans:g})")
        _check_by_year(f"{f}.other_npl_ratio", bank.other_npl_ratio, [(s.start_index - 1) // 12, *years], "ratio", " (the opening's year and every simulated year)")
    _check_by_year("demand.growth", s.demand.growth, years, "rate")
    if not 1.0 <= s.demand.loans_per_borrower <= MAX_LOANS_PER_BORROWER:
        raise ScenarioError("demand.loans_per_borrower", s.demand.loans_per_borrower, f"must be between 1 and {MAX_LOANS_PER_BORROWER:g}")
    _check_applications(s)
    _check_products("risk.lgd", s.risk.lgd, complete=True)
    if 0 < s.risk.lgd_sd < MIN_LGD_SD:
        raise ScenarioError("risk.lgd_sd", s.risk.lgd_sd, f"must be 0 (a fixed LGD) or at least {MIN_LGD_SD:g}")
    for product, mean in s.risk.lgd.items():
        if s.risk.lgd_sd > 0 and s.risk.lgd_sd >= math.sqrt(mean * (1 - mean)):
            raise ScenarioError("risk.lgd_sd", s.risk.lgd_sd, f"must be < sqrt(m(1−m)) = {math.sqrt(mean * (1 - mean)):.4g} for the mean LGD of {product} ({mean:g})")
    dates = [month_index(p.date) for p in s.risk.stress]
    for i in range(1, len(dates)):
        if dates[i] <= dates[i - 1]:
            raise ScenarioError(f"risk.stress.{i}.date", s.risk.stress[i].date, "stress dates must be in increasing order")
    _check_names("campaign.segments", s.campaign.segments, list(s.firms.segments), "segment")
    if s.renewal:
        _check_names("renewal.segments", s.renewal.segments, list(s.firms.segments), "segment")
        _check_names("renewal.products", s.renewal.products, list(PRODUCTS), "product")
        for name in s.renewal.until_by_segment:
            if name not in s.firms.segments:
                raise ScenarioError(f"renewal.until_by_segment.{name}", s.renewal.until_by_segment[name], f"unknown segment; segments are {', '.join(s.firms.segments)}")
    for name, channel in s.campaign.channels.items():
        if channel.bank is not None and channel.bank not in s.banks:
            raise ScenarioError(f"campaign.channels.{name}.bank", channel.bank, f"unknown bank; banks are {', '.join(s.banks)}")
        if channel.line_scale <= 0:
            raise ScenarioError(f"campaign.channels.{name}.line_scale", channel.line_scale, "must be > 0")
    if s.campaign.start and s.campaign.end and month_index(s.campaign.end) < month_index(s.campaign.start):
        raise ScenarioError("campaign.end", s.campaign.end, f"must not be before campaign.start ({s.campaign.start})")
    _check_guarantees(s)
    _check_assessment(s)
    _check_targets(s)
    if s.risk.write_off_months < s.risk.recovery_lag_months:
        raise ScenarioError("risk.write_off_months", s.risk.write_off_months, f"must be ≥ risk.recovery_lag_months ({s.risk.recovery_lag_months})")
    from .population import initial_population  # checks that the banked firms fit the banks' risk appetite

    initial_population(s)
    if s.sample < 1.0:  # and so do those of the sample the engine runs (rounding can leave a grade short)
        initial_population(s.sampled())


def _check_applications(s: Scenario) -> None:
    """Each segment's applications a month, grown at demand.growth, stay within MAX_COUNT over the run."""
    from .population import application_growth

    peak = float(application_growth(s).max())
    for name, seg in s.firms.segments.items():
        if seg.applications_per_month * peak > MAX_COUNT:
            raise ScenarioError(f"firms.segments.{name}.applications_per_month", seg.applications_per_month,
                                f"grown at demand.growth reaches {seg.applications_per_month * peak:.3g} a month, more than {MAX_COUNT:.0e}")


def _check_guarantees(s: Scenario) -> None:
    """Guarantee rules: fee cap, the bank's 20%, re-guarantee shares, names, lags and top-ups."""
    names = [*s.banks, *s.guarantors, *s.reguarantors, *s.pools]
    for name in s.guarantors:
        if names.count(name) > 1:
            raise ScenarioError(f"guarantors.{name}", name, "a guarantor may not share its name with a bank or re-guarantor")
    for name in s.reguarantors:
        if names.count(name) > 1:
            raise ScenarioError(f"reguarantors.{name}", name, "a re-guarantor may not share its name with a bank or guarantor")
    for name, g in s.guarantors.items():
        f = f"guarantors.{name}"
        if g.fee_rate > g.fee_cap:
            raise ScenarioError(f"{f}.fee_rate", g.fee_rate, f"must not exceed fee_cap ({g.fee_cap:g})")
        if g.fee_subsidy > g.fee_rate:
            raise ScenarioError(f"{f}.fee_subsidy", g.fee_subsidy, f"must not exceed fee_rate ({g.fee_rate:g})")
        if g.coverage > 0.8:
            raise ScenarioError(f"{f}.coverage", g.coverage, "must leave the bank at least 20% (≤ 0.8)")
        if g.leverage_cap < 1 or g.leverage_cap > 15:
            raise ScenarioError(f"{f}.leverage_cap", g.leverage_cap, "must be between 1 and 15 (国务院令第683号 Art. 15)")
        if g.claim_lag_months > s.risk.write_off_months:
            raise ScenarioError(f"{f}.claim_lag_months", g.claim_lag_months, f"must not exceed risk.write_off_months ({s.risk.write_off_months})")
        for key in g.reguarantee:
            if key not in s.reguarantors:
                raise ScenarioError(f"{f}.reguarantee.{key}", g.reguarantee[key], f"unknown re-guarantor; re-guarantors are {', '.join(s.reguarantors) or 'none'}")
        if math.fsum(g.reguarantee.values()) > 1 + 1e-9:
            raise ScenarioError(f"{f}.reguarantee", round(math.fsum(g.reguarantee.values()), 9), "shares passed on must not exceed 1")
        _check_names(f"{f}.banks", g.banks, list(s.banks), "bank")
        _check_names(f"{f}.segments", g.segments, list(s.firms.segments), "segment")
        if g.top_up is not None and g.top_up.to <= g.top_up.below:
            raise ScenarioError(f"{f}.top_up.to", g.top_up.to, f"must be above top_up.below ({g.top_up.below:g})")
    for name, pool in s.pools.items():
        f = f"pools.{name}"
        if pool.leverage > MAX_POOL_LEVERAGE:
            raise ScenarioError(f"{f}.leverage", pool.leverage, f"must be at most {MAX_POOL_LEVERAGE:g} (pools lever their balance 5–10×)")
        if names.count(name) > 1:
            raise ScenarioError(f, name, "a pool may not share its name with a bank, guarantor or re-guarantor")
        for key in pool.contributions:
            if key not in ("government", "guarantor", "bank"):
                raise ScenarioError(f"{f}.contributions.{key}", pool.contributions[key], "contributors are government, guarantor and bank")
        _check_sum(f"{f}.contributions", list(pool.contributions.values()))
        _check_names(f"{f}.banks", pool.banks, list(s.banks), "bank")
        _check_names(f"{f}.segments", pool.segments, list(s.firms.segments), "segment")
        _check_names(f"{f}.products", pool.products, list(PRODUCTS), "product")
        if "guaranteed" in pool.products:
            raise ScenarioError(f"{f}.products", list(pool.products), "a pool covers loans without a guarantee: leave out 'guaranteed'")
    if s.interest_subsidy is not None:
        sub = s.interest_subsidy
        _check_names("interest_subsidy.segments", sub.segments, list(s.firms.segments), "segment")
        _check_names("interest_subsidy.banks", sub.banks, list(s.banks), "bank")
        for name, bank in s.banks.items():
            if (sub.banks is None or name in sub.banks) and sub.rate > bank.rate:
                raise ScenarioError("interest_subsidy.rate", sub.rate, f"must not exceed the rate of bank {name} ({bank.rate:g})")


def rates_by_year(value: float | dict[str, float], years: Sequence[int] | np.ndarray) -> np.ndarray:
    """A field given as one rate or as a table by year ('2021' = rate), as the rate of each of ``years``."""
    years = np.asarray(years)
    return np.array([value[str(y)] for y in years.tolist()]) if isinstance(value, dict) else np.full(years.shape, float(value))


def _check_by_year(field: str, value: float | dict[str, float], years: Sequence[int], what: str, which: str = "") -> None:
    """A rate given as a table by year must be keyed by years ('2021') and cover ``years``."""
    if not isinstance(value, dict):
        return
    for key in value:
        if not (_ascii_digits(key) and len(key) == 4):
            raise ScenarioError(f"{field}.{key}", value[key], "keys must be years such as '2021'")
    missing = [str(y) for y in dict.fromkeys(years) if str(y) not in value]
    if missing:
        raise ScenarioError(field, _MISSING, f"has no {what} for year {missing[0]}{which}")


def _check_assessment(s: Scenario) -> None:
    rule = s.assessment.rule
    if isinstance(rule, dict):
        if not rule:
            raise ScenarioError("assessment.rule", {}, "a table by year must name at least one year (write 'none' to assess no year)")
        for key in rule:
            if not (_ascii_digits(key) and len(key) == 4):
                raise ScenarioError(f"assessment.rule.{key}", rule[key], "keys must be years such as '2021'")


def _check_targets(s: Scenario) -> None:
    """Each target names a known metric, measures it in a way its kind allows, over a date or an ordered period,
    on entities the metric is reported for. (A target outside the run is valid: it is reported as not assessed.)"""
    from .metrics import METRICS

    kinds = {m.name: m for m in METRICS}
    for name, target in s.targets.items():
        f = f"targets.{name}"
        m = kinds.get(target.metric)
        if m is None:
            hint = difflib.get_close_matches(target.metric, list(kinds), n=1)
            raise ScenarioError(f"{f}.metric", target.metric, "unknown metric" + (f" (did you mean '{hint[0]}'?)" if hint else "; see docs/reference/metrics.md"))
        allowed = {"stock": ("stock",), "increase": ("stock",), "cumulative": ("flow",), "average": ("stock", "flow", "ratio"), "ratio": ("ratio",)}[target.measure]
        if m.kind not in allowed:
            raise ScenarioError(f"{f}.measure", target.measure, f"cannot measure {target.metric}, a {m.kind} metric (use {_measures_for(m.kind)})")
        at_date = target.measure in ("stock", "ratio")
        for field, needed in (("date", at_date), ("start", not at_date), ("end", not at_date)):
            value = getattr(target, field)
            if needed and value is None:
                raise ScenarioError(f"{f}.{field}", _MISSING, f"is required for a {target.measure} target")
            if not needed and value is not None:
                raise ScenarioError(f"{f}.{field}", value, f"does not apply to a {target.measure} target (use {'date' if at_date else 'start and end'})")
        if not at_date and target.start is not None and target.end is not None and month_index(target.end) < month_index(target.start):
            raise ScenarioError(f"{f}.end", target.end, f"must not be before start ({target.start})")
        try:
            parse_quantity(target.threshold, m.unit)
        except ValueError as exc:
            raise ScenarioError(f"{f}.threshold", target.threshold, f"{exc} ({target.metric} is in {m.unit})") from None
        known = {"bank": s.bank_names, "guarantor": list(s.guarantors), "reguarantor": list(s.reguarantors), "pool": list(s.pools), "population": []}[m.scope]
        scope = (target.scope,) if isinstance(target.scope, str) else target.scope
        if not scope:
            raise ScenarioError(f"{f}.scope", [], "must name at least one entity, or be 'all'")
        for entity in scope:
            if entity != "all" and entity not in known:
                raise ScenarioError(f"{f}.scope", entity, f"{target.metric} is reported for {', '.join([*known, 'all'])}")
        if len(scope) > 1 and "all" in scope:
            raise ScenarioError(f"{f}.scope", list(scope), "'all' cannot be part of a list")
        if len(set(scope)) < len(scope):
            raise ScenarioError(f"{f}.scope", list(scope), "names an entity twice")


def _measures_for(kind: str) -> str:
    return {"stock": "stock, increase or average", "flow": "cumulative or average", "ratio": "ratio or average"}.get(kind, "average")


def _check_names(field: str, given: Sequence[str] | None, known: list[str], what: str) -> None:
    """A list of names, when given, must name at least one item and only known ones."""
    if given is None:
        return
    if not given:
        raise ScenarioError(field, [], f"must list at least one {what} (leave it out for all)")
    for i, item in enumerate(given):
        if item not in known:
            raise ScenarioError(f"{field}.{i}", item, f"unknown {what}; {what}s are {', '.join(known)}")
        if item in given[:i]:
            raise ScenarioError(f"{field}.{i}", item, f"names {what} {item} twice")


def _ascii_digits(key: str) -> bool:
    """Whether a key is written in the digits 0–9 only (``str.isdigit`` also accepts '²' and '２')."""
    return key.isascii() and key.isdigit()


def _check_sum(field: str, values: Sequence[float]) -> None:
    total = math.fsum(values)
    if abs(total - 1.0) > 1e-6:
        raise ScenarioError(field, round(total, 9), "shares must sum to 1")


def _check_products(field: str, table: dict[str, float], complete: bool = False) -> None:
    for key in table:
        if key not in PRODUCTS:
            hint = difflib.get_close_matches(key, PRODUCTS, n=1)
            raise ScenarioError(f"{field}.{key}", table[key], "unknown product" + (f" (did you mean '{hint[0]}'?)" if hint else f"; products are {', '.join(PRODUCTS)}"))
    if complete:
        for product in PRODUCTS:
            if product not in table:
                raise ScenarioError(f"{field}.{product}", _MISSING, "is required (one value per product)")


# --------------------------------------------------------------------------------------------------- reference
def reference_markdown() -> str:
    """The scenario field reference as Markdown, generated from the schema (``docs/reference/scenario.md``)."""
    lines = [
        "# Scenario file reference",
        "",
        "Generated from `creditsim/scenario.py` by `creditsim.scenario.reference_markdown()`; a test keeps this file",
        "equal to it. Amounts accept plain CNY or strings with 万/亿/万亿 (`\"300亿\"`, `\"800万元\"`); rates and shares",
        "accept `0.008` or `\"0.8%\"`; counts accept `15000` or `\"1.5万\"`; months are `\"YYYY-MM\"`. Unknown keys, wrong",
        "types, NaN/inf and values out of range are errors naming the dotted field. A scenario file is UTF-8 TOML of at",
        f"most {MAX_SCENARIO_BYTES // 1024**2} MiB (`MAX_SCENARIO_BYTES`); it is only parsed as data, never executed.",
        "Amounts may be at most 1000万亿 (`MAX_AMOUNT`, four times China's bank loans) and counts at most 10亿",
        "(`MAX_COUNT`); growth rates at most 1000% a year: a larger value is a slip of units (30 for 30%).",
        "",
        "Before a run starts, its memory is estimated (`creditsim.memory`): the results of every path and, for each",
        "local worker, the engine's rows for the borrowers a path holds at its peak. A run that would not fit in the",
        "memory available is refused, naming `paths`, `sample` or `workers`.",
        "",
    ]
    sections: list[tuple[str, type[BaseModel]]] = [
        ("(top level)", Scenario),
        ("[calendar]", Calendar),
        ("[firms]", Firms),
        ("[firms.segments.NAME]", Segment),
        ("[banks.NAME]", Bank),
        ("[demand]", Demand),
        ("[risk]", Risk),
        ("[[risk.stress]]", StressPoint),
        ("[liquidity]", Liquidity),
        ("[renewal]", Renewal),
        ("[campaign]", Campaign),
        ("[campaign.channels.NAME]", Channel),
        ("[guarantors.NAME]", Guarantor),
        ("[[guarantors.NAME.injections]]", Injection),
        ("[guarantors.NAME.top_up]", TopUp),
        ("[reguarantors.NAME]", Reguarantor),
        ("[pools.NAME]", Pool),
        ("[interest_subsidy]", InterestSubsidy),
        ("[assessment]", Assessment),
        ("[targets.NAME]", Target),
    ]
    for title, model in sections:
        lines += [f"## {title}", "", (model.__doc__ or "").strip().splitlines()[0], "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            if _model_of(info.annotation) is not None and name not in ("segments", "banks", "stress", "channels", "renewal", "guarantors", "reguarantors", "injections", "top_up", "pools", "interest_subsidy", "targets"):
                continue
            default = "required" if info.is_required() else _toml_default(info)
            scaled = " Scaled by `sample`." if isinstance(info.json_schema_extra, dict) and "sampled" in info.json_schema_extra else ""
            lines.append(f"| `{name}` | {_type_name(info.annotation, info.metadata)} | {default} | {info.description or ''}{scaled} |")
        lines.append("")
    return "\n".join(lines)


def _toml_default(info: Any) -> str:
    """A field's default as it would be written in TOML (``none`` when it has no value)."""
    value = info.default_factory() if info.default_factory is not None else info.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, (tuple, list)):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else f"{v:g}" for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _type_name(annotation: Any, metadata: list[Any]) -> str:
    text = repr(annotation) + repr(metadata)
    if annotation == (float | str):
        return "number, amount ('1000亿'), count ('1.5万户') or rate ('1%')"
    if text.startswith("typing.Union[typing.Annotated[float") and "dict[" in text:
        return _type_name(annotation.__args__[0], []) + ", or a table of them by year"
    for marker, name in (
        ("_probability", "share/rate in [0, 1]"),
        ("_growth", "rate in (−100%, 1000%]"),
        ("_positive_amount", "amount (CNY) in (0, 1000万亿]"),
        ("parse_amount", "amount (CNY) in [0, 1000万亿]"),
        ("parse_count", "count in [0, 10亿]"),
        ("parse_month", "month 'YYYY-MM'"),
        ("_non_negative", "number ≥ 0"),
        ("_sample", "fraction in (0, 1] or ratio '1:N'"),
    ):
        if marker in text:
            if text.startswith("dict"):
                return f"table of {name}"
            if text.startswith("tuple"):
                return f"list of {name}"
            return name
    if annotation is int:
        low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in metadata if hasattr(m, "le")), None)
        if low is not None and high is not None:
            return f"integer in [{low}, {high}]"
        return "integer" if low is None else f"integer ≥ {low}"
    if annotation is bool:
        return "true or false"
    if annotation is str or text.startswith("typing.Optional[str]") or text.startswith("str | None"):
        return "string"
    if "str | tuple[str, ...]" in text:
        return "name or list of names"
    if "tuple[str, ...]" in text:
        return "list of names"
    if "Channel" in text:
        return "table of channels"
    if "Reguarantor" in text:
        return "table of re-guarantors"
    if "Pool" in text:
        return "table of pools"
    if "InterestSubsidy" in text:
        return "table"
    if "Guarantor" in text:
        return "table of guarantors"
    if "Injection" in text:
        return "array of tables"
    if "TopUp" in text:
        return "table"
    if "Target" in text:
        return "table of targets"
    if "Assessment" in text:
        return "table"
    if text.startswith("typing.Union[typing.Literal") and "dict[" in text:
        return "one of " + ", ".join(f"`{a}`" for a in annotation.__args__[0].__args__) + ", or a table of them by year"
    if "Literal" in text:
        return " \\| ".join(f"`{a}`" for a in annotation.__args__)
    if "Segment" in text:
        return "table of segments"
    if "Bank" in text:
        return "table of banks"
    if "StressPoint" in text:
        return "array of tables"
    if "Renewal" in text:
        return "table"
    raise TypeError(f"no reference name for the field type {text}")
