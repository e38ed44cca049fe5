"""The classifiers: input normalisation inside the model, output shapes, reports' arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnd.vision import reports
from dlnd.vision.models import CourseCifarNet, Normalize, build_classifier


def test_normalize_is_per_channel_standardisation():
    layer = Normalize([0.5, 0.25, 0.0], [0.5, 0.25, 2.0])
    x = torch.rand(4, 3, 5, 5)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 0.25, x[:, 2] / 2], dim=1)
    torch.testing.assert_close(layer(x), expected)
    assert set(layer.state_dict()) == {"mean", "std"}  # saved with the weights


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("mlp", (1, 28, 28)),
        ("cnn", (1, 28, 28)),
        ("resnet", (3, 32, 32)),
        ("resnet", (3, 64, 64)),
        ("cnn", (3, 64, 64)),
    ],
)
def test_classifiers_map_pixels_to_logits(name, shape):
    model = build_classifier(name, shape, 7, [0.5] * shape[0], [0.25] * shape[0], width=16)
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()
    # The first layer is the fixed normalisation, so the model takes plain [0, 1] pixels.
    assert isinstance(next(model.children()), Normalize)


def test_course_cifar_net_has_the_course_shape():
    model = CourseCifarNet()
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [16, 32, 64]
    assert model.fc1.out_features == 500
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_confusion_matrix_and_per_class_accuracy_count_by_hand():
    targets = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])
    confusion = reports.confusion_matrix(predicted, targets, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]
    torch.testing.assert_close(
        reports.per_class_accuracy(confusion), torch.tensor([0.5, 2 / 3, 0.0], dtype=torch.float64)
    )


def test_first_layer_maps_are_the_first_convolution_of_the_normalised_image():
    torch.manual_seed(0)
    model = build_classifier("cnn", (1, 12, 12), 3, [0.5], [0.25], width=8).eval()
    image = torch.rand(1, 12, 12)
    maps = reports.first_layer_maps(model, image)
    conv = reports.first_conv(model)
    expected = nn.functional.conv2d((image[None] - 0.5) / 0.25, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(maps, expected[0])


def test_report_figures_draw_every_panel():
    images = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8)
    targets = torch.arange(30) % 3
    probabilities = torch.softmax(torch.randn(30, 3), dim=1)
    wrong = int((probabilities.argmax(1) != targets).sum())
    figure = reports.misclassified_figure(images, targets, probabilities, ["a", "b", "c"], limit=12)
    assert sum(ax.get_visible() for ax in figure.axes) == min(wrong, 12)
    confusion = reports.confusion_matrix(probabilities.argmax(1), targets, 3)
    assert len(reports.confusion_figure(confusion, ["a", "b", "c"]).axes) == 2  # + colour bar
    weight = torch.randn(10, 3, 3, 3)
    figure = reports.filters_figure(weight)
    assert sum(ax.get_visible() for ax in figure.axes) == 10
