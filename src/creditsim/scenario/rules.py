"""Cross-field rules: what single fields cannot say (shares that sum to 1, names that exist, dates in order, the
opening book fitting the banks' appetite). :func:`check_rules` runs them all on a scenario the schema accepted.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Sequence

from ..errors import _MISSING, ScenarioError, ScenarioWarning
from .growth import application_growth, rates_by_year
from .loan_tape import OpeningTapes
from .opening import initial_population
from .sampling import sampled
from .schema import PRODUCTS, TESTS, Scenario, Target, key_fields, numeric_fields
from .units import MAX_COUNT, amount_text, month_index, month_label, parse_quantity

__all__ = ["check_rules", "MAX_SEGMENT_FIRMS", "MAX_POOL_LEVERAGE", "MAX_LOANS_PER_BORROWER", "MAX_RATE_PER_PD", "MIN_LGD_SD"]

#: Firms a segment may reach, with its entries over the run.
MAX_SEGMENT_FIRMS = 1e9
#: The highest leverage of a risk pool (pools.*.leverage).
MAX_POOL_LEVERAGE = 100.0
#: The most loans a borrower may take at once on average (demand.loans_per_borrower).
MAX_LOANS_PER_BORROWER = 100.0
#: The highest risk premium per unit of believed PD (banks.*.rate_per_pd): at PD 1 the rate rises by 1000%.
MAX_RATE_PER_PD = 10.0
#: The smallest non-zero sd of LGD (risk.lgd_sd): below it the Beta distribution is a point (and its shape
#: parameters overflow).
MIN_LGD_SD = 1e-6

def check_rules(s: Scenario) -> None:
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
            raise ScenarioError(f"{f}.line_p90", seg.line_p90, f"must be > line_median ({amount_text(seg.line_median)})")
        if seg.line_median >= limit:
            raise ScenarioError(f"{f}.line_median", seg.line_median, f"must be < firms.inclusive_line_limit ({amount_text(limit)})")
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
    unused: dict[str, list[str]] = {}  # the years of tables by year outside the run, by field
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
        if bank.loan_tape is not None and bank.initial_balance is not None:
            raise ScenarioError(f"{f}.initial_balance", bank.initial_balance, "must be left out with loan_tape: the tape is the bank's opening book")
        if bank.loan_tape is not None and bank.opening_npl_ratio > 0:
            raise ScenarioError(f"{f}.opening_npl_ratio", bank.opening_npl_ratio, "must be left out with loan_tape: the tape's npl loans are the bank's opening NPLs")
        if bank.initial_balance is not None and bank.initial_balance > bank.all_loans:
            raise ScenarioError(f"{f}.initial_balance", bank.initial_balance, f"must be ≤ all_loans ({amount_text(bank.all_loans)})")
        _check_by_year(f"{f}.non_inclusive_growth", bank.non_inclusive_growth, years, "rate", unused)
        _check_by_year(f"{f}.small_micro_outside_growth", bank.small_micro_outside_growth, years, "rate", unused)
        if bank.small_micro_outside + (bank.initial_balance or 0.0) > bank.all_loans:
            raise ScenarioError(f"{f}.small_micro_outside", bank.small_micro_outside, f"with initial_balance must be ≤ all_loans ({amount_text(bank.all_loans)})")
        _check_by_year(f"{f}.rate", bank.rate, [(s.start_index - 1) // 12, *years], "rate", unused, " (the opening's year and every simulated year)")
        _check_by_year(f"{f}.other_npl_ratio", bank.other_npl_ratio, [(s.start_index - 1) // 12, *years], "ratio", unused, " (the opening's year and every simulated year)")
    _check_by_year("demand.growth", s.demand.growth, years, "rate", unused)
    _check_by_year("risk.write_off_months", s.risk.write_off_months, [(s.start_index - 1) // 12, *years], "number of months", unused, " (the opening's year and every simulated year)")
    for key, months in (s.risk.write_off_months.items() if isinstance(s.risk.write_off_months, dict) else [(None, s.risk.write_off_months)]):
        if months < s.risk.recovery_lag_months:
            raise ScenarioError("risk.write_off_months" + (f".{key}" if key else ""), months, f"must be ≥ risk.recovery_lag_months ({s.risk.recovery_lag_months})")
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
    _check_ends(s)
    _check_relief(s)
    _check_pressure(s, years)
    _check_guarantees(s)
    _check_assessment(s, years, unused)
    _check_targets(s)
    _check_assumptions(s)
    opening_write_off = rates_by_year(s.risk.write_off_months, [(s.start_index - 1) // 12])[0]
    for name, bank in s.banks.items():
        if bank.opening_npl_ratio > 0 and opening_write_off < 1:
            raise ScenarioError(f"banks.{name}.opening_npl_ratio", bank.opening_npl_ratio, "needs risk.write_off_months ≥ 1 in the opening's year (the stock awaits its write-off)")
    start = initial_population(s)  # checks that the banked firms fit the banks' risk appetite, and the loan tapes row by row
    _check_loan_tapes(s, start.tapes)
    if s.sample < 1.0:  # and so do those of the sample the engine runs (rounding can leave a grade short)
        in_sample = initial_population(sampled(s)).tapes
        for j, (name, bank) in enumerate(s.banks.items()):
            if bank.loan_tape is not None and start.tapes.borrowers[..., j].sum() > 0 and in_sample.borrowers[..., j].sum() == 0:
                raise ScenarioError("sample", s.sample, f"leaves none of the {start.tapes.borrowers[..., j].sum()} performing firms of "
                                                        f"banks.{name}.loan_tape in the sample")
    _warn_unused(s, unused)


def _check_loan_tapes(s: Scenario, tapes: OpeningTapes) -> None:
    """A bank's all loans hold its loan tape's performing and non-performing balance, and its small-micro loans
    outside the inclusive book."""
    for j, (name, bank) in enumerate(s.banks.items()):
        if bank.loan_tape is None:
            continue
        book = tapes.balance[j] + tapes.npl_balance[j]
        if book > bank.all_loans:
            raise ScenarioError(f"banks.{name}.all_loans", bank.all_loans, f"must be ≥ the loan tape's balance ({amount_text(book)}: "
                                                                          f"{amount_text(tapes.balance[j])} performing, {amount_text(tapes.npl_balance[j])} npl)")
        if bank.small_micro_outside + book > bank.all_loans:
            raise ScenarioError(f"banks.{name}.small_micro_outside", bank.small_micro_outside,
                                f"with the loan tape's balance ({amount_text(book)}) must be ≤ all_loans ({amount_text(bank.all_loans)})")


def _check_ends(s: Scenario) -> None:
    """A date that ends a measure must not come before the run starts: the measure would be off all along, which the
    scenario should say by leaving it out."""
    ends = [("campaign.end", s.campaign.end, "the campaign", "leave out its channels")]
    if s.renewal is not None and s.renewal.enabled:
        ends.append(("renewal.until", s.renewal.until, "renewal", "leave out [renewal] or set renewal.enabled = false"))
        ends += [(f"renewal.until_by_segment.{name}", until, f"renewal for segment {name}", "leave the segment out of renewal.segments")
                 for name, until in s.renewal.until_by_segment.items()]
    for field, month, measure, instead in ends:
        if month is not None and month_index(month) < s.start_index:
            raise ScenarioError(field, month, f"is before the run starts ({s.calendar.start}), which would switch {measure} off all along; to do that, {instead}")


def _check_relief(s: Scenario) -> None:
    """Each relief window lies within the run, ends no earlier than it starts, and names known segments and banks."""
    first, last = s.start_index, s.start_index + s.calendar.months - 1
    windows = [(f"relief.deferrals.{i}", w) for i, w in enumerate(s.relief.deferrals)]
    windows += [(f"relief.lending.{i}", w) for i, w in enumerate(s.relief.lending)]
    for f, window in windows:
        for name in ("start", "end"):
            month = month_index(getattr(window, name))
            if not first <= month <= last:
                raise ScenarioError(f"{f}.{name}", getattr(window, name), f"must be within the run ({s.calendar.start} to {month_label(last)})")
        if month_index(window.end) < month_index(window.start):
            raise ScenarioError(f"{f}.end", window.end, f"must not be before start ({window.start})")
        _check_names(f"{f}.segments", window.segments, list(s.firms.segments), "segment")
        _check_names(f"{f}.banks", window.banks, list(s.banks), "bank")
    for i, lending in enumerate(s.relief.lending):
        if lending.banks is not None and math.fsum(s.banks[name].share for name in lending.banks) <= 0:
            raise ScenarioError(f"relief.lending.{i}.banks", list(lending.banks), "must name a bank with a share above 0 (applicants go to them by share)")


def _check_pressure(s: Scenario, years: Sequence[int]) -> None:
    """Growth targets are keyed by simulated years; a target needs a response and a response a target."""
    for name, bank in s.banks.items():
        for key, value in bank.growth_target.items():
            if not (_ascii_digits(key) and len(key) == 4):
                raise ScenarioError(f"banks.{name}.growth_target.{key}", value, "keys must be years such as '2021'")
            if int(key) not in years:
                raise ScenarioError(f"banks.{name}.growth_target.{key}", value, f"must be a simulated year ({years[0]}–{years[-1]})")
    pushed = s.pressure.yardstick or any(b.growth_target for b in s.banks.values())
    responds = s.pressure.appetite > 0 or s.pressure.outreach > 0
    if pushed and not responds:
        raise ScenarioError("pressure.outreach", s.pressure.outreach, "or pressure.appetite must be > 0 when a bank has a growth_target or pressure.yardstick is true (else the target does nothing)")
    if responds and not pushed:
        raise ScenarioError("pressure.yardstick", s.pressure.yardstick, "must be true, or a bank have a growth_target, when pressure.appetite or pressure.outreach is > 0 (else the response has no target)")


#: Sections an assumption may not vary: what is measured and when, not the world the plan acts in.
_NOT_ASSUMPTIONS = ("targets", "assessment", "calendar", "sample", "name", "description", "assumptions")


def _check_assumptions(s: Scenario) -> None:
    """Each assumption names numeric fields outside the targets; a multiplier's ends are numbers, low below high.
    (Whether each end is a value its field allows is checked where the ends are applied, naming the end.)"""
    numeric = numeric_fields(s.to_dict()) if s.assumptions else {}
    for i, a in enumerate(s.assumptions):
        f = f"assumptions.{i}"
        if a.key.split(".")[0].split("[")[0] in _NOT_ASSUMPTIONS:
            raise ScenarioError(f"{f}.key", a.key, f"must not be a key of {', '.join(_NOT_ASSUMPTIONS)}: an assumption is about the world the plan acts in")
        fields, multiplier = key_fields(numeric, a.key)
        if not fields:
            raise ScenarioError(f"{f}.key", a.key, "matches no numeric field of the scenario")
        if multiplier:
            for end in ("low", "high"):
                value = getattr(a, end)
                if isinstance(value, str) or not value > 0:
                    raise ScenarioError(f"{f}.{end}", value, f"must be a number > 0: {a.key} is varied as a multiplier of the values it matches")
            if not a.low < a.high:
                raise ScenarioError(f"{f}.high", a.high, f"must be above low ({a.low})")


def _check_applications(s: Scenario) -> None:
    """Each segment's applications a month, grown at demand.growth, stay within MAX_COUNT over the run."""
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
        fewest = min(s.risk.write_off_months.values()) if isinstance(s.risk.write_off_months, dict) else s.risk.write_off_months
        if g.claim_lag_months > fewest:
            raise ScenarioError(f"{f}.claim_lag_months", g.claim_lag_months, f"must not exceed risk.write_off_months ({fewest}, the fewest)")
        for key in g.reguarantee:
            if key not in s.reguarantors:
                raise ScenarioError(f"{f}.reguarantee.{key}", g.reguarantee[key], f"unknown re-guarantor; re-guarantors are {', '.join(s.reguarantors) or 'none'}")
        if math.fsum(g.reguarantee.values()) > 1 + 1e-9:
            raise ScenarioError(f"{f}.reguarantee", round(math.fsum(g.reguarantee.values()), 9), "shares passed on must not exceed 1")
        _check_names(f"{f}.banks", g.banks, list(s.banks), "bank")
        _check_names(f"{f}.segments", g.segments, list(s.firms.segments), "segment")
        if g.top_up is not None and g.top_up.to <= g.top_up.below:
            raise ScenarioError(f"{f}.top_up.to", g.top_up.to, f"must be above top_up.below ({amount_text(g.top_up.below)})")
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
            lowest = min(bank.rate.values()) if isinstance(bank.rate, dict) else bank.rate
            if (sub.banks is None or name in sub.banks) and sub.rate > lowest:
                raise ScenarioError("interest_subsidy.rate", sub.rate, f"must not exceed the rate of bank {name} ({lowest:g}, its lowest)")


def _check_by_year(field: str, value: float | dict[str, float], years: Sequence[int], what: str, unused: dict[str, list[str]], which: str = "") -> None:
    """A rate given as a table by year must be keyed by years ('2021') and cover ``years``; the years it gives
    outside them are noted in ``unused``."""
    if not isinstance(value, dict):
        return
    for key in value:
        if not (_ascii_digits(key) and len(key) == 4):
            raise ScenarioError(f"{field}.{key}", value[key], "keys must be years such as '2021'")
    missing = [str(y) for y in dict.fromkeys(years) if str(y) not in value]
    if missing:
        raise ScenarioError(field, _MISSING, f"has no {what} for year {missing[0]}{which}")
    if outside := [key for key in value if int(key) not in years]:
        unused[field] = outside


def _warn_unused(s: Scenario, unused: dict[str, list[str]]) -> None:
    """Warn of what a valid scenario holds that the run does not reach: the years of tables by year outside it (one
    warning for them all), and capital injections dated outside it (which are not made)."""
    last = month_label(s.start_index + s.calendar.months - 1)
    if unused:
        fields = list(unused)
        years = sorted({year for found in unused.values() for year in found})
        others = f" and {len(fields) - 1} other table{'s' if len(fields) > 2 else ''} by year" if len(fields) > 1 else ""
        warnings.warn(f"{fields[0]}{others}: give{'' if others else 's'} years outside the run ({s.calendar.start} to {last}), which are not used: "
                      f"{', '.join(years)}", ScenarioWarning, stacklevel=3)
    for name, g in s.guarantors.items():
        for i, injection in enumerate(g.injections):
            if not s.calendar.start <= injection.date <= last:
                warnings.warn(f"guarantors.{name}.injections.{i}.date = {injection.date!r}: is outside the run ({s.calendar.start} to {last}), "
                              "so the injection is not made", ScenarioWarning, stacklevel=3)


def _check_assessment(s: Scenario, years: Sequence[int], unused: dict[str, list[str]]) -> None:
    rule = s.assessment.rule
    if isinstance(rule, dict):
        if not rule:
            raise ScenarioError("assessment.rule", {}, "a table by year must name at least one year (write 'none' to assess no year)")
        for key in rule:
            if not (_ascii_digits(key) and len(key) == 4):
                raise ScenarioError(f"assessment.rule.{key}", rule[key], "keys must be years such as '2021'")
        if outside := [key for key in rule if int(key) not in years]:
            unused["assessment.rule"] = outside


def _check_targets(s: Scenario) -> None:
    """Each target names a known metric, measures it in a way its kind allows, over a date or an ordered period,
    on entities the metric is reported for. (A target outside the run is valid: it is reported as not assessed.)"""
    from ..metrics import METRICS

    kinds = {m.name: m for m in METRICS}
    for name, target in s.targets.items():
        f = f"targets.{name}"
        if target.measure == "test":
            _check_test(s, f, target)
            continue
        if target.threshold is None:
            raise ScenarioError(f"{f}.threshold", _MISSING, f"is required for a {target.measure} target")
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


def _check_test(s: Scenario, f: str, target: Target) -> None:
    """A test target names one of the regulator's tests, a date, and one bank or 'all'; it has no threshold, period
    or baseline. (Whether the test is assessed at that date is reported with the results, as for a date outside the
    run.)"""
    if target.metric not in TESTS:
        hint = difflib.get_close_matches(target.metric, TESTS, n=1)
        raise ScenarioError(f"{f}.metric", target.metric, "unknown test" + (f" (did you mean '{hint[0]}'?)" if hint else f"; a test target names one of {', '.join(TESTS)}"))
    if target.date is None:
        raise ScenarioError(f"{f}.date", _MISSING, "is required for a test target (the quarter- or year-end it is assessed at)")
    if (month_index(target.date) + 1) % 3:
        raise ScenarioError(f"{f}.date", target.date, "must be a quarter-end (March, June, September or December): the tests are assessed there")
    for field, value in (("start", target.start), ("end", target.end), ("threshold", target.threshold)):
        if value is not None:
            raise ScenarioError(f"{f}.{field}", value, "does not apply to a test target (it is met where the test passes)")
    if target.comparison != ">=":
        raise ScenarioError(f"{f}.comparison", target.comparison, "does not apply to a test target (it is met where the test passes)")
    if target.baseline != "none":
        raise ScenarioError(f"{f}.baseline", target.baseline, "does not apply to a test target")
    if not isinstance(target.scope, str) or target.scope not in (*s.bank_names, "all"):
        scope = target.scope if isinstance(target.scope, str) else list(target.scope)
        raise ScenarioError(f"{f}.scope", scope, f"a test is assessed for one bank or all of them: {', '.join([*s.bank_names, 'all'])}")


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


