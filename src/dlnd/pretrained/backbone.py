"""A network trained on ImageNet, cut into the parts that other tasks reuse.

Every backbone, whatever its family, is the same module::

    pixels (N, 3, H, W) in [0, 1]
      -> normalize   (x - mean) / std, the statistics it was trained with
      -> stages      named steps whose outputs are feature maps: conv1_1 ... pool5 for VGG,
                     stem, stage1 ... head for EfficientNet, stem, layer1 ... layer4 for ResNet
      -> pool        the penultimate vector (N, feature_dim): what transfer learning trains on
      -> head        nn.Linear(feature_dim, 1000): the ImageNet classifier

so that transfer learning replaces ``head`` (and fine-tunes the last stages), style transfer
reads :meth:`Backbone.feature_maps`, and ``dlnd predict``/``dlnd export`` use the whole
module, which needs nothing but pixel values in [0, 1] (like dlnd's own classifiers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlnd.errors import UserError
from dlnd.vision.models import Normalize

LABELS_FILE = Path(__file__).with_name("imagenet_classes.json")


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the order of every backbone's outputs."""
    return tuple(json.loads(LABELS_FILE.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes a backbone's input, as in its published evaluation.

    The shorter side is scaled so that the centre ``crop`` x ``crop`` square covers
    ``crop_fraction`` of it (224 of 256 pixels: 0.875), resampled with ``resample``
    (``"bilinear"`` or ``"bicubic"``); pixels are scaled to [0, 1] and normalised with
    ``mean``/``std`` inside the model.
    """

    crop: int
    crop_fraction: float
    resample: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def input_spec(self) -> dict[str, Any]:
        """The input spec (see :mod:`dlnd.vision.datasets`) that ``predict`` and the model
        card use to prepare an image file."""
        return {
            "channels": 3,
            "height": self.crop,
            "width": self.crop,
            "color": "RGB",
            "resize": "center-crop",
            "crop_fraction": self.crop_fraction,
            "resample": self.resample,
            "invert": False,
            "mean": list(self.mean),
            "std": list(self.std),
        }


class Backbone(nn.Module):
    """An ImageNet network as ``normalize -> stages -> pool -> head`` (module docstring).

    ``stages`` is an ``nn.Sequential`` with named children (:attr:`layer_names`); ``pool``
    turns the last feature map into ``(N, feature_dim)``; ``head`` is the linear classifier.
    """

    def __init__(
        self,
        name: str,
        preprocessing: Preprocessing,
        stages: nn.Sequential,
        pool: nn.Module,
        head: nn.Linear,
    ) -> None:
        super().__init__()
        self.name = name
        self.preprocessing = preprocessing
        self.normalize = Normalize(preprocessing.mean, preprocessing.std)
        self.stages = stages
        self.pool = pool
        self.head = head

    @property
    def layer_names(self) -> list[str]:
        """The names :meth:`feature_maps` accepts, from the input side to the output side."""
        return [name for name, _ in self.stages.named_children()]

    @property
    def feature_dim(self) -> int:
        """Length of the pooled feature vector that :meth:`features` returns."""
        return self.head.in_features

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels: (N, 3, H, W)`` in [0, 1] -> the penultimate features ``(N, feature_dim)``."""
        return self.pool(self.stages(self.normalize(pixels)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels: (N, 3, H, W)`` in [0, 1] -> ImageNet logits ``(N, 1000)``."""
        return self.head(self.features(pixels))

    def feature_maps(self, pixels: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The outputs of the named stages for ``pixels: (N, 3, H, W)`` in [0, 1], each
        ``(N, C, H', W')``, in the order of ``names``; stops after the deepest one asked for."""
        unknown = [name for name in names if name not in self.layer_names]
        if unknown:
            raise UserError(
                f"{self.name} has no layer {', '.join(map(repr, unknown))}; its layers are "
                f"{', '.join(self.layer_names)}."
            )
        wanted, found = set(names), {}
        x = self.normalize(pixels)
        for name, stage in self.stages.named_children():
            x = stage(x)
            if name in wanted:
                found[name] = x
                if len(found) == len(wanted):
                    break
        return {name: found[name] for name in names}
