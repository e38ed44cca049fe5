"""``dlnd book``: the lessons, the guide and the API reference as one static site."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dlnd.config import positive_int

# The builder (MkDocs, Jupyter kernels) is imported only when the command runs.


def cmd_book(args: argparse.Namespace) -> int:
    from dlnd.notebook.lessons import find_checkout, lesson_notebooks, sync_setup_cells

    if args.sync_notebooks:
        checkout = find_checkout(Path(args.source) if args.source else None)
        changed = sync_setup_cells(lesson_notebooks(checkout))
        for path in changed:
            print(f"rewrote the setup cell of {path}")
        print(f"{len(changed)} notebook(s) changed.")
        return 0
    from dlnd.book.build import build_book
    from dlnd.report import print_table

    source = Path(args.source) if args.source else None
    report = build_book(Path(args.out), quick=args.quick, jobs=args.jobs, source=source)
    rows = [
        [n["name"], f"{n['seconds']:.1f}", "ok" if not n["error"] else n["error"].splitlines()[0]]
        for n in report.notebooks
    ]
    print_table(["notebook", "seconds", "status"], rows)
    print(
        f"book: {Path(args.out) / 'index.html'} ({report.pages} pages) in {report.total_s:.1f} s "
        f"(notebooks {report.notebooks_s:.1f} s, rendering {report.render_s:.1f} s)"
    )
    if report.failed:
        print(f"dlnd: {len(report.failed)} notebook(s) failed: {', '.join(report.failed)}.")
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "book",
        help="build the lessons, the guide and the API reference as a static site",
        description="Run every notebook in notebooks/ once, then build a static site (MkDocs "
        "Material) with the README, the executed lessons and the API reference. The site "
        "needs no network to build or to read. Needs the docs extra: pip install 'dlnd[docs]'.",
    )
    p.add_argument("--out", default="site", help="folder for the site (default ./site)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="run the notebooks with their quick settings (DLND_QUICK=1), as the tests do",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="notebooks run at once (default: 2, or 1 on a single core)",
    )
    p.add_argument("--source", help="the checkout holding notebooks/ (default: found from here)")
    p.add_argument(
        "--sync-notebooks",
        action="store_true",
        help="rewrite the first (setup) cell of every notebook from dlnd.notebook.lessons and exit",
    )
    p.set_defaults(func=cmd_book)
