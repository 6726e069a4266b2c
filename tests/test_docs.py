"""The guides cannot rot: every ```python block of docs/*.md runs, and the site builds strictly.

(a) Each page's ```python blocks run in order, top to bottom, in one fresh namespace per page
    (a guide builds on its earlier blocks), inside a temporary working directory. A block whose
    lines start with ``>>>`` is checked with :mod:`doctest` instead (its outputs must match). A
    block preceded by ``<!-- no-run: reason -->`` (or fenced as ```{.python .no-run}) is skipped,
    and the reason is printed. Blocks in other languages (bash, text) are not run. A bare
    ```python no-run fence would be skipped too, but mkdocs renders it as plain text, so
    :func:`test_page_fences_render` rejects it.
(b) ``mkdocs build --strict`` builds the site (API pages come from the docstrings through
    mkdocstrings); without mkdocs and mkdocstrings installed the test is skipped with the reason.
"""

from __future__ import annotations

import doctest
import importlib.util
import pathlib
import re
import subprocess
import sys
import time
from typing import NamedTuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                    re.M | re.S)
_NO_RUN_COMMENT = re.compile(r"<!--\s*no-run\s*:?\s*(?P<reason>.*?)\s*-->\s*$", re.S)


class Block(NamedTuple):
    """A fenced code block: where it starts (1-based line of its first code line) and its code."""

    line: int
    code: str
    language: str
    skip_reason: str | None
    info: str


def code_blocks(text: str) -> list[Block]:
    """Every fenced code block of a Markdown text, with its language and any no-run reason."""
    blocks = []
    for match in _FENCE.finditer(text):
        info = match["info"].strip()
        words = info.replace("{", " ").replace("}", " ").replace(".", " ").split()
        language = words[0].lower() if words else ""
        reason = None
        if re.search(r"(^|[\s.{])no-run\b", info):
            reason = info.split("no-run", 1)[1].strip(" :-}") or "marked no-run"
        before = text[: match.start()].rstrip()
        comment = _NO_RUN_COMMENT.search(before[-500:]) if before.endswith("-->") else None
        if comment:
            reason = comment["reason"] or "marked no-run"
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(Block(line, match["body"], language, reason, info))
    return blocks


def python_blocks(text: str) -> list[Block]:
    return [b for b in code_blocks(text) if b.language in ("python", "py", "pycon")]


# What Python-Markdown's fenced_code understands after the fence: a language, optionally hl_lines,
# or an attribute list in braces. Anything else (e.g. "python no-run") renders as plain text.
_RENDERABLE_INFO = re.compile(r"""^(\.?[\w#.+-]+)?\s*(hl_lines=(["']).*?\3\s*)?$|^\{[^}]*\}$""")


def renders(info: str) -> bool:
    """Whether mkdocs (Python-Markdown's fenced_code) renders a fence with this info string as code."""
    return bool(_RENDERABLE_INFO.match(info.strip()))


def test_code_blocks_parser():
    text = (
        "# Title\n\n```python\nx = 1\n```\n\ntext\n\n```bash\nls\n```\n\n"
        "```python no-run: needs a GPU\nimport cupy\n```\n\n<!-- no-run: slow -->\n```python\nslow()\n```\n"
        "\n````python\n```\n````\n\n```{.python .no-run}\nskipped()\n```\n"
    )
    blocks = code_blocks(text)
    assert [b.language for b in blocks] == ["python", "bash", "python", "python", "python", "python"]
    assert [b.line for b in python_blocks(text)] == [4, 14, 19, 23, 27]
    assert python_blocks(text)[0].code == "x = 1\n"
    assert [b.skip_reason for b in python_blocks(text)] == [None, "needs a GPU", "slow", None, "marked no-run"]
    assert python_blocks(text)[3].code == "```\n"
    assert [b.info for b in blocks if not renders(b.info)] == ["python no-run: needs a GPU"]


def run_page(page: pathlib.Path) -> tuple[int, list[str]]:
    """Runs a page's python blocks in one namespace; returns (blocks run, skip messages)."""
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    text = page.read_text()
    name = str(page.relative_to(ROOT))
    ran, skipped = 0, []
    for block in python_blocks(text):
        if block.skip_reason is not None:
            skipped.append(f"{name}:{block.line}: skipped ({block.skip_reason})")
            continue
        start = time.perf_counter()
        if block.code.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(block.code, namespace, name, name, block.line - 1)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False)
            failures = runner.summarize(verbose=False).failed
            assert failures == 0, f"{name}:{block.line}: {failures} doctest example(s) failed (see the output above)"
        else:
            # Pad with blank lines so that tracebacks point at the line in the Markdown file.
            code = compile("\n" * (block.line - 1) + block.code, name, "exec")
            exec(code, namespace)  # noqa: S102 - running the documentation is the point
        print(f"[docs] {name}:{block.line} ran in {time.perf_counter() - start:.2f} s")
        ran += 1
    return ran, skipped


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_blocks_run(page: pathlib.Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files a guide writes land in a temporary folder
    ran, skipped = run_page(page)
    for message in skipped:
        print(f"[docs] {message}")
    if not ran:
        print(f"[docs] {page.name}: no runnable python blocks")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_fences_render(page: pathlib.Path):
    bad = [b for b in code_blocks(page.read_text()) if not renders(b.info)]
    assert not bad, "\n".join(
        f"{page.relative_to(ROOT)}:{b.line - 1}: mkdocs renders the fence ```{b.info} as plain text; to keep a "
        "block from running put <!-- no-run: reason --> on the line before a ```python fence, "
        "or write ```{.python .no-run}" for b in bad)


def _missing_docs_tools() -> list[str]:
    wanted = {"mkdocs": "mkdocs", "mkdocstrings": "mkdocstrings", "mkdocstrings_handlers.python": "mkdocstrings-python"}
    missing = []
    for module, package in wanted.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(package)
    return missing


def test_site_builds_strictly(tmp_path):
    missing = _missing_docs_tools()
    if missing:
        reason = f"{', '.join(missing)} not installed (pip install -e '.[docs]'); the strict docs build was not run"
        print(f"[docs] {reason}")
        pytest.skip(reason)
    site = tmp_path / "site"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    print(f"[docs] mkdocs build --strict took {time.perf_counter() - start:.1f} s")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert "WARNING" not in log, f"mkdocs printed warnings:\n{log[-6000:]}"
    api = (site / "api" / "index.html").read_text()
    for name in ("nnjax.fit", "nnjax.nn.network.MLP", "nnjax.nn.losses"):
        assert name in api, f"expected the API reference to document {name}"
