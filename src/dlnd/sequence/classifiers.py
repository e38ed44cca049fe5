"""Sentence classifiers: token ids and lengths in, class scores out.

Both models take ``ids`` (N, T) int64 (each sentence's token ids from the left, then
padding) and ``lengths`` (N,) int64, and return logits (N, classes). Neither looks at the
padding, so a sentence gets the same scores in any batch (the tests check it).

- :class:`SentenceLSTM`: embedding -> an LSTM reading each sentence forwards, and another
  reading it backwards -> max over time of their outputs (or their last states) ->
  dropout -> linear. Training packs the batch (``pack_padded_sequence``): the LSTM runs
  only over real tokens. ``torch.export`` (ONNX) cannot trace packing, so when exporting,
  the model reads the padded batch instead: an LSTM's output at step t depends only on
  steps <= t, so padding *after* a sentence never reaches its outputs, and the backward
  reader gets each sentence reversed within its own length. Both paths give the same
  logits (tested).
- :class:`SentenceCNN`: Kim (2014). Embedding -> convolutions over 3, 4 and 5 consecutive
  words (100 feature maps each) -> ReLU -> max over time -> dropout 0.5 -> linear, with the
  max-norm constraint ||w||_2 <= 3 on the output layer's weight vectors.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# Kim's range for words without a pretrained vector: U(-0.25, 0.25), whose variance is
# close to that of the pretrained word2vec vectors.
INIT_RANGE = 0.25
POOLINGS = ("max", "mean", "last")


class SentenceClassifier(nn.Module):
    """What both classifiers share: the embedding table (the padding row stays zero),
    word dropout, subword vectors, and :meth:`constrain` (called after every optimizer
    update).

    With ``subword_buckets`` > 0 a word's vector is its own row plus the mean of the rows of
    its character n-grams (:mod:`dlnd.text.subwords`; fastText's sum, here a mean so that
    long and short words have vectors of the same size). The ids ``known_words`` and above
    are words known by their spelling alone (seen in no training sentence): their own row is
    the unknown word's. ``subword_slots`` is the longest n-gram list; the lists themselves,
    one row per word, are set by :meth:`set_subwords` and saved with the weights.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        padding_id: int,
        unknown_id: int,
        classes: int = 2,
        word_dropout: float = 0.0,
        subword_buckets: int = 0,
        subword_slots: int = 1,
        known_words: int | None = None,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_id)
        nn.init.uniform_(self.embedding.weight, -INIT_RANGE, INIT_RANGE)
        with torch.no_grad():
            self.embedding.weight[padding_id].zero_()
        self.padding_id, self.unknown_id, self.classes = padding_id, unknown_id, classes
        self.word_dropout = word_dropout
        self.known_words = vocab_size if known_words is None else known_words
        self.subword_buckets = subword_buckets
        self.subwords: nn.Embedding | None = None
        if subword_buckets > 0:
            # one more row, all zeros and never trained: the filler of short n-gram lists
            self.subwords = nn.Embedding(
                subword_buckets + 1, embedding_dim, padding_idx=subword_buckets
            )
            nn.init.uniform_(self.subwords.weight, -INIT_RANGE, INIT_RANGE)
            with torch.no_grad():
                self.subwords.weight[subword_buckets].zero_()
            filler = torch.full((vocab_size, subword_slots), subword_buckets, dtype=torch.int32)
            self.register_buffer("subword_ids", filler)

    def set_subwords(self, table: torch.Tensor | np.ndarray) -> None:
        """Each word's n-gram rows (vocab_size, subword_slots), filled up with
        ``subword_buckets`` (see :func:`dlnd.text.subwords.subword_table`)."""
        table = torch.as_tensor(table, dtype=torch.int32)
        if self.subwords is None or table.shape != self.subword_ids.shape:
            expected = None if self.subwords is None else tuple(self.subword_ids.shape)
            raise ValueError(f"subword table of shape {tuple(table.shape)}, expected {expected}")
        if table.min() < 0 or table.max() > self.subword_buckets:
            raise ValueError(f"subword rows must lie in 0..{self.subword_buckets}")
        self.subword_ids.copy_(table)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (N, T) -> vectors (N, T, embedding_dim). In training, each real token is
        replaced by the unknown token with probability ``word_dropout``: the model learns
        to read sentences with words it has never seen, as test sentences have. A dropped
        word keeps its n-grams, as an unseen word of a test sentence has them."""
        words = ids
        if self.known_words < self.embedding.num_embeddings:
            words = words.masked_fill(words >= self.known_words, self.unknown_id)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(ids.shape, device=ids.device) < self.word_dropout
            words = words.masked_fill(dropped & (ids != self.padding_id), self.unknown_id)
        vectors = self.embedding(words)
        if self.subwords is not None:
            vectors = vectors + self.spelling(ids)
        return vectors

    def spelling(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (N, T) -> the mean of each word's n-gram vectors (N, T, embedding_dim), zero
        for padding and the unknown word."""
        assert self.subwords is not None
        # Each distinct word of the batch once: a bag of its n-grams, the filler left out.
        distinct, where = ids.unique(return_inverse=True)
        bags = F.embedding_bag(
            self.subword_ids[distinct],
            self.subwords.weight,
            mode="mean",
            padding_idx=self.subword_buckets,
        )
        return bags[where]

    def word_vectors(self) -> torch.Tensor:
        """The vector each id is read as outside training: (vocab_size, embedding_dim)."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            table = self.embed(torch.arange(self.embedding.num_embeddings).unsqueeze(0))[0]
        self.train(was_training)
        return table

    def without_subwords(self) -> SentenceClassifier:
        """A copy that gives the same scores from a plain table of whole word vectors (own
        row + spelling, see :meth:`word_vectors`): for export, where one lookup per word
        serves faster than gathering up to ``subword_slots`` n-gram rows. Training it on
        would no longer share vectors between words. Without subwords: the model itself."""
        if self.subwords is None:
            return self
        plain = copy.deepcopy(self)
        with torch.no_grad():
            plain.embedding.weight.copy_(self.word_vectors())
        del plain.subword_ids
        plain.subwords, plain.subword_buckets = None, 0
        plain.known_words = plain.embedding.num_embeddings
        return plain

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (N, T), lengths (N,) -> logits (N, classes)."""
        return self.classify(self.embed(ids), lengths)

    def classify(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Word vectors (N, T, embedding_dim) of the sentences -> logits (N, classes)."""
        raise NotImplementedError

    def set_embeddings(self, vectors: torch.Tensor, freeze: bool) -> None:
        """Copy ``vectors`` (vocab_size, embedding_dim) into the table; ``freeze`` keeps
        them fixed in training (Kim's "static"), otherwise they are fine-tuned."""
        with torch.no_grad():
            self.embedding.weight.copy_(vectors)
            self.embedding.weight[self.padding_id].zero_()
        self.embedding.weight.requires_grad_(not freeze)

    def constrain(self) -> None:
        """Project the weights back into their allowed set after an update (default: none)."""


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``lengths[n]`` steps in reverse order, the padding left in place.

    x: (N, T, D), lengths: (N,) -> (N, T, D). Applying it twice gives ``x`` back.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    last = lengths.to(x.device).unsqueeze(1) - 1  # (N, 1)
    source = torch.where(steps <= last, last - steps, steps)  # (N, T)
    return torch.gather(x, 1, source.unsqueeze(2).expand(-1, -1, x.shape[2]))


def padding_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, steps) bool: True at the positions past each sentence's end."""
    positions = torch.arange(steps, device=lengths.device).unsqueeze(0)
    return positions >= lengths.unsqueeze(1)


class SentenceLSTM(SentenceClassifier):
    """Embedding -> LSTM(s) over the packed sentences -> pooling -> dropout -> linear."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        padding_id: int,
        unknown_id: int,
        classes: int = 2,
        hidden_size: int = 128,
        bidirectional: bool = True,
        pooling: str = "max",
        dropout: float = 0.5,
        word_dropout: float = 0.0,
        **subwords: Any,
    ):
        super().__init__(
            vocab_size, embedding_dim, padding_id, unknown_id, classes, word_dropout, **subwords
        )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        directions = 2 if bidirectional else 1
        self.readers = nn.ModuleList(
            nn.LSTM(embedding_dim, hidden_size, batch_first=True) for _ in range(directions)
        )
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(directions * hidden_size, classes)

    def classify(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        vectors = self.dropout(vectors)
        outputs = self.read(vectors, lengths, packed=not torch.compiler.is_exporting())
        return self.classifier(self.dropout(self.pool(outputs, lengths)))

    def read(self, vectors: torch.Tensor, lengths: torch.Tensor, packed: bool) -> torch.Tensor:
        """Outputs (N, T, directions * hidden) of each reader at each real step (values at
        padded steps are meaningless). The backward reader gets every sentence reversed
        within its length; its outputs are reversed back, so step t of both lines up."""
        outputs = []
        for direction, reader in enumerate(self.readers):
            inputs = vectors if direction == 0 else reverse_within(vectors, lengths)
            if packed:
                sequence = pack_padded_sequence(
                    inputs, lengths.cpu(), batch_first=True, enforce_sorted=False
                )
                read, _ = reader(sequence)
                read, _ = pad_packed_sequence(read, batch_first=True, total_length=inputs.shape[1])
            else:
                read, _ = reader(inputs)
            outputs.append(read if direction == 0 else reverse_within(read, lengths))
        return torch.cat(outputs, dim=2)

    def pool(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, T, F) -> (N, F): max or mean over the real steps, or each reader's last
        state (the forward reader's at the last word, the backward one's at the first)."""
        lengths = lengths.to(outputs.device)
        padded = padding_mask(lengths, outputs.shape[1]).unsqueeze(2)  # (N, T, 1)
        if self.pooling == "max":
            return outputs.masked_fill(padded, float("-inf")).amax(dim=1)
        if self.pooling == "mean":
            total = outputs.masked_fill(padded, 0.0).sum(dim=1)
            return total / lengths.unsqueeze(1).to(outputs.dtype)
        hidden = self.readers[0].hidden_size
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden)
        states = [torch.gather(outputs[:, :, :hidden], 1, last).squeeze(1)]
        if len(self.readers) == 2:
            states.append(outputs[:, 0, hidden:])
        return torch.cat(states, dim=1)


class SentenceCNN(SentenceClassifier):
    """Kim's CNN: convolutions of several widths over the word vectors, max over time."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        padding_id: int,
        unknown_id: int,
        classes: int = 2,
        widths: tuple[int, ...] | list[int] = (3, 4, 5),
        feature_maps: int = 100,
        dropout: float = 0.5,
        max_norm: float = 3.0,
        word_dropout: float = 0.0,
        **subwords: Any,
    ):
        super().__init__(
            vocab_size, embedding_dim, padding_id, unknown_id, classes, word_dropout, **subwords
        )
        self.widths = tuple(widths)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(embedding_dim, feature_maps, width) for width in self.widths
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_maps * len(self.widths), classes)
        self.max_norm = max_norm

    def classify(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        vectors = vectors.transpose(1, 2)  # (N, embedding_dim, T)
        lengths = lengths.to(vectors.device)
        features = []
        for width, convolution in zip(self.widths, self.convolutions):
            # Kim's "wide" convolution: width-1 zero vectors on each side, so that every
            # word is seen at every position of a window and short sentences still fit.
            maps = F.relu(convolution(F.pad(vectors, (width - 1, width - 1))))  # (N, F, T+w-1)
            # Windows past the sentence's end read only padding: set them to 0. ReLU
            # outputs are >= 0, so the max over time is the max over the sentence alone.
            outside = padding_mask(lengths + width - 1, maps.shape[2]).unsqueeze(1)
            features.append(maps.masked_fill(outside, 0.0).amax(dim=2))
        return self.classifier(self.dropout(torch.cat(features, dim=1)))

    def constrain(self) -> None:
        """Kim's max-norm: rescale each class's weight vector w to ||w||_2 = max_norm
        whenever a gradient step made it longer."""
        with torch.no_grad():
            weight = self.classifier.weight  # (classes, features): one row per class
            weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=self.max_norm))


SENTENCE_MODELS: dict[str, type[SentenceClassifier]] = {"lstm": SentenceLSTM, "cnn": SentenceCNN}


def build_sentence_model(spec: dict[str, Any]) -> SentenceClassifier:
    """The model a checkpoint's ``info["model"]`` describes: ``{"kind": "lstm" | "cnn",
    ...constructor arguments}``."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in SENTENCE_MODELS:
        raise ValueError(f"model kind must be one of {sorted(SENTENCE_MODELS)}, got {kind!r}")
    return SENTENCE_MODELS[kind](**spec)
