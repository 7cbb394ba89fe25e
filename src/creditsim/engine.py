"""The event-driven Monte Carlo engine: one :class:`Simulation` per path.

A SimPy environment keeps the clock; each month it runs the month's events in a fixed order, each event
type handled for all affected firms or loans at once with numpy:

1. interest accrues on the performing balance;
2. the population moves: firms register, firms without a loan fail or close (counts, binomial);
3. firms without a loan apply (Poisson); each goes to a bank by share, which approves it when its PD is
   within the bank's appetite; approved firms become borrowers with their first loans;
4. loans end: those whose firm defaults this month turn non-performing (recovery and write-off are filed
   for later months), the others mature and are repaid, and each matured loan is followed by a new one to the
   same firm with the re-borrowing probability (unless the firm's line passes the inclusive limit); a firm
   left without a loan joins the firms without a loan, able to apply again from next month;
5. recoveries and write-offs filed for this month are booked;
6. the month closes and every metric is recorded.

Every loan is touched when it is made and when it ends (see :mod:`creditsim.loanbook`); a firm's default
month is drawn once, when it becomes a borrower (see :mod:`creditsim.risk`). Stocks are running totals
updated by the same flows that are reported, so the balance identities hold by construction. Money is kept
in whole fen (0.01 CNY) held in float64, so every sum is exact below 2^53 fen (about 90万亿 CNY): no stock
drifts, and a book that runs off ends at exactly 0.
"""

from __future__ import annotations

import math

import numpy as np
import simpy
from scipy.special import ndtr, ndtri

from .borrowers import BorrowerTable
from .errors import ScenarioError
from .loanbook import LoanBook, Loans
from .metrics import BANK_METRICS, POPULATION_METRICS, metric
from .population import grade_table, initial_population, line_parameters
from .risk import beta_parameters, cumulative_hazard, default_months, monthly_hazards
from .scenario import FACTOR_MONTHS, PRODUCTS, Scenario
from .streams import COMPONENTS, stream
from .units import month_index

__all__ = ["Simulation"]

_B = {name: i for i, name in enumerate(BANK_METRICS)}
_P = {name: i for i, name in enumerate(POPULATION_METRICS)}
_CREDIT = PRODUCTS.index("credit")
#: Fen per CNY: the engine's unit of money.
FEN = 100.0
_MONEY = [i for i, name in enumerate(BANK_METRICS) if metric(name).unit == "CNY"]


class Simulation:
    """One Monte Carlo path of a scenario.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    seed : int
        The run's seed.
    path : int
        The path number; with ``seed`` it fixes every random stream (see :mod:`creditsim.streams`).
    audit : bool
        Recount every stock from the loan book and the borrower table after each month and raise
        :class:`AssertionError` on any difference (slow; for tests).

    Attributes
    ----------
    env : simpy.Environment
        The clock; ``env.now`` is the month being processed (1..M).
    bank_metrics : ndarray, shape (M + 1, banks, len(BANK_METRICS))
        Row 0 holds the opening stocks (flows 0); row t the end of month t.
    population_metrics : ndarray, shape (M + 1, len(POPULATION_METRICS))
    """

    def __init__(self, scenario: Scenario, seed: int, path: int, audit: bool = False) -> None:
        self.audit_each_month = audit
        self.scenario = s = scenario
        self.months = m = s.calendar.months
        self.env = simpy.Environment()
        self.rng = {name: stream(seed, path, name) for name in COMPONENTS}
        segments = list(s.firms.segments.values())
        banks = list(s.banks.values())
        self.n_banks = nb = len(banks)

        # --- firms: PD by cohort (segment × grade), hazards given this path's systematic factor
        self.pd, self.grade_share = grade_table(s)
        n_seg, self.n_grades = self.pd.shape
        rho = np.repeat([seg.rho for seg in segments], self.n_grades)
        period = FACTOR_MONTHS[s.risk.factor_frequency]
        factor = self.rng["macro"].standard_normal(math.ceil(m / period))
        self.hazard = monthly_hazards(self.pd.ravel(), rho, self._stress_multipliers(), factor, period)
        self.cum_hazard = cumulative_hazard(self.hazard)
        self.entry_rate = np.array([seg.entry_per_year / 12.0 for seg in segments])
        self.exit_prob = np.array([-math.expm1(math.log1p(-seg.exit_rate) / 12.0) for seg in segments])
        self.applications = np.array([seg.applications_per_month for seg in segments])
        self.demand_growth = (1.0 + s.demand.growth) ** (1.0 / 12.0)
        self.line_mu, self.line_sigma = line_parameters(s)
        self.log_limit = math.log(s.firms.inclusive_line_limit)
        self.line_growth = np.array([seg.line_growth for seg in segments])

        # --- banks
        self.bank_share_cum = np.cumsum([b.share for b in banks])
        self.bank_share_cum[-1] = np.inf
        self.max_pd = np.array([b.max_pd for b in banks])
        self.rate = np.array([b.rate for b in banks])
        terms = sorted({int(k) for b in banks for k in b.term_mix})
        self.terms = np.array(terms, dtype=np.int32)
        term_p = np.array([[b.term_mix.get(str(k), 0.0) for k in terms] for b in banks])
        self.term_cum = _cumulative(term_p)
        self.seasoned_term_cum = _cumulative(term_p * self.terms)  # the opening book is length-biased
        self.product_cum = _cumulative(np.array([[b.product_mix.get(p, 0.0) for p in PRODUCTS] for b in banks]))
        self.lgd_mean = np.array([s.risk.lgd[p] for p in PRODUCTS])
        self.other_growth = self._other_loans_growth()

        # --- state
        self.borrowers = BorrowerTable()
        self.book = LoanBook(m)
        self.pool = np.zeros((n_seg, self.n_grades, 2), dtype=np.int64)
        z = np.zeros
        self.perf_balance, self.perf_credit, self.perf_loans = z(nb), z(nb), z(nb)
        self.npl_balance, self.npl_credit, self.npl_loans, self.npl_firms = z(nb), z(nb), z(nb), z(nb)
        self.perf_firms = z(nb)
        horizon = m + s.risk.write_off_months + 1  # filed resolutions fall in months 1..M + write_off_months
        self.due_recovered, self.due_recovered_credit = z((horizon, nb)), z((horizon, nb))
        self.due_written_off, self.due_written_off_credit = z((horizon, nb)), z((horizon, nb))
        self.due_loans, self.due_firms = z((horizon, nb)), z((horizon, nb))
        self.bank_metrics = z((m + 1, nb, len(BANK_METRICS)))
        self.population_metrics = z((m + 1, len(POPULATION_METRICS)))
        self.flows = z((nb, len(BANK_METRICS)))
        self.pop_flows = z(len(POPULATION_METRICS))
        self.other_loans = z(nb)

    # ------------------------------------------------------------------------------------------ setup helpers
    def _stress_multipliers(self) -> np.ndarray:
        s = self.scenario
        months = s.start_index + np.arange(self.months)
        out = np.ones(self.months)
        for point in s.risk.stress:
            out[months >= month_index(point.date)] = point.pd_multiplier
        return out

    def _other_loans_growth(self) -> np.ndarray:
        """Cumulative growth factor of each bank's loans outside the inclusive book, shape (M + 1, banks)."""
        s = self.scenario
        years = (s.start_index + np.arange(self.months)) // 12
        monthly = np.ones((self.months + 1, self.n_banks))
        for j, bank in enumerate(s.banks.values()):
            g = bank.non_inclusive_growth
            annual = np.array([g[str(y)] if isinstance(g, dict) else g for y in years])
            monthly[1:, j] = (1.0 + annual) ** (1.0 / 12.0)
        return np.cumprod(monthly, axis=0)

    # ------------------------------------------------------------------------------------------ running
    def run(self) -> Simulation:
        """Build the opening book and simulate every month; returns ``self``."""
        self._open()
        if self.audit_each_month:
            self.audit()
        self.env.process(self._clock())
        self.env.run()
        return self

    def _clock(self):
        for t in range(1, self.months + 1):
            yield self.env.timeout(1)
            self._month(t)
            if self.audit_each_month:
                self.audit()

    def _open(self) -> None:
        """The opening book (month 0): population, borrowers and their seasoned loans."""
        start = initial_population(self.scenario)
        self.pool[:] = start.pool
        counts = start.borrowers  # (segments, grades, banks)
        seg, grade, bank = (np.repeat(ix.ravel(), counts.ravel()) for ix in np.indices(counts.shape))
        self._new_borrowers(0, seg, grade, bank, line_shift=start.line_shift[bank])
        for j, (name, b) in enumerate(self.scenario.banks.items()):
            self.other_loans[j] = b.all_loans * FEN - self.perf_balance[j]
            if self.other_loans[j] < 0:
                raise ScenarioError(f"banks.{name}.all_loans", b.all_loans, f"is below the bank's opening inclusive balance ({self.perf_balance[j] / FEN:.6g})")
        self._record(0)

    def audit(self) -> None:
        """Recount every running total from the loan book, the borrower table and the filed resolutions.

        Raises
        ------
        AssertionError
            Naming each stock whose running total differs from its recount.
        """
        wrong = {name: diff for name, diff in _audit_differences(self).items() if diff != 0.0}
        if wrong:
            raise AssertionError(f"month {self.env.now}: running totals differ from the book: {wrong}")

    # ------------------------------------------------------------------------------------------ one month
    def _month(self, t: int) -> None:
        self.flows[:] = 0.0
        self.pop_flows[:] = 0.0
        self.flows[:, _B["interest_income"]] = self.perf_balance * self.rate / 12.0
        self._population(t)
        self._applications(t)
        ending = self.book.pop(t)
        self._defaults(t, ending.take(ending.defaults))
        self._maturities(t, ending.take(~ending.defaults))
        self._resolutions(t)
        self._record(t)

    def _population(self, t: int) -> None:
        """Entries, failures and closures of firms without a loan."""
        rng = self.rng["population"]
        entries = rng.poisson(self.entry_rate)
        for i, n in enumerate(entries.tolist()):
            if n:
                self.pool[i, :, 0] += rng.multinomial(n, self.grade_share[i])
        hazard = self.hazard[:, t].reshape(self.pool.shape[:2])[:, :, None]
        failures = self.rng["defaults"].binomial(self.pool, np.broadcast_to(hazard, self.pool.shape))
        self.pool -= failures
        exits = rng.binomial(self.pool, np.broadcast_to(self.exit_prob[:, None, None], self.pool.shape))
        self.pool -= exits
        self.pop_flows[_P["firm_entries"]] = entries.sum()
        self.pop_flows[_P["firm_failures"]] += failures.sum()
        self.pop_flows[_P["firm_exits"]] = exits.sum()

    def _defaults(self, t: int, loans: Loans) -> None:
        """Loans whose firm defaults this month turn non-performing; recovery and write-off are filed."""
        if len(loans) == 0:
            return
        nb = self.n_banks
        amount, bank = loans.amount, loans.bank
        credit = loans.product == _CREDIT
        defaulted = np.bincount(bank, amount, nb)
        defaulted_credit = np.bincount(bank, amount * credit, nb)
        count = np.bincount(bank, minlength=nb).astype(float)
        lgd = self._lgd(loans.product)
        recovery = np.round(amount * (1.0 - lgd))
        loss = amount - recovery
        r = self.scenario.risk
        due_r, due_w = t + r.recovery_lag_months, t + r.write_off_months
        self.due_recovered[due_r] += np.bincount(bank, recovery, nb)
        self.due_recovered_credit[due_r] += np.bincount(bank, recovery * credit, nb)
        self.due_written_off[due_w] += np.bincount(bank, loss, nb)
        self.due_written_off_credit[due_w] += np.bincount(bank, loss * credit, nb)
        self.due_loans[due_w] += count
        firms = np.unique(loans.firm)
        firm_bank = self.borrowers.bank[firms]
        firm_count = np.bincount(firm_bank, minlength=nb).astype(float)
        self.due_firms[due_w] += firm_count
        self.borrowers.release(firms)

        self.perf_balance -= defaulted
        self.perf_credit -= defaulted_credit
        self.perf_loans -= count
        self.perf_firms -= firm_count
        self.npl_balance += defaulted
        self.npl_credit += defaulted_credit
        self.npl_loans += count
        self.npl_firms += firm_count
        self.flows[:, _B["defaulted"]] = defaulted
        self.flows[:, _B["defaults"]] = count
        self.pop_flows[_P["firm_failures"]] += firms.shape[0]

    def _lgd(self, product: np.ndarray) -> np.ndarray:
        """LGD of each defaulted loan: the product's mean, or a Beta draw around it (the scenario ensures
        0 < mean < 1 whenever lgd_sd > 0)."""
        mean = self.lgd_mean[product]
        sd = self.scenario.risk.lgd_sd
        if sd == 0.0:
            return mean
        a, b = beta_parameters(mean, sd)
        return self.rng["recoveries"].beta(a, b)

    def _maturities(self, t: int, loans: Loans) -> None:
        """Matured loans are repaid; each is followed by a new loan with the re-borrowing probability."""
        if len(loans) == 0:
            return
        nb, table = self.n_banks, self.borrowers
        amount, bank, firm = loans.amount, loans.bank, loans.firm
        repaid = np.bincount(bank, amount, nb)
        self.perf_balance -= repaid
        self.perf_credit -= np.bincount(bank, amount * (loans.product == _CREDIT), nb)
        self.perf_loans -= np.bincount(bank, minlength=nb)
        self.flows[:, _B["repaid"]] = repaid

        want = (self.rng["demand"].random(len(loans)) < self.scenario.demand.reborrow_prob) & ~table.graduating[firm]
        new_amount = np.round(amount * (1.0 + self.line_growth[table.segment[firm]]) ** (loans.term / 12.0))
        # each firm's line after this month: renewed loans grown, the others gone; a firm whose line would pass
        # the inclusive limit graduates, and none of its loans is renewed in the inclusive book
        firms, inverse = np.unique(firm, return_inverse=True)
        change = np.bincount(inverse, np.where(want, new_amount - amount, -amount))
        passing = (table.line[firms] + change > self.scenario.firms.inclusive_line_limit * FEN) & (np.bincount(inverse, want) > 0)
        table.graduating[firms[passing]] = True
        again = want & ~table.graduating[firm]
        table.line[firms] += np.bincount(inverse, np.where(again, new_amount - amount, -amount))
        gone = ~again
        np.subtract.at(table.loans, firm[gone], 1)
        leaving = firms[table.loans[firms] == 0]
        if leaving.size:
            graduates = table.graduating[leaving]
            left_bank = table.bank[leaving]
            self.perf_firms -= np.bincount(left_bank, minlength=nb)
            self.flows[:, _B["graduated"]] = np.bincount(left_bank[graduates], minlength=nb)
            back = leaving[~graduates]
            np.add.at(self.pool, (table.segment[back], table.grade[back], 1), 1)
            table.release(leaving)
        if again.any():
            self._make_loans(t, firm[again], bank[again], new_amount[again])

    def _applications(self, t: int) -> None:
        """Firms without a loan apply; the bank they go to approves those within its risk appetite."""
        rng = self.rng["demand"]
        wanted = rng.poisson(self.applications * self.demand_growth ** (t - 1))
        segs, grades, evers = [], [], []
        for i, n in enumerate(wanted.tolist()):
            available = int(self.pool[i].sum())
            if n > available:
                self.pop_flows[_P["unmet_applications"]] += n - available
                n = available
            if n == 0:
                continue
            drawn: np.ndarray = rng.multivariate_hypergeometric(self.pool[i].ravel(), n)
            cells = np.flatnonzero(drawn)
            reps = drawn[cells]
            segs.append(np.full(n, i, dtype=np.int64))
            grades.append(np.repeat(cells // 2, reps))
            evers.append(np.repeat(cells % 2, reps))
        if not segs:
            return
        seg, grade, ever = np.concatenate(segs), np.concatenate(grades), np.concatenate(evers)
        bank = np.asarray(np.searchsorted(self.bank_share_cum, rng.random(seg.shape[0]), side="right"))
        approved = self.pd[seg, grade] <= self.max_pd[bank]
        nb = self.n_banks
        self.flows[:, _B["applications"]] = np.bincount(bank, minlength=nb)
        self.flows[:, _B["approvals"]] = np.bincount(bank[approved], minlength=nb)
        seg, grade, ever, bank = seg[approved], grade[approved], ever[approved], bank[approved]
        np.subtract.at(self.pool, (seg, grade, ever), 1)
        self._new_borrowers(t, seg, grade, bank)

    def _new_borrowers(self, t: int, seg: np.ndarray, grade: np.ndarray, bank: np.ndarray, line_shift: np.ndarray | None = None) -> None:
        """Make borrowers of firms (default month, credit line) and give them their loans.

        ``line_shift`` (log units, per firm) is given for the opening book only, which it marks as seasoned.
        """
        n = seg.shape[0]
        table = self.borrowers
        slots = table.add(n)
        table.segment[slots] = seg
        table.grade[slots] = grade
        table.bank[slots] = bank
        cohort = seg * self.n_grades + grade
        table.default_month[slots] = default_months(self.cum_hazard, cohort, t, np.asarray(self.rng["defaults"].standard_exponential(n)))
        rng = self.rng["loans"]
        # credit line: lognormal (median, p90) truncated at the inclusive limit, drawn by inverse CDF
        mu = self.line_mu[seg] + (0.0 if line_shift is None else line_shift)
        sigma = self.line_sigma[seg]
        u = rng.random(n) * ndtr((self.log_limit - mu) / sigma)
        line = np.exp(mu + sigma * ndtri(u)) * FEN
        extra = self.scenario.demand.loans_per_borrower - 1.0
        per_firm = 1 + (rng.poisson(extra, n) if extra > 0 else np.zeros(n, dtype=np.int64))
        per_loan = np.maximum(np.floor(line / per_firm), 1.0)  # whole fen
        table.line[slots] = per_loan * per_firm
        table.loans[slots] = per_firm
        self.perf_firms += np.bincount(bank, minlength=self.n_banks)
        firm = np.repeat(slots, per_firm)
        self._make_loans(t, firm, np.repeat(bank, per_firm).astype(np.int16), np.repeat(per_loan, per_firm), seasoned=line_shift is not None)

    def _make_loans(self, t: int, firm: np.ndarray, bank: np.ndarray, amount: np.ndarray, seasoned: bool = False) -> None:
        """Draw term and product, decide how each loan ends, file it and add it to the running totals.

        A seasoned (opening-book) loan has a term drawn length-biased and an age uniform over its term.
        """
        rng = self.rng["loans"]
        n = firm.shape[0]
        u_term, u_product = rng.random((2, n))
        term = self.terms[_pick((self.seasoned_term_cum if seasoned else self.term_cum)[bank], u_term)]
        product = _pick(self.product_cum[bank], u_product).astype(np.int8)
        maturity = t + term - (rng.integers(0, term) if seasoned else 0)
        default_month = self.borrowers.default_month[firm]
        defaults = default_month <= maturity
        self.book.file(Loans(firm, bank, amount, product, term.astype(np.int32), defaults), np.where(defaults, default_month, maturity))
        nb = self.n_banks
        disbursed = np.bincount(bank, amount, nb)
        credit = np.bincount(bank, amount * (product == _CREDIT), nb)
        self.perf_balance += disbursed
        self.perf_credit += credit
        self.perf_loans += np.bincount(bank, minlength=nb)
        if not seasoned:
            self.flows[:, _B["disbursed"]] += disbursed
            self.flows[:, _B["credit_loan_disbursed"]] += credit

    def _resolutions(self, t: int) -> None:
        """Recoveries and write-offs filed for this month."""
        recovered, written_off = self.due_recovered[t], self.due_written_off[t]
        self.npl_balance -= recovered + written_off
        self.npl_credit -= self.due_recovered_credit[t] + self.due_written_off_credit[t]
        self.npl_loans -= self.due_loans[t]
        self.npl_firms -= self.due_firms[t]
        self.flows[:, _B["recovered"]] = recovered
        self.flows[:, _B["written_off"]] = written_off

    def _record(self, t: int) -> None:
        row = self.bank_metrics[t]
        row[:] = self.flows
        balance = self.perf_balance + self.npl_balance
        row[:, _B["balance"]] = balance
        row[:, _B["borrowers"]] = self.perf_firms + self.npl_firms
        row[:, _B["loans"]] = self.perf_loans + self.npl_loans
        row[:, _B["npl_balance"]] = self.npl_balance
        with np.errstate(invalid="ignore", divide="ignore"):
            row[:, _B["npl_ratio"]] = np.where(balance > 0, self.npl_balance / balance, np.nan)
        row[:, _B["credit_loan_balance"]] = self.perf_credit + self.npl_credit
        row[:, _B["all_loans_balance"]] = np.round(self.other_loans * self.other_growth[t]) + balance
        row[:, _MONEY] /= FEN
        pop = self.population_metrics[t]
        pop[:] = self.pop_flows
        unbanked = float(self.pool.sum())
        pop[_P["unbanked_firms"]] = unbanked
        pop[_P["never_borrowed_firms"]] = float(self.pool[:, :, 0].sum())
        pop[_P["firms"]] = unbanked + float(self.perf_firms.sum())


def _audit_differences(sim: Simulation) -> dict[str, float]:
    """Largest absolute difference between each running total and its recount from the book (fen or counts)."""
    t = int(sim.env.now)
    nb, table = sim.n_banks, sim.borrowers
    loans = sim.book.outstanding()
    live = table.live
    per_firm = np.bincount(loans.firm, minlength=table.capacity)
    line = np.bincount(loans.firm, loans.amount, table.capacity)
    pending = slice(t + 1, None)
    recounts = {
        "performing balance": (np.bincount(loans.bank, loans.amount, nb), sim.perf_balance),
        "performing credit balance": (np.bincount(loans.bank, loans.amount * (loans.product == _CREDIT), nb), sim.perf_credit),
        "performing loans": (np.bincount(loans.bank, minlength=nb), sim.perf_loans),
        "performing borrowers": (np.bincount(table.bank[live], minlength=nb), sim.perf_firms),
        "loans per borrower": (per_firm[live], table.loans[live]),
        "no loans on free slots": (per_firm.sum(), per_firm[live].sum()),
        "credit line per borrower": (line[live], table.line[live]),
        "npl balance": ((sim.due_recovered[pending] + sim.due_written_off[pending]).sum(axis=0), sim.npl_balance),
        "npl credit balance": ((sim.due_recovered_credit[pending] + sim.due_written_off_credit[pending]).sum(axis=0), sim.npl_credit),
        "npl loans": (sim.due_loans[pending].sum(axis=0), sim.npl_loans),
        "npl borrowers": (sim.due_firms[pending].sum(axis=0), sim.npl_firms),
    }
    return {name: float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float)), initial=0.0)) for name, (a, b) in recounts.items()}


def _cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities, the last column set to +inf so every uniform finds a column."""
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = np.inf
    return cum


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF choice per row: the first column whose cumulative probability exceeds u."""
    return (u[:, None] >= cum).sum(axis=1)
