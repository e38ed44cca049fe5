"""Transfer learning: a network trained on ImageNet, reused to tell apart new classes.

The classifier is the backbone with a new head (:func:`transfer_classifier`)::

    pixels -> normalize -> stages (ImageNet's) -> pool -> head: Linear(feature_dim, classes)

Training touches only the top of it. With ``tuned_stages`` = N, the stages below the last N
are frozen: their batch norms keep ImageNet's statistics (eval mode) and nothing in them is
random, so each training image's output of the frozen part is always the same. It is
computed once and cached (:func:`cached_frozen_features`), and every step runs only the part
above the cut (:class:`ClassifierTop`): with N = 0 a linear layer on the pooled feature
vectors, with N > 0 the last N stages on their cached input maps, a few percent of the
network's cost. Fine-tuned stages learn with a lower learning rate than the new head (their
weights are already good), and only after the head has had some epochs alone
(:class:`TransferTask`), so that the random head's first large gradients do not wreck them.

Each image is computed as itself and mirrored (:data:`VIEWS`): training uses both as examples
(augmentation whose features are computed once), evaluation averages the two views'
probabilities (test-time augmentation).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from dlnd.data.checksums import user_cache_root
from dlnd.errors import UserError
from dlnd.pretrained.backbone import Backbone
from dlnd.store import load_tensors, save_tensors
from dlnd.trainer import Monitor, Step, SupervisedTask, TrainConfig, make_optimizer, make_schedule

VIEWS = ("original", "mirror")
CACHE_FORMAT = 1  # change when what is cached changes: old files are then ignored
FEATURE_BATCH = 16  # images per forward pass when computing the frozen features


def transfer_classifier(backbone: Backbone, classes: int) -> Backbone:
    """``backbone`` (its modules, not copies) with a new head ``Linear(feature_dim, classes)``:
    pixels ``(N, 3, H, W)`` in [0, 1] -> logits ``(N, classes)``."""
    head = nn.Linear(backbone.feature_dim, classes)
    return Backbone(backbone.name, backbone.preprocessing, backbone.stages, backbone.pool, head)


def check_tuned_stages(classifier: Backbone, tuned_stages: int) -> None:
    """A UserError unless ``0 <= tuned_stages <`` the number of stages."""
    names = classifier.layer_names
    if not 0 <= tuned_stages < len(names):
        raise UserError(
            f"--fine-tune-blocks must be between 0 and {len(names) - 1} for {classifier.name} "
            f"(its stages: {', '.join(names)}); got {tuned_stages}."
        )


class ClassifierTop(nn.Module):
    """The part of a classifier above the cache: the last ``tuned_stages`` stages, the pool and
    the head (the classifier's own modules). Input: what :func:`frozen_features` returns."""

    def __init__(self, classifier: Backbone, tuned_stages: int) -> None:
        super().__init__()
        check_tuned_stages(classifier, tuned_stages)
        cut = len(classifier.layer_names) - tuned_stages
        self.tuned = classifier.stages[cut:]
        self.pool = classifier.pool if tuned_stages else nn.Identity()
        self.head = classifier.head

    def forward(self, frozen: torch.Tensor) -> torch.Tensor:
        """``frozen: (N, *frozen shape)`` -> logits ``(N, classes)``."""
        return self.head(self.pool(self.tuned(frozen)))


def frozen_features(classifier: Backbone, tuned_stages: int, pixels: torch.Tensor) -> torch.Tensor:
    """The output of the frozen part for ``pixels: (N, 3, H, W)`` in [0, 1]: the pooled features
    ``(N, feature_dim)`` when nothing is tuned, else the maps entering the first tuned stage
    ``(N, C, H', W')``. Run it in eval mode, without gradients."""
    if tuned_stages == 0:
        return classifier.features(pixels)
    cut = len(classifier.layer_names) - tuned_stages
    return classifier.stages[:cut](classifier.normalize(pixels))


def compute_frozen_features(
    classifier: Backbone, tuned_stages: int, images: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """``images: (N, 3, H, W)`` uint8 -> frozen features of every view ``(N, views, ...)``
    float32 on the CPU (:data:`VIEWS`: the image, then its mirror image)."""
    classifier.eval().to(device)
    batches = []
    with torch.no_grad():
        for start in range(0, len(images), FEATURE_BATCH):
            pixels = images[start : start + FEATURE_BATCH].to(device).float() / 255
            views = [pixels, pixels.flip(3)]
            batches.append(
                torch.stack([frozen_features(classifier, tuned_stages, v) for v in views], 1)
            )
    return torch.cat(batches).float().cpu()


def features_key(
    classifier: Backbone, weights_source: str, tuned_stages: int, images: torch.Tensor
) -> str:
    """A name for the cached features that changes with anything that changes them: the
    network and its weights, where it is cut, the views, and every pixel of every image."""
    digest = hashlib.sha256()
    cut = len(classifier.layer_names) - tuned_stages
    what = [CACHE_FORMAT, classifier.name, weights_source, cut, VIEWS, list(images.shape)]
    digest.update(json.dumps(what).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def cached_frozen_features(
    classifier: Backbone,
    weights_source: str,
    tuned_stages: int,
    images: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, bool]:
    """:func:`compute_frozen_features`, read from the user cache
    (``$XDG_CACHE_HOME/dlnd/features``) when these images went through this network before.
    Returns the features and whether they came from the cache."""
    key = features_key(classifier, weights_source, tuned_stages, images)
    path = user_cache_root() / "features" / f"{key}.safetensors"
    if path.is_file():
        try:
            tensors, _ = load_tensors(path)
            return tensors["features"], True
        except (UserError, KeyError):
            pass  # a damaged cache file is recomputed and replaced
    features = compute_frozen_features(classifier, tuned_stages, images, device)
    save_tensors(path, {"features": features}, {"backbone": classifier.name, "views": VIEWS})
    return features, False


def view_log_probabilities(top: nn.Module, frozen: torch.Tensor) -> torch.Tensor:
    """``frozen: (N, views, ...)`` -> log of the probabilities averaged over the views
    ``(N, classes)`` (test-time augmentation; a log so that cross-entropy and arg-max apply
    as they do to logits)."""
    n, views = frozen.shape[:2]
    logits = top(frozen.flatten(0, 1)).float().view(n, views, -1)
    return logits.softmax(dim=-1).mean(dim=1).log()


def training_examples(frozen: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
    """Every view of every image as its own example: ``(N * views, ...)`` and its labels."""
    views = frozen.shape[1]
    return TensorDataset(frozen.flatten(0, 1), labels.repeat_interleave(views))


class TransferTask(SupervisedTask):
    """Supervised training of a classifier's top on cached frozen features.

    ``train_set``: one example per view (:func:`training_examples`); ``val_set``:
    ``(N, views, ...)`` features with labels, scored on the view average. The first
    ``head_epochs`` epochs train the head alone; then the tuned stages join with learning
    rate ``lr * backbone_lr_factor``. Their batch norms stay in eval mode throughout.
    """

    def __init__(
        self,
        classifier: Backbone,
        tuned_stages: int,
        train_set: TensorDataset,
        val_set: TensorDataset,
        cfg: TrainConfig,
        *,
        head_epochs: int,
        backbone_lr_factor: float,
        label_smoothing: float = 0.0,
    ) -> None:
        self.classifier = classifier.requires_grad_(False)
        classifier.head.requires_grad_(True)
        self.top = ClassifierTop(classifier, tuned_stages)
        self.head_epochs, self.backbone_lr_factor = head_epochs, backbone_lr_factor
        super().__init__(
            self.top,
            train_set,
            val_set,
            cfg,
            loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
            monitor=Monitor("val_loss", "min"),
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.classifier}  # the whole classifier is saved, ready to serve

    def optimizers(self, total_steps: int) -> dict[str, Any]:
        groups = [{"params": list(self.top.head.parameters()), "lr": self.cfg.lr}]
        tuned = list(self.top.tuned.parameters())
        if tuned:
            groups.append({"params": tuned, "lr": self.cfg.lr * self.backbone_lr_factor})
        optimizer = make_optimizer(self.cfg, groups)
        return {"model": (optimizer, make_schedule(self.cfg, optimizer, total_steps))}

    def start_epoch(self, epoch: int) -> None:
        # The loop has put every module in train mode: frozen batch norm goes back to eval
        # (ImageNet's running statistics, not those of a batch of 32 photos).
        self.classifier.stages.eval()
        # Parameters without gradients are skipped by the optimizer: frozen until then.
        self.top.tuned.requires_grad_(epoch > self.head_epochs)

    def eval_step(self, batch: Any, step: Step) -> dict[str, torch.Tensor]:
        frozen, targets = batch
        outputs = view_log_probabilities(self.top, frozen)
        return {"loss": F.nll_loss(outputs, targets), **self.scores(outputs, targets)}


def predict_views(top: nn.Module, frozen: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities ``(N, classes)`` averaged over the views of ``frozen: (N, views, ...)``
    (on the device of ``top``; returned on the CPU)."""
    device = next(top.parameters()).device
    top.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(frozen), batch_size):
            chunk = frozen[start : start + batch_size].to(device)
            outputs.append(view_log_probabilities(top, chunk).exp().cpu())
    return torch.cat(outputs)
