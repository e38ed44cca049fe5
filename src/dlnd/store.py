"""Tensors and their metadata on disk, as safetensors + JSON: nothing is ever unpickled.

A run directory holds ``model.safetensors`` (the weights; its header carries the metadata
(recipe, config, epoch, metrics, data info, versions) as JSON, so the file is
self-describing and a reader never pairs weights with the wrong metadata), ``checkpoint.json``
(a readable copy of that metadata) and ``trainer_state.safetensors`` (everything ``--resume``
needs). Every file is written atomically.

This is the storage layer: it knows files, not models. Importing it does not import PyTorch
(the server reads headers without it); the functions that make tensors import it when called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text

if TYPE_CHECKING:
    import torch

MODEL_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
STATE_FILE = "trainer_state.safetensors"
_META_KEY = "dlnd"
# safetensors refuses headers over 100 MB; a larger length means a damaged file.
_MAX_HEADER_BYTES = 100_000_000


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write ``tensors`` and JSON ``metadata`` to one safetensors file, atomically."""
    from safetensors.torch import save_file

    owned = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    header = {_META_KEY: json.dumps(metadata, default=str)}
    atomic_write(Path(path), lambda tmp: save_file(owned, str(tmp), metadata=header))


def read_header(path: Path) -> tuple[dict[str, tuple[str, list[int]]], dict[str, Any]]:
    """The dtype and shape of every tensor in a safetensors file, and its dlnd metadata,
    without reading the tensors. A clear error if the file is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"No checkpoint at {path}; train one first with 'dlnd run RECIPE'.")
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len <= min(_MAX_HEADER_BYTES, path.stat().st_size - 8):
                raise ValueError("the header length is impossible")
            header = json.loads(f.read(header_len))
        metadata = json.loads(header.pop("__metadata__", {}).get(_META_KEY, "{}"))
        shapes = {name: (entry["dtype"], list(entry["shape"])) for name, entry in header.items()}
        if not isinstance(metadata, dict):
            raise ValueError("the metadata is not a JSON object")
    except (ValueError, OSError, KeyError, TypeError, AttributeError) as err:
        raise UserError(f"The checkpoint {path} is unreadable or corrupt ({err}).") from err
    return shapes, metadata


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`; a clear error if it is missing or corrupt."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _, metadata = read_header(path)
    try:
        tensors = load_file(str(path))
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
