"""The documentation runs: every fenced code block in docs/ is executed, and the reference pages are generated.

Rules for the blocks of one page (in order, in one temporary directory holding links to the repository's
``scenarios/`` and ``data/``):

- ``python``: run in one namespace per page; its printed output is kept for a following ``text`` block;
- ``pycon``: run as a doctest (the examples of the API reference);
- ``bash``: each command runs with bash and must exit 0, or the code in ``exit=N``; a line ending in ``\\``
  continues on the next; comment lines are skipped;
- ``toml file=NAME``: written to NAME for later blocks; ``toml`` without a file must load as a scenario when it
  has a ``[calendar]`` table, else as a fragment merged into the bundled default;
- ``text`` right after a ``bash`` or ``python`` block (no other block between): that block's output, each
  non-blank line appearing in order among the output's lines, runs of spaces counting as one (``...``
  lines are skipped); other ``text`` blocks
  are literal text (help texts, formulas).

Any other language is refused, so that no code block goes unrun.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib.util
import io
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest

from creditsim.scenario import load_scenario, scenario_from_dict

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


@pytest.mark.parametrize("name", ["scenario.md", "metrics.md", "cli.md", "python-api.md"])
def test_reference_page_is_what_the_code_generates(name):
    """docs/reference/NAME is exactly what docs/generate.py writes (run `python docs/generate.py` to update it)."""
    generate = _generator()
    assert (DOCS / "reference" / name).read_text(encoding="utf-8") == generate.PAGES[name]()


def test_every_public_name_is_in_the_api_reference():
    import creditsim

    documented = set(_generator().API["creditsim"])
    assert set(creditsim.__all__) - {"__version__"} <= documented


def test_every_code_block_has_a_language_the_tests_run():
    for page in PAGES:
        for block in code_blocks(page.read_text(encoding="utf-8")):
            assert block.language in LANGUAGES, f"{page.relative_to(ROOT)}:{block.line}: code block in '{block.language}' is not run"


def test_text_output_is_matched_in_order():
    """The matching rule itself: lines must appear in order; '...' skips; a missing or reordered line fails."""
    output = "a\n  b   c  \nd\n"
    assert _missing("a\n...\nd\n", output) is None
    assert _missing("b c\nd\n", output) is None
    assert _missing("d\na\n", output) == "a"
    assert _missing("x\n", output) == "x"


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


def _merged(base: dict, fragment: dict) -> dict:
    merged = dict(base)
    for key, value in fragment.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_code_blocks_run(page, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("scenarios", "data"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "100", "MPLBACKEND": "Agg"}
    namespace: dict = {"__name__": "__docs__"}
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
                done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
                output += done.stdout + done.stderr
                assert done.returncode == expected, f"{where}: `{command}` exited {done.returncode}, not {expected}:\n{done.stdout}{done.stderr}"
                if expected == 2:
                    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, f"{where}: `{command}`: {done.stderr}"
        elif block.language == "toml":
            if "file" in block.options:
                target = tmp_path / block.options["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.text, encoding="utf-8")
                continue
            data = tomllib.loads(block.text)
            if "calendar" in data:
                scenario_from_dict(data)
            else:
                scenario_from_dict(_merged(load_scenario().to_dict(), data))
        elif block.language == "text" and block.follows_code:
            missing = _missing(block.text, output)
            assert missing is None, f"{where}: the output of the block before has no line {missing!r} (in order); it printed:\n{output}"
        plt.close("all")
