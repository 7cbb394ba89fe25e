"""A bank's loan tape: its opening book loan by loan, read from a CSV or Parquet file and resolved against the scenario.

:func:`read_loan_tape` reads a file into columns, which :class:`~creditsim.scenario.schema.LoanTape` checks row by
row and puts in their normal form. :func:`opening_tapes` resolves every bank's tape against its scenario (segments,
grades, dates, cover, firms) into the arrays the engine starts a path from, and refuses a row that cannot be part of
the scenario's opening book. :func:`sampled_tape` is the part of a tape the engine runs for a ``sample`` below 1.

Every problem is one line naming the file, the row (as a spreadsheet counts it: the header is row 1) and the column,
e.g. ``loan tape book.csv, row 17, column maturity: '2019-13' is not a month (YYYY-MM)``.

The rules (docs/how-to/load-a-loan-tape.md):

* rows of one ``firm`` are one borrower's loans: they share start, maturity, status, segment, grade and default
  month (the engine's borrower has one facility, and its loans default together), at most
  :data:`MAX_FIRM_LOANS` of them, adding up to no more than ``firms.inclusive_line_limit``;
* ``segment`` may be left out when the scenario has one segment; ``pd`` maps to the grade of the firm's segment
  nearest on the log-odds scale (ties to the first);
* a loan starts before ``calendar.start`` and matures after its start, within :data:`MAX_TERM` months; a
  performing loan matures in the run (in ``calendar.start`` or later);
* an npl loan defaulted (``defaulted``, by default the month before ``calendar.start``) on or after its start and
  before ``calendar.start``, fewer than ``risk.write_off_months`` (the opening year's) months before the start; its ``amount`` is what the
  bank still carries, which awaits its recovery of (1 − the product's mean LGD) when it defaulted fewer than
  ``risk.recovery_lag_months`` months before the start (else it is what was left after the recovery), and its
  write-off ``write_off_months`` (the opening year's, as for the opening stock) after it defaulted: the bank's loss. Its cover's claim or compensation was settled
  before the start, as for ``opening_npl_ratio``'s stock, and is not in ``amount``;
* ``cover`` names a guarantor (of a guaranteed loan) or a pool (of a product it covers) that admits the bank and the
  segment, the firm's line within a guarantor's ``max_line`` and the loan within a pool's ``max_loan``. The cover is
  an existing contract: it is held whatever room the instrument has left.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ScenarioError
from ..files import open_regular
from .growth import rates_by_year
from .schema import MAX_TAPE_LOANS, PRODUCTS, LoanTape, Scenario, admitted, tape_error
from .units import amount_text, month_index, month_label

__all__ = ["MAX_FIRM_LOANS", "MAX_TAPE_BYTES", "MAX_TERM", "OpeningTapes", "read_loan_tape", "opening_tapes", "sampled_tape"]

#: The largest loan tape file read, bytes: 1 GiB, room for MAX_TAPE_LOANS rows of 200 bytes; a larger file (or a
#: FIFO, device or directory) is refused before it is read.
MAX_TAPE_BYTES = 1024**3

#: The most loans one firm of a loan tape may hold (as ``demand.loans_per_borrower``'s limit).
MAX_FIRM_LOANS = 100
#: The longest term of a loan, months (as ``term_mix``'s).
MAX_TERM = 360
#: Fen per CNY.
_FEN = 100.0
_GUARANTEED = PRODUCTS.index("guaranteed")


def read_loan_tape(name: str, base: str | Path | None, field: str) -> dict[str, Any]:
    """Read a loan tape file into columns (one list per column, cells as written), for
    :class:`~creditsim.scenario.schema.LoanTape` to check.

    Parameters
    ----------
    name : str
        The file as the scenario names it: a path ending in ``.csv`` (UTF-8, a header row of column names) or
        ``.parquet``, relative to ``base``.
    base : str or Path, optional
        The directory of the scenario file (the working directory when None).
    field : str
        The dotted field that names the file, for errors about the file itself.

    Returns
    -------
    dict
        ``{"file": name, column: [cell, ...], ...}``.

    Raises
    ------
    ScenarioError
        When the file cannot be read, is neither CSV nor Parquet, is empty, or its header or a row is malformed.
    """
    path = Path(name) if base is None else Path(base) / name
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ScenarioError(field, name, "must name a loan tape file ending in .csv or .parquet")
    with open_regular(path, "loan tape", most=MAX_TAPE_BYTES, error=lambda rule: ScenarioError(field, name, rule)) as file:
        try:
            columns = _read_csv(file, name) if suffix == ".csv" else _read_parquet(file, name)
        except OSError as exc:
            raise ScenarioError(field, name, f"cannot read the file: {exc.strerror or exc}") from None
    return {"file": name, **columns}


def _read_csv(file: BinaryIO, name: str) -> dict[str, list[str]]:
    try:
        with io.TextIOWrapper(file, newline="", encoding="utf-8-sig") as handle:
            records = csv.reader(handle)
            header = next(records, None)
            if header is None:
                raise tape_error(name, None, None, "is empty")
            header = [column.strip() for column in header]
            _check_header(header, name)
            columns: dict[str, list[str]] = {column: [] for column in header}
            for row, record in enumerate(records, start=2):
                if row - 1 > MAX_TAPE_LOANS:
                    raise tape_error(name, None, None, f"holds more than {MAX_TAPE_LOANS:,} loans")
                if len(record) != len(header):
                    raise tape_error(name, row, None, f"has {len(record)} fields; the header has {len(header)}")
                for column, cell in zip(header, record, strict=True):
                    columns[column].append(cell)
    except UnicodeDecodeError:
        raise tape_error(name, None, None, "is not UTF-8 text") from None
    except csv.Error as exc:
        raise tape_error(name, None, None, f"is not a CSV file ({exc})") from None
    return columns


def _read_parquet(file: BinaryIO, name: str) -> dict[str, list[Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        if parquet.metadata.num_rows > MAX_TAPE_LOANS:  # from the footer, before the rows are read
            raise tape_error(name, None, None, f"holds {parquet.metadata.num_rows:,} loans, more than {MAX_TAPE_LOANS:,}")
        table = parquet.read()
    except (pa.ArrowException, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise tape_error(name, None, None, f"is not a Parquet file ({' '.join(str(exc).split())})") from None
    header = [column.strip() for column in table.column_names]
    _check_header(header, name)
    return {column: table.column(k).to_pylist() for k, column in enumerate(header)}


def _check_header(header: list[str], name: str) -> None:
    for k, column in enumerate(header):
        if not column:
            raise tape_error(name, 1, str(k + 1), "has no name")
        if column in header[:k]:
            raise tape_error(name, 1, column, "appears twice")


# ------------------------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class OpeningTapes:
    """Every bank's loan tape resolved against its scenario, in the engine's terms: F performing firms (each an
    opening borrower with its loans), L loans of theirs, N non-performing loans. Months count from the opening
    (month 0, the month before ``calendar.start``); money is in fen.

    Attributes
    ----------
    borrowers : ndarray of int64, shape (segments, grades, banks)
        The tapes' performing firms by segment, grade and bank.
    bank, segment, grade, age, term : ndarray of int64, shape (F,)
        Each performing firm's bank, segment and grade, and its facility's age at the opening and term, months
        (its loans fall due in month term − age).
    first : ndarray of int64, shape (F + 1,)
        Firm f's loans are loans ``first[f]`` to ``first[f + 1] − 1``.
    amount : ndarray of float, shape (L,)
        Each loan's principal, fen.
    product, cover : ndarray of int64, shape (L,)
        Its product (index into :data:`~creditsim.scenario.PRODUCTS`) and cover (a guarantor's index, the number of
        guarantors + a pool's index, or -1 for none).
    npl_bank, npl_product, npl_age : ndarray of int64, shape (N,)
        Each non-performing loan's bank, product, and months since its default at the opening.
    npl_amount : ndarray of float, shape (N,)
        What the bank still carries of it, fen.
    npl_firm : ndarray of bool, shape (N,)
        The loan is its firm's first non-performing loan (a firm counts once among the borrowers).
    balance, npl_balance : ndarray of float, shape (banks,)
        Each bank's performing and non-performing balance from its tape, CNY.
    """

    borrowers: np.ndarray
    bank: np.ndarray
    segment: np.ndarray
    grade: np.ndarray
    age: np.ndarray
    term: np.ndarray
    first: np.ndarray
    amount: np.ndarray
    product: np.ndarray
    cover: np.ndarray
    npl_bank: np.ndarray
    npl_product: np.ndarray
    npl_age: np.ndarray
    npl_amount: np.ndarray
    npl_firm: np.ndarray
    balance: np.ndarray
    npl_balance: np.ndarray


@dataclass
class _Firm:
    """A firm of a tape while it is read: the row that introduced it, what its rows must share, its rows."""

    row: int
    shared: dict[str, Any]
    rows: list[int]
    line: float = 0.0


#: What the rows of one firm share, with the rule that says why.
_SHARED = {
    "start": "a firm's loans share one start and maturity (the engine's borrower has one facility)",
    "maturity": "a firm's loans share one start and maturity (the engine's borrower has one facility)",
    "status": "a firm's loans default together: all performing or all npl",
    "defaulted": "a firm's loans default together, in one month",
    "segment": "a firm is in one segment",
    "grade": "a firm has one grade",
}


def opening_tapes(scenario: Scenario) -> OpeningTapes:
    """Resolve every bank's loan tape against ``scenario`` (see the module docstring for the rules).

    Raises
    ------
    ScenarioError
        Naming the file, row and column of the first row that breaks a rule.
    """
    s = scenario
    n_seg = len(s.firms.segments)
    n_grade = max(len(seg.pd) for seg in s.firms.segments.values())
    borrowers = np.zeros((n_seg, n_grade, len(s.banks)), dtype=np.int64)
    firms: dict[str, list[int]] = {k: [] for k in ("bank", "segment", "grade", "age", "term")}
    loans: dict[str, list[float]] = {k: [] for k in ("amount", "product", "cover")}
    npl: dict[str, list[float]] = {k: [] for k in ("bank", "product", "age", "amount", "firm")}
    first = [0]
    balance, npl_balance = np.zeros(len(s.banks)), np.zeros(len(s.banks))
    for j, (name, bank) in enumerate(s.banks.items()):
        if bank.loan_tape is None:
            continue
        for firm in _firms(s, name, bank.loan_tape):
            seg, grade = firm.shared["segment"], firm.shared["grade"]
            tape = bank.loan_tape
            if firm.shared["status"] == "npl":
                for k, i in enumerate(firm.rows):
                    for key, value in (("bank", j), ("product", PRODUCTS.index(tape.product[i])), ("amount", round(tape.amount[i] * _FEN)),
                                       ("age", s.start_index - 1 - firm.shared["defaulted"]), ("firm", k == 0)):
                        npl[key].append(value)
                    npl_balance[j] += tape.amount[i]
                continue
            borrowers[seg, grade, j] += 1
            start, maturity = firm.shared["start"], firm.shared["maturity"]
            for key, value in (("bank", j), ("segment", seg), ("grade", grade), ("age", s.start_index - 1 - start), ("term", maturity - start)):
                firms[key].append(value)
            for i in firm.rows:
                loans["amount"].append(round(tape.amount[i] * _FEN))
                loans["product"].append(PRODUCTS.index(tape.product[i]))
                loans["cover"].append(_cover_index(s, tape, i))
                balance[j] += tape.amount[i]
            first.append(first[-1] + len(firm.rows))

    def ints(values: list[Any]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    return OpeningTapes(
        borrowers=borrowers, bank=ints(firms["bank"]), segment=ints(firms["segment"]), grade=ints(firms["grade"]), age=ints(firms["age"]),
        term=ints(firms["term"]), first=ints(first), amount=np.array(loans["amount"], dtype=np.float64), product=ints(loans["product"]),
        cover=ints(loans["cover"]), npl_bank=ints(npl["bank"]), npl_product=ints(npl["product"]), npl_age=ints(npl["age"]),
        npl_amount=np.array(npl["amount"], dtype=np.float64), npl_firm=np.array(npl["firm"], dtype=np.bool_),
        balance=balance, npl_balance=npl_balance,
    )


def _cover_index(s: Scenario, tape: LoanTape, i: int) -> int:
    name = tape.cover[i] if tape.cover is not None else ""
    if not name:
        return -1
    guarantors = list(s.guarantors)
    return guarantors.index(name) if name in s.guarantors else len(guarantors) + list(s.pools).index(name)


def _firms(s: Scenario, bank: str, tape: LoanTape) -> list[_Firm]:
    """The firms of a bank's tape, in order of their first row, each row checked against the scenario."""
    file = tape.file
    segments = list(s.firms.segments)
    if tape.segment is None and len(segments) > 1:
        raise tape_error(file, 1, "segment", f"is missing: the scenario has {len(segments)} segments ({', '.join(segments)}), so each loan names its own")
    opening = s.start_index - 1
    write_off = int(rates_by_year(s.risk.write_off_months, [opening // 12])[0])
    firms: dict[str, _Firm] = {}
    for i in range(tape.loans):
        row = i + 2

        def bad(column: str, rule: str, row: int = row) -> ScenarioError:
            return tape_error(file, row, column, rule)

        segment = segments[0] if tape.segment is None else tape.segment[i]
        if segment not in s.firms.segments:
            raise bad("segment", f"{segment!r} is not a segment of the scenario ({', '.join(segments)})")
        seg = segments.index(segment)
        grades = s.firms.segments[segment].pd
        if tape.grade is not None:
            grade = tape.grade[i]
            if grade >= len(grades):
                raise bad("grade", f"{grade} is not a grade of segment {segment}, whose grades are 0 to {len(grades) - 1}")
        else:
            assert tape.pd is not None  # LoanTape holds one of them
            grade = nearest_grade(tape.pd[i], grades)
        start, maturity = month_index(tape.start[i]), month_index(tape.maturity[i])
        if start > opening:
            raise bad("start", f"{tape.start[i]!r} is not before calendar.start ({s.calendar.start}): the tape is the book at the opening")
        if maturity <= start:
            raise bad("maturity", f"{tape.maturity[i]!r} is not after the loan's start ({tape.start[i]})")
        if maturity - start > MAX_TERM:
            raise bad("maturity", f"{tape.maturity[i]!r} makes a term of {maturity - start} months, more than {MAX_TERM}")
        performing = tape.status[i] == "performing"
        if performing and maturity <= opening:
            raise bad("maturity", f"{tape.maturity[i]!r} is before calendar.start ({s.calendar.start}): a performing loan of the opening book "
                                  "falls due in the run (or it is npl)")
        defaulted = None
        if not performing:
            written = tape.defaulted[i] if tape.defaulted is not None else ""
            defaulted = month_index(written) if written else opening
            shown = repr(written) if written else f"{month_label(opening)} (the month before calendar.start, as no default month is given)"
            column = "defaulted" if written else "status"
            if defaulted > opening:
                raise bad(column, f"{shown} is not before calendar.start ({s.calendar.start})")
            if defaulted < start:
                raise bad(column, f"{shown} is before the loan's start ({tape.start[i]})")
            if opening - defaulted >= write_off:
                raise bad(column, f"{shown} is {opening - defaulted} months before the opening: the loan was written off by then "
                                  f"(risk.write_off_months = {write_off} in the opening's year)")
        _check_cover(s, bank, tape, i, seg, bad)
        key = tape.firm[i] if tape.firm is not None else f"row {row}"
        shared = {"start": start, "maturity": maturity, "status": tape.status[i], "defaulted": defaulted, "segment": seg, "grade": grade}
        firm = firms.get(key)
        if firm is None:
            firm = firms[key] = _Firm(row, shared, [])
        else:
            for column, rule in _SHARED.items():
                if shared[column] != firm.shared[column]:
                    raise bad("pd" if column == "grade" and tape.grade is None else column,
                              f"firm {key!r} has {_as_written(tape, column, firm.rows[0], segments)} on row {firm.row}: {rule}")
            if len(firm.rows) == MAX_FIRM_LOANS:
                raise bad("firm", f"firm {key!r} has more than {MAX_FIRM_LOANS} loans")
        firm.rows.append(i)
        firm.line += tape.amount[i]
        if firm.line > s.firms.inclusive_line_limit:
            raise bad("amount", f"firm {key!r}'s loans add up to {amount_text(firm.line)}, above firms.inclusive_line_limit "
                                f"({amount_text(s.firms.inclusive_line_limit)}): a loan tape holds the inclusive book")
    for key, firm in firms.items():  # a guarantor's max_line is on the firm's whole line
        for i in firm.rows:
            name = tape.cover[i] if tape.cover is not None else ""
            if name in s.guarantors and firm.line > s.guarantors[name].max_line:
                raise tape_error(file, i + 2, "cover", f"firm {key!r}'s line ({amount_text(firm.line)}) is above guarantor {name}'s max_line "
                                                       f"({amount_text(s.guarantors[name].max_line)})")
    return list(firms.values())


def _as_written(tape: LoanTape, column: str, i: int, segments: list[str]) -> str:
    """What row ``i`` gives in one of the columns a firm's rows share, for an error."""
    if column == "segment":
        return f"segment {tape.segment[i] if tape.segment is not None else segments[0]}"
    if column == "grade":
        return f"grade {tape.grade[i]}" if tape.grade is not None else f"pd {tape.pd[i]:g}" if tape.pd is not None else ""
    if column == "defaulted":
        return f"default month {tape.defaulted[i]}" if tape.defaulted is not None and tape.defaulted[i] else "no default month"
    return f"{column} {getattr(tape, column)[i]}"


def _check_cover(s: Scenario, bank: str, tape: LoanTape, i: int, seg: int, bad: Any) -> None:
    """A loan's cover names an instrument of the scenario that could cover it (see the module docstring)."""
    name = tape.cover[i] if tape.cover is not None else ""
    if not name:
        return
    segment = list(s.firms.segments)[seg]
    product = tape.product[i]
    if name in s.guarantors:
        g = s.guarantors[name]
        what = f"guarantor {name}"
        if product != "guaranteed":
            raise bad("cover", f"{what} covers guaranteed loans, and this loan is {product}")
    elif name in s.pools:
        g = s.pools[name]
        what = f"pool {name}"
        if product not in g.products:
            raise bad("cover", f"{what} covers {', '.join(g.products)} loans, and this loan is {product}")
        if tape.amount[i] > g.max_loan:
            raise bad("cover", f"{what} covers loans up to its max_loan ({amount_text(g.max_loan)}), and this loan is {amount_text(tape.amount[i])}")
    else:
        raise bad("cover", f"{name!r} is not a guarantor or pool of the scenario (guarantors: {', '.join(s.guarantors) or 'none'}; "
                           f"pools: {', '.join(s.pools) or 'none'})")
    if not admitted(g.banks, [bank])[0]:
        raise bad("cover", f"{what} does not admit bank {bank} (its banks: {', '.join(g.banks or ())})")
    if not admitted(g.segments, [segment])[0]:
        raise bad("cover", f"{what} does not admit segment {segment} (its segments: {', '.join(g.segments or ())})")


def nearest_grade(pd: float, grades: tuple[float, ...]) -> int:
    """The grade whose PD is nearest ``pd`` on the log-odds scale, |logit(pd) − logit(PD_g)| (ties go to the first
    grade; a PD of 0 is nearest the smallest PD)."""
    if pd == 0.0:
        return int(np.argmin(grades))
    x = math.log(pd / (1.0 - pd))
    distance = [abs(x - math.log(g / (1.0 - g))) if 0.0 < g < 1.0 else math.inf for g in grades]
    return int(np.argmin(distance))


# ------------------------------------------------------------------------------------------------ sampling
def sampled_tape(tape: LoanTape, share: float) -> LoanTape:
    """The part of a tape the engine runs for a sample of ``share`` of the firms: of its n performing firms (in order
    of their first row, numbered 0 … n − 1), the m = round(share × n) (halves up) at positions
    floor((j + ½) n / m), j = 0 … m − 1, evenly spaced; of its npl firms likewise. A firm keeps all its rows."""
    keys = tape.firm if tape.firm is not None else [str(i) for i in range(tape.loans)]
    kept: set[str] = set()
    for status in ("performing", "npl"):
        order = list(dict.fromkeys(k for k, st in zip(keys, tape.status, strict=True) if st == status))
        n = len(order)
        m = math.floor(share * n + 0.5)
        kept.update(order[(2 * j + 1) * n // (2 * m)] for j in range(m))
    rows = [i for i, key in enumerate(keys) if key in kept]
    update = {name: tuple(values[i] for i in rows) for name, values in tape if isinstance(values, tuple)}
    return tape.model_copy(update=update)
