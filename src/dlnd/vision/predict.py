"""Classify image files with a trained run: the code behind ``dlnd predict``.

The checkpoint's ``info["input"]`` (see :mod:`dlnd.vision.datasets`) says how the model was
fed; :func:`image_to_tensor` repeats exactly that for any picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from dlnd.data.images import unit_pixels
from dlnd.errors import UserError
from dlnd.vision.datasets import fit_image, read_image_file

FILES_PER_BATCH = 16


def scale_pixels(pixels: np.ndarray, invert: bool | str) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; ``invert`` True flips them, ``"auto"`` flips a
    mostly light image (dark drawing on white) to match light-on-dark training data."""
    return torch.from_numpy(unit_pixels(pixels, invert))


def image_to_tensor(image: Image.Image, info: dict[str, Any]) -> torch.Tensor:
    """A PIL image -> model input (1, C, H, W) float32 in [0, 1], as ``info["input"]`` says."""
    spec = info["input"]
    return scale_pixels(fit_image(image, spec), spec.get("invert", False)).unsqueeze(0)


def load_image(path: str | Path, info: dict[str, Any]) -> torch.Tensor:
    """An image file -> (1, C, H, W) float32; a UserError naming the file if it is unreadable."""
    spec = info["input"]
    return scale_pixels(read_image_file(Path(path), spec), spec.get("invert", False)).unsqueeze(0)


def top_k(
    model: nn.Module, images: torch.Tensor, classes: list[str], k: int
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each image (N, C, H, W): [[(class, prob), ...], ...]."""
    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(images).float(), dim=1)
    values, indices = probabilities.topk(min(k, len(classes)), dim=1)
    return [
        [(classes[i], float(p)) for p, i in zip(row_values, row_indices.tolist(), strict=True)]
        for row_values, row_indices in zip(values, indices, strict=True)
    ]


@dataclass
class FilePrediction:
    """The top classes of one file, or the reason it could not be classified."""

    path: str
    top: list[tuple[str, float]] | None = None
    error: str | None = None


def classify_files(
    model: nn.Module, info: dict[str, Any], paths: list[str], k: int
) -> list[FilePrediction]:
    """Top-k predictions for every readable file; unreadable ones get an ``error`` instead.

    Files go through the model :data:`FILES_PER_BATCH` at a time, which bounds the memory
    of a long list (an ImageNet network's activations take megabytes per image).
    """
    if info.get("task") != "image-classification":
        raise UserError(
            "This run is not an image classifier; 'dlnd predict' needs a run of "
            "mnist-mlp, mnist-cnn, fashion-mnist, cifar10-cnn or image-classifier."
        )
    results = []
    for start in range(0, len(paths), FILES_PER_BATCH):
        results += classify_batch(model, info, paths[start : start + FILES_PER_BATCH], k)
    return results


def classify_batch(
    model: nn.Module, info: dict[str, Any], paths: list[str], k: int
) -> list[FilePrediction]:
    """:func:`classify_files` for files that go through the model in one forward pass."""
    results, tensors, good = [], [], []
    for path in paths:
        try:
            tensors.append(load_image(path, info))
            good.append(len(results))
            results.append(FilePrediction(path))
        except UserError as err:
            results.append(FilePrediction(path, error=str(err)))
    if tensors:
        predictions = top_k(model, torch.cat(tensors), info["classes"], k)
        for index, top in zip(good, predictions, strict=True):
            results[index].top = top
    return results
