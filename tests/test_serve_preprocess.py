"""Request content -> model input: exact pixels when nothing is resized, clear refusals."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from serve_fixtures import COLOUR_INFO, DIGITS_INFO

from dlnd.serve.preprocess import (
    MAX_IMAGE_PIXELS,
    InputError,
    decode_base64_image,
    decode_image,
    pixels_to_input,
)

GREY, COLOUR = DIGITS_INFO["input"], COLOUR_INFO["input"]


def encode(array: np.ndarray, fmt: str = "PNG", **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **save_options)
    return buffer.getvalue()


def random_uint8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_a_png_of_the_model_size_decodes_to_its_exact_pixels():
    grey = random_uint8((28, 28))
    np.testing.assert_array_equal(decode_image(encode(grey), GREY), grey[None] / np.float32(255))
    colour = random_uint8((32, 32, 3))
    expected = colour.transpose(2, 0, 1) / np.float32(255)  # (H, W, C) -> (C, H, W)
    np.testing.assert_array_equal(decode_image(encode(colour), COLOUR), expected)


def test_images_are_converted_to_the_models_colour_mode_and_size():
    photo = random_uint8((120, 90, 3))
    grey = decode_image(encode(photo, "JPEG", quality=95), GREY)
    assert grey.shape == (1, 28, 28) and grey.dtype == np.float32
    assert grey.min() >= 0.0 and grey.max() <= 1.0
    assert decode_image(encode(random_uint8((10, 300))), COLOUR).shape == (3, 32, 32)


def test_the_exif_orientation_is_applied_before_resizing():
    """A photo stored sideways with 'rotate 90' in its EXIF comes out upright."""
    stored = np.zeros((28, 28), np.uint8)
    stored[:, :4] = 255  # a bright left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    upright = decode_image(encode(stored, exif=exif.tobytes()), GREY)[0]
    assert upright[:4].mean() > 0.9 and upright[:, :4].mean() < 0.5  # now the top edge


def test_a_16_bit_png_is_scaled_to_the_unit_range_not_clipped():
    """Probe: a mid-grey 16-bit PNG (32768 of 65535) used to read as white (clipped at 255)."""
    levels = np.array([[0, 32768], [65535, 16384]], np.uint16).repeat(14, 0).repeat(14, 1)
    x = decode_image(encode(levels), GREY)[0]
    expected = np.round(levels.astype(np.float64) * 255 / 65535) / 255
    np.testing.assert_allclose(x, expected, atol=1e-6)
    assert abs(float(x[0, 20]) - 0.5) < 1 / 255


def test_base64_with_or_without_a_data_url_prefix_equals_the_raw_bytes():
    data = encode(random_uint8((28, 28), seed=3))
    text = base64.b64encode(data).decode()
    np.testing.assert_array_equal(decode_base64_image(text, GREY), decode_image(data, GREY))
    with_prefix = decode_base64_image("data:image/png;base64," + text, GREY)
    np.testing.assert_array_equal(with_prefix, decode_image(data, GREY))


def png_claiming_size(width: int, height: int) -> bytes:
    """A small valid-looking PNG whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(encode(np.zeros((1, 1), np.uint8)))
    # IHDR chunk: length (4) "IHDR" (4) width (4) height (4) ... then CRC over type + data.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not an image", "not a readable image"),
        (encode(random_uint8((28, 28)))[:60], "readable image|could not be decoded"),
        (png_claiming_size(9_000, 9_000), "too large"),
        (png_claiming_size(50_000, 50_000), "too large"),
    ],
    ids=["empty", "text", "truncated", "over-our-limit", "decompression-bomb"],
)
def test_undecodable_uploads_are_refused(data, message):
    with pytest.raises(InputError, match=message):
        decode_image(data, GREY)


def test_the_pixel_limit_lets_ordinary_photos_through():
    assert MAX_IMAGE_PIXELS > 12_000_000  # a 12-megapixel phone photo decodes


def test_invalid_base64_is_refused():
    with pytest.raises(InputError, match="not valid base64"):
        decode_base64_image("/etc/passwd", GREY)


def test_pixel_arrays_in_height_width_channels_order_become_channels_first():
    colour = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    x = pixels_to_input(colour.tolist(), COLOUR)
    assert x.shape == (3, 32, 32)
    assert x[2, 5, 7] == colour[5, 7, 2]
    grey = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    np.testing.assert_array_equal(pixels_to_input(grey.tolist(), GREY), grey[None])
    np.testing.assert_array_equal(pixels_to_input(grey[..., None].tolist(), GREY), grey[None])


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        ([[0.5] * 28] * 27, "expects"),
        ([[0.5] * 28] * 27 + [[0.5] * 27], "rectangular"),
        ([[float("nan")] * 28] * 28, "NaN"),
        ([[float("inf")] * 28] * 28, "NaN or infinite"),
        ([[1e300] * 28] * 28, "NaN or infinite"),
        ([[255.0] * 28] * 28, "divide 0-255"),
        ([[-0.1] * 28] * 28, r"lie in \[0, 1\]"),
        ([["a"] * 28] * 28, "rectangular array of numbers"),
        (np.zeros((3, 28, 28)).tolist(), "expects"),
    ],
    ids=[
        "short",
        "ragged",
        "nan",
        "inf",
        "beyond-float32",
        "0-255",
        "negative",
        "strings",
        "channels-first",
    ],
)
def test_bad_pixel_arrays_are_refused(pixels, message):
    with pytest.raises(InputError, match=message):
        pixels_to_input(pixels, GREY)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.lists(st.integers(1, 40), min_size=1, max_size=4).map(tuple),
        elements=st.floats(0, 1),
    )
)
def test_only_the_models_shape_is_accepted(array):
    if array.shape in {(28, 28), (28, 28, 1)}:
        assert pixels_to_input(array.tolist(), GREY).shape == (1, 28, 28)
    else:
        with pytest.raises(InputError, match="expects"):
            pixels_to_input(array.tolist(), GREY)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (32, 32, 3), elements=st.floats(0, 1, width=32)))
def test_valid_colour_pixels_pass_through_unchanged(array):
    np.testing.assert_array_equal(pixels_to_input(array, COLOUR), array.transpose(2, 0, 1))
