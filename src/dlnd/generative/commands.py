"""Images from a trained GAN for ``dlnd sample`` (:mod:`dlnd.sample_command` dispatches)."""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

from dlnd.errors import UserError
from dlnd.io import atomic_write_bytes

# PyTorch and the models are imported inside the handlers, so that `dlnd --help` and the
# other commands do not pay for them.

MAX_IMAGES = 50_000  # uint8 28x28 or 32x32x3 images: at most 154 MB in memory
GRID_LIMIT = 256  # the PNG shows the first images only; samples.npz holds all of them


DEFAULT_IMAGES = 64


def sample_images(run_dir: Path, args: argparse.Namespace) -> int:
    """``args.n`` images from a GAN's generator with seed ``args.seed``: a PNG grid of the
    first ones and ``samples.npz`` holding ``"images"``, uint8 (N, C, H, W); prints both
    paths."""
    import numpy as np

    from dlnd.checkpoint import load_model
    from dlnd.generative.figures import image_grid, save_png

    n = DEFAULT_IMAGES if args.n is None else args.n
    if n > MAX_IMAGES:
        raise UserError(f"--n is at most {MAX_IMAGES:,}, got {n:,}; sample in several runs.")
    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed must be from 0 to 2**63 - 1 for images, got {args.seed}.")
    model, _ = load_model(run_dir)
    images = model.generator.generate(n, args.seed)
    out = Path(args.out or ".")
    shown = images[:GRID_LIMIT]
    grid = save_png(
        image_grid(shown, columns=math.ceil(math.sqrt(len(shown)))), out / "samples.png"
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy())
    arrays = out / "samples.npz"
    atomic_write_bytes(arrays, buffer.getvalue())
    print(grid)
    print(arrays)
    return 0
