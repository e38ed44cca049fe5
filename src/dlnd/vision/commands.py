"""``dlnd predict``, ``dlnd filters`` and ``dlnd features``: vision commands outside training."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlnd.errors import UserError

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from dlnd.vision.predict import FilePrediction

# PyTorch, matplotlib and the vision modules are imported inside the handlers, so that
# `dlnd --help` and the other commands do not pay for them when they are not used.


def save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def load_classifier(model: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model and data info behind ``dlnd predict MODEL``: a run directory, or an ImageNet
    backbone named ``pretrained:NAME``."""
    from dlnd.checkpoint import load_model
    from dlnd.pretrained import classifier_info, load_backbone, pretrained_name

    name = pretrained_name(model)
    if name is not None:
        backbone = load_backbone(name)
        return backbone, classifier_info(backbone)
    network, meta = load_model(Path(model))
    return network, meta.get("info", {})


def prediction_line(result: FilePrediction, as_json: bool) -> str:
    """One file's answer: ``FILE: label 97.1%, ...`` or a JSON object (``--json``)."""
    if as_json:
        if result.error is not None:
            return json.dumps({"file": result.path, "error": result.error})
        ranked = [{"label": label, "probability": p} for label, p in result.top]
        return json.dumps({"file": result.path, "predictions": ranked})
    return f"{result.path}: " + ", ".join(f"{label} {p:.1%}" for label, p in result.top)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print the top-k classes of each image; one error line per unreadable file (status 2).

    With ``--json`` every file gets one JSON object on standard output, errors included.
    """
    from dlnd.vision.predict import classify_files

    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {args.top_k}.")
    model, info = load_classifier(args.model)
    results = classify_files(model, info, args.images, args.top_k)
    for result in results:
        if result.error is not None and not args.json:
            print(f"dlnd: error: {result.error}", file=sys.stderr)
        else:
            print(prediction_line(result, args.json))
    return 2 if any(r.error is not None for r in results) else 0


def cmd_filters(args: argparse.Namespace) -> int:
    """Save the conv -> ReLU -> max-pool figure of the edge filters for one image."""
    from dlnd.vision import filters

    path = Path(args.image)
    stages = filters.conv_relu_pool_stages(filters.grey_image(path))
    figure = filters.stages_figure(stages, path.name)
    print(save(figure, Path(args.out) / f"filters_{path.stem}.png"))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    """Save a trained CNN's first-layer filters and its feature maps for one image."""
    from dlnd.checkpoint import load_model
    from dlnd.vision import reports
    from dlnd.vision.predict import load_image

    run_dir = Path(args.run_dir)
    model, meta = load_model(run_dir)
    info = meta.get("info", {})
    if info.get("task") != "image-classification":
        raise UserError(
            f"{run_dir} is not a run of an image classifier; give a run of "
            "mnist-cnn, fashion-mnist, cifar10-cnn or image-classifier."
        )
    try:
        layer = reports.first_conv(model)
    except ValueError:
        raise UserError(
            f"The model of {run_dir} has no convolution layer (an MLP); give a run of a CNN."
        ) from None
    image = load_image(args.image, info)[0]
    out = Path(args.out) if args.out else run_dir / "plots"
    stem = Path(args.image).stem
    print(save(reports.filters_figure(layer.weight), out / "first_layer_filters.png"))
    maps = reports.first_layer_maps(model, image)
    print(save(reports.feature_maps_figure(image, maps), out / f"feature_maps_{stem}.png"))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the vision commands to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "predict",
        help="classify image files with a trained classifier or an ImageNet network",
        description="Print the top-k classes with probabilities for each image file. MODEL is "
        "the run directory of an image classifier, or pretrained:NAME for a network trained on "
        "ImageNet (pretrained:efficientnet_lite0 works offline; pretrained:vgg16, "
        "pretrained:resnet18, ... use torchvision's weights).",
    )
    p.add_argument("model", metavar="MODEL", help="RUN_DIR or pretrained:NAME")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (JPEG, PNG, ...)")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per image and line: {"file", "predictions": [{"label", '
        '"probability"}]} (or {"file", "error"})',
    )
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "filters",
        help="show what edge-detecting convolution filters do to an image",
        description="Apply the course's edge filters and Sobel as a fixed nn.Conv2d, then ReLU "
        "and 2x2 max-pool, and save the stages as one figure.",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--out", default=".", help="folder for the figure (default .)")
    p.set_defaults(func=cmd_filters)

    p = subparsers.add_parser(
        "features",
        help="first-layer filters and feature maps of a trained CNN for an image",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a CNN classifier")
    p.add_argument("image", metavar="IMAGE", help="an image file")
    p.add_argument("--out", help="folder for the figures (default RUN_DIR/plots)")
    p.set_defaults(func=cmd_features)
