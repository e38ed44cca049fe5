"""A sequence-to-sequence model with attention: a GRU encoder reads a line, a GRU decoder
writes the reply one word at a time, looking back at the line's words as it goes.

Encoder: a bidirectional GRU over the line's word vectors gives one memory vector per
word, ``m_s = [forward h_s; backward h_s]`` (size 2H), and its two final states give the
decoder's first state ``h_0 = tanh(W_b [h_fwd; h_bwd])``.

Decoder step t (Luong, Pham & Manning 2015, "general" score scaled by 1/sqrt(H), no input
feeding)::

    h_t   = GRU(embed(y_{t-1}), h_{t-1})                 the decoder's state
    e_ts  = h_t . (W_a m_s) / sqrt(H)                   how well word s fits now
    a_ts  = softmax_s(e_ts)  over the line's real words  (padding gets a_ts = 0)
    c_t   = sum_s a_ts m_s                              what the decoder reads from the line
    h~_t  = tanh(W_c [c_t; h_t]);  p(y_t) = softmax(W_o h~_t)

Why Luong and not Bahdanau: Luong's attention is computed *after* the recurrent step, from
the state h_t, so with teacher forcing the decoder's GRU runs over the whole reply in one
call and the attention of every step is one batched matrix product; Bahdanau's attention
feeds the recurrent step itself, so training would loop over the steps in Python. On a CPU
that is several times slower for the same model.

``decoder`` picks the model or one of its two baselines, trained the same way:

- ``"attention"``: the model above;
- ``"plain"``: the same decoder without attention (``h~_t = tanh(W_c h_t)``): the line
  reaches the reply only through h_0 (Sutskever et al. 2014);
- ``"language-model"``: no encoder at all, ``h_0 = 0``: a model of replies in general that
  ignores the line. Against it, the other two show how much reading the line helps.

With ``copy`` (attention only) the decoder may also write a word of the line by pointing
at it (See, Liu & Manning 2017): a gate g_t = sigmoid(w_g . [c_t; h_t; x_t] + b_g) mixes
p(y_t) = (1 - g_t) softmax(W_o h~_t) + g_t * (the attention on the line's copies of y_t).
On the Seinfeld pairs this is what makes attention pay: a reply often repeats a word of
the line, and pointing at it works for any word, where generating it must be learnt for
each word.

Each reply starts from and ends with the line-break token (the end of a turn): the decoder
reads it as y_0 and writes it to stop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

DECODERS = ("attention", "plain", "language-model")
# The copy gate's starting bias: sigmoid(-4) = 1.8 %, so a new model mostly generates.
COPY_GATE_START = -4.0


def luong_attention(
    queries: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dot-product attention of each query over the real (unmasked) positions.

    queries (N, T, H), keys (N, S, H) (the projected memory W_a m_s), memory (N, S, M),
    mask (N, S) bool, True at real words (each row has at least one).
    Returns context (N, T, M) = weights @ memory and weights (N, T, S), rows summing to 1.
    """
    scores = queries @ keys.transpose(1, 2)  # (N, T, S): e_ts = h_t . k_s
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))  # exp(-inf) = 0: no weight
    weights = torch.softmax(scores, dim=-1)
    return weights @ memory, weights


class Seq2Seq(nn.Module):
    """Encoder, decoder and (unless ``decoder`` says otherwise) attention; see the module
    docstring. ``padding_id`` pads line and reply batches; ``end_id`` starts and ends each
    reply; replies never contain ``unknown_id``."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        *,
        padding_id: int,
        end_id: int,
        unknown_id: int | None = None,
        decoder: str = "attention",
        dropout: float = 0.0,
        copy: bool = False,
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if copy and decoder != "attention":
            raise ValueError("copying words of the line needs the attention decoder")
        self.decoder_kind, self.padding_id, self.end_id = decoder, padding_id, end_id
        self.never_written = [padding_id] + ([] if unknown_id is None else [unknown_id])
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_id)
        self.dropout = nn.Dropout(dropout)
        if decoder != "language-model":
            self.encoder = nn.GRU(embedding_size, hidden_size, batch_first=True, bidirectional=True)
            self.bridge = nn.Linear(2 * hidden_size, hidden_size)
        if decoder == "attention":
            self.key = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # W_a
        self.decoder = nn.GRU(embedding_size, hidden_size, batch_first=True)
        context_size = 2 * hidden_size if decoder == "attention" else 0
        self.combine = nn.Linear(context_size + hidden_size, hidden_size)  # W_c
        self.output = nn.Linear(hidden_size, vocab_size)  # W_o
        self.copies = copy
        if copy:  # p_copy = sigmoid(w_g . [c_t; h_t; x_t] + b_g)
            self.copy_gate = nn.Linear(3 * hidden_size + embedding_size, 1)
            nn.init.zeros_(self.copy_gate.weight)
            nn.init.constant_(self.copy_gate.bias, COPY_GATE_START)

    @torch.no_grad()
    def start_from(self, language_model: Seq2Seq) -> None:
        """Start from a trained language model of replies (the same sizes): its word
        vectors, decoder GRU and output layers are copied, and what reads the line starts
        silent: the bridge and the context's columns of W_c are zero, so h_0 = tanh(0) = 0
        and the model first writes exactly what the language model writes. Training then
        only has to learn what the line adds (the decoder "pretrained as a language model"
        of Ramachandran, Liu & Le 2017). A model that copies starts with its copy gate at
        its usual start, so it begins close to, not exactly at, the language model."""
        same_sizes = language_model.output.weight.shape == self.output.weight.shape
        if language_model.uses_line or not same_sizes:
            raise ValueError("start_from takes a language-model Seq2Seq of the same sizes")
        for name in ("embedding", "decoder", "output"):
            getattr(self, name).load_state_dict(getattr(language_model, name).state_dict())
        hidden = self.decoder.hidden_size
        self.combine.weight.zero_()
        self.combine.weight[:, -hidden:] = language_model.combine.weight  # [context; h_t]
        self.combine.bias.copy_(language_model.combine.bias)
        if self.uses_line:
            self.bridge.weight.zero_()
            self.bridge.bias.zero_()

    @property
    def uses_line(self) -> bool:
        return self.decoder_kind != "language-model"

    def encode(
        self, line: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """line (N, S) ids padded on the right, lengths (N,) >= 1.

        Returns memory (N, S, 2H) (None for the language model), the decoder's first state
        (1, N, H) and the mask (N, S), True at real words.
        """
        mask = torch.arange(line.shape[1], device=line.device)[None, :] < lengths[:, None]
        hidden = self.decoder.hidden_size
        if not self.uses_line:
            return None, line.new_zeros((1, len(line), hidden), dtype=torch.float32), mask
        # Packed: the GRU never reads padding, so a line's encoding does not depend on its batch.
        packed = pack_padded_sequence(
            self.dropout(self.embedding(line)), lengths.cpu(), batch_first=True,
            enforce_sorted=False,
        )  # fmt: skip
        outputs, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=line.shape[1])
        first_state = torch.tanh(self.bridge(torch.cat([final[0], final[1]], dim=-1)))
        return memory, first_state[None], mask

    def attend(
        self, states: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Luong attention of decoder states (N, T, H) over keys (N, S, H) = W_a m_s, scores
        divided by sqrt(H): context (N, T, 2H) and weights (N, T, S)."""
        # Unscaled, the scores grow with H and the softmax starts out nearly one-hot, which
        # slows learning where to look (the scaling of Vaswani et al. 2017).
        return luong_attention(states / math.sqrt(states.shape[-1]), keys, memory, mask)

    def decode(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor | None,
        mask: torch.Tensor,
        line: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """inputs (N, T) the previous words y_0..y_{T-1}, state (1, N, H); ``line`` (N, S)
        the line's ids (needed when the model copies); ``keys`` W_a m_s if already computed
        (a reply decodes one word at a time from the same memory).

        Returns scores (N, T, V) (logits; log-probabilities when the model copies: either
        way softmax(scores) is p(y_t)), the last state (1, N, H) and the attention weights
        (N, T, S) (None without attention).
        """
        logits, state, weights, features = self.decode_parts(inputs, state, memory, mask, keys)
        if not self.copies:
            return logits, state, weights
        if line is None:
            raise ValueError("a model that copies needs the line's ids to decode")
        return self.copy_mixture(logits, features, weights, line), state, weights

    def decode_parts(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor | None,
        mask: torch.Tensor,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """:meth:`decode` before any copying: the generator's logits (N, T, V), the last
        state, the attention weights and what the copy gate reads, [c_t; h_t; x_t]."""
        words = self.dropout(self.embedding(inputs))
        states, state = self.decoder(words, state)
        weights = None
        if self.decoder_kind == "attention":
            keys = self.key(memory) if keys is None else keys
            context, weights = self.attend(states, keys, memory, mask)
            states = torch.cat([context, states], dim=-1)
        logits = self.output(self.dropout(torch.tanh(self.combine(states))))  # W_o h~_t
        return logits, state, weights, torch.cat([states, words], dim=-1)

    def copy_mixture(
        self,
        logits: torch.Tensor,
        features: torch.Tensor,
        weights: torch.Tensor,
        line: torch.Tensor,
    ) -> torch.Tensor:
        """log p(y_t) of the pointer-generator (See, Liu & Manning 2017): with probability
        ``g_t`` copy a word of the line, the one at position s with the attention weight
        a_ts, else generate from softmax(logits)::

            p(w) = (1 - g_t) softmax(logits)_w + g_t * sum of a_ts over the s where line_s = w

        A reply that repeats a word of the line ("what did you say?" after "i said ...")
        can then point at it, whatever the word.
        """
        gate = torch.sigmoid(self.copy_gate(features).float())
        generated = torch.softmax(logits.float(), dim=-1) * (1 - gate)
        pointed = (weights.float() * gate).to(generated.dtype)  # (N, T, S)
        index = line[:, None, :].expand(-1, pointed.shape[1], -1)
        mixture = generated.scatter_add(2, index, pointed)
        return torch.log(mixture.clamp_min(1e-30))

    def forward(
        self,
        line: torch.Tensor,
        lengths: torch.Tensor,
        reply_in: torch.Tensor,
        reply_out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Teacher forcing: the decoder reads the true previous words ``reply_in`` (N, T).

        Returns the scores (N, T, V) of :meth:`decode` and, given targets ``reply_out``
        (N, T) (padding ignored), the mean cross-entropy per target word (nats). A model
        that copies, given targets, returns no scores: its loss is computed for the
        targets alone (:meth:`copy_loss`).
        """
        memory, state, mask = self.encode(line, lengths)
        if self.copies and reply_out is not None:
            logits, _, weights, features = self.decode_parts(reply_in, state, memory, mask)
            return None, self.copy_loss(logits, features, weights, line, reply_out)
        logits, _, _ = self.decode(reply_in, state, memory, mask, line)
        if reply_out is None:
            return logits, None
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), reply_out.flatten(), ignore_index=self.padding_id
        )
        return logits, loss

    def copy_loss(
        self,
        logits: torch.Tensor,
        features: torch.Tensor,
        weights: torch.Tensor,
        line: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """The mean of -log p(target) under :meth:`copy_mixture`, computed for the targets
        alone: log p = logaddexp(log(1 - g) + log softmax(logits)_y, log g + log(attention
        on the line's copies of y)), without building the (N, T, V) mixture (training is
        about twice as fast)."""
        gate = self.copy_gate(features).float().squeeze(2)  # (N, T), before the sigmoid
        generated = torch.log_softmax(logits.float(), dim=-1).gather(2, targets[..., None])
        copies = line[:, None, :] == targets[:, :, None]  # (N, T, S)
        pointed = (weights.float() * copies).sum(dim=2).clamp_min(1e-30)
        log_p = torch.logaddexp(
            F.logsigmoid(-gate) + generated.squeeze(2), F.logsigmoid(gate) + pointed.log()
        )
        return -log_p[targets != self.padding_id].mean()

    @torch.no_grad()
    def reply(
        self,
        line: torch.Tensor,
        max_length: int,
        *,
        temperature: float = 0.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[int], torch.Tensor]:
        """A reply to one line ``(S,)`` of ids (S >= 1), never writing padding or the unknown
        word: greedy (``temperature`` 0) or
        sampled from the ``top_k`` likeliest words at ``temperature`` with ``generator``.

        Returns the reply's ids (without the end token; at most ``max_length``) and the
        attention weights (length, S) of each written word (zeros without attention).
        """
        device = self.output.weight.device
        line = line.to(device)
        memory, state, mask = self.encode(line[None], torch.tensor([len(line)]))
        keys = self.key(memory) if self.decoder_kind == "attention" else None  # once a reply
        word = torch.tensor([[self.end_id]], device=device)
        written, rows = [], []
        for _ in range(max_length):
            logits, state, weights = self.decode(word, state, memory, mask, line[None], keys)
            logits[0, -1, self.never_written] = float("-inf")
            next_id = pick_word(logits[0, -1], temperature, top_k, generator)
            if next_id == self.end_id:
                break
            written.append(next_id)
            rows.append(weights[0, 0].cpu() if weights is not None else torch.zeros(len(line)))
            word = torch.tensor([[next_id]], device=device)
        attention = torch.stack(rows) if rows else torch.zeros((0, len(line)))
        return written, attention


def pick_word(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> int:
    """The next word from logits (V,): the likeliest at ``temperature`` 0, else drawn from
    softmax(logits / temperature) over the ``top_k`` likeliest (all if None)."""
    if temperature == 0:
        return int(logits.argmax())
    scaled = logits.float() / temperature
    if top_k is not None and top_k < len(scaled):
        threshold = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    probabilities = torch.softmax(scaled, dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=generator))
