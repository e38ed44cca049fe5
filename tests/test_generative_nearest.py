"""The copying check: nearest training images against a brute-force NumPy search, across
chunk boundaries, and the ratio for exact copies and for unseen images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlnd.generative import nearest
from dlnd.generative.nearest import copy_check, nearest_images


def brute_force(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance by a loop over pairs, written independently of the module's matrix form."""
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    p = pool.reshape(len(pool), -1).astype(np.float64) / 255
    distances = np.array([[np.linalg.norm(a - b) for b in p] for a in q])
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), order


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    pool = torch.randint(0, 256, (50, 3, 6, 5), generator=g, dtype=torch.uint8)
    queries = torch.randint(0, 256, (9, 3, 6, 5), generator=g, dtype=torch.uint8)
    return queries, pool


@pytest.mark.parametrize("chunk", [4096, 7])  # one chunk, and several with a ragged last one
def test_nearest_images_match_a_brute_force_search(images, chunk, monkeypatch):
    queries, pool = images
    monkeypatch.setattr(nearest, "POOL_CHUNK", chunk)
    distances, indices = nearest_images(queries, pool, k=4)
    want_d, want_i = brute_force(queries.numpy(), pool.numpy(), 4)
    assert distances.shape == indices.shape == (9, 4)
    np.testing.assert_allclose(distances.numpy(), want_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(indices.numpy(), want_i)


def test_a_copy_finds_itself_at_distance_zero(images):
    _, pool = images
    distances, indices = nearest_images(pool[[3, 41]], pool)
    assert indices[:, 0].tolist() == [3, 41]
    assert distances.abs().max() < 1e-3


def test_bad_shapes_and_k_are_refused(images):
    queries, pool = images
    with pytest.raises(ValueError, match="one shape"):
        nearest_images(queries[:, :1], pool)
    for k in (0, 51):
        with pytest.raises(ValueError, match="k must be between 1 and the pool's 50"):
            nearest_images(queries, pool, k=k)


def test_copy_check_tells_copies_from_new_images():
    g = torch.Generator().manual_seed(1)
    every = torch.randint(0, 256, (120, 1, 8, 8), generator=g, dtype=torch.uint8)
    train, test, fresh = every[:80], every[80:100], every[100:]
    copies = copy_check(train[:20], test, train)  # a generator that returns training images
    assert copies.generated == 0 and copies.ratio == 0
    unseen = copy_check(fresh, test, train)  # one that draws new images from the same law
    assert 0.8 < unseen.ratio < 1.25
    assert set(unseen.metrics()) == {
        "nearest_train_generated",
        "nearest_train_test",
        "nearest_train_ratio",
    }
    assert unseen.metrics()["nearest_train_ratio"] == pytest.approx(unseen.ratio)
