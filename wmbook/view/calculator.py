"""The compute calculator of page 9.1: training FLOPs, time, memory and KV cache, in the reader's browser.

``compute_calculator(presets)`` returns a :class:`~wmbook.view.fragment.Fragment` (inline JS and
CSS, nothing fetched) that works in Jupyter, VS Code, Colab and in the built book from ``file://``.
The reader picks a preset or types a model's shape (N, D, throughput, precision, batch, sequence
length, layers, d_model, heads, key/value heads, d_ff, vocabulary) and reads: 6ND FLOPs, the time
at that throughput, the bytes of weights, gradients, Adam state and activations, and the KV cache
per token and for the batch. The JavaScript evaluates the same formulas as its Python twin,
:func:`wmbook.lab.compute.calculate`; ``tests/test_calculator_browser.py`` checks that they agree.
"""
from __future__ import annotations

from typing import Mapping

from wmbook.lab.compute import PRESETS, CalculatorInputs, calculate, inputs_dict
from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"
_ARGS = "__WMB_ARGS__"


class Calculator(Fragment):
    """The calculator ready to show (``.html``; ``.save(path)`` writes a page)."""


def compute_calculator(presets: Mapping[str, Mapping] | None = None, initial: str | None = None,
                       title: str = "Compute calculator") -> Calculator:
    """The calculator with ``presets`` (``{name: {"source": str, "inputs": CalculatorInputs}}``;
    default :data:`wmbook.lab.compute.PRESETS`), opened on ``initial`` (default: the first).

    Every preset is checked with :func:`~wmbook.lab.compute.calculate` first, so a bad one fails
    here, in Python, with the reason, instead of in the reader's browser.
    """
    presets = dict(PRESETS if presets is None else presets)
    if not presets:
        raise ValueError("give at least one preset")
    rows = []
    for name, p in presets.items():
        if not isinstance(p, Mapping) or not isinstance(p.get("inputs"), CalculatorInputs):
            raise ValueError(f"preset {name!r} must be a mapping with 'inputs' (a CalculatorInputs) and 'source'")
        try:
            calculate(p["inputs"])
        except ValueError as e:
            raise ValueError(f"preset {name!r}: {e}") from None
        rows.append({"name": str(name), "source": str(p.get("source", "")), "inputs": inputs_dict(p["inputs"])})
    if initial is not None and initial not in presets:
        raise ValueError(f"initial must name a preset ({', '.join(presets)}), got {initial!r}")
    uid = new_uid("wmb-calc")
    payload = {"presets": rows, "initial": initial or rows[0]["name"]}
    css = asset("calculator_assets", "calculator.css").replace(_UID, uid)
    js = asset("calculator_assets", "calculator.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(payload)}', 1)
    html = (
        f'<div id="{uid}" class="wmb-calc"><style>{css}</style>'
        f'<div class="wmb-calc-title">{escape(title)}</div>'
        '<div class="wmb-calc-body"><p>The calculator needs JavaScript: in Jupyter, trust the notebook '
        "(wmbook.lab.compute.calculate computes the same numbers in Python).</p></div></div>\n"
        f"<script>{js}</script>"
    )
    return Calculator(html, uid, f"{len(rows)} presets", title)


__all__ = ["Calculator", "compute_calculator"]
