"""The lesson notebooks (``notebooks/*.ipynb`` in a checkout) and the first cell they share.

Every lesson starts with the same setup cell: it installs dlnd where it is missing (a fresh
machine, a hosted notebook service), loads the magics (``%load_ext dlnd``) and sets the three
settings the lesson's runs use:

- ``QUICK``: short runs (the default; ``DLND_QUICK=0`` gives the recipes' full settings);
- ``REAL_DATA``: the real data sets through dlnd's catalogue (``$DLND_DATA``, the user cache,
  or a checksummed download) instead of the small embedded ones; on when ``$DLND_DATA`` is set;
- ``FLAGS``: the same two choices as ``dlnd run`` flags, for ``%dlnd run RECIPE $FLAGS``.

:data:`INSTALL_SOURCE` is the one place that says where dlnd is installed from;
:func:`setup_cell` writes the cell from it and ``dlnd book --sync-notebooks`` puts that cell
at the top of every notebook (a test keeps them in step).
"""

from __future__ import annotations

from pathlib import Path

from dlnd.errors import UserError

# What a notebook outside a checkout installs: a pip requirement with the extras the lessons
# use, e.g. "dlnd[serve]" once on PyPI or "dlnd[serve] @ git+https://HOST/OWNER/dlnd". None
# until the project is published: such a notebook then says how to install dlnd instead.
# Inside a checkout, the checkout itself is installed.
INSTALL_SOURCE: str | None = None

NOTEBOOKS_FOLDER = "notebooks"

_INSTALL_FROM_SOURCE = """        %pip install --quiet "{source}"
"""
_UNPUBLISHED = """        raise ModuleNotFoundError(
            "dlnd is not installed and has no published source yet: open this "
            "notebook in a checkout of dlnd, or pip install one (see its README)."
        )
"""
_SETUP_CELL = """\
# Setup (the same in every lesson): install dlnd if it is missing, load its
# notebook magics, and choose how long and on what data the runs below train.
import importlib.util
import os

if importlib.util.find_spec("dlnd") is None:  # a fresh machine or a hosted service
    if os.path.exists("../pyproject.toml"):  # this notebook is in a checkout of dlnd
        %pip install --quiet "..[serve]"
    else:
{otherwise}%load_ext dlnd

QUICK = os.environ.get("DLND_QUICK", "1") != "0"  # False: the full settings
REAL_DATA = bool(os.environ.get("DLND_DATA"))  # True: the real data sets
FLAGS = ("--quick " if QUICK else "") + ("" if REAL_DATA else "--embedded")"""


def setup_cell(source: str | None = INSTALL_SOURCE) -> str:
    """The source of the setup cell for the install ``source`` (a pip requirement or None)."""
    otherwise = _UNPUBLISHED if source is None else _INSTALL_FROM_SOURCE.format(source=source)
    return _SETUP_CELL.format(otherwise=otherwise)


def find_checkout(start: Path | None = None) -> Path:
    """The checkout of dlnd holding the notebooks: ``start`` or a folder above it with
    ``pyproject.toml``, ``README.md`` and ``notebooks/`` (default: the current folder, then
    the checkout this package was installed from in editable mode)."""
    candidates = [Path(start)] if start else [Path.cwd(), Path(__file__).resolve().parents[3]]
    for candidate in candidates:
        for folder in (candidate.resolve(), *candidate.resolve().parents):
            if (
                all((folder / name).exists() for name in ("pyproject.toml", "README.md"))
                and (folder / NOTEBOOKS_FOLDER).is_dir()
            ):
                return folder
    where = start or Path.cwd()
    raise UserError(
        f"No checkout of dlnd (pyproject.toml, README.md and {NOTEBOOKS_FOLDER}/) at or above "
        f"{where}; run this inside a checkout or pass --source DIR."
    )


def lesson_notebooks(checkout: Path) -> list[Path]:
    """Every lesson notebook of ``checkout``, in curriculum order (by file name)."""
    return sorted((checkout / NOTEBOOKS_FOLDER).glob("*.ipynb"))


def setup_cell_differs(path: Path) -> bool:
    """Whether ``path``'s first cell is not the current :func:`setup_cell`."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    return not cells or cells[0].cell_type != "code" or cells[0].source != setup_cell()


def sync_setup_cells(paths: list[Path]) -> list[Path]:
    """Make :func:`setup_cell` the first cell of each notebook (replacing an outdated setup
    cell, or inserting one); return the notebooks that changed."""
    import nbformat

    from dlnd.io import atomic_write_text

    changed = []
    for path in paths:
        if not setup_cell_differs(path):
            continue
        notebook = nbformat.read(path, as_version=4)
        first = notebook.cells[0] if notebook.cells else None
        if first is not None and first.cell_type == "code" and "%load_ext dlnd" in first.source:
            first.source = setup_cell()
        else:
            notebook.cells.insert(0, nbformat.v4.new_code_cell(setup_cell()))
        atomic_write_text(path, nbformat.writes(notebook) + "\n")
        changed.append(path)
    return changed
