"""Time to 76 % CIFAR-10 validation accuracy: the classic course setup against cifar10-cnn.

(a) classic: the course's CIFAR-10 network (convs 16/32/64 with max-pool, FC 500 -> 10,
    dropout 0.25), plain SGD lr 0.01, batch 20, per-image PIL augmentation (random flip and
    rotation by up to 10 degrees) in a DataLoader, float32. Its loop below imitates the
    course's notebook, since that is what is measured.
(b) ours: the ``cifar10-cnn`` recipe (batched tensor augmentation, bf16, channels-last,
    residual network, one-cycle SGD) through the shared trainer, with a short schedule
    sized for the target (4 epochs, first stage 32 channels, batch 512, lr 0.3).

Both use the same decoded images and the same 45,000 / 5,000 train / validation split, and
are timed from their first training step, validation included. Each stops at the target or
at the time cap; a run that hits the cap gives a lower bound on the ratio.

    DLND_DATA=../shared/data python benchmarks/cifar_time_to_accuracy.py [--cap-minutes 25]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dlnd.launch import execute
from dlnd.recipes import get_recipe, resolve_config
from dlnd.vision.datasets import cifar10_data
from dlnd.vision.models import CourseCifarNet


class PilImages(Dataset):
    """(N, 3, 32, 32) uint8 images served one by one as the course does: PIL -> transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images.permute(0, 2, 3, 1).numpy()  # back to (N, H, W, C) for PIL
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def classic(data, target: float, cap_s: float) -> dict:
    """The course's training loop: one epoch of SGD, then validation, until target or cap."""
    normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    train_tf = transforms.Compose(
        [
            transforms.RandomHorizontalFlip(),
            transforms.RandomRotation(10),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train = DataLoader(PilImages(*data.train.tensors, train_tf), batch_size=20, shuffle=True)
    val = DataLoader(PilImages(*data.val.tensors, val_tf), batch_size=20)
    model = CourseCifarNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    started, epochs, accuracy = time.time(), 0, 0.0
    while accuracy < target and time.time() - started < cap_s:
        model.train()
        for images, labels in train:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in val:
                correct += int((model(images).argmax(1) == labels).sum())
        epochs += 1
        accuracy = correct / len(val.dataset)
        print(
            f"  classic epoch {epochs}: val accuracy {accuracy:.2%} at "
            f"{time.time() - started:.0f} s",
            flush=True,
        )
    return {
        "seconds": time.time() - started,
        "epochs": epochs,
        "val_accuracy": accuracy,
        "reached": accuracy >= target,
    }


def ours(target: float, flags: dict, out: Path) -> dict:
    """cifar10-cnn with a short schedule; the time of the first epoch at the target."""
    recipe = get_recipe("cifar10-cnn")
    cfg = resolve_config(recipe, {**flags, "out": str(out), "device": "cpu"})
    run_dir = out / "cifar10-cnn"
    run_dir.mkdir(parents=True)
    execute(recipe, cfg, run_dir=run_dir)
    elapsed = 0.0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        elapsed += row["time_s"]
        if row["val_accuracy"] >= target:
            return {
                "seconds": elapsed,
                "epochs": row["epoch"],
                "val_accuracy": row["val_accuracy"],
                "reached": True,
            }
    return {
        "seconds": elapsed,
        "epochs": len(rows),
        "val_accuracy": rows[-1]["val_accuracy"],
        "reached": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.76, help="validation accuracy to reach")
    parser.add_argument("--cap-minutes", type=float, default=25.0, help="time cap per setup")
    parser.add_argument("--epochs", type=int, default=4, help="cifar10-cnn schedule length")
    parser.add_argument("--width", type=int, default=32, help="cifar10-cnn first-stage channels")
    args = parser.parse_args()
    data = cifar10_data(None, seed=0, embedded=False)
    with tempfile.TemporaryDirectory() as tmp:
        flags = {"epochs": args.epochs, "width": args.width, "batch_size": 512, "lr": 0.3}
        print(f"cifar10-cnn with {flags}", flush=True)
        fast = ours(args.target, flags, Path(tmp))
    slow = classic(data, args.target, args.cap_minutes * 60)
    ratio = slow["seconds"] / fast["seconds"]
    bound = "" if slow["reached"] else " (classic hit the cap: ratio is a lower bound)"
    print(
        f"\nCIFAR-10 time to {args.target:.0%} validation accuracy, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )
    print("| setup | epochs | val accuracy | seconds |\n|---|---|---|---|")
    for name, result in (("classic course CNN", slow), ("cifar10-cnn", fast)):
        print(
            f"| {name} | {result['epochs']} | {result['val_accuracy']:.2%} | "
            f"{result['seconds']:.0f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"speed-up: {ratio:.1f}x{bound}; peak memory of the process {peak:.0f} MiB")


if __name__ == "__main__":
    main()
