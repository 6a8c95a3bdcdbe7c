r"""REINFORCE with a baseline and a KL penalty on the character GPT (page 8.3, section 8.3.2).

The policy :math:`\pi_\theta` is a copy of the Shakespeare character GPT of page 3.3
(:func:`wmbook.lab.char_gpt.load_char_gpt`); the frozen original is the reference :math:`\pi_0`.
A sample :math:`x = x_1 \dots x_T` (``length`` characters after a fixed prompt) earns a reward
:math:`R(x)` that a program computes (:func:`letter_reward`: the fraction of its characters that
are one target letter). As in Ziegler et al. (2019) the reward the policy maximises is penalised
by how far the sample's log-probability moved from the reference,

.. math::

    r(x) = R(x) - \beta\,\frac{1}{T}\sum_{t=1}^{T}
           \bigl[\log \pi_\theta(x_t \mid x_{<t}) - \log \pi_0(x_t \mid x_{<t})\bigr],

whose expectation is :math:`\mathbb{E}[R] - \beta\,\mathrm{KL}(\pi_\theta \,\|\, \pi_0)` per
character. REINFORCE (Williams 1992) follows the gradient estimate

.. math::

    \nabla_\theta J \approx \frac{1}{B}\sum_{i=1}^{B} \bigl(r(x^{(i)}) - b_i\bigr)\,
    \frac{1}{T}\sum_{t} \nabla_\theta \log \pi_\theta(x^{(i)}_t \mid x^{(i)}_{<t}),

with the leave-one-out baseline :math:`b_i = \frac{1}{B-1}\sum_{j\ne i} r(x^{(j)})` (it does not
depend on :math:`x^{(i)}`, so the estimate stays unbiased, and it lowers the variance). The
penalised reward is treated as a constant (no gradient flows through its KL term).

What is logged every step (:func:`reinforce`): the mean reward :math:`R`, the exact KL per
character :math:`\frac1T\sum_t \mathrm{KL}(\pi_\theta(\cdot\mid x_{<t})\,\|\,\pi_0(\cdot\mid x_{<t}))`
on the samples' prefixes, and the reference model's perplexity of the samples,
:math:`\exp(-\frac1T\sum_t \log\pi_0(x_t\mid x_{<t}))` (how "Shakespearean" the original finds them).
With :math:`\beta = 0` nothing holds the policy near :math:`\pi_0`, and the reward is "hacked":
the samples fill with the target letter, the KL and the perplexity climb.

``scripts/train_reinforce.py`` runs :func:`reinforce` for several seeds and five KL weights
(:math:`\beta` = 0.3, 0, 0.03, 0.1, 1) and writes the first seed's policy with the first weight
(float16, ``wmbook/data/checkpoints/reinforce_char_gpt.pt``) with the JSON log of every run next
to it; :func:`load_reinforce` reads both back after checking their sha256s, and :func:`frontier`
summarises the log per :math:`\beta` (the reward–KL frontier of page 8.3: the penalty trades
reward for staying near :math:`\pi_0`).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from wmbook.data.checkpoint import CHECKPOINT_DIR, load_log
from wmbook.nn.gpt import GPT
from wmbook.nn.sampling import next_token_logits

REINFORCE_FILE = CHECKPOINT_DIR / "reinforce_char_gpt.pt"
REINFORCE_LOG_FILE = REINFORCE_FILE.with_suffix(".json")
#: sha256 of the committed policy (float16) and of its log, as printed by ``scripts/train_reinforce.py``.
REINFORCE_SHA256 = "4ab8ea19a0cbe10c5135ec82781f47dbd4af5c4545ccf4fcbf182d95149e7391"
REINFORCE_LOG_SHA256 = "17d041fe1d0fa4433843af1deb07d2a9cf829e06182d4373bdb8c1e89250dfa1"
_REGENERATE = "python scripts/train_reinforce.py  (5 to 25 minutes on one thread, by load)"


@dataclass
class ReinforceRecipe:
    """Settings of one REINFORCE run (the defaults are the committed runs')."""

    target: str = "e"  # the letter whose frequency is the reward
    prompt: str = "\n"  # every sample starts after this
    length: int = 48  # characters sampled per sequence (T)
    batch_size: int = 16  # samples per step (B)
    steps: int = 60
    lr: float = 1e-4
    beta: float = 0.3  # KL penalty weight; 0 = no penalty
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.target) != 1:
            raise ValueError(f"target must be one character, got {self.target!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (the leave-one-out baseline needs another sample), "
                             f"got {self.batch_size}")
        if self.length < 1 or self.steps < 1 or self.lr <= 0 or self.beta < 0 or not self.prompt:
            raise ValueError("length and steps must be >= 1, lr > 0, beta >= 0 and the prompt non-empty; "
                             f"got {dataclasses.asdict(self)}")


def letter_reward(texts: Sequence[str], target: str) -> Tensor:
    """R(x): the fraction of each text's characters equal to ``target`` (a float tensor of len(texts))."""
    if len(target) != 1:
        raise ValueError(f"target must be one character, got {target!r}")
    if any(len(t) == 0 for t in texts):
        raise ValueError("every text must have at least one character")
    return torch.tensor([t.count(target) / len(t) for t in texts], dtype=torch.float32)


def leave_one_out_baseline(r: Tensor) -> Tensor:
    """b_i = mean of the other samples' rewards: (sum(r) - r_i) / (B - 1)."""
    if r.dim() != 1 or r.numel() < 2:
        raise ValueError(f"r must be a 1-D tensor of >= 2 rewards, got shape {tuple(r.shape)}")
    return (r.sum() - r) / (r.numel() - 1)


@torch.no_grad()
def sample(model: GPT, prompt_ids: Sequence[int], n: int, length: int, generator: torch.Generator) -> Tensor:
    """``n`` samples of ``length`` tokens after the prompt (temperature 1, KV cache): (n, P + length)."""
    idx = torch.tensor([list(prompt_ids)] * n, dtype=torch.long)
    was = model.training
    model.eval()
    past = None
    for _ in range(length):
        logits, past = next_token_logits(model, idx, past, use_cache=True, need_weights=False)
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
    model.train(was)
    return idx


def token_logprobs(model: GPT, idx: Tensor, n_prompt: int) -> tuple[Tensor, Tensor]:
    """Log-probabilities of the sampled tokens (B, T) and the full log-distributions (B, T, V)
    at the positions that predict them (the T tokens after the ``n_prompt`` prompt tokens)."""
    logits = model(idx[:, :-1], need_weights=False).logits[:, n_prompt - 1:].float()  # (B, T, V)
    logp = F.log_softmax(logits, dim=-1)
    taken = logp.gather(-1, idx[:, n_prompt:, None]).squeeze(-1)  # (B, T)
    return taken, logp


def exact_kl_per_char(logp: Tensor, logp_ref: Tensor) -> Tensor:
    r"""Per sample: mean over positions of KL(pi(.|x_<t) || pi_0(.|x_<t)) = sum_v p (log p - log p0). (B,)"""
    return (logp.exp() * (logp - logp_ref)).sum(-1).mean(-1)


class Step(NamedTuple):
    reward: float  # mean R over the batch
    kl: float  # mean exact KL per character to the reference
    ref_ppl: float  # the reference model's perplexity of the samples
    loss: float


def reinforce(model: GPT, encode: Callable[[str], list[int]], decode: Callable[[Sequence[int]], str],
              recipe: ReinforceRecipe, steps: int | None = None,
              on_step: Callable[[int, Step], None] | None = None) -> tuple[GPT, list[Step]]:
    """Train a copy of ``model`` with REINFORCE toward :func:`letter_reward` (formula: module doc).

    ``model`` (the reference pi_0) is left untouched. Returns the trained copy and one
    :class:`Step` per step. ``steps`` (default ``recipe.steps``) runs only the first steps of
    the recipe: the learning rate is constant, so they repeat a longer run's start exactly.
    """
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    policy = copy.deepcopy(model).train()
    for p in policy.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(policy.parameters(), lr=recipe.lr)
    prompt = encode(recipe.prompt)
    P = len(prompt)
    if P + recipe.length > model.cfg.n_ctx:
        raise ValueError(f"prompt ({P}) + length ({recipe.length}) exceed the model's n_ctx={model.cfg.n_ctx}")
    history = []
    for step in range(recipe.steps if steps is None else steps):
        idx = sample(policy, prompt, recipe.batch_size, recipe.length, gen)
        texts = [decode(row[P:].tolist()) for row in idx]
        R = letter_reward(texts, recipe.target)
        logp_taken, logp = token_logprobs(policy, idx, P)
        with torch.no_grad():
            ref_taken, ref_logp = token_logprobs(ref, idx, P)
            kl_sample = (logp_taken - ref_taken).mean(-1)  # (B,) sampled estimate, in the reward
            r = R - recipe.beta * kl_sample
            adv = r - leave_one_out_baseline(r)
            kl = exact_kl_per_char(logp, ref_logp).mean()
            ref_ppl = torch.exp(-ref_taken.mean())
        loss = -(adv * logp_taken.mean(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec = Step(float(R.mean()), float(kl), float(ref_ppl), float(loss.detach()))
        history.append(rec)
        if on_step is not None:
            on_step(step, rec)
    return policy.eval(), history


def sample_texts(model: GPT, encode, decode, prompt: str, n: int, length: int, seed: int) -> list[str]:
    """``n`` decoded samples (without the prompt), seeded."""
    P = len(encode(prompt))
    idx = sample(model, encode(prompt), n, length, torch.Generator().manual_seed(seed))
    return [decode(row[P:].tolist()) for row in idx]


def save_policy(path, policy: GPT, log: dict) -> str:
    """Write the policy's weights as float16 (a tied ``lm_head`` once) and ``<name>.json`` with
    ``log`` plus the weights' file name and sha256; returns that sha256."""
    import json
    from pathlib import Path

    from wmbook.data.checkpoint import file_sha256

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous().clone() for k, v in policy.state_dict().items()
             if k != "lm_head.weight" or not policy.cfg.tie_weights}
    torch.save({"format": "wmbook-reinforce-1", "config": dataclasses.asdict(policy.cfg), "state_dict": state}, path)
    sha = file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps({"checkpoint": path.name, "sha256": sha, **log}, indent=1) + "\n",
                                         encoding="utf-8")
    return sha


class ReinforceRuns(NamedTuple):
    """What :func:`load_reinforce` returns."""

    policy: GPT  # the first seed's policy trained with the KL penalty (float16 weights, as float32)
    log: dict  # recipe, every run's per-step records, samples before and after


def load_reinforce(path=None, sha256: str | None = REINFORCE_SHA256,
                   log_sha256: str | None = REINFORCE_LOG_SHA256) -> ReinforceRuns:
    """The policy and log of ``scripts/train_reinforce.py``, both sha256-checked (defaults: the committed files)."""
    from wmbook.data.checkpoint import CheckpointError, load_payload, verify_checkpoint
    from wmbook.lab.char_gpt import gpt_from_state
    from wmbook.nn.gpt import GPTConfig

    path = verify_checkpoint(path if path is not None else REINFORCE_FILE, sha256, _REGENERATE,
                             where="wmbook/lab/rl.py (REINFORCE_SHA256)")
    blob = load_payload(path, "wmbook-reinforce-1", "REINFORCE", _REGENERATE)
    log = load_log(path.with_suffix(".json"), log_sha256, _REGENERATE, where="wmbook/lab/rl.py (REINFORCE_LOG_SHA256)")
    if sha256 is not None and log.get("sha256") != sha256:
        raise CheckpointError(f"the log {path.with_suffix('.json')} names another checkpoint; regenerate with: {_REGENERATE}")
    model = gpt_from_state(GPTConfig(**blob["config"]), blob["state_dict"])
    return ReinforceRuns(model.eval(), log)


class FrontierPoint(NamedTuple):
    """One KL weight's end of training, over seeds (what :func:`frontier` returns)."""

    beta: float
    n_seeds: int
    reward: float  # mean over seeds of the run's final reward R
    reward_sd: float  # their sample standard deviation (ddof = 1; nan with one seed)
    kl: float  # mean final exact KL per character to pi_0 (nats)
    kl_sd: float
    ref_ppl: float  # mean final perplexity of the samples under pi_0
    ref_ppl_sd: float


def frontier(log: dict, last: int = 5) -> list[FrontierPoint]:
    r"""The reward–KL frontier of a ``scripts/train_reinforce.py`` log, one point per KL weight.

    For every run, its final value of a quantity :math:`q` (reward :math:`R`, KL per character,
    :math:`\pi_0`'s perplexity of the samples) is the mean of its last ``last`` logged steps,
    :math:`\bar q = \frac{1}{L}\sum_{t=S-L+1}^{S} q_t` (:math:`L` = ``last``, :math:`S` the run's steps); the point of a :math:`\beta` is the mean and the
    sample standard deviation (ddof = 1) of :math:`\bar q` over that :math:`\beta`'s seeds.
    Points are sorted by increasing :math:`\beta` (page 8.3, section 8.3.2).
    """
    runs = log.get("runs") if isinstance(log, dict) else None
    if not runs:
        raise ValueError("log must be a dict with a non-empty 'runs' list (the JSON log of scripts/train_reinforce.py)")
    if last < 1:
        raise ValueError(f"last must be >= 1 step, got {last}")
    keys = ("reward", "kl", "ref_ppl")
    by_beta: dict[float, list[dict]] = {}
    for r in runs:
        missing = [k for k in ("beta", *keys) if k not in r]
        if missing:
            raise ValueError(f"a run of the log lacks {missing}; regenerate with: {_REGENERATE}")
        if any(len(r[k]) < last for k in keys):
            raise ValueError(f"a run (beta = {r['beta']}) logged fewer than last={last} steps; pass a smaller last")
        by_beta.setdefault(float(r["beta"]), []).append(r)
    points = []
    for beta in sorted(by_beta):
        ends = torch.tensor([[sum(r[k][-last:]) / last for k in keys] for r in by_beta[beta]], dtype=torch.float64)
        m = ends.mean(0)
        sd = ends.std(0, unbiased=True) if len(ends) > 1 else torch.full((3,), float("nan"), dtype=torch.float64)
        points.append(FrontierPoint(beta, len(ends), float(m[0]), float(sd[0]), float(m[1]), float(sd[1]),
                                    float(m[2]), float(sd[2])))
    return points


__all__ = ["FrontierPoint", "REINFORCE_FILE", "REINFORCE_LOG_FILE", "REINFORCE_LOG_SHA256", "REINFORCE_SHA256",
           "ReinforceRecipe", "ReinforceRuns", "Step", "exact_kl_per_char", "frontier", "leave_one_out_baseline",
           "letter_reward", "load_reinforce", "reinforce", "sample", "sample_texts", "save_policy", "token_logprobs"]
