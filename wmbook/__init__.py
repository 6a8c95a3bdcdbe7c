"""wmbook: the code behind the book *Large language models and working memory*.

Organised by topic, not by chapter:

* :mod:`wmbook.nn.attention` — scaled dot-product and multi-head attention, masks (page 4.1)
* :mod:`wmbook.nn.train` — a small training loop that returns its history
* :mod:`wmbook.view.plot` — attention heatmaps and learning curves
* :mod:`wmbook.lab.measure` — time, peak memory and parameter counts
* :mod:`wmbook.nn.runtime` — seeding and device choice
* :mod:`wmbook.book.notebook` — glue numbers into the text; stamps for stored outputs
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
from wmbook.lab.measure import count_parameters, kv_cache_bytes, peak_memory, time_call
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
    "kv_cache_bytes",
    "padding_mask",
    "peak_memory",
    "scaled_dot_product_attention",
    "seed_everything",
    "threads",
    "time_call",
    "to_torch_multihead",
    "train",
]
