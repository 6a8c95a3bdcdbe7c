"""The live character GPT, Python side (wmbook/view/live_gpt.py): weight packing round trip, the
fragment's sizes and safety, and the errors. The browser side is tests/test_live_gpt_browser.py."""
from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from wmbook.lab.char_gpt import load_char_gpt
from wmbook.nn.gpt import GPT, GPTConfig
from wmbook.view.fragment import page_html
from wmbook.view.live_gpt import (
    AIM_GZIP_BYTES, FORMAT, live_gpt, pack_gpt, round_to_float16, sample_index, tensor_names, unpack_gpt,
)

VOCAB = list("\nabcdefgh ")


def tiny(bias=True, tie=True, seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=len(VOCAB), n_ctx=8, d_model=16, n_heads=2, n_layers=2, dropout=0.0, bias=bias,
               tie_weights=tie)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def payload(view) -> dict:
    m = re.search(r'\}\)\("' + re.escape(view.uid) + r'", (\{.*\})\);\s*\}\)\(\);\s*</script>', view.html, re.S)
    assert m, "the script must end with the call (uid, payload) inside the wrapper that holds EXPLORER"
    return json.loads(m.group(1))


@pytest.mark.parametrize("bias,tie", [(True, True), (False, True), (True, False), (False, False)])
def test_pack_unpack_round_trip_is_the_float16_rounding(bias, tie):
    model = tiny(bias, tie)
    if not tie:
        with torch.no_grad():
            model.lm_head.weight.normal_()
    packed = pack_gpt(model, VOCAB)
    names = tensor_names(model.cfg.n_layers, bias, tie)
    expected = set(model.state_dict()) - ({"lm_head.weight"} if tie else set())
    assert set(names) == expected and len(names) == len(expected)
    n = sum(model.state_dict()[k].numel() for k in names)
    assert packed.n_params == n and packed.weight_bytes == 2 * n
    rounded = round_to_float16(model)
    for source in (packed, packed.payload()):
        back, vocab = unpack_gpt(source)
        assert vocab == VOCAB and not back.training
        for k, v in rounded.state_dict().items():
            assert torch.equal(back.state_dict()[k], v), k
    assert not torch.equal(rounded.wte.weight, model.wte.weight)  # the rounding did something
    # offsets: consecutive, in the order of tensor_names
    offsets = [t[2] for t in packed.tensors]
    sizes = [int(np.prod(t[1])) for t in packed.tensors]
    assert [t[0] for t in packed.tensors] == names and offsets == list(np.cumsum([0] + sizes[:-1]))


def test_round_to_float16_leaves_the_model_alone_and_keeps_tying():
    model = tiny()
    before = model.wte.weight.clone()
    rounded = round_to_float16(model)
    assert torch.equal(model.wte.weight, before)
    assert rounded.lm_head.weight is rounded.wte.weight
    assert torch.equal(rounded.wte.weight, before.half().float())


def test_unpack_refuses_other_formats_and_truncated_data():
    p = pack_gpt(tiny(), VOCAB).payload()
    with pytest.raises(ValueError, match="format"):
        unpack_gpt({**p, "format": "something-else"})
    short = base64.b64encode(base64.b64decode(p["weights"])[:-20]).decode()
    with pytest.raises(ValueError, match="truncated"):
        unpack_gpt({**p, "weights": short})


def test_shakespeare_model_size_is_reported_and_within_the_aim():
    g = load_char_gpt()
    view = live_gpt(g, prompt="ROMEO:\n")
    s = view.sizes()
    assert s["n_params"] == sum(p.numel() for p in g.model.parameters())  # tied: counted once
    assert s["weight_bytes"] == 2 * s["n_params"]
    assert s["html_bytes"] == len(view.html.encode()) > 4 * s["weight_bytes"] / 3
    assert s["gzip_bytes"] == len(gzip.compress(view.html.encode(), compresslevel=9, mtime=0))
    assert s["gzip_bytes"] <= AIM_GZIP_BYTES
    print(f"\nShakespeare character GPT: {s['n_params']:,} parameters, {s['weight_bytes'] / 1e6:.2f} MB float16, "
          f"fragment {s['html_bytes'] / 1e6:.2f} MB, gzipped {s['gzip_bytes'] / 1e6:.2f} MB")
    p = payload(view)
    assert p["model"]["format"] == FORMAT and p["model"]["vocab"] == g.vocab
    assert p["settings"]["prompt"] == "ROMEO:\n"
    assert "n_ctx" in p["model"]["config"] and p["model"]["config"]["n_ctx"] == 64


def test_fragment_is_safe_and_two_views_do_not_share_ids(tmp_path):
    vocab = list("<>&/\n\u2028ab\"'")
    model = tiny(vocab_size=len(vocab))
    a = live_gpt(model, vocab, prompt="</", title="<script>alert(1)</script>")
    b = live_gpt(model, vocab)
    assert a.uid != b.uid and a.uid not in b.html
    script = a.html.split("<script>", 1)[1]
    assert script.lower().count("</script") == 1 and "<!--" not in script
    assert "<script>alert" not in a.html.split("<script>", 1)[0]
    assert payload(a)["model"]["vocab"] == vocab and payload(a)["settings"]["prompt"] == "</"
    page = page_html(a, b)
    assert page.count('class="wmb-live"') == 2
    assert a.save(tmp_path / "a.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_errors_say_what_was_wrong():
    model = tiny()
    with pytest.raises(TypeError, match="wmbook.nn.gpt.GPT models only"):
        pack_gpt(nn.Linear(2, 2), VOCAB)
    with pytest.raises(ValueError, match="vocab_size is 10"):
        pack_gpt(model, VOCAB[:-1])
    with pytest.raises(ValueError, match="one character"):
        pack_gpt(model, ["ab"] + VOCAB[1:])
    with pytest.raises(ValueError, match="twice"):
        pack_gpt(model, ["a"] + VOCAB[1:-1] + ["a"])
    with pytest.raises(ValueError, match="max_bytes"):
        pack_gpt(model, VOCAB, max_bytes=1000)
    relu = tiny()
    relu.blocks[1].mlp.act = nn.ReLU()
    with pytest.raises(ValueError, match="block 1 .*tanh"):
        pack_gpt(relu, VOCAB)
    big = tiny()
    with torch.no_grad():
        big.blocks[0].attn.W_q.weight[0, 0] = 1e6
    with pytest.raises(ValueError, match="float16 cannot hold"):
        pack_gpt(big, VOCAB)
    untied = tiny()
    with torch.no_grad():
        untied.lm_head.weight = nn.Parameter(untied.wte.weight.clone() + 1)
    with pytest.raises(ValueError, match="tie_weights"):
        pack_gpt(untied, VOCAB)
    with pytest.raises(ValueError, match="pass the character vocabulary"):
        live_gpt(model)
    for kwargs, match in [({"prompt": "xyz"}, "outside the model's vocabulary"), ({"n_new": 0}, "n_new"),
                          ({"temperature": -1}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 0}, "top_p"),
                          ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed")]:
        with pytest.raises(ValueError, match=match):
            live_gpt(model, VOCAB, **kwargs)
    with pytest.raises(TypeError, match="constrain"):
        live_gpt(model, VOCAB, constrain=lambda t: t)


def test_sample_index_is_the_inverse_cdf_in_vocabulary_order():
    p = [0.0, 0.25, 0.0, 0.5, 0.25]
    assert [sample_index(p, u) for u in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)] == [1, 1, 3, 3, 4, 4]
    assert sample_index([0.3, 0.3, 0.0], 0.99999999) == 1  # rounding at the top: the last drawable id
    with pytest.raises(ValueError, match="zero"):
        sample_index([0.0, 0.0], 0.5)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6))
    draws = [sample_index(probs, u) for u in rng.random(20000)]
    assert np.allclose(np.bincount(draws, minlength=6) / 20000, probs, atol=0.015)


def test_leb128_and_the_webassembly_module():
    from wmbook.view.live_gpt import _sleb, _uleb, matmul_wasm

    assert [_uleb(n) for n in (0, 127, 128, 624485)] == [b"\x00", b"\x7f", b"\x80\x01", b"\xe5\x8e\x26"]
    assert [_sleb(n) for n in (0, 2, -1, 63, 64, -123456)] == [b"\x00", b"\x02", b"\x7f", b"\x3f", b"\xc0\x00",
                                                                b"\xc0\xbb\x78"]
    wasm = matmul_wasm()
    assert wasm[:8] == b"\x00asm\x01\x00\x00\x00" and wasm == matmul_wasm()
    # sections in order: type (1), import (2), function (3), export (7), code (10); each length as declared
    pos, ids = 8, []
    while pos < len(wasm):
        ids.append(wasm[pos])
        size, shift, pos = 0, 0, pos + 1
        while True:
            byte = wasm[pos]
            size |= (byte & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
            if not byte & 0x80:
                break
        pos += size
    assert ids == [1, 2, 3, 7, 10] and pos == len(wasm)
    assert b"\x03env\x03mem" in wasm and b"\x02mm\x00\x00" in wasm
    assert len(wasm) < 1000
    view = live_gpt(tiny(), VOCAB)
    assert base64.b64decode(payload(view)["model"]["kernel"]) == wasm


def test_the_explorer_is_optional():
    model = tiny()
    with_ex, without = live_gpt(model, VOCAB), live_gpt(model, VOCAB, explorer=False)
    assert "var EXPLORER = null;" in without.html and "var EXPLORER = null;" not in with_ex.html
    assert "EX_ID, EX_DATA" in with_ex.html and "EX_ID" not in without.html
    assert 20_000 < with_ex.html_bytes - without.html_bytes < 100_000
    script = with_ex.html.split("<script>", 1)[1]
    assert script.lower().count("</script") == 1 and "</style" not in script.lower()
