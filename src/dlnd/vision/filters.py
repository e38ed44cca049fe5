"""What one convolutional layer does, with hand-made filters instead of learned ones.

The course's four edge detectors (vertical, horizontal and their negatives) and the two
Sobel filters become the fixed weights of one ``nn.Conv2d``. Like every PyTorch
convolution it computes a cross-correlation:

    out[k, i, j] = sum_{u, v in 0..2} weight[k, u, v] * image[i + u - 1, j + v - 1]

(the image padded by one pixel on each side, so the output keeps its size)

so the vertical filter (-1 left column, +1 right column) responds where brightness rises
from left to right: at a vertical edge. ReLU keeps the positive responses and a 2x2
max-pool keeps the strongest response of each 2x2 patch, halving height and width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError
from torch import nn

from dlnd.errors import UserError

VERTICAL_EDGE = [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
HORIZONTAL_EDGE = [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
SOBEL_Y = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]


def edge_filters() -> dict[str, torch.Tensor]:
    """The named 3x3 filters: the course's four edge detectors, then Sobel x and y."""
    vertical, horizontal = torch.tensor(VERTICAL_EDGE), torch.tensor(HORIZONTAL_EDGE)
    return {
        "vertical": vertical,
        "vertical (negative)": -vertical,
        "horizontal": horizontal,
        "horizontal (negative)": -horizontal,
        "Sobel x": torch.tensor(SOBEL_X),
        "Sobel y": torch.tensor(SOBEL_Y),
    }


def filter_conv(filters: dict[str, torch.Tensor]) -> nn.Conv2d:
    """A frozen ``nn.Conv2d``: 1 input channel, one output channel per filter.

    The border is padded by repeating the edge pixels, so the frame of the picture is not
    mistaken for an edge.
    """
    weights = torch.stack(list(filters.values())).unsqueeze(1)  # (filters, 1, 3, 3)
    conv = nn.Conv2d(
        1, len(filters), kernel_size=3, padding=1, padding_mode="replicate", bias=False
    )
    with torch.no_grad():
        conv.weight.copy_(weights)
    conv.weight.requires_grad_(False)
    return conv


@dataclass
class ConvStages:
    """The image after each stage; each is (filters, H, W), pooled is (filters, H/2, W/2)."""

    names: list[str]
    weights: torch.Tensor  # (filters, 3, 3)
    image: torch.Tensor  # (H, W)
    conv: torch.Tensor
    relu: torch.Tensor
    pooled: torch.Tensor


def conv_relu_pool_stages(
    image: torch.Tensor, filters: dict[str, torch.Tensor] | None = None
) -> ConvStages:
    """Apply conv -> ReLU -> 2x2 max-pool to a grey ``image`` (H, W) in [0, 1]."""
    filters = filters if filters is not None else edge_filters()
    conv = filter_conv(filters)
    with torch.no_grad():
        convolved = conv(image[None, None])[0]
        activated = torch.relu(convolved)
        pooled = nn.functional.max_pool2d(activated[None], 2)[0]
    weights = conv.weight[:, 0].detach()
    return ConvStages(list(filters), weights, image, convolved, activated, pooled)


def grey_pixels(image: Image.Image, max_side: int = 320) -> torch.Tensor:
    """A PIL image as grey values (H, W) in [0, 1], shrunk so its longer side <= max_side."""
    image = image.convert("L")
    image.thumbnail((max_side, max_side), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)


def grey_image(path: Path, max_side: int = 320) -> torch.Tensor:
    """Read an image file as grey values (H, W) in [0, 1] (see :func:`grey_pixels`)."""
    try:
        with Image.open(path) as image:
            return grey_pixels(image, max_side)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(
            f"{path} is not a readable image ({err}); give a JPEG or PNG file."
        ) from err


def stages_figure(stages: ConvStages, title: str = "") -> Figure:
    """One row per filter: the filter, its convolution output, after ReLU, after max-pool."""
    rows = len(stages.names)
    figure = Figure(figsize=(11, 2.3 * rows + 2.3))
    axes = figure.subplots(rows + 1, 4, squeeze=False)
    axes[0, 0].imshow(stages.image.numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title(f"input {tuple(stages.image.shape)}")
    for ax in axes[0, 1:]:
        ax.set_visible(False)
    for row, name in enumerate(stages.names, start=1):
        weight = stages.weights[row - 1]
        limit = float(weight.abs().max())
        axes[row, 0].imshow(weight.numpy(), cmap="bwr", vmin=-2 * limit, vmax=2 * limit)
        for i in range(weight.shape[0]):
            for j in range(weight.shape[1]):
                axes[row, 0].text(
                    j, i, f"{float(weight[i, j]) + 0.0:g}", ha="center", va="center", fontsize=9
                )
        axes[row, 0].set_title(name, fontsize=10)
        conv = stages.conv[row - 1]
        spread = float(conv.abs().max()) or 1.0
        axes[row, 1].imshow(conv.numpy(), cmap="bwr", vmin=-spread, vmax=spread)
        axes[row, 2].imshow(stages.relu[row - 1].numpy(), cmap="gray", vmin=0, vmax=spread)
        axes[row, 3].imshow(stages.pooled[row - 1].numpy(), cmap="gray", vmin=0, vmax=spread)
    for column, label in enumerate(
        ["filter", "convolution (blue -, red +)", "ReLU", "2x2 max-pool"]
    ):
        axes[1, column].set_title(f"{axes[1, column].get_title()}\n{label}".strip(), fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
