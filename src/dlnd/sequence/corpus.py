"""Text for the language models: the corpora, a held-out tail, and ordered windows.

A language model trains on one long stream of token ids. Cut into N parallel rows and then
into consecutive windows of T tokens, the stream becomes batches (N, T) in which row i of
window k + 1 continues exactly where row i of window k ended; that is what lets the model
carry its hidden state from one batch to the next::

    stream  a b c d e f g h i j k l m n o p q r s t u v w x   (N = 2 rows, T = 3)
    row 0   a b c | d e f | g h i | j k l
    row 1   m n o | p q r | s t u | v w x
            window 1  window 2 ...

The targets are the same stream shifted by one token. The last part of the text is held out
for validation (the course's ``val_frac``): the model never trains on it.

``--embedded`` runs use text generated here from a small grammar (no data files): prose for
the character model, a dialogue script with speaker tags for the word model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dlnd.data.readers import load_corpus
from dlnd.errors import UserError

Window = tuple[torch.Tensor, torch.Tensor]  # inputs (N, T), targets (N, T)

# ------------------------------------------------------------------------------ generated text

_NAMES = ("Anna", "Levin", "Kitty", "Vronsky", "Dolly", "Stepan Arkadyevitch")
_SUBJECTS = ("the old prince", "the children", "his brother", "the doctor", "she", "he")
_VERBS = ("looked at", "thought of", "spoke to", "waited for", "smiled at", "remembered")
_OBJECTS = ("the letter", "her husband", "the garden", "the station", "his mother", "the snow")
_ENDINGS = (
    "and said nothing.",
    "with a strange feeling of shame.",
    "as though nothing had happened.",
    "and went out of the room.",
    "for a long time.",
)
_SPEAKERS = ("jerry", "george", "elaine", "kramer", "newman")
_LINES = (
    "what is the deal with {thing}?",
    "i cant believe you {did} {thing}.",
    "you {did} {thing}? (laughs) thats unbelievable!",
    "no, no, no. i never {did} {thing}.",
    "hello, {name}.",
    "well, {thing} is not my problem.",
    "so, what happened with {thing}?",
)
_THINGS = ("the airline food", "the parking space", "the soup", "the coat", "the pen", "this")
_DONE = ("ate", "lost", "took", "returned", "said")


def generated_prose(chars: int = 60_000, seed: int = 0) -> str:
    """About ``chars`` characters of novel-like prose from a small grammar, wrapped at 70
    columns, paragraphs separated by blank lines (like ``anna.txt``)."""
    rng = np.random.default_rng(seed)

    def pick(options: Sequence[str]) -> str:
        return options[rng.integers(len(options))]

    paragraphs, total = [], 0
    while total < chars:
        sentences = []
        for _ in range(rng.integers(2, 6)):
            who = pick(_NAMES) if rng.random() < 0.6 else pick(_SUBJECTS)
            sentence = f"{who} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_ENDINGS)}"
            sentences.append(sentence[0].upper() + sentence[1:])
        paragraph = wrap(" ".join(sentences), 70)
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs) + "\n"


def generated_script(lines: int = 3000, seed: int = 0) -> str:
    """A lower-case dialogue of ``lines`` lines, "speaker: words\\n" (like the Seinfeld
    scripts)."""
    rng = np.random.default_rng(seed)

    def pick(options: Sequence[str]) -> str:
        return options[rng.integers(len(options))]

    said = []
    for _ in range(lines):
        line = pick(_LINES).format(thing=pick(_THINGS), did=pick(_DONE), name=pick(_SPEAKERS))
        said.append(f"{pick(_SPEAKERS)}: {line}\n")
    return "".join(said)


def wrap(text: str, width: int) -> str:
    """``text`` with line breaks between words so that no line exceeds ``width`` characters
    (a word longer than ``width`` gets a line of its own)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def corpus_text(name: str, cfg: dict) -> str:
    """The text of corpus ``name`` ("anna" or "seinfeld"): generated under ``--embedded``,
    else read from the data folder."""
    if not cfg["embedded"]:
        return load_corpus(name, cfg["data_dir"])
    return (
        generated_prose(seed=cfg["seed"]) if name == "anna" else generated_script(seed=cfg["seed"])
    )


# ------------------------------------------------------------------------------ streams


def split_tail(text: str, val_fraction: float) -> tuple[str, str]:
    """``text`` split into its first (1 - ``val_fraction``) and the held-out tail."""
    cut = int(round(len(text) * (1 - val_fraction)))
    return text[:cut], text[cut:]


def ordered_windows(stream: torch.Tensor, rows: int, seq_len: int, offset: int = 0) -> list[Window]:
    """``stream`` (L,) from ``offset`` on, as ``rows`` parallel rows cut into consecutive
    windows of ``seq_len``: [(inputs (rows, T), targets (rows, T)), ...], targets = inputs
    shifted by one token. The rest of the stream that fills no whole window is left out."""
    usable = len(stream) - offset - 1
    columns = (usable // rows) // seq_len * seq_len
    if columns == 0:
        raise UserError(
            f"The text has {len(stream)} tokens, too few for {rows} rows of {seq_len} tokens; "
            "use a smaller --batch-size or --seq-len."
        )
    inputs = stream[offset : offset + rows * columns].view(rows, columns)
    targets = stream[offset + 1 : offset + 1 + rows * columns].view(rows, columns)
    return [
        (inputs[:, start : start + seq_len], targets[:, start : start + seq_len])
        for start in range(0, columns, seq_len)
    ]


def shard_rows(windows: list[Window], rank: int, world: int) -> list[Window]:
    """Process ``rank`` of ``world`` keeps rows rank, rank + world, ... of every window: its
    own parallel streams, continued from one window to the next. Together the processes
    hold exactly the rows of one process's batch."""
    if world == 1:
        return windows
    return [(x[rank::world], y[rank::world]) for x, y in windows]
