"""Latent vectors of a seed, drawn with NumPy so that a server without PyTorch draws the same
ones: ``dlnd sample --seed S``, ``Generator.generate(n, S)`` and ``POST .../generate`` with
``{"seed": S}`` give the same images.

Training draws its vectors from PyTorch's generators on the training device (fast, and
seeded through the loop); only images asked for *by seed* come from here.
"""

from __future__ import annotations

import numpy as np

LATENT_DISTRIBUTIONS = ("normal", "uniform")
SEEDING = (
    "z for seed s is numpy.random.default_rng(s).standard_normal((n, latent_size), float32) "
    "for a normal latent space, or uniform(-1, 1) drawn as default_rng(s).random((n, "
    "latent_size), float32) * 2 - 1 for a uniform one"
)


def seeded_latent(n: int, latent_size: int, distribution: str, seed: int) -> np.ndarray:
    """``n`` latent vectors ``(n, latent_size)`` float32 for ``seed``: z ~ N(0, I) for
    ``"normal"``, z ~ U(-1, 1) for ``"uniform"``. The first k vectors of a seed do not depend
    on n (both draws fill the array row by row)."""
    if distribution not in LATENT_DISTRIBUTIONS:
        raise ValueError(f"latent distribution must be one of {LATENT_DISTRIBUTIONS}")
    rng = np.random.default_rng(seed)
    if distribution == "normal":
        return rng.standard_normal((n, latent_size), dtype=np.float32)
    return rng.random((n, latent_size), dtype=np.float32) * 2 - 1
