"""Text models behind the API: language models write text (``generate``), sentence
classifiers say positive or negative (``predict``). Real quick runs of char-rnn, tv-script
and sentiment-rnn, exported to ONNX and checked against PyTorch."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_fixtures import text_export, text_run

from dlnd.checkpoint import load_model
from dlnd.errors import UserError
from dlnd.sequence.classifiers import build_sentence_model
from dlnd.sequence.language_model import sample_next
from dlnd.sequence.reviews import LABELS, WORD_OPTIONS, generated_review, generated_reviews
from dlnd.sequence.sampling import load_language_model, write
from dlnd.serve.app import create_app
from dlnd.serve.card import CARD_FILE
from dlnd.serve.exporting import export_run
from dlnd.serve.text_classifier import (
    GROUP_SHORTEST_SHARE,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    SentenceBatch,
    encode_row,
    length_groups,
)
from dlnd.serve.text_generation import MAX_LENGTH, MAX_PRIME_CHARS, sample_token
from dlnd.store import save_model
from dlnd.text import WordVocabulary, load_vocabulary
from dlnd.text.vocabulary import vocabulary_from_dict

CHARS = "/v1/models/char-rnn/generate"
WORDS = "/v1/models/tv-script/generate"


LANGUAGE_MODELS = ("chars", "words")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {key: text_run(tmp_path_factory, key) for key in LANGUAGE_MODELS}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return {key: text_export(tmp_path_factory, key) for key in LANGUAGE_MODELS}


@pytest.fixture(scope="module")
def app(exports):
    return create_app([exports["chars"], exports["words"]], access_log=False)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as test_client:
        yield test_client


# ---- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["chars", "words"])
def test_a_language_model_exports_its_step_and_vocabulary(runs, exports, key):
    card = json.loads((exports[key] / CARD_FILE).read_text())
    _, vocab = load_language_model(runs[key])
    assert card["task"] == "text-generation"
    assert card["verification"]["max_abs_diff_vs_pytorch"] <= card["verification"]["tolerance"]
    assert load_vocabulary(exports[key] / card["vocabulary"]) == vocab
    assert card["never_written"] == [vocab.unknown_id]


# ---- generate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path", "prime"), [("chars", CHARS, "Anna"), ("words", WORDS, "jerry:")]
)
def test_greedy_text_equals_what_pytorch_writes(runs, client, key, path, prime):
    """top_k=1 leaves no randomness: the served text must be PyTorch's, token for token."""
    model, vocab = load_language_model(runs[key])
    expected = write(model, vocab, prime, 60, top_k=1)[0]
    reply = client.post(path, json={"prime": prime, "length": 60, "top_k": 1, "seed": 7})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"model": path.split("/")[3], "text": expected}


def test_the_same_seed_writes_the_same_text_and_another_seed_another(client):
    ask = {"prime": "The ", "length": 120, "temperature": 1.5}
    first = client.post(CHARS, json={**ask, "seed": 1}).json()["text"]
    assert client.post(CHARS, json={**ask, "seed": 1}).json()["text"] == first
    assert client.post(CHARS, json={**ask, "seed": 2}).json()["text"] != first
    assert len(first) == 120


def test_unknown_characters_in_the_prime_are_read_and_never_written(client):
    reply = client.post(CHARS, json={"prime": "Жж 🙂\ud7ff", "length": 300, "temperature": 3.0})
    assert reply.status_code == 200, reply.text
    assert "\ufffd" not in reply.json()["text"]


@pytest.mark.parametrize(("temperature", "top_k"), [(1.0, None), (0.5, None), (2.0, 3), (1.0, 1)])
def test_sampled_tokens_follow_pytorchs_distribution(temperature, top_k):
    """The NumPy sampler draws from the distribution torch's sampler draws from: the
    frequencies of 20,000 draws of each match within a few standard errors."""
    logits = np.array([2.0, 0.5, 1.0, 3.0, -1.0, 2.5], np.float32)  # token 3 best, 0 excluded
    draws = 20_000
    rng = np.random.default_rng(0)
    ours = np.bincount(
        [sample_token(logits, temperature, top_k, (3,), rng) for _ in range(draws)], minlength=6
    )
    generator = torch.Generator().manual_seed(0)
    batch = torch.from_numpy(logits).repeat(draws, 1)
    theirs = np.bincount(sample_next(batch, temperature, top_k, (3,), generator), minlength=6)
    assert ours[3] == theirs[3] == 0
    p = theirs / draws
    spread = 5 * np.sqrt(np.maximum(p * (1 - p), 1e-4) / draws) * 2
    assert np.all(np.abs(ours / draws - p) <= spread), (ours, theirs)
    assert np.all((ours == 0) == (theirs == 0))  # top-k keeps the same tokens


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"length": 0}, "length"),
        ({"length": MAX_LENGTH + 1}, "length"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 11}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"seed": -1}, "seed"),
        ({"prime": ""}, "prime"),
        ({"prime": "a" * (MAX_PRIME_CHARS + 1)}, "prime"),
        ({"prime": 5}, "prime"),
        ({"length": "20"}, "length"),
        ({"stream": "yes", "words": 3}, "Extra inputs"),
    ],
)
def test_out_of_bounds_settings_get_422_with_a_sentence(client, change, fragment):
    reply = client.post(CHARS, json={"prime": "Anna", "length": 20, **change})
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert fragment in detail and detail.endswith(".")


def test_a_prime_of_only_spaces_for_a_word_model_is_refused(client):
    reply = client.post(WORDS, json={"prime": "   \t ", "length": 5})
    assert reply.status_code == 422
    assert reply.json()["detail"] == "The prime holds no token to start from; give some text."


def test_a_long_generation_blocks_neither_healthz_nor_other_generations(app):
    """While the longest generation runs in a worker thread, /healthz answers and a short
    generation finishes first."""

    async def race() -> tuple[list[str], float]:
        finished: list[str] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            async def generate(name: str, length: int) -> None:
                body = {"prime": "Anna", "length": length}
                reply = await http.post(CHARS, json=body, timeout=120)
                assert reply.status_code == 200
                finished.append(name)

            long = asyncio.ensure_future(generate("long", MAX_LENGTH))
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            health = await http.get("/healthz")
            health_s = time.perf_counter() - started
            assert health.status_code == 200
            finished.append("healthz")
            await generate("short", 5)
            await long
        return finished, health_s

    finished, health_s = asyncio.run(race())
    assert finished == ["healthz", "short", "long"]
    assert health_s < 0.5


def test_the_model_list_shows_the_text_generator(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["char-rnn"]["task"] == "text-generation"
    assert models["char-rnn"]["endpoints"] == ["generate"]
    assert models["tv-script"]["input"]["unit"] == "word"
    schema = client.get("/openapi.json").json()
    assert "/v1/models/{name}/generate" in schema["paths"]


# ---- text classification --------------------------------------------------------------------

REVIEWS = "/v1/models/sentiment-rnn/predict"


@pytest.fixture(scope="module")
def review_run(tmp_path_factory):
    return text_run(tmp_path_factory, "reviews")


@pytest.fixture(scope="module")
def review_app(tmp_path_factory):
    return create_app([text_export(tmp_path_factory, "reviews")], access_log=False, max_wait_ms=20)


@pytest.fixture(scope="module")
def review_client(review_app):
    with TestClient(review_app) as test_client:
        yield test_client


def pytorch_probabilities(run_dir, texts: list[str]) -> np.ndarray:
    """Each text's class probabilities (N, 2) from the packed PyTorch model, one at a time."""
    model, meta = load_model(run_dir)
    vocab = vocabulary_from_dict(meta["info"]["vocabulary"])
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.from_numpy(vocab.encode(text)).unsqueeze(0)
            logits = model.eval()(ids, torch.tensor([ids.shape[1]]))
            rows.append(logits.softmax(1)[0].numpy())
    return np.stack(rows)


def test_a_sentence_classifier_exports_with_its_labels(tmp_path_factory):
    card = json.loads((text_export(tmp_path_factory, "reviews") / CARD_FILE).read_text())
    assert card["task"] == "text-classification"
    assert card["classes"] == ["negative", "positive"]
    assert card["architecture"]["kind"] == "lstm" and card["architecture"]["bidirectional"]
    assert card["verification"]["max_abs_diff_vs_pytorch"] <= card["verification"]["tolerance"]


def test_served_probabilities_equal_the_packed_pytorch_model(review_run, review_client):
    rng = random.Random(5)
    texts = [generated_review(rng, positive=i % 2 == 0) for i in range(12)]
    texts += ["not good", "superb !", "the film is"]
    expected = pytorch_probabilities(review_run, texts)
    for text, want in zip(texts, expected):
        reply = review_client.post(REVIEWS, json={"text": text})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        served = {p["index"]: p["probability"] for p in answer["predictions"]}
        assert [p["label"] for p in answer["predictions"]] == (
            ["positive", "negative"] if want[1] > want[0] else ["negative", "positive"]
        )
        np.testing.assert_allclose([served[0], served[1]], want, atol=1e-5)
        assert answer["truncated"] is False


@pytest.mark.parametrize(
    "text", ["zxqvw blorp", "ЖЖЖ 🙂 ☃", "\u0000\u200b é", "good" + "\ud7ff" * 3, "!!!"]
)
def test_unknown_words_and_any_unicode_are_answered(review_client, text):
    reply = review_client.post(REVIEWS, json={"text": text, "top_k": 1})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["predictions"]) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({"text": ["good"]}, "text"),
        ({}, "text"),
        ({"text": "good", "top_k": 0}, "top_k"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "at most"),
        ({"text": " \t  "}, "The text holds no words"),
        ({"text": "good", "label": 1}, "Extra inputs"),
    ],
)
def test_bad_texts_get_422_with_a_sentence(review_client, body, fragment):
    reply = review_client.post(REVIEWS, json=body)
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert fragment in detail and detail.endswith(".")


def test_a_long_text_is_read_up_to_the_limit_and_says_so(review_client):
    words = ("the film is good but the ending is dull " * 100).split()
    first = " ".join(words[:MAX_TOKENS])
    long = review_client.post(REVIEWS, json={"text": " ".join(words)}).json()
    short = review_client.post(REVIEWS, json={"text": first}).json()
    assert long["truncated"] is True and long["tokens"] == len(words) > MAX_TOKENS
    assert long["predictions"] == short["predictions"]
    assert short["truncated"] is False and short["tokens"] == MAX_TOKENS


def test_concurrent_texts_share_forward_passes_and_keep_their_own_answers(
    review_app, review_client
):
    rng = random.Random(9)
    texts = [generated_review(rng, positive=i % 3 == 0) for i in range(64)]
    texts[5] = "good " * 50  # a long one in the same batch as short ones
    alone = [review_client.post(REVIEWS, json={"text": t}).json() for t in texts]

    async def ask_all() -> list[dict]:
        transport = httpx.ASGITransport(app=review_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            replies = await asyncio.gather(*(http.post(REVIEWS, json={"text": t}) for t in texts))
        return [r.json() for r in replies]

    batcher = review_app.state.registry.get("sentiment-rnn").batcher
    batches_before = batcher.batches_run
    together = asyncio.run(ask_all())
    assert batcher.batches_run - batches_before < len(texts) / 4
    for one, shared in zip(alone, together):
        assert [p["label"] for p in one["predictions"]] == [
            p["label"] for p in shared["predictions"]
        ]
        for a, b in zip(one["predictions"], shared["predictions"]):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


@given(lengths=st.lists(st.integers(1, MAX_TOKENS), min_size=1, max_size=80))
def test_length_groups_cover_the_batch_with_rows_of_similar_length(lengths):
    lengths = np.array(lengths)
    groups = length_groups(lengths)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(lengths)))
    for group in groups:
        longest = lengths[group[0]]
        assert lengths[group].max() == longest  # the longest first: the group is cut to it
        assert lengths[group].min() >= GROUP_SHORTEST_SHARE * longest
    for previous, group in zip(groups, groups[1:]):
        # a group ends only where the next sentence is too short for it
        assert lengths[group[0]] < GROUP_SHORTEST_SHARE * lengths[previous[0]]


@pytest.mark.parametrize("key", ["reviews", "cnn"])
def test_a_batch_in_length_groups_scores_each_sentence_as_alone(tmp_path_factory, tmp_path, key):
    if key == "cnn":
        save_cnn_run(tmp_path / "run")
        folder = export_run(tmp_path / "run", "onnx", tmp_path / "cnn")
    else:
        folder = text_export(tmp_path_factory, key)
    card = json.loads((folder / CARD_FILE).read_text())
    vocab = load_vocabulary(folder / card["vocabulary"])
    forward = SentenceBatch(folder / card["file"], threads=1)
    rng = random.Random(3)
    words = [w for w in vocab.tokens[2:] if w.isalpha()]
    texts = [" ".join(rng.choices(words, k=n)) for n in (1, 2, 3, 5, 8, 13, 21, 34, 60, 61, 9, 2)]
    texts.append("good " * (MAX_TOKENS + 20))  # cut to MAX_TOKENS
    rows = np.stack([encode_row(vocab, text)[0] for text in texts])
    assert len(length_groups(rows[:, 0])) > 3
    alone = np.concatenate([forward(row[None]) for row in rows])
    np.testing.assert_allclose(forward(rows), alone, atol=1e-5)  # logits, so probabilities too


@pytest.mark.parametrize(("path", "prime"), [(CHARS, "Anna"), (WORDS, 'jerry: "hi')])
def test_a_streamed_text_arrives_in_pieces_that_join_to_the_whole_text(client, path, prime):
    ask = {"prime": prime, "length": 41, "temperature": 1.2, "seed": 4}
    whole = client.post(path, json=ask).json()["text"]
    with client.stream("POST", path, json={**ask, "stream": True}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [e for e in "".join(reply.iter_text()).split("\n\n") if e]
    pieces = [json.loads(e.removeprefix("data: "))["text"] for e in events[:-1]]
    assert len(pieces) == 11  # 41 tokens in pieces of 4
    assert "".join(pieces) == whole
    assert events[-1] == 'event: done\ndata: {"model": "' + path.split("/")[3] + '"}'


def test_a_bad_streamed_request_is_refused_before_any_event(client):
    reply = client.post(CHARS, json={"prime": "Anna", "length": 0, "stream": True})
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("key", ["chars", "reviews"])
@pytest.mark.parametrize("damage", [{"vocabulary": None}, {"state": 3, "classes": 3}])
def test_a_damaged_text_card_is_a_user_error(tmp_path_factory, tmp_path, key, damage):
    folder = tmp_path / "model"
    shutil.copytree(text_export(tmp_path_factory, key), folder)
    card = json.loads((folder / CARD_FILE).read_text())
    (folder / CARD_FILE).write_text(json.dumps({**card, **damage}))
    with pytest.raises(UserError, match="damaged|vocabulary"):
        create_app([folder], access_log=False)


def save_cnn_run(run_dir, seed: int = 0):
    """A seeded (untrained) Kim CNN over the generated reviews' words, saved as a
    sentiment-cnn run: the export and the server see the real model class."""
    torch.manual_seed(seed)
    reviews = generated_reviews(200, seed)
    vocab = WordVocabulary.build(reviews.sentences, padding=True, **WORD_OPTIONS)
    spec = {
        "kind": "cnn", "vocab_size": len(vocab), "embedding_dim": 8, "padding_id": 0,
        "unknown_id": 1, "classes": 2, "widths": [3, 4, 5], "feature_maps": 6,
        "dropout": 0.5, "max_norm": 3.0, "word_dropout": 0.0,
    }  # fmt: skip
    model = build_sentence_model(spec)
    info = {"task": "text-classification", "labels": LABELS, "vocabulary": vocab.to_dict()}
    meta = {"recipe": "sentiment-cnn", "config": {}, "info": {**info, "model": spec}}
    save_model(run_dir, model.state_dict(), meta)
    return reviews.sentences


def test_a_sentence_cnn_is_served_with_the_scores_of_pytorch(tmp_path):
    sentences = save_cnn_run(tmp_path / "run")
    texts = [*sentences[:10], "bad", "a", "not good at all"]  # shorter than the widest window
    expected = pytorch_probabilities(tmp_path / "run", texts)
    with TestClient(create_app([tmp_path / "run"], access_log=False)) as client:
        for text, want in zip(texts, expected):
            answer = client.post("/v1/models/sentiment-cnn/predict", json={"text": text}).json()
            served = sorted((p["index"], p["probability"]) for p in answer["predictions"])
            np.testing.assert_allclose([p for _, p in served], want, atol=1e-5)


@given(text=st.text(max_size=300), top_k=st.integers(-2, 4) | st.none())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_text_is_answered_without_a_server_error(review_client, text, top_k):
    body = {"text": text} if top_k is None else {"text": text, "top_k": top_k}
    reply = review_client.post(REVIEWS, json=body)
    assert reply.status_code in (200, 422), reply.text
    if reply.status_code == 200:
        assert sum(p["probability"] for p in reply.json()["predictions"]) <= 1 + 1e-6


@given(prime=st.text(max_size=100), length=st.integers(-1, 30), top_k=st.integers(0, 40))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_prime_is_continued_without_a_server_error(client, prime, length, top_k):
    body = {"prime": prime, "length": length, "top_k": top_k}
    reply = client.post(WORDS, json=body)
    assert reply.status_code in (200, 422), reply.text
    assert reply.status_code == 422 or "<unk>" not in reply.json()["text"]


def test_serving_exported_text_models_needs_no_pytorch(tmp_path_factory):
    folders = [str(text_export(tmp_path_factory, key)) for key in ("chars", "reviews")]
    code = f"""
import sys
from fastapi.testclient import TestClient
from dlnd.serve.app import create_app
with TestClient(create_app({folders!r}, access_log=False)) as client:
    text = client.post("{CHARS}", json={{"prime": "Anna", "length": 20}})
    review = client.post("{REVIEWS}", json={{"text": "a superb film"}})
print(text.status_code, review.status_code, "torch" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.split() == ["200", "200", "False"]
