"""Batches of sentences of different lengths, for models that read each sentence whole.

A batch is ``(ids, lengths, labels)``: ``ids`` (N, T) holds each sentence's token ids from
the left, then the padding id up to the batch's longest sentence (T tokens); ``lengths``
(N,) the true lengths; ``labels`` (N,). Nothing is cut: a recurrent model packs the batch
(``torch.nn.utils.rnn.pack_padded_sequence``) so that it never computes on padding, and a
convolutional one masks it, so a sentence's prediction does not depend on its batch.

Sentences of similar length in one batch waste fewer padded steps, so training batches are
drawn like this, the same way for the same (seed, epoch): shuffle the sentences, cut the
order into chunks of ``BUCKET_BATCHES`` batches, sort each chunk by length, cut it into
batches, shuffle the batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from dlnd.distributed import DistState
from dlnd.text import Vocabulary
from dlnd.trainer import eval_indices

BUCKET_BATCHES = 50


@dataclass
class EncodedSentences:
    """Sentences as token ids: ``ids[i]`` (length_i,) int64, ``labels`` (N,) int64."""

    ids: list[torch.Tensor]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> torch.Tensor:
        """(N,) int64: the number of tokens of each sentence."""
        return torch.tensor([len(ids) for ids in self.ids], dtype=torch.int64)


def encode_sentences(
    vocab: Vocabulary, sentences: Sequence[str], labels: np.ndarray | Sequence[int]
) -> EncodedSentences:
    """Token ids of each sentence (unknown words -> the unknown id). A sentence without any
    token becomes one unknown token: every length is at least 1, which packing needs."""
    ids = []
    for sentence in sentences:
        encoded = vocab.encode(sentence)
        ids.append(torch.from_numpy(encoded if len(encoded) else np.array([vocab.unknown_id])))
    return EncodedSentences(ids, torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def pad_batch(sequences: Sequence[torch.Tensor], padding_id: int) -> tuple[torch.Tensor, ...]:
    """``(ids (N, T), lengths (N,))``: the sequences left-aligned, padded to the longest."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    return pad_sequence(list(sequences), batch_first=True, padding_value=padding_id), lengths


def bucketed_batch_indices(
    lengths: torch.Tensor, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[torch.Tensor]:
    """This process's share of each training batch of one epoch, batches of similar lengths.

    Depends only on (seed, epoch): a resumed run draws the same batches. As in
    :func:`dlnd.trainer.batch_indices`, rank r takes positions r, r+W, ... of every global
    batch, and a batch too small to give every rank an example is dropped.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator)
    chunk = batch_size * BUCKET_BATCHES
    batches: list[torch.Tensor] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        # stable sort: equal lengths keep their shuffled order
        part = part[torch.sort(lengths[part], stable=True).indices]
        batches += list(part.split(batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    shards = []
    for i in shuffled:
        batch = batches[i][: len(batches[i]) - len(batches[i]) % world]
        if len(batch):
            shards.append(batch[rank::world])
    return shards


def sorted_eval_indices(
    lengths: torch.Tensor, batch_size: int, dist: DistState
) -> list[torch.Tensor]:
    """This process's share of a data set, every example once, in batches sorted by length
    (the order does not change a mean, and similar lengths pad less)."""
    order = torch.sort(lengths, stable=True).indices
    return [order[index] for index in eval_indices(len(lengths), batch_size, dist)]


class SentenceBatches(Sequence):
    """The batches ``(ids, lengths, labels)`` of ``data`` for a list of index tensors."""

    def __init__(self, data: EncodedSentences, indices: list[torch.Tensor], padding_id: int):
        self.data, self.indices, self.padding_id = data, indices, padding_id

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.indices[i]
        ids, lengths = pad_batch([self.data.ids[j] for j in index.tolist()], self.padding_id)
        return ids, lengths, self.data.labels[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for i in range(len(self)):
            yield self[i]
