"""Export the text models to ONNX: a language model's single step, a sentence classifier's
padded batch. Each export is checked against PyTorch before its card is written.

Language model (``task: text-generation``)::

    tokens (N,) int64, h (L, N, H), c (L, N, H) -> logits (N, V), h_next, c_next

One step of :meth:`LanguageModel.step`; the server feeds the prime through it token by
token and samples the continuation in NumPy. The check runs a random prime through the
ONNX step, token by token, and through PyTorch's whole-sequence ``nn.LSTM`` (the path
:meth:`LanguageModel.generate` reads the prime with): the scores at every position and the
final state must agree.

Sentence classifier (``task: text-classification``)::

    ids (N, T) int64 (each sentence from the left, then padding), lengths (N,) -> logits (N, C)

The LSTM reads the padded batch when exported (see :mod:`dlnd.sequence.classifiers`); the
check compares it with the packed model PyTorch trains and evaluates, on sentences of
random lengths in one padded batch.

Both folders hold the vocabulary as ``vocabulary.json`` (:mod:`dlnd.text`), so the server
tokenises without PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlnd.errors import UserError
from dlnd.io import atomic_write, atomic_write_text
from dlnd.sequence.classifiers import SentenceClassifier
from dlnd.sequence.language_model import LanguageModel
from dlnd.serve.card import CARD_FILE, CARD_VERSION, file_facts, portable_config, utc_stamp
from dlnd.serve.export import TOLERANCE, export_versions
from dlnd.serve.extras import import_extra
from dlnd.text.vocabulary import Vocabulary, never_written, vocabulary_from_dict

MODEL_FILE = "model.onnx"
VOCABULARY_FILE = "vocabulary.json"
STEP_INPUTS, STEP_OUTPUTS = ("tokens", "h", "c"), ("logits", "h_next", "c_next")
SENTENCE_INPUTS, SENTENCE_OUTPUTS = ("ids", "lengths"), ("logits",)
CHECK_PRIME = 24  # tokens of the random prime the language-model check reads
CHECK_SENTENCES = 6  # sentences of the classifier check, of random lengths up to...
CHECK_STEPS = 17  # ...this many tokens


class LanguageModelStep(nn.Module):
    """:meth:`LanguageModel.step` with the state as two tensors (ONNX takes no tuples)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (N,), h and c (layers, N, hidden) -> logits (N, V), next h, next c."""
        logits, (h, c) = self.model.step(tokens, (h, c))
        return logits, h, c


def write_onnx_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: tuple[tuple[str, ...], tuple[str, ...]],
    dynamic_shapes: tuple[dict[int, Any], ...],
    path: Path,
) -> None:
    """Export ``module`` called on ``example`` to ONNX at ``path`` (atomically), with the
    given (input names, output names) and free dimensions."""
    import_extra("onnxscript")  # the exporter's dependency; missing -> how to install it
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            example,
            input_names=list(names[0]),
            output_names=list(names[1]),
            dynamic_shapes=dynamic_shapes,
            external_data=False,
            verbose=False,
        )
    atomic_write(path, lambda tmp: program.save(str(tmp), external_data=False))


def onnx_session(path: Path) -> Callable[..., list[np.ndarray]]:
    """``run(**inputs)`` -> the outputs of the ONNX graph at ``path``, in order."""
    from dlnd.serve.runtime import OnnxModel

    session = OnnxModel(path).session
    return lambda **inputs: session.run(None, inputs)


def check_difference(difference: float, what: str) -> float:
    if not difference <= TOLERANCE:
        raise RuntimeError(
            f"The exported {what} differs from PyTorch by {difference:.2e} (> {TOLERANCE:g})."
        )
    return difference


# ---- language models ------------------------------------------------------------------------


def export_language_model(model: LanguageModel, vocab: Vocabulary, path: Path) -> float:
    """Write the step of ``model`` to ``path``; return its largest difference from PyTorch."""
    model = model.eval().float().cpu()
    batch = torch.export.Dim("batch", min=1, max=65536)
    # h and c must be two tensors: the exporter would make one input of an aliased pair.
    h, c = (torch.zeros(model.layers, 2, model.hidden_size) for _ in range(2))
    write_onnx_graph(
        LanguageModelStep(model),
        (torch.zeros(2, dtype=torch.long), h, c),
        (STEP_INPUTS, STEP_OUTPUTS),
        ({0: batch}, {1: batch}, {1: batch}),
        path,
    )
    generator = torch.Generator().manual_seed(0)
    prime = torch.randint(0, len(vocab), (1, CHECK_PRIME), generator=generator)
    with torch.no_grad():
        expected, (h_expected, c_expected), _ = model(prime)
    run = onnx_session(path)
    h = c = np.zeros((model.layers, 1, model.hidden_size), np.float32)
    difference = 0.0
    for t in range(CHECK_PRIME):
        logits, h, c = run(tokens=prime[:, t].numpy(), h=h, c=c)
        difference = max(difference, float(np.abs(logits - expected[:, t].numpy()).max()))
    for state, state_expected in ((h, h_expected), (c, c_expected)):
        difference = max(difference, float(np.abs(state - state_expected.numpy()).max()))
    return check_difference(difference, "language model")


def language_model_card(meta: dict[str, Any], vocab: Vocabulary, model: LanguageModel) -> dict:
    """What a card says about a language model besides the common facts."""
    config = meta.get("config", {})
    return {
        "architecture": {
            "kind": "lstm-language-model",
            "layers": model.layers,
            "hidden_size": model.hidden_size,
            "vocabulary_size": len(vocab),
            "adaptive_softmax": bool(meta["info"].get("cutoffs")),
        },
        "vocabulary": VOCABULARY_FILE,
        "input": {"unit": vocab.level, "vocabulary_size": len(vocab)},
        "state": {"layers": model.layers, "hidden_size": model.hidden_size},
        "never_written": list(never_written(vocab)),
        "defaults": {
            "prime": config.get("prime"),
            "temperature": config.get("temperature"),
            "top_k": config.get("top_k") or None,
        },
        "signature": {
            "inputs": "tokens (N,) int64, h (layers, N, hidden) float32, c (same)",
            "outputs": "logits (N, V): softmax gives the next token's distribution; "
            "h_next, c_next: the state after the step",
        },
        "verification": {
            "inputs": f"a random prime of {CHECK_PRIME} tokens, read step by step (ONNX) "
            "and as one sequence (PyTorch nn.LSTM)",
        },
    }


# ---- sentence classifiers -------------------------------------------------------------------


class SentenceScores(nn.Module):
    """A sentence classifier with ``(ids, lengths)`` as positional inputs for the exporter."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (N, T), lengths (N,) -> logits (N, classes)."""
        return self.model(ids, lengths)


def random_sentences(
    vocab_size: int, padding_id: int, count: int, steps: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch ``ids (count, steps)`` of random real tokens, ``lengths (count,)``
    from 1 to ``steps`` (the longest always present)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (count,), generator=generator)
    lengths[0] = steps
    ids = torch.randint(0, vocab_size, (count, steps), generator=generator)
    ids[ids == padding_id] = (padding_id + 1) % vocab_size
    ids[torch.arange(steps).unsqueeze(0) >= lengths.unsqueeze(1)] = padding_id
    return ids, lengths


def export_sentence_classifier(model: SentenceClassifier, vocab: Vocabulary, path: Path) -> float:
    """Write the padded-batch classifier to ``path``; return its largest difference from
    the packed PyTorch model."""
    model = model.eval().float().cpu()
    batch = torch.export.Dim("batch", min=1, max=65536)
    steps = torch.export.Dim("steps", min=1, max=65536)
    # subword vectors folded into one table of whole word vectors: the same scores
    write_onnx_graph(
        SentenceScores(model.without_subwords()),
        random_sentences(len(vocab), vocab.padding_id, 3, 7, seed=0),
        (SENTENCE_INPUTS, SENTENCE_OUTPUTS),
        ({0: batch, 1: steps}, {0: batch}),
        path,
    )
    ids, lengths = random_sentences(
        len(vocab), vocab.padding_id, CHECK_SENTENCES, CHECK_STEPS, seed=1
    )
    with torch.no_grad():
        expected = model(ids, lengths).numpy()
    (logits,) = onnx_session(path)(ids=ids.numpy(), lengths=lengths.numpy())
    return check_difference(float(np.abs(logits - expected).max()), "sentence classifier")


def sentence_classifier_card(meta: dict[str, Any], vocab: Vocabulary, model: nn.Module) -> dict:
    """What a card says about a sentence classifier besides the common facts."""
    info = meta["info"]
    return {
        "architecture": info.get("model"),
        "classes": list(info["labels"]),
        "vocabulary": VOCABULARY_FILE,
        "input": {"unit": vocab.level, "vocabulary_size": len(vocab)},
        "signature": {
            "inputs": "ids (N, T) int64: each sentence's token ids from the left, then "
            "padding_id; lengths (N,) int64",
            "outputs": "logits (N, classes); softmax over the last axis gives probabilities",
        },
        "verification": {
            "inputs": f"{CHECK_SENTENCES} random sentences of 1 to {CHECK_STEPS} tokens in one "
            "padded batch (ONNX) and packed (PyTorch)",
        },
    }


# ---- the folder -----------------------------------------------------------------------------

# The checkpoint's task -> (the served task, export function, card details).
TEXT_EXPORTS = {
    "language-model": ("text-generation", export_language_model, language_model_card),
    "text-classification": (
        "text-classification",
        export_sentence_classifier,
        sentence_classifier_card,
    ),
}


def export_text_model(
    model: nn.Module,
    meta: dict[str, Any],
    out_dir: Path,
    *,
    name: str,
    final_metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/model.onnx``, ``vocabulary.json`` and ``model_card.json`` for a text
    model's checkpoint (``meta["info"]["task"]`` in :data:`TEXT_EXPORTS`); return the card."""
    info = meta.get("info") or {}
    task, export, details = TEXT_EXPORTS[info["task"]]
    try:
        vocab = vocabulary_from_dict(info.get("vocabulary"))
    except ValueError as err:
        raise UserError(f"The vocabulary stored with the model is damaged: {err}") from None
    out_dir = Path(out_dir)
    path = out_dir / MODEL_FILE
    difference = export(model, vocab, path)
    vocab.save(out_dir / VOCABULARY_FILE)
    extra = details(meta, vocab, model)
    card = {
        "card_version": CARD_VERSION,
        "name": name,
        "task": task,
        "recipe": meta.get("recipe"),
        "dataset": dataset,
        "format": "onnx",
        **file_facts(path),
        **extra,
        "metrics": {
            "final": final_metrics or {},
            "checkpoint": meta.get("metrics", {}),
            "epoch": meta.get("epoch"),
        },
        "config": portable_config(meta.get("config", {})),
        "versions": {"training": meta.get("versions", {}), "export": export_versions("onnx")},
        "verification": {
            **extra["verification"],
            "max_abs_diff_vs_pytorch": difference,
            "tolerance": TOLERANCE,
        },
        "exported": utc_stamp(),
    }
    atomic_write_text(out_dir / CARD_FILE, json.dumps(card, indent=2, default=float))
    return card
