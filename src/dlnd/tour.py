"""``dlnd tour``: a quick run of every recipe on embedded data, and one page of results.

Each recipe runs with its ``quick`` settings on data that ships with dlnd or is generated
(never a download or ``$DLND_DATA``), into ``OUT/<recipe>/``. A failing recipe is reported
and the tour goes on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import html
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from dlnd.errors import UserError
from dlnd.io import atomic_write_text
from dlnd.launch import execute
from dlnd.recipes import all_recipes, resolve_config
from dlnd.report import figure_gallery, format_metric, html_page, metrics_summary, print_table


def tour_config(recipe: Any, out: Path) -> dict[str, Any]:
    return resolve_config(
        recipe, {"quick": True, "embedded": True, "out": str(out), "device": "cpu"}
    )


def run_tour(out: Path, only: list[str] | None = None) -> int:
    """Run the tour into ``out``; print a table and write ``out/index.html``."""
    recipes = [r for r in all_recipes().values() if r.in_tour]
    if only:
        unknown = sorted(set(only) - {r.name for r in recipes})
        if unknown:
            raise UserError(
                f"Not in the tour: {', '.join(unknown)}; 'dlnd list' shows the recipes."
            )
        recipes = [r for r in recipes if r.name in only]
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.time()
    for recipe in recipes:
        run_dir = out / recipe.name
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        print(f"\n=== {recipe.name}: {recipe.summary}", flush=True)
        t0 = time.time()
        try:
            final = execute(recipe, tour_config(recipe, out), run_dir=run_dir)
            results.append({"recipe": recipe, "metrics": final["metrics"], "ok": True})
        except Exception as err:  # the tour reports a broken recipe and goes on
            traceback.print_exc()
            results.append({"recipe": recipe, "metrics": {"error": str(err)}, "ok": False})
        results[-1]["seconds"] = time.time() - t0
    total = time.time() - started
    print()
    print_table(
        ["recipe", "status", "seconds", "final metrics"],
        [
            [
                r["recipe"].name,
                "ok" if r["ok"] else "FAILED",
                f"{r['seconds']:.1f}",
                metrics_summary(r["metrics"], most=4),
            ]
            for r in results
        ],
    )
    page = write_tour_page(out, results, total)
    print(f"\ntour finished in {total:.1f} s; open {page}")
    return 0 if all(r["ok"] for r in results) else 1


def write_tour_page(out: Path, results: list[dict[str, Any]], total: float) -> Path:
    """``out/index.html``: a results table, then every recipe's plots."""
    rows, sections = [], []
    for r in results:
        name = html.escape(r["recipe"].name)
        metrics = ", ".join(
            f"{html.escape(k)} = {html.escape(format_metric(v))}" for k, v in r["metrics"].items()
        )
        status = "ok" if r["ok"] else "<b>FAILED</b>"
        rows.append(
            f'<tr><td><a href="#{name}">{name}</a></td><td>{status}</td>'
            f"<td>{r['seconds']:.1f}</td><td>{metrics}</td></tr>"
        )
        plots = figure_gallery(out / r["recipe"].name / "plots", f"{r['recipe'].name}/plots/")
        sections.append(
            f'<section id="{name}"><h2>{name}</h2><p>{html.escape(r["recipe"].summary)} '
            f'<a href="{name}/index.html">run page</a></p>{plots}</section>'
        )
    body = f"""<h1>dlnd tour</h1><p>{len(results)} recipes on embedded data in {total:.0f} s.</p>
<table><tr><th>recipe</th><th>status</th><th>seconds</th><th>final metrics</th></tr>
{"".join(rows)}</table>
{"".join(sections)}"""
    path = out / "index.html"
    atomic_write_text(path, html_page("dlnd tour", body))
    return path
