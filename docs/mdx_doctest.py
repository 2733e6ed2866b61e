"""A Markdown extension for the docs build (``mkdocs.yml``): a doctest block (lines from
one starting with ``>>>`` to the next blank line, outside fenced code) becomes a fenced
``pycon`` block, so the examples of docstrings that mkdocstrings renders show as code
rather than as nested block quotes and reference links."""

from __future__ import annotations

from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor


class _DoctestBlocks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fence: str | None = None  # the indentation of an open ``` fence we did not make
        ours: str | None = None  # the indentation of a pycon fence we opened
        for line in lines:
            stripped = line.lstrip()
            indent = line[:len(line) - len(stripped)]
            if ours is not None:
                if not stripped:
                    out.append(ours + "```")
                    ours = None
                out.append(line)
                continue
            if stripped.startswith(("```", "~~~")):
                fence = None if fence is not None else indent
                out.append(line)
                continue
            if fence is None and stripped.startswith(">>>"):
                out.append(indent + "```pycon")
                ours = indent
            out.append(line)
        if ours is not None:
            out.append(ours + "```")
        return out


class DoctestBlocksExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_DoctestBlocks(md), "doctest_blocks", 29)


def makeExtension(**kwargs: Any) -> DoctestBlocksExtension:
    return DoctestBlocksExtension(**kwargs)
