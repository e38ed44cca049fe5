"""Splitting text into tokens, and joining tokens back into readable text.

Two kinds of token:

- characters: every Unicode code point of the text is one token (a character-level model);
- words: the text split on whitespace. A model that *writes* text (a TV script) also needs
  punctuation and line breaks as words of their own, so that "bye!" and "bye" share the word
  "bye" and the model learns where lines end: every mark of ``PUNCTUATION_TOKENS`` becomes a
  token such as "||period||" (the course's ``token_lookup``). Other characters stay in their
  words, so the speaker tag "jerry:" is one word.

``join_words`` is the inverse of ``split_words``: it turns generated tokens back into text
with ordinary spacing ("hello ||comma|| world ||period||" -> "hello, world.").
"""

from __future__ import annotations

from collections.abc import Sequence

# Each punctuation mark and the word that stands for it (the course's token_lookup).
PUNCTUATION_TOKENS: dict[str, str] = {
    ".": "||period||",
    ",": "||comma||",
    '"': "||quotation_mark||",
    ";": "||semicolon||",
    "!": "||exclamation_mark||",
    "?": "||question_mark||",
    "(": "||left_parentheses||",
    ")": "||right_parentheses||",
    "-": "||dash||",
    "\n": "||return||",
}
TOKEN_PUNCTUATION: dict[str, str] = {token: mark for mark, token in PUNCTUATION_TOKENS.items()}

# Written text puts no space before these marks and none after those: "(yes), no-one.\n"
_NO_SPACE_BEFORE = frozenset(".,;!?)-\n")
_NO_SPACE_AFTER = frozenset("(-\n")
# str.translate table: each mark -> " ||token|| ", so a plain split() separates it.
_SPACED_TOKENS = str.maketrans({mark: f" {token} " for mark, token in PUNCTUATION_TOKENS.items()})


def punctuation_to_tokens(text: str) -> str:
    """``text`` with every punctuation mark replaced by its token between spaces.

    "bye!\\n" -> "bye ||exclamation_mark||  ||return|| "
    """
    return text.translate(_SPACED_TOKENS)


def split_words(text: str, punctuation: bool = False, lowercase: bool = False) -> list[str]:
    """The words of ``text`` (split on any whitespace), punctuation as tokens if asked.

    split_words("Jerry: Hi, you.\\n", punctuation=True, lowercase=True)
    -> ["jerry:", "hi", "||comma||", "you", "||period||", "||return||"]
    """
    if lowercase:
        text = text.lower()
    if punctuation:
        text = punctuation_to_tokens(text)
    return text.split()


def join_words(words: Sequence[str], punctuation: bool = False) -> str:
    """Text from words: the inverse of :func:`split_words`.

    Without ``punctuation`` the words are joined by single spaces. With it, punctuation
    tokens become their marks, spaced as in written English: no space before ". , ; ! ? )",
    none after "(", none around "-" and line breaks; quotation marks alternate between
    opening (space before) and closing (space after) within each line.
    """
    if not punctuation:
        return " ".join(words)
    pieces: list[str] = []
    space_allowed = False  # no space at the start of the text
    quote_is_open = False
    for word in words:
        mark = TOKEN_PUNCTUATION.get(word)
        if mark == '"':
            closing = quote_is_open
            quote_is_open = not quote_is_open
            if space_allowed and not closing:
                pieces.append(" ")
            space_allowed = closing
        else:
            if space_allowed and mark not in _NO_SPACE_BEFORE:
                pieces.append(" ")
            space_allowed = mark not in _NO_SPACE_AFTER
            if mark == "\n":
                quote_is_open = False
        pieces.append(mark or word)
    return "".join(pieces)
