"""The fixed edge filters: known outputs on synthetic edges, and the conv figure."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlnd.vision.filters import (
    conv_relu_pool_stages,
    edge_filters,
    filter_conv,
    stages_figure,
)


def vertical_edge_image(height: int = 8, width: int = 8) -> torch.Tensor:
    """Dark left half (0), bright right half (1): one vertical edge between columns 3 and 4."""
    image = torch.zeros(height, width)
    image[:, width // 2 :] = 1.0
    return image


def test_vertical_edge_lights_the_vertical_filter_only():
    stages = conv_relu_pool_stages(vertical_edge_image())
    index = {name: k for k, name in enumerate(stages.names)}
    vertical = stages.conv[index["vertical"]]
    # Hand computation: the window at column 3 sees columns 2, 3, 4 = (0, 0, 1), at column 4
    # it sees (0, 1, 1); the filter takes right minus left = 1 per row, 3 rows -> 3. Every
    # other window is flat -> 0.
    expected = torch.zeros(8, 8)
    expected[:, 3:5] = 3.0
    torch.testing.assert_close(vertical, expected)
    torch.testing.assert_close(stages.conv[index["vertical (negative)"]], -expected)
    assert stages.conv[index["horizontal"]].abs().max() == 0
    assert stages.conv[index["horizontal (negative)"]].abs().max() == 0
    # Sobel x weighs the middle row twice: 1 + 2 + 1 = 4.
    torch.testing.assert_close(stages.conv[index["Sobel x"]], expected * 4 / 3)
    # ReLU drops the negative filter's response; pooling keeps the 2x2 maxima.
    assert stages.relu[index["vertical (negative)"]].max() == 0
    pooled = torch.zeros(4, 4)
    pooled[:, 1:3] = 3.0
    torch.testing.assert_close(stages.pooled[index["vertical"]], pooled)


def test_horizontal_edge_lights_the_horizontal_filter_only():
    image = vertical_edge_image().T.contiguous()  # dark top, bright bottom
    stages = conv_relu_pool_stages(image)
    index = {name: k for k, name in enumerate(stages.names)}
    assert stages.conv[index["horizontal"]].max() == 3.0
    assert stages.conv[index["vertical"]].abs().max() == 0
    assert stages.conv[index["Sobel y"]].max() == 4.0


def test_conv_layer_matches_functional_conv2d_on_a_random_image():
    torch.manual_seed(0)
    image = torch.rand(1, 1, 13, 17)
    filters = edge_filters()
    layer = filter_conv(filters)
    weights = torch.stack(list(filters.values())).unsqueeze(1)
    reference = F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), weights)
    torch.testing.assert_close(layer(image), reference)
    assert not layer.weight.requires_grad


def test_stages_figure_has_a_row_per_filter():
    stages = conv_relu_pool_stages(vertical_edge_image(16, 16))
    figure = stages_figure(stages, "edge")
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 1 + 4 * len(stages.names)
