r"""The attention explorer: attention weights as one self-contained, interactive HTML view.

The weights are the :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})` rows of page 4.1,
"The mathematics of attention" (``chapters/04/4_1_attention.ipynb``): row ``i``
says how much query ``i`` reads from each key. The explorer shows them for every
layer and head of a model, and lets the reader re-apply page 4.1's temperature
and masks in the browser:

.. math::

    w'_{ij} = \frac{\exp(\log w_{ij} / \tau)}{\sum_{k \in \mathrm{allowed}(i)} \exp(\log w_{ik} / \tau)}
    \quad \text{for } j \in \mathrm{allowed}(i),\ 0 \text{ otherwise},

which is the same softmax with the scores divided by :math:`\tau` (the scores and
:math:`\log w` differ by a per-row constant). ``allowed(i)`` drops the keys a mask
removes: later keys (causal), special tokens such as ``[CLS]``/``[SEP]``, and padding.
With :math:`\tau = 1` and no mask the view shows the model's weights.

* :func:`attention_view` builds the view (``AttentionView``): it displays itself in
  Jupyter, VS Code and Colab, is copied verbatim into the Jupyter Book page, and
  ``.save(path)`` writes a page that works from ``file://`` offline.
* :func:`minilm_attentions` runs the pre-trained all-MiniLM-L6-v2 (BERT, 6 layers ×
  12 heads) offline and returns examples ready for :func:`attention_view`.
* :func:`live_explorer` adds a text box (ipywidgets): type a sentence, see its attention.

What the HTML contains (one ``<div>`` and one ``<script>``, nothing fetched):

* the CSS of ``explorer_assets/explorer.css`` with every rule under the view's own id,
  and the JavaScript of ``explorer_assets/explorer.js`` in one function call (no globals);
* the data as JSON in that call, with ``<``, ``>``, ``&``, U+2028 and U+2029 written as
  ``\uXXXX`` escapes, so no token can close the script or open a comment;
* per example the weights as ``log w`` in IEEE float16, little-endian, in the order
  ``(layer, head, query, key)``, base64-encoded. An exact zero (``log 0 = -inf``) is
  written as ``-65504`` (:data:`LOG_ZERO`, the most negative finite float16); any value
  ``<= LOG_ZERO`` decodes to a weight of exactly 0. float16 keeps ``log w`` to a relative
  error of ``2**-11``, so a weight keeps a relative error below ``|log w| / 2048``
  (0.5 % for ``w = 1e-4``); rows are renormalised after decoding. :func:`decode_log_weights`
  reads the field back in Python.
"""
from __future__ import annotations

import base64
import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid
from wmbook.view.fragment import page_html as _page_html
from wmbook.lab.attentions import (
    DEFAULT_SPECIAL_TOKENS, MAX_TOKENS, _field, _is_pair, _minilm_one, _stack_attentions, _to_numpy,
)

LARGE_VIEW_BYTES = 5_000_000  # warn above this: notebooks store every output
LOG_ZERO = -65504.0  # float16 sentinel for log(0): the most negative finite float16
MODES = ("head", "layer", "all")  # one head; every head of the layer; every layer × head
_UID_PLACEHOLDER = "__WMB_UID__"
_ARGS_PLACEHOLDER = "__WMB_ARGS__"


# --------------------------------------------------------------------------- encoding


def encode_log_weights(weights: np.ndarray) -> str:
    """``log w`` as float16 little-endian, base64 (the explorer's data field); ``log 0 -> LOG_ZERO``."""
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logw = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), LOG_ZERO)
    return base64.b64encode(logw.astype("<f2").tobytes()).decode("ascii")


def decode_log_weights(data: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """Inverse of :func:`encode_log_weights`: the weights (not their logs), as float32.

    Values ``<= LOG_ZERO`` become exactly 0. Rows are *not* renormalised here.
    """
    logw = np.frombuffer(base64.b64decode(data), dtype="<f2").astype(np.float32)
    w = np.where(logw <= LOG_ZERO, 0.0, np.exp(logw)).astype(np.float32)
    return w.reshape(shape) if shape is not None else w


# --------------------------------------------------------------------------- input checks


def _as_examples(obj: Any) -> list:
    """One example (dict, AttentionExample, object with ``.tokens``, ``(tokens, attentions)``) or a list of them."""
    if isinstance(obj, Mapping) or hasattr(obj, "tokens") or _is_pair(obj):
        return [obj]
    if isinstance(obj, str) or not hasattr(obj, "__iter__"):
        raise TypeError(f"expected a list of examples (tokens and attentions), got {type(obj).__name__}")
    return list(obj)


def _prepare(ex: Any, k: int, special: Sequence[str], max_tokens: int) -> tuple[dict, str | None]:
    """Check one example and turn it into its JSON record (plus a truncation notice, if any)."""
    if _is_pair(ex) or (isinstance(ex, list) and len(ex) == 2 and isinstance(ex[0], (list, tuple))):
        ex = {"tokens": ex[0], "attentions": ex[1]}
    tokens, att = _field(ex, "tokens"), _field(ex, "attentions")
    name = _field(ex, "name")
    label = f"example {k}" + (f" ({name!r})" if name else "")
    if tokens is None or att is None:
        raise TypeError(
            f"{label} needs 'tokens' and 'attentions' (a dict, an AttentionExample or a "
            f"(tokens, attentions) pair); got {type(ex).__name__}"
        )
    if isinstance(tokens, str):
        raise TypeError(f"{label}: tokens must be a list of strings, not one string; e.g. tokenizer.tokenize(text)")
    tokens = list(tokens)
    for i, t in enumerate(tokens):
        if not isinstance(t, str):
            raise TypeError(
                f"{label}: token {i} is {type(t).__name__} {t!r}, not str; turn ids into tokens "
                "with tokenizer.convert_ids_to_tokens(ids)"
            )
    if not tokens:
        raise ValueError(f"{label} has an empty token list; an attention view needs at least one token")
    a = _stack_attentions(att, label)
    L, H, Tq, Tk = a.shape
    if Tq != Tk or Tq != len(tokens):
        raise ValueError(
            f"{label}: tokens has shape ({len(tokens)},) but attentions has shape {a.shape} "
            "(n_layers, n_heads, T, T); both of the last two axes must equal the number of tokens"
        )
    bad = np.argwhere(~np.isfinite(a))
    if bad.size:
        l, h, i, j = bad[0]
        kind = "NaN" if np.isnan(a[l, h, i, j]) else "an infinite value"
        raise ValueError(
            f"{label}: the attention weights contain {kind} ({len(bad)} entries; first at layer {l}, "
            f"head {h}, query {i}, key {j}). Weights must be finite probabilities; check the model's "
            "masks (a row with every key masked gives NaN) and its dtype."
        )
    if (a < 0).any():
        l, h, i, j = np.argwhere(a < 0)[0]
        raise ValueError(
            f"{label}: attention weights must be >= 0 (they are softmax outputs); layer {l}, head {h}, "
            f"query {i}, key {j} is {a[l, h, i, j]:.4g}. Pass the weights, not the scores."
        )

    T = len(tokens)
    real = np.ones(T, dtype=bool)
    n_real, mask = _field(ex, "n_real"), _field(ex, "attention_mask")
    if n_real is not None and mask is not None:
        raise ValueError(f"{label}: give n_real or attention_mask, not both")
    if n_real is not None:
        if isinstance(n_real, bool) or not 1 <= int(n_real) <= T:
            raise ValueError(f"{label}: n_real must be an int between 1 and the {T} tokens; got {n_real!r}")
        real[int(n_real):] = False
    if mask is not None:
        m = _to_numpy(mask, f"{label}: attention_mask").reshape(-1)
        if m.shape[0] != T:
            raise ValueError(f"{label}: attention_mask has shape {m.shape} but there are {T} tokens")
        real = m > 0
        if not real.any():
            raise ValueError(f"{label}: attention_mask marks no token as real (all zeros)")

    n_total = _field(ex, "n_total")
    n_total = max(T, int(n_total)) if n_total is not None else T
    cut_here = T > max_tokens
    if cut_here:
        tokens, a, real, T = tokens[:max_tokens], a[:, :, :max_tokens, :max_tokens], real[:max_tokens], max_tokens
        if not real.any():
            raise ValueError(f"{label}: none of the first {max_tokens} tokens is real (all padding)")
    notice = None
    if n_total > T:
        notice = f"{label}: showing the first {T} of {n_total} tokens"
        if cut_here:
            notice += "; each row is renormalised over the tokens shown"
    special_set = set(special)
    record = {
        "name": str(name) if name is not None else f"example {k}",
        "tokens": tokens,
        "L": int(L),
        "H": int(H),
        "T": int(T),
        "total": int(n_total),
        "real": None if real.all() else "".join("1" if r else "0" for r in real),
        "special": [i for i, t in enumerate(tokens) if t in special_set],
        "logw": encode_log_weights(a),
    }
    return record, notice


# --------------------------------------------------------------------------- the view


def _asset(name: str) -> str:
    return asset("explorer_assets", name, _ARGS_PLACEHOLDER if name.endswith(".js") else None)


class AttentionView(Fragment):
    """An attention explorer ready to show: ``.html`` is the fragment, ``.save(path)`` a page."""


def page_html(*views: AttentionView, title: str = "Attention explorer") -> str:
    """A complete HTML document holding one or more views (each keeps its own ids and styles)."""
    return _page_html(*views, title=title)


def attention_view(
    examples: Any,
    *,
    title: str | None = None,
    causal: bool = False,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    hide_special: bool = False,
    hide_padding: bool = True,
    temperature: float = 1.0,
    layer: int = 0,
    head: int = 0,
    mode: str = "head",
    max_tokens: int = MAX_TOKENS,
) -> AttentionView:
    r"""An interactive view of attention weights, as one self-contained HTML fragment.

    Args:
        examples: a list of examples, each an :class:`AttentionExample`, a dict with
            ``tokens``, ``attentions`` and optionally ``name``, ``n_real``,
            ``attention_mask``, ``n_total``, or a ``(tokens, attentions)`` pair.
            One example alone is accepted too.
        title: shown above the view.
        causal: start with the causal mask on (key ``j > i`` hidden, rows renormalised).
        special_tokens: the tokens the "hide special tokens" toggle removes as keys.
        hide_special: start with that toggle on.
        hide_padding: start with padding (``n_real``/``attention_mask``) excluded.
        temperature: starting :math:`\tau` of :math:`\mathrm{softmax}(\log w/\tau)`; the slider spans 0.1–10.
        layer, head: the head shown first (0-based, as in ``attentions[layer][0, head]``).
        mode: ``"head"`` (one head), ``"layer"`` (a grid of every head of the layer) or
            ``"all"`` (a grid of every layer × head); a grid cell click selects that head.
        max_tokens: longer examples are cut to their first ``max_tokens`` tokens, with a notice.

    Returns:
        An :class:`AttentionView`: it displays itself in a notebook; ``.html`` is the
        fragment and ``.save(path)`` writes a standalone page.

    Raises:
        ValueError: no examples, an empty token list, tokens and weights of different
            lengths, NaN/infinite/negative weights, or an option out of range.
    """
    examples = _as_examples(examples)
    if not examples:
        raise ValueError("attention_view needs at least one example (tokens and attentions)")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and 0.1 <= temperature <= 10):
        raise ValueError(f"temperature must be between 0.1 and 10 (the slider's range), got {temperature!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(special_tokens, str):
        special_tokens = (special_tokens,)

    records, notices = [], []
    for k, ex in enumerate(examples):
        record, notice = _prepare(ex, k, special_tokens, max_tokens)
        records.append(record)
        if notice:
            notices.append(notice)
    first = records[0]
    if not 0 <= layer < first["L"] or not 0 <= head < first["H"]:
        raise ValueError(
            f"layer={layer}, head={head} is out of range: the first example has "
            f"{first['L']} layers (0..{first['L'] - 1}) and {first['H']} heads (0..{first['H'] - 1})"
        )

    uid = new_uid("wmb-attn")
    payload = {
        "examples": records,
        "options": {
            "causal": bool(causal),
            "hideSpecial": bool(hide_special),
            "hidePadding": bool(hide_padding),
            "temperature": float(temperature),
            "layer": int(layer),
            "head": int(head),
            "mode": mode,
        },
    }
    css = _asset("explorer.css").replace(_UID_PLACEHOLDER, uid)
    js = _asset("explorer.js").replace(_ARGS_PLACEHOLDER, f'"{uid}", {json_for_script(payload)}', 1)
    sizes = sorted({(r["L"], r["H"], r["T"]) for r in records})
    summary = f"{len(records)} example(s); " + ", ".join(f"{L} layers × {H} heads × {T} tokens" for L, H, T in sizes)
    title = None if title is None else str(title)
    head_html = '<div class="wmb-head">'
    if title:
        head_html += f'<strong class="wmb-title">{escape(title)}</strong>'
    head_html += f'<span class="wmb-sub">{escape(summary)}</span></div>'
    notice_html = "".join(f'<p class="wmb-notice" role="note">{escape(n)}</p>' for n in notices)
    fragment = (
        f'<div id="{uid}" class="wmb-attn" data-wmb-version="1">'
        f"<style>{css}</style>{head_html}{notice_html}"
        '<div class="wmb-body"><p class="wmb-fallback">This interactive attention view needs JavaScript. '
        "In Jupyter, trust the notebook (or run the cell again) to enable it.</p></div></div>\n"
        f"<script>{js}</script>"
    )
    if len(fragment) > LARGE_VIEW_BYTES:
        warnings.warn(
            f"this attention view is {len(fragment) / 1e6:.1f} MB of HTML, and a notebook stores all of it; "
            "show fewer tokens (max_tokens=...), layers (attentions[:k]) or examples",
            stacklevel=2,
        )
    return AttentionView(fragment, uid, summary, title or "Attention explorer")


# --------------------------------------------------------------------------- live widget

MINILM_NAME = "all-MiniLM-L6-v2 (BERT, 6 layers × 12 heads)"


class LiveExplorer:
    """A text box, a model menu and a button over an attention view (ipywidgets 7.7 and 8).

    ``models`` maps a name to ``callable(sentence) -> example`` (or a list of
    examples). ``update()`` recomputes; ``view`` is the last :class:`AttentionView`
    and ``error`` the last failure (also shown in the output). Displaying the
    object displays ``widget``.
    """

    def __init__(self, default_text: str, models: Mapping[str, Callable[[str], Any]], view_options: dict) -> None:
        import ipywidgets as widgets

        if not models:
            raise ValueError("live_explorer needs at least one model function")
        for name, fn in models.items():
            if not callable(fn):
                raise TypeError(f"model {name!r} must be a callable(sentence) -> example, got {type(fn).__name__}")
        self.models = dict(models)
        self.view_options = dict(view_options)
        self.view: AttentionView | None = None
        self.error: Exception | None = None
        self.text = widgets.Text(value=default_text, description="Text:", placeholder="Type a sentence, press Enter",
                                 layout=widgets.Layout(width="55%"))
        self.model = widgets.Dropdown(options=list(self.models), value=next(iter(self.models)), description="Model:")
        self.button = widgets.Button(description="Show attention", button_style="primary", icon="eye")
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.text, self.model, self.button]), self.out])
        self.button.on_click(lambda _button: self.update())
        self.model.observe(lambda _change: self.update(), names="value")
        if "continuous_update" in self.text.traits():  # Enter (or leaving the box) submits
            self.text.continuous_update = False
            self.text.observe(lambda _change: self.update(), names="value")
        self.update()

    def compute(self, sentence: str, model: str | None = None) -> AttentionView:
        name = model if model is not None else self.model.value
        if not sentence.strip():
            raise ValueError("the text is empty; type a sentence first")
        examples = _as_examples(self.models[name](sentence))
        options = {"title": name, **self.view_options}
        return attention_view(examples, **options)

    def update(self) -> AttentionView | None:
        from IPython.display import HTML, display

        self.button.disabled = True
        try:
            self.view, self.error = self.compute(self.text.value), None
        except Exception as err:  # shown to the reader: a callback's exception would vanish into a log
            self.view, self.error = None, err
        finally:
            self.button.disabled = False
        with self.out:
            self.out.clear_output(wait=True)
            if self.error is not None:
                print(f"Could not show the attention: {type(self.error).__name__}: {self.error}")
            else:
                display(HTML(self.view.html))
        return self.view

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def live_explorer(
    default_text: str = "The cat sat on the mat because it was tired.",
    model_fn: Callable[[str], Any] | Mapping[str, Callable[[str], Any]] | None = None,
    **view_options: Any,
) -> LiveExplorer:
    """Type a sentence, see its attention: a live :func:`attention_view` (needs a running kernel).

    ``model_fn`` is ``callable(sentence) -> example`` or a dict ``name -> callable``
    (the dropdown lists the names); by default all-MiniLM-L6-v2 via
    :func:`minilm_attentions`. Other keyword arguments go to :func:`attention_view`.
    The view is recomputed when the button is clicked, the model changes, or Enter
    is pressed in the text box (ipywidgets 8; with 7.x use the button).
    """
    if model_fn is None:
        models: Mapping[str, Callable[[str], Any]] = {MINILM_NAME: _minilm_one}
    elif isinstance(model_fn, Mapping):
        models = model_fn
    else:
        models = {getattr(model_fn, "__name__", "model"): model_fn}
    return LiveExplorer(default_text, models, view_options)
