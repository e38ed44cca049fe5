"""What a GAN run shows: sample grids (one per epoch and an animation of them), the
losses and discriminator outputs over the epochs, FID against the real-data floor, a walk
through the latent space, the share of each class among the samples, and samples beside their
closest training images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from PIL import Image
from torchvision.utils import make_grid

from dlnd.io import atomic_write


def image_grid(images: torch.Tensor, columns: int, scale: int = 2) -> Image.Image:
    """uint8 images (N, C, H, W) -> one PIL image, ``columns`` per row, each pixel drawn as
    ``scale`` x ``scale`` (small images stay visible in a browser)."""
    grid = make_grid(images, nrow=columns, padding=2, pad_value=128)  # (C, H', W') uint8
    picture = Image.fromarray(grid.permute(1, 2, 0).squeeze(2).numpy())
    if images.shape[1] == 1:
        picture = picture.convert("L")
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def save_png(picture: Image.Image, path: Path) -> Path:
    atomic_write(Path(path), lambda tmp: picture.save(tmp, format="PNG"))
    return Path(path)


def save_animation(frames: Sequence[Path], path: Path, frame_ms: int = 400) -> Path:
    """A looping GIF of the PNG ``frames`` in order; the last frame stays twice as long."""
    pictures = [Image.open(frame).convert("P", palette=Image.ADAPTIVE) for frame in frames]
    durations = [frame_ms] * (len(pictures) - 1) + [2 * frame_ms]
    atomic_write(
        Path(path),
        lambda tmp: pictures[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=durations,
            loop=0,
        ),
    )
    return Path(path)


def _show_grid(ax: Any, picture: Image.Image) -> None:
    ax.imshow(picture, cmap="gray" if picture.mode == "L" else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def grid_figure(images: torch.Tensor, columns: int, title: str) -> Figure:
    """uint8 images (N, C, H, W) as one captioned grid."""
    picture = image_grid(images, columns, scale=1)
    figure = Figure(figsize=(7, 7 * picture.height / picture.width + 0.5))
    ax = figure.subplots()
    _show_grid(ax, picture)
    ax.set_title(title)
    figure.tight_layout()
    return figure


def training_curves(history: Sequence[dict[str, Any]], fid_floor: float) -> Figure:
    """Three panels over the epochs: D and G losses; D(x) and D(G(z)); FID and its floor.

    At the game's equilibrium D(x) = D(G(z)) = 1/2 and the discriminator's loss is
    2 ln 2 = 1.39 (ln 2 on real and ln 2 on fake images).
    """
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(15, 3.8))
    losses, outputs, fid = figure.subplots(1, 3)
    losses.plot(epochs, [r["train_d_loss"] for r in history], "-o", ms=3, label="discriminator")
    losses.plot(epochs, [r["train_g_loss"] for r in history], "-s", ms=3, label="generator")
    losses.axhline(2 * torch.log(torch.tensor(2.0)).item(), ls=":", c="grey", label="2 ln 2")
    losses.set_title("losses")
    outputs.plot(epochs, [r["train_d_real"] for r in history], "-o", ms=3, label="D(x), real")
    outputs.plot(epochs, [r["train_d_fake"] for r in history], "-s", ms=3, label="D(G(z)), fake")
    outputs.axhline(0.5, ls=":", c="grey", label="1/2")
    outputs.set_ylim(0, 1)
    outputs.set_title("discriminator's mean output")
    fid.plot(epochs, [r["fid"] for r in history], "-o", ms=3, label="generated vs test")
    fid.axhline(fid_floor, ls="--", c="green", label=f"real-data floor {fid_floor:.2f}")
    fid.set_yscale("log")
    fid.set_title("FID (judge's features; lower is better)")
    for ax in (losses, outputs, fid):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def interpolation_figure(rows: torch.Tensor) -> Figure:
    """uint8 images (rows, steps, C, H, W): each row walks in a straight line between two
    random latent vectors; smooth changes mean the generator learned a continuous space."""
    count, steps = rows.shape[:2]
    picture = image_grid(rows.flatten(0, 1), columns=steps, scale=1)
    figure = Figure(figsize=(1.0 * steps, 1.0 * count + 0.6))
    ax = figure.subplots()
    _show_grid(ax, picture)
    ax.set_title("latent-space interpolation: z = (1 - t) z0 + t z1, t from 0 to 1 in each row")
    figure.tight_layout()
    return figure


def class_share_figure(
    generated: Sequence[float], real: Sequence[float], classes: Sequence[str], confidence: float
) -> Figure:
    """The judge's class shares among generated samples next to those of the real test images."""
    positions = torch.arange(len(classes)).numpy()
    figure = Figure(figsize=(max(6.0, 0.6 * len(classes) + 2), 3.8))
    ax = figure.subplots()
    ax.bar(positions - 0.2, [100 * s for s in generated], 0.4, label="generated")
    ax.bar(positions + 0.2, [100 * s for s in real], 0.4, label="real test images")
    ax.axhline(5, ls=":", c="darkred", label="5 %")
    ax.set_xticks(positions, labels=list(classes), rotation=45 if len(classes) > 10 else 0)
    ax.set_ylabel("share of images (%)")
    ax.set_title(f"mode coverage: class the judge sees (mean confidence {confidence:.0%})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def nearest_figure(
    samples: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor, test_median: float
) -> Figure:
    """Each generated image (n, C, H, W) in the first column, its k closest training images
    ``neighbours`` (n, k, C, H, W) after it, nearest first, with their pixel distances
    ``distances`` (n, k); ``test_median`` is how far real test images are from theirs."""
    count, k = neighbours.shape[:2]
    rows = torch.cat([samples[:, None], neighbours], dim=1)  # (n, 1 + k, C, H, W)
    picture = image_grid(rows.flatten(0, 1), columns=1 + k, scale=1)
    figure = Figure(figsize=(1.1 * (1 + k) + 2.2, 1.1 * count + 0.8))
    ax = figure.subplots()
    _show_grid(ax, picture)
    cell = picture.height / count
    for row in range(count):
        label = "  ".join(f"{d:.1f}" for d in distances[row].tolist())
        ax.text(picture.width + 4, (row + 0.5) * cell, label, va="center", fontsize=8)
    ax.set_title(
        f"generated (left) and its {k} closest training images; pixel distances at the right\n"
        f"(a real test image's closest training image: median {test_median:.1f})",
        fontsize=9,
    )
    figure.tight_layout()
    return figure
