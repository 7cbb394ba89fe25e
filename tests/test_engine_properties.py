"""Engine-level properties against independent truth: bit-identical threads and batches, the loan-level trace
against the monthly metrics, common random numbers under a policy change, a static pool against the Vasicek
mixture, and the refusal of checkpoints and results of an older version.

Seeded; statistical tolerances come from the Monte Carlo standard error or a fixed significance level (1e-3), and
the statistical tests show power against a wrong parameter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

import creditsim
from creditsim import Results, simulate
from creditsim.errors import ResultsError
from creditsim.present.cli import main
from creditsim.scenario import json_digest, scenario_from_dict
from creditsim.scenario.growth import rates_by_year
from helpers import assert_same_bits, default_count_cdf, pool_scenario, small_default, with_changes

ALPHA = 1e-3
GUARANTOR = {"capital": "5亿", "coverage": 0.8, "fee_rate": "1%", "take_up_elasticity": 30.0, "reference_price": 0.05,
             "single_borrower_share": 1.0}


def _with_guarantor(**overrides: Any):
    """The small default city (renewal, liquidity stress, a campaign, LGD spread) with a guarantor whose take-up
    depends on its price."""
    return small_default(**{"guarantors": {"fund": dict(GUARANTOR)}, **overrides})


def _path_trace(r: Results, path: int) -> pd.DataFrame:
    return r.trace[r.trace["path"] == path].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ (a), (b)
def test_threads_give_bit_identical_results():
    """threads=1 and threads=2 (each thread its own state and paths): every metric of every path and scope, and
    the trace, identical to the bit."""
    s = _with_guarantor(**{"calendar.months": 18})
    one = simulate(s, paths=6, seed=3, threads=1, trace=[1, 4])
    two = simulate(s, paths=6, seed=3, threads=2, trace=[1, 4])
    assert_same_bits(one, two)
    pd.testing.assert_frame_equal(one.trace, two.trace)
    assert one.values("guaranteed_disbursed").sum() > 0 and len(one.trace) > 1000


def test_a_path_is_the_same_alone_and_in_any_batch():
    """Path p run alone equals path p among others, in another order and on two threads: all metrics to the bit
    and its trace."""
    s = _with_guarantor(**{"calendar.months": 18})
    batch = [11, 5, 0, 7, 2, 9]
    many = simulate(s, paths=batch, seed=8, threads=2, trace=batch)
    for p in (0, 5, 9):
        alone = simulate(s, paths=[p], seed=8, trace=[p])
        assert_same_bits(alone, many, rows_a=slice(0, 1), rows_b=slice(batch.index(p), batch.index(p) + 1))
        pd.testing.assert_frame_equal(_path_trace(alone, p), _path_trace(many, p))
    other = simulate(s, paths=[5], seed=9)
    assert other.groups["bank"].tobytes() != many.groups["bank"][1:2].tobytes()  # the seed matters


# ------------------------------------------------------------------------------------------------ (c)
def _month_numbers(r: Results, labels: pd.Series) -> np.ndarray:
    """Months 'YYYY-MM' as numbers: 0 for the opening position (dates[0]), negative before it (seasoned loans)."""
    y0, m0 = map(int, r.dates[0].split("-"))
    parts = labels.str.split("-", expand=True).astype(int)
    return (parts[0] * 12 + parts[1] - (y0 * 12 + m0)).to_numpy()


def trace_recount(r: Results, path: int, bank: str) -> dict[str, np.ndarray]:
    """The metrics a path's trace determines, recounted for one bank and every month t = 0..M (money in fen).

    A loan is on the performing book at the end of month t when start ≤ t < end (an outstanding loan: start ≤ t ≤
    end = M); a defaulted loan (either kind) stays a non-performing loan from its end month until it is written off,
    end ≤ t < end + write_off_months (of the year of default). Disbursed in t ≥ 1: loans starting in t (opening loans are a stock); repaid:
    loans ending in t repaid, re-borrowed, renewed or graduated; defaulted: loans ending in t by a default."""
    tr = r.trace
    rows = ((tr["path"] == path) & (tr["bank"] == bank)).to_numpy()
    t = np.arange(r.scenario.calendar.months + 1)
    start, end = _month_numbers(r, tr["start"][rows])[:, None], _month_numbers(r, tr["end"][rows])[:, None]
    how = tr["how"][rows].astype(str).to_numpy()[:, None]
    fen = np.rint(tr["amount"][rows].to_numpy() * 100).astype(np.int64)[:, None]
    credit = (tr["product"][rows] == "credit").to_numpy()[:, None]
    first_time = tr["first_time"][rows].to_numpy()[:, None]
    guaranteed = (tr["cover"][rows].astype(str) == "fund").to_numpy()[:, None]
    renewed_before = (tr["renewals"][rows] > 0).to_numpy()[:, None]
    firm = tr["firm"][rows].to_numpy()
    defaulted = (how == "defaulted") | (how == "liquidity_default")
    performing = (start <= t) & ((t < end) | ((how == "outstanding") & (t <= end)))
    s = r.scenario
    write_off = rates_by_year(s.risk.write_off_months, (s.start_index - 1 + end[:, 0]) // 12)[:, None]  # of the year of default
    npl = defaulted & (end <= t) & (t < end + write_off)
    new = (start == t) & (t >= 1)
    ends = end == t
    repaid = ends & np.isin(how, ["repaid", "reborrowed", "renewed", "graduated"])
    on_books = performing | npl
    return {
        "loans": on_books.sum(0),
        "borrowers": np.array([np.unique(firm[on_books[:, k]]).size for k in t]),
        "balance - npl_balance": (performing * fen).sum(0),
        "renewal_balance": (performing * renewed_before * fen).sum(0),
        "disbursed": (new * fen).sum(0),
        "credit_loan_disbursed": (new * credit * fen).sum(0),
        "first_time_borrower_lending": (new * first_time * fen).sum(0),
        "guaranteed_disbursed": (new * guaranteed * fen).sum(0),
        "repaid": (repaid * fen).sum(0),
        "defaulted": (ends * defaulted * fen).sum(0),
        "defaults": (ends & defaulted).sum(0),
        "liquidity_defaults": (ends & (how == "liquidity_default")).sum(0),
        "renewals": (ends & (how == "renewed")).sum(0),
        "renewed": ((ends & (how == "renewed")) * fen).sum(0),
    }


MONEY = {"balance - npl_balance", "renewal_balance", "disbursed", "credit_loan_disbursed", "first_time_borrower_lending",
         "guaranteed_disbursed", "repaid", "defaulted", "renewed"}


@pytest.mark.parametrize("overrides", [
    {},
    {"risk.recovery_lag_months": 0, "risk.write_off_months": 0, "guarantors.fund.claim_lag_months": 0, "demand.loans_per_borrower": 2.5,
     "renewal.distressed_classification": "restructured"},
    {"firms.opening_book": "new", "risk.write_off_months": 5, "risk.recovery_lag_months": 2},
    {"risk.write_off_months": {"2020": 12, "2021": 9, "2022": 4}, "risk.recovery_lag_months": 3, "guarantors.fund.claim_lag_months": 2},
])
def test_trace_recounts_the_monthly_metrics_exactly(overrides):
    """For every traced path, bank and month (sample 1, so no scaling back): loans, borrowers (distinct firms with a
    loan on the books), the performing balance (balance − npl_balance), renewal balance, disbursed (all, credit,
    to 首贷户, guaranteed), repaid, defaulted, defaults, liquidity defaults, renewals and renewed equal their recount
    from the trace (see :func:`trace_recount`) exactly, money in whole fen."""
    s = _with_guarantor(**{"calendar.months": 24, **overrides})
    assert s.sample == 1
    r = simulate(s, paths=[0, 3, 6], seed=12, trace=[0, 3, 6])
    exercised = dict.fromkeys(MONEY | {"loans", "defaults", "liquidity_defaults", "renewals"}, 0)
    for row, path in enumerate(r.path_ids):
        for bank in s.bank_names:
            for name, recount in trace_recount(r, path, bank).items():
                if name == "balance - npl_balance":
                    metric = r.values("balance", bank)[row] - r.values("npl_balance", bank)[row]
                else:
                    metric = r.values(name, bank)[row]
                metric = np.rint(metric * 100).astype(np.int64) if name in MONEY else metric.astype(np.int64)
                np.testing.assert_array_equal(metric, recount, err_msg=f"{name}, path {path}, bank {bank}")
                if name in exercised:
                    exercised[name] += int(np.abs(recount).sum() > 0)
    assert all(exercised.values()), exercised  # every relation is tested on something


# ------------------------------------------------------------------------------------------------ (d)
def _crn_scenario(fee: str):
    """No renewal: a renewed (masked) firm defaults at its loan's maturity, not at its default month, which would
    tie the recorded month to the firm's borrowing history."""
    return small_default(**{"renewal.enabled": False, "guarantors": {"fund": {**GUARANTOR, "fee_rate": fee}}})


def _default_months(trace: pd.DataFrame) -> pd.Series:
    """(path, firm) → month of the firm's default (how == 'defaulted'), for the firms that defaulted."""
    return trace[trace["how"] == "defaulted"].groupby(["path", "firm"], observed=True)["end"].first()


def test_a_lower_guarantee_fee_keeps_each_firms_default_month():
    """Common random numbers: the guarantor's fee cut from 1% to 0.2% (borrowers' take-up of the guarantee rises, so
    guaranteed and cover-dependent lending change) on 4 traced paths with the same seed.

    Exactly: the opening book (every opening loan in the trace and every month-0 metric) is the same; a firm that
    defaults in both runs does so in the same month; and a firm that defaults in month d in one run has, in the
    other, no loan ending after d, and any loan on its books at d ends at d by default — a firm's default month is
    its own, whatever it borrowed.

    Statistically: among firms present in both traces that default in either run, the share defaulting in the same
    month in both is at least 0.95. Only a firm whose loans differ at its default month can differ: the fee moves
    about 1.5% of approvals (cover-dependent approvals 476 → 623 of about 9,600), and with its knock-on changes of
    who is picked to apply 130 of the 20,289 firms in both traces (0.64%) borrow in another month or from another
    bank; so under common random numbers the share is at least about 0.99 (measured: 896 of 897), and 0.95 is a
    floor several times that slack below it. Without common random numbers the same statistic is about 0.2% (another
    seed: 3 of 1,538), checked below 0.05, and the exact checks fail (1,420 of another seed's 2,056 loans of these
    firms end after their default month)."""
    paths = [0, 1, 2, 3]
    high = simulate(_crn_scenario("1%"), paths=paths, seed=4, trace=paths)
    low = simulate(_crn_scenario("0.2%"), paths=paths, seed=4, trace=paths)
    other_seed = simulate(_crn_scenario("0.2%"), paths=paths, seed=5, trace=paths)
    # the change matters
    assert low.values("guaranteed_disbursed").sum() > 1.1 * high.values("guaranteed_disbursed").sum()
    assert low.values("cover_dependent_approvals").sum() != high.values("cover_dependent_approvals").sum()
    # the opening book
    for scope in high.groups:
        assert high.groups[scope][:, 0].tobytes() == low.groups[scope][:, 0].tobytes(), scope
    columns = ["path", "firm", "bank", "segment", "grade", "start", "product", "cover", "amount", "rate", "first_time"]

    def opening(r: Results) -> pd.DataFrame:
        book = r.trace[r.trace["start"] <= r.dates[0]][columns]
        return book.sort_values(["path", "firm", "amount"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(opening(high), opening(low))
    assert len(opening(high)) > 10_000

    def shares(a: Results, b: Results) -> tuple[float, int]:
        da, db = _default_months(a.trace), _default_months(b.trace)
        both_present = pd.MultiIndex.from_frame(a.trace[["path", "firm"]]).unique().intersection(
            pd.MultiIndex.from_frame(b.trace[["path", "firm"]]).unique())
        ea, eb = da.reindex(both_present), db.reindex(both_present)
        either = ea.notna() | eb.notna()
        return float((ea[either] == eb[either]).mean()), int(either.sum())

    share, defaulters = shares(high, low)
    assert defaulters > 500
    assert share >= 0.95, share
    assert shares(high, other_seed)[0] < 0.05
    # exactly: the months agree where both default, and the other run has nothing after a firm's default month
    for a, b in ((high, low), (low, high)):
        da, db = _default_months(a.trace), _default_months(b.trace)
        common = da.index.intersection(db.index)
        pd.testing.assert_series_equal(da[common], db[common])
        loans = b.trace.merge(da.rename("its_default").reset_index(), on=["path", "firm"])  # b's loans of a's defaulters
        assert len(loans) > 0
        late = loans[loans["end"] > loans["its_default"]]
        assert late.empty, late
        at_default = loans[(loans["start"] < loans["its_default"]) & (loans["end"] == loans["its_default"])]
        assert (at_default["how"] == "defaulted").all(), at_default


# ------------------------------------------------------------------------------------------------ (e)
def _static_pool(n: int, pd_: float, rho: float):
    """One segment, PD pd_, ρ rho, annual factor; every firm a borrower with one 12-month loan made at the opening
    ('new' opening book), no entry, no applications, no re-borrowing, LGD fixed at 45%, 12 months."""
    base = pool_scenario(firms=n, unbanked_share=0.0, pd=pd_, rho=rho, months=12, term_mix={"12": 1.0}, reborrow_prob=0.0, lgd=0.45)
    return scenario_from_dict(with_changes(base.to_dict(), {"firms.opening_book": "new"}))


def _jittered_cdf(n: int, pd_: float, rho: float, kmax: int):
    """CDF of D + U on [0, kmax + 1), D the one-year default count (a Binomial(n, p(Z)) mixture,
    :func:`helpers.default_count_cdf`, tabulated once for k = 0..kmax) and U ~ U(0, 1) independent: continuous, so
    the KS test applies exactly."""
    table = np.concatenate([[0.0], default_count_cdf(np.arange(kmax + 1), n, pd_, rho)])  # P(D ≤ k - 1) at position k

    def cdf(x):
        x = np.atleast_1d(np.asarray(x, dtype=float))
        k = np.floor(x).astype(int)
        return table[k] + (x - k) * (table[k + 1] - table[k])
    return cdf


def _mixture_moments(n: int, pd_: float, rho: float) -> tuple[float, float]:
    """Mean and variance of D by quadrature over Z: n E[p(Z)] and n E[p(1 − p)] + n² Var p(Z)."""
    z = np.linspace(-9.0, 9.0, 6001)
    w = stats.norm.pdf(z) * (z[1] - z[0])
    p = ndtr((ndtri(pd_) - np.sqrt(rho) * z) / np.sqrt(1.0 - rho))
    mean_p = p @ w
    return n * mean_p, n * ((p * (1 - p)) @ w) + n**2 * (((p - mean_p) ** 2) @ w)


@pytest.mark.slow
def test_static_pool_defaults_follow_the_vasicek_mixture():
    """A static pool of 5,000 firms (PD 2%, ρ 0.12, annual factor) over 600 paths: the one-year default count D
    against the exact finite-pool Gaussian-copula mixture, P(D ≤ k) = ∫ Binomial(n, p(z)) cdf φ(z) dz with
    p(z) = Φ((Φ⁻¹(PD) − √ρ z)/√(1 − ρ)) (quadrature on 6,001 points): KS on D + U (p > 1e-3), Pearson χ² in 12 classes
    of equal probability (p > 1e-3), and the mean within 4 standard errors (√(Var D / paths), Var D from the
    mixture). Power: the same sample is rejected against ρ/2 and against 1.25 PD. The pool is static: every loan
    started at the opening and ends at month 12 unless it defaults; recoveries after 6 months are 55% of the
    defaulted amounts (LGD fixed)."""
    n, pd_, rho, paths = 5_000, 0.02, 0.12, 600
    s = _static_pool(n, pd_, rho)
    r = simulate(s, paths=paths, seed=21, trace=[0, 1])
    trace = r.trace
    assert (trace["start"] == r.dates[0]).all() and len(trace) == 2 * n
    assert trace["how"].isin(["repaid", "defaulted"]).all() and (trace.loc[trace["how"] == "repaid", "end"] == r.dates[12]).all()
    np.testing.assert_array_equal(r.values("loans")[:, 0], n)
    assert r.values("disbursed")[:, 1:].sum() == 0 and r.values("approvals").sum() == 0
    defaults = r.values("defaults")[:, 1:].sum(axis=1)
    np.testing.assert_array_equal(defaults, r.values("loans")[:, -1])  # defaulted loans are still NPL at month 12
    recovered, defaulted = r.values("recovered")[:, 7:13], r.values("defaulted")[:, 1:7]
    np.testing.assert_allclose(recovered, 0.55 * defaulted, rtol=0, atol=0.005 * r.values("defaults")[:, 1:7].max() + 1e-9)

    jitter = np.random.default_rng(5).random(paths)
    kmax = int(defaults.max())
    assert stats.kstest(defaults + jitter, _jittered_cdf(n, pd_, rho, kmax)).pvalue > ALPHA
    quantiles = np.linspace(0, 1, 13)[1:-1]
    grid = np.arange(0, 4 * n * pd_ + 1)  # P(D > 4 n PD) ≈ 0.017 < 1/12: the grid holds every class edge
    cdf = default_count_cdf(grid, n, pd_, rho)
    edges = np.unique(grid[np.searchsorted(cdf, quantiles)])
    probs = np.diff(np.concatenate([[0.0], default_count_cdf(edges, n, pd_, rho), [1.0]]))
    observed = np.bincount(np.searchsorted(edges, defaults, side="left"), minlength=edges.size + 1)
    assert (paths * probs).min() >= 5
    assert stats.chisquare(observed, paths * probs).pvalue > ALPHA
    mean, var = _mixture_moments(n, pd_, rho)
    assert abs(defaults.mean() - mean) < 4 * np.sqrt(var / paths), (defaults.mean(), mean)
    assert stats.kstest(defaults + jitter, _jittered_cdf(n, pd_, rho / 2, kmax)).pvalue < ALPHA
    assert stats.kstest(defaults + jitter, _jittered_cdf(n, 1.25 * pd_, rho, kmax)).pvalue < ALPHA


# ------------------------------------------------------------------------------------------------ (f)
@pytest.fixture(scope="module")
def small():
    return small_default(**{"calendar.months": 3})


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("creditsim: error: ") and err.count("\n") == 1, err
    return err


def _edit_checkpoint(directory: Path, change) -> None:
    path = directory / "checkpoint.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_a_checkpoint_of_an_older_creditsim_is_refused_naming_it(small, tmp_path, capsys):
    """A checkpoint written by creditsim 0.1.0: continuing it (from Python or with --resume) is refused with one line
    that names 0.1.0 and this version."""
    directory = tmp_path / "ck"
    simulate(small, paths=2, seed=1, chunk_size=1, checkpoint=directory)
    _edit_checkpoint(directory, lambda m: m["versions"].update(creditsim="0.1.0"))
    with pytest.raises(ResultsError) as caught:
        simulate(small, paths=2, seed=1, chunk_size=1, checkpoint=directory)
    message = str(caught.value)
    assert "\n" not in message and "0.1.0" in message and creditsim.__version__ in message
    err = _one_line_error(capsys, ["run", "--resume", str(directory)])
    assert "checkpointed by creditsim 0.1.0" in err


def test_a_checkpoint_of_an_older_format_is_refused_naming_it(small, tmp_path, capsys):
    """A checkpoint of format 0 (older than this creditsim's) is refused with one line naming the format it has
    and the one this creditsim reads, as the results loader does ('results format 1 is not 2')."""
    from creditsim.run import checkpoint

    directory = tmp_path / "ck"
    simulate(small, paths=2, seed=1, chunk_size=1, checkpoint=directory)
    older = checkpoint._FORMAT - 1
    _edit_checkpoint(directory, lambda m: m.update(format=older))
    with pytest.raises(ResultsError) as caught:
        simulate(small, paths=2, seed=1, chunk_size=1, checkpoint=directory)
    message = str(caught.value)
    assert "\n" not in message
    err = _one_line_error(capsys, ["run", "--resume", str(directory)])
    for text in (message, err):
        assert f"format {older}" in text and str(checkpoint._FORMAT) in text, text


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m.update(creditsim_version="0.1.0"), "saved by creditsim 0.1.0, which this creditsim {version} does not read"),
    (lambda m: m.update(format=m["format"] - 1), "results format {older} is not {current}"),
])
def test_results_of_an_older_version_are_refused_naming_it(small, tmp_path, capsys, change, expected):
    """Saved results whose manifest (re-signed, as an older creditsim would have written it) has an older creditsim
    version or an older format: Results.load and `creditsim report` refuse them with one line naming the version."""
    from creditsim.results import results as results_module

    directory = simulate(small, paths=2, seed=1).save(tmp_path / "out")
    path = Path(directory) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("manifest_sha256")
    change(manifest)
    manifest["manifest_sha256"] = json_digest(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    text = expected.format(version=creditsim.__version__, older=results_module._FORMAT - 1, current=results_module._FORMAT)
    with pytest.raises(ResultsError) as caught:
        Results.load(directory)
    assert text in str(caught.value) and "\n" not in str(caught.value)
    err = _one_line_error(capsys, ["report", str(directory), "-o", str(tmp_path / "r.html")])
    assert text in err
