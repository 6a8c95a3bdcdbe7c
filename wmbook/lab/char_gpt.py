r"""A character-level GPT on Tiny Shakespeare: recipe, data pipeline, baseline and checkpoint.

Explained on page 3.3, "GPT", section 3.3.2 (generative pre-training). The model is
:class:`wmbook.nn.gpt.GPT`, trained to predict every next character of a window of text,
i.e. to minimise the average negative log-likelihood

.. math::

    \mathcal{L}(\theta) = -\frac{1}{T}\sum_{t=1}^{T} \log p_\theta(x_t \mid x_{<t})
    \quad\text{(nats per character)}.

The recipe is nanoGPT's CPU recipe for ``shakespeare_char`` (4 layers, 4 heads,
width 128, windows of 64 characters, batches of 12, 2,000 steps, AdamW with
learning rate 1e-3, 100 warm-up steps, cosine decay to 1e-4, no dropout).
``scripts/train_char_gpt.py`` runs :func:`train_char_gpt` and writes the checkpoint
``wmbook/data/checkpoints/char_gpt_shakespeare.pt`` (plus its training log as JSON);
:func:`load_char_gpt` reads it back and checks its sha256.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from wmbook.data.checkpoint import (CHECKPOINT_DIR, CheckpointError, file_sha256, load_paired_log, load_payload,
                                    save_with_log, verify_checkpoint)
from wmbook.data.loaders import CharCorpus
from wmbook.nn.gpt import GPT, GPTConfig
from wmbook.nn.train import History, optimizer_step, warmup_cosine

#: Where the committed checkpoint lives (inside the installed package).
CHAR_GPT_FILE = CHECKPOINT_DIR / "char_gpt_shakespeare.pt"
#: sha256 of the committed checkpoint, as printed by ``scripts/train_char_gpt.py``.
CHAR_GPT_SHA256 = "5fa46301e3b29bd6e31e812da98f95d0becf592fc95889f0f695fe5a4d36c7e7"
#: sha256 of its training log (``char_gpt_shakespeare.json``), as printed by the same script.
CHAR_GPT_LOG_SHA256 = "e9259d6ff0271179b2c1f9a51aa3262448204960fd79b66c51fc401ad57f28dd"
_REGENERATE = "python scripts/train_char_gpt.py  (about 2 minutes on a laptop CPU)"




@dataclass
class CharGPTRecipe:
    """Model sizes and training settings (nanoGPT's ``shakespeare_char`` CPU recipe)."""

    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    block_size: int = 64  # characters per training window = the model's n_ctx
    batch_size: int = 12
    steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    lr_decay_steps: int = 2000  # cosine decay from lr to min_lr over these steps
    weight_decay: float = 0.1  # on matrices only, as nanoGPT does
    beta2: float = 0.99
    grad_clip: float = 1.0
    dropout: float = 0.0
    eval_every: int = 100
    eval_iters: int = 20  # batches per split for the logged loss estimates
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "block_size", "batch_size", "steps",
                     "lr_decay_steps", "eval_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.min_lr <= self.lr:
            raise ValueError(f"need 0 < min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, n_ctx=self.block_size, d_model=self.d_model,
                         n_heads=self.n_heads, n_layers=self.n_layers, dropout=self.dropout)

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay from ``lr`` to ``min_lr`` (nanoGPT's schedule)."""
        return warmup_cosine(step, self.lr, self.warmup, self.lr_decay_steps, self.min_lr, ramp=self.warmup + 1)


def random_windows(
    ids: Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """A batch of random windows ``x`` (B, T) and their next characters ``y`` (B, T).

    ``y[b, t] = ids[start_b + t + 1]``: the target of position t is the character after it.
    """
    if ids.dim() != 1 or len(ids) <= block_size + 1:
        raise ValueError(f"ids must be 1-d and longer than block_size + 1 = {block_size + 1}")
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = ids[starts[:, None] + offsets]  # (B, T)
    y = ids[starts[:, None] + offsets + 1]  # (B, T)
    return x, y


def lm_loss(model: GPT, x: Tensor, y: Tensor) -> Tensor:
    """Mean next-token cross-entropy, :math:`-\\frac{1}{BT}\\sum \\log p(y_{b,t} \\mid x_{b,\\le t})`."""
    logits = model(x).logits  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def _windows(ids: Tensor, block_size: int, max_windows: int | None) -> Tensor:
    starts = torch.arange(0, len(ids) - block_size - 1, block_size)  # non-overlapping windows
    if max_windows is not None and max_windows < len(starts):  # keep some, spread evenly
        starts = starts[torch.linspace(0, len(starts) - 1, max_windows).round().long()]
    return starts


@torch.no_grad()
def loss_by_position(
    model: GPT, ids: Tensor, block_size: int | None = None, max_windows: int | None = None,
    batch_size: int = 128,
) -> Tensor:
    """Mean loss (nats) at each position t of non-overlapping windows of ``ids``: (T,).

    Position t predicts token t + 1 from the t + 1 tokens it can see, so the curve
    shows how much the model gains from a longer context. ``max_windows`` keeps that
    many windows spread evenly over ``ids`` (a fixed slice; None = all).
    """
    block_size = block_size or model.cfg.n_ctx
    starts = _windows(ids, block_size, max_windows)
    was_training = model.training
    model.eval()
    total = torch.zeros(block_size, dtype=torch.float64)
    offsets = torch.arange(block_size)
    for chunk in starts.split(batch_size):
        x, y = ids[chunk[:, None] + offsets], ids[chunk[:, None] + offsets + 1]  # (b, T)
        logits = model(x).logits  # (b, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (b, T)
        total += nll.double().sum(dim=0)
    model.train(was_training)
    return total / len(starts)


def evaluate_lm(
    model: GPT, ids: Tensor, block_size: int | None = None, max_windows: int | None = None,
    batch_size: int = 128,
) -> float:
    """Deterministic loss (nats per token) on non-overlapping windows of ``ids``.

    Every window of ``block_size`` tokens predicts its next tokens, as in training, so
    this is the expectation of nanoGPT's random-batch estimate (see :func:`loss_by_position`).
    """
    return loss_by_position(model, ids, block_size, max_windows, batch_size).mean().item()


def bigram_loss(train_ids: Tensor, eval_ids: Tensor, vocab_size: int, alpha: float = 1.0) -> float:
    r"""Cross-entropy on ``eval_ids`` of the bigram model counted on ``train_ids``.

    :math:`p(b \mid a) = (n_{ab} + \alpha) / (n_a + \alpha V)` (add-:math:`\alpha`
    smoothing): the best a model can do that sees only the previous character.
    """
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    counts.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1,
                      dtype=torch.float64), accumulate=True)
    logp = ((counts + alpha) / (counts + alpha).sum(dim=1, keepdim=True)).log()  # (V, V)
    return -logp[eval_ids[:-1], eval_ids[1:]].mean().item()


def _optimizer(model: GPT, recipe: CharGPTRecipe) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, recipe.beta2))


@torch.no_grad()
def _estimate(model: GPT, splits: dict[str, Tensor], recipe: CharGPTRecipe) -> dict[str, float]:
    """Mean loss on ``eval_iters`` batches per split; the same batches at every evaluation."""
    model.eval()
    out = {}
    for i, (name, ids) in enumerate(splits.items()):
        g = torch.Generator().manual_seed(10_000 + i)
        batches = [random_windows(ids, recipe.block_size, recipe.batch_size, g)
                   for _ in range(recipe.eval_iters)]
        losses = [lm_loss(model, x, y).item() for x, y in batches]
        out[f"{name}_loss"] = sum(losses) / len(losses)
    model.train()
    return out


def train_char_gpt(
    corpus: CharCorpus, recipe: CharGPTRecipe | None = None,
    log: Callable[[dict], None] | None = None,
) -> tuple[GPT, History]:
    """Train a character GPT with ``recipe`` on ``corpus`` (CPU, seeded: repeatable).

    Returns the model (in eval mode) and its :class:`~wmbook.nn.train.History`: one record
    per step with the batch loss ``loss`` and the learning rate ``lr``, and every
    ``eval_every`` steps (and at the end) ``train_loss``/``val_loss`` estimated on
    fixed batches. ``log(record)`` is called with every evaluation record.
    """
    recipe = recipe or CharGPTRecipe()
    torch.manual_seed(recipe.seed)
    model = GPT(recipe.model_config(len(corpus.vocab)))
    splits = {"train": torch.tensor(corpus.encode(corpus.train)),
              "val": torch.tensor(corpus.encode(corpus.val))}
    opt = _optimizer(model, recipe)
    data_gen = torch.Generator().manual_seed(recipe.seed)
    history = History()
    t0 = time.perf_counter()

    def evaluate(step: int) -> None:
        seconds = time.perf_counter() - t0
        history.log(step, **_estimate(model, splits, recipe), seconds=seconds)
        if log is not None:
            log(history.records[-1])

    model.train()
    for step in range(recipe.steps):
        if recipe.eval_every and step % recipe.eval_every == 0:
            evaluate(step)
        x, y = random_windows(splits["train"], recipe.block_size, recipe.batch_size,
                              data_gen)  # (B, T) each; y is x shifted by one character
        loss = lm_loss(model, x, y)
        optimizer_step(opt, loss, recipe.lr_at(step), model.parameters(), recipe.grad_clip)
        history.log(step, loss=loss.item(), lr=recipe.lr_at(step))
    evaluate(recipe.steps)
    return model.eval(), history


def gpt_forward_flops(cfg: GPTConfig, n_query: int, n_key: int) -> int:
    r"""FLOPs (a multiply–add counts 2) of one GPT forward pass: arithmetic, not a measurement.

    ``n_query`` tokens go through the model and each attends to ``n_key`` keys (a full pass
    over :math:`n` tokens: ``n_query = n_key = n``; one step with a KV cache of :math:`n - 1`
    tokens: ``n_query = 1, n_key = n``). Per layer, the projections cost
    :math:`8 q d^2`, the MLP :math:`4 q d\,d_{ff}`, the scores :math:`QK^\top` and the
    weighted sum :math:`AV` :math:`4 q k d` (all :math:`q \times k` scores, as ``wmbook``'s
    attention computes them before masking); the output layer costs :math:`2 q d V`:

    .. math:: \text{FLOPs} = L\,(8 q d^2 + 4 q d\,d_{ff} + 4 q k d) + 2 q d V .

    LayerNorms, softmax, GELU and the embeddings' look-up are left out (they grow like the
    terms above, with smaller constants). With :math:`d_{ff} = 4d` a full pass over :math:`n`
    tokens costs :math:`n` times a cached step (page 3.3, section 3.3.3).
    """
    for name, v in (("n_query", n_query), ("n_key", n_key)):
        if v < 1 or int(v) != v:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    d, q, k = cfg.d_model, n_query, n_key
    per_layer = 8 * q * d * d + 4 * q * d * cfg.d_ff + 4 * q * k * d
    return cfg.n_layers * per_layer + 2 * q * d * cfg.vocab_size


def save_char_gpt(
    path: str | Path, model: GPT, vocab: Sequence[str], recipe: CharGPTRecipe, history: History,
    extra: dict | None = None, dtype: torch.dtype = torch.float32,
) -> str:
    """Write the checkpoint (weights as ``dtype``, config, vocab, recipe) and, next to it,
    ``<name>.json`` with the recipe and the evaluation records. Returns the sha256 of the .pt.
    :func:`gpt_from_state` reads the weights back (in float32)."""
    state = {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()
             if k != "lm_head.weight" or not model.cfg.tie_weights}  # tied: stored once, as wte
    payload = {"format": "wmbook-char-gpt-1", "config": dataclasses.asdict(model.cfg),
               "vocab": "".join(vocab), "recipe": dataclasses.asdict(recipe),
               "state_dict": state}
    return save_with_log(path, payload, history, recipe,
                         sum(p.numel() for p in model.parameters()), "val_loss", extra)


def gpt_from_state(config: GPTConfig, state_dict: dict[str, Tensor]) -> GPT:
    """A :class:`~wmbook.nn.gpt.GPT` of ``config`` with a checkpoint's weights, computed in float32
    (float16 ones are converted); a tied ``lm_head.weight``, stored once as ``wte.weight`` (see
    :func:`save_char_gpt`), is restored. The character GPTs of pages 3.3, 6.3, 8.2 and 8.3 load this way."""
    model = GPT(config)
    state = {k: v.float() for k, v in state_dict.items()}
    if model.cfg.tie_weights:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)
    return model


class CharGPT(NamedTuple):
    """What :func:`load_char_gpt` returns."""

    model: GPT
    encode: Callable[[str], list[int]]
    decode: Callable[[Sequence[int]], str]
    vocab: list[str]
    recipe: CharGPTRecipe
    log: dict  # the training log (the JSON next to the checkpoint; loading fails without it)


def load_char_gpt(path: str | Path | None = None, sha256: str | None = CHAR_GPT_SHA256) -> CharGPT:
    """Load the character GPT trained by ``scripts/train_char_gpt.py`` (page 3.3).

    With the defaults it reads the committed checkpoint and its training log and checks both
    sha256s; pass ``path`` (and ``sha256=None`` to skip the check) for a checkpoint of your own.
    The log (``<name>.json`` next to the checkpoint) must be there and name the checkpoint's
    sha256; its own sha256 is checked (``CHAR_GPT_LOG_SHA256``) with the committed weights'.

    Raises:
        CheckpointError: the file or its log is missing, has a different sha256, or is not a
            wmbook character-GPT checkpoint. The message says how to regenerate it.
    """
    path = verify_checkpoint(path if path is not None else CHAR_GPT_FILE, sha256, _REGENERATE,
                             where="wmbook/lab/char_gpt.py (CHAR_GPT_SHA256)")
    ckpt = load_payload(path, "wmbook-char-gpt-1", "character-GPT", _REGENERATE)
    model = gpt_from_state(GPTConfig(**ckpt["config"]), ckpt["state_dict"])
    vocab = list(ckpt["vocab"])
    corpus = CharCorpus(text="", train="", val="", vocab=vocab)  # encode/decode only
    log = load_paired_log(path, sha256, CHAR_GPT_LOG_SHA256 if sha256 == CHAR_GPT_SHA256 else None, _REGENERATE,
                          where="wmbook/lab/char_gpt.py (CHAR_GPT_LOG_SHA256)")
    return CharGPT(model.eval(), corpus.encode, corpus.decode, vocab,
                   CharGPTRecipe(**ckpt["recipe"]), log)


__all__ = [
    "CHAR_GPT_FILE", "CHAR_GPT_LOG_SHA256", "CHAR_GPT_SHA256", "CharGPT", "CharGPTRecipe", "CheckpointError",
    "bigram_loss", "evaluate_lm", "file_sha256", "gpt_from_state", "lm_loss", "load_char_gpt", "loss_by_position",
    "gpt_forward_flops", "random_windows", "save_char_gpt", "train_char_gpt",
]
