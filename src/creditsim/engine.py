"""The event-driven Monte Carlo engine: one :class:`Simulation` per path.

A SimPy environment keeps the clock; each month it runs the month's events in a fixed order, each event
type handled for all affected firms or loans at once: random numbers drawn in bulk from numpy streams, the
per-loan work done in one compiled pass (:mod:`creditsim.kernels`), never a Python loop over loans:

1. interest accrues on the performing balance;
2. the population moves: firms register, firms without a loan fail or close (counts, binomial);
3. firms without a loan apply (Poisson), and the first-loan campaign reaches firms that never borrowed; each
   applicant goes to a bank, which approves it when the PD it believes the firm has (a noisy signal for thin
   files) is within its appetite; approved firms become borrowers with their first loans;
4. loans end. Those whose firm defaults this month turn non-performing (recovery and write-off are filed for
   later months). Maturing loans are renewed without principal repayment when eligible and the bank takes it
   up; otherwise they must be repaid, and a liquidity-stressed firm borrows bridge money or defaults. Repaid
   loans are followed by new ones with the re-borrowing probability (unless the firm's line passes the
   inclusive limit); a firm left without a loan joins the firms without a loan;
5. recoveries and write-offs filed for this month are booked;
6. the month closes and every metric is recorded.

Every loan is touched when it is made and when it ends (see :mod:`creditsim.loanbook`); a firm's default
month is drawn once, when it becomes a borrower (see :mod:`creditsim.risk`). A firm's loans are made
together and share a term, so they mature together. Stocks are running totals updated by the same flows
that are reported, so the balance identities hold by construction; money is kept in whole fen (0.01 CNY) held
in float64, so every sum is exact below 2^53 fen (about 90万亿 CNY).

Evergreening: a renewal to a firm that will default before the renewed loan matures is *masked*: its loans
are filed at maturity instead of at the default month, so the default is recognised only when the renewed
loan falls due and cannot be renewed again. The same firms default, later.
"""

from __future__ import annotations

import math

import numpy as np
import simpy
from scipy.special import expit, logit, ndtr, ndtri

from .borrowers import BorrowerTable
from .capacity import pay_pro_rata
from .errors import ScenarioError
from .guarantees import SMALL_LOAN, GuaranteeBook
from .kernels import (
    CLOSE_TOTALS,
    MATURITY_FLOWS,
    OPEN_TOTALS,
    add_borrowers,
    close_loans,
    continuing_loans,
    cover_outcome,
    cover_requests,
    covered_as_required,
    lay_out_loans,
    maturity_choices,
    pick_each,
    price_loans,
    renewable,
    repay_and_relend,
)
from .loanbook import LoanBook, Loans
from .metrics import BANK_METRICS, POPULATION_METRICS, SCOPE_METRICS, metric, ratio_values
from .pools import PoolBook
from .renewal import RenewalRules
from .risk import beta_parameters, cumulative_hazard, default_months, monthly_hazards
from .scenario import FACTOR_MONTHS, PRODUCTS, Scenario, admitted
from .scenario.growth import application_growth, growth_factor
from .scenario.opening import DECLINED, FORMER, FORMER_FIRST_TIME, NEVER, POOL_STATES, grade_table, initial_population, line_parameters
from .scenario.units import month_index
from .streams import COMPONENTS, stream

__all__ = ["FEN", "Simulation"]

_B = {name: i for i, name in enumerate(BANK_METRICS)}
_P = {name: i for i, name in enumerate(POPULATION_METRICS)}
_CREDIT = PRODUCTS.index("credit")
_GUARANTEED = PRODUCTS.index("guaranteed")
#: Fen per CNY: the engine's unit of money.
FEN = 100.0
#: The opening book is built this many borrowers at a time, so its temporaries stay small (memory, cache).
OPENING_CHUNK = 1 << 18
_MONEY = {scope: [i for i, name in enumerate(SCOPE_METRICS[scope]) if metric(name).unit == "CNY"] for scope in SCOPE_METRICS}


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
    guarantor_metrics, reguarantor_metrics, pool_metrics : ndarray, shape (M + 1, entities of the scope, metrics)
    """

    def __init__(self, scenario: Scenario, seed: int, path: int, audit: bool = False) -> None:
        self.audit_each_month = audit
        self.audit_peak_balance: np.ndarray | float = 0.0  # the largest performing balance an audit has seen, fen
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
        self.exit_prob = np.array([-math.expm1(math.log1p(-seg.exit_rate) / 12.0) if seg.exit_rate < 1.0 else 1.0 for seg in segments])
        self.applications = np.array([seg.applications_per_month for seg in segments])
        self.application_growth = application_growth(s)
        self.line_mu, self.line_sigma = line_parameters(s)
        self.log_limit = math.log(s.firms.inclusive_line_limit)
        self.line_growth = np.array([seg.line_growth for seg in segments])
        with np.errstate(divide="ignore"):
            self.pd_logit = logit(self.pd)

        # --- banks
        self.bank_share = np.array([b.share for b in banks])
        self.max_pd = np.array([b.max_pd for b in banks])
        self.rate = np.array([b.rate for b in banks])
        self.rate_per_pd = np.array([b.rate_per_pd for b in banks])
        self.uptake = np.array([b.renewal_uptake for b in banks])
        self.renewal_rules = RenewalRules.of(s)
        terms = sorted({int(k) for b in banks for k in b.term_mix})
        self.terms = np.array(terms, dtype=np.int32)
        term_p = np.array([[b.term_mix.get(str(k), 0.0) for k in terms] for b in banks])
        self.term_cum = _cumulative(term_p)
        self.seasoned_term_cum = _cumulative(term_p * self.terms)  # the opening book is length-biased
        self.product_cum = _cumulative(np.array([[b.product_mix.get(p, 0.0) for p in PRODUCTS] for b in banks]))
        self.lgd_mean = np.array([s.risk.lgd[p] for p in PRODUCTS])
        self.other_growth = self._growth_path("non_inclusive_growth")
        self.small_micro_outside = np.array([b.small_micro_outside for b in s.banks.values()]) * FEN
        self.small_micro_growth = self._growth_path("small_micro_outside_growth")

        # --- state
        self.borrowers = BorrowerTable()
        self.book = LoanBook(m)
        self.pool = np.zeros((n_seg, self.n_grades, POOL_STATES), dtype=np.int64)  # firms without a loan: (segment, grade, state)
        self.campaign_list_left = s.campaign.list_size if s.campaign.list_size is not None else math.inf
        z = np.zeros
        self.perf_balance, self.perf_credit, self.perf_loans, self.perf_firms = z(nb), z(nb), z(nb), z(nb)
        self.rate_balance, self.renewal_balance, self.restructured_balance = z(nb), z(nb), z(nb)
        self.subsidised_balance = z(nb)
        self.subsidy_spent = 0.0  # this calendar year, fen
        sub = s.interest_subsidy
        self.subsidy_bank_ok = np.array(admitted(sub.banks if sub else [], s.bank_names))
        self.subsidy_segment_ok = np.array(admitted(sub.segments if sub else [], s.segment_names))
        self.npl_balance, self.npl_credit, self.npl_loans, self.npl_firms = z(nb), z(nb), z(nb), z(nb)
        horizon = m + s.risk.write_off_months + 1  # filed resolutions fall in months 1..M + write_off_months
        self.due_recovered, self.due_recovered_credit = z((horizon, nb)), z((horizon, nb))
        self.due_written_off, self.due_written_off_credit = z((horizon, nb)), z((horizon, nb))
        self.due_loans, self.due_firms, self.due_net_loss = z((horizon, nb)), z((horizon, nb)), z((horizon, nb))
        self.guarantees = GuaranteeBook(s, horizon, FEN)
        self.pools = PoolBook(s, horizon, FEN)
        self.bank_metrics = z((m + 1, nb, len(BANK_METRICS)))
        self.population_metrics = z((m + 1, len(POPULATION_METRICS)))
        self.guarantor_metrics = z((m + 1, self.guarantees.n, len(SCOPE_METRICS["guarantor"])))
        self.reguarantor_metrics = z((m + 1, self.guarantees.n_reg, len(SCOPE_METRICS["reguarantor"])))
        self.pool_metrics = z((m + 1, self.pools.n, len(SCOPE_METRICS["pool"])))
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

    def _growth_path(self, field: str) -> np.ndarray:
        """Cumulative growth factor of a book that follows the annual rates of a bank field (the loans outside
        the inclusive book, or the small-micro ones among them), shape (M + 1, banks)."""
        return np.column_stack([growth_factor(self.scenario, getattr(bank, field)) for bank in self.scenario.banks.values()])

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
        s = self.scenario
        start = initial_population(s)
        self.pool[:] = start.pool
        counts = start.borrowers  # (segments, grades, banks), firms in this order
        firms_before = np.cumsum(counts.ravel())
        for first in range(0, int(firms_before[-1]) if firms_before.size else 0, OPENING_CHUNK):  # in chunks: small temporaries
            cell = np.searchsorted(firms_before, np.arange(first, min(first + OPENING_CHUNK, int(firms_before[-1]))), side="right")
            seg, grade, bank = np.unravel_index(cell, counts.shape)
            z = np.asarray(self.rng["signals"].standard_normal(cell.shape[0]))
            self._new_borrowers(0, seg, grade, bank, z, first_time=False, line_shift=start.line_shift[bank], seasoned=True)
        self.guarantees.start_month()  # the opening book's cover is a stock, not a flow of month 0
        for j, (name, b) in enumerate(s.banks.items()):
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
        self.audit_peak_balance = np.maximum(self.audit_peak_balance, self.perf_balance)
        wrong = {name: diff for name, diff in _audit_differences(self).items() if diff > _AUDIT_TOLERANCE.get(name, 0.0)}
        if wrong:
            raise AssertionError(f"month {self.env.now}: running totals differ from the book: {wrong}")

    # ------------------------------------------------------------------------------------------ one month
    def _month(self, t: int) -> None:
        self.flows[:] = 0.0
        self.pop_flows[:] = 0.0
        self.guarantees.start_month()
        self.pools.start_month(t)
        self.flows[:, _B["interest_income"]] = self.rate_balance / 12.0
        self._interest_subsidy(t)
        self._population(t)
        self._applications(t)
        self._campaign(t)
        ending = self.book.pop(t)
        self._defaults(t, ending.take(ending.defaults))
        self._maturities(t, ending.take(~ending.defaults))
        self._claims(t)
        self._resolutions(t)
        self.guarantees.close_month(t)
        self.pools.close_month()
        self._record(t)

    def _interest_subsidy(self, t: int) -> None:
        """Government pays its part of the interest on subsidised loans (on the balance at the start of the month),
        within what is left of the annual budget; borrowers pay what the budget does not."""
        sub = self.scenario.interest_subsidy
        if sub is None:
            return
        if (self.scenario.start_index + t - 1) % 12 == 0:
            self.subsidy_spent = 0.0
        due = np.round(self.subsidised_balance * sub.rate / 12.0)
        left = math.inf if sub.annual_budget is None else sub.annual_budget * FEN - self.subsidy_spent
        paid = pay_pro_rata(due[:, None], np.array([left]))[:, 0]
        self.subsidy_spent += float(paid.sum())
        self.flows[:, _B["interest_subsidy"]] = paid
        self.flows[:, _B["interest_subsidy_unfunded"]] = due - paid

    def _population(self, t: int) -> None:
        """Entries, failures and closures of firms without a loan."""
        rng = self.rng["population"]
        entries = rng.poisson(self.entry_rate)
        for i, n in enumerate(entries.tolist()):
            if n:
                self.pool[i, :, NEVER] += rng.multinomial(n, self.grade_share[i])
        hazard = self.hazard[:, t].reshape(self.pool.shape[:2])[:, :, None]
        failures = self.rng["defaults"].binomial(self.pool, np.broadcast_to(hazard, self.pool.shape))
        self.pool -= failures
        exits = rng.binomial(self.pool, np.broadcast_to(self.exit_prob[:, None, None], self.pool.shape))
        self.pool -= exits
        self.pop_flows[_P["firm_entries"]] = entries.sum()
        self.pop_flows[_P["firm_failures"]] += failures.sum()
        self.pop_flows[_P["firm_exits"]] = exits.sum()

    # ------------------------------------------------------------------------------------------ new borrowers
    def _applications(self, t: int) -> None:
        """Firms without a loan apply; each goes to a bank by share."""
        rng = self.rng["demand"]
        wanted = rng.poisson(self.applications * self.application_growth[t])
        cells = np.zeros(self.pool.shape, dtype=np.int64)
        for i, n in enumerate(wanted.tolist()):
            available = int(self.pool[i].sum())
            if n > available:
                self.pop_flows[_P["unmet_applications"]] += n - available
                n = available
            if n:
                cells[i] = rng.multivariate_hypergeometric(self.pool[i].ravel(), n).reshape(self.pool.shape[1:])
        seg, grade, state = _expand(cells)
        if seg.size:
            bank = self._route(rng, seg.shape[0], None)
            self._decide(t, seg, grade, state, bank, self.max_pd[bank], line_shift=np.zeros(seg.shape[0]), campaign=False)

    def _campaign(self, t: int) -> None:
        """The first-loan campaign: each channel reaches firms on the 无贷户 list; those in need apply."""
        campaign = self.scenario.campaign
        month = self.scenario.start_index + t - 1
        if not campaign.channels or (campaign.start and month < month_index(campaign.start)) or (campaign.end and month > month_index(campaign.end)):
            return
        rng = self.rng["campaign"]
        targets = campaign.segments if campaign.segments is not None else self.scenario.segment_names
        listed = np.zeros(self.pool.shape[0], dtype=bool)
        listed[[self.scenario.segment_names.index(name) for name in targets]] = True
        never = [NEVER, DECLINED]  # the list holds firms that never borrowed, declined ones too
        for channel in campaign.channels.values():
            on_list = np.where(listed[:, None, None], self.pool[:, :, never], 0)
            planned = int(rng.poisson(channel.reach_per_month))
            reach = int(min(planned, on_list.sum(), self.campaign_list_left))
            self.campaign_list_left -= reach
            self.pop_flows[_P["campaign_shortfall"]] += planned - reach
            self.pop_flows[_P["campaign_reached"]] += reach
            if reach == 0:
                continue
            reached = rng.multivariate_hypergeometric(on_list.ravel(), reach).reshape(on_list.shape)
            applying = np.zeros(self.pool.shape, dtype=np.int64)
            applying[:, :, never] = rng.binomial(reached, channel.need)
            seg, grade, state = _expand(applying)
            if seg.size == 0:
                continue
            bank = self._route(rng, seg.shape[0], channel.bank)
            appetite = self.max_pd[bank] if channel.max_pd is None else np.full(seg.shape[0], channel.max_pd)
            self._decide(t, seg, grade, state, bank, appetite, line_shift=np.full(seg.shape[0], math.log(channel.line_scale)), campaign=True)

    def _route(self, rng: np.random.Generator, n: int, bank_name: str | None) -> np.ndarray:
        """The bank of each of n applicants: the named one, or drawn by bank share."""
        if bank_name is not None:
            return np.full(n, self.scenario.bank_names.index(bank_name), dtype=np.int64)
        return np.asarray(rng.choice(self.n_banks, size=n, p=self.bank_share))

    def _decide(self, t: int, seg: np.ndarray, grade: np.ndarray, state: np.ndarray, bank: np.ndarray, appetite: np.ndarray,
                line_shift: np.ndarray, campaign: bool) -> None:
        """Banks approve applicants whose believed PD is within the appetite (per applicant), or whose believed PD
        net of the best cover open to them, PD × (1 − cover share), is; approved firms borrow.

        A firm approved only because of cover needs every loan covered by that guarantor or pool; when one has no
        room the firm is denied for now (``cover_denied``). A 无贷户 declined on its thin file moves to the DECLINED
        state and is declined whenever it asks again (its signal has not changed).
        """
        nb, n = self.n_banks, seg.shape[0]
        z = np.asarray(self.rng["signals"].standard_normal(n))
        history = np.select([state == FORMER, state == FORMER_FIRST_TIME], [self.scenario.risk.known_history_loans, 1], 0)
        believed = self._believed_pd(seg, grade, z, history)
        first_time = (state == NEVER) | (state == FORMER_FIRST_TIME)
        alone = (believed <= appetite) & (state != DECLINED)
        cover = np.full(n, -1, dtype=np.int64)
        options = np.concatenate([self.guarantees.open_cover(seg, bank), self.pools.open_cover(seg, bank, first_time)], axis=1)
        if options.shape[1]:
            best = options.argmax(axis=1)
            share = options[np.arange(n), best]
            needs = ~alone & (state != DECLINED) & (share > 0) & (believed * (1.0 - share) <= appetite)
            cover = np.where(needs, best, -1)
        candidate = np.flatnonzero(alone | (cover >= 0))
        accepted = self._new_borrowers(t, seg[candidate], grade[candidate], bank[candidate], z[candidate], first_time=first_time[candidate],
                                       line_shift=line_shift[candidate], seasoned=False, history=history[candidate],
                                       first_loan=(state == NEVER)[candidate], cover=cover[candidate], belief=believed[candidate])
        approved = np.zeros(n, dtype=bool)
        approved[candidate[accepted]] = True
        self.flows[:, _B["applications"]] += np.bincount(bank, minlength=nb)
        self.flows[:, _B["approvals"]] += np.bincount(bank[approved], minlength=nb)
        self.flows[:, _B["cover_dependent_approvals"]] += np.bincount(bank[approved & (cover >= 0)], minlength=nb)
        self.flows[:, _B["cover_denied"]] += np.bincount(bank[(cover >= 0) & ~approved], minlength=nb)
        if campaign:
            self.flows[:, _B["campaign_applications"]] += np.bincount(bank, minlength=nb)
            self.flows[:, _B["campaign_approvals"]] += np.bincount(bank[approved], minlength=nb)
        first = approved & (state == NEVER)
        self.flows[:, _B["first_time_borrowers"]] += np.bincount(bank[first], minlength=nb)
        self.flows[:, _B["first_time_expected_defaults_believed"]] += np.bincount(bank[first], believed[first], nb)
        self.flows[:, _B["first_time_expected_defaults_true"]] += np.bincount(bank[first], self.pd[seg[first], grade[first]], nb)
        declined = ~alone & (cover < 0) & (state == NEVER)  # declined on the signal itself, not for want of cover
        np.subtract.at(self.pool, (seg[declined], grade[declined], NEVER), 1)
        np.add.at(self.pool, (seg[declined], grade[declined], DECLINED), 1)
        np.subtract.at(self.pool, (seg[approved], grade[approved], state[approved]), 1)

    def _believed_pd(self, seg: np.ndarray, grade: np.ndarray, z: np.ndarray, history: np.ndarray) -> np.ndarray:
        """The annual PD a bank believes a firm has: ``expit(logit(pd) + signal_sd z / sqrt(1 + k))``, k the
        repaid loans it has seen (thin files, k = 0, are the noisiest)."""
        sd = self.scenario.risk.signal_sd
        if sd == 0.0:
            return self.pd[seg, grade]
        return expit(self.pd_logit[seg, grade] + sd * z / np.sqrt(1.0 + history))

    def _update_belief(self, firms: np.ndarray) -> None:
        """Recompute the believed PD of firms whose signal or repayment history changed."""
        table = self.borrowers
        table.belief[firms] = self._believed_pd(table.segment[firms], table.grade[firms], table.signal[firms], table.history[firms].astype(float) + table.repaid[firms])

    def _new_borrowers(self, t: int, seg: np.ndarray, grade: np.ndarray, bank: np.ndarray, z: np.ndarray, first_time: np.ndarray | bool,
                       line_shift: np.ndarray, seasoned: bool, history: np.ndarray | None = None, first_loan: np.ndarray | None = None,
                       cover: np.ndarray | None = None, belief: np.ndarray | None = None) -> np.ndarray:
        """Make borrowers of firms (credit line, loans, cover, default month, belief) and give them their loans.

        ``first_time`` flags 首贷户 (new or returning), ``first_loan`` the firms taking their very first loan;
        ``line_shift`` is added to the log-median of the line; ``seasoned`` marks the opening book; ``cover`` gives,
        per firm, the instrument it needs (-1: none), and a firm whose loans it cannot all cover is not made;
        ``belief`` is the PD the bank believes each firm has (computed here when not given).

        Returns
        -------
        ndarray of bool
            Which of the firms became borrowers.
        """
        n = seg.shape[0]
        if n == 0:
            return np.zeros(0, dtype=bool)
        s, nb = self.scenario, self.n_banks
        first_time = np.full(n, first_time) if np.ndim(first_time) == 0 else np.asarray(first_time, dtype=bool)
        cover = np.full(n, -1, dtype=np.int64) if cover is None else cover
        rng = self.rng["loans"]
        # credit line: lognormal (median, p90) truncated at the inclusive limit, drawn by inverse CDF
        mu = self.line_mu[seg] + line_shift
        sigma = self.line_sigma[seg]
        u = np.asarray(rng.random(n)) * ndtr((self.log_limit - mu) / sigma)
        line = np.exp(mu + sigma * ndtri(u)) * FEN
        extra = s.demand.loans_per_borrower - 1.0
        per_firm = 1 + (np.asarray(rng.poisson(extra, n)) if extra > 0 else np.zeros(n, dtype=np.int64))
        per_loan = np.maximum(np.floor(line / per_firm), 1.0)  # whole fen
        term = self._draw_terms(bank, seasoned)
        age = np.asarray(rng.integers(0, term)) if seasoned else np.zeros(n, dtype=np.int64)
        default_month = default_months(self.cum_hazard, seg * self.n_grades + grade, t, np.asarray(self.rng["defaults"].standard_exponential(n)))
        maturity = t + term - age
        end = np.minimum(default_month, maturity)  # the month the loans end (a default month of M + 1 means none: at most M + 1)
        u_product = np.asarray(rng.random(int(per_firm.sum())))
        known = np.full(n, s.risk.known_history_loans, dtype=np.int64) if history is None else history
        if belief is None:
            belief = self._believed_pd(seg, grade, z, known.astype(float))
        owner, loan_bank, amount, product, loan_segment, loan_line, loan_first_time, loan_cover, loan_belief = lay_out_loans(
            per_firm, per_loan, bank, u_product, self.product_cum, seg, per_loan * per_firm, first_time, cover, belief)
        product, guarantor, pool, covered = self._cover_loans(loan_segment, loan_line, loan_first_time, loan_bank, amount, product, loan_cover,
                                                              loan_belief, count=not seasoned)
        accepted = np.bincount(owner, ~covered, n) == 0
        if not accepted.all():  # firms that needed cover and did not get it for every loan are not made
            dropped = ~accepted[owner]
            self.guarantees.unassign(np.where(dropped, guarantor, -1), amount)
            self.pools.release(np.where(dropped, pool, -1), amount)
            keep = ~dropped
            product, guarantor, pool, amount = product[keep], guarantor[keep], pool[keep], amount[keep]
            index = np.flatnonzero(accepted)
        else:
            index = np.arange(n)
        m = index.shape[0]
        if m == 0:
            return accepted
        table = self.borrowers
        slots = table.add(m)
        since = t - age - (12 * s.risk.known_history_loans if seasoned else 0)
        firm, loan_bank, amount, term, maturity, product, guarantor, pool = add_borrowers(
            index, end, per_firm, slots, seg, grade, bank, z, first_time, known, cover, belief, default_month, per_loan, since,
            amount, product, guarantor, pool, term, maturity, table.segment, table.grade, table.bank, table.signal, table.first_time,
            table.history, table.cover, table.belief, table.default_month, table.line, table.loans, table.since, table.repaid,
            table.graduating,
        )
        self.perf_firms += np.bincount(bank[index], minlength=nb)
        if first_loan is not None:
            self.flows[:, _B["first_loan_amount"]] += np.bincount(bank[index], np.where(first_loan[index], (per_loan * per_firm)[index], 0.0), nb)
        self._make_loans(
            t, firm, loan_bank, amount, term, maturity=maturity, product=product, renewals=np.zeros(firm.shape[0], np.int16),
            masked=np.zeros(firm.shape[0], bool), guarantor=guarantor, pool=pool, seasoned=seasoned,
        )
        return accepted

    def _cover_loans(self, segment: np.ndarray, line: np.ndarray, first_time: np.ndarray, bank: np.ndarray, amount: np.ndarray,
                     product: np.ndarray, required: np.ndarray, belief: np.ndarray, count: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Guarantees and pool cover for new loans.

        A loan of the guaranteed product gets the first eligible guarantor with room, and the borrower takes it
        with the guarantor's take-up probability at its all-in price (the loan rate from ``belief`` + fee −
        subsidy); an eligible loan without a guarantee gets the first pool with room. ``required`` (per loan; -1
        none) names the instrument a cover-dependent firm needs — a guarantor index, or the number of guarantors
        plus a pool index — and forces the product that instrument covers. A guaranteed loan left without a
        guarantor becomes a credit loan (counted in guarantee_unavailable or guarantee_declined when ``count``;
        the opening book's guarantees are existing contracts, taken as they are).

        Returns
        -------
        product, guarantor, pool : ndarray of int8
        covered : ndarray of bool
            False where a required instrument could not cover the loan.
        """
        g, n_g = self.guarantees, self.guarantees.n
        product, wanted, only_guarantor, only_pool = cover_requests(required, product, n_g, _GUARANTEED, _CREDIT)
        guarantor = np.full(amount.shape[0], -1, dtype=np.int8)
        if n_g:
            guarantor = offered = g.assign(segment, line, bank, amount, wanted, only=only_guarantor)
            if count and g.elasticity.any():
                price_ok = self.rng["guarantee"].random(amount.shape[0]) < g.take_up(offered, self.rate[bank] + self.rate_per_pd[bank] * belief)
                declined = (offered >= 0) & ~price_ok
                g.unassign(np.where(declined, offered, -1), amount)
                guarantor = np.where(declined, -1, offered).astype(np.int8)
                self.flows[:, _B["guarantee_declined"]] += np.bincount(bank[declined], minlength=self.n_banks)
            unavailable = cover_outcome(required, n_g, wanted, offered, guarantor, product, bank, _CREDIT, self.n_banks)
            if count:
                self.flows[:, _B["guarantee_unavailable"]] += unavailable
        pool = np.full(amount.shape[0], -1, dtype=np.int8)
        if self.pools.n:
            pool = self.pools.assign(segment, bank, product, amount, first_time, guarantor, only=only_pool)
        return product, guarantor, pool, covered_as_required(required, n_g, guarantor, pool)

    def _draw_terms(self, bank: np.ndarray, seasoned: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """One term per firm from its bank's mix (length-biased for the seasoned opening book); new borrowers
        draw from the loans stream, re-borrowing firms from the reborrow stream."""
        cum = self.seasoned_term_cum if seasoned else self.term_cum
        return self.terms[pick_each(cum, bank, np.asarray((rng or self.rng["loans"]).random(bank.shape[0])))]

    def _make_loans(self, t: int, firm: np.ndarray, bank: np.ndarray, amount: np.ndarray, term: np.ndarray, maturity: np.ndarray,
                    product: np.ndarray, renewals: np.ndarray, masked: np.ndarray, guarantor: np.ndarray, pool: np.ndarray,
                    seasoned: bool = False) -> None:
        """Price the loans, decide how each ends, file them and add them to the running totals.

        Product and cover come from :meth:`_cover_loans`. A loan ends at its firm's default month when that comes
        first, unless ``masked`` (an evergreened renewal), which is filed at maturity.
        """
        s, table = self.scenario, self.borrowers
        first_only = s.interest_subsidy is not None and s.interest_subsidy.first_time_only
        rate, subsidised, defaults, evergreen, end, totals = price_loans(
            firm, bank, amount, product, renewals, masked, maturity, guarantor, table.segment, table.first_time, table.belief,
            table.default_month, self.rate, self.rate_per_pd, self.subsidy_bank_ok, self.subsidy_segment_ok, first_only,
            self.months, _CREDIT, self.n_banks,
        )
        loans = Loans(firm, bank, amount, rate, product, term.astype(np.int32), renewals.astype(np.int16), evergreen, guarantor, pool, subsidised, defaults)
        self.book.file(loans, end)
        total = dict(zip(OPEN_TOTALS, totals.T, strict=True))
        self.perf_balance += total["balance"]
        self.perf_credit += total["credit"]
        self.perf_loans += total["loans"]
        self.rate_balance += total["rate_balance"]
        self.renewal_balance += total["renewal"]
        self.restructured_balance += total["restructured"]
        self.subsidised_balance += total["subsidised"]
        if not seasoned:
            self.flows[:, _B["guaranteed_disbursed"]] += total["guaranteed"]
            self.flows[:, _B["disbursed"]] += total["balance"]
            self.flows[:, _B["credit_loan_disbursed"]] += total["credit"]
            self.flows[:, _B["first_time_borrower_lending"]] += total["first_time"]

    # ------------------------------------------------------------------------------------------ loans that end
    def _close(self, loans: Loans, keep: np.ndarray | None = None) -> None:
        """Take ending loans (those where ``keep`` is true, default all) out of the performing running totals."""
        g, p = self.guarantees, self.pools
        keep = np.ones(len(loans), dtype=bool) if keep is None else keep
        totals, liability, covered = close_loans(
            keep, loans.bank, loans.amount, loans.rate, loans.product, loans.renewals, loans.evergreen, loans.subsidised, loans.guarantor,
            loans.pool, g.coverage, SMALL_LOAN * FEN, _CREDIT, self.n_banks, p.n,
        )
        total = dict(zip(CLOSE_TOTALS, totals.T, strict=True))
        self.perf_balance -= total["balance"]
        self.perf_credit -= total["credit"]
        self.perf_loans -= total["loans"]
        self.rate_balance -= total["rate_balance"]
        self.renewal_balance -= total["renewal"]
        self.restructured_balance -= total["restructured"]
        self.subsidised_balance -= total["subsidised"]
        g.outstanding -= liability[:, 0]
        g.outstanding_small -= liability[:, 1]
        p.covered -= covered

    def _defaults(self, t: int, loans: Loans, liquidity: np.ndarray | None = None) -> None:
        """Loans of firms that default this month turn non-performing; recovery and write-off are filed."""
        if len(loans) == 0:
            return
        nb = self.n_banks
        amount, bank = loans.amount, loans.bank
        self._close(loans)
        credit = loans.product == _CREDIT
        defaulted = np.bincount(bank, amount, nb)
        defaulted_credit = np.bincount(bank, amount * credit, nb)
        count = np.bincount(bank, minlength=nb).astype(float)
        recovery = np.round(amount * (1.0 - self._lgd(loans.product)))
        r = self.scenario.risk
        due_r, due_w = t + r.recovery_lag_months, t + r.write_off_months
        # a guarantor pays a claim later and takes its share of the recovery; the bank writes off the rest
        bank_recovery, claim = self.guarantees.file_default(t, loans.guarantor, bank, amount, recovery, r.recovery_lag_months, r.write_off_months)
        loss = amount - claim - bank_recovery
        self.pools.file_default(t, loans.pool, bank, amount, recovery, credit, r.write_off_months)
        self.due_recovered[due_r] += np.bincount(bank, bank_recovery, nb)
        self.due_recovered_credit[due_r] += np.bincount(bank, bank_recovery * credit, nb)
        self.due_written_off[due_w] += np.bincount(bank, loss, nb)
        self.due_written_off_credit[due_w] += np.bincount(bank, loss * credit, nb)
        self.due_net_loss[due_w] += np.bincount(bank, amount - recovery, nb)
        self.due_loans[due_w] += count
        firms, _ = _firm_runs(loans.firm)
        firm_count = np.bincount(self.borrowers.bank[firms], minlength=nb).astype(float)
        self.due_firms[due_w] += firm_count
        first = self.borrowers.first_time[loans.firm]
        self.borrowers.release(firms)

        self.perf_firms -= firm_count
        self.npl_balance += defaulted
        self.npl_credit += defaulted_credit
        self.npl_loans += count
        self.npl_firms += firm_count
        self.flows[:, _B["defaulted"]] += defaulted
        self.flows[:, _B["defaults"]] += count
        self.flows[:, _B["first_time_defaults"]] += np.bincount(bank[first], minlength=nb)
        self.flows[:, _B["first_time_defaulted"]] += np.bincount(bank, amount * first, nb)
        if liquidity is not None:
            self.flows[:, _B["liquidity_defaults"]] += np.bincount(bank[liquidity], minlength=nb)
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
        """Maturing loans, firm by firm: graduation, liquidity stress, renewal, repayment, re-borrowing."""
        if len(loans) == 0:
            return
        s, table = self.scenario, self.borrowers
        firms, inverse = _firm_runs(loans.firm)
        n_firms = firms.shape[0]
        u_reborrow = np.asarray(self.rng["reborrow"].random(len(loans)))
        # liquidity stress of solvent firms (drawn for every maturing firm, whatever the policy)
        u_stress, u_bridge = self.rng["liquidity"].random((2, n_firms)) if s.liquidity.stress_prob > 0 else (np.zeros(0), np.zeros(0))
        want, asks, grown, insolvent, stressed, bridges = maturity_choices(
            t, firms, inverse, loans.amount, loans.term, u_reborrow, s.demand.reborrow_prob, u_stress, s.liquidity.stress_prob,
            u_bridge, s.liquidity.bridge_share, self.line_growth, s.firms.inclusive_line_limit * FEN, table.default_month,
            table.graduating, table.segment, table.line,
        )
        renew = asks & self._renewable(t, loans, firms, inverse)
        to_repay = np.bincount(inverse, ~renew, n_firms) > 0
        liquidity_default = stressed & to_repay & ~bridges
        bridged = stressed & to_repay & bridges
        defaulting = liquidity_default | (insolvent & to_repay)
        default = defaulting[inverse]
        if default.any():
            self._defaults(t, loans.take(default), liquidity=liquidity_default[inverse][default])
        self._close(loans, keep=~default)
        share, open_now = self._instrument_cover()
        flows, cont, new_amount, leaving = repay_and_relend(
            firms, inverse, defaulting, loans.bank, loans.amount, renew, want, grown, bridged, self.max_pd, share, open_now,
            self.pd_logit, self.pd, s.risk.signal_sd, FORMER, FORMER_FIRST_TIME, self.pool, table.bank, table.segment, table.grade,
            table.signal, table.history, table.repaid, table.belief, table.cover, table.line, table.loans, table.graduating,
            table.first_time, self.n_banks,
        )
        flow = dict(zip(MATURITY_FLOWS, flows.T, strict=True))
        self.flows[:, _B["repaid"]] += flow["repaid"]
        self.flows[:, _B["bridge_cost"]] += flow["bridged"] * s.liquidity.bridge_cost
        self.flows[:, _B["renewals"]] += flow["renewals"]
        self.flows[:, _B["renewed"]] += flow["renewed"]
        self.flows[:, _B["reborrow_declined"]] += flow["reborrow_declined"]
        self.flows[:, _B["graduated"]] += flow["graduated"]
        self.perf_firms -= flow["left"]
        table.release(leaving)
        if cont.any():
            self._continue(t, loans, inverse, ~defaulting, renew, cont, new_amount)

    def _continue(self, t: int, loans: Loans, inverse: np.ndarray, alive: np.ndarray, renew: np.ndarray, cont: np.ndarray,
                  new_amount: np.ndarray) -> None:
        """New loans for the continuing ones: renewals (same amount, term and product) and re-borrowing.

        ``inverse`` maps each maturing loan to its firm, ``alive`` marks the firms that did not default; ``renew``
        and ``cont`` mark the loans renewed and going on, ``new_amount`` their amounts (see
        :func:`creditsim.kernels.continuing_loans`).
        """
        table, rng = self.borrowers, self.rng["reborrow"]
        u_term = np.asarray(rng.random(int(alive.sum())))
        u_product = np.asarray(rng.random(int(cont.sum())))
        firm, bank, amount, term, product, renewals, masked, segment, line, first_time, cover, belief = continuing_loans(
            inverse, alive, renew, cont, loans.firm, loans.bank, loans.term, loans.product, loans.renewals, new_amount, u_term,
            self.term_cum, self.terms, u_product, self.product_cum, table.bank, table.segment, table.line, table.first_time,
            table.cover, table.belief,
        )
        product, guarantor, pool, _ = self._cover_loans(segment, line, first_time, bank, amount, product, cover, belief)
        self._make_loans(t, firm, bank, amount, term, maturity=t + term, product=product, renewals=renewals, masked=masked,
                         guarantor=guarantor, pool=pool)

    def _instrument_cover(self) -> tuple[np.ndarray, np.ndarray]:
        """Per instrument (guarantors, then pools): the share of loss it covers and whether it takes new business."""
        g, p = self.guarantees, self.pools
        share = np.concatenate([g.coverage, p.share])
        open_now = np.concatenate([g.taking(), p.taking()])
        return share, open_now

    def _renewable(self, t: int, loans: Loans, firms: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        """Maturing loans the rules allow to renew at firms whose bank takes renewal up (uptake per firm)."""
        rules = self.renewal_rules
        if rules is None:
            return np.zeros(len(loans), dtype=bool)
        table = self.borrowers
        taken = self.rng["renewal"].random(firms.shape[0]) < self.uptake[table.bank[firms]]
        return renewable(
            rules.last_month, rules.product_ok, rules.max_term, rules.max_consecutive, rules.min_months_on_book, rules.max_pd,
            self.scenario.start_index + t - 1, t, loans.firm, loans.product, loans.term, loans.renewals, inverse, taken, table.segment,
            table.since, table.belief,
        )

    def _claims(self, t: int) -> None:
        """Guarantee claims due this month: paid claims reduce the banks' NPL as recoveries; unpaid ones are
        written off by the banks when the loans are."""
        paid, unpaid = self.guarantees.settle(t)
        received = paid.sum(axis=0)
        self.npl_balance -= received
        self.flows[:, _B["recovered"]] += received
        if unpaid.any():
            write_off = t + self.guarantees.write_off_after_claim
            np.add.at(self.due_written_off, write_off, unpaid)

    def _resolutions(self, t: int) -> None:
        """Recoveries and write-offs filed for this month; a risk pool's compensation is a recovery that reduces
        the write-off."""
        paid, paid_credit = self.pools.settle(t)
        self.due_written_off[t] -= paid.sum(axis=0)
        self.due_recovered[t] += paid.sum(axis=0)
        self.due_written_off_credit[t] -= paid_credit.sum(axis=0)
        self.due_recovered_credit[t] += paid_credit.sum(axis=0)
        recovered, written_off = self.due_recovered[t], self.due_written_off[t]
        self.npl_balance -= recovered + written_off
        self.npl_credit -= self.due_recovered_credit[t] + self.due_written_off_credit[t]
        self.npl_loans -= self.due_loans[t]
        self.npl_firms -= self.due_firms[t]
        self.flows[:, _B["recovered"]] += recovered
        self.flows[:, _B["written_off"]] = written_off
        self.flows[:, _B["loss_bank"]] = written_off
        self.flows[:, _B["net_loss"]] = self.due_net_loss[t]

    def _record(self, t: int) -> None:
        row = self.bank_metrics[t]
        row[:] = self.flows
        balance = self.perf_balance + self.npl_balance
        row[:, _B["balance"]] = balance
        row[:, _B["borrowers"]] = self.perf_firms + self.npl_firms
        row[:, _B["loans"]] = self.perf_loans + self.npl_loans
        row[:, _B["npl_balance"]] = self.npl_balance
        row[:, _B["credit_loan_balance"]] = self.perf_credit + self.npl_credit
        row[:, _B["renewal_balance"]] = self.renewal_balance
        row[:, _B["restructured_balance"]] = self.restructured_balance
        row[:, _B["all_loans_balance"]] = np.round(self.other_loans * self.other_growth[t]) + balance
        row[:, _B["small_micro_balance"]] = np.round(self.small_micro_outside * self.small_micro_growth[t]) + balance
        self.guarantees.record(self.guarantor_metrics[t], self.reguarantor_metrics[t])
        self.pools.record(self.pool_metrics[t])
        for scope, rows in (("bank", row), ("guarantor", self.guarantor_metrics[t]), ("reguarantor", self.reguarantor_metrics[t]), ("pool", self.pool_metrics[t])):
            _finish(scope, rows, self.scenario)
        pop = self.population_metrics[t]
        pop[:] = self.pop_flows
        unbanked = float(self.pool.sum())
        pop[_P["unbanked_firms"]] = unbanked
        pop[_P["never_borrowed_firms"]] = float(self.pool[:, :, [NEVER, DECLINED]].sum())
        pop[_P["firms"]] = unbanked + float(self.perf_firms.sum())
        pop[_P["fiscal_cost"]] = (self.guarantees.fiscal + self.pools.fiscal + self.flows[:, _B["interest_subsidy"]].sum()) / FEN


#: Running totals that are sums of non-integer products (interest rate × fen) agree with a recount to rounding.
_AUDIT_TOLERANCE = {"rate × balance": 1e-6}


def _audit_differences(sim: Simulation) -> dict[str, float]:
    """Largest absolute difference between each running total and its recount from the book (fen or counts)."""
    t = int(sim.env.now)
    nb, table = sim.n_banks, sim.borrowers
    loans = sim.book.outstanding()
    live = table.live
    per_firm = np.bincount(loans.firm, minlength=table.capacity)
    line = np.bincount(loans.firm, loans.amount, table.capacity)
    pending = slice(t + 1, None)
    # rate × balance is a float sum of every loan ever filed less every loan ended: its rounding is relative to the
    # largest balance the book has had (and the highest rate, which risk pricing can take to 1000%)
    peak = np.maximum(sim.audit_peak_balance, sim.perf_balance)
    scale = np.maximum(peak, 1.0) * max(1.0, float(loans.rate.max(initial=0.0)))
    recounts = {
        "performing balance": (np.bincount(loans.bank, loans.amount, nb), sim.perf_balance),
        "performing credit balance": (np.bincount(loans.bank, loans.amount * (loans.product == _CREDIT), nb), sim.perf_credit),
        "performing loans": (np.bincount(loans.bank, minlength=nb), sim.perf_loans),
        "renewal balance": (np.bincount(loans.bank, loans.amount * (loans.renewals > 0), nb), sim.renewal_balance),
        "restructured balance": (np.bincount(loans.bank, loans.amount * loans.evergreen, nb), sim.restructured_balance),
        "rate × balance": (np.bincount(loans.bank, loans.amount * loans.rate, nb) / scale, sim.rate_balance / scale),
        "performing borrowers": (np.bincount(table.bank[live], minlength=nb), sim.perf_firms),
        "loans per borrower": (per_firm[live], table.loans[live]),
        "no loans on free slots": (per_firm.sum(), per_firm[live].sum()),
        "credit line per borrower": (line[live], table.line[live]),
        "guarantee liability": (
            np.bincount(loans.guarantor[loans.guarantor >= 0].astype(np.int64), np.round(sim.guarantees.coverage[loans.guarantor[loans.guarantor >= 0].astype(np.int64)] * loans.amount[loans.guarantor >= 0]), sim.guarantees.n),
            sim.guarantees.outstanding,
        ),
        "subsidised balance": (np.bincount(loans.bank, loans.amount * loans.subsidised, nb), sim.subsidised_balance),
        "pool covered balance": (np.bincount(loans.pool[loans.pool >= 0].astype(np.int64), loans.amount[loans.pool >= 0], sim.pools.n), sim.pools.covered),
        "believed PD per borrower": (sim._believed_pd(table.segment[live], table.grade[live], table.signal[live], table.history[live].astype(float) + table.repaid[live]), table.belief[live]),
        "npl balance": ((sim.due_recovered[pending] + sim.due_written_off[pending]).sum(axis=0) + sim.guarantees.due_claims[pending].sum(axis=(0, 1)), sim.npl_balance),
        "npl credit balance": ((sim.due_recovered_credit[pending] + sim.due_written_off_credit[pending]).sum(axis=0), sim.npl_credit),
        "npl loans": (sim.due_loans[pending].sum(axis=0), sim.npl_loans),
        "npl borrowers": (sim.due_firms[pending].sum(axis=0), sim.npl_firms),
    }
    # a firm's loans share one end month: every loan of a live firm sits in the same bucket
    recounts["one maturity per firm"] = (_firms_split_across_buckets(sim), 0)
    return {name: float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float)), initial=0.0)) for name, (a, b) in recounts.items()}


def _firms_split_across_buckets(sim: Simulation) -> int:
    """How many firms have loans filed under more than one end month, or not next to each other in their bucket."""
    seen: dict[int, int] = {}
    split = 0
    for month, bucket in enumerate(sim.book._buckets):
        if not bucket:
            continue
        firm = Loans.concat(bucket).firm
        runs, _ = _firm_runs(firm)
        split += runs.shape[0] - np.unique(firm).shape[0]
        for f in runs.tolist():
            if seen.setdefault(f, month) != month:
                split += 1
    return split


def _firm_runs(firm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The firms of a batch of loans in order of appearance, and each loan's index into them.

    A firm's loans are made together and end together, and the loan book hands them out next to each other (see
    :meth:`LoanBook.file` and :meth:`LoanBook.pop`), so each firm is one run of equal values: O(n). The audit
    checks it.
    """
    if firm.shape[0] == 0:
        return firm, np.zeros(0, dtype=np.int64)
    starts = np.empty(firm.shape[0], dtype=bool)
    starts[0] = True
    np.not_equal(firm[1:], firm[:-1], out=starts[1:])
    return firm[starts], np.cumsum(starts) - 1


def _expand(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Firms as (segment, grade, state) index arrays from counts of shape (segments, grades, states)."""
    flat = cells.ravel()
    index = np.repeat(np.arange(flat.shape[0]), flat)
    seg, rest = np.divmod(index, cells.shape[1] * cells.shape[2])
    grade, state = np.divmod(rest, cells.shape[2])
    return seg, grade, state


def _finish(scope: str, rows: np.ndarray, scenario: Scenario) -> None:
    """Convert a scope's money metrics from fen to CNY and fill in its ratios, in place."""
    names = SCOPE_METRICS[scope]
    rows[:, _MONEY[scope]] /= FEN
    for name, values in ratio_values(scope, lambda m: rows[:, names.index(m)], scenario).items():
        rows[:, names.index(name)] = values


def _cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative probabilities, the last column set to +inf so every uniform finds a column."""
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = np.inf
    return cum
