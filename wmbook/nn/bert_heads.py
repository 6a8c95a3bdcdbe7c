r"""BERT's pre-training heads (MLM + NSP), a sequence classifier, and the 80/10/10 masking.

Explained on page 3.2, "BERT". The guide's 5.2.1/5.2.2 snippets use Hugging Face's
``BertPreTrainingHeads``; :class:`BertPreTrainingHeads` here is the same computation:

* MLM: :math:`p(x_t \mid \tilde x) = \mathrm{softmax}(\mathrm{LN}(\mathrm{GELU}(h_t W + b)) E_{tok}^\top + c)`,
  the decoder tied to the word embeddings :math:`E_{tok}`;
* NSP: :math:`p(\mathrm{IsNext}) = \mathrm{softmax}(\mathrm{pooled}\, W_{nsp} + b_{nsp})`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from wmbook.nn.bert import BertConfig, BertModel


class BertLMPredictionHead(nn.Module):
    """transform (dense + GELU + LayerNorm), then the decoder tied to the word embeddings."""

    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Linear(cfg.d_model, cfg.d_model)
        self.act = nn.GELU()
        self.ln = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied: (vocab_size, d_model)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.decoder(self.ln(self.act(self.transform(hidden))))  # (B, T, vocab_size)


class BertPreTrainingHeads(nn.Module):
    """MLM head over every position and NSP head over the pooled [CLS] vector."""

    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(cfg, word_embeddings)
        self.seq_relationship = nn.Linear(cfg.d_model, 2)

    def forward(self, sequence_output: Tensor, pooled_output: Tensor) -> tuple[Tensor, Tensor]:
        return self.predictions(sequence_output), self.seq_relationship(pooled_output)


@dataclass
class BertPreTrainingOutput:
    prediction_logits: Tensor  # (B, T, vocab_size)
    seq_relationship_logits: Tensor  # (B, 2)
    loss: Tensor | None = None  # MLM + NSP, when labels are given
    attentions: list[Tensor] | None = None


class BertForPreTraining(nn.Module):
    """BERT + :class:`BertPreTrainingHeads`; loss = MLM cross-entropy (on labels != -100) + NSP."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(cfg)
        self.cls = BertPreTrainingHeads(cfg, self.bert.embeddings.word_embeddings)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, next_sentence_label=None):
        out = self.bert(input_ids, attention_mask, token_type_ids)
        mlm, nsp = self.cls(out.last_hidden_state, out.pooler_output)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(mlm.flatten(0, 1), labels.flatten(), ignore_index=-100)  # (B*T, V) vs (B*T,)
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp, next_sentence_label)
            loss = nsp_loss if loss is None else loss + nsp_loss
        return BertPreTrainingOutput(mlm, nsp, loss, out.attentions)


@dataclass
class SequenceClassifierOutput:
    logits: Tensor  # (B, num_labels)
    loss: Tensor | None = None
    attentions: list[Tensor] | None = None


class BertForSequenceClassification(nn.Module):
    """pooled [CLS] vector -> dropout -> linear -> ``num_labels`` logits (page 3.2)."""

    def __init__(self, cfg: BertConfig, num_labels: int = 2) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        self.bert = BertModel(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.d_model, num_labels)

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, labels=None
    ) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.drop(out.pooler_output))  # (B, num_labels)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:1]:
                raise ValueError(f"labels must be one class id per sequence, shape {tuple(logits.shape[:1])}; "
                                 f"got {tuple(labels.shape)}")
            loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(logits, loss, out.attentions)


class MaskedBatch(NamedTuple):
    inputs: Tensor  # (B, T) ids with some tokens replaced
    labels: Tensor  # (B, T) the original id where a prediction is required, -100 elsewhere


def mask_tokens(
    input_ids: Tensor,
    vocab_size: int,
    mask_id: int,
    special_ids: Iterable[int],
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> MaskedBatch:
    """BERT's masked-LM corruption (page 3.2).

    Each non-special token is selected with probability ``prob``. A selected token
    becomes ``mask_id`` with probability 0.8, a uniformly random id in
    ``[0, vocab_size)`` with probability 0.1, and stays unchanged with probability 0.1;
    the model must predict the original at every selected position. Special tokens
    (``[CLS]``, ``[SEP]``, ``[PAD]``: pass them in ``special_ids``) are never selected.
    """
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id={mask_id} is not in [0, vocab_size={vocab_size})")
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
        raise ValueError(f"input_ids must be in [0, vocab_size={vocab_size})")
    special_ids = torch.as_tensor(list(special_ids), dtype=input_ids.dtype, device=input_ids.device)
    special = torch.isin(input_ids, special_ids)  # (B, T)
    u = lambda: torch.rand(input_ids.shape, generator=generator, device=input_ids.device)  # noqa: E731
    selected = (u() < prob) & ~special  # (B, T)
    labels = input_ids.masked_fill(~selected, -100)
    r = u()  # one draw decides mask / random / keep
    to_mask = selected & (r < 0.8)
    to_random = selected & (r >= 0.8) & (r < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return MaskedBatch(inputs, labels)
