"""The reference engine's random streams: one independent generator per (seed, path, component name).

``numpy.random.SeedSequence(seed, spawn_key=(path, key(name)))`` makes the stream of a component of a path
depend on nothing else: path k draws the same numbers whether it runs alone or with a thousand others, and
adding a new component (a new name) leaves the draws of every other component unchanged. The key of a name
is a stable hash of its text, never its order of creation.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["COMPONENTS", "stream", "name_key"]

#: The components that draw random numbers, each with its own stream.
COMPONENTS: tuple[str, ...] = (
    "population",  # firm entries and closures
    "macro",       # the systematic factor
    "defaults",    # firms' default months, failures of firms without a loan
    "demand",      # applications: how many, which firms, which bank
    "loans",       # new borrowers' lines, number of loans, terms and products
    "reborrow",    # at maturity: who borrows again, and the new loans' terms and products
    "recoveries",  # loss given default
    "signals",     # banks' errors about firms' PDs
    "renewal",     # banks' uptake of renewal
    "liquidity",   # liquidity stress and bridge money at maturity
    "campaign",    # first-loan campaign: reach, need, routing
    "guarantee",   # borrowers' take-up of guarantees at their price
    "relief",      # deferral uptake, relief lending's applications and their banks
    "outreach",    # the applicants pressed banks seek
)


def name_key(name: str) -> int:
    """A stable 32-bit key for a component name."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=4).digest(), "little")


def stream(seed: int, path: int, name: str) -> np.random.Generator:
    """The generator of component ``name`` on path ``path`` of a run seeded with ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed (≥ 0).
    path : int
        The path number (≥ 0).
    name : str
        The component, one of :data:`COMPONENTS` (or a new name for a new component).
    """
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(path, name_key(name)))
    return np.random.Generator(np.random.PCG64(sequence))
