"""Vocabularies: the fixed list of tokens a text model knows, and their integer ids.

A model reads and writes token ids, not text. A vocabulary splits text into tokens (see
``dlnd.text.tokens``), gives each known token its id, and turns ids back into text:

    vocab = WordVocabulary.build(script, min_count=2, lowercase=True, punctuation=True)
    ids = vocab.encode("jerry: hello!")          # int64 array, one id per token
    vocab.decode(ids)                            # "jerry: hello!"
    vocab.save("vocab.json"); load_vocabulary("vocab.json") == vocab

Ids are given in order: the padding token (if any) is 0, the unknown token next, then the
known tokens from the most to the least frequent (ties in order of first appearance). Any
token that is not in the vocabulary (a rare word, a character never seen in training) is
encoded as the unknown token: encoding never fails. The padding token fills batches of
sequences up to one length; no text ever encodes to it, and decoding leaves it out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dlnd.errors import UserError
from dlnd.io import atomic_write_text
from dlnd.text.tokens import join_words, split_words

FILE_FORMAT = "dlnd-vocabulary"
FILE_VERSION = 1


class Vocabulary:
    """Tokens and their ids; the subclasses say what a token is (a character, a word).

    ``tokens[i]`` is the token with id i; ``unknown`` must be one of them, ``padding`` too
    unless it is None.
    """

    level: ClassVar[str]
    UNKNOWN: ClassVar[str]  # the default unknown token
    PADDING: ClassVar[str]  # the padding token used by build(padding=True)

    def __init__(
        self, tokens: Sequence[str], unknown: str | None = None, padding: str | None = None
    ) -> None:
        unknown = self.UNKNOWN if unknown is None else unknown
        tokens = tuple(tokens)
        if not all(isinstance(token, str) for token in tokens):
            raise ValueError("every token must be a string.")
        if len(set(tokens)) != len(tokens):
            repeated = sorted(t for t, n in Counter(tokens).items() if n > 1)[:5]
            raise ValueError(f"tokens must be unique; repeated: {repeated}.")
        for role, token in (("unknown", unknown), ("padding", padding)):
            if token is not None and token not in tokens:
                raise ValueError(f"the {role} token {token!r} is not among the tokens.")
        if padding == unknown:
            raise ValueError("the padding and unknown tokens must differ.")
        self.tokens, self.unknown, self.padding = tokens, unknown, padding
        self.unknown_id = tokens.index(unknown)
        self.padding_id = None if padding is None else tokens.index(padding)
        # The padding token is left out of the lookup: text never encodes to it.
        self._ids = {token: i for i, token in enumerate(tokens) if i != self.padding_id}

    # ----------------------------------------------------------------- tokens <-> text

    def split(self, text: str) -> list[str]:
        """The tokens of ``text``."""
        raise NotImplementedError

    def join(self, tokens: Sequence[str]) -> str:
        """Text from tokens, the inverse of :meth:`split`."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """How this vocabulary splits text (saved with it), e.g. ``{"lowercase": True}``."""
        return {}

    # ----------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        texts: str | Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        padding: bool = False,
        **options: Any,
    ) -> Vocabulary:
        """The vocabulary of ``texts`` (one string or many): every token seen at least
        ``min_count`` times, the most frequent first, at most ``max_size`` ids in all
        (counting the unknown and padding tokens). ``options`` go to the constructor."""
        splitter = cls([cls.UNKNOWN], **options)
        counts: Counter[str] = Counter()
        for text in [texts] if isinstance(texts, str) else texts:
            counts.update(splitter.split(text))
        return cls.from_counts(counts, min_count, max_size, padding, **options)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        min_count: int = 1,
        max_size: int | None = None,
        padding: bool = False,
        **options: Any,
    ) -> Vocabulary:
        """Like :meth:`build`, from tokens already split and counted (token -> count; ties
        keep the mapping's order, so a ``Counter`` filled in reading order gives first
        appearance)."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}.")
        specials = [cls.PADDING, cls.UNKNOWN] if padding else [cls.UNKNOWN]
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"max_size must leave room for {specials}, got {max_size}.")
        ranked = Counter(counts).most_common()
        kept = [t for t, n in ranked if n >= min_count and t not in specials]
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        return cls([*specials, *kept], padding=cls.PADDING if padding else None, **options)

    # ----------------------------------------------------------------- encoding

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def encode_tokens(self, tokens: Iterable[str]) -> np.ndarray:
        """Ids ``(len(tokens),)`` int64; tokens not in the vocabulary get ``unknown_id``."""
        return np.fromiter((self._ids.get(t, self.unknown_id) for t in tokens), dtype=np.int64)

    def encode(self, text: str) -> np.ndarray:
        """The ids ``(number of tokens,)`` int64 of the tokens of ``text``."""
        return self.encode_tokens(self.split(text))

    def encode_padded(self, texts: Iterable[str], length: int) -> np.ndarray:
        """Ids ``(len(texts), length)``: each text's first ``length`` tokens, padded on the
        left with ``padding_id`` (so the last token of every row is the text's last kept)."""
        if self.padding_id is None:
            raise ValueError("this vocabulary has no padding token; build it with padding=True.")
        rows = [self.encode(text)[:length] for text in texts]
        batch = np.full((len(rows), length), self.padding_id, dtype=np.int64)
        for row, ids in zip(batch, rows):
            row[length - len(ids) :] = ids
        return batch

    def decode_tokens(self, ids: Iterable[int] | np.ndarray) -> list[str]:
        """The tokens of ``ids``, padding left out."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).ravel()
        if ids.size == 0:
            return []
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got {ids.dtype}.")
        if ids.min() < 0 or ids.max() >= len(self.tokens):
            raise ValueError(
                f"ids must lie in 0..{len(self.tokens) - 1} (the vocabulary's size is "
                f"{len(self.tokens)}), got values from {ids.min()} to {ids.max()}."
            )
        return [self.tokens[i] for i in ids.tolist() if i != self.padding_id]

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of ``ids``, padding left out."""
        return self.join(self.decode_tokens(ids))

    # ----------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the vocabulary, as JSON-ready values."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "level": self.level,
            "unknown": self.unknown,
            "padding": self.padding,
            "options": self.options(),
            "tokens": list(self.tokens),
        }

    def save(self, path: str | Path) -> None:
        """Write the vocabulary to ``path`` as JSON (atomically: never half-written)."""
        # ensure_ascii: any token (even a lone surrogate) survives as a \\u escape
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        options = "".join(f", {k}={v}" for k, v in self.options().items())
        return f"{type(self).__name__}({len(self)} tokens{options})"


class CharVocabulary(Vocabulary):
    """Every character (Unicode code point) is a token.

    The unknown token is U+FFFD, the Unicode replacement character, so an unknown character
    decodes to "\ufffd"; the padding token is the empty string, which decodes to nothing.
    """

    level = "char"
    UNKNOWN = "\ufffd"
    PADDING = ""

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


class WordVocabulary(Vocabulary):
    """Whitespace-separated words are tokens; optionally lower-cased, and optionally with
    punctuation and line breaks as words of their own (see :func:`dlnd.text.split_words`)."""

    level = "word"
    UNKNOWN = "<unk>"
    PADDING = "<pad>"

    def __init__(
        self,
        tokens: Sequence[str],
        unknown: str | None = None,
        padding: str | None = None,
        lowercase: bool = False,
        punctuation: bool = False,
    ) -> None:
        super().__init__(tokens, unknown, padding)
        self.lowercase, self.punctuation = bool(lowercase), bool(punctuation)

    def options(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "punctuation": self.punctuation}

    def split(self, text: str) -> list[str]:
        return split_words(text, punctuation=self.punctuation, lowercase=self.lowercase)

    def join(self, tokens: Sequence[str]) -> str:
        return join_words(tokens, punctuation=self.punctuation)


def never_written(vocab: Vocabulary) -> tuple[int, ...]:
    """The ids a sample must not contain: the unknown token, and padding if any."""
    return tuple(i for i in (vocab.unknown_id, vocab.padding_id) if i is not None)


def continuation(vocab: Vocabulary, prime_ids: Any, new_ids: Any) -> str:
    """The text of ``new_ids`` as it continues the prime: decoded together with the prime
    (so that spacing and quotation marks follow on), minus the prime's own text."""
    prime_text = vocab.decode(prime_ids)
    return vocab.decode([*prime_ids, *new_ids])[len(prime_text) :]


VOCABULARIES: dict[str, type[Vocabulary]] = {"char": CharVocabulary, "word": WordVocabulary}


def load_vocabulary(path: str | Path) -> Vocabulary:
    """The vocabulary saved at ``path``; a :class:`UserError` saying what is wrong if the
    file is missing, is not JSON or does not describe a vocabulary."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"There is no vocabulary file at {path}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not a valid vocabulary file: it is not JSON ({err}).") from None
    try:
        return vocabulary_from_dict(data)
    except ValueError as err:
        raise UserError(f"{path} is not a valid vocabulary file: {err}") from None


def vocabulary_from_dict(data: Any) -> Vocabulary:
    """The vocabulary described by ``data`` (as written by :meth:`Vocabulary.to_dict`);
    ValueError naming the first problem otherwise."""
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise ValueError(f"expected a JSON object with format {FILE_FORMAT!r}.")
    if data.get("version") != FILE_VERSION:
        raise ValueError(f"expected version {FILE_VERSION}, got {data.get('version')!r}.")
    level = data.get("level")
    if level not in VOCABULARIES:
        raise ValueError(f"level must be one of {sorted(VOCABULARIES)}, got {level!r}.")
    tokens, options = data.get("tokens"), data.get("options", {})
    if not isinstance(tokens, list):
        raise ValueError("tokens must be a list of strings.")
    if not isinstance(data.get("unknown"), str):
        raise ValueError("unknown must be a string.")
    if data.get("padding") is not None and not isinstance(data["padding"], str):
        raise ValueError("padding must be a string or null.")
    expected = VOCABULARIES[level]([data["unknown"]], data["unknown"]).options()
    if not isinstance(options, dict) or set(options) != set(expected):
        raise ValueError(f"options must have the keys {sorted(expected)}, got {options!r}.")
    if not all(isinstance(value, bool) for value in options.values()):
        raise ValueError(f"options must be true or false, got {options!r}.")
    return VOCABULARIES[level](tokens, data["unknown"], data.get("padding"), **options)
