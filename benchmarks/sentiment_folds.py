"""MR sentiment by 10-fold cross-validation: our models against the published figures.

Runs, one after the other in this process, on the same ten folds:

1. ``word2vec`` on ``--corpus`` (default: Anna Karenina + Seinfeld + the MR sentences'
   text; ``text8`` downloads 17 million words of Wikipedia);
2. ``sentiment-cnn --folds 10`` (Kim's CNN, random vectors: the check against CNN-rand);
3. ``sentiment-rnn --folds 10`` with random vectors;
4. ``sentiment-rnn --folds 10 --embeddings <the word2vec run>`` (vectors fine-tuned);
5. the same with ``--freeze-embeddings``;

then prints one table: mean +- sample standard deviation of the test accuracy, the time
of each run, and the published figures (Kim 2014; Wang & Manning 2012). Every run is a
normal run folder under ``--out`` (per-fold sub-runs, ``plots/folds.png``).

    python benchmarks/sentiment_folds.py [--folds 10] [--max-folds 0] [--out runs/mr-folds]
                                         [--corpus all|text8] [--skip cnn,frozen] [--threads N]

``--max-folds 2`` gives a quick estimate from the first two folds. Needs ``$DLND_DATA``
(or ``--data-dir``) with ``sentiment/`` and ``text/``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

PUBLISHED = (
    ("CNN-rand (Kim 2014)", 76.1),
    ("NBSVM-bi (Wang & Manning 2012)", 79.4),
    ("CNN-static (Kim 2014)", 81.0),
    ("CNN-non-static (Kim 2014)", 81.5),
)
RUNS = ("cnn", "rnn", "rnn-word2vec", "frozen")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--max-folds", type=int, default=0, help="first N folds only (0 = all)")
    parser.add_argument("--out", default="runs/mr-folds", help="folder for the run folders")
    parser.add_argument("--corpus", default="all", help="word2vec --corpus (text8 when online)")
    parser.add_argument("--skip", default="", help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--data-dir", default=None, help="data folder (default $DLND_DATA)")
    parser.add_argument(
        "--quick", action="store_true", help="quick settings on embedded data (checks the script)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch

    from dlnd.launch import run_recipe

    torch.set_num_threads(args.threads)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    common = {
        "folds": args.folds,
        "max_folds": args.max_folds,
        "out": args.out,
        "data_dir": args.data_dir,
    }
    rows = []
    quick = {"quick": True, "embedded": True} if args.quick else {}

    def run(label: str, recipe: str, **options) -> dict:
        started = time.time()
        final = run_recipe(recipe, **options, **quick)
        metrics = final["metrics"]
        rows.append(
            (
                label,
                100 * metrics["test_accuracy"],
                100 * metrics.get("test_accuracy_std", 0.0),
                metrics.get("folds", 1),
                time.time() - started,
                final["run_dir"],
            )
        )
        return final

    vectors = None
    if not {"rnn-word2vec", "frozen"} <= skip:
        vectors = run_recipe(
            "word2vec", corpus=args.corpus, out=args.out, data_dir=args.data_dir, **quick
        )
    if "cnn" not in skip:
        run("sentiment-cnn, random vectors", "sentiment-cnn", **common)
    if "rnn" not in skip:
        run("sentiment-rnn, random vectors", "sentiment-rnn", **common)
    if vectors and "rnn-word2vec" not in skip:
        run("sentiment-rnn, word2vec fine-tuned", "sentiment-rnn", embeddings=vectors["run_dir"],
            **common)  # fmt: skip
    if vectors and "frozen" not in skip:
        run("sentiment-rnn, word2vec frozen", "sentiment-rnn", embeddings=vectors["run_dir"],
            freeze_embeddings=True, **common)  # fmt: skip

    print()
    print(
        f"MR, {args.folds}-fold cross-validation"
        + (f" (first {args.max_folds} folds)" if args.max_folds else "")
        + f"; {args.threads} threads, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'model':<36} {'accuracy %':>16} {'folds':>5} {'minutes':>8}")
    for label, mean, std, folds, seconds, _ in rows:
        print(f"{label:<36} {mean:>9.1f} +- {std:<4.1f} {folds:>5} {seconds / 60:>8.1f}")
    for label, value in PUBLISHED:
        print(f"{label:<36} {value:>9.1f} {'':>6} {'10':>5} {'(published)':>8}")
    if vectors:
        print(f"word2vec vectors: {vectors['run_dir']}")
    for label, *_, run_dir in rows:
        print(f"{label}: {run_dir}")


if __name__ == "__main__":
    main()
