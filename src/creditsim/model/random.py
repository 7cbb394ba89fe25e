"""Random numbers keyed by what they are for and whom: counter-based draws computed inside compiled code.

Every draw of a path is a pure function of ``(seed, path, purpose, who, month, index)``:

* a *path key* mixes the run's seed with the path number;
* a *purpose key* mixes the path key with the purpose (one of the constants below: a firm's default clock, its
  credit line, a re-borrowing decision, ...);
* a draw mixes the purpose key with a 64-bit counter that packs ``who`` (a firm's identity for the whole run, or a
  segment, channel or factor period), the month and an index (a loan of the firm, an iteration of a rejection
  sampler): ``mix64((who | month << 32 | index << 44) × φ ⊕ purpose key)``.

``mix64`` is the finaliser of SplitMix64 (Steele, Lea and Flood 2014; the constants of Stafford's Mix13), a
bijection of 64-bit words with full avalanche; multiplying the counter by the odd constant φ (the golden ratio in
fixed point) before the exclusive-or keeps two purposes from being shifted copies of one sequence. This is the
approach Starsim uses for common random numbers (a hash of a distribution's seed and an agent's slot): a firm
draws the same number for the same decision whatever other firms do, in whatever order the engine reaches it,
on whatever thread. So a policy that changes who borrows leaves every other firm's draws alone, a path is the
same alone or among thousands, and a draw that is not needed is simply not made.

The distributions built on the draws (inverse normal, exponential, Poisson, categorical, Beta) are exact
algorithms; a rejection sampler numbers its tries in ``index``.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

__all__ = ["KEY", "PURPOSES", "path_keys", "bits", "uniform", "open_uniform", "normal", "exponential", "poisson", "pick_column", "beta",
           "ndtri", "ndtr"]

_U = np.uint64
#: The golden ratio in 64-bit fixed point (odd): spreads consecutive counters over the whole word.
PHI = _U(0x9E3779B97F4A7C15)
_M1 = _U(0xBF58476D1CE4E5B9)
_M2 = _U(0x94D049BB133111EB)
#: 2^-53: turns the top 53 bits of a word into a double in [0, 1).
_TO_UNIT = 1.0 / 9007199254740992.0
_BELOW_ONE = 1.0 - _TO_UNIT  # the largest double below 1

#: What each draw is for: the purpose keys of a path, in this order (a new purpose goes at the end, so existing
#: purposes keep their numbers and their draws).
PURPOSES: tuple[str, ...] = (
    "factor",          # the systematic factor of each period (who: the period)
    "entries",         # firms registered in a segment in a month (who: the segment)
    "grade",           # an entrant's credit grade
    "default_clock",   # a firm's default clock: the exponential draw its default month inverts
    "exit",            # the month a firm without a loan closes (month: when its spell without a loan began)
    "applications",    # applications from a segment in a month (who: the segment)
    "apply_order",     # the order in which firms without a loan are picked to apply (a firm's key in the month)
    "bank",            # the bank an applicant goes to
    "signal",          # the bank's error about an applicant's PD
    "line",            # a new borrower's credit line
    "loan_count",      # how many loans a new borrower takes
    "term",            # a firm's term (new borrowers and re-borrowing)
    "age",             # the age of an opening loan
    "product",         # a loan's product (index: the loan)
    "take_up",         # whether a borrower takes the guarantee offered at its price (index: the loan)
    "reborrow",        # whether a maturing loan is wanted again (index: the loan)
    "stress",          # liquidity stress at a maturity
    "bridge",          # bridge money for a stressed firm
    "uptake",          # the bank's uptake of renewal for a firm at a maturity
    "lgd",             # a defaulted loan's loss given default (index: loan × 1024 + try)
    "reach",           # a campaign channel's planned reach in a month (who: the channel)
    "reach_order",     # the order in which a channel reaches firms (index: the channel)
    "need",            # whether a reached firm applies (index: the channel)
    "channel_bank",    # the bank a channel's applicant goes to (index: the channel)
    "deferral",        # whether a borrower's maturing loans are deferred (relief.deferrals)
    "relief_applications",  # relief lending's applications from a segment in a month (who: window × segments + segment)
    "relief_order",    # the order in which firms without a loan are picked for relief lending (index: the window)
    "relief_bank",     # the bank a relief applicant goes to (index: the window)
    "outreach",        # applications a pressed bank seeks from a segment in a month (who: bank × segments + segment)
    "outreach_order",  # the order in which firms without a loan are picked for a bank's outreach (index: the bank)
)
#: Each purpose's position among the keys (a global named tuple: constants in compiled code).
KEY = namedtuple("Purposes", PURPOSES)(*range(len(PURPOSES)))


@njit(cache=True, nogil=True, inline="always")
def mix64(z):
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> _U(30))) * _M1
    z = (z ^ (z >> _U(27))) * _M2
    return z ^ (z >> _U(31))


@njit(cache=True, nogil=True)
def path_keys(seed, path, n_purposes):
    """The purpose keys of a path: uint64 (n_purposes,)."""
    base = mix64(mix64(_U(seed) + PHI) ^ mix64(_U(path) * PHI + _M1))
    out = np.empty(n_purposes, np.uint64)
    for k in range(n_purposes):
        out[k] = mix64(base ^ mix64(_U(k + 1) * _M2))
    return out


@njit(cache=True, nogil=True, inline="always")
def bits(key, who, month, index):
    """The 64 random bits of one draw: ``who`` < 2^32, ``month`` < 2^12, ``index`` < 2^20."""
    counter = _U(who) | (_U(month) << _U(32)) | (_U(index) << _U(44))
    return mix64((counter * PHI) ^ key)


@njit(cache=True, nogil=True, inline="always")
def uniform(key, who, month, index):
    """U[0, 1) with 53 random bits."""
    return float(bits(key, who, month, index) >> _U(11)) * _TO_UNIT


@njit(cache=True, nogil=True, inline="always")
def open_uniform(key, who, month, index):
    """U(0, 1): never 0 or 1 (for logarithms and quantiles). The 53 random bits plus one half, times 2^-53; the one
    word that would round to 1 (all 53 bits set) gives the largest double below 1 instead."""
    u = (float(bits(key, who, month, index) >> _U(11)) + 0.5) * _TO_UNIT
    return u if u < 1.0 else _BELOW_ONE


# ------------------------------------------------------------------------------------------------ the normal law
_A = (3.3871328727963666080, 1.3314166789178437745e2, 1.9715909503065514427e3, 1.3731693765509461125e4,
      4.5921953931549871457e4, 6.7265770927008700853e4, 3.3430575583588128105e4, 2.5090809287301226727e3)
_B = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
      2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4, 5.2264952788528545610e3)
_C = (1.42343711074968357734, 4.63033784615654529590, 5.76949722146069140550, 3.64784832476320460504,
      1.27045825245236838258, 2.41780725177450611770e-1, 2.27238449892691845833e-2, 7.74545014278341407640e-4)
_D = (1.0, 2.05319162663775882187, 1.67638483018380384940, 6.89767334985100004550e-1,
      1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4, 1.05075007164441684324e-9)
_E = (6.65790464350110377720, 5.46378491116411436990, 1.78482653991729133580, 2.96560571828504891230e-1,
      2.65321895265761230930e-2, 1.24266094738807843860e-3, 2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
      7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7, 2.04426310338993978564e-15)


@njit(cache=True, nogil=True)
def _ratio(num, den, x):
    """num(x) / den(x) for two degree-7 polynomials given lowest coefficient first (Horner)."""
    a = num[7]
    b = den[7]
    for i in range(6, -1, -1):
        a = a * x + num[i]
        b = b * x + den[i]
    return a / b


@njit(cache=True, nogil=True)
def ndtri(p):
    """Φ⁻¹(p), the standard normal quantile (Wichura's algorithm AS 241, PPND16: about 16 digits); ±inf at 0 and 1."""
    q = p - 0.5
    if abs(q) <= 0.425:
        return q * _ratio(_A, _B, 0.180625 - q * q)
    r = p if q < 0.0 else 1.0 - p
    if r <= 0.0:
        return -math.inf if q < 0.0 else math.inf
    r = math.sqrt(-math.log(r))
    value = _ratio(_C, _D, r - 1.6) if r <= 5.0 else _ratio(_E, _F, r - 5.0)
    return -value if q < 0.0 else value


@njit(cache=True, nogil=True, inline="always")
def ndtr(x):
    """Φ(x), the standard normal distribution function."""
    return 0.5 * math.erfc(-x * 0.7071067811865476)


@njit(cache=True, nogil=True, inline="always")
def normal(key, who, month, index):
    """N(0, 1) by inversion."""
    return ndtri(open_uniform(key, who, month, index))


@njit(cache=True, nogil=True, inline="always")
def exponential(key, who, month, index):
    """Exp(1) by inversion."""
    return -math.log(open_uniform(key, who, month, index))


# ------------------------------------------------------------------------------------------------ counts
@njit(cache=True, nogil=True)
def poisson(key, who, month, mean):
    """Poisson(mean): inversion below a mean of 30 (one uniform), else Hörmann's transformed rejection PTRS
    (1993; two uniforms a try, tries numbered in the draw's index)."""
    if mean <= 0.0:
        return 0
    if mean < 30.0:
        u = uniform(key, who, month, 0)
        k = 0
        p = math.exp(-mean)
        cumulative = p
        while u >= cumulative and p > 0.0:
            k += 1
            p *= mean / k
            cumulative += p
        return k
    root = math.sqrt(mean)
    log_mean = math.log(mean)
    b = 0.931 + 2.53 * root
    a = -0.059 + 0.02483 * b
    inverse_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    tries = 0
    while True:
        u = uniform(key, who, month, 2 * tries) - 0.5
        v = open_uniform(key, who, month, 2 * tries + 1)
        tries += 1
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k)
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inverse_alpha) - math.log(a / (us * us) + b) <= -mean + k * log_mean - math.lgamma(k + 1.0):
            return int(k)


@njit(cache=True, nogil=True, inline="always")
def pick_column(cumulative, row, u):
    """Inverse-CDF choice: the first column of ``cumulative[row]`` whose cumulative probability exceeds ``u`` (rows
    end in +inf, so every u in [0, 1) finds one)."""
    col = 0
    while cumulative[row, col] <= u:
        col += 1
    return col


# ------------------------------------------------------------------------------------------------ Beta
@njit(cache=True, nogil=True)
def _gamma(key, who, month, index, shape):
    """Gamma(shape, 1) by Marsaglia and Tsang (2000), tries numbered from ``index``; shapes below 1 boosted with
    Gamma(shape + 1) × U^(1/shape). Returns (value, next free index)."""
    boost = shape < 1.0
    d = (shape + 1.0 if boost else shape) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    i = index
    if boost:
        i += 1
    while True:
        x = normal(key, who, month, i)
        u = open_uniform(key, who, month, i + 1)
        i += 2
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        if u < 1.0 - 0.0331 * x * x * x * x or math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            value = d * v
            if boost:
                value *= open_uniform(key, who, month, index) ** (1.0 / shape)
            return value, i


@njit(cache=True, nogil=True)
def beta(key, who, month, index, a, b):
    """Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); uses the indexes from ``index`` up (at most a few
    hundred, almost always four or five)."""
    x, following = _gamma(key, who, month, index, a)
    y, _ = _gamma(key, who, month, following, b)
    return x / (x + y)
