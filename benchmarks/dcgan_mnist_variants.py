"""How far DCGAN on MNIST gets towards its FID target with tuning and more compute.

The ``dcgan`` recipe keeps Radford et al.'s settings. This benchmark trains the same
discriminator on the same images, with the same R1 penalty and judge, but with the three
changes that helped together when tried one by one (``benchmarks/RESULTS.md``):

- Adam with beta1 = 0 and beta2 = 0.99 for both networks (instead of 0.5 / 0.999);
- the hinge loss: D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G minimises
  -E[D(G(z))] (D's logit; instead of the cross-entropy);
- one more generator layer at the image's size: the last transposed convolution makes
  width / 2 channels at 28 x 28 (batch norm, ReLU), and a 3 x 3 convolution makes the image.

Both learning rates fall from ``--lr`` to zero along a cosine over all the steps. The judge
(a ``mnist-cnn`` run with the settings ``dcgan`` gives it) scores 2,000 samples every
``--every`` epochs: FID against the test images, over the real-data floor. The two runs of
RESULTS.md, each on one thread:

    DLND_DATA=../shared/data python benchmarks/dcgan_mnist_variants.py --epochs 240
    DLND_DATA=../shared/data python benchmarks/dcgan_mnist_variants.py --epochs 120 --width 64

It prints one line per score and a summary; it writes nothing but temporary files.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from gan_vs_course import SAMPLES, train_judge
from torch import nn
from torch.nn import functional as F

from dlnd.generative.judge import Scorer, load_judge
from dlnd.generative.models import DCDiscriminator, DCGenerator, dcgan_init, to_model_range
from dlnd.generative.training import R1_EVERY, frozen, r1_penalty
from dlnd.vision.datasets import mnist_data

BATCH = 64


class ExtraLayerGenerator(DCGenerator):
    """DCGAN's generator whose last transposed convolution makes width / 2 feature maps at
    the image's size (batch norm, ReLU) and a 3 x 3 convolution then makes the image."""

    def __init__(self, latent_size: int, image_shape: tuple[int, ...], width: int) -> None:
        super().__init__(latent_size, image_shape, width)
        last = self.layers[-2]  # the transposed convolution to the image; then tanh
        half = width // 2
        self.layers = nn.Sequential(
            *self.layers[:-2],
            nn.ConvTranspose2d(last.in_channels, half, 4, 2, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, image_shape[0], 3, 1, 1),
            nn.Tanh(),
        )


def train(args: argparse.Namespace, scorer: Scorer, real: torch.Tensor) -> list[tuple]:
    """Train for ``args.epochs``; return (epoch, seconds, FID, rarest share, confidence) at
    every score."""
    shape = tuple(real.shape[1:])
    generator = dcgan_init(ExtraLayerGenerator(100, shape, args.width))
    discriminator = dcgan_init(DCDiscriminator(shape, args.width))
    optimizers = [
        torch.optim.Adam(module.parameters(), lr=args.lr, betas=(0.0, 0.99))
        for module in (discriminator, generator)
    ]
    batches = len(real) // BATCH
    schedules = [
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=batches * args.epochs)
        for optimizer in optimizers
    ]
    step, rows = 0, []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(real))
        for index in range(batches):
            batch = to_model_range(real[order[index * BATCH : (index + 1) * BATCH]])
            fake = generator.sample(BATCH)
            d_loss = (
                F.relu(1 - discriminator(batch)).mean()
                + F.relu(1 + discriminator(fake.detach())).mean()
            )
            if step % R1_EVERY == 0:
                d_loss = d_loss + args.r1 * R1_EVERY * r1_penalty(discriminator, batch)
            optimizers[0].zero_grad(set_to_none=True)
            d_loss.backward()
            optimizers[0].step()
            with frozen(discriminator):
                g_loss = -discriminator(fake).mean()
            optimizers[1].zero_grad(set_to_none=True)
            g_loss.backward()
            optimizers[1].step()
            for schedule in schedules:
                schedule.step()
            step += 1
        if epoch % args.every == 0 or epoch == args.epochs:
            seconds = time.perf_counter() - start
            scores = scorer.score(generator.generate(SAMPLES, args.seed))
            rows.append((epoch, seconds, scores.fid, min(scores.shares), scores.confidence))
            print(
                f"epoch {epoch}: {seconds:.0f} s elapsed, FID {scores.fid:.1f} "
                f"({scores.fid / scorer.floor.fid:.2f}x the floor), rarest digit "
                f"{min(scores.shares):.1%}, confidence {scores.confidence:.3f}",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=240, help="passes over 8,000 images")
    parser.add_argument("--width", type=int, default=32, help="the networks' --width")
    parser.add_argument("--lr", type=float, default=2e-3, help="both networks' first rate")
    parser.add_argument("--r1", type=float, default=1.0, help="R1 weight (as dcgan's --r1)")
    parser.add_argument("--every", type=int, default=20, help="epochs between scores")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches and noise")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch's CPU threads")
    parser.add_argument("--judge", help="a mnist-cnn run to judge with (default: train one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = mnist_data("mnist", None, seed=0, embedded=False)  # the judge's split
    real = torch.cat([data.train.tensors[0], data.val.tensors[0]])
    with tempfile.TemporaryDirectory() as tmp:
        judge = load_judge(args.judge or train_judge(Path(tmp)))
        scorer = Scorer(judge, data.test.tensors[0], real, SAMPLES, seed=0)
        print(f"judge {judge.description['run_dir']}; floor {scorer.floor.fid:.2f}", flush=True)
        rows = train(args, scorer, real)
    epoch, seconds, fid, rarest, confidence = rows[-1]
    print(
        f"\nDCGAN on MNIST, beta1 0 / beta2 0.99, hinge loss, extra G layer, width "
        f"{args.width}, {epoch} epochs, {args.threads} thread(s): FID {fid:.1f} = "
        f"{fid / scorer.floor.fid:.2f}x the floor {scorer.floor.fid:.2f} (target <= 2x), "
        f"rarest digit {rarest:.1%}, confidence {confidence:.3f}, {seconds:.0f} s elapsed"
    )


if __name__ == "__main__":
    main()
