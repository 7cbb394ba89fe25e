"""The scenario field reference (``docs/reference/scenario.md``), generated from the schema so the two cannot drift
apart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .loading import MAX_DEPTH, MAX_SCENARIO_BYTES
from .schema import (
    MAX_NAME,
    MAX_RATES,
    RESERVED_NAMES,
    Assessment,
    Assumption,
    Bank,
    Calendar,
    Campaign,
    Channel,
    Deferral,
    Demand,
    Firms,
    Guarantor,
    Injection,
    InterestSubsidy,
    Liquidity,
    Pool,
    Pressure,
    Reguarantor,
    Relief,
    ReliefLending,
    Renewal,
    Risk,
    Scenario,
    Segment,
    StressPoint,
    Target,
    TopUp,
    is_amount,
    model_of,
)
from .units import amount_text

__all__ = ["reference_markdown"]

def reference_markdown() -> str:
    """The scenario field reference as Markdown, generated from the schema (``docs/reference/scenario.md``)."""
    lines = [
        "# Scenario file reference",
        "",
        "Generated from `creditsim/scenario/schema.py` by `creditsim.scenario.document.reference_markdown()`; a test keeps this file",
        "equal to it. Amounts are strings with their unit, 万亿/亿/千万/百万/万/千 or 元 (`\"300亿\"`, `\"5千万\"`,",
        "`\"800万元\"`, `\"1200元\"`): in a scenario file or `--set` an amount written as a bare number other than 0 is",
        "refused, naming the field (the threshold of a target on a metric in CNY, and the ends of an assumption about an",
        "amount, likewise); from Python (`scenario_from_dict`, a dict of overrides) a plain number is CNY. Rates and shares",
        "accept `0.008` or `\"0.8%\"`; counts accept `15000` or `\"1.5万\"`; months are `\"YYYY-MM\"`. Unknown keys, wrong",
        "types, NaN/inf and values out of range are errors naming the dotted field. A scenario file is UTF-8 TOML (a",
        f"byte-order mark allowed) of at most {MAX_SCENARIO_BYTES // 1024**2} MiB (`MAX_SCENARIO_BYTES`), a regular file (a FIFO, device or directory is",
        "refused unread); it is only parsed as data, never executed. Its tables and lists, with a `--set` key's steps,",
        f"nest at most {MAX_DEPTH} levels (`MAX_DEPTH`: the deepest field, a loan tape's column, is {MAX_DEPTH - 2}), and an integer has at",
        "most the digits Python converts (4300). A segment, bank, guarantor, re-guarantor, pool, target or channel is",
        f"named with 1 to {MAX_NAME} letters (Chinese ones too), digits, `_` and `-`, so that a name is one step of a dotted key",
        f"and one item of a list; {', '.join(f'`{n}`' for n in RESERVED_NAMES)}, the aggregate of every entity, is no entity's name.",
        "Amounts may be at most 1000万亿 (`MAX_AMOUNT`, four times China's bank loans) and counts at most 10亿",
        "(`MAX_COUNT`). A rate above what its kind can plausibly be (`MAX_RATES`) is a slip of units, refused with the value",
        "probably meant (0.5 for 0.5%): an interest rate (a loan's rate, the all-in price, an interest subsidy, the",
        f"discount rate) at most {_percent('interest rate')} a year, above every legal lending rate in China; a fee or cost rate (guarantee fees,",
        f"a guarantor's operating cost) at most {_percent('fee rate')}; a growth rate at most {_percent('growth rate')}. A date that ends a measure before the run",
        "starts (`renewal.until`, `campaign.end`) is refused; a table by year giving years outside the run, and a capital",
        "injection dated outside it, are warned of (`ScenarioWarning`): they are not used.",
        "",
        "Before a run starts, the memory of each of its processes is estimated (`creditsim.run.memory`): for each thread",
        "of each simulating process, the engine's tables for a path (a row for every firm of the run, and the borrower",
        "and loan rows it starts with); for the main process, the results of every path, the traced paths' loans, and the",
        "larger of what gathering the results and summarising and writing them (`--out`, `--report`, `--xlsx`, `--csv`)",
        "add. A run that would not fit in the memory available is refused, naming `paths`, `trace`, `sample` or `workers`.",
        "",
    ]
    sections: list[tuple[str, type[BaseModel]]] = [
        ("(top level)", Scenario),
        ("[calendar]", Calendar),
        ("[firms]", Firms),
        ("[firms.segments.NAME]", Segment),
        ("[banks.NAME]", Bank),
        ("[demand]", Demand),
        ("[risk]", Risk),
        ("[[risk.stress]]", StressPoint),
        ("[liquidity]", Liquidity),
        ("[renewal]", Renewal),
        ("[campaign]", Campaign),
        ("[campaign.channels.NAME]", Channel),
        ("[relief]", Relief),
        ("[[relief.deferrals]]", Deferral),
        ("[[relief.lending]]", ReliefLending),
        ("[pressure]", Pressure),
        ("[guarantors.NAME]", Guarantor),
        ("[[guarantors.NAME.injections]]", Injection),
        ("[guarantors.NAME.top_up]", TopUp),
        ("[reguarantors.NAME]", Reguarantor),
        ("[pools.NAME]", Pool),
        ("[interest_subsidy]", InterestSubsidy),
        ("[assessment]", Assessment),
        ("[targets.NAME]", Target),
        ("[[assumptions]]", Assumption),
    ]
    for title, model in sections:
        lines += [f"## {title}", "", (model.__doc__ or "").strip().splitlines()[0], "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            if model_of(info.annotation) is not None and name not in ("segments", "banks", "stress", "channels", "renewal", "guarantors", "reguarantors", "injections", "top_up", "pools", "interest_subsidy", "targets", "loan_tape",
                                                                      "deferrals", "lending", "assumptions"):
                continue
            default = "required" if info.is_required() else _toml_default(info, is_amount(model, name))
            scaled = " Scaled by `sample`." if isinstance(info.json_schema_extra, dict) and "sampled" in info.json_schema_extra else ""
            lines.append(f"| `{name}` | {_type_name(info.annotation, info.metadata)} | {default} | {info.description or ''}{scaled} |")
        lines.append("")
    return "\n".join(lines)


def _percent(kind: str) -> str:
    """The most a kind of rate can plausibly be (:data:`~creditsim.scenario.schema.MAX_RATES`), as a percentage."""
    return f"{100 * MAX_RATES[kind]:g}%"


def _toml_default(info: Any, amount: bool) -> str:
    """A field's default as it would be written in TOML (``none`` when it has no value; an amount with its unit)."""
    value = info.default_factory() if info.default_factory is not None else info.default
    if value is None:
        return "none"
    if amount and value:
        return f'`"{amount_text(value)}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, (tuple, list)):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else f"{v:g}" for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _type_name(annotation: Any, metadata: list[Any]) -> str:
    text = repr(annotation) + repr(metadata)
    if annotation in (float | str, float | str | None):  # a target's threshold
        return "number, amount ('1000亿'), count ('1.5万户') or rate ('1%')"
    if (text.startswith("typing.Union[typing.Annotated[float") or text.startswith("typing.Union[typing.Annotated[int")) and "dict[" in text:
        return _type_name(annotation.__args__[0], []) + ", or a table of them by year"
    for marker, name in (
        ("_probability", "share/rate in [0, 1]"),
        ("_growth", "rate in (−100%, 1000%]"),
        ("_interest_rate", f"interest rate in [0, {_percent('interest rate')}]"),
        ("_fee_rate", f"fee rate in [0, {_percent('fee rate')}]"),
        ("_positive_amount", "amount ('5亿', '1200元') in (0, 1000万亿]"),
        ("parse_amount", "amount ('5亿', '1200元') in [0, 1000万亿]"),
        ("parse_count", "count in [0, 10亿]"),
        ("parse_month", "month 'YYYY-MM'"),
        ("_non_negative", "number ≥ 0"),
        ("_sample", "fraction in (0, 1] or ratio '1:N'"),
        ("_write_off_months", "whole number of months in [0, 240]"),
    ):
        if marker in text:
            if text.startswith("dict"):
                return f"table of {name}"
            if text.startswith("tuple"):
                return f"list of {name}"
            return name
    if annotation is int:
        low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
        high = next((m.le for m in metadata if hasattr(m, "le")), None)
        if low is not None and high is not None:
            return f"integer in [{low}, {high}]"
        return "integer" if low is None else f"integer ≥ {low}"
    if annotation is bool:
        return "true or false"
    if annotation is str or text.startswith("typing.Optional[str]") or text.startswith("str | None"):
        return "string"
    if "str | tuple[str, ...]" in text:
        return "name or list of names"
    if "tuple[str, ...]" in text:
        return "list of names"
    if "LoanTape" in text:
        return "loan tape file name ('.csv' or '.parquet')"
    if "Channel" in text:
        return "table of channels"
    if "Reguarantor" in text:
        return "table of re-guarantors"
    if "Pool" in text:
        return "table of pools"
    if "InterestSubsidy" in text:
        return "table"
    if "Guarantor" in text:
        return "table of guarantors"
    if "Injection" in text or "Deferral" in text or "ReliefLending" in text or "Assumption" in text:
        return "array of tables"
    if "Relief" in text:
        return "table"
    if "TopUp" in text:
        return "table"
    if "Target" in text:
        return "table of targets"
    if "Assessment" in text:
        return "table"
    if text.startswith("typing.Union[typing.Literal") and "dict[" in text:
        return "one of " + ", ".join(f"`{a}`" for a in annotation.__args__[0].__args__) + ", or a table of them by year"
    if "Literal" in text:
        return " \\| ".join(f"`{a}`" for a in annotation.__args__)
    if "Segment" in text:
        return "table of segments"
    if "Bank" in text:
        return "table of banks"
    if "StressPoint" in text:
        return "array of tables"
    if "Renewal" in text:
        return "table"
    raise TypeError(f"no reference name for the field type {text}")
