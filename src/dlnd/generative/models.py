"""Generators and discriminators.

A generator maps latent vectors ``z: (N, latent_size)`` to images ``(N, C, H, W)`` in
[-1, 1] (a tanh output, so real images are scaled to the same range); it knows how to draw
``z`` from its own latent distribution (:meth:`Generator.sample`). A discriminator maps
images to one logit each, ``(N,)``: the log-odds that the image is real, so that
D(x) = sigmoid(logit).

Two pairs: the course's fully connected networks (leaky ReLU, dropout, tanh) and DCGAN
(Radford et al., 2015): transposed convolutions that double the resolution up to the image,
strided convolutions that halve it back, batch normalisation in both networks except the
generator's output and the discriminator's input, ReLU in G, leaky ReLU in D, and weights
drawn from N(0, 0.02).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from dlnd.generative.latent import LATENT_DISTRIBUTIONS, seeded_latent


class Generator(nn.Module):
    """What every generator shares: its latent space and how to draw from it.

    ``latent_distribution`` is ``"normal"`` (z ~ N(0, I), DCGAN) or ``"uniform"``
    (z ~ U(-1, 1), the course). Subclasses define ``forward(z) -> images``.
    """

    def __init__(
        self, latent_size: int, image_shape: Sequence[int], latent_distribution: str
    ) -> None:
        super().__init__()
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(
                f"latent distribution must be one of {LATENT_DISTRIBUTIONS}, "
                f"got {latent_distribution!r}"
            )
        self.latent_size = latent_size
        self.image_shape = tuple(image_shape)
        self.latent_distribution = latent_distribution

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors (n, latent_size) on the module's device.

        With ``generator`` (a CPU ``torch.Generator``) they are drawn on the CPU and moved, so
        that a seed gives the same vectors on every device; without it they come from the
        global generator, on the device.
        """
        where = "cpu" if generator is not None else self.device
        z = draw_latent(n, self.latent_size, self.latent_distribution, generator, where)
        return z.to(self.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [-1, 1] from fresh latent vectors."""
        return self(self.latent(n, generator))

    @torch.no_grad()
    def render(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The images of latent vectors ``z`` (n, latent_size) as uint8 pixels (n, C, H, W) on
        the CPU, in eval mode (batch norm uses its running statistics, so each image depends
        on its own vector alone)."""
        was_training = self.training
        self.eval()
        images = torch.cat([to_uint8(self(chunk.to(self.device))) for chunk in z.split(batch_size)])
        self.train(was_training)
        return images

    def generate(self, n: int, seed: int) -> torch.Tensor:
        """``n`` images as uint8 pixels (n, C, H, W): the same ``seed``, the same images, on
        every device and in the model server (:func:`dlnd.generative.latent.seeded_latent`)."""
        z = seeded_latent(n, self.latent_size, self.latent_distribution, seed)
        return self.render(torch.from_numpy(z))


def draw_latent(
    n: int,
    latent_size: int,
    distribution: str,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` latent vectors (n, latent_size) from ``distribution``: z ~ N(0, I) for
    ``"normal"``, z ~ U(-1, 1) for ``"uniform"``, from PyTorch's ``generator`` (training;
    images asked for by seed use :func:`dlnd.generative.latent.seeded_latent`)."""
    shape = (n, latent_size)
    if distribution == "normal":
        return torch.randn(shape, generator=generator, device=device)
    return torch.rand(shape, generator=generator, device=device) * 2 - 1


def latent_path(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Latent vectors (steps, latent_size) on the straight line from ``start`` to ``end``:
    z_t = (1 - t) start + t end for t evenly spaced in [0, 1]."""
    t = torch.linspace(0, 1, steps, device=start.device).view(-1, 1)
    return (1 - t) * start + t * end


class CourseGenerator(Generator):
    """The course's generator: z (N, 100) -> 32 -> 64 -> 128 -> C*H*W, leaky ReLU (0.2) and
    dropout after each hidden layer, tanh output reshaped to (N, C, H, W)."""

    def __init__(
        self,
        latent_size: int = 100,
        image_shape: Sequence[int] = (1, 28, 28),
        hidden_size: int = 32,
        dropout: float = 0.3,
    ) -> None:
        super().__init__(latent_size, image_shape, "uniform")
        pixels = int(torch.Size(image_shape).numel())
        sizes = [latent_size, hidden_size, 2 * hidden_size, 4 * hidden_size]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers, nn.Linear(sizes[-1], pixels), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z).view(-1, *self.image_shape)


class CourseDiscriminator(nn.Module):
    """The course's discriminator: images flattened -> 128 -> 64 -> 32 -> 1 logit, leaky ReLU
    (0.2) and dropout after each hidden layer."""

    def __init__(
        self, image_shape: Sequence[int] = (1, 28, 28), hidden_size: int = 32, dropout: float = 0.3
    ) -> None:
        super().__init__()
        pixels = int(torch.Size(image_shape).numel())
        sizes = [pixels, 4 * hidden_size, 2 * hidden_size, hidden_size]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images).view(-1)


def dcgan_plan(size: int) -> tuple[int, int]:
    """``(start, doublings)`` with ``size = start * 2**doublings``, 4 <= start <= 7 and
    doublings >= 1: the generator starts from a ``start x start`` map and doubles it
    ``doublings`` times (28 = 7 * 2**2, 32 = 4 * 2**3, 64 = 4 * 2**4)."""
    start, doublings = size, 0
    while start > 7 and start % 2 == 0:
        start, doublings = start // 2, doublings + 1
    if not 4 <= start <= 7 or doublings < 1:
        raise ValueError(
            f"DCGAN needs an image size of the form s x 2^k with s in 4..7 and k >= 1 "
            f"(e.g. 28, 32, 48, 64), got {size}"
        )
    return start, doublings


def dcgan_image_size(value: Any) -> int:
    """An option parser: an image size DCGAN can make (see :func:`dcgan_plan`)."""
    try:
        size = int(value)
        dcgan_plan(size)
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"expected a size like 28, 32, 48 or 64 ({err})") from None
    return size


def dcgan_widths(width: int, doublings: int) -> list[int]:
    """Channels from the smallest map to the largest: [..., 4w, 2w, w] (``doublings`` values)."""
    return [width * 2**k for k in reversed(range(doublings))]


class DCGenerator(Generator):
    """DCGAN's generator: z (N, latent) -> (N, 2^(k-1) w, s, s) by a transposed convolution
    with an s x s kernel, then k transposed convolutions (kernel 4, stride 2) that double the
    map and halve the channels, batch norm + ReLU between, tanh at the end."""

    def __init__(self, latent_size: int, image_shape: Sequence[int], width: int) -> None:
        super().__init__(latent_size, image_shape, "normal")
        channels, size = image_shape[0], image_shape[1]
        start, doublings = dcgan_plan(size)
        widths = dcgan_widths(width, doublings)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_size, widths[0], start, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        for n_in, n_out in zip(widths, widths[1:]):
            # (H, W) -> (2H, 2W): out = (in - 1) * stride - 2 * padding + kernel
            layers += [
                nn.ConvTranspose2d(n_in, n_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(n_out),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z as (N, latent, 1, 1) maps; [..., None, None] keeps N free for an ONNX export
        return self.layers(z[..., None, None])


class DCDiscriminator(nn.Module):
    """DCGAN's discriminator, the generator in reverse: strided convolutions (kernel 4,
    stride 2) halve the map and double the channels, leaky ReLU (0.2), batch norm except on
    the first layer, then an s x s convolution to one logit."""

    def __init__(self, image_shape: Sequence[int], width: int) -> None:
        super().__init__()
        channels, size = image_shape[0], image_shape[1]
        start, doublings = dcgan_plan(size)
        widths = list(reversed(dcgan_widths(width, doublings)))
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for n_in, n_out in zip(widths, widths[1:]):
            layers += [
                nn.Conv2d(n_in, n_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(n_out),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, start, 1, 0))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images).view(-1)


def dcgan_init(module: nn.Module) -> nn.Module:
    """Radford et al.'s initialisation: (transposed) convolution weights ~ N(0, 0.02),
    batch-norm scales ~ N(1, 0.02) and shifts 0. Returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module


class GAN(nn.Module):
    """A generator and its discriminator in one module, as the loop saves them
    (``generator.*`` and ``discriminator.*`` keys), so a run can be rebuilt from its
    checkpoint."""

    def __init__(self, generator: Generator, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator


def build_gan(info: dict[str, Any]) -> GAN:
    """The GAN a checkpoint's ``info`` describes: ``{"model": "course"|"dcgan",
    "latent_size": .., "image_shape": [C, H, W], "width": ..}`` (DCGAN weights initialised)."""
    shape = tuple(info["image_shape"])
    latent, width = info["latent_size"], info["width"]
    if info["model"] == "course":
        return GAN(
            CourseGenerator(latent, shape, hidden_size=width),
            CourseDiscriminator(shape, hidden_size=width),
        )
    if info["model"] == "dcgan":
        return GAN(
            dcgan_init(DCGenerator(latent, shape, width)),
            dcgan_init(DCDiscriminator(shape, width)),
        )
    raise ValueError(f"unknown GAN model {info['model']!r}; expected 'course' or 'dcgan'")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] (N, C, H, W) -> uint8 pixels (N, C, H, W) on the CPU:
    p = round((x + 1) * 127.5), clipped to 0..255."""
    pixels = ((images.detach().float() + 1) * 127.5).round().clamp(0, 255)
    return pixels.to(torch.uint8).cpu()


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) -> float32 in [-1, 1], the range of a tanh generator."""
    return pixels.float() / 127.5 - 1
