"""Image data: layout and statistics, ImageFolder trees with bad files, generated images."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dlnd.errors import UserError
from dlnd.vision import synthetic
from dlnd.vision.datasets import (
    UnreadableImageWarning,
    fit_image,
    folder_data,
    load_image_folder,
    pixel_stats,
    to_nchw,
)

SPEC = {
    "channels": 3,
    "height": 16,
    "width": 16,
    "color": "RGB",
    "resize": "center-crop",
    "invert": False,
}


def test_to_nchw_moves_channels_first():
    grey = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert to_nchw(grey).shape == (2, 1, 3, 4)
    colour = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    out = to_nchw(colour)
    assert out.shape == (2, 3, 3, 4)
    assert int(out[1, 2, 0, 3]) == int(colour[1, 0, 3, 2])


def test_pixel_stats_match_numpy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    mean, std = pixel_stats(to_nchw(images))
    np.testing.assert_allclose(mean, (images / 255).mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, (images / 255).std(axis=(0, 1, 2), ddof=1), rtol=1e-6)


def test_fit_image_center_crop_keeps_the_middle():
    # 60 wide x 20 high: red | green | blue thirds; the centre square is the green third.
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, :20, 0] = pixels[:, 20:40, 1] = pixels[:, 40:, 2] = 255
    out = fit_image(Image.fromarray(pixels), {**SPEC, "height": 8, "width": 8})
    assert out.shape == (3, 8, 8)
    assert out[1].min() > 200 and out[0].max() < 60 and out[2].max() < 60
    stretched = fit_image(
        Image.fromarray(pixels),
        {**SPEC, "height": 8, "width": 9, "resize": "stretch", "color": "L"},
    )
    assert stretched.shape == (1, 8, 9)


def _png_bytes(colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def tree_with_bad_files(tmp_path):
    """cats: 3 PNGs + a truncated PNG; dogs: 3 JPEGs + a truncated JPEG, text named .jpg, a GIF."""
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    for i in range(3):
        (tmp_path / "cats" / f"{i}.png").write_bytes(_png_bytes((200, 20 * i, 0)))
        (tmp_path / "dogs" / f"{i}.jpg").write_bytes(_png_bytes((0, 20 * i, 200), "JPEG"))
    png, jpeg = _png_bytes((1, 2, 3)), _png_bytes((9, 9, 9), "JPEG")
    (tmp_path / "cats" / "truncated.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "dogs" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "dogs" / "notes.jpg").write_text("not a picture")
    Image.new("P", (24, 24)).save(tmp_path / "dogs" / "placeholder.gif")
    return tmp_path


def test_bad_files_are_skipped_with_a_warning_naming_each(tree_with_bad_files):
    with pytest.warns(UnreadableImageWarning) as caught:
        images, labels, classes = load_image_folder(tree_with_bad_files, SPEC)
    messages = "\n".join(str(w.message) for w in caught)
    for bad in ("truncated.png", "truncated.jpg", "notes.jpg", "placeholder.gif"):
        assert bad in messages
    assert len(caught) == 4
    assert classes == ["cats", "dogs"]
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert int(images[0, 0].float().mean()) == 200  # the first cat is red


def test_folder_without_images_is_a_user_error(tmp_path):
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "broken.png").write_bytes(b"\x89PNG nothing")
    with pytest.warns(UnreadableImageWarning), pytest.raises(UserError, match="no readable"):
        load_image_folder(tmp_path, SPEC)


def test_folder_data_splits_and_describes_the_input(tmp_path):
    for name, colour in (("red", (220, 10, 10)), ("blue", (10, 10, 220))):
        (tmp_path / name).mkdir()
        for i in range(20):
            (tmp_path / name / f"{i}.png").write_bytes(_png_bytes(colour))
    data = folder_data(tmp_path, image_size=12, color="RGB", seed=0)
    assert len(data.train) + len(data.val) + len(data.test) == 40
    assert len(data.test) == 6 and len(data.val) > 0
    spec = data.input_spec
    assert (spec["channels"], spec["height"], spec["width"]) == (3, 12, 12)
    assert spec["resize"] == "center-crop" and len(spec["mean"]) == 3


def test_shared_ants_and_bees_gif_placeholder_is_skipped(shared_data):
    root = shared_data / "hymenoptera" / "train"
    spec = {**SPEC, "height": 24, "width": 24}
    with pytest.warns(UnreadableImageWarning, match="imageNotFound.gif"):
        images, labels, classes = load_image_folder(root, spec)
    assert classes == ["ants", "bees"]
    assert len(images) == len(labels) == 244


def test_generated_images_are_deterministic_and_cover_every_class():
    digits, digit_labels = synthetic.digit_images(200, seed=3)
    again, _ = synthetic.digit_images(200, seed=3)
    assert digits.shape == (200, 28, 28) and digits.dtype == np.uint8
    assert np.array_equal(digits, again)
    assert set(digit_labels.tolist()) == set(range(10))
    shapes, shape_labels = synthetic.shape_images(200, seed=3)
    assert shapes.shape == (200, 32, 32, 3)
    assert set(shape_labels.tolist()) == set(range(len(synthetic.SHAPE_CLASSES)))
    assert synthetic.road_scene().size == (192, 128)
