"""The state of one path: every firm, the borrowers and their loans, the bank books, the instruments' books.

A :class:`State` is a named tuple of numpy arrays (compiled as a StructRef that borrows them, see
:mod:`creditsim.model.structs`) allocated once per thread and reset at the start of each path
(:func:`creditsim.model.month.start_path`); the compiled engine changes them in place. Firms keep one row for the
whole run, from the opening (or their registration) to the month they leave, with or without a loan, so that a
firm is the same firm whatever a policy makes it do. Borrowers and loans live in tables whose rows are recycled:

* ``firms`` (:data:`FIRM`): segment, grade, state (:data:`NEVER` … :data:`GONE`), the month its default clock
  starts (its default month is a function of its identity and the path, see
  :func:`creditsim.model.population.default_month_of`), the month it leaves the firms without a loan, and its
  borrower row;
* ``borrowers`` (:data:`BORROWER`): one row per borrower, with its facility (loans made together share a term and
  end together) and where its loans lie in ``loans``; ``ends`` holds the month each borrower's loans end and
  ``by_default`` whether they end by the firm's default, compact columns the month scans without reading a row;
* ``loans`` (:data:`LOAN`): blocks of consecutive rows, one block per borrower, recycled through free lists by size;
* ``events``: for each month, the firms without a loan that fail or close in it (linked lists);
* ``unbanked``, ``open_bits`` and ``campaign_bits``: the firms without a loan counted by cohort and state, and as
  bit sets, one bit per firm row (the sets :func:`creditsim.model.population.pick` draws from), kept by
  :func:`creditsim.model.book.set_state`.

Capacities are estimated before a run (:func:`capacities`); when a path needs more, it stops, the tables grow and
the path runs again from its start (its numbers are the same: every draw is keyed, see :mod:`.random`).
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import numpy as np

from ..metrics import SCOPE_METRICS
from ..scenario.opening import DECLINED, FORMER, FORMER_FIRST_TIME, NEVER, POOL_STATES
from .columns import BOOK, DUE
from .instruments import guarantees, pools, subsidy
from .instruments.guarantees import GuaranteeState
from .instruments.pools import PoolState
from .instruments.subsidy import SubsidyState
from .params import Params
from .random import PURPOSES
from .structs import BOOL_1, FLOAT_1, FLOAT_2, FLOAT_3, INT_1, INT_2, INT_3, array, register

__all__ = ["FIRM", "BORROWER", "LINE", "LOAN", "TRACE", "WANTED", "RENEWED", "state_bytes", "NEVER", "FORMER", "FORMER_FIRST_TIME", "DECLINED", "BORROWING", "GONE", "STATES",
           "Capacity", "State", "new_state", "capacities", "CURSOR", "OVERFLOW"]

#: A firm's states: the four of a firm without a loan (:mod:`creditsim.scenario.opening`: never borrowed, 无贷户;
#: borrowed before; a 首贷户 that repaid; never borrowed and declined on its thin file), then borrowing now, and gone
#: (failed, closed or graduated out of the inclusive book). Firms without a loan are also counted by state.
STATES = POOL_STATES
BORROWING, GONE = POOL_STATES, POOL_STATES + 1

FIRM = np.dtype([("segment", np.int8), ("grade", np.int8), ("state", np.int8), ("clock", np.int16), ("leave", np.int16),
                 ("slot", np.int32)], align=True)
#: A borrower's row is one 64-byte cache line (the table starts on a line, see :func:`new_state`): a month's events
#: read the rows of scattered borrowers, and a row read is then one memory access. Its loans' rate is not stored: it
#: follows from the bank and the belief it was priced at (:func:`creditsim.model.book.loan_rate`).
BORROWER = np.dtype([
    ("firm", np.int32), ("first", np.int32), ("loans", np.int16), ("block", np.int16), ("bank", np.int16), ("default_month", np.int16),
    ("segment", np.int8),
    ("grade", np.int8), ("term", np.int16), ("maturity", np.int16), ("start", np.int16), ("since", np.int16), ("history", np.int16),
    ("repaid", np.int16), ("cover", np.int16), ("first_time", np.bool_), ("graduating", np.bool_), ("masked", np.bool_),
    ("evergreen", np.bool_), ("subsidised", np.bool_), ("bridged", np.bool_), ("deferred", np.bool_), ("signal", np.float64), ("belief", np.float64),
    ("line", np.float64),
], align=True)
assert BORROWER.itemsize == 64
#: Bytes of a cache line: the borrower table starts on one.
LINE = 64
#: ``plan``: what a maturing loan does (:data:`WANTED` | :data:`RENEWED` bits), between the passes of a maturity.
LOAN = np.dtype([("amount", np.float64), ("index", np.int16), ("product", np.int8), ("renewals", np.int8), ("cover", np.int16),
                 ("plan", np.int8)], align=True)
WANTED, RENEWED = 1, 2
#: A loan of the loan-level trace (see :mod:`.trace`).
TRACE = np.dtype([("path", np.int32), ("firm", np.int32), ("bank", np.int16), ("segment", np.int8), ("grade", np.int8),
                  ("start", np.int16), ("end", np.int16), ("how", np.int8), ("product", np.int8), ("renewals", np.int8),
                  ("first_time", np.bool_), ("cover", np.int16), ("amount", np.float64), ("rate", np.float64)], align=True)


class CursorColumns(NamedTuple):
    firms: int            # firm rows in use
    free_slots: int       # borrower rows on the free stack
    loans_top: int        # loan rows ever handed out from the top of the table
    free_events: int      # head of the free list of event nodes
    traced: int           # trace records written
    overflow: int         # 0, or which table ran out (see OVERFLOW)
    detail: int           # what ran out, where it matters (the bank whose all_loans is too small)


CURSOR = CursorColumns(*range(len(CursorColumns._fields)))


class OverflowCodes(NamedTuple):
    firms: int
    borrowers: int
    loans: int
    events: int
    scratch: int
    trace: int
    all_loans: int        # not a table: a bank's all_loans is below its opening inclusive balance


OVERFLOW = OverflowCodes(*range(1, len(OverflowCodes._fields) + 1))


class Capacity(NamedTuple):
    """Rows of each table."""

    firms: int
    borrowers: int
    loans: int
    events: int
    scratch: int
    trace: int
    blocks: int           # the largest block size the free lists track


@register
class State(NamedTuple):
    """One path's tables, running totals and instruments' books (see the module docstring); money in fen."""

    cursor: Annotated[np.ndarray, INT_1]            # int64 (len(CURSOR),)
    firms: Annotated[np.ndarray, array(FIRM)]             # FIRM (capacity.firms,)
    unbanked: Annotated[np.ndarray, INT_3]          # int64 (S, G, STATES): firms without a loan
    open_bits: Annotated[np.ndarray, array(np.uint64, 2)]     # uint64 (S, blocks): bit i of word b set when firm 64b + i of the segment has no loan
    campaign_bits: Annotated[np.ndarray, array(np.uint64, 2)]  # uint64 (1, blocks): ... when it is on the 无贷户 list (never borrowed, listed segment)
    event_head: Annotated[np.ndarray, array(np.int32)]        # int32 (M + 2,): first event node of each month (-1: none)
    event_next: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.events,)
    event_firm: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.events,)
    borrowers: Annotated[np.ndarray, array(BORROWER)]         # BORROWER (capacity.borrowers,)
    ends: Annotated[np.ndarray, array(np.int16)]              # int16 (capacity.borrowers,): month a borrower's loans end (-1: free row)
    by_default: Annotated[np.ndarray, BOOL_1]                 # bool (capacity.borrowers,): ... by the firm's default (else at maturity)
    free_slots: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.borrowers,): stack of free borrower rows
    loans: Annotated[np.ndarray, array(LOAN)]             # LOAN (capacity.loans,)
    block_next: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.loans,): next free block of the same size
    block_free: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.blocks + 1,): first free block of each size (-1: none)
    cumulative_hazard: Annotated[np.ndarray, FLOAT_2]  # float64 (S × G, M + 1)
    surviving: Annotated[np.ndarray, FLOAT_2]  # float64 (S × G, M + 1): P(no default by M | alive at the end of month a)
    book: Annotated[np.ndarray, FLOAT_2]              # float64 (B, len(BOOK)): each bank's running totals
    due: Annotated[np.ndarray, FLOAT_3]               # float64 (H, B, len(DUE)): resolutions filed by month
    flows: Annotated[np.ndarray, FLOAT_2]             # float64 (B, bank metrics): this month's flows
    population: Annotated[np.ndarray, FLOAT_1]        # float64 (population metrics,): this month's flows
    campaign_left: Annotated[np.ndarray, FLOAT_1]     # float64 (1,): firms left on the 无贷户 list
    appetite: Annotated[np.ndarray, FLOAT_1]          # float64 (B,): each bank's appetite for new borrowers this month (max_pd under pressure)
    year_start: Annotated[np.ndarray, FLOAT_2]        # float64 (B, 2): balance and all loans at the start of the year (or run), fen
    pressure: Annotated[np.ndarray, FLOAT_1]          # float64 (B,): each bank's pressure this month, 0–1
    keys: Annotated[np.ndarray, array(np.uint64)]              # uint64 (purposes,): this path's random keys
    scratch_firm: Annotated[np.ndarray, array(np.int32)]      # int32 (capacity.scratch,): firms picked in a month, then applicants
    scratch_key: Annotated[np.ndarray, array(np.uint64)]       # uint64 (capacity.scratch,): their keys
    scratch_int: Annotated[np.ndarray, INT_2]       # int64 (capacity.scratch, 4): applicants' segment, grade, state, bank
    scratch_appetite: Annotated[np.ndarray, FLOAT_1]  # float64 (capacity.scratch,): applicants' risk appetite
    defaulting: Annotated[np.ndarray, array(np.int32)]        # int32 (capacity.borrowers,): this month's borrower rows ending by default
    maturing: Annotated[np.ndarray, array(np.int32)]          # int32 (capacity.borrowers,): ... ending at maturity
    trace: Annotated[np.ndarray, array(TRACE)]             # TRACE (capacity.trace,)
    audit: Annotated[np.ndarray, FLOAT_1]             # float64 (audit checks,): the largest difference each recount found
    audit_scale: Annotated[np.ndarray, FLOAT_1]       # float64 (1,): the largest balance × rate the audit has seen on the path
    guarantees: GuaranteeState
    pools: PoolState
    subsidy: SubsidyState


#: The audit's recounts, in the order of ``State.audit`` (see :mod:`creditsim.model.audit`).
AUDIT_CHECKS = (
    "performing balance", "performing credit balance", "performing loans", "renewal balance", "restructured balance", "rate × balance",
    "performing borrowers", "loans within each borrower's block", "credit line per borrower", "guarantee liability",
    "guarantee liability on small loans", "subsidised balance", "pool covered balance", "believed PD per borrower", "npl balance",
    "npl credit balance", "npl loans", "npl borrowers", "firms without a loan by state", "borrowers and their firms", "end month",
    "finite balances", "no firm without a loan left after its month", "free borrower rows", "end by default or at maturity",
    "guaranteed principal", "deferred balance",
)


def new_state(p: Params, capacity: Capacity) -> State:
    """A state with the given capacities (contents are set by :func:`creditsim.model.month.start_path`)."""
    f = p.firms
    n_seg, n_grade = f.pd.shape
    n_bank = p.banks.max_pd.shape[0]
    months, horizon = p.calendar.months, p.calendar.horizon
    blocks = (capacity.firms + 63) // 64
    z = np.zeros
    return State(
        cursor=z(len(CURSOR), np.int64), firms=z(capacity.firms, FIRM), unbanked=z((n_seg, n_grade, STATES), np.int64),
        open_bits=z((n_seg, blocks), np.uint64), campaign_bits=z((1, blocks), np.uint64),
        event_head=np.full(months + 2, -1, np.int32), event_next=z(capacity.events, np.int32), event_firm=z(capacity.events, np.int32),
        borrowers=_on_a_line(capacity.borrowers, BORROWER), ends=np.full(capacity.borrowers, -1, np.int16),
        by_default=z(capacity.borrowers, np.bool_), free_slots=z(capacity.borrowers, np.int32),
        loans=z(capacity.loans, LOAN), block_next=z(capacity.loans, np.int32), block_free=np.full(capacity.blocks + 1, -1, np.int32),
        cumulative_hazard=z((n_seg * n_grade, months + 1)), surviving=z((n_seg * n_grade, months + 1)), book=z((n_bank, len(BOOK))), due=z((horizon, n_bank, len(DUE))),
        flows=z((n_bank, len(SCOPE_METRICS["bank"]))), population=z(len(SCOPE_METRICS["population"])), campaign_left=z(1),
        appetite=p.banks.max_pd.copy(), year_start=z((n_bank, 2)), pressure=z(n_bank),
        keys=z(len(PURPOSES), np.uint64), scratch_firm=z(capacity.scratch, np.int32), scratch_key=z(capacity.scratch, np.uint64),
        scratch_int=z((capacity.scratch, 4), np.int64), scratch_appetite=z(capacity.scratch),
        defaulting=z(capacity.borrowers, np.int32), maturing=z(capacity.borrowers, np.int32), trace=z(capacity.trace, TRACE),
        audit=z(len(AUDIT_CHECKS)), audit_scale=z(1), guarantees=guarantees.new_state(p.guarantees, horizon, n_bank), pools=pools.new_state(p.pools, horizon, n_bank),
        subsidy=subsidy.new_state(p.subsidy, n_bank),
    )


def _on_a_line(n: int, dtype: np.dtype) -> np.ndarray:
    """Zeros of ``dtype`` (n,) whose first element starts a cache line."""
    raw = np.zeros(n * dtype.itemsize + LINE, np.uint8)
    skip = -raw.ctypes.data % LINE
    return raw[skip: skip + n * dtype.itemsize].view(dtype)


def capacities(p: Params, traced: bool = False) -> Capacity:
    """First estimates of the tables a path of ``p`` needs (a path that needs more grows them and runs again).

    Firms: the opening firms (the loan tapes' included) and the entries over the run (Poisson, with a margin of 8
    standard deviations). Borrowers: the opening borrowers, a year of applications (outreach's included), relief applications and campaign reach as if all
    were approved, and a margin. Loans: borrowers × loans per borrower, with a margin, and the loan tapes' loans. Scratch: eight times the largest month's
    applicants and campaign reach (the firms a pick looks at before it keeps the smallest keys), and a margin.
    Trace (when a path is traced): a sixth of the loans for every month of the run and a year more.
    """
    f, months = p.firms, p.calendar.months
    tape_firms, tape_loans = p.tape.bank.shape[0], p.tape.amount.shape[0]
    opening_firms = int(f.opening_borrowers.sum() + f.opening_unbanked.sum()) + tape_firms
    entries = float(f.entries.sum()) * months
    firms = opening_firms + int(entries + 8.0 * math.sqrt(entries) + 16)
    monthly = float(f.applications.sum() * f.application_growth.max() * (1.0 + p.pressure.outreach)) + float(p.campaign.reach.sum()) + float(p.relief.lending_applications.sum())
    peak_month = monthly + 8.0 * math.sqrt(monthly) + 64
    opening_borrowers = int(f.opening_borrowers.sum()) + tape_firms
    borrowers = min(firms, int(1.1 * opening_borrowers + 12 * monthly) + 1024)
    per_borrower = 1.0 + f.extra_loans
    loans = int(borrowers * (per_borrower + 3.0 * math.sqrt(max(f.extra_loans, 0.0)) + 0.25)) + tape_loans + 1024
    events = min(firms, int(0.5 * opening_firms + entries) + 1024)
    blocks = max(int(per_borrower + 10.0 * math.sqrt(per_borrower) + 16), int(np.diff(p.tape.first).max(initial=0)))
    return Capacity(firms=firms, borrowers=borrowers, loans=loans, events=events, scratch=int(8 * peak_month) + 1024,
                    trace=(loans * (months + 12) // 6 + 1024) if traced else 1, blocks=blocks)


def state_bytes(p: Params, capacity: Capacity) -> int:
    """The bytes of a :class:`State` of ``p`` with ``capacity`` (what :func:`new_state` allocates)."""
    n_seg, n_grade = p.firms.pd.shape
    n_bank, horizon, months = p.banks.max_pd.shape[0], p.calendar.horizon, p.calendar.months
    n_g, n_r, n_p = p.guarantees.coverage.shape[0], p.guarantees.reg_fee.shape[0], p.pools.share.shape[0]
    per_borrower = BORROWER.itemsize + 2 + 1 + 4 + 2 * 4  # the row, its end month and how, the free stack, this month's lists
    per_loan = LOAN.itemsize + 4
    per_scratch = 4 + 8 + 4 * 8 + 8
    filings = horizon * n_bank * (len(DUE) + n_g + 2 * n_p) + horizon * (n_g * (1 + n_r) + 2 * n_r + n_g + n_p)
    return int(capacity.firms * (FIRM.itemsize + (n_seg + 1) / 8.0) + capacity.borrowers * per_borrower + capacity.loans * per_loan + capacity.events * 8
               + capacity.scratch * per_scratch + capacity.trace * TRACE.itemsize + 8 * (2 * n_seg * n_grade * (months + 1) + filings))
