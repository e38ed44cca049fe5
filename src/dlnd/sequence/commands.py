"""Text from a trained language model for ``dlnd sample`` (:mod:`dlnd.sample_command`
dispatches on the run's task)."""

from __future__ import annotations

import argparse
from pathlib import Path

# PyTorch and the model are imported inside the handler, so that `dlnd --help` stays fast.


DEFAULT_LENGTH = 300


def sample_text(run_dir: Path, args: argparse.Namespace) -> int:
    """Print the prime and its continuation, once per sample (``--n``)."""
    from dlnd.runs import read_config
    from dlnd.sequence.sampling import write_from_run

    run_config = read_config(run_dir)  # defaults: what the run's samples used

    def setting(name: str, default: object) -> object:
        given = getattr(args, name)
        return given if given is not None else run_config.get(name, default)

    prime = setting("prime", "")
    top_k = setting("top_k", 0)
    texts = write_from_run(
        run_dir,
        prime,
        DEFAULT_LENGTH if args.length is None else args.length,
        temperature=setting("temperature", 1.0),
        top_k=top_k or None,
        seed=args.seed,
        streams=1 if args.n is None else args.n,
        bf16=bool(args.bf16),
    )
    print("\n\n---\n\n".join(prime + text for text in texts))
    return 0
