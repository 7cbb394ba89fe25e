"""Charts of a run: fan charts, target probabilities, 两增 margins, who bears the losses, the instruments' capital.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state, any
backend). Labels are Chinese when a font with Chinese characters is installed and English otherwise, so a
character is never drawn as a box: :func:`cjk_font` finds such a font and :func:`label` picks the text.
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text
from matplotlib.ticker import ScalarFormatter

from ..metrics import metric as metric_info
from ..results.assessment import evaluations
from ..results.targets import SIGNS, target_path

if TYPE_CHECKING:
    from ..analysis.sweeps import Sweep
    from ..results.results import Results

__all__ = ["LOSS_METRICS", "both_languages", "capital_chart", "cjk_font", "fan_chart", "label", "loss_chart", "sweep_figure", "target_chart", "two_increases_chart"]

#: The parties that bear credit losses, each a metric of its net losses (over all its entities).
LOSS_METRICS = ("loss_bank", "loss_guarantor", "loss_reguarantor", "loss_pool")
#: Characters a font must have to be used for Chinese labels.
_PROBE = "两增首贷户余额新增累计不良率担保资金池银行年月"
#: Font names tried first (in order); any other installed font that has every probe character also qualifies.
_PREFERRED = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
              "Microsoft YaHei", "PingFang SC", "Heiti SC", "Droid Sans Fallback", "AR PL UMing CN")
_CJK_NAME = re.compile(r"CJK|Hei|Han|WenQuanYi|Ming|Song|Kai|Gothic|YaHei|PingFang|Fallback", re.IGNORECASE)
_CJK_FILE = re.compile(r"cjk|wqy|hei|han|ming|song|kai|droid|uming|ukai|noto.*(sc|tc|hk)", re.IGNORECASE)

#: Chinese and English text of every label the charts use.
_TEXT: dict[str, tuple[str, str]] = {
    "median": ("中位数", "median"),
    "baseline": ("基准", "baseline"),
    "band50": ("25%–75%", "25–75%"),
    "band90": ("5%–95%", "5–95%"),
    "target": ("目标", "target"),
    "probability": ("达成概率", "probability met"),
    "targets": ("目标达成概率（95%置信区间）", "Probability each target is met (95% CI)"),
    "growth_margin": ("普惠型小微贷款增速 − 各项贷款增速（百分点）", "inclusive growth − all-loan growth (points)"),
    "two_increases": ("两增：年末增速差（中位数，5%–95%）", "Inclusive vs all-loan growth at year-end (median, 5–95%)"),
    "losses": ("损失分担（各路径均值，累计）", "Who bears the losses (mean over paths, cumulative)"),
    "loss_bank": ("银行", "banks"),
    "loss_guarantor": ("担保机构", "guarantors"),
    "loss_reguarantor": ("再担保机构", "re-guarantors"),
    "loss_pool": ("风险补偿资金池", "risk pools"),
    "capital": ("担保机构资本与资金池余额", "Guarantor capital and pool balances"),
    "guarantor_capital": ("担保机构资本", "guarantor capital"),
    "pool_balance": ("资金池余额", "pool balance"),
    "yuan": ("元", "CNY"),
    "firms": ("户", "firms"),
    "loans": ("笔", "loans"),
}

#: Chinese names of the metrics charts show most; others keep their metric name.
_METRIC_ZH = {
    "balance": "普惠型小微贷款余额", "borrowers": "有贷款余额的户数", "npl_ratio": "不良贷款率", "npl_balance": "不良贷款余额",
    "credit_loan_balance": "信用贷款余额", "credit_loan_disbursed": "信用贷款发放额", "renewal_balance": "无还本续贷余额",
    "first_time_borrowers": "首贷户", "first_time_borrower_lending": "首贷户贷款发放额", "first_loan_amount": "首贷金额",
    "disbursed": "贷款发放额", "all_loans_balance": "各项贷款余额", "guarantee_fee_rate": "担保费率", "guarantor_capital": "担保机构资本",
    "pool_balance": "资金池余额", "fiscal_cost": "财政支出",
}
_MEASURE = {"stock": ("余额", "at"), "increase": ("新增", "increase"), "cumulative": ("累计", "cumulative"), "average": ("平均", "average"),
            "ratio": ("", "at")}


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font that has Chinese characters, or None.

    matplotlib's font list is searched first; a font installed after matplotlib cached that list is found by
    scanning the system's font files (and added to matplotlib's list).
    """
    manager = font_manager.fontManager
    for found in (_cjk_in(manager.ttflist), _cjk_in(_added_system_fonts(manager))):
        if found:
            return found
    return None


def _cjk_in(fonts: list[font_manager.FontEntry]) -> str | None:
    candidates = sorted((f for f in fonts if f.name in _PREFERRED or _CJK_NAME.search(f.name)),
                        key=lambda f: _PREFERRED.index(f.name) if f.name in _PREFERRED else len(_PREFERRED))
    for font in candidates:
        try:
            charmap = FT2Font(font.fname).get_charmap()
        except (OSError, RuntimeError):
            continue
        if all(ord(c) in charmap for c in _PROBE):
            return str(font.name)
    return None


def _added_system_fonts(manager: font_manager.FontManager) -> list[font_manager.FontEntry]:
    """Font files of the system with a CJK-looking name that matplotlib's list lacks, added to it."""
    known = {f.fname for f in manager.ttflist}
    added = []
    for path in font_manager.findSystemFonts():
        if path not in known and _CJK_FILE.search(path):
            try:
                manager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
            added += [f for f in manager.ttflist if f.fname == path]
    return added


def label(key: str) -> str:
    """The chart text ``key`` in Chinese when a CJK font is installed, else in English."""
    zh, en = _TEXT[key]
    return zh if cjk_font() else en


def both_languages(key: str) -> str:
    """The chart text ``key`` in Chinese and English (for a page or table that shows both)."""
    zh, en = _TEXT[key]
    return f"{zh} {en}"


def metric_label(name: str) -> str:
    """A metric's display name: Chinese where known and a CJK font is installed, else its name."""
    return _METRIC_ZH.get(name, name) if cjk_font() else name


def _figure(width: float = 6.0, height: float = 3.4) -> Figure:
    """A figure sized to be read at half a laptop screen (the report's two-column grid) and printed on A4."""
    return Figure(figsize=(width, height), dpi=150, layout="constrained")


class _HyphenMinus(ScalarFormatter):
    """Tick labels with '-' for negative numbers, for a font without the minus sign U+2212 (WenQuanYi Zen Hei)."""

    def fix_minus(self, s: str) -> str:  # type: ignore[override]
        return s


def _finish(fig: Figure) -> Figure:
    """Give every text of the figure the CJK font when there is one (matplotlib's settings stay untouched), with
    '-' for the minus sign, in labels and tick labels alike, when that font lacks U+2212; and replace any character
    the font in use lacks (in a user's names and labels) by '?', so that nothing is drawn as a box with a warning."""
    family = cjk_font()
    hyphen = family is not None and not _has_minus_sign(family)
    for text in fig.findobj(Text):
        if family:
            text.set_fontfamily(family)
        if hyphen:
            text.set_text(text.get_text().replace("\u2212", "-"))
        text.set_text(_drawable(text.get_text()))
    if hyphen:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if type(axis.get_major_formatter()) is ScalarFormatter:
                    axis.set_major_formatter(_HyphenMinus())
    return fig


def _has_minus_sign(family: str) -> bool:
    """Whether the font ``family`` draws U+2212 (matplotlib writes it for negative tick labels)."""
    return 0x2212 in _charmap(family)


@functools.cache
def _charmap(family: str | None) -> frozenset[int]:
    """The characters the font of ``family`` draws (None: matplotlib's default font)."""
    properties = font_manager.FontProperties() if family is None else font_manager.FontProperties(family=family)
    return frozenset(FT2Font(font_manager.findfont(properties, fallback_to_default=family is None)).get_charmap())


def _drawable(text: str) -> str:
    """``text`` with every character the font in use (the CJK font, else the default) cannot draw replaced by '?'."""
    charmap = _charmap(cjk_font())
    return "".join(c if ord(c) in charmap or c.isspace() else "?" for c in text)


def _name(text: str) -> str:
    """A user's text (a name, a label, a value as written) as it can be drawn: the characters the font in use lacks
    replaced, and each '$' escaped, so that matplotlib draws it as it is rather than as mathtext (``$\\frac$``)."""
    return _drawable(text).replace("$", r"\$")


def _unit_scale(unit: str) -> tuple[float, str]:
    """Divide values by this and label the axis with that: 亿 for money, % for fractions."""
    if unit == "CNY":
        return 1e8, "亿元" if cjk_font() else "100M CNY"
    if unit == "fraction":
        return 0.01, "%"
    return 1.0, label("firms") if unit == "firms" else label("loans") if unit == "loans" else unit


def fan_chart(results: Results, metric: str, scope: str | tuple[str, ...] = "all", target: str | None = None,
              baseline: Results | None = None) -> Figure:
    """Fan chart of a metric over the run: the median and the 25–75% and 5–95% bands across paths.

    Parameters
    ----------
    results : Results
    metric : str
        Any metric; ignored when ``target`` is given.
    scope : str or tuple of str
        An entity, "all", or several entities summed.
    target : str, optional
        A target of the scenario: chart the quantity it measures (see :func:`creditsim.results.targets.target_path`) with the
        threshold as a line and the target date marked.
    baseline : Results, optional
        Another run of the same dates (a variant's baseline): its median and 5–95% band drawn as lines over the fan.
    """
    def quantity(run: Results) -> tuple[list[str], np.ndarray]:
        """The dates and the per-path values charted for a run."""
        return target_path(run, run.scenario.targets[target]) if target is not None else (run.dates, run.series(metric, scope))

    dates, values = quantity(results)
    if target is not None:
        t = results.scenario.targets[target]
        metric, title = t.metric, _name(f"{target}: {t.label}" if t.label and cjk_font() else target)
        zh, en = _MEASURE[t.measure]
        title = f"{title} ({zh if cjk_font() else en})" if (zh if cjk_font() else en) else title
    else:
        title = metric_label(metric)
    scale, unit = _unit_scale(metric_info(metric).unit)
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(dates))
    q = _fan(values / scale, len(dates))
    ax.fill_between(x, q[0], q[4], color="#9ecae1", alpha=0.6, lw=0, label=label("band90"))
    ax.fill_between(x, q[1], q[3], color="#4292c6", alpha=0.7, lw=0, label=label("band50"))
    ax.plot(x, q[2], color="#08306b", lw=1.6, label=label("median"))
    if baseline is not None:
        b = _fan(quantity(baseline)[1] / scale, len(dates))
        ax.plot(x, b[2], color="#525252", lw=1.3, ls="--", label=f"{label('baseline')}: {label('median')}")
        ax.plot(x, b[0], color="#525252", lw=0.8, ls=":", label=f"{label('baseline')}: {label('band90')}")
        ax.plot(x, b[4], color="#525252", lw=0.8, ls=":")
    if target is not None:
        t = results.scenario.targets[target]
        level = t.value / scale
        shown = f"{level:,.0f}" if abs(level) >= 1000 else f"{level:,.4g}"
        ax.axhline(level, color="#cb181d", lw=1.2, ls="--", label=f"{label('target')} {SIGNS[t.comparison]} {shown} {unit}")
        ax.axvline(len(dates) - 1, color="#cb181d", lw=0.8, ls=":")
    step = max(1, len(dates) // 8)
    ax.set_xticks(x[::step], [dates[i] for i in x[::step]], rotation=0, fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _finish(fig)


def _fan(values: np.ndarray, dates: int) -> np.ndarray:
    """The 5th, 25th, 50th, 75th and 95th percentiles of each month over the paths (rows of ``values``)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a month where the quantity is undefined on every path
        return np.nanpercentile(values, [5, 25, 50, 75, 95], axis=0) if values.size else np.zeros((5, dates))


def target_chart(results: Results) -> Figure:
    """Horizontal bars: each assessed target's probability of being met, with its Wilson 95% interval."""
    table = results.targets()
    table = table[table["note"] == ""]
    fig = _figure(7.0, 0.5 + 0.45 * max(len(table), 1))
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]
    p = table["probability"].to_numpy()
    errors = np.vstack([p - table["ci_low"].to_numpy(), table["ci_high"].to_numpy() - p])
    colours = ["#238b45" if v >= 0.9 else "#fe9929" if v >= 0.5 else "#cb181d" for v in p]
    ax.barh(y, 100 * p, color=colours, xerr=100 * errors, capsize=3, ecolor="#333333")
    ax.set_yticks(y, [_name(t) for t in table["target"]], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(label("probability") + " (%)")
    ax.set_title(label("targets"), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig)


def two_increases_chart(results: Results) -> Figure:
    """The 两增 loan-growth margin (inclusive growth − all-loan growth) at each year-end, per bank: the median
    and the 5–95% band across paths; above zero passes."""
    margins: dict[str, dict[int, np.ndarray]] = {}
    for bank, year, date, check, _rule, _passed, margin in evaluations(results):
        if check == "loan_growth" and date.endswith("-12") and margin is not None:
            margins.setdefault(bank, {})[year] = margin
    fig = _figure()
    ax = fig.add_subplot()
    years = sorted({y for per_bank in margins.values() for y in per_bank})
    width = 0.8 / max(len(margins), 1)
    for i, (bank, per_year) in enumerate(margins.items()):
        x = np.array([years.index(y) for y in per_year]) + (i - (len(margins) - 1) / 2) * width
        q = np.array([np.nanpercentile(100 * m, [5, 50, 95]) for m in per_year.values()])
        ax.bar(x, q[:, 1], width=width * 0.9, label=_name(bank), yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], capsize=2)
    ax.axhline(0, color="#333333", lw=0.8)
    ax.set_xticks(np.arange(len(years)), [str(y) for y in years])
    ax.set_ylabel(label("growth_margin"), fontsize=8)
    ax.set_title(label("two_increases"), fontsize=10)
    if margins:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig)


def loss_chart(results: Results) -> Figure:
    """Net credit losses by who bears them, cumulative over the run (mean over paths, so the parts add up)."""
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(results.dates))
    stacks, names = [], []
    for name in LOSS_METRICS:
        if name != "loss_bank" and len(results.entities[metric_info(name).scope]) <= 1:
            continue  # no guarantor, re-guarantor or pool
        stacks.append(np.cumsum(np.nanmean(results.values(name, "all"), axis=0)) / 1e8)
        names.append(label(name))
    ax.stackplot(x, *stacks, labels=names, alpha=0.85)
    step = max(1, len(x) // 8)
    ax.set_xticks(x[::step], [results.dates[i] for i in x[::step]], fontsize=8)
    ax.set_ylabel(_unit_scale("CNY")[1])
    ax.set_title(label("losses"), fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _finish(fig)


def capital_chart(results: Results) -> Figure | None:
    """Each guarantor's capital and each pool's balance over the run (median and 5–95% band); None when the
    scenario has neither."""
    series = [(f"{label('guarantor_capital')}: {_name(name)}", results.values("guarantor_capital", name)) for name in results.scenario.guarantors]
    series += [(f"{label('pool_balance')}: {_name(name)}", results.values("pool_balance", name)) for name in results.scenario.pools]
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(results.dates))
    for name, values in series:
        q = np.nanpercentile(values / 1e8, [5, 50, 95], axis=0)
        line = ax.plot(x, q[1], lw=1.5, label=name)[0]
        ax.fill_between(x, q[0], q[2], color=line.get_color(), alpha=0.2, lw=0)
    step = max(1, len(x) // 8)
    ax.set_xticks(x[::step], [results.dates[i] for i in x[::step]], fontsize=8)
    ax.set_ylabel(_unit_scale("CNY")[1])
    ax.set_title(label("capital"), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _finish(fig)


def sweep_figure(sweep: Sweep, target: str | None = None) -> Figure:
    """A sweep's probability of meeting each target (or ``target``) against the first swept key, one line per
    combination of the other keys, with Wilson 95% intervals. The x axis is the key's validated value (so '1亿',
    '2亿', '10亿' are spaced as numbers, labelled as written); a key whose values are not numbers is shown as
    categories in the order given.

    Raises
    ------
    KeyError
        When ``target`` is not among the assessed targets, or no target is assessed in the run.
    """
    from ..analysis.sweeps import field_value

    table = sweep.targets()
    if table.empty:
        raise KeyError("no target of the scenario is assessed in the run, so there is nothing to plot")
    if target is not None:
        if target not in set(table["target"]):
            raise KeyError(f"no assessed target {target!r} in the sweep; targets: {', '.join(dict.fromkeys(table['target']))}")
        table = table[table["target"] == target]
    names = list(dict.fromkeys(table["target"]))
    first, others = sweep.keys[0], sweep.keys[1:]
    given = [s[first] for s in sweep.settings]
    numbers = [field_value(s, first) for s in sweep.scenarios]
    numeric = all(map(_is_number, numbers))
    written_as_numbers = all(map(_is_number, given))  # else the ticks are labelled as the values were written
    position: dict[str, float] = {}  # each value as written → its place on the x axis
    for written_value, number in zip(given, numbers, strict=True):
        position.setdefault(str(written_value), float(number) if numeric else float(len(position)))
    columns = min(2, max(len(names), 1))
    rows = max(1, -(-len(names) // columns))
    fig = _figure(5.2 * columns, 3.0 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        part = table[table["target"] == name]
        for group, lines in (part.groupby(others, sort=False) if others else [((), part)]):
            x = np.array([position[str(v)] for v in lines[first]])
            p = lines["probability"].to_numpy()
            errors = np.vstack([p - lines["ci_low"].to_numpy(), lines["ci_high"].to_numpy() - p])
            legend = ", ".join(f"{k}={v}" for k, v in zip(others, group if isinstance(group, tuple) else (group,), strict=True))
            ax.errorbar(x, 100 * p, yerr=100 * errors, marker="o", ms=3, capsize=3, lw=1.2, label=_name(legend) if legend else None)
        if not written_as_numbers:
            ax.set_xticks(list(position.values()), [_name(k) for k in position], fontsize=8)
        ax.set_ylim(-2, 102)
        ax.set_xlabel(_name(first), fontsize=8)
        ax.set_ylabel(label("probability") + " (%)", fontsize=8)
        ax.set_title(_name(name), fontsize=10)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return _finish(fig)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
