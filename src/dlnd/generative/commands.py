"""``dlnd sample``: draw from a trained generative model.

The command reads what the run's model does (``info["task"]`` in its checkpoint) and hands
it to that task's sampler in :data:`SAMPLERS`: images for a GAN. Another generative task
(text from a language model, say) joins with one entry there and its own flags.
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlnd.config import non_negative_int, positive_int
from dlnd.errors import UserError
from dlnd.io import atomic_write_bytes

# PyTorch and the models are imported inside the handlers, so that `dlnd --help` and the
# other commands do not pay for them.

MAX_IMAGES = 50_000  # uint8 28x28 or 32x32x3 images: at most 154 MB in memory
GRID_LIMIT = 256  # the PNG shows the first images only; samples.npz holds all of them


def sample_images(model: Any, meta: dict[str, Any], args: argparse.Namespace) -> list[Path]:
    """``args.n`` images from a GAN's generator with seed ``args.seed``: a PNG grid of the
    first ones and ``samples.npz`` holding ``"images"``, uint8 (N, C, H, W)."""
    import numpy as np

    from dlnd.generative.figures import image_grid, save_png

    images = model.generator.generate(args.n, args.seed)
    out = Path(args.out)
    shown = images[:GRID_LIMIT]
    grid = save_png(
        image_grid(shown, columns=math.ceil(math.sqrt(len(shown)))), out / "samples.png"
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy())
    arrays = out / "samples.npz"
    atomic_write_bytes(arrays, buffer.getvalue())
    return [grid, arrays]


Sampler = Callable[[Any, dict[str, Any], argparse.Namespace], list[Path]]
SAMPLERS: dict[str, Sampler] = {"image-generation": sample_images}


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw from the run's model with the sampler of its task; print the files written."""
    from dlnd.checkpoint import load_model

    if args.n > MAX_IMAGES:
        raise UserError(f"--n is at most {MAX_IMAGES:,}, got {args.n:,}; sample in several runs.")
    if args.seed >= 2**63:
        raise UserError(f"--seed must be below 2**63, got {args.seed}.")
    run_dir = Path(args.run_dir)
    model, meta = load_model(run_dir)
    task = meta.get("info", {}).get("task")
    sampler = SAMPLERS.get(task)
    if sampler is None:
        raise UserError(
            f"{run_dir} is a run of {meta.get('recipe')}, which does not generate; dlnd sample "
            f"draws from generative models ({', '.join(SAMPLERS)}), e.g. a run of dcgan."
        )
    for path in sampler(model, meta, args):
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dlnd sample`` to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "sample",
        help="draw samples from a trained generative model (a GAN run)",
        description="Draw N samples from a trained generative model. For a GAN: a PNG grid "
        f"of the first {GRID_LIMIT} images and DIR/samples.npz with 'images', uint8 "
        "(N, C, H, W). The same seed gives the same samples.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a generative model")
    p.add_argument("--n", type=positive_int, default=64, help="how many samples (default 64)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=".", help="folder for the files (default .)")
    p.set_defaults(func=cmd_sample)
