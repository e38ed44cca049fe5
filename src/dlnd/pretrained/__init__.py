"""Networks trained on ImageNet, reused: predictions, transfer learning, style transfer.

- :mod:`dlnd.pretrained.backbone`              the :class:`Backbone` module every network becomes
- :mod:`dlnd.pretrained.registry`              backbones by name (``pretrained:NAME``)
- :mod:`dlnd.pretrained.efficientnet_lite`     EfficientNet-Lite0, the offline default
- :mod:`dlnd.pretrained.torchvision_backbones` VGG, ResNet, EfficientNet, ... from torchvision
"""

from dlnd.pretrained.backbone import Backbone, Preprocessing, imagenet_labels
from dlnd.pretrained.registry import (
    BACKBONES,
    OFFLINE_DEFAULT,
    classifier_info,
    get_backbone_spec,
    load_backbone,
    pretrained_name,
)

__all__ = [
    "BACKBONES",
    "OFFLINE_DEFAULT",
    "Backbone",
    "Preprocessing",
    "classifier_info",
    "get_backbone_spec",
    "imagenet_labels",
    "load_backbone",
    "pretrained_name",
]
