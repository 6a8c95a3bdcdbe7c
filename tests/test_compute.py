"""wmbook.lab.compute (page 9.1): the calculator's formulas, and the formulas against measurements on
the book's own GPT: FLOPs counted by PyTorch, activations autograd saves, the peak memory of a
training step, the KV cache a generating model holds, and the FLOP rate of this CPU. Tolerances
hold on any machine: counts are exact, memory is checked within a stated factor, time as bounds."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import wmbook
from wmbook.lab.char_gpt import gpt_forward_flops
from wmbook.lab.compute import (PRESETS, CalculatorInputs, activation_values_per_token, calculate, char_gpt_preset,
                                counted_training_flops, format_bytes, gpt_training_step, inputs_dict,
                                saved_activation_bytes, training_memory, training_seconds)
from wmbook.lab.measure import can_measure_peak_memory, kv_cache_bytes, peak_memory, time_call
from wmbook.lab.scale import six_nd
from wmbook.nn.gpt import GPT, GPTConfig

SHAPES = [  # (n_layers, d_model, n_heads, n_ctx, batch, vocab)
    (4, 128, 4, 64, 12, 65),  # page 3.3's character GPT
    (2, 64, 4, 32, 8, 65),
    (3, 96, 2, 64, 4, 100),
    (1, 32, 1, 16, 3, 50),
]


def cfg_of(L, d, h, T, V):
    return GPTConfig(vocab_size=V, n_ctx=T, d_model=d, n_heads=h, n_layers=L, dropout=0.0)


def test_training_seconds_and_memory():
    assert training_seconds(3.14e23, 1e15) == pytest.approx(3.14e8)
    for p in ("fp32", "bf16", "fp16"):
        m = training_memory(1000, p)
        assert m.total == 16000  # 16 bytes per parameter with Adam, either way
    assert training_memory(10, "fp32") == type(training_memory(10, "fp32"))(40, 40, 80)
    assert training_memory(10, "bf16") == type(training_memory(10, "bf16"))(20, 20, 120)
    with pytest.raises(ValueError, match="precision must be one of"):
        training_memory(10, "int4")
    with pytest.raises(ValueError, match="n_params must be a positive number"):
        training_memory(0)
    with pytest.raises(ValueError, match="flops_per_second must be a positive number"):
        training_seconds(1.0, 0)


def test_calculate_on_gpt3_gives_its_published_petaflop_s_days():
    """Brown et al. 2020, Table D.1: 3.14E+23 FLOPs = 3.64E+03 petaflop/s-days; 6ND at 1 PFLOP/s, in days."""
    r = calculate(PRESETS["GPT-3 175B"]["inputs"])
    assert r["training_flops"] == six_nd(175e9, 300e9)
    assert r["training_days"] == pytest.approx(3.64e3, rel=0.01)
    assert r["kv_bytes_per_token"] == kv_cache_bytes(96, 96, 128, 1, 1, 2)
    assert r["total_bytes"] == pytest.approx(16 * 175e9 + r["activation_bytes"])
    assert r["peak_bytes"] == 4 * 175e9 + max(r["activation_bytes"], 12 * 175e9)
    llama = calculate(PRESETS["Llama 3 405B"]["inputs"])  # grouped-query attention: 8 key/value heads
    assert llama["kv_bytes_per_token"] == 2 * 126 * 8 * 128 * 2


def test_calculate_refuses_bad_input():
    base = PRESETS["GPT-3 175B"]["inputs"]
    for change, msg in (({"n_heads": 7}, "divisible by n_heads"), ({"n_kv_heads": 5}, "divisible"),
                        ({"precision": "fp8"}, "precision"), ({"n_tokens": -1}, "N > 0 and D > 0"),
                        ({"batch": 0}, "batch"), ({"seq_len": 0}, "seq_len")):
        with pytest.raises(ValueError, match=msg):
            calculate(dataclasses.replace(base, **change))


def test_presets_and_inputs_dict():
    p = char_gpt_preset(809856, 1536000, 1e10)
    assert p["inputs"].precision == "fp32" and not p["inputs"].fused_attention
    d = inputs_dict(p["inputs"])
    assert d["n_params"] == 809856 and CalculatorInputs(**d) == p["inputs"]


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 36864, 1.5 * 2**20, 3.5e12)] == \
        ["0 B", "1023 B", "1.00 KiB", "36.0 KiB", "1.50 MiB", "3.18 TiB"]
    with pytest.raises(ValueError):
        format_bytes(-1)


@pytest.mark.parametrize("shape", SHAPES)
def test_flops_counted_by_pytorch_equal_the_formula_and_come_near_6nd(shape):
    L, d, h, T, B, V = shape
    cfg = cfg_of(L, d, h, T, V)
    with wmbook.threads(1):
        ts = gpt_training_step(cfg, B)
        counted = counted_training_flops(ts.forward_backward)
    assert counted == 3 * B * gpt_forward_flops(cfg, T, T)  # backward = 2 x forward, exactly
    n = sum(p.numel() for p in ts.model.parameters())
    ratio = counted / six_nd(n, B * T)
    assert 1.0 < ratio < 1.3, ratio  # 6ND leaves out attention's 4 q k d per layer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("need_weights", [True, False])
def test_activation_formula_against_the_tensors_autograd_saves(shape, need_weights):
    L, d, h, T, B, V = shape
    cfg = cfg_of(L, d, h, T, V)
    with wmbook.threads(1):
        ts = gpt_training_step(cfg, B, need_weights=need_weights)
        saved = saved_activation_bytes(ts.forward_backward, exclude=tuple(ts.model.parameters()))
    predicted = B * T * 4 * activation_values_per_token(L, d, h, T, V, fused_attention=not need_weights)
    assert abs(saved / predicted - 1) < 0.08, (saved, predicted)  # small terms left out (LayerNorm statistics, ids)


def test_activation_formula_refuses_bad_sizes():
    with pytest.raises(ValueError, match="d_model must be a positive integer"):
        activation_values_per_token(2, 0, 2, 8, 10)


@pytest.mark.skipif(not can_measure_peak_memory(), reason="peak memory needs Linux /proc")
@pytest.mark.parametrize("shape", [(4, 128, 4, 64, 12, 65), (2, 512, 8, 32, 2, 65)])  # activations / weights dominate
def test_peak_memory_of_a_training_step_within_a_factor_of_the_prediction(shape):
    L, d, h, T, B, V = shape
    cfg = cfg_of(L, d, h, T, V)
    with wmbook.threads(1):
        ts = gpt_training_step(cfg, B)
        measured = peak_memory(ts.step)  # the model exists already: gradients, Adam state, activations
    n = sum(p.numel() for p in ts.model.parameters())
    r = calculate(CalculatorInputs(n_params=n, n_tokens=1, flops_per_second=1, precision="fp32", batch=B, seq_len=T,
                                   n_layers=L, d_model=d, n_heads=h, vocab_size=V, fused_attention=False))
    predicted = r["peak_bytes"] - r["weights_bytes"]
    assert 0.5 < measured / predicted < 2.2, (measured, predicted)  # page 9.1: "within a factor of about 2"


def test_kv_cache_of_a_generating_model_equals_the_formula():
    cfg = cfg_of(3, 96, 4, 40, 50)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        out = model(torch.randint(50, (2, 25)), use_cache=True, need_weights=False)
        out = model(torch.randint(50, (2, 1)), past_key_values=out.past_key_values, use_cache=True, need_weights=False)
    held = sum(t.numel() * t.element_size() for k, v in out.past_key_values for t in (k, v))
    assert held == kv_cache_bytes(3, 4, 24, n_tokens=26, batch=2, bytes_per_value=4)


def test_this_cpu_does_a_plausible_number_of_flops_per_second():
    cfg = cfg_of(4, 128, 4, 64, 65)
    with wmbook.threads(1):
        ts = gpt_training_step(cfg, 12)
        flops = counted_training_flops(ts.forward_backward)
        seconds = time_call(ts.forward_backward, repeats=3)
    rate = flops / seconds
    assert 1e7 < rate < 1e13, rate  # any CPU thread from the last twenty years, busy or not
    assert math.isfinite(rate)
