"""``dlnd sample RUN_DIR --prime TEXT``: continue a text with a trained language model."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlnd.config import any_int, non_negative_int, positive_float, positive_int

# PyTorch and the model are imported inside the handler, so that `dlnd --help` stays fast.


def cmd_sample(args: argparse.Namespace) -> int:
    """Print the prime and its continuation, once per sample (``--n``)."""
    from dlnd.runs import read_config
    from dlnd.sequence.sampling import write_from_run

    run_config = read_config(Path(args.run_dir))  # defaults: what the run's samples used

    def setting(name: str, default: object) -> object:
        given = getattr(args, name)
        return given if given is not None else run_config.get(name, default)

    prime = setting("prime", "")
    top_k = setting("top_k", 0)
    texts = write_from_run(
        args.run_dir,
        prime,
        args.length,
        temperature=setting("temperature", 1.0),
        top_k=top_k or None,
        seed=args.seed,
        streams=args.n,
    )
    print("\n\n---\n\n".join(prime + text for text in texts))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dlnd sample`` to the command line."""
    p = subparsers.add_parser(
        "sample",
        help="continue a text with a trained language model (char-rnn, tv-script)",
        description="Print the prime followed by LENGTH sampled characters (char-rnn) or words "
        "(tv-script). The same seed gives the same text. Unset options take the values "
        "the run's own samples used.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of char-rnn or tv-script")
    p.add_argument("--prime", help="text to continue (default: the run's --prime)")
    p.add_argument("--length", type=positive_int, default=300, help="tokens to write (default 300)")
    p.add_argument(
        "--temperature",
        type=positive_float,
        help="below 1: safer, more repetitive; above 1: wilder (default: the run's)",
    )
    p.add_argument(
        "--top-k",
        type=non_negative_int,
        help="sample from the k likeliest tokens only; 0 = all (default: the run's)",
    )
    p.add_argument("--seed", type=any_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--n", type=positive_int, default=1, help="samples to write, as one batch (default 1)"
    )
    p.set_defaults(func=cmd_sample)
