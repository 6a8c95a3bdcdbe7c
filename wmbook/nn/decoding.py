"""Greedy decoding and beam search for :class:`wmbook.nn.transformer.EncoderDecoder`.

Explained on page 3.1, "The Transformer architecture", and used on page 5.1,
"A Transformer language model". The source is encoded once; the decoder is re-run
on the growing target at every step (no cache: clear, and fast enough for the book's sizes).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from wmbook.nn.transformer import EncoderDecoder


def _check(model: EncoderDecoder, bos_id: int, eos_id: int, max_len: int) -> None:
    V = model.cfg.vocab_size
    for name, i in (("bos_id", bos_id), ("eos_id", eos_id)):
        if not 0 <= i < V:
            raise ValueError(f"{name}={i} is not a token id in [0, vocab_size={V})")
    if not 1 <= max_len < model.cfg.n_ctx:
        raise ValueError(
            f"max_len={max_len} must be in [1, n_ctx={model.cfg.n_ctx}): BOS plus max_len tokens must fit"
        )


@torch.no_grad()
def greedy_decode(model: EncoderDecoder, src: Tensor, bos_id: int, eos_id: int, max_len: int) -> Tensor:
    r"""Pick :math:`y_t = \arg\max_w p(w \mid y_{<t}, x)` until EOS or ``max_len`` new tokens.

    Returns ``(B, 1 + L)`` token ids starting with BOS; after a row's EOS the row
    is filled with ``pad_id``. ``L <= max_len``; decoding stops early once every row ended.
    """
    _check(model, bos_id, eos_id, max_len)
    was_training = model.training
    model.eval()
    enc = model.encode(src)
    B = src.shape[0]
    ys = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits = model.decode(ys, enc).logits[:, -1]  # (B, vocab_size)
        nxt = logits.argmax(dim=-1).masked_fill(done, model.cfg.pad_id)  # (B,)
        ys = torch.cat([ys, nxt[:, None]], dim=1)  # (B, t + 1)
        done |= nxt == eos_id
        if done.all():
            break
    model.train(was_training)
    return ys


@dataclass
class BeamSearchResult:
    """Best hypothesis ``tokens`` (1, 1 + L) with BOS, its length-normalised ``score``,
    and every finished hypothesis as ``(tokens (1 + L,), score)``, best first."""

    tokens: Tensor
    score: float
    hypotheses: list[tuple[Tensor, float]] = field(default_factory=list)


@torch.no_grad()
def beam_search(
    model: EncoderDecoder,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    max_len: int,
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> BeamSearchResult:
    r"""Keep the ``beam_size`` most probable prefixes; return the best finished one.

    A hypothesis :math:`y` with :math:`|y|` generated tokens (EOS included) is scored
    :math:`\frac{1}{|y|^{\alpha}} \sum_t \log p(y_t \mid y_{<t}, x)` with
    :math:`\alpha` = ``length_penalty`` (0: raw log-probability, which favours short
    outputs; 1: mean log-probability). As in Hugging Face, an EOS only ends a
    hypothesis when it ranks among the top ``beam_size`` candidates, so
    ``beam_size=1`` is exactly greedy decoding. The search stops after ``max_len``
    tokens (the unended beams then join the finished ones), or, as Hugging Face's
    default does, once ``beam_size`` hypotheses have ended and the best alive beam,
    scored at its current length, is no better than the worst of the best ``beam_size``
    ended ones. ``src`` must be one sequence (1, S).
    """
    _check(model, bos_id, eos_id, max_len)
    if src.dim() != 2 or src.shape[0] != 1:
        raise ValueError(f"beam_search decodes one sequence: src must be (1, S), got {tuple(src.shape)}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    was_training = model.training
    model.eval()
    enc = model.encode(src)
    beams = torch.full((1, 1), bos_id, dtype=torch.long, device=src.device)  # (n_alive, t)
    sums = torch.zeros(1, device=src.device)  # (n_alive,) summed log-probabilities
    finished: list[tuple[Tensor, float]] = []

    def norm(total: float, length: int) -> float:
        return total / length**length_penalty

    for step in range(1, max_len + 1):
        n = beams.shape[0]
        enc_n = replace(enc, memory=enc.memory.expand(n, -1, -1), src_mask=enc.src_mask.expand(n, -1, -1))
        logp = model.decode(beams, enc_n).logits[:, -1].log_softmax(dim=-1)  # (n, V)
        cand = (sums[:, None] + logp).flatten()  # (n * V,)
        top, idx = cand.topk(min(2 * beam_size, cand.numel()))
        V = logp.shape[-1]
        alive: list[tuple[int, int, float]] = []
        for rank, (total, i) in enumerate(zip(top.tolist(), idx.tolist())):
            b, tok = divmod(i, V)
            if tok == eos_id:
                if rank < beam_size:  # an EOS outside the top beam_size does not end a hypothesis
                    seq = torch.cat([beams[b], beams.new_tensor([eos_id])])
                    finished.append((seq, norm(total, step)))
            else:
                alive.append((b, tok, total))
            if len(alive) == beam_size:
                break
        if not alive:
            break
        beams = torch.cat([beams[[b for b, _, _ in alive]], beams.new_tensor([[t] for _, t, _ in alive])], dim=1)
        sums = sums.new_tensor([s for _, _, s in alive])  # (n_alive,)
        if len(finished) >= beam_size:
            worst = sorted((h[1] for h in finished), reverse=True)[beam_size - 1]
            if norm(float(sums.max()), step) <= worst:  # Hugging Face's heuristic stopping rule
                break
    else:  # max_len reached: alive beams count as finished, unended
        finished += [(beams[b], norm(float(sums[b]), max_len)) for b in range(beams.shape[0])]
    model.train(was_training)
    finished.sort(key=lambda h: h[1], reverse=True)
    best, score = finished[0]
    return BeamSearchResult(best[None], score, finished)
