"""The chatbot: pairs from a script, the seq2seq model and its attention, training through
the shared loop, replies, and ``dlnd chat``."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnd.cli import main
from dlnd.runs import read_metrics
from dlnd.sequence.chatbot import ChatBot, EncodedPairs, PairBatches, encode_pairs
from dlnd.sequence.dialogue import (
    dialogue_pairs,
    encoded_line,
    generated_dialogue,
    split_pairs,
)
from dlnd.sequence.seq2seq import DECODERS, Seq2Seq, luong_attention, pick_word
from dlnd.text import WordVocabulary

# The first turns of the Seinfeld scripts, as in text/seinfeld_scripts.txt.
SCRIPT = """\
jerry: (pointing at georges shirt) see, to me, that button is in the worst possible spot.

george: are you through?

jerry: you do of course try on, when you buy?

george: yes, it was purple, i liked it, i dont actually recall considering the buttons.

(george shows his note-block to jerry; it says very largely: no.)

jerry: oh, you dont recall?

jerry: well, senator, id just like to know, what you knew and when you knew it.

man #2: really? what are you gonna bout the apartment?
"""


def call(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------ pairs


def test_pairs_are_a_line_and_the_next_speakers_reply_without_stage_directions():
    pairs = dialogue_pairs(SCRIPT)
    assert pairs == [
        ("see, to me, that button is in the worst possible spot.", "are you through?"),
        ("are you through?", "you do of course try on, when you buy?"),
        (
            "you do of course try on, when you buy?",
            "yes, it was purple, i liked it, i dont actually recall considering the buttons.",
        ),
        # the stage direction breaks the dialogue; jerry answering jerry is no pair
        (
            "well, senator, id just like to know, what you knew and when you knew it.",
            "really? what are you gonna bout the apartment?",
        ),
    ]


def test_context_turns_join_the_earlier_turns_of_the_same_dialogue():
    pairs = dialogue_pairs(SCRIPT, context_turns=1)
    assert pairs[0][0] == "see, to me, that button is in the worst possible spot."
    assert pairs[1][0] == (
        "see, to me, that button is in the worst possible spot.\nare you through?"
    )


def test_the_encoder_reads_the_history_only_as_far_as_training_did():
    vocab = WordVocabulary.build(["a b c\n"], padding=True, lowercase=True, punctuation=True)
    a, b, c, end = vocab.encode("a b c\n").tolist()
    assert encoded_line(vocab, "c", ["a", "b"], 0, 10).tolist() == [c]
    assert encoded_line(vocab, "c", ["a", "b"], 1, 10).tolist() == [b, end, c]
    assert encoded_line(vocab, "C", ["a", "b"], 5, 3).tolist() == [b, end, c]  # last 3 words
    assert encoded_line(vocab, "", [], 0, 10).tolist() == [vocab.unknown_id]


def test_the_held_out_pairs_are_the_tail():
    pairs = [(str(i), str(i + 1)) for i in range(10)]
    train, held_out = split_pairs(pairs, 0.2)
    assert train == pairs[:8] and held_out == pairs[8:]


def test_each_generated_reply_names_the_thing_its_line_asks_about():
    pairs = dialogue_pairs(generated_dialogue(50, seed=3))
    assert len(pairs) == 50
    for line, reply in pairs:
        thing = line.rsplit("the ", 1)[1].rstrip("?.")
        assert f"the {thing}" in reply


def test_pairs_of_the_real_scripts(shared_data):
    text = (shared_data / "text" / "seinfeld_scripts.txt").read_text(encoding="utf-8")
    pairs = dialogue_pairs(text)
    assert 40_000 < len(pairs) < 60_000
    assert pairs[0] == ("see, to me, that button is in the worst possible spot. the second "
                        "button literally makes or breaks the shirt, look at it. its too high! "
                        "its in no-mans-land. you look like you live with your mother.",
                        "are you through?")  # fmt: skip
    assert not any("(" in line or "(" in reply for line, reply in pairs[:2000])


# ------------------------------------------------------------------------------ the model


def tiny_model(decoder: str = "attention", seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(20, 6, 5, padding_id=0, end_id=2, unknown_id=1, decoder=decoder)


@pytest.mark.parametrize("decoder", DECODERS)
@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 4), line=st.integers(1, 7), reply=st.integers(1, 6))
def test_shapes_of_every_decoder(decoder, batch, line, reply):
    model = tiny_model(decoder)
    ids = torch.randint(3, 20, (batch, line))
    lengths = torch.randint(1, line + 1, (batch,))
    reply_in = torch.randint(2, 20, (batch, reply))
    logits, loss = model(ids, lengths, reply_in, reply_in)
    assert logits.shape == (batch, reply, 20) and loss.shape == ()
    memory, state, mask = model.encode(ids, lengths)
    assert state.shape == (1, batch, 5) and mask.sum(1).tolist() == lengths.tolist()
    _, _, weights = model.decode(reply_in, state, memory, mask, ids)
    if decoder == "attention":
        assert weights.shape == (batch, reply, line)
        assert torch.allclose(weights.sum(-1), torch.ones(batch, reply))
    else:
        assert weights is None


def test_attention_matches_scaled_dot_product_attention_with_scale_one():
    generator = torch.Generator().manual_seed(0)
    queries, keys = torch.randn(3, 4, 8, generator=generator), torch.randn(3, 6, 8)
    memory = torch.randn(3, 6, 10, generator=generator)
    mask = torch.arange(6)[None, :] < torch.tensor([[6], [2], [4]])
    context, weights = luong_attention(queries, keys, memory, mask)
    reference = F.scaled_dot_product_attention(
        queries, keys, memory, attn_mask=mask[:, None, :], scale=1.0
    )
    assert torch.allclose(context, reference, atol=1e-6)
    # by hand for one query: softmax over the two real positions only
    scores = keys[1, :2] @ queries[1, 0]
    assert torch.allclose(weights[1, 0, :2], torch.softmax(scores, 0), atol=1e-6)
    assert torch.all(weights[1, :, 2:] == 0)


def test_the_models_attention_is_scaled_dot_product_attention():
    model = tiny_model()
    states, keys = torch.randn(2, 3, 5), torch.randn(2, 4, 5)
    memory, mask = torch.randn(2, 4, 10), torch.tensor([[True] * 4, [True, False, False, False]])
    context, _ = model.attend(states, keys, memory, mask)
    reference = F.scaled_dot_product_attention(states, keys, memory, attn_mask=mask[:, None])
    assert torch.allclose(context, reference, atol=1e-6)


def test_attention_gradients_match_finite_differences():
    generator = torch.Generator().manual_seed(1)
    inputs = [
        torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
        for shape in ((2, 3, 4), (2, 5, 4), (2, 5, 3))
    ]
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    assert torch.autograd.gradcheck(lambda q, k, m: luong_attention(q, k, m, mask), inputs)


@pytest.mark.parametrize("decoder", ["attention", "plain"])
def test_padding_changes_nothing(decoder):
    """A line's logits are the same alone and in a batch padded to a longer line."""
    model = tiny_model(decoder).eval()
    short, longer = torch.tensor([5, 6, 7]), torch.tensor([3, 4, 5, 6, 8, 9, 10])
    reply = torch.tensor([[2, 11, 12]])
    alone, _ = model(short[None], torch.tensor([3]), reply)
    batch = torch.zeros((2, 7), dtype=torch.int64)
    batch[0, :3], batch[1] = short, longer
    together, _ = model(batch, torch.tensor([3, 7]), reply.repeat(2, 1))
    assert torch.allclose(alone[0], together[0], atol=1e-5)


@pytest.mark.parametrize("decoder", ["attention", "plain"])
def test_a_warm_start_writes_exactly_what_the_language_model_writes(decoder):
    language_model = tiny_model("language-model", seed=3).eval()
    model = tiny_model(decoder, seed=4).eval()
    line, lengths = torch.tensor([[5, 6, 7, 0], [8, 9, 10, 11]]), torch.tensor([3, 4])
    reply = torch.tensor([[2, 11, 12], [2, 4, 0]])
    before, _ = model(line, lengths, reply)
    model.start_from(language_model)
    after, _ = model(line, lengths, reply)
    expected, _ = language_model(line, lengths, reply)
    assert not torch.allclose(before, expected, atol=1e-3)
    assert torch.allclose(after, expected, atol=1e-6)
    with pytest.raises(ValueError, match="language-model"):
        model.start_from(tiny_model("plain"))


def test_the_copy_mixture_is_the_pointer_generator_distribution():
    """p(w) = (1 - g) softmax(logits)_w + g * (attention on the line's copies of w), by hand."""
    torch.manual_seed(0)
    model = Seq2Seq(20, 6, 5, padding_id=0, end_id=2, unknown_id=1, copy=True).eval()
    with torch.no_grad():
        model.copy_gate.bias.fill_(0.3)
        model.copy_gate.weight.normal_(0, 0.5)
    line = torch.tensor([[7, 9, 7, 12]])  # 7 twice: both its positions count
    lengths, reply_in = torch.tensor([4]), torch.tensor([[2, 7, 9]])
    scores, _ = model(line, lengths, reply_in)
    memory, state, mask = model.encode(line, lengths)
    words = model.embedding(reply_in)
    states, _ = model.decoder(words, state)
    context, weights = model.attend(states, model.key(memory), memory, mask)
    both = torch.cat([context, states], dim=-1)
    generated = torch.softmax(model.output(torch.tanh(model.combine(both))), dim=-1)
    gate = torch.sigmoid(model.copy_gate(torch.cat([both, words], dim=-1)))
    expected = (1 - gate) * generated
    for position, word in enumerate(line[0].tolist()):
        expected[..., word] += gate[..., 0] * weights[..., position]
    assert torch.allclose(scores.exp(), expected, atol=1e-6)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(1, 3), atol=1e-6)
    with pytest.raises(ValueError, match="attention"):
        Seq2Seq(20, 6, 5, padding_id=0, end_id=2, decoder="plain", copy=True)


def test_the_copy_loss_is_the_cross_entropy_of_the_full_mixture():
    torch.manual_seed(1)
    model = Seq2Seq(20, 6, 5, padding_id=0, end_id=2, unknown_id=1, copy=True).eval()
    with torch.no_grad():
        model.copy_gate.weight.normal_(0, 0.5)
    line, lengths = torch.tensor([[7, 9, 7, 12], [5, 6, 0, 0]]), torch.tensor([4, 2])
    reply_in, reply_out = torch.tensor([[2, 7, 9], [2, 6, 0]]), torch.tensor([[7, 9, 2], [6, 2, 0]])
    scores, _ = model(line, lengths, reply_in)
    expected = F.cross_entropy(scores.flatten(0, 1), reply_out.flatten(), ignore_index=0)
    none, loss = model(line, lengths, reply_in, reply_out)
    assert none is None and torch.allclose(loss, expected, atol=1e-5)


def test_a_copying_model_can_write_a_word_it_would_never_generate():
    torch.manual_seed(0)
    model = Seq2Seq(20, 6, 5, padding_id=0, end_id=2, unknown_id=1, copy=True).eval()
    with torch.no_grad():
        model.output.bias[13] = -50.0  # word 13 is never generated...
        model.copy_gate.bias.fill_(10.0)  # ...but the model nearly always copies
    scores, _ = model(torch.tensor([[13]]), torch.tensor([1]), torch.tensor([[2]]))
    assert scores[0, 0].argmax() == 13 and scores[0, 0, 13].exp() > 0.99
    ids, _ = model.reply(torch.tensor([13]), 3)
    assert ids[0] == 13


def test_the_loss_ignores_padded_targets():
    model = tiny_model().eval()
    line, lengths = torch.tensor([[4, 5]]), torch.tensor([2])
    _, loss = model(line, lengths, torch.tensor([[2, 7]]), torch.tensor([[7, 2]]))
    _, padded = model(line, lengths, torch.tensor([[2, 7, 0]]), torch.tensor([[7, 2, 0]]))
    assert torch.allclose(loss, padded)


def test_replies_never_write_padding_or_unknown_and_follow_the_seed():
    model = tiny_model()
    with torch.no_grad():
        model.output.bias[[0, 1]] = 100.0  # the likeliest words, were they allowed
    line = torch.tensor([4, 5, 6])
    ids, attention = model.reply(line, 8)
    assert 0 not in ids and 1 not in ids and attention.shape == (len(ids), 3)

    def sampled(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return model.reply(line, 8, temperature=2.0, generator=generator)[0]

    assert sampled(3) == sampled(3)
    assert len({tuple(sampled(seed)) for seed in range(6)}) > 1


def test_top_k_draws_only_the_likeliest():
    logits = torch.tensor([0.0, 5.0, 4.0, -1.0])
    drawn = {pick_word(logits, 5.0, 2, torch.Generator().manual_seed(s)) for s in range(40)}
    assert drawn == {1, 2} and pick_word(logits, 0.0, None, None) == 1


def test_batches_shift_the_reply_by_the_end_word():
    vocab = WordVocabulary.build(["a b c\n", "d e\n"], padding=True, lowercase=True,
                                 punctuation=True)  # fmt: skip
    pairs = encode_pairs(vocab, [("a b c", "d e"), ("a", "d e d e d e")], max_words=4)
    assert len(pairs) == 1  # the second reply is too long
    line, lengths, reply_in, reply_out = PairBatches(pairs, [torch.tensor([0])], vocab)[0]
    end = vocab.encode("\n")[0]
    assert lengths.tolist() == [3] and reply_in[0, 0] == end and reply_out[0, -1] == end
    assert torch.equal(reply_in[0, 1:], reply_out[0, :-1])


# ------------------------------------------------------------------------------ the recipe


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chat")
    assert main(["run", "chatbot", "--quick", "--embedded", "--out", str(out)]) == 0
    return max((out / "chatbot").iterdir())


def test_quick_training_lowers_the_loss_and_reports_both_baselines(chat_run):
    rows = read_metrics(chat_run)
    metrics = json.loads((chat_run / "final.json").read_text())["metrics"]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] < math.log(60)
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]))
    # the generated replies name the thing the line asked about: attention must pay
    assert metrics["perplexity_cut_vs_plain_pct"] > 5
    assert metrics["perplexity_cut_vs_language_model_pct"] > 5
    for baseline in ("plain", "language-model"):
        sub = json.loads((chat_run / f"baseline-{baseline}" / "final.json").read_text())
        key = baseline.replace("-", "_")
        assert metrics[f"{key}_val_perplexity"] == pytest.approx(sub["metrics"]["val_perplexity"])
    assert (chat_run / "plots" / "attention.png").is_file()
    exchanges = (chat_run / "texts" / "exchanges_epoch_001.txt").read_text()
    assert exchanges.count("line:") == 8 and "script:" in exchanges
    assert metrics["reply_p50_ms"] > 0


def test_a_baseline_as_the_model_is_not_trained_twice_and_is_not_served(tmp_path, capsys):
    flags = ("--quick", "--embedded", "--epochs", "1", "--out", str(tmp_path))
    assert main(["run", "chatbot", "--decoder", "plain", *flags]) == 0
    run_dir = max((tmp_path / "chatbot").iterdir())
    metrics = json.loads((run_dir / "final.json").read_text())["metrics"]
    assert "language_model_val_perplexity" in metrics and "plain_val_perplexity" not in metrics
    assert not (run_dir / "baseline-plain").exists()
    capsys.readouterr()
    code, _, err = call(capsys, "export", str(run_dir))
    assert code == 2 and "attention model" in err


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory) -> Path:
    """A quick run of the attention model that copies, started from the language model."""
    out = tmp_path_factory.mktemp("chat-copy")
    flags = ("--quick", "--embedded", "--copy", "--warm-start", "--epochs", "3")
    assert main(["run", "chatbot", *flags, "--out", str(out)]) == 0
    return max((out / "chatbot").iterdir())


def test_a_warm_started_run_trains_the_language_model_once_and_first(copy_run):
    metrics = json.loads((copy_run / "final.json").read_text())["metrics"]
    language_model = copy_run / "baseline-language-model"
    assert len(read_metrics(language_model)) == 3 and len(read_metrics(copy_run)) == 3
    assert (language_model / "final.json").is_file() and "plain_val_perplexity" in metrics
    # the model started where the language model ended: its first epoch is already better
    # than the language model's first
    assert read_metrics(copy_run)[0]["val_loss"] < read_metrics(language_model)[0]["val_loss"]
    finished = [(run / "metrics.jsonl").stat().st_mtime_ns
                for run in (language_model, copy_run, copy_run / "baseline-plain")]  # fmt: skip
    assert finished == sorted(finished)


def test_the_export_of_a_copying_model_replies_as_pytorch_does(copy_run, tmp_path):
    from dlnd.serve.chat import OnnxChatModel

    out = tmp_path / "export"
    assert main(["export", str(copy_run), "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    bot = ChatBot.from_run(copy_run)
    assert bot.model.copies
    exported = OnnxChatModel(out / card["file"], out / "decoder_step.onnx", card["end_id"],
                             card["never_written"])  # fmt: skip
    for line in ("did you see the pen?", "where is the bra?", "forget it, newman"):
        written, attention = exported.reply(bot.vocab.encode(line), bot.max_words)
        assert bot.vocab.decode(written) == bot.reply(line).text
        assert np.allclose(attention, bot.reply(line).attention, atol=1e-4)


def test_the_bot_reads_unknown_words_and_replies_the_same_for_a_seed(chat_run):
    bot = ChatBot.from_run(chat_run)
    reply = bot.reply("where is my zyzzyva? ☃")
    assert "<unk>" in reply.words_in and reply.attention.shape == (
        len(reply.words_out), len(reply.words_in))  # fmt: skip
    once = bot.reply("did you see the soup?", temperature=1.0, seed=7).text
    assert bot.reply("did you see the soup?", temperature=1.0, seed=7).text == once
    assert bot.reply("").text is not None


def test_chat_answers_a_message_and_piped_lines(chat_run, capsys, monkeypatch):
    code, out, _ = call(capsys, "chat", str(chat_run), "--message", "where is my pen?")
    assert code == 0 and out.startswith("bot> ") and out.count("\n") == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("did you see the coat?\nforget it\n\nignored\n"))
    code, out, _ = call(capsys, "chat", str(chat_run), "--timing")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[0].endswith(" ms)")
    assert lines[-1].startswith("2 replies: p50 ")


def test_chat_refuses_a_run_of_another_recipe(tmp_path, capsys):
    code, _, err = call(capsys, "chat", str(tmp_path), "--message", "hi")
    assert code == 2 and "run" in err


def test_encoded_pairs_keep_their_texts():
    vocab = WordVocabulary.build(["hi there\n"], padding=True, lowercase=True, punctuation=True)
    pairs = encode_pairs(vocab, [("", "hi")], max_words=3)
    assert isinstance(pairs, EncodedPairs) and pairs.texts == [("", "hi")]
    assert pairs.lines[0].tolist() == [vocab.unknown_id]


# ------------------------------------------------------------------------------ served

REPLY = "/v1/models/chatbot/reply"


@pytest.fixture(scope="module")
def chat_export(chat_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chat-export") / "export"
    assert main(["export", str(chat_run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def chat_client(chat_export):
    from fastapi.testclient import TestClient

    from dlnd.serve.app import create_app

    with TestClient(create_app([chat_export]), raise_server_exceptions=False) as client:
        yield client


def test_the_export_replies_as_pytorch_does(chat_run, chat_export):
    from dlnd.serve.chat import OnnxChatModel

    card = json.loads((chat_export / "model_card.json").read_text())
    assert card["task"] == "chat" and card["verification"]["max_abs_diff_vs_pytorch"] < 1e-4
    bot = ChatBot.from_run(chat_run)
    exported = OnnxChatModel(chat_export / card["file"], chat_export / "decoder_step.onnx",
                             card["end_id"], card["never_written"])  # fmt: skip
    for line in ("did you see the pen?", "where is the bra?", "forget it, newman"):
        ids = bot.vocab.encode(line)
        expected = bot.reply(line)
        written, attention = exported.reply(ids, bot.max_words)
        assert bot.vocab.decode(written) == expected.text
        assert np.allclose(attention, expected.attention, atol=1e-4)


def test_the_reply_endpoint_answers_with_attention_on_request(chat_client, chat_run):
    answer = chat_client.post(REPLY, json={"message": "where is the soup?", "history": [],
                                           "seed": 1})  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["reply"] == ChatBot.from_run(chat_run).reply("where is the soup?").text
    assert body["attention"] is None
    body = chat_client.post(REPLY, json={"message": "where is the soup?", "attention": True}).json()
    attention = np.array(body["attention"]).reshape(len(body["words_out"]), -1)
    assert attention.shape[1] == len(body["words_in"]) and np.allclose(attention.sum(1), 1, 1e-3)


def test_sampled_replies_follow_the_seed(chat_client):
    def reply(seed: int) -> str:
        request = {"message": "did you see the car?", "seed": seed, "temperature": 1.5}
        return chat_client.post(REPLY, json=request).json()["reply"]

    assert reply(5) == reply(5)
    assert len({reply(seed) for seed in range(8)}) > 1


@pytest.mark.parametrize(
    "message", ["", "☃ zyzzyva flibbertigibbet ||period|| <unk> <pad>", "\n\n", "a" * 1000]
)
def test_unknown_and_odd_words_are_answered(chat_client, message):
    answer = chat_client.post(REPLY, json={"message": message, "history": ["☃"] * 20})
    assert answer.status_code == 200 and isinstance(answer.json()["reply"], str)


@settings(max_examples=25, deadline=None)
@given(message=st.text(max_size=300), history=st.lists(st.text(max_size=50), max_size=5))
def test_any_text_gets_a_reply_never_a_server_error(chat_client, message, history):
    answer = chat_client.post(REPLY, json={"message": message, "history": history})
    assert answer.status_code == 200 and isinstance(answer.json()["reply"], str)


@pytest.mark.parametrize(
    "request_body",
    [
        {"message": "a" * 1001},
        {"message": "hi", "history": ["x"] * 21},
        {"message": "hi", "seed": -1},
        {"message": "hi", "temperature": -0.5},
        {"message": 3},
        {"message": "hi", "colour": "red"},
        {"history": []},
    ],
)
def test_out_of_bounds_requests_are_one_sentence_422(chat_client, request_body):
    answer = chat_client.post(REPLY, json=request_body)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "\n" not in detail


def test_the_page_has_a_chat_tab(chat_client):
    page = chat_client.get("/").text
    assert 'data-tab="chat"' in page and "/static/tasks/chat.js" in page
    assert chat_client.get("/v1/models").json()["models"][0]["task"] == "chat"


def test_the_chat_tab_shows_a_reply_and_its_attention_in_a_browser(chat_export):
    from test_serve_browser import OUTPUT, open_page, require_browser, start_serving

    sync_api = require_browser()
    expect = sync_api.expect
    OUTPUT.mkdir(exist_ok=True)
    process, url = start_serving(str(chat_export))
    expected = httpx.post(f"{url}{REPLY}", json={"message": "did you see the pen?"}).json()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as playwright:
            browser, page = open_page(playwright, url, errors)
            try:
                page.wait_for_selector("body[data-ready=true]", timeout=20_000)
                page.locator("#chat-message").fill("did you see the pen?")
                page.locator("#chat-send").click()
                expect(page.locator("#chat-log li.bot")).to_have_count(1, timeout=20_000)
                said = page.locator("#chat-log li.bot").text_content()
                rows = page.locator("#chat-heatmap tbody tr").count()
                columns = page.locator("#chat-heatmap thead th").count()
                page.screenshot(path=str(OUTPUT / "serve-chat.png"), full_page=True)
            finally:
                browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert errors == []
    assert said == expected["reply"] and rows == len(expected["words_out"]) > 0
    assert columns == len(expected["words_in"]) + 1  # a corner cell, then the line's words


def test_the_benchmark_refuses_a_run_folder_without_results(tmp_path):
    script = Path(__file__).parent.parent / "benchmarks" / "chatbot.py"
    done = subprocess.run([sys.executable, str(script), "--run", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "no final.json there" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written into the folder
