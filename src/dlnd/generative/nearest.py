"""Is the generator copying its training images? Nearest neighbours in pixel space.

A GAN trained on a few thousand images could learn to reproduce them. A low FID would then
say nothing about new images. The check: for each generated image, the distance to the closest
training image, compared with the same distance for real test images, which the
generator has never seen. If the generated images sit much closer to the training set than
new real images do (a ratio well below 1), they are near-copies; near or above 1, they are
as new as a fresh real image. The run page also shows samples beside their closest training
images, so one can look.

Distances are Euclidean over the pixels scaled to [0, 1]: ``||a - b||_2`` of the flattened
images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

POOL_CHUNK = 4096  # training images compared at a time (bounds the (n, chunk) distance matrix)


def nearest_images(
    queries: torch.Tensor, pool: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each uint8 image of ``queries`` (n, C, H, W), the ``k`` images of ``pool``
    (N, C, H, W) closest in pixel space: ``(distances, indices)``, each (n, k), nearest
    first."""
    if queries.shape[1:] != pool.shape[1:]:
        raise ValueError(
            f"queries and pool must hold images of one shape, got {tuple(queries.shape[1:])} "
            f"and {tuple(pool.shape[1:])}"
        )
    if not 1 <= k <= len(pool):
        raise ValueError(f"k must be between 1 and the pool's {len(pool)} images, got {k}")
    flat = queries.flatten(1).float() / 255
    best_d = torch.full((len(queries), 0), 0.0)
    best_i = torch.zeros((len(queries), 0), dtype=torch.long)
    for start in range(0, len(pool), POOL_CHUNK):
        chunk = pool[start : start + POOL_CHUNK].flatten(1).float() / 255
        # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2, clamped at 0 against rounding
        squared = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ chunk.T + chunk.pow(2).sum(1)
        ).clamp_min(0)
        d = torch.cat([best_d, squared.sqrt()], dim=1)
        i = torch.cat([best_i, torch.arange(start, start + len(chunk)).expand(len(flat), -1)], 1)
        best_d, order = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        best_i = i.gather(1, order)
    # the expanded form loses precision near 0 (an exact copy scores about 1e-3): the
    # distances of the k found are computed again directly
    exact = (flat[:, None] - pool[best_i].flatten(2).float() / 255).norm(dim=2)
    exact, order = exact.sort(dim=1, stable=True)
    return exact, best_i.gather(1, order)


@dataclass
class CopyCheck:
    """Median distance to the nearest training image, of generated and of test images."""

    generated: float
    test: float

    @property
    def ratio(self) -> float:
        """generated / test: near or above 1, as new as unseen real images; well below, copies."""
        return self.generated / self.test

    def metrics(self) -> dict[str, float]:
        return {
            "nearest_train_generated": self.generated,
            "nearest_train_test": self.test,
            "nearest_train_ratio": self.ratio,
        }


def copy_check(generated: torch.Tensor, test: torch.Tensor, train: torch.Tensor) -> CopyCheck:
    """Median pixel distance from each of ``generated`` and ``test`` (uint8 (n, C, H, W)) to its
    nearest image of ``train``."""
    median = [float(nearest_images(images, train)[0].median()) for images in (generated, test)]
    return CopyCheck(generated=median[0], test=median[1])
