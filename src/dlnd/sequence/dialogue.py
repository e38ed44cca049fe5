"""(line, reply) pairs cut from a script, for the ``chatbot`` recipe.

A script is a sequence of turns, one per line of text, ``speaker: words``::

    jerry: (pointing at georges shirt) see, to me, that button is in the worst spot.
    george: are you through?

Every turn and the next one, when another speaker says it, make a pair: the line said and
the reply to it. Stage directions in parentheses are left out of both (they are not said),
and a line of the script that is no turn (a lone stage direction) breaks the chain: no pair
spans it. With ``context_turns`` k > 0 the line is the last k + 1 turns, joined by line
breaks, so a model can read what came before.

``--embedded`` runs use a small generated dialogue (:func:`generated_dialogue`) in which a
reply depends on the line: it names the thing the line asked about, so a model that looks
back at the line (attention) can do better than one that only knows replies in general.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlnd.text import Vocabulary

# "speaker: words" with a short speaker name ("jerry", "man #2", "jerry & george").
TURN = re.compile(r"^\s*([^:()\[\]\n]{1,40}):\s*(.*?)\s*$")
STAGE_DIRECTION = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")  # (pointing) or [on the phone]


@dataclass(frozen=True)
class Turn:
    """One speaker's line, stage directions removed."""

    speaker: str
    words: str


def script_turns(text: str) -> list[Turn | None]:
    """The turns of a script in order; ``None`` for a non-empty line that is no turn (it
    breaks the dialogue). Blank lines are skipped."""
    turns: list[Turn | None] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        match = TURN.match(raw)
        words = " ".join(STAGE_DIRECTION.sub(" ", match.group(2)).split()) if match else ""
        turns.append(Turn(match.group(1).strip(), words) if match and words else None)
    return turns


def dialogue_pairs(text: str, context_turns: int = 0) -> list[tuple[str, str]]:
    """``(line, reply)`` for every turn followed by another speaker's turn, in script order.

    ``line`` holds the last ``context_turns + 1`` turns of the same unbroken dialogue joined
    by "\\n" (fewer at its start).
    """
    pairs = []
    run: list[Turn] = []  # the unbroken dialogue so far
    for turn in script_turns(text):
        if turn is None:
            run = []
            continue
        if run and run[-1].speaker != turn.speaker:
            said = run[-(context_turns + 1) :]
            pairs.append(("\n".join(t.words for t in said), turn.words))
        run.append(turn)
    return pairs


def split_pairs(
    pairs: Sequence[tuple[str, str]], val_fraction: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The first (1 - ``val_fraction``) of the pairs and the held-out rest. The tail is held
    out, not a random share: neighbouring pairs share a turn (one pair's reply is the next
    one's line), so random held-out pairs would have been half seen in training."""
    cut = int(round(len(pairs) * (1 - val_fraction)))
    return list(pairs[:cut]), list(pairs[cut:])


def encoded_line(
    vocab: Vocabulary,
    message: str,
    history: Sequence[str],
    context_turns: int,
    max_words: int,
) -> np.ndarray:
    """What an encoder reads (S,) int64, 1 <= S <= ``max_words``: the last
    ``context_turns`` turns of ``history`` and the message, joined by line breaks as in
    training, cut to their last ``max_words`` words; nothing said is one unknown word."""
    said = list(history)[-context_turns:] if context_turns else []
    ids = vocab.encode("\n".join([*said, message]))[-max_words:]
    return ids if len(ids) else np.array([vocab.unknown_id], dtype=np.int64)


# ------------------------------------------------------------------------------ generated

_SPEAKERS = ("jerry", "george", "elaine", "kramer")
_THINGS = (
    "soup", "coat", "pen", "car", "apartment", "parking space", "boyfriend", "marble rye",
    "puffy shirt", "bra", "library book", "muffin tops", "jacket", "couch", "pez dispenser",
)  # fmt: skip
_ASKS = (
    "what is the deal with the {thing}?",
    "did you see the {thing}?",
    "where is the {thing}?",
    "i cant believe you lost the {thing}.",
    "you want the {thing}?",
)
_ANSWERS = (
    "i gave the {thing} to newman.",
    "forget the {thing}!",
    "the {thing} is in the car.",
    "no, i never touched the {thing}.",
)


def generated_dialogue(exchanges: int = 600, seed: int = 0) -> str:
    """A script of ``exchanges`` two-turn exchanges, "speaker: words" lines: a question about
    a thing and an answer that names the same thing."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(exchanges):
        first, second = rng.choice(len(_SPEAKERS), size=2, replace=False)
        thing = _THINGS[rng.integers(len(_THINGS))]
        ask = _ASKS[rng.integers(len(_ASKS))].format(thing=thing)
        answer = _ANSWERS[rng.integers(len(_ANSWERS))].format(thing=thing)
        lines += [f"{_SPEAKERS[first]}: {ask}", f"{_SPEAKERS[second]}: {answer}", "(scene)"]
    return "\n\n".join(lines) + "\n"
