"""The language model, its sampling and the ordered windows it trains on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlnd.distributed import DistState
from dlnd.errors import UserError
from dlnd.sequence.corpus import (
    generated_prose,
    generated_script,
    ordered_windows,
    shard_rows,
    split_tail,
    wrap,
)
from dlnd.sequence.language_model import (
    LanguageModel,
    OneTokenSteps,
    adaptive_cutoffs,
    lstm_cell,
    sample_next,
)
from dlnd.sequence.language_task import LanguageModelTask
from dlnd.sequence.sampling import check_settings, continuation, write
from dlnd.text import CharVocabulary, WordVocabulary
from dlnd.trainer import TrainConfig


def small_model(vocab_size: int = 11, layers: int = 2, seed: int = 0) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(vocab_size, embedding_size=5, hidden_size=7, layers=layers).eval()


# ------------------------------------------------------------------------------ the model


def test_forward_returns_logits_state_and_the_cross_entropy():
    model = small_model()
    tokens = torch.randint(0, 11, (3, 6))
    targets = torch.randint(0, 11, (3, 6))
    logits, (h, c), loss = model(tokens, targets=targets)
    assert logits.shape == (3, 6, 11) and h.shape == c.shape == (2, 3, 7)
    by_hand = -torch.log_softmax(logits, -1).gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(loss, by_hand)
    assert model(tokens).loss is None


def test_an_adaptive_softmax_scores_every_token_and_its_loss_is_the_cross_entropy():
    torch.manual_seed(0)
    model = LanguageModel(50, 6, 32, layers=1, cutoffs=adaptive_cutoffs(50)).eval()
    assert adaptive_cutoffs(50) == (5, 25) and adaptive_cutoffs(2) == ()
    tokens, targets = torch.randint(0, 50, (2, 5)), torch.randint(0, 50, (2, 5))
    log_probabilities = model(tokens).logits
    torch.testing.assert_close(log_probabilities.exp().sum(-1), torch.ones(2, 5))
    logits, _, loss = model(tokens, targets=targets)
    assert logits is None
    by_hand = -log_probabilities.gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(loss, by_hand)
    state = (torch.zeros(1, 2, 32), torch.zeros(1, 2, 32))
    step_scores, _ = model.step(tokens[:, 0], state)
    torch.testing.assert_close(step_scores, log_probabilities[:, 0])


def test_carrying_the_state_equals_reading_the_whole_sequence():
    model = small_model()
    tokens = torch.randint(0, 11, (2, 10))
    whole = model(tokens).logits
    first = model(tokens[:, :4])
    second = model(tokens[:, 4:], first.state)
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), whole)


def test_one_step_at_a_time_equals_nn_lstm():
    model = small_model(layers=3)
    tokens = torch.randint(0, 11, (4, 8))
    expected = model(tokens).logits
    state = (torch.zeros(3, 4, 7), torch.zeros(3, 4, 7))
    steps = []
    for t in range(8):
        logits, state = model.step(tokens[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("layers", "cutoffs", "input_table"), [
    (2, (), True), (3, (), False), (1, (5, 25), False), (2, (5, 25), True),
])  # fmt: skip
def test_generation_steps_equal_forward_after_the_prime(layers, cutoffs, input_table):
    torch.manual_seed(0)
    model = LanguageModel(50, 6, 32, layers=layers, cutoffs=cutoffs).eval()
    tokens = torch.randint(0, 50, (3, 9))
    expected = model(tokens).logits
    with torch.inference_mode():
        _, state, _ = model(tokens[:, :2])
        steps = OneTokenSteps(model, state, input_table=input_table)
        scores = torch.stack([steps(tokens[:, t]) for t in range(2, 9)], 1)
    torch.testing.assert_close(scores, expected[:, 2:], rtol=1e-5, atol=1e-5)


def test_bfloat16_generation_weights_keep_the_next_token_distribution():
    """bfloat16 weights round each product's inputs to 8 significant bits: the probabilities
    of the next token move by a little, the text's likelihood hardly at all."""
    torch.manual_seed(0)
    model = LanguageModel(80, 16, 128, layers=2).eval()
    tokens = torch.randint(0, 80, (4, 40))
    expected = torch.log_softmax(model(tokens).logits, -1)
    with torch.inference_mode():
        _, state, _ = model(tokens[:, :2])
        steps = OneTokenSteps(model, state, input_table=True, weights_dtype=torch.bfloat16)
        scores = torch.stack([steps(tokens[:, t]) for t in range(2, 40)], 1)
    got = torch.log_softmax(scores, -1)
    assert (got.exp() - expected[:, 2:].exp()).abs().max() < 0.01  # probabilities
    chosen = tokens[:, 3:, None]  # each step's log-likelihood of the token that followed
    gap = got[:, :-1].gather(2, chosen) - expected[:, 2:-1].gather(2, chosen)
    assert gap.mean().abs() < 0.01 and gap.abs().max() < 0.05
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        OneTokenSteps(model, state, input_table=True, weights_dtype=torch.float16)


def test_greedy_generation_equals_the_argmax_of_forward_token_by_token():
    model = small_model(layers=2)
    text = torch.tensor([[3, 1, 4], [1, 5, 9]])
    written = model.generate(text, 12, top_k=1)
    for t in range(12):
        expected = model(text).logits[:, -1].argmax(-1)
        assert torch.equal(written[:, t], expected)
        text = torch.cat([text, expected[:, None]], 1)


def test_lstm_cell_equals_torch_lstm_cell_in_float64():
    reference = nn.LSTMCell(3, 5).double()
    x, h, c = torch.randn(2, 3).double(), torch.randn(2, 5).double(), torch.randn(2, 5).double()
    weights = (reference.weight_ih, reference.weight_hh, reference.bias_ih, reference.bias_hh)
    ours = lstm_cell(x, h, c, *weights)
    for got, want in zip(ours, reference(x, (h, c))):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_forget_gates_start_open():
    model = LanguageModel(5, 3, 4, layers=2)
    for layer in range(2):
        total = getattr(model.lstm, f"bias_ih_l{layer}") + getattr(model.lstm, f"bias_hh_l{layer}")
        assert torch.all(total[4:8] == 1.0)


def test_an_adaptive_softmax_needs_room_for_its_clusters():
    with pytest.raises(ValueError, match="hidden_size"):
        LanguageModel(50, 4, 8, cutoffs=(5, 25))


# ------------------------------------------------------------------------------ sampling


def test_sample_next_follows_softmax_of_logits_over_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits.expand(20_000, 4), 2.0, generator=generator)])
    observed = torch.bincount(draws.flatten(), minlength=4).double() / draws.numel()
    expected = torch.softmax(logits[0].double() / 2.0, 0)
    assert torch.allclose(observed, expected, atol=0.015)


@given(st.integers(1, 6), st.sets(st.integers(0, 5), max_size=5), st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_only_the_top_k_of_the_tokens_not_excluded_are_drawn(k, excluded, seed):
    logits = torch.randn(1, 6, generator=torch.Generator().manual_seed(seed)).expand(300, 6)
    ranked = [i for i in logits[0].argsort(descending=True).tolist() if i not in excluded]
    draws = sample_next(logits, 1.0, k, tuple(excluded), torch.Generator().manual_seed(seed))
    assert set(draws.tolist()) <= set(ranked[:k])


def test_top_k_draws_follow_the_softmax_of_the_k_best_tokens_not_excluded():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]]).expand(20_000, 5)
    draws = sample_next(logits, 0.5, 2, (0,), torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=5).double() / len(draws)
    expected = torch.zeros(5, dtype=torch.float64)
    expected[[1, 4]] = torch.softmax(torch.tensor([1.0, 0.5], dtype=torch.float64) / 0.5, 0)
    assert torch.allclose(observed, expected, atol=0.015)


def test_generate_with_the_same_generator_seed_repeats_itself():
    model = small_model(layers=2)
    prime = torch.tensor([[3, 1, 4]]).repeat(4, 1)
    settings_ = {"temperature": 0.9, "top_k": 3, "exclude": (2,)}
    once = model.generate(prime, 50, generator=torch.Generator().manual_seed(3), **settings_)
    again = model.generate(prime, 50, generator=torch.Generator().manual_seed(3), **settings_)
    assert once.shape == (4, 50) and torch.equal(once, again) and not torch.any(once == 2)


def test_top_k_of_one_is_the_most_likely_token():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 1.0]])
    assert sample_next(logits, 1.0, top_k=1).tolist() == [1, 0]


def test_the_same_seed_writes_the_same_text_and_another_seed_another():
    vocab = CharVocabulary.build(generated_prose(2000))
    model = small_model(len(vocab))
    once = write(model, vocab, "Anna", 60, temperature=1.0, seed=7)
    again = write(model, vocab, "Anna", 60, temperature=1.0, seed=7)
    other = write(model, vocab, "Anna", 60, temperature=1.0, seed=8)
    assert once == again and once != other
    assert len(once[0]) == 60 and model.training is False


def test_streams_in_a_batch_are_each_a_sample():
    vocab = CharVocabulary.build(generated_prose(2000))
    texts = write(small_model(len(vocab)), vocab, "He", 40, seed=1, streams=5)
    assert len(texts) == 5 and len(set(texts)) > 1 and all(len(t) == 40 for t in texts)


def test_unknown_characters_and_words_in_a_prime_never_raise_and_are_never_written():
    chars = CharVocabulary.build("abc abc")
    texts = write(small_model(len(chars)), chars, "Zürich ☃ 🙂", 200, top_k=None, seed=0)
    assert chars.UNKNOWN not in texts[0] and len(texts[0]) == 200
    words = WordVocabulary.build("jerry: hi.\ngeorge: no.\n", punctuation=True)
    text = write(small_model(len(words)), words, "Kramer: Giddyup!", 30, seed=0)[0]
    assert "<unk>" not in text


def test_the_continuation_follows_on_from_the_prime():
    words = WordVocabulary.build('jerry: "hi" (no) well.\n', punctuation=True)
    prime, new = words.encode('jerry: "hi'), words.encode('" well.\n')
    assert continuation(words, prime, new) == '" well.\n'
    chars = CharVocabulary.build("abc")
    assert continuation(chars, chars.encode("ab"), chars.encode("ca")) == "ca"


@pytest.mark.parametrize(
    ("settings_", "fragment"),
    [
        (("x", 0, 1.0, None, 1), "length"),
        (("x", 10**9, 1.0, None, 1), "length"),
        (("x", 5, 0.0, None, 1), "temperature"),
        (("x", 5, math.nan, None, 1), "temperature"),
        (("x", 5, 1.0, 0, 1), "top-k"),
        (("x", 5, 1.0, None, 0), "samples"),
        ((None, 5, 1.0, None, 1), "prime"),
    ],
)
def test_bad_settings_are_one_sentence(settings_, fragment):
    with pytest.raises(UserError, match=fragment):
        check_settings(*settings_)


def test_an_empty_prime_is_refused():
    vocab = WordVocabulary.build("a b c")
    with pytest.raises(UserError, match="no token"):
        write(small_model(len(vocab)), vocab, "   ", 5)


# ------------------------------------------------------------------------------ windows


@given(
    st.integers(20, 300),
    st.integers(1, 6),
    st.integers(1, 9),
    st.integers(0, 5),
)
@settings(max_examples=60, deadline=None)
def test_ordered_windows_continue_row_by_row(length, rows, seq_len, offset):
    stream = torch.arange(length)
    if (length - offset - 1) // rows < seq_len:
        with pytest.raises(UserError):
            ordered_windows(stream, rows, seq_len, offset)
        return
    windows = ordered_windows(stream, rows, seq_len, offset)
    inputs = torch.cat([x for x, _ in windows], 1)
    targets = torch.cat([y for _, y in windows], 1)
    assert all(x.shape == (rows, seq_len) for x, _ in windows)
    torch.testing.assert_close(targets, inputs + 1)  # the next token
    # each row is one stretch of the stream, and the rows follow each other
    assert torch.all(inputs[:, 1:] - inputs[:, :-1] == 1)
    assert torch.all(inputs[1:, 0] - inputs[:-1, 0] == inputs.shape[1])
    assert inputs[0, 0] == offset


@given(st.integers(1, 4), st.integers(1, 3))
@settings(max_examples=20, deadline=None)
def test_the_shards_of_all_ranks_make_up_the_batch(per_rank, world):
    windows = ordered_windows(torch.arange(400), per_rank * world, 5)
    shards = [shard_rows(windows, rank, world) for rank in range(world)]
    for k, (x, _) in enumerate(windows):
        rows = sorted(tuple(row.tolist()) for s in shards for row in s[k][0])
        assert rows == sorted(tuple(row.tolist()) for row in x)


def test_every_epoch_has_as_many_windows_and_its_own_start():
    cfg = TrainConfig(batch_size=4, seed=3)
    task = LanguageModelTask(
        small_model(), torch.arange(1000) % 11, torch.arange(300) % 11, cfg, seq_len=9, unit="char"
    )
    one = DistState(rank=0, world_size=1, local_rank=0)
    counts = {len(task.train_batches(epoch, one)) for epoch in range(1, 12)}
    starts = {int(task.train_batches(epoch, one)[0][0][0, 0]) for epoch in range(1, 12)}
    assert len(counts) == 1 and len(starts) > 1
    assert task.epoch_offset(5) == task.epoch_offset(5)
    two = DistState(rank=1, world_size=2, local_rank=1)
    assert task.train_batches(2, two)[0][0].shape == (2, 9)
    with pytest.raises(UserError, match="multiple of the 3 processes"):
        task.train_batches(1, DistState(rank=0, world_size=3, local_rank=0))
    task.val_ids = torch.arange(100)
    with pytest.raises(UserError, match="larger --val-fraction"):
        task.eval_batches(one)


# ------------------------------------------------------------------------------ corpora


def test_generated_corpora_look_like_the_real_ones():
    prose = generated_prose(5000, seed=1)
    assert len(prose) >= 5000 and "\n\n" in prose
    assert max(len(line) for line in prose.splitlines()) <= 70
    assert generated_prose(5000, seed=1) == prose != generated_prose(5000, seed=2)
    script = generated_script(50, seed=0)
    lines = script.splitlines()
    assert len(lines) == 50 and all(":" in line.split()[0] for line in lines)
    assert script == script.lower()


def test_wrap_and_split_tail():
    assert wrap("aa bb cc dd", 5) == "aa bb\ncc dd"
    assert wrap("toolongword x", 4) == "toolongword\nx"
    train, held_out = split_tail("abcdefghij", 0.3)
    assert (train, held_out) == ("abcdefg", "hij")


def test_word_vocabulary_of_a_script_keeps_speakers_and_line_breaks():
    vocab = WordVocabulary.build(generated_script(200), lowercase=True, punctuation=True)
    assert "jerry:" in vocab and "||return||" in vocab and "||question_mark||" in vocab
    assert np.all(vocab.encode("jerry: hello?\n") != vocab.unknown_id)
