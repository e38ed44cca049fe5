"""The recurrent from-scratch recipe: ``dlnd run vanishing-gradients``.

Two views of one problem, with the NumPy RNN and LSTM of ``dlnd.scratch``:

1. How far back the gradient reaches: ||dloss/dh_t|| for t = T .. 0 on one long sequence of
   the recall task (see ``dlnd.scratch.recall``), for an untrained RNN and LSTM.
2. What that means for learning: an RNN and an LSTM trained on the recall task for each
   delay k, and their accuracy against k.

The data are generated, so ``--embedded`` changes nothing; ``--quick`` trains fewer delays
for fewer epochs.
"""

from __future__ import annotations

import argparse

import numpy as np

from dlnd.config import finite_float, positive_int
from dlnd.recipes import Option, Recipe, register
from dlnd.runs import RunContext
from dlnd.scratch import plots
from dlnd.scratch.optimizers import Adam
from dlnd.scratch.recall import (
    LastStepClassifier,
    hidden_state_gradient_norms,
    open_forget_gates,
    recall_batch,
    train_recall,
)
from dlnd.scratch.recurrent import LSTM, RNN

SYMBOLS = 4  # symbols to recall from: chance is 1/4
GRADIENT_BATCH = 64  # sequences whose loss gives the gradient-norm curves
EVALUATION_BATCH = 1000  # held-out sequences per delay


def delay_list(value: str | tuple[int, ...]) -> tuple[int, ...]:
    """ "5,10,20" (or a tuple) -> (5, 10, 20): the delays to train on, positive, increasing."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        delays = sorted({positive_int(str(part).strip()) for part in parts if str(part).strip()})
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive whole numbers, got {value!r}"
        ) from None
    if not delays:
        raise argparse.ArgumentTypeError(f"expected at least one delay, got {value!r}")
    return tuple(delays)


def recall_model(kind: str, cfg: dict, forget_bias: float) -> LastStepClassifier:
    """An untrained RNN or LSTM ("rnn", "lstm") with its readout, from the run's seed."""
    size, seed = cfg["hidden_size"], cfg["seed"]
    if kind == "rnn":
        return LastStepClassifier(RNN(SYMBOLS + 1, size, seed=seed), SYMBOLS, seed=seed)
    cell = LSTM(SYMBOLS + 1, size, seed=seed)
    open_forget_gates(cell, forget_bias)
    return LastStepClassifier(cell, SYMBOLS, seed=seed)


# ------------------------------------------------------------------------------ gradients


def gradient_study(ctx: RunContext) -> dict[str, float]:
    """||dloss/dh_t|| of untrained networks on one long sequence; one figure, the ratios."""
    cfg = ctx.cfg
    length, bias = cfg["sequence_length"], cfg["forget_bias"]
    x, y = recall_batch(np.random.default_rng(cfg["seed"]), GRADIENT_BATCH, length - 1, SYMBOLS)
    lstm_name, torch_name = f"LSTM, forget bias {bias:g}", "LSTM, torch's init (forget bias 0)"
    models = {
        "RNN": recall_model("rnn", cfg, 0.0),
        lstm_name: recall_model("lstm", cfg, bias),
        torch_name: recall_model("lstm", cfg, 0.0),
    }
    curves = {name: hidden_state_gradient_norms(model, x, y) for name, model in models.items()}
    # log10 ||dL/dh_0|| / ||dL/dh_T||, and the mean factor by which one step back scales it
    log_ratio = {name: float(np.log10(c[0] / c[-1])) for name, c in curves.items()}
    per_step = {name: 10 ** (r / length) for name, r in log_ratio.items()}
    caption = (
        f"The loss is read from h_T after {length} steps. Each step back, the RNN's gradient "
        f"is multiplied by W_hh^T diag(1 - h_t^2): about x{per_step['RNN']:.2f} per step, so "
        f"that at t = 0 it is 1e{log_ratio['RNN']:.0f} of its size at t = T.\nThe LSTM's "
        "cell state carries it back "
        f"multiplied only by the forget gates f_t = sigmoid(z_f): x{per_step[lstm_name]:.2f} "
        f"per step with forget bias {bias:g}, x{per_step[torch_name]:.2f} with torch's "
        "initialisation (f_t near 0.5)."
    )
    ctx.save_figure(
        plots.gradient_norms_over_time(
            curves,
            f"Vanishing gradients: ||dloss/dh_t|| at initialisation, {length}-step sequence",
            caption,
            dashed=[torch_name],
        ),
        "gradient_norms",
    )
    ctx.info(caption.replace("\n", " "))
    return {
        "rnn_log10_gradient_ratio": log_ratio["RNN"],
        "lstm_log10_gradient_ratio": log_ratio[lstm_name],
        "lstm_torch_init_log10_gradient_ratio": log_ratio[torch_name],
        "rnn_gradient_factor_per_step": per_step["RNN"],
        "lstm_gradient_factor_per_step": per_step[lstm_name],
    }


# ------------------------------------------------------------------------------ recall task


def recall_study(ctx: RunContext) -> dict[str, float]:
    """Train an RNN and an LSTM per delay k; log every model's loss and held-out accuracy
    per epoch; plot the final accuracy against k."""
    cfg = ctx.cfg
    delays, seed = cfg["delays"], cfg["seed"]
    models, optimizers, streams = {}, {}, {}
    for kind in ("rnn", "lstm"):
        for delay in delays:
            model = recall_model(kind, cfg, cfg["forget_bias"])
            models[kind, delay] = model
            optimizers[kind, delay] = Adam(model.params, cfg["lr"])
            streams[kind, delay] = np.random.default_rng([seed, delay])  # same data for both
    held_out = {
        delay: recall_batch(
            np.random.default_rng([seed, delay, 1]), EVALUATION_BATCH, delay, SYMBOLS
        )
        for delay in delays
    }
    accuracy: dict[tuple[str, int], float] = {}
    for epoch in range(1, cfg["epochs"] + 1):
        row: dict[str, float] = {"epoch": epoch}
        for (kind, delay), model in models.items():
            row[f"{kind}_k{delay}_loss"] = train_recall(
                model,
                streams[kind, delay],
                max_delay=delay,
                steps=cfg["steps_per_epoch"],
                batch_size=cfg["batch_size"],
                optimizer=optimizers[kind, delay],
            )
            accuracy[kind, delay] = model.accuracy(*held_out[delay])
            row[f"{kind}_k{delay}_accuracy"] = accuracy[kind, delay]
        ctx.log_epoch(row)
        ctx.info(
            f"epoch {epoch}: accuracy at k = "
            + ", ".join(
                f"{d}: RNN {accuracy['rnn', d]:.2f} LSTM {accuracy['lstm', d]:.2f}" for d in delays
            )
        )
    ctx.save_figure(
        plots.accuracy_by_delay(
            delays,
            {
                "RNN": [accuracy["rnn", d] for d in delays],
                "LSTM": [accuracy["lstm", d] for d in delays],
            },
            chance=1 / SYMBOLS,
            title="Recall the marked symbol after k steps (trained on delays 1..k)",
        ),
        "recall_accuracy",
    )
    return {f"{kind}_accuracy_k{delay}": value for (kind, delay), value in accuracy.items()}


def run_vanishing_gradients(ctx: RunContext) -> dict[str, float]:
    return gradient_study(ctx) | recall_study(ctx)


VANISHING_GRADIENTS = register(
    Recipe(
        name="vanishing-gradients",
        summary="Why plain RNNs forget: gradients through time and a recall task, RNN vs LSTM.",
        dataset="generated recall sequences",
        target="the LSTM recalls at the longest delay, the RNN does not (chance 0.25)",
        run=run_vanishing_gradients,
        framework="numpy",
        options=(
            Option("--hidden-size", positive_int, 16, "hidden units of each RNN and LSTM"),
            Option("--delays", delay_list, (5, 10, 15, 20, 30, 40, 60, 80), "delays k to train on"),
            Option(
                "--sequence-length",
                positive_int,
                100,
                "steps of the sequence for the gradient norms",
            ),
            Option("--forget-bias", finite_float, 2.0, "added to the LSTM's forget-gate bias"),
            Option(
                "--steps-per-epoch", positive_int, 100, "training steps (fresh batches) per epoch"
            ),
        ),
        defaults={"epochs": 6, "batch_size": 32, "lr": 0.01},
        quick={"epochs": 4, "delays": (5, 20, 40)},
    )
)
