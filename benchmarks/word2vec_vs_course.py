"""word2vec training speed: the ``word2vec`` recipe against the course's skip-gram loop.

Both train skip-gram with negative sampling on the same words in one process: the first
``--tokens`` words of ``--corpus`` (split by dlnd's tokeniser, words seen fewer than 5
times dropped), the same vector size, window, number of noise words and subsampling
threshold. Words per second = centre words trained on / seconds spent training.

- course: the loop written the way the course's negative-sampling notebook writes it.
  Frequent words are subsampled once; Python builds each batch of 512 words word by word
  (a random window R in 1..5 per word, its context taken inside the batch); dense
  ``nn.Embedding`` tables initialised U(-1, 1); K noise words per pair drawn with
  ``torch.multinomial`` from the unigram^0.75 distribution; the loss through ``bmm``; Adam
  (lr 0.003) updating both whole tables at every step. It runs for ``--seconds``.
- dlnd: ``dlnd run word2vec`` for one epoch (its words/s as the run reports it): batches
  built by tensor operations, sparse gradients (only the rows of a batch's words),
  Adagrad, everything inside the shared training loop.

    python benchmarks/word2vec_vs_course.py [--corpus all] [--tokens 0] [--dim 300]
                                            [--seconds 60] [--threads N]

Needs the corpus in ``$DLND_DATA`` (or ``--data-dir``); prints one table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time

WINDOW, NEGATIVES, MIN_COUNT = 5, 5, 5
COURSE_BATCH, COURSE_LR = 512, 0.003


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="all", help="word2vec --corpus (default all)")
    parser.add_argument("--tokens", type=int, default=0, help="words of the corpus read (0 = all)")
    parser.add_argument("--dim", type=int, default=300, help="size of the word vectors")
    parser.add_argument("--subsample", type=float, default=1e-4, help="threshold t (both)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time given to the course loop")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--data-dir", default=None, help="data folder (default $DLND_DATA)")
    return parser.parse_args()


# --- the course's way ---------------------------------------------------------------------


def course_subsample(words: list[int], threshold: float) -> list[int]:
    """Drop each occurrence of w with probability 1 - sqrt(t / f(w)), once, up front."""
    from collections import Counter

    counts = Counter(words)
    total = len(words)
    drop = {w: 1 - (threshold / (c / total)) ** 0.5 for w, c in counts.items()}
    return [w for w in words if random.random() < (1 - drop[w])]


def course_targets(words: list[int], idx: int, window: int) -> list[int]:
    """The words within a random window R of position ``idx``."""
    r = random.randint(1, window)
    start = max(idx - r, 0)
    return words[start:idx] + words[idx + 1 : idx + r + 1]


def course_batches(words: list[int], batch_size: int, window: int):
    """Batches of (input words, target words), contexts taken inside each batch."""
    for idx in range(0, len(words) // batch_size * batch_size, batch_size):
        batch = words[idx : idx + batch_size]
        inputs, targets = [], []
        for i, word in enumerate(batch):
            context = course_targets(batch, i, window)
            targets.extend(context)
            inputs.extend([word] * len(context))
        yield inputs, targets


def course_words_per_second(stream: list[int], vocab_size: int, args) -> tuple[float, int, float]:
    import torch
    from torch import nn

    counts = torch.bincount(torch.tensor(stream), minlength=vocab_size).float()
    noise = counts**0.75 / (counts**0.75).sum()

    class SkipGramNeg(nn.Module):
        def __init__(self, n_vocab: int, n_embed: int):
            super().__init__()
            self.n_embed = n_embed
            self.in_embed = nn.Embedding(n_vocab, n_embed)
            self.out_embed = nn.Embedding(n_vocab, n_embed)
            self.in_embed.weight.data.uniform_(-1, 1)
            self.out_embed.weight.data.uniform_(-1, 1)

        def forward_noise(self, batch_size: int, n_samples: int) -> torch.Tensor:
            words = torch.multinomial(noise, batch_size * n_samples, replacement=True)
            return self.out_embed(words).view(batch_size, n_samples, self.n_embed)

    def negative_sampling_loss(inputs, outputs, noise_vectors):
        batch_size, embed_size = inputs.shape
        inputs = inputs.view(batch_size, embed_size, 1)
        outputs = outputs.view(batch_size, 1, embed_size)
        out_loss = torch.bmm(outputs, inputs).sigmoid().log().squeeze()
        noise_loss = torch.bmm(noise_vectors.neg(), inputs).sigmoid().log().squeeze().sum(1)
        return -(out_loss + noise_loss).mean()

    model = SkipGramNeg(vocab_size, args.dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=COURSE_LR)
    train_words = course_subsample(stream, args.subsample)
    started, words = time.perf_counter(), 0
    for inputs, targets in course_batches(train_words, COURSE_BATCH, WINDOW):
        inputs, targets = torch.LongTensor(inputs), torch.LongTensor(targets)
        input_vectors = model.in_embed(inputs)
        output_vectors = model.out_embed(targets)
        noise_vectors = model.forward_noise(inputs.shape[0], NEGATIVES)
        loss = negative_sampling_loss(input_vectors, output_vectors, noise_vectors)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        words += COURSE_BATCH
        if time.perf_counter() - started > args.seconds:
            break
    seconds = time.perf_counter() - started
    return words / seconds, words, seconds


# --- dlnd ---------------------------------------------------------------------------------


def dlnd_words_per_second(args) -> tuple[float, int, float]:
    from dlnd.launch import run_recipe

    with tempfile.TemporaryDirectory() as out:
        final = run_recipe(
            "word2vec",
            corpus=args.corpus,
            max_tokens=args.tokens,
            embedding_dim=args.dim,
            window=WINDOW,
            negatives=NEGATIVES,
            min_count=MIN_COUNT,
            subsample=args.subsample,
            epochs=1,
            device="cpu",
            data_dir=args.data_dir,
            out=out,
        )
    metrics = final["metrics"]
    words = metrics["epoch_words"]
    return metrics["words_per_second"], words, words / metrics["words_per_second"]


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from dlnd.sequence.word2vec import build_corpus, corpus_texts

    texts, source = corpus_texts(args.corpus, args.data_dir, False, 0)
    corpus = build_corpus(texts, source, MIN_COUNT, args.tokens)
    stream = corpus.stream.tolist()
    random.seed(0)
    torch.manual_seed(0)
    course = course_words_per_second(stream, len(corpus.vocab), args)
    ours = dlnd_words_per_second(args)
    read = f"{args.tokens:,}" if args.tokens else "all"
    print()
    print(
        f"{source} ({read} words read): {len(stream):,} kept, vocabulary "
        f"{len(corpus.vocab):,}; D={args.dim}, window {WINDOW}, K={NEGATIVES}, "
        f"t={args.subsample:g}; {args.threads} threads, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'loop':<8} {'words/s':>10} {'words':>10} {'seconds':>8}")
    for name, (speed, words, seconds) in (("course", course), ("dlnd", ours)):
        print(f"{name:<8} {speed:>10,.0f} {words:>10,} {seconds:>8.1f}")
    print(f"dlnd / course: {ours[0] / course[0]:.1f}x")


if __name__ == "__main__":
    main()
