"""The book: ``dlnd book --quick`` runs every notebook in notebooks/ once (that run is also the
test that no notebook fails), then the site is checked: every internal link resolves, no
page loads anything from another machine, and in a real browser the figures render.

Building needs the docs extra (``pip install -e '.[docs]'``); without it these tests are
skipped, and under ``CI=true`` they fail.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from helpers import run_dlnd
from test_serve_browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, require_browser

from dlnd.notebook.lessons import lesson_notebooks, setup_cell, sync_setup_cells

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = lesson_notebooks(ROOT)
# What one notebook may take under --quick before it counts as too slow for the tests.
NOTEBOOK_BUDGET_S = 120


def require_docs_extra() -> None:
    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "latex2mathml", "nbclient")
               if not _importable(m)]  # fmt: skip
    if missing:
        message = f"the book needs the docs extra (missing {missing}): pip install -e '.[docs]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> dict:
    """``dlnd book --quick`` built once for this module: ``{"site": Path, "report": dict}``."""
    require_docs_extra()
    site = tmp_path_factory.mktemp("book") / "site"
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    env = {"DLND_OFFLINE": "1", "XDG_CACHE_HOME": str(cache), "DLND_RECIPE_MODULES": ""}
    done = run_dlnd(
        "book", "--quick", "--out", str(site), "--source", str(ROOT), timeout=1500, **env
    )
    assert (site / "book.json").exists(), f"the book was not built:\n{done.stdout}\n{done.stderr}"
    report = json.loads((site / "book.json").read_text())
    print(done.stdout)  # the per-notebook times, shown with -s
    return {"site": site, "report": report, "status": done.returncode, "stdout": done.stdout}


# --- the notebooks ------------------------------------------------------------------------


def test_every_notebook_starts_with_the_shared_setup_cell():
    for path in NOTEBOOKS:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "code" and first.source == setup_cell(), (
            f"{path.name}: run 'dlnd book --sync-notebooks'"
        )


def test_sync_rewrites_an_outdated_setup_cell_and_adds_a_missing_one(tmp_path):
    outdated, bare = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext dlnd\nQUICK = True")]
    nbformat.write(notebook, outdated)
    notebook.cells = [nbformat.v4.new_markdown_cell("# A lesson")]
    nbformat.write(notebook, bare)
    assert sync_setup_cells([outdated, bare]) == [outdated, bare]
    for path, length in ((outdated, 1), (bare, 2)):
        cells = nbformat.read(path, as_version=4).cells
        assert cells[0].source == setup_cell() and len(cells) == length
    assert sync_setup_cells([outdated, bare]) == []


def test_the_setup_cell_installs_a_published_source():
    assert '%pip install --quiet "dlnd[serve] @ git+https://x/y"' in setup_cell(
        "dlnd[serve] @ git+https://x/y"
    )
    assert "raise ModuleNotFoundError" in setup_cell(None)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_runs_without_error(book, path):
    runs = {run["name"]: run for run in book["report"]["notebooks"]}
    assert path.stem in runs, f"{path.name} was not run by the book"
    assert runs[path.stem]["error"] is None, runs[path.stem]["error"]
    assert runs[path.stem]["seconds"] < NOTEBOOK_BUDGET_S


@pytest.mark.slow
def test_the_build_succeeds_and_reports_its_times(book):
    report = book["report"]
    assert book["status"] == 0, book["stdout"]
    assert report["quick"] is True and report["pages"] > len(NOTEBOOKS)
    assert 0 < report["notebooks_s"] < report["total_s"]


# --- the site -----------------------------------------------------------------------------


class Links(html.parser.HTMLParser):
    """Every link and resource of a page, and the ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.links.append((tag, name, value))


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.mark.slow
def test_every_lesson_has_its_page_its_figures_and_its_notebook(book):
    lessons = book["site"] / "lessons"
    for path in NOTEBOOKS:
        page = lessons / f"{path.stem}.html"
        assert page.exists(), f"no page for {path.name}"
        assert (lessons / path.name).read_bytes() == path.read_bytes()
        images = [url for tag, _, url in parse(page).links if tag == "img"]
        assert images, f"{page.name} shows no figure"


@pytest.mark.slow
def test_every_internal_link_resolves(book):
    site = book["site"]
    pages = sorted(page.resolve() for page in site.resolve().rglob("*.html"))
    ids = {page: parse(page).ids for page in pages}
    site = site.resolve()
    broken = []
    for page in pages:
        for tag, attribute, url in parse(page).links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue  # external: checked by the next test
            folder = site if parts.path.startswith("/") else page.parent  # 404.html: from the root
            target = (folder / unquote(parts.path).lstrip("/")).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: <{tag} {attribute}={url!r}>"
            anchor, page_ids = unquote(parts.fragment), ids.get(target)  # None: not a page
            if not target.exists():
                broken.append(where)
            elif anchor and page_ids is not None and anchor not in page_ids:
                broken.append(f"{where}: no such id in {target.name}")
    assert not broken, "\n".join(broken[:30])


@pytest.mark.slow
def test_no_page_loads_anything_from_another_machine(book):
    """Scripts, styles, images and frames come from the site itself (links to read
    elsewhere may point out)."""
    site = book["site"]
    remote = []
    for page in site.rglob("*.html"):
        for tag, attribute, url in parse(page).links:
            if tag != "a" and (urlsplit(url).scheme in ("http", "https") or url.startswith("//")):
                remote.append(f"{page.relative_to(site)}: <{tag} {attribute}={url}>")
    for css in site.rglob("*.css"):
        if "url(http" in css.read_text(encoding="utf-8").replace(" ", ""):
            remote.append(f"{css.relative_to(site)} loads a remote url()")
    assert not remote, "\n".join(remote[:30])


@pytest.fixture(scope="module")
def served_book(book) -> Iterator[str]:
    """The site on a local port (as a reader serving it with ``python -m http.server``)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(book["site"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


BROWSER_PAGES = [
    ("index.html", "home", False),
    ("lessons/01_pytorch_basics.html", "lesson-01", True),
    ("lessons/02_from_scratch_numpy.html", "lesson-02", True),
    ("lessons/03_convolutional_networks.html", "lesson-03", True),
    ("reference/dlnd.exercises.html", "api-exercises", False),
]


@pytest.mark.slow
def test_pages_render_their_figures_in_a_real_browser(book, served_book):
    sync_api = require_browser()
    OUTPUT.mkdir(exist_ok=True)
    outside, errors, seen = [], [], {}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})

            def only_local(route) -> None:  # record and refuse any request off this machine
                if route.request.url.startswith(served_book):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            for path, name, lesson in BROWSER_PAGES:
                page.goto(served_book + path)
                page.wait_for_load_state("networkidle")
                seen[path] = page.evaluate(
                    """() => ({
                        images: Array.from(document.images).map(i => [i.complete, i.naturalWidth]),
                        maths: document.querySelectorAll('math').length,
                        title: document.title,
                    })"""
                )
                page.screenshot(path=str(OUTPUT / f"book-{name}.png"), full_page=not lesson)
        finally:
            browser.close()
    assert outside == [] and errors == []
    for path, _, lesson in BROWSER_PAGES:
        images = seen[path]["images"]
        assert all(complete and width > 0 for complete, width in images), (path, images)
        if lesson:
            assert len(images) >= 2, (path, seen[path])
    assert seen["lessons/02_from_scratch_numpy.html"]["maths"] > 10


def test_book_refuses_to_overwrite_a_folder_that_is_not_a_book(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = run_dlnd("book", "--out", str(tmp_path), "--source", str(ROOT))
    assert done.returncode == 2
    assert "not empty and holds no earlier book" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
