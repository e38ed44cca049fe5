"""``dlnd sample RUN_DIR``: draw from a trained generative model, whatever it generates.

The command reads what the run's model does (``info["task"]`` in its checkpoint header) and
hands the run to that task's sampler in :data:`SAMPLERS`: text for a language model
(char-rnn, tv-script), images for a GAN (gan-mnist, dcgan). Each flag belongs to one kind of
output; a flag given for the other kind is refused with a sentence. Another generative task
joins with one entry in :data:`SAMPLERS` and, if it needs them, its own flags.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from dlnd.config import any_int, non_negative_int, positive_float, positive_int
from dlnd.errors import UserError
from dlnd.store import MODEL_FILE, read_header

# task -> (what it writes, "module:function" taking (run_dir, args), its own flags)
SAMPLERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "language-model": (
        "text",
        "dlnd.sequence.commands:sample_text",
        ("prime", "length", "temperature", "top_k", "bf16"),
    ),
    "image-generation": ("images", "dlnd.generative.commands:sample_images", ("out",)),
}
ALL_OWN_FLAGS = sorted({flag for _, _, flags in SAMPLERS.values() for flag in flags})


def run_task(run_dir: Path) -> tuple[str | None, str | None]:
    """``(task, recipe)`` of a run from its checkpoint's header, without loading weights."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run directory; 'dlnd runs' lists the runs.")
    _, meta = read_header(run_dir / MODEL_FILE)
    info = meta.get("info") if isinstance(meta.get("info"), dict) else {}
    return info.get("task"), meta.get("recipe")


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw from the run's model with the sampler of its task."""
    run_dir = Path(args.run_dir)
    task, recipe = run_task(run_dir)
    if task not in SAMPLERS:
        raise UserError(
            f"{run_dir} is a run of {recipe}, which does not generate; dlnd sample draws from "
            "a language model (char-rnn, tv-script) or a GAN (gan-mnist, dcgan)."
        )
    kind, target, own = SAMPLERS[task]
    foreign = [
        flag for flag in ALL_OWN_FLAGS if flag not in own and getattr(args, flag) is not None
    ]
    if foreign:
        names = ", ".join("--" + flag.replace("_", "-") for flag in foreign)
        verb = "does" if len(foreign) == 1 else "do"
        raise UserError(f"{names} {verb} not apply to {recipe}, whose model writes {kind}.")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(run_dir, args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dlnd sample`` to the ``dlnd`` command line."""
    p = subparsers.add_parser(
        "sample",
        help="draw from a trained generative model: text (char-rnn, tv-script) or images (GANs)",
        description="Draw samples from a trained generative model; the same seed gives the "
        "same samples. Language models (char-rnn, tv-script) print the prime followed by "
        "LENGTH sampled characters or words; unset text options take the values the run's own "
        "samples used. GANs (gan-mnist, dcgan) write OUT/samples.png (a grid of the first 256 "
        "images) and OUT/samples.npz with 'images', uint8 (N, C, H, W).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of a generative model")
    p.add_argument("--n", type=positive_int, help="how many samples (default: 1 text, 64 images)")
    p.add_argument("--seed", type=any_int, default=0, help="random seed (default 0)")
    text = p.add_argument_group("text (char-rnn, tv-script)")
    text.add_argument("--prime", help="text to continue (default: the run's --prime)")
    text.add_argument("--length", type=positive_int, help="tokens to write (default 300)")
    text.add_argument(
        "--temperature",
        type=positive_float,
        help="below 1: safer, more repetitive; above 1: wilder (default: the run's)",
    )
    text.add_argument(
        "--top-k",
        type=non_negative_int,
        help="sample from the k likeliest tokens only; 0 = all (default: the run's)",
    )
    text.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        help="keep the LSTM's weights in bfloat16 while writing: faster for one text, "
        "next-token probabilities within about 1%% of float32's",
    )
    images = p.add_argument_group("images (gan-mnist, dcgan)")
    images.add_argument("--out", help="folder for the files (default .)")
    p.set_defaults(func=cmd_sample)
