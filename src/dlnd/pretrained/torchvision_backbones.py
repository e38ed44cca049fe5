"""torchvision's ImageNet networks as :class:`~dlnd.pretrained.backbone.Backbone` modules.

torchvision publishes each network's weights with their URL, checksum, class names and
evaluation transforms. The weights are fetched through torchvision's own API into PyTorch's
hub cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``),
where a download is checked against the hash in its file name. With ``DLND_OFFLINE=1`` nothing
is downloaded: weights that are not in the cache are a user error naming the file to fetch
and where to put it.

Each family's adapter cuts the torchvision model into stages, pool and head without copying
weights; the result computes exactly what torchvision's ``forward`` does.
"""

from __future__ import annotations

import pickle
import urllib.error
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from dlnd.data.fetch import offline
from dlnd.errors import UserError
from dlnd.pretrained.backbone import Backbone, Preprocessing

# The families dlnd can cut into stages; each name is a torchvision model builder.
FAMILIES = {
    "vgg": ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"),
    "resnet": (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
        "wide_resnet50_2",
        "wide_resnet101_2",
    ),
    "efficientnet": (
        *(f"efficientnet_b{i}" for i in range(8)),
        "efficientnet_v2_s",
        "efficientnet_v2_m",
        "efficientnet_v2_l",
    ),
    "mobilenet": ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"),
    "convnext": ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large"),
    "regnet": ("regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf"),
}


def default_weights(name: str) -> WeightsEnum:
    """The ImageNet weights torchvision recommends for model ``name``."""
    return torchvision.models.get_model_weights(name).DEFAULT


def preprocessing_of(weights: WeightsEnum) -> Preprocessing:
    """The evaluation transform torchvision publishes with ``weights`` (resize the shorter
    side to ``resize_size``, centre-crop ``crop_size``, normalise)."""
    transform = weights.transforms()
    (crop,), (resize,) = transform.crop_size, transform.resize_size
    return Preprocessing(
        crop=crop,
        crop_fraction=crop / resize,
        resample=transform.interpolation.value,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )


def hub_checkpoint_path(url: str) -> Path:
    """Where PyTorch's hub cache keeps the file downloaded from ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def torchvision_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of torchvision model ``name``, from the hub cache or downloaded
    (hash-checked) when downloads are allowed; a UserError saying what to do otherwise."""
    weights = default_weights(name)
    path = hub_checkpoint_path(weights.url)
    cached = path.is_file()
    if not cached and offline():
        raise UserError(missing_weights_message(name, weights.url, path, "downloads are off"))
    try:
        return weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise UserError(missing_weights_message(name, weights.url, path, f"{err}")) from err
    except (RuntimeError, pickle.UnpicklingError, EOFError) as err:
        # A download with the wrong hash is refused (and not kept); a cached file that does
        # not unpickle as tensors is damaged.
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        what = f"{path} is damaged ({first_line}); delete it" if cached else first_line
        raise UserError(missing_weights_message(name, weights.url, path, what)) from err


def missing_weights_message(name: str, url: str, path: Path, reason: str) -> str:
    """One sentence: which weights are missing, why, and the two ways to get them."""
    return (
        f"The ImageNet weights of {name} are not available ({reason}): download {url} and "
        f"put it at {path} (or run once online without DLND_OFFLINE=1); "
        "pretrained:efficientnet_lite0 works offline."
    )


def vgg_stages(features: nn.Sequential) -> nn.Sequential:
    """VGG's layers named as in the style-transfer literature: ``conv{block}_{n}``,
    ``bn{block}_{n}`` (the ``_bn`` variants), ``relu{block}_{n}``, ``pool{block}``.

    The ReLUs are replaced by out-of-place ones, so that a convolution's output stays
    readable after the next layer has run (torchvision's rectify in place).
    """
    named, block, number = [], 1, 0
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            number += 1
            named.append((f"conv{block}_{number}", layer))
        elif isinstance(layer, nn.BatchNorm2d):
            named.append((f"bn{block}_{number}", layer))
        elif isinstance(layer, nn.ReLU):
            named.append((f"relu{block}_{number}", nn.ReLU()))
        elif isinstance(layer, nn.MaxPool2d):
            named.append((f"pool{block}", layer))
            block, number = block + 1, 0
        else:
            raise TypeError(f"unexpected layer in a VGG: {layer}")
    return nn.Sequential(OrderedDict(named))


def vgg_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    """VGG: named layers; pool = average to 7x7, flatten, the two 4096-unit layers."""
    pool = nn.Sequential(model.avgpool, nn.Flatten(), *model.classifier[:-1])
    return vgg_stages(model.features), pool, model.classifier[-1]


def resnet_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    """ResNet, ResNeXt, Wide ResNet: ``stem``, ``layer1`` ... ``layer4``; global average."""
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [("stem", stem)] + [(f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5)]
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(OrderedDict(stages)), pool, model.fc


def features_parts(model: nn.Module, middle: str) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    """EfficientNet and MobileNet: ``features`` is stem, blocks, 1x1 head convolution, named
    ``stem``, ``{middle}1`` ..., ``head``; pool = global average + the classifier's layers
    before its last linear one (dropout; MobileNetV3's extra 1024-unit layer)."""
    *blocks, head_conv = list(model.features.children())
    names = ["stem"] + [f"{middle}{i}" for i in range(1, len(blocks))] + ["head"]
    stages = nn.Sequential(OrderedDict(zip(names, [*blocks, head_conv], strict=True)))
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), *model.classifier[:-1])
    return stages, pool, model.classifier[-1]


def efficientnet_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    return features_parts(model, "stage")


def mobilenet_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    return features_parts(model, "block")


def convnext_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    """ConvNeXt: ``stem``, then four stages with a downsampling layer between each two;
    pool = global average, layer norm, flatten."""
    names = ["stem", "stage1", "down2", "stage2", "down3", "stage3", "down4", "stage4"]
    stages = nn.Sequential(OrderedDict(zip(names, model.features.children(), strict=True)))
    layer_norm, flatten, head = model.classifier
    return stages, nn.Sequential(nn.AdaptiveAvgPool2d(1), layer_norm, flatten), head


def regnet_parts(model: nn.Module) -> tuple[nn.Sequential, nn.Module, nn.Linear]:
    """RegNet: ``stem``, ``block1`` ... ``block4``; global average."""
    stages = nn.Sequential(
        OrderedDict([("stem", model.stem), *model.trunk_output.named_children()])
    )
    return stages, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), model.fc


PARTS = {
    "vgg": vgg_parts,
    "resnet": resnet_parts,
    "efficientnet": efficientnet_parts,
    "mobilenet": mobilenet_parts,
    "convnext": convnext_parts,
    "regnet": regnet_parts,
}


def torchvision_backbone(name: str, family: str, pretrained: bool = True) -> Backbone:
    """torchvision model ``name`` as a Backbone, with its ImageNet weights (``pretrained``)
    or untrained, as an architecture for a checkpoint's weights to fill."""
    state = torchvision_state_dict(name) if pretrained else None  # missing: fail before building
    model = torchvision.models.get_model(name, weights=None)
    if state is not None:
        model.load_state_dict(state)
    stages, pool, head = PARTS[family](model)
    return Backbone(name, preprocessing_of(default_weights(name)), stages, pool, head).eval()
