"""Training a GAN with the shared loop: the minimax game as one visible step.

The discriminator D wants to tell real images x from generated ones G(z); the generator G
wants to fool it. Goodfellow et al. (2014) write the game as

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

For a fixed G the best D is D*(x) = p_data(x) / (p_data(x) + p_G(x)), and with it the value
is 2 JS(p_data || p_G) - 2 ln 2: G wins when its distribution equals the data's, where
D(x) = 1/2 everywhere. In practice each batch makes one gradient step for each player:

1. Update D: minimise the binary cross-entropy of D on real images (target 1, or 1 - s with
   label smoothing s, so that D does not grow over-confident) and on generated ones
   (target 0), i.e. maximise log D(x) + log(1 - D(G(z))).
2. Update G: minimise the cross-entropy of D(G(z)) against target 1, i.e. maximise
   log D(G(z)). This "non-saturating" loss has the same fixed point as minimising
   log(1 - D(G(z))) but strong gradients early on, when D rejects every sample easily.

With ``--r1 GAMMA`` the discriminator's loss also has the R1 penalty (Mescheder et al. 2018),
(GAMMA / 2) E_x ||grad_x D(x)||^2 over real images (D's logit): D may not change steeply
around the data, so it cannot memorise a small training set and its gradients stay useful to
G. As in StyleGAN2 (Karras et al. 2020) it is computed lazily, every ``R1_EVERY``-th
discriminator update, with its weight multiplied by ``R1_EVERY``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dlnd import distributed
from dlnd.distributed import DistState
from dlnd.generative import figures
from dlnd.generative.judge import (
    Judge,
    SampleScores,
    Scorer,
    inception_fid,
    inception_fid_metric,
    load_judge,
)
from dlnd.generative.models import GAN, build_gan, latent_path, to_model_range
from dlnd.generative.nearest import CopyCheck, copy_check, nearest_images
from dlnd.launch import execute
from dlnd.recipes import get_recipe, resolve_config
from dlnd.report import table_lines
from dlnd.runs import FINAL_FILE, RunContext
from dlnd.trainer import (
    IndexedBatches,
    Step,
    Task,
    TrainConfig,
    batch_indices,
    make_schedule,
    train,
)
from dlnd.vision.datasets import ImageData

GRID_SIZE = 64  # fixed-noise samples drawn after every epoch (an 8 x 8 grid)
SAMPLES_DIR = "samples"  # RUN_DIR/samples/epoch_NNN.png: the grid of each epoch
R1_EVERY = 4  # discriminator updates per R1 penalty (lazy regularisation)
COPY_SAMPLES = 500  # generated and test images whose nearest training image is measured
NEAREST_SHOWN, NEAREST_K = 8, 3  # samples shown beside their closest training images

# The classifier recipe that trains each data set's judge, and its settings for a full run
# (a quick run uses the recipe's own quick settings).
JUDGE_RECIPES = {"mnist": "mnist-cnn", "cifar10": "cifar10-cnn", "folder": "image-classifier"}
JUDGE_SETTINGS: dict[str, dict[str, Any]] = {
    "mnist": {"epochs": 6},
    "cifar10": {"epochs": 4, "width": 32, "batch_size": 512, "lr": 0.3},
    "folder": {"epochs": 12, "width": 16},
}


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s weights inside the block (they are not being updated)."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """(1/2) E_x ||grad_x D(x)||^2: half the mean squared length of the gradient of the
    discriminator's logit with respect to each real image (N, C, H, W), differentiable
    with respect to D's weights (the penalty's own gradient needs the second derivative)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real).float()
    (gradient,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * gradient.pow(2).flatten(1).sum(dim=1).mean()


class GanTask(Task):
    """One discriminator update and one generator update per batch of real images.

    ``images``: the real training images, uint8 (N, C, H, W). After every epoch the
    generator draws the same fixed noise (a grid saved as ``samples/epoch_NNN.png``) and
    ``scorer.samples`` images scored by the judge (FID, class shares, confidence).
    """

    monitor = None  # no validation loss says which epoch is best: the last weights are kept

    def __init__(
        self,
        gan: GAN,
        images: torch.Tensor,
        cfg: TrainConfig,
        *,
        beta1: float,
        label_smoothing: float,
        r1: float = 0.0,
        scorer: Scorer | None = None,
    ):
        self.gan, self.images, self.cfg = gan, images, cfg
        self.beta1 = beta1
        self.real_target = 1.0 - label_smoothing
        self.r1 = r1
        self.d_updates = 0  # counts the discriminator's updates, for the lazy R1 penalty
        self.scorer = scorer
        self.fixed_noise = gan.generator.latent(GRID_SIZE).cpu()

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.gan.generator, "discriminator": self.gan.discriminator}

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        # Adam with beta1 = 0.5 (Radford et al.): a shorter memory of past gradients suits a
        # game whose loss surface moves under each player at every step.
        made = {}
        for name, module in self.modules().items():
            optimizer = torch.optim.Adam(
                module.parameters(), lr=self.cfg.lr, betas=(self.beta1, 0.999)
            )
            made[name] = (optimizer, make_schedule(self.cfg, optimizer, total_steps))
        return made

    def train_batches(self, epoch: int, dist: DistState) -> IndexedBatches:
        indices = batch_indices(
            len(self.images), self.cfg.batch_size, shuffle=True, seed=self.cfg.seed,
            epoch=epoch, rank=dist.rank, world=dist.world_size,
        )  # fmt: skip
        if len(self.images) % self.cfg.batch_size and len(indices) > 1:
            indices = indices[:-1]  # a small last batch gives batch norm poor statistics
        return IndexedBatches(self.images, indices)

    def train_step(self, batch: torch.Tensor, step: Step) -> dict[str, torch.Tensor]:
        generator, discriminator = self.gan.generator, self.gan.discriminator
        real = to_model_range(batch)
        if self.cfg.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        real_targets = torch.full((len(real),), self.real_target, device=real.device)
        zeros, ones = torch.zeros_like(real_targets), torch.ones_like(real_targets)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        with step.autocast():
            fake = generator.sample(len(real))
            real_logits = discriminator(real).float()
            fake_logits = discriminator(fake.detach()).float()  # no gradient into G here
        d_loss = F.binary_cross_entropy_with_logits(
            real_logits, real_targets
        ) + F.binary_cross_entropy_with_logits(fake_logits, zeros)
        penalised = d_loss
        if self.r1 > 0 and self.d_updates % R1_EVERY == 0:
            # outside autocast, so in float32 even under --bf16: it differentiates a gradient
            penalised = d_loss + self.r1 * R1_EVERY * r1_penalty(discriminator, real)
        step.update("discriminator", penalised)
        self.d_updates += 1

        # (2) Update G: maximise log D(G(z)), judged by the discriminator just updated
        with step.autocast(), frozen(discriminator):
            g_loss = F.binary_cross_entropy_with_logits(discriminator(fake).float(), ones)
        step.update("generator", g_loss)

        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x)
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z)) before D's update
        }

    def end_epoch(self, epoch: int, ctx: RunContext) -> dict[str, float]:
        generator = self.gan.generator
        if ctx.is_main:
            grid = generator.render(self.fixed_noise)
            figures.save_png(figures.image_grid(grid, columns=8), epoch_grid(ctx.run_dir, epoch))
        if self.scorer is None:
            return {}
        scores = None
        if ctx.is_main:
            scores = self.scorer.score(generator.generate(self.scorer.samples, self.cfg.seed))
        scores = distributed.broadcast_object(scores)  # sync point: rank 0 scored for all
        return scores.metrics()

    def extra_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {"fixed_noise": self.fixed_noise}, {"d_updates": self.d_updates}

    def load_extra_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.fixed_noise = tensors["fixed_noise"]
        self.d_updates = int(meta.get("d_updates", 0))


def epoch_grid(run_dir: Path, epoch: int) -> Path:
    return run_dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png"


# --- the judge ---------------------------------------------------------------------------------


def prepare_judge(ctx: RunContext, dataset: str, image_shape: tuple[int, ...]) -> Judge:
    """The run's judge: ``--judge RUN_DIR`` if given, else a classifier trained by dlnd on
    the same data into ``RUN_DIR/judge`` (a run directory of its own; kept on ``--resume``)."""
    if ctx.cfg["judge"]:
        return load_judge(ctx.cfg["judge"], image_shape)
    folder = ctx.run_dir / "judge"
    if not (folder / FINAL_FILE).exists():
        if ctx.is_main:
            shutil.rmtree(folder, ignore_errors=True)  # an unfinished judge starts again
        recipe = get_recipe(JUDGE_RECIPES[dataset])
        flags = {key: ctx.cfg[key] for key in ("seed", "device", "data_dir", "embedded", "quick")}
        if dataset == "folder":
            flags["image_size"] = image_shape[1]
        settings = {} if ctx.cfg["quick"] else JUDGE_SETTINGS[dataset]
        ctx.info(f"training the judge (a {recipe.name} classifier) into {folder}")
        execute(recipe, resolve_config(recipe, {**settings, **flags}), run_dir=folder)
    return load_judge(folder, image_shape)


# --- a whole GAN run ---------------------------------------------------------------------------


def train_gan(ctx: RunContext, data: ImageData, dataset: str, info: dict[str, Any]) -> dict:
    """Train the GAN ``info`` describes on ``data``'s training and validation images, judge
    it against the test images after every epoch, save its figures; return final metrics."""
    cfg = TrainConfig.from_cfg(ctx.cfg)
    gan = build_gan(info)  # first, so that its weights depend on the seed alone
    real = torch.cat([data.train.tensors[0], data.val.tensors[0]])
    task = GanTask(
        gan,
        real,
        cfg,
        beta1=ctx.cfg["beta1"],
        label_smoothing=ctx.cfg["label_smoothing"],
        r1=ctx.cfg["r1"],
    )
    inception = inception_fid_metric() if ctx.cfg["inception_fid"] else None
    ctx.info(data.source)
    judge = prepare_judge(ctx, dataset, tuple(info["image_shape"]))
    judge.to(distributed.resolve_device(cfg.device))
    task.scorer = Scorer(judge, data.test.tensors[0], real, ctx.cfg["fid_samples"], cfg.seed)
    floor = task.scorer.floor
    accuracy = judge.description["test_accuracy"]
    ctx.info(
        f"judge: the {judge.description['recipe']} run {judge.description['run_dir']}"
        + (f" (test accuracy {accuracy:.2%})" if accuracy is not None else "")
        + f"; FID of {task.scorer.samples} real training images against {len(data.test)} "
        f"test images (the floor): {floor.fid:.3f}"
    )
    info = {**info, "judge": judge.description, "fid_floor": floor.fid}
    result = train(ctx, task, cfg, info=info)
    generator = result.modules["generator"]
    generated = generator.generate(task.scorer.samples, cfg.seed)
    scores = task.scorer.score(generated)
    copies = copy_check(generated[:COPY_SAMPLES], data.test.tensors[0][:COPY_SAMPLES], real)
    if ctx.is_main:
        save_gan_figures(ctx, task, result.history, scores, floor, copies)
    metrics = {
        **scores.metrics(),
        "fid_floor": floor.fid,
        "fid_over_floor": scores.fid / floor.fid,
        **copies.metrics(),
        "epochs": len(result.history),
        "train_seconds": round(sum(row["time_s"] for row in result.history), 1),
    }
    if inception is not None:
        fake = generator.generate(len(data.test), cfg.seed)
        metrics["inception_fid"] = inception_fid(inception, data.test.tensors[0], fake)
    return metrics


def save_gan_figures(
    ctx: RunContext,
    task: GanTask,
    history: list[dict[str, Any]],
    scores: SampleScores,
    floor: SampleScores,
    copies: CopyCheck,
) -> None:
    """Curves, the last grid, the animation, an interpolation, the class shares and samples
    beside their closest training images."""
    generator = task.gan.generator
    epochs = len(history)
    # replaces the loop's generic curves: both losses, both outputs and FID, one panel each
    ctx.save_figure(figures.training_curves(history, floor.fid), "learning_curves")
    grid = generator.render(task.fixed_noise)
    title = f"the same 64 latent vectors after epoch {epochs}"
    ctx.save_figure(figures.grid_figure(grid, 8, title), "samples")
    frames = [epoch_grid(ctx.run_dir, epoch) for epoch in range(1, epochs + 1)]
    figures.save_animation(
        [frame for frame in frames if frame.exists()], ctx.plots_dir / "samples_over_epochs.gif"
    )
    paths, steps = 6, 10
    ends = generator.latent(2 * paths, torch.Generator().manual_seed(task.cfg.seed)).cpu()
    walks = torch.stack(
        [generator.render(latent_path(a, b, steps)) for a, b in zip(ends[:paths], ends[paths:])]
    )
    ctx.save_figure(figures.interpolation_figure(walks), "latent_interpolation")
    classes = task.scorer.judge.classes
    real_shares = task.scorer.test_shares
    ctx.save_figure(
        figures.class_share_figure(scores.shares, real_shares, classes, scores.confidence),
        "class_shares",
    )
    rows = [
        [name, f"{100 * mine:.1f} %", f"{100 * theirs:.1f} %"]
        for name, mine, theirs in zip(classes, scores.shares, real_shares)
    ]
    table = table_lines(["class", "generated", "real test images"], rows)
    ctx.save_text("\n".join(table) + "\n", "class_shares")
    shown = grid[:NEAREST_SHOWN]
    distances, indices = nearest_images(shown, task.images, k=min(NEAREST_K, len(task.images)))
    ctx.save_figure(
        figures.nearest_figure(shown, task.images[indices], distances, copies.test),
        "nearest_training_images",
    )
