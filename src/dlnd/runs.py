"""Run directories: where every run writes its configuration, metrics, checkpoint and plots.

Layout of ``runs/<recipe>/<timestamp>/``::

    config.json      the resolved configuration (common flags + recipe options)
    metrics.jsonl    one JSON object per epoch
    final.json       final metrics, wall time, device, versions
    model.safetensors + checkpoint.json (+ trainer_state.safetensors for --resume)
    plots/*.png      learning curves and recipe-specific figures
    index.html       a page that shows all of the above
"""

from __future__ import annotations

import html
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlnd.errors import UserError
from dlnd.io import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dlnd.recipes import Recipe


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide a run's numbers."""
    import numpy

    found = {"python": platform.python_version(), "numpy": numpy.__version__}
    from dlnd import __version__

    found["dlnd"] = __version__
    if "torch" in sys.modules:
        found["torch"] = sys.modules["torch"].__version__
    return found


@dataclass
class RunContext:
    """What a recipe's ``run`` function gets: its configuration and a place to write.

    ``cfg`` holds every resolved value (``epochs``, ``batch_size``, ``lr``, ``seed``,
    ``device``, ``data_dir``, ``quick``, ``embedded``, ``resume`` and the recipe's options).
    ``embedded`` means: use the small data that ships with dlnd or is generated, never a
    download or ``$DLND_DATA``. Only the main process (rank 0) writes files.
    """

    recipe: Recipe
    cfg: dict[str, Any]
    run_dir: Path
    is_main: bool = True
    resumed: bool = False
    started: float = field(default_factory=time.time)

    @property
    def plots_dir(self) -> Path:
        return self.run_dir / "plots"

    def info(self, message: str) -> None:
        """Print a progress line (main process only)."""
        if self.is_main:
            print(message, flush=True)

    def write_config(self) -> None:
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            payload = {"recipe": self.recipe.name, **self.cfg}
            atomic_write_text(
                self.run_dir / "config.json", json.dumps(payload, indent=2, default=str)
            )

    def log_epoch(self, metrics: dict[str, Any]) -> None:
        """Append one epoch's metrics to ``metrics.jsonl``."""
        if self.is_main:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(metrics) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.run_dir)

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the first ``epochs`` lines of ``metrics.jsonl`` (on resume)."""
        if self.is_main:
            rows = self.read_metrics()[:epochs]
            atomic_write_text(
                self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows)
            )

    def save_figure(self, figure: Figure, name: str) -> Path:
        """Save a matplotlib figure as ``plots/<name>.png`` and close it."""
        import matplotlib.pyplot as plt

        path = self.plots_dir / f"{name}.png"
        if self.is_main:
            self.plots_dir.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path

    def write_final(self, metrics: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
        """Write ``final.json`` and the run's ``index.html``; return what was written."""
        final = {
            "recipe": self.recipe.name,
            "metrics": metrics,
            "wall_time_s": round(time.time() - self.started, 3),
            "device": device,
            "versions": versions(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if self.is_main:
            atomic_write_text(
                self.run_dir / "final.json", json.dumps(final, indent=2, default=float)
            )
            write_run_page(self.run_dir)
        return final


def new_run_dir(out: Path, recipe: str) -> Path:
    """A fresh ``out/<recipe>/<timestamp>`` directory (suffixed if two start in one second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out / recipe / stamp
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{stamp}-{n}")
    path.mkdir(parents=True)
    return path


def latest_run_dir(out: Path, recipe: str) -> Path:
    """The newest run of ``recipe`` under ``out`` (for ``--resume`` without a path)."""
    candidates = sorted(p for p in (out / recipe).glob("*") if (p / "config.json").exists())
    if not candidates:
        raise UserError(
            f"There is no earlier run of {recipe!r} under {out} to resume; "
            "start one without --resume, or pass --resume RUN_DIR."
        )
    return candidates[-1]


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def list_runs(out: Path) -> list[dict[str, Any]]:
    """Every finished or unfinished run under ``out``, oldest first."""
    rows = []
    for config_path in sorted(out.glob("*/*/config.json")):
        run_dir = config_path.parent
        final_path = run_dir / "final.json"
        final = json.loads(final_path.read_text()) if final_path.exists() else None
        rows.append(
            {
                "run_dir": str(run_dir),
                "recipe": run_dir.parent.name,
                "status": "finished" if final else "unfinished",
                "metrics": (final or {}).get("metrics", {}),
                "wall_time_s": (final or {}).get("wall_time_s"),
            }
        )
    return rows


def format_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
img{max-width:100%}figure{display:inline-block;margin:1em;vertical-align:top;max-width:520px}"""


def write_run_page(run_dir: Path) -> Path:
    """Write ``index.html`` for one run: configuration, final metrics and every plot."""
    config = json.loads((run_dir / "config.json").read_text())
    final = json.loads((run_dir / "final.json").read_text())
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(format_metric(v))}</td></tr>"
        for k, v in final["metrics"].items()
    )
    config_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in config.items()
    )
    plots = "".join(
        f'<figure><img src="plots/{p.name}" alt="{html.escape(p.stem)}">'
        f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
        for p in sorted((run_dir / "plots").glob("*.png"))
    )
    finished = f"Finished {final['finished']} in {final['wall_time_s']:.1f} s on {final['device']}."
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>dlnd run: {html.escape(config["recipe"])}</title><style>{PAGE_STYLE}</style>
</head><body><h1>{html.escape(config["recipe"])}</h1><p>{html.escape(finished)}</p>
<h2>Final metrics</h2><table>{rows}</table>
<h2>Plots</h2>{plots or "<p>No plots.</p>"}
<h2>Configuration</h2><table>{config_rows}</table></body></html>
"""
    path = run_dir / "index.html"
    atomic_write_text(path, page)
    return path
