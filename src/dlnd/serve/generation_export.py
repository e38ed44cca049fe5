"""Export a GAN run's generator for serving: ONNX (or TorchScript) plus a model card.

The exported graph is the generator alone: ``latent: (batch, latent_size)`` float32 ->
``images: (batch, channels, height, width)`` float32 in [-1, 1] (its tanh output). The card
says how to draw the latent vectors (``latent.distribution``: ``normal`` z ~ N(0, I) or
``uniform`` z ~ U(-1, 1)) and how to turn the output into pixels, p = round((x + 1) * 127.5)
clipped to 0..255, as :func:`dlnd.generative.models.to_uint8` does. The server draws z with
:func:`dlnd.generative.latent.seeded_latent` (NumPy), so a seed gives the images
``dlnd sample --seed`` gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlnd.errors import UserError
from dlnd.generative.latent import SEEDING
from dlnd.generative.models import GAN, draw_latent
from dlnd.io import atomic_write_text
from dlnd.serve.card import CARD_FILE, CARD_VERSION, file_facts, portable_config, utc_stamp
from dlnd.serve.export import (
    MODEL_FILES,
    TOLERANCE,
    export_versions,
    exported_outputs,
    write_onnx,
    write_torchscript,
)

LATENT_NAME, IMAGES_NAME = "latent", "images"
TASK = "image-generation"


def generator_info(meta: dict[str, Any]) -> dict[str, Any]:
    """The data info of a GAN checkpoint, checked to describe its generator."""
    info = meta.get("info") or {}
    shape = info.get("image_shape")
    if (
        info.get("task") != TASK
        or not isinstance(info.get("latent_size"), int)
        or not (isinstance(shape, list) and len(shape) == 3)
    ):
        raise UserError(
            f"The checkpoint of recipe {meta.get('recipe')!r} does not describe an image "
            "generator (task, latent_size, image_shape); export supports gan-mnist and dcgan runs."
        )
    return info


def sample_latents(generator: torch.nn.Module, batch: int, seed: int) -> torch.Tensor:
    """Latent vectors ``(batch, latent_size)`` from the generator's own distribution."""
    return draw_latent(
        batch,
        generator.latent_size,
        generator.latent_distribution,
        torch.Generator().manual_seed(seed),
    )


def export_generator(
    model: GAN,
    meta: dict[str, Any],
    fmt: str,
    out_dir: Path,
    name: str | None = None,
    final_metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/model.onnx`` (or ``model.torchscript.pt``) holding the generator of
    ``model`` and ``model_card.json``; return the card.

    The exported generator is run on 5 latent vectors (a batch size other than the traced
    one) and must match PyTorch within :data:`~dlnd.serve.export.TOLERANCE`.
    """
    if fmt not in MODEL_FILES:
        raise UserError(f"Unknown export format {fmt!r}; choose one of {', '.join(MODEL_FILES)}.")
    generator_info(meta)
    # eval: batch norm uses its running statistics and dropout is off, as in dlnd sample.
    generator = model.generator.eval().float().cpu()
    path = Path(out_dir) / MODEL_FILES[fmt]
    with torch.no_grad():
        if fmt == "onnx":
            write_onnx(generator, sample_latents(generator, 2, 0), path, LATENT_NAME, IMAGES_NAME)
        else:
            write_torchscript(generator, sample_latents(generator, 2, 0), path)
        check = sample_latents(generator, 5, seed=1)
        expected = generator(check).numpy()
    difference = float(np.abs(exported_outputs(fmt, path, check) - expected).max())
    if not difference <= TOLERANCE:
        raise RuntimeError(
            f"The exported {fmt} generator differs from PyTorch by {difference:.2e} "
            f"(> {TOLERANCE:g})."
        )
    card = generator_card(
        meta,
        name=name or meta["recipe"],
        fmt=fmt,
        path=path,
        distribution=generator.latent_distribution,
        max_abs_diff=difference,
        final_metrics=final_metrics,
        dataset=dataset,
    )
    atomic_write_text(Path(out_dir) / CARD_FILE, json.dumps(card, indent=2, default=float))
    return card


def generator_card(
    meta: dict[str, Any],
    *,
    name: str,
    fmt: str,
    path: Path,
    distribution: str,
    max_abs_diff: float,
    final_metrics: dict[str, float] | None,
    dataset: str | None,
) -> dict[str, Any]:
    """The JSON description of an exported generator (see the module docstring)."""
    info = meta["info"]
    channels, height, width = info["image_shape"]
    return {
        "card_version": CARD_VERSION,
        "name": name,
        "task": TASK,
        "recipe": meta["recipe"],
        "architecture": info.get("model"),
        "dataset": dataset,
        "format": fmt,
        **file_facts(path),
        "input": {
            "name": LATENT_NAME,
            "layout": "NC",
            "dtype": "float32",
            "latent_size": info["latent_size"],
            "distribution": distribution,
        },
        "output": {
            "name": IMAGES_NAME,
            "layout": "NCHW",
            "dtype": "float32",
            "range": [-1.0, 1.0],
            "channels": channels,
            "height": height,
            "width": width,
            "meaning": "images; pixels are round((x + 1) * 127.5) clipped to 0..255",
        },
        "seeding": (SEEDING),
        "metrics": {
            "final": final_metrics or {},
            "checkpoint": meta.get("metrics", {}),
            "epoch": meta.get("epoch"),
        },
        "config": portable_config(meta.get("config", {})),
        "versions": {"training": meta.get("versions", {}), "export": export_versions(fmt)},
        "verification": {
            "inputs": f"5 latent vectors from the {distribution} latent distribution",
            "max_abs_diff_vs_pytorch": max_abs_diff,
            "tolerance": TOLERANCE,
        },
        "exported": utc_stamp(),
    }
