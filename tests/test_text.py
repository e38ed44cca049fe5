"""dlnd.text: tokenisers, vocabularies and their JSON files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.errors import UserError
from dlnd.text import (
    PUNCTUATION_TOKENS,
    CharVocabulary,
    WordVocabulary,
    join_words,
    load_vocabulary,
    punctuation_to_tokens,
    split_words,
)

SCRIPT = (
    "jerry: do you know what this is all about? (pointing) it's in no-mans-land.\n"
    'george: "yes," i said; "no!" well...\n'
)

# Words as the punctuation tokeniser leaves them: no whitespace, none of its marks.
plain_words = st.text(
    st.characters(
        exclude_categories=("Z", "Cc", "Cs"), exclude_characters="".join(PUNCTUATION_TOKENS)
    ),
    min_size=1,
    max_size=6,
).filter(lambda w: not w.isspace() and w.split() == [w])
word_or_mark = st.one_of(plain_words, st.sampled_from(sorted(PUNCTUATION_TOKENS.values())))


# ------------------------------------------------------------------------------ tokens


def test_punctuation_becomes_words_and_speaker_tags_stay_whole():
    words = split_words(SCRIPT, punctuation=True, lowercase=True)
    assert words[:4] == ["jerry:", "do", "you", "know"]
    assert words.count("||return||") == 2
    assert "no" in words and "||dash||" in words and "mans" in words
    assert words[words.index("george:") + 1 : words.index("george:") + 5] == [
        "||quotation_mark||",
        "yes",
        "||comma||",
        "||quotation_mark||",
    ]
    assert punctuation_to_tokens("bye!") == "bye ||exclamation_mark|| "


def test_course_token_lookup_marks():
    assert PUNCTUATION_TOKENS == {
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


def test_tokens_turn_back_into_readable_text():
    assert join_words(split_words(SCRIPT, punctuation=True), punctuation=True) == (
        "jerry: do you know what this is all about? (pointing) it's in no-mans-land.\n"
        'george: "yes," i said; "no!" well...\n'
    )
    assert join_words(["a", "b"]) == "a b"


@settings(max_examples=200, deadline=None)
@given(st.lists(word_or_mark, max_size=30))
def test_split_inverts_join_for_any_token_sequence(tokens):
    # What a model generates, turned into text and read back, is the same token sequence.
    assert split_words(join_words(tokens, punctuation=True), punctuation=True) == tokens


@given(st.text())
def test_splitting_any_text_never_fails(text):
    for punctuation in (False, True):
        words = split_words(text, punctuation=punctuation, lowercase=True)
        assert all(word and not any(c.isspace() for c in word) for word in words)


# ------------------------------------------------------------------------------ vocabularies


def test_word_vocabulary_orders_by_frequency_with_specials_first():
    vocab = WordVocabulary.build(["b a b", "c b a"], padding=True)
    assert vocab.tokens == ("<pad>", "<unk>", "b", "a", "c")
    assert (vocab.padding_id, vocab.unknown_id) == (0, 1)
    assert vocab.encode("a c zebra").tolist() == [3, 4, 1]
    assert vocab.decode([0, 2, 3, 0]) == "b a"  # padding is left out


def test_min_count_and_max_size():
    text = "a a a b b c"
    assert WordVocabulary.build(text, min_count=2).tokens == ("<unk>", "a", "b")
    assert WordVocabulary.build(text, max_size=2).tokens == ("<unk>", "a")
    assert WordVocabulary.build(text, max_size=3, padding=True).tokens == ("<pad>", "<unk>", "a")
    with pytest.raises(ValueError, match="min_count"):
        WordVocabulary.build(text, min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        WordVocabulary.build(text, max_size=1, padding=True)


def test_from_counts_is_build_for_tokens_already_split():
    texts = ["Jerry: hi, you!", "you and you, jerry:"]
    counts = Counter(t for text in texts for t in split_words(text, punctuation=True))
    built = WordVocabulary.build(texts, min_count=2, padding=True, punctuation=True)
    assert WordVocabulary.from_counts(counts, 2, padding=True, punctuation=True) == built
    assert built.tokens == ("<pad>", "<unk>", "you", "||comma||")  # "Jerry:" != "jerry:"


def test_character_vocabulary_round_trip_and_unknowns():
    vocab = CharVocabulary.build("hello world", padding=True)
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64 and len(ids) == 5
    assert vocab.decode(ids) == "hello"
    assert vocab.encode("héllo").tolist()[1] == vocab.unknown_id
    assert vocab.decode(vocab.encode("héllo")) == "h\ufffdllo"
    assert vocab.decode([vocab.padding_id]) == ""


def test_text_never_encodes_to_the_padding_token():
    vocab = WordVocabulary.build("a b", padding=True)
    assert vocab.encode("<pad> a").tolist() == [vocab.unknown_id, vocab.encode("a")[0]]


def test_encode_padded_pads_left_and_truncates():
    vocab = WordVocabulary.build("a b c d", padding=True)
    batch = vocab.encode_padded(["a b", "a b c d", ""], length=3)
    a, b, c = vocab.encode("a b c")
    assert batch.tolist() == [[0, a, b], [a, b, c], [0, 0, 0]]
    with pytest.raises(ValueError, match="padding=True"):
        WordVocabulary.build("a").encode_padded(["a"], 2)


def test_decode_rejects_ids_outside_the_vocabulary():
    vocab = CharVocabulary.build("ab")
    with pytest.raises(ValueError, match=r"0\.\.2 .* got values from 0 to 3"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="integers"):
        vocab.decode(np.array([0.5]))
    assert vocab.decode([]) == ""


def test_tv_script_vocabulary_round_trips_known_text():
    vocab = WordVocabulary.build(SCRIPT, lowercase=True, punctuation=True)
    assert "jerry:" in vocab and "||return||" in vocab
    assert vocab.decode(vocab.encode(SCRIPT)) == SCRIPT


@settings(max_examples=100, deadline=None)
@given(corpus=st.text(max_size=60), text=st.text(max_size=60))
def test_any_unicode_encodes_known_tokens_and_maps_the_rest_to_unknown(corpus, text):
    chars = CharVocabulary.build(corpus)
    ids = chars.encode(text)
    assert len(ids) == len(text)
    for char, i in zip(text, ids.tolist()):
        expected = chars.tokens.index(char) if char in chars else chars.unknown_id
        assert i == expected
    if set(text) <= set(corpus) and "\ufffd" not in text:
        assert chars.decode(ids) == text
    words = WordVocabulary.build(corpus, punctuation=True, lowercase=True)
    for word, i in zip(words.split(text), words.encode(text).tolist()):
        assert i == (words.tokens.index(word) if word in words else words.unknown_id)


@settings(max_examples=100, deadline=None)
@given(st.lists(word_or_mark, max_size=30))
def test_word_round_trip_for_known_text(tokens):
    text = join_words(tokens, punctuation=True)
    vocab = WordVocabulary.build(text, punctuation=True)
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.decode_tokens(vocab.encode(text)) == tokens


# ------------------------------------------------------------------------------ files


@settings(max_examples=50, deadline=None)
@given(corpus=st.text(max_size=80), padding=st.booleans(), lowercase=st.booleans())
def test_json_round_trip(tmp_path_factory, corpus, padding, lowercase):
    folder = tmp_path_factory.mktemp("vocab")
    for vocab in (
        CharVocabulary.build(corpus, padding=padding),
        WordVocabulary.build(corpus, padding=padding, lowercase=lowercase, punctuation=True),
    ):
        path = folder / f"{vocab.level}.json"
        vocab.save(path)
        loaded = load_vocabulary(path)
        assert loaded == vocab and type(loaded) is type(vocab)
        assert loaded.encode(corpus).tolist() == vocab.encode(corpus).tolist()
        assert [p.name for p in folder.iterdir()].count(path.name) == 1


def write(tmp_path, content: str | bytes):
    path = tmp_path / "vocab.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def valid_dict() -> dict:
    return WordVocabulary.build("a b", padding=True).to_dict()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"format": "dlnd-vocabulary", "tokens": [', "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ("[1, 2]", "format 'dlnd-vocabulary'"),
        (json.dumps(valid_dict() | {"version": 7}), "version 1, got 7"),
        (json.dumps(valid_dict() | {"level": "byte"}), "level must be one of"),
        (json.dumps(valid_dict() | {"tokens": "abc"}), "tokens must be a list"),
        (json.dumps(valid_dict() | {"tokens": ["<pad>", "<unk>", "a", "a"]}), "repeated: ['a']"),
        (
            json.dumps(valid_dict() | {"tokens": ["<pad>", "<unk>", 3]}),
            "every token must be a string",
        ),
        (json.dumps(valid_dict() | {"unknown": "<oov>"}), "unknown token '<oov>' is not among"),
        (json.dumps(valid_dict() | {"padding": 0}), "padding must be a string or null"),
        (json.dumps(valid_dict() | {"options": {"lowercase": True}}), "options must have the keys"),
        (
            json.dumps(valid_dict() | {"options": {"lowercase": 1, "punctuation": False}}),
            "options must be true or false",
        ),
    ],
    ids=[
        "truncated",
        "binary",
        "not an object",
        "version",
        "level",
        "tokens not a list",
        "repeated token",
        "token not a string",
        "unknown missing",
        "bad padding",
        "missing option",
        "option not a bool",
    ],
)
def test_corrupt_files_give_a_clear_error(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(UserError, match="is not a valid vocabulary file") as error:
        load_vocabulary(path)
    assert expected in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no vocabulary file at"):
        load_vocabulary(tmp_path / "nothing.json")


def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "vocab.json"
    WordVocabulary.build("a b").save(path)
    before = path.read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("dlnd.io.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        WordVocabulary.build("c d e").save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]


def test_text_module_does_not_import_torch():
    code = "import sys, dlnd.text; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
