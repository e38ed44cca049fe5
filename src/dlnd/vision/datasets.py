"""Image data sets as uint8 tensors in memory, split into train / validation / test.

Images are kept as ``uint8`` ``(N, C, H, W)`` tensors (a quarter of the memory of float32);
the trainer's ``prepare`` step turns each batch into float32 in [0, 1] on the device. Every
data set comes with an *input spec*, the JSON recipe for turning any image file into the
model's input, saved in the checkpoint so ``dlnd predict`` and ``dlnd serve`` can feed the
model exactly as it was trained::

    {"channels": 3, "height": 32, "width": 32, "color": "RGB", "resize": "stretch",
     "invert": false, "mean": [...], "std": [...]}
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import TensorDataset

from dlnd.data.images import fit_image
from dlnd.data.readers import (
    ImageSplit,
    image_folder_files,
    load_cifar10,
    load_mnist,
    stratified_split,
)
from dlnd.errors import UserError
from dlnd.vision import synthetic

# GIF files are left out of ImageFolder trees: they are usually animations or placeholders
# (the ants/bees data set has an "image not found" GIF among its photos).
SKIPPED_SUFFIXES = (".gif",)


class UnreadableImageWarning(UserWarning):
    """An image file in a data folder could not be used; it is left out of the data set."""


@dataclass
class ImageData:
    """A classification data set ready for the trainer.

    ``train``/``val``/``test``: TensorDatasets of images (N, C, H, W) uint8 and labels (N,)
    int64; ``classes[k]`` names label k; ``input_spec`` says how to turn an image file into
    the model's input; ``source`` says in words where the images came from.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: list[str]
    input_spec: dict[str, Any]
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        spec = self.input_spec
        return spec["channels"], spec["height"], spec["width"]


def to_nchw(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) grey or (N, H, W, C) colour uint8 array -> (N, C, H, W) uint8 tensor."""
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    if tensor.dim() == 3:
        return tensor.unsqueeze(1)
    return tensor.permute(0, 3, 1, 2).contiguous()


def pixel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (N, C, H, W) uint8 images, on the [0, 1] scale.

    Computed from each channel's histogram of the 256 pixel values, so no float copy of the
    images is made: mean = sum_v v n_v / N, var = sum_v (v - mean)^2 n_v / (N - 1).
    """
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        total = counts.sum()
        mean = (levels * counts).sum() / total
        variance = ((levels - mean) ** 2 * counts).sum() / (total - 1)
        means.append(float(mean))
        stds.append(float(variance.sqrt()))
    return means, stds


def make_input_spec(
    train_images: torch.Tensor, color: str, resize: str = "stretch", invert: bool | str = False
) -> dict[str, Any]:
    """The input spec (module docstring) of a model trained on ``train_images`` (N, C, H, W)."""
    mean, std = pixel_stats(train_images)
    _, channels, height, width = train_images.shape
    return {
        "channels": channels,
        "height": height,
        "width": width,
        "color": color,
        "resize": resize,
        "invert": invert,
        "mean": [round(m, 6) for m in mean],
        "std": [round(max(s, 1e-3), 6) for s in std],
    }


def split_off_validation(
    images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    """Hold out ``fraction`` of the training images (stratified by class) for validation."""
    val_size = max(1, round(len(labels) * fraction))
    train_idx, val_idx = stratified_split(labels.numpy(), val_size, seed)
    train_idx, val_idx = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
    return (
        TensorDataset(images[train_idx], labels[train_idx]),
        TensorDataset(images[val_idx], labels[val_idx]),
    )


def from_split(
    split: ImageSplit,
    *,
    color: str,
    seed: int,
    val_fraction: float = 0.1,
    invert: bool | str = False,
) -> ImageData:
    """An :class:`ImageData` from the data layer's NumPy train/test split.

    ``val_fraction`` of the training images (stratified) become the validation set; the test
    images are only used for the final evaluation.
    """
    train_images, test_images = to_nchw(split.train_images), to_nchw(split.test_images)
    train_labels = torch.as_tensor(split.train_labels, dtype=torch.int64)
    test_labels = torch.as_tensor(split.test_labels, dtype=torch.int64)
    train_set, val_set = split_off_validation(train_images, train_labels, val_fraction, seed)
    spec = make_input_spec(train_set.tensors[0], color, invert=invert)
    test_set = TensorDataset(test_images, test_labels)
    return ImageData(train_set, val_set, test_set, list(split.classes), spec, split.source)


def generated_split(
    images: np.ndarray, labels: np.ndarray, classes: list[str], source: str
) -> ImageSplit:
    """Generated images split 80 / 20 into train and test (they are in random order already)."""
    cut = len(labels) * 4 // 5
    return ImageSplit(images[:cut], labels[:cut], images[cut:], labels[cut:], classes, source)


def mnist_data(kind: str, data_dir: str | None, seed: int, embedded: bool) -> ImageData:
    """MNIST or Fashion-MNIST (``kind``); ``embedded``: generated digits, no files read.

    The training images are light on dark, so a mostly light picture (a dark drawing on
    white paper) is inverted before prediction (``"invert": "auto"``).
    """
    if embedded:
        images, labels = synthetic.digit_images(3000, seed=seed)
        split = generated_split(
            images,
            labels,
            synthetic.DIGIT_CLASSES,
            f"embedded: 3,000 generated digit images standing in for {kind}",
        )
    else:
        split = load_mnist(data_dir, kind=kind, seed=seed)
    return from_split(split, color="L", seed=seed, invert="auto")


def cifar10_data(data_dir: str | None, seed: int, embedded: bool) -> ImageData:
    """CIFAR-10 with 10 % of the training images held out for validation; ``embedded``: shapes."""
    if embedded:
        images, labels = synthetic.shape_images(3000, seed=seed)
        split = generated_split(
            images,
            labels,
            synthetic.SHAPE_CLASSES,
            "embedded: 3,000 generated 32x32 shape/texture images standing in for CIFAR-10",
        )
    else:
        split = load_cifar10(data_dir)
    return from_split(split, color="RGB", seed=seed)


# --- image files -----------------------------------------------------------------------------


def read_image_file(path: Path, spec: dict[str, Any]) -> np.ndarray:
    """Decode ``path`` and fit it to ``spec`` -> (C, H, W) uint8; a UserError naming a bad file."""
    try:
        with Image.open(path) as image:
            image.draft(spec["color"], (spec["width"] * 2, spec["height"] * 2))  # fast JPEG
            image = ImageOps.exif_transpose(image)
            image.load()  # a truncated file fails here, not later
            return fit_image(image, spec)
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as err:
        raise UserError(
            f"{path} is not a readable image ({err}); expected a JPEG, PNG, BMP or WebP file."
        ) from err


def load_image_folder(
    root: Path, spec: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every usable image of a tree ``root/<class>/*`` -> (images (N, C, H, W) uint8, labels (N,),
    class names).

    Files that cannot be decoded, and GIF files, are left out with an
    :class:`UnreadableImageWarning` naming the file; the rest are loaded.
    """
    files, classes = image_folder_files(root)
    images, labels = [], []
    for path, label in files:
        if path.suffix.lower() in SKIPPED_SUFFIXES:
            warnings.warn(
                f"skipping {path}: {path.suffix} files are not used as training "
                "photos; convert it to JPEG or PNG to include it",
                UnreadableImageWarning,
                stacklevel=2,
            )
            continue
        try:
            images.append(read_image_file(path, spec))
        except UserError as err:
            warnings.warn(f"skipping {err}", UnreadableImageWarning, stacklevel=2)
            continue
        labels.append(label)
    if not images:
        raise UserError(f"{root} holds no readable images; expected root/<class>/*.jpg.")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), classes


def _split_folders(root: Path) -> tuple[Path, Path | None]:
    """``(train folder, test folder or None)``: ``root/train`` + ``root/val|test``, else root."""
    test = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test is not None:
        return root / "train", test
    return root, None


def folder_data(
    root: str | Path,
    image_size: int,
    color: str,
    seed: int,
    *,
    crop_fraction: float = 1.0,
    resample: str = "bilinear",
) -> ImageData:
    """An ImageFolder tree as an :class:`ImageData` of ``image_size`` square images.

    With ``root/train`` and ``root/val`` (or ``root/test``) that split is kept; a plain
    ``root/<class>/`` tree gives 15 % of its images (stratified) to the test set. Then 15 % of
    the training images are held out for validation. Each image is the centre square of
    ``crop_fraction`` of its shorter side, resized with ``resample`` (see :func:`fit_image`).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"--data-dir {root} is not a folder; expected an ImageFolder tree "
            "DIR/<class>/*.jpg (optionally DIR/train and DIR/val)."
        )
    spec = {
        "channels": 1 if color == "L" else 3,
        "height": image_size,
        "width": image_size,
        "color": color,
        "resize": "center-crop",
        "crop_fraction": crop_fraction,
        "resample": resample,
        "invert": False,
    }
    train_root, test_root = _split_folders(root)
    images, labels, classes = load_image_folder(train_root, spec)
    if test_root is not None:
        test_images, test_labels, test_classes = load_image_folder(test_root, spec)
        if test_classes != classes:
            raise UserError(
                f"{train_root} and {test_root} have different class folders "
                f"({classes} vs {test_classes}); give both the same classes."
            )
        train_images, train_labels = images, labels
    else:
        train_idx, test_idx = stratified_split(labels.numpy(), round(0.15 * len(labels)), seed)
        train_images, train_labels = images[train_idx], labels[train_idx]
        test_images, test_labels = images[test_idx], labels[test_idx]
    train_set, val_set = split_off_validation(train_images, train_labels, 0.15, seed)
    spec.update(make_input_spec(train_set.tensors[0], color, resize="center-crop"))
    source = (
        f"image folder {root}: {len(train_set)} train / {len(val_set)} validation / "
        f"{len(test_labels)} test images"
    )
    return ImageData(
        train_set, val_set, TensorDataset(test_images, test_labels), classes, spec, source
    )


def write_embedded_folder(root: Path, per_class: int, seed: int, classes: int = 4) -> Path:
    """Write generated shape pictures as PNG files into an ImageFolder tree ``root/<class>/``."""
    images, labels = synthetic.shape_images(per_class * classes * 4, seed=seed, size=48)
    for k in range(classes):
        folder = root / synthetic.SHAPE_CLASSES[k]
        folder.mkdir(parents=True, exist_ok=True)
        for i, index in enumerate(np.flatnonzero(labels == k)[:per_class]):
            Image.fromarray(images[index]).save(folder / f"{i:04d}.png")
    return root
