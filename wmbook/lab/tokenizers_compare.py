r"""Two sub-word tokenisers trained on the same text, and BERT's static vs RoBERTa's dynamic masking (page 7.2).

**Tokenisers.** BERT splits words into *WordPiece* units {cite}`wu2016google`; GPT-2 and RoBERTa
use *byte-level BPE* {cite}`sennrich2016neural,radford2019language`: BPE merges over the 256
byte values, so every string has a tokenisation and no token is ever unknown. :func:`train_wordpiece`
and :func:`train_byte_bpe` train both with the Hugging Face ``tokenizers`` package on the same
text at the same vocabulary size :math:`V`; :func:`tokenizer_stats` measures, on held-out text,

.. math:: \text{tokens per word} = \frac{\#\text{tokens}}{\#\text{words}}, \qquad
          \text{unknown rate} = \frac{\#[\mathrm{UNK}]}{\#\text{tokens}},

with words = whitespace-separated strings. WikiText-2 {cite}`merity2017pointer` is on hand as
its 'valid' and 'test' splits only (:func:`wmbook.data.loaders.load_wikitext2`); the page trains
on 'valid' and measures on 'test' (and the reverse, as a second fold). The corpus's own ``<unk>``
marks (words outside *its* vocabulary) are dropped (:func:`plain_lines`), so that neither
tokeniser is credited with them.

**Masking.** BERT masked its training data once, in pre-processing; to see different masks the
data were duplicated 10 times, "so that each sequence is masked in 10 different ways over the 40
epochs" of training; RoBERTa draws a new mask every time a sequence is fed (*dynamic masking*)
{cite}`liu2019roberta`. With selection probability :math:`p` and :math:`k` distinct masks, the
share of a sequence's (maskable) positions that have been a prediction target at least once after
:math:`E` epochs is, in expectation,

.. math:: c(E) = 1 - (1 - p)^{\min(E, k)}, \qquad k = E \text{ for dynamic masking}.

:func:`masked_coverage` measures it with the book's masking code
(:func:`wmbook.nn.bert_heads.mask_tokens`, the 80/10/10 rule of page 3.2).
"""
from __future__ import annotations

from typing import Sequence

import torch

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def plain_lines(lines: Sequence[str]) -> list[str]:
    """WikiText-2 lines as plain text: ``@-@``-style joins undone (as in :func:`wmbook.lab.mlm.wikitext_plain`)
    and the corpus's ``<unk>`` marks removed; empty lines dropped."""
    out = []
    for line in lines:
        for a, b in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")):
            line = line.replace(a, b)
        line = " ".join(w for w in line.split() if w != "<unk>")
        if line:
            out.append(line)
    return out


def _check_size(vocab_size: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size < 300:
        raise ValueError(f"vocab_size must be an integer >= 300 (the byte alphabet has 256 symbols), got {vocab_size!r}")


def train_wordpiece(lines: Sequence[str], vocab_size: int):
    """A BERT-style WordPiece tokeniser (``tokenizers``: BERT's normaliser without lower-casing,
    BERT's pre-tokeniser, ``##`` continuation pieces, ``[UNK]`` for what it cannot spell) trained on ``lines``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    _check_size(vocab_size)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.train_from_iterator(list(lines), trainer=trainer)
    return tok


def train_byte_bpe(lines: Sequence[str], vocab_size: int):
    """A GPT-2/RoBERTa-style byte-level BPE tokeniser (``tokenizers``: the 256 byte symbols as
    the initial alphabet, GPT-2's pre-tokenisation regex, ``Ġ`` marking a leading space) trained on ``lines``.
    The same five special tokens as :func:`train_wordpiece` are reserved, so the sizes compare."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    _check_size(vocab_size)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(lines), trainer=trainer)
    return tok


def tokenizer_stats(tok, lines: Sequence[str]) -> dict[str, float]:
    """``words``, ``tokens``, ``tokens_per_word``, ``unk`` (count of ``[UNK]``) and ``unk_rate`` of ``tok`` on ``lines``.

    ``tok`` is a ``tokenizers.Tokenizer`` or a ``transformers`` tokenizer (no special tokens added)."""
    lines = list(lines)
    if not lines:
        raise ValueError("lines is empty: nothing to measure")
    if hasattr(tok, "encode_batch"):
        ids = [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)]
        unk_id = tok.token_to_id("[UNK]")
    else:
        ids = tok(lines, add_special_tokens=False)["input_ids"]
        unk_id = tok.unk_token_id
    n_tok = sum(len(x) for x in ids)
    n_words = sum(len(line.split()) for line in lines)
    n_unk = sum(x.count(unk_id) for x in ids) if unk_id is not None else 0
    return {"words": n_words, "tokens": n_tok, "tokens_per_word": n_tok / n_words, "unk": n_unk,
            "unk_rate": n_unk / n_tok}


def pieces(tok, text: str) -> list[str]:
    """How ``tok`` splits ``text``, as printable pieces (byte-level symbols shown as they are stored)."""
    if hasattr(tok, "encode_batch"):
        return tok.encode(text, add_special_tokens=False).tokens
    return tok.tokenize(text)


def masked_coverage(rows: torch.Tensor, epochs: int, n_masks: int | None, vocab_size: int, mask_id: int,
                    special_ids: Sequence[int] = (), prob: float = 0.15, seed: int = 0) -> torch.Tensor:
    r"""Share of each row's maskable positions that were a prediction target at least once, after each epoch.

    Masks come from :func:`wmbook.nn.bert_heads.mask_tokens`. ``n_masks=k`` is static masking with
    ``k`` pre-computed masks, used in turn (epoch ``e`` sees mask ``e mod k``: BERT's duplication
    trick; ``k=1``: one fixed mask); ``n_masks=None`` is dynamic masking (a new draw every epoch).
    Returns a ``(epochs, n_rows)`` tensor; its expectation is :math:`1-(1-p)^{\min(E,k)}`.
    """
    from wmbook.nn.bert_heads import mask_tokens

    if rows.dim() != 2 or rows.numel() == 0:
        raise ValueError(f"rows must be a non-empty (n_rows, seq_len) tensor, got shape {tuple(rows.shape)}")
    if epochs < 1 or (n_masks is not None and n_masks < 1):
        raise ValueError(f"epochs and n_masks must be >= 1 (n_masks=None for dynamic), got {epochs}, {n_masks}")
    g = torch.Generator().manual_seed(seed)
    maskable = ~torch.isin(rows, torch.as_tensor(list(special_ids), dtype=rows.dtype))
    if (maskable.sum(1) == 0).any():
        raise ValueError("a row has no maskable position")
    draws = epochs if n_masks is None else min(n_masks, epochs)
    masks = [mask_tokens(rows, vocab_size, mask_id, special_ids, prob, generator=g).labels != -100
             for _ in range(draws)]
    seen = torch.zeros_like(rows, dtype=torch.bool)
    out = []
    for e in range(epochs):
        seen |= masks[e % draws]
        out.append(seen.sum(1).float() / maskable.sum(1).float())
    return torch.stack(out)


def expected_coverage(epochs: int, n_masks: int | None, prob: float = 0.15) -> float:
    r""":math:`1 - (1-p)^{\min(E, k)}` (:math:`k = E` for dynamic masking, ``n_masks=None``)."""
    k = epochs if n_masks is None else min(n_masks, epochs)
    return 1 - (1 - prob) ** k


__all__ = ["SPECIAL_TOKENS", "expected_coverage", "masked_coverage", "pieces", "plain_lines", "tokenizer_stats",
           "train_byte_bpe", "train_wordpiece"]
