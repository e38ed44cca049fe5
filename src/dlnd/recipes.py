"""The recipe registry.

A recipe is data: a name, what it trains on and what it should reach, its own options, and
a ``run`` function that receives a :class:`dlnd.runs.RunContext` and returns its final
metrics. PyTorch recipes also give ``build_model`` so that a saved run can be rebuilt from
its checkpoint alone (``dlnd predict``, ``dlnd export``, ``dlnd serve``).

Recipe modules register themselves on import; :func:`all_recipes` imports the modules listed
in ``RECIPE_MODULES``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlnd.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from dlnd.runs import RunContext

# Modules whose import registers recipes, in the order `dlnd list` shows them. Users add
# their own with DLND_RECIPE_MODULES=package.module[,other.module].
RECIPE_MODULES = (
    "dlnd.scratch.recipes",
    "dlnd.scratch.recurrent_recipes",
    "dlnd.basics",
    "dlnd.vision.recipes",
)


@dataclass(frozen=True)
class Option:
    """A recipe-specific command-line flag, e.g. ``Option("--hidden-size", int, 128, "...")``."""

    flag: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Recipe:
    """Everything the command line needs to know about one trainable thing.

    ``defaults`` overrides the common flags (epochs, batch_size, lr) for this recipe;
    ``quick`` overrides them (and recipe options) under ``--quick`` and in the tour.
    ``in_tour`` says whether ``dlnd tour`` runs it (on embedded data, with ``quick``).
    """

    name: str
    summary: str
    dataset: str
    target: str
    run: Callable[[RunContext], dict[str, float]]
    options: tuple[Option, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    in_tour: bool = True
    build_model: Callable[[dict[str, Any], dict[str, Any]], nn.Module] | None = None


_REGISTRY: dict[str, Recipe] = {}
_loaded = False


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry (names must be unique)."""
    if recipe.name in _REGISTRY and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"recipe {recipe.name!r} is registered twice")
    _REGISTRY[recipe.name] = recipe
    return recipe


def all_recipes() -> dict[str, Recipe]:
    """Every registered recipe by name, importing the recipe modules on first use."""
    global _loaded
    if not _loaded:
        extra = [m for m in os.environ.get("DLND_RECIPE_MODULES", "").split(",") if m.strip()]
        for module in (*RECIPE_MODULES, *extra):
            try:
                importlib.import_module(module.strip())
            except ModuleNotFoundError as err:
                if err.name != module.strip():
                    raise
                raise UserError(
                    f"Recipe module {module!r} cannot be imported; check DLND_RECIPE_MODULES."
                ) from err
        _loaded = True
    return dict(_REGISTRY)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; a :class:`UserError` with suggestions if there is none."""
    recipes = all_recipes()
    if name in recipes:
        return recipes[name]
    close = difflib.get_close_matches(name, recipes, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UserError(f"Unknown recipe {name!r}.{hint} Run 'dlnd list' to see every recipe.")
