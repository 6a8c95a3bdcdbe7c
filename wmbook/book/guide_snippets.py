r"""The guide's own code (sections 5.1.1-5.3.2), verbatim, and a way to run it.

Pages 5.1, "A Transformer language model", and 5.3, "GPT in PyTorch", show each
snippet as the guide printed it, run it with :func:`load_snippets`, and set it
beside the working classes in :mod:`wmbook.nn.transformer`, :mod:`wmbook.nn.bert` and
:mod:`wmbook.nn.gpt`. What each snippet does when run (checked in ``tests/test_models.py``,
on torch 2.13 / transformers 5):

* 5.1.1 ``TransformerEncoder``: runs. ``nn.TransformerEncoderLayer`` defaults to
  ``batch_first=False``, so a batch-first ``(B, T, d_model)`` input mixes the
  sequences of a batch; and with no position encoding, permuting the input tokens
  only permutes the outputs (word order is invisible).
* 5.1.2 ``TransformerDecoder``: runs, but passes no ``tgt_mask``: each position
  sees the future (changing the last token changes the first output).
* 5.2.1 / 5.2.2 ``BertTeacher`` / ``BertStudent``: the same source apart from the
  class name. With ``BertModel, BertPreTrainingHeads`` imported from
  ``transformers.models.bert.modeling_bert`` they run; both start from random
  weights, and in a plain ``nn.Module`` the MLM decoder is *not* tied to the
  word embeddings (Hugging Face ties them only inside ``BertForPreTraining``).
* 5.3.1 ``GPT``: ``self.transformer(x, None)`` passes ``memory=None`` to
  ``nn.TransformerDecoderLayer``, whose cross-attention fails with
  ``AttributeError: 'NoneType' object has no attribute 'is_nested'``.
* 5.3.2 pre-training and fine-tuning: needs names the guide never defines
  (``vocab_size``, ``dataloader``, ...; pass them in ``namespace``); never saves
  ``pretrained_model.pt`` yet loads it (``FileNotFoundError``); and the fine-tuning
  loss compares per-position logits ``(B, T, num_classes)`` with one label per
  sequence ``(B,)``: ``RuntimeError: Expected target size ...``.
"""
from __future__ import annotations

SNIPPETS: dict[str, str] = {
    "5.1.1": """\
class TransformerEncoder(nn.Module):
    def __init__(self, d_model, nhead, num_layers):
        super(TransformerEncoder, self).__init__()
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, nhead) for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(d_model)
        
    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return x
""",
    "5.1.2": """\
class TransformerDecoder(nn.Module):
    def __init__(self, d_model, nhead, num_layers):
        super(TransformerDecoder, self).__init__()
        self.layers = nn.ModuleList([
            nn.TransformerDecoderLayer(d_model, nhead) for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(d_model)
        
    def forward(self, x, memory):
        for layer in self.layers:
            x = layer(x, memory)
        x = self.norm(x)
        return x
""",
    "5.2.1": """\
class BertTeacher(nn.Module):
    def __init__(self, config):
        super(BertTeacher, self).__init__()
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        
    def forward(self, input_ids, attention_mask, token_type_ids):
        outputs = self.bert(input_ids, attention_mask, token_type_ids)
        sequence_output, pooled_output = outputs[:2]
        prediction_scores, seq_relationship_score = self.cls(sequence_output, pooled_output)
        return prediction_scores, seq_relationship_score
""",
    "5.2.2": """\
class BertStudent(nn.Module):
    def __init__(self, config):
        super(BertStudent, self).__init__()
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        
    def forward(self, input_ids, attention_mask, token_type_ids):
        outputs = self.bert(input_ids, attention_mask, token_type_ids)
        sequence_output, pooled_output = outputs[:2]
        prediction_scores, seq_relationship_score = self.cls(sequence_output, pooled_output)
        return prediction_scores, seq_relationship_score
""",
    "5.3.1": """\
class GPT(nn.Module):
    def __init__(self, vocab_size, d_model, nhead, num_layers):
        super(GPT, self).__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.transformer = TransformerDecoder(d_model, nhead, num_layers)
        self.fc = nn.Linear(d_model, vocab_size)
        
    def forward(self, x):
        x = self.embedding(x)
        x = self.transformer(x, None)
        x = self.fc(x)
        return x
""",
    "5.3.2": """\
# 预训练
model = GPT(vocab_size, d_model, nhead, num_layers)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=1e-4)

for epoch in range(num_epochs):
    for batch in dataloader:
        inputs, targets = batch
        outputs = model(inputs)
        loss = criterion(outputs.view(-1, vocab_size), targets.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

# 微调
model = GPT(vocab_size, d_model, nhead, num_layers)
model.load_state_dict(torch.load('pretrained_model.pt'))

for param in model.parameters():
    param.requires_grad = False

model.fc = nn.Linear(d_model, num_classes)

criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.fc.parameters(), lr=1e-3)

for epoch in range(num_epochs):
    for batch in dataloader:
        inputs, targets = batch
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
}
"""Section number -> the guide's code, exactly as printed (trailing spaces included)."""

PRELUDE = """\
import torch
from torch import nn, optim
"""
"""What the guide leaves implicit; prepended to every snippet."""

IMPORTS = {
    "5.2.1": "from transformers.models.bert.modeling_bert import BertModel, BertPreTrainingHeads\n",
    "5.2.2": "from transformers.models.bert.modeling_bert import BertModel, BertPreTrainingHeads\n",
}
"""Extra imports a snippet needs (``BertPreTrainingHeads`` is not exported at the top of transformers 5)."""

_SPLIT = SNIPPETS["5.3.2"].index("# 微调")
PARTS = {
    "5.3.2/pretrain": SNIPPETS["5.3.2"][:_SPLIT],  # "# 预训练" (pre-training)
    "5.3.2/finetune": SNIPPETS["5.3.2"][_SPLIT:],  # "# 微调" (fine-tuning)
}
"""5.3.2 cut in its two halves (their concatenation is the snippet), so each can be run alone."""

DEPENDS = {"5.3.1": ["5.1.2"], "5.3.2": ["5.3.1"], "5.3.2/pretrain": ["5.3.1"]}
"""Snippets that use a class defined by an earlier one (5.3.1's GPT uses 5.1.2's TransformerDecoder)."""


def source(section: str) -> str:
    """The code that :func:`run_snippet` executes: prelude, imports, then the guide's snippet."""
    code = SNIPPETS.get(section, PARTS.get(section))
    if code is None:
        raise KeyError(f"no snippet {section!r}; choose from {sorted(SNIPPETS) + sorted(PARTS)}")
    return PRELUDE + IMPORTS.get(section, "") + code


def run_snippet(section: str, namespace: dict | None = None) -> dict:
    """Execute one snippet (only it, not what it depends on) in ``namespace``; return the namespace.

    Exceptions raised by the guide's code propagate unchanged, so a page can show them.
    """
    namespace = {} if namespace is None else namespace
    code = compile(source(section), f"<guide {section}>", "exec")
    exec(code, namespace)  # noqa: S102 - running the guide's code is the point
    return namespace


def load_snippets(*sections: str, namespace: dict | None = None) -> dict:
    """Execute ``sections`` and what they depend on, in order, in one namespace.

    ``load_snippets("5.3.1")`` defines 5.1.2's ``TransformerDecoder`` and 5.3.1's ``GPT``.
    ``namespace`` supplies names a snippet uses but does not define (e.g. ``vocab_size``).
    """
    namespace = {} if namespace is None else namespace
    order: list[str] = []

    def visit(s: str) -> None:
        for dep in DEPENDS.get(s, []):
            visit(dep)
        if s not in order:
            order.append(s)

    for s in sections:
        visit(s)
    for s in order:
        run_snippet(s, namespace)
    return namespace
