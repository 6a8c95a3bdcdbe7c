r"""Small, measured demonstrations of what the book's models cannot do (page 9.3) and of two
safety risks (page 9.5, section "safety").

Every function works on a model the book already has: the character GPT of page 3.3
(:func:`wmbook.lab.char_gpt.load_char_gpt`) or the frozen MiniLM sentence encoder of page 3.2
(:class:`wmbook.nn.bert.BertModel`, :func:`wmbook.lab.sentence.encode`).

* **Confidence** is read from the next-token distribution :math:`p` as its entropy
  :math:`H(p) = -\sum_v p_v \ln p_v` (nats; 0 = certain, :math:`\ln V` = uniform) and as the
  probability of the token actually produced. *Surprisal* of a token is :math:`-\ln p(x_t\mid x_{<t})`.
* **Context length.** A GPT with learned absolute positions has one row of ``wpe`` per position
  :math:`0 \dots n_\text{ctx}-1`; :func:`extend_positions` adds rows so that longer windows can be
  fed at all, and the loss per position shows what the model makes of positions it never saw.
* **Tokenisation**: :func:`add_typo` (one swap of two adjacent letters inside a word).
* **Arithmetic**: :func:`sum_choices` asks MiniLM to pick the right sum by similarity.
* **Memorisation**: :func:`verbatim_lengths` counts how many characters a greedy continuation
  reproduces exactly.
* **Prompt injection**: :func:`injection_hits` measures how often a planted passage is retrieved
  into the top-k passages that a naive retrieve-then-concatenate pipeline pastes into a prompt.
"""
from __future__ import annotations

import dataclasses
import random
import string
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from wmbook.nn.gpt import GPT

_VOWELS = "AEIOU"
_CONSONANTS = "".join(c for c in string.ascii_uppercase if c not in _VOWELS)


def entropy_nats(logits: Tensor) -> Tensor:
    r"""Entropy :math:`H = -\sum_v p_v \ln p_v` (nats) of ``softmax(logits)`` over the last axis."""
    logp = F.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def token_surprisal(model: GPT, ids: Sequence[int]) -> Tensor:
    r"""Surprisal :math:`-\ln p(x_t \mid x_{<t})` (nats) of tokens ``ids[1:]``, one per token: (len - 1,).

    ``ids`` must fit the model's window (at most ``n_ctx`` tokens).
    """
    x = torch.as_tensor(list(ids), dtype=torch.long)
    if x.dim() != 1 or len(x) < 2:
        raise ValueError(f"ids must be a sequence of at least 2 token ids, got {len(x)}")
    if len(x) > model.cfg.n_ctx:
        raise ValueError(f"{len(x)} tokens exceed the model's window n_ctx={model.cfg.n_ctx}; shorten the text")
    logits = model(x[None, :-1], need_weights=False).logits[0]  # (T-1, V)
    return F.cross_entropy(logits.double(), x[1:], reduction="none")


@dataclass
class Continuation:
    """What :func:`sample_with_confidence` returns; tensors are (n_prompts * n_samples, n_new)."""

    ids: Tensor  # the sampled token ids
    entropy: Tensor  # entropy (nats) of the distribution each token was drawn from
    prob: Tensor  # probability the model gave to the token it drew


@torch.no_grad()
def sample_with_confidence(
    model: GPT, prompt: Sequence[int] | Sequence[Sequence[int]] | Tensor, n_new: int, n_samples: int = 1,
    temperature: float = 1.0, generator: torch.Generator | None = None,
) -> Continuation:
    """Sample ``n_samples`` continuations of each prompt (ancestral sampling at ``temperature``) and
    record, at every step, the entropy of the distribution and the probability of the drawn token.

    ``prompt`` is one sequence of ids or a batch of equal-length sequences (rows of the result:
    prompt 0's samples first). When prompt and continuation fit the window the keys and values are
    cached (one token per step); otherwise the window slides: only the last ``n_ctx`` tokens are fed.
    """
    if n_new < 1 or n_samples < 1 or temperature <= 0:
        raise ValueError(f"need n_new >= 1, n_samples >= 1, temperature > 0; got {n_new}, {n_samples}, {temperature}")
    x = torch.as_tensor(prompt if isinstance(prompt, Tensor) else list(prompt), dtype=torch.long)
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"prompt must be a non-empty sequence of ids or a (batch, length) batch, got shape {tuple(x.shape)}")
    x = x.repeat_interleave(n_samples, dim=0)  # (B * S, T)
    cached = x.shape[1] + n_new - 1 <= model.cfg.n_ctx  # all fits the window: reuse keys and values
    out = model(x[:, -model.cfg.n_ctx:], use_cache=cached, need_weights=False)
    ents, probs = [], []
    for step in range(n_new):
        logits = out.logits[:, -1] / temperature  # (B*S, V)
        p = torch.softmax(logits.double(), -1)
        nxt = torch.multinomial(p, 1, generator=generator)  # (B*S, 1)
        ents.append(entropy_nats(logits))
        probs.append(p.gather(1, nxt)[:, 0])
        x = torch.cat([x, nxt], dim=1)
        if step < n_new - 1:
            out = (model(nxt, past_key_values=out.past_key_values, use_cache=True, need_weights=False) if cached
                   else model(x[:, -model.cfg.n_ctx:], need_weights=False))
    return Continuation(x[:, -n_new:], torch.stack(ents, 1), torch.stack(probs, 1))


def fabricated_names(n: int, seed: int, min_len: int = 5, max_len: int = 9,
                     avoid: Sequence[str] = ()) -> list[str]:
    """``n`` pronounceable made-up upper-case names (consonant-vowel patterns), none in ``avoid``."""
    if n < 1 or not 2 <= min_len <= max_len:
        raise ValueError(f"need n >= 1 and 2 <= min_len <= max_len, got n={n}, {min_len}..{max_len}")
    rng = random.Random(seed)
    avoid = {a.upper() for a in avoid}
    out: list[str] = []
    while len(out) < n:
        length = rng.randint(min_len, max_len)
        name = "".join(rng.choice(_CONSONANTS if i % 2 == 0 else _VOWELS) for i in range(length))
        if name not in avoid and name not in out:
            out.append(name)
    return out


def speaker_prompts(text: str, names: Sequence[str], length: int, seed: int) -> list[str]:
    """One prompt per name, all exactly ``length`` characters: the end of a speech drawn at random from
    ``text`` (a play in Tiny Shakespeare's format), a blank line, then ``NAME:`` and a newline, where
    the next speech would begin. Equal lengths let the prompts run as one batch."""
    ends = [i for i in range(len(text) - 1) if text[i:i + 2] == "\n\n" and i >= length]
    longest = max((len(n) for n in names), default=0)
    if not names or length < longest + 4 + 1:
        raise ValueError(f"need at least one name and length >= {longest + 5} (the longest name + 5)")
    if not ends:
        raise ValueError("text has no blank line (speech boundary) after its first `length` characters")
    rng = random.Random(seed)
    out = []
    for name in names:
        e = rng.choice(ends)
        tail = "\n\n" + name + ":\n"
        out.append(text[e - (length - len(tail)):e] + tail)
    return out


@torch.no_grad()
def extend_positions(model: GPT, n_ctx: int, fill: str = "random",
                     generator: torch.Generator | None = None) -> GPT:
    """A copy of ``model`` whose position table has ``n_ctx`` rows instead of ``model.cfg.n_ctx``.

    Rows ``0 … n_ctx_old - 1`` are the trained ones. The new rows are
    ``fill="random"``: drawn from a normal with each trained column's mean and sd;
    ``"cyclic"``: row ``t`` copies trained row ``t mod n_ctx_old`` (positions repeat);
    ``"last"``: every new row copies the last trained row.
    Nothing else changes, so for positions < ``n_ctx_old`` the outputs equal the original's
    (attention is causal).
    """
    old = model.cfg.n_ctx
    if n_ctx <= old:
        raise ValueError(f"n_ctx={n_ctx} must exceed the trained n_ctx={old}")
    wpe = model.wpe.weight.detach()  # (old, d_model)
    new = n_ctx - old
    if fill == "random":
        rows = wpe.mean(0) + wpe.std(0) * torch.randn(new, wpe.shape[1], generator=generator)
    elif fill == "cyclic":
        rows = wpe[torch.arange(old, n_ctx) % old]
    elif fill == "last":
        rows = wpe[-1:].expand(new, -1)
    else:
        raise ValueError(f"fill must be 'random', 'cyclic' or 'last', got {fill!r}")
    out = GPT(dataclasses.replace(model.cfg, n_ctx=n_ctx))
    state = {k: v for k, v in model.state_dict().items() if k != "wpe.weight"}
    state["wpe.weight"] = torch.cat([wpe, rows.to(wpe.dtype)], dim=0)
    out.load_state_dict(state)
    return out.eval()


def add_typo(text: str, rng: random.Random, min_len: int = 4) -> str:
    """Swap two adjacent letters inside one word of ``text`` that has at least ``min_len`` letters
    (first and last letter kept). The text is returned unchanged if no word qualifies."""
    words = text.split(" ")
    cands = [i for i, w in enumerate(words) if len(w) >= min_len and w.isalpha()]
    if not cands:
        return text
    i = rng.choice(cands)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)  # swap letters j, j+1, both strictly inside the word
    if w[j] == w[j + 1]:  # a swap of equal letters changes nothing: take the next pair that differs
        diff = [k for k in range(1, len(w) - 2) if w[k] != w[k + 1]]
        if not diff:
            return text
        j = diff[0]
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def sum_problems(n: int, seed: int, lo: int = 10, hi: int = 99, n_choices: int = 10) -> list[dict]:
    """``n`` problems a + b with a, b uniform in [lo, hi]; each has ``n_choices`` distinct candidate
    sums (the right one and others drawn uniformly from [2 lo, 2 hi]) and the index of the right one."""
    if n < 1 or n_choices < 2 or lo > hi or 2 * hi - 2 * lo + 1 < n_choices:
        raise ValueError(f"bad settings n={n}, n_choices={n_choices}, range [{lo}, {hi}]")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        wrong = rng.sample([c for c in range(2 * lo, 2 * hi + 1) if c != a + b], n_choices - 1)
        choices = wrong + [a + b]
        rng.shuffle(choices)
        out.append({"a": a, "b": b, "choices": choices, "answer": choices.index(a + b)})
    return out


def sum_choices(model, tokenizer, problems: Sequence[dict],
                question: str = "What is {a} plus {b}?", answer: str = "The answer is {c}.") -> Tensor:
    """For each of ``problems`` (from :func:`sum_problems`), the index of the candidate answer sentence
    most similar (cosine of MiniLM sentence embeddings) to the question: (n,). Compare with
    ``p["answer"]``; picking at random is right with probability 1 / n_choices."""
    from wmbook.lab.sentence import encode  # lazy: keeps this module importable without transformers

    if not problems:
        raise ValueError("no problems given")
    k = len(problems[0]["choices"])
    if any(len(p["choices"]) != k for p in problems):
        raise ValueError("every problem must have the same number of choices")
    qs = encode(model, tokenizer, [question.format(**p) for p in problems])  # (n, d)
    cands = encode(model, tokenizer, [answer.format(c=c) for p in problems for c in p["choices"]])
    cands = cands.view(len(problems), k, -1)  # (n, k, d)
    return torch.einsum("nd,nkd->nk", qs, cands).argmax(-1)  # unit vectors: dot = cosine


@torch.no_grad()
def verbatim_lengths(model: GPT, ids: Tensor, starts: Sequence[int], prefix_len: int, n_new: int) -> Tensor:
    """For each start s: feed ``ids[s : s + prefix_len]``, continue greedily for ``n_new`` tokens and
    count how many of them equal the true text ``ids[s + prefix_len : …]`` before the first mismatch.
    When ``prefix_len + n_new <= n_ctx`` the keys and values are cached (one token per step);
    otherwise the window slides and is recomputed.

    Returns (len(starts),) integer counts in ``0 … n_new``.
    """
    if prefix_len < 1 or n_new < 1 or prefix_len > model.cfg.n_ctx:
        raise ValueError(f"need 1 <= prefix_len <= n_ctx={model.cfg.n_ctx} and n_new >= 1")
    st = torch.as_tensor(list(starts), dtype=torch.long)
    if len(st) == 0 or int(st.min()) < 0 or int(st.max()) + prefix_len + n_new > len(ids):
        raise ValueError("every start needs prefix_len + n_new tokens of ids after it")
    x = ids[st[:, None] + torch.arange(prefix_len)]  # (N, P)
    truth = ids[st[:, None] + prefix_len + torch.arange(n_new)]  # (N, n_new)
    if prefix_len + n_new <= model.cfg.n_ctx:  # everything fits the window: reuse keys and values (KV cache)
        out = model(x, use_cache=True, need_weights=False)
        for _ in range(n_new):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)  # (N, 1)
            x = torch.cat([x, nxt], 1)
            if x.shape[1] < prefix_len + n_new:
                out = model(nxt, past_key_values=out.past_key_values, use_cache=True, need_weights=False)
    else:  # the window slides: recompute the last n_ctx tokens at every step
        for _ in range(n_new):
            nxt = model(x[:, -model.cfg.n_ctx:], need_weights=False).logits[:, -1].argmax(-1, keepdim=True)
            x = torch.cat([x, nxt], 1)
    same = (x[:, prefix_len:] == truth).long()  # (N, n_new)
    return same.cumprod(1).sum(1)  # matches before the first mismatch


def injection_hits(query_emb: Tensor, library_emb: Tensor, planted: int, k: int = 3) -> Tensor:
    """For each query row: is library row ``planted`` among the ``k`` most similar (cosine)? -> (Q,) bool.

    This is what a naive retrieve-then-concatenate pipeline does: the top-k passages are pasted into
    the prompt whatever they say.
    """
    if not 0 <= planted < library_emb.shape[0] or not 1 <= k <= library_emb.shape[0]:
        raise ValueError(f"planted must index the library ({library_emb.shape[0]} rows) and 1 <= k <= rows")
    sims = F.normalize(query_emb, dim=-1) @ F.normalize(library_emb, dim=-1).T  # (Q, N)
    return (sims.topk(k, dim=-1).indices == planted).any(-1)


__all__ = [
    "Continuation", "add_typo", "entropy_nats", "extend_positions", "fabricated_names", "injection_hits",
    "sample_with_confidence", "speaker_prompts", "sum_choices", "sum_problems", "token_surprisal", "verbatim_lengths",
]
