"""The course's MNIST GAN against ``dcgan --dataset mnist`` at equal wall-clock budgets.

(a) course: the course's notebook setup, its loop below as the notebook has it: fully
    connected discriminator 784-128-64-32-1 and generator 100-32-64-128-784 (leaky ReLU 0.2,
    dropout 0.3, tanh output), Adam lr 0.002 (default betas) for both, batch 64 from a
    DataLoader of per-image ``ToTensor`` tensors, images scaled to [-1, 1], real labels
    smoothed to 0.9, z ~ U(-1, 1) drawn afresh for the generator's step.
(b) dlnd: the ``dcgan`` recipe with its defaults, through the shared loop.

Both train on the same images (the training and validation images of the MNIST split) and
are scored by the same judge (one ``mnist-cnn`` run, trained first): FID of the same number
of generated images against the test images, and the smallest share of a class among the
samples. The course's clock stops while it is scored at each budget; dcgan is scored after
every epoch by the recipe itself, and that time counts against it (the comparison leans
towards the course). dcgan's figure at a budget is that of its last epoch finished within it.

    DLND_DATA=../shared/data python benchmarks/gan_vs_course.py [--budgets 60 180 450 900]

It prints one table; it writes nothing but temporary files.
"""

from __future__ import annotations

import _thread
import argparse
import json
import os
import platform
import signal
import tempfile
import threading
import time
from pathlib import Path

import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dlnd.errors import Interrupted
from dlnd.generative.judge import SampleScores, Scorer, load_judge
from dlnd.generative.models import CourseDiscriminator, CourseGenerator
from dlnd.generative.training import JUDGE_SETTINGS
from dlnd.launch import execute
from dlnd.recipes import get_recipe, resolve_config
from dlnd.vision.datasets import mnist_data

SAMPLES = 2000  # generated images per score (the offline MNIST test set has 2,000)


class PilDigits(Dataset):
    """(N, 1, 28, 28) uint8 images served one by one as the course does: PIL -> ToTensor."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images[:, 0].numpy()
        self.to_tensor = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.to_tensor(Image.fromarray(self.images[index]))


def real_loss(logits: torch.Tensor, smooth: bool = False) -> torch.Tensor:
    labels = torch.full_like(logits, 0.9 if smooth else 1.0)
    return F.binary_cross_entropy_with_logits(logits, labels)


def fake_loss(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def course(images: torch.Tensor, scorer: Scorer, budgets: list[float]) -> list[SampleScores]:
    """The course's training loop, scored (clock stopped) when each budget is used up."""
    torch.manual_seed(0)
    generator, discriminator = CourseGenerator(), CourseDiscriminator()
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=0.002)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=0.002)
    loader = DataLoader(PilDigits(images), batch_size=64, shuffle=True)
    results: list[SampleScores] = []
    elapsed, epoch = 0.0, 0
    while len(results) < len(budgets):
        epoch += 1
        started = time.time()
        for real_images in loader:
            batch_size = real_images.size(0)
            real_images = real_images * 2 - 1  # rescale from [0, 1) to [-1, 1)
            generator.train(), discriminator.train()
            d_optimizer.zero_grad()
            d_real_loss = real_loss(discriminator(real_images).squeeze(), smooth=True)
            z = torch.rand(batch_size, 100) * 2 - 1
            fake_images = generator(z)
            d_fake_loss = fake_loss(discriminator(fake_images).squeeze())
            (d_real_loss + d_fake_loss).backward()
            d_optimizer.step()
            g_optimizer.zero_grad()
            z = torch.rand(batch_size, 100) * 2 - 1
            g_loss = real_loss(discriminator(generator(z)).squeeze())
            g_loss.backward()
            g_optimizer.step()
            if elapsed + time.time() - started >= budgets[len(results)]:
                elapsed += time.time() - started
                results.append(scorer.score(generator.generate(SAMPLES, seed=0)))
                print(
                    f"  course: {elapsed:.0f} s, epoch {epoch}: {results[-1].metrics()}", flush=True
                )
                if len(results) == len(budgets):
                    break
                started = time.time()
        elapsed += time.time() - started
    return results


def dcgan(out: Path, judge_dir: Path, budgets: list[float]) -> list[dict | None]:
    """The dcgan recipe with its defaults; stopped once its epochs have used the last budget.
    Returns, per budget, the metrics of its last epoch finished within it (None if none)."""
    recipe = get_recipe("dcgan")
    flags = {"out": str(out), "judge": str(judge_dir), "fid_samples": SAMPLES, "epochs": 10_000}
    run_dir = out / "dcgan"
    run_dir.mkdir(parents=True)
    stop = threading.Event()

    def watch() -> None:  # interrupt the run once its epochs have taken the last budget
        while not stop.wait(0.5):
            if sum(row["time_s"] for row in read_rows(run_dir)) >= budgets[-1]:
                _thread.interrupt_main()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        execute(recipe, resolve_config(recipe, flags), run_dir=run_dir)
    except Interrupted:
        pass
    finally:
        stop.set()
    results: list[dict | None] = []
    for budget in budgets:
        elapsed, within = 0.0, None
        for row in read_rows(run_dir):
            elapsed += row["time_s"]
            if elapsed <= budget:
                within = {**row, "elapsed": elapsed}
        results.append(within)
    return results


def read_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_judge(out: Path) -> Path:
    recipe = get_recipe("mnist-cnn")
    judge_dir = out / "judge"
    execute(recipe, resolve_config(recipe, JUDGE_SETTINGS["mnist"]), run_dir=judge_dir)
    return judge_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets", type=float, nargs="+", default=[60, 180, 450, 900], help="seconds each"
    )
    args = parser.parse_args()
    budgets = sorted(args.budgets)
    # The watcher stops dcgan with a simulated Ctrl-C, which a shell ignores for background
    # jobs unless Python's own handler is installed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    data = mnist_data("mnist", None, seed=0, embedded=False)
    images = torch.cat([data.train.tensors[0], data.val.tensors[0]])
    with tempfile.TemporaryDirectory() as tmp:
        judge_dir = train_judge(Path(tmp))
        judge = load_judge(judge_dir)
        scorer = Scorer(judge, data.test.tensors[0], images, SAMPLES, seed=0)
        print(f"judge: {judge.description}; floor {scorer.floor.fid:.2f}", flush=True)
        ours = dcgan(Path(tmp), judge_dir, budgets)
    reference = course(images, scorer, budgets)
    print(
        f"\nMNIST GAN: FID in the features of a mnist-cnn judge (test accuracy "
        f"{judge.description['test_accuracy']:.2%}), {SAMPLES} samples vs {len(data.test)} "
        f"test images; real-data floor {scorer.floor.fid:.2f}. {torch.get_num_threads()} "
        f"threads on {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| budget (s) | course FID | course min class share | dcgan epochs | dcgan FID "
        "| dcgan min class share | course FID / dcgan FID |\n|---|---|---|---|---|---|---|"
    )
    for budget, theirs, mine in zip(budgets, reference, ours):
        if mine is None:
            cells = "- | - | - | -"
        else:
            ratio = theirs.fid / mine["fid"]
            cells = (
                f"{mine['epoch']} | {mine['fid']:.1f} | {mine['class_share_min']:.1%} | "
                f"{ratio:.1f}x"
            )
        print(f"| {budget:.0f} | {theirs.fid:.1f} | {min(theirs.shares):.1%} | {cells} |")
    print("target: dcgan's FID <= 1/2 of the course's at each budget (ratio >= 2x)")


if __name__ == "__main__":
    main()
