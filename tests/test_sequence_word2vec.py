"""word2vec: the sampling maths, the loss and its gradient against the closed form, the
epoch's batches, the recipe and its saved vectors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dlnd.checkpoint import load_model
from dlnd.cli import execute, resolve_config
from dlnd.errors import UserError
from dlnd.recipes import get_recipe
from dlnd.sequence import reviews
from dlnd.sequence.skipgram import (
    SkipGram,
    context_pairs,
    keep_probabilities,
    noise_distribution,
)
from dlnd.sequence.word2vec import (
    Word2VecTask,
    build_corpus,
    load_word_vectors,
    nearest_neighbours,
    save_word_vectors,
)
from dlnd.text import WordVocabulary
from dlnd.trainer import TrainConfig

ONE_PROCESS = SimpleNamespace(rank=0, world_size=1)


def test_keep_probability_is_sqrt_t_over_f_capped_at_one():
    counts = np.array([0, 1, 99, 900])  # frequencies 0, 0.001, 0.099, 0.9
    keep = keep_probabilities(counts, threshold=0.01)
    assert keep[1] == 1.0  # rarer than the threshold: always kept
    np.testing.assert_allclose(keep[2:], np.sqrt(0.01 / np.array([0.099, 0.9])))
    np.testing.assert_array_equal(keep_probabilities(counts, 0.0), np.ones(4))


def test_noise_is_the_unigram_distribution_to_the_three_quarters():
    counts = np.array([0, 1, 16, 81])
    expected = np.array([0, 1, 8, 27]) / 36  # c^0.75: 0, 1, 8, 27
    np.testing.assert_allclose(noise_distribution(counts), expected)


def naive_pairs(stream, centres, windows):
    pairs = []
    for b, i in enumerate(centres):
        for j in range(len(stream)):
            if j != i and abs(i - j) <= windows[i]:
                pairs.append((b, stream[i], stream[j]))
    return pairs


def test_context_pairs_are_every_word_within_each_centres_window():
    generator = torch.Generator().manual_seed(0)
    stream = torch.randint(0, 9, (40,), generator=generator)
    windows = torch.randint(1, 4, (40,), generator=generator)
    centres = torch.tensor([0, 1, 17, 38, 39, 5])
    words, contexts, owners = context_pairs(stream, centres, windows, max_window=3)
    assert torch.equal(words, stream[centres])
    got = sorted(zip(owners.tolist(), words[owners].tolist(), contexts.tolist()))
    expected = sorted(naive_pairs(stream.tolist(), centres.tolist(), windows.tolist()))
    assert got == expected
    assert torch.equal(owners, owners.sort().values)


def small_skipgram(seed: int = 0) -> SkipGram:
    torch.manual_seed(seed)
    model = SkipGram(12, 6, torch.arange(12.0), negatives=3, noise_pool=7)
    torch.nn.init.normal_(model.in_vectors.weight)
    torch.nn.init.normal_(model.out_vectors.weight)
    return model


def pair_batch():
    centres = torch.tensor([3, 5, 3])
    contexts = torch.tensor([1, 4, 7, 2, 11, 9])
    owners = torch.tensor([0, 0, 1, 1, 1, 2])
    pool = torch.tensor([1, 2, 2, 8, 10, 11, 4])
    picks = torch.tensor([[0, 3, 3], [6, 1, 2], [4, 5, 0], [2, 2, 2], [1, 0, 6], [3, 4, 5]])
    return centres, contexts, owners, (pool, picks)


def test_loss_is_the_negative_sampling_objective_of_each_pair():
    model = small_skipgram()
    centres, contexts, owners, (pool, picks) = pair_batch()
    loss = model(centres, contexts, owners, (pool, picks))
    v, u = model.in_vectors.weight, model.out_vectors.weight
    expected = 0.0
    for p in range(len(contexts)):
        centre = v[centres[owners[p]]]
        expected -= F.logsigmoid(u[contexts[p]] @ centre)
        for noise_word in pool[picks[p]]:
            expected -= F.logsigmoid(-(u[noise_word] @ centre))
    torch.testing.assert_close(loss, expected / len(contexts))


def test_sparse_gradients_match_the_closed_form():
    model = small_skipgram(1)
    centres, contexts, owners, (pool, picks) = pair_batch()
    model(centres, contexts, owners, (pool, picks)).backward()
    v, u = model.in_vectors.weight.detach(), model.out_vectors.weight.detach()
    grad_v, grad_u = torch.zeros_like(v), torch.zeros_like(u)
    for p in range(len(contexts)):
        c, o = centres[owners[p]], contexts[p]
        # dloss/dv_c = (s(u_o.v_c) - 1) u_o + sum_k s(u_nk.v_c) u_nk; dloss/du = ... v_c
        true = torch.sigmoid(u[o] @ v[c]) - 1
        grad_v[c] += true * u[o]
        grad_u[o] += true * v[c]
        for n in pool[picks[p]]:
            noise = torch.sigmoid(u[n] @ v[c])
            grad_v[c] += noise * u[n]
            grad_u[n] += noise * v[c]
    assert model.in_vectors.weight.grad.is_sparse
    torch.testing.assert_close(model.in_vectors.weight.grad.to_dense(), grad_v / len(contexts))
    torch.testing.assert_close(model.out_vectors.weight.grad.to_dense(), grad_u / len(contexts))


def test_noise_words_are_drawn_from_the_noise_distribution():
    probabilities = torch.tensor([0.0, 0.5, 0.3, 0.2, 0.0])
    model = SkipGram(5, 2, probabilities, negatives=4, noise_pool=1000)
    generator = torch.Generator().manual_seed(0)
    direct = model.sample_noise((100_000,), generator)
    pool, picks = model.draw_noise(25_000, generator)  # marginally also P_n
    for draws in (direct, pool[picks].flatten()):
        frequencies = torch.bincount(draws, minlength=5) / draws.numel()
        assert frequencies[0] == 0 and frequencies[4] == 0  # never the unknown/unseen
        torch.testing.assert_close(frequencies, probabilities, atol=0.03, rtol=0)
    torch.testing.assert_close(
        torch.bincount(direct, minlength=5) / direct.numel(), probabilities, atol=0.005, rtol=0
    )


def test_build_corpus_drops_rare_words_and_refuses_too_little_text():
    corpus = build_corpus(["a b a c a b " * 30 + "rare"], "test", min_count=2)
    assert "rare" not in corpus.vocab and "a" in corpus.vocab
    assert len(corpus.stream) == 180 and corpus.counts.sum() == 180
    with pytest.raises(UserError, match="more text"):
        build_corpus(["tiny text"], "test", min_count=1)


def word2vec_task(seed: int = 0) -> Word2VecTask:
    texts = reviews.generated_reviews(300, seed=1).sentences
    corpus = build_corpus(texts, "test", min_count=1)
    noise = torch.from_numpy(noise_distribution(corpus.counts))
    model = SkipGram(len(corpus.vocab), 8, noise, negatives=2)
    cfg = TrainConfig(batch_size=64, lr=0.1, seed=seed)
    return Word2VecTask(model, corpus, cfg, window=3, subsample=1e-2)


def test_epochs_draw_their_own_batches_from_seed_and_epoch_alone():
    first, again = word2vec_task(), word2vec_task()
    epoch1, epoch1_again = first.train_batches(1, ONE_PROCESS), again.train_batches(1, ONE_PROCESS)
    epoch2 = first.train_batches(2, ONE_PROCESS)
    assert all(torch.equal(x, y) for a, b in zip(epoch1, epoch1_again) for x, y in zip(a, b))
    assert not torch.equal(epoch1[0][0], epoch2[0][0])
    # subsampling keeps fewer words than the stream holds, each centre word once
    kept = sum(len(batch[0]) for batch in epoch1)
    assert kept == epoch1.words < len(first.train_stream)
    assert all(len(b[1]) == len(b[2]) and b[2].max() < len(b[0]) for b in epoch1)


def quick_word2vec(tmp_path, **flags):
    recipe = get_recipe("word2vec")
    cfg = resolve_config(
        recipe, {"quick": True, "embedded": True, "out": str(tmp_path), "device": "cpu", **flags}
    )
    run_dir = tmp_path / "word2vec"
    run_dir.mkdir(parents=True)
    return execute(recipe, cfg, run_dir=run_dir)["metrics"], run_dir


@pytest.mark.slow
def test_quick_word2vec_learns_word_roles_and_saves_the_vectors(tmp_path):
    metrics, run_dir = quick_word2vec(tmp_path)
    assert metrics["words_per_second"] > 0 and metrics["vocabulary"] > 40
    vectors, vocab = load_word_vectors(run_dir)
    assert vectors.shape == (len(vocab), 32)
    nouns = {w.split()[-1] for w in reviews._SUBJECTS}
    adjectives = set(reviews._POSITIVE) | set(reviews._NEGATIVE)
    neighbours = nearest_neighbours(vectors, vocab, sorted(nouns | adjectives), k=3)
    for word, near in neighbours.items():
        role = nouns if word in nouns else adjectives
        assert {other for other, _ in near} <= role, (word, near)
    assert (run_dir / "plots" / "projection.png").exists()
    assert "film:" in (run_dir / "texts" / "nearest_neighbours.txt").read_text()
    model, meta = load_model(run_dir)
    torch.testing.assert_close(model.vectors, vectors)
    assert meta["info"]["task"] == "word-embeddings"
    json.dumps(meta["info"])


@pytest.mark.slow
def test_resumed_word2vec_ends_where_an_uninterrupted_run_does(tmp_path):
    small = {"schedule": "none", "max_tokens": 8000, "embedding_dim": 8}  # exact at any size
    whole, whole_dir = quick_word2vec(tmp_path / "whole", epochs=3, **small)
    recipe = get_recipe("word2vec")
    flags = {"quick": True, "embedded": True, "out": str(tmp_path / "parts"), "device": "cpu"}
    first = execute(recipe, resolve_config(recipe, {**flags, "epochs": 1, **small}))
    again = {**flags, "epochs": 3, **small, "resume": first["run_dir"]}
    resumed = execute(recipe, resolve_config(recipe, again), given=again)
    assert resumed["metrics"]["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-6)
    torch.testing.assert_close(
        load_word_vectors(resumed["run_dir"])[0], load_word_vectors(whole_dir)[0]
    )


def test_the_planned_schedule_keeps_its_epochs_on_resume(tmp_path):
    recipe = get_recipe("word2vec")
    flags = {"quick": True, "embedded": True, "out": str(tmp_path), "device": "cpu"}
    first = execute(recipe, resolve_config(recipe, {**flags, "epochs": 1}))
    again = {**flags, "epochs": 2, "resume": first["run_dir"]}
    with pytest.raises(UserError, match="planned for 1 epochs"):
        execute(recipe, resolve_config(recipe, again), given=again)


def test_saved_vectors_are_checked_when_read(tmp_path):
    with pytest.raises(UserError, match="no embeddings.safetensors"):
        load_word_vectors(tmp_path)
    vocab = WordVocabulary(["<unk>", "a", "b"])
    save_word_vectors(tmp_path, torch.ones(2, 4), vocab, "test")  # one row short
    with pytest.raises(UserError, match="one vector per word"):
        load_word_vectors(tmp_path)
    save_word_vectors(tmp_path, torch.ones(3, 4), vocab, "test")
    vectors, again = load_word_vectors(tmp_path)
    assert again == vocab and vectors.shape == (3, 4)


def test_text8_is_in_the_catalogue_and_never_downloaded_in_tests(tmp_path):
    from dlnd.data.catalog import get_dataset
    from dlnd.data.readers import load_corpus

    text8 = get_dataset("text8")
    (file,) = text8.layouts[0].files
    assert file.sha256 and file.size == 100_000_000
    assert all(url.startswith("https://") for url in text8.layouts[0].archives[0].urls)
    with pytest.raises(UserError, match="text8"):
        load_corpus("text8", tmp_path)  # DLND_OFFLINE=1 in the tests
