"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016): an image optimised so that a
network trained on ImageNet sees the *content* of one picture and the *style* of another.

A backbone turns an image into feature maps F^l at its layers l: C_l channels at
M_l = H_l x W_l positions (:meth:`~dlnd.pretrained.backbone.Backbone.feature_maps`).

- Content is what is where: the feature maps themselves, at one deep layer c::

      L_content(x) = mean_{i,k} (F^c_ik(x) - F^c_ik(photo))^2

- Style is which features occur together, wherever they occur: the Gram matrix::

      G^l_ij = (1 / M_l) sum_k F^l_ik F^l_jk                      (C_l x C_l)

  the mean over positions of the outer product of the feature vector with itself. The sum
  over positions throws the arrangement away and keeps textures, colours and strokes::

      L_style(x) = sum_l w_l mean_{i,j} (G^l_ij(x) - G^l_ij(art))^2

  (Gatys's E_l = 1 / (4 C_l^2 M_l^2) sum (G - A)^2 with unnormalised Grams is this term / 4.)

- The image minimises ``content_weight * L_content + style_weight * L_style``, starting from
  the photo, by L-BFGS or Adam on its pixels, which are kept in [0, 1].

VGG's features are rectified (ReLU outputs: non-negative, spread out), and VGG is what the
method was made with. The blocks of EfficientNet-Lite0 end in a linear projection: signed
activations with a few large peaks (standard deviation 6-10, extremes +-50), whose Gram
matrices are dominated by those peaks; optimised directly they give high-frequency hatching
instead of strokes. Wang, Li & Vasconcelos (CVPR 2021, "Rethinking and improving the
robustness of image style transfer") smooth the activations with a softmax over all of a
layer's activations before the Gram matrix. Taken literally (temperature 1) that softmax of
Lite0's peaks is almost one-hot, so :func:`smooth_activations` divides by a temperature
``T_l = smoothing * sigma_l`` (sigma_l: the standard deviation of the style image's
activations at layer l, a constant) and multiplies by the number of activations, so that the
smoothed map is positive with mean 1 whatever the image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from dlnd.errors import UserError
from dlnd.pretrained.backbone import Backbone
from dlnd.trainer import Monitor, Step, Task
from dlnd.vision.datasets import read_image_file

EXIF_ORIENTATION = 0x0112
ROTATED_EXIF = (5, 6, 7, 8)  # orientations that swap width and height


# --- the maths -------------------------------------------------------------------------------


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``features: (N, C, H, W)`` -> Gram matrices ``(N, C, C)``,
    ``G_ij = (1 / (H W)) sum_k F_ik F_jk`` over the H*W positions k."""
    n, channels, height, width = features.shape
    flat = features.reshape(n, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


def smooth_activations(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """Wang et al.'s softmax smoothing (module docstring), per image.

    ``features: (N, C, H, W)`` -> the same shape: the P = C*H*W activations ``a`` of each image
    become ``P * softmax(a / temperature)``, positive with mean 1.
    """
    n = features.shape[0]
    flat = features.reshape(n, -1)
    return (flat / temperature).softmax(dim=1).mul(flat.shape[1]).reshape(features.shape)


@dataclass(frozen=True)
class StyleLayers:
    """Where a backbone's content and style are read, and the weights that suit its scale.

    ``style``: ``(layer, weight)`` pairs; ``smoothing``: the temperature factor of
    :func:`smooth_activations` (0: raw activations); ``style_weight``: beta, with the content
    weight alpha = 1.
    """

    content: str
    style: tuple[tuple[str, float], ...]
    smoothing: float
    style_weight: float

    @property
    def style_names(self) -> list[str]:
        return [name for name, _ in self.style]


# The course's layers: conv1_1 ... conv5_1 for style and conv4_2 for content. torchvision's
# ReLUs rectify in place, so the course's "conv" features were the ReLU outputs; dlnd's VGG
# keeps both, and the ReLUs are named here. The weights are the course's objective: its layer
# term w_l mean((F F^T - A A^T)^2) / (C H W), with Gram matrices summed over positions, is
# w_l (H W / C) mean((G - A)^2) with dlnd's, so its weights (1, 0.75, 0.2, 0.2, 0.2) x 1e6
# become these at dlnd's default 400 x 270 octopus (H W / C = 1688, 211, 26.2, 3.22, 0.781).
VGG_LAYERS = StyleLayers(
    content="relu4_2",
    style=(
        ("relu1_1", 1.0),
        ("relu2_1", 0.0938),
        ("relu3_1", 3.10e-3),
        ("relu4_1", 3.82e-4),
        ("relu5_1", 9.26e-5),
    ),
    smoothing=0.0,
    style_weight=1.69e9,
)
# EfficientNet-Lite0, the same strides as the course's VGG layers where they exist (/2 ... /32
# instead of /1 ... /16) and the course's weights; content at stride 16. Chosen by looking at
# the octopus in Hockney's style (benchmarks/RESULTS.md).
LITE0_LAYERS = StyleLayers(
    content="stage4",
    style=(("stem", 1.0), ("stage2", 0.75), ("stage3", 0.2), ("stage4", 0.2), ("stage6", 0.2)),
    smoothing=2.0,
    style_weight=1e4,
)
FAMILY_LAYERS = {"vgg": VGG_LAYERS, "efficientnet_lite": LITE0_LAYERS}


def style_layers_for(family: str) -> StyleLayers:
    """The default :class:`StyleLayers` of a backbone family; a UserError for the others."""
    if family not in FAMILY_LAYERS:
        raise UserError(
            f"Style transfer knows the layers of VGG and EfficientNet-Lite backbones, not of "
            f"the {family} family; use --backbone vgg19 or efficientnet_lite0."
        )
    return FAMILY_LAYERS[family]


class StyleObjective(nn.Module):
    """``content_weight * L_content + style_weight * L_style`` (module docstring) for one photo
    and one artwork, whose targets are computed once.

    ``content: (1, 3, H, W)`` and ``style: (1, 3, H', W')`` pixels in [0, 1]. Calling it on an
    image ``(1, 3, H, W)`` returns ``{"loss", "content", "style"}`` (scalars; ``content`` and
    ``style`` unweighted).
    """

    def __init__(
        self,
        backbone: Backbone,
        content: torch.Tensor,
        style: torch.Tensor,
        layers: StyleLayers,
        content_weight: float = 1.0,
        style_weight: float | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.layers = layers
        self.content_weight = content_weight
        self.style_weight = layers.style_weight if style_weight is None else style_weight
        with torch.no_grad():
            style_maps = backbone.feature_maps(style, layers.style_names)
            # T_l = smoothing * sigma_l: a constant of the artwork, not of the image optimised.
            self.temperatures = {
                name: layers.smoothing * float(maps.float().std())
                for name, maps in style_maps.items()
            }
            for name, maps in style_maps.items():
                self.register_buffer(f"style_gram_{name}", gram_matrix(self.smoothed(name, maps)))
            content_maps = backbone.feature_maps(content, [layers.content])
            self.register_buffer("content_target", content_maps[layers.content])

    def smoothed(self, name: str, maps: torch.Tensor) -> torch.Tensor:
        temperature = self.temperatures[name]
        return smooth_activations(maps, temperature) if temperature > 0 else maps

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        names = [*self.layers.style_names, self.layers.content]
        maps = {name: m.float() for name, m in self.backbone.feature_maps(image, names).items()}
        content = (maps[self.layers.content] - self.content_target).square().mean()
        style = sum(
            weight
            * (gram_matrix(self.smoothed(name, maps[name])) - self.get_buffer(f"style_gram_{name}"))
            .square()
            .mean()
            for name, weight in self.layers.style
        )
        loss = self.content_weight * content + self.style_weight * style
        return {"loss": loss, "content": content, "style": style}


def with_smoothing(
    layers: StyleLayers,
    smoothing: float,
    backbone: Backbone,
    content: torch.Tensor,
    style: torch.Tensor,
) -> StyleLayers:
    """``layers`` with another ``smoothing``, and its style weight rescaled so that the
    weighted style loss of the photo, where the optimisation starts, stays what it was: the
    balance between content and style is kept and only the features differ (the raw and the
    smoothed Gram matrices differ in scale by orders of magnitude)."""
    changed = replace(layers, smoothing=smoothing)
    with torch.no_grad():
        before = StyleObjective(backbone, content, style, layers)(content)["style"]
        after = StyleObjective(backbone, content, style, changed)(content)["style"]
    return replace(changed, style_weight=layers.style_weight * float(before / after))


# --- pictures --------------------------------------------------------------------------------


def picture_size(path: Path, long_side: int) -> tuple[int, int]:
    """``(width, height)`` of the picture in ``path`` (upright, as EXIF says) scaled so that
    its longer side is ``long_side``; a UserError naming a file that is not a picture."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in ROTATED_EXIF:
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(
            f"{path} is not a readable image ({err}); expected a JPEG, PNG, BMP or WebP file."
        ) from err
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_picture(path: str | Path, long_side: int) -> torch.Tensor:
    """A picture file -> pixels ``(1, 3, H, W)`` float32 in [0, 1], its longer side
    ``long_side`` pixels (bicubic), its proportions kept."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the path of a JPEG or PNG picture.")
    width, height = picture_size(path, long_side)
    spec = {"width": width, "height": height, "color": "RGB", "resample": "bicubic"}
    return pixels_to_tensor(read_image_file(path, spec))


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``(3, H, W)`` uint8 -> ``(1, 3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(pixels.astype(np.float32) / 255).unsqueeze(0)


def resize_picture(picture: Image.Image, long_side: int) -> torch.Tensor:
    """:func:`load_picture` for a PIL image in memory (the embedded pictures)."""
    scale = long_side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resized = picture.convert("RGB").resize(size, Image.BICUBIC)
    return pixels_to_tensor(np.asarray(resized).transpose(2, 0, 1))


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> an RGB PIL image."""
    pixels = image.detach().float().cpu().reshape(3, *image.shape[-2:]).clamp(0, 1)
    return Image.fromarray((pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


# --- the optimisation, as a task for the shared loop -------------------------------------------


class StyleImage(nn.Module):
    """The image being optimised: a parameter ``pixels (1, 3, height, width)`` in [0, 1]."""

    def __init__(self, height: int, width: int, start: torch.Tensor | None = None) -> None:
        super().__init__()
        initial = torch.zeros(1, 3, height, width) if start is None else start.clone()
        # contiguous: L-BFGS flattens the gradient with view()
        self.pixels = nn.Parameter(initial.contiguous())

    def forward(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def clamp_(self) -> None:
        """Put every pixel back in [0, 1] after an update (a projection onto valid images)."""
        self.pixels.clamp_(0, 1)


OPTIMIZERS = ("lbfgs", "adam")
LBFGS_HISTORY = 20  # curvature pairs kept: 20 x the image's size in memory


class LBFGS(torch.optim.LBFGS):
    """PyTorch's L-BFGS whose state fits a safetensors checkpoint, so that ``--resume``
    continues exactly: its curvature history (lists of tensors) is saved stacked.

    The optimizer keeps the last ``history_size`` pairs (s = step, y = change of gradient)
    and ``ro = 1 / (y . s)``; from them it builds the quasi-Newton direction.
    """

    HISTORY = ("old_dirs", "old_stps", "ro")

    def state_dict(self) -> dict[str, Any]:
        saved = super().state_dict()
        # the packed state shares its dicts with the live optimizer: build new ones
        saved["state"] = {
            key: {
                name: torch.stack(value) if name in self.HISTORY and value else value
                for name, value in state.items()
                if name != "al"  # scratch space, refilled at every step
                and not (name in self.HISTORY and not value)
            }
            for key, state in saved["state"].items()
        }
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for state in state_dict["state"].values():
            for name in self.HISTORY:
                stacked = state.get(name)
                state[name] = list(stacked.unbind(0)) if stacked is not None else []
        super().load_state_dict(state_dict)


@dataclass
class StyleSettings:
    """How the image is optimised: ``optimizer`` (``lbfgs`` or ``adam``), its ``lr`` (L-BFGS:
    a factor on its quasi-Newton step, 1 as published; Adam: a step in pixel units),
    ``steps_per_epoch`` updates per epoch of the loop, ``snapshot_size`` the longer side of
    the intermediate images kept for the grid."""

    optimizer: str = "lbfgs"
    lr: float = 1.0
    steps_per_epoch: int = 30
    snapshot_size: int = 160


def image_optimizer(image: StyleImage, settings: StyleSettings) -> torch.optim.Optimizer:
    """The optimizer of the image's pixels that ``settings`` name."""
    params, lr = [image.pixels], settings.lr
    if settings.optimizer == "lbfgs":
        # One iteration per update and no line search: one forward and backward pass per
        # step, like Adam, so that steps cost the same and progress is even.
        return LBFGS(params, lr=lr, max_iter=1, history_size=LBFGS_HISTORY)
    return torch.optim.Adam(params, lr=lr)


def stylise(
    objective: StyleObjective,
    start: torch.Tensor,
    settings: StyleSettings,
    steps: int,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """``steps`` updates of an image ``(1, 3, H, W)`` that starts as ``start`` (the photo),
    outside the training loop (the model server runs this); ``on_step(step, image)`` after
    each. Returns the image, detached, in [0, 1]."""
    image = StyleImage(*start.shape[-2:], start=start)
    optimizer = image_optimizer(image, settings)

    def loss() -> torch.Tensor:  # L-BFGS may evaluate it more than once
        optimizer.zero_grad()
        value = objective(image())["loss"]
        value.backward()
        return value

    for step in range(1, steps + 1):
        optimizer.step(loss)
        image.clamp_()
        if on_step is not None:
            on_step(step, image().detach())
    return image().detach()


class StyleTask(Task):
    """Style transfer for :func:`dlnd.loop.train`: one "epoch" is ``steps_per_epoch`` updates
    of the image, so that progress, checkpoints, ``--resume`` and learning curves work as for
    any run. The loop keeps the last image (no monitor)."""

    monitor: Monitor | None = None

    def __init__(self, objective: StyleObjective, image: StyleImage, settings: StyleSettings):
        if settings.optimizer not in OPTIMIZERS:
            raise UserError(
                f"Unknown optimizer {settings.optimizer!r} for style transfer; choose "
                f"{' or '.join(OPTIMIZERS)}."
            )
        self.objective, self.image, self.settings = objective, image, settings
        self.history: list[dict[str, float]] = []  # one row per update: the loss curves
        self.snapshots: dict[int, torch.Tensor] = {}  # epoch -> small copy of the image

    def modules(self) -> dict[str, nn.Module]:
        return {"image": self.image}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        # The image is on the loop's device now; the frozen network and its targets follow.
        self.objective.to(self.image.pixels.device)
        return {"image": (image_optimizer(self.image, self.settings), None)}

    def train_batches(self, epoch: int, dist: Any) -> list[int]:
        """The step numbers of the epoch: there is no data, only updates."""
        first = (epoch - 1) * self.settings.steps_per_epoch
        return list(range(first, first + self.settings.steps_per_epoch))

    def batch_size(self, batch: Any) -> int:
        return 1

    def train_step(self, batch: int, step: Step) -> dict[str, torch.Tensor]:
        last: dict[str, torch.Tensor] = {}

        def loss() -> torch.Tensor:  # L-BFGS may evaluate it more than once
            with step.autocast():
                last.update(self.objective(self.image()))
            return last["loss"]

        step.update("image", loss)
        self.image.clamp_()
        values = {name: value.detach() for name, value in last.items()}
        self.history.append({"step": batch + 1, **{k: float(v) for k, v in values.items()}})
        return values

    def end_epoch(self, epoch: int, ctx: Any) -> dict[str, float]:
        picture = self.image().detach().float().cpu()
        scale = self.settings.snapshot_size / max(picture.shape[-2:])
        self.snapshots[epoch] = nn.functional.interpolate(
            picture, scale_factor=min(scale, 1.0), mode="area"
        )
        return {}

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"snapshot_{epoch}": image for epoch, image in self.snapshots.items()}
        return tensors, {"history": self.history}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.snapshots = {int(key.split("_")[1]): image for key, image in tensors.items()}
        self.history = list(meta["history"])


# --- figures ---------------------------------------------------------------------------------


def snapshot_grid(
    snapshots: dict[int, torch.Tensor], steps_per_epoch: int, columns: int = 5
) -> Any:
    """The image after each epoch, left to right and top to bottom, titled with its step."""
    from matplotlib.figure import Figure

    epochs = sorted(snapshots)
    columns = max(1, min(columns, len(epochs)))
    rows = max(1, math.ceil(len(epochs) / columns))
    height, width = snapshots[epochs[0]].shape[-2:] if epochs else (1, 1)
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows * height / width + 0.5))
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes:
        ax.set_axis_off()
    for ax, epoch in zip(axes, epochs, strict=False):
        ax.imshow(to_pil(snapshots[epoch]))
        ax.set_title(f"step {epoch * steps_per_epoch}", fontsize=9)
    figure.suptitle("the image during the optimisation")
    figure.tight_layout()
    return figure


def loss_curves(history: Sequence[dict[str, float]], weights: tuple[float, float]) -> Any:
    """Total, weighted content and weighted style loss against the update step (log scale)."""
    from matplotlib.figure import Figure

    content_weight, style_weight = weights
    steps = [row["step"] for row in history]
    figure = Figure(figsize=(6.5, 3.8))
    ax = figure.subplots()
    ax.plot(steps, [row["loss"] for row in history], label="total", color="black")
    ax.plot(steps, [content_weight * row["content"] for row in history], label="content x weight")
    ax.plot(steps, [style_weight * row["style"] for row in history], label="style x weight")
    ax.set_yscale("log")
    ax.set_xlabel("update step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return figure


def pictures_figure(pictures: dict[str, torch.Tensor], title: str = "") -> Any:
    """Pictures ``(1, 3, H, W)`` side by side, each titled with its name."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(pictures), 3.6))
    axes = figure.subplots(1, len(pictures), squeeze=False)[0]
    for ax, (name, picture) in zip(axes, pictures.items(), strict=True):
        ax.imshow(to_pil(picture))
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
