"""The ``dlnd`` command line: a thin layer over recipes, the data layer and the server.

Exit status: 0 success, 1 the run itself failed, 2 a user error (one sentence, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlnd.config import COMMON_DEFAULTS, COMMON_OPTIONS
from dlnd.errors import Interrupted, TrainingDiverged, UserError
from dlnd.launch import execute, run_recipe
from dlnd.recipes import Recipe, all_recipes, get_recipe, resolve_config
from dlnd.report import format_metric, metrics_summary, print_table

__all__ = ["build_parser", "execute", "main", "recipe_parser", "resolve_config", "run_recipe"]

# Modules that add their own subcommands through ``register(subparsers)``.
COMMAND_MODULES = (
    "dlnd.data.commands",
    "dlnd.vision.commands",
    "dlnd.serve.commands",
    "dlnd.book.commands",
    "dlnd.sample_command",
    "dlnd.sequence.chat_command",
)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one sentence and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # "--epoch" must not silently mean "--epochs"
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


def _add_option(group: Any, option: Any, default: Any) -> None:
    """One recipe or common option as an argparse flag whose help shows its default."""
    if isinstance(default, tuple | list):
        default = ",".join(map(str, default))
    help_text = option.help if default is None else f"{option.help} (default {default})"
    if option.type is bool:
        group.add_argument(option.flag, action=argparse.BooleanOptionalAction, help=help_text)
    else:
        metavar = option.dest.upper() if option.choices is None else None
        group.add_argument(
            option.flag, type=option.type, choices=option.choices, metavar=metavar, help=help_text
        )


def _add_common_flags(parser: argparse.ArgumentParser, recipe: Recipe) -> None:
    shown = {**COMMON_DEFAULTS, **recipe.defaults}
    common = parser.add_argument_group("common options")
    for option in COMMON_OPTIONS:
        _add_option(common, option, shown[option.dest])
    add = common.add_argument
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
        help="continue the latest (or the given) run of this recipe from its checkpoint; "
        "--epochs, --patience, --device and --data-dir may change, other flags may not",
    )


def _add_recipe_flags(parser: argparse.ArgumentParser, recipe: Recipe) -> None:
    if not recipe.options:
        return
    group = parser.add_argument_group(f"{recipe.name} options")
    for option in recipe.options:
        _add_option(group, option, recipe.defaults.get(option.dest, option.default))


def recipe_parser(recipe: Recipe) -> Parser:
    parser = Parser(
        prog=f"dlnd run {recipe.name}",
        description=f"{recipe.summary} Data: {recipe.dataset}. Target: {recipe.target}.",
        argument_default=None,
    )
    _add_common_flags(parser, recipe)
    _add_recipe_flags(parser, recipe)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    if args.recipe is None:
        print("usage: dlnd run RECIPE [options]   ('dlnd list' shows the recipes)")
        return 2
    recipe = get_recipe(args.recipe)
    given = vars(recipe_parser(recipe).parse_args(args.rest))
    final = execute(recipe, resolve_config(recipe, given), given=given)
    from dlnd import distributed

    if distributed.state().is_main:
        print_table(
            ["metric", "value"], [[k, format_metric(v)] for k, v in final["metrics"].items()]
        )
        print(f"wall time {final['wall_time_s']:.1f} s")
    distributed.shutdown()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = [[r.name, r.summary, r.dataset, r.target] for r in all_recipes().values()]
    print_table(["recipe", "what it does", "data set", "target"], rows)
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
            metrics_summary(r["metrics"], most=4),
        ]
        for r in found
    ]
    print_table(["recipe", "run directory", "status", "final metrics"], rows)
    return 0


def cmd_tour(args: argparse.Namespace) -> int:
    from dlnd.tour import run_tour

    return run_tour(Path(args.out), only=args.only)


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
    except Interrupted as err:
        print(f"dlnd: {err}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'dlnd list | head': the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("dlnd: interrupted.", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("dlnd: the run failed (see the traceback above).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
