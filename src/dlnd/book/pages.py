"""The book's pages as Markdown: the README as the home page, each executed notebook as a
lesson (its figures as PNG files next to it), and an API reference page per package.

Notebooks are turned into Markdown here rather than by a notebook-to-HTML template, so that
every page goes through the same Markdown extensions (equations become MathML at build
time; code is highlighted by Pygments) and a page needs no script from anywhere to show.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Output types in the order a page prefers them (the first one an output has is shown).
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_TRACEBACK_COLOURS = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Lesson:
    """A lesson page: its title, the page's path in the book and the notebook's name."""

    title: str
    page: str  # e.g. "lessons/01_pytorch_basics.md"
    stem: str


def rewrite_links(markdown: str, target: Callable[[str], str | None]) -> str:
    """Markdown with each link target ``t`` replaced by ``target(t)``; where that is None the
    link becomes plain text (its label), so that no link points outside the book. Images
    are left as they are."""

    def replace(match: re.Match) -> str:
        bang, label, href = match.groups()
        if bang:
            return match.group(0)
        new = target(href)
        return label if new is None else f"[{label}]({new})"

    return _LINK.sub(replace, markdown)


def book_link(lessons: dict[str, str], prefix: str) -> Callable[[str], str | None]:
    """Where a link of a page ``prefix`` levels deep goes in the book: web links and anchors
    stay, ``[notebooks/]NAME.ipynb`` goes to the lesson page, other files are dropped."""

    def target(href: str) -> str | None:
        if href.startswith(("http://", "https://", "mailto:", "#")):
            return href
        path, _, anchor = href.partition("#")
        stem = Path(path).stem
        if path.endswith(".ipynb") and stem in lessons:
            return f"{prefix}{lessons[stem]}" + (f"#{anchor}" if anchor else "")
        return None

    return target


def home_page(readme: str, lessons: list[Lesson]) -> str:
    """The README with its links pointing into the book."""
    pages = {lesson.stem: lesson.page for lesson in lessons}
    return rewrite_links(readme, book_link(pages, ""))


def _fence(text: str, classes: str) -> str:
    """``text`` in a fenced block longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence} {{ {classes} }}\n{text.rstrip()}\n{fence}"


def _output_markdown(output: Any, images: dict[str, bytes], image_name: str) -> str | None:
    """One cell output as Markdown; images are added to ``images`` under ``image_name``."""
    kind = output.get("output_type")
    if kind == "stream":
        return _fence(output["text"], ".text .nb-output")
    if kind == "error":
        trace = _TRACEBACK_COLOURS.sub("", "\n".join(output.get("traceback", [])))
        return _fence(trace or f"{output['ename']}: {output['evalue']}", ".text .nb-error")
    data = output.get("data", {})
    for mime, extension in IMAGE_TYPES.items():
        if mime in data:
            raw = data[mime]
            body = raw.encode() if mime == "image/svg+xml" else base64.b64decode(raw)
            name = f"{image_name}.{extension}"
            images[name] = body
            return f'<figure class="nb-figure" markdown>\n![figure]({name})\n</figure>'
    if "text/html" in data:
        return f'<div class="nb-output nb-html">\n{data["text/html"]}\n</div>'
    if "text/markdown" in data:
        return data["text/markdown"]
    if "text/plain" in data:
        return _fence(data["text/plain"], ".text .nb-output")
    return None


def lesson_page(notebook: Any, lesson: Lesson, lessons: dict[str, str]) -> tuple[str, dict]:
    """The Markdown of an executed notebook and its images ``{file name: bytes}``.

    The title cell comes first, then a link to download the notebook; the setup cell that
    opens every notebook is folded away (a click shows it).
    """
    cells = list(notebook.cells)
    setup = cells.pop(0) if cells and cells[0].cell_type == "code" else None
    images: dict[str, bytes] = {}
    parts = []
    link = book_link({stem: Path(page).name for stem, page in lessons.items()}, "")
    for number, cell in enumerate(cells, start=1):
        if cell.cell_type == "markdown":
            parts.append(rewrite_links(cell.source, link))
        elif cell.cell_type == "code":
            parts.append(_fence(cell.source, ".python .nb-input"))
            for index, output in enumerate(cell.get("outputs", [])):
                name = f"{lesson.stem}_files/cell{number}_{index}"
                shown = _output_markdown(output, images, name)
                if shown:
                    parts.append(shown)
        if number == 1 and setup is not None:
            parts.append(_download_and_setup(lesson, setup))
    return "\n\n".join(parts) + "\n", images


def _download_and_setup(lesson: Lesson, setup: Any) -> str:
    """The download link and the folded setup cell, indented into a collapsible block."""
    code = _fence(setup.source, ".python .nb-input").replace("\n", "\n    ")
    return (
        f"[Download the notebook]({lesson.stem}.ipynb){{ .md-button }} and run it yourself: "
        "its first cell installs what it needs.\n\n"
        f'??? note "The setup cell (the same in every lesson)"\n    {code}'
    )


def notebook_title(notebook: Any, fallback: str) -> str:
    """The text of the notebook's first ``# Title`` heading (without Markdown's code marks),
    or ``fallback``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].replace("`", "").strip()
    return fallback


def public_modules(package_dir: Path, package: str = "dlnd") -> dict[str, list[str]]:
    """Modules of ``package`` grouped by the page that documents them: the top-level
    modules on the package's own page, each subpackage's modules on the subpackage's page.
    Private (``_name``) and ``__main__`` modules are left out."""
    pages: dict[str, list[str]] = {package: [package]}
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        if any(p.startswith("_") for p in parts):
            continue
        if not parts:
            continue
        module = ".".join((package, *parts))
        page = package if len(parts) == 1 and path.name != "__init__.py" else None
        page = page or f"{package}.{parts[0]}"
        pages.setdefault(page, []).append(module)
    return {page: sorted(set(modules), key=_module_order) for page, modules in pages.items()}


def _module_order(module: str) -> tuple[int, str]:
    return (module.count("."), module)


def reference_page(page: str, modules: list[str]) -> str:
    """A page of ``:::`` blocks, one per module (mkdocstrings renders them)."""
    options = json.dumps({"heading_level": 2, "show_root_heading": True})
    blocks = [f"::: {module}\n    options: {options}" for module in modules if module != page]
    head = f"# `{page}`\n\n::: {page}\n    options: " + json.dumps(
        {"heading_level": 2, "show_root_heading": False, "members": False}
    )
    return "\n\n".join([head, *blocks]) + "\n"
