"""Starting a run: its configuration, its run directory (new, or the one ``--resume``
continues, with the flags that may change), then the recipe.

``dlnd run``, ``dlnd tour`` and :func:`dlnd.run_recipe` all go through :func:`execute`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dlnd.config import resume_refusal
from dlnd.errors import Interrupted, UserError
from dlnd.recipes import Recipe, get_recipe, resolve_config
from dlnd.runs import RunContext, latest_run_dir, new_run_dir, read_config
from dlnd.store import MODEL_FILE, STATE_FILE

# Flags that say where things are rather than what the run is: never reported as changes.
PLACES = ("out", "resume")


def resumed_config(
    recipe: Recipe, cfg: dict[str, Any], given: dict[str, Any]
) -> tuple[Path, dict[str, Any], list[str]]:
    """The run directory ``--resume`` names and its saved configuration, updated with the
    ``given`` flags that may change on resume; also a line for each change made.

    A flag that cannot change (the learning rate, the model's size...) is refused.
    """
    if not recipe.resumable:
        raise UserError(
            f"{recipe.name} cannot be resumed: it keeps no training state to continue from "
            f"({'it trains in NumPy' if recipe.framework == 'numpy' else 'it trains nothing'}); "
            "run it again without --resume."
        )
    resume = cfg["resume"]
    run_dir = latest_run_dir(Path(cfg["out"]), recipe.name) if resume == "latest" else Path(resume)
    saved = read_config(run_dir)
    if saved.pop("recipe") != recipe.name:
        raise UserError(f"{run_dir} is a run of another recipe; resume it with that recipe.")
    options = recipe.all_options()
    changes = []
    for key in [k for k, v in given.items() if v is not None and k not in PLACES]:
        old, new = saved.get(key), cfg[key]
        if new == old:
            continue
        option = options.get(key)
        flag = "--" + key.replace("_", "-")
        if option is None or not option.resumable:
            raise UserError(
                f"{flag} cannot change on --resume (this run has {old!r}); start a new run "
                f"to use {new!r}."
            )
        refusal = resume_refusal(key, saved, new)
        if refusal:
            raise UserError(refusal)
        saved[key] = new
        changes.append(f"on resume: {flag} {old} -> {new}")
    return run_dir, {**saved, "resume": str(run_dir)}, changes


def seed_everything(seed: int, framework: str) -> None:
    """Seed Python's and NumPy's generators, and PyTorch's for PyTorch recipes (models are
    built after this)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if framework == "pytorch":
        import torch

        torch.manual_seed(seed)


class Placement:
    """Where a run computes: its device label, and whether this process is the main one.

    A PyTorch recipe joins the process group ``torchrun`` describes (if any); a NumPy
    recipe runs in one process and never imports PyTorch.
    """

    def __init__(self, recipe: Recipe, device: str):
        self.torch = recipe.framework == "pytorch"
        if not self.torch:
            self.label, self.is_main = "cpu (NumPy)", True
            return
        from dlnd import distributed

        resolved = distributed.resolve_device(device)
        self.label = str(resolved)
        self.is_main = distributed.init_from_env(resolved.type).is_main

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (a sync point)."""
        if not self.torch:
            return value
        from dlnd import distributed

        return distributed.broadcast_object(value)

    def wait_for_all(self) -> None:
        if self.torch:
            from dlnd import distributed

            distributed.barrier()


def _interrupted(recipe: Recipe, run_dir: Path, resumed: bool) -> Interrupted:
    """Say what a Ctrl-C leaves behind; a new run with nothing saved leaves no folder."""
    if recipe.resumable and (run_dir / STATE_FILE).exists():
        return Interrupted(
            f"interrupted; the last checkpoint in {run_dir} is kept (continue with --resume)."
        )
    if not resumed and not (run_dir / MODEL_FILE).exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        return Interrupted("interrupted before anything was saved; no run folder is left.")
    return Interrupted(f"interrupted; {run_dir} holds an unfinished run.")


def execute(
    recipe: Recipe,
    cfg: dict[str, Any],
    run_dir: Path | None = None,
    *,
    given: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``recipe`` with a resolved ``cfg``; return what ``final.json`` holds plus
    ``run_dir``. ``run_dir`` forces the folder (the tour); ``given`` are the flags the user
    gave, which ``--resume`` may apply to the continued run."""
    resumed = run_dir is None and bool(cfg.get("resume"))
    changes: list[str] = []
    if resumed:
        run_dir, cfg, changes = resumed_config(recipe, cfg, given or {})
    place = Placement(recipe, cfg["device"])
    for change in changes if place.is_main else ():
        print(change, flush=True)
    if run_dir is None:
        # rank 0 makes the folder; the others learn its name
        made = new_run_dir(Path(cfg["out"]), recipe.name) if place.is_main else None
        run_dir = Path(place.share(str(made)))
    ctx = RunContext(
        recipe=recipe, cfg=cfg, run_dir=run_dir, is_main=place.is_main, resumed=resumed
    )
    # From here on the folder exists: every way out says what it leaves behind.
    try:
        ctx.write_config()
        ctx.info(f"{recipe.name}: writing to {run_dir}")
        seed_everything(cfg["seed"], recipe.framework)
        metrics = recipe.run(ctx)
    except UserError:
        # A run refused before its first epoch (missing data, bad option) leaves no folder.
        if place.is_main and not resumed and not (run_dir / "metrics.jsonl").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        raise _interrupted(recipe, run_dir, resumed) from None
    final = ctx.write_final(metrics, device=place.label)
    place.wait_for_all()
    return {**final, "run_dir": str(run_dir)}


def run_recipe(name: str, **options: Any) -> dict[str, Any]:
    """Train recipe ``name`` from Python, e.g. ``run_recipe("spirals", quick=True, epochs=5)``.

    ``options`` take the names of the command-line flags with underscores and are checked
    like flags; returns what ``final.json`` holds (metrics, wall time, device, versions)
    plus ``run_dir``.
    """
    recipe = get_recipe(name)
    return execute(recipe, resolve_config(recipe, options), given=options)
