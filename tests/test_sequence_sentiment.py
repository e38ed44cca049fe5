"""Sentence classifiers: folds, batches of variable-length sentences, the LSTM against
torch's bidirectional LSTM, Kim's CNN against a one-sentence reference, export, and the
two recipes (one split, cross-validation, resuming fold by fold, word2vec vectors)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlnd.checkpoint import load_model
from dlnd.cli import execute, main, resolve_config
from dlnd.config import positive_int_list
from dlnd.errors import UserError
from dlnd.recipes import get_recipe
from dlnd.sequence.batching import (
    bucketed_batch_indices,
    encode_sentences,
    pad_batch,
)
from dlnd.sequence.classifiers import SentenceCNN, SentenceLSTM, reverse_within
from dlnd.sequence.reviews import (
    WORD_OPTIONS,
    assign_folds,
    fold_split,
    generated_reviews,
)
from dlnd.sequence.sentiment import (
    Pretrained,
    SentenceTask,
    fold_vocabulary,
    initial_vectors,
    predict_probabilities,
    with_spelled_words,
)
from dlnd.sequence.word2vec import load_word_vectors
from dlnd.text import WordVocabulary
from dlnd.text.subwords import char_ngrams, subword_table
from dlnd.text.vocabulary import vocabulary_from_dict
from dlnd.trainer import TrainConfig

# --- data ----------------------------------------------------------------------------------


def test_folds_are_stratified_and_each_split_is_disjoint():
    labels = np.array([1] * 53 + [0] * 47)
    fold_of = assign_folds(labels, 10, seed=3)
    assert np.array_equal(fold_of, assign_folds(labels, 10, seed=3))
    for fold in range(10):
        counts = np.bincount(labels[fold_of == fold], minlength=2)
        assert abs(counts[1] - 5.3) < 1 and abs(counts[0] - 4.7) < 1
        split = fold_split(labels, fold_of, fold, seed=0)
        parts = [set(split.train), set(split.val), set(split.test)]
        assert sum(map(len, parts)) == 100 and len(set().union(*parts)) == 100
        assert len(split.val) == 9 and set(split.test) == set(np.flatnonzero(fold_of == fold))


def test_generated_reviews_are_balanced_and_repeatable():
    data = generated_reviews(200, seed=5)
    assert data.labels.sum() == 100
    assert data.sentences == generated_reviews(200, seed=5).sentences
    assert data.sentences != generated_reviews(200, seed=6).sentences


def test_training_batches_hold_similar_lengths_and_every_sentence_once():
    lengths = torch.randint(1, 60, (1000,), generator=torch.Generator().manual_seed(0))
    batches = bucketed_batch_indices(lengths, 50, seed=1, epoch=2)
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    spread = [int(lengths[b].max() - lengths[b].min()) for b in batches]
    assert np.mean(spread) < 10  # unsorted batches of 50 would spread over ~55
    again = bucketed_batch_indices(lengths, 50, seed=1, epoch=2)
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    assert not torch.equal(batches[0], bucketed_batch_indices(lengths, 50, seed=1, epoch=3)[0])
    # two processes: each global batch split between them, nothing lost or repeated
    shards = [bucketed_batch_indices(lengths, 50, seed=1, epoch=2, rank=r, world=2) for r in (0, 1)]
    for whole, first, second in zip(batches, *shards):
        assert sorted(torch.cat([first, second]).tolist()) == sorted(whole.tolist())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=5))
def test_any_text_encodes_to_at_least_one_known_id(texts):
    vocab = WordVocabulary.build(["a good film ."], padding=True, **WORD_OPTIONS)
    encoded = encode_sentences(vocab, texts, [0] * len(texts))
    for ids in encoded.ids:
        assert len(ids) >= 1 and int(ids.min()) >= 0 and int(ids.max()) < len(vocab)
        assert vocab.padding_id not in ids.tolist()
    ids, lengths = pad_batch(encoded.ids, vocab.padding_id)
    assert ids.shape == (len(texts), int(lengths.max()))


# --- models --------------------------------------------------------------------------------


def sentences_batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 1, 4, 9, 2])
    rows = [torch.randint(2, 30, (int(n),), generator=generator) for n in lengths]
    ids, _ = pad_batch(rows, padding_id=0)
    return ids, lengths, rows


# Ids 2..29 of sentences_batch are words; 20 and above are known by their spelling alone.
SPELLING_WORDS = ["<pad>", "<unk>", *(f"w{i}{'ab'[i % 2] * (i % 7)}" for i in range(2, 30))]
SPELLING = {"subword_buckets": 23, "subword_slots": 0, "known_words": 20}
SPELLING["subword_slots"] = subword_table(SPELLING_WORDS, 23, (0, 1)).shape[1]


def spelling_model(model):
    model.set_subwords(subword_table(SPELLING_WORDS, 23, (0, 1)))
    with torch.no_grad():  # the word rows of the words known by spelling are never read
        model.embedding.weight[20:].fill_(float("nan"))
    return model


def test_reverse_within_reverses_each_sentence_and_leaves_the_padding():
    x = torch.arange(12.0).view(2, 6, 1)
    flipped = reverse_within(x, torch.tensor([4, 6]))
    assert flipped[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    assert flipped[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    assert torch.equal(reverse_within(flipped, torch.tensor([4, 6])), x)


def test_lstm_readers_match_torchs_bidirectional_lstm():
    torch.manual_seed(0)
    model = SentenceLSTM(30, 6, padding_id=0, unknown_id=1, hidden_size=5).eval()
    reference = nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for reader, suffix in zip(model.readers, ("", "_reverse")):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reader, f"{name}_l0").copy_(getattr(reference, f"{name}_l0{suffix}"))
    ids, lengths, _ = sentences_batch()
    vectors = model.embedding(ids)
    packed = pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True)
    real = ~(torch.arange(ids.shape[1]) >= lengths.unsqueeze(1))
    for packed_path in (True, False):  # the export path reads the padded batch
        outputs = model.read(vectors, lengths, packed=packed_path)
        torch.testing.assert_close(outputs[real], expected[real])


@pytest.mark.parametrize(
    "model",
    [
        SentenceLSTM(30, 6, 0, 1, hidden_size=5, pooling="max"),
        SentenceLSTM(30, 6, 0, 1, hidden_size=5, pooling="mean"),
        SentenceLSTM(30, 6, 0, 1, hidden_size=5, pooling="last"),
        SentenceLSTM(30, 6, 0, 1, hidden_size=5, bidirectional=False),
        SentenceCNN(30, 6, 0, 1, widths=(2, 3), feature_maps=4),
        spelling_model(SentenceLSTM(30, 6, 0, 1, hidden_size=5, **SPELLING)),
    ],
    ids=["lstm-max", "lstm-mean", "lstm-last", "lstm-one-way", "cnn", "lstm-subwords"],
)
def test_a_sentence_gets_the_same_scores_in_any_batch(model):
    model.eval()
    ids, lengths, rows = sentences_batch(1)
    together = model(ids, lengths)
    for row, logits in zip(rows, together):
        alone = model(row.unsqueeze(0), torch.tensor([len(row)]))
        torch.testing.assert_close(alone[0], logits)


def test_cnn_is_kims_wide_convolution_and_max_over_time():
    torch.manual_seed(2)
    model = SentenceCNN(30, 6, 0, 1, widths=(2, 3), feature_maps=4).eval()
    ids, lengths, rows = sentences_batch(2)
    for row, logits in zip(rows, model(ids, lengths)):
        words = model.embedding(row).T  # (6, length)
        features = []
        for width, conv in zip(model.widths, model.convolutions):
            # every window that holds at least one word, zero vectors beyond the sentence
            padded = F.pad(words, (width - 1, width - 1))
            windows = [padded[:, s : s + width] for s in range(len(row) + width - 1)]
            maps = torch.stack(
                [torch.relu((conv.weight * w).sum((1, 2)) + conv.bias) for w in windows]
            )
            features.append(maps.max(0).values)
        torch.testing.assert_close(logits, model.classifier(torch.cat(features)))


def test_max_norm_rescales_only_the_long_weight_vectors():
    model = SentenceCNN(10, 4, 0, 1, widths=(2,), feature_maps=3, max_norm=3.0)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[6.0, 8.0, 0.0], [1.0, 1.0, 1.0]]))
    model.constrain()
    torch.testing.assert_close(
        model.classifier.weight, torch.tensor([[1.8, 2.4, 0.0], [1.0, 1.0, 1.0]])
    )


def test_word_dropout_replaces_words_in_training_only():
    torch.manual_seed(0)
    model = SentenceCNN(10, 4, padding_id=0, unknown_id=1, widths=(2,), word_dropout=0.5)
    ids = torch.tensor([[5] * 1000 + [0] * 100])
    seen = []
    model.embedding.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    model.train()
    model.embed(ids)
    replaced = (seen[-1][0, :1000] == 1).float().mean()
    assert 0.45 < replaced < 0.55 and (seen[-1][0, 1000:] == 0).all()
    model.eval()
    model.embed(ids)
    assert torch.equal(seen[-1], ids)


def test_char_ngrams_are_the_3_to_5_grams_of_the_marked_word():
    assert char_ngrams("cat") == ["<ca", "cat", "at>", "<cat", "cat>", "<cat>"]
    assert char_ngrams("a") == ["<a>"] and char_ngrams("") == []
    assert char_ngrams("aaaa", 3, 3) == ["<aa", "aaa", "aa>"]  # each n-gram once


def test_words_that_share_spelling_share_subword_rows():
    table = subword_table(["<pad>", "good", "goods", "ünïcödé"], 1000, skip=(0,))
    assert (table[0] == 1000).all()  # skipped: filler only
    good, goods = ({int(b) for b in row if b != 1000} for row in table[1:3])
    assert len(good) <= 9 <= len(goods) + 1 and len(good & goods) >= 5  # "<go", "goo", ...
    again = subword_table(["<pad>", "good", "goods", "ünïcödé"], 1000, skip=(0,))
    assert np.array_equal(table, again) and table.dtype == np.int32
    assert table.shape[1] == max(len(set(char_ngrams(w))) for w in ["good", "goods", "ünïcödé"])


def test_a_word_vector_is_its_row_plus_the_mean_of_its_ngram_rows():
    torch.manual_seed(0)
    model = spelling_model(SentenceLSTM(30, 6, 0, 1, hidden_size=5, **SPELLING)).eval()
    table = subword_table(SPELLING_WORDS, 23, (0, 1))
    ids = torch.tensor([[3, 25, 1, 0]])  # a known word, a spelled-only word, unknown, padding
    vectors = model.embed(ids)[0]
    for position, own_row in ((0, 3), (1, 1)):  # a spelled-only word has the unknown's row
        pieces = [int(b) for b in table[int(ids[0, position])] if b != 23]
        expected = model.embedding.weight[own_row] + model.subwords.weight[pieces].mean(0)
        torch.testing.assert_close(vectors[position], expected)
    torch.testing.assert_close(vectors[2], model.embedding.weight[1])  # no n-grams
    assert (vectors[3] == 0).all()
    # for export: one plain table of whole word vectors, the same vectors and scores
    plain = model.without_subwords()
    assert plain.subwords is None and not hasattr(plain, "subword_ids")
    assert model.subwords is not None  # the model itself is left as it was
    torch.testing.assert_close(plain.embed(ids)[0], vectors)
    ids, lengths, _ = sentences_batch(5)
    torch.testing.assert_close(plain(ids, lengths), model(ids, lengths))
    assert SentenceCNN(30, 6, 0, 1).without_subwords().subwords is None


def test_word_dropout_keeps_a_dropped_words_ngrams():
    torch.manual_seed(0)
    model = spelling_model(SentenceLSTM(30, 6, 0, 1, hidden_size=5, word_dropout=0.5, **SPELLING))
    ids = torch.full((1, 400), 7)
    vectors = model.train().embed(ids)[0]
    spelled = model.spelling(ids)[0, 0]
    dropped = torch.isclose(vectors, model.embedding.weight[1] + spelled).all(1)
    kept = torch.isclose(vectors, model.embedding.weight[7] + spelled).all(1)
    assert (dropped | kept).all() and 0.4 < dropped.float().mean() < 0.6


def test_a_subword_table_of_the_wrong_shape_or_range_is_refused():
    model = SentenceLSTM(30, 6, 0, 1, hidden_size=5, **SPELLING)
    with pytest.raises(ValueError, match="expected"):
        model.set_subwords(np.zeros((29, SPELLING["subword_slots"]), dtype=np.int32))
    with pytest.raises(ValueError, match=r"0\.\.23"):
        model.set_subwords(np.full((30, SPELLING["subword_slots"]), 24, dtype=np.int32))
    with pytest.raises(ValueError, match="expected None"):
        SentenceLSTM(30, 6, 0, 1).set_subwords(np.zeros((30, 1), dtype=np.int32))


@pytest.mark.slow
@pytest.mark.parametrize("subwords", [False, True], ids=["words", "subwords"])
def test_the_lstm_exports_to_onnx_and_agrees_with_pytorch(tmp_path, subwords):
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = SentenceLSTM(30, 6, 0, 1, hidden_size=5, **(SPELLING if subwords else {}))
    model = (spelling_model(model) if subwords else model).eval()
    exported = model.without_subwords()  # (the model itself when it has none)
    ids, lengths, _ = sentences_batch(3)
    batch, time = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("time", max=512)
    program = torch.onnx.export(
        exported, (ids, lengths), input_names=["ids", "lengths"], output_names=["logits"],
        dynamic_shapes=({0: batch, 1: time}, {0: batch}), external_data=False, verbose=False,
    )  # fmt: skip
    program.save(str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    other_ids, other_lengths, _ = sentences_batch(4)  # another batch, packed in PyTorch
    (logits,) = session.run(None, {"ids": other_ids.numpy(), "lengths": other_lengths.numpy()})
    with torch.no_grad():
        expected = model(other_ids, other_lengths)
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-5)


# --- vocabulary and pretrained vectors -----------------------------------------------------


def test_pretrained_words_join_the_vocabulary_and_start_from_their_vectors():
    sentences = ["a good film", "a bad film", "an awful plot"]
    pretrained_vocab = WordVocabulary(["<unk>", "awful", "good", "plot"], **WORD_OPTIONS)
    vectors = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    pretrained = Pretrained(vectors, pretrained_vocab, "w2v")
    train = np.array([0, 1])
    plain = fold_vocabulary(sentences, train, 1, None)
    assert "awful" not in plain and "plot" not in plain  # test-only words stay unknown
    vocab = fold_vocabulary(sentences, train, 1, pretrained)
    assert {"awful", "plot", "good", "bad"} <= set(vocab.tokens) and "an" not in vocab
    table, found = initial_vectors(vocab, pretrained, seed=0)
    assert found == 3
    scale = (0.25 / 3**0.5) / vectors.std()
    for word in ("good", "awful", "plot"):
        row = table[vocab.encode_tokens([word])[0]]
        torch.testing.assert_close(row, vectors[pretrained_vocab.encode_tokens([word])[0]] * scale)
    assert table[vocab.encode_tokens(["bad"])[0]].abs().max() <= 0.25


def test_spelled_words_come_after_the_training_words_and_get_no_row_of_their_own():
    sentences = ["a good film", "a bad film", "an awful plot"]
    plain = fold_vocabulary(sentences, np.array([0, 1]), 1, None)
    vocab = with_spelled_words(plain, sentences)
    assert vocab.tokens[: len(plain)] == plain.tokens  # the known words keep their ids
    assert set(vocab.tokens[len(plain) :]) == {"an", "awful", "plot"}
    assert with_spelled_words(vocab, sentences) == vocab


# --- the recipes ---------------------------------------------------------------------------


@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=6))
def test_width_lists_parse_in_order(widths):
    assert positive_int_list(",".join(map(str, widths))) == tuple(widths)
    assert positive_int_list(" , ".join(map(str, widths))) == tuple(widths)
    assert positive_int_list(tuple(widths)) == tuple(widths)


@pytest.mark.parametrize("bad", ["", "3,0,5", "3,four", ",", "2.5", "-1"])
def test_bad_width_lists_say_what_was_expected(bad):
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated positive"):
        positive_int_list(bad)
    with pytest.raises(UserError, match="--widths"):
        resolve_config(get_recipe("sentiment-cnn"), {"widths": bad})


@pytest.mark.parametrize("name", ["word2vec", "sentiment-rnn", "sentiment-cnn"])
def test_every_text_recipe_explains_its_options(name, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["run", name, "--help"])
    assert exit_status.value.code == 0
    assert "--embedding-dim" in capsys.readouterr().out


def quick(name: str, out, **flags):
    recipe = get_recipe(name)
    cfg = resolve_config(
        recipe, {"quick": True, "embedded": True, "out": str(out), "device": "cpu", **flags}
    )
    return execute(recipe, cfg, given=flags)


@pytest.mark.parametrize("kind", [SentenceLSTM, SentenceCNN])
def test_the_adversarial_loss_is_the_worst_shift_of_the_given_length(kind):
    """Each sentence's vectors move by eps (L2 over the sentence) along the gradient of the
    loss: to first order the largest rise of the loss any shift of that length can make."""
    torch.manual_seed(0)
    extra = {"hidden_size": 6} if kind is SentenceLSTM else {"widths": (2, 3), "feature_maps": 5}
    model = kind(30, 8, padding_id=0, unknown_id=1, dropout=0.0, **extra).eval()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    lengths, labels = torch.tensor([4, 2, 3]), torch.tensor([1, 0, 1])
    task = SentenceTask(model, None, None, TrainConfig(), adversarial=0.05)
    vectors = model.embed(ids)
    assert torch.equal(model.classify(vectors, lengths), model(ids, lengths))
    loss = F.cross_entropy(model.classify(vectors, lengths), labels)
    adversarial = task.adversarial_loss(loss, vectors, lengths, labels)

    def shifted_loss(direction: torch.Tensor) -> torch.Tensor:
        real = (ids != 0).unsqueeze(2).float()  # a shift of the padding changes nothing
        direction = direction * real
        norms = direction.flatten(1).norm(dim=1).view(-1, 1, 1)
        return F.cross_entropy(model.classify(vectors + 0.05 * direction / norms, lengths), labels)

    randoms = [float(shifted_loss(torch.randn_like(vectors)).detach()) for _ in range(30)]
    assert loss.item() < max(randoms) < adversarial.item()
    (gradient,) = torch.autograd.grad(loss, vectors, retain_graph=True)
    assert torch.allclose(adversarial, shifted_loss(gradient), atol=1e-6)


@pytest.mark.slow
def test_quick_sentiment_rnn_learns_and_its_checkpoint_rebuilds_the_model(tmp_path):
    final = quick("sentiment-rnn", tmp_path)
    run_dir = Path(final["run_dir"])
    assert final["metrics"]["test_accuracy"] >= 0.8
    assert {p.stem for p in (run_dir / "plots").glob("*.png")} >= {
        "learning_curves",
        "accuracy_by_length",
    }
    assert (run_dir / "texts" / "confident_mistakes.txt").exists()
    model, meta = load_model(run_dir)
    info = meta["info"]
    assert info["labels"] == ["negative", "positive"] and info["task"] == "text-classification"
    vocab = vocabulary_from_dict(info["vocabulary"])
    sentences = ["the film is not good .", "the acting is truly superb !", "ünïcödé ☃ 🎬"]
    encoded = encode_sentences(vocab, sentences, [0, 1, 1])
    probabilities = predict_probabilities(model, encoded)
    assert probabilities.shape == (3, 2)
    assert probabilities[0].argmax() == 0 and probabilities[1].argmax() == 1


@pytest.mark.slow
def test_cross_validation_resumes_fold_by_fold_to_the_same_figures(tmp_path):
    # a tiny model: resuming must give the same figures exactly, whatever they are
    tiny = {"folds": 3, "epochs": 2, "embedding_dim": 8, "feature_maps": 4}
    first = quick("sentiment-cnn", tmp_path / "a", **tiny)
    run_dir = Path(first["run_dir"])
    folds = [json.loads((run_dir / f"fold-0{k}" / "final.json").read_text()) for k in (1, 2, 3)]
    accuracies = [f["metrics"]["test_accuracy"] for f in folds]
    metrics = first["metrics"]
    assert metrics["folds"] == 3 and metrics["fold_test_accuracies"] == [
        round(a, 4) for a in accuracies
    ]
    assert metrics["test_accuracy"] == pytest.approx(np.mean(accuracies))
    assert metrics["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (run_dir / "model.safetensors").exists() and (run_dir / "plots" / "folds.png").exists()
    load_model(run_dir / "fold-02")
    # an interruption during fold 2: its result not written, fold 3 never started
    (run_dir / "fold-02" / "final.json").unlink()
    shutil.rmtree(run_dir / "fold-03")
    fold1_metrics = (run_dir / "fold-01" / "metrics.jsonl").read_text()
    again = quick("sentiment-cnn", tmp_path / "a", **tiny, resume=str(run_dir))
    assert (run_dir / "fold-01" / "metrics.jsonl").read_text() == fold1_metrics  # read back
    assert again["metrics"]["fold_test_accuracies"] == metrics["fold_test_accuracies"]


@pytest.mark.slow
def test_sentiment_starts_from_word2vec_vectors_frozen(tmp_path):
    vectors_run = quick("word2vec", tmp_path, epochs=1)["run_dir"]
    final = quick(
        "sentiment-rnn", tmp_path, embeddings=vectors_run, freeze_embeddings=True, epochs=1
    )
    run_dir = final["run_dir"]
    model, meta = load_model(run_dir)
    embeddings = meta["info"]["embeddings"]
    assert embeddings["init"] == "word2vec" and embeddings["frozen"]
    assert embeddings["words_with_vectors"] > 40
    w2v, w2v_vocab = load_word_vectors(vectors_run)
    vocab = vocabulary_from_dict(meta["info"]["vocabulary"])
    table, _ = initial_vectors(vocab, Pretrained(w2v, w2v_vocab, vectors_run), seed=0)
    table[vocab.padding_id] = 0
    torch.testing.assert_close(model.embedding.weight, table)  # frozen: never trained


def test_bad_embedding_options_are_refused_before_a_run_exists(tmp_path):
    with pytest.raises(UserError, match="--embeddings"):
        quick("sentiment-rnn", tmp_path, freeze_embeddings=True)
    with pytest.raises(UserError, match="no embeddings.safetensors"):
        quick("sentiment-cnn", tmp_path, embeddings=str(tmp_path))
    assert not list(tmp_path.glob("sentiment-*/*"))


@pytest.mark.parametrize("bad", ["-1", "many", "2.5"])
def test_a_bad_subword_count_is_refused_before_a_run_exists(bad, tmp_path):
    with pytest.raises(UserError, match="--subwords"):
        resolve_config(get_recipe("sentiment-rnn"), {"subwords": bad, "out": str(tmp_path)})
    assert not list(tmp_path.iterdir())
