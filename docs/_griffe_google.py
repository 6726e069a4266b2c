"""A Griffe extension for the API pages: two Google-style habits of nnjax's docstrings.

* ``Example:`` (singular) opens an examples section, as in Sphinx's napoleon; Griffe only
  knows ``Examples:`` and would render the doctest lines as Markdown text.
* Sphinx roles such as ``:func:`fit` `` become plain code spans (Markdown has no roles).
* ``a, b: description`` in an ``Args:`` section documents several parameters at once; Griffe
  would look for one parameter called "a, b". The entry is repeated for each name, so that a
  documented name missing from the signature is still reported.

mkdocs.yml loads it with ``extensions: [docs/_griffe_google.py:GoogleDocstrings]``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(?P<indent>\s*)Example:\s*$")
_ARGS = re.compile(r"^\s*(Args|Arguments|Parameters|Keyword Args|Keyword Arguments):\s*$")
_ROLE = re.compile(r":(?:class|func|mod|data|meth|attr|obj|exc|const|ref):`~?(?P<target>[^`]+)`")
_SEVERAL = re.compile(r"^(?P<indent>\s+)(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+):(?P<rest>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rewrite(text: str) -> str:
    """The docstring ``text`` with ``Example:`` renamed, roles removed and multi-name arguments split."""
    lines = _ROLE.sub(lambda m: f"`{m['target']}`", text).splitlines()
    out: list[str] = []
    args_indent: int | None = None  # indentation of the current Args: header, if inside one
    i = 0
    while i < len(lines):
        line = lines[i]
        if args_indent is not None and line.strip() and _indent(line) <= args_indent:
            args_indent = None
        example = _EXAMPLE.match(line)
        if example:
            out.append(f"{example['indent']}Examples:")
            i += 1
            continue
        if _ARGS.match(line):
            args_indent = _indent(line)
            out.append(line)
            i += 1
            continue
        several = _SEVERAL.match(line) if args_indent is not None else None
        if several:
            end = i + 1
            while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(line)):
                end += 1
            while end > i + 1 and not lines[end - 1].strip():  # blank lines after the entry stay outside
                end -= 1
            for name in several["names"].split(","):
                out.append(f"{several['indent']}{name.strip()}:{several['rest']}")
                out.extend(lines[i + 1:end])
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class GoogleDocstrings(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`rewrite` before it is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
