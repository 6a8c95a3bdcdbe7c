"""wmbook: the code behind the book *Large language models and working memory*.

Five layers; each imports only from those before it (checked by ``tests/test_layout.py``):

* :mod:`wmbook.nn` — building blocks and models: attention, Transformer, BERT, GPT,
  decoding, sampling, the training loop, seeds and threads
* :mod:`wmbook.data` — data sets (sha256-checked, offline) and committed checkpoints
* :mod:`wmbook.lab` — the experiments, by topic (memory, heads, induction, ICL, distillation…)
* :mod:`wmbook.view` — the attention explorer and plots
* :mod:`wmbook.book` — glue, stamps, output checks, calibration, the guide's snippets

This module is the short public surface the pages use: ``import wmbook as wm``.
"""
from wmbook.nn.attention import (
    AttentionConfig,
    AttentionResult,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    to_torch_multihead,
)
from wmbook.lab.measure import count_parameters, format_sig, kv_cache_bytes, peak_memory, round_sig, time_call
from wmbook.book.notebook import glue
from wmbook.nn.runtime import get_device, seed_everything, threads
from wmbook.nn.train import History, TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "AttentionConfig",
    "AttentionResult",
    "History",
    "MultiHeadAttention",
    "TrainConfig",
    "causal_mask",
    "count_parameters",
    "get_device",
    "glue",
    "format_sig",
    "kv_cache_bytes",
    "padding_mask",
    "peak_memory",
    "scaled_dot_product_attention",
    "seed_everything",
    "threads",
    "round_sig",
    "time_call",
    "to_torch_multihead",
    "train",
]
