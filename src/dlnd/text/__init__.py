"""Text for the sequence models: tokenisers and vocabularies (NumPy and the standard library
only, so the model server can use them without PyTorch).

    from dlnd.text import CharVocabulary, WordVocabulary, load_vocabulary

    vocab = CharVocabulary.build(text)                       # char-rnn
    vocab = WordVocabulary.build(script, lowercase=True, punctuation=True)   # tv-script
    ids = vocab.encode(text); vocab.decode(ids)
"""

from dlnd.text.tokens import (
    PUNCTUATION_TOKENS,
    join_words,
    punctuation_to_tokens,
    split_words,
)
from dlnd.text.vocabulary import (
    CharVocabulary,
    Vocabulary,
    WordVocabulary,
    continuation,
    load_vocabulary,
    never_written,
)

__all__ = [
    "PUNCTUATION_TOKENS",
    "CharVocabulary",
    "Vocabulary",
    "WordVocabulary",
    "continuation",
    "join_words",
    "load_vocabulary",
    "never_written",
    "punctuation_to_tokens",
    "split_words",
]
