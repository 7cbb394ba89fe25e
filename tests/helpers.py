"""Test helpers: small scenarios built in code, so each test states the parameters its closed form needs."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

import creditsim
from creditsim import Results, reference
from creditsim.scenario import Scenario, json_digest, scenario_from_dict

#: The tests' base scenario: an illustrative city of about 70,000 borrowers with three segments and three banks,
#: a campaign and renewal but no guarantors, pools or targets, which tests add when they need them.
BASE_TOML = Path(__file__).parent / "data" / "illustrative-city.toml"


def default_data() -> dict[str, Any]:
    """The tests' base scenario (:data:`BASE_TOML`) as a plain dict (a fresh copy)."""
    return tomllib.loads(BASE_TOML.read_text(encoding="utf-8"))


def pool_scenario(
    *,
    firms: float,
    unbanked_share: float,
    pd: float,
    rho: float,
    months: int,
    term_mix: dict[str, float],
    reborrow_prob: float,
    applications_per_month: float = 0.0,
    factor_frequency: str = "annual",
    lgd: float = 0.45,
    line_median: str = "100万",
    line_p90: str = "300万",
    line_growth: float = 0.0,
    inclusive_line_limit: str = "1万亿",
) -> Scenario:
    """One segment, one grade, one bank: the homogeneous pool the closed forms describe.

    No entry, no exit and one loan per borrower; by default no line growth and an inclusive limit far above
    every line.
    """
    data: dict[str, Any] = {
        "name": "pool",
        "calendar": {"start": "2021-01", "months": months},
        "firms": {
            "inclusive_line_limit": inclusive_line_limit,
            "segments": {
                "only": {
                    "firms": firms,
                    "unbanked_share": unbanked_share,
                    "applications_per_month": applications_per_month,
                    "pd": [pd],
                    "grade_share": [1.0],
                    "rho": rho,
                    "line_median": line_median,
                    "line_p90": line_p90,
                    "line_growth": line_growth,
                }
            },
        },
        "banks": {
            "bank": {
                "share": 1.0,
                "all_loans": "1万亿",
                "non_inclusive_growth": 0.0,
                "max_pd": 1.0,
                "rate": 0.05,
                "term_mix": term_mix,
                "product_mix": {"credit": 1.0},
            }
        },
        "demand": {"reborrow_prob": reborrow_prob},
        "risk": {
            "factor_frequency": factor_frequency,
            "lgd": {"credit": lgd, "guaranteed": lgd, "collateral": lgd},
            "recovery_lag_months": 6,
            "write_off_months": 12,
        },
    }
    return scenario_from_dict(data)


def small_default(**overrides: Any) -> Scenario:
    """The default scenario shrunk ~20× (and shortened) so that many paths run in seconds."""
    data = default_data()
    for seg in data["firms"]["segments"].values():
        seg["firms"] = 2000
        seg["entry_per_year"] = 200
        seg["applications_per_month"] = 12
    data["calendar"]["months"] = 30
    for bank in data["banks"].values():
        bank["all_loans"] = "100亿"
    return scenario_from_dict(data, overrides)


def with_changes(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``data`` with dotted keys set (creating tables on the way), e.g. {"banks.bank.max_pd": 0.1}."""
    for key, value in changes.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def assert_same_bits(a: Results, b: Results, rows_a: Any = slice(None), rows_b: Any = slice(None)) -> None:
    """Every metric of every scope the same bit for bit: rows ``rows_a`` of ``a`` against rows ``rows_b`` of ``b``
    (all paths of both, which must then be the same path numbers, by default)."""
    if isinstance(rows_a, slice) and rows_a == slice(None) and isinstance(rows_b, slice) and rows_b == slice(None):
        assert a.path_ids == b.path_ids
    for scope in a.groups:
        x, y = a.groups[scope][rows_a], b.groups[scope][rows_b]
        assert x.dtype == y.dtype and x.shape == y.shape, scope
        assert x.tobytes() == y.tobytes(), scope


def default_count_cdf(k: float | np.ndarray, n: int, pd: float, rho: float) -> np.ndarray:
    """P(D ≤ k) for D the defaults in a year of n firms with annual PD ``pd`` and asset correlation ``rho`` in the
    one-factor model: a Binomial(n, p(Z)) mixture over Z ~ N(0, 1), p(Z) = Φ((Φ⁻¹(pd) − √ρ Z) / √(1 − ρ)),
    integrated on a fine grid (exact to quadrature; no large-pool approximation)."""
    k = np.asarray(k, dtype=float)
    if rho == 0.0:
        return stats.binom.cdf(k, n, pd)
    z = np.linspace(-9.0, 9.0, 6001)
    w = stats.norm.pdf(z) * (z[1] - z[0])
    p = ndtr((ndtri(pd) - np.sqrt(rho) * z) / np.sqrt(1.0 - rho))
    return stats.binom.cdf(k[..., None], n, p) @ w


# ------------------------------------------------------------------------------------------------ identities
IDENTITY_RTOL = 1e-9


def assert_identities(results: Results) -> None:
    """For every path, bank (and the aggregate) and month, within a relative error of 1e-9 (money is whole fen,
    so an absolute half fen also passes):
    balance[t] = balance[t-1] + disbursed - repaid - recovered - written_off and
    npl_balance[t] = npl_balance[t-1] + defaulted - recovered - written_off."""
    for bank in results.banks:
        v = {m: results.values(m, bank) for m in ("balance", "disbursed", "repaid", "recovered", "written_off", "npl_balance", "defaulted")}
        rolled = v["balance"][:, :-1] + (v["disbursed"] - v["repaid"] - v["recovered"] - v["written_off"])[:, 1:]
        np.testing.assert_allclose(v["balance"][:, 1:], rolled, rtol=IDENTITY_RTOL, atol=0.005, err_msg=f"balance, bank {bank}")
        npl = v["npl_balance"][:, :-1] + (v["defaulted"] - v["recovered"] - v["written_off"])[:, 1:]
        np.testing.assert_allclose(v["npl_balance"][:, 1:], npl, rtol=IDENTITY_RTOL, atol=0.005, err_msg=f"npl, bank {bank}")
        assert (v["npl_balance"] >= 0).all() and (v["balance"] >= v["npl_balance"]).all()
        assert (results.values("borrowers", bank) <= results.values("loans", bank)).all()
    assert (results.values("firms") >= results.values("unbanked_firms")).all()
    assert (results.values("unbanked_firms") >= results.values("never_borrowed_firms")).all()


def assert_ledgers(r) -> None:
    """Every path and month: net credit loss = the parties' losses; each guarantor's and re-guarantor's capital
    rolls forward exactly from its flows and never goes negative."""
    parties = r.values("loss_bank") + r.values("loss_guarantor") + r.values("loss_reguarantor") + r.values("loss_pool")
    np.testing.assert_allclose(r.values("net_loss"), parties, rtol=1e-9, atol=0.005)
    for p in r.entities["pool"]:
        balance = r.values("pool_balance", p)
        flows = r.values("pool_contributions", p) - r.values("pool_payouts", p)
        np.testing.assert_allclose(balance[:, 1:], balance[:, :-1] + flows[:, 1:], rtol=1e-9, atol=0.005, err_msg=p)
        assert (balance >= 0).all()
    for g in r.entities["guarantor"]:
        cap = r.values("guarantor_capital", g)
        flows = (r.values("guarantee_fees", g) - r.values("reguarantee_fees", g) - r.values("guarantor_costs", g) - r.values("guarantee_claims", g)
                 + r.values("reguarantee_claims", g) + r.values("guarantee_recoveries", g) + r.values("capital_injections", g))
        np.testing.assert_allclose(cap[:, 1:], cap[:, :-1] + flows[:, 1:], rtol=1e-9, atol=0.005, err_msg=g)
        assert (cap >= 0).all()
    for k in r.entities["reguarantor"]:
        cap = r.values("reguarantor_capital", k)
        flows = r.values("reguarantee_fees_received", k) - r.values("reguarantee_claims_paid", k) + r.values("reguarantor_recoveries", k)
        np.testing.assert_allclose(cap[:, 1:], cap[:, :-1] + flows[:, 1:], rtol=1e-9, atol=0.005, err_msg=k)
        assert (cap >= 0).all()


# ------------------------------------------------------------------------------------------------ waterfall
# ------------------------------------------------------------------------------------------------ caps, from the trace
def _previous(values: np.ndarray) -> np.ndarray:
    """Row t − 1 of each month t (row 0 for the opening): what an institution had when the month's lending began."""
    return np.concatenate([values[:, :1], values[:, :-1]], axis=1)


def assert_guarantee_rules(r: Results) -> int:
    """Every guaranteed loan of the traced paths within its guarantor's rules, re-derived from the trace and the
    metrics: an admitted bank and segment, the firm's line (its loans made together) within max_line, the guarantor's
    capital when it lent (the previous month end, or the opening) at or above the floor and coverage × line within
    the single-borrower share of it; and for every path and month the liability at most the larger of the previous
    month's and leverage_cap × the previous month's capital (capital changes only after the month's lending). Returns
    the number of guaranteed loans checked."""
    s, trace = r.scenario, r.trace
    checked = 0
    for name, g in s.guarantors.items():
        outstanding, capital = r.values("guarantee_outstanding", name), r.values("guarantor_capital", name)
        assert (outstanding[:, 1:] <= np.maximum(outstanding[:, :-1], g.leverage_cap * capital[:, :-1]) * (1 + 1e-12) + 0.01).all(), name
        loans = trace[trace["cover"] == name]
        if loans.empty:
            continue
        line = trace.groupby(["path", "firm", "start"], observed=True)["amount"].transform("sum")[loans.index]
        month = np.maximum(loans["start"].map({d: i for i, d in enumerate(r.dates)}).fillna(0).astype(int).to_numpy(), 1)
        row = [r.path_ids.index(p) for p in loans["path"]]
        lending_capital = _previous(capital)[row, month]
        assert g.banks is None or loans["bank"].isin(g.banks).all(), name
        assert g.segments is None or loans["segment"].isin(g.segments).all(), name
        assert (line <= g.max_line * (1 + 1e-12)).all(), name
        assert (lending_capital >= g.capital_floor - 0.01).all(), name
        assert (g.coverage * line <= g.single_borrower_share * lending_capital * (1 + 1e-9) + 0.01).all(), name
        checked += len(loans)
    return checked


def assert_pool_rules(r: Results) -> int:
    """Every pool-covered loan of the traced paths within its pool's rules, from the trace and the metrics: no
    guarantee with it, an eligible bank, segment and product, the loan within max_loan, a 首贷户 for a pool of
    first-time borrowers, the pool not suspended when the month's lending began; and for every path and month the
    covered balance at most the larger of the previous month's and leverage × the balance the pool had while lending
    (the previous month's and the month's January money). Returns the number of covered loans checked."""
    s, trace = r.scenario, r.trace
    checked = 0
    for name, pool in s.pools.items():
        covered, balance = r.values("pool_covered", name), r.values("pool_balance", name)
        lending_balance = _previous(balance) + r.values("pool_contributions", name)
        assert (covered[:, 1:] <= np.maximum(covered[:, :-1], pool.leverage * lending_balance[:, 1:]) * (1 + 1e-12) + 0.01).all(), name
        loans = trace[trace["cover"] == name]
        if loans.empty:
            continue
        month = loans["start"].map({d: i for i, d in enumerate(r.dates)}).fillna(0).astype(int).to_numpy()
        row = [r.path_ids.index(p) for p in loans["path"]]
        suspended = _previous(r.values("pool_suspended", name))[row, np.maximum(month, 1)]
        assert not suspended[month > 0].any(), name
        assert pool.banks is None or loans["bank"].isin(pool.banks).all(), name
        assert pool.segments is None or loans["segment"].isin(pool.segments).all(), name
        assert loans["product"].isin(pool.products).all() and (loans["amount"] <= pool.max_loan).all(), name
        assert not pool.first_time_only or loans["first_time"].all(), name
        checked += len(loans)
    return checked


#: The two engines a mechanism is tested in: the fast one and the reference.
ENGINES = ("fast", "reference")


def run_engine(engine: str, scenario: Scenario, paths: int, seed: int) -> Results:
    """``paths`` paths of ``scenario`` with the fast engine or the reference one (``engine``, one of :data:`ENGINES`)."""
    if engine == "fast":
        return creditsim.simulate(scenario, paths=paths, seed=seed, progress=False)
    return reference.simulate(scenario, paths=paths, seed=seed)


# ------------------------------------------------------------------------------------------------ fuzzing stored files
#: What a fuzzed entry of a manifest becomes: a value of every JSON kind, out of range, malformed or nested.
ODD_JSON = (None, -5, 0, 10**30, 1.5, float("nan"), True, "x", "2021-13", [], {}, [[[[0]]]], [0, 0], [1], ["all"])


def fuzz_signed_json(path: Path, rng: random.Random) -> str:
    """Replace one entry, anywhere, of a signed JSON file (a results manifest or checkpoint.json, its digest under
    ``manifest_sha256``) by one of :data:`ODD_JSON`, and re-sign it, as a deliberate edit would; returns what changed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("manifest_sha256")
    places, stack = [], [data]
    while stack:
        node = stack.pop()
        for key in (node if isinstance(node, dict) else range(len(node))):
            places.append((node, key))
            if isinstance(node[key], (dict, list)):
                stack.append(node[key])
    node, key = rng.choice(places)
    node[key] = rng.choice(ODD_JSON)
    data["manifest_sha256"] = json_digest(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return f"{path.name}: {key!r} = {node[key]!r}"


#: .ci/run sets this: there a missing browser is a failure, elsewhere the browser tests are skipped.
BROWSER_REQUIRED = os.environ.get("CREDITSIM_BROWSER_TESTS") == "required"


@contextlib.contextmanager
def headless_chromium(profile: Path, downloads: Path | None = None) -> Iterator[Any]:
    """A selenium driver of headless Chromium at laptop size (1366×900), logging the browser console, with its
    profile in ``profile`` and files it downloads put in ``downloads``; the test is skipped when Chromium or its
    driver is missing (failed where :data:`BROWSER_REQUIRED`)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        if BROWSER_REQUIRED:
            pytest.fail("chromium and chromedriver are required here (apt-get install chromium chromium-driver)")
        pytest.skip("chromium and chromedriver are not installed")
    selenium = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = selenium.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--window-size=1366,900"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = selenium.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def not_blank(screenshot: Path) -> None:
    """A screenshot shows text, tables and charts: not one flat colour, and some dark (text) pixels."""
    from matplotlib.image import imread

    pixels = imread(screenshot)[:, :, :3]
    assert pixels.std() > 0.05
    assert (pixels.min(axis=2) < 0.5).mean() > 0.01


@contextlib.contextmanager
def within(seconds: float, raised: type[BaseException] = TimeoutError) -> Iterator[None]:
    """Fail instead of hanging: raise ``raised`` (a TimeoutError by default) when the block takes longer than
    ``seconds`` (a SIGALRM timer, so the main thread only)."""
    def expired(signum: int, frame: object) -> None:
        raise raised(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
