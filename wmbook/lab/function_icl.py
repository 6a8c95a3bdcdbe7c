r"""Learning a function in context (Garg et al. 2022): linear regression from the prompt alone.

Explained on page 2.3, "In-context learning". A prompt holds :math:`k` examples of a random
linear function and a query,

.. math::
    (x_1, y_1, \dots, x_k, y_k, x_{k+1}), \qquad y_i = w^\top x_i,\ w \sim \mathcal{N}(0, I_d),

and the model must output :math:`\hat y_{k+1}`. A new :math:`w` is drawn for every prompt, so no
weight can store it: the model has to *infer* it from the examples in its context. The
baselines are least squares (the optimum for this prior, exact once :math:`k \ge d`), the
nearest neighbour and averaging :math:`\hat w = \frac1k\sum_i y_i x_i`. Errors are squared
errors divided by :math:`d` (a guess of 0 scores 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wmbook.nn.attention import causal_mask
from wmbook.nn.transformer import EncoderBlock, TransformerConfig


class RegressionPrompts(NamedTuple):
    xs: Tensor  # (B, k + 1, d): the k examples and the query
    ys: Tensor  # (B, k + 1): targets (the last one is what must be predicted)
    w: Tensor  # (B, d): the hidden function


def linear_prompts(batch: int, k: int, d: int, generator: torch.Generator | None = None) -> RegressionPrompts:
    """``batch`` prompts of ``k`` examples of random linear functions in ``d`` dimensions, plus a query."""
    if batch < 1 or k < 0 or d < 1:
        raise ValueError(f"need batch >= 1, k >= 0, d >= 1; got {batch}, {k}, {d}")
    xs = torch.randn(batch, k + 1, d, generator=generator)
    w = torch.randn(batch, d, generator=generator)
    ys = (xs @ w[:, :, None]).squeeze(-1)  # (B, k + 1)
    return RegressionPrompts(xs, ys, w)


def least_squares(xs: Tensor, ys: Tensor) -> Tensor:
    """Predict the query from the first k examples with the minimum-norm least-squares fit (pinv)."""
    X, y = xs[:, :-1], ys[:, :-1]  # (B, k, d), (B, k)
    if X.shape[1] == 0:
        return torch.zeros(xs.shape[0])
    w_hat = torch.linalg.pinv(X) @ y[:, :, None]  # (B, d, 1)
    return (xs[:, -1:] @ w_hat).squeeze(-1).squeeze(-1)


def nearest_neighbour(xs: Tensor, ys: Tensor) -> Tensor:
    """Predict the query with the target of the closest example (0 with no example)."""
    if xs.shape[1] == 1:
        return torch.zeros(xs.shape[0])
    dist = (xs[:, :-1] - xs[:, -1:]).norm(dim=-1)  # (B, k)
    return ys[:, :-1].gather(1, dist.argmin(dim=1, keepdim=True)).squeeze(1)


def averaging(xs: Tensor, ys: Tensor) -> Tensor:
    r"""Predict with :math:`\hat w = \frac1k \sum_i y_i x_i` (unbiased for :math:`x \sim \mathcal N(0, I)`)."""
    if xs.shape[1] == 1:
        return torch.zeros(xs.shape[0])
    w_hat = (ys[:, :-1, None] * xs[:, :-1]).mean(dim=1)  # (B, d)
    return (xs[:, -1] * w_hat).sum(-1)


def squared_error(pred: Tensor, ys: Tensor) -> Tensor:
    """Per-prompt squared error on the query, divided by d-independent scale 1 (targets have variance d)."""
    return (pred - ys[:, -1]) ** 2


@dataclass
class ICLRegressorConfig:
    d: int = 5  # input dimension
    max_k: int = 12  # most examples in a prompt it is trained on
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 3


class ICLRegressor(nn.Module):
    """A small causal Transformer that reads (x_1, y_1, ..., x_k, y_k, x_q) and predicts y at every x.

    Each x and each y becomes one token: ``[x, 0]`` and ``[0…0, y]`` are read in by one linear
    layer, learned positions are added, pre-LN blocks with a causal mask follow, and a linear
    read-out at the x positions predicts the y that comes next (Garg et al.'s design).
    """

    def __init__(self, cfg: ICLRegressorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_ctx = 2 * (cfg.max_k + 1)
        block = TransformerConfig(vocab_size=1, d_model=cfg.d_model, n_heads=cfg.n_heads, d_ff=4 * cfg.d_model,
                                  n_layers=cfg.n_layers, n_ctx=n_ctx, dropout=0.0, norm_first=True,
                                  activation="gelu")
        self.read_in = nn.Linear(cfg.d + 1, cfg.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(n_ctx, cfg.d_model))
        self.blocks = nn.ModuleList(EncoderBlock(block) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.read_out = nn.Linear(cfg.d_model, 1)

    def forward(self, xs: Tensor, ys: Tensor) -> Tensor:
        """Predictions ``(B, k + 1)``: entry i is the prediction of y_i from x_1, y_1, ..., x_i."""
        B, n, d = xs.shape
        if d != self.cfg.d:
            raise ValueError(f"inputs have d={d}, the model was built for d={self.cfg.d}")
        if n > self.cfg.max_k + 1:
            raise ValueError(f"{n - 1} examples exceed the trained maximum max_k={self.cfg.max_k}")
        x_tok = torch.cat([xs, torch.zeros(B, n, 1)], dim=-1)  # (B, n, d + 1)
        y_tok = torch.cat([torch.zeros(B, n, d), ys[:, :, None]], dim=-1)  # (B, n, d + 1)
        seq = torch.stack([x_tok, y_tok], dim=2).reshape(B, 2 * n, d + 1)  # x1 y1 x2 y2 ...
        h = self.read_in(seq) + self.pos[: 2 * n]
        mask = causal_mask(2 * n, device=h.device)
        for block in self.blocks:
            h = block(h, mask).hidden
        return self.read_out(self.ln(h))[:, 0::2, 0]  # at the x positions: (B, n)


def save_regressor(model: ICLRegressor, path, log: dict) -> None:
    torch.save({"config": asdict(model.cfg), "state_dict": model.state_dict(), "log": log}, path)


ICL_REGRESSOR_FILE = "icl_linreg.pt"
#: sha256 of the committed checkpoint, as printed by ``scripts/train_icl_regression.py``.
ICL_REGRESSOR_SHA256 = "2bb941650bfe9c444402c91404d06e5d49503080b91192cc0f5fef05569dd5ef"
#: sha256 of the other committed seeds, ``scripts/train_icl_regression.py --seed s --out
#: wmbook/data/checkpoints/icl_linreg_seed{s}.pt`` (the committed recipe otherwise): page 2.3 quotes
#: the mean ± sd over seed 0 and these.
ICL_REGRESSOR_SEEDS_SHA256: dict[int, str] = {
    1: "63cc36cbe4ed4063d2d3acc60284ac2c648368fa5211b84b8578a5cc95a9ce3a",
    2: "1dd27149e4c3ee785e314069d581401471825bbd7c8b4f6dc96c7583f36e18b8",
    3: "5efdb3e314eb2c3fdeefec65972d010117f247b02efb03e8179d750e42559931",
    4: "019a483955724b32980a432c03f41e83601744cd38393368244647ca279afb64",
}
_REGENERATE = "python scripts/train_icl_regression.py{}  (a few minutes on a laptop CPU)"


def icl_regressor_file(seed: int = 0) -> str:
    """The committed checkpoint of one seed: ``icl_linreg.pt`` for seed 0, ``icl_linreg_seed{seed}.pt`` otherwise."""
    from wmbook.data.checkpoint import seed_file

    return seed_file(ICL_REGRESSOR_FILE, seed)


def load_icl_regressor(seed: int = 0) -> tuple[ICLRegressor, dict]:
    """The committed in-context regression model of one seed (page 2.3) and its training log, in eval mode.

    Seed 0 (the default) is the page's example model; the other seeds are those of
    ``ICL_REGRESSOR_SEEDS_SHA256``. Each file is sha256-checked.
    """
    from wmbook.data.checkpoint import CHECKPOINT_DIR, verify_checkpoint

    if seed == 0:
        sha, where = ICL_REGRESSOR_SHA256, "ICL_REGRESSOR_SHA256"
    elif seed in ICL_REGRESSOR_SEEDS_SHA256:
        sha, where = ICL_REGRESSOR_SEEDS_SHA256[seed], "ICL_REGRESSOR_SEEDS_SHA256"
    else:
        raise ValueError(f"no committed checkpoint for seed {seed}; committed: {[0, *sorted(ICL_REGRESSOR_SEEDS_SHA256)]}")
    file = icl_regressor_file(seed)
    options = "" if seed == 0 else f" --seed {seed} --out wmbook/data/checkpoints/{file}"
    path = verify_checkpoint(CHECKPOINT_DIR / file, sha, _REGENERATE.format(options),
                             where=f"wmbook/lab/function_icl.py ({where})")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = ICLRegressor(ICLRegressorConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["log"]


def load_icl_regressor_seeds() -> dict[int, tuple[ICLRegressor, dict]]:
    """Every committed seed of the regression recipe, ``{seed: (model, log)}``, seed 0 first, each sha256-checked.

    Raises :class:`ValueError` if a checkpoint was trained with another recipe (steps, batch,
    learning rate, model size) than seed 0's, or its log names another seed.
    """
    runs = {seed: load_icl_regressor(seed) for seed in [0, *sorted(ICL_REGRESSOR_SEEDS_SHA256)]}
    model0, log0 = runs[0]
    for seed, (model, log) in runs.items():
        same = all(log["config"][k] == log0["config"][k] for k in ("steps", "batch", "lr"))
        if not same or log["config"]["seed"] != seed or model.cfg != model0.cfg:
            raise ValueError(f"the checkpoint of seed {seed} was trained with another recipe: {log['config']}")
    return runs


@torch.no_grad()
def errors_by_k(model: ICLRegressor, prompts: RegressionPrompts, per_prompt: bool = False) -> Tensor:
    r"""The model's mean error at every number of examples: entry :math:`k` (0 .. n - 1) is

    .. math:: e_k = \frac{1}{B} \sum_{b=1}^{B} \frac{(\hat y^{(b)}_{k+1} - y^{(b)}_{k+1})^2}{d},

    where :math:`\hat y^{(b)}_{k+1}` is predicted from the first :math:`k` examples of prompt
    :math:`b` (one causal forward pass gives every :math:`k`): shape ``(n,)``. With
    ``per_prompt=True``, the terms of the sum, shape ``(B, n)``. Page 2.3 averages it over seeds.
    """
    pred = model(prompts.xs, prompts.ys)  # (B, n): entry k uses the k examples before it
    err = (pred - prompts.ys) ** 2 / prompts.xs.shape[-1]  # (B, n)
    return err if per_prompt else err.mean(0)
