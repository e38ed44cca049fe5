"""Generative recipes: the weight-initialisation and batch-norm lessons, the course's MNIST
GAN and DCGAN (MNIST, CIFAR-10 or any ImageFolder tree of photos).

Every GAN run is data -> GAN -> :func:`dlnd.generative.training.train_gan` (the shared loop,
a judge for FID and mode coverage, figures); the recipes differ in data, networks and
settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from dlnd.config import non_negative_float, positive_int, text, unit_interval
from dlnd.errors import UserError
from dlnd.generative import lessons
from dlnd.generative.models import build_gan, dcgan_image_size
from dlnd.generative.training import train_gan
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.trainer import TRAINER_OPTIONS
from dlnd.vision import datasets
from dlnd.vision.datasets import ImageData

MNIST_DATASET = "MNIST (offline: the 10,000 test images split 8,000 / 2,000)"


def build_comparison(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """Rebuild the networks a lesson compared (one module holding each under its name)."""
    return lessons.SideBySide(lessons.build_networks(info))


def build_model(config: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """Rebuild a run's GAN (generator and discriminator) from its checkpoint's ``info``."""
    return build_gan(info)


def gan_info(model: str, data: ImageData, cfg: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What the checkpoint must say to rebuild the GAN and describe its samples (JSON)."""
    return {
        "task": "image-generation",
        "model": model,
        "latent_size": cfg["latent_size"],
        "image_shape": list(data.input_shape),
        "width": cfg["width"],
        "dataset": dataset,
        "classes": data.classes,
        "source": data.source,
    }


# The loop's flags that apply to a GAN: the optimiser is Adam with --beta1 (below), and
# early stopping has no validation loss to watch.
GAN_LOOP_OPTIONS = tuple(o for o in TRAINER_OPTIONS if o.dest in ("schedule", "clip_grad", "bf16"))


def gan_options(width_help: str) -> tuple[Option, ...]:
    """The options every GAN recipe takes; ``--width`` means something per architecture."""
    return (
        Option("--width", positive_int, 32, width_help),
        Option("--latent-size", positive_int, 100, "length of the generator's input vector z"),
        Option("--beta1", unit_interval, 0.5, "Adam's first-moment decay for both networks"),
        Option(
            "--label-smoothing",
            unit_interval,
            0.0,
            "one-sided label smoothing: real images' target is 1 - S",
        ),
        Option(
            "--r1",
            non_negative_float,
            0.0,
            "R1 penalty weight: (R1 / 2) E||grad_x D(x)||^2 on real images keeps the "
            "discriminator smooth around the data (0 = off)",
        ),
        Option(
            "--fid-samples",
            positive_int,
            2000,
            "generated images the judge scores after every epoch (FID, class shares)",
        ),
        Option(
            "--judge",
            text,
            None,
            "a classifier run (e.g. of mnist-cnn) whose penultimate layer is the FID feature "
            "space (default: train one into RUN_DIR/judge)",
        ),
        Option(
            "--inception-fid",
            bool,
            False,
            "also the standard Inception-v3 FID at the end (downloads its weights; online only)",
        ),
        *GAN_LOOP_OPTIONS,
    )


# --- the lessons: weight initialisation and batch normalisation -------------------------------

LESSON_DEFAULTS = {"epochs": 5, "batch_size": 64, "lr": 0.05, "optimizer": "sgd"}
LESSON_QUICK = {"epochs": 3, "lr": 0.2}  # the embedded digits: 34 batches an epoch

WEIGHT_INIT = register(
    Recipe(
        name="weight-init",
        summary="One MLP from eight initialisations (zeros, ones, uniform, +-1/sqrt(n), normal, "
        "Xavier, He, PyTorch's default) on the same batches.",
        dataset=MNIST_DATASET,
        target="zeros and ones stuck near chance; the 1/sqrt(n) rules as good as the default",
        run=lessons.run_weight_init,
        options=TRAINER_OPTIONS,
        defaults=LESSON_DEFAULTS,
        quick=LESSON_QUICK,
        build_model=build_comparison,
    )
)

BATCH_NORM = register(
    Recipe(
        name="batch-norm",
        summary="The same MLP with and without batch normalisation; test accuracy in eval and "
        "in train mode.",
        dataset=MNIST_DATASET,
        target="batch norm ahead after the first epoch; eval mode >= train mode on small batches",
        run=lessons.run_batch_norm,
        options=TRAINER_OPTIONS,
        defaults=LESSON_DEFAULTS,
        quick=LESSON_QUICK,
        build_model=build_comparison,
    )
)


# --- the course's GAN -------------------------------------------------------------------------


def run_gan_mnist(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    data = datasets.mnist_data("mnist", cfg["data_dir"], cfg["seed"], cfg["embedded"])
    return train_gan(ctx, data, "mnist", gan_info("course", data, cfg, "mnist"))


GAN_MNIST = register(
    Recipe(
        name="gan-mnist",
        summary="The course's fully connected GAN on MNIST: leaky ReLU, dropout, tanh output, "
        "label smoothing.",
        dataset=MNIST_DATASET,
        target="every digit drawn; FID (in a dlnd classifier's features) falls over the epochs",
        run=run_gan_mnist,
        options=gan_options("hidden units of the smallest layer (the others are 2x and 4x)"),
        defaults={
            "epochs": 100,
            "batch_size": 64,
            "lr": 2e-3,
            "beta1": 0.9,  # the course keeps Adam's default
            "label_smoothing": 0.1,  # real target 0.9
        },
        quick={"epochs": 3, "fid_samples": 300},
        build_model=build_model,
    )
)


# --- DCGAN ----------------------------------------------------------------------------------

DCGAN_DATASETS = ("mnist", "cifar10", "folder")
NATIVE_SIZES = {"mnist": 28, "cifar10": 32}


def dcgan_data(ctx: RunContext) -> ImageData:
    """The images ``--dataset`` names: MNIST, CIFAR-10, or an ImageFolder tree of photos."""
    cfg = ctx.cfg
    dataset, size = cfg["dataset"], cfg["image_size"]
    if dataset in NATIVE_SIZES and size not in (None, NATIVE_SIZES[dataset]):
        raise UserError(
            f"--image-size applies to --dataset folder; {dataset} images are "
            f"{NATIVE_SIZES[dataset]} pixels. Leave it out."
        )
    if dataset == "mnist":
        return datasets.mnist_data("mnist", cfg["data_dir"], cfg["seed"], cfg["embedded"])
    if dataset == "cifar10":
        return datasets.cifar10_data(cfg["data_dir"], cfg["seed"], cfg["embedded"])
    if cfg["embedded"]:
        root = datasets.write_embedded_folder(
            ctx.run_dir / "embedded-images", per_class=60, seed=cfg["seed"]
        )
    elif cfg["data_dir"]:
        root = Path(cfg["data_dir"])
    else:
        raise UserError(
            "dcgan --dataset folder needs --data-dir DIR, an ImageFolder tree "
            "DIR/<class>/*.jpg (or DIR/train/<class>, DIR/val/<class>)."
        )
    return datasets.folder_data(root, size or 64, "RGB", cfg["seed"])


def run_dcgan(ctx: RunContext) -> dict[str, Any]:
    data = dcgan_data(ctx)
    dataset = ctx.cfg["dataset"]
    return train_gan(ctx, data, dataset, gan_info("dcgan", data, ctx.cfg, dataset))


DCGAN = register(
    Recipe(
        name="dcgan",
        summary="DCGAN (Radford et al. 2015): transposed convolutions, batch norm, N(0, 0.02) "
        "weights, Adam beta1 = 0.5 (--dataset mnist|cifar10|folder).",
        dataset=f"{MNIST_DATASET}; CIFAR-10; or --data-dir PHOTOS",
        target="MNIST on 2 CPU cores in 15 min: every digit >= 5 % of samples, FID within 2x "
        "of the real-data floor",
        run=run_dcgan,
        options=(
            Option("--dataset", text, "mnist", "what to imitate", choices=DCGAN_DATASETS),
            Option(
                "--image-size",
                dcgan_image_size,
                None,
                "--dataset folder: images are resized and centre-cropped to this (default 64)",
            ),
            *gan_options("channels of the generator's largest map (doubling towards z)"),
        ),
        # Tuned on MNIST (FID after 8 epochs: lr 2e-4 287, 5e-4 220, 1e-3 179, 2e-3 146, 4e-3
        # 149); 120 epochs of 125 batches fit in 15 minutes on 2 CPU cores. The R1 weight
        # (FID after 20 epochs: none 106, 0.3 82, 1.0 82, 5.0 96; after 60: none 85, 1.0 47).
        # With R1, a cosine decay of both rates ends lower than a constant rate (37.0 against
        # 40.9 after 120 epochs; without R1 it was worse: D pulled ahead as the rates fell).
        defaults={
            "epochs": 120,
            "batch_size": 64,
            "lr": 2e-3,
            "beta1": 0.5,
            "r1": 1.0,
            "schedule": "cosine",
        },
        quick={"epochs": 2, "width": 8, "fid_samples": 300},
        build_model=build_model,
    )
)
