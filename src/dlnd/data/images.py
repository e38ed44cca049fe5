"""A decoded image -> the pixels a model takes, in NumPy only (no PyTorch).

Training (:mod:`dlnd.vision.datasets`), ``dlnd predict`` and the model server all prepare
pictures through these functions, so a served model sees exactly what it was trained on.
An *input spec* (saved in every image checkpoint and model card) says how::

    {"channels": 1, "height": 28, "width": 28, "color": "L", "resize": "stretch", "invert": false}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageOps

# Pillow's modes for one channel of 16 (or 32) bits per pixel: 16-bit PNGs open as one of them.
WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_8_bits(image: Image.Image) -> Image.Image:
    """A 16-bit greyscale image scaled to 8 bits (``v * 255 / 65535``); others unchanged.

    Pillow's own conversion clips such images at 255 instead, so a mid-grey 16-bit PNG
    (32768) would read as white.
    """
    if image.mode not in WIDE_GREY_MODES:
        return image
    wide = np.asarray(image).astype(np.int64)
    scaled = (np.clip(wide, 0, 65535) * 255 + 32767) // 65535  # rounded to the nearest level
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


RESAMPLING = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def fit_image(image: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """A PIL image -> ``(C, H, W)`` uint8 in the model's colour mode and size.

    ``spec["resize"]``: ``"stretch"`` resizes to width x height directly; ``"center-crop"``
    scales the shorter side to fit, then cuts the central width x height window; with
    ``spec["crop_fraction"]`` (ImageNet models: 0.875) that window covers only that fraction
    of the shorter side. ``spec["resample"]``: ``"bilinear"`` (default) or ``"bicubic"``.
    """
    width, height = spec["width"], spec["height"]
    resample = RESAMPLING[spec.get("resample", "bilinear")]
    image = to_8_bits(image).convert(spec["color"])
    if spec.get("resize", "stretch") == "center-crop":
        # ImageOps.fit trims ``bleed`` of each side before taking the largest centred window.
        bleed = (1 - spec.get("crop_fraction", 1.0)) / 2
        image = ImageOps.fit(image, (width, height), resample, bleed=bleed)
    elif image.size != (width, height):
        image = image.resize((width, height), resample)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def unit_pixels(pixels: np.ndarray, invert: bool | str) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1] (same shape); ``invert`` True flips them, ``"auto"``
    flips a mostly light image (dark drawing on white) to match light-on-dark training data."""
    x = pixels.astype(np.float32) / np.float32(255)
    if invert is True or (invert == "auto" and float(x.mean()) > 0.5):
        x = np.float32(1) - x
    return x
