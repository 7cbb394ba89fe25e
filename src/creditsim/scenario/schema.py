"""The scenario schema: the typed, validated description of a lending programme, section by section.

Every field carries its type (amounts in 万/亿, rates in %, counts, months ``"YYYY-MM"``, all parsed by
:mod:`creditsim.scenario.units`), its default, its description (from which ``docs/reference/scenario.md`` is
generated) and, for an aggregate the sample scales, a :data:`SCALED` or :data:`WHOLE` mark (see
:mod:`creditsim.scenario.sampling`). Models are frozen, strict and refuse unknown keys; the rules that join several
fields live in :mod:`creditsim.scenario.rules`.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..errors import _MISSING, ScenarioError
from .units import month_index, month_label, parse_amount, parse_count, parse_month, parse_number, parse_quantity, parse_rate

__all__ = [
    "admitted", "json_digest", "Scenario", "Calendar", "Segment", "Firms", "Bank", "Demand", "StressPoint", "Risk", "Liquidity",
    "Renewal", "Deferral", "ReliefLending", "Relief", "Campaign", "Channel", "Guarantor", "Reguarantor", "Injection", "TopUp", "Pool", "InterestSubsidy", "Target",
    "Assessment", "LoanTape", "MEASURES", "TESTS", "TWO_INCREASES_RULES", "PRODUCTS", "PRODUCT_NAMES", "TAPE_COLUMNS", "TAPE_REQUIRED", "TAPE_STATUSES",
    "MAX_TAPE_LOANS", "MAX_RATES", "FACTOR_MONTHS", "SCALED", "WHOLE", "RESERVED_NAMES", "MAX_NAME", "model_at", "field_at", "is_amount",
    "nesting",
]

#: Loan products: 信用 (credit, unsecured), 担保 (guaranteed), 抵押/质押 (collateral).
PRODUCTS: tuple[str, ...] = ("credit", "guaranteed", "collateral")
#: Months per period of the systematic factor.
FACTOR_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3, "annual": 12}
#: The highest annual growth rate accepted (1000%); a larger one is a percentage written as a fraction.
MAX_GROWTH = 10.0


# --------------------------------------------------------------------------------------------------- value types
def _probability(value: object) -> float:
    rate = parse_rate(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("must be in [0, 1]")
    return rate


#: The most each kind of annual rate can plausibly be: above it a value is refused as a slip of units, a
#: percentage written as a fraction (0.5 for 0.5%), with the value probably meant. An interest rate (a loan's rate,
#: the all-in price, a subsidy, the discount rate): 30%, above every legal lending rate in China (the courts' ceiling
#: on private lending was 24% until 2020, four times the LPR since). A fee or cost rate (guarantee and re-guarantee
#: fees, a guarantor's operating cost): 10%, where policy guarantees charge 1–2% and commercial ones 2–4%. A growth
#: rate: 1000%.
MAX_RATES: dict[str, float] = {"interest rate": 0.30, "fee rate": 0.10, "growth rate": MAX_GROWTH}


def _plausible(value: object, kind: str, least: float = 0.0) -> float:
    """A rate of a kind of :data:`MAX_RATES`, from ``least`` to the most the kind can plausibly be.

    >>> _plausible(0.5, "interest rate")
    Traceback (most recent call last):
    ValueError: is 50% a year, more than any interest rate (at most 30%); did you mean '0.5%'?
    """
    rate, most = parse_rate(value), MAX_RATES[kind]
    if rate > most:
        written_as_fraction = not isinstance(value, str) and 0 <= rate / 100 <= most
        hint = f"; did you mean '{rate:g}%'?" if written_as_fraction else ""
        raise ValueError(f"is {100 * rate:.4g}% a year, more than any {kind} (at most {100 * most:.4g}%){hint}")
    if rate < least:
        raise ValueError(f"must be ≥ {100 * least:.4g}%")
    return rate


def _interest_rate(value: object) -> float:
    return _plausible(value, "interest rate")


def _fee_rate(value: object) -> float:
    return _plausible(value, "fee rate")


def _growth(value: object) -> float:
    rate = _plausible(value, "growth rate", least=-math.inf)
    if rate <= -1.0:
        raise ValueError("must be > -100%")
    return rate


def _non_negative(value: object) -> float:
    number = parse_number(value, "2.5")
    if number < 0:
        raise ValueError("must be ≥ 0")
    return number


def _write_off_months(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise ValueError("must be a whole number of months")
    if not 0 <= value <= 240:
        raise ValueError("must be from 0 to 240 months")
    return int(value)


def _positive_amount(value: object) -> float:
    amount = parse_amount(value)
    if amount <= 0:
        raise ValueError("must be > 0")
    return amount


#: Names the program gives its own rows and scopes, which no segment, bank, guarantor, re-guarantor, pool, target or
#: channel may take: ``all``, the aggregate (``Results.values("balance", "all")``, ``--bank all``, a target's scope).
RESERVED_NAMES: tuple[str, ...] = ("all",)
#: The longest name (characters).
MAX_NAME = 64
_NAME = re.compile(rf"[\w-]{{1,{MAX_NAME}}}")
_TARGET_NAME = re.compile(rf"[\w:-]{{1,{MAX_NAME}}}")


def _name(value: object) -> str:
    """A name of a segment, bank, guarantor, re-guarantor, pool, target or channel: letters (Chinese ones too), digits,
    '_' and '-', so that it is one step of a dotted key, one item of a list on the command line (``--bank``, a target's
    scope joined by '+') and plain text wherever it is drawn or written; and not a name of :data:`RESERVED_NAMES`."""
    return _checked_name(value, _NAME, "")


def _target_name(value: object) -> str:
    """A target's name: as :func:`_name`, and ':' too, as in the names ``--target`` gives tests
    (``两增:big_bank:2022``)."""
    return _checked_name(value, _TARGET_NAME, ", ':'")


def _checked_name(value: object, pattern: re.Pattern[str], also: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"a name must be 1 to {MAX_NAME} letters, digits, '_'{also} or '-' (e.g. city_bank or 城商行)")
    if value in RESERVED_NAMES:
        raise ValueError(f"is reserved: creditsim names the aggregate of every entity {value!r}; choose another name")
    return value


def _as_tuple(value: object) -> object:
    """TOML arrays arrive as lists; a scenario keeps them as tuples so it cannot be changed in place."""
    return tuple(value) if isinstance(value, list) else value


Amount = Annotated[float, BeforeValidator(parse_amount)]
PositiveAmount = Annotated[float, BeforeValidator(_positive_amount)]
Count = Annotated[float, BeforeValidator(parse_count)]
Probability = Annotated[float, BeforeValidator(_probability)]
Growth = Annotated[float, BeforeValidator(_growth)]
InterestRate = Annotated[float, BeforeValidator(_interest_rate)]
FeeRate = Annotated[float, BeforeValidator(_fee_rate)]
NonNegative = Annotated[float, BeforeValidator(_non_negative)]
WriteOffMonths = Annotated[int, BeforeValidator(_write_off_months)]
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
    opening_book: Literal["seasoned", "new"] = Field("seasoned", description="The opening borrowers' loans: 'seasoned' (each at a random age of a term drawn in proportion to term × its share, so the book matures month by month from the start, as a steady book does) or 'new' (every opening loan made at the opening with a term from term_mix, as a static pool whose loans all run their whole term).")
    segments: dict[Annotated[str, BeforeValidator(_name)], Segment] = Field(description="The segments, keyed by name.")


# --------------------------------------------------------------------------------------------------- loan tapes
#: The columns of a loan tape: the required ones (:data:`TAPE_REQUIRED`, and grade or pd), then the optional ones.
TAPE_COLUMNS: tuple[str, ...] = ("amount", "start", "maturity", "product", "status", "grade", "pd", "segment", "cover", "firm", "defaulted")
TAPE_REQUIRED: tuple[str, ...] = ("amount", "start", "maturity", "product", "status")
#: A loan's status in a loan tape: performing, or non-performing (不良).
TAPE_STATUSES: tuple[str, ...] = ("performing", "npl")
#: The products a loan tape may name, Chinese names included, and the product each means.
PRODUCT_NAMES: dict[str, str] = {**{p: p for p in PRODUCTS}, "信用": "credit", "担保": "guaranteed", "抵押": "collateral", "质押": "collateral"}
#: The most loans a loan tape may hold (the largest benchmark province has 5 million borrowers).
MAX_TAPE_LOANS = 5_000_000


def tape_error(file: str, row: int | None, column: str | None, rule: str) -> ScenarioError:
    """The one-line error about a loan tape: ``loan tape FILE, row N, column C: rule`` (rows counted as a spreadsheet
    counts them: the header is row 1)."""
    where = f"loan tape {file}" + (f", row {row}" if row is not None else "") + (f", column {column}" if column is not None else "")
    return ScenarioError(where, _MISSING, rule)


def _empty(cell: object) -> bool:
    """A cell with nothing in it: missing (None), blank text, or a NaN a Parquet float column holds for it."""
    return cell is None or (isinstance(cell, str) and not cell.strip()) or (isinstance(cell, float) and math.isnan(cell))


def _shown(cell: object) -> str:
    return repr(cell.strip()) if isinstance(cell, str) else repr(cell) if isinstance(cell, datetime.date) else str(cell)


def _tape_cell(column: str, cell: object) -> object:
    """A loan tape's cell in its column's normal form: amount in CNY (whole fen), months 'YYYY-MM', the product's
    English name, grade a whole number, pd a fraction, names as text ('' for an empty cover or defaulted).

    Raises
    ------
    ValueError
        With the rule the cell breaks, starting with the cell as written.
    """
    shown = _shown(cell)
    if _empty(cell):
        if column in ("cover", "defaulted"):
            return ""
        raise ValueError("is empty")
    if column == "amount":
        try:
            amount = parse_amount(cell.strip() if isinstance(cell, str) else cell)
        except ValueError:
            raise ValueError(f"{shown} is not an amount in CNY, such as 500000 or '50万'") from None
        if amount <= 0:
            raise ValueError(f"{shown} must be > 0")
        if round(amount, 2) != amount:
            raise ValueError(f"{shown} has more than two decimals: amounts are whole fen")
        return amount
    if column in ("start", "maturity", "defaulted"):
        if isinstance(cell, datetime.date):  # a Parquet date or timestamp column: its month
            cell = f"{cell.year:04d}-{cell.month:02d}"
        try:
            return parse_month(cell.strip() if isinstance(cell, str) else cell)
        except ValueError:
            raise ValueError(f"{shown} is not a month (YYYY-MM)") from None
    if column == "product":
        name = cell.strip() if isinstance(cell, str) else cell
        if name not in PRODUCT_NAMES:
            raise ValueError(f"{shown} is not a product ({', '.join(PRODUCT_NAMES)})")
        return PRODUCT_NAMES[name]
    if column == "status":
        if not isinstance(cell, str) or cell.strip() not in TAPE_STATUSES:
            raise ValueError(f"{shown} is not a status ({', '.join(TAPE_STATUSES)})")
        return cell.strip()
    if column == "grade":
        text = cell.strip() if isinstance(cell, str) else cell
        if isinstance(text, float) and text.is_integer():
            text = int(text)
        if isinstance(text, str) and text.isascii() and text.isdigit():
            text = int(text)
        if isinstance(text, bool) or not isinstance(text, int) or not 0 <= text < 128:
            raise ValueError(f"{shown} is not a grade: grades are numbered 0, 1, 2 … in the order of the segment's pd")
        return text
    if column == "pd":
        try:
            pd = parse_rate(cell.strip() if isinstance(cell, str) else cell)
        except ValueError:
            pd = math.nan
        if not 0.0 <= pd < 1.0:
            raise ValueError(f"{shown} is not an annual PD in [0, 1), such as 0.02 or '2%'")
        return pd
    if isinstance(cell, bool) or not isinstance(cell, (str, int)):  # segment, cover, firm: names
        raise ValueError(f"{shown} is not a name")
    return str(cell).strip()


def _tape_rows(data: Any) -> Any:
    """Check a loan tape's columns row by row and put every cell in its normal form (:func:`_tape_cell`)."""
    if isinstance(data, LoanTape):
        return data
    if not isinstance(data, dict):
        raise ValueError("must be the file name of a loan tape ('.csv' or '.parquet')")
    file = data.get("file")
    if not isinstance(file, str) or not file:
        raise ValueError("a loan tape written as a table needs its file's name in 'file'")
    columns = {name: values for name, values in data.items() if name != "file" and values is not None}
    for name in columns:
        if name not in TAPE_COLUMNS:
            raise tape_error(file, 1, name, f"unknown column; the columns are {', '.join(TAPE_COLUMNS)}")
    for name in TAPE_REQUIRED:
        if name not in columns:
            raise tape_error(file, 1, name, "is missing")
    if "grade" in columns and "pd" in columns:
        raise tape_error(file, 1, "pd", "give grade or pd, not both")
    if "grade" not in columns and "pd" not in columns:
        raise tape_error(file, 1, "grade", "is missing (give each loan's grade, or its annual PD in a column pd)")
    n = None
    for name, values in columns.items():
        if not isinstance(values, (list, tuple)):
            raise tape_error(file, None, name, "must be a list of values, one per loan")
        if n is None:
            n = len(values)
        elif len(values) != n:
            raise tape_error(file, None, name, f"has {len(values)} values; the other columns have {n}")
    if not n:
        raise tape_error(file, None, None, "holds no loans")
    if n > MAX_TAPE_LOANS:
        raise tape_error(file, None, None, f"holds {n:,} loans, more than {MAX_TAPE_LOANS:,}")
    clean: dict[str, Any] = {"file": file}
    for name in TAPE_COLUMNS:
        if name not in columns:
            continue
        out = []
        for i, cell in enumerate(columns[name]):
            try:
                out.append(_tape_cell(name, cell))
            except ValueError as exc:
                raise tape_error(file, i + 2, name, str(exc)) from None
        clean[name] = tuple(out)
    for i, (status, defaulted) in enumerate(zip(clean["status"], clean.get("defaulted", ("",) * n), strict=True)):
        if status == "performing" and defaulted:
            raise tape_error(file, i + 2, "defaulted", f"{defaulted!r} is given for a performing loan: only an npl loan has a default month")
    return clean


class LoanTape(_Model):
    """A bank's opening book loan by loan: its loan tape, one row per loan, checked row by row (columns in their
    normal form: amounts in CNY, months 'YYYY-MM', products by their English names, grades by number). Built from
    the file a scenario names (:func:`creditsim.scenario.loan_tape.read_loan_tape`); a scenario saved as data holds
    it as this table, so that it reads back without the file."""

    file: str = Field(description="The file the tape was read from, as the scenario names it (error messages name it).")
    amount: tuple[float, ...] = Field(description="Each loan's outstanding principal, CNY (> 0, whole fen).")
    start: tuple[str, ...] = Field(description="The month each loan was made, 'YYYY-MM'.")
    maturity: tuple[str, ...] = Field(description="The month each loan falls due (bullet), 'YYYY-MM'.")
    product: tuple[str, ...] = Field(description="Each loan's product: credit, guaranteed or collateral.")
    status: tuple[str, ...] = Field(description="performing, or npl (non-performing).")
    grade: tuple[int, ...] | None = Field(None, description="Each firm's credit grade: its position in its segment's pd (0 the first).")
    pd: tuple[float, ...] | None = Field(None, description="Each firm's annual PD, mapped to its segment's nearest grade (on the log-odds scale).")
    segment: tuple[str, ...] | None = Field(None, description="Each firm's segment (may be left out when the scenario has one).")
    cover: tuple[str, ...] | None = Field(None, description="The guarantor or pool covering each loan ('' for none).")
    firm: tuple[str, ...] | None = Field(None, description="Each loan's firm: rows of one firm are one borrower's loans (default: each row its own firm).")
    defaulted: tuple[str, ...] | None = Field(None, description="The month an npl loan defaulted, 'YYYY-MM' ('' on performing rows and to take the month before the start).")

    _rows = model_validator(mode="before")(_tape_rows)

    @property
    def loans(self) -> int:
        """The loans (rows) of the tape."""
        return len(self.amount)


class Bank(_Model):
    """A bank (or a group of banks assessed together)."""

    label: str = Field("", description="Display name.")
    share: Probability = Field(description="Share of borrowers: of the initial inclusive borrowers and of new applications. Shares sum to 1.")
    initial_balance: PositiveAmount | None = Field(None, description="Initial inclusive loan balance, CNY; when given, the initial book's loan sizes are scaled to it (not with loan_tape).", json_schema_extra=SCALED)
    all_loans: PositiveAmount = Field(description="Initial balance of all the bank's loans (各项贷款), inclusive ones included, CNY.", json_schema_extra=SCALED)
    non_inclusive_growth: Growth | dict[str, Growth] = Field(description="Annual growth of the bank's loans outside the inclusive book: one rate, or a table by year ('2021' = '8%') covering every simulated year.")
    max_pd: Probability = Field(description="Risk appetite: the highest annual PD the bank lends to.")
    rate: InterestRate | dict[str, InterestRate] = Field(description="Annual interest rate of its new inclusive loans before the risk premium: one rate, or a table by year ('2020' = '5.9%') covering the opening's year and every simulated year. A loan keeps the rate of the year it was made (the opening book: the opening's year) until it ends; a renewal or a new loan takes the year's rate.")
    rate_per_pd: NonNegative = Field(0.0, description="Risk-based pricing: the rate rises by rate_per_pd × the PD the bank believes the firm has (at most 10).")
    renewal_uptake: Probability = Field(0.0, description="Share of the firms with eligible maturing loans whose loans the bank renews without principal repayment (无还本续贷).")
    term_mix: dict[str, Probability] = Field(description="Share of new loans by term in months, e.g. {12 = 0.6, 24 = 0.3, 36 = 0.1}; sums to 1. Loans repay at maturity (bullet).")
    product_mix: dict[str, Probability] = Field(description="Share of new loans by product: credit (信用), guaranteed (担保), collateral (抵押/质押); sums to 1.")
    without_guarantee: Literal["collateral", "credit"] = Field("collateral", description="What the bank makes of a new loan it wanted guaranteed when no guarantor has room for it or the borrower declines the guarantee at its price: 'collateral' (the default: it asks for collateral, 抵押/质押, as banks do for a firm the guarantee scheme cannot take) or 'credit' (it lends on credit at its risk price). A firm lent to only because of cover is not made a borrower either way.")
    small_micro_outside: Amount = Field(0.0, description="Small-micro loans of the bank outside the inclusive book at the start (小微企业贷款 less 普惠型: borrowers whose lines pass the inclusive limit), CNY; part of all_loans. Not simulated loan by loan: they follow small_micro_outside_growth, and with the inclusive balance they give small_micro_balance, the measure of plans' 小微企业贷款 targets.", json_schema_extra=SCALED)
    small_micro_outside_growth: Growth | dict[str, Growth] = Field(0.0, description="Annual growth of small_micro_outside: one rate, or a table by year covering every simulated year.")
    first_loans_outside: Amount = Field(0.0, description="First loans a year to 首贷户 outside the inclusive book (小微企业首贷 whose lines pass the inclusive limit, which the 首贷金额 statistic counts), CNY a year. Not simulated loan by loan: paid out evenly, a twelfth each month, they give with first_loan_amount small_micro_first_loan_amount, the measure of 首贷金额 figures and targets.", json_schema_extra=SCALED)
    opening_npl_ratio: Probability = Field(0.0, lt=1.0, description="Non-performing share of the bank's inclusive book at the start (不良贷款率: NPLs ÷ the whole book), an opening stock in the loss pipeline: defaults of equal size in each of the risk.write_off_months months before the start, with the bank's product_mix; those younger than risk.recovery_lag_months still await their recovery (1 − the product's mean LGD) and each its write-off, recognised as the bank's loss in the run (their guarantee claims and pool compensation were settled before the start). With initial_balance, the performing book is (1 − this) × initial_balance. Default 0: a book that opens without NPLs. Not with loan_tape, whose npl loans are the bank's stock.")
    other_npl_ratio: Probability | dict[str, Probability] = Field(0.015, description="NPL ratio of the bank's loans outside the inclusive book: one ratio, or a table by year ('2021' = '1.6%') covering every simulated year; with the inclusive NPL it gives the bank's overall NPL ratio, the yardstick of 两控. Default 1.5%, the low end of all commercial banks' 1.5–1.9%.")
    growth_target: dict[str, Growth] = Field(default_factory=dict, description="Growth of its inclusive balance the bank is mandated to reach over a calendar year, by year ('2019' = '30%', '2020' = '40%': the large state banks' targets in the Government Work Reports); years left out have none. A bank behind the target's pace pushes to catch up as [pressure] says (more applicants sought, a looser appetite for new borrowers); it is not made to reach it.")
    loan_tape: LoanTape | None = Field(None, description="The bank's own opening book, loan by loan: a loan tape file ('.csv' or '.parquet', the path taken from the scenario file's directory) with columns amount, start, maturity, product, status and grade or pd, and optionally segment, cover, firm and defaulted (docs/how-to/load-a-loan-tape.md), checked row by row when the scenario loads. Its performing loans are the bank's opening borrowers in place of those drawn by share (the other banks' are drawn as before), its npl loans its opening NPL stock; initial_balance and opening_npl_ratio are then left out. A scenario saved as data (results, checkpoints, to_toml) holds the tape's rows. With a sample below 1 the engine runs round(sample × n) of the tape's n performing firms, and of its npl firms likewise, evenly spaced in tape order.")


class Demand(_Model):
    """How borrowers come and stay."""

    growth: Growth | dict[str, Growth] = Field(0.0, description="Annual growth of applications_per_month of every segment: one rate, or a table by year ('2020' = '30%') covering every simulated year.")
    reborrow_prob: Probability = Field(description="Probability that a maturing loan is followed by a new loan to the same firm.")
    loans_per_borrower: NonNegative = Field(1.0, description="Mean number of loans a borrower takes at once (1–100): 1 + Poisson(loans_per_borrower − 1); the line is split evenly.")


class Pressure(_Model):
    """Policy pressure on the banks' new lending: how a bank behind the pace of its growth targets pushes.

    A bank's target in a calendar year is the highest of its ``growth_target`` for the year and, with ``yardstick``,
    the growth of its all loans since the start of the year (两增's growth clause, in the years its rule assesses
    growth). At the start of each month the bank compares its inclusive balance with the target's pace — the
    balance at the start of the year (or of the run) grown by the target for the months since — and the shortfall,
    as a share of that pace, sets its pressure π = min(1, shortfall / full_gap). Under pressure π it seeks extra
    applicants (outreach × π × its share of the month's applications) and approves new borrowers up to a believed
    PD of (1 + appetite × π) × max_pd. Neither response says how far it gets: that follows from the firms it finds.
    """

    yardstick: bool = Field(False, description="The banks also aim at 两增's yardstick: inclusive growth since the start of the year at least that of their all loans, in the years whose 两增 rule assesses growth (assessment.rule).")
    full_gap: Probability = Field(0.05, gt=0.0, description="Shortfall behind the target's pace, as a share of the pace, at which the pressure is full (π = 1); a smaller shortfall presses in proportion.")
    appetite: NonNegative = Field(0.0, le=10.0, description="At full pressure the bank approves new borrowers up to (1 + appetite) × its max_pd (capped at 1) of believed PD; 0 leaves the appetite alone.")
    outreach: NonNegative = Field(0.0, le=10.0, description="At full pressure the bank seeks outreach × its share of the month's applications as extra applications (Poisson) from firms without a loan, by segment as demand has them; 0 seeks none.")


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
    write_off_months: WriteOffMonths | dict[str, WriteOffMonths] = Field(24, description="Months from default to the write-off (核销) or transfer of what was not recovered, the pace at which banks dispose of their NPLs: one number, or a table by the year of default ('2020' = 12) covering the opening's year and every simulated year, each from recovery_lag_months to 240. A defaulted loan keeps the months of the year it defaulted in; the opening stock of NPLs those of the opening's year.")
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


#: The longest deferral of principal (relief.deferrals.*.months), months.
MAX_DEFERRAL_MONTHS = 36


class Deferral(_Model):
    """A window of principal deferral (延期还本付息): a borrower whose loans mature in the window may have them deferred.

    A deferred borrower's maturing loans stay on the books, unchanged and performing, and fall due ``months`` later:
    nothing is repaid or lent at the old maturity, and a firm whose default comes before the new maturity defaults
    at it (its default is postponed to the end of the deferral). Loans that fall due again inside the window may be
    deferred again.
    """

    start: Month = Field(description="First month in which maturing loans may be deferred, 'YYYY-MM' (within the run).")
    end: Month = Field(description="Last month in which maturing loans may be deferred, 'YYYY-MM' (within the run, not before start).")
    months: int = Field(ge=1, le=MAX_DEFERRAL_MONTHS, description=f"How long the principal is deferred, months (1–{MAX_DEFERRAL_MONTHS}): a deferred loan's maturity moves out by this.")
    uptake: Probability = Field(description="Share of the eligible borrowers with loans maturing in the window whose loans are deferred (each borrower and maturity decided once).")
    max_pd: Probability = Field(1.0, description="Highest PD, as the bank believes it, of an eligible borrower (default 1: any performing borrower).")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Banks that defer (default all).")


class ReliefLending(_Model):
    """A window of relief lending: extra applications from firms without a loan, on top of demand, at its appetite."""

    start: Month = Field(description="First month of relief lending, 'YYYY-MM' (within the run).")
    end: Month = Field(description="Last month of relief lending, 'YYYY-MM' (within the run, not before start).")
    applications_per_month: Count = Field(description="Extra applications a month from the firms without a loan of the eligible segments (Poisson; not grown by demand.growth), spread over the segments in proportion to their firms without a loan.", json_schema_extra=SCALED)
    max_pd: Probability | None = Field(None, description="Highest believed PD approved for a relief application (default: the bank's max_pd).")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Banks that lend (default all); an applicant goes to one of them by their shares.")


class Relief(_Model):
    """Dated relief measures (2020's 延期还本付息 and relief lending), each a list of windows."""

    deferrals: Annotated[tuple[Deferral, ...], BeforeValidator(_as_tuple)] = Field((), description="Windows of principal deferral (延期还本付息); where windows overlap, a borrower follows the first that admits it.")
    lending: Annotated[tuple[ReliefLending, ...], BeforeValidator(_as_tuple)] = Field((), description="Windows of relief lending.")


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
    fee_rate: FeeRate = Field(description="Annual guarantee fee (担保费率) on the loan amount guaranteed: the principal of the guaranteed loans, not the guarantor's coverage × principal. The borrower's all-in price adds it to the loan rate.")
    fee_cap: FeeRate = Field(0.01, description="Highest fee rate allowed (国办发〔2019〕6号: average ≤ 1%).")
    fee_subsidy: FeeRate = Field(0.0, description="Part of the annual fee rate paid by government (降费奖补); the borrower pays the rest.")
    cost_rate: FeeRate = Field(0.0, description="Annual operating cost as a share of the outstanding guarantee liability.")
    take_up_elasticity: NonNegative = Field(0.0, description="Price response of demand for the guarantee: a borrower takes it with probability exp(−take_up_elasticity × (all-in price − reference_price)) when its all-in price (loan rate + fee − fee subsidy, a year) is above reference_price, always otherwise (0: always).")
    reference_price: InterestRate = Field(0.06, description="All-in annual price at or below which every borrower offered the guarantee takes it.")
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
    fee_rate: FeeRate = Field(description="Annual re-guarantee fee on its share of the outstanding liability (国家融资担保基金: 0.5%).")
    fee_rate_small: FeeRate | None = Field(None, description="Fee rate on loans of at most 500万 (国家融资担保基金: 0.3%; default fee_rate).")


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

    rate: InterestRate = Field(description="Annual interest paid by government on an eligible loan's balance (e.g. 0.01: one percentage point); the borrower pays the bank's rate less this.")
    first_time_only: bool = Field(False, description="Only loans to 首贷户.")
    segments: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible segments (default all).")
    banks: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] | None = Field(None, description="Eligible banks (default all).")
    annual_budget: PositiveAmount | None = Field(None, description="Most government pays in a calendar year, CNY (default: no cap); once spent, borrowers pay the full rate until January.", json_schema_extra=SCALED)


def _comparison(value: object) -> object:
    return {"≥": ">=", "≤": "<=", "＞": ">", "＜": "<"}.get(value, value) if isinstance(value, str) else value


#: How a target measures its metric (see :class:`Target`).
MEASURES: tuple[str, ...] = ("stock", "increase", "cumulative", "average", "ratio", "test")
#: The regulator's tests a ``test`` target can name: 两增 and its checks, 两控 and its halves (see
#: :mod:`creditsim.results.assessment`).
TESTS: tuple[str, ...] = ("两增", "loan_growth", "borrowers", "两控", "npl_ratio", "loan_cost")


class Target(_Model):
    """A target of a plan: one metric, measured over a date or a period, compared with a threshold.

    ``stock`` (余额) is the metric at the end of ``date``; ``increase`` (新增) is the stock at the end of ``end``
    less the stock at the end of the month before ``start``; ``cumulative`` (累计) sums a flow over the months
    ``start`` to ``end``; ``average`` is the mean of the monthly values over those months; ``ratio`` is a ratio
    metric at the end of ``date``. Over several banks (``scope`` a list) stocks and flows are summed and ratios
    recomputed from the sums. ``test`` is one of the regulator's tests (``metric`` 两增, 两控 or one of their
    checks, see :data:`TESTS`) at the quarter- or year-end ``date``, for one bank or ``all``: met on a path
    when it passes there; it has no threshold.
    """

    label: str = Field("", description="The target as the plan words it, e.g. '新增小微企业贷款1000亿元'.")
    source: str = Field("", description="Where the plan sets it: document and clause, e.g. '004_a4906bae605cc669.txt 一(三)'.")
    metric: str = Field(description="The metric measured (see docs/reference/metrics.md); for a test target, the test: 两增, loan_growth, borrowers, 两控, npl_ratio or loan_cost.")
    measure: Literal["stock", "increase", "cumulative", "average", "ratio", "test"] = Field(description="How the metric is measured: stock (余额) or ratio at a date, increase (新增), cumulative flow (累计) or average over a period; test: passing the regulator's test named by metric at date.")
    comparison: Annotated[Literal[">=", "<=", ">", "<"], BeforeValidator(_comparison)] = Field(">=", description="How the measured value must compare with the threshold: '>=', '<=', '>' or '<' (≥ and ≤ accepted).")
    threshold: float | str | None = Field(None, description="The target value in the metric's unit: an amount for money, with its unit ('1000亿'; in a file a bare number other than 0 is refused), a count for firms or loans (15000, '1.5万户'), a rate for a fraction ('1%'); may be negative. Required, except for a test target, which has none.")
    date: Month | None = Field(None, description="The date of a stock, ratio or test target, 'YYYY-MM' (month end; a quarter-end for a test); the opening month (before calendar.start) is allowed for a stock or ratio. A target outside the run, or a test not assessed at its date, is reported as not assessed.")
    start: Month | None = Field(None, description="First month of the period of an increase, cumulative or average target.")
    end: Month | None = Field(None, description="Last month of the period of an increase, cumulative or average target.")
    scope: Annotated[str | tuple[str, ...], BeforeValidator(_as_tuple)] = Field("all", description="Whom it is measured on: 'all', one bank (or guarantor, re-guarantor, pool for their metrics), or a list of them summed; for a test target one bank, or 'all' (the banks together, as the regulator's aggregate).")
    baseline: Literal["none", "year_before"] = Field("none", description="'year_before': the target compares the change from the same measure twelve months earlier with the threshold (e.g. 申贷获得率不低于上年: the approval rate averaged over 2020 less its 2019 average, ≥ 0); 'none': the measure itself.")

    def year_before(self) -> Target:
        """The same target twelve months earlier (its dates shifted back a year, no baseline)."""
        def back(month: str | None) -> str | None:
            return None if month is None else month_label(month_index(month) - 12)

        return self.model_copy(update={"date": back(self.date), "start": back(self.start), "end": back(self.end), "baseline": "none"})

    @property
    def value(self) -> float:
        """The threshold as a number in the metric's unit (CNY, firms, loans or a fraction); for a test target 1, what
        a path that passes measures (one that fails measures 0)."""
        if self.measure == "test":
            return 1.0
        assert self.threshold is not None, "validated: a target other than a test has a threshold"
        return parse_quantity(self.threshold, self.unit)

    @property
    def unit(self) -> str:
        """The unit of what the target measures: its metric's ('CNY', 'firms', 'fraction', …); '' for a test."""
        from ..metrics import metric

        return "" if self.measure == "test" else metric(self.metric).unit


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
    npl_margin: Probability = Field(0.03, description="两控's NPL half: the inclusive NPL ratio may exceed the bank's overall NPL ratio by at most this (3 percentage points).")
    loan_cost: bool = Field(True, description="Assess 两控's cost half: the loans paid out since the start of a year carry a lower average rate (new_loan_rate, weighted by amount) than the whole year before's, from the run's second calendar year. Its outcome follows the banks' rate by year (banks.NAME.rate) and the mix of their borrowers; false leaves it out of 两控 (say why in the scenario, e.g. no public rate path for its years).")

    def rule_in(self, year: int) -> str:
        """The 两增 rule applied in ``year``: the scenario's choice, or the rule in force that year."""
        if isinstance(self.rule, dict):
            return self.rule.get(str(year), "none")
        if self.rule != "in_force":
            return self.rule
        return "none" if year < 2018 else "2018" if year == 2018 else "2019" if year <= 2022 else "none" if year == 2023 else "2024"


class Assumption(_Model):
    """A documented assumption with its plausible range (what sensitivity varies and parameter uncertainty draws).

    ``creditsim sensitivity`` varies each one at a time to its ends; ``creditsim run --parameter-uncertainty`` draws
    each path's values (:mod:`creditsim.analysis.uncertainty`)."""

    key: str = Field(description="A dotted key of the scenario, as calibrate's --fit takes it: one number (e.g. 'demand.growth'), or, with * wildcards or naming a list (e.g. 'firms.segments.*.pd'), a multiplier of every value it matches. Not a key of targets, assessment, calendar or sample.")
    low: float | str = Field(description="The low end of the range: a value of the field as the field takes it (e.g. '10%', '5亿'), or for a multiplier a number such as 0.8.")
    high: float | str = Field(description="The high end of the range, as low; above it.")
    distribution: Literal["uniform", "normal"] = Field("uniform", description="How a run with parameter uncertainty draws it for each path: 'uniform' on [low, high], or 'normal' with [low, high] its central 90% interval (a fitted value ± 1.645 standard errors), truncated to the values the field allows.")
    note: str = Field(min_length=1, description="Where the range comes from: a source, or the reasoning.")


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
    relief: Relief = Field(default_factory=Relief, description="Dated relief measures: deferral of principal and relief lending (default: none).")
    pressure: Pressure = Field(default_factory=Pressure, description="How banks behind their growth targets (banks.NAME.growth_target, 两增's yardstick) push their new lending (default: no response).")
    guarantors: dict[Annotated[str, BeforeValidator(_name)], Guarantor] = Field(default_factory=dict, description="Guarantee institutions, keyed by name (default none).")
    reguarantors: dict[Annotated[str, BeforeValidator(_name)], Reguarantor] = Field(default_factory=dict, description="Re-guarantors, keyed by name (default none).")
    pools: dict[Annotated[str, BeforeValidator(_name)], Pool] = Field(default_factory=dict, description="Risk compensation pools, keyed by name (default none).")
    interest_subsidy: InterestSubsidy | None = Field(None, description="Interest subsidy on eligible loans (default none).")
    discount_rate: InterestRate = Field(0.03, description="Annual rate at which fiscal costs are discounted to the start for their net present value.")
    assessment: Assessment = Field(default_factory=Assessment, description="How 两增 and 两控 are assessed (default: the rule in force each year, NPL margin 3pp).")
    targets: dict[Annotated[str, BeforeValidator(_target_name)], Target] = Field(default_factory=dict, description="The plan's targets, keyed by name (default none).")
    assumptions: Annotated[tuple[Assumption, ...], BeforeValidator(_as_tuple)] = Field((), description="Documented assumptions with their plausible ranges (default none): what creditsim sensitivity varies and run --parameter-uncertainty draws.")

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
        """Month index (see :func:`creditsim.scenario.units.month_index`) of the first simulated month."""
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

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain JSON-able data that :func:`scenario_from_dict` accepts again."""
        return self.model_dump(mode="json")

    def to_toml(self, header: str = "") -> str:
        """The scenario as TOML that :func:`load_scenario` reads back to an equal scenario (amounts with their unit,
        rates as fractions); ``header`` lines are written first as comments."""
        import tomli_w

        from .written import with_units

        def present(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: present(v) for k, v in value.items() if v is not None}
            if isinstance(value, list):
                return [present(v) for v in value]
            return value

        comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        return comments + tomli_w.dumps(present(with_units(self.to_dict())))

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: equal digests mean equal scenarios."""
        return json_digest(self.to_dict())



def admitted(names: Sequence[str] | None, everyone: Sequence[str]) -> list[bool]:
    """For each of ``everyone`` (bank or segment names, in scenario order), whether a list of eligible names
    admits it; None (the field left out) admits all."""
    return [names is None or name in names for name in everyone]



def json_digest(data: Any) -> str:
    """SHA-256 of JSON-able data in canonical form (sorted keys, no spaces): equal data, equal digests."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def numeric_fields(data: Any, prefix: str = "") -> dict[str, float | list[float]]:
    """Every number and list of numbers of scenario data (:meth:`Scenario.to_dict`), by dotted field (the fields a
    dotted key with ``*`` wildcards can match)."""
    found: dict[str, float | list[float]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            found.update(numeric_fields(value, f"{prefix}{key}."))
    elif isinstance(data, bool):
        pass
    elif isinstance(data, int | float):
        found[prefix[:-1]] = float(data)
    elif isinstance(data, list) and data and all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
        found[prefix[:-1]] = [float(v) for v in data]
    return found


def key_fields(numeric: dict[str, float | list[float]], key: str) -> tuple[tuple[str, ...], bool]:
    """The fields of :func:`numeric_fields` a dotted key (``*`` wildcards allowed) names, and whether the key is
    varied as a multiplier of their values (it has a wildcard, names several fields, or names a list) rather than
    set as one number."""
    fields = tuple(f for f in numeric if fnmatch.fnmatchcase(f, key))
    return fields, bool(fields) and ("*" in key or len(fields) > 1 or isinstance(numeric[fields[0]], list))


def model_at(steps: Sequence[str | int]) -> type[BaseModel] | None:
    """The model of the table at a place in scenario data (the steps of a dotted key, as
    :func:`creditsim.scenario.key_path` gives them): ``["banks", "big_bank"]`` gives :class:`Bank`, ``[]`` the
    :class:`Scenario`; None where the schema has no table (a field's value, a name not yet followed by a field)."""
    model: type[BaseModel] = Scenario
    rest = iter(steps)
    for step in rest:
        info = model.model_fields.get(step) if isinstance(step, str) else None
        inner = None if info is None else model_of(info.annotation)
        if inner is None:
            return None
        if getattr(info.annotation, "__origin__", None) in (dict, tuple) and next(rest, None) is None:  # type: ignore[union-attr]
            return None  # the table of banks (or list of tables) itself, not one of them
        model = inner
    return model


def field_at(steps: Sequence[str | int]) -> tuple[type[BaseModel], str] | None:
    """The model and field a place in scenario data belongs to: ``["banks", "big_bank", "rate", "2021"]`` gives
    (:class:`Bank`, ``"rate"``); None for a place the schema does not have."""
    for depth in range(len(steps) - 1, -1, -1):
        model = model_at(steps[:depth])
        if model is not None:
            name = steps[depth]
            return (model, name) if isinstance(name, str) and name in model.model_fields else None
    return None


def field_kind(model: type[BaseModel], name: str) -> str:
    """What a field's numbers are, from the parsers of its type: ``"CNY"`` (amounts), ``"%"`` (rates, shares and
    growth), ``"count"``, ``"sample"`` (the sample share), or ``""`` (plain numbers, text, months, true/false, tables)."""
    info = model.model_fields[name]
    parsers = _parsers([info.annotation, *info.metadata])
    for kinds, kind in (((parse_amount, _positive_amount), "CNY"), ((_probability, _growth, _interest_rate, _fee_rate, parse_rate), "%"), ((parse_count,), "count"),
                        ((_sample,), "sample")):
        if any(parser in kinds for parser in parsers):
            return kind
    return ""


def is_amount(model: type[BaseModel], name: str) -> bool:
    """Whether a field holds amounts of money, in CNY (its values are parsed by :func:`parse_amount`)."""
    return field_kind(model, name) == "CNY"


def _parsers(annotations: Sequence[Any]) -> list[Any]:
    """The functions of the BeforeValidators in type annotations, however nested (in unions, Annotated, tables)."""
    found = []
    for item in annotations:
        if isinstance(item, BeforeValidator):
            found.append(item.func)
        found += _parsers([*getattr(item, "__metadata__", ()), *getattr(item, "__args__", ())])
    return found


def nesting(annotation: Any) -> int:
    """The most levels of tables and lists data of a type can nest, i.e. the most steps of a dotted key into it:
    ``nesting(Scenario)`` is 5 (``banks.NAME.loan_tape.amount[0]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return 1 + max((nesting(info.annotation) for info in annotation.model_fields.values()), default=0)
    inner = max((nesting(arg) for arg in get_args(annotation) if arg is not Ellipsis), default=0)
    return inner + 1 if get_origin(annotation) in (dict, tuple, list) else inner


def model_of(annotation: Any) -> Any:
    """The scenario model a field's type annotation holds (a section, or the items of a table), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_of(arg)
        if found is not None:
            return found
    return None


