"""The engine's random numbers and its pick of firms against independent truth.

Draws (:mod:`creditsim.model.random`) are made by small compiled wrappers over many ``who`` values and compared
with scipy: Kolmogorov–Smirnov for the continuous laws, Pearson's χ² on the probability mass function for the
Poisson, and scipy.special for Φ and Φ⁻¹. The hash itself is checked against a numpy re-implementation of its
documented construction and SplitMix64's published outputs. :func:`creditsim.model.population.pick` is checked
against a brute force over every member of random bit sets (the documented key of each firm, sorted), and for
uniformity over many months.

Every test is seeded (fixed keys and numpy seeds). Distribution tests use a significance level of 1e-3 per test
(Bonferroni-divided where one test makes several comparisons); moment tolerances are 4 to 5 Monte Carlo standard
errors derived from the law under test. Each test can fail: the distribution tests also show power, rejecting the
same sample against a slightly wrong law.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy import special, stats

from creditsim.model import random as rnd
from creditsim.model.params import parameters
from creditsim.model.population import KEY_BITS, pick
from creditsim.model.random import KEY, PURPOSES, path_keys
from creditsim.model.state import CURSOR, capacities, new_state
from creditsim.model.structs import compiled
from helpers import pool_scenario

ALPHA = 1e-3
_U64 = np.uint64
PHI, M1, M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
MASK = (1 << 64) - 1
#: The first outputs of SplitMix64 seeded with 0 (Steele, Lea and Flood 2014; Vigna's splitmix64.c): mix64(k φ).
SPLITMIX64_SEED0 = (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F)
#: Where the pick's firm key draws its low bits (population._INDEX_FIRM_BITS, as its docstring describes).
FIRM_INDEX = 1 << 19


# ------------------------------------------------------------------------------------------------ independent hash
def mix64_np(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser in numpy (wrapping uint64 arithmetic): the documented bijection, written again."""
    z = np.atleast_1d(np.asarray(z, dtype=np.uint64))
    z = (z ^ (z >> _U64(30))) * _U64(M1)
    z = (z ^ (z >> _U64(27))) * _U64(M2)
    return z ^ (z >> _U64(31))


def bits_np(key, who, month, index) -> np.ndarray:
    """The documented draw: mix64((who | month << 32 | index << 44) × φ ⊕ key)."""
    who, month, index = (np.atleast_1d(np.asarray(v, dtype=np.uint64)) for v in (who, month, index))
    counter = who | (month << _U64(32)) | (index << _U64(44))
    return mix64_np((counter * _U64(PHI)) ^ _U64(key))


def _unmix64(z: int) -> int:
    """The inverse of mix64 (Python ints): undo each multiply by the odd constant's inverse and each xorshift."""
    def unshift(y: int, s: int) -> int:
        x = y
        for _ in range(64 // s + 1):
            x = y ^ (x >> s)
        return x
    z = unshift(z, 31)
    z = (z * pow(M2, -1, 1 << 64)) & MASK
    z = unshift(z, 27)
    z = (z * pow(M1, -1, 1 << 64)) & MASK
    return unshift(z, 30)


def key_giving(target: int, who: int = 0, month: int = 0, index: int = 0) -> int:
    """The purpose key for which ``bits(key, who, month, index)`` is ``target`` (mix64 is a bijection)."""
    counter = who | (month << 32) | (index << 44)
    return _unmix64(target) ^ ((counter * PHI) & MASK)


# ------------------------------------------------------------------------------------------------ compiled wrappers
@njit
def _bits(key, who, month, index):
    out = np.empty(who.shape[0], np.uint64)
    for i in range(who.shape[0]):
        out[i] = rnd.bits(key, who[i], month[i], index[i])
    return out


@njit
def _continuous(kind, key, first_who, n, month, index):
    """n draws for who = first_who .. first_who + n - 1 of: 0 uniform, 1 open_uniform, 2 normal, 3 exponential."""
    out = np.empty(n)
    for i in range(n):
        who = first_who + i
        if kind == 0:
            out[i] = rnd.uniform(key, who, month, index)
        elif kind == 1:
            out[i] = rnd.open_uniform(key, who, month, index)
        elif kind == 2:
            out[i] = rnd.normal(key, who, month, index)
        else:
            out[i] = rnd.exponential(key, who, month, index)
    return out


def _one(kind, key, who, month, index):
    """One draw of :func:`_continuous`'s ``kind``."""
    return _continuous(kind, key, who, 1, month, index)[0]


@njit
def _poissons(key, first_who, n, month, mean):
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = rnd.poisson(key, first_who + i, month, mean)
    return out


@njit
def _betas(key, first_who, n, month, index, a, b):
    out = np.empty(n)
    for i in range(n):
        out[i] = rnd.beta(key, first_who + i, month, index, a, b)
    return out


@njit
def _each(function, x):
    """``function`` (a compiled function of one number) at every element of ``x``."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = function(x[i])
    return out


@njit
def _uniform_grid(keys, whos, months, indexes):
    """uniform(keys[k], whos[i], months[k], indexes[k]) for every stream k (row) and who i (column)."""
    out = np.empty((keys.shape[0], whos.shape[0]))
    for k in range(keys.shape[0]):
        for i in range(whos.shape[0]):
            out[k, i] = rnd.uniform(keys[k], whos[i], months[k], indexes[k])
    return out


KEYS = path_keys(20240601, 7, len(PURPOSES))


def _ks_ok(sample, cdf, alpha=ALPHA):
    return stats.kstest(sample, cdf).pvalue > alpha


def _binned_chisquare_pvalue(sample: np.ndarray, cdf, edges: np.ndarray, null: bool = True) -> float:
    """Pearson's χ² of integer ``sample`` against a law on the integers given by its ``cdf``, in the classes
    k ≤ edges[0], edges[0] < k ≤ edges[1], …, k > edges[-1] (at least 5 expected in each under the ``null``; an
    alternative is only shown to be rejected)."""
    edges = np.unique(np.asarray(edges, dtype=float))
    probs = np.diff(np.concatenate([[0.0], cdf(edges), [1.0]]))
    observed = np.bincount(np.searchsorted(edges, sample, side="left"), minlength=edges.size + 1)
    expected = sample.size * probs
    assert expected.min() >= 5 or not null, expected.min()
    statistic = ((observed - expected) ** 2 / expected).sum()
    return float(stats.chi2.sf(statistic, edges.size))


# ------------------------------------------------------------------------------------------------ the hash
def test_bits_follow_the_documented_construction():
    """bits(key, who, month, index) = mix64((who | month << 32 | index << 44) φ ⊕ key): SplitMix64's published outputs
    for key 0 (who = 1, 2, 3 gives the generator's first three numbers from seed 0), then a numpy re-implementation on
    20,000 random arguments over the whole documented range; uniform and open_uniform are the top 53 bits, exactly."""
    for who, expected in enumerate(SPLITMIX64_SEED0, start=1):
        assert int(_bits(_U64(0), np.array([who]), np.array([0]), np.array([0]))[0]) == expected
    rng = np.random.default_rng(1)
    n = 20_000
    key = _U64(rng.integers(0, 2**63, dtype=np.int64)) * _U64(2) + _U64(1)
    who = rng.integers(0, 2**32, n, dtype=np.int64)
    month = rng.integers(0, 2**12, n, dtype=np.int64)
    index = rng.integers(0, 2**20, n, dtype=np.int64)
    compiled_bits = _bits(key, who, month, index)
    np.testing.assert_array_equal(compiled_bits, bits_np(key, who, month, index))
    assert np.unique(compiled_bits).size == n  # distinct counters, distinct draws (a bijection)
    top = (compiled_bits >> _U64(11)).astype(np.float64)
    for i in range(200):
        assert _one(0, key, who[i], month[i], index[i]) == top[i] * 2.0**-53
        assert _one(1, key, who[i], month[i], index[i]) == (top[i] + 0.5) * 2.0**-53


def test_uniform_and_open_uniform_at_the_extreme_words():
    """Keys chosen so that the draw's 64 bits are all 0 and all 1 (mix64 inverted): uniform gives 0 and 1 − 2^-53
    (so it lies in [0, 1)); open_uniform gives 2^-54 at the all-zero word, where the normal and the exponential built
    on it stay finite. Over 10^6 draws open_uniform stays inside (0, 1)."""
    zero, ones = key_giving(0, 5, 3, 2), key_giving(MASK, 5, 3, 2)
    assert int(bits_np(zero, 5, 3, 2)[0]) == 0 and int(bits_np(ones, 5, 3, 2)[0]) == MASK
    assert _one(0, _U64(zero), 5, 3, 2) == 0.0
    assert _one(0, _U64(ones), 5, 3, 2) == 1.0 - 2.0**-53
    assert _one(1, _U64(zero), 5, 3, 2) == 2.0**-54
    z, e = _one(2, _U64(zero), 5, 3, 2), _one(3, _U64(zero), 5, 3, 2)
    assert -9.0 < z < 0.0 and 0.0 < e < 40.0
    u = _continuous(1, KEYS[KEY.line], 0, 1_000_000, 4, 0)
    assert 0.0 < u.min() and u.max() < 1.0


def test_open_uniform_is_below_1_at_the_all_ones_word():
    """open_uniform promises U(0, 1), never 1: at the word whose top 53 bits are all 1 (probability 2^-53 a draw) it
    must still be below 1, and the normal drawn from it finite (Φ⁻¹(1) = +inf). (2^53 − 1) + 0.5 is not a double:
    rounding it half-to-even gives 2^53, i.e. exactly 1.0, unless the value is formed otherwise."""
    ones = _U64(key_giving(MASK, 5, 3, 2))
    assert _one(1, ones, 5, 3, 2) < 1.0, "open_uniform returned 1.0 at the all-ones word"
    assert np.isfinite(_one(2, ones, 5, 3, 2)), "normal returned inf at the all-ones word"


# ------------------------------------------------------------------------------------------------ distributions
def test_uniform_against_u01():
    """200,000 uniforms over who = 0 … and over who from 2^31 (high bits of who): KS against U[0, 1) and χ² on 100
    equal bins (p > 1e-3 each, four comparisons at 2.5e-4); mean within 4 standard errors (1/√(12 n)). Power: the
    same sample is rejected against U[0, 0.99]."""
    n = 200_000
    for first in (0, 2**31):
        u = _continuous(0, KEYS[KEY.reborrow], first, n, 9, 3)
        assert _ks_ok(u, stats.uniform.cdf, ALPHA / 4)
        counts = np.bincount(np.floor(u * 100).astype(int), minlength=100)
        assert stats.chisquare(counts).pvalue > ALPHA / 4
        assert abs(u.mean() - 0.5) < 4 / np.sqrt(12 * n)
        assert stats.kstest(u, stats.uniform(0, 0.99).cdf).pvalue < ALPHA


def test_normal_against_scipy():
    """200,000 normals: KS against N(0, 1); mean, variance and the share beyond ±3 within 4 standard errors
    (1/√n, √(2/n), √(q(1 − q)/n) with q = 2 Φ(−3)). Power: rejected against N(0.02, 1) (9 standard errors)."""
    n = 200_000
    z = _continuous(2, KEYS[KEY.signal], 0, n, 1, 0)
    assert _ks_ok(z, stats.norm.cdf)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2.0 / n)
    q = 2 * stats.norm.sf(3.0)
    assert abs((np.abs(z) > 3).mean() - q) < 4 * np.sqrt(q * (1 - q) / n)
    assert stats.kstest(z, stats.norm(0.02, 1).cdf).pvalue < ALPHA


def test_exponential_against_scipy():
    """200,000 exponentials (the default clocks' draw): KS against Exp(1), mean within 4 standard errors (1/√n).
    Power: rejected against Exp with mean 1.01."""
    n = 200_000
    e = _continuous(3, KEYS[KEY.default_clock], 0, n, 0, 0)
    assert e.min() > 0.0
    assert _ks_ok(e, stats.expon.cdf)
    assert abs(e.mean() - 1.0) < 4 / np.sqrt(n)
    assert stats.kstest(e, stats.expon(scale=1.01).cdf).pvalue < ALPHA


POISSON_MEANS = [0.05, 0.7, 3.0, 12.5, 29.9, 30.0, 31.7, 150.0, 2500.0]


@pytest.mark.parametrize("mean", POISSON_MEANS)
def test_poisson_against_scipy_pmf(mean):
    """50,000 draws per mean, both sides of the switch from inversion to PTRS at 30: Pearson's χ² against
    scipy.stats.poisson's pmf in about 25 classes of equal probability (tails pooled; p > 1e-3 / 9, Bonferroni over the
    means); mean and variance within 4 standard errors (√(μ/n); √((μ + 3μ²)/n − μ²(n − 3)/(n(n − 1))) for the sample
    variance of a Poisson). Power: the same classes reject a mean 10 standard errors higher, μ + 10 √(μ/n)."""
    n = 50_000
    x = _poissons(KEYS[KEY.applications], 0, n, 17, mean)
    law = stats.poisson(mean)
    edges = law.ppf(np.linspace(0, 1, 26)[1:-1])
    alpha = ALPHA / len(POISSON_MEANS)
    assert _binned_chisquare_pvalue(x, law.cdf, edges) > alpha
    assert abs(x.mean() - mean) < 4 * np.sqrt(mean / n), (x.mean(), mean)
    var_se = np.sqrt((mean + 3 * mean**2) / n - mean**2 * (n - 3) / (n * (n - 1)))
    assert abs(x.var(ddof=1) - mean) < 4 * var_se, (x.var(ddof=1), mean)
    shifted = stats.poisson(mean + 10 * np.sqrt(mean / n))
    assert _binned_chisquare_pvalue(x, shifted.cdf, edges, null=False) < alpha


def test_poisson_of_no_mean_is_zero():
    assert (_poissons(KEYS[KEY.entries], 0, 100, 1, 0.0) == 0).all()
    assert (_poissons(KEYS[KEY.entries], 0, 100, 1, -3.0) == 0).all()


BETA_PARAMETERS = [(0.5, 0.5), (0.3, 2.0), (1.0, 1.0), (2.0, 5.0), (3.2, 3.9), (50.0, 0.7)]


@pytest.mark.parametrize(("a", "b"), BETA_PARAMETERS)
def test_beta_against_scipy(a, b):
    """40,000 Beta(a, b) draws (shapes below 1 use the boosted gamma) at index 0 and at index 3 × 1024 (how LGDs
    number a loan's tries): KS against scipy.stats.beta (p > 1e-3 / 12) and the mean within 4 standard errors.
    Power: rejected against Beta(1.1 a, b)."""
    n = 40_000
    for index in (0, 3 * 1024):
        x = _betas(KEYS[KEY.lgd], 0, n, 11, index, a, b)
        assert 0.0 <= x.min() and x.max() <= 1.0
        law = stats.beta(a, b)
        assert _ks_ok(x, law.cdf, ALPHA / (2 * len(BETA_PARAMETERS)))
        assert abs(x.mean() - law.mean()) < 4 * law.std() / np.sqrt(n)
        assert stats.kstest(x, stats.beta(1.1 * a, b).cdf).pvalue < ALPHA


def test_ndtri_and_ndtr_match_scipy_to_1e12():
    """Φ⁻¹ on p from 1e-300 to 1 − 1e-16 (3,000 log-spaced points in each tail and 5,001 in the middle) and Φ on
    x from −37 to 37: relative difference from scipy.special below 1e-12 (AS 241 is good to about 1e-16); the
    ends give ±inf, Φ⁻¹(1/2) = 0, and Φ(Φ⁻¹(p)) = p to 1e-12."""
    p = np.concatenate([np.logspace(-300, -1, 3000), np.linspace(1e-4, 1 - 1e-4, 5001), 1 - np.logspace(-16, -1, 3000)])
    mine, truth = _each(rnd.ndtri, p), special.ndtri(p)
    np.testing.assert_allclose(mine, truth, rtol=1e-12, atol=0)
    np.testing.assert_allclose(_each(rnd.ndtr, mine), p, rtol=1e-12)
    ends = _each(rnd.ndtri, np.array([0.0, 0.5, 1.0]))
    assert ends[0] == -np.inf and ends[1] == 0.0 and ends[2] == np.inf
    x = np.linspace(-37.0, 37.0, 20_001)
    np.testing.assert_allclose(_each(rnd.ndtr, x), special.ndtr(x), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------ keys
def test_the_same_arguments_give_the_same_draw_in_any_order():
    """A draw is a pure function of (key, who, month, index): made twice, backwards, or between draws of other
    purposes, it is the same number; and a path's keys are the same every time they are made."""
    whos = np.arange(5_000, dtype=np.int64)
    forward = _continuous(2, KEYS[KEY.signal], 0, 5_000, 6, 1)
    again = _continuous(2, KEYS[KEY.signal], 0, 5_000, 6, 1)
    backward = np.array([_one(2, KEYS[KEY.signal], int(w), 6, 1) for w in whos[::-1][:500]])
    _continuous(0, KEYS[KEY.bank], 0, 5_000, 6, 1)  # other purposes' draws in between change nothing
    single = _one(2, KEYS[KEY.signal], 4_321, 6, 1)
    np.testing.assert_array_equal(forward, again)
    np.testing.assert_array_equal(backward, forward[::-1][:500])
    assert single == forward[4_321]
    np.testing.assert_array_equal(path_keys(20240601, 7, len(PURPOSES)), KEYS)


def test_streams_are_uncorrelated():
    """Uniforms over who = 0 … 39,999 of: every purpose (month 1, index 0), indexes 0–7 and months 0–7 of one purpose,
    neighbouring paths and neighbouring seeds. Under independence √n r is about N(0, 1); every pair's |r| is within
    the Bonferroni bound z(1e-3 / 2 pairs) / √n (about 4.9 / √n). A lag-1 correlation along who, too."""
    n = 40_000
    whos = np.arange(n, dtype=np.int64)
    purpose = KEY.apply_order
    streams = [(KEYS[k], 1, 0) for k in range(len(PURPOSES))]
    streams += [(KEYS[purpose], 1, i) for i in range(1, 8)]
    streams += [(KEYS[purpose], m, 0) for m in (0, 2, 3, 4, 5, 6, 7)]
    streams += [(path_keys(20240601, p, len(PURPOSES))[purpose], 1, 0) for p in (6, 8, 9)]
    streams += [(path_keys(s, 7, len(PURPOSES))[purpose], 1, 0) for s in (20240600, 20240602)]
    keys = np.array([k for k, _, _ in streams], dtype=np.uint64)
    months = np.array([m for _, m, _ in streams], dtype=np.int64)
    indexes = np.array([i for _, _, i in streams], dtype=np.int64)
    u = _uniform_grid(keys, whos, months, indexes)
    r = np.corrcoef(u)
    pairs = len(streams) * (len(streams) - 1) // 2
    bound = stats.norm.isf(ALPHA / (2 * pairs)) / np.sqrt(n)
    off = np.abs(r[np.triu_indices(len(streams), 1)])
    assert off.max() < bound, (off.max(), bound)
    lag = np.array([np.corrcoef(row[:-1], row[1:])[0, 1] for row in u])
    assert np.abs(lag).max() < stats.norm.isf(ALPHA / (2 * len(streams))) / np.sqrt(n)
    # a 16 × 16 contingency χ² of two neighbouring streams (purposes, indexes, months) finds no dependence either
    for a, b in ((0, 1), (KEY.apply_order, len(PURPOSES)), (KEY.apply_order, len(PURPOSES) + 7)):
        table = np.histogram2d(u[a], u[b], bins=16, range=[[0, 1], [0, 1]])[0]
        assert stats.chi2_contingency(table)[1] > ALPHA / 3


def test_path_keys_differ_across_paths_seeds_and_purposes():
    """The keys of seeds 0–49 × paths 0–199 × every purpose are 240,000 distinct words (with random words a
    collision would have probability about 1.6e-9); each of their 64 bits is set in half of them (within 4.5
    binomial standard errors: 128 tails of 3.4e-6 each, below 1e-3 together); and swapping seed and path changes
    the keys."""
    flat = np.concatenate([path_keys(seed, path, len(PURPOSES)) for seed in range(50) for path in range(200)])
    assert np.unique(flat).size == flat.size
    share = np.array([((flat >> _U64(b)) & _U64(1)).mean() for b in range(64)])
    assert np.abs(share - 0.5).max() < 4.5 * 0.5 / np.sqrt(flat.size)
    assert not np.array_equal(path_keys(3, 5, len(PURPOSES)), path_keys(5, 3, len(PURPOSES)))


# ------------------------------------------------------------------------------------------------ pick
@pytest.fixture(scope="module")
def state():
    """A State (pick reads only ``cursor[CURSOR.firms]``) and its compiled StructRef, the type the engine caches."""
    params = parameters(pool_scenario(firms=10, unbanked_share=1.0, pd=0.0, rho=0.0, months=1, term_mix={"12": 1.0}, reborrow_prob=0.0))
    value = new_state(params, capacities(params))
    return value, compiled(value)


def _words(members: np.ndarray, n_firms: int) -> np.ndarray:
    """The bit set of ``members``: bit i of word b set when firm 64b + i is a member."""
    words = np.zeros((n_firms + 63) // 64, np.uint64)
    np.bitwise_or.at(words, members >> 6, np.left_shift(_U64(1), (members & 63).astype(np.uint64)))
    return words


def full_keys(key, firms: np.ndarray, t: int, stream: int) -> np.ndarray:
    """Each firm's key as population.pick documents it: the top KEY_BITS bits are bit (firm mod 64) of the words
    drawn for its block of 64 rows (index stream × KEY_BITS + j, j = 0 the most significant); the rest are the top
    bits of the firm's own draw (index 2^19 + stream)."""
    firms = np.asarray(firms, dtype=np.int64)
    blocks, offsets = firms >> 6, (firms & 63).astype(np.uint64)
    high = np.zeros(firms.size, np.uint64)
    for j in range(KEY_BITS):
        word = bits_np(key, blocks, t, stream * KEY_BITS + j)
        high = (high << _U64(1)) | ((word >> offsets) & _U64(1))
    low = bits_np(key, firms, t, FIRM_INDEX + stream) >> _U64(KEY_BITS)
    return (high << _U64(64 - KEY_BITS)) | low


def _pick(state, members, n_firms, key, t, stream, count, available=None, capacity=None, words=None):
    value, struct = state
    value.cursor[CURSOR.firms] = n_firms
    words = _words(members, n_firms) if words is None else words
    size = capacity if capacity is not None else max(len(members), 1)
    out_firm, out_key = np.full(size, -1, np.int32), np.zeros(size, np.uint64)
    got = pick(struct, words, _U64(key), t, stream, count, len(members) if available is None else available, out_firm, out_key)
    return got, out_firm[: max(got, 0)].astype(np.int64), out_key[: max(got, 0)]


def _pick_cases():
    """Random bit sets: sizes from one firm to 40,000 rows (partial last blocks), densities from 0.1% to full, counts
    from 1 to all, so that every level of the block search (0 to KEY_BITS) is used."""
    rng = np.random.default_rng(2024)
    cases = [(1, np.array([0]), 1), (64, np.arange(64), 64), (65, np.array([64]), 1), (130, np.arange(130), 7)]
    for _ in range(120):
        n = int(rng.choice([70, 640, 1000, 5_000, 40_000]))
        density = float(rng.choice([0.001, 0.05, 0.3, 0.9, 1.0]))
        members = np.flatnonzero(rng.random(n) < density)
        if members.size == 0:
            members = np.array([int(rng.integers(n))])
        a = members.size
        count = int(rng.choice([1, 2, max(1, a // 600), max(1, a // 40), max(1, a // 3), a]))
        cases.append((n, members, min(count, a)))
    return cases


def test_pick_is_the_brute_force_smallest_keys(state):
    """For each random set and count (124 cases, random months and streams): pick returns exactly the ``count``
    members with the smallest documented keys, in increasing key order, with those keys, no duplicates and only
    members; and the ``available`` it is told only changes how far it cuts blocks, not what it picks."""
    rng = np.random.default_rng(7)
    levels = set()
    for n, members, count in _pick_cases():
        key, t, stream = KEYS[KEY.apply_order] ^ _U64(rng.integers(0, 2**62)), int(rng.integers(0, 601)), int(rng.integers(0, 4))
        keys = full_keys(key, members, t, stream)
        order = np.argsort(keys, kind="stable")
        assert np.unique(keys).size == keys.size
        got, firms, out_keys = _pick(state, members, n, key, t, stream, count)
        assert got == count
        np.testing.assert_array_equal(firms, members[order[:count]])
        np.testing.assert_array_equal(out_keys, keys[order[:count]])
        assert np.unique(firms).size == count and np.isin(firms, members).all()
        for hint in (4 * members.size, max(1, members.size // 4)):
            got_h, firms_h, _ = _pick(state, members, n, key, t, stream, count, available=hint, capacity=members.size)
            assert got_h == count
            np.testing.assert_array_equal(firms_h, firms)
        if members.size > 2 * count:
            levels.add(min(KEY_BITS, int(np.floor(np.log2(members.size / (2.0 * count))))))
    assert levels >= {0, 1, 4, KEY_BITS}, levels


def test_pick_reports_a_buffer_too_small(state):
    """With fewer output rows than the firms a block search finds, pick returns -1 (the engine then grows it)."""
    members = np.arange(0, 1000, 2)
    got, _, _ = _pick(state, members, 1000, KEYS[KEY.apply_order], 3, 0, 10, capacity=5)
    assert got == -1
    assert _pick(state, members, 1000, KEYS[KEY.apply_order], 3, 0, 0)[0] == 0


@pytest.mark.parametrize(("n_firms", "density", "count"), [(1_000, 0.3, 30), (20_000, 0.25, 5)])
def test_pick_is_uniform_over_months(state, n_firms, density, count):
    """A fixed set of a members; picks of c over T = 4 keys × 4,000 months (c/a = 0.1 and level 2 of the block
    search; c/a = 0.001 and level 8). Inclusion counts O_i: each month's picks are a uniform c-subset, so
    Cov(O) = T p(1 − p) a/(a − 1) (I − J/a) with p = c/a, and Q = Σ (O_i − Tp)² (a − 1)/(T p (1 − p) a) is χ²(a − 1).
    The firm picked first (smallest key) is uniform over the members: Pearson χ²(a − 1). Pairs of members next to each
    other in a block (which share the block's words) are picked together at the rate c(c − 1)/(a(a − 1)): the
    monthly count of such pairs has that mean within 5 standard errors (its sample sd / √T). χ² tests at 1e-3."""
    rng = np.random.default_rng(n_firms)
    members = np.flatnonzero(rng.random(n_firms) < density)
    a = members.size
    assert min(KEY_BITS, int(np.floor(np.log2(a / (2.0 * count))))) == (2 if n_firms == 1_000 else KEY_BITS)  # the level used
    inclusion = np.zeros(n_firms, np.int64)
    first = np.zeros(n_firms, np.int64)
    position = np.full(n_firms, -1)
    position[members] = np.arange(a)
    neighbours = members[:-1][(np.diff(members) == 1) & ((members[:-1] >> 6) == (members[1:] >> 6))]
    is_left = np.zeros(n_firms, bool)
    is_left[neighbours] = True
    together = []
    value, struct = state
    value.cursor[CURSOR.firms] = n_firms
    words = _words(members, n_firms)
    out_firm, out_key = np.zeros(a, np.int32), np.zeros(a, np.uint64)
    for k in range(4):
        key = path_keys(99, k, len(PURPOSES))[KEY.reach_order]
        for t in range(1, 4001):
            assert pick(struct, words, key, t, 1, count, a, out_firm, out_key) == count
            chosen = out_firm[:count]
            inclusion[chosen] += 1
            first[chosen[0]] += 1
            picked = np.zeros(n_firms + 1, bool)
            picked[chosen] = True
            together.append(int((is_left[chosen] & picked[chosen + 1]).sum()))
    months = 4 * 4000
    p = count / a
    deviation = inclusion[members] - months * p
    q = (deviation**2).sum() * (a - 1) / (months * p * (1 - p) * a)
    assert stats.chi2.sf(q, a - 1) > ALPHA, q
    assert stats.chisquare(first[members]).pvalue > ALPHA
    together = np.array(together)
    expected = neighbours.size * count * (count - 1) / (a * (a - 1))
    assert abs(together.mean() - expected) < 5 * max(together.std(ddof=1), 1e-12) / np.sqrt(months) + 1e-12, (together.mean(), expected)


def test_streams_of_a_pick_are_independent(state):
    """Different streams (campaign channels) of the same key and month pick unrelated firms: the overlap of two
    streams' picks of c from a over 2,000 months has the hypergeometric mean c²/a per month (within 4 standard
    errors, the hypergeometric variance)."""
    members = np.arange(0, 2_000)
    a, c, months = members.size, 100, 2_000
    words = _words(members, 2_000)
    overlaps = []
    for t in range(1, months + 1):
        _, f0, _ = _pick(state, members, 2_000, KEYS[KEY.reach_order], t, 1, c, words=words)
        _, f1, _ = _pick(state, members, 2_000, KEYS[KEY.reach_order], t, 2, c, words=words)
        overlaps.append(np.intersect1d(f0, f1).size)
    law = stats.hypergeom(a, c, c)
    assert abs(np.mean(overlaps) - law.mean()) < 4 * law.std() / np.sqrt(months)
