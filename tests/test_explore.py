"""creditsim explore: the levers generated from the scenario, the runs in batches and their cache, the page driven
in Python (random lever values, a failing run) and in headless Chromium (a lever moved, the variant saved and rerun)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import creditsim
from creditsim.errors import ScenarioError
from creditsim.present import explorer as explorer_module
from creditsim.present.app import ExplorerPage, budget_html
from creditsim.present.cli import main
from creditsim.present.explorer import Cancelled, Explorer
from creditsim.present.levers import STRESS, levers, setting
from creditsim.results.budget import YI, budget_items
from creditsim.scenario import load_scenario, scenario_from_dict
from creditsim.scenario.changes import field_text
from creditsim.scenario.loading import value_at
from creditsim.scenario.schema import Bank, Guarantor, Pool
from helpers import assert_same_bits, default_data, headless_chromium, not_blank

SEED = 3
#: The scenario file of most tests is the bundled one cut to its first year, whose tables by year reach past it.
pytestmark = pytest.mark.filterwarnings("ignore::creditsim.errors.ScenarioWarning")


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    """The bundled scenario (two guarantors, a pool, renewal and the campaign) for its first year, as a file."""
    path = tmp_path_factory.mktemp("explore") / "small.toml"
    path.write_text(load_scenario(None, ["calendar.months=12"]).to_toml(), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ levers
def test_the_levers_are_the_scenarios_fields_with_their_units_ranges_and_help():
    scenario = load_scenario()
    data = scenario.to_dict()
    found = {lever.key: lever for lever in levers(scenario)}
    expected = [f"guarantors.{g}.{f}" for g in data["guarantors"] for f in ("fee_rate", "coverage", "capital")]
    expected += [f"pools.{p}.{f}" for p in data["pools"] for f in ("size", "payout_share")]
    expected += ["renewal.enabled", "renewal.until"]
    expected += [f"banks.{b}.{f}" for b in data["banks"] for f in ("renewal_uptake", "max_pd")]
    expected += [f"campaign.channels.{c}.reach_per_month" for c in data["campaign"]["channels"]]
    assert list(found) == [*expected, STRESS]
    for key in expected:
        value = value_at(data, key)
        assert found[key].value == ("" if value is None else field_text(key, value))
    assert found["guarantors.county.fee_rate"].value == "1.2%" and found["pools.ip_pledge.size"].value == "5000万"
    assert (found["guarantors.county.fee_rate"].low, found["guarantors.county.fee_rate"].high) == (0, 10)  # a fee rate: at most 10%
    assert (found["banks.big_bank.max_pd"].low, found["banks.big_bank.max_pd"].high) == (0, 100)  # a probability
    assert found["guarantors.county.capital"].unit == "CNY" and found["renewal.enabled"].unit == "bool" and found["renewal.until"].unit == "month"
    assert found["guarantors.county.coverage"].help == Guarantor.model_fields["coverage"].description
    assert found["pools.ip_pledge.payout_share"].help == Pool.model_fields["payout_share"].description
    assert found["banks.big_bank.max_pd"].help == Bank.model_fields["max_pd"].description
    assert found[STRESS].value == f"1 from {scenario.calendar.start}"  # no stress path: a multiplier of 1


def test_a_scenario_without_an_instrument_has_none_of_its_levers():
    data = default_data()
    for section in ("guarantors", "reguarantors", "pools", "renewal", "campaign", "targets"):
        data.pop(section, None)
    scenario = scenario_from_dict(data)
    keys = [lever.key for lever in levers(scenario)]
    assert not [k for k in keys if k.startswith(("guarantors", "pools", "renewal", "campaign"))]
    assert keys == [*(f"banks.{b}.{f}" for b in scenario.bank_names for f in ("renewal_uptake", "max_pd")), STRESS]


def test_lever_values_are_read_as_set_reads_them(small_file):
    explorer = Explorer(small_file, paths=4)
    values = {"guarantors.county.fee_rate": "0.5%", "pools.ip_pledge.size": "2亿", "renewal.enabled": "false", STRESS: "1.5 from 2022-01; 2 from 2022-07"}
    variant = explorer.variant(values)
    assert variant.digest() == load_scenario(small_file, setting(values)).digest()
    assert variant.guarantors["county"].fee_rate == 0.005 and variant.pools["ip_pledge"].size == 2e8 and not variant.renewal.enabled
    assert [(p.date, p.pd_multiplier) for p in variant.risk.stress] == [("2022-01", 1.5), ("2022-07", 2.0)]
    assert explorer.variant({lever.key: lever.value for lever in explorer.levers}) is explorer.scenario  # nothing moved
    assert explorer.overrides({**values, "guarantors.county.coverage": "80%"}) == setting(values)  # an unmoved lever is not set
    for key, text, message in [
        ("guarantors.county.fee_rate", "50%", "guarantors.county.fee_rate = '50%': is 50% a year, more than any fee rate"),
        ("pools.ip_pledge.size", "2", "pools.ip_pledge.size = 2: an amount needs its unit"),
        (STRESS, "lots", "risk.stress = 'lots': write each step as a PD multiplier and its first month"),
        (STRESS, "1.5 from 2022-13", "risk.stress"),
        ("renewal.until", "soon", "renewal.until = 'soon'"),
    ]:
        with pytest.raises(ScenarioError) as caught:
            explorer.variant({key: text})
        assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_variants_are_of_the_file_as_it_was_read(small_file, tmp_path):
    """The scenario file is read once: editing it while the page is open moves neither the baseline nor a variant."""
    copy = tmp_path / "edited.toml"
    copy.write_bytes(small_file.read_bytes())
    explorer = Explorer(copy, paths=4)
    copy.write_text(load_scenario(copy, ["calendar.months=6"]).to_toml(), encoding="utf-8")
    variant = explorer.variant({"guarantors.county.fee_rate": "0.5%"})
    assert variant.calendar.months == explorer.scenario.calendar.months == 12
    assert variant.digest() == load_scenario(small_file, ["guarantors.county.fee_rate=0.5%"]).digest()


# ------------------------------------------------------------------------------------------------ runs
@pytest.fixture
def ran(monkeypatch) -> list[tuple[str, list[int]]]:
    """The explorer's runs from here on: (the scenario's digest, the path numbers) of each."""
    calls: list[tuple[str, list[int]]] = []
    real = explorer_module.run_scenarios

    def counted(scenarios, path_ids, *args, **kwargs):
        calls.extend((scenario.digest(), list(path_ids)) for scenario in scenarios)
        return real(scenarios, path_ids, *args, **kwargs)

    monkeypatch.setattr(explorer_module, "run_scenarios", counted)
    return calls


def test_runs_come_in_batches_that_are_the_paths_of_one_run(small_file, monkeypatch, ran):
    """The first batch is FIRST_PATHS paths, the rest BATCH_PATHS at a time; the paths are bit for bit those of one
    simulate() of all of them; a run asked again runs nothing, and asked for more paths runs only the new ones."""
    monkeypatch.setattr(explorer_module, "FIRST_PATHS", 4)
    monkeypatch.setattr(explorer_module, "BATCH_PATHS", 5)
    explorer = Explorer(small_file, paths=12, seed=SEED)
    seen: list[int] = []
    results = explorer.run(explorer.scenario, lambda r: seen.append(r.paths))
    assert [paths for _, paths in ran] == [[0, 1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 11]] and seen == [4, 9, 12]
    assert_same_bits(results, creditsim.simulate(explorer.scenario, paths=12, seed=SEED))
    ran.clear()
    assert_same_bits(explorer.run(explorer.scenario), results) and ran == []
    more = explorer.run(explorer.scenario, paths=14)
    assert [paths for _, paths in ran] == [[12, 13]]
    assert_same_bits(more, creditsim.simulate(explorer.scenario, paths=14, seed=SEED))


def test_a_cancelled_run_stops_at_its_next_batch_and_keeps_what_it_did(small_file, monkeypatch):
    monkeypatch.setattr(explorer_module, "FIRST_PATHS", 3)
    explorer = Explorer(small_file, paths=20, seed=SEED)
    batches: list[int] = []
    with pytest.raises(Cancelled):
        explorer.run(explorer.scenario, lambda r: batches.append(r.paths), cancelled=lambda: bool(batches))
    assert batches == [3] and explorer.cached(explorer.scenario) == 3


def test_a_request_cancelled_while_it_waits_for_its_turn_runs_nothing(small_file, ran):
    """A request waiting for another's batch of the same run is asked whether it is still wanted once its turn comes."""
    explorer = Explorer(small_file, paths=4, seed=SEED)
    turn = explorer._running.setdefault((explorer.scenario.digest(), SEED), threading.Lock())
    over = threading.Event()
    outcome: list[str] = []

    def request() -> None:
        try:
            explorer.run(explorer.scenario, cancelled=over.is_set)
        except Cancelled:
            outcome.append("cancelled")

    with turn:  # another request's batch of this run is under way
        waiting = threading.Thread(target=request)
        waiting.start()
        time.sleep(0.3)  # the request has asked (not cancelled yet) and waits for its turn
        over.set()  # a newer request replaces it
    waiting.join()
    assert outcome == ["cancelled"] and ran == [] and explorer.cached(explorer.scenario) == 0


def test_runs_of_one_scenario_at_once_are_one_run(small_file, monkeypatch):
    """Threads asking for the same paths (a page's older request, another tab) take turns a batch at a time, so the
    paths kept are those of one run, bit for bit."""
    monkeypatch.setattr(explorer_module, "FIRST_PATHS", 2)
    monkeypatch.setattr(explorer_module, "BATCH_PATHS", 3)
    explorer = Explorer(small_file, paths=11, seed=SEED)
    variant = explorer.variant({"guarantors.county.fee_rate": "0.9%"})
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(explorer.compare(variant))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = creditsim.compare(explorer.scenario, variant, paths=11, seed=SEED)
    for comparison in got:
        assert_same_bits(comparison.base, expected.base)
        assert_same_bits(comparison.variant, expected.variant)
    assert explorer.cached(variant) == 11


def test_the_runs_kept_are_bounded(small_file, monkeypatch):
    """Within CACHE_BYTES the least recently used run goes first; a run seen again moves to the front."""
    explorer = Explorer(small_file, paths=3, seed=SEED)
    variants = [explorer.variant({"guarantors.county.fee_rate": f"{fee}%"}) for fee in (0.5, 0.6, 0.7)]
    explorer.run(variants[0])
    one_run = sum(a.nbytes for run in explorer._runs.values() for a in run.values())
    monkeypatch.setattr(explorer_module, "CACHE_BYTES", int(2.5 * one_run))
    explorer.run(variants[1])
    explorer.run(variants[0])  # used again: now the most recent
    explorer.run(variants[2])
    assert [explorer.cached(v) for v in variants] == [3, 0, 3]


def test_a_variant_is_paired_with_the_baseline_as_compare_pairs_them(small_file, monkeypatch, ran):
    """With neither run kept (a page's first load), the baseline's and the variant's paths run in the same batches,
    so the first answer comes after the first batch of each; the answer is creditsim.compare()'s, bit for bit."""
    monkeypatch.setattr(explorer_module, "FIRST_PATHS", 4)
    monkeypatch.setattr(explorer_module, "BATCH_PATHS", 5)
    explorer = Explorer(small_file, paths=10, seed=SEED)
    variant = explorer.variant({"guarantors.county.fee_rate": "0.5%", STRESS: "2 from 2021-06"})
    updates: list[tuple[int, int, bool]] = []
    shown = explorer.compare(variant, lambda c, complete: updates.append((c.base.paths, c.variant.paths, complete)))
    assert updates == [(4, 4, False), (9, 9, False), (10, 10, True)]
    base, other = explorer.scenario.digest(), variant.digest()
    assert ran == [(base, [0, 1, 2, 3]), (other, [0, 1, 2, 3]), (base, [4, 5, 6, 7, 8]), (other, [4, 5, 6, 7, 8]), (base, [9]), (other, [9])]
    expected = creditsim.compare(explorer.scenario, variant, paths=10, seed=SEED)
    got, want = shown.targets(), expected.targets()
    np.testing.assert_array_equal(got[["p_a", "p_b", "change"]].to_numpy(), want[["p_a", "p_b", "change"]].to_numpy())
    assert_same_bits(shown.base, expected.base)
    assert_same_bits(shown.variant, expected.variant)
    assert shown.difference("defaults", total=True)["ci_low"] > 0  # twice the PDs from mid-2021: more defaults on the same paths


def test_the_budget_total_is_the_median_outlay_over_paths(small_file):
    """The total line is the median over paths of every item summed on the path (not the sum of the items' medians)."""
    explorer = Explorer(small_file, paths=9, seed=SEED)
    comparison = explorer.compare(explorer.variant({"pools.ip_pledge.size": "20亿"}))
    page = budget_html(comparison)
    for run in (comparison.base, comparison.variant):
        outlay = sum(line.amounts.sum(axis=1) for line in budget_items(run))
        assert f"<b>{np.median(outlay) / YI:,.3f}</b>" in page


# ------------------------------------------------------------------------------------------------ the page, in Python
def _settle(page: ExplorerPage, timeout: float = 120.0) -> None:
    """Wait for the page's runs to finish and show them."""
    deadline = time.monotonic() + timeout
    while any(t.name.startswith("explore-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a run did not finish"
        time.sleep(0.05)
    page.refresh()


def test_random_lever_values_never_break_the_page(small_file):
    """Seeded random values of every kind in random levers: each is refused beside its lever in one line, or run;
    the page keeps answering, and a run that fails shows why instead of stopping the page."""
    explorer = Explorer(small_file, paths=3, seed=SEED)
    page = ExplorerPage(explorer)
    rng = np.random.default_rng(11)
    junk = ["", " ", "abc", "-5亿", "1e400", "50%", "0", "2099-13", "1.5 from", "3 from 2021-01", "20亿", "5万", "2022-06", "nan", "1:10",
            "{a = 1}", "[1, 2]", "true", "'", "\x00", "9" * 400, "渐进", "$\\frac$"]
    text_levers = [k for k, w in page.inputs.items() if type(w).__name__ == "TextInput"]
    refused = ran = 0
    for _ in range(40):
        key = text_levers[rng.integers(len(text_levers))]
        page.inputs[key].value = junk[rng.integers(len(junk))]
        shown = [p.object for p in (*page.errors.values(), page.run_error) if p.object]
        if shown:
            refused += 1
            assert len(shown) == 1 and shown[0].count("\n") == 0 and page.status.object.startswith("not run")
        else:
            ran += 1
        page.inputs[key].value = next(lever.value for lever in explorer.levers if lever.key == key)  # back to the scenario's
        _settle(page)
    assert refused > 5 and ran > 5
    page.inputs["renewal.enabled"].value = False
    page.move("guarantors.county.fee_rate", 0.5)
    _settle(page)
    assert "variant: " in page.status.object and "renewal.enabled=false" in page.status.object and "partial" not in page.status.object

    def broken(*args, **kwargs):
        raise RuntimeError("a disk fell off")

    explorer.compare = broken
    page.inputs["pools.ip_pledge.size"].value = "1亿"
    _settle(page)
    assert "the run failed: RuntimeError: a disk fell off" in page.run_error.object


def test_a_slider_runs_when_it_is_let_go_not_at_each_step_of_a_drag(small_file):
    """A slider's value moves at each step of a drag: only letting it go (value_throttled, which a typed value sets
    too) checks the levers and runs."""
    import param

    page = ExplorerPage(Explorer(small_file, paths=3, seed=SEED))
    key = "guarantors.county.fee_rate"
    slider = page.inputs[key]
    for step in (0.9, 0.8, 0.7):  # dragging
        slider.value = step
    assert page._generation == 0 and not any(t.name.startswith("explore-") for t in threading.enumerate())
    with param.edit_constant(slider):
        slider.value_throttled = 0.7  # let go (as the browser's slider or a typed value sets it)
    assert page._generation == 1
    _settle(page)
    assert f"variant: {key}=0.7%" in page.status.object and "partial" not in page.status.object


def test_the_saved_variant_reproduces_the_numbers_shown(small_file, tmp_path):
    explorer = Explorer(small_file, paths=8, seed=SEED)
    page = ExplorerPage(explorer)
    page.changed(None)
    page.inputs[STRESS].value = "2.5 from 2021-03"
    _settle(page)
    shown = page.comparison.targets()
    saved = tmp_path / "variant.toml"
    saved.write_bytes(page.save_variant().getvalue())
    text = saved.read_text(encoding="utf-8")
    assert "creditsim run THIS_FILE --paths 8 --seed 3" in text and "levers moved: risk.stress=" in text
    rerun = creditsim.simulate(load_scenario(saved), paths=8, seed=SEED).targets()
    assessed = shown["note"] == ""
    np.testing.assert_array_equal(rerun.loc[assessed.to_numpy(), "probability"].to_numpy(), shown.loc[assessed, "p_b"].to_numpy())
    assert b"<!DOCTYPE html>" in page.export_report().getvalue()[:100]
    assert page.export_workbook().getvalue()[:2] == b"PK"  # a zip: the workbook


# ------------------------------------------------------------------------------------------------ the command
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", "--no-browser", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"creditsim: error: --port {port}: cannot serve there") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["explore", "--port", "70000"])
    assert "not a port" in capsys.readouterr().err


def _screenshot_script():
    """docs/explore_screenshot.py, whose :func:`deep` finds the page's elements in Bokeh's shadow roots."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("explore_screenshot", Path(__file__).resolve().parents[1] / "docs" / "explore_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explore_in_headless_chromium(tmp_path):
    """`creditsim explore --no-browser` on the bundled scenario: the page loads with no console errors and shows the
    targets; moving a lever updates P(met) and the chart; "save this variant" downloads a scenario whose run
    reproduces the P(met) shown; a screenshot is not blank; the server still answers."""
    paths, port = 24, _free_port()
    server = subprocess.Popen([sys.executable, "-m", "creditsim.present.cli", "explore", "--no-browser", "--port", str(port), "--paths", str(paths)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving http://127.0.0.1:" in server.stdout.readline()
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        with headless_chromium(tmp_path / "profile", downloads) as driver:
            from selenium.webdriver.common.by import By

            script = _screenshot_script()

            def deep(selector: str) -> list:
                return script.deep(driver, selector)

            def status() -> str:
                return script.status(driver)

            def shown_p_met() -> dict[str, str]:
                """Per target, the variant's P(met) as the table shows it (``"100%"``)."""
                rows = [row.find_elements(By.TAG_NAME, "td") for row in deep(".targets-table >>> tr")]
                return {cells[0].text.split()[0]: cells[3].text.split()[0] if cells[3].text else "" for cells in rows if cells}

            def wait(condition, what: str, timeout: float = 600.0) -> None:
                deadline = time.monotonic() + timeout
                while not condition():
                    assert server.poll() is None, server.stderr.read()
                    assert time.monotonic() < deadline, f"waited for {what}; status: {status()!r}"
                    time.sleep(0.3)

            driver.get(f"http://127.0.0.1:{port}/")
            wait(lambda: f"{paths} paths, seed 0 · the scenario as it is" in status(), "the baseline")
            assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
            wait(lambda: script.chart(driver), "the chart")
            before, chart_before = shown_p_met(), script.chart(driver)
            assert "new_lending" in before and len(before) == len(load_scenario().targets)

            assert before["guarantee_fee"] == "0%"  # the county guarantor charges 1.2%, above the plan's average fee of 1%
            [fee] = deep(".lever-guarantors-county-fee_rate >>> input")
            script.type_into(driver, fee, "0.5")
            wait(lambda: "variant: guarantors.county.fee_rate=0.5%" in status() and "partial" not in status(), "the variant")
            after = shown_p_met()
            assert after["guarantee_fee"] == "100%"
            wait(lambda: script.chart(driver) != chart_before, "the chart of the variant", timeout=30)

            [save] = [b for b in deep("button") if "save this variant" in b.text]
            save.click()
            wait(lambda: any(downloads.glob("*.toml")), "the download", timeout=60)
            shot = tmp_path / "explore.png"
            assert driver.save_screenshot(str(shot))
            assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        not_blank(shot)
        [saved] = downloads.glob("*.toml")
        rerun = creditsim.simulate(load_scenario(saved), paths=paths, seed=0).targets()
        assessed = rerun[rerun["note"] == ""]
        assert {row.target: f"{100 * row.probability:.0f}%" for row in assessed.itertuples()} == {t: p for t, p in after.items() if t in set(assessed["target"])}
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert re.search(r"Traceback", server.stderr.read()) is None
