"""Data augmentation on whole batches: one tensor operation instead of a PIL call per image.

Each function takes ``x: (batch, channels, height, width)`` (any dtype) and returns a new
batch of the same shape where every image got its own random draw.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    flip = flip.to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad each image by ``padding`` zeros on every side, then cut a random H x W window.

    This shifts the picture by up to ``padding`` pixels in each direction. The windows are
    gathered with one advanced-indexing call: row index ``top[n] + i`` and column index
    ``left[n] + j`` for image n.
    """
    if padding == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(x.device)
    rows = (top.view(-1, 1) + torch.arange(height, device=x.device)).view(batch, 1, height, 1)
    cols = (left.view(-1, 1) + torch.arange(width, device=x.device)).view(batch, 1, 1, width)
    images = torch.arange(batch, device=x.device).view(batch, 1, 1, 1)
    channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[images, channels, rows, cols]


def crop_and_flip(padding: int, flip: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The augmentation a recipe hands to the trainer: random shift, then (optionally) mirror."""

    def augment(x: torch.Tensor) -> torch.Tensor:
        x = random_crop(x, padding)
        return random_flip(x) if flip else x

    return augment
