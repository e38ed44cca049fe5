"""What a client sends -> the pixels an image model takes, refusing anything malformed.

A model takes ``x: (channels, height, width)`` float32 in [0, 1] per example (the model
normalises inside). Clients send an encoded image (PNG, JPEG, GIF, BMP or WebP; as raw
bytes or base64) or a pixel array. Every failure raises :class:`InputError` with a message the
client can act on; the server answers it with status 422.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dlnd.data.images import fit_image, unit_pixels
from dlnd.serve.errors import InputError

__all__ = [
    "FORMATS",
    "MAX_IMAGE_PIXELS",
    "InputError",
    "base64_bytes",
    "decode_base64_image",
    "decode_image",
    "input_shape",
    "pixels_to_input",
]

# The image formats the API promises. Pillow reads about forty more (TIFF, TGA, EPS through
# Ghostscript, ...); each would be more decoder code reachable from the network, so they are
# never tried.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
FORMAT_NAMES = "PNG, JPEG, GIF, BMP or WebP"
# Largest image (width * height) a header may claim: a 50-megapixel photo. The header is read
# first, so a small file that claims huge dimensions (a decompression bomb) is refused before
# any pixel is decoded.
MAX_IMAGE_PIXELS = 50_000_000
# Most pixels decoded for one model: 64 times its input (8 times each side), and never less
# than 2048 x 2048. A JPEG is decoded at 1/2, 1/4 or 1/8 scale to fit; other formats are
# decoded whole, so their size is what counts.
DECODED_PER_INPUT_PIXEL = 64
MIN_DECODED_PIXELS = 2048 * 2048


def input_shape(input_spec: dict[str, Any]) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a model card's ``input`` section."""
    return (input_spec["channels"], input_spec["height"], input_spec["width"])


def max_decoded_pixels(input_spec: dict[str, Any]) -> int:
    """The most pixels decoded for a model with this input (see :data:`MIN_DECODED_PIXELS`)."""
    model_pixels = input_spec["height"] * input_spec["width"]
    return max(MIN_DECODED_PIXELS, DECODED_PER_INPUT_PIXEL * model_pixels)


def open_image(data: bytes, input_spec: dict[str, Any]) -> Image.Image:
    """Decode image bytes safely: only the promised formats, the size checked before any
    pixel is decoded (JPEGs reduced while decoding), EXIF orientation applied."""
    if not data:
        raise InputError(f"The image is empty; send the bytes of a {FORMAT_NAMES} file.")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
        # A JPEG can decode at 1/2, 1/4 or 1/8 scale directly: fast, and small in memory.
        image.draft(input_spec["color"], (input_spec["width"] * 2, input_spec["height"] * 2))
        refuse_large_decode(image, input_spec)
        image = ImageOps.exif_transpose(image)
        image.load()
    except InputError:
        raise
    except Image.DecompressionBombError as err:
        raise InputError(
            f"The image is too large ({err}); send one of at most {MAX_IMAGE_PIXELS:,} pixels."
        ) from err
    except UnidentifiedImageError as err:
        raise InputError(
            f"The upload is not a readable image: it is not {FORMAT_NAMES}; "
            "convert it to one of those formats."
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(
            f"The upload is not a readable image ({type(err).__name__}); "
            f"send a {FORMAT_NAMES} file."
        ) from err
    return image


def refuse_large_decode(image: Image.Image, input_spec: dict[str, Any]) -> None:
    """Refuse an image that would decode to more pixels than this model needs."""
    limit = max_decoded_pixels(input_spec)
    if image.width * image.height > limit:
        raise InputError(
            f"The image is too large for this model: {image.width}x{image.height} pixels "
            f"would be decoded and at most {limit:,} are; send a smaller image or a JPEG "
            "(which is reduced while it is decoded)."
        )


def decode_image(data: bytes, input_spec: dict[str, Any]) -> np.ndarray:
    """Decode an encoded image and prepare it as the model's card says (colour mode,
    resize, inversion), exactly as ``dlnd predict`` and training do.

    Returns ``(channels, height, width)`` float32 in [0, 1].
    """
    image = open_image(data, input_spec)
    try:
        return unit_pixels(fit_image(image, input_spec), input_spec.get("invert", False))
    except (OSError, ValueError) as err:  # truncated data shows up when pixels are read
        raise InputError(
            f"The image could not be decoded ({type(err).__name__}); send a complete file."
        ) from err


def base64_bytes(text: str) -> bytes:
    """The bytes of a base64 image (a ``data:image/...;base64,`` prefix is allowed)."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError(
            "image_base64 is not valid base64; encode the image file's bytes with base64."
        ) from err


def decode_base64_image(text: str, input_spec: dict[str, Any]) -> np.ndarray:
    """Decode a base64 image (a ``data:image/...;base64,`` prefix is allowed), see
    :func:`decode_image`. Returns ``(channels, height, width)`` float32 in [0, 1]."""
    return decode_image(base64_bytes(text), input_spec)


def pixels_to_input(pixels: Any, input_spec: dict[str, Any]) -> np.ndarray:
    """Check a pixel array and lay it out for the model.

    ``pixels``: nested lists (or an array) of shape ``(height, width)`` for a grayscale
    model or ``(height, width, channels)``, with values in [0, 1]: the model's input as
    it is, with no resizing or inversion.

    Returns ``(channels, height, width)`` float32.
    """
    channels, height, width = input_shape(input_spec)
    try:
        # Values beyond float32's range become inf here and are refused as non-finite below.
        with np.errstate(over="ignore"):
            array = np.asarray(pixels, dtype=np.float32)
    except (ValueError, TypeError) as err:
        raise InputError(
            "pixels must be a rectangular array of numbers (rows of equal length)."
        ) from err
    expected = [(height, width, channels)]
    if channels == 1:
        expected.insert(0, (height, width))
    if array.shape not in expected:
        wanted = " or ".join(str(list(shape)) for shape in expected)
        raise InputError(
            f"pixels has shape {list(array.shape)}, but this model expects {wanted} "
            "(height, width[, channels])."
        )
    if not np.isfinite(array).all():
        raise InputError("pixels contains NaN or infinite values; send finite numbers in [0, 1].")
    if array.min() < 0.0 or array.max() > 1.0:
        raise InputError(
            f"pixels must lie in [0, 1] but range over [{array.min():g}, {array.max():g}]; "
            "divide 0-255 values by 255."
        )
    return array.reshape(height, width, channels).transpose(2, 0, 1).copy()
