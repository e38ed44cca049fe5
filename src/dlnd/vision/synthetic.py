"""Small image data sets drawn by code, for runs that must not touch the network or disk.

``dlnd tour`` and the tests use them: handwriting-like digits (a stand-in for MNIST), colour
shapes and textures in ten classes (a stand-in for CIFAR-10) and a road scene for the
convolution-filter figure. Every generator is deterministic given its ``seed``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DIGIT_CLASSES = [str(digit) for digit in range(10)]
SHAPE_CLASSES = [
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "h-stripes",
    "v-stripes",
    "diagonal",
    "checkers",
    "dots",
]


def digit_images(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` white-on-black digits like MNIST: images (n, size, size) uint8, labels (n,) int64.

    Each digit is typeset with PIL's built-in font at a random size and stroke width, then
    rotated, shifted and blurred by noise, so no two look the same.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = np.stack([_draw_digit(int(label), rng, size) for label in labels])
    return images, labels.astype(np.int64)


def _draw_digit(digit: int, rng: np.random.Generator, size: int) -> np.ndarray:
    canvas = 2 * size  # draw large, then shrink: smoother strokes
    font = ImageFont.load_default(size=int(rng.integers(26, 38)))
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    draw.text(
        (canvas / 2 + rng.normal(0, 2), canvas / 2 + rng.normal(0, 2)),
        str(digit),
        fill=255,
        font=font,
        anchor="mm",
        stroke_width=int(rng.integers(1, 4)),
        stroke_fill=255,
    )
    image = image.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
    image = image.resize((size, size), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, (size, size))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def shape_images(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``n`` colour pictures of ten shapes and textures (:data:`SHAPE_CLASSES`).

    Returns images (n, size, size, 3) uint8 and labels (n,) int64. Colours, positions and
    sizes are random, so the class is in the form, not in the colour.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPE_CLASSES), n)
    images = np.stack([_draw_shape(int(label), rng, size) for label in labels])
    return images, labels.astype(np.int64)


def _contrasting_colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    background = rng.integers(0, 256, 3)
    foreground = (background + rng.integers(90, 166, 3)) % 256  # far from the background
    return tuple(int(v) for v in background), tuple(int(v) for v in foreground)


def _draw_shape(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    background, colour = _contrasting_colours(rng)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.25, 0.4) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    period = int(rng.integers(4, 8))
    name = SHAPE_CLASSES[label]
    if name == "circle":
        draw.ellipse(box, fill=colour)
    elif name == "square":
        draw.rectangle(box, fill=colour)
    elif name == "triangle":
        draw.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
        )
    elif name == "cross":
        width = radius / 2.5
        draw.rectangle((cx - radius, cy - width, cx + radius, cy + width), fill=colour)
        draw.rectangle((cx - width, cy - radius, cx + width, cy + radius), fill=colour)
    elif name == "ring":
        draw.ellipse(box, outline=colour, width=max(2, int(radius / 3)))
    elif name == "h-stripes":
        for y in range(int(rng.integers(0, period)), size, period):
            draw.rectangle((0, y, size, y + period // 2 - 1), fill=colour)
    elif name == "v-stripes":
        for x in range(int(rng.integers(0, period)), size, period):
            draw.rectangle((x, 0, x + period // 2 - 1, size), fill=colour)
    elif name == "diagonal":
        for offset in range(-size, size, period):
            draw.line((offset, 0, offset + size, size), fill=colour, width=period // 2)
    elif name == "checkers":
        for y in range(0, size, period):
            for x in range((y // period % 2) * period, size, 2 * period):
                draw.rectangle((x, y, x + period - 1, y + period - 1), fill=colour)
    else:  # dots
        for y in range(period // 2, size, 2 * period):
            for x in range(period // 2, size, 2 * period):
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 10, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def road_scene(width: int = 192, height: int = 128) -> Image.Image:
    """A drawn road with lane markings, a bridge and buildings: edges in every direction."""
    image = Image.new("L", (width, height), 200)  # sky
    draw = ImageDraw.Draw(image)
    horizon = height // 2
    draw.rectangle((0, horizon, width, height), fill=90)  # ground
    for i, x in enumerate(range(8, width // 3, 22)):  # buildings with windows
        top = horizon - 20 - 9 * (i % 3)
        draw.rectangle((x, top, x + 16, horizon), fill=60)
        for wy in range(top + 4, horizon - 4, 7):
            draw.rectangle((x + 4, wy, x + 7, wy + 3), fill=230)
            draw.rectangle((x + 10, wy, x + 13, wy + 3), fill=230)
    draw.rectangle((width // 2, horizon - 30, width, horizon - 24), fill=40)  # bridge deck
    for x in range(width // 2 + 6, width, 24):  # bridge pillars
        draw.rectangle((x, horizon - 24, x + 4, horizon), fill=40)
    road = [
        (width * 0.42, horizon),
        (width * 0.58, horizon),
        (width * 0.95, height),
        (width * 0.05, height),
    ]
    draw.polygon(road, fill=30)
    for t in np.linspace(0.05, 0.95, 7):  # dashed centre line, wider towards the viewer
        y0, y1 = horizon + t * (height - horizon), horizon + (t + 0.07) * (height - horizon)
        half = 1 + 3 * t
        draw.polygon(
            [
                (width / 2 - half, y0),
                (width / 2 + half, y0),
                (width / 2 + half * 1.3, y1),
                (width / 2 - half * 1.3, y1),
            ],
            fill=250,
        )
    return image


def colour_arcs(size: int = 128, seed: int = 0) -> Image.Image:
    """A painting-like pattern of overlapping coloured discs and rings with brush-like
    stripes, in the manner of Delaunay's circular forms: a style image for style transfer."""
    rng = np.random.default_rng(seed)
    palette = [(222, 60, 40), (250, 190, 30), (40, 90, 200), (30, 150, 90), (240, 240, 220)]
    image = Image.new("RGB", (size, size), palette[2])
    draw = ImageDraw.Draw(image)
    for _ in range(9):
        cx, cy = rng.uniform(0, size, 2)
        for radius in np.arange(rng.uniform(0.3, 0.6) * size, 2, -size / 14):
            colour = palette[int(rng.integers(len(palette)))]
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    for _ in range(40):  # short dark strokes on top
        x, y = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.05, 0.15) * size
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line((x, y, *end), fill=(30, 20, 40), width=max(1, size // 64))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
