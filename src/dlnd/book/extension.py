"""The book's Markdown extension (``dlnd.book.extension``): what the README, the notebooks and
the docstrings are written in, made to render the same in the book.

- Equations: ``$...$`` and ``$$...$$`` become MathML when the book is built. Browsers draw
  MathML themselves, so the pages need no MathJax and fetch nothing to show an equation;
  the ``$`` syntax is the one Jupyter shows in the notebooks.
- Lists straight after a paragraph line, which Jupyter and GitHub accept, get the blank
  line Python-Markdown needs to see a list.
- Sphinx roles in docstrings (:func:`dlnd.trainer.fit`) become code (``dlnd.trainer.fit``).

Code is left alone: fenced blocks are already set aside when this runs (priority below
fenced code's 25 and raw HTML's 20), and inline code spans are skipped.
"""

from __future__ import annotations

import re

from latex2mathml.converter import convert
from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

_CODE_SPAN = re.compile(r"(`+)[^`].*?\1", re.S)
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
# $x$ with no space just inside the dollars, not part of a word or a price like $5
_INLINE = re.compile(r"(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)]) ")
PRIORITY = 15


def to_mathml(latex: str, display: bool) -> str:
    """MathML for one LaTeX formula; a display formula is wrapped in a block ``<div>``."""
    mathml = convert(latex.strip(), display="block" if display else "inline")
    return f'<div class="math-display">{mathml}</div>' if display else mathml


def separate_lists(lines: list[str]) -> list[str]:
    """A blank line before each list that starts right under a line of a paragraph."""
    out: list[str] = []
    for line in lines:
        previous = out[-1] if out else ""
        paragraph = previous.strip() and not previous.startswith(" ")
        if _LIST_ITEM.match(line) and paragraph and not _LIST_ITEM.match(previous):
            out.append("")
        out.append(line)
    return out


class BookPreprocessor(Preprocessor):
    """Lists separated and roles made code, then formulas replaced outside inline code."""

    def run(self, lines: list[str]) -> list[str]:
        text = "\n".join(separate_lists(lines))
        text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)  # the role's own backticks: code
        pieces, start = [], 0
        for match in _CODE_SPAN.finditer(text):
            pieces.append(self._convert(text[start : match.start()]))
            pieces.append(match.group(0))
            start = match.end()
        pieces.append(self._convert(text[start:]))
        return "".join(pieces).split("\n")

    def _convert(self, text: str) -> str:
        def stash(match: re.Match, display: bool) -> str:
            return self.md.htmlStash.store(to_mathml(match.group(1), display))

        text = _DISPLAY.sub(lambda m: stash(m, True), text)
        return _INLINE.sub(lambda m: stash(m, False), text)


class BookExtension(Extension):
    """``markdown.Markdown(extensions=["dlnd.book.extension"])``."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        md.preprocessors.register(BookPreprocessor(md), "dlnd_book", PRIORITY)


def makeExtension(**kwargs: object) -> BookExtension:  # noqa: N802 (Python-Markdown's name)
    return BookExtension(**kwargs)
