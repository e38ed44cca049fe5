"""Generators and discriminators: shapes for every image size, the latent space, DCGAN's
initialisation, the pixel conversions, and the R1 penalty on the discriminator."""

from __future__ import annotations

import argparse

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.generative.latent import seeded_latent
from dlnd.generative.models import (
    GAN,
    CourseDiscriminator,
    CourseGenerator,
    DCDiscriminator,
    DCGenerator,
    build_gan,
    dcgan_image_size,
    dcgan_plan,
    latent_path,
    to_model_range,
    to_uint8,
)
from dlnd.generative.training import r1_penalty

VALID_SIZES = [s * 2**k for s in range(4, 8) for k in range(1, 5)]


@settings(max_examples=12, deadline=None)
@given(
    size=st.sampled_from(VALID_SIZES),
    channels=st.sampled_from([1, 3]),
    width=st.integers(1, 6),
    batch=st.integers(2, 3),
)
def test_dcgan_makes_and_judges_images_of_every_valid_size(size, channels, width, batch):
    generator = DCGenerator(7, (channels, size, size), width)
    discriminator = DCDiscriminator((channels, size, size), width)
    images = generator.sample(batch)
    assert images.shape == (batch, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1  # tanh
    assert discriminator(images).shape == (batch,)


@given(st.integers(1, 300))
def test_dcgan_plan_accepts_exactly_s_times_a_power_of_two(size):
    valid = any(size == s * 2**k for s in range(4, 8) for k in range(1, 9))
    if valid:
        start, doublings = dcgan_plan(size)
        assert start * 2**doublings == size and 4 <= start <= 7 and doublings >= 1
        assert dcgan_image_size(str(size)) == size
    else:
        with pytest.raises(ValueError, match="s x 2\\^k"):
            dcgan_plan(size)
        with pytest.raises(argparse.ArgumentTypeError, match="28, 32, 48 or 64"):
            dcgan_image_size(size)


def test_dcgan_image_size_refuses_text():
    with pytest.raises(argparse.ArgumentTypeError):
        dcgan_image_size("big")


def test_course_networks_have_the_published_layer_sizes():
    generator, discriminator = CourseGenerator(), CourseDiscriminator()
    g_sizes = [
        (m.in_features, m.out_features) for m in generator.modules() if hasattr(m, "in_features")
    ]
    d_sizes = [
        (m.in_features, m.out_features)
        for m in discriminator.modules()
        if hasattr(m, "in_features")
    ]
    assert g_sizes == [(100, 32), (32, 64), (64, 128), (128, 784)]
    assert d_sizes == [(784, 128), (128, 64), (64, 32), (32, 1)]
    assert generator.sample(5).shape == (5, 1, 28, 28)
    assert discriminator(generator.sample(5)).shape == (5,)


def test_latent_distributions():
    torch.manual_seed(0)
    normal = DCGenerator(50, (1, 28, 28), 4).latent(4000)
    uniform = CourseGenerator().latent(4000)
    assert normal.mean().abs() < 0.02 and (normal.std() - 1).abs() < 0.02
    assert uniform.min() >= -1 and uniform.max() <= 1
    assert (uniform.std() - (1 / 3) ** 0.5).abs() < 0.01  # U(-1, 1) has variance 1/3


def test_generate_is_reproducible_and_in_eval_mode():
    torch.manual_seed(0)
    generator = DCGenerator(10, (1, 28, 28), 4)
    generator.train()
    first, again = generator.generate(20, seed=5), generator.generate(20, seed=5)
    assert first.dtype == torch.uint8 and first.shape == (20, 1, 28, 28)
    assert torch.equal(first, again)
    assert not torch.equal(first, generator.generate(20, seed=6))
    assert generator.training  # the mode it was in is restored
    # eval mode: each image depends on its own latent vector, not on the rest of the batch
    z = torch.from_numpy(seeded_latent(20, 10, "normal", 5))
    assert torch.equal(generator.render(z[:3]), first[:3])
    # the first vectors of a seed do not depend on how many are drawn
    assert torch.equal(generator.generate(3, seed=5), first[:3])


def test_dcgan_initialisation_follows_radford_et_al():
    torch.manual_seed(0)
    gan = build_gan({"model": "dcgan", "latent_size": 100, "image_shape": [3, 64, 64], "width": 64})
    convs = [m for m in gan.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert weights.mean().abs() < 1e-3 and (weights.std() - 0.02).abs() < 1e-3
    norms = [m for m in gan.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in norms])
    assert (scales.mean() - 1).abs() < 0.01 and (scales.std() - 0.02).abs() < 0.005
    assert all(not m.bias.detach().any() for m in norms)


def test_build_gan_keeps_the_loop_s_key_names():
    gan = build_gan(
        {"model": "course", "latent_size": 100, "image_shape": [1, 28, 28], "width": 32}
    )
    assert isinstance(gan, GAN)
    keys = set(gan.state_dict())
    assert {k.split(".")[0] for k in keys} == {"generator", "discriminator"}
    with pytest.raises(ValueError, match="unknown GAN model"):
        build_gan({"model": "vae", "latent_size": 2, "image_shape": [1, 28, 28], "width": 2})


def test_pixel_conversions_round_trip():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert to_model_range(pixels).min() == -1 and to_model_range(pixels).max() == 1
    assert torch.equal(to_uint8(to_model_range(pixels)), pixels)
    assert torch.equal(
        to_uint8(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8)
    )


def test_latent_path_walks_a_straight_line():
    start, end = torch.zeros(4), torch.arange(4.0)
    path = latent_path(start, end, 5)
    assert torch.equal(path[0], start) and torch.equal(path[-1], end)
    assert torch.allclose(path[2], (start + end) / 2)


def test_r1_penalty_of_a_linear_discriminator_is_half_its_squared_weight():
    # D(x) = <w, x> + b has grad_x D = w for every image: the penalty is ||w||^2 / 2, and its
    # gradient with respect to w is w itself (the penalty differentiates through a gradient).
    torch.manual_seed(0)
    linear = torch.nn.Linear(2 * 3 * 3, 1)
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), linear, torch.nn.Flatten(0))
    real = torch.randn(5, 2, 3, 3)
    penalty = r1_penalty(discriminator, real)
    weight = linear.weight.detach()
    assert penalty.item() == pytest.approx(0.5 * weight.pow(2).sum().item(), rel=1e-6)
    penalty.backward()
    torch.testing.assert_close(linear.weight.grad, weight)
    assert linear.bias.grad is None or float(linear.bias.grad.abs().max()) == 0.0
    assert real.grad is None  # the images themselves are left alone


def test_r1_penalty_of_a_dcgan_discriminator_matches_finite_differences():
    # The input gradient autograd differentiates, checked against central differences.
    torch.manual_seed(1)
    discriminator = DCDiscriminator((1, 28, 28), 4).double().eval()
    real = torch.rand(2, 1, 28, 28, dtype=torch.float64) * 2 - 1
    h, squares = 1e-6, torch.zeros(2, dtype=torch.float64)
    flat = real.flatten(1)
    for i in range(flat.shape[1]):
        step = torch.zeros_like(flat)
        step[:, i] = h
        up = discriminator((flat + step).view_as(real))
        down = discriminator((flat - step).view_as(real))
        squares += ((up - down) / (2 * h)) ** 2
    expected = 0.5 * squares.mean().item()
    assert r1_penalty(discriminator, real).item() == pytest.approx(expected, rel=1e-5)
