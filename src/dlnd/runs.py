"""Run directories: where every run writes its configuration, metrics, checkpoint and plots.

Layout of ``runs/<recipe>/<timestamp>/``::

    config.json      the resolved configuration (common flags + recipe options)
    metrics.jsonl    one JSON object per epoch
    final.json       final metrics, wall time, device, versions
    model.safetensors + checkpoint.json (+ trainer_state.safetensors for --resume)
    plots/*.png      learning curves and recipe-specific figures
    texts/*.txt      text a recipe wrote (generated samples, example exchanges)
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
from dlnd.report import figure_gallery, format_metric, html_page

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dlnd.recipes import Recipe

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
FINAL_FILE = "final.json"


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
        if not self.is_main:
            return
        payload = {"recipe": self.recipe.name, **self.cfg}
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.run_dir / CONFIG_FILE, json.dumps(payload, indent=2, default=str)
            )
        except OSError as err:
            raise UserError(
                f"Cannot write the run folder {self.run_dir} ({err.strerror or err}); "
                "give --out a folder you can write to."
            ) from err

    def log_epoch(self, metrics: dict[str, Any]) -> None:
        """Append one epoch's metrics to ``metrics.jsonl`` (flushed to disk at once)."""
        if self.is_main:
            with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(metrics) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.run_dir)

    def truncate_metrics(self, epochs: int) -> list[dict[str, Any]]:
        """Keep the first ``epochs`` lines of ``metrics.jsonl`` (on resume); return them."""
        rows = self.read_metrics()[:epochs]
        if self.is_main:
            atomic_write_text(
                self.run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows)
            )
        return rows

    def save_figure(self, figure: Figure, name: str) -> Path:
        """Save a matplotlib figure as ``plots/<name>.png`` and close it."""
        import matplotlib.pyplot as plt

        path = self.plots_dir / f"{name}.png"
        if self.is_main:
            self.plots_dir.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path

    def save_text(self, text: str, name: str) -> Path:
        """Save ``text`` as ``texts/<name>.txt``; the run page shows it."""
        path = self.run_dir / "texts" / f"{name}.txt"
        if self.is_main:
            atomic_write_text(path, text)
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
            atomic_write_text(self.run_dir / FINAL_FILE, json.dumps(final, indent=2, default=float))
            write_run_page(self.run_dir)
        return final


def new_run_dir(out: Path, recipe: str) -> Path:
    """A fresh ``out/<recipe>/<timestamp>`` directory, suffixed ``-2``, ``-3``... when runs
    start in the same second. Each name is claimed by ``mkdir`` itself, which fails if the
    folder exists, so two runs started at once never share a folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = Path(out) / recipe
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as err:
        raise UserError(
            f"Cannot create a run folder under {out} ({err.strerror or err}); give --out a "
            "folder you can write to."
        ) from err
    raise UserError(f"Too many runs of {recipe} started in one second under {out}.")


def run_order(path: Path) -> tuple[str, int]:
    """Sort key of a run folder ``DATE-TIME`` or ``DATE-TIME-N``: by time, then by N
    (so that ``...-10`` comes after ``...-2``)."""
    parts = path.name.split("-")
    if len(parts) == 3 and parts[2].isdigit():
        return f"{parts[0]}-{parts[1]}", int(parts[2])
    return path.name, 1


def latest_run_dir(out: Path, recipe: str) -> Path:
    """The newest run of ``recipe`` under ``out`` (for ``--resume`` without a path)."""
    candidates = [p for p in (Path(out) / recipe).glob("*") if (p / CONFIG_FILE).exists()]
    if not candidates:
        raise UserError(
            f"There is no earlier run of {recipe!r} under {out} to resume; "
            "start one without --resume, or pass --resume RUN_DIR."
        )
    return max(candidates, key=run_order)


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json``; a :class:`UserError` if it is missing or damaged."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{run_dir} is not a run directory of dlnd (no {CONFIG_FILE}).")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is damaged ({err}); this run cannot be continued.") from err
    if not isinstance(config, dict) or not isinstance(config.get("recipe"), str):
        raise UserError(f"{path} is damaged (no recipe name); this run cannot be continued.")
    return config


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _read_final(run_dir: Path) -> dict[str, Any] | None:
    try:
        final = json.loads((run_dir / FINAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return final if isinstance(final, dict) else None


def list_runs(out: Path) -> list[dict[str, Any]]:
    """Every finished or unfinished run under ``out``, oldest first."""
    rows = []
    for config_path in sorted(Path(out).glob(f"*/*/{CONFIG_FILE}")):
        run_dir = config_path.parent
        final = _read_final(run_dir)
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


def _table(values: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(format_metric(v))}</td></tr>"
        for k, v in values.items()
    )


def _texts(run_dir: Path) -> str:
    return "".join(
        f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>"
        f"<pre>{html.escape(p.read_text(encoding='utf-8'))}</pre>"
        for p in sorted((run_dir / "texts").glob("*.txt"))
    )


def write_run_page(run_dir: Path) -> Path:
    """Write ``index.html`` for one run: final metrics, plots, texts and configuration."""
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    final = json.loads((run_dir / FINAL_FILE).read_text())
    finished = f"Finished {final['finished']} in {final['wall_time_s']:.1f} s on {final['device']}."
    texts = _texts(run_dir)
    body = (
        f"<h1>{html.escape(config['recipe'])}</h1><p>{html.escape(finished)}</p>"
        f"<h2>Final metrics</h2><table>{_table(final['metrics'])}</table>"
        f"<h2>Plots</h2>{figure_gallery(run_dir / 'plots') or '<p>No plots.</p>'}"
        + (f"<h2>Texts</h2>{texts}" if texts else "")
        + f"<h2>Configuration</h2><table>{_table(config)}</table>"
    )
    path = run_dir / "index.html"
    atomic_write_text(path, html_page(f"dlnd run: {config['recipe']}", body))
    return path
