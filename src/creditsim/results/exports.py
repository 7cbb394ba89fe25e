"""Excel workbooks people can read: amounts in 亿元, every number with its unit, formats and bilingual headers.

A sheet is a table and the unit of each of its value columns: one unit for the column, or ``ROW`` to read each
row's unit from its ``unit`` column (a table mixing metrics). On the way out, amounts (unit ``CNY``) become 亿元
(÷ 1e8, format ``#,##0.00``), fractions stay fractions in a percentage format, counts get thousands separators;
each sheet gains a ``unit`` column naming what its cells are in, and headers carry English and Chinese.
"""

from __future__ import annotations

import gc
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import write_file

__all__ = ["ROW", "Sheet", "write_workbook", "HEADERS"]

#: Read the unit of each row from its ``unit`` column.
ROW = "row"
#: CNY per 亿.
_YI = 1e8
#: How each unit is written in a workbook: its label and the Excel number format.
_UNITS: dict[str, tuple[str, str]] = {
    "CNY": ("亿元 (100M CNY)", "#,##0.00"),
    "fraction": ("% (share)", "0.00%"),
    "probability": ("% (probability)", "0.0%"),
    "points": ("percentage points 百分点", "+0.00;-0.00;0.00"),
    "ratio": ("× (ratio)", "0.00"),
    "firms": ("户 (firms)", "#,##0"),
    "loans": ("笔 (loans)", "#,##0"),
    "months": ("月 (months)", "0"),
}
#: Column headers in English and Chinese.
HEADERS: dict[str, str] = {
    "target": "target 目标", "label": "as the plan words it 原文", "metric": "metric 指标", "measure": "measure 口径",
    "scope": "scope 范围", "when": "when 时间", "comparison": "comparison 比较", "threshold": "threshold 目标值",
    "probability": "probability 概率", "ci_low": "95% CI low 置信下限", "ci_high": "95% CI high 置信上限",
    "median": "median 中位数", "p5": "5th percentile 第5百分位", "p25": "25th percentile 第25百分位",
    "p50": "median 中位数", "p75": "75th percentile 第75百分位", "p95": "95th percentile 第95百分位",
    "mean": "mean 均值", "mcse": "Monte Carlo s.e. 蒙特卡洛标准误", "median_shortfall": "median shortfall 缺口中位数",
    "paths": "paths 路径数", "source": "source 出处", "note": "note 说明", "bank": "bank 银行", "year": "year 年份",
    "date": "date 日期", "check": "check 考核项", "rule": "rule 规则", "median_margin": "median margin 余量中位数",
    "instrument": "instrument 工具", "kind": "kind 类别", "item": "item 项目", "timing": "one-off or recurring 一次性/经常性",
    "line": "line 项目", "value": "value 数值", "unit": "unit 单位", "entity": "entity 主体", "event": "event 事件",
    "date_p5": "first month, 5th percentile 首次月份(5%)", "date_median": "first month, median 首次月份(中位数)",
    "date_p95": "first month, 95th percentile 首次月份(95%)",
}


@dataclass(frozen=True)
class Sheet:
    """A table to write and the unit of each of its value columns (``ROW``: the row's ``unit`` column)."""

    frame: pd.DataFrame
    units: Mapping[str, str] = field(default_factory=dict)


def _unit_of(row_unit: object, column_unit: str) -> str:
    return str(row_unit) if column_unit == ROW else column_unit


def write_workbook(path: str | Path, sheets: Mapping[str, Sheet]) -> Path:
    """Write ``sheets`` to an Excel workbook at ``path`` atomically (an existing file is replaced).

    Amounts are converted to 亿元 and every value column is given its number format; the ``unit`` column says
    each row's unit (one per value column with a fixed unit: the header then names it). The workbook (a zip) is
    built in memory and then written at once, so a disk that fills up fails the write, not the zip half-way (whose
    unclosed remains would print errors after the clean one).
    """
    prepared = {name: _prepared(sheet) for name, sheet in sheets.items()}

    def write(temporary: Path) -> None:
        # openpyxl writes each sheet through a temporary file of its own: when that write fails (a full disk) its
        # unfinished sheet writers are finalized after the clean error and print tracebacks, so they are finalized
        # here, with unraisable errors dropped, and the failure raised afterwards without them
        hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
        failure = None
        try:
            workbook = _workbook(prepared)
        except OSError as exc:
            failure = OSError(exc.errno, exc.strerror, exc.filename)
        finally:
            if failure is not None:
                gc.collect()
            sys.unraisablehook = hook
        if failure is not None:
            raise failure
        temporary.write_bytes(workbook.getvalue())

    return write_file(Path(path), write, "workbook")


def _workbook(prepared: Mapping[str, tuple[pd.DataFrame, dict[str, tuple[int, list[str | None]]]]]) -> io.BytesIO:
    """The workbook of the prepared sheets, built in memory."""
    workbook = io.BytesIO()
    with pd.ExcelWriter(workbook, engine="openpyxl") as book:
        for name, (frame, formats) in prepared.items():
            frame.to_excel(book, sheet_name=name[:31], index=False)
            cells = book.sheets[name[:31]]
            for index, per_row in formats.values():
                letter = cells.cell(row=1, column=index + 1).column_letter
                for r, number_format in enumerate(per_row, start=2):
                    if number_format:
                        cells[f"{letter}{r}"].number_format = number_format
            for index, column in enumerate(frame.columns, start=1):
                width = max(len(str(column)), *(len(str(v)) for v in frame[column].head(200))) if len(frame) else len(str(column))
                cells.column_dimensions[cells.cell(row=1, column=index).column_letter].width = min(max(10, width + 2), 60)
            cells.freeze_panes = "A2"
    return workbook


def _prepared(sheet: Sheet) -> tuple[pd.DataFrame, dict[str, tuple[int, list[str | None]]]]:
    """The sheet's table with amounts in 亿元, unit labels and bilingual headers, and each value column's formats."""
    frame = sheet.frame.copy()
    row_units = frame["unit"].astype(str).to_numpy() if "unit" in frame else np.full(len(frame), "")
    formats: dict[str, list[str | None]] = {}
    for column, column_unit in sheet.units.items():
        units = [_unit_of(u, column_unit) for u in row_units]
        amounts = np.array([u == "CNY" for u in units], dtype=bool)
        if amounts.any():  # only the amounts change; text in a mixed column (a name, a note) stays as it is
            values = frame[column].astype(object).to_numpy(copy=True)
            values[amounts] = pd.to_numeric(frame[column][amounts], errors="coerce").to_numpy(dtype=float) / _YI
            frame[column] = pd.Series(values, index=frame.index).infer_objects()
        formats[column] = [_UNITS.get(u, ("", None))[1] for u in units]
    if any(u == ROW for u in sheet.units.values()):
        frame["unit"] = [_UNITS.get(u, (u, None))[0] for u in row_units]
    fixed = {c: u for c, u in sheet.units.items() if u != ROW}
    renamed = {c: f"{HEADERS.get(c, c)} [{_UNITS.get(u, (u, None))[0]}]" for c, u in fixed.items()}
    frame = frame.rename(columns={c: renamed.get(c, HEADERS.get(c, c)) for c in frame.columns})
    index = {c: list(sheet.frame.columns).index(c) for c in formats}
    return frame, {c: (index[c], per_row) for c, per_row in formats.items()}
