"""Skip-gram with negative sampling (Mikolov et al., 2013): the maths of word2vec.

A word is known by the company it keeps. Skip-gram learns two vectors per word w: v_w
when w is the centre word and u_w when it is a context word, so that a centre word c
predicts the words o around it. With a softmax over the whole vocabulary V,

    P(o | c) = exp(u_o . v_c) / sum_w exp(u_w . v_c)

every update would touch all |V| output vectors. Negative sampling replaces it by |V|-free
binary questions: is o a real context of c (label 1), and is each of K "noise" words n_k,
drawn at random, one (label 0)? With the sigmoid s(x) = 1 / (1 + exp(-x)):

    loss(c, o) = -log s(u_o . v_c) - sum_k log s(-u_{n_k} . v_c)

    dloss/dv_c     = (s(u_o . v_c) - 1) u_o + sum_k s(u_{n_k} . v_c) u_{n_k}
    dloss/du_o     = (s(u_o . v_c) - 1) v_c
    dloss/du_{n_k} = s(u_{n_k} . v_c) v_c

so one pair updates only 1 + 1 + K vectors (sparse gradients). The noise words come from
the unigram distribution raised to the power 3/4, P_n(w) ~ count(w)^0.75, which draws rare
words more often than their frequency would.

How the noise words are drawn here: for each batch, a pool of S words (S = 1024) is drawn
from P_n, and each pair picks its K noise words uniformly from the pool. A uniform pick from
an independent sample of P_n is itself distributed as P_n, so every pair is still
contrasted with K draws from P_n and the expected loss is unchanged; the pairs' noise words
are only correlated through the pool. The scores u_s . v_c of every pool word s and every
centre word c of the batch then come from one matrix product (B, D) x (D, S), instead of
gathering K vectors for each of the P pairs one by one: memory traffic, which bounds this
computation on a CPU, falls about threefold (the vectors come out as good: same nearest
neighbours on Anna Karenina as with K fresh draws per pair).

Two more tricks shape the training pairs:

- subsampling of frequent words: each occurrence of w is kept with probability
  min(1, sqrt(t / f(w))), f(w) = count(w) / total and t ~ 1e-5..1e-3. "the" and "." carry
  little about their neighbours; dropping most of them is faster and brings more distant
  words into each window;
- a random window: around each centre word the window is R words wide on each side, R
  drawn uniformly from 1..window, so near words are context more often than far ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

NOISE_POWER = 0.75
NOISE_POOL = 1024  # noise words drawn per batch, picked from by every pair


def keep_probabilities(counts: np.ndarray, threshold: float) -> np.ndarray:
    """Probability of keeping each occurrence of each word: min(1, sqrt(t / f(w))).

    counts: (V,) occurrences of each word -> (V,) float64. ``threshold`` t = 0 keeps all.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if threshold <= 0:
        return np.ones_like(counts)
    frequency = counts / counts.sum()
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, np.sqrt(threshold / frequency))


def noise_distribution(counts: np.ndarray, power: float = NOISE_POWER) -> np.ndarray:
    """P_n(w) = count(w)^power / sum_w' count(w')^power: (V,) float64; unseen words get 0."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def context_pairs(
    stream: torch.Tensor, centres: torch.Tensor, windows: torch.Tensor, max_window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (centre word, context word) pairs around the centre positions ``centres``.

    stream: (M,) word ids; centres: (B,) positions in it; windows: (M,) the window R_i of
    each position (1..max_window). Position i pairs with every j != i with |i - j| <= R_i
    inside the stream. Returns the centre words (B,), the context words (P,) and the owner
    of each pair (P,): the index in ``centres`` of its centre, in increasing order.
    """
    offsets = torch.cat([torch.arange(-max_window, 0), torch.arange(1, max_window + 1)])
    positions = centres.unsqueeze(1) + offsets.unsqueeze(0)  # (B, 2 * max_window)
    inside = (positions >= 0) & (positions < len(stream))
    valid = inside & (offsets.abs().unsqueeze(0) <= windows[centres].unsqueeze(1))
    owners = torch.arange(len(centres)).unsqueeze(1).expand_as(positions)[valid]
    context_words = stream[positions.clamp(0, len(stream) - 1)][valid]
    return stream[centres], context_words, owners


class SkipGramBatches(Sequence):
    """One epoch's batches of (centre words, context words, owners) (see
    :func:`context_pairs`), made when a batch is read.

    ``stream`` (M,) is the subsampled text, ``windows`` (M,) each position's window and
    ``centres`` a list of position tensors, one per batch.
    """

    def __init__(
        self,
        stream: torch.Tensor,
        windows: torch.Tensor,
        centres: list[torch.Tensor],
        max_window: int,
    ):
        self.stream, self.windows, self.centres = stream, windows, centres
        self.max_window = max_window

    def __len__(self) -> int:
        return len(self.centres)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return context_pairs(self.stream, self.centres[i], self.windows, self.max_window)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for i in range(len(self)):
            yield self[i]

    @property
    def words(self) -> int:
        """How many centre words the epoch trains on."""
        return sum(len(c) for c in self.centres)


class SkipGram(nn.Module):
    """Skip-gram with negative sampling; ``forward`` returns the mean loss of a batch.

    ``in_vectors.weight`` (V, D) holds v_w, the word vectors kept afterwards;
    ``out_vectors.weight`` (V, D) holds u_w. Both embeddings give sparse gradients: an
    update touches only the rows of the batch's words (use ``torch.optim.Adagrad``,
    ``SparseAdam`` or plain SGD). ``noise`` (V,) is P_n; it is kept with the weights.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        noise: torch.Tensor,
        negatives: int = 5,
        noise_pool: int = NOISE_POOL,
    ):
        super().__init__()
        self.in_vectors = nn.Embedding(vocab_size, dim, sparse=True)
        self.out_vectors = nn.Embedding(vocab_size, dim, sparse=True)
        # word2vec's start: small random centre vectors, zero context vectors
        nn.init.uniform_(self.in_vectors.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_vectors.weight)
        noise = torch.as_tensor(noise, dtype=torch.float32)
        self.register_buffer("noise_cdf", torch.cumsum(noise / noise.sum(), dim=0))
        self.negatives, self.noise_pool = negatives, noise_pool

    def sample_noise(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Word ids drawn from P_n: inverse-CDF sampling, one binary search per draw."""
        uniform = torch.rand(shape, generator=generator, device=self.noise_cdf.device)
        # side="right": the first word whose cumulative probability exceeds the draw, so
        # words of probability 0 (the unknown token) are never drawn
        ids = torch.searchsorted(self.noise_cdf, uniform, right=True)
        return ids.clamp_(max=len(self.noise_cdf) - 1)

    def draw_noise(
        self, pairs: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A pool (S,) of words drawn from P_n, and the K picks (pairs, K) of each pair in
        it: pair p's noise words are ``pool[picks[p]]``."""
        pool = self.sample_noise((self.noise_pool,), generator)
        picks = torch.randint(
            0, self.noise_pool, (pairs, self.negatives), generator=generator,
            device=self.noise_cdf.device,
        )  # fmt: skip
        return pool, picks

    def forward(
        self,
        centres: torch.Tensor,
        contexts: torch.Tensor,
        owners: torch.Tensor,
        noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The mean loss per (centre, context) pair.

        centres (B,) word ids; contexts (P,) word ids; owners (P,) the index in
        ``centres`` of each pair's centre; noise: ``(pool (S,), picks (P, K))`` as
        :meth:`draw_noise` makes them, drawn here if not given.
        """
        pool, picks = noise if noise is not None else self.draw_noise(len(contexts))
        v = self.in_vectors(centres)  # v_c: (B, D)
        true_scores = (self.out_vectors(contexts) * v[owners]).sum(dim=1)  # u_o . v_c: (P,)
        pool_scores = v @ self.out_vectors(pool).T  # u_s . v_c for every pool word: (B, S)
        noise_scores = pool_scores[owners.unsqueeze(1), picks]  # u_nk . v_c: (P, K)
        # -log s(x), written with logsigmoid for numerical stability
        loss = -F.logsigmoid(true_scores).sum() - F.logsigmoid(-noise_scores).sum()
        return loss / len(contexts)

    @property
    def vectors(self) -> torch.Tensor:
        """The word vectors v_w: (V, D)."""
        return self.in_vectors.weight
