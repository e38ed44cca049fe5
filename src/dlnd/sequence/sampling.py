"""Writing text with a trained language model: from a prime, or from a run directory.

    model, vocab = load_language_model("runs/char-rnn/<stamp>")
    texts = write(model, vocab, "Anna", length=300, temperature=0.8, top_k=5, seed=1)

The same seed gives the same text. Characters or words of the prime that the vocabulary
does not know are read as its unknown token (never an error), and the unknown token itself
is never written. Bad settings raise :class:`dlnd.errors.UserError` with one sentence.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from dlnd.errors import UserError
from dlnd.sequence.language_model import LanguageModel
from dlnd.text import Vocabulary
from dlnd.text.vocabulary import continuation, never_written, vocabulary_from_dict

TASK = "language-model"  # the ``task`` of a language model's checkpoint info
MAX_LENGTH = 100_000  # tokens one call may write per stream
MAX_STREAMS = 1_000
MAX_PRIME_CHARS = 100_000


def check_settings(
    prime: str, length: int, temperature: float, top_k: int | None, streams: int
) -> None:
    """Refuse settings no sample can be written with, with a sentence saying why."""
    if not isinstance(prime, str) or len(prime) > MAX_PRIME_CHARS:
        raise UserError(f"The prime must be text of at most {MAX_PRIME_CHARS} characters.")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise UserError(
            f"The length must be a whole number from 1 to {MAX_LENGTH}, got {length!r}."
        )
    if not isinstance(temperature, int | float) or not (
        math.isfinite(temperature) and temperature > 0
    ):
        raise UserError(f"The temperature must be a positive number, got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"top-k must be a whole number of at least 1 (or none), got {top_k!r}.")
    if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= MAX_STREAMS:
        raise UserError(
            f"The number of samples must be a whole number from 1 to {MAX_STREAMS}, got "
            f"{streams!r}."
        )


def write(
    model: LanguageModel,
    vocab: Vocabulary,
    prime: str,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    streams: int = 1,
    bf16: bool = False,
) -> list[str]:
    """``streams`` continuations of ``prime``, each ``length`` tokens (characters or words),
    sampled together as one batch; the same ``seed`` gives the same texts. ``bf16`` keeps
    the LSTM's weights in bfloat16 while writing: faster for one stream, whose steps are
    bound by reading the weights, with next-token probabilities within about 1 % of the
    float32 ones (so the same seed may write other text than without it)."""
    check_settings(prime, length, temperature, top_k, streams)
    prime_ids = vocab.encode(prime)
    if len(prime_ids) == 0:
        raise UserError(
            "The prime holds no token to start from; give some text, e.g. --prime 'Anna'."
        )
    if len(vocab) <= len(never_written(vocab)):
        raise UserError("The vocabulary holds no token that can be written.")
    generator = torch.Generator().manual_seed(seed)
    batch = torch.from_numpy(prime_ids).unsqueeze(0).repeat(streams, 1)
    written = model.generate(
        batch,
        length,
        temperature=temperature,
        top_k=top_k,
        exclude=never_written(vocab),
        generator=generator,
        weights_dtype=torch.bfloat16 if bf16 else torch.float32,
    )
    return [continuation(vocab, prime_ids, row) for row in written.numpy()]


def language_model_parts(meta: dict[str, Any], run_dir: Path) -> Vocabulary:
    """The vocabulary stored in a checkpoint's metadata; a UserError if the run is not a
    language model's."""
    info = meta.get("info", {})
    if info.get("task") != TASK:
        raise UserError(
            f"{run_dir} is not a run of a language model; give a run of char-rnn or tv-script."
        )
    try:
        return vocabulary_from_dict(info.get("vocabulary"))
    except ValueError as err:
        raise UserError(f"The vocabulary stored in {run_dir} is damaged: {err}") from None


def load_language_model(run_dir: str | Path) -> tuple[LanguageModel, Vocabulary]:
    """The trained model of a char-rnn or tv-script run (eval mode, CPU) and its vocabulary."""
    from dlnd.checkpoint import load_model

    run_dir = Path(run_dir)
    model, meta = load_model(run_dir)
    return model, language_model_parts(meta, run_dir)


def write_from_run(run_dir: str | Path, prime: str, length: int, **settings: Any) -> list[str]:
    """:func:`write` with the model of a run directory (``settings``: temperature, top_k,
    seed, streams, bf16)."""
    check_settings(
        prime,
        length,
        settings.get("temperature", 1.0),
        settings.get("top_k"),
        settings.get("streams", 1),
    )
    model, vocab = load_language_model(run_dir)
    return write(model, vocab, prime, length, **settings)
