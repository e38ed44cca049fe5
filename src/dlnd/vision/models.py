"""Image classifiers, from the course's multilayer perceptron to a fast CIFAR-10 ResNet.

Every model takes plain pixel values: ``x: (batch, channels, height, width)`` float32 in
[0, 1], and returns logits ``(batch, classes)``. The first layer of each model is
:class:`Normalize`, a fixed ``(x - mean) / std`` with the data set's statistics kept as
buffers, so a saved or exported model needs no preprocessing beyond "pixels / 255".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, with fixed statistics stored in the state dict."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    """The course's multilayer perceptron: flatten -> 512 -> 512 -> classes, ReLU + dropout."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        hidden_size: int = 512,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.normalize = Normalize(mean, std)
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.normalize(x))


def conv_relu_pool(in_channels: int, out_channels: int) -> nn.Sequential:
    """The block the course teaches: 3x3 convolution, ReLU, 2x2 max-pool (halves H and W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class CourseCNN(nn.Module):
    """Two conv -> ReLU -> max-pool blocks and two fully connected layers (MNIST-sized).

    BatchNorm after each convolution lets it train in a few epochs; the softmax of the
    course's diagram is applied by the loss (cross-entropy on logits) and by ``predict``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        widths: Sequence[int] = (32, 64),
        hidden_size: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.normalize = Normalize(mean, std)
        blocks, in_channels = [], channels
        for out_channels in widths:
            blocks.append(conv_relu_pool(in_channels, out_channels))
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        shrink = 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * (height // shrink) * (width // shrink), hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class CourseCifarNet(nn.Module):
    """The classic course CIFAR-10 solution: convs 16/32/64 with max-pool, FC 500 -> 10.

    Kept as the baseline of ``benchmarks/cifar_time_to_accuracy.py``. Unlike the other
    models it expects already-normalised input, as the course's transforms produce it.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(64 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.pool(torch.relu(self.conv3(x)))
        x = self.dropout(torch.flatten(x, 1))
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm's shift replaces it), BatchNorm, GELU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class Residual(nn.Module):
    """``x + f(x)``: the block learns a correction to its input, which keeps deep nets trainable."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    """A small three-stage residual network for 32x32 colour images (fast CIFAR-10 style).

    stem conv (32x32) -> stage 1: conv, pool, residual (16x16) -> stage 2: conv, pool (8x8)
    -> stage 3: conv, pool, residual (4x4) -> global max-pool -> linear. The output is
    scaled down (``logit_scale``) so that training starts with soft predictions.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        widths: Sequence[int] = (64, 128, 256),
        logit_scale: float = 0.125,
    ) -> None:
        super().__init__()
        channels = input_shape[0]
        w1, w2, w3 = widths
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            conv_bn(channels, w1 // 2),
            conv_bn(w1 // 2, w1),
            nn.MaxPool2d(2),
            Residual(w1),
            conv_bn(w1, w2),
            nn.MaxPool2d(2),
            conv_bn(w2, w3),
            nn.MaxPool2d(2),
            Residual(w3),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(w3, num_classes, bias=False)
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x))) * self.logit_scale


def build_classifier(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    width: int = 64,
) -> nn.Module:
    """The model called ``name``: ``"mlp"``, ``"cnn"`` or ``"resnet"``.

    ``width`` is the channel count of the first stage of the convolutional models; later
    stages double it (the MLP keeps the course's 512 units).
    """
    if name == "mlp":
        return MLP(input_shape, num_classes, mean, std)
    if name == "cnn":
        return CourseCNN(input_shape, num_classes, mean, std, widths=(width // 2, width))
    if name == "resnet":
        return ResNet(input_shape, num_classes, mean, std, widths=(width, 2 * width, 4 * width))
    raise ValueError(f"unknown model {name!r}; expected one of mlp, cnn, resnet")
