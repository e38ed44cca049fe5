"""Checkpoints as safetensors + JSON: nothing is ever unpickled.

``model.safetensors`` holds the weights; its header carries the metadata (recipe, config,
epoch, metrics, data info, versions) as JSON, so the file is self-describing and a reader
never pairs weights with the wrong metadata. ``checkpoint.json`` is a readable copy of
that metadata. ``trainer_state.safetensors`` holds everything ``--resume`` needs (model,
optimizer, best weights, random-number state) in one file. Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text

MODEL_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
STATE_FILE = "trainer_state.safetensors"
_META_KEY = "dlnd"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write ``tensors`` and JSON ``metadata`` to one safetensors file, atomically."""
    owned = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {_META_KEY: json.dumps(metadata, default=str)}
    atomic_write(Path(path), lambda tmp: save_file(owned, str(tmp), metadata=header))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`; a clear error if it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"No checkpoint at {path}; train one first with 'dlnd run RECIPE'.")
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        metadata = json.loads(header.get("__metadata__", {}).get(_META_KEY, "{}"))
    except (SafetensorError, ValueError, OSError) as err:
        raise UserError(f"The checkpoint {path} is unreadable or corrupt ({err}).") from err
    return tensors, metadata


def save_model(run_dir: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` (weights + metadata) and its readable ``checkpoint.json``."""
    save_tensors(Path(run_dir) / MODEL_FILE, state_dict, meta)
    atomic_write_text(Path(run_dir) / META_FILE, json.dumps(meta, indent=2, default=str))


def load_model_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and metadata of the model saved in ``run_dir``."""
    return load_tensors(Path(run_dir) / MODEL_FILE)


def load_model(run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run from its checkpoint (in eval mode, on the CPU).

    The recipe named in the metadata builds the architecture from the saved config and data
    info; the weights must then match it exactly.
    """
    from dlnd.recipes import get_recipe

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run directory; 'dlnd runs' lists the runs.")
    state, meta = load_model_state(run_dir)
    recipe = get_recipe(meta.get("recipe", "?"))
    if recipe.build_model is None:
        raise UserError(f"Recipe {recipe.name!r} does not save a PyTorch model.")
    model = recipe.build_model(meta["config"], meta.get("info", {}))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(
            f"The weights in {run_dir} do not fit recipe {recipe.name!r}: {err}"
        ) from err
    return model.eval(), meta
