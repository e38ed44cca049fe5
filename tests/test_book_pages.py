"""The book's parts that need no build: Markdown pages from executed notebooks, the README's
links, the API reference's module list, and the Markdown extension (MathML, lists, roles)."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest

from dlnd.book.pages import (
    Lesson,
    book_link,
    lesson_page,
    notebook_title,
    public_modules,
    reference_page,
    rewrite_links,
)
from dlnd.notebook.execute import first_error, kernel_environment, publishable

markdown = pytest.importorskip("markdown")
pytest.importorskip("latex2mathml")

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def render(text: str) -> str:
    return markdown.markdown(text, extensions=["dlnd.book.extension", "pymdownx.superfences"])


def executed_notebook() -> nbformat.NotebookNode:
    """A small notebook as a kernel leaves it: setup cell, prints, a figure, a widget."""
    setup = nbformat.v4.new_code_cell("%load_ext dlnd")
    code = nbformat.v4.new_code_cell("train()")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="epoch 1\n"),
        nbformat.v4.new_output("stream", name="stdout", text="epoch 2\n"),
        nbformat.v4.new_output("stream", name="stderr", text="\r 10%\r 50%\r100%\r    \r"),
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": ""},
        ),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "{'accuracy': 0.9}"}),
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        setup,
        nbformat.v4.new_markdown_cell("# The `first` lesson\n\nSee [two](02_next.ipynb)."),
        code,
    ]
    notebook.metadata["widgets"] = {"state": {}}
    return notebook


def test_publishable_drops_widgets_and_keeps_what_a_terminal_would_show():
    outputs = publishable(executed_notebook()).cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream", "display_data", "execute_result"]
    assert outputs[0].text == "epoch 1\nepoch 2\n"  # two prints joined; the cleared bar gone


def test_a_lesson_page_has_title_download_folded_setup_code_outputs_and_figures():
    lesson = Lesson("The first lesson", "lessons/01_first.md", "01_first")
    lessons = {"01_first": "lessons/01_first.md", "02_next": "lessons/02_next.md"}
    page, images = lesson_page(publishable(executed_notebook()), lesson, lessons)
    assert page.startswith("# The `first` lesson")
    assert "[two](02_next.md)" in page
    assert "[Download the notebook](01_first.ipynb)" in page
    folded = '??? note "The setup cell (the same in every lesson)"\n    ``` { .python'
    assert folded in page and "\n    %load_ext dlnd\n" in page
    assert "{ .python .nb-input }\ntrain()" in page
    assert "{ .text .nb-output }\nepoch 1\nepoch 2\n" in page
    assert list(images) == ["01_first_files/cell2_1.png"]
    assert images["01_first_files/cell2_1.png"].startswith(b"\x89PNG")
    assert "![figure](01_first_files/cell2_1.png)" in page


def test_notebook_title_drops_code_marks():
    assert notebook_title(executed_notebook(), "fallback") == "The first lesson"
    assert notebook_title(nbformat.v4.new_notebook(), "fallback") == "fallback"


def test_first_error_names_the_cell_and_strips_colours():
    notebook = executed_notebook()
    notebook.cells[2].outputs.append(
        nbformat.v4.new_output(
            "error", ename="ValueError", evalue="bad", traceback=["\x1b[31mValueError\x1b[0m: bad"]
        )
    )
    assert first_error(notebook) == "cell 3: ValueError: bad\nValueError: bad"
    assert first_error(executed_notebook()) is None


def test_kernels_show_figures_inline_and_share_the_cores():
    env = kernel_environment({"MPLBACKEND": "Agg", "PATH": "/bin"}, jobs=2)
    assert "MPLBACKEND" not in env and env["PATH"] == "/bin" and int(env["OMP_NUM_THREADS"]) >= 1
    assert "OMP_NUM_THREADS" not in kernel_environment({}, jobs=1)


def test_readme_links_point_into_the_book_or_become_text():
    link = book_link({"01_basics": "lessons/01_basics.md"}, "")
    text = (
        "[lesson](notebooks/01_basics.ipynb#top) [web](https://example.org) [here](#data) "
        "[licence](LICENSE) ![logo](logo.png)"
    )
    assert rewrite_links(text, link) == (
        "[lesson](lessons/01_basics.md#top) [web](https://example.org) [here](#data) "
        "licence ![logo](logo.png)"
    )


def test_every_public_module_gets_a_reference_page_including_new_packages(tmp_path):
    package = tmp_path / "dlnd"
    for name in ("__init__.py", "__main__.py", "config.py", "_private.py",
                 "scratch/__init__.py", "scratch/mlp.py", "sequence/__init__.py",
                 "sequence/lstm.py", "sequence/_cells.py"):  # fmt: skip
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text('"""x"""\n')
    assert public_modules(package) == {
        "dlnd": ["dlnd", "dlnd.config"],
        "dlnd.scratch": ["dlnd.scratch", "dlnd.scratch.mlp"],
        "dlnd.sequence": ["dlnd.sequence", "dlnd.sequence.lstm"],
    }
    page = reference_page("dlnd.sequence", ["dlnd.sequence", "dlnd.sequence.lstm"])
    assert page.count("::: ") == 2 and "::: dlnd.sequence.lstm" in page


def test_the_real_package_is_documented_module_by_module():
    pages = public_modules(Path(__file__).resolve().parents[1] / "src" / "dlnd")
    documented = {module for modules in pages.values() for module in modules}
    assert {"dlnd.trainer", "dlnd.exercises.core", "dlnd.notebook.magics"} <= documented
    assert not any(part.startswith("_") for m in documented for part in m.split("."))


# --- the Markdown extension ----------------------------------------------------------------


def test_formulas_become_mathml_and_code_is_left_alone():
    html = render("Inline $e^{z_k}$ here.\n\n$$\n\\frac{a}{b}\n$$\n\n`$x$` and a price of $5.")
    assert html.count("<math") == 2 and "<mfrac>" in html
    assert '<div class="math-display"><math' in html and "<p><div" not in html
    assert "<code>$x$</code>" in html and "price of $5." in html
    fenced = render("```python\ncost = '$a$'\n```")
    assert "<math" not in fenced and "$a$" in fenced


def test_a_list_right_under_a_paragraph_is_a_list():
    html = render("In this lesson you will\n1. build\n2. train\n\nText\n- a\n- b")
    assert html.count("<li>") == 4 and "<ol>" in html and "<ul>" in html


def test_sphinx_roles_become_code():
    html = render("See :func:`dlnd.trainer.fit` and :class:`~dlnd.loop.Task`.")
    assert html == ("<p>See <code>dlnd.trainer.fit</code> and <code>dlnd.loop.Task</code>.</p>")
