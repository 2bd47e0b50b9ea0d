"""The small recogniser's torch modules and its transducer loss.

* ``Encoder``: per-value normalisation (constants from training frames, kept in the graph), two 1-D
  convolutions along time (5 and 3 frames, 0-3 frames of look-ahead in all, 3 by default: a keyword
  spotter decides that many frames after the newest) and one unidirectional GRU:
  it reads the front end's frames ``[N, T, D]`` left to right, so it can run on a stream.
* ``CtcModel``: the encoder and a linear layer to log-probabilities over the blank and the words.
* ``TransducerModel``: the same encoder projected to the joiner's width, a stateless decoder
  (embedding of the last ``CONTEXT`` tokens, the blank embedded as zeros, a depthwise convolution over
  them, as icefall's) and a joiner ``Linear(tanh(encoder + decoder))``.
* ``rnnt_loss``: the transducer's negative log-likelihood, its forward variable computed in log space
  one output position at a time (``logcumsumexp`` along time), exact for any lengths.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CONTEXT = 2
#: Frames of look-ahead of the encoder at most (and by default): its convolutions centred.
LOOKAHEAD = 3


class Encoder(nn.Module):
    """Frames ``[N, T, D]`` -> ``[N, T, hidden]``."""

    def __init__(
        self, dims: int, hidden: int = 128, dropout: float = 0.15, lookahead: int = LOOKAHEAD
    ) -> None:
        super().__init__()
        if not 0 <= lookahead <= LOOKAHEAD:
            raise ValueError(f"look-ahead is 0-{LOOKAHEAD} frames, not {lookahead}")
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("inv_std", torch.ones(dims))
        # the first convolution takes up to 2 future frames, the second the rest; the others are past ones
        ahead = (min(2, lookahead), lookahead - min(2, lookahead))
        self.lookahead = lookahead
        self.convs = nn.Sequential(
            nn.Dropout(dropout / 2),
            nn.ConstantPad1d((4 - ahead[0], ahead[0]), 0.0),
            nn.Conv1d(dims, hidden, 5),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.ConstantPad1d((2 - ahead[1], ahead[1]), 0.0),
            nn.Conv1d(hidden, hidden, 3),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) * self.inv_std
        z = self.convs(z.transpose(1, 2)).transpose(1, 2)
        return self.gru(z)[0]


class CtcModel(nn.Module):
    """Frames -> log-probabilities ``[N, T, vocab]`` (blank first)."""

    def __init__(self, dims: int, vocab: int, hidden: int = 128, lookahead: int = LOOKAHEAD) -> None:
        super().__init__()
        self.encoder = Encoder(dims, hidden, lookahead=lookahead)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(x)).log_softmax(-1)


class TransducerModel(nn.Module):
    """Encoder, stateless decoder and joiner of a transducer over ``vocab`` tokens (blank 0)."""

    def __init__(self, dims: int, vocab: int, hidden: int = 128, joiner: int = 128, embed: int = 64) -> None:
        super().__init__()
        self.vocab = vocab
        self.encoder = Encoder(dims, hidden)
        self.enc_proj = nn.Linear(hidden, joiner)
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.dec_conv = nn.Conv1d(embed, embed, CONTEXT, groups=embed, bias=False)
        self.dec_proj = nn.Linear(embed, joiner)
        self.joiner = nn.Linear(joiner, vocab)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, T, joiner]`` encoder output."""
        return self.enc_proj(self.encoder(x))

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """``[N, L - CONTEXT + 1, joiner]`` decoder output for token sequences ``y`` [N, L] (each output
        from ``CONTEXT`` consecutive tokens)."""
        e = self.embedding(y).transpose(1, 2)
        return self.dec_proj(torch.relu(self.dec_conv(e)).transpose(1, 2))

    def join(self, enc: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        """Logits for matched (broadcast) encoder and decoder outputs."""
        return self.joiner(torch.tanh(enc + dec))

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Joint logits ``[N, T, U + 1, vocab]`` for frames ``x`` and padded targets ``[N, U]``."""
        ctx = torch.cat([torch.zeros(len(targets), CONTEXT, dtype=torch.long), targets], dim=1)
        return self.join(self.encode(x)[:, :, None], self.decode(ctx)[:, None])


def rnnt_loss(
    logits: torch.Tensor, targets: torch.Tensor, t_lens: torch.Tensor, u_lens: torch.Tensor, blank: int = 0
) -> torch.Tensor:
    """Per-utterance transducer NLL ``[N]`` of joint logits ``[N, T, U + 1, V]``, targets ``[N, U]``.

    alpha(t, u) = logsumexp over s <= t of alpha(s, u - 1) + y(s, u - 1) + sum of blank(r, u), r = s..t-1:
    with C the exclusive cumulative sum of blank(., u) along time that is
    C(t) + logcumsumexp(alpha(., u - 1) + y(., u - 1) - C(.))(t); padded frames and tokens lie after the
    end point read for each utterance, so they never reach it."""
    lp = logits.float().log_softmax(-1)
    n, t_max, u1, _ = lp.shape
    blank_lp = lp[..., blank]
    if u1 > 1:
        index = targets[:, None, :, None].expand(n, t_max, u1 - 1, 1)
        y_lp = lp[:, :, :-1].gather(3, index).squeeze(3)
    c = blank_lp.cumsum(1) - blank_lp
    alphas = [c[:, :, 0]]
    for u in range(1, u1):
        emit = alphas[-1] + y_lp[:, :, u - 1]
        alphas.append(c[:, :, u] + torch.logcumsumexp(emit - c[:, :, u], dim=1))
    alpha = torch.stack(alphas, dim=2)
    rows = torch.arange(n)
    return -(alpha[rows, t_lens - 1, u_lens] + blank_lp[rows, t_lens - 1, u_lens])


def n_params(model: Any) -> int:
    """Trainable parameters of a module."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def transducer_greedy(model: TransducerModel, x: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
    """Greedy search (one token per frame at most, as ``edge_sdk.asr.transducer``) over a batch."""
    enc = model.encode(x)
    hyps: list[list[int]] = [[] for _ in range(len(x))]
    ctx = torch.zeros(len(x), CONTEXT, dtype=torch.long)
    for t in range(enc.shape[1]):
        dec = model.decode(ctx)[:, 0]
        best = model.join(enc[:, t], dec).argmax(-1)
        for i, tok in enumerate(best.tolist()):
            if tok != 0 and t < int(lens[i]):
                hyps[i].append(tok)
                ctx[i] = torch.tensor([*([0] * CONTEXT), *hyps[i]][-CONTEXT:])
    return hyps
