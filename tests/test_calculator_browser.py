"""The compute calculator of page 9.1 (wmbook/view/calculator.py) in headless Chromium, opened from
file:// offline: its JavaScript gives the numbers of its Python twin (wmbook/lab/compute.py) for
every preset, for typed inputs and for random shapes, shows a message (no exception) for bad
input, fetches nothing and logs no console error."""
from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path

import pytest

from wmbook.lab.compute import OUTPUTS, PRESETS, CalculatorInputs, calculate, char_gpt_preset, format_bytes, inputs_dict
from wmbook.view.calculator import compute_calculator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402

pytestmark = pytest.mark.slow


def press(page, key: str) -> None:
    codes = {".": 190, "-": 189, "Backspace": 8}  # Windows virtual-key codes (46 would be Delete)
    params = {"key": key, "windowsVirtualKeyCode": codes[key] if key in codes else ord(key.upper())}
    if len(key) == 1:
        page.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": key, **params})
    else:
        page.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **params})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})


def type_into(page, view, field: str, text: str) -> None:
    """Focus the field, select what it holds, and type ``text`` key by key (as a reader would)."""
    sel = f"#{view.uid} [data-field='{field}']"
    page.click(*page.center(sel))
    page.eval(f"document.querySelector(\"{sel}\").select()")
    press(page, "Backspace")
    for ch in text:
        press(page, ch)


def shown(page, view) -> dict:
    return page.eval(f"(function(){{var o={{}};document.querySelectorAll('#{view.uid} td[data-key]').forEach("
                     "function(td){o[td.getAttribute('data-key')]=[td.getAttribute('data-value'),td.textContent];});"
                     "return o;})()")


def assert_same(js: dict, py: dict) -> None:
    for key in OUTPUTS:
        value = float(js[key][0])
        assert value == pytest.approx(py[key], rel=1e-12), (key, value, py[key])


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def open_view(browser, tmp_path, view):
    path = view.save(tmp_path / "calculator.html")
    page = browser.new_page(width=1000, height=1200)
    page.goto(path.as_uri())
    page.wait_for(f"document.getElementById('{view.uid}').getAttribute('data-wmb-ready')")
    return page


def test_the_javascript_equals_the_python_twin(browser, tmp_path):
    presets = {**PRESETS, "char GPT": char_gpt_preset(809856, 1536000, 9.6e9)}
    view = compute_calculator(presets, initial="char GPT")
    page = open_view(browser, tmp_path, view)
    # the preset the page opens on, then every preset chosen from the menu
    assert_same(shown(page, view), calculate(presets["char GPT"]["inputs"]))
    for i, (name, p) in enumerate(presets.items()):
        page.eval(f"(function(s){{s.value='{i}';s.dispatchEvent(new Event('change'));}})"
                  f"(document.querySelector('#{view.uid} .wmb-calc-preset'))")
        values = shown(page, view)
        assert_same(values, calculate(p["inputs"]))
        assert values["kv_bytes_per_token"][1] == format_bytes(calculate(p["inputs"])["kv_bytes_per_token"])
    # the formulas themselves on random shapes, all outputs
    rnd = random.Random(0)
    for _ in range(40):
        h = rnd.choice([1, 2, 4, 8, 16, 32])
        x = CalculatorInputs(n_params=rnd.uniform(1e5, 1e12), n_tokens=rnd.uniform(1e6, 2e13),
                             flops_per_second=10 ** rnd.uniform(9, 18), precision=rnd.choice(["fp32", "bf16", "fp16"]),
                             batch=rnd.randint(1, 64), seq_len=rnd.randint(1, 32768), n_layers=rnd.randint(1, 128),
                             d_model=h * rnd.randint(1, 256), n_heads=h, n_kv_heads=rnd.choice([0, 1, h]),
                             d_ff=rnd.choice([0, rnd.randint(1, 60000)]), vocab_size=rnd.randint(2, 200000),
                             fused_attention=rnd.random() < 0.5)
        js = page.eval(f"wmbookCalc.calculate({json.dumps(inputs_dict(x))})")
        py = calculate(x)
        for key in OUTPUTS:
            assert js[key] == pytest.approx(py[key], rel=1e-12), (key, x)
    for n in (0, 5, 1023, 1024, 36864, 1.5e6, 3.5e12, 7.7e9):
        assert page.eval(f"wmbookCalc.formatBytes({n})") == format_bytes(n)
    assert not page.errors(), page.errors()
    assert all(u.startswith(("file:", "data:", "about:")) for u in page.requests())


def test_typing_updates_the_outputs_and_bad_input_shows_a_message(browser, tmp_path):
    view = compute_calculator(initial="GPT-3 175B")
    page = open_view(browser, tmp_path, view)
    base = PRESETS["GPT-3 175B"]["inputs"]
    type_into(page, view, "n_tokens", "1.4e12")
    type_into(page, view, "seq_len", "4096")
    page.eval(f"(function(s){{s.value='fp32';s.dispatchEvent(new Event('change',{{bubbles:true}}));}})"
              f"(document.querySelector('#{view.uid} [data-field=precision]'))")
    page.click(*page.center(f"#{view.uid} [data-field='fused_attention']"))  # off: the T x T weights are kept
    want = calculate(dataclasses.replace(base, n_tokens=1.4e12, seq_len=4096, precision="fp32", fused_attention=False))
    assert_same(shown(page, view), want)
    # GPT-3 at 1 PFLOP/s: the time in days is the compute in petaflop/s-days
    days = page.eval(f"document.getElementById('{view.uid}').wmbResult.training_days")
    assert days == pytest.approx(want["training_days"], rel=1e-12)
    # bad input: a message, dashes, no exception
    type_into(page, view, "n_heads", "7")
    page.wait_for(f"document.getElementById('{view.uid}').getAttribute('data-wmb-state')==='error'")
    msg = page.eval(f"document.querySelector('#{view.uid} .wmb-calc-error').textContent")
    assert "divisible by n_heads" in msg
    assert shown(page, view)["training_flops"][0] is None
    type_into(page, view, "n_heads", "96")
    page.wait_for(f"document.getElementById('{view.uid}').getAttribute('data-wmb-state')==='ok'")
    type_into(page, view, "n_params", "-3")
    assert "n_params must be a positive number" in page.eval(f"document.querySelector('#{view.uid} .wmb-calc-error').textContent")
    assert not page.errors(), page.errors()
    assert all(u.startswith(("file:", "data:", "about:")) for u in page.requests())


def test_bad_presets_fail_in_python():
    with pytest.raises(ValueError, match="preset 'x'"):
        compute_calculator({"x": {"inputs": dataclasses.replace(PRESETS["GPT-3 175B"]["inputs"], n_heads=7)}})
    with pytest.raises(ValueError, match="initial must name a preset"):
        compute_calculator(initial="nope")
    with pytest.raises(ValueError, match="CalculatorInputs"):
        compute_calculator({"x": {"inputs": {"n_params": 1}}})


def test_the_calculator_stored_in_page_9_1_works_offline(browser, tmp_path):
    """The fragment as page 9.1 stores it (what the built book shows), opened from file://."""
    import nbformat

    from wmbook.view.fragment import Fragment, page_html

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "chapters" / "09" / "9_1_compute.ipynb", as_version=4)
    stored = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" and "compute_calculator(" in c.source
              for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(stored) == 1, "page 9.1 must show the calculator once (re-execute it)"
    html = "".join(stored[0]) if isinstance(stored[0], list) else stored[0]
    uid = html.split('id="', 1)[1].split('"', 1)[0]
    path = tmp_path / "page91.html"
    path.write_text(page_html(Fragment(html, uid, "stored", "9.1")), encoding="utf-8")
    page = browser.new_page(width=1000, height=1200)
    page.goto(path.as_uri())
    page.wait_for(f"document.getElementById('{uid}').getAttribute('data-wmb-ready')")
    presets = page.eval(f"Array.from(document.querySelectorAll('#{uid} .wmb-calc-preset option')).map(o => o.textContent)")
    assert "GPT-3 175B" in presets and "Llama 3 405B" in presets
    r = page.eval(f"document.getElementById('{uid}').wmbResult")
    want = calculate(PRESETS["GPT-3 175B"]["inputs"])  # the page opens on GPT-3
    for key in OUTPUTS:
        assert r[key] == pytest.approx(want[key], rel=1e-12), key
    assert not page.errors(), page.errors()
    assert all(u.startswith(("file:", "data:", "about:")) for u in page.requests())


def test_long_numbers_are_shown_in_exponent_form_and_parse_back_exactly(browser, tmp_path):
    view = compute_calculator(initial="Llama 3 405B")
    page = open_view(browser, tmp_path, view)
    for v in (175e9, 15.6e12, 1e15, 809856, 1536000, 9.6e9):
        text = page.eval(f"wmbookCalc.formatInput({v!r})")
        assert float(text) == v and (v < 1e6 or "e" in text)
    assert page.eval(f"document.querySelector('#{view.uid} [data-field=n_tokens]').value") == "1.56e13"
    days = page.eval(f"document.querySelector('#{view.uid} td[data-key=training_days]').textContent")
    assert days == f"{calculate(PRESETS['Llama 3 405B']['inputs'])['training_days']:,.0f}"
    assert not page.errors(), page.errors()
