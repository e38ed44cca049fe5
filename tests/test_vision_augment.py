"""Batched augmentation: every output image is a shifted window or a mirror of its input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.vision.augment import crop_and_flip, random_crop, random_flip


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 6),
    channels=st.sampled_from([1, 3]),
    height=st.integers(4, 12),
    width=st.integers(4, 12),
    padding=st.integers(0, 4),
    uint8=st.booleans(),
)
def test_random_crop_returns_a_window_of_the_padded_image(
    batch, channels, height, width, padding, uint8
):
    generator = torch.Generator().manual_seed(batch * 100 + height)
    x = torch.randint(1, 256, (batch, channels, height, width))
    x = x.to(torch.uint8) if uint8 else x.float()
    out = random_crop(x, padding, generator=generator)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = F.pad(x, (padding,) * 4)
    for image, cropped in zip(padded, out, strict=True):
        windows = [
            image[:, top : top + height, left : left + width]
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
        ]
        assert any(torch.equal(cropped, window) for window in windows)


def test_random_crop_uses_every_shift():
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(400, 1, 1, 1)
    out = random_crop(x, 1, generator=torch.Generator().manual_seed(0))
    # The centre pixel (3, 3) moves to one of 9 values: 27 shifted by -1, 0, +1 rows/columns.
    centres = set(out[:, 0, 3, 3].tolist())
    assert centres == {27.0 + 8 * dy + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)}


def test_random_flip_mirrors_about_half_of_the_images():
    x = torch.rand(1000, 3, 5, 7)
    out = random_flip(x, generator=torch.Generator().manual_seed(1))
    same = torch.tensor([torch.equal(a, b) for a, b in zip(out, x, strict=True)])
    mirrored = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(out, x, strict=True)])
    assert bool((same | mirrored).all())
    assert 400 < int(mirrored.sum()) < 600


def test_crop_and_flip_keeps_shape_and_pixel_values():
    x = torch.rand(16, 3, 32, 32)
    out = crop_and_flip(padding=4, flip=True)(x)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
