"""The parameters of a run: the validated scenario compiled once into frozen arrays the compiled engine reads.

:func:`parameters` turns a (sampled) :class:`~creditsim.scenario.Scenario` into a :class:`Params`, a named tuple of
named tuples of numpy arrays and numbers, one per part of the model. Everything that varies with the calendar is an
array indexed by month ``t`` (0 the opening, 1..M the simulated months), so a later model can make any of them a
path by year. The arrays are read-only: a run cannot change its parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple

import numpy as np
from numba import njit

from ..scenario import FACTOR_MONTHS, PRODUCTS, Scenario, admitted
from ..scenario.growth import application_growth, growth_factor, rates_by_year
from ..scenario.opening import InitialPopulation, grade_table, initial_population, line_parameters
from ..scenario.units import month_index
from .columns import FEN
from .instruments import guarantees, pools, subsidy
from .instruments.guarantees import GuaranteeParams
from .instruments.pools import PoolParams
from .instruments.subsidy import SubsidyParams
from .random import ndtr
from .structs import BOOL, FLOAT, FROZEN_BOOL_1, FROZEN_BOOL_2, FROZEN_FLOAT_1, FROZEN_FLOAT_2, FROZEN_INT_1, FROZEN_INT_3, INT, register

__all__ = ["Params", "Calendar", "FirmParams", "BankParams", "RiskParams", "RenewalParams", "CampaignParams", "ReliefParams", "PressureParams", "TapeParams", "parameters",
           "NO_LAST_MONTH", "APPLICANT", "line_kind"]

#: The month index used for "renewal without an end date".
NO_LAST_MONTH = month_index("2200-12")


class Calendar(NamedTuple):
    """Months: t = 0 is the opening, t = 1..M the simulated months."""

    months: Annotated[int, INT]                   # M
    horizon: Annotated[int, INT]                  # rows of the filing arrays: months 0 .. M + the most write_off_months
    month_index: Annotated[np.ndarray, FROZEN_INT_1]       # (M + 2,) int64: calendar month index of month t (see creditsim.scenario.units.month_index)
    january: Annotated[np.ndarray, FROZEN_BOOL_1]           # (M + 2,) bool: month t is a January


class FirmParams(NamedTuple):
    """The firm population: cohorts (segment × grade), demand, credit lines and the opening position."""

    pd: Annotated[np.ndarray, FROZEN_FLOAT_2]                # (S, G) true annual PD
    pd_logit: Annotated[np.ndarray, FROZEN_FLOAT_2]          # (S, G) logit of it (-inf at PD 0)
    grade_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (S, G) cumulative grade shares (last column +inf): an entrant's grade
    rho: Annotated[np.ndarray, FROZEN_FLOAT_1]               # (S,) asset correlation
    factor_months: Annotated[int, INT]            # months per period of the systematic factor
    stress: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (M + 1,) PD multiplier in force in month t
    entries: Annotated[np.ndarray, FROZEN_FLOAT_1]           # (S,) firms registered a month (Poisson mean)
    exit_prob: Annotated[np.ndarray, FROZEN_FLOAT_1]         # (S,) monthly probability that a firm without a loan closes
    stay: Annotated[np.ndarray, FROZEN_FLOAT_2]              # (S, M + 2): (1 − exit_prob)^n, staying n months
    applications: Annotated[np.ndarray, FROZEN_FLOAT_1]      # (S,) applications a month before growth (Poisson mean)
    application_growth: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (M + 1,) growth factor of applications in month t
    line_mu: Annotated[np.ndarray, FROZEN_FLOAT_1]           # (S,) log-median of the credit line (CNY)
    line_sigma: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (S,) log-sd of the credit line
    line_shift: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (K,) log-shift of the line of each kind of new borrower (see line_kind)
    line_within: Annotated[np.ndarray, FROZEN_FLOAT_2]       # (S, K) probability that such a line is within the inclusive limit
    log_limit: Annotated[float, FLOAT]              # log of the inclusive line limit (CNY)
    limit: Annotated[float, FLOAT]                  # the inclusive line limit, fen
    term_growth: Annotated[np.ndarray, FROZEN_FLOAT_2]       # (S, longest term + 1): growth of a loan re-borrowed after k months
    known_history: Annotated[int, INT]            # repaid loans banks are taken to have seen from firms that borrowed before
    signal_sd: Annotated[float, FLOAT]              # log-odds sd of a bank's error about a firm without history
    extra_loans: Annotated[float, FLOAT]            # mean loans per borrower less one
    reborrow_prob: Annotated[float, FLOAT]
    opening_borrowers: Annotated[np.ndarray, FROZEN_INT_3]  # (S, G, B) int64
    opening_unbanked: Annotated[np.ndarray, FROZEN_INT_3]  # (S, G, states) int64: firms without a loan by state
    seasoned: Annotated[bool, BOOL]                # opening loans are seasoned (random age, length-biased terms)


class BankParams(NamedTuple):
    """The banks (B of them) and their products."""

    share_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (1, B) cumulative shares (last +inf): an applicant's bank
    max_pd: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (B,) risk appetite
    rate: Annotated[np.ndarray, FROZEN_FLOAT_2]              # (B, M + 1) annual rate before the risk premium of a loan made in month t (0: before the run, the opening's year)
    rate_per_pd: Annotated[np.ndarray, FROZEN_FLOAT_1]       # (B,) risk premium per unit of believed PD
    uptake: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (B,) renewal uptake
    terms: Annotated[np.ndarray, FROZEN_INT_1]             # (K,) int64, months
    term_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]   # (B, K) (last +inf)
    seasoned_term_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (B, K) length-biased, for the opening book
    term_choices: Annotated[np.ndarray, FROZEN_INT_1]      # (B,) int64: terms with a positive share
    product_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (B, products) (last +inf)
    product_choices: Annotated[np.ndarray, FROZEN_INT_1]   # (B,) int64: products with a positive share
    without_guarantee: Annotated[np.ndarray, FROZEN_INT_1]  # (B,) int64: the product of a new loan left without the guarantee it wanted
    product_share: Annotated[np.ndarray, FROZEN_FLOAT_2]     # (B, products) product_mix (the opening NPL stock's mix)
    opening_npl_ratio: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (B,) NPL share of the inclusive book at the start
    all_loans: Annotated[np.ndarray, FROZEN_FLOAT_1]         # (B,) all the bank's loans at the start, fen
    other_growth: Annotated[np.ndarray, FROZEN_FLOAT_2]      # (M + 1, B) growth factor of the loans outside the inclusive book
    small_micro_outside: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (B,) small-micro loans outside the inclusive book at the start, fen
    small_micro_growth: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (M + 1, B)
    first_loans_outside: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (B,) first loans outside the inclusive book a month, fen


class RiskParams(NamedTuple):
    """Losses and their timing, and liquidity stress at maturity."""

    lgd_mean: Annotated[np.ndarray, FROZEN_FLOAT_1]          # (products,)
    lgd_a: Annotated[np.ndarray, FROZEN_FLOAT_1]             # (products,) Beta shape parameters (when lgd_random)
    lgd_b: Annotated[np.ndarray, FROZEN_FLOAT_1]
    lgd_random: Annotated[bool, BOOL]
    recovery_lag: Annotated[int, INT]
    write_off: Annotated[np.ndarray, FROZEN_INT_1]  # (M + 1,) months from a default in month t to its write-off (0: the opening stock's)
    stress_prob: Annotated[float, FLOAT]            # liquidity stress of a solvent firm at a maturity
    bridge_share: Annotated[float, FLOAT]
    bridge_cost: Annotated[float, FLOAT]


class RenewalParams(NamedTuple):
    """无还本续贷: which maturing loans may be renewed."""

    on: Annotated[bool, BOOL]
    last_month: Annotated[np.ndarray, FROZEN_INT_1]        # (S,) int64: the last calendar month a segment's loans may be renewed (-1: never)
    product_ok: Annotated[np.ndarray, FROZEN_BOOL_1]        # (products,) bool
    max_term: Annotated[int, INT]
    max_consecutive: Annotated[int, INT]
    min_months_on_book: Annotated[int, INT]
    max_pd: Annotated[float, FLOAT]


class CampaignParams(NamedTuple):
    """The 首贷 campaign's channels (C of them)."""

    reach: Annotated[np.ndarray, FROZEN_FLOAT_1]             # (C,) firms reached a month (Poisson mean)
    need: Annotated[np.ndarray, FROZEN_FLOAT_1]              # (C,) share of reached firms that apply
    bank: Annotated[np.ndarray, FROZEN_INT_1]              # (C,) int64: the channel's bank (-1: by share)
    max_pd: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (C,) the channel's appetite (NaN: the bank's)
    listed: Annotated[np.ndarray, FROZEN_BOOL_1]            # (S,) bool: segments on the 无贷户 list
    first: Annotated[int, INT]                    # first and last month (t) the campaign runs
    last: Annotated[int, INT]
    list_size: Annotated[float, FLOAT]              # firms on the list (inf: no limit)


class ReliefParams(NamedTuple):
    """Dated relief: D windows of principal deferral (延期还本付息) and L windows of relief lending; months as t."""

    deferral_first: Annotated[np.ndarray, FROZEN_INT_1]     # (D,) int64: first month (t) a maturity may be deferred
    deferral_last: Annotated[np.ndarray, FROZEN_INT_1]      # (D,) int64: last month
    deferral_months: Annotated[np.ndarray, FROZEN_INT_1]    # (D,) int64: months a deferred maturity moves out
    deferral_uptake: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (D,) share of eligible borrowers deferred
    deferral_max_pd: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (D,) highest believed PD of an eligible borrower
    deferral_bank: Annotated[np.ndarray, FROZEN_BOOL_2]     # (D, B) bool: banks that defer
    deferral_segment: Annotated[np.ndarray, FROZEN_BOOL_2]  # (D, S) bool: eligible segments
    lending_first: Annotated[np.ndarray, FROZEN_INT_1]      # (L,) int64: first month (t) of relief lending
    lending_last: Annotated[np.ndarray, FROZEN_INT_1]       # (L,) int64: last month
    lending_applications: Annotated[np.ndarray, FROZEN_FLOAT_1]  # (L,) extra applications a month (Poisson mean)
    lending_max_pd: Annotated[np.ndarray, FROZEN_FLOAT_1]   # (L,) the relief appetite (NaN: the bank's)
    lending_segment: Annotated[np.ndarray, FROZEN_BOOL_2]   # (L, S) bool: eligible segments
    lending_bank_cumulative: Annotated[np.ndarray, FROZEN_FLOAT_2]  # (L, B) cumulative shares of the lending banks (last +inf)


class PressureParams(NamedTuple):
    """Policy pressure on new lending (:mod:`.pressure`); months as t."""

    on: Annotated[bool, BOOL]
    share: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (B,) the banks' shares of applications
    target: Annotated[np.ndarray, FROZEN_FLOAT_2]           # (M + 1, B) a bank's mandated growth in month t's year (NaN: none)
    yardstick: Annotated[np.ndarray, FROZEN_BOOL_1]         # (M + 1,) bool: month t's year holds the banks to their all-loan growth
    full_gap: Annotated[float, FLOAT]                       # shortfall (share of the pace) of full pressure
    appetite: Annotated[float, FLOAT]                       # max_pd × (1 + appetite × π)
    outreach: Annotated[float, FLOAT]                       # extra applications: outreach × π × the bank's share of applications


class TapeParams(NamedTuple):
    """The banks' loan tapes (:class:`creditsim.scenario.loan_tape.OpeningTapes`): F performing firms opening with
    their L loans, and N non-performing loans in the loss pipeline; money in fen."""

    bank: Annotated[np.ndarray, FROZEN_INT_1]              # (F,) int64: a performing firm's bank
    segment: Annotated[np.ndarray, FROZEN_INT_1]           # (F,) int64
    grade: Annotated[np.ndarray, FROZEN_INT_1]             # (F,) int64
    age: Annotated[np.ndarray, FROZEN_INT_1]               # (F,) int64: months since its loans were made, at the opening
    term: Annotated[np.ndarray, FROZEN_INT_1]              # (F,) int64: its loans' term, months
    first: Annotated[np.ndarray, FROZEN_INT_1]             # (F + 1,) int64: firm f's loans are first[f] .. first[f + 1] - 1
    amount: Annotated[np.ndarray, FROZEN_FLOAT_1]            # (L,) a loan's principal, fen
    product: Annotated[np.ndarray, FROZEN_INT_1]           # (L,) int64
    cover: Annotated[np.ndarray, FROZEN_INT_1]             # (L,) int64: its guarantor, G + its pool, or -1
    npl_bank: Annotated[np.ndarray, FROZEN_INT_1]          # (N,) int64
    npl_product: Annotated[np.ndarray, FROZEN_INT_1]       # (N,) int64
    npl_age: Annotated[np.ndarray, FROZEN_INT_1]           # (N,) int64: months since its default, at the opening
    npl_amount: Annotated[np.ndarray, FROZEN_FLOAT_1]        # (N,) what the bank carries of it, fen
    npl_firm: Annotated[np.ndarray, FROZEN_BOOL_1]          # (N,) bool: its firm's first non-performing loan


@register
class Params(NamedTuple):
    """Everything a path needs to know, compiled once per run."""

    calendar: Calendar
    firms: FirmParams
    banks: BankParams
    risk: RiskParams
    renewal: RenewalParams
    campaign: CampaignParams
    relief: ReliefParams
    pressure: PressureParams
    guarantees: GuaranteeParams
    pools: PoolParams
    subsidy: SubsidyParams
    tape: TapeParams
    audit: Annotated[bool, BOOL]


def parameters(scenario: Scenario, audit: bool = False, opening: InitialPopulation | None = None) -> Params:
    """Compile a scenario the engine runs (already sampled, see :func:`creditsim.scenario.sampling.sampled`).

    Parameters
    ----------
    scenario : Scenario
    audit : bool
        Recount every running total from the books after each month (slow; for tests).
    opening : InitialPopulation, optional
        The scenario's opening position (computed when omitted).
    """
    s = scenario
    months = s.calendar.months
    start = opening if opening is not None else initial_population(s)
    segments, banks = list(s.firms.segments.values()), list(s.banks.values())
    pd, share = grade_table(s)
    mu, sigma = line_parameters(s)
    t = np.arange(months + 2)
    calendar_month = s.start_index + t - 1
    stress = np.ones(months + 1)
    for point in s.risk.stress:
        stress[calendar_month[: months + 1] >= month_index(point.date)] = point.pd_multiplier
    with np.errstate(divide="ignore"):
        pd_logit = np.log(pd) - np.log1p(-pd)
    terms = np.array(sorted({int(k) for b in banks for k in b.term_mix}), dtype=np.int64)
    tapes = start.tapes
    longest = int(max(terms.max(), tapes.term.max(initial=0)))
    term_weights = np.array([[b.term_mix.get(str(k), 0.0) for k in terms] for b in banks])
    product_weights = np.array([[b.product_mix.get(p, 0.0) for p in PRODUCTS] for b in banks])
    lgd_mean = np.array([s.risk.lgd[p] for p in PRODUCTS])
    sd = s.risk.lgd_sd
    concentration = lgd_mean * (1.0 - lgd_mean) / sd**2 - 1.0 if sd > 0 else np.zeros(len(PRODUCTS))
    campaign, channels = s.campaign, list(s.campaign.channels.values())
    renewal = s.renewal
    renewal_on = renewal is not None and renewal.enabled
    until = [renewal.until_by_segment.get(name) or renewal.until for name in s.segment_names] if renewal else []
    shifts = np.concatenate([[0.0], np.asarray(start.line_shift, dtype=np.float64), [math.log(c.line_scale) for c in channels]])
    exit_prob = np.array([-math.expm1(math.log1p(-x.exit_rate) / 12.0) if x.exit_rate < 1.0 else 1.0 for x in segments])
    write_off = rates_by_year(s.risk.write_off_months, (s.start_index - 1 + np.arange(months + 1)) // 12).astype(np.int64)
    params = Params(
        calendar=Calendar(months=months, horizon=months + int(write_off.max()) + 1, month_index=calendar_month.astype(np.int64),
                          january=(calendar_month % 12 == 0)),
        firms=FirmParams(
            pd=pd, pd_logit=pd_logit, grade_cumulative=_cumulative(share), rho=np.array([x.rho for x in segments]),
            factor_months=FACTOR_MONTHS[s.risk.factor_frequency], stress=stress,
            entries=np.array([x.entry_per_year / 12.0 for x in segments]),
            exit_prob=exit_prob, stay=(1.0 - exit_prob[:, None]) ** np.arange(months + 2)[None, :],
            applications=np.array([x.applications_per_month for x in segments]), application_growth=application_growth(s),
            line_mu=mu, line_sigma=sigma, line_shift=shifts, line_within=_within(mu, sigma, math.log(s.firms.inclusive_line_limit), shifts),
            log_limit=math.log(s.firms.inclusive_line_limit), limit=s.firms.inclusive_line_limit * FEN,
            term_growth=(1.0 + np.array([x.line_growth for x in segments]))[:, None] ** (np.arange(longest + 1) / 12.0)[None, :],
            known_history=int(s.risk.known_history_loans),
            signal_sd=float(s.risk.signal_sd), extra_loans=float(s.demand.loans_per_borrower - 1.0), reborrow_prob=float(s.demand.reborrow_prob),
            opening_borrowers=start.borrowers.astype(np.int64), opening_unbanked=start.pool.astype(np.int64),
            seasoned=s.firms.opening_book == "seasoned",
        ),
        banks=BankParams(
            share_cumulative=_cumulative(np.array([[b.share for b in banks]])), max_pd=np.array([b.max_pd for b in banks]),
            rate=np.array([rates_by_year(b.rate, (s.start_index - 1 + np.arange(months + 1)) // 12) for b in banks]), rate_per_pd=np.array([b.rate_per_pd for b in banks]),
            uptake=np.array([b.renewal_uptake for b in banks]), terms=terms, term_cumulative=_cumulative(term_weights),
            seasoned_term_cumulative=_cumulative(term_weights * terms), term_choices=(term_weights > 0).sum(axis=1).astype(np.int64),
            product_cumulative=_cumulative(product_weights), product_choices=(product_weights > 0).sum(axis=1).astype(np.int64),
            without_guarantee=np.array([PRODUCTS.index(b.without_guarantee) for b in banks], np.int64),
            product_share=product_weights, opening_npl_ratio=np.array([b.opening_npl_ratio for b in banks]),
            all_loans=np.array([b.all_loans * FEN for b in banks]),
            other_growth=np.column_stack([growth_factor(s, b.non_inclusive_growth) for b in banks]),
            small_micro_outside=np.array([b.small_micro_outside * FEN for b in banks]),
            small_micro_growth=np.column_stack([growth_factor(s, b.small_micro_outside_growth) for b in banks]),
            first_loans_outside=np.array([b.first_loans_outside * FEN / 12.0 for b in banks]),
        ),
        risk=RiskParams(
            lgd_mean=lgd_mean, lgd_a=lgd_mean * concentration, lgd_b=(1.0 - lgd_mean) * concentration, lgd_random=sd > 0,
            recovery_lag=int(s.risk.recovery_lag_months), write_off=write_off,
            stress_prob=float(s.liquidity.stress_prob), bridge_share=float(s.liquidity.bridge_share), bridge_cost=float(s.liquidity.bridge_cost),
        ),
        renewal=RenewalParams(
            on=renewal_on,
            last_month=np.array([(NO_LAST_MONTH if m is None else month_index(m)) if ok else -1
                                 for m, ok in zip(until, admitted(renewal.segments, s.segment_names), strict=True)] if renewal
                                else [-1] * len(segments), dtype=np.int64),
            product_ok=np.array(admitted(renewal.products if renewal else [], PRODUCTS), dtype=np.bool_),
            max_term=int(renewal.max_term_months) if renewal else 0, max_consecutive=int(renewal.max_consecutive) if renewal else 0,
            min_months_on_book=int(renewal.min_months_on_book) if renewal else 0, max_pd=float(renewal.max_pd) if renewal else 0.0,
        ),
        campaign=CampaignParams(
            reach=np.array([c.reach_per_month for c in channels], dtype=np.float64), need=np.array([c.need for c in channels], dtype=np.float64),
            bank=np.array([-1 if c.bank is None else s.bank_names.index(c.bank) for c in channels], dtype=np.int64),
            max_pd=np.array([math.nan if c.max_pd is None else c.max_pd for c in channels], dtype=np.float64),
            listed=np.array(admitted(campaign.segments, s.segment_names), dtype=np.bool_),
            first=1 if campaign.start is None else month_index(campaign.start) - s.start_index + 1,
            last=months if campaign.end is None else month_index(campaign.end) - s.start_index + 1,
            list_size=math.inf if campaign.list_size is None else float(campaign.list_size),
        ),
        relief=_relief(s),
        pressure=_pressure(s),
        guarantees=guarantees.parameters(s),
        pools=pools.parameters(s),
        subsidy=subsidy.parameters(s),
        tape=TapeParams(bank=tapes.bank, segment=tapes.segment, grade=tapes.grade, age=tapes.age, term=tapes.term, first=tapes.first,
                        amount=tapes.amount, product=tapes.product, cover=tapes.cover, npl_bank=tapes.npl_bank, npl_product=tapes.npl_product,
                        npl_age=tapes.npl_age, npl_amount=tapes.npl_amount, npl_firm=tapes.npl_firm),
        audit=bool(audit),
    )
    return _frozen(params)


#: The first kind of new borrower (:func:`line_kind`): an applicant, whose line is not shifted.
APPLICANT = 0


@njit(cache=True, nogil=True, inline="always")
def line_kind(p, bank, channel):
    """The kind of a new borrower, which sets how its credit line is drawn (``p.firms.line_shift[kind]``): an opening
    borrower of ``bank`` (its bank's initial_balance shifts the lines), a borrower reached by campaign ``channel`` (the
    channel's line_scale), or else (both -1) an applicant (:data:`APPLICANT`)."""
    if bank >= 0:
        return 1 + bank
    if channel >= 0:
        return 1 + p.banks.max_pd.shape[0] + channel
    return APPLICANT


@njit(cache=True)
def _within(mu, sigma, log_limit, shifts):
    """Φ((log_limit − (mu_s + shift_k)) / sigma_s): (S, K), computed as the engine computed it per borrower."""
    out = np.empty((mu.shape[0], shifts.shape[0]))
    for segment in range(mu.shape[0]):
        for kind in range(shifts.shape[0]):
            out[segment, kind] = ndtr((log_limit - (mu[segment] + shifts[kind])) / sigma[segment])
    return out


def _relief(s: Scenario) -> ReliefParams:
    """The relief windows as arrays (months as t = calendar month − start + 1)."""
    deferrals, lending = s.relief.deferrals, s.relief.lending
    n_bank, n_seg = len(s.banks), len(s.firms.segments)

    def months(windows: Sequence[Any], name: str) -> np.ndarray:
        return np.array([month_index(getattr(w, name)) - s.start_index + 1 for w in windows], dtype=np.int64)

    def table(windows: Sequence[Any], name: str, everyone: list[str], width: int) -> np.ndarray:
        return np.array([admitted(getattr(w, name), everyone) for w in windows], dtype=np.bool_).reshape(len(windows), width)

    shares = np.array([b.share for b in s.banks.values()])
    lending_banks = table(lending, "banks", s.bank_names, n_bank)
    return ReliefParams(
        deferral_first=months(deferrals, "start"), deferral_last=months(deferrals, "end"),
        deferral_months=np.array([w.months for w in deferrals], dtype=np.int64),
        deferral_uptake=np.array([w.uptake for w in deferrals], dtype=np.float64),
        deferral_max_pd=np.array([w.max_pd for w in deferrals], dtype=np.float64),
        deferral_bank=table(deferrals, "banks", s.bank_names, n_bank), deferral_segment=table(deferrals, "segments", s.segment_names, n_seg),
        lending_first=months(lending, "start"), lending_last=months(lending, "end"),
        lending_applications=np.array([w.applications_per_month for w in lending], dtype=np.float64),
        lending_max_pd=np.array([math.nan if w.max_pd is None else w.max_pd for w in lending], dtype=np.float64),
        lending_segment=table(lending, "segments", s.segment_names, n_seg),
        lending_bank_cumulative=_cumulative(shares[None, :] * lending_banks) if lending else np.zeros((0, n_bank)),
    )


def _pressure(s: Scenario) -> PressureParams:
    """Each month's growth targets and yardstick (month t's calendar year; index 0 the opening's)."""
    years = (s.start_index - 1 + np.arange(s.calendar.months + 1)) // 12
    target = np.array([[b.growth_target.get(str(y), math.nan) for b in s.banks.values()] for y in years.tolist()]).reshape(len(years), len(s.banks))
    yardstick = np.array([s.pressure.yardstick and s.assessment.rule_in(y) != "none" for y in years.tolist()], dtype=np.bool_)
    on = bool(s.pressure.appetite > 0 or s.pressure.outreach > 0)
    return PressureParams(on=on, share=np.array([b.share for b in s.banks.values()]), target=target, yardstick=yardstick, full_gap=float(s.pressure.full_gap),
                          appetite=float(s.pressure.appetite), outreach=float(s.pressure.outreach))


def _cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities, the last column +inf so that every uniform finds a column."""
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cumulative[:, -1] = np.inf
    return cumulative


def _frozen(value):
    """The parameters with every array made read-only (recursively)."""
    if isinstance(value, np.ndarray):
        value = np.ascontiguousarray(value)
        value.flags.writeable = False
        return value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_frozen(v) for v in value))
    return value
