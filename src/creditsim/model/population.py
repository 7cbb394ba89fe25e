"""The firm population: firms registering, firms without a loan failing or closing, and picking firms at random.

Every firm has a row from the month it enters the run. A firm without a loan is filed under the month it leaves
(:func:`creditsim.model.book.schedule`): its default month (drawn once for its life, see :mod:`.hazards`) or the
month it closes, whichever comes first; a firm closes each month with probability q = 1 − (1 − exit_rate)^(1/12), so
its closing month is the start of its spell without a loan plus a geometric number of months, drawn when the spell
begins. A month then touches only the firms that leave in it.

:func:`pick` draws firms without replacement from a set (the firms without a loan of a segment, or those on the
首贷 list, kept as bit sets by :func:`creditsim.model.book.set_state`) with counter-based keys: each firm has a
64-bit key per purpose and month, and the firms picked are the ones with the smallest keys, a uniformly random
subset. The key's top :data:`KEY_BITS` bits come from words drawn per block of 64 consecutive firm rows, so a block
is cut down to the firms whose key is small with a few words, without looking at a firm; only those firms' full keys
are drawn. A firm's key does not depend on who else is in the set, so a policy that changes a few firms' states
leaves the others' chances, and the firms picked, alone.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from .book import AHEAD, new_firm, schedule, set_state
from .columns import POPULATION
from .hazards import default_month
from .random import KEY, bits, open_uniform, pick_column, poisson, uniform
from .state import BORROWING, CURSOR, GONE, NEVER
from .structs import prefetch

__all__ = ["enter", "leave", "start_spell", "pick", "KEY_BITS"]

#: Bits of a firm's key drawn per block of 64 firm rows (the finest level of the search: a set is cut down at most to
#: 1/256 of it before keys are drawn firm by firm).
KEY_BITS = 8
_INDEX_FIRM_BITS = 1 << 19  # the draw index of a firm's own key bits (block words use 0 .. KEY_BITS - 1)
_U = np.uint64


@njit(cache=True, nogil=True, inline="always")
def default_month_of(p, s, firm):
    """A firm's default month, M + 1 when not within the run: a pure function of the firm and the path. Its default
    clock E ~ Exp(1) (keyed by the firm) inverts its cohort's cumulative hazard from the month its clock starts (see
    :func:`creditsim.model.hazards.default_month`); most firms do not default within the run, which one comparison
    with the probability of surviving it tells without the logarithm and the search."""
    row = s.firms[firm]
    cohort = row.segment * p.firms.pd.shape[1] + row.grade
    u = open_uniform(s.keys[KEY.default_clock], firm, 0, 0)
    if u < s.surviving[cohort, row.clock]:  # E = -log u > Lambda(M) - Lambda(clock)
        return p.calendar.months + 1
    return default_month(s.cumulative_hazard, cohort, row.clock, -math.log(u))


@njit(cache=True, nogil=True, inline="always")
def exit_month(p, s, firm, segment, first):
    """The month a firm without a loan since month ``first`` closes: ``first`` + a geometric number of months with
    the segment's monthly closing probability q, ``floor(log U / log(1 − q))`` (M + 1 when not within the run, which
    ``U ≤ (1 − q)^(M − first + 1)`` tells without the logarithm)."""
    q = p.firms.exit_prob[segment]
    months = p.calendar.months
    if q <= 0.0 or first > months:
        return months + 1
    if q >= 1.0:
        return first
    u = open_uniform(s.keys[KEY.exit], firm, first, 0)
    if u <= p.firms.stay[segment, months - first + 1]:
        return months + 1
    extra = math.floor(math.log(u) / math.log1p(-q))
    return int(min(first + extra, months + 1.0))


@njit(cache=True, nogil=True, inline="always")
def start_spell(p, s, firm, first):
    """A firm begins a spell without a loan in month ``first``: file it under the month it leaves."""
    row = s.firms[firm]
    month = min(default_month_of(p, s, firm), exit_month(p, s, firm, row.segment, first))
    schedule(s, firm, month, p.calendar.months)


@njit(cache=True, nogil=True)
def enter(p, s, t):
    """Firms register in month ``t``: Poisson(entry_per_year / 12) per segment, 无贷户 of a grade drawn by share; each
    gets its default clock and its closing month from ``t`` on (it may fail or close this month)."""
    n_seg, n_grade = p.firms.pd.shape
    total = 0
    for seg in range(n_seg):
        n = poisson(s.keys[KEY.entries], seg, t, p.firms.entries[seg])
        for _ in range(n):
            firm = s.cursor[CURSOR.firms]
            grade = pick_column(p.firms.grade_cumulative, seg, uniform(s.keys[KEY.grade], firm, t, 0))
            if new_firm(p, s, seg, grade, NEVER, t - 1) < 0:
                return
            start_spell(p, s, firm, t)
        total += n
    s.population[POPULATION.firm_entries] = total


@njit(cache=True, nogil=True, inline="always")
def _leave(p, s, t, firm):
    row = s.firms[firm]
    if row.state >= BORROWING or row.leave != t:
        return
    if default_month_of(p, s, firm) == t:
        s.population[POPULATION.firm_failures] += 1.0
    else:
        s.population[POPULATION.firm_exits] += 1.0
    set_state(p, s, firm, GONE)


@njit(cache=True, nogil=True)
def leave(p, s, t):
    """Firms without a loan filed under month ``t`` leave: they fail at their default month, or else close. A firm
    that borrowed in between, or whose filing is out of date, is passed over. Firms are handled in the order of
    their filing, each :data:`AHEAD` filings after its row was asked for."""
    waiting = np.empty(AHEAD, np.int32)
    count = 0
    node = s.event_head[t]
    while node >= 0:
        firm = s.event_firm[node]
        following = s.event_next[node]
        s.event_next[node] = s.cursor[CURSOR.free_events]
        s.cursor[CURSOR.free_events] = node
        node = following
        prefetch(s.firms, firm)
        if count >= AHEAD:
            _leave(p, s, t, waiting[count % AHEAD])
        waiting[count % AHEAD] = firm
        count += 1
    for k in range(max(count - AHEAD, 0), count):
        _leave(p, s, t, waiting[k % AHEAD])
    s.event_head[t] = -1


@njit(cache=True, nogil=True)
def _smallest_first(firms, keys, found, count, level):
    """Put the ``count`` smallest of ``keys[:found]`` (all below 2^(64 − ``level``)), with their firms, first and in
    increasing order: the keys are spread evenly, so a counting pass over their next bits puts them in about one
    per bucket, and an insertion sort of the buckets that hold the ``count`` smallest finishes the order."""
    width = 1
    while (1 << width) < found and width < 24:
        width += 1
    shift = _U(64 - level - width)
    starts = np.zeros((1 << width) + 1, np.int64)
    for i in range(found):
        starts[(keys[i] >> shift) + _U(1)] += 1
    for b in range(1 << width):
        starts[b + 1] += starts[b]
    sorted_keys = np.empty_like(keys[:found])
    sorted_firms = np.empty_like(firms[:found])
    for i in range(found):
        b = keys[i] >> shift
        position = starts[b]
        starts[b] += 1
        sorted_keys[position] = keys[i]
        sorted_firms[position] = firms[i]
    end = count  # the buckets holding the count smallest end where the count-th one's bucket ends
    if count > 0:
        last = sorted_keys[count - 1] >> shift
        while end < found and (sorted_keys[end] >> shift) == last:
            end += 1
    for i in range(1, end):
        k, f = sorted_keys[i], sorted_firms[i]
        j = i - 1
        while j >= 0 and sorted_keys[j] > k:
            sorted_keys[j + 1] = sorted_keys[j]
            sorted_firms[j + 1] = sorted_firms[j]
            j -= 1
        sorted_keys[j + 1] = k
        sorted_firms[j + 1] = f
    keys[:count] = sorted_keys[:count]
    firms[:count] = sorted_firms[:count]


@njit(cache=True, nogil=True)
def pick(s, members, key, t, stream, count, available, out_firm, out_key):
    """Pick ``count`` firms without replacement from a set of ``available`` firms given as bits (``members``: bit i
    of word b set when firm 64b + i is in the set): those with the smallest keys for (``key``, month ``t``,
    ``stream``). Writes them into ``out_firm`` (and their keys into ``out_key``) in increasing order of key and
    returns how many: ``count``, or -1 when ``out_firm`` is too small.

    A block's words cut its set down to the firms whose key's top ``level`` bits are all 0 (about
    ``2 count / available`` of them, ``level`` lowered until there are at least ``count``); only those firms' full
    keys are drawn and sorted.
    """
    if count <= 0:
        return 0
    n_blocks = (s.cursor[CURSOR.firms] + 63) >> 6
    level = 0
    if available > 2 * count:
        level = min(KEY_BITS, int(math.floor(math.log2(available / (2.0 * count)))))
    capacity = out_firm.shape[0]
    base = stream * KEY_BITS
    while True:
        found = 0
        for block in range(n_blocks):
            mask = members[block]
            j = 0
            while mask != 0 and j < level:
                mask &= ~bits(key, block, t, base + j)
                j += 1
            first = block << 6
            while mask != 0:
                if found >= capacity:
                    return -1
                out_firm[found] = first + trailing_zeros(mask)
                found += 1
                mask &= mask - _U(1)
        if found >= count or level == 0:
            break
        level -= 1
    for i in range(found):  # full keys: KEY_BITS bits from the block words (the first `level` are 0), the rest the firm's own
        firm = out_firm[i]
        block, bit = firm >> 6, _U(firm & 63)
        high = _U(0)
        for j in range(level, KEY_BITS):
            high = (high << _U(1)) | ((bits(key, block, t, base + j) >> bit) & _U(1))
        out_key[i] = (high << _U(64 - KEY_BITS)) | (bits(key, firm, t, _INDEX_FIRM_BITS + stream) >> _U(KEY_BITS))
    _smallest_first(out_firm, out_key, found, count, level)
    return count
