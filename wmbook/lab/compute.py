r"""How much compute, time and memory training and running a Transformer takes (page 9.1).

The Python twin of the page's calculator (:mod:`wmbook.view.calculator`, JavaScript): the same
formulas, checked against each other by ``tests/test_calculator_browser.py`` and against
measurements on the book's own GPT by ``tests/test_compute.py``. Everything here is arithmetic;
the measurements are :func:`saved_activation_bytes`, :func:`counted_training_flops` and
:func:`wmbook.lab.measure.peak_memory`.

*Compute*: training on :math:`D` tokens costs :math:`C \approx 6ND` FLOPs
(:func:`wmbook.lab.scale.six_nd`, page 1.1), and at a sustained rate of :math:`R` FLOP/s it takes

.. math:: t = C / R \ \text{seconds}.

*Memory for training with Adam* (:func:`training_memory`), per parameter: in fp32, 4 bytes of
weights, 4 of gradients and 8 of optimizer state (Adam's two moments); in mixed precision
(fp16/bf16), 2 + 2 bytes plus 12 of fp32 state (a master copy of the weights and the two moments),
as in ZeRO's accounting (Rajbhandari et al. 2020). 16 bytes per parameter either way.

*Activations* kept for the backward pass (:func:`activation_values_per_token`), counted for the
book's GPT (:class:`wmbook.nn.gpt.GPT`: pre-LN blocks, a GELU MLP of width :math:`d_{ff}`), per
token:

.. math:: L\,(8d + 2d_{ff} + h\,T) + 2d + 2V \ \text{values},

per layer the inputs of the two LayerNorms and their outputs (:math:`4d`), the queries, keys and
values (:math:`3d`), the heads' concatenation (:math:`d`), the MLP's hidden layer before and after
GELU (:math:`2d_{ff}`) and the attention weights (:math:`h` heads × :math:`T` keys); then the final
LayerNorm (:math:`2d`) and the logits with their log-softmax (:math:`2V`). A fused attention kernel
(FlashAttention, ``need_weights=False``) keeps no attention weights: drop :math:`hT`.

*KV cache* while generating: :math:`2 \cdot L \cdot h_{kv} \cdot d_\text{head}` values per token
(:func:`wmbook.lab.measure.kv_cache_bytes`, pages 3.3 and 4.3).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

from wmbook.lab.measure import kv_cache_bytes
from wmbook.lab.scale import six_nd

if TYPE_CHECKING:
    import torch

    from wmbook.nn.gpt import GPT, GPTConfig

#: Bytes per value of each precision the calculator offers.
PRECISION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
#: Optimizer state per parameter (bytes) for Adam: fp32 moments; with 16-bit weights also an fp32 master copy.
ADAM_STATE_BYTES = {"fp32": 8, "bf16": 12, "fp16": 12}
SECONDS_PER_DAY = 86400.0


def _check_precision(precision: str) -> int:
    if precision not in PRECISION_BYTES:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_BYTES)}, got {precision!r}")
    return PRECISION_BYTES[precision]


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")


def training_seconds(flops: float, flops_per_second: float) -> float:
    r"""Wall-clock seconds :math:`t = C / R` to do ``flops`` at a sustained ``flops_per_second`` (arithmetic)."""
    _positive(flops=flops, flops_per_second=flops_per_second)
    return flops / flops_per_second


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of the training state: weights, gradients and Adam's optimizer state."""

    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


def training_memory(n_params: float, precision: str = "fp32") -> TrainingMemory:
    """Bytes of weights, gradients and Adam state for ``n_params`` parameters (16 bytes per parameter in all).

    fp32: 4 + 4 + 8 (two fp32 moments). fp16/bf16 mixed precision: 2 + 2 + 12 (an fp32 master copy
    and two fp32 moments), ZeRO's accounting (Rajbhandari et al. 2020). Arithmetic (page 9.1).
    """
    b = _check_precision(precision)
    _positive(n_params=n_params)
    return TrainingMemory(weights=b * n_params, gradients=b * n_params, optimizer=ADAM_STATE_BYTES[precision] * n_params)


def activation_values_per_token(n_layers: int, d_model: int, n_heads: int, seq_len: int, vocab_size: int,
                                d_ff: int | None = None, fused_attention: bool = False) -> int:
    r"""Values the book's GPT keeps for the backward pass, per token: :math:`L(8d + 2d_{ff} + hT) + 2d + 2V`.

    ``d_ff`` defaults to :math:`4d`; with ``fused_attention`` the :math:`hT` attention weights are not
    kept. Checked against the tensors autograd saves (:func:`saved_activation_bytes`) on page 9.1.
    """
    d_ff = 4 * d_model if d_ff is None else d_ff
    for name, v in (("n_layers", n_layers), ("d_model", d_model), ("n_heads", n_heads), ("seq_len", seq_len),
                    ("vocab_size", vocab_size), ("d_ff", d_ff)):
        if v < 1 or int(v) != v:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    attention = 0 if fused_attention else n_heads * seq_len
    return n_layers * (8 * d_model + 2 * d_ff + attention) + 2 * d_model + 2 * vocab_size


@dataclass(frozen=True)
class CalculatorInputs:
    """What the calculator asks for. ``n_kv_heads`` = 0 means as many as ``n_heads``; ``d_ff`` = 0 means 4·d_model."""

    n_params: float
    n_tokens: float
    flops_per_second: float
    precision: str = "bf16"
    batch: int = 1
    seq_len: int = 2048
    n_layers: int = 12
    d_model: int = 768
    n_heads: int = 12
    n_kv_heads: int = 0
    d_ff: int = 0
    vocab_size: int = 50257
    fused_attention: bool = True


#: The outputs of :func:`calculate`, in the order the calculator shows them.
OUTPUTS = ("training_flops", "training_seconds", "training_days", "weights_bytes", "gradients_bytes",
           "optimizer_bytes", "activation_bytes", "total_bytes", "peak_bytes", "kv_bytes_per_token",
           "kv_bytes_at_seq_len")


def calculate(inputs: CalculatorInputs) -> dict[str, float]:
    """Every output of the calculator for ``inputs`` (arithmetic; the JavaScript computes the same).

    ``training_flops`` = 6ND; ``training_seconds``/``days`` at ``flops_per_second``; the training
    state (:func:`training_memory`); ``activation_bytes`` for one batch of ``batch`` × ``seq_len``
    tokens at the chosen precision (:func:`activation_values_per_token`); ``total_bytes`` their
    sum, as if all were held at once; ``peak_bytes`` = weights + gradients + max(activations,
    optimizer state), because the activations are freed by the backward pass before Adam's
    step reads its state; the KV cache per token and for ``batch`` sequences of ``seq_len`` tokens.
    """
    x = inputs
    b = _check_precision(x.precision)
    if x.n_kv_heads < 0 or x.d_ff < 0 or x.batch < 1:
        raise ValueError("n_kv_heads and d_ff must be >= 0 (0: the default), batch >= 1")
    n_kv = x.n_kv_heads or x.n_heads
    if x.d_model % x.n_heads or x.n_heads % n_kv:
        raise ValueError(f"d_model ({x.d_model}) must be divisible by n_heads ({x.n_heads}), "
                         f"and n_heads by n_kv_heads ({n_kv})")
    flops = six_nd(x.n_params, x.n_tokens)
    seconds = training_seconds(flops, x.flops_per_second)
    mem = training_memory(x.n_params, x.precision)
    per_token = activation_values_per_token(x.n_layers, x.d_model, x.n_heads, x.seq_len, x.vocab_size,
                                            x.d_ff or None, x.fused_attention)
    act = float(x.batch * x.seq_len * per_token * b)
    d_head = x.d_model // x.n_heads
    kv_token = kv_cache_bytes(x.n_layers, n_kv, d_head, 1, 1, b)
    return {"training_flops": flops, "training_seconds": seconds, "training_days": seconds / SECONDS_PER_DAY,
            "weights_bytes": mem.weights, "gradients_bytes": mem.gradients, "optimizer_bytes": mem.optimizer,
            "activation_bytes": act, "total_bytes": mem.total + act,
            "peak_bytes": mem.weights + mem.gradients + max(act, mem.optimizer),
            "kv_bytes_per_token": float(kv_token), "kv_bytes_at_seq_len": float(kv_token * x.seq_len * x.batch)}


#: Presets: published shapes, sizes and training tokens; the throughput is an assumption the reader changes.
#: Sources: GPT-3 175B, Brown et al. 2020, Table 2.1 (96 layers, d_model 12,288, 96 heads, context 2,048;
#: 300B tokens, Sec. 2.2), GPT-2's vocabulary; Llama 3 405B, Dubey et al. 2024, Table 3 (126 layers,
#: d_model 16,384, FFN 53,248, 128 heads, 8 key/value heads, vocabulary 128,000) and Sec. 3.2.1 (15.6T tokens).
PRESETS: dict[str, dict] = {
    "GPT-3 175B": {"source": "Brown et al. 2020, Table 2.1 and Sec. 2.2; throughput assumed",
                   "inputs": CalculatorInputs(n_params=175e9, n_tokens=300e9, flops_per_second=1e15, precision="fp16",
                                              batch=1, seq_len=2048, n_layers=96, d_model=12288, n_heads=96,
                                              vocab_size=50257, fused_attention=True)},
    "Llama 3 405B": {"source": "Dubey et al. 2024, Table 3 and Sec. 3.2.1; throughput assumed",
                     "inputs": CalculatorInputs(n_params=405e9, n_tokens=15.6e12, flops_per_second=1e15,
                                                precision="bf16", batch=1, seq_len=8192, n_layers=126,
                                                d_model=16384, n_heads=128, n_kv_heads=8, d_ff=53248,
                                                vocab_size=128000, fused_attention=True)},
}


def char_gpt_preset(n_params: int, n_tokens: int, flops_per_second: float, n_layers: int = 4, d_model: int = 128,
                    n_heads: int = 4, seq_len: int = 64, batch: int = 12, vocab_size: int = 65) -> dict:
    """A preset for the book's character GPT (page 3.3) at a throughput measured on the page."""
    return {"source": "page 3.3 (measured on this CPU)",
            "inputs": CalculatorInputs(n_params=n_params, n_tokens=n_tokens, flops_per_second=flops_per_second,
                                       precision="fp32", batch=batch, seq_len=seq_len, n_layers=n_layers,
                                       d_model=d_model, n_heads=n_heads, vocab_size=vocab_size,
                                       fused_attention=False)}


def inputs_dict(inputs: CalculatorInputs) -> dict:
    """``inputs`` as a plain dict (what the JavaScript receives)."""
    return dataclasses.asdict(inputs)


# ---- measurements (page 9.1 sets the formulas above against these)

def saved_activation_bytes(fn: Callable[[], object], exclude: tuple = ()) -> int:
    """Bytes of the distinct tensors autograd saves for the backward pass while ``fn()`` runs.

    Counted with :func:`torch.autograd.graph.saved_tensors_hooks`: each saved tensor's storage
    once (views share it), leaving out the storages of ``exclude`` (pass ``model.parameters()``:
    weights are saved too, but they are not activations). A measurement, unlike
    :func:`activation_values_per_token`.
    """
    import torch

    sizes: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        sizes[s.data_ptr()] = max(sizes.get(s.data_ptr(), 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    skip = {p.untyped_storage().data_ptr() for p in exclude}
    del result
    return sum(n for ptr, n in sizes.items() if ptr not in skip)


def counted_training_flops(fn: Callable[[], object]) -> int:
    """FLOPs PyTorch counts (:class:`torch.utils.flop_counter.FlopCounterMode`: matrix products,
    a multiply–add as 2) while ``fn()`` runs, e.g. a forward and backward pass. A count of the
    operations actually issued, independent of :func:`wmbook.lab.scale.six_nd`."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


class TrainingStep(NamedTuple):
    """A GPT with its AdamW optimizer and one fixed batch; ``step()`` trains on it once."""

    model: "GPT"
    optimizer: "torch.optim.Optimizer"
    x: "torch.Tensor"  # (batch, n_ctx) token ids
    y: "torch.Tensor"  # (batch, n_ctx) next tokens
    forward_backward: Callable[[], object]  # loss and gradients, no update
    step: Callable[[], object]  # forward, backward and Adam's update


def gpt_training_step(cfg: "GPTConfig", batch: int, seed: int = 0, need_weights: bool = True) -> TrainingStep:
    """The book's GPT (:class:`wmbook.nn.gpt.GPT`) with ``cfg``, AdamW and a random batch of ``batch``
    windows of ``cfg.n_ctx`` tokens, ready to measure (page 9.1). ``need_weights=True`` is how the
    book trains (:func:`wmbook.lab.char_gpt.lm_loss`: attention weights computed and kept);
    ``False`` uses PyTorch's fused attention kernel. Seeded: the same model and batch every time.
    """
    import torch
    import torch.nn.functional as F

    from wmbook.nn.gpt import GPT

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GPT(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(cfg.vocab_size, (batch, cfg.n_ctx), generator=g)
    y = torch.randint(cfg.vocab_size, (batch, cfg.n_ctx), generator=g)

    def forward_backward():
        logits = model(x, need_weights=need_weights).logits  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        return loss.detach()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = forward_backward()
        opt.step()
        return loss

    return TrainingStep(model, opt, x, y, forward_backward, step)


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, three significant figures (the calculator writes them the same way).

    >>> format_bytes(36864), format_bytes(3.5e12)
    ('36.0 KiB', '3.18 TiB')
    """
    if n < 0:
        raise ValueError(f"bytes must be >= 0, got {n}")
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    k = 0
    while n >= 1024 and k < len(units) - 1:
        n /= 1024
        k += 1
    if k == 0:
        return f"{n:.0f} B"
    decimals = max(0, 2 - math.floor(math.log10(n))) if n > 0 else 0
    return f"{n:.{decimals}f} {units[k]}"


__all__ = ["ADAM_STATE_BYTES", "CalculatorInputs", "OUTPUTS", "PRECISION_BYTES", "PRESETS", "SECONDS_PER_DAY",
           "TrainingMemory", "TrainingStep", "activation_values_per_token", "calculate", "char_gpt_preset", "counted_training_flops",
           "format_bytes", "gpt_training_step", "inputs_dict", "saved_activation_bytes", "training_memory", "training_seconds"]
