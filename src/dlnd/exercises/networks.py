"""Checks for the recurrent-network, text and style-transfer lessons: one LSTM cell update,
the table of punctuation tokens of the TV-script model, and the Gram matrix of style
transfer. The references are :mod:`dlnd.scratch`'s LSTM, :mod:`dlnd.text`'s table and the
formula the course uses (the tests hold them against ``torch.nn.LSTMCell`` and
:func:`dlnd.pretrained.style.gram_matrix`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlnd.exercises.core import Case, Exercise, register
from dlnd.scratch.recurrent import LSTM
from dlnd.text import PUNCTUATION_TOKENS

# --- one LSTM cell update -------------------------------------------------------------------

GATE_NAMES = ("input", "forget", "cell candidate", "output")


def lstm_cell_reference(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray,
    b_hh: np.ndarray,
) -> np.ndarray:
    """One step of the scratch LSTM: ``(2, N, H)``, the new h stacked on the new c."""
    layer = LSTM(x.shape[1], h.shape[1], dtype=x.dtype.type)
    layer.params = {"W_ih": W_ih, "W_hh": W_hh, "b_ih": b_ih, "b_hh": b_hh}
    _, (h_new, c_new) = layer.forward(x[None], (h, c))
    return np.stack([h_new, c_new])


def lstm_cell_cases(rng: np.random.Generator) -> list[Case]:
    def case(what: str, n: int, inputs: int, hidden: int) -> Case:
        rows = 4 * hidden
        return Case(
            what,
            (
                rng.normal(size=(n, inputs)),
                rng.normal(size=(n, hidden)),
                rng.normal(size=(n, hidden)),
                rng.normal(0, 0.5, (rows, inputs)),
                rng.normal(0, 0.5, (rows, hidden)),
                rng.normal(0, 0.5, rows),
                rng.normal(0, 0.5, rows),
            ),
        )

    return [
        case("a batch of 3, 4 inputs, 5 hidden units", 3, 4, 5),
        case("one example, 2 inputs, 3 hidden units", 1, 2, 3),
        case("a batch of 8, 6 inputs, 2 hidden units", 8, 6, 2),
    ]


def _lstm_variant(args: tuple[np.ndarray, ...], order=(0, 1, 2, 3), candidate=np.tanh,
                  squash_memory=True) -> np.ndarray:  # fmt: skip
    """The cell update with a typical mistake: gates in another order, a sigmoid candidate,
    or h = o * c without the tanh."""
    x, h, c, W_ih, W_hh, b_ih, b_hh = args
    z = np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)
    i, f, g, o = (z[k] for k in order)
    gate = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731 - a one-line helper
    c_new = gate(f) * c + gate(i) * candidate(g)
    h_new = gate(o) * (np.tanh(c_new) if squash_memory else c_new)
    return np.stack([h_new, c_new])


def diagnose_lstm_cell(case: Case, got: Any, expected: np.ndarray) -> str | None:
    out = np.asarray(got, dtype=np.float64)
    if out.shape != expected.shape:
        return (
            f"on {case.what} it returned shape {out.shape}; return (h_new, c_new), each (N, H) "
            f"= {expected.shape[1:]}."
        )
    h_new, c_new = out
    if np.allclose(h_new, expected[1]) and np.allclose(c_new, expected[0]):
        return "h and c are swapped: return (h_new, c_new), the short-term memory first."
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    if np.allclose(out, _lstm_variant(case.args, candidate=sigmoid)):
        return (
            "the cell candidate g (the new information the learn gate lets in) uses tanh, "
            "values in (-1, 1), not a sigmoid: memory must be able to go down as well as up."
        )
    if np.allclose(out, _lstm_variant(case.args, squash_memory=False)):
        return "h_new = o * tanh(c_new): the use gate squashes the long-term memory first."
    if np.allclose(c_new, expected[1]) and not np.allclose(h_new, expected[0]):
        return "c_new is right; h_new is not: the output (use) gate scales tanh(c_new)."
    for order in ((1, 0, 2, 3), (0, 1, 3, 2), (0, 2, 1, 3), (3, 0, 1, 2)):
        if np.allclose(out, _lstm_variant(case.args, order=order)):
            named = ", ".join(GATE_NAMES[k] for k in order)
            return (
                f"the gates' rows are taken in the order {named}; the rows of W_ih and W_hh "
                f"hold them as {', '.join(GATE_NAMES)} (H rows each, PyTorch's order)."
            )
    return None


LSTM_CELL = register(
    Exercise(
        name="lstm_cell",
        signature="lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh) -> (h_new, c_new): x (N, I), h "
        "and c (N, H); W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,), their rows the input, "
        "forget, cell-candidate and output gates in that order (as torch.nn.LSTM).",
        reference=lstm_cell_reference,
        cases=lstm_cell_cases,
        diagnose=diagnose_lstm_cell,
        rtol=1e-6,
        atol=1e-9,
    )
)


def check_lstm_cell(fn: Callable[..., tuple[np.ndarray, np.ndarray]]) -> bool:
    """Check one LSTM step ``lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh) -> (h_new, c_new)``
    on random weights; print a hint when it is wrong. Returns True when it is right."""
    return LSTM_CELL.check(fn)


# --- punctuation tokens -----------------------------------------------------------------------


def token_lookup_reference() -> dict[str, str]:
    """dlnd's table (one right answer of many: any distinct names that are not words)."""
    return dict(PUNCTUATION_TOKENS)


def token_lookup_cases(rng: np.random.Generator) -> list[Case]:
    return [Case("no arguments", ())]


MARK_NAMES = {"\n": "the line break '\\n'", '"': "the quotation mark '\"'"}


def judge_token_lookup(case: Case, got: Any) -> str | None:
    if not isinstance(got, dict):
        return "return a dict {punctuation mark: token}, e.g. {'.': '||period||', ...}."
    missing = [mark for mark in PUNCTUATION_TOKENS if mark not in got]
    if missing:
        shown = ", ".join(MARK_NAMES.get(mark, repr(mark)) for mark in missing)
        return f"the dict has no token for {shown}; the course's table has 10 marks."
    for mark, token in got.items():
        if not isinstance(token, str) or not token:
            return f"the token for {mark!r} is {token!r}; each token is a non-empty string."
        if any(char.isspace() for char in token):
            return f"the token for {mark!r} holds a space: the text is split on spaces later."
        if any(other in token for other in PUNCTUATION_TOKENS):
            return (
                f"the token {token!r} holds a punctuation mark itself; replacing the marks "
                "one after the other would then break it up again."
            )
        if token.isalpha() and token.islower():
            return (
                f'the token {token!r} is also an ordinary word: a script saying "{token}" '
                "would read as the mark. Make tokens no word can be, e.g. '||period||'."
            )
    tokens = list(got.values())
    if len(set(tokens)) < len(tokens):
        twice = sorted({t for t in tokens if tokens.count(t) > 1})
        return f"{twice[0]!r} stands for two marks; every mark needs its own token."
    return None


TOKEN_LOOKUP = register(
    Exercise(
        name="token_lookup",
        signature='token_lookup() -> dict: each of the 10 marks . , " ; ! ? ( ) - and the '
        "line break mapped to its own token, a string with no space that no word could be.",
        reference=token_lookup_reference,
        cases=token_lookup_cases,
        judge=judge_token_lookup,
    )
)


def check_token_lookup(fn: Callable[[], dict[str, str]]) -> bool:
    """Check ``token_lookup() -> {mark: token}`` for the TV-script model; print a hint when
    it is wrong. Returns True when it is right."""
    return TOKEN_LOOKUP.check(fn)


# --- the Gram matrix ------------------------------------------------------------------------


def gram_matrix_reference(features: np.ndarray) -> np.ndarray:
    """The course's Gram matrix of (C, H, W) feature maps: F F^T with F = (C, H*W)."""
    flat = features.reshape(features.shape[0], -1)
    return flat @ flat.T


def gram_matrix_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("8 feature maps of 5 x 6", (rng.normal(size=(8, 5, 6)),)),
        Case("3 feature maps of 4 x 4", (rng.normal(size=(3, 4, 4)),)),
        Case("16 float32 feature maps of 2 x 9", (rng.normal(size=(16, 2, 9)).astype(np.float32),)),
    ]


def diagnose_gram_matrix(case: Case, got: Any, expected: np.ndarray) -> str | None:
    features = case.args[0].astype(np.float64)
    channels, positions = features.shape[0], features[0].size
    out = np.asarray(got, dtype=np.float64)
    if out.shape == (positions, positions):
        return (
            f"on {case.what} it is {positions} x {positions}, one row per position: the Gram "
            "matrix compares channels (C x C), so multiply F by its transpose as F @ F.T."
        )
    if out.shape != expected.shape:
        return None
    if np.allclose(out * positions, expected):
        return "it is divided by the number of positions H*W; the course's Gram matrix is not."
    if np.allclose(out * positions * channels, expected):
        return "it is divided by C*H*W; the course divides the style loss, not the Gram matrix."
    mixed = features.reshape(-1, channels).T  # a reshape that mixes channels and positions
    if np.allclose(out, mixed @ mixed.T):
        return (
            "the reshape mixes channels with positions: keep the channel axis first, "
            "F = features.reshape(C, H * W)."
        )
    if not np.allclose(out, out.T):
        return "a Gram matrix is symmetric (G[i, j] = G[j, i]); this one is not."
    return None


GRAM_MATRIX = register(
    Exercise(
        name="gram_matrix",
        signature="gram_matrix(features) -> G: features (C, H, W), one feature map per "
        "channel; G (C, C) with G[i, j] the sum over positions of map i times map j.",
        reference=gram_matrix_reference,
        cases=gram_matrix_cases,
        diagnose=diagnose_gram_matrix,
    )
)


def check_gram_matrix(fn: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Check ``gram_matrix(features: (C, H, W)) -> (C, C)``; print a hint when it is wrong.
    Returns True when it is right."""
    return GRAM_MATRIX.check(fn)
