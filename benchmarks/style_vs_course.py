"""Style transfer: the course's optimisation loop against dlnd's default, on one objective.

    DLND_DATA=../shared/data python benchmarks/style_vs_course.py [--size 400] [--objective course]

Both runs start from the same photo (the course's octopus) with the same artwork (Hockney,
resized to the photo's shape as the course does) and the same backbone (VGG19 when its
weights are at hand, else EfficientNet-Lite0). Every evaluation of the objective on either
image is timed and recorded by one wrapper, so the loss is measured the same way for both.

- reference, the course's loop (Udacity's style-transfer notebook): Adam, learning rate
  0.003 on the ImageNet-normalised image, 2,000 steps, no clamping;
- dlnd: the ``style-transfer`` recipe's defaults (L-BFGS, 10 epochs of 30 steps, pixels kept
  in [0, 1]) through the shared training loop, checkpoints included.

``--objective dlnd`` (default) is the objective dlnd optimises by default: content weight 1
and the course's style-layer weights (1, 0.75, 0.2, 0.2, 0.2) with dlnd's normalised Gram
matrices, style weight and smoothing. ``--objective course`` is the course's own formula
(Gram matrices summed over positions, each layer's term divided by C*H*W, style weight 1e6,
no smoothing) on the same layers. The table gives the time dlnd needs to reach the loss the
reference ends with, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def course_objective_class():
    """The course's loss as the course computes it, as a module (imports torch lazily)."""
    import torch
    from torch import nn

    class CourseObjective(nn.Module):
        """content_weight * mean((F - P)^2) + style_weight * sum_l w_l mean((F F^T - A A^T)^2)
        / (C H W), with the course's weights 1 and 1e6 and unnormalised Gram matrices."""

        def __init__(self, backbone, content, style, layers):
            super().__init__()
            self.backbone, self.layers = backbone.eval().requires_grad_(False), layers
            self.content_weight, self.style_weight = 1.0, 1e6
            with torch.no_grad():
                self.content_target = backbone.feature_maps(content, [layers.content])[
                    layers.content
                ]
                style_maps = backbone.feature_maps(style, layers.style_names)
                self.style_grams = {n: self.gram(m) for n, m in style_maps.items()}

        @staticmethod
        def gram(maps):
            flat = maps[0].reshape(maps.shape[1], -1)
            return flat @ flat.T

        def forward(self, image):
            names = [*self.layers.style_names, self.layers.content]
            maps = self.backbone.feature_maps(image, names)
            content = (maps[self.layers.content] - self.content_target).square().mean()
            style = 0.0
            for name, weight in self.layers.style:
                _, channels, height, width = maps[name].shape
                difference = self.gram(maps[name]) - self.style_grams[name]
                style = style + weight * difference.square().mean() / (channels * height * width)
            loss = self.content_weight * content + self.style_weight * style
            return {"loss": loss, "content": content, "style": style}

    return CourseObjective


def timed_objective_class():
    from torch import nn

    class Timed(nn.Module):
        """Wraps an objective; records (seconds, CPU seconds since start, loss) at every
        evaluation (CPU seconds: what a busy machine does not distort)."""

        def __init__(self, objective):
            super().__init__()
            self.objective, self.records = objective, []
            self.restart()

        def restart(self):
            self.records, self.start, self.cpu_start = [], time.perf_counter(), time.process_time()

        def elapsed(self):
            return time.perf_counter() - self.start, time.process_time() - self.cpu_start

        def forward(self, image):
            parts = self.objective(image)
            self.records.append((*self.elapsed(), float(parts["loss"].detach())))
            return parts

    return Timed


def reference_run(objective, content, steps: int):
    """The course's loop: Adam(lr=0.003) on the normalised image, from the photo."""
    import torch

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    target = ((content - mean) / std).requires_grad_(True)
    optimizer = torch.optim.Adam([target], lr=0.003)
    objective.restart()
    for _ in range(steps):
        # the course feeds the normalised tensor to VGG; dlnd's backbones normalise inside
        loss = objective(target * std + mean)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = objective.elapsed()
    with torch.no_grad():
        final = float(objective.objective(target * std + mean)["loss"])
    return seconds, final


def dlnd_run(objective, content, cfg: dict):
    """dlnd's defaults through the shared loop (a temporary run directory)."""
    import torch

    from dlnd.pretrained.style import StyleImage, StyleSettings, StyleTask
    from dlnd.recipes import get_recipe
    from dlnd.runs import RunContext
    from dlnd.trainer import TrainConfig, train

    recipe = get_recipe("style-transfer")
    settings = StyleSettings(cfg["optimizer"], cfg["lr"], cfg["steps_per_epoch"])
    task = StyleTask(objective, StyleImage(*content.shape[-2:], start=content), settings)
    with tempfile.TemporaryDirectory() as folder:
        ctx = RunContext(recipe=recipe, cfg=cfg, run_dir=Path(folder))
        objective.restart()
        result = train(ctx, task, TrainConfig.from_cfg(cfg), info={"task": "style-transfer"})
        seconds = objective.elapsed()
    with torch.no_grad():
        final = float(objective.objective(result.modules["image"]())["loss"])
    return seconds, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400, help="longer side of the photo")
    parser.add_argument("--steps", type=int, default=2000, help="the reference's steps")
    parser.add_argument("--objective", choices=("dlnd", "course"), default="dlnd")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = parser.parse_args()
    import torch
    from torch.nn import functional as F

    from dlnd.data import resolve
    from dlnd.pretrained import get_backbone_spec, load_backbone
    from dlnd.pretrained.recipes import style_backbone
    from dlnd.pretrained.style import StyleObjective, load_picture, style_layers_for
    from dlnd.recipes import get_recipe, resolve_config

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = resolve("style-images")
    content = load_picture(folder / "octopus.jpg", args.size)
    style = load_picture(folder / "hockney.jpg", args.size)
    style = F.interpolate(style, size=content.shape[-2:], mode="bicubic").clamp(0, 1)
    name = style_backbone("auto")
    backbone = load_backbone(name)
    layers = style_layers_for(get_backbone_spec(name).family)
    if args.objective == "course":
        objective = course_objective_class()(backbone, content, style, layers)
    else:
        objective = StyleObjective(backbone, content, style, layers)
    timed = timed_objective_class()(objective)
    cfg = resolve_config(get_recipe("style-transfer"), {"device": "cpu", "out": "unused"})

    ref_seconds, ref_final = reference_run(timed, content, args.steps)
    dlnd_seconds, dlnd_final = dlnd_run(timed, content, cfg)
    reached = next(((t, cpu) for t, cpu, loss in timed.records if loss <= ref_final), None)
    dlnd_steps = cfg["epochs"] * cfg["steps_per_epoch"]

    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"# {machine}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# backbone {name}, objective {args.objective}, image {tuple(content.shape[-2:])}\n")
    rows = [
        ("course: Adam lr 0.003", args.steps, ref_seconds, ref_final, ref_seconds),
        (f"dlnd: {cfg['optimizer']}", dlnd_steps, dlnd_seconds, dlnd_final, reached),
    ]
    print("| run | steps | seconds (CPU) | final loss | to the reference's final loss: s (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for run, steps, (wall, cpu), final, to_reach in rows:
        reach = f"{to_reach[0]:.1f} ({to_reach[1]:.1f})" if to_reach else "not reached"
        print(f"| {run} | {steps} | {wall:.1f} ({cpu:.1f}) | {final:.4g} | {reach} |")
    if reached is not None:
        wall, cpu = ref_seconds[0] / reached[0], ref_seconds[1] / reached[1]
        print(f"\ndlnd reaches the course's final loss {wall:.1f}x faster ({cpu:.1f}x in CPU time)")


if __name__ == "__main__":
    main()
