"""Measuring a GAN: FID and mode coverage through the eyes of a classifier trained by dlnd.

**FID** (Heusel et al., 2017) fits a Gaussian to the feature vectors of real images and one
to those of generated images, and measures the Fréchet (Wasserstein-2) distance between them:

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

The standard features are Inception-v3's 2048 pool outputs, whose ImageNet weights must be
downloaded. Here the features are the *penultimate layer* (the input of the last linear
layer) of a classifier that dlnd trained on the same data set, the *judge*; it works
offline, and its numbers compare runs judged by the same judge (each run records which).
The Fréchet distance itself is computed by torchmetrics' ``FrechetInceptionDistance``, fed
with the judge's features.

**Mode coverage**: the judge's predicted class of every sample. A GAN that collapses onto a
few modes draws some digits often and others never; the smallest share of a class and the
judge's mean confidence (blurry samples get low confidence) say so in two numbers.

**The real-data floor**: FID is biased upwards for a finite number of samples, so even real
images are not at 0. The FID of ``n`` real training images against the test images is what
a perfect generator would score with ``n`` samples: the scale for every other figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlnd.errors import UserError
from dlnd.runs import FINAL_FILE

__all__ = [
    "FrechetDistance",
    "Judge",
    "SampleScores",
    "Scorer",
    "class_shares",
    "inception_fid",
    "inception_fid_metric",
    "last_linear",
    "load_judge",
]


def last_linear(model: nn.Module) -> nn.Linear:
    """The classifier's last ``nn.Linear``: its input is the penultimate layer's output."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the classifier has no linear layer to take features from")
    return linears[-1]


class Judge:
    """A trained dlnd image classifier used to score images.

    ``model`` takes pixels in [0, 1] (N, C, H, W) and returns logits (N, classes);
    ``description`` (JSON) says which run it is, and is stored in the GAN's checkpoint.
    """

    def __init__(self, model: nn.Module, classes: list[str], description: dict[str, Any]):
        self.model = model.eval()
        self.classes = list(classes)
        self.description = description
        self.head = last_linear(model)
        self.num_features = self.head.in_features

    def to(self, device: torch.device | str) -> Judge:
        self.model.to(device)
        return self

    @torch.no_grad()
    def score(
        self, images: torch.Tensor, batch_size: int = 500
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, H, W) -> penultimate features (N, F) float64 and class
        probabilities (N, classes) float32, both on the CPU."""
        device = next(self.model.parameters()).device
        captured: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(
            lambda _module, inputs: captured.append(inputs[0].detach().double().cpu())
        )
        probabilities = []
        try:
            for chunk in images.split(batch_size):
                logits = self.model(chunk.to(device).float() / 255)
                probabilities.append(logits.float().softmax(dim=1).cpu())
        finally:
            hook.remove()
        return torch.cat(captured).flatten(1), torch.cat(probabilities)


def load_judge(run_dir: str | Path, image_shape: tuple[int, ...] | None = None) -> Judge:
    """The classifier of a dlnd run directory (``mnist-cnn``, ``cifar10-cnn``,
    ``image-classifier`` ...) as a :class:`Judge`; its input must be ``image_shape``."""
    from dlnd.checkpoint import load_model

    model, meta = load_model(Path(run_dir))
    info = meta.get("info", {})
    if info.get("task") != "image-classification":
        raise UserError(
            f"{run_dir} is not a run of an image classifier; a judge must be one (for "
            "example a run of mnist-cnn or cifar10-cnn)."
        )
    spec = info["input"]
    shape = (spec["channels"], spec["height"], spec["width"])
    if image_shape is not None and shape != tuple(image_shape):
        raise UserError(
            f"The classifier in {run_dir} takes images of shape {shape}, but the GAN makes "
            f"{tuple(image_shape)}; give a judge trained on the same data set."
        )
    description = {
        "run_dir": str(run_dir),
        "recipe": meta["recipe"],
        "model": info.get("model"),
        "features": f"input of the last linear layer ({last_linear(model).in_features} values)",
        "test_accuracy": _test_accuracy(Path(run_dir)),
        "data": info.get("source"),
    }
    return Judge(model, info["classes"], description)


def _test_accuracy(run_dir: Path) -> float | None:
    """The test accuracy in a run's ``final.json`` (None when the run did not record one)."""
    try:
        return json.loads((run_dir / FINAL_FILE).read_text())["metrics"].get("test_accuracy")
    except (OSError, ValueError, KeyError, AttributeError):
        return None


class _GivenFeatures(nn.Module):
    """torchmetrics' FID runs a feature extractor on what it is given; the judge has computed
    the features already, so this extractor passes them through."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FrechetDistance:
    """The Fréchet distance of feature sets (N, F) to fixed reference features (M, F).

    The reference's mean and covariance are accumulated once; each call fits a Gaussian to
    the new features and returns ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
    """

    def __init__(self, reference: torch.Tensor):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(
            feature=_GivenFeatures(reference.shape[1]),
            reset_real_features=False,  # keep the reference's statistics across reset()
            sync_on_compute=False,  # every process computes on its own; nothing to gather
        )
        self.metric.update(reference.double(), real=True)

    def __call__(self, features: torch.Tensor) -> float:
        self.metric.reset()
        self.metric.update(features.double(), real=False)
        return float(self.metric.compute())


def class_shares(probabilities: torch.Tensor) -> torch.Tensor:
    """The share of samples the judge puts in each class: (N, K) -> (K,), summing to 1."""
    predicted = probabilities.argmax(dim=1)
    counts = torch.bincount(predicted, minlength=probabilities.shape[1]).double()
    return counts / max(len(predicted), 1)


@dataclass
class SampleScores:
    """How a set of images looks to the judge."""

    fid: float
    shares: list[float]  # per class, summing to 1
    confidence: float  # mean probability of the predicted class

    def metrics(self) -> dict[str, float]:
        """The per-epoch metrics: FID, the rarest class's share, the mean confidence."""
        return {
            "fid": self.fid,
            "class_share_min": min(self.shares),
            "confidence": self.confidence,
        }


class Scorer:
    """Scores generated images against the real test images with one judge.

    ``samples`` is how many images each score uses; the real-data floor is the FID of that
    many training images (drawn with ``seed``) against the test images.
    """

    def __init__(
        self,
        judge: Judge,
        test_images: torch.Tensor,
        train_images: torch.Tensor,
        samples: int,
        seed: int,
    ):
        self.judge = judge
        self.samples = min(samples, len(train_images))
        reference, test_probabilities = judge.score(test_images)
        self.test_shares = class_shares(test_probabilities).tolist()
        self.distance = FrechetDistance(reference)
        pick = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(seed))
        self.floor = self.score(train_images[pick[: self.samples]])

    def score(self, images: torch.Tensor) -> SampleScores:
        """uint8 images (N, C, H, W) -> FID, class shares and mean confidence."""
        features, probabilities = self.judge.score(images)
        return SampleScores(
            fid=self.distance(features),
            shares=class_shares(probabilities).tolist(),
            confidence=float(probabilities.max(dim=1).values.mean()),
        )


def inception_fid_metric() -> Any:
    """torchmetrics' standard FID (Inception-v3 pool features, 2048 values), ready to update
    with uint8 RGB images. Its weights are downloaded once by torch-fidelity; a
    :class:`UserError` says why when they cannot be had (offline, package missing)."""
    from dlnd.data.fetch import offline

    if offline():
        raise UserError(
            "--inception-fid needs Inception-v3 weights from the internet, and downloads are "
            "off (DLND_OFFLINE=1); leave the flag out to use the judge's FID alone."
        )
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        return FrechetInceptionDistance(feature=2048, sync_on_compute=False)
    except ModuleNotFoundError as err:
        raise UserError(
            "--inception-fid needs the torch-fidelity package: pip install 'dlnd[inception]'."
        ) from err
    except (OSError, RuntimeError, ValueError) as err:
        raise UserError(
            f"The Inception-v3 weights for --inception-fid could not be had ({err}); check "
            "the internet connection or leave the flag out."
        ) from err


def inception_fid(metric: Any, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Standard FID of uint8 images (N, C, H, W) against real ones with ``metric`` from
    :func:`inception_fid_metric`; grey images are repeated to three channels."""
    metric.reset()
    for images, is_real in ((real, True), (fake, False)):
        for chunk in images.split(100):
            rgb = chunk.expand(-1, 3, -1, -1) if chunk.shape[1] == 1 else chunk
            metric.update(rgb.contiguous(), real=is_real)
    return float(metric.compute())
