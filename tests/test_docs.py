"""The documentation runs: every fenced code block in docs/ is executed, and the reference pages are generated.

Rules for the blocks of one page (in order, in one temporary directory holding links to the repository's
``scenarios/`` and ``data/``):

- ``python``: run in one namespace per page; its printed output is kept for a following ``text`` block;
- ``pycon``: run as a doctest (the examples of the API reference);
- ``bash``: each command runs with bash and must exit 0, or the code in ``exit=N``; a line ending in ``\\``
  continues on the next; comment lines are skipped;
- ``toml file=NAME``: written to NAME for later blocks; ``toml from=FILE``: every value in it must be the one in
  FILE (a quoted excerpt); other ``toml`` must load as a scenario when it has a ``[calendar]`` table, else as a
  fragment merged into the bundled default, its amounts written with their units as a file's must be;
- ``text`` right after a ``bash`` or ``python`` block (no other block between): that block's output, each
  non-blank line appearing in order among the output's lines, runs of spaces counting as one (``...``
  lines are skipped); other ``text`` blocks
  are literal text (help texts, formulas).

Any other language, and ``~~~`` fences, are refused, so that no code block goes unrun. Processes a command leaves
running in the background (a Dask scheduler, say) are stopped when the page's test ends.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import os
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest

from creditsim.scenario import load_scenario, scenario_from_dict
from creditsim.scenario.written import refuse_bare_amounts

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LANGUAGES = {"python", "pycon", "bash", "toml", "text"}
COMMAND_TIMEOUT = 600  # seconds


@dataclass
class Block:
    language: str
    options: dict[str, str]
    text: str
    line: int
    follows_code: bool = field(default=False)


def code_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text (``` fences), with their info strings and first lines."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            info = stripped[len(fence):].split()
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != fence:
                i += 1
            if i == len(lines):
                raise AssertionError(f"line {start}: unclosed code block")
            language = info[0] if info else ""
            options = dict(item.split("=", 1) for item in info[1:] if "=" in item)
            blocks.append(Block(language, options, "\n".join(lines[start:i]) + "\n", start))
        i += 1
    for previous, block in zip(blocks, blocks[1:], strict=False):
        block.follows_code = previous.language in ("bash", "python")
    return blocks


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(_generator().PAGES))
def test_reference_page_is_what_the_code_generates(name):
    """docs/reference/NAME is exactly what docs/generate.py writes (run `python docs/generate.py` to update it)."""
    assert (DOCS / "reference" / name).read_text(encoding="utf-8") == _generator().PAGES[name]()


def test_every_public_name_is_in_the_api_reference():
    import creditsim

    documented = set(_generator().API["creditsim"])
    assert set(creditsim.__all__) - {"__version__"} <= documented


def test_every_code_block_has_a_language_the_tests_run():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not any(line.lstrip().startswith("~~~") for line in text.splitlines()), f"{page.relative_to(ROOT)}: use ``` fences"
        for block in code_blocks(text):
            where = f"{page.relative_to(ROOT)}:{block.line}"
            assert block.language in LANGUAGES, f"{where}: code block in '{block.language}' is not run"
            assert block.language != "pycon" or ">>>" in block.text, f"{where}: a pycon block without >>> tests nothing"


def test_text_output_is_matched_in_order():
    """The matching rule itself: lines must appear in order; '...' skips; a missing or reordered line fails."""
    output = "a\n  b   c  \nd\n"
    assert _missing("a\n...\nd\n", output) is None
    assert _missing("b c\nd\n", output) is None
    assert _missing("d\na\n", output) == "a"
    assert _missing("x\n", output) == "x"


def test_a_quoted_excerpt_must_match_its_file():
    full = {"targets": {"a": {"metric": "balance", "threshold": "1000亿"}}, "name": "x"}
    assert _excerpt_mismatch({"targets": {"a": {"metric": "balance"}}}, full) is None
    assert _excerpt_mismatch({"targets": {"a": {"threshold": "900亿"}}}, full) == "targets.a.threshold"
    assert _excerpt_mismatch({"targets": {"b": {"metric": "balance"}}}, full) == "targets.b"


def _missing(expected: str, output: str) -> str | None:
    """The first expected line not found, in order, among the output's lines; None when all are."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    position = 0
    for want in (" ".join(line.split()) for line in expected.splitlines()):
        if not want or want == "...":
            continue
        try:
            position = lines.index(want, position) + 1
        except ValueError:
            return want
    return None


def _commands(text: str) -> list[str]:
    commands, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        commands.append(current + line)
        current = ""
    assert not current, "a command ends with a line continuation"
    return commands


def _excerpt_mismatch(excerpt: dict, full: dict, prefix: str = "") -> str | None:
    """The first dotted key whose value in ``excerpt`` differs from ``full``'s; None when all agree."""
    for key, value in excerpt.items():
        if isinstance(value, dict) and isinstance(full.get(key), dict):
            found = _excerpt_mismatch(value, full[key], f"{prefix}{key}.")
            if found:
                return found
        elif full.get(key) != value:
            return f"{prefix}{key}"
    return None


def _merged(base: dict, fragment: dict) -> dict:
    merged = dict(base)
    for key, value in fragment.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_code_blocks_run(page, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    for name in ("scenarios", "data"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "100", "MPLBACKEND": "Agg"}
    namespace: dict = {"__name__": "__docs__"}
    sessions: list[int] = []
    try:
        _run_blocks(page, tmp_path, env, namespace, sessions)
    finally:
        for session in sessions:  # whatever a command left running in the background
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(session, signal.SIGTERM)


def _run_blocks(page: Path, tmp_path: Path, env: dict, namespace: dict, sessions: list[int]) -> None:
    import matplotlib.pyplot as plt

    output = ""
    for block in code_blocks(page.read_text(encoding="utf-8")):
        where = f"{page.relative_to(ROOT)}:{block.line}"
        if block.language == "python":
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                exec(compile(block.text, where, "exec"), namespace)
            output = buffer.getvalue()
        elif block.language == "pycon":
            test = doctest.DocTestParser().get_doctest(block.text, namespace, where, str(page), block.line)
            report = io.StringIO()
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, out=report.write)
            assert runner.failures == 0, f"{where}: doctest failed\n{report.getvalue()}"
        elif block.language == "bash":
            expected = int(block.options.get("exit", "0"))
            output = ""
            for command in _commands(block.text):
                process = subprocess.Popen(["bash", "-c", command], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, start_new_session=True)
                sessions.append(process.pid)
                stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
                done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
                output += done.stdout + done.stderr
                assert done.returncode == expected, f"{where}: `{command}` exited {done.returncode}, not {expected}:\n{done.stdout}{done.stderr}"
                if expected == 2:
                    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, f"{where}: `{command}`: {done.stderr}"
        elif block.language == "toml":
            if "from" in block.options:
                mismatch = _excerpt_mismatch(tomllib.loads(block.text), tomllib.loads((ROOT / block.options["from"]).read_text(encoding="utf-8")))
                assert mismatch is None, f"{where}: {mismatch} differs from {block.options['from']}"
                continue
            if "file" in block.options:
                target = tmp_path / block.options["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text, encoding="utf-8")
                continue
            data = tomllib.loads(block.text)  # a scenario file's text: its amounts carry their units
            whole = data if "calendar" in data else _merged(load_scenario().to_dict(), data)
            refuse_bare_amounts(data, whole)
            scenario_from_dict(whole)
        elif block.language == "text" and block.follows_code:
            missing = _missing(block.text, output)
            assert missing is None, f"{where}: the output of the block before has no line {missing!r} (in order); it printed:\n{output}"
        plt.close("all")
