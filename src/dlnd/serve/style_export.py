"""Export a style-transfer run for serving: its artwork and its settings, not a network.

Style transfer optimises the pixels of each new photo with the gradients of an ImageNet
backbone, so it cannot run in ONNX Runtime: the served model is PyTorch's backbone (loaded
from dlnd's backbone registry when the server starts) with the run's artwork
(``style.png``) and settings (backbone, smoothing, style and content weights, optimizer).
``dlnd export STYLE_RUN`` writes them as a folder the server loads like any other, with
``"format": "pytorch"`` in its card; ``dlnd serve STYLE_RUN`` exports on the fly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from torch import nn

from dlnd import __version__
from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text
from dlnd.serve.card import CARD_FILE, CARD_VERSION, file_facts, portable_config, utc_stamp

TASK = "style-transfer"
FORMAT = "pytorch"
STYLE_FILE = "style.png"
EMBEDDED_STYLE = "embedded arcs"  # what a run on the embedded pictures names its artwork
LONGEST_STYLE_SIDE = 512  # the artwork kept in the export; requests are smaller


def artwork(source: str) -> tuple[Image.Image, str]:
    """The artwork a run named (its ``style`` source) and a short name for it."""
    if source == EMBEDDED_STYLE:
        from dlnd.vision import synthetic

        return synthetic.colour_arcs(), "arcs"
    path = Path(source)
    try:
        with Image.open(path) as picture:
            picture.thumbnail((LONGEST_STYLE_SIDE, LONGEST_STYLE_SIDE), Image.BICUBIC)
            return picture.convert("RGB"), path.stem
    except (OSError, UnidentifiedImageError) as err:
        raise UserError(
            f"The artwork of this run, {path}, cannot be read ({err}); export the run on the "
            "machine that holds it, or run style-transfer again with --style FILE."
        ) from err


def export_style(
    model: nn.Module,
    meta: dict[str, Any],
    fmt: str,
    out_dir: Path,
    name: str | None = None,
    final_metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/style.png`` (the run's artwork) and ``model_card.json``; return the
    card. ``model`` (the run's optimised image) is not needed: each request optimises its
    own."""
    if fmt == "torchscript":
        raise UserError(
            "A style-transfer run exports its artwork and settings, served with PyTorch; "
            "leave out --format torchscript."
        )
    info = meta.get("info") or {}
    if info.get("task") != TASK or "backbone" not in info or "style" not in info:
        raise UserError(
            f"The checkpoint of recipe {meta.get('recipe')!r} does not describe a style "
            "transfer (task, backbone, style); run style-transfer again."
        )
    picture, short_name = artwork(info["style"])
    path = Path(out_dir) / STYLE_FILE
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
    config = meta.get("config", {})
    card = {
        "card_version": CARD_VERSION,
        "name": name or f"style-{short_name}",
        "task": TASK,
        "recipe": meta.get("recipe"),
        "architecture": info["backbone"],
        "dataset": dataset,
        "format": FORMAT,
        **file_facts(path),
        "style_source": info["style"],
        "input": {"color": "RGB", "layout": "NCHW", "range": [0.0, 1.0]},
        "settings": {
            "backbone": info["backbone"],
            "smoothing": info["smoothing"],
            "style_weight": info["style_weight"],
            "content_weight": config.get("content_weight", 1.0),
            "optimizer": config.get("optimizer", "lbfgs"),
            "lr": config.get("lr", 1.0),
        },
        "metrics": {"final": final_metrics or {}, "epoch": meta.get("epoch")},
        "config": portable_config(config),
        "versions": {"training": meta.get("versions", {}), "export": {"dlnd": __version__}},
        "exported": utc_stamp(),
    }
    atomic_write_text(Path(out_dir) / CARD_FILE, json.dumps(card, indent=2, default=float))
    return card
