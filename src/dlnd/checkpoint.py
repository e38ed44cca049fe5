"""A run's trained model, rebuilt from its checkpoint: what ``predict``, ``export`` and
``serve`` load.

The header of ``model.safetensors`` says which recipe trained the model, with which
configuration and data; the recipe's ``build_model`` makes the architecture and the weights
must then fit it exactly. A header is untrusted input (a file can be edited or damaged): it
is checked before anything is built, and the architecture is first built on PyTorch's
"meta" device, which allocates nothing, so that absurd sizes in a tampered header are
caught by comparing shapes with the stored tensors instead of by running out of memory.

The file format itself lives in :mod:`dlnd.store`; its functions are available here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlnd.errors import UserError
from dlnd.recipes import Recipe, get_recipe
from dlnd.store import (
    META_FILE,
    MODEL_FILE,
    STATE_FILE,
    load_model_state,
    load_tensors,
    read_header,
    save_model,
    save_tensors,
)

__all__ = [
    "META_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "check_model_meta",
    "load_model",
    "load_model_state",
    "load_tensors",
    "read_header",
    "save_model",
    "save_tensors",
]

# What building an architecture from a wrong header can raise.
_BUILD_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError)


def check_model_meta(meta: dict[str, Any], path: Path) -> Recipe:
    """The recipe a checkpoint's metadata names, once the metadata has the expected types."""
    if not isinstance(meta.get("recipe"), str):
        raise UserError(f"{path} names no recipe in its header; it was not written by dlnd.")
    for key in ("config", "info"):
        if not isinstance(meta.get(key, {}), dict):
            raise UserError(f"The header of {path} is damaged: {key!r} is not a JSON object.")
    if "config" not in meta:
        raise UserError(f"The header of {path} is damaged: it has no 'config'.")
    recipe = get_recipe(meta["recipe"])
    if recipe.build_model is None:
        raise UserError(f"Recipe {recipe.name!r} does not save a PyTorch model.")
    return recipe


def _build(recipe: Recipe, meta: dict[str, Any], path: Path, device: Any) -> Any:
    import torch

    try:
        with torch.device(device):
            return recipe.build_model(meta["config"], meta.get("info", {}))
    except _BUILD_ERRORS as err:
        raise UserError(
            f"The header of {path} does not describe a model that recipe {recipe.name!r} "
            f"can build ({type(err).__name__}: {err})."
        ) from err


def _check_shapes(skeleton: Any, stored: dict[str, tuple[str, list[int]]], path: Path) -> None:
    expected = {name: list(t.shape) for name, t in skeleton.state_dict().items()}
    shapes = {name: shape for name, (_, shape) in stored.items()}
    if expected != shapes:
        missing = sorted(set(expected) - set(shapes))[:3]
        unexpected = sorted(set(shapes) - set(expected))[:3]
        wrong = [n for n in expected if n in shapes and expected[n] != shapes[n]][:3]
        details = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {unexpected}" if unexpected else "",
                ", ".join(f"{n} is {shapes[n]} but should be {expected[n]}" for n in wrong),
            )
            if part
        )
        raise UserError(
            f"The weights in {path} do not fit the model its header describes: {details}."
        )


def load_model(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the trained model of a run from its checkpoint (in eval mode, on the CPU).

    Returns ``(model, metadata)``. Every problem with the files is a :class:`UserError`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run directory; 'dlnd runs' lists the runs.")
    path = run_dir / MODEL_FILE
    stored, meta = read_header(path)
    recipe = check_model_meta(meta, path)
    _check_shapes(_build(recipe, meta, path, "meta"), stored, path)
    model = _build(recipe, meta, path, "cpu")
    state, _ = load_tensors(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"The weights in {path} do not fit recipe {recipe.name!r}: {err}") from err
    return model.eval(), meta
