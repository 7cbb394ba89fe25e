"""A run as one self-contained HTML report a planner can send to a colleague.

Everything is inline (styles, and charts as PNG data URIs), so the file opens anywhere without a network. It
holds the scenario summary and its full source, the main assumptions, the target table, the 两增 and 两控
table, fan charts of the key metrics and how the run was produced (version, seed, paths). It reads at laptop
width and prints to PDF with one chart or table per block.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..files import write_file
from ..results.assessment import CHECKS
from ..results.banks import bank_table, bank_view
from ..results.budget import budget
from ..results.targets import condition
from ..scenario.sources import cite
from ..scenario.units import format_amount, format_value
from . import plots

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..results.results import Results

__all__ = ["KEY_METRICS", "STANDING_CSS", "report_html", "standing", "write_report"]

#: Metrics shown as fan charts in every report.
KEY_METRICS: tuple[str, ...] = ("balance", "borrowers", "npl_ratio", "credit_loan_balance", "renewal_balance", "first_time_borrowers")

#: The colours of a probability's standing (:func:`standing`).
STANDING_CSS = ".ok { color: #1a7f37; } .risk { color: #b35900; } .fail { color: #c62828; font-weight: 600; }"

_STYLE = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif;
       max-width: 64rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.45rem; text-align: right; vertical-align: top; }
th { background: #f2f4f7; } td.l, th.l { text-align: left; }
.wrap { overflow-x: auto; }
figure { margin: 1rem 0; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85rem; color: #555; }
""" + STANDING_CSS + """
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(26rem, 100%), 1fr)); gap: 0 1.5rem; }
td.src { overflow-wrap: anywhere; min-width: 6rem; }
.print { display: none; }
@media print { body { max-width: none; padding: 0; font-size: 10pt; } h2 { break-after: avoid; } table, .grid > figure { break-inside: avoid; }
               .screen { display: none; } .print { display: block; } .wrap { overflow: visible; }
               pre { white-space: pre-wrap; overflow-wrap: anywhere; } .grid { grid-template-columns: 1fr; } }
"""


def report_html(results: Results, command: str | None = None) -> str:
    """The report as one HTML document (a string).

    Parameters
    ----------
    results : Results
    command : str, optional
        The command that produced the run, shown under "How this was produced".
    """
    from .. import __version__

    s = results.scenario
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(s.name)} · creditsim report</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(s.name)}</h1>",
        f'<p class="sub">{_e(s.description)}</p>' if s.description else "",
        f'<p class="sub">{results.paths} Monte Carlo paths · {results.dates[1]} → {results.dates[-1]} · seed {results.seed}</p>',
        "<h2>Targets 目标</h2>",
        _targets_section(results),
        "<h2>两增 and 两控, per bank</h2>",
        _assessment_section(results),
        "<h2>Key metrics 主要指标</h2>",
        '<div class="grid">',
        *[_figure(plots.fan_chart(results, name), f"{name}: median, 25–75% and 5–95% of {results.paths} paths") for name in KEY_METRICS],
        "</div>",
        _instrument_section(results),
        "<h2>Each bank 分银行</h2>",
        _banks_section(results),
        "<h2>Budget 财政预算</h2>",
        _budget_section(results),
        "<h2>Limits and insolvency 偿付能力</h2>",
        _limits_section(results),
        "<h2>Scenario 情景</h2>",
        _scenario_section(results),
        "<h2>How this was produced</h2>",
        _provenance(results, __version__, command),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_report(results: Results, path: str | Path, command: str | None = None) -> Path:
    """Write the report to ``path`` atomically (a temporary file renamed into place).

    Raises
    ------
    ResultsError
        When the file cannot be written.
    """
    text = report_html(results, command)

    def write(temporary: Path) -> None:
        temporary.write_text(text, encoding="utf-8")

    return write_file(Path(path), write, "report")


# ---------------------------------------------------------------------------------------------------- sections
def _targets_section(results: Results) -> str:
    table = results.targets()
    if table.empty:
        return "<p>The scenario lists no targets.</p>"
    rows = []
    for r in table.itertuples():
        unit = r.unit
        label = f"<br><small>{_e(r.label)}</small>" if r.label else ""
        head = (f'<td class="l"><b>{_e(r.target)}</b>{label}</td><td class="l">{_e(r.metric)}<br><small>{_e(r.measure)} · {_e(r.scope)} · '
                f'{_e(r.when)}</small></td><td>{_e(condition(r.measure, r.metric, r.comparison, r.threshold, unit))}</td>')
        if r.note:
            rows.append(f'<tr>{head}<td class="l" colspan="5">{_e(r.note)}</td><td class="l src">{_e(cite(r.source))}</td></tr>')
            continue
        css = standing(r.probability)
        rows.append(
            f'<tr>{head}<td class="{css}">{100 * r.probability:.0f}%</td><td>{100 * r.ci_low:.0f}–{100 * r.ci_high:.0f}%</td>'
            f"<td>{_e(format_value(r.median, unit))}</td><td>{_e(format_value(r.p5, unit))} – {_e(format_value(r.p95, unit))}</td>"
            f'<td>{_e(format_value(r.median_shortfall, unit))}</td><td class="l src">{_e(cite(r.source))}</td></tr>'
        )
    header = ('<tr><th class="l">target</th><th class="l">measured</th>'
              "<th>threshold</th><th>P(met)</th><th>95% CI</th><th>median</th><th>5–95% band</th><th>median shortfall</th>"
              '<th class="l">source</th></tr>')
    charts = [_figure(plots.target_chart(results), "Probability each target is met, with its Wilson 95% interval")]
    charts += [_figure(plots.fan_chart(results, "", target=name), f"{name}: what the target measures over time, against its threshold")
               for name in table.loc[(table["note"] == "") & (table["measure"] != "test"), "target"]]  # a test has no path to chart
    return f'<div class="wrap"><table>{header}{"".join(rows)}</table></div><div class="grid">{"".join(charts)}</div>'


def standing(p: float) -> str:
    """The CSS class of a probability of being met or passed: "ok" from 90%, "risk" from 50%, else "fail"."""
    return "ok" if p >= 0.9 else "risk" if p >= 0.5 else "fail"


def _assessment_section(results: Results) -> str:
    table = results.two_increases()
    year_end = table[table["date"].str.endswith("-12")]
    if year_end.empty:
        return "<p>No year-end falls in the run.</p>"
    years = sorted(year_end["year"].unique())
    rows = []
    for check in CHECKS:
        for bank in results.banks:
            cells = []
            found = year_end[(year_end["check"] == check) & (year_end["bank"] == bank)].set_index("year")
            if found.empty:
                continue
            for y in years:
                if y not in found.index:
                    cells.append("<td>–</td>")
                    continue
                r = found.loc[y]
                css = standing(r.probability)
                margin = "" if np.isnan(r.median_margin) else f"<br><small>margin {_margin(r.median_margin, r.margin_unit)}</small>"
                cells.append(f'<td class="{css}">{100 * r.probability:.0f}% <small>({100 * r.ci_low:.0f}–{100 * r.ci_high:.0f})</small>{margin}</td>')
            rows.append(f'<tr><td class="l">{_e(check)}</td><td class="l">{_e(bank)}</td>{"".join(cells)}</tr>')
    rules = ", ".join(f"{y}: {year_end[year_end['year'] == y]['rule'].iloc[0]}" for y in years)
    header = '<tr><th class="l">check</th><th class="l">bank</th>' + "".join(f"<th>{y}</th>" for y in years) + "</tr>"
    note = (f"<p>Probability of passing at each year-end (95% Wilson interval) and the median margin. Rules: {_e(rules)}. "
            f"两控's NPL half allows {100 * results.scenario.assessment.npl_margin:g} points over the bank's overall NPL ratio; "
            + ("its cost half asks the year's new loans to carry a lower average rate than the year before's. "
               if results.scenario.assessment.loan_cost else "its cost half is not assessed in this scenario. ")
            + "Quarter-end figures are in <code>Results.two_increases()</code>.</p>")
    return f'{note}<div class="wrap"><table>{header}{"".join(rows)}</table></div>' + _figure(
        plots.two_increases_chart(results), "两增: inclusive loan growth less all-loan growth at each year-end, by bank")


def _instrument_section(results: Results) -> str:
    s = results.scenario
    if not (s.guarantors or s.pools):
        return _figure(plots.loss_chart(results), "Net credit losses borne by the banks, cumulative (mean over paths)")
    charts = [_figure(plots.loss_chart(results), "Net credit losses by who bears them, cumulative (mean over paths)")]
    capital = plots.capital_chart(results)
    if capital is not None:
        charts.append(_figure(capital, "Guarantor capital and pool balances: median and 5–95% band"))
    return "<h2>Who bears the losses; instruments 风险分担</h2>" + '<div class="grid">' + "".join(charts) + "</div>"


def _banks_section(results: Results) -> str:
    table = bank_table(results)
    dates = list(dict.fromkeys(table["date"]))
    parts = [f"<p>Each bank's inclusive book at each year-end (and {_e(dates[-1])}): the median over paths, with the 5–95% band "
             "at the last date; flows (首贷户, first loans, renewals) are summed over the calendar year to date. 两增's margins are "
             "how far the bank clears each check (loan growth in percentage points, borrowers in firms); P(pass) with its "
             "95% Wilson interval.</p>"]
    header = '<tr><th class="l">item</th>' + "".join(f"<th>{_e(d)}</th>" for d in dates) + f"<th>5–95% band at {_e(dates[-1])}</th></tr>"
    for bank in results.banks:
        _, view = bank_view(table, bank)
        rows = [f'<tr><td class="l">{_e(item)}</td>' + "".join(f"<td>{_e(m)}</td>" for m in medians)
                + f"<td>{'–' if band is None else f'{_e(band[0])} – {_e(band[1])}'}</td></tr>" for item, medians, band in view]
        parts.append(f'<h3>{_e(bank)}</h3><div class="wrap"><table>{header}{"".join(rows)}</table></div>')
    return "".join(parts)


def _budget_section(results: Results) -> str:
    spent = budget(results)
    if spent.items.empty:
        return "<p>The scenario has no guarantor, re-guarantor, pool or interest subsidy: the government spends nothing on it.</p>"
    lines_by = spent.by_line()
    years = spent.years
    rows = []
    for row in lines_by.to_dict("records"):
        cells = "".join(f"<td>{_e(format_amount(row[y]))}</td>" for y in years)
        rows.append(f'<tr><td class="l">{_e(row["instrument"])}</td><td class="l">{_e(row["item"])}</td><td class="l">{_e(row["timing"])}</td>{cells}'
                    f"<td><b>{_e(format_amount(row['median']))}</b></td><td>{_e(format_amount(row['p5']))} – {_e(format_amount(row['p95']))}</td></tr>")
    header = ('<tr><th class="l">instrument</th><th class="l">item</th><th class="l">kind</th>' + "".join(f"<th>{_e(y)}</th>" for y in years)
              + "<th>total</th><th>5–95% band</th></tr>")
    bottom = "".join(
        f'<tr><td class="l">{_e(row.line)}</td><td><b>{_e(format_amount(row.median))}</b></td><td>{_e(format_amount(row.p5))} – '
        f"{_e(format_amount(row.p95))}</td></tr>" for row in spent.totals.itertuples())
    note = (f"<p>The government's money for the instruments by year (median over paths; start-up money in the first year), one-off "
            f"(start-up capital, scheduled injections) and recurring (budgets, top-ups, fee and interest subsidies). Present values "
            f"at {100 * spent.discount_rate:g}% a year; what is left is the government's share of the instruments' capital and "
            "balances at the end, and the net cost is the outlay less it. The cost per extra 亿 of lending against a baseline: "
            "<code>creditsim budget</code>.</p>")
    return (f'{note}<div class="wrap"><table>{header}{"".join(rows)}</table></div>'
            f'<div class="wrap"><table><tr><th class="l">bottom line</th><th>median</th><th>5–95% band</th></tr>{bottom}</table></div>')


def _limits_section(results: Results) -> str:
    from ..analysis.summaries import instrument_events

    events = instrument_events(results)
    if events.empty:
        return "<p>The scenario has no guarantor, re-guarantor or pool.</p>"
    rows = "".join(
        f'<tr><td class="l">{_e(r.entity)}</td><td class="l">{_e(r.event)}</td>'
        f'<td class="{"fail" if r.probability >= 0.5 else "risk" if r.probability >= 0.1 else "ok"}">{100 * r.probability:.0f}%</td>'
        f"<td>{100 * r.ci_low:.0f}–{100 * r.ci_high:.0f}%</td><td>{_e(r.date_median if isinstance(r.date_median, str) else '–')}</td>"
        f"<td>{_e(r.date_p5 if isinstance(r.date_p5, str) else '–')} – {_e(r.date_p95 if isinstance(r.date_p95, str) else '–')}</td></tr>"
        for r in events.itertuples())
    header = ('<tr><th class="l">instrument</th><th class="l">event</th><th>probability</th><th>95% CI</th><th>first month (median)</th>'
              "<th>first month (5–95%)</th></tr>")
    note = ("<p>The share of paths on which each guarantor, re-guarantor and pool reaches each limit within the run (insolvent: "
            "claims, reimbursements or compensation left unpaid), with its Wilson 95% interval, and when it first happens. No "
            "guarantee is issued beyond a guarantor's leverage cap; <i>leverage above its cap</i> is a month that ends above it "
            "because claims paid after the guarantees were issued cut the capital behind them.</p>")
    return f'{note}<div class="wrap"><table>{header}{rows}</table></div>'


def _scenario_section(results: Results) -> str:
    s = results.scenario
    segments = "".join(
        f'<tr><td class="l">{_e(name)} {_e(seg.label)}</td><td>{seg.firms:,.0f}</td><td>{100 * seg.unbanked_share:.0f}%</td>'
        f"<td>{100 * min(seg.pd):.2g}–{100 * max(seg.pd):.2g}%</td><td>{seg.rho:g}</td><td>{_e(format_amount(seg.line_median))}</td>"
        f"<td>{seg.applications_per_month:,.0f}</td></tr>"
        for name, seg in s.firms.segments.items()
    )
    banks = "".join(
        f'<tr><td class="l">{_e(name)} {_e(bank.label)}</td><td>{100 * bank.share:.0f}%</td><td>{_e(format_amount(bank.all_loans))}</td>'
        f"<td>{_e(_rates(bank.non_inclusive_growth))}</td><td>{100 * bank.max_pd:.2g}%</td><td>{_e(_rates(bank.rate))}</td>"
        f"<td>{100 * bank.renewal_uptake:.0f}%</td><td>{_e(_rates(bank.other_npl_ratio))}</td></tr>"
        for name, bank in s.banks.items()
    )
    risk = s.risk
    assumptions = [
        f"Defaults: one-factor Gaussian model, factor redrawn {risk.factor_frequency}; LGD " + ", ".join(f"{p} {100 * v:.0f}%" for p, v in risk.lgd.items())
        + f"; recoveries after {risk.recovery_lag_months} months, write-off after {_months(risk.write_off_months)}.",
        f"Stress path: {', '.join(f'{p.date} ×{p.pd_multiplier:g}' for p in risk.stress) or 'none'}.",
        f"Demand: re-borrowing probability {100 * s.demand.reborrow_prob:.0f}%, applications growing {_rates(s.demand.growth)} a year, "
        f"{s.demand.loans_per_borrower:g} loans per borrower on average; thin-file signal error {risk.signal_sd:g} (log-odds).",
        f"Liquidity stress at maturity {100 * s.liquidity.stress_prob:.1f}%, of which {100 * s.liquidity.bridge_share:.0f}% bridge at "
        f"{100 * s.liquidity.bridge_cost:.1f}%.",
        "无还本续贷: " + (f"up to {s.renewal.max_term_months}-month loans after {s.renewal.min_months_on_book} months on book, at most "
                         f"{s.renewal.max_consecutive} in a row, believed PD ≤ {100 * s.renewal.max_pd:.1f}%." if s.renewal and s.renewal.enabled else "off."),
        "首贷 campaign: " + (", ".join(f"{name} {c.reach_per_month:,.0f} a month" for name, c in s.campaign.channels.items()) or "none") + ".",
        f"Guarantors: {', '.join(s.guarantors) or 'none'}; re-guarantors: {', '.join(s.reguarantors) or 'none'}; pools: {', '.join(s.pools) or 'none'}; "
        f"interest subsidy: {'%.2f%%' % (100 * s.interest_subsidy.rate) if s.interest_subsidy else 'none'}.",
    ]
    source = json.dumps(s.to_dict(), ensure_ascii=False, indent=1)
    return (
        f"<p>{s.calendar.months} months from {_e(s.calendar.start)}; inclusive line limit {_e(format_amount(s.firms.inclusive_line_limit))}.</p>"
        '<div class="wrap"><table><tr><th class="l">segment</th><th>firms</th><th>without a loan</th><th>PD by grade</th><th>ρ</th>'
        f"<th>median line</th><th>applications a month</th></tr>{segments}</table></div>"
        '<div class="wrap"><table><tr><th class="l">bank</th><th>share</th><th>all loans</th><th>other loans grow</th><th>max PD</th>'
        f"<th>rate</th><th>renewal uptake</th><th>other loans' NPL</th></tr>{banks}</table></div>"
        "<h3>Assumptions</h3><ul>" + "".join(f"<li>{_e(a)}</li>" for a in assumptions) + "</ul>"
        f'<details class="screen"><summary>The scenario in full (as validated)</summary><pre>{_e(source)}</pre></details>'
        f'<div class="print"><h3>The scenario in full (as validated)</h3><pre>{_e(source)}</pre></div>'
    )


def _provenance(results: Results, version: str, command: str | None) -> str:
    rows = [
        ("creditsim", version), ("scenario", results.scenario.name), ("scenario SHA-256", results.scenario.digest()),
        ("seed", str(results.seed)), ("paths", f"{results.paths} (path numbers {results.path_ids[0]}–{results.path_ids[-1]})"),
        ("written", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    if command:
        rows.append(("command", command))
    return "<table>" + "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in rows) + "</table>"


# ---------------------------------------------------------------------------------------------------- helpers
def _figure(fig: Figure, caption: str) -> str:
    """A chart as an inline PNG in a <figure> with its caption (also the image's alt text)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}"><figcaption>{_e(caption)}</figcaption></figure>'


def _e(value: object) -> str:
    return html.escape(str(value))


def _margin(value: float, unit: str) -> str:
    return f"{value:+,.0f} firms" if unit == "firms" else f"{100 * value:+.2f} pts"


def _months(value: int | dict[str, int]) -> str:
    """A number of months, or a table of them by year."""
    return f"{value} months" if isinstance(value, int) else ", ".join(f"{k}: {v} months" for k, v in value.items())


def _rates(value: float | dict[str, float]) -> str:
    """One rate, or a table of rates by year."""
    return f"{100 * value:.2f}%" if isinstance(value, float) else ", ".join(f"{k}: {100 * v:.2f}%" for k, v in value.items())
