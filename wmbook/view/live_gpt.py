r"""The book's character GPT, running live in the reader's browser: weights inlined, no kernel.

Used on page 6.3, "Text generation". :func:`live_gpt` packs a :class:`wmbook.nn.gpt.GPT`
and its character vocabulary into one self-contained HTML fragment
(:class:`wmbook.view.fragment.Fragment`): the weights as IEEE float16, little-endian,
base64, inside the ``<script>``; the runtime ``live_gpt_assets/live_gpt.js`` (no
dependencies, float32 storage, double-precision sums) computes exactly what
:meth:`GPT.forward <wmbook.nn.gpt.GPT.forward>` computes (page 3.3, page 5.3):

.. math::

    x^{(0)}_t &= W_{te}[c_t] + W_{pe}[t] \\
    x &\leftarrow x + W_o\,\mathrm{concat}_h\!\left(\mathrm{softmax}\!\left(
        \frac{q_h k_h^\top}{\sqrt{d_{head}}} + \text{causal mask}\right) v_h\right) + b_o,
        \quad (q, k, v) = \mathrm{LN}_1(x)\,(W_q, W_k, W_v) \\
    x &\leftarrow x + W_{out}\,\mathrm{GELU}_{\tanh}(W_{in}\,\mathrm{LN}_2(x) + b_{in}) + b_{out} \\
    \mathrm{logits}_t &= \mathrm{LN}_f(x_t)\, W_{te}^\top \quad\text{(tied; else } W_{lm})

with :math:`\mathrm{GELU}_{\tanh}(u) = \tfrac12 u\,(1 + \tanh(\sqrt{2/\pi}\,(u + 0.044715\,u^3)))`
and layer norms with the model's ``layer_norm_eps``. Keys and values of earlier
characters stay in a KV cache, so one more character costs one position's work. A
character beyond ``n_ctx`` makes the window slide: as
:func:`wmbook.nn.sampling.generate` does with ``use_cache=False``, the model re-reads the
last ``n_ctx`` characters (learned positions cannot slide inside a cache).

Sampling follows :func:`wmbook.nn.sampling.filter_logits`: divide the logits by the
temperature :math:`\tau`, keep the ``top_k`` largest (ties kept), keep the smallest set whose
probabilities reach ``top_p`` (the first always kept), softmax, and draw with the seeded
Mulberry32 generator of :func:`wmbook.lab.reader.mulberry32` (so a sample can be replayed:
:func:`sample_index` is the same draw in Python). Greedy is the argmax (first on ties).

The reader types a prompt, moves temperature / top-k / top-p, and presses *sample*, *greedy*
or *step*; the view shows the next-character distribution (top 10) and, for a chosen layer and
head, the attention of a chosen query over the characters in the model's window (the
characters that have slid out are greyed: the model no longer sees them).

Weights are packed by :func:`pack_gpt` (read back by :func:`unpack_gpt`); their float16
rounding is the only approximation, and :func:`round_to_float16` gives the PyTorch model
with the same rounding, the reference ``tests/test_live_gpt_browser.py`` compares against
(logits within 1e-3, greedy text identical for 200 characters). The matrix products run in a
small WebAssembly SIMD kernel (:func:`matmul_wasm`, float32 sums) where the browser has it,
else in plain JavaScript; the rest (layer norms, attention, GELU, softmax) is JavaScript.
``constrain`` adds constrained decoding: a JavaScript rule that forbids characters before
each draw (e.g. forcing the line lengths of a poem).
"""
from __future__ import annotations

import base64
import copy
import gzip
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from wmbook.nn.gpt import GPT
from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"


def _theme_css() -> str:
    """The explorer's theme block (its CSS from the first ``#id {`` rule up to the ``#id *`` rule):
    colours from the host's theme variables with light and dark fallbacks. The live view uses it
    as it is, so the two views look alike and the block is written once."""
    css = asset("explorer_assets", "explorer.css")
    start, end = css.index(f"#{_UID} {{"), css.index(f"#{_UID} *, ")
    return css[start:end]
_ARGS = "__WMB_ARGS__"
FORMAT = "wmbook-live-gpt-1"
#: Default limit on the packed float16 weights (bytes): 4 MB raw is about 5.3 MB of base64 in the page.
MAX_WEIGHT_BYTES = 4_000_000
#: Page 6.3's aim for one model, gzipped (a warning in :class:`LiveGPTView`'s summary above it).
AIM_GZIP_BYTES = 2_000_000
FLOAT16_MAX = 65504.0


@dataclass
class PackedGPT:
    """A GPT's weights as float16 bytes plus what the runtime needs to read them.

    ``tensors`` lists ``[name, shape, offset]`` with ``offset`` counted in float16 values
    into ``data`` (little-endian), in the order of :func:`tensor_names`.
    """

    config: dict[str, Any]
    vocab: list[str]
    tensors: list[list]
    data: bytes = field(repr=False)

    @property
    def n_params(self) -> int:
        return len(self.data) // 2

    @property
    def weight_bytes(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The JSON-able form inlined in the page (weights as base64)."""
        return {"format": FORMAT, "config": self.config, "vocab": self.vocab, "tensors": self.tensors,
                "weights": base64.b64encode(self.data).decode("ascii")}


def tensor_names(n_layers: int, bias: bool = True, tie_weights: bool = True) -> list[str]:
    """State-dict names packed, in order (``lm_head.weight`` only when it is not tied)."""
    names = ["wte.weight", "wpe.weight"]
    for i in range(n_layers):
        b = f"blocks.{i}."
        for part in ("ln_1", "attn.W_q", "attn.W_k", "attn.W_v", "attn.W_o", "ln_2", "mlp.W_in", "mlp.W_out"):
            names.append(b + part + ".weight")
            if part.startswith("ln") or bias:
                names.append(b + part + ".bias")
    names += ["ln_f.weight", "ln_f.bias"]
    if not tie_weights:
        names.append("lm_head.weight")
    return names


def _check_model(model: Any) -> GPT:
    if not isinstance(model, GPT):
        raise TypeError(
            f"live_gpt runs wmbook.nn.gpt.GPT models only, got {type(model).__module__}.{type(model).__name__}; "
            "convert a Hugging Face GPT-2 with GPT.from_hf, or load the book's character GPT with "
            "wmbook.lab.char_gpt.load_char_gpt()"
        )
    cfg = model.cfg
    for i, block in enumerate(model.blocks):
        act = block.mlp.act
        if not (isinstance(act, nn.GELU) and act.approximate == "tanh"):
            raise ValueError(f"block {i} uses activation {act!r}; the browser runtime implements GELU's tanh "
                             "approximation only (GPT's default)")
    tied = model.lm_head.weight is model.wte.weight or torch.equal(model.lm_head.weight, model.wte.weight)
    if cfg.tie_weights and not tied:
        raise ValueError("cfg.tie_weights is True but lm_head.weight differs from wte.weight")
    return model


def _check_vocab(vocab: Sequence[str], vocab_size: int) -> list[str]:
    vocab = list(vocab)
    if len(vocab) != vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} entries, the model's vocab_size is {vocab_size}")
    bad = [v for v in vocab if not (isinstance(v, str) and len(v) == 1)]
    if bad:
        raise ValueError(f"live_gpt runs character-level models only: every vocabulary entry must be one "
                         f"character, got {bad[:5]!r}")
    if len(set(vocab)) != len(vocab):
        raise ValueError("the vocabulary lists a character twice; encoding would be ambiguous")
    return vocab


def pack_gpt(model: GPT, vocab: Sequence[str], *, max_bytes: int = MAX_WEIGHT_BYTES) -> PackedGPT:
    """The weights of ``model`` as float16 (little-endian) with config and vocabulary.

    Raises:
        TypeError: ``model`` is not a :class:`wmbook.nn.gpt.GPT`.
        ValueError: an activation other than tanh-GELU, a vocabulary that is not one character
            per id, a weight beyond float16's range (±65504), or more than ``max_bytes`` of
            float16 weights (pass a larger ``max_bytes`` knowingly: the page carries them all).
    """
    model = _check_model(model)
    cfg = model.cfg
    vocab = _check_vocab(vocab, cfg.vocab_size)
    names = tensor_names(cfg.n_layers, cfg.bias, cfg.tie_weights)
    state = model.state_dict()
    n = sum(state[k].numel() for k in names)
    if 2 * n > max_bytes:
        raise ValueError(
            f"the model has {n:,} parameters = {2 * n:,} bytes as float16, above max_bytes={max_bytes:,}; "
            "the page would carry all of them (base64 adds a third). Use a smaller model or pass a larger max_bytes"
        )
    chunks, tensors, offset = [], [], 0
    for name in names:
        w = state[name].detach().to(torch.float64).cpu().numpy()
        big = np.abs(w).max(initial=0.0)
        if not np.isfinite(big) or big > FLOAT16_MAX:
            raise ValueError(f"{name} has a value {big} that float16 cannot hold (|w| <= {FLOAT16_MAX})")
        chunks.append(w.astype("<f2").tobytes())
        tensors.append([name, list(w.shape), offset])
        offset += w.size
    config = {"vocab_size": cfg.vocab_size, "n_ctx": cfg.n_ctx, "d_model": cfg.d_model, "n_heads": cfg.n_heads,
              "n_layers": cfg.n_layers, "d_ff": cfg.d_ff, "layer_norm_eps": cfg.layer_norm_eps,
              "bias": cfg.bias, "tie_weights": cfg.tie_weights}
    return PackedGPT(config, vocab, tensors, b"".join(chunks))


def unpack_gpt(packed: PackedGPT | dict) -> tuple[GPT, list[str]]:
    """Inverse of :func:`pack_gpt` (from a :class:`PackedGPT` or its :meth:`~PackedGPT.payload`):
    a GPT in eval mode holding the float16 weights (as float32), and the vocabulary."""
    from wmbook.nn.gpt import GPTConfig

    if isinstance(packed, PackedGPT):
        config, vocab, tensors, data = packed.config, packed.vocab, packed.tensors, packed.data
    else:
        if packed.get("format") != FORMAT:
            raise ValueError(f"not a packed wmbook GPT (format {packed.get('format')!r}, expected {FORMAT!r})")
        config, vocab, tensors = packed["config"], packed["vocab"], packed["tensors"]
        data = base64.b64decode(packed["weights"])
    values = np.frombuffer(data, dtype="<f2")
    model = GPT(GPTConfig(dropout=0.0, **config))
    state = {}
    for name, shape, offset in tensors:
        size = int(np.prod(shape))
        if offset + size > len(values):
            raise ValueError(f"{name} runs past the end of the packed weights: truncated data?")
        state[name] = torch.from_numpy(values[offset:offset + size].astype(np.float32).reshape(shape))
    if config["tie_weights"]:
        state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)
    return model.eval(), list(vocab)


@torch.no_grad()
def round_to_float16(model: GPT) -> GPT:
    """A copy of ``model`` (eval mode) whose weights are rounded to float16 and back to float32:
    the model the browser runs, in PyTorch."""
    out = copy.deepcopy(model).eval()
    for p in out.parameters():
        p.copy_(p.to(torch.float16).to(p.dtype))
    return out


def sample_index(probs: Sequence[float], u: float) -> int:
    """The draw live_gpt.js makes: the first id whose cumulative probability exceeds ``u`` in [0, 1)
    (ids in vocabulary order; zero-probability ids are never chosen)."""
    total, last = 0.0, -1
    for i, p in enumerate(probs):
        if p > 0:
            total += p
            last = i
            if u < total:
                return i
    if last < 0:
        raise ValueError("every probability is zero")
    return last  # u at the very top (rounding): the last id that can be drawn


# --------------------------------------------------------------------------- the WebAssembly kernel


def _uleb(n: int) -> bytes:
    """Unsigned LEB128, WebAssembly's encoding of counts and indices."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _sleb(n: int) -> bytes:
    """Signed LEB128 (the immediates of ``i32.const``)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def matmul_wasm() -> bytes:
    r"""The WebAssembly module (SIMD) that live_gpt.js uses for its matrix products.

    It exports ``mm(X, T, n_in, W, B, n_out, Y)`` (byte offsets into the imported memory
    ``env.mem``, sizes in floats): :math:`Y_{t,o} = B_o + \sum_i W_{o,i} X_{t,i}` for
    ``t < T``, ``o < n_out``, i.e. ``Y = X W^T + b`` with ``W`` as ``nn.Linear`` stores it
    (``n_out`` rows of ``n_in``); ``n_in`` and ``n_out`` must be multiples of 4 (the script
    falls back to JavaScript otherwise, or when the browser lacks WebAssembly SIMD). Four
    output rows at a time, four lanes of ``i`` per ``f32x4`` multiply-add, float32 sums
    (so results differ from JavaScript's double sums by ~1e-6). Written here as bytes by a small
    assembler, so that the page carries no binary of unknown origin (``tests/test_live_gpt.py``
    checks the module's size and header; the browser tests check its products against PyTorch).
    """
    I32, V128 = 0x7F, 0x7B
    X, T, NIN, W, B, NOUT, Y = range(7)  # parameters
    o, t, i, xp, w0, w1, w2, w3, rb, yp, bp = range(7, 18)  # i32 locals
    acc, xv = (18, 19, 20, 21), 22  # v128 locals: four accumulators, the x vector

    def get(k: int) -> bytes:
        return b"\x20" + _uleb(k)  # local.get

    def put(k: int) -> bytes:
        return b"\x21" + _uleb(k)  # local.set

    def const(n: int) -> bytes:
        return b"\x41" + _sleb(n)  # i32.const

    def simd(op: int) -> bytes:
        return b"\xfd" + _uleb(op)

    def mem(offset: int = 0) -> bytes:
        return b"\x02" + _uleb(offset)  # memarg: alignment 2**2, offset

    def lane_sum(v: int) -> bytes:  # (v0 + v1) + (v2 + v3) as f32
        lane = [get(v) + simd(0x1F) + bytes([k]) for k in range(4)]  # f32x4.extract_lane
        return lane[0] + lane[1] + F32_ADD + lane[2] + lane[3] + F32_ADD + F32_ADD

    ADD, MUL, SHL, GE_U, F32_ADD = b"\x6a", b"\x6c", b"\x74", b"\x4f", b"\x92"
    BLOCK, LOOP, END, F32_LOAD, F32_STORE = b"\x02\x40", b"\x03\x40", b"\x0b", b"\x2a", b"\x38"
    V_LOAD, V_ZERO, V_MUL, V_ADD = simd(0x00), simd(0x0C) + bytes(16), simd(0xE6), simd(0xE4)

    def br(depth: int) -> bytes:
        return b"\x0c" + _uleb(depth)

    def br_if(depth: int) -> bytes:
        return b"\x0d" + _uleb(depth)

    c = bytearray()
    c += get(NIN) + const(2) + SHL + put(rb)  # bytes per row
    c += const(0) + put(o)
    c += BLOCK + LOOP  # for o in 0, 4, 8, ... < n_out
    c += get(o) + get(NOUT) + GE_U + br_if(1)
    c += get(W) + get(o) + get(rb) + MUL + ADD + put(w0)
    c += get(w0) + get(rb) + ADD + put(w1)
    c += get(w1) + get(rb) + ADD + put(w2)
    c += get(w2) + get(rb) + ADD + put(w3)
    c += get(B) + get(o) + const(2) + SHL + ADD + put(bp)
    c += const(0) + put(t)
    c += BLOCK + LOOP  # for t < T
    c += get(t) + get(T) + GE_U + br_if(1)
    c += get(X) + get(t) + get(rb) + MUL + ADD + put(xp)
    for a in acc:
        c += V_ZERO + put(a)
    c += const(0) + put(i)
    c += BLOCK + LOOP  # for i in 0, 16, 32, ... < bytes per row: acc_k += W[o + k, i:i+4] * X[t, i:i+4]
    c += get(i) + get(rb) + GE_U + br_if(1)
    c += get(xp) + get(i) + ADD + V_LOAD + mem() + put(xv)
    for a, w in zip(acc, (w0, w1, w2, w3)):
        c += get(a) + get(w) + get(i) + ADD + V_LOAD + mem() + get(xv) + V_MUL + V_ADD + put(a)
    c += get(i) + const(16) + ADD + put(i) + br(0)
    c += END + END
    c += get(Y) + get(t) + get(NOUT) + MUL + get(o) + ADD + const(2) + SHL + ADD + put(yp)
    for k, a in enumerate(acc):  # Y[t, o + k] = lane sum + B[o + k]
        c += get(yp) + lane_sum(a) + get(bp) + F32_LOAD + mem(4 * k) + F32_ADD + F32_STORE + mem(4 * k)
    c += get(t) + const(1) + ADD + put(t) + br(0)
    c += END + END
    c += get(o) + const(4) + ADD + put(o) + br(0)
    c += END + END + END  # ... and the function
    body = _uleb(2) + _uleb(11) + bytes([I32]) + _uleb(5) + bytes([V128]) + bytes(c)  # locals, code

    def section(n: int, payload: bytes) -> bytes:
        return bytes([n]) + _uleb(len(payload)) + payload

    def name(text: str) -> bytes:
        return _uleb(len(text)) + text.encode()

    types = _uleb(1) + b"\x60" + _uleb(7) + bytes([I32] * 7) + _uleb(0)  # (i32 x 7) -> ()
    imports = _uleb(1) + name("env") + name("mem") + b"\x02\x00" + _uleb(1)  # a memory, >= 1 page
    return (b"\x00asm\x01\x00\x00\x00" + section(1, types) + section(2, imports) + section(3, _uleb(1) + _uleb(0))
            + section(7, _uleb(1) + name("mm") + b"\x00" + _uleb(0))
            + section(10, _uleb(1) + _uleb(len(body)) + body))


class LiveGPTView(Fragment):
    """The live generator, ready to show (``_repr_html_``) or save as a page (``.save(path)``).

    ``weight_bytes``: float16 weights; ``html_bytes``: the whole fragment; ``gzip_bytes``: the
    fragment gzipped (what a web server sends); ``n_params``.
    """

    weight_bytes: int
    html_bytes: int
    gzip_bytes: int
    n_params: int

    def sizes(self) -> dict[str, int]:
        return {"n_params": self.n_params, "weight_bytes": self.weight_bytes, "html_bytes": self.html_bytes,
                "gzip_bytes": self.gzip_bytes}


def _model_and_vocab(model: Any, vocab: Sequence[str] | None) -> tuple[Any, Sequence[str]]:
    if vocab is None:  # a CharGPT from wmbook.lab.char_gpt.load_char_gpt (or anything with .model and .vocab)
        if hasattr(model, "model") and hasattr(model, "vocab"):
            return model.model, model.vocab
        raise ValueError("pass the character vocabulary: live_gpt(model, vocab), or pass a CharGPT "
                         "(wmbook.lab.char_gpt.load_char_gpt()) which carries it")
    return model, vocab


def live_gpt(
    model: Any,
    vocab: Sequence[str] | None = None,
    *,
    prompt: str = "",
    title: str = "Live character GPT",
    n_new: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    max_bytes: int = MAX_WEIGHT_BYTES,
    constrain: str | None = None,
    explorer: bool = True,
) -> LiveGPTView:
    """The live generator for ``model`` (a :class:`~wmbook.nn.gpt.GPT` with ``vocab``, or a ``CharGPT``).

    ``prompt``, ``n_new`` (characters per press of *sample*/*greedy*), ``temperature``,
    ``top_k``, ``top_p`` (None = off) and ``seed`` are the initial settings the reader can
    change. ``constrain`` is the body of an optional JavaScript function
    ``function(text, allowed) { ... }`` called before every draw with the text so far and a
    ``Uint8Array`` of allowed ids (all 1) to clear — constrained decoding, e.g. forcing line
    lengths of a poem; it runs in the reader's browser. ``explorer`` adds a button that opens
    the book's attention explorer (:mod:`wmbook.view.explorer`, page 2.1) on the current window,
    every layer and head, rebuilt after each generation while it is open (about 60 kB more
    page). Raises ValueError/TypeError as :func:`pack_gpt` does, and on settings out of range.
    """
    model, vocab = _model_and_vocab(model, vocab)
    packed = pack_gpt(model, vocab, max_bytes=max_bytes)
    if not (isinstance(n_new, int) and 1 <= n_new <= 2000):
        raise ValueError(f"n_new must be an int in [1, 2000], got {n_new!r}")
    if not 0 <= temperature <= 5:
        raise ValueError(f"temperature must be in [0, 5] (0 = greedy), got {temperature}")
    if top_k is not None and not (isinstance(top_k, int) and 1 <= top_k):
        raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p}")
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    unknown = sorted({c for c in prompt if c not in set(vocab)})
    if unknown:
        raise ValueError(f"the prompt has characters outside the model's vocabulary: {unknown[:10]!r}")
    if constrain is not None and not isinstance(constrain, str):
        raise TypeError("constrain must be the body of a JavaScript function (a str) or None")
    uid = new_uid("wmb-live")
    settings = {"prompt": prompt, "n_new": n_new, "temperature": float(temperature),
                "top_k": top_k or 0, "top_p": float(top_p or 1.0), "seed": seed, "constrain": constrain}
    args = {"model": {**packed.payload(), "kernel": base64.b64encode(matmul_wasm()).decode("ascii")},
            "settings": settings}
    css = (_theme_css() + asset("live_gpt_assets", "live_gpt.css")).replace(_UID, uid)
    js = asset("live_gpt_assets", "live_gpt.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(args)}', 1)
    shared = asset("shared_assets", "mulberry32.js")  # the seeded generator, shared with the reader's tasks
    if explorer:  # the explorer's script as a function of (id, data), its CSS with the id left to fill in
        ex_js = asset("explorer_assets", "explorer.js", _ARGS).replace(_ARGS, "EX_ID, EX_DATA", 1)
        ex_css = json_for_script(asset("explorer_assets", "explorer.css"))
        js = (f"(function () {{\n{shared}\nvar EXPLORER = {{css: {ex_css}, run: function (EX_ID, EX_DATA) {{\n{ex_js}\n}}}};\n"
              f"{js}\n}})();")
    else:
        js = f"(function () {{\n{shared}\nvar EXPLORER = null;\n{js}\n}})();"
    cfg = packed.config
    about = (f"{cfg['n_layers']} layers, {cfg['n_heads']} heads, d_model {cfg['d_model']}, window {cfg['n_ctx']} "
             f"characters, {packed.n_params:,} parameters as float16 ({packed.weight_bytes / 1e6:.2f} MB), "
             "running in this page")
    html = (
        f'<div id="{uid}" class="wmb-live" role="group" aria-label="{escape(title)}"><style>{css}</style>'
        f'<strong class="wmb-title">{escape(title)}</strong> <span class="wmb-about">{escape(about)}</span>'
        '<div class="wmb-live-body"><p>This generator needs JavaScript. In Jupyter, trust the notebook '
        "(or run the cell again) to enable it.</p></div></div>\n"
        f"<script>{js}</script>"
    )
    raw = html.encode("utf-8")
    view = LiveGPTView(html, uid, f"live GPT, {packed.n_params:,} parameters", title)
    view.n_params, view.weight_bytes = packed.n_params, packed.weight_bytes
    view.html_bytes, view.gzip_bytes = len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0))
    return view


__all__ = [
    "AIM_GZIP_BYTES", "FORMAT", "LiveGPTView", "MAX_WEIGHT_BYTES", "PackedGPT", "live_gpt", "pack_gpt",
    "matmul_wasm", "round_to_float16", "sample_index", "tensor_names", "unpack_gpt",
]
