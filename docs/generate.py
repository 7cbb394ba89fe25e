"""Generate the reference pages in docs/reference/ from the code, so that they cannot drift from it.

Run ``python docs/generate.py`` after changing the schema, the metrics, the command line or a public docstring;
``tests/test_docs.py`` fails while a committed page differs from what this script writes.

- ``scenario.md``: every scenario field (type, unit, default, allowed range, meaning), from the schema;
- ``metrics.md``: every metric (unit, kind, scope, meaning), from :data:`creditsim.metrics.METRICS`;
- ``cli.md``: every command and option, from the argument parser's help;
- ``python-api.md``: the public Python API, from its signatures and numpy-style docstrings.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "reference"

#: The documented public API: module, then its names in reading order.
API: dict[str, list[str]] = {
    "creditsim": [
        "load_scenario", "Scenario", "simulate", "Results", "compare", "Comparison", "explore", "sweep", "Sweep", "solve", "Solution",
        "instrument_events", "fiscal_costs", "per_fiscal_cost", "budget", "Budget", "baseline_scenario", "bank_table", "Backend", "METRICS",
        "CreditsimError", "ScenarioError", "ScenarioWarning", "ResultsError", "BackendError",
    ],
    "creditsim.present.plots": ["fan_chart", "target_chart", "two_increases_chart", "loss_chart", "capital_chart", "sweep_figure"],
    "creditsim.present.report": ["write_report"],
    "creditsim.present.explorer": ["Explorer"],
    "creditsim.present.levers": ["Lever", "levers"],
    "creditsim.analysis.calibrate": ["read_observations", "Observation", "parameters", "Parameter", "calibrate", "backtest", "Calibration",
                                     "fit_paths", "Fit", "sandwich"],
    "creditsim.scenario": ["with_tests"],
    "creditsim.results.targets": ["wilson_interval", "paired_difference_interval"],
}
_SECTIONS_WITH_ENTRIES = {"Parameters", "Returns", "Yields", "Raises", "Attributes", "Other Parameters"}


def scenario_page() -> str:
    from creditsim.scenario.document import reference_markdown

    return reference_markdown() + "\n"


def metrics_page() -> str:
    from creditsim.metrics import metric_table_markdown

    return "\n".join([
        "# Metric reference",
        "",
        "Generated from `creditsim/metrics.py` by `docs/generate.py`; a test keeps this page equal to it.",
        "",
        "Every metric is reported monthly, per entity of its scope (each bank, guarantor, re-guarantor or pool) and for",
        "`\"all\"`, the aggregate (sums; ratios recomputed from the sums); population metrics are for `\"all\"` only. In",
        "`Results.metrics` the `bank` column names the entity. Row 0 of every path is the opening position (the month",
        "before `calendar.start`) with zero flows. A **stock** is a month-end position, a **flow** a sum over the month",
        "and a **ratio** is computed from stocks and flows of the same month. Counts and amounts are scaled back by the",
        "scenario's `sample`. For every path, bank and month:",
        "",
        "- `balance[t] = balance[t-1] + disbursed[t] - repaid[t] - recovered[t] - written_off[t]`",
        "- `npl_balance[t] = npl_balance[t-1] + defaulted[t] - recovered[t] - written_off[t]`",
        "- `net_loss = loss_bank + loss_guarantor + loss_reguarantor + loss_pool` (summed over each party's entities)",
        "",
        metric_table_markdown(),
        "",
    ])


def cli_page() -> str:
    import argparse

    from creditsim.present.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: (choice.help or "").replace("%%", "%") for choice in commands._choices_actions}
    lines = [
        "# Command-line reference",
        "",
        "Generated from the argument parser (`creditsim.present.cli.build_parser`) by `docs/generate.py`; a test keeps this",
        "page equal to it. `creditsim COMMAND --help` prints the same options. Every command exits 0 on success, 2 on",
        "bad input (one line naming the field and the rule, no traceback), 130 when interrupted (Ctrl-C or SIGTERM)",
        "and 141 when its output pipe closes. `creditsim --version` prints the version.",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| [`{name}`](#creditsim-{name}) | {helps[name]} |" for name in commands.choices),
        "",
    ]
    for name, sub in commands.choices.items():
        lines += [f"## creditsim {name}", "", f"{helps[name][0].upper()}{helps[name][1:]}.", "", "| argument | value | meaning |", "|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            takes_value = action.nargs != 0
            value = (action.metavar or action.dest.upper()) if takes_value and action.option_strings else ""
            if action.option_strings:
                argument = ", ".join(f"`{option}`" for option in action.option_strings)
            else:
                argument = f"`{action.dest.upper()}`" + (" (optional)" if action.nargs == "?" else "")
            meaning = (action.help or "").replace("%%", "%")
            if action.required and action.option_strings:
                meaning = f"required: {meaning}"
            if isinstance(action, argparse._AppendAction):
                meaning += " (repeatable)"
            cells = (argument, f"`{value}`" if value else "", meaning)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def api_page() -> str:
    import importlib

    import creditsim

    lines = [
        "# Python API reference",
        "",
        "Generated from the signatures and docstrings by `docs/generate.py`; a test keeps this page equal to them.",
        "Everything here is public and stable within a minor version; other names in the package are internal.",
        "",
        *_markdown(inspect.getdoc(creditsim) or ""),
        "",
    ]
    for module_name, names in API.items():
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", ""]
        if module_name != "creditsim":
            lines += [*_markdown(inspect.getdoc(module) or ""), ""]
        for name in names:
            lines += _entry(module_name, name, getattr(module, name))
    text = "\n".join(lines).rstrip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def _entry(module_name: str, name: str, obj: Any) -> list[str]:
    if inspect.isclass(obj):
        signature = _signature(obj) if "__init__" in vars(obj) else ""  # pydantic models are built by functions
        lines = [f"### class `{name}{signature}`", "", *_markdown(inspect.getdoc(obj) or ""), ""]
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod))):
                continue
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            doc = inspect.getdoc(function) or ""
            head = f"`{name}.{attr}`" if isinstance(member, property) else f"`{name}.{attr}{_signature(function, drop_self=True)}`"
            lines += [f"#### {head}", "", *_markdown(doc), ""]
        return lines
    if callable(obj):
        return [f"### `{name}{_signature(obj)}`", "", *_markdown(inspect.getdoc(obj) or ""), ""]
    if name == "METRICS":
        return [f"### `{name}`", "", "The tuple of every metric's definition (`name`, `unit`, `kind`, `scope`, `meaning`); listed in",
                "[metrics.md](metrics.md).", ""]
    raise TypeError(f"{module_name}.{name}: no way to document a {type(obj).__name__}")


def _signature(obj: Callable[..., Any] | type, drop_self: bool = False) -> str:
    """The call signature without annotations (the docstring gives the types and units)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    if drop_self and parameters and parameters[0].name in ("self", "cls"):
        parameters = parameters[1:]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def _inline(text: str) -> str:
    """reStructuredText roles and literals as Markdown code spans."""
    text = re.sub(r":(?:func|meth|class|data|attr|mod|exc):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _markdown(doc: str) -> list[str]:
    """A numpy-style docstring as Markdown: section titles in bold, parameter entries as a list, examples as
    ``pycon`` blocks (which tests/test_docs.py runs as doctests)."""
    raw = doc.splitlines()
    out: list[str] = []
    section = ""
    i = 0
    while i < len(raw):
        line = raw[i]
        if _is_title(raw, i):
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(raw) and raw[i].strip():
                block.append(raw[i].strip() if raw[i].lstrip().startswith((">>>", "...")) else raw[i])
                i += 1
            out += ["```pycon", *block, "```"]
            continue
        if section in _SECTIONS_WITH_ENTRIES and line and not line.startswith(" "):
            description = []
            i += 1
            while i < len(raw) and (raw[i].startswith(" ") or not raw[i].strip()) and not _is_title(raw, i):
                if raw[i].strip():
                    description.append(raw[i].strip())
                i += 1
            head, _, kind = line.partition(" : ")
            entry = f"`{head.strip()}`" + (f" ({_inline(kind.strip())})" if kind else "")
            out.append(f"- {entry}" + (f": {_inline(' '.join(description))}" if description else ""))
            continue
        out.append(_inline(line))
        i += 1
    squeezed = [line for k, line in enumerate(out) if line or (k > 0 and out[k - 1])]
    while squeezed and not squeezed[0]:
        squeezed.pop(0)
    return squeezed


def _is_title(raw: list[str], i: int) -> bool:
    return i + 1 < len(raw) and bool(raw[i].strip()) and re.fullmatch(r"-{3,}", raw[i + 1].strip()) is not None


PAGES: dict[str, Callable[[], str]] = {"scenario.md": scenario_page, "metrics.md": metrics_page, "cli.md": cli_page, "python-api.md": api_page}


def main() -> int:
    REFERENCE.mkdir(exist_ok=True)
    for name, page in PAGES.items():
        (REFERENCE / name).write_text(page(), encoding="utf-8")
        print(f"wrote {REFERENCE / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
