"""The figures a learner looks at after training a classifier.

Per-class accuracy, the confusion matrix, a grid of misclassified test images, and what the
first convolution layer learned (its filters and the feature maps of one image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn


def confusion_matrix(
    predicted: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts (C, C): entry [t, p] is how many examples of true class t were predicted as p."""
    flat = targets.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """(C,) fraction of each true class predicted correctly (diagonal / row sum; 0 if absent)."""
    totals = confusion.sum(dim=1).clamp(min=1)
    return confusion.diag().double() / totals


def per_class_figure(accuracy: torch.Tensor, classes: Sequence[str], title: str = "") -> Figure:
    """Horizontal bars of per-class accuracy, with the value written on each bar."""
    figure = Figure(figsize=(6.5, 0.38 * len(classes) + 1.2))
    ax = figure.subplots()
    positions = np.arange(len(classes))
    ax.barh(positions, accuracy.numpy() * 100, color="tab:blue")
    for y, value in zip(positions, accuracy.tolist(), strict=True):
        ax.text(min(value * 100 + 1, 88), y, f"{value:.1%}", va="center", fontsize=9)
    ax.set_yticks(positions, labels=list(classes))
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(title or "accuracy per class")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def confusion_figure(confusion: torch.Tensor, classes: Sequence[str], title: str = "") -> Figure:
    """The confusion matrix as a heat map, rows normalised to the share of each true class."""
    size = len(classes)
    shares = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    figure = Figure(figsize=(0.6 * size + 3, 0.6 * size + 2.4))
    ax = figure.subplots()
    image = ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    if size <= 20:
        for t in range(size):
            for p in range(size):
                count = int(confusion[t, p])
                if count:
                    colour = "white" if shares[t, p] > 0.5 else "black"
                    ax.text(p, t, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(size), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(size), labels=list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix (counts; colour = share of the true class)")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return figure


def _show(ax, image: torch.Tensor) -> None:
    """Draw one (C, H, W) image, uint8 or float in [0, 1]."""
    pixels = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    if pixels.shape[0] == 1:
        ax.imshow(pixels[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(pixels.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([])
    ax.set_yticks([])


def misclassified_figure(
    images: torch.Tensor,
    targets: torch.Tensor,
    probabilities: torch.Tensor,
    classes: Sequence[str],
    limit: int = 24,
) -> Figure:
    """The most confidently wrong test images with "predicted (probability) / true" labels.

    ``images``: (N, C, H, W); ``targets``: (N,); ``probabilities``: (N, classes).
    """
    confidence, predicted = probabilities.max(dim=1)
    wrong = torch.nonzero(predicted != targets).flatten()
    wrong = wrong[confidence[wrong].argsort(descending=True)][:limit]
    columns = 6
    rows = max(1, math.ceil(len(wrong) / columns))
    figure = Figure(figsize=(2.1 * columns, 2.6 * rows))
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[len(wrong) :]:
        ax.set_visible(False)
    for ax, index in zip(axes, wrong.tolist(), strict=False):
        _show(ax, images[index])
        ax.set_title(
            f"pred: {classes[predicted[index]]} ({confidence[index]:.0%})\n"
            f"true: {classes[targets[index]]}",
            fontsize=9,
            color="darkred",
        )
    if len(wrong) == 0:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        axes[0].set_axis_off()
    figure.suptitle("misclassified test images, most confident first")
    figure.tight_layout()
    return figure


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` (the layer that looks at the pixels)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError("the model has no convolution layer")


def first_layer_maps(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The first convolution's output for one image (C, H, W) in [0, 1] -> (filters, H', W')."""
    captured = []
    hook = first_conv(model).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model.eval()
        with torch.no_grad():
            model(image.unsqueeze(0).float())
    finally:
        hook.remove()
    return captured[0][0]


def filters_figure(weight: torch.Tensor, limit: int = 32) -> Figure:
    """The first layer's learned filters (out, in, k, k): colour ones as RGB, grey ones grey."""
    weight = weight[:limit].detach().float()
    columns = 8
    rows = math.ceil(len(weight) / columns)
    figure = Figure(figsize=(1.3 * columns, 1.4 * rows + 0.6))
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[len(weight) :]:
        ax.set_visible(False)
    for ax, kernel in zip(axes, weight, strict=False):
        low, high = kernel.min(), kernel.max()
        _show(ax, (kernel - low) / (high - low + 1e-8))
    size = f"{weight.shape[2]}x{weight.shape[3]}"
    figure.suptitle(f"first-layer filters ({size}, each scaled to its own range)")
    figure.tight_layout()
    return figure


def feature_maps_figure(image: torch.Tensor, maps: torch.Tensor, limit: int = 31) -> Figure:
    """The input image (C, H, W) and the first layer's feature maps (filters, H, W)."""
    maps = maps[:limit].detach().float()
    columns = 8
    rows = math.ceil((len(maps) + 1) / columns)
    figure = Figure(figsize=(1.5 * columns, 1.6 * rows + 0.6))
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[len(maps) + 1 :]:
        ax.set_visible(False)
    _show(axes[0], image)
    axes[0].set_title("input", fontsize=9)
    for number, (ax, feature_map) in enumerate(zip(axes[1:], maps, strict=False)):
        ax.imshow(feature_map.numpy(), cmap="viridis")
        ax.set_title(f"map {number}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle("first-layer feature maps (bright = strong response)")
    figure.tight_layout()
    return figure
