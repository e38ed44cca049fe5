"""The ``dlnd`` command line: a thin layer over recipes, the data layer and the server.

Exit status: 0 success, 1 the run itself failed, 2 a user error (one sentence, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlnd.errors import TrainingDiverged, UserError
from dlnd.recipes import Recipe, all_recipes, get_recipe

# Modules that add their own subcommands through ``register(subparsers)``.
COMMAND_MODULES = ("dlnd.data.commands", "dlnd.vision.commands", "dlnd.serve.commands")

# Defaults of the flags every recipe takes; a recipe's ``defaults`` and ``quick`` override them.
COMMON_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "seed": 0,
    "device": "auto",
    "data_dir": None,
    "out": "runs",
    "quick": False,
    "embedded": False,
    "resume": None,
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one sentence and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # "--epoch" must not silently mean "--epochs"
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            noun = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"expected a positive {noun}, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _add_common_flags(parser: argparse.ArgumentParser, recipe: Recipe) -> None:
    shown = {**COMMON_DEFAULTS, **recipe.defaults}
    common = parser.add_argument_group("common options")
    add = common.add_argument
    add("--epochs", type=_positive(int), help=f"training epochs (default {shown['epochs']})")
    add(
        "--batch-size",
        type=_positive(int),
        help=f"examples per step (default {shown['batch_size']})",
    )
    add("--lr", type=_positive(float), help=f"learning rate (default {shown['lr']})")
    add("--seed", type=int, help="random seed (default 0)")
    add("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    add("--data-dir", help="folder with the data set (default: $DLND_DATA, then the user cache)")
    add("--out", help="folder for run directories (default ./runs)")
    add("--quick", action="store_true", default=None, help="a short run with the quick settings")
    add(
        "--embedded",
        action="store_true",
        default=None,
        help="use the small data that ships with dlnd (no download, no data folder)",
    )
    add(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_DIR",
        help="continue the latest (or the given) run of this recipe from its checkpoint",
    )


def _add_recipe_flags(parser: argparse.ArgumentParser, recipe: Recipe) -> None:
    if not recipe.options:
        return
    group = parser.add_argument_group(f"{recipe.name} options")
    for option in recipe.options:
        default = recipe.defaults.get(option.dest, option.default)
        help_text = f"{option.help} (default {default})"
        if option.type is bool:
            group.add_argument(option.flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(
                option.flag, type=option.type, choices=option.choices, help=help_text
            )


def recipe_parser(recipe: Recipe) -> Parser:
    parser = Parser(
        prog=f"dlnd run {recipe.name}",
        description=f"{recipe.summary} Data: {recipe.dataset}. Target: {recipe.target}.",
        argument_default=None,
    )
    _add_common_flags(parser, recipe)
    _add_recipe_flags(parser, recipe)
    return parser


def resolve_config(recipe: Recipe, explicit: dict[str, Any]) -> dict[str, Any]:
    """Common defaults < option defaults < recipe defaults < quick settings < explicit flags."""
    cfg = dict(COMMON_DEFAULTS)
    cfg.update({option.dest: option.default for option in recipe.options})
    cfg.update(recipe.defaults)
    given = {k: v for k, v in explicit.items() if v is not None}
    if given.get("quick"):
        cfg.update(recipe.quick)
    cfg.update(given)
    return cfg


def _run_dir_for(recipe: Recipe, cfg: dict[str, Any]) -> tuple[Path, dict[str, Any], bool]:
    """The run directory (new, or the one to resume) and the configuration to use."""
    from dlnd import distributed, runs

    out = Path(cfg["out"])
    if cfg["resume"]:
        run_dir = (
            runs.latest_run_dir(out, recipe.name)
            if cfg["resume"] == "latest"
            else Path(cfg["resume"])
        )
        config_path = run_dir / "config.json"
        if not config_path.exists():
            raise UserError(
                f"{run_dir} is not a run directory of dlnd (no config.json); check --resume."
            )
        saved = json.loads(config_path.read_text())
        if saved.pop("recipe", recipe.name) != recipe.name:
            raise UserError(f"{run_dir} is a run of another recipe; resume it with that recipe.")
        return run_dir, {**saved, "resume": str(run_dir)}, True
    run_dir = runs.new_run_dir(out, recipe.name) if distributed.state().is_main else None
    return Path(distributed.broadcast_object(str(run_dir))), cfg, False


def execute(recipe: Recipe, cfg: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """Run ``recipe`` with a resolved ``cfg``; return what ``final.json`` holds."""
    from dlnd import distributed
    from dlnd.runs import RunContext
    from dlnd.trainer import resolve_device, seed_everything

    device = resolve_device(cfg["device"])
    dist = distributed.init_from_env(device.type)
    resumed = False
    if run_dir is None:
        run_dir, cfg, resumed = _run_dir_for(recipe, cfg)
    ctx = RunContext(recipe=recipe, cfg=cfg, run_dir=run_dir, is_main=dist.is_main, resumed=resumed)
    ctx.write_config()
    ctx.info(f"{recipe.name}: writing to {run_dir}")
    seed_everything(cfg["seed"])
    try:
        metrics = recipe.run(ctx)
    except UserError:
        # A run refused before its first epoch (missing data, bad option) leaves no folder.
        if dist.is_main and not resumed and not (run_dir / "metrics.jsonl").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    final = ctx.write_final(metrics, device=_device_label(recipe, device))
    distributed.barrier()
    return {**final, "run_dir": str(run_dir)}


def run_recipe(name: str, **options: Any) -> dict[str, Any]:
    """Train recipe ``name`` from Python, e.g. ``run_recipe("spirals", quick=True, epochs=5)``.

    ``options`` take the names of the command-line flags with underscores; returns what
    ``final.json`` holds (metrics, wall time, device, versions) plus ``run_dir``.
    """
    recipe = get_recipe(name)
    known = set(COMMON_DEFAULTS) | {o.dest for o in recipe.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"{name} has no option {', '.join(unknown)}; see 'dlnd run {name} --help'.")
    cfg = resolve_config(recipe, options)
    return execute(recipe, cfg)


def _device_label(recipe: Recipe, device: Any) -> str:
    return str(device) if recipe.build_model is not None else "cpu (NumPy)"


def cmd_run(args: argparse.Namespace) -> int:
    if args.recipe is None:
        print("usage: dlnd run RECIPE [options]   ('dlnd list' shows the recipes)")
        return 2
    recipe = get_recipe(args.recipe)
    explicit = vars(recipe_parser(recipe).parse_args(args.rest))
    cfg = resolve_config(recipe, explicit)
    final = execute(recipe, cfg)
    from dlnd import distributed

    if distributed.state().is_main:
        _print_table(["metric", "value"], [[k, _fmt(v)] for k, v in final["metrics"].items()])
        print(f"wall time {final['wall_time_s']:.1f} s")
    distributed.shutdown()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = [[r.name, r.summary, r.dataset, r.target] for r in all_recipes().values()]
    _print_table(["recipe", "what it does", "data set", "target"], rows)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from dlnd.runs import list_runs

    found = list_runs(Path(args.out))
    if not found:
        print(f"No runs under {args.out} yet; start one with 'dlnd run RECIPE'.")
        return 0
    rows = [
        [
            r["recipe"],
            r["run_dir"],
            r["status"],
            ", ".join(f"{k}={_fmt(v)}" for k, v in list(r["metrics"].items())[:4]),
        ]
        for r in found
    ]
    _print_table(["recipe", "run directory", "status", "final metrics"], rows)
    return 0


def cmd_tour(args: argparse.Namespace) -> int:
    from dlnd.tour import run_tour

    return run_tour(Path(args.out), only=args.only)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    width = shutil.get_terminal_size((120, 20)).columns
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        print(line[: max(width, 80)] if sys.stdout.isatty() else line)
        if i == 0:
            print("  ".join("-" * w for w in widths))


def build_parser() -> Parser:
    parser = Parser(
        prog="dlnd",
        description="dlnd: a hands-on deep-learning workbench. Start with 'dlnd tour'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    p = sub.add_parser("list", help="list every recipe with its data set and target")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser(
        "run",
        help="train a recipe ('dlnd run RECIPE --help' shows its options)",
        description="Train a recipe. 'dlnd run RECIPE --help' shows its options; "
        "'dlnd list' shows the recipes.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name (see 'dlnd list')")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("runs", help="list past runs with their final metrics")
    p.add_argument("--out", default="runs", help="folder of run directories (default ./runs)")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser(
        "tour",
        help="a quick run of every recipe on embedded data, with one results page",
        description="Run a quick version of every recipe on embedded data (no downloads) and "
        "write OUT/index.html with every recipe's plots.",
    )
    p.add_argument("--out", default="runs/tour", help="where to write (default runs/tour)")
    p.add_argument("--only", nargs="+", metavar="RECIPE", help="run only these recipes")
    p.set_defaults(func=cmd_tour)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"dlnd: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"dlnd: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. 'dlnd list | head': the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "dlnd: interrupted; the last checkpoint is kept (continue with --resume).",
            file=sys.stderr,
        )
        return 130
    except Exception:
        traceback.print_exc()
        print("dlnd: the run failed (see the traceback above).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
