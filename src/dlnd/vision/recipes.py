"""Vision recipes: MNIST, Fashion-MNIST, CIFAR-10 and any ImageFolder tree, plus the
convolution-filter figure.

Every classifier recipe is data -> model -> :func:`dlnd.trainer.fit` -> test evaluation ->
figures, in :func:`train_classifier`; the recipes differ only in data, model and settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlnd.config import positive_int, text, unit_interval
from dlnd.data import resolve
from dlnd.errors import UserError
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.trainer import TRAINER_OPTIONS, TrainConfig, fit, predict
from dlnd.vision import datasets, filters, reports
from dlnd.vision.augment import crop_and_flip
from dlnd.vision.datasets import ImageData
from dlnd.vision.models import build_classifier
from dlnd.vision.synthetic import road_scene


def build_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """Rebuild a classifier from a checkpoint's config and data info (see ``image_info``)."""
    spec = info["input"]
    shape = (spec["channels"], spec["height"], spec["width"])
    return build_classifier(
        info["model"],
        shape,
        len(info["classes"]),
        spec["mean"],
        spec["std"],
        width=info.get("width", 64),
    )


def image_info(data: ImageData, model_name: str, width: int) -> dict[str, Any]:
    """What the checkpoint must say to rebuild the model and feed it a new image (JSON)."""
    return {
        "task": "image-classification",
        "classes": data.classes,
        "input": data.input_spec,
        "model": model_name,
        "width": width,
        "source": data.source,
    }


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) -> float32 in [0, 1] (the model normalises inside)."""
    return x.float() / 255


def predict_test_set(
    model: nn.Module, data: ImageData, cfg: TrainConfig, flip: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, classes) on the test set and the targets (N,).

    With ``flip`` the prediction is the mean of the image's and its mirror image's
    probabilities (test-time augmentation).
    """
    logits, targets = predict(model, data.test, cfg, prepare=to_unit_range)
    probabilities = logits.softmax(dim=1)
    if flip:
        mirrored, _ = predict(model, data.test, cfg, prepare=lambda x: to_unit_range(x).flip(3))
        probabilities = (probabilities + mirrored.softmax(dim=1)) / 2
    return probabilities, targets


def save_reports(
    ctx: RunContext,
    data: ImageData,
    model: nn.Module,
    probabilities: torch.Tensor,
    targets: torch.Tensor,
) -> torch.Tensor:
    """Per-class accuracy, confusion matrix, misclassified images and (for CNNs) first-layer
    filters and feature maps. Returns the confusion matrix (classes, classes)."""
    confusion = reports.confusion_matrix(probabilities.argmax(1), targets, len(data.classes))
    accuracy = reports.per_class_accuracy(confusion)
    title = f"{ctx.recipe.name}: test accuracy per class"
    ctx.save_figure(reports.per_class_figure(accuracy, data.classes, title), "per_class_accuracy")
    ctx.save_figure(reports.confusion_figure(confusion, data.classes), "confusion_matrix")
    test_images = data.test.tensors[0]
    ctx.save_figure(
        reports.misclassified_figure(test_images, targets, probabilities, data.classes),
        "misclassified",
    )
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.cpu().float()
        weight = reports.first_conv(model).weight
        ctx.save_figure(reports.filters_figure(weight), "first_layer_filters")
        image = to_unit_range(test_images[0])
        maps = reports.first_layer_maps(model, image)
        ctx.save_figure(reports.feature_maps_figure(image, maps), "feature_maps")
    return confusion


def train_classifier(
    ctx: RunContext,
    data: ImageData,
    model_name: str,
    *,
    augment: Any = None,
    label_smoothing: float = 0.0,
    flip_test: bool = False,
) -> dict[str, Any]:
    """Train ``model_name`` on ``data`` with the shared trainer; evaluate on test; save figures."""
    ctx.info(data.source)
    ctx.info(
        f"{len(data.train):,} train / {len(data.val):,} validation / {len(data.test):,} test "
        f"images of shape {data.input_shape}, {len(data.classes)} classes"
    )
    info = image_info(data, model_name, ctx.cfg.get("width", 64))
    model = build_model(ctx.cfg, info)
    cfg = TrainConfig.from_cfg(ctx.cfg)
    result = fit(
        ctx,
        model,
        data.train,
        data.val,
        cfg,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
        prepare=to_unit_range,
        augment=augment,
        info=info,
    )
    probabilities, targets = predict_test_set(result.model, data, cfg, flip_test)
    test_accuracy = float((probabilities.argmax(1) == targets).float().mean())
    ctx.info(
        f"test accuracy {test_accuracy:.2%} on {len(targets):,} images"
        + (" (mean over image and mirror image)" if flip_test else "")
    )
    if ctx.is_main:
        save_reports(ctx, data, result.model, probabilities, targets)
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    return {
        "test_accuracy": test_accuracy,
        "val_accuracy": best.get("val_accuracy"),
        "best_epoch": result.best_epoch,
        "train_seconds": round(sum(row["time_s"] for row in result.history), 1),
        "train_images": len(data.train),
    }


# --- MNIST and Fashion-MNIST ---------------------------------------------------------------


def run_mnist_mlp(ctx: RunContext) -> dict[str, Any]:
    data = datasets.mnist_data("mnist", ctx.cfg["data_dir"], ctx.cfg["seed"], ctx.cfg["embedded"])
    return train_classifier(ctx, data, "mlp", augment=crop_and_flip(padding=2, flip=False))


def run_mnist_cnn(ctx: RunContext) -> dict[str, Any]:
    data = datasets.mnist_data("mnist", ctx.cfg["data_dir"], ctx.cfg["seed"], ctx.cfg["embedded"])
    return train_classifier(ctx, data, "cnn", augment=crop_and_flip(padding=2, flip=False))


def run_fashion_mnist(ctx: RunContext) -> dict[str, Any]:
    data = datasets.mnist_data(
        "fashion-mnist", ctx.cfg["data_dir"], ctx.cfg["seed"], ctx.cfg["embedded"]
    )
    # Clothes are left-right symmetric in meaning (digits are not), so mirroring is allowed.
    augment = crop_and_flip(padding=2, flip=True)
    return train_classifier(ctx, data, ctx.cfg["model"], augment=augment)


MNIST_DEFAULTS = {
    "epochs": 15,
    "batch_size": 128,
    "lr": 2e-3,
    "optimizer": "adam",
    "schedule": "onecycle",
}
MNIST_QUICK = {"epochs": 3, "batch_size": 64}

MNIST_MLP = register(
    Recipe(
        name="mnist-mlp",
        summary="The course's 784-512-512-10 multilayer perceptron (ReLU, dropout) on MNIST.",
        dataset="MNIST (offline: the 10,000 test images split 8,000 / 2,000)",
        target="test accuracy >= 96%",
        run=run_mnist_mlp,
        options=TRAINER_OPTIONS,
        defaults=MNIST_DEFAULTS,
        quick=MNIST_QUICK,
        build_model=build_model,
    )
)

MNIST_CNN = register(
    Recipe(
        name="mnist-cnn",
        summary="Conv -> ReLU -> max-pool blocks and fully connected layers on MNIST.",
        dataset="MNIST (offline: the 10,000 test images split 8,000 / 2,000)",
        target="test accuracy >= 98.5%",
        run=run_mnist_cnn,
        options=TRAINER_OPTIONS,
        defaults=MNIST_DEFAULTS,
        quick=MNIST_QUICK,
        build_model=build_model,
    )
)

FASHION_MNIST = register(
    Recipe(
        name="fashion-mnist",
        summary="The MNIST models (--model mlp|cnn) on Fashion-MNIST clothing pictures.",
        dataset="Fashion-MNIST",
        target="test accuracy >= 90% (cnn)",
        run=run_fashion_mnist,
        options=(
            Option("--model", text, "cnn", "network", choices=("mlp", "cnn")),
            *TRAINER_OPTIONS,
        ),
        defaults=MNIST_DEFAULTS,
        quick=MNIST_QUICK,
        build_model=build_model,
    )
)


WIDTH_OPTION = Option(
    "--width", positive_int, 64, "channels of the first stage (later stages double it)"
)


# --- CIFAR-10 --------------------------------------------------------------------------------


def run_cifar10(ctx: RunContext) -> dict[str, Any]:
    data = datasets.cifar10_data(ctx.cfg["data_dir"], ctx.cfg["seed"], ctx.cfg["embedded"])
    return train_classifier(
        ctx,
        data,
        "resnet",
        augment=crop_and_flip(padding=4, flip=True),
        label_smoothing=ctx.cfg["label_smoothing"],
        flip_test=True,
    )


CIFAR10_CNN = register(
    Recipe(
        name="cifar10-cnn",
        summary="A small residual CNN with batched augmentation, bf16 and one-cycle SGD "
        "on CIFAR-10.",
        dataset="CIFAR-10 (offline: the JPEG copy, 45,000 train / 5,000 validation / 10,000 test)",
        target="test accuracy >= 85% in 15 minutes on 2 CPU cores",
        run=run_cifar10,
        options=(
            Option(
                "--label-smoothing",
                unit_interval,
                0.2,
                "share of the target spread over all classes",
            ),
            WIDTH_OPTION,
            *TRAINER_OPTIONS,
        ),
        defaults={
            "epochs": 12,
            "batch_size": 256,
            "lr": 0.2,
            "optimizer": "nesterov",
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "schedule": "onecycle",
            "bf16": True,
            "channels_last": True,
            "eval_batch_size": 500,
            "width": 48,
        },
        quick={"epochs": 4, "batch_size": 128, "lr": 0.1, "width": 16, "bf16": False},
        build_model=build_model,
    )
)


# --- any ImageFolder tree --------------------------------------------------------------------


def run_image_classifier(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    if cfg["embedded"]:
        root = datasets.write_embedded_folder(
            ctx.run_dir / "embedded-images", per_class=60, seed=cfg["seed"]
        )
    elif cfg["data_dir"]:
        root = Path(cfg["data_dir"])
    else:
        raise UserError(
            "image-classifier needs --data-dir DIR, an ImageFolder tree "
            "DIR/<class>/*.jpg (or DIR/train/<class>, DIR/val/<class>)."
        )
    data = datasets.folder_data(root, cfg["image_size"], "RGB", cfg["seed"])
    padding = max(1, cfg["image_size"] // 8)
    return train_classifier(
        ctx,
        data,
        cfg["model"],
        augment=crop_and_flip(padding, flip=True),
        label_smoothing=0.1,
        flip_test=True,
    )


IMAGE_CLASSIFIER = register(
    Recipe(
        name="image-classifier",
        summary="Train a CNN on your own photos: any ImageFolder tree DIR/<class>/*.jpg.",
        dataset="--data-dir DIR (e.g. the ants/bees photos)",
        target="validation accuracy well above chance",
        run=run_image_classifier,
        options=(
            Option(
                "--image-size", positive_int, 64, "images are resized and centre-cropped to this"
            ),
            Option("--model", text, "resnet", "network", choices=("resnet", "cnn")),
            WIDTH_OPTION,
            *TRAINER_OPTIONS,
        ),
        defaults={
            "epochs": 20,
            "batch_size": 32,
            "lr": 0.05,
            "optimizer": "nesterov",
            "weight_decay": 5e-4,
            "schedule": "onecycle",
            "bf16": True,
            "channels_last": True,
        },
        quick={"epochs": 8, "batch_size": 16, "image_size": 32, "width": 16},
        build_model=build_model,
    )
)


# --- what a convolution layer does -----------------------------------------------------------


def run_conv_filters(ctx: RunContext) -> dict[str, Any]:
    """Apply the fixed edge filters to a road photo (or the embedded drawing); plot the stages."""
    if ctx.cfg["image"]:
        path = Path(ctx.cfg["image"])
        image, title = filters.grey_image(path), path.name
    elif ctx.cfg["embedded"]:
        image, title = filters.grey_pixels(road_scene()), "embedded road drawing"
    else:
        path = resolve("conv-images", ctx.cfg["data_dir"]) / "curved_lane.jpg"
        image, title = filters.grey_image(path), path.name
    stages = filters.conv_relu_pool_stages(image)
    ctx.save_figure(filters.stages_figure(stages, title), "conv_relu_pool")
    ctx.info(f"filtered {title} {tuple(image.shape)} with {len(stages.names)} filters")
    # Mean ReLU response per filter: how much of the picture has edges of that direction.
    return {
        f"mean_response_{name.replace(' ', '_').replace('(', '').replace(')', '')}": float(
            stages.relu[k].mean()
        )
        for k, name in enumerate(stages.names)
    }


CONV_FILTERS = register(
    Recipe(
        name="conv-filters",
        summary="Edge filters as a fixed nn.Conv2d: convolution, ReLU and max-pool, made visible.",
        dataset="a road photograph (images/conv) or an embedded drawing",
        target="vertical edges light the vertical filter, horizontal ones the horizontal filter",
        run=run_conv_filters,
        options=(
            Option("--image", text, None, "an image file to filter instead of the road photo"),
        ),
    )
)
