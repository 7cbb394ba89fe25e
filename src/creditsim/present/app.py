"""``creditsim explore``: a local web page (or a notebook cell) to move a scenario's levers and watch the answer move.

Built with Panel (on Bokeh), whose scripts and styles are served from the installed packages, so the page works with
no internet access. The page holds the scenario's :func:`~creditsim.present.levers.levers`; moving one reads every
lever as ``--set`` would (a bad value gets the command line's one-line error, shown beside it, and nothing runs),
then runs the variant against the baseline on the same paths and seed (:class:`~creditsim.present.explorer.Explorer`,
in a thread of its own, so the page keeps answering). The first paths come first and are marked partial; each batch
updates the page until every path is in, and moving a lever again or pressing "cancel" stops a run at its next batch.

It shows every target's P(met) in the baseline and the variant with their 95% intervals and the paired change; a
fan chart of any metric or target with the baseline over it; 两增 and 两控 per bank and year; the budget by
instrument; and who bears the losses. "Save this variant" downloads the variant as a scenario file, whose header says
the command that reproduces the numbers shown; "export" downloads the HTML report and the Excel workbook of the
variant's run. Nothing is written on the server.
"""

from __future__ import annotations

import html
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.compare import Comparison
from ..errors import CreditsimError, ScenarioError
from ..metrics import METRICS
from ..metrics import metric as metric_info
from ..results.budget import YI, budget
from ..results.targets import condition
from ..scenario import Scenario
from . import plots
from .explorer import Cancelled, Explorer
from .levers import Lever
from .report import STANDING_CSS, report_html, standing

__all__ = ["ExplorerPage", "explore", "serve"]

#: How often the page looks for a newer answer from the run's thread, milliseconds.
REFRESH_MS = 200
#: While a run is under way, the page is redrawn at most this often (seconds) after its first batch: each redraw takes
#: the cores from the run.
REDRAW_S = 2.0
#: The most paths a page may ask for (each run is kept in memory).
MAX_PAGE_PATHS = 10_000

_STYLE = """
table { border-collapse: collapse; font-size: 0.82rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.4rem; text-align: right; vertical-align: top; }
th { background: #f2f4f7; } td.l, th.l { text-align: left; }
""" + STANDING_CSS + """
.up { color: #1a7f37; } .down { color: #c62828; } .error { color: #c62828; font-size: 0.8rem; }
"""


class ExplorerPage:
    """One page of the explorer: the levers, the run controls and the answer, for one browser tab or notebook cell.

    Parameters
    ----------
    explorer : Explorer
        The scenario and the runs kept (shared by the pages of one server).
    """

    def __init__(self, explorer: Explorer) -> None:
        import panel as pn

        self.explorer = explorer
        self._generation = 0
        self._answer: tuple[int, Comparison, bool, list[str]] | None = None  # the newest (generation, comparison, complete, moved)
        self.comparison: Comparison | None = None  # the comparison on the page, made by the --set texts self.moved
        self.moved: list[str] = []
        self._failure: tuple[int, str] | None = None
        self._shown: tuple[int, int] | None = None  # (generation, paths) on the page
        self._drawn = 0.0  # when it was drawn (time.monotonic)
        self._lock = threading.Lock()
        s = explorer.scenario

        self.inputs: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        groups: dict[str, list[Any]] = {}
        self._sliders: set[str] = set()  # levers whose run starts when the slider is let go, not at each step of a drag
        for lever in explorer.levers:
            widget = _widget(pn, lever)
            if isinstance(widget, pn.widgets.EditableFloatSlider):
                self._sliders.add(lever.key)
            widget.param.watch(lambda event, key=lever.key: self.changed(key), "value_throttled" if lever.key in self._sliders else "value")
            self.inputs[lever.key] = widget
            self.errors[lever.key] = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["lever-error"], margin=(0, 10), sizing_mode="stretch_width")
            help_icon = pn.widgets.TooltipIcon(value=lever.help, width=20, margin=(30, 0, 0, 0))
            groups.setdefault(lever.group, []).extend([pn.Row(widget, help_icon, sizing_mode="stretch_width"), self.errors[lever.key]])
        self.paths = pn.widgets.IntInput(label="paths 路径数", value=explorer.paths, start=1, end=MAX_PAGE_PATHS, width=110)
        self.seed = pn.widgets.IntInput(label="seed 随机种子", value=explorer.seed, start=0, width=110)
        for widget in (self.paths, self.seed):
            widget.param.watch(lambda event: self.changed(None), "value")
        self.run_error = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["lever-error"], sizing_mode="stretch_width")
        self.cancel = pn.widgets.Button(label="cancel 取消", color="warning", width=100)
        self.cancel.on_click(lambda event: self.stop())
        self.progress = pn.indicators.Progress(value=0, max=explorer.paths, width=220, bar_color="primary")
        self.status = pn.pane.HTML("starting…", css_classes=["run-status"], sizing_mode="stretch_width")

        self.targets = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["cs-table", "targets-table"], sizing_mode="stretch_width")
        choices = {f"target: {name}": ("target", name) for name, t in s.targets.items() if t.measure != "test"}
        choices.update({f"metric: {m.name}": ("metric", m.name) for m in METRICS})
        self.quantity = pn.widgets.Select(label="chart 图表", options=list(choices), value=next(iter(choices)), width=320)
        self._choices = choices
        self.entity = pn.widgets.Select(label="bank 银行", options=["all", *s.bank_names], value="all", width=160)
        for widget in (self.quantity, self.entity):
            widget.param.watch(lambda event: self.redraw_chart(), "value")
        self.chart = pn.pane.Matplotlib(None, dpi=110, tight=True, format="svg", css_classes=["fan-chart"], sizing_mode="stretch_width")
        self.two_increases = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["cs-table", "two-increases-table"], sizing_mode="stretch_width")
        self.budget = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["cs-table", "budget-table"], sizing_mode="stretch_width")
        self.losses = pn.pane.HTML("", stylesheets=[_STYLE], css_classes=["cs-table", "losses-table"], sizing_mode="stretch_width")

        self.save = pn.widgets.FileDownload(callback=self.save_variant, filename=f"{s.name}-variant.toml", label="save this variant 保存方案",
                                            color="primary", width=220)
        self.report = pn.widgets.FileDownload(callback=self.export_report, filename=f"{s.name}-report.html", label="export report 导出报告", width=200)
        self.workbook = pn.widgets.FileDownload(callback=self.export_workbook, filename=f"{s.name}.xlsx", label="export workbook 导出Excel", width=200)

        levers = pn.Column(*(pn.Card(*items, title=group, collapsed=False, sizing_mode="stretch_width") for group, items in groups.items()),
                           width=360, scroll=True, max_height=1400)
        header = pn.Column(
            pn.pane.HTML(f"<h2 style='margin:0'>{html.escape(s.name)} · creditsim explore</h2>"
                         f"<div style='color:#555'>{html.escape(s.description)}</div>", sizing_mode="stretch_width"),
            pn.Row(self.paths, self.seed, self.cancel, self.progress, self.save, self.report, self.workbook),
            self.run_error, self.status, sizing_mode="stretch_width")
        answer = pn.Column(
            pn.pane.HTML("<h3>Targets 目标: P(met), baseline → variant</h3>"), self.targets,
            pn.Row(self.quantity, self.entity), self.chart,
            pn.pane.HTML("<h3>两增 and 两控 per bank 分银行</h3>"), self.two_increases,
            pn.pane.HTML("<h3>Budget by instrument 财政预算 (median over paths, 亿元)</h3>"), self.budget,
            pn.pane.HTML("<h3>Who bears the losses 损失分担 (cumulative, mean over paths, 亿元)</h3>"), self.losses,
            sizing_mode="stretch_width")
        self.view = pn.Column(header, pn.Row(levers, answer, sizing_mode="stretch_width"),
                              sizing_mode="stretch_width", css_classes=["creditsim-explore"])
        self._periodic = None

    # ------------------------------------------------------------------------------------------ requests
    def start(self) -> None:
        """Run the levers as they are now (the page calls it when it is first shown), and look for answers."""
        import panel as pn

        if self._periodic is None:
            self._periodic = pn.state.add_periodic_callback(self.refresh, period=REFRESH_MS)
        self.changed(None)

    def move(self, key: str, value: object) -> None:
        """Move lever ``key`` to ``value`` as the page's user does (a slider as if let go there), from Python."""
        self.inputs[key].value = value
        if key in self._sliders:
            self.changed(key)

    def values(self) -> dict[str, str]:
        """Every lever's value as written (``"0.75%"``, ``"15亿"``, ``"true"``)."""
        return {lever.key: _text(lever, self.inputs[lever.key].value) for lever in self.explorer.levers}

    def changed(self, key: str | None) -> None:
        """A lever (``key``), the paths or the seed moved: check the levers and run the variant, or show why not.
        Either way the run under way stops at its next batch."""
        for pane in (*self.errors.values(), self.run_error):
            pane.object = ""
        with self._lock:
            self._generation += 1
            generation = self._generation
        try:
            values = self.values()
            variant, moved = self.explorer.variant(values), self.explorer.overrides(values)
            paths, seed = _whole(self.paths.value, "paths", 1, MAX_PAGE_PATHS), _whole(self.seed.value, "seed", 0, None)
        except ScenarioError as exc:
            self._refuse(exc, key)
            return
        self.progress.max = paths
        self.status.object = f"running {paths} paths…"
        threading.Thread(target=self._run, args=(generation, variant, moved, paths, seed), daemon=True, name=f"explore-{generation}").start()

    def stop(self) -> None:
        """Stop the run at its next batch; what is shown stays, marked as cut short."""
        with self._lock:
            self._generation += 1
        self.status.object = f"{self.status.object} · cancelled 已取消" if self.status.object else "cancelled 已取消"

    def _refuse(self, error: ScenarioError, key: str | None) -> None:
        """Show a lever's error beside the lever its field belongs to (``risk.stress[0].date`` to the macro lever), an
        error of no lever (the paths, the seed) above the answer, and run nothing."""
        field = error.field
        named = next((k for k in self.errors if field == k or field.startswith((k + ".", k + "["))), None)
        (self.errors[named] if named is not None else self.run_error).object = _error(str(error))
        self.status.object = "not run: a value is refused (see beside it)"

    def _run(self, generation: int, variant: Scenario, moved: list[str], paths: int, seed: int) -> None:
        """The run of one request, in its own thread: each batch's comparison kept for :meth:`refresh` to show, with
        the levers moved that made it."""
        def update(comparison: Comparison, complete: bool) -> None:
            with self._lock:
                if generation == self._generation:
                    self._answer = (generation, comparison, complete, moved)

        try:
            self.explorer.compare(variant, update, lambda: generation != self._generation, paths, seed)
        except Cancelled:
            return
        except CreditsimError as exc:
            failure = str(exc)
        except Exception as exc:  # the page must keep answering whatever a run raises; the reason is shown
            failure = f"the run failed: {type(exc).__name__}: {exc}"
        else:
            return
        with self._lock:
            self._failure = (generation, failure)

    # ------------------------------------------------------------------------------------------ showing
    def refresh(self) -> None:
        """Show the newest answer of the current request if it is not on the page yet (called every
        :data:`REFRESH_MS` on the page's thread)."""
        with self._lock:
            answer, failure, current = self._answer, self._failure, self._generation
            self._failure = None
        if failure is not None and failure[0] == current:
            self.run_error.object = _error(failure[1])
            self.status.object = "not run to the end: see the error above"
        if answer is None or answer[0] != current or self._shown == (answer[0], answer[1].variant.paths):
            return
        generation, comparison, complete, moved = answer
        if not complete and self._shown is not None and self._shown[0] == generation and time.monotonic() - self._drawn < REDRAW_S:
            return  # a later batch of the run on the page: the next one will do, and the paths run meanwhile
        self._shown, self._drawn = (generation, comparison.variant.paths), time.monotonic()
        self.show(comparison, complete, moved)

    def show(self, comparison: Comparison, complete: bool, moved: list[str]) -> None:
        """Put a comparison on the page, made by the ``--set`` texts ``moved``."""
        paths = comparison.variant.paths
        self.progress.value = min(paths, self.progress.max)
        what = "the scenario as it is" if not moved else "variant: " + html.escape(", ".join(moved))
        mark = "" if complete else f" <b class='partial'>partial 部分结果: {paths} of {self.progress.max} paths</b>"
        self.status.object = f"<span class='{'complete' if complete else 'partial'}'>{paths} paths, seed {comparison.base.seed} · {what}</span>{mark}"
        self.comparison, self.moved = comparison, moved
        self.targets.object = targets_html(comparison)
        self.two_increases.object = two_increases_html(comparison)
        self.budget.object = budget_html(comparison)
        self.losses.object = losses_html(comparison)
        self.redraw_chart()

    def redraw_chart(self) -> None:
        """Draw the chosen metric or target for the chosen bank, the baseline over the variant's fan."""
        comparison = self.comparison
        if comparison is None:
            return
        kind, name = self._choices[self.quantity.value]
        old = self.chart.object
        if kind == "target":
            figure = plots.fan_chart(comparison.variant, "", target=name, baseline=comparison.base)
        else:
            figure = plots.fan_chart(comparison.variant, name, _scope(comparison, name, self.entity.value), baseline=comparison.base)
        self.chart.object = figure
        if old is not None:
            old.clear()

    # ------------------------------------------------------------------------------------------ downloads
    def save_variant(self) -> io.BytesIO:
        """The variant on the page as a scenario file, headed by the levers moved and the command that reproduces
        the numbers shown (before anything is shown: the scenario as it is)."""
        comparison = self.comparison
        scenario = self.explorer.scenario if comparison is None else comparison.variant.scenario
        paths, seed = (self.explorer.paths, self.explorer.seed) if comparison is None else (comparison.variant.paths, comparison.variant.seed)
        header = (f"{scenario.name}: a variant saved by creditsim explore\n"
                  f"levers moved: {', '.join(self.moved) or 'none'}\n"
                  f"creditsim run THIS_FILE --paths {paths} --seed {seed}   reproduces the numbers shown")
        return io.BytesIO(scenario.to_toml(header).encode("utf-8"))

    def export_report(self) -> io.BytesIO:
        """The HTML report of the variant's run on the page."""
        command = f"creditsim explore (variant: {', '.join(self.moved) or 'none'})"
        return io.BytesIO(report_html(self._shown_run().variant, command).encode("utf-8"))

    def export_workbook(self) -> io.BytesIO:
        """The Excel workbook of the variant's run on the page."""
        return io.BytesIO(self._shown_run().variant.excel_bytes())

    def _shown_run(self) -> Comparison:
        if self.comparison is None:
            raise CreditsimError("nothing has been run yet")
        return self.comparison


# ---------------------------------------------------------------------------------------------- tables
def _error(message: str) -> str:
    return f'<span class="error">{html.escape(message)}</span>'


def _p(p: float, low: float, high: float) -> str:
    return f'<span class="{standing(p)}">{100 * p:.0f}%</span> <small>[{100 * low:.0f}, {100 * high:.0f}]</small>'


def _change(change: float, low: float, high: float) -> str:
    css = "up" if low > 0 else "down" if high < 0 else ""
    return f'<span class="{css}">{100 * change:+.0f} pts</span> <small>[{100 * low:+.0f}, {100 * high:+.0f}]</small>'


def _html_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def targets_html(comparison: Comparison) -> str:
    """Each target's P(met) in the baseline and the variant (95% Wilson intervals) and the paired change."""
    table = comparison.targets()
    if table.empty:
        return "<p>The scenario lists no targets.</p>"
    rows = []
    targets = comparison.variant.scenario.targets
    for r in table.itertuples():
        t = targets.get(r.target)
        what = "" if t is None else html.escape(condition(t.measure, t.metric, t.comparison, t.value, t.unit))
        name = f"<b>{html.escape(r.target)}</b><br><small>{html.escape(r.label)}</small>"
        if r.note:
            rows.append([name, what, f'<span class="note">{html.escape(r.note)}</span>', "", ""])
        else:
            rows.append([name, what, _p(r.p_a, r.p_a_low, r.p_a_high), _p(r.p_b, r.p_b_low, r.p_b_high), _change(r.change, r.change_low, r.change_high)])
    return _html_table(["target 目标", "condition 条件", "baseline P(met) 基准", "variant P(met) 方案", "change 变化 (paired)"], rows, left=2)


def two_increases_html(comparison: Comparison) -> str:
    """P(pass) of each bank's 两增 and 两控 at each year-end, baseline → variant, with the paired change."""
    table = comparison.two_increases()
    table = table[table["date"].str.endswith("-12") & table["check"].isin(["两增", "两控"])]
    if table.empty:
        return "<p>No year-end assessment falls in the run.</p>"
    rows = [[html.escape(str(r.bank)), str(r.year), html.escape(r.check), html.escape(r.rule), _p(r.p_a, r.p_a_low, r.p_a_high),
             _p(r.p_b, r.p_b_low, r.p_b_high), _change(r.change, r.change_low, r.change_high)] for r in table.itertuples()]
    return _html_table(["bank 银行", "year", "test", "rule", "baseline P(pass)", "variant P(pass)", "change (paired)"], rows, left=4)


def budget_html(comparison: Comparison) -> str:
    """The government's outlay by instrument and item over the run, baseline and variant: the median over paths of
    each item and of the whole outlay (the median of the sum, which is not the sum of the medians)."""
    def medians(run: Any) -> tuple[pd.Series, float]:
        b = budget(run)
        items = b.items[b.items["year"] == "total"].set_index(["instrument", "item"])["median"]
        return items, float(b.totals.set_index("line").loc["outlay", "median"])

    (a, a_total), (b, b_total) = medians(comparison.base), medians(comparison.variant)
    lines = list(dict.fromkeys([*a.index, *b.index]))
    if not lines:
        return "<p>No instrument costs the budget anything in this scenario.</p>"
    rows = [[html.escape(f"{instrument}: {item}"), _yi(a.get((instrument, item), np.nan)), _yi(b.get((instrument, item), np.nan))]
            for instrument, item in lines]
    rows.append(["<b>total outlay 合计</b>", f"<b>{_yi(a_total)}</b>", f"<b>{_yi(b_total)}</b>"])
    return _html_table(["instrument: item", "baseline 基准", "variant 方案"], rows)


def losses_html(comparison: Comparison) -> str:
    """Net credit losses over the run by who bears them: mean over paths, baseline and variant, and the paired change."""
    rows = []
    for metric in plots.LOSS_METRICS:
        d = comparison.difference(metric, "all", total=True)
        rows.append([plots.both_languages(metric), _yi(d["mean_a"]), _yi(d["mean_b"]), f'{_yi(d["diff"])} <small>[{_yi(d["ci_low"])}, {_yi(d["ci_high"])}]</small>'])
    return _html_table(["borne by 承担方", "baseline 基准", "variant 方案", "change (paired, 95% CI)"], rows)


def _yi(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value / YI:,.3f}"


# ---------------------------------------------------------------------------------------------- levers
def _widget(pn: Any, lever: Lever) -> Any:
    """The input of a lever (its help beside it): a slider in % for a rate or share (its range from the schema), a
    check box for true/false, else a text box taking what a scenario file would (``15亿``, ``2023-12``, ``1.5 from 2022-01``)."""
    if lever.unit == "%" and lever.low is not None and lever.high is not None:
        value = float(lever.value.rstrip("%"))
        return pn.widgets.EditableFloatSlider(label=f"{lever.label} (%)", start=lever.low, end=lever.high, fixed_start=lever.low, fixed_end=lever.high,
                                              step=(lever.high - lever.low) / 2000, value=value, format="0[.]00",
                                              css_classes=["lever", _css(lever.key)], sizing_mode="stretch_width")
    if lever.unit == "bool":
        return pn.widgets.Checkbox(label=lever.label, value=lever.value == "true", css_classes=["lever", _css(lever.key)])
    placeholder = {"month": "YYYY-MM (blank: as the scenario)", "stress": "1.5 from 2022-01"}.get(lever.unit, "")
    return pn.widgets.TextInput(label=lever.label, value=lever.value, placeholder=placeholder, css_classes=["lever", _css(lever.key)],
                                sizing_mode="stretch_width")


def _css(key: str) -> str:
    """The CSS class naming a lever's input on the page (``lever-guarantors-county-fee_rate``)."""
    return "lever-" + key.replace(".", "-")


def _text(lever: Lever, value: object) -> str:
    """A lever input's value as a scenario file writes it."""
    if lever.unit == "bool":
        return "true" if value else "false"
    if lever.unit == "%" and isinstance(value, int | float):
        return f"{value:.6g}%"
    return "" if value is None else str(value)


def _whole(value: object, name: str, least: int, most: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        rule = f"must be a whole number ≥ {least}" + (f" and ≤ {most:,}" if most is not None else "")
        raise ScenarioError(name, value, rule)
    return value


def _scope(comparison: Comparison, metric: str, entity: str) -> str:
    """The entity a metric is charted for: the bank chosen for a bank metric, else all of the metric's scope."""
    return entity if metric_info(metric).scope == "bank" and entity in comparison.variant.banks else "all"


# ---------------------------------------------------------------------------------------------- entry points
def explore(scenario: str | Path | None = None, paths: int = 200, seed: int = 0, threads: int | None = None) -> Any:
    """The explorer of ``scenario`` as a Panel layout, shown inline when it is the last value of a notebook cell.

    Parameters
    ----------
    scenario : str, Path or None
        A scenario file; None for the bundled default.
    paths : int
        Paths of each run (the baseline's and each variant's).
    seed : int
        The seed the baseline and every variant share.
    threads : int, optional
        Threads the paths run on; default the usable cores.

    Raises
    ------
    ScenarioError
        When the scenario is not valid.
    """
    import panel as pn

    pn.extension()
    page = ExplorerPage(Explorer(scenario, paths, seed, threads))
    page.start()
    return page.view


def serve(scenario: str | Path | None, port: int, show: bool, paths: int = 200, seed: int = 0, threads: int | None = None,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the explorer on http://127.0.0.1:PORT until interrupted: each browser tab a page of its own, sharing the
    runs kept; a tab's run stops when the tab closes. Every script and style is served from the installed packages.

    Parameters
    ----------
    scenario, paths, seed, threads
        As for :func:`explore`.
    port : int
        The port on 127.0.0.1.
    show : bool
        Open the page in the browser once the server listens.
    ready : callable, optional
        Called with the page's address once the server listens.

    Raises
    ------
    ScenarioError
        When the scenario is not valid (before the server starts).
    CreditsimError
        When the port cannot be served (in use, or not this user's to bind).
    """
    import webbrowser

    import panel as pn

    explorer = Explorer(scenario, paths, seed, threads)

    def page() -> Any:
        made = ExplorerPage(explorer)
        pn.state.onload(made.start)
        pn.state.on_session_destroyed(lambda context: made.stop())
        return made.view

    url = f"http://127.0.0.1:{port}/"
    try:  # the server binds its port here, as it is made
        server = pn.serve({"/": page}, port=port, address="127.0.0.1", show=False, start=False, title=f"{explorer.scenario.name} · creditsim explore",
                          websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"], print_url=False, verbose=False)
    except OSError as exc:
        raise CreditsimError(f"--port {port}: cannot serve there ({exc.strerror or exc}); choose another port") from None
    server.start()
    if ready is not None:
        ready(url)
    if show:
        webbrowser.open(url)
    server.io_loop.start()
