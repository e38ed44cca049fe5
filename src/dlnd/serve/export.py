"""Export a trained model for deployment: ONNX or TorchScript, plus a JSON model card.

The model card (``model_card.json``) is everything a server or a reader needs besides the
weights: the task, the class names, the input it takes and how to prepare it, the metrics
the run reached, the library versions, and how closely the exported model reproduces the
PyTorch one. ``dlnd serve`` loads a folder holding ``model.onnx`` + ``model_card.json``.

Image classifiers take ``pixels: (batch, channels, height, width)`` float32 in [0, 1]
(normalisation happens inside the model) and return ``logits: (batch, classes)``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlnd import __version__
from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text
from dlnd.serve.card import (
    CARD_FILE,
    CARD_VERSION,
    file_facts,
    portable_config,
    utc_stamp,
)
from dlnd.serve.extras import import_extra

__all__ = ["CARD_FILE", "CARD_VERSION", "TOLERANCE", "export_model"]

MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"
# Largest difference between exported and PyTorch logits we accept (float32 round-off).
TOLERANCE = 1e-4


def image_classifier_info(meta: dict[str, Any]) -> dict[str, Any]:
    """The data info of an image-classifier checkpoint, checked to describe its input."""
    info = meta.get("info") or {}
    size = info.get("input") or {}
    if (
        info.get("task") != "image-classification"
        or not all(isinstance(size.get(key), int) for key in ("channels", "height", "width"))
        or not info.get("classes")
    ):
        raise UserError(
            f"The checkpoint of recipe {meta.get('recipe')!r} does not describe an image "
            "classifier (task, classes, input channels/height/width); export supports the "
            "image-classification recipes (see 'dlnd list')."
        )
    return info


def sample_inputs(input_spec: dict[str, Any], batch: int, seed: int = 0) -> torch.Tensor:
    """Random pixels ``(batch, channels, height, width)`` in [0, 1] for tracing and checks."""
    shape = (batch, input_spec["channels"], input_spec["height"], input_spec["width"])
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def write_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str = INPUT_NAME,
    output_name: str = OUTPUT_NAME,
) -> None:
    """Export ``model`` to ONNX with a free batch dimension (torch.export-based exporter)."""
    import_extra("onnxscript")  # the exporter's dependency; missing -> how to install it
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )
    atomic_write(path, lambda tmp: program.save(str(tmp), external_data=False))


@contextlib.contextmanager
def torchscript_quietly() -> Iterator[None]:
    """TorchScript is deprecated upstream (ONNX is dlnd's default format); when asked for
    it anyway, its deprecation warnings would only repeat that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        yield


def write_torchscript(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """Trace ``model`` into TorchScript (loadable with ``torch.jit.load``, no dlnd needed)."""
    with torchscript_quietly():
        traced = torch.jit.trace(model, example)
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def exported_outputs(fmt: str, path: Path, x: torch.Tensor) -> np.ndarray:
    """Run the exported file on ``x: (batch, ...)``; returns its first output ``(batch, ...)``."""
    if fmt == "onnx":
        from dlnd.serve.runtime import OnnxModel

        return OnnxModel(path)(x.numpy())
    with torch.no_grad(), torchscript_quietly():
        return torch.jit.load(str(path)).eval()(x).numpy()


def export_model(
    model: torch.nn.Module,
    meta: dict[str, Any],
    fmt: str,
    out_dir: Path,
    name: str | None = None,
    final_metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/model.onnx`` (or ``model.torchscript.pt``) and ``model_card.json``;
    return the card.

    The exported model is run on random inputs (a batch size other than the traced one)
    and must match PyTorch within :data:`TOLERANCE`.
    """
    if fmt not in MODEL_FILES:
        raise UserError(f"Unknown export format {fmt!r}; choose one of {', '.join(MODEL_FILES)}.")
    info = image_classifier_info(meta)
    model = model.eval().float().cpu()
    path = Path(out_dir) / MODEL_FILES[fmt]
    write = write_onnx if fmt == "onnx" else write_torchscript
    with torch.no_grad():
        write(model, sample_inputs(info["input"], 2), path)
        check = sample_inputs(info["input"], 5, seed=1)
        expected = model(check).numpy()
    difference = float(np.abs(exported_outputs(fmt, path, check) - expected).max())
    if not difference <= TOLERANCE:
        raise RuntimeError(
            f"The exported {fmt} model differs from PyTorch by {difference:.2e} (> {TOLERANCE:g})."
        )
    card = model_card(
        meta,
        name=name or meta["recipe"],
        fmt=fmt,
        path=path,
        max_abs_diff=difference,
        final_metrics=final_metrics,
        dataset=dataset,
    )
    atomic_write_text(Path(out_dir) / CARD_FILE, json.dumps(card, indent=2, default=float))
    return card


def model_card(
    meta: dict[str, Any],
    *,
    name: str,
    fmt: str,
    path: Path,
    max_abs_diff: float,
    final_metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The JSON description of an exported image classifier (see the module docstring)."""
    info = meta["info"]
    return {
        "card_version": CARD_VERSION,
        "name": name,
        "task": info["task"],
        "recipe": meta["recipe"],
        "architecture": info.get("model"),
        "dataset": dataset,
        "format": fmt,
        **file_facts(path),
        "classes": list(info["classes"]),
        "input": {
            "name": INPUT_NAME,
            "layout": "NCHW",
            "dtype": "float32",
            "range": [0.0, 1.0],
            **info["input"],
        },
        "output": {
            "name": OUTPUT_NAME,
            "layout": "NC",
            "dtype": "float32",
            "meaning": "logits; softmax over the last axis gives class probabilities",
        },
        "preprocessing": (
            "Convert the image to colour mode input.color, fit it to input.height x "
            "input.width (input.resize; a center-crop covers input.crop_fraction of the "
            "shorter side when given; resampled with input.resample, default bilinear), scale "
            "pixels to [0, 1] (and use 1 - x if input.invert); the mean/std normalisation "
            "happens inside the model."
        ),
        "metrics": {
            "final": final_metrics or {},
            "checkpoint": meta.get("metrics", {}),
            "epoch": meta.get("epoch"),
        },
        "config": portable_config(meta.get("config", {})),
        "versions": {"training": meta.get("versions", {}), "export": export_versions(fmt)},
        "verification": {
            "inputs": "5 random images, uniform in [0, 1]",
            "max_abs_diff_vs_pytorch": max_abs_diff,
            "tolerance": TOLERANCE,
        },
        "exported": utc_stamp(),
    }


def export_versions(fmt: str) -> dict[str, str]:
    """Versions of the libraries that wrote the exported file."""
    found = {"dlnd": __version__, "torch": torch.__version__}
    if fmt == "onnx":
        found["onnx"] = import_extra("onnx").__version__
    return found


def export_pretrained(
    backbone_name: str, fmt: str = "onnx", out: Path | None = None, name: str | None = None
) -> Path:
    """Export an ImageNet backbone (``dlnd export pretrained:NAME``) as an image classifier of
    the 1000 ImageNet classes; returns the folder written (default ``./NAME-FORMAT``)."""
    from dlnd.pretrained import classifier_info, get_backbone_spec, load_backbone

    spec = get_backbone_spec(backbone_name)
    backbone = load_backbone(backbone_name)
    meta = {
        "recipe": None,
        "info": classifier_info(backbone),
        "config": {"backbone": backbone_name, "weights": spec.weights_source},
    }
    out_dir = Path(out) if out is not None else Path(f"{backbone_name}-{fmt}")
    export_model(backbone, meta, fmt, out_dir, name=name or backbone_name, dataset="imagenet")
    return out_dir
