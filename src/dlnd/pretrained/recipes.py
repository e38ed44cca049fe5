"""Recipes that reuse a network trained on ImageNet: transfer learning and style transfer.

- ``transfer-learning``: any ImageFolder tree (default: the ants/bees photos). Frozen features
  computed once and cached, a new head trained on them, optionally the top stages fine-tuned
  (:mod:`dlnd.pretrained.transfer`); the result is an ordinary image classifier that
  ``dlnd predict``, ``dlnd export`` and ``dlnd serve`` take.
- ``style-transfer``: a photo painted in the style of an artwork by optimising its pixels
  (:mod:`dlnd.pretrained.style`).

Both use VGG/torchvision networks when their weights are at hand and EfficientNet-Lite0, whose
weights install with dlnd, otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlnd.config import non_negative_float, non_negative_int, positive_float, positive_int, text
from dlnd.data import resolve
from dlnd.errors import UserError
from dlnd.io import atomic_write
from dlnd.pretrained import style, transfer
from dlnd.pretrained.backbone import Backbone
from dlnd.pretrained.registry import (
    BACKBONES,
    OFFLINE_DEFAULT,
    get_backbone_spec,
    load_backbone,
)
from dlnd.pretrained.torchvision_backbones import hub_checkpoint_path
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.trainer import TRAINER_OPTIONS, TrainConfig, resolve_device, train
from dlnd.vision import datasets, synthetic
from dlnd.vision.datasets import ImageData
from dlnd.vision.recipes import save_reports

BACKBONE_CHOICES = tuple(BACKBONES)


def weights_at_hand(name: str) -> bool:
    """Whether backbone ``name`` can load without a download: Lite0's weights install with
    dlnd; torchvision's must be in PyTorch's hub cache."""
    spec = get_backbone_spec(name)
    return name == OFFLINE_DEFAULT or hub_checkpoint_path(spec.weights_source).is_file()


# --- transfer learning -------------------------------------------------------------------------


def transfer_images(ctx: RunContext) -> tuple[ImageData, Backbone]:
    """The photos as an :class:`ImageData` (``--image-size`` squares, resampled as in the
    backbone's ImageNet evaluation), and the backbone (ImageNet weights) that looks at them."""
    cfg = ctx.cfg
    backbone = load_backbone(cfg["backbone"])
    if cfg["embedded"]:
        root = datasets.write_embedded_folder(
            ctx.run_dir / "embedded-images", per_class=40, seed=cfg["seed"]
        )
    elif cfg["images"]:
        root = Path(cfg["images"])
        if not root.is_dir():
            raise UserError(
                f"--images {root} is not a folder; expected an ImageFolder tree "
                "DIR/<class>/*.jpg (optionally DIR/train/<class> and DIR/val/<class>)."
            )
    else:
        root = resolve("hymenoptera", cfg["data_dir"])
    if not 0 < cfg["crop_fraction"] <= 1:
        raise UserError(f"--crop-fraction must be in (0, 1], got {cfg['crop_fraction']}.")
    prep = backbone.preprocessing
    data = datasets.folder_data(
        root,
        cfg["image_size"],
        "RGB",
        cfg["seed"],
        crop_fraction=cfg["crop_fraction"],
        resample=prep.resample,
    )
    # The model normalises inside with the backbone's statistics, not those of these photos.
    data.input_spec.update(mean=list(prep.mean), std=list(prep.std))
    return data, backbone


def transfer_info(data: ImageData, backbone: str, tuned_stages: int) -> dict[str, Any]:
    """The checkpoint's data info: an image classifier that says how to rebuild itself."""
    return {
        "task": "image-classification",
        "classes": data.classes,
        "input": data.input_spec,
        "model": "transfer",
        "backbone": backbone,
        "fine_tune_blocks": tuned_stages,
        "source": data.source,
    }


def build_transfer_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """The architecture of a transfer-learning run (the backbone untrained, a new head) for
    its checkpoint's weights to fill."""
    backbone = load_backbone(info["backbone"], pretrained=False)
    return transfer.transfer_classifier(backbone, len(info["classes"]))


def cached_features(
    ctx: RunContext, classifier: Backbone, tuned: int, images: torch.Tensor, what: str
) -> torch.Tensor:
    """The frozen features of ``images`` (N, views, ...), computed once per network, cut and
    data, then read from the user cache."""
    device = resolve_device(ctx.cfg["device"])
    weights = get_backbone_spec(classifier.name).weights_source
    features, cached = transfer.cached_frozen_features(classifier, weights, tuned, images, device)
    source = "read from the cache" if cached else "computed"
    ctx.info(f"{what}: frozen features {tuple(features.shape)} {source}")
    return features


def run_transfer_learning(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    data, backbone = transfer_images(ctx)
    ctx.info(data.source)
    tuned = cfg["fine_tune_blocks"]
    classifier = transfer.transfer_classifier(backbone, len(data.classes))
    transfer.check_tuned_stages(classifier, tuned)
    frozen = {
        split: cached_features(ctx, classifier, tuned, getattr(data, split).tensors[0], split)
        for split in ("train", "val", "test")
    }
    train_cfg = TrainConfig.from_cfg(cfg)
    task = transfer.TransferTask(
        classifier,
        tuned,
        transfer.training_examples(frozen["train"], data.train.tensors[1]),
        torch.utils.data.TensorDataset(frozen["val"], data.val.tensors[1]),
        train_cfg,
        head_epochs=cfg["head_epochs"] if tuned else cfg["epochs"],
        backbone_lr_factor=cfg["backbone_lr_factor"],
        label_smoothing=cfg["label_smoothing"],
    )
    head, stages = (sum(p.numel() for p in m.parameters()) for m in (task.top.head, task.top.tuned))
    ctx.info(
        f"{classifier.name}: training a new head ({head:,} parameters)"
        + (f" and the last {tuned} stages ({stages:,})" if tuned else "")
    )
    result = train(ctx, task, train_cfg, info=transfer_info(data, classifier.name, tuned))
    probabilities = transfer.predict_views(task.top, frozen["test"])
    targets = data.test.tensors[1]
    test_accuracy = float((probabilities.argmax(1) == targets).float().mean())
    ctx.info(
        f"test accuracy {test_accuracy:.2%} on {len(targets)} images (mean over image and "
        "mirror image)"
    )
    if ctx.is_main:
        save_reports(ctx, data, result.model.cpu(), probabilities, targets)
    best = result.history[result.best_epoch - 1]
    return {
        "test_accuracy": test_accuracy,
        "val_accuracy": best["val_accuracy"],
        "best_epoch": result.best_epoch,
        "train_seconds": round(sum(row["time_s"] for row in result.history), 1),
        "train_images": len(data.train),
    }


TRANSFER_LEARNING = register(
    Recipe(
        name="transfer-learning",
        summary="A network trained on ImageNet reused for your classes: frozen features, "
        "a new head, optionally fine-tuned top stages.",
        dataset="hymenoptera (ants vs bees), or --images DIR (any ImageFolder tree)",
        target="test accuracy >= 95% on the 153 ants/bees validation photos, features + "
        "head in 2 minutes on 2 CPU cores",
        run=run_transfer_learning,
        options=(
            Option(
                "--backbone",
                text,
                OFFLINE_DEFAULT,
                "network trained on ImageNet (efficientnet_lite0 works offline)",
                choices=BACKBONE_CHOICES,
            ),
            Option("--images", text, None, "an ImageFolder tree DIR/<class>/*.jpg of your own"),
            Option(
                "--image-size",
                positive_int,
                288,
                "side of the square the photos are resized to",
            ),
            Option(
                "--crop-fraction",
                positive_float,
                1.0,
                "share of the shorter side kept in the centre square (ImageNet's "
                "evaluation: 0.875)",
            ),
            Option(
                "--fine-tune-blocks",
                non_negative_int,
                0,
                "also train the last N stages of the backbone (0: the head alone)",
            ),
            Option(
                "--head-epochs",
                positive_int,
                5,
                "with --fine-tune-blocks: epochs of the head alone before the stages join",
            ),
            Option(
                "--backbone-lr-factor",
                positive_float,
                0.1,
                "learning rate of fine-tuned stages, as a fraction of --lr",
            ),
            Option(
                "--label-smoothing",
                non_negative_float,
                0.0,
                "share of the target spread over all classes",
            ),
            *TRAINER_OPTIONS,
        ),
        defaults={
            "epochs": 30,
            "batch_size": 32,
            "lr": 1e-3,
            "optimizer": "adamw",
            "weight_decay": 0.01,
            "eval_batch_size": 256,
        },
        quick={"epochs": 8, "image_size": 64},
        build_model=build_transfer_model,
    )
)


# --- style transfer ------------------------------------------------------------------------------

DEFAULT_CONTENT, DEFAULT_STYLE = "octopus.jpg", "hockney.jpg"  # the course's pair
STYLE_BACKBONES = ("auto", "vgg19", "vgg16", OFFLINE_DEFAULT)


def style_backbone(choice: str) -> str:
    """``auto``: VGG19 (the network of the paper and the course) when its weights are at hand,
    EfficientNet-Lite0 otherwise."""
    if choice != "auto":
        return choice
    return "vgg19" if weights_at_hand("vgg19") else OFFLINE_DEFAULT


def style_pictures(cfg: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """The photo and the artwork ``(1, 3, H, W)`` in [0, 1], their longer sides ``--size``
    pixels, and where each came from."""
    size = cfg["size"]
    if cfg["embedded"] and not (cfg["content"] or cfg["style"]):
        content = style.resize_picture(synthetic.road_scene(), size)
        art = style.resize_picture(synthetic.colour_arcs(), size)
        return content, art, {"content": "embedded road drawing", "style": "embedded arcs"}
    folder = None
    if not (cfg["content"] and cfg["style"]):
        folder = resolve("style-images", cfg["data_dir"])
    content_path = Path(cfg["content"]) if cfg["content"] else folder / DEFAULT_CONTENT
    style_path = Path(cfg["style"]) if cfg["style"] else folder / DEFAULT_STYLE
    content, art = style.load_picture(content_path, size), style.load_picture(style_path, size)
    return content, art, {"content": str(content_path), "style": str(style_path)}


def style_settings(cfg: dict[str, Any]) -> style.StyleSettings:
    if cfg["optimizer"] == "adam" and cfg["lr"] >= 0.5:
        raise UserError(
            f"--optimizer adam takes --lr as a step in pixel units (0 to 1), e.g. --lr 0.02; "
            f"{cfg['lr']} is L-BFGS's scale (its default, 1.0)."
        )
    return style.StyleSettings(cfg["optimizer"], cfg["lr"], cfg["steps_per_epoch"])


def build_style_image(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """The optimised image of a style-transfer run, for its checkpoint to fill."""
    return style.StyleImage(info["height"], info["width"])


def save_result(ctx: RunContext, image: torch.Tensor) -> Path:
    """The stylised image as ``stylised.png`` in the run directory (full size)."""
    path = ctx.run_dir / "stylised.png"
    if ctx.is_main:
        picture = style.to_pil(image)
        atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
    return path


def run_style_transfer(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    settings = style_settings(cfg)
    content, art, sources = style_pictures(cfg)
    name = style_backbone(cfg["backbone"])
    backbone = load_backbone(name)
    layers = style.style_layers_for(get_backbone_spec(name).family)
    if cfg["smoothing"] is not None and cfg["smoothing"] != layers.smoothing:
        layers = style.with_smoothing(layers, cfg["smoothing"], backbone, content, art)
    objective = style.StyleObjective(
        backbone, content, art, layers, cfg["content_weight"], cfg["style_weight"]
    )
    height, width = content.shape[-2:]
    ctx.info(
        f"{name}: {width}x{height} image, content at {layers.content}, style at "
        f"{', '.join(layers.style_names)}, smoothing {layers.smoothing:g}, "
        f"style weight {objective.style_weight:g}, {settings.optimizer}"
    )
    task = style.StyleTask(objective, style.StyleImage(height, width, start=content), settings)
    info = {
        "task": "style-transfer",
        "height": height,
        "width": width,
        "backbone": name,
        "smoothing": layers.smoothing,
        "style_weight": objective.style_weight,
        **sources,
    }
    result = train(ctx, task, TrainConfig.from_cfg(cfg), info=info)
    image = result.modules["image"]().detach().cpu()
    path = save_result(ctx, image)
    if ctx.is_main:
        ctx.save_figure(
            style.pictures_figure({"photo": content, "style": art, "result": image}), "result"
        )
        ctx.save_figure(style.snapshot_grid(task.snapshots, settings.steps_per_epoch), "progress")
        weights = (objective.content_weight, objective.style_weight)
        ctx.save_figure(style.loss_curves(task.history, weights), "loss_per_step")
    ctx.info(f"stylised image: {path}")
    last = task.history[-1]
    return {
        "loss": last["loss"],
        "content_loss": last["content"],
        "style_loss": last["style"],
        "steps": last["step"],
    }


STYLE_TRANSFER = register(
    Recipe(
        name="style-transfer",
        summary="Neural style transfer (Gatys et al.): a photo's pixels optimised to take an "
        "artwork's style.",
        dataset="images/style (the course's octopus and Hockney), or --content/--style files",
        target="a finished 400-pixel image in 3 minutes on 2 CPU cores",
        run=run_style_transfer,
        options=(
            Option("--content", text, None, "the photo (default: images/style/octopus.jpg)"),
            Option("--style", text, None, "the artwork (default: images/style/hockney.jpg)"),
            Option("--size", positive_int, 400, "longer side of the images in pixels"),
            Option(
                "--backbone",
                text,
                "auto",
                "network whose features define content and style (auto: vgg19 if its "
                "weights are at hand, else efficientnet_lite0)",
                choices=STYLE_BACKBONES,
            ),
            Option(
                "--optimizer",
                text,
                "lbfgs",
                "how the pixels are optimised",
                choices=style.OPTIMIZERS,
            ),
            Option(
                "--steps-per-epoch",
                positive_int,
                30,
                "updates between checkpoints and progress pictures",
            ),
            Option("--content-weight", positive_float, 1.0, "weight of the content loss"),
            Option(
                "--style-weight",
                positive_float,
                None,
                "weight of the style loss (default: the backbone's, 1e4 for Lite0)",
            ),
            Option(
                "--smoothing",
                non_negative_float,
                None,
                "softmax smoothing temperature of the style features (0: off; default: 2 "
                "for Lite0, off for VGG); the style weight is rescaled to keep the balance",
            ),
            Option("--bf16", bool, False, "bf16 autocast for the network's forward pass"),
        ),
        defaults={"epochs": 10, "lr": 1.0},
        quick={"epochs": 3, "steps_per_epoch": 10, "size": 96},
        build_model=build_style_image,
    )
)
