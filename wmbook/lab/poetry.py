r"""Tang quatrains (绝句): a character GPT, form checks and constrained decoding (page 6.3, section 6.3.3).

A quatrain is four lines of 5 or 7 characters. The form this module checks, for a poem
written one per text line as ``L1，L2。L3，L4。``:

* **length**: four lines, all 5 or all 7 characters, the punctuation where it belongs;
* **rhyme**: lines 2 and 4 end in the same rhyme (their pinyin finals, tones ignored,
  from :mod:`pypinyin` with a few near-finals merged, see :func:`rhyme_class`);
* **tones** (平仄): the 2nd, 4th (and 6th) characters of a line alternate level/oblique
  inside the line and are opposed between the two lines of a couplet (二四六分明,
  对), and lines 2 and 3 "stick" (粘). Level (平) = modern tones 1 and 2, oblique (仄) = 3 and 4.

Limits of the tone check (said on the page): :mod:`pypinyin` gives *modern Mandarin*
readings. Middle Chinese had an entering tone (入声, syllables ending in -p/-t/-k) that was
oblique; Mandarin has spread those syllables over all four tones, so an entering-tone
character read today in tone 1 or 2 is counted level although a Tang poet heard it
oblique. The check therefore calls some correct poems wrong (it sets a ceiling below
100 % even for real poems) and some wrong ones right. Rhyme by modern finals has the same
kind of error (the Pingshui rhyme groups are not modern finals).

Constrained decoding (:func:`form_mask`, :func:`sample_poems`) sets to :math:`-\infty`
every logit the form forbids before sampling: inside a line only Han characters, after
5 (or 7) characters only the punctuation that belongs there, after the 4th line the
end of the poem. The model's probabilities are otherwise untouched (renormalised over the
allowed characters):

.. math:: p'(x) = \frac{p(x)\,[x \in A_t]}{\sum_{y \in A_t} p(y)} .

The model is :class:`wmbook.nn.gpt.GPT`, trained by ``scripts/train_tang_gpt.py`` with
:func:`wmbook.lab.char_gpt.train_char_gpt` on :func:`tang_corpus`.
"""
from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from wmbook.data.checkpoint import CHECKPOINT_DIR, load_paired_log, load_payload, verify_checkpoint
from wmbook.data.loaders import CharCorpus, load_tang_poems, poem_lines
from wmbook.lab.char_gpt import CharGPT, CharGPTRecipe, gpt_from_state, save_char_gpt
from wmbook.nn.gpt import GPT, GPTConfig

#: The committed checkpoint of ``scripts/train_tang_gpt.py`` (float16 weights).
TANG_GPT_FILE = CHECKPOINT_DIR / "tang_gpt.pt"
#: sha256 of the checkpoint and of its JSON log, as printed by the script.
TANG_GPT_SHA256 = "7460dde6f902581e5593544c7ca56140267b3cc9e3a77a0b9b888a067efd218b"
TANG_GPT_LOG_SHA256 = "c9cbb7f8c317f36ec16edf3f9257e8d4f5894d494d938bd468079e74f8fe0590"
_REGENERATE = "python scripts/train_tang_gpt.py  (2 seeds, 12-20 minutes each on one thread)"

COMMA, STOP, END = "，", "。", "\n"


def tang_recipe(**changes) -> CharGPTRecipe:
    """The poem model's recipe: page 3.3's recipe, 3 layers, dropout 0.1 (a corpus of ~60k characters)."""
    base = dict(n_layers=3, n_heads=4, d_model=128, block_size=64, batch_size=16, steps=1000,
                warmup=100, lr_decay_steps=1000, dropout=0.1, eval_every=100, eval_iters=10)
    base.update(changes)
    return CharGPTRecipe(**base)


def poem_text(lines: Sequence[str]) -> str:
    """A quatrain as one text line: ``L1，L2。L3，L4。`` plus the end mark ``\\n``."""
    if len(lines) != 4:
        raise ValueError(f"a quatrain has 4 lines, got {len(lines)}")
    return f"{lines[0]}{COMMA}{lines[1]}{STOP}{lines[2]}{COMMA}{lines[3]}{STOP}{END}"


def tang_corpus(val_fraction: float = 0.1, seed: int = 0) -> CharCorpus:
    """The 1,946 quatrains of :func:`load_tang_poems` as text, one poem a line, shuffled with
    ``seed``; the last ``val_fraction`` of the poems is the validation text. The vocabulary
    (sorted) covers both splits, so every poem of the corpus can be encoded."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    poems = [poem_text(poem_lines(p)) for p in load_tang_poems(quatrains_only=True)]
    random.Random(seed).shuffle(poems)
    n_val = max(1, round(len(poems) * val_fraction))
    train, val = "".join(poems[:-n_val]), "".join(poems[-n_val:])
    return CharCorpus(text=train + val, train=train, val=val, vocab=sorted(set(train + val)))


def save_tang_gpt(path: str | Path, model: GPT, vocab: Sequence[str], recipe: CharGPTRecipe, history,
                  extra: dict | None = None) -> str:
    """Write the checkpoint with float16 weights (:func:`wmbook.lab.char_gpt.save_char_gpt` with
    ``dtype=torch.float16``) and its JSON log; return the sha256 of the .pt."""
    return save_char_gpt(path, model, vocab, recipe, history, extra=extra, dtype=torch.float16)


def load_tang_gpt(path: str | Path | None = None, sha256: str | None = TANG_GPT_SHA256) -> CharGPT:
    """Load the Tang-quatrain GPT (float16 weights, computed in float32) and its verified log.

    Raises:
        CheckpointError: the file or its log is missing or has another sha256 (the message
            says how to regenerate it).
    """
    path = verify_checkpoint(path if path is not None else TANG_GPT_FILE, sha256, _REGENERATE,
                             where="wmbook/lab/poetry.py (TANG_GPT_SHA256)")
    ckpt = load_payload(path, "wmbook-char-gpt-1", "character-GPT", _REGENERATE)
    model = gpt_from_state(GPTConfig(**ckpt["config"]), ckpt["state_dict"])
    vocab = list(ckpt["vocab"])
    corpus = CharCorpus(text="", train="", val="", vocab=vocab)
    log = load_paired_log(path, sha256, TANG_GPT_LOG_SHA256 if sha256 == TANG_GPT_SHA256 else None, _REGENERATE,
                          where="wmbook/lab/poetry.py (TANG_GPT_LOG_SHA256)")
    return CharGPT(model.eval(), corpus.encode, corpus.decode, vocab, CharGPTRecipe(**ckpt["recipe"]), log)


# --- form checks ----------------------------------------------------------------------------------------

#: The fourteen rhyme groups of the modern 中华新韵 (strict pinyin finals of pypinyin -> group).
_RHYME_GROUPS = {
    "麻": "a ia ua", "波": "o e uo", "皆": "ie ve", "开": "ai uai", "微": "ei uei", "豪": "ao iao",
    "尤": "ou iou", "寒": "an ian uan van", "文": "en in uen vn", "唐": "ang iang uang",
    "庚": "eng ing ueng ong iong", "齐": "i er v", "支": "-i", "姑": "u",
}
_FINAL_TO_GROUP = {f: g for g, finals in _RHYME_GROUPS.items() for f in finals.split()}
_BUZZING = {"zh", "ch", "sh", "r", "z", "c", "s"}  # their "i" is the apical vowel (支), not i (齐)


@functools.lru_cache(maxsize=None)
def _reading(ch: str) -> tuple[str, str, int] | None:
    """(initial, strict final, tone 1-5) of one character's default modern reading, None if unknown."""
    from pypinyin import Style, pinyin

    tone3 = pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore")
    if not tone3 or not tone3[0][0][-1].isdigit():
        return None
    initial = pinyin(ch, style=Style.INITIALS, strict=True, errors="ignore")[0][0]
    final = pinyin(ch, style=Style.FINALS, strict=True, errors="ignore")[0][0]
    return initial, final, int(tone3[0][0][-1])


def tone_class(ch: str) -> str | None:
    """``"平"`` (level: modern tones 1, 2) or ``"仄"`` (oblique: tones 3, 4, neutral), None if unknown.

    Modern readings: an entering-tone (入声) character now read in tone 1 or 2 counts as level,
    although it was oblique in Tang times (see the module's docstring)."""
    r = _reading(ch)
    if r is None:
        return None
    return "平" if r[2] in (1, 2) else "仄"


def rhyme_class(ch: str) -> str | None:
    """The 中华新韵 rhyme group of ``ch``'s modern final (medials merged), None if unknown."""
    r = _reading(ch)
    if r is None:
        return None
    initial, final, _ = r
    if final == "i" and initial in _BUZZING:
        return "支"
    return _FINAL_TO_GROUP.get(final)


def parse_quatrain(text: str) -> list[str] | None:
    """The four lines of ``L1，L2。L3，L4。`` (an optional end ``\\n`` is dropped), None if the text is
    not exactly that shape with four lines of one length, 5 or 7 Han characters."""
    text = text.rstrip(END)
    m = re.fullmatch(r"([^，。\n]+)，([^，。\n]+)。([^，。\n]+)，([^，。\n]+)。", text)
    if not m:
        return None
    lines = list(m.groups())
    if len({len(x) for x in lines}) != 1 or len(lines[0]) not in (5, 7):
        return None
    return lines


def check_form(text: str) -> dict[str, bool]:
    """Form of one quatrain text: ``length`` (shape, see :func:`parse_quatrain`), ``rhyme`` (lines 2
    and 4 end in one rhyme group), ``tones`` (二四六分明, couplets opposed at the 2nd character, lines
    2 and 3 stuck), ``all`` (all three). Rhyme and tones are False when the length fails."""
    lines = parse_quatrain(text)
    if lines is None:
        return {"length": False, "rhyme": False, "tones": False, "all": False}
    r2, r4 = rhyme_class(lines[1][-1]), rhyme_class(lines[3][-1])
    rhyme = r2 is not None and r2 == r4
    n = len(lines[0])
    key = [1, 3] if n == 5 else [1, 3, 5]  # 0-based positions 2, 4 (, 6)
    tones = [[tone_class(line[k]) for k in key] for line in lines]
    ok = all(t is not None for row in tones for t in row)
    ok = ok and all(row[i] != row[i + 1] for row in tones for i in range(len(row) - 1))  # alternate in a line
    ok = ok and tones[0][0] != tones[1][0] and tones[2][0] != tones[3][0]  # 对: a couplet is opposed
    ok = ok and tones[1][0] == tones[2][0]  # 粘: line 3 sticks to line 2
    return {"length": True, "rhyme": rhyme, "tones": bool(ok), "all": bool(rhyme and ok)}


def pass_rates(texts: Sequence[str]) -> dict[str, float]:
    """Share of ``texts`` passing each check of :func:`check_form` (``n``: how many texts)."""
    if not texts:
        raise ValueError("no texts to check")
    checks = [check_form(t) for t in texts]
    return {"n": len(texts), **{k: sum(c[k] for c in checks) / len(checks) for k in ("length", "rhyme", "tones", "all")}}


# --- constrained decoding ------------------------------------------------------------------------------

def form_mask(vocab: Sequence[str], n_chars: int, start: int, heads: str | None = None):
    """``mask_fn(ids) -> (B, V) bool`` for :func:`wmbook.lab.generation.sample_with_logprobs`.

    The poem starts at position ``start`` of every row. Inside a line only Han characters
    (``heads[j]``, if given, is forced as the first character of line j: an acrostic, 藏头诗);
    after ``n_chars`` characters ``，`` (lines 1, 3) or ``。`` (lines 2, 4); after line 4 the end
    mark ``\\n``. Logits outside the mask are set to :math:`-\\infty` by the caller.
    """
    if n_chars not in (5, 7):
        raise ValueError(f"a quatrain line has 5 or 7 characters, got {n_chars}")
    stoi = {c: i for i, c in enumerate(vocab)}
    missing = [c for c in (COMMA, STOP, END) if c not in stoi]
    if missing:
        raise ValueError(f"the vocabulary lacks {missing}: not a Tang-poem vocabulary")
    if heads is not None:
        if len(heads) != 4 or any(c not in stoi for c in heads):
            raise ValueError(f"heads must be 4 characters of the vocabulary, got {heads!r}")
    V = len(vocab)
    han = torch.tensor([c not in (COMMA, STOP, END, "？") for c in vocab])

    def only(ch: str) -> Tensor:
        m = torch.zeros(V, dtype=torch.bool)
        m[stoi[ch]] = True
        return m

    def mask_fn(ids: Tensor) -> Tensor:
        p = ids.shape[1] - start  # position inside the poem of the next character
        line, col = divmod(p, n_chars + 1)
        if p < 0:
            raise ValueError("the rows are shorter than the prompt the mask was made for")
        if line >= 4:
            row = only(END)
        elif col == n_chars:
            row = only(COMMA if line % 2 == 0 else STOP)
        elif col == 0 and heads is not None:
            row = only(heads[line])
        else:
            row = han
        return row.expand(ids.shape[0], V)

    return mask_fn


def sample_poems(gpt: CharGPT, n_per_seed: int, seeds: Sequence[int], n_chars: int | None = None,
                 heads: str | None = None, temperature: float = 1.0, top_p: float | None = 0.9) -> list[list[str]]:
    """Quatrains sampled from ``gpt`` after the end mark ``\\n`` (the start of a poem), one list per seed.

    ``n_chars=None``: unconstrained (the text up to the first ``\\n``, 33 characters at most);
    ``n_chars=5/7``: constrained decoding with :func:`form_mask` (and ``heads`` for an acrostic).
    """
    from wmbook.lab.generation import Decoding, sample_with_logprobs

    prompt = gpt.encode(END)
    n_new = 4 * ((n_chars or 7) + 1) + (1 if n_chars else 1)
    mask = form_mask(gpt.vocab, n_chars, len(prompt), heads) if n_chars else None
    idx = torch.tensor([prompt] * (n_per_seed * len(seeds)))
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    ids, _ = sample_with_logprobs(gpt.model, idx, n_new, Decoding(temperature, top_p=top_p), generator=gens,
                                  mask_fn=mask)
    texts = [gpt.decode(r[len(prompt):]).split(END)[0] for r in ids.tolist()]
    return [texts[i * n_per_seed:(i + 1) * n_per_seed] for i in range(len(seeds))]


def form_rule_js(vocab: Sequence[str], n_chars: int, heads: str | None = None) -> str:
    """The body of the JavaScript ``function(text, allowed)`` of :func:`wmbook.view.live_gpt.live_gpt`
    that applies :func:`form_mask` in the browser to the poem after the last ``\\n`` of ``text``."""
    import json

    if n_chars not in (5, 7):
        raise ValueError(f"a quatrain line has 5 or 7 characters, got {n_chars}")
    stoi = {c: i for i, c in enumerate(vocab)}
    han = [i for i, c in enumerate(vocab) if c not in (COMMA, STOP, END, "？")]
    head_ids = json.dumps([stoi[c] for c in heads]) if heads else "null"
    return (f"var poem = text.split('\\n').pop(), n = {n_chars}, p = poem.length, line = Math.floor(p / (n + 1)),"
            f" col = p % (n + 1), heads = {head_ids}, only = -1;"
            f" if (line >= 4) only = {stoi[END]}; else if (col === n) only = line % 2 === 0 ? {stoi[COMMA]} : {stoi[STOP]};"
            f" else if (col === 0 && heads) only = heads[line];"
            f" if (only >= 0) {{ allowed.fill(0); allowed[only] = 1; }}"
            f" else {{ allowed.fill(0); {json.dumps(han)}.forEach(function (i) {{ allowed[i] = 1; }}); }}")
