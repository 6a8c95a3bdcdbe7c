r"""Multi-digit addition with and without a scratchpad: data, training, evaluation, checkpoint.

Explained on page 8.2, "Challenges in reducing the load", section 8.2.2. A tiny
:class:`wmbook.nn.gpt.GPT` reads ``a+b=`` and writes the sum, either directly (``direct``)
or after a scratchpad of intermediate steps (``scratchpad``, after Nye et al. 2021): for every
digit position :math:`i` from the right, the two digits, the carry in and the digit of the sum,

.. math::

    s_i = (a_i + b_i + c_i) \bmod 10,\qquad c_{i+1} = \lfloor (a_i + b_i + c_i) / 10 \rfloor,

written as four tokens and a ``;``, then ``=`` and the sum. In both formats the sum is written
in the usual order (most significant digit first) and ends with ``$``. The model is trained to
minimise the cross-entropy of the tokens after the first ``=`` (the prompt is given), on operands
of 1..``train_max_digits`` digits, and tested by greedy decoding on 1..``test_max_digits`` digits:
exact match of the final sum. ``AdditionRecipe.max_offset`` can place each training example at a
random offset after filler ``_`` (so that later position embeddings are trained too); the
committed run uses 0: every problem starts at position 0, and the positions that only longer
problems reach are never trained.

``scripts/train_addition.py`` trains both formats for several seeds and writes all models
(float16) in one checkpoint with a JSON log (:func:`save_addition`); :func:`load_addition` reads
them back, sha256-verified.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256, load_paired_log, load_payload, verify_checkpoint
from wmbook.lab.char_gpt import gpt_from_state
from wmbook.nn.gpt import GPT, GPTConfig
from wmbook.nn.train import optimizer_step, warmup_cosine

VOCAB = "0123456789+=;$_"
STOI = {c: i for i, c in enumerate(VOCAB)}
FILL = STOI["_"]
FORMATS = ("direct", "scratchpad")

#: The committed checkpoint: every seed's model of both formats.
ADDITION_FILE = CHECKPOINT_DIR / "addition_scratchpad.pt"
#: sha256 of the committed checkpoint and of its log, as printed by ``scripts/train_addition.py``.
ADDITION_SHA256 = "51f60b5d41e876952b436c224d618eab585af4b3567c2246052ee022ba3896db"
ADDITION_LOG_SHA256 = "ed9b0d4d542e75588b2319d33e1a86cd26547389a9922114c94447822e421868"
_REGENERATE = "python scripts/train_addition.py  (about 10 minutes on one CPU thread of a busy machine)"


def encode(s: str) -> list[int]:
    """Characters of ``VOCAB`` -> token ids; anything else is an error that names the character."""
    bad = [c for c in s if c not in STOI]
    if bad:
        raise ValueError(f"character {bad[0]!r} is not in the addition vocabulary {VOCAB!r}")
    return [STOI[c] for c in s]


def decode(ids) -> str:
    """Token ids -> string (filler ``_`` kept)."""
    return "".join(VOCAB[int(i)] for i in ids)


def scratch_steps(a: int, b: int) -> str:
    """The scratchpad for ``a + b``: ``a_i b_i c_i s_i;`` for every digit position from the right."""
    if a < 0 or b < 0:
        raise ValueError(f"operands must be non-negative integers, got {a} and {b}")
    da, db = str(a)[::-1], str(b)[::-1]
    carry, out = 0, []
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        out.append(f"{x}{y}{carry}{s % 10};")
        carry = s // 10
    return "".join(out)


def target(a: int, b: int, fmt: str) -> str:
    """What the model writes after ``a+b=``: the sum (and, for ``scratchpad``, the steps first), then ``$``."""
    if fmt == "direct":
        return f"{a + b}$"
    if fmt == "scratchpad":
        return f"{scratch_steps(a, b)}={a + b}$"
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def scratch_tokens(n_digits: int) -> int:
    """Extra tokens the scratchpad costs for two ``n_digits``-digit operands: 5 per digit and the ``=``."""
    return 5 * n_digits + 1


def draw_operands(n: int, lo: int, hi: int, gen: torch.Generator, same_length: bool = False) -> list[tuple[int, int]]:
    """``n`` pairs of operands with ``lo``..``hi`` digits each (independently, or the same count)."""
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= lo <= hi digits, got lo={lo}, hi={hi}")
    la = torch.randint(lo, hi + 1, (n,), generator=gen)
    lb = la.clone() if same_length else torch.randint(lo, hi + 1, (n,), generator=gen)
    u = torch.rand(n, 2, generator=gen, dtype=torch.float64)

    def number(L: int, r: float) -> int:
        low = 0 if L == 1 else 10 ** (L - 1)
        return low + int(r * (10 ** L - low))

    return [(number(int(x), float(r[0])), number(int(y), float(r[1]))) for x, y, r in zip(la, lb, u)]


@dataclass
class AdditionRecipe:
    """Model sizes and training settings (both formats use the same)."""

    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    n_ctx: int = 48  # holds a 5-digit problem with its scratchpad (45 tokens)
    batch_size: int = 32
    steps: int = 1800
    lr: float = 3e-3
    warmup: int = 50
    train_max_digits: int = 3
    test_max_digits: int = 5
    n_test: int = 100  # problems per digit count
    max_offset: int = 0  # training problems start at a random offset 0..max_offset in the window (0: at the start)

    def model_config(self) -> GPTConfig:
        return GPTConfig(vocab_size=len(VOCAB), n_ctx=self.n_ctx, d_model=self.d_model, n_heads=self.n_heads,
                         n_layers=self.n_layers, dropout=0.0)


def make_batch(pairs: list[tuple[int, int]], fmt: str, n_ctx: int, gen: torch.Generator | None = None,
               max_offset: int | None = None) -> tuple[Tensor, Tensor]:
    """Inputs ``x`` and targets ``y`` (both ``(n, T)``) for next-token training.

    Each example sits at a random offset (``gen``; offset 0 without it; at most ``max_offset``,
    by default anywhere in the ``n_ctx`` window) after filler; ``T`` is the longest example's end
    (at most ``n_ctx``). ``y`` is ``-100`` (ignored) except on the tokens after the first ``=``.
    """
    x = torch.full((len(pairs), n_ctx + 1), FILL)
    keep = torch.zeros(len(pairs), n_ctx + 1, dtype=torch.bool)
    for i, (a, b) in enumerate(pairs):
        prompt, answer = encode(f"{a}+{b}="), encode(target(a, b, fmt))
        L = len(prompt) + len(answer)
        if L > n_ctx + 1:
            raise ValueError(f"{a}+{b} in format {fmt!r} needs {L} tokens; n_ctx={n_ctx} is too small")
        hi = n_ctx + 1 - L if max_offset is None else min(max_offset, n_ctx + 1 - L)
        off = 0 if gen is None else int(torch.randint(0, hi + 1, (1,), generator=gen))
        x[i, off:off + L] = torch.tensor(prompt + answer)
        keep[i, off + len(prompt):off + L] = True
    T = int(keep.any(0).nonzero().max()) if keep.any() else 1  # last target position
    y = torch.where(keep, x, -100)[:, 1:T + 1]
    return x[:, :T], y


def addition_loss(model: GPT, x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of the answer tokens (the others are ``-100``)."""
    logits = model(x, need_weights=False).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)


@torch.no_grad()
def solve(model: GPT, pairs: list[tuple[int, int]], max_new: int | None = None) -> list[str]:
    """Greedy continuation of ``a+b=`` for every pair (prompts right-aligned after filler), up to ``$``."""
    n_ctx = model.cfg.n_ctx
    prompts = [encode(f"{a}+{b}=") for a, b in pairs]
    P = max(len(p) for p in prompts)
    max_new = n_ctx - P if max_new is None else min(max_new, n_ctx - P)
    x = torch.full((len(pairs), P), FILL)
    for i, p in enumerate(prompts):
        x[i, P - len(p):] = torch.tensor(p)
    out = []
    for _ in range(max_new):
        nxt = model(x, need_weights=False).logits[:, -1].argmax(-1)
        x = torch.cat([x, nxt[:, None]], 1)
        out.append(nxt)
        if (torch.stack(out, 1) == STOI["$"]).any(1).all():
            break
    texts = []
    for row in torch.stack(out, 1).tolist():
        s = decode(row)
        texts.append(s.split("$")[0] + "$" if "$" in s else s)
    return texts


def answer_of(text: str) -> str | None:
    """The final sum written in a generated continuation (after the last ``=``), or None if unfinished."""
    if not text.endswith("$"):
        return None
    return text[:-1].split("=")[-1]


def exact_match(model: GPT, pairs: list[tuple[int, int]]) -> list[bool]:
    """Whether the generated final sum equals ``a + b``, per pair."""
    return [answer_of(t) == str(a + b) for t, (a, b) in zip(solve(model, pairs), pairs)]


def test_sets(recipe: AdditionRecipe, seed: int = 12345) -> dict[int, list[tuple[int, int]]]:
    """Fixed test problems: ``n_test`` pairs of two ``n``-digit operands for n = 1..test_max_digits."""
    gen = torch.Generator().manual_seed(seed)
    return {n: draw_operands(recipe.n_test, n, n, gen, same_length=True)
            for n in range(1, recipe.test_max_digits + 1)}


def train_addition(fmt: str, seed: int, recipe: AdditionRecipe, stop_after: int | None = None
                   ) -> tuple[GPT, list[float]]:
    """Train one model; returns it and the loss of every step (the first ``stop_after`` steps only if given)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    torch.manual_seed(seed)
    model = GPT(recipe.model_config())
    gen = torch.Generator().manual_seed(1000 + seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    losses = []
    model.train()
    for step in range(recipe.steps if stop_after is None else stop_after):
        pairs = draw_operands(recipe.batch_size, 1, recipe.train_max_digits, gen)
        x, y = make_batch(pairs, fmt, recipe.n_ctx, gen, recipe.max_offset)
        loss = addition_loss(model, x, y)
        optimizer_step(opt, loss, warmup_cosine(step, recipe.lr, recipe.warmup, recipe.steps), model.parameters(), 1.0)
        losses.append(loss.item())
    return model.eval(), losses


def save_addition(path: str | Path, models: dict[str, dict[int, GPT]], recipe: AdditionRecipe, log: dict) -> str:
    """Write every model (float16 weights) and, next to it, the JSON log; returns the checkpoint's sha256."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    states = {fmt: {str(s): {k: v.detach().half().clone() for k, v in m.state_dict().items() if k != "lm_head.weight"}
                    for s, m in per.items()} for fmt, per in models.items()}
    torch.save({"format": "wmbook-addition-1", "recipe": dataclasses.asdict(recipe), "states": states}, path)
    sha = file_sha256(path)
    log = {"checkpoint": path.name, "sha256": sha, "recipe": dataclasses.asdict(recipe), **log}
    path.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    return sha


class AdditionRun(NamedTuple):
    models: dict[str, dict[int, GPT]]  # format -> seed -> model (float32, eval mode)
    recipe: AdditionRecipe
    log: dict


def load_addition(path: str | Path | None = None, sha256: str | None = "committed") -> AdditionRun:
    """Load the models written by ``scripts/train_addition.py`` and their log, both sha256-verified.

    ``sha256="committed"`` checks the recorded hashes of the committed file; ``None`` skips the check.
    """
    committed = sha256 == "committed"
    sha = ADDITION_SHA256 if committed else sha256
    path = verify_checkpoint(path if path is not None else ADDITION_FILE, sha, _REGENERATE,
                             where="wmbook/lab/scratchpad.py (ADDITION_SHA256)")
    ckpt = load_payload(path, "wmbook-addition-1", "addition", _REGENERATE)
    recipe = AdditionRecipe(**ckpt["recipe"])
    models: dict[str, dict[int, GPT]] = {}
    for fmt, per in ckpt["states"].items():
        models[fmt] = {int(s): gpt_from_state(recipe.model_config(), state).eval() for s, state in per.items()}
    log = load_paired_log(path, None, ADDITION_LOG_SHA256 if committed else None, _REGENERATE,
                          where="wmbook/lab/scratchpad.py (ADDITION_LOG_SHA256)")
    return AdditionRun(models, recipe, log)


__all__ = ["VOCAB", "FORMATS", "ADDITION_FILE", "AdditionRecipe", "AdditionRun", "encode", "decode",
           "scratch_steps", "target", "scratch_tokens", "draw_operands", "make_batch", "addition_loss", "solve",
           "answer_of", "exact_match", "test_sets", "train_addition", "save_addition", "load_addition"]
