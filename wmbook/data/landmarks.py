"""The landmark language models of page 1.1: a sourced table, one row per model.

``landmark_models.csv`` (next to this module) holds, for each model, what its source (a paper,
technical report or model card; the bibtex key is in ``source``, in the book's
``references.bib``) states: year, parameters, active parameters per token (mixtures of experts),
training tokens, training compute in FLOPs, context length in tokens and whether the weights were
released, and, in the ``*_where`` columns, where in the source each figure is stated. A cell is
empty where the source does not publish the figure; nothing is estimated. :func:`load_landmark_models`
reads it.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

LANDMARKS_FILE = Path(__file__).resolve().parent / "landmark_models.csv"
#: The numeric columns (floats; NaN where the source does not state the figure).
NUMERIC = ("params", "active_params", "tokens", "compute_flops", "context")


def load_landmark_models(path: str | Path | None = None) -> list[dict]:
    """The rows of the landmark table (page 1.1) as dicts, in the file's (chronological) order.

    ``year`` is an int, the columns of ``NUMERIC`` floats (NaN if empty), ``open_weights``
    True, False or None (not stated), every other column a string. Raises ``ValueError`` if a row
    has no ``source`` or no ``params`` and no ``context`` (a row must state something).
    """
    rows = []
    with open(path or LANDMARKS_FILE, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row = dict(raw)
            row["year"] = int(raw["year"])
            for key in NUMERIC:
                row[key] = float(raw[key]) if raw[key].strip() else math.nan
            flag = raw["open_weights"].strip()
            if flag not in ("yes", "no", ""):
                raise ValueError(f"{raw['model']}: open_weights must be 'yes', 'no' or empty, got {flag!r}")
            row["open_weights"] = {"yes": True, "no": False, "": None}[flag]
            if not raw["source"].strip():
                raise ValueError(f"{raw['model']}: no source")
            if math.isnan(row["params"]) and math.isnan(row["context"]):
                raise ValueError(f"{raw['model']}: states neither parameters nor context length")
            rows.append(row)
    return rows


__all__ = ["LANDMARKS_FILE", "NUMERIC", "load_landmark_models"]
