"""The lessons' building blocks: initialisation schemes, the batch-norm network, evaluation
in train mode without side effects, and the figure helpers."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from dlnd.generative.figures import image_grid, save_animation, save_png
from dlnd.generative.lessons import (
    INIT_SCHEMES,
    LessonMLP,
    accuracy_in_mode,
    initialise,
    moving_average,
)


def first_weight(scheme: str) -> torch.Tensor:
    torch.manual_seed(0)
    return initialise(LessonMLP(), scheme).layers[1].weight.detach()


def test_constant_schemes():
    assert not first_weight("zeros").any()
    assert (first_weight("ones") == 1).all()
    uniform = first_weight("uniform")
    assert uniform.min() >= 0 and uniform.max() < 1


@pytest.mark.parametrize(
    ("scheme", "std"),
    [
        ("general_rule", 1 / math.sqrt(784) / math.sqrt(3)),  # U(-y, y) has std y / sqrt(3)
        ("normal_rule", 1 / math.sqrt(784)),
        ("xavier", math.sqrt(2 / (784 + 256))),
        ("he", math.sqrt(2 / 784)),
        ("default", 1 / math.sqrt(784) / math.sqrt(3)),  # PyTorch: U(-1/sqrt(n), 1/sqrt(n))
    ],
)
def test_scaled_schemes_have_the_variance_their_rule_says(scheme, std):
    weight = first_weight(scheme)
    assert weight.mean().abs() < 0.05 * std
    assert weight.std().item() == pytest.approx(std, rel=0.02)


def test_custom_schemes_zero_the_biases_and_unknown_ones_are_refused():
    torch.manual_seed(0)
    model = initialise(LessonMLP(), "he")
    assert all(not layer.bias.any() for layer in model.layers if hasattr(layer, "bias"))
    with pytest.raises(ValueError, match="unknown scheme 'lecun'"):
        initialise(LessonMLP(), "lecun")
    assert len(INIT_SCHEMES) == 8


def test_batch_norm_network_drops_the_biases_batch_norm_replaces():
    model = LessonMLP(batch_norm=True)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.bias is None for m in linears] == [True, True, False]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == 2
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_accuracy_in_train_mode_leaves_the_running_statistics_alone():
    torch.manual_seed(0)
    model = LessonMLP(batch_norm=True).eval()
    data = TensorDataset(
        torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (40,))
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eval_mode = accuracy_in_mode(model, data, 8, train_mode=False)
    train_mode = accuracy_in_mode(model, data, 8, train_mode=True)
    assert 0 <= eval_mode <= 1 and 0 <= train_mode <= 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not model.training


def test_moving_average():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert moving_average(values, 2).tolist() == [1.5, 2.5, 3.5]
    assert moving_average(values, 10).tolist() == [2.5]  # a window longer than the data


def test_animation_has_one_frame_per_grid(tmp_path):
    frames = []
    for k in range(3):
        images = torch.full((4, 1, 6, 6), 60 * k, dtype=torch.uint8)
        frames.append(save_png(image_grid(images, columns=2), tmp_path / f"{k}.png"))
    gif = save_animation(frames, tmp_path / "animation.gif")
    with Image.open(gif) as animation:
        assert animation.n_frames == 3 and animation.info["loop"] == 0
    with Image.open(frames[0]) as grid:  # 2 x 2 images of 6 pixels, 2-pixel borders, x 2
        assert grid.size == (2 * (2 * 6 + 3 * 2), 2 * (2 * 6 + 3 * 2))
