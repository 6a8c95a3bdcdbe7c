r"""A toy CLIP: handwritten digits and MiniLM caption vectors in one space, trained with InfoNCE.

Explained on page 8.1, "Where LLMs are heading" (section 8.1.2). CLIP (Radford et al. 2021)
trains an image encoder :math:`f` and a text encoder :math:`g` so that the :math:`B` matching
(image, caption) pairs of a batch score higher than the :math:`B^2 - B` mismatched ones. With
unit vectors :math:`u_i = f(x_i)/\lVert f(x_i)\rVert`, :math:`v_j = g(t_j)/\lVert g(t_j)\rVert` and
a learned temperature :math:`\tau`, the logits are :math:`s_{ij} = u_i^\top v_j / \tau` and the
*symmetric InfoNCE* loss is

.. math::

    \mathcal{L} = -\frac{1}{2B}\sum_{i=1}^{B}\Bigl[\log\frac{e^{s_{ii}}}{\sum_j e^{s_{ij}}}
    + \log\frac{e^{s_{ii}}}{\sum_j e^{s_{ji}}}\Bigr]

(image→text and text→image cross-entropy; :func:`info_nce`). Here the text encoder is MiniLM,
frozen (its caption vectors are computed once, :func:`caption_vectors`), and the image encoder is a
small MLP on the 8×8 pixels (:class:`ImageEncoder`). *Zero-shot* classification
(:func:`zero_shot_predict`) then needs no classifier: an image gets the digit whose prompt vectors
("a handwritten seven", ...) are closest. Note that the captions name the digit, so training does
see the classes through the text: "zero-shot" means no classifier was trained, not that the classes
are new.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Caption templates used in training ({} = the digit's name).
TEMPLATES = ("a handwritten {}", "a photo of the digit {}", "the number {} written by hand",
             "a scan of a handwritten {}", "a small picture of a {}")
#: A template never seen in training, for the zero-shot check.
HELD_OUT_TEMPLATE = "an image of the numeral {}"


def info_nce(u: Tensor, v: Tensor, logit_scale: Tensor | float) -> Tensor:
    r"""Symmetric InfoNCE of a batch of ``B`` pairs: ``u`` (B, k) image vectors, ``v`` (B, k) text
    vectors (row i of each is a matching pair), ``logit_scale`` :math:`= 1/\tau`. Both are L2-normalised
    here; returns :math:`\tfrac12(\mathrm{CE}(S, \mathrm{diag}) + \mathrm{CE}(S^\top, \mathrm{diag}))`, :math:`S = uv^\top/\tau`."""
    if u.dim() != 2 or u.shape != v.shape:
        raise ValueError(f"u and v must be (B, k) of one shape, got {tuple(u.shape)} and {tuple(v.shape)}")
    s = logit_scale * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T
    target = torch.arange(len(u))
    return 0.5 * (F.cross_entropy(s, target) + F.cross_entropy(s.T, target))


class ImageEncoder(nn.Module):
    """A two-layer MLP on the 64 pixels: ``64 → d_hidden → d_out`` (GELU)."""

    def __init__(self, d_in: int = 64, d_hidden: int = 256, d_out: int = 384):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def captions(templates: Sequence[str] = TEMPLATES) -> list[str]:
    """Every caption, digit-major: ``captions()[c * len(templates) + t]`` is digit ``c`` in template ``t``."""
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"every template needs a '{{}}' for the digit's name, got {templates!r}")
    return [t.format(name) for name in DIGIT_NAMES for t in templates]


def caption_vectors(templates: Sequence[str] = TEMPLATES) -> Tensor:
    """MiniLM's normalised sentence vectors of :func:`captions`, shaped ``(10, len(templates), 384)``."""
    from wmbook.lab.sentence import encode
    from wmbook.nn.bert import BertModel, minilm_tokenizer

    model = BertModel.from_minilm().eval()
    vec = encode(model, minilm_tokenizer(), captions(templates))
    return vec.reshape(len(DIGIT_NAMES), len(templates), -1)


@dataclasses.dataclass
class ClipRecipe:
    """Training of the toy CLIP: ``steps`` batches of ``batch_size`` images, each with a random
    caption template of its digit; AdamW at ``lr``; temperature learned from ``init_tau``."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    d_hidden: int = 256
    init_tau: float = 0.07
    weight_decay: float = 0.01


class ClipRun(NamedTuple):
    """A trained image encoder, its learned ``logit_scale`` (1/τ) and the loss of every step."""

    encoder: ImageEncoder
    logit_scale: float
    losses: list[float]


def train_clip(X: Tensor, y: Tensor, text: Tensor, recipe: ClipRecipe = ClipRecipe(), seed: int = 0) -> ClipRun:
    """Train an :class:`ImageEncoder` with :func:`info_nce` against the frozen caption vectors ``text``
    (``(10, n_templates, d)``, from :func:`caption_vectors`) on images ``X`` (N, 64) with digits ``y``."""
    if text.dim() != 3 or text.shape[0] != len(DIGIT_NAMES):
        raise ValueError(f"text must be (10, n_templates, d), got {tuple(text.shape)}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc = ImageEncoder(X.shape[1], recipe.d_hidden, text.shape[-1])
    log_scale = nn.Parameter(torch.tensor(1.0 / recipe.init_tau).log())
    opt = torch.optim.AdamW([*enc.parameters(), log_scale], lr=recipe.lr, weight_decay=recipe.weight_decay)
    losses = []
    for _ in range(recipe.steps):
        idx = torch.randint(len(X), (recipe.batch_size,), generator=g)
        tmpl = torch.randint(text.shape[1], (recipe.batch_size,), generator=g)
        loss = info_nce(enc(X[idx]), text[y[idx], tmpl], log_scale.exp().clamp(max=100.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return ClipRun(enc.eval(), float(log_scale.detach().exp().clamp(max=100.0)), losses)


def class_prompts(text: Tensor) -> Tensor:
    """One unit vector per digit: the mean of its prompt vectors over templates (CLIP's prompt ensembling), normalised."""
    return F.normalize(F.normalize(text, dim=-1).mean(1), dim=-1)


@torch.no_grad()
def zero_shot_predict(encoder: ImageEncoder, X: Tensor, prompts: Tensor) -> Tensor:
    """The digit whose prompt vector (``prompts`` (10, d), :func:`class_prompts`) has the highest cosine with each image."""
    return (F.normalize(encoder(X), dim=-1) @ prompts.T).argmax(-1)


def linear_probe_accuracy(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor, C: float = 1.0) -> float:
    """Test accuracy (%) of a supervised multinomial logistic regression (scikit-learn) on the given features."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=3000).fit(X_train.numpy(), y_train.numpy())
    return 100.0 * float((clf.predict(X_test.numpy()) == y_test.numpy()).mean())


__all__ = ["DIGIT_NAMES", "HELD_OUT_TEMPLATE", "TEMPLATES", "ClipRecipe", "ClipRun", "ImageEncoder", "caption_vectors",
           "captions", "class_prompts", "info_nce", "linear_probe_accuracy", "train_clip", "zero_shot_predict"]
