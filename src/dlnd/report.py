"""How results are shown: metric values, plain-text tables and HTML pages of figures.

One place for each, so that ``dlnd run``, ``dlnd runs``, ``dlnd list``, ``dlnd data``, the
tour and the run pages all print numbers and tables the same way.
"""

from __future__ import annotations

import html
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
img{max-width:100%}figure{display:inline-block;margin:1em;vertical-align:top;max-width:520px}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;max-width:900px}"""

FIGURE_SUFFIXES = (".png", ".gif")


def format_metric(value: Any) -> str:
    """Four significant digits for floats, ``str`` for everything else."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_summary(metrics: Mapping[str, Any], most: int | None = None) -> str:
    """``name=value, name=value`` for the first ``most`` metrics (all when ``None``)."""
    items = list(metrics.items())[:most]
    return ", ".join(f"{name}={format_metric(value)}" for name, value in items)


def table_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Left-aligned columns under a dashed rule, one string per line."""
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """:func:`table_lines` printed; lines cut to the terminal's width on a terminal (never in
    a pipe or a file)."""
    width = shutil.get_terminal_size((120, 20)).columns
    for line in table_lines(header, rows):
        print(line[: max(width, 80)] if sys.stdout.isatty() else line)


def figure_gallery(plots_dir: Path, href_prefix: str = "plots/") -> str:
    """HTML ``<figure>`` elements for every PNG (and GIF animation) in ``plots_dir``,
    captioned by file name."""
    return "".join(
        f'<figure><img src="{html.escape(href_prefix + p.name)}" alt="{html.escape(p.stem)}">'
        f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
        for p in sorted(Path(plots_dir).glob("*"))
        if p.suffix in FIGURE_SUFFIXES
    )


def html_page(title: str, body: str) -> str:
    """A complete, self-contained HTML page (no external assets)."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style>
</head><body>{body}</body></html>
"""
