r"""Scale: the landmark models' sizes and compute, and what size changes in the book's own models.

Explained on page 1.1, "The rise of large language models".

*Compute estimate.* Training a dense Transformer of :math:`N` parameters on :math:`D` tokens costs
about

.. math::

    C \approx 6\,N\,D \quad\text{floating-point operations}

(2 per parameter and token for the forward pass, 4 for the backward pass; Kaplan et al. 2020).
:func:`six_nd` evaluates it (arithmetic, not a measurement) and :func:`compute_check` sets it
against the compute the model's source publishes, as the ratio published / 6ND.

*Size sweep.* :func:`train_size_sweep` trains the character GPT of page 3.3
(:mod:`wmbook.lab.char_gpt`) at several widths (``SWEEP_WIDTHS``, 4 layers and 4 heads each) and
several seeds, every run on the same data, the same batches per seed, the same number of steps
and the same schedule, so the only difference is the width (hence the parameter count and the
compute). ``scripts/train_char_gpt_sizes.py`` runs it and writes the seed-0 model of each width
with a JSON log of every run (:func:`save_size_sweep`); :func:`load_size_sweep` reads both back,
sha256-checked, and :func:`sweep_summary` gives the mean ± sd validation loss per width.

*Size and data sweep* (page 8.1, section 8.1.1). :func:`train_scale_sweep` runs the same recipe over
widths ``SCALE_WIDTHS`` and data budgets ``SCALE_STEPS`` (D = steps × 12 × 64 characters seen, each
(N, D) with its own cosine schedule, one seed); ``scripts/train_char_gpt_scale.py`` writes its log
(and only the smallest model) with :func:`save_size_sweep`, :func:`load_scale_sweep` reads them back
sha256-checked and :func:`scale_table` gives the (N, D, loss) table that
:mod:`wmbook.lab.scaling` fits with :math:`L(N) = E + A N^{-\alpha}` and
:math:`L(N, D) = E + A N^{-\alpha} + B D^{-\beta}`.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch

from wmbook.data.checkpoint import (CHECKPOINT_DIR, CheckpointError, load_paired_log, load_payload, save_with_log,
                                    verify_checkpoint)
from wmbook.data.loaders import CharCorpus
from wmbook.lab.char_gpt import CharGPTRecipe, evaluate_lm, gpt_from_state, train_char_gpt
from wmbook.nn.gpt import GPT, GPTConfig

#: Widths (d_model) of the sweep; every model has 4 layers and 4 heads, windows of 64 characters.
SWEEP_WIDTHS = (16, 32, 64, 128)
#: Training steps of every run (batches of 12 windows of 64 characters: 768 characters a step).
SWEEP_STEPS = 600
#: Seeds per width in the committed run.
SWEEP_SEEDS = 3
#: The committed checkpoint (the seed-0 model of each width) and its log.
SIZES_FILE = CHECKPOINT_DIR / "char_gpt_sizes.pt"
#: sha256 of ``char_gpt_sizes.pt``, as printed by ``scripts/train_char_gpt_sizes.py``.
SIZES_SHA256 = "022cf9a1866f4d1b64c449a1e05218bca40ce9c71270f0eef23616b72df29785"
#: sha256 of its log (``char_gpt_sizes.json``: every run's evaluations), printed by the same script.
SIZES_LOG_SHA256 = "4b8cc5346d3564157ddc72d5e62c777596b37085a6b02e2c6bf4c062c3424d3f"
_REGENERATE = "python scripts/train_char_gpt_sizes.py  (10-30 minutes on one CPU thread)"


def six_nd(n_params: float, n_tokens: float) -> float:
    r"""The training-compute estimate :math:`C = 6\,N\,D` (FLOPs) of a dense Transformer.

    ``n_params`` = N (for a mixture of experts, the parameters active per token), ``n_tokens`` = D,
    the tokens trained on. Arithmetic (page 1.1), not a measurement.

    >>> six_nd(175e9, 300e9)
    3.15e+23
    """
    if n_params <= 0 or n_tokens <= 0:
        raise ValueError(f"need N > 0 and D > 0, got N={n_params}, D={n_tokens}")
    return 6.0 * n_params * n_tokens


def compute_check(rows: Sequence[dict]) -> list[dict]:
    """The rows (dicts with ``params``, ``tokens``, ``compute_flops``; page 1.1's landmark table)
    that publish all three, each with ``six_nd`` and ``ratio`` = published compute / 6ND added.
    Rows with any of the three missing (None or NaN) are left out."""
    out = []
    for r in rows:
        n, d, c = r.get("params"), r.get("tokens"), r.get("compute_flops")
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (n, d, c)):
            continue
        est = six_nd(n, d)
        out.append({**r, "six_nd": est, "ratio": c / est})
    return out


def sweep_recipe(d_model: int, seed: int, steps: int = SWEEP_STEPS, stop_after: int | None = None) -> CharGPTRecipe:
    """The recipe of one run of the sweep: page 3.3's character GPT (4 layers, 4 heads, windows
    of 64, batches of 12, AdamW 1e-3 with 100 warm-up steps and cosine decay to 1e-4 over
    ``steps``) at width ``d_model``. ``stop_after`` runs only the first steps of that schedule."""
    return CharGPTRecipe(d_model=d_model, seed=seed, steps=stop_after or steps, lr_decay_steps=steps,
                         eval_every=100)


class SweepRun(NamedTuple):
    """One trained model of the sweep and its log record."""

    model: GPT
    record: dict


def train_size_sweep(
    corpus: CharCorpus, widths: Sequence[int] = SWEEP_WIDTHS, seeds: Sequence[int] = range(SWEEP_SEEDS),
    steps: int = SWEEP_STEPS, stop_after: int | None = None, log: Callable[[str], None] | None = None,
    score: bool = True,
) -> list[SweepRun]:
    """Train one character GPT per (width, seed) with :func:`sweep_recipe`; return them with their records.

    A record holds ``d_model``, ``seed``, ``parameters``, ``tokens`` (characters trained on:
    steps × batch × window), the logged estimates ``evals`` (every 100 steps) and ``val_loss``,
    the loss on the whole validation split (:func:`wmbook.lab.char_gpt.evaluate_lm`, nats/char;
    None with ``score=False``, which skips that evaluation, e.g. when only the start of a run is re-checked).
    """
    import time

    val_ids = torch.tensor(corpus.encode(corpus.val))
    runs = []
    for d in widths:
        for seed in seeds:
            recipe = sweep_recipe(d, seed, steps, stop_after)
            t0 = time.perf_counter()
            model, history = train_char_gpt(corpus, recipe)
            seconds = time.perf_counter() - t0
            record = {"d_model": d, "seed": seed, "parameters": sum(p.numel() for p in model.parameters()),
                      "tokens": recipe.steps * recipe.batch_size * recipe.block_size,
                      "val_loss": round(evaluate_lm(model, val_ids), 6) if score else None, "train_seconds": round(seconds, 1),
                      "evals": [{k: round(v, 6) for k, v in r.items() if k != "seconds"}
                                for r in history.records if "val_loss" in r]}
            runs.append(SweepRun(model, record))
            if log is not None:
                log(f"d_model {d:4d}  seed {seed}  {record['parameters']:8,d} parameters  "
                    f"val loss {record['val_loss'] if score else float('nan'):.4f}  ({seconds:.0f} s)")
    return runs


def save_size_sweep(path: str | Path, runs: Sequence[SweepRun], steps: int, extra: dict | None = None,
                    keep: Sequence[int] | None = None) -> str:
    """Write the first-seed model of each width (float32) and, next to it, the JSON log of every run.
    ``keep``: store only the models of these widths (default: every width; the log always holds every
    run). The log's recipe is that of ``runs[0]`` with ``steps``. Returns the sha256 of the checkpoint."""
    first = {}
    for run in runs:
        if keep is None or run.record["d_model"] in keep:
            first.setdefault(run.record["d_model"], run)
    if not first:
        raise ValueError(f"keep={keep} names none of the trained widths {sorted({r.record['d_model'] for r in runs})}")
    payload = {"format": "wmbook-char-gpt-sizes-1", "steps": steps,
               "models": {str(d): {"config": dataclasses.asdict(r.model.cfg),
                                   "state_dict": {k: v.detach().float().clone() for k, v in r.model.state_dict().items()
                                                  if k != "lm_head.weight" or not r.model.cfg.tie_weights},
                                   "seed": r.record["seed"]}
                          for d, r in first.items()}}
    from wmbook.nn.train import History

    history = History()
    for e in runs[0].record["evals"]:
        history.log(**e)
    recipe = sweep_recipe(runs[0].record["d_model"], runs[0].record["seed"], steps)
    return save_with_log(path, payload, history, recipe, runs[0].record["parameters"], "val_loss",
                         {"runs": [r.record for r in runs], **(extra or {})})


class SizeSweep(NamedTuple):
    """What :func:`load_size_sweep` returns: the seed-0 model of each width and the log."""

    models: dict[int, GPT]
    log: dict


def load_size_sweep(path: str | Path | None = None, sha256: str | None = SIZES_SHA256) -> SizeSweep:
    """The models and log of ``scripts/train_char_gpt_sizes.py`` (page 1.1), sha256-checked.

    With the defaults it reads the committed ``char_gpt_sizes.pt`` and its log
    (checked against ``SIZES_LOG_SHA256``); pass ``path`` (and ``sha256=None``) for a run of your own.
    Raises :class:`~wmbook.data.checkpoint.CheckpointError` if a file is missing, altered or foreign.
    """
    return _load_sweep(path if path is not None else SIZES_FILE, sha256,
                       SIZES_LOG_SHA256 if sha256 == SIZES_SHA256 and sha256 is not None else None,
                       _REGENERATE, "wmbook/lab/scale.py (SIZES_SHA256)", "wmbook/lab/scale.py (SIZES_LOG_SHA256)")


def _load_sweep(path: str | Path, sha256: str | None, log_sha256: str | None, regenerate: str, where: str,
                where_log: str) -> SizeSweep:
    """Read a checkpoint of :func:`save_size_sweep` and its log, checked against the given sha256s."""
    path = verify_checkpoint(Path(path), sha256, regenerate, where=where)
    blob = load_payload(path, "wmbook-char-gpt-sizes-1", "size-sweep", regenerate)
    models = {int(d): gpt_from_state(GPTConfig(**entry["config"]), entry["state_dict"]).eval()
              for d, entry in blob["models"].items()}
    log = load_paired_log(path, sha256, log_sha256, regenerate, where=where_log)
    return SizeSweep(models, log)


def sweep_summary(runs: Sequence[dict]) -> list[dict]:
    r"""Per width, in increasing order: ``d_model``, ``parameters``, ``tokens``, ``seeds``, the mean and
    sample sd (:math:`n-1`) of the validation loss over the seeds (``val_mean``, ``val_sd``) and the
    compute estimate ``six_nd`` (arithmetic). One dict per width (page 1.1)."""
    import statistics

    out = []
    for d in sorted({r["d_model"] for r in runs}):
        rs = [r for r in runs if r["d_model"] == d]
        losses = [r["val_loss"] for r in rs]
        out.append({"d_model": d, "parameters": rs[0]["parameters"], "tokens": rs[0]["tokens"], "seeds": len(rs),
                    "val_mean": statistics.fmean(losses),
                    "val_sd": statistics.stdev(losses) if len(losses) > 1 else float("nan"),
                    "six_nd": six_nd(rs[0]["parameters"], rs[0]["tokens"])})
    return out


# --------------------------------------------------------------- the (N, D) sweep of page 8.1

#: Widths (d_model) of page 8.1's sweep over size and data: 4 layers and 4 heads each, ~0.055 M to ~3.2 M parameters.
SCALE_WIDTHS = (32, 48, 64, 96, 128, 192, 256)
#: Training steps of its three data budgets (each its own cosine schedule); a step is 12 windows of 64 characters.
SCALE_STEPS = (250, 500, 1000)
#: The data budgets D: characters (tokens) seen in training, steps × 12 × 64.
SCALE_TOKENS = tuple(s * 12 * 64 for s in SCALE_STEPS)
#: The committed log of every (N, D) run, and the smallest model of the smallest budget (for the re-run check).
SCALE_FILE = CHECKPOINT_DIR / "char_gpt_scale.pt"
#: sha256 of ``char_gpt_scale.pt``, as printed by ``scripts/train_char_gpt_scale.py``.
SCALE_SHA256 = "9fb539260a989dc13cabd17c730a807eeb73e8f4fc4c4c8a0b27bf8070cdc1a5"
#: sha256 of its log ``char_gpt_scale.json``, printed by the same script.
SCALE_LOG_SHA256 = "0b41bdd6dfda7f94d42c675ae6693f4257abadfce92596644f047ee6ec46363e"
_REGENERATE_SCALE = "python scripts/train_char_gpt_scale.py  (20-45 minutes on one CPU thread)"


def train_scale_sweep(
    corpus: CharCorpus, widths: Sequence[int] = SCALE_WIDTHS, steps: Sequence[int] = SCALE_STEPS, seed: int = 0,
    stop_after: int | None = None, log: Callable[[str], None] | None = None, score: bool = True,
) -> list[SweepRun]:
    """Train one character GPT per (width, data budget), page 8.1's sweep over size N and data D.

    For each entry of ``steps`` (ascending order of D) it runs :func:`train_size_sweep` over
    ``widths`` with that many steps and one seed: each (N, D) has its own warm-up and cosine decay
    over its steps (:func:`sweep_recipe`), and with one seed all runs draw the same batches in the
    same order (a shorter run sees a prefix of a longer run's data). Each record gets, besides
    :func:`train_size_sweep`'s fields (``tokens`` is D), ``steps`` and ``non_embedding``, the
    parameters minus the token and position embeddings (Kaplan et al.'s N). ``stop_after`` runs the
    first steps of every schedule (a check of the log's start).
    """
    from wmbook.lab.scaling import non_embedding

    if not steps or any(s < 1 for s in steps) or list(steps) != sorted(set(steps)):
        raise ValueError(f"steps must be increasing positive step counts (one per data budget), got {steps}")
    runs = []
    for n_steps in steps:
        for run in train_size_sweep(corpus, widths, (seed,), n_steps, stop_after, log, score):
            cfg = run.model.cfg
            run.record["steps"] = n_steps
            run.record["non_embedding"] = non_embedding(run.record["parameters"], cfg.d_model, cfg.vocab_size, cfg.n_ctx)
            runs.append(run)
    return runs


def load_scale_sweep(path: str | Path | None = None, sha256: str | None = SCALE_SHA256) -> SizeSweep:
    """The log of ``scripts/train_char_gpt_scale.py`` (page 8.1) and the one model it stores (the
    smallest width at the smallest budget), sha256-checked against ``SCALE_SHA256`` and
    ``SCALE_LOG_SHA256``; pass ``path`` and ``sha256=None`` for a run of your own."""
    if sha256 == "":
        raise CheckpointError(f"SCALE_SHA256 is not recorded yet; run {_REGENERATE_SCALE} and record the sha256s "
                              "it prints in wmbook/lab/scale.py")
    return _load_sweep(path if path is not None else SCALE_FILE, sha256,
                       SCALE_LOG_SHA256 if sha256 == SCALE_SHA256 and sha256 is not None else None,
                       _REGENERATE_SCALE, "wmbook/lab/scale.py (SCALE_SHA256)", "wmbook/lab/scale.py (SCALE_LOG_SHA256)")


def scale_table(runs: Sequence[dict]) -> list[dict]:
    """The (N, D, loss) table of a scale-sweep log (``log["runs"]``): one dict per run with ``d_model``,
    ``parameters``, ``non_embedding``, ``tokens``, ``steps``, ``val_loss``, ``seconds`` and the
    compute estimate ``six_nd`` (arithmetic), sorted by D then N."""
    keys = ("d_model", "parameters", "non_embedding", "tokens", "steps", "val_loss")
    out = []
    for r in runs:
        missing = [k for k in keys if r.get(k) is None]
        if missing:
            raise ValueError(f"run {r.get('d_model')}/{r.get('steps')} lacks {missing}: not a scored scale-sweep log")
        out.append({**{k: r[k] for k in keys}, "seconds": r.get("train_seconds"), "six_nd": six_nd(r["parameters"], r["tokens"])})
    return sorted(out, key=lambda row: (row["tokens"], row["parameters"]))


def gpt_parameters(cfg: GPTConfig) -> int:
    r"""Parameters of :class:`wmbook.nn.gpt.GPT` (GPT-2's architecture) with config ``cfg``, by formula (page 1.1):

    .. math::

        P = (V + T)\,d + L\,\bigl(4d^2 + 2\,d\,d_{ff} + d_{ff} + 9d\bigr) + 2d\;[+\,V d \text{ if untied}]

    (token and position embeddings; per layer the four attention projections, the MLP and two
    LayerNorms, with biases; the final LayerNorm; the output layer shares the token embedding
    unless ``tie_weights`` is off). Dominated by :math:`12\,L\,d^2` when :math:`d_{ff} = 4d`.
    """
    if not cfg.bias:
        raise ValueError("the formula counts biases; cfg.bias must be True")
    d, f = cfg.d_model, cfg.d_ff
    per_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
    total = (cfg.vocab_size + cfg.n_ctx) * d + cfg.n_layers * per_layer + 2 * d
    return total + (0 if cfg.tie_weights else cfg.vocab_size * d)


__all__ = ["SCALE_FILE", "SCALE_LOG_SHA256", "SCALE_SHA256", "SCALE_STEPS", "SCALE_TOKENS", "SCALE_WIDTHS",
           "load_scale_sweep", "scale_table", "train_scale_sweep", "SIZES_FILE", "SIZES_LOG_SHA256", "SIZES_SHA256", "SWEEP_SEEDS", "SWEEP_STEPS", "SWEEP_WIDTHS",
           "SizeSweep", "SweepRun", "compute_check", "gpt_parameters", "load_size_sweep",
           "save_size_sweep", "six_nd", "sweep_recipe", "sweep_summary", "train_size_sweep"]
