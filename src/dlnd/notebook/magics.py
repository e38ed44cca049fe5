"""IPython magics for dlnd, loaded with ``%load_ext dlnd``.

``%dlnd COMMAND ...`` runs any ``dlnd`` command inside the notebook's own process. For
``%dlnd run RECIPE ...`` the epochs show as notebook progress bars, the run's figures appear
below the cell, and the final metrics are returned (a dict, also knowing its ``run_dir``)::

    metrics = %dlnd run spirals --quick
    metrics["val_accuracy"], metrics.run_dir

Figures that dlnd's functions return (matplotlib ``Figure`` objects) show as images.

``%%dlnd_fit [options]`` trains the model a cell defines with the shared training loop (the
one every recipe uses: checkpoints, learning curves, early stopping, bf16), on the
``train_set`` and ``val_set`` already in the notebook::

    %%dlnd_fit --epochs 20 --lr 0.01
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3))
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from dlnd.errors import TrainingDiverged, UserError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from dlnd.recipes import Recipe

# The modules whose progress bars a command draws (the training loop, downloads).
PROGRESS_MODULES = ("dlnd.loop", "dlnd.data.fetch")


class RunResult(dict):
    """The final metrics of a run (a plain dict of name -> value), with the run's folder."""

    def __init__(self, final: dict[str, Any]):
        super().__init__(final["metrics"])
        self.run_dir = Path(final["run_dir"])
        self.wall_time_s: float = final["wall_time_s"]


def progress_bar_class() -> type:
    """tqdm's widget bar inside a Jupyter kernel that has ipywidgets, its text bar elsewhere."""
    from tqdm.std import tqdm as text_bar

    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None or "IPKernelApp" not in shell.config:
            return text_bar
        import ipywidgets  # noqa: F401  (tqdm's notebook bar is drawn with it)
        from tqdm.notebook import tqdm as widget_bar
    except ImportError:
        return text_bar
    return widget_bar


@contextmanager
def notebook_progress(modules: tuple[str, ...] = PROGRESS_MODULES) -> Iterator[None]:
    """While a command runs, draw the progress bars of ``modules`` (which call ``tqdm``)
    with :func:`progress_bar_class`; restore them afterwards."""
    import importlib

    bar = progress_bar_class()
    loaded = [importlib.import_module(name) for name in modules]
    saved = [module.tqdm for module in loaded]
    for module in loaded:
        module.tqdm = bar
    try:
        yield
    finally:
        for module, original in zip(loaded, saved):
            module.tqdm = original


def show_figures(plots_dir: Path) -> None:
    """Display a run's PNG figures below the cell, learning curves first."""
    from IPython.display import Image, display

    for path in sorted(plots_dir.glob("*.png"), key=lambda p: (p.stem != "learning_curves", p)):
        display(Image(filename=str(path)))


def report(err: Exception) -> None:
    """Print a user error or a diverged run as the command line does: one sentence."""
    print(f"dlnd: {'error: ' if isinstance(err, UserError) else ''}{err}", file=sys.stderr)


def run_command(argv: list[str]) -> RunResult | None:
    """``dlnd run RECIPE [options]`` in this process: train, show the figures, return the
    final metrics; a user error is printed as one sentence, as on the command line."""
    from dlnd.cli import recipe_parser
    from dlnd.launch import execute
    from dlnd.recipes import get_recipe, resolve_config

    try:
        recipe = get_recipe(argv[0])
        given = vars(recipe_parser(recipe).parse_args(argv[1:]))
        final = execute(recipe, resolve_config(recipe, given), given=given)
    except (UserError, TrainingDiverged) as err:
        report(err)
        return None
    except SystemExit:  # --help was shown, or argparse printed what is wrong with a flag
        return None
    show_figures(Path(final["run_dir"]) / "plots")
    return RunResult(final)


# The notebook variables %%dlnd_fit trains with: option -> (default name, what it holds).
CELL_VARIABLES = {
    "model": ("model", "the variable the cell assigns the nn.Module to"),
    "train": ("train_set", "the variable holding the training set"),
    "val": ("val_set", "the variable holding the validation set, or none"),
    "loss": ("none", "the variable holding the loss function, or none (cross-entropy)"),
}


def cell_recipe(objects: dict[str, Any] | None = None) -> Recipe:
    """A one-off recipe that trains ``objects["model"]`` with :func:`dlnd.trainer.fit` on
    ``objects["train"]`` (and ``objects["val"]``, ``objects["loss"]`` when not None); its
    options are the trainer's plus the names of those notebook variables."""
    from dlnd.config import text
    from dlnd.recipes import Option, Recipe
    from dlnd.trainer import TRAINER_OPTIONS, TrainConfig, fit

    def run(ctx: Any) -> dict[str, Any]:
        cfg = TrainConfig.from_cfg(ctx.cfg)
        model, train, val, loss = (objects[key] for key in CELL_VARIABLES)
        result = fit(ctx, model, train, val, cfg, loss_fn=loss)
        best = result.history[result.best_epoch - 1]
        kept = {k: v for k, v in best.items() if k.startswith(("train_", "val_"))}
        return {**kept, "best_epoch": result.best_epoch}

    names = tuple(
        Option(f"--{key}", text, default, what) for key, (default, what) in CELL_VARIABLES.items()
    )
    return Recipe(
        name="notebook",
        summary="A model defined in a notebook cell, trained with the shared loop.",
        dataset="the notebook's variables",
        target="-",
        run=run,
        options=(*names, *TRAINER_OPTIONS),
        in_tour=False,
    )


def notebook_objects(namespace: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """The objects the notebook variables named in ``cfg`` hold ("none" gives None)."""
    objects = {}
    for key in CELL_VARIABLES:
        name = cfg[key]
        if name == "none" and key in ("val", "loss"):
            objects[key] = None
        elif name in namespace:
            objects[key] = namespace[name]
        else:
            raise UserError(
                f"The notebook has no variable {name!r} (--{key}); define it, or name the "
                f"variable that holds it with --{key} NAME."
            )
    return objects


@magics_class
class DlndMagics(Magics):
    """``%dlnd`` and ``%%dlnd_fit``."""

    @line_magic
    def dlnd(self, line: str) -> RunResult | None:
        """Run a dlnd command here: ``%dlnd run spirals --quick``, ``%dlnd list``,
        ``%dlnd data list``... ``run`` returns the final metrics and shows the figures."""
        argv = shlex.split(line)
        if len(argv) >= 2 and argv[0] == "run" and not argv[1].startswith("-"):
            with notebook_progress():
                return run_command(argv[1:])
        from dlnd.cli import main

        try:
            with notebook_progress(("dlnd.data.fetch",)):
                main(argv)
        except SystemExit:  # argparse printed the help or what is wrong with the command
            pass
        return None

    @cell_magic
    def dlnd_fit(self, line: str, cell: str) -> RunResult | None:
        """Run the cell, then train the ``model`` it defines on ``train_set`` (validating on
        ``val_set``) with dlnd's training loop. The line takes ``dlnd run``'s options
        (``--epochs``, ``--lr``, ``--optimizer``, ``--bf16``, ``--out``...); ``--help``
        lists them."""
        from dlnd.cli import recipe_parser
        from dlnd.launch import execute, seed_everything
        from dlnd.recipes import resolve_config

        options = cell_recipe()  # its flags, before the cell has made a model
        parser = recipe_parser(options)
        parser.prog = "%%dlnd_fit"
        try:
            given = vars(parser.parse_args(shlex.split(line)))
            cfg = resolve_config(options, given)
            # the model the cell builds starts from the seed
            seed_everything(cfg["seed"], options.framework)
            self.shell.ex(self.shell.transform_cell(cell))
            recipe = cell_recipe(notebook_objects(self.shell.user_ns, cfg))
            with notebook_progress():
                final = execute(recipe, cfg, given=given)
        except (UserError, TrainingDiverged) as err:
            report(err)
            return None
        except SystemExit:
            return None
        show_figures(Path(final["run_dir"]) / "plots")
        return RunResult(final)


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes (for notebook display)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the magics (``%load_ext dlnd`` calls this through :mod:`dlnd`), and show
    matplotlib figures as images: dlnd's plotting functions return ``Figure`` objects made
    without pyplot, which a notebook would otherwise print as ``<Figure size ...>``."""
    shell.register_magics(DlndMagics)
    png = shell.display_formatter.formatters["image/png"]
    png.for_type_by_name("matplotlib.figure", "Figure", figure_png)
