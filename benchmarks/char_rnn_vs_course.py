"""char-rnn against the course's character-level LSTM: validation loss after the same
wall-clock budgets, training speed on the course's own architecture, and sampling speed.

(a) course: the published setup, written out here from its settings: each batch of 128
    sequences x 100 characters cut from the text as one (128, -1) array and one-hot encoded
    in NumPy; CharRNN = nn.LSTM(vocabulary, 512, 2 layers, dropout 0.5, batch_first) ->
    dropout 0.5 -> Linear; Adam lr 0.001, gradient norm clipped at 5, the hidden state
    carried from batch to batch; float32. Its loop also runs a validation pass over the
    held-out text every 10 steps (print_every = 10); that time is *not* charged to its budget
    here. Sampling: one character at a time, one-hot encoded, one forward pass, top-k 5.
(b) dlnd: the char-rnn recipe with its defaults (its own model size and settings), its
    number of epochs planned from its measured speed so that the whole run, validation
    included, fits in the budget.

Both train on the first 90 % of anna.txt with the same vocabulary; both are scored by the
same function: the mean cross-entropy (nats per character) over the held-out last 10 %, read
as 32 parallel rows with the state carried. Speed is characters per second of wall-clock
time, both loops in this process, the same threads.

    DLND_DATA=../shared/data python benchmarks/char_rnn_vs_course.py [--minutes 5,15]
    DLND_DATA=../shared/data python benchmarks/char_rnn_vs_course.py --parts sampling

``--parts`` runs only some of the measures (speed, budgets, sampling; default all): the
sampling comparison alone takes about a minute.

One table: validation loss after each budget; training characters/s of the two loops on
the course's architecture (dlnd with a 64-wide embedding in place of the one-hot input);
sampling characters/s of `dlnd sample` (one stream, the same with --bf16, and --n streams)
against the course's sampling loop, both with the course's architecture; and of `dlnd sample`
on char-rnn's default model (2 x 384, the one `dlnd run char-rnn` trains: the model trained
by the budgets when they ran, else an untrained one of that size) against the course's loop
on the course's model, the comparison a user of each sees.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlnd.data.readers import load_corpus
from dlnd.launch import execute
from dlnd.recipes import Recipe, get_recipe, resolve_config
from dlnd.runs import RunContext
from dlnd.sequence.corpus import ordered_windows, split_tail
from dlnd.sequence.language_model import LanguageModel
from dlnd.sequence.language_task import VALIDATION_ROWS, LanguageModelTask
from dlnd.sequence.recipes import build_language_model
from dlnd.sequence.sampling import load_language_model, write
from dlnd.text import CharVocabulary
from dlnd.trainer import TrainConfig, train

BATCH, SEQ_LEN, HIDDEN, LAYERS, DROPOUT, LR, CLIP = 128, 100, 512, 2, 0.5, 1e-3, 5.0
PRINT_EVERY = 10  # the course validates every 10 steps
PRIME, TOP_K = "Anna", 5
VALIDATION_SLICE = 2 * BATCH * SEQ_LEN  # held-out characters a validation pass is timed on


# ------------------------------------------------------------------------------ the course


def one_hot(batch: np.ndarray, size: int) -> np.ndarray:
    """(B, T) ids -> (B, T, size) float32 one-hot, as the course builds it in NumPy."""
    encoded = np.zeros((batch.size, size), dtype=np.float32)
    encoded[np.arange(batch.size), batch.flatten()] = 1.0
    return encoded.reshape(*batch.shape, size)


def course_batches(ids: np.ndarray, batch_size: int, seq_len: int) -> Iterator[tuple]:
    """The course's get_batches: the text as (batch_size, -1), windows of seq_len, targets
    shifted by one (the last target wraps to the row's next window)."""
    per_batch = batch_size * seq_len
    rows = ids[: len(ids) // per_batch * per_batch].reshape(batch_size, -1)
    for start in range(0, rows.shape[1], seq_len):
        x = rows[:, start : start + seq_len]
        y = np.zeros_like(x)
        y[:, :-1] = x[:, 1:]
        y[:, -1] = rows[:, (start + seq_len) % rows.shape[1]]
        yield x, y


class CourseCharRNN(nn.Module):
    """The course's CharRNN: one-hot (B, T, V) -> LSTM -> dropout -> Linear -> (B*T, V)."""

    def __init__(self, vocab_size: int, hidden: int = HIDDEN, layers: int = LAYERS):
        super().__init__()
        self.vocab_size, self.hidden, self.layers = vocab_size, hidden, layers
        self.lstm = nn.LSTM(vocab_size, hidden, layers, dropout=DROPOUT, batch_first=True)
        self.dropout = nn.Dropout(DROPOUT)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, hidden: tuple) -> tuple[torch.Tensor, tuple]:
        out, hidden = self.lstm(x, hidden)
        out = self.dropout(out).contiguous().view(-1, self.hidden)
        return self.fc(out), hidden

    def init_hidden(self, batch_size: int) -> tuple:
        return tuple(torch.zeros(self.layers, batch_size, self.hidden) for _ in range(2))


class CourseTrainer:
    """The course's training loop, stepped one batch at a time so it can stop at a budget."""

    def __init__(self, train_ids: np.ndarray, vocab_size: int, seed: int = 0):
        torch.manual_seed(seed)
        self.net = CourseCharRNN(vocab_size)
        self.ids, self.vocab_size = train_ids, vocab_size
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)
        self.criterion = nn.CrossEntropyLoss()
        self.batches: Iterator[tuple] = iter(())
        self.hidden = self.net.init_hidden(BATCH)

    def step(self) -> None:
        batch = next(self.batches, None)
        if batch is None:  # a new epoch: a fresh hidden state
            self.batches = course_batches(self.ids, BATCH, SEQ_LEN)
            self.hidden = self.net.init_hidden(BATCH)
            batch = next(self.batches)
        x, y = batch
        inputs = torch.from_numpy(one_hot(x, self.vocab_size))
        targets = torch.from_numpy(y).long()
        self.hidden = tuple(each.data for each in self.hidden)
        self.net.train()
        self.net.zero_grad()
        output, self.hidden = self.net(inputs, self.hidden)
        loss = self.criterion(output, targets.reshape(BATCH * SEQ_LEN))
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), CLIP)
        self.optimizer.step()

    def validation_pass(self, val_ids: np.ndarray) -> float:
        """The course's validation pass (what it runs every PRINT_EVERY steps)."""
        self.net.eval()
        hidden, losses = self.net.init_hidden(BATCH), []
        with torch.no_grad():
            for x, y in course_batches(val_ids, BATCH, SEQ_LEN):
                inputs = torch.from_numpy(one_hot(x, self.vocab_size))
                output, hidden = self.net(inputs, hidden)
                losses.append(self.criterion(output, torch.from_numpy(y).long().view(-1)).item())
        return float(np.mean(losses))


def course_sample(net: CourseCharRNN, vocab: CharVocabulary, size: int, seed: int) -> str:
    """The course's sample(): feed the prime, then one character at a time: one-hot encode,
    forward, softmax, top-k, np.random.choice."""
    rng = np.random.default_rng(seed)
    net.eval()
    hidden = net.init_hidden(1)
    chars = list(PRIME)

    def predict(char: str, hidden: tuple) -> tuple[str, tuple]:
        x = one_hot(np.array([[vocab.encode(char)[0]]]), net.vocab_size)
        hidden = tuple(each.data for each in hidden)
        out, hidden = net(torch.from_numpy(x), hidden)
        p = F.softmax(out, dim=1).data
        p, top = p.topk(TOP_K)
        top, p = top.numpy().squeeze(), p.numpy().squeeze()
        return vocab.tokens[rng.choice(top, p=p / p.sum())], hidden

    for char in PRIME:
        char_out, hidden = predict(char, hidden)
    chars.append(char_out)
    for _ in range(size - 1):
        char_out, hidden = predict(chars[-1], hidden)
        chars.append(char_out)
    return "".join(chars)


# ------------------------------------------------------------------------------ shared scoring


def held_out_loss(logits_of: Callable, val_ids: torch.Tensor) -> float:
    """Mean cross-entropy over the held-out ids, 32 rows, state carried: the one score used
    for both models. ``logits_of(x (N, T), state) -> (logits (N, T, V), state)``."""
    state, total, count = None, 0.0, 0
    with torch.no_grad():
        for x, y in ordered_windows(val_ids, VALIDATION_ROWS, SEQ_LEN):
            logits, state = logits_of(x, state)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
    return total / count


def course_logits(net: CourseCharRNN) -> Callable:
    net.eval()

    def logits_of(x: torch.Tensor, state: tuple | None) -> tuple:
        state = state or net.init_hidden(len(x))
        out, state = net(torch.from_numpy(one_hot(x.numpy(), net.vocab_size)), state)
        return out.view(*x.shape, -1), state

    return logits_of


def dlnd_logits(model: LanguageModel) -> Callable:
    model.eval()

    def logits_of(x: torch.Tensor, state: tuple | None) -> tuple:
        logits, state, _ = model(x, state)
        return logits, state

    return logits_of


# ------------------------------------------------------------------------------ measurements


class Windows(LanguageModelTask):
    """dlnd's task on the first ``steps`` windows of each epoch (a timed slice of an epoch)."""

    def __init__(self, *args, steps: int, validate: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps, self.validate = steps, validate
        if not validate:
            self.monitor = None  # nothing to watch: keep the last weights

    def train_batches(self, epoch, dist):
        return super().train_batches(epoch, dist)[: self.steps]

    def eval_batches(self, dist):
        return super().eval_batches(dist) if self.validate else None


def dlnd_loop_seconds(data: dict, steps: int, validate: bool) -> float:
    """Wall time of dlnd's loop for ``steps`` updates (one epoch) of the course's sizes."""
    torch.manual_seed(0)
    model = LanguageModel(len(data["vocab"]), 64, HIDDEN, LAYERS, DROPOUT)
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=LR, clip_grad=CLIP, device="cpu")
    task = Windows(
        model, data["train"], data["val"], cfg, seq_len=SEQ_LEN, unit="char", steps=steps,
        validate=validate,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Recipe(name="speed", summary="", dataset="", target="", run=lambda ctx: {})
        ctx = RunContext(recipe=recipe, cfg={"seed": 0}, run_dir=Path(tmp))
        started = time.perf_counter()
        train(ctx, task, cfg)
        return time.perf_counter() - started


def training_speed(data: dict, steps: int) -> dict[str, float]:
    """Characters/s of both loops on the course's architecture: training steps alone, and
    with each loop's own validation cadence (course: every 10 steps; dlnd: every epoch)."""
    chars = steps * BATCH * SEQ_LEN
    course = CourseTrainer(data["train"].numpy(), len(data["vocab"]))
    course.step()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        course.step()
    course_steps = time.perf_counter() - started
    # Each loop's validation pass is timed on the same slice of the held-out text and
    # scaled to the whole of it.
    part = {**data, "val": data["val"][:VALIDATION_SLICE]}
    scale = len(data["val"]) / len(part["val"])
    started = time.perf_counter()
    course.validation_pass(part["val"].numpy())
    course_validation = (time.perf_counter() - started) * scale
    dlnd_loop_seconds(data, 2, validate=False)  # warm-up
    dlnd_steps = dlnd_loop_seconds(data, steps, validate=False)
    dlnd_validation = scale * (
        dlnd_loop_seconds(part, 1, validate=True) - dlnd_loop_seconds(part, 1, validate=False)
    )
    epoch_steps = len(data["train"]) // (BATCH * SEQ_LEN)
    per_step_course = course_steps / steps + course_validation / PRINT_EVERY
    per_step_dlnd = dlnd_steps / steps + max(dlnd_validation, 0.0) / epoch_steps
    return {
        "course_steps": chars / course_steps,
        "dlnd_steps": chars / dlnd_steps,
        "course_with_validation": BATCH * SEQ_LEN / per_step_course,
        "dlnd_with_validation": BATCH * SEQ_LEN / per_step_dlnd,
    }


def training_flops_per_char(inputs: int, vocab: int) -> float:
    """Floating-point operations one training character costs the course's architecture,
    counting the matrix products only (multiply + add = 2): per LSTM layer 4H (I + H)
    multiply-adds, the output layer H V; the backward pass costs twice the forward one
    (the gradients of the inputs and of the weights)."""
    multiply_adds = 4 * HIDDEN * (inputs + HIDDEN) + 4 * HIDDEN * (2 * HIDDEN) * (LAYERS - 1)
    multiply_adds += HIDDEN * vocab
    return 3 * 2 * multiply_adds


def matmul_gflops(dtype: torch.dtype, repeats: int = 5) -> float:
    """This machine's best GFLOP/s for a product of the size a training step is made of
    (12,800 x 512 times 512 x 2,048: a batch's characters through one layer's gates)."""
    a = torch.randn(BATCH * SEQ_LEN, HIDDEN, dtype=dtype)
    b = torch.randn(HIDDEN, 4 * HIDDEN, dtype=dtype)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def arithmetic_ceiling(data: dict, speed: dict[str, float]) -> dict[str, float]:
    """What bounds the training speed: each loop's GFLOP/s against the machine's matrix
    product in float32 and bfloat16 (the faster of the two is as fast as a step can go)."""
    vocab = len(data["vocab"])
    return {
        "course_gflops": speed["course_steps"] * training_flops_per_char(vocab, vocab) / 1e9,
        "dlnd_gflops": speed["dlnd_steps"] * training_flops_per_char(64, vocab) / 1e9,
        "fp32_gflops": matmul_gflops(torch.float32),
        "bf16_gflops": matmul_gflops(torch.bfloat16),
    }


def course_after(data: dict, budgets_s: list[float]) -> tuple[dict[float, float], CourseTrainer]:
    """The course's held-out loss after each budget of training time (its validation passes
    and this scoring are not charged to the budget)."""
    course = CourseTrainer(data["train"].numpy(), len(data["vocab"]))
    losses, spent = {}, 0.0
    for budget in sorted(budgets_s):
        while spent < budget:
            started = time.perf_counter()
            course.step()
            spent += time.perf_counter() - started
        losses[budget] = held_out_loss(course_logits(course.net), data["val"])
        print(f"  course after {budget / 60:.1f} min: {losses[budget]:.4f}", flush=True)
    return losses, course


def dlnd_epoch_seconds(data: dict, cfg: dict) -> float:
    """A short timed stretch of char-rnn's default training -> the estimated epoch time."""
    model = char_rnn_model(data, cfg)
    train_cfg = TrainConfig.from_cfg(cfg, epochs=1, device="cpu")
    steps = 40
    task = Windows(
        model, data["train"], data["val"], train_cfg, seq_len=cfg["seq_len"], unit="char",
        steps=steps, validate=False,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Recipe(name="plan", summary="", dataset="", target="", run=lambda ctx: {})
        ctx = RunContext(recipe=recipe, cfg={"seed": 0}, run_dir=Path(tmp))
        started = time.perf_counter()
        train(ctx, task, train_cfg)
        per_step = (time.perf_counter() - started) / steps
    steps_per_epoch = len(data["train"]) // (cfg["batch_size"] * cfg["seq_len"])
    # + validation: a ninth as many characters, forward only (about a third of a step's work);
    # + 5 % for the epoch's sample and checkpoint
    return per_step * steps_per_epoch * (1 + 1 / 27) * 1.05


def dlnd_after(data: dict, budget_s: float, data_dir: str | None) -> dict:
    """char-rnn with its defaults and as many epochs as its measured speed fits in the
    budget; the held-out loss of its kept model, and how long the run took."""
    recipe = get_recipe("char-rnn")
    flags = {"train_limit": len(data["train"]), "device": "cpu", "data_dir": data_dir}
    epochs = max(1, int(budget_s // dlnd_epoch_seconds(data, resolve_config(recipe, flags))))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(recipe, {**flags, "epochs": epochs, "out": tmp})
        run_dir = Path(tmp) / "char-rnn"
        run_dir.mkdir()
        started = time.perf_counter()
        execute(recipe, cfg, run_dir=run_dir)
        seconds = time.perf_counter() - started
        model, vocab = load_language_model(run_dir)
    assert vocab == data["vocab"], "char-rnn built another vocabulary"
    loss = held_out_loss(dlnd_logits(model), data["val"])
    print(f"  dlnd after {seconds / 60:.1f} min ({epochs} epochs): {loss:.4f}", flush=True)
    return {"loss": loss, "seconds": seconds, "epochs": epochs, "model": model}


def char_rnn_model(data: dict, cfg: dict) -> LanguageModel:
    """An untrained model of the size char-rnn's ``cfg`` gives, built as the recipe builds it."""
    torch.manual_seed(0)
    return build_language_model(cfg, {"vocabulary": data["vocab"].to_dict()})


def sampling_speed(
    course_net: CourseCharRNN,
    own_model: LanguageModel,
    data: dict,
    length: int,
    streams: int,
    repeats: int,
) -> dict[str, float]:
    """Characters/s written by the course's sampling loop and by dlnd's (one stream, and
    ``streams`` streams as one batch), both with the course's architecture, and by dlnd's
    with ``own_model`` (char-rnn's default size): the median of ``repeats`` rounds, each
    timing them in turn so that the load of a shared machine falls on all of them alike;
    ``*_ratio`` is the median of the rounds' dlnd / course."""
    torch.manual_seed(0)
    model = LanguageModel(len(data["vocab"]), 64, HIDDEN, LAYERS, DROPOUT)
    vocab = data["vocab"]

    def chars_per_second(chars: int, fn: Callable[..., object], *args, **kwargs) -> float:
        started = time.perf_counter()
        fn(*args, **kwargs)
        return chars / (time.perf_counter() - started)

    course_sample(course_net, vocab, 20, 0)  # warm-up
    write(model, vocab, PRIME, 20, top_k=TOP_K)
    rounds = []
    for seed in range(repeats):
        course = chars_per_second(length, course_sample, course_net, vocab, length, seed)
        one = chars_per_second(length, write, model, vocab, PRIME, length, top_k=TOP_K, seed=seed)
        bf16 = chars_per_second(
            length, write, model, vocab, PRIME, length, top_k=TOP_K, seed=seed, bf16=True
        )
        many = chars_per_second(
            streams * length, write, model, vocab, PRIME, length, top_k=TOP_K, seed=seed,
            streams=streams,
        )  # fmt: skip
        own = chars_per_second(
            length, write, own_model, vocab, PRIME, length, top_k=TOP_K, seed=seed
        )
        print(
            f"  course {course:,.0f}, dlnd {one:,.0f}, --bf16 {bf16:,.0f}, {streams} streams "
            f"{many:,.0f}, default model {own:,.0f}",
            flush=True,
        )
        rounds.append(
            {"course": course, "dlnd_one": one, "dlnd_one_bf16": bf16, "dlnd_many": many,
             "dlnd_default": own}
        )  # fmt: skip
    medians = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
    for key in ("dlnd_one", "dlnd_one_bf16", "dlnd_many", "dlnd_default"):
        medians[f"{key}_ratio"] = float(np.median([r[key] / r["course"] for r in rounds]))
    return medians


def load_data(data_dir: str | None, train_chars: int) -> dict:
    """anna.txt as char-rnn splits and encodes it; ``train_chars`` > 0 keeps only the start
    of the training text (for a short check of this script)."""
    train_text, val_text = split_tail(load_corpus("anna", data_dir), 0.1)
    vocab = CharVocabulary.build(train_text)
    return {
        "vocab": vocab,
        "train": torch.from_numpy(vocab.encode(train_text))[: train_chars or None],
        "val": torch.from_numpy(vocab.encode(val_text)),
    }


PARTS = ("speed", "budgets", "sampling")


def parse_parts(text: str) -> set[str]:
    """'speed,sampling' -> the parts to run; an unknown name stops the script."""
    parts = {part.strip() for part in text.split(",") if part.strip()}
    if not parts or parts - set(PARTS):
        raise SystemExit(f"--parts takes names from {', '.join(PARTS)}, got {text!r}.")
    return parts


def print_table(args: argparse.Namespace, results: dict) -> None:
    """One table of every measure that was run."""
    print(
        f"\nchar-rnn vs the course on anna.txt: {os.cpu_count()} CPU cores "
        f"({torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"{platform.machine()}, {time.strftime('%Y-%m-%d')}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print("| measure | course | dlnd | dlnd / course |\n|---|---:|---:|---:|")
    budgets = results.get("budgets")
    for budget, (course_loss, ours) in sorted(budgets.items()) if budgets else ():
        print(
            f"| held-out loss (nats/char) after {budget / 60:g} min (dlnd: {ours['epochs']} "
            f"epochs, {ours['seconds'] / 60:.1f} min) | {course_loss:.4f} | "
            f"{ours['loss']:.4f} | {ours['loss'] - course_loss:+.4f} |"
        )
    speed, sampling = results.get("speed"), results.get("sampling")
    if speed:
        for name, course_key, dlnd_key in (
            ("training chars/s, steps only", "course_steps", "dlnd_steps"),
            ("training chars/s, with each loop's validation", "course_with_validation",
             "dlnd_with_validation"),
        ):  # fmt: skip
            ratio = speed[dlnd_key] / speed[course_key]
            print(f"| {name} | {speed[course_key]:,.0f} | {speed[dlnd_key]:,.0f} | {ratio:.2f}x |")
        ceiling = speed["ceiling"]
        fastest = max(ceiling["fp32_gflops"], ceiling["bf16_gflops"])
        course_gflops, dlnd_gflops = ceiling["course_gflops"], ceiling["dlnd_gflops"]
        print(
            f"| training GFLOP/s (matrix products) | {course_gflops:.0f} | {dlnd_gflops:.0f} | "
            f"{dlnd_gflops / course_gflops:.2f}x |"
        )
    if sampling:
        for name, key in (
            (f"sampling chars/s, one stream (median of {args.sample_repeats})", "dlnd_one"),
            ("sampling chars/s, one stream, dlnd sample --bf16", "dlnd_one_bf16"),
            (f"sampling chars/s, dlnd {args.streams} streams", "dlnd_many"),
            (
                "sampling chars/s, one stream, `dlnd sample` on char-rnn's default model "
                f"({sampling['default_size']})",
                "dlnd_default",
            ),
        ):
            print(
                f"| {name} | {sampling['course']:,.0f} | {sampling[key]:,.0f} | "
                f"{sampling[key + '_ratio']:.2f}x |"
            )
    if speed:  # after the table, which a line of text would cut in two
        print(
            f"\nThis machine's matrix product: float32 {ceiling['fp32_gflops']:.0f} GFLOP/s, "
            f"bfloat16 {ceiling['bf16_gflops']:.0f} GFLOP/s. A loop that spent all its time in "
            f"the faster of these would train {fastest / course_gflops:.2f}x the "
            "course's characters/s on its architecture."
        )
    if budgets:
        bits = {b: ours["loss"] / math.log(2) for b, (_, ours) in budgets.items()}
        print(
            "dlnd bits per character: "
            + ", ".join(f"{b / 60:g} min {v:.3f}" for b, v in bits.items())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"what to run (default {','.join(PARTS)})"
    )
    parser.add_argument("--minutes", default="5,15", help="training budgets (default 5,15)")
    parser.add_argument("--speed-steps", type=int, default=20, help="steps timed per loop")
    parser.add_argument("--sample-length", type=int, default=1000, help="characters per sample")
    parser.add_argument("--sample-repeats", type=int, default=5, help="rounds of sampling timed")
    parser.add_argument("--streams", type=int, default=32, help="dlnd streams sampled at once")
    parser.add_argument(
        "--threads", type=int, default=0, help="PyTorch threads of both loops (0 = its default)"
    )
    parser.add_argument("--data-dir", default=None, help="data folder (default $DLND_DATA)")
    parser.add_argument(
        "--train-chars", type=int, default=0, help="train on this many characters (0 = all)"
    )
    args = parser.parse_args()
    parts = parse_parts(args.parts)
    if args.threads:  # on a machine others share, one thread each waits less for a core
        torch.set_num_threads(args.threads)
    budgets = [float(m) * 60 for m in args.minutes.split(",")]
    data = load_data(args.data_dir, args.train_chars)
    results: dict = {}
    if "speed" in parts:
        print("training speed on the course's architecture ...", flush=True)
        results["speed"] = training_speed(data, args.speed_steps)
        results["speed"]["ceiling"] = arithmetic_ceiling(data, results["speed"])
    # Sampling costs the same work per character whatever the weights: without the budgets
    # the course's loop samples from an untrained network.
    course_net, own_model = CourseCharRNN(len(data["vocab"])), None
    if "budgets" in parts:
        print("budgets: the course ...", flush=True)
        course_losses, course = course_after(data, budgets)
        course_net = course.net
        print("budgets: char-rnn ...", flush=True)
        ours = {budget: dlnd_after(data, budget, args.data_dir) for budget in sorted(budgets)}
        results["budgets"] = {b: (course_losses[b], ours[b]) for b in budgets}
        own_model = ours[max(budgets)]["model"]
    if "sampling" in parts:
        print("sampling ...", flush=True)
        if own_model is None:  # no budget trained one: an untrained one of the default size
            defaults = resolve_config(get_recipe("char-rnn"), {"device": "cpu"})
            own_model = char_rnn_model(data, defaults)
        results["sampling"] = sampling_speed(
            course_net, own_model, data, args.sample_length, args.streams, args.sample_repeats
        )
        results["sampling"]["default_size"] = f"{own_model.layers} x {own_model.hidden_size}"
    print_table(args, results)


if __name__ == "__main__":
    main()
