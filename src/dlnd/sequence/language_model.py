"""A recurrent language model: it reads tokens and predicts the next one, and it writes text.

    tokens (N, T) -> embedding (N, T, E) -> LSTM layers (N, T, H) -> dropout -> linear (N, T, V)

The scores at step t rate every token of the vocabulary as the token at t + 1; training
minimises the cross-entropy between them and the text shifted by one (in nats per token;
divided by ln 2 it is the bits per character of a character model, exp of it the
perplexity of a word model). The LSTM's state ``(h, c)`` after a window is the memory of
everything read so far: feeding it back in with the next window lets the model use context
older than one window (truncated backpropagation through time: the state is carried, the
gradient is not).

Writing text is sampling one token at a time from the predicted distribution and feeding it
back in (:meth:`LanguageModel.generate`). The distribution is softmax(logits / temperature):
a temperature below 1 sharpens it (safer, more repetitive text), above 1 flattens it; top-k
keeps only the k likeliest tokens. N streams are sampled at once, as one batch.

With a large vocabulary (tens of thousands of words) the output layer costs more than the
LSTM. ``cutoffs`` then give the model an adaptive softmax (Grave et al. 2017): the frequent
words (ids below the first cutoff; a vocabulary numbers its tokens by frequency) and one
entry per rarer cluster are scored by a full layer, the rarer words only inside their
cluster, through a smaller projection. Most tokens are frequent, so the loss costs a few
times less; the distribution over all words is still exact (``log_prob``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, N, H)


class Output(NamedTuple):
    """What :meth:`LanguageModel.forward` returns: scores (N, T, V) whose softmax is the
    next-token distribution, the state after the last step, and the mean cross-entropy in
    nats when targets were given (else ``None``). An adaptive softmax scores with
    log-probabilities, and computes the loss without them (then ``logits`` is ``None``)."""

    logits: torch.Tensor | None
    state: State
    loss: torch.Tensor | None


class LanguageModel(nn.Module):
    """An LSTM language model over a vocabulary of ``vocab_size`` tokens.

    ``dropout`` applies between LSTM layers and before the output layer (training only);
    ``cutoffs`` (increasing ids) make the output an adaptive softmax, () a linear layer.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 64,
        hidden_size: int = 512,
        layers: int = 2,
        dropout: float = 0.0,
        cutoffs: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        # the adaptive softmax projects cluster k's features to hidden_size / 4^k dimensions
        if cutoffs and hidden_size < 4 ** len(cutoffs):
            raise ValueError(
                f"an adaptive softmax with {len(cutoffs)} rare clusters needs hidden_size >= "
                f"{4 ** len(cutoffs)}, got {hidden_size}."
            )
        self.vocab_size, self.hidden_size, self.layers = vocab_size, hidden_size, layers
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(
            embedding_size,
            hidden_size,
            layers,
            dropout=dropout if layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(dropout)
        self.head: nn.Module = (
            nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, list(cutoffs), div_value=4.0)
            if cutoffs
            else nn.Linear(hidden_size, vocab_size)
        )
        self.open_forget_gates()

    def open_forget_gates(self, bias: float = 1.0) -> None:
        """Start every forget gate's bias at ``bias`` so that f_t = sigmoid(z_f) starts near
        0.73 instead of 0.5: the cell state, and its gradient, then survive many steps from
        the first update (Jozefowicz, Zaremba & Sutskever 2015). Rows H..2H of torch's gate
        order (input, forget, cell candidate, output) are the forget gate's."""
        H = self.hidden_size
        with torch.no_grad():
            for layer in range(self.layers):
                getattr(self.lstm, f"bias_ih_l{layer}")[H : 2 * H].fill_(bias)
                getattr(self.lstm, f"bias_hh_l{layer}")[H : 2 * H].zero_()

    def forward(
        self,
        tokens: torch.Tensor,
        state: State | None = None,
        targets: torch.Tensor | None = None,
    ) -> Output:
        """tokens (N, T) int64, state from the previous window or ``None`` (zeros),
        targets (N, T) the next tokens -> :class:`Output`."""
        outputs, state = self.lstm(self.embedding(tokens), state)
        features = self.dropout(outputs)
        if targets is not None and isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            loss = self.head(features.flatten(0, 1), targets.flatten()).loss
            return Output(None, state, loss)
        logits = self.scores(features)
        loss = None
        if targets is not None:
            # in float32 even under bf16 autocast: the log-softmax of many classes needs it
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return Output(logits, state, loss)

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """LSTM outputs (..., H) -> next-token scores (..., V): logits of the linear layer,
        or the adaptive softmax's log-probabilities (softmax of either is the distribution)."""
        if isinstance(self.head, nn.AdaptiveLogSoftmaxWithLoss):
            flat = self.head.log_prob(features.reshape(-1, features.shape[-1]))
            return flat.view(*features.shape[:-1], -1)
        return self.head(features)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step for one token per stream: tokens (N,) -> logits (N, V), new state.

        The same function as ``forward`` on windows of length 1, with each LSTM layer
        written out gate by gate (:class:`OneTokenSteps`, the step :meth:`generate` repeats).
        For one step at a time this is several times faster on a CPU than calling
        ``nn.LSTM``, which prepares its whole-sequence kernels on every call.
        """
        steps = OneTokenSteps(self, state, input_table=False)
        scores = steps(tokens)
        return scores, (torch.stack(steps.hidden), torch.stack(steps.cell))

    @torch.inference_mode()
    def generate(
        self,
        prime: torch.Tensor,
        length: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        exclude: tuple[int, ...] = (),
        generator: torch.Generator | None = None,
        weights_dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Sample ``length`` tokens after ``prime`` (P,) or (N, P), one stream per row.

        Returns the new tokens (N, length). Tokens in ``exclude`` (the unknown token, say)
        are never drawn; ``generator`` makes the draws repeatable. ``weights_dtype``
        ``torch.bfloat16`` keeps the LSTM's weights in bfloat16 while writing (see
        :class:`OneTokenSteps`).
        """
        if prime.dim() == 1:
            prime = prime.unsqueeze(0)
        if prime.shape[1] == 0:
            raise ValueError("the prime must hold at least one token.")
        was_training = self.training
        self.eval()  # no dropout while writing
        try:
            # The whole prime in one forward pass; its last logits predict the first new token.
            logits, state, _ = self(prime.to(self.embedding.weight.device))
            logits = logits[:, -1]
            # the table of layer 0's input projections pays when it costs fewer projections
            # than the steps would make, and stays small
            table = self.vocab_size <= min(MAX_INPUT_TABLE_TOKENS, len(prime) * length)
            steps = OneTokenSteps(self, state, input_table=table, weights_dtype=weights_dtype)
            written = []
            for t in range(length):
                token = sample_next(logits, temperature, top_k, exclude, generator)
                written.append(token)
                if t + 1 < length:
                    logits = steps(token.to(logits.device))
        finally:
            self.train(was_training)
        return torch.stack(written, 1)


_LSTM_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
MAX_INPUT_TABLE_TOKENS = 4096  # vocabularies larger than this (words) project each token


class OneTokenSteps:
    """The model's step for :meth:`LanguageModel.generate`: the same function as
    :meth:`LanguageModel.step`, with the state kept and the weights arranged once per call.

    Writing one stream, a step is a few matrix-vector products and many tiny operations
    whose fixed cost (microseconds each) adds up; so each layer's two biases are added once,
    and layer 0's input projection of every token of the vocabulary,

        table[v] = W_ih0 embedding[v] + b_ih0 + b_hh0        (V, 4H)

    is computed once (``input_table``; when the vocabulary is small and the steps many), so
    that a step reads its row instead of embedding and projecting the token. Each layer is
    then z = (input projection) + h W_hh^T, one ``addmm``, and :func:`gated_update`.

    One stream's step is bound by reading the weights from memory (a 2-layer, 512-unit
    LSTM reads 12 MB of float32 per character), not by arithmetic. With ``weights_dtype``
    ``torch.bfloat16`` the recurrent and between-layer weights are kept in bfloat16: half
    the bytes per step. The products still accumulate in float32 and the gates, the state
    and the scores stay float32; what changes is that each weight and each input to a
    product is rounded to 8 significant bits, which moves the next-token probabilities by
    about a percent of their size (the tests bound it), not which text is likely.
    """

    def __init__(
        self,
        model: LanguageModel,
        state: State,
        *,
        input_table: bool,
        weights_dtype: torch.dtype = torch.float32,
    ) -> None:
        if weights_dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"weights_dtype must be float32 or bfloat16, got {weights_dtype}")
        weights = [
            [getattr(model.lstm, f"{name}_l{layer}") for name in _LSTM_PARAMETERS]
            for layer in range(model.layers)
        ]
        self.model = model
        self.input_weights = [w_ih.t() for w_ih, _, _, _ in weights]  # (I, 4H)
        self.hidden_weights = [w_hh.t() for _, w_hh, _, _ in weights]  # (H, 4H)
        self.biases = [b_ih + b_hh for _, _, b_ih, b_hh in weights]  # (4H,)
        self.input_table = None
        if input_table:  # from the float32 weights, so the table itself is exact
            embeddings = model.embedding.weight
            self.input_table = torch.addmm(self.biases[0], embeddings, self.input_weights[0])
        # stored (I, 4H) row-major: a row vector times it reads the weights in order, which
        # is faster than through the transposed view of torch's (4H, I)
        self.input_weights = [w.to(weights_dtype).contiguous() for w in self.input_weights]
        self.hidden_weights = [w.to(weights_dtype).contiguous() for w in self.hidden_weights]
        self.hidden, self.cell = list(state[0].unbind(0)), list(state[1].unbind(0))

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N,) -> the scores (N, V) of the token after them; the state moves on."""
        if self.input_table is not None:
            projected = self.input_table[tokens]
        else:
            embedded = self.model.embedding(tokens)
            projected = plus_product(self.biases[0], embedded, self.input_weights[0])
        for layer in range(self.model.layers):
            if layer > 0:  # the input is the new h of the layer below (no dropout in eval)
                below = self.hidden[layer - 1]
                projected = plus_product(self.biases[layer], below, self.input_weights[layer])
            z = plus_product(projected, self.hidden[layer], self.hidden_weights[layer])
            self.hidden[layer], self.cell[layer] = gated_update(z, self.cell[layer])
        return self.model.scores(self.hidden[-1])


def plus_product(base: torch.Tensor, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """base + x @ weights in float32: base (N, K) or (K,), x (N, I) float32, weights (I, K)
    float32 (one ``addmm``) or bfloat16 (x rounded to bfloat16; the CPU kernel accumulates
    in float32 and rounds the product to bfloat16, which is added to base in float32)."""
    if weights.dtype == torch.float32:
        return torch.addmm(base, x, weights)
    return base + torch.mm(x.to(weights.dtype), weights).float()


def adaptive_cutoffs(vocab_size: int) -> tuple[int, ...]:
    """Cluster boundaries for an adaptive softmax over ``vocab_size`` tokens numbered by
    frequency: the most frequent tenth, the next four tenths, the rest."""
    return tuple(c for c in sorted({vocab_size // 10, vocab_size // 2}) if 1 <= c < vocab_size - 1)


def lstm_cell(
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step with ``nn.LSTM``'s weights: x (N, I), h and c (N, H) -> new (h, c).

    The four gates, by their textbook names, and the course's four gates built from them:

        f = sigmoid(z_f)   forget gate          forget gate:   f * c, the memory kept
        i = sigmoid(z_i)   input gate           learn gate:    i * g, the memory learned
        g = tanh(z_g)      cell candidate
        o = sigmoid(z_o)   output gate
        c' = f * c + i * g                      remember gate: the new long-term memory
        h' = o * tanh(c')                       use gate:      the new short-term memory

    where [z_i, z_f, z_g, z_o] = W_ih x + b_ih + W_hh h + b_hh, in torch's row order.
    """
    z = torch.addmm(bias_ih, x, weight_ih.t()) + torch.addmm(bias_hh, h, weight_hh.t())
    return gated_update(z, c)


def gated_update(z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gates' pre-activations z = [z_i, z_f, z_g, z_o] (N, 4H) and the cell c (N, H) ->
    the new (h, c) of :func:`lstm_cell`. One sigmoid over all four blocks (z_g's is unused)
    costs less than three calls on one block each."""
    i, f, _, o = torch.sigmoid(z).chunk(4, dim=1)
    g = torch.tanh(z.chunk(4, dim=1)[2])
    c = f * c + i * g
    return o * torch.tanh(c), c


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    exclude: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row from softmax(logits / temperature), restricted to the ``top_k``
    likeliest tokens not in ``exclude``: logits (N, V) -> tokens (N,) on the CPU.

    With top-k the draw is among the k best scores alone: softmax over them (the other
    tokens' probability is 0 anyway), then the drawn position's token id. Excluded tokens
    score -inf, so they are among the k only when fewer than k others are left, and then
    with probability 0.
    """
    scores = logits.detach().float().cpu() / temperature
    if exclude:
        scores[:, list(exclude)] = -torch.inf
    if top_k is not None and top_k < scores.shape[1]:
        best, tokens = scores.topk(top_k, dim=1)
        drawn = torch.multinomial(torch.softmax(best, dim=1), 1, generator=generator)
        return tokens.gather(1, drawn).squeeze(1)
    probabilities = torch.softmax(scores, dim=1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
