"""Build the book: run every lesson notebook once, write the pages, let MkDocs render them.

MkDocs with the Material theme was chosen over Jupyter Book because the README is already
Markdown, the Material theme bundles its scripts, icons and search, fonts can be switched to
the reader's own (no Google Fonts), it builds in seconds with few dependencies (no Sphinx
stack), and mkdocstrings reads the docstrings without importing the package.
Equations become MathML when the book is built (:mod:`dlnd.book.extension`), so no page loads
a script from anywhere: the site builds and reads with no network.

The book is written to a temporary folder next to ``out`` and moved into place when complete,
so an interrupted build never leaves half a site; ``out/book.json`` records what was run and
how long it took.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlnd.book.pages import (
    Lesson,
    home_page,
    lesson_page,
    notebook_title,
    public_modules,
    reference_page,
)
from dlnd.errors import UserError
from dlnd.io import atomic_write_text
from dlnd.notebook.execute import NotebookRun, execute_notebooks, publishable
from dlnd.notebook.lessons import find_checkout, lesson_notebooks, setup_cell_differs

REPORT_FILE = "book.json"
STYLE = Path(__file__).parent / "assets" / "book.css"

MARKDOWN_EXTENSIONS: list[Any] = [
    "admonition",
    "attr_list",
    "md_in_html",
    "tables",
    {"toc": {"permalink": True}},
    {"pymdownx.highlight": {"use_pygments": True}},
    "pymdownx.superfences",
    "pymdownx.details",
    "dlnd.book.extension",
]
API_OPTIONS = {
    "show_source": False,
    "members_order": "source",
    "filters": ["!^_"],
    "show_signature_annotations": True,
    "docstring_style": None,
}


@dataclass
class BookReport:
    """What a build did: each notebook's wall time and first error, and the total times."""

    notebooks: list[dict[str, Any]] = field(default_factory=list)
    notebooks_s: float = 0.0
    render_s: float = 0.0
    total_s: float = 0.0
    quick: bool = False
    pages: int = 0

    @property
    def failed(self) -> list[str]:
        return [n["name"] for n in self.notebooks if n["error"]]


def write_pages(docs: Path, checkout: Path, runs: list[NotebookRun]) -> list[Any]:
    """Write every Markdown page (and lesson images) under ``docs``; return MkDocs' nav."""
    lessons = [
        Lesson(notebook_title(run.notebook, run.name), f"lessons/{run.name}.md", run.name)
        for run in runs
    ]
    pages = {lesson.stem: lesson.page for lesson in lessons}
    readme = (checkout / "README.md").read_text(encoding="utf-8")
    _write(docs / "index.md", home_page(readme, lessons))
    for run, lesson in zip(runs, lessons):
        markdown, images = lesson_page(publishable(run.notebook), lesson, pages)
        _write(docs / lesson.page, markdown)
        for name, body in images.items():
            (docs / "lessons" / name).parent.mkdir(parents=True, exist_ok=True)
            (docs / "lessons" / name).write_bytes(body)
        shutil.copyfile(run.path, docs / "lessons" / f"{run.name}.ipynb")
    reference = []
    for page, modules in public_modules(checkout / "src" / "dlnd").items():
        _write(docs / "reference" / f"{page}.md", reference_page(page, modules))
        reference.append({page: f"reference/{page}.md"})
    (docs / "assets").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STYLE, docs / "assets" / STYLE.name)
    lesson_nav = [{lesson.title: lesson.page} for lesson in lessons]
    return [{"Home": "index.md"}, {"Lessons": lesson_nav}, {"API reference": reference}]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def mkdocs_config(docs: Path, site: Path, source: Path, nav: list[Any]) -> dict[str, Any]:
    """The MkDocs configuration: Material with the reader's own fonts, links that work from
    disk (no directory URLs), the API reference read from ``source`` (the ``src`` folder).

    Material's ``offline`` plugin is not used: it loads a script from unpkg.com to make the
    search work from disk. Search works when the site is served (even from localhost)."""
    api = {"paths": [str(source)], "options": API_OPTIONS}
    return {
        "site_name": "dlnd",
        "site_description": "A hands-on deep-learning workbench: lessons, guide and API.",
        "docs_dir": str(docs),
        "site_dir": str(site),
        "use_directory_urls": False,
        "theme": {
            "name": "material",
            "font": False,  # the system's fonts: nothing is fetched from Google Fonts
            "features": ["content.code.copy", "navigation.top", "toc.follow"],
            "palette": {"primary": "indigo", "accent": "indigo"},
        },
        "extra_css": [f"assets/{STYLE.name}"],
        "extra": {"generator": False},
        "plugins": ["search", {"mkdocstrings": {"handlers": {"python": api}}}],
        "markdown_extensions": MARKDOWN_EXTENSIONS,
        "nav": nav,
        "validation": {"nav": {"omitted_files": "ignore"}},
    }


def render(config: dict[str, Any], workdir: Path) -> None:
    """Run MkDocs' build on ``config`` in this process."""
    import yaml
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    path = workdir / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    loaded = load_config(str(path))
    loaded.plugins.on_startup(command="build", dirty=False)
    try:
        build(loaded)
    finally:
        loaded.plugins.on_shutdown()


def check_out_folder(out: Path) -> None:
    """Refuse to replace a folder that holds anything but an earlier book."""
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FILE).exists():
        raise UserError(
            f"{out} is not empty and holds no earlier book ({REPORT_FILE}); give --out an "
            "empty or new folder, so that nothing else is overwritten."
        )


def require_docs_extra() -> None:
    try:
        import latex2mathml  # noqa: F401
        import material  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"dlnd book needs the docs extra ({err.name} is missing): pip install 'dlnd[docs]'."
        ) from None


def check_setup_cells(notebooks: list[Path]) -> None:
    """Refuse notebooks whose first cell is not the shared setup cell."""
    stale = [path.name for path in notebooks if setup_cell_differs(path)]
    if stale:
        raise UserError(
            f"The first cell of {', '.join(stale)} is not the shared setup cell; run "
            "'dlnd book --sync-notebooks' to rewrite it."
        )


def build_book(
    out: Path, quick: bool = False, jobs: int = 1, source: Path | None = None
) -> BookReport:
    """Execute every lesson notebook (``DLND_QUICK=1`` when ``quick``), write the pages and
    render the site into ``out``; return the report (also written to ``out/book.json``).

    A notebook that fails still gets its page (showing the error); the report names it.
    """
    out = Path(out).resolve()
    check_out_folder(out)
    require_docs_extra()
    checkout = find_checkout(source)
    notebooks = lesson_notebooks(checkout)
    check_setup_cells(notebooks)
    started = time.perf_counter()
    report = BookReport(quick=quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        work = Path(tmp)
        env = {**os.environ, "DLND_QUICK": "1" if quick else "0"}
        runs = execute_notebooks(notebooks, work / "notebooks", env, jobs)
        report.notebooks_s = time.perf_counter() - started
        report.notebooks = [
            {"name": r.name, "seconds": round(r.seconds, 2), "error": r.error} for r in runs
        ]
        rendering = time.perf_counter()
        nav = write_pages(work / "docs", checkout, runs)
        render(mkdocs_config(work / "docs", work / "site", checkout / "src", nav), work)
        report.render_s = time.perf_counter() - rendering
        report.pages = sum(1 for _ in (work / "site").rglob("*.html"))
        report.total_s = time.perf_counter() - started
        atomic_write_text(work / "site" / REPORT_FILE, json.dumps(vars(report), indent=2))
        if out.exists():
            shutil.rmtree(out)
        (work / "site").rename(out)
    return report
