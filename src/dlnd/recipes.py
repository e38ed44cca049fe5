"""The recipe registry.

A recipe is data: a name, what it trains on and what it should reach, its own options, and
a ``run`` function that receives a :class:`dlnd.runs.RunContext` and returns its final
metrics. PyTorch recipes also give ``build_model`` so that a saved run can be rebuilt from
its checkpoint alone (``dlnd predict``, ``dlnd export``, ``dlnd serve``).

Each recipe module names its recipes at module level (``SPIRALS = register(Recipe(...))``).
:func:`register` checks a recipe's defaults against its options, so a misspelt key or a
value of the wrong type fails when the module is imported, not in the middle of a run.
:func:`all_recipes` imports the modules listed in ``RECIPE_MODULES``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlnd.config import COMMON_DEFAULTS, COMMON_OPTIONS, Option, config_field_types
from dlnd.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from dlnd.runs import RunContext

__all__ = ["Option", "Recipe", "all_recipes", "get_recipe", "register", "resolve_config"]

# Modules whose import registers recipes, in the order `dlnd list` shows them. Users add
# their own with DLND_RECIPE_MODULES=package.module[,other.module].
RECIPE_MODULES = (
    "dlnd.scratch.recipes",
    "dlnd.scratch.recurrent_recipes",
    "dlnd.basics",
    "dlnd.vision.recipes",
    "dlnd.sequence.recipes",
    "dlnd.generative.recipes",
    "dlnd.sequence.text_recipes",
    "dlnd.pretrained.recipes",
)

FRAMEWORKS = ("pytorch", "numpy")


@dataclass(frozen=True)
class Recipe:
    """Everything the command line needs to know about one trainable thing.

    ``defaults`` overrides the common flags (epochs, batch_size, lr) and the loop's settings
    for this recipe; ``quick`` overrides them (and recipe options) under ``--quick`` and in
    the tour. ``in_tour`` says whether ``dlnd tour`` runs it (on embedded data, with
    ``quick``). ``framework`` is what it computes with: "pytorch" or "numpy".
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
    framework: str = "pytorch"

    @property
    def resumable(self) -> bool:
        """Whether ``--resume`` can continue a run: recipes that train a PyTorch model with
        the shared loop, which writes the resume state."""
        return self.build_model is not None

    def all_options(self) -> dict[str, Option]:
        """Every option this recipe takes by destination name: common ones, then its own."""
        return {option.dest: option for option in (*COMMON_OPTIONS, *self.options)}


_REGISTRY: dict[str, Recipe] = {}
_loaded = False


def check_recipe(recipe: Recipe) -> None:
    """Refuse a recipe whose defaults name an unknown setting or hold a wrong value."""
    if recipe.framework not in FRAMEWORKS:
        raise ValueError(f"recipe {recipe.name!r}: framework must be one of {FRAMEWORKS}")
    options = recipe.all_options()
    loop_settings = config_field_types()
    for source, values in (("defaults", recipe.defaults), ("quick", recipe.quick)):
        for key, value in values.items():
            where = f"recipe {recipe.name!r} {source}[{key!r}]"
            if key in options:
                try:
                    options[key].check(value)
                except ValueError as err:
                    raise ValueError(f"{where}: {err}") from None
            elif key in loop_settings:
                kind = loop_settings[key]
                fits = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
                if not (fits or (kind is float and isinstance(value, int))):
                    raise ValueError(f"{where} must be {kind.__name__}, got {value!r}")
            else:
                known = sorted({*options, *loop_settings})
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{where} is not an option of this recipe{hint}")


def register(recipe: Recipe) -> Recipe:
    """Check ``recipe`` (see :func:`check_recipe`) and add it to the registry."""
    if recipe.name in _REGISTRY and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"recipe {recipe.name!r} is registered twice")
    check_recipe(recipe)
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


def resolve_config(recipe: Recipe, explicit: dict[str, Any]) -> dict[str, Any]:
    """Common defaults < option defaults < recipe defaults < quick settings < explicit flags.

    ``explicit`` values are checked by their options (a :class:`UserError` names the flag);
    ``None`` means "not given".
    """
    options = recipe.all_options()
    given = {k: v for k, v in explicit.items() if v is not None}
    unknown = sorted(set(given) - set(options) - set(COMMON_DEFAULTS))
    if unknown:
        raise UserError(
            f"{recipe.name} has no option {', '.join(unknown)}; "
            f"see 'dlnd run {recipe.name} --help'."
        )
    for key, value in given.items():
        if key in options:
            try:
                given[key] = options[key].check(value)
            except ValueError as err:
                raise UserError(f"{err}; see 'dlnd run {recipe.name} --help'.") from None
    cfg = dict(COMMON_DEFAULTS)
    cfg.update({option.dest: option.default for option in recipe.options})
    cfg.update(recipe.defaults)
    if given.get("quick"):
        cfg.update(recipe.quick)
    cfg.update(given)
    return cfg
