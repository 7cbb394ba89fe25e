"""Cover: the instruments that take part of a loan's loss, behind one interface.

A loan carries at most one cover, numbered across instruments: guarantors 0 .. G − 1 (:mod:`.instruments.guarantees`),
then risk pools G .. G + P − 1 (:mod:`.instruments.pools`); -1 for none. The engine asks this module what cover an
applicant could have (:func:`best_offer`), to cover a new loan (:func:`cover_loan`), to release a loan that ends
(:func:`release`) and to file a default (:func:`file_default`), and holds the cover a loan tape gives a loan
(:func:`hold`); each instrument's functions change its own books.
A new instrument is a module with the same functions, a scenario section, and a branch in each function here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..scenario import PRODUCTS
from .columns import BANK
from .instruments import guarantees, pools
from .random import KEY, uniform

__all__ = ["NONE", "offers", "share", "best_offer", "cover_loan", "hold", "release", "unassign", "file_default"]

NONE = -1
CREDIT, GUARANTEED = PRODUCTS.index("credit"), PRODUCTS.index("guaranteed")
#: ``only_pool`` for a loan that must take a guarantor's cover: no pool.
_NO_POOL = -2


@njit(cache=True, nogil=True)
def offers(p, s):
    """Which instruments take new business now: bool (G + P,), guarantors then pools. A decision batch reads them as
    they are when it starts."""
    n_g = p.guarantees.coverage.shape[0]
    out = np.zeros(n_g + p.pools.share.shape[0], np.bool_)
    for g in range(n_g):
        out[g] = guarantees.taking(p, s, g)
    for k in range(p.pools.share.shape[0]):
        out[n_g + k] = pools.taking(p, s, k) and p.pools.product_ok[k, CREDIT]
    return out


@njit(cache=True, nogil=True, inline="always")
def share(p, cover):
    """The share of a loss instrument ``cover`` (a guarantor, or G + a pool) bears."""
    n_g = p.guarantees.coverage.shape[0]
    return p.guarantees.coverage[cover] if cover < n_g else p.pools.share[cover - n_g]


@njit(cache=True, nogil=True)
def best_offer(p, open_now, segment, bank, first_time):
    """The largest share of loss an instrument open to this applicant would cover, and that instrument (ties go
    to the first: guarantors before pools); (0, -1) when none is."""
    best_share, best = 0.0, NONE
    n_g = p.guarantees.coverage.shape[0]
    for g in range(n_g):
        if open_now[g] and p.guarantees.bank_ok[g, bank] and p.guarantees.segment_ok[g, segment] and p.guarantees.coverage[g] > best_share:
            best_share, best = p.guarantees.coverage[g], g
    for k in range(p.pools.share.shape[0]):
        if open_now[n_g + k] and p.pools.bank_ok[k, bank] and p.pools.segment_ok[k, segment] and (first_time or not p.pools.first_only[k]):
            if p.pools.share[k] > best_share:
                best_share, best = p.pools.share[k], n_g + k
    return best_share, best


@njit(cache=True, nogil=True)
def cover_loan(p, s, t, firm, index, segment, bank, line, amount, product, required, first_time, loan_rate, counted):
    """Cover for a new loan.

    A loan of the guaranteed product goes to the first guarantor (in scenario order) that admits it and has room,
    and the borrower takes the guarantee with the guarantor's take-up probability at its all-in price (``loan_rate``
    + fee − subsidy; a draw per loan keyed by firm, month and loan); a new guaranteed loan left without a guarantor is
    made as the bank's ``without_guarantee`` product (collateral or credit). A guaranteed loan of the opening book
    without room, like any guaranteed loan in a scenario without guarantors, stays guaranteed, by a party the
    scenario does not model. A loan without a guarantee goes to the first pool that admits it and has room. ``required``
    names the instrument a firm lent to only because of cover needs (-1: none): it forces the product that instrument
    covers and restricts the loan to it. ``counted`` (False for the opening book, whose cover is an existing
    contract) counts declined and unavailable guarantees in the bank's flows.

    Returns
    -------
    product, cover : int
        The loan's product and its cover (-1: none).
    as_required : bool
        The loan has the required instrument (always true where none is required).
    """
    n_g = p.guarantees.coverage.shape[0]
    only_guarantor, only_pool = NONE, NONE
    if required >= n_g:
        product = CREDIT
        only_pool = required - n_g
    elif required >= 0:
        product = GUARANTEED
        only_guarantor = required
        only_pool = _NO_POOL
    offered = NONE
    taken = NONE
    if product == GUARANTEED and n_g > 0:  # without guarantors in the scenario, a guaranteed loan stays one (guaranteed outside it)
        for g in range(n_g):
            if (only_guarantor == NONE or only_guarantor == g) and guarantees.assign(p, s, g, segment, bank, line, amount):
                offered = g
                break
        taken = offered
        if offered != NONE and counted and p.guarantees.elasticity[offered] > 0.0:
            if uniform(s.keys[KEY.take_up], firm, t, index) >= guarantees.take_up(p, offered, loan_rate):
                guarantees.unassign(p, s, offered, amount)
                taken = NONE
                s.flows[bank, BANK.guarantee_declined] += 1.0
        if taken == NONE and counted:
            product = p.banks.without_guarantee[bank]
            if offered == NONE and required < 0:
                s.flows[bank, BANK.guarantee_unavailable] += 1.0
    if taken != NONE:
        return product, taken, True
    pool = NONE
    if only_pool != _NO_POOL:
        for k in range(p.pools.share.shape[0]):
            if (only_pool == NONE or only_pool == k) and pools.assign(p, s, k, segment, bank, product, amount, first_time):
                pool = k
                break
    cover = NONE if pool == NONE else n_g + pool
    as_required = required < 0 or (required >= n_g and pool != NONE)
    return product, cover, as_required


@njit(cache=True, nogil=True, inline="always")
def hold(p, s, cover, amount):
    """A loan of a bank's loan tape keeps the cover the tape gives it (-1: none), an existing contract held whatever
    room its instrument has left (an instrument over its limits takes no new business until loans end)."""
    n_g = p.guarantees.coverage.shape[0]
    if cover >= n_g:
        pools.hold(p, s, cover - n_g, amount)
    elif cover >= 0:
        guarantees.hold(p, s, cover, amount)


@njit(cache=True, nogil=True, inline="always")
def release(p, s, cover, amount):
    """A covered loan ends (repaid, renewed or defaulted): its instrument releases it."""
    n_g = p.guarantees.coverage.shape[0]
    if cover >= n_g:
        pools.release(p, s, cover - n_g, amount)
    elif cover >= 0:
        guarantees.release(p, s, cover, amount)


@njit(cache=True, nogil=True, inline="always")
def unassign(p, s, cover, amount):
    """Undo :func:`cover_loan` for a loan that is not made after all."""
    n_g = p.guarantees.coverage.shape[0]
    if cover >= n_g:
        pools.release(p, s, cover - n_g, amount)
    elif cover >= 0:
        guarantees.unassign(p, s, cover, amount)


@njit(cache=True, nogil=True, inline="always")
def file_default(p, s, t, cover, bank, amount, recovery, credit):
    """File a covered loan's default with its instrument.

    Returns
    -------
    bank_recovery, claim : float
        The bank's share of the recovery and the claim a guarantor will pay the bank (0 without a guarantor), fen.
    """
    n_g = p.guarantees.coverage.shape[0]
    if cover >= n_g:
        pools.file_default(p, s, t, cover - n_g, bank, amount, recovery, credit, p.risk.write_off[t])
    elif cover >= 0:
        return guarantees.file_default(p, s, t, cover, bank, amount, recovery, p.risk.recovery_lag, p.risk.write_off[t])
    return recovery, 0.0
