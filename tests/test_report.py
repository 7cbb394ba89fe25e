"""Charts, the HTML report (rendered in headless Chromium) and the exports."""

from __future__ import annotations

import base64
import io
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import ScalarFormatter

import creditsim
from creditsim.present import plots
from creditsim.present.cli import main
from creditsim.present.report import report_html, write_report
from helpers import headless_chromium, not_blank, small_default

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@pytest.fixture(scope="module")
def results() -> creditsim.Results:
    """30 paths of the shrunk default (30 months from 2021-01) with its targets, a guarantor and a pool."""
    s = small_default(**{
        "guarantors": {"fund": {"capital": "2亿", "coverage": 0.8, "fee_rate": "0.8%"}},
        "pools": {"pool": {"size": "5000万", "contributions": {"government": 1.0}, "payout_share": 0.5}},
        "targets.new_lending.end": "2023-06", "targets.credit_loans.end": "2023-06",
        "targets.first_time_borrowers.end": "2023-06", "targets.first_time_lending.end": "2023-06",
        "targets.npl": {"metric": "npl_ratio", "measure": "ratio", "date": "2022-12", "comparison": "<=", "threshold": "3%", "scope": ["big_bank", "city_bank"]},
        "targets.不良率": {"metric": "npl_ratio", "measure": "average", "start": "2022-01", "end": "2022-12", "comparison": "<=", "threshold": "3%"},
    })
    return creditsim.simulate(s, paths=30, seed=5)


def all_charts(results: creditsim.Results) -> dict[str, object]:
    charts = {
        "fan": plots.fan_chart(results, "balance"), "fan_target": plots.fan_chart(results, "", target="new_lending"),
        "fan_ratio_target": plots.fan_chart(results, "", target="npl"), "fan_chinese_name": plots.fan_chart(results, "", target="不良率"),
        "targets": plots.target_chart(results),
        "two_increases": plots.two_increases_chart(results), "losses": plots.loss_chart(results), "capital": plots.capital_chart(results),
    }
    assert all(fig is not None for fig in charts.values())
    return charts


def render(fig) -> tuple[list[str], list[str]]:
    """Draw a figure; return the warnings about missing glyphs and every text it drew."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and callable(a.get_text))]
    return missing, texts


# ------------------------------------------------------------------------------------------------ charts
def test_without_a_chinese_font_the_charts_are_in_english_and_draw_every_glyph(results, monkeypatch):
    """No CJK font: no text holds a Chinese character and no glyph is missing (nothing drawn as a box), even for
    a user's Chinese names (the target 不良率: its characters are replaced)."""
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    for name, fig in all_charts(results).items():
        missing, texts = render(fig)
        assert missing == [], name
        assert not any(CJK.search(t) for t in texts), (name, [t for t in texts if CJK.search(t)])
    assert plots.label("median") == "median"


def test_with_a_chinese_font_the_charts_are_in_chinese_and_draw_every_glyph(results):
    font = plots.cjk_font()
    if font is None:
        pytest.skip("no font with Chinese characters is installed (.ci/run installs fonts-wqy-microhei)")
    for name, fig in all_charts(results).items():
        missing, texts = render(fig)
        assert missing == [], name
        assert any(CJK.search(t) for t in texts), name
    assert plots.label("median") == "中位数"


def test_with_a_chinese_font_without_the_minus_sign_charts_write_a_hyphen(results, monkeypatch):
    """WenQuanYi Zen Hei (Debian's fonts-wqy-zenhei) has no U+2212, which matplotlib writes for negative numbers:
    with such a font every label and tick label writes '-' instead, so no glyph is missing (here the installed
    font is taken to lack it)."""
    if plots.cjk_font() is None:
        pytest.skip("no font with Chinese characters is installed (.ci/run installs fonts-wqy-microhei)")
    monkeypatch.setattr(plots, "_has_minus_sign", lambda family: False)
    for name, fig in all_charts(results).items():
        missing, texts = render(fig)
        assert missing == [] and not any("\u2212" in t for t in texts), name
        formatters = [axis.get_major_formatter() for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]
        assert not any(type(f) is ScalarFormatter for f in formatters), name  # every numeric axis writes '-
    margins = plots.two_increases_chart(results)
    render(margins)
    assert any("-" in t.get_text() for t in margins.findobj(lambda a: hasattr(a, "get_text") and callable(a.get_text)))


def test_target_path_runs_from_the_start_of_the_period_to_the_measured_value(results):
    """What a target's fan chart plots: an increase starts at 0 the month before the period, a cumulative flow
    too; a ratio target runs from the opening to its date; the last column is Results.targets()'s value."""
    from creditsim.results.targets import target_path

    table = results.targets().set_index("target")
    for name in ("new_lending", "credit_loans", "npl"):
        t = results.scenario.targets[name]
        dates, values = target_path(results, t)
        assert np.nanmedian(values[:, -1]) == pytest.approx(table.loc[name, "median"], rel=1e-12)
        assert dates[-1] == (t.date or t.end)
        if t.measure in ("increase", "cumulative"):
            assert dates[0] == "2020-12" and (values[:, 0] == 0).all()
        else:
            assert dates[0] == results.dates[0]


# ------------------------------------------------------------------------------------------------ report
def test_report_is_self_contained_and_holds_every_section(results, tmp_path):
    html = report_html(results, command="creditsim run test")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), "a resource would be fetched from the network"
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 10 and all(src.startswith("data:image/png;base64,") for src in images)
    # a target's source is the plan's title, issuer and year with the clause, not the document's file name
    assert "嘉兴市小微企业三年成长计划(2021—2023年) · 嘉兴市人民政府办公室, 2021 · 一(三)" in html and "004_a4906bae605cc669.txt" not in html.split("The scenario in full")[0]
    for text in ("Targets", "两增 and 两控", "new_lending", "How this was produced", "creditsim run test",
                 results.scenario.digest(), "The scenario in full", "@media print"):
        assert text in html, text
    path = write_report(results, tmp_path / "r" / "report.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary file left behind


def test_report_has_the_budget_each_bank_and_the_instruments_limits(results):
    """The budget by instrument and year with its bottom lines, each bank's book and 两增 at each year-end, and
    how likely each instrument is to become insolvent, as sections with their tables and figures from the run."""
    html = report_html(results)
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    for title in ("Each bank 分银行", "Budget 财政预算", "Limits and insolvency 偿付能力"):
        assert title in sections, title
    text = lambda title: html.split(f"<h2>{title}</h2>")[1].split("<h2>")[0]  # noqa: E731
    spent = text("Budget 财政预算")
    assert "fund</td><td class=\"l\">start-up capital</td><td class=\"l\">one-off" in spent and "<b>2.0亿</b>" in spent
    assert "pool</td><td class=\"l\">start-up capital" in spent and "net cost" in spent and "left at the end" in spent
    banks = text("Each bank 分银行")
    for bank in results.banks:
        assert f"<h3>{bank}</h3>" in banks
    assert "两增 P(pass)" in banks and "两增 loan_growth margin" in banks and "first_time_borrowers" in banks
    limits = text("Limits and insolvency 偿付能力")
    assert "insolvent (claims left unpaid)" in limits and "leverage cap reached" in limits and "depleted (compensation left unpaid)" in limits
    assert "leverage above its cap (claims cut its capital)" in limits and "No guarantee is issued beyond" in limits


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_report_renders_in_headless_chromium(results, tmp_path):
    """The page loads without console errors; the tables and charts are present and visible; a screenshot at
    laptop width is not blank."""
    page = write_report(results, tmp_path / "report.html")
    with headless_chromium(tmp_path / "profile") as driver:
        from selenium.webdriver.common.by import By

        driver.get(page.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        tables = driver.find_elements(By.TAG_NAME, "table")
        assert len(tables) >= 8 and all(t.is_displayed() and t.size["width"] > 0 for t in tables)
        titles = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        assert {"Each bank 分银行", "Budget 财政预算", "Limits and insolvency 偿付能力"} <= set(titles)
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 10
        for image in images:
            driver.execute_script("arguments[0].scrollIntoView()", image)
            assert image.is_displayed() and driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
        # at laptop width nothing is wider than the window (tables scroll inside their own box)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        driver.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "shot.png"
        assert driver.save_screenshot(str(shot))
        # printed to PDF (A4): several pages, the charts included
        from selenium.webdriver.common.print_page_options import PrintOptions

        pdf = base64.b64decode(driver.print_page(PrintOptions()))
        assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3 and len(pdf) > 200_000
    not_blank(shot)


# ------------------------------------------------------------------------------------------------ exports
def test_excel_workbook_holds_every_table_in_its_units_with_bilingual_headers(results, tmp_path):
    """Every table of Results.tables() is a sheet. Amounts are in 亿元 (the table's CNY ÷ 1e8) and say so, in a
    unit column where rows mix units (targets, banks, summary) or in the header (budget); fractions and
    probabilities keep their value in a percentage format; headers carry English and Chinese."""
    from openpyxl import load_workbook

    from creditsim.results.exports import HEADERS

    path = results.to_excel(tmp_path / "book.xlsx")
    book = pd.read_excel(path, sheet_name=None)
    tables = results.tables()

    def column(sheet: pd.DataFrame, name: str) -> np.ndarray:
        """The sheet's column for the table's ``name``: its header is the bilingual one, with a fixed unit in brackets."""
        [found] = [c for c in sheet.columns if c == HEADERS[name] or c.startswith(HEADERS[name] + " [")]
        return sheet[found].to_numpy()

    assert list(book) == ["targets", "two_increases", "banks", "budget", "budget_totals", "instruments", "summary"]
    targets, read = tables["targets"], book["targets"]
    assert [c.split(" [")[0] for c in read.columns] == [HEADERS.get(c, c) for c in targets.columns]
    money = (targets["unit"] == "CNY").to_numpy()
    assert money.any() and (~money).any()
    np.testing.assert_allclose(column(read, "threshold")[money].astype(float), targets["threshold"].to_numpy(float)[money] / 1e8, rtol=1e-12)
    np.testing.assert_allclose(column(read, "median")[~money].astype(float), targets["median"].to_numpy(float)[~money], rtol=1e-12, equal_nan=True)
    assert set(column(read, "unit")[money]) == {"亿元 (100M CNY)"}
    assert HEADERS["probability"] + " [% (probability)]" in read.columns
    np.testing.assert_allclose(column(read, "probability").astype(float), targets["probability"].to_numpy(float), equal_nan=True)
    spent = tables["budget"]
    assert HEADERS["median"] + " [亿元 (100M CNY)]" in book["budget"].columns
    np.testing.assert_allclose(column(book["budget"], "median").astype(float), spent["median"].to_numpy(float) / 1e8, rtol=1e-12)
    banks = tables["banks"]
    money = (banks["unit"] == "CNY").to_numpy()
    np.testing.assert_allclose(column(book["banks"], "median")[money].astype(float), banks["median"].to_numpy(float)[money] / 1e8, rtol=1e-12)
    summary, read = tables["summary"], book["summary"]
    assert len(read) == len(summary) and set(column(read, "unit")) >= {"亿元 (100M CNY)", "% (share)", "户 (firms)"}
    cells = load_workbook(path)["targets"]
    letter = {cell.value.split(" [")[0]: cell.column_letter for cell in cells[1]}
    first_money = int(np.flatnonzero(targets["unit"] == "CNY")[0]) + 2
    assert cells[f"{letter[HEADERS['median']]}{first_money}"].number_format == "#,##0.00"
    assert cells[f"{letter[HEADERS['probability']]}2"].number_format == "0.0%"


def test_csv_and_parquet_exports_round_trip(results, tmp_path):
    csv_dir, parquet_dir = results.to_csv(tmp_path / "csv"), results.to_parquet(tmp_path / "parquet")
    names = ["metrics", "summary", "targets", "two_increases", "banks", "budget", "budget_totals", "instruments"]
    assert sorted(p.name for p in csv_dir.iterdir()) == sorted(f"{n}.csv" for n in names)
    tables = {"metrics": results.metrics, **results.tables()}
    for name in names:
        from_csv = pd.read_csv(csv_dir / f"{name}.csv", encoding="utf-8-sig", keep_default_na=False, na_values=[""])
        from_parquet = pd.read_parquet(parquet_dir / f"{name}.parquet")
        for column in tables[name].columns:
            if pd.api.types.is_numeric_dtype(tables[name][column]):
                expected = tables[name][column].to_numpy(float)
                np.testing.assert_allclose(from_csv[column].to_numpy(float), expected, rtol=1e-12, equal_nan=True)
                np.testing.assert_array_equal(from_parquet[column].to_numpy(float), expected)
    with pytest.raises(creditsim.ResultsError, match="already exists"):
        results.to_csv(csv_dir)


# ------------------------------------------------------------------------------------------------ command line
def test_run_writes_report_workbook_and_tables_and_report_reads_saved_results(tmp_path, capsys):
    args = ["run", "--paths", "3", "--seed", "2", "--set", "calendar.months=14", "--out", str(tmp_path / "res"), "--report", str(tmp_path / "r.html"),
            "--xlsx", str(tmp_path / "b.xlsx"), "--csv", str(tmp_path / "tables")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "targets" in out and "not assessed" in out and "两增" in out and "at risk" in out
    assert (tmp_path / "r.html").exists() and (tmp_path / "b.xlsx").exists() and (tmp_path / "tables" / "targets.csv").exists()
    assert main(["report", str(tmp_path / "res"), "-o", str(tmp_path / "from_saved.html")]) == 0
    assert (tmp_path / "from_saved.html").read_text(encoding="utf-8").count("<img") >= 8


def test_report_flag_needs_a_file_so_it_never_takes_the_scenario(tmp_path, capsys):
    """`run --report my_city.toml` would otherwise run the default and overwrite the scenario with HTML."""
    scenario = tmp_path / "my_city.toml"
    scenario.write_text("name = 'x'", encoding="utf-8")
    assert main(["run", "--report", str(scenario)]) == 2
    assert "must end in .html or .htm" in capsys.readouterr().err and scenario.read_text(encoding="utf-8") == "name = 'x'"


def test_bad_output_paths_are_refused_before_the_run(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken.html").mkdir()
    for args, message in ((["--report", str(tmp_path / "taken.html")], "is a directory"), (["--csv", str(tmp_path / "taken")], "already exists"),
                          (["--xlsx", str(tmp_path / "book.xls")], "must end in .xlsx")):
        assert main(["run", "--paths", "1", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "manifest.json" in capsys.readouterr().err
