r"""Knowledge-base question answering over Tang poems (page 6.2.1).

A *knowledge base* (KB) stores facts as records with fields; a question is answered by
**entity linking** (find the title, line or poet the question names) and a **structured lookup**
(read the field the question type asks for). A question *q* becomes a logical form
:math:`(r, e)`, a relation and an entity, and the answer is :math:`r(e)`:

.. math:: \text{「床前明月光」的作者是谁？} \;\mapsto\; (\textsf{poet\_of\_line}, \text{床前明月光})
          \;\mapsto\; \text{李白}.

:func:`build_kb` makes the KB from :func:`wmbook.data.loaders.load_tang_poems` (4,003 poems):
each poem's title, poet, lines and *form* (:func:`poem_form`, by shape only: 4 or 8 lines of 5
or 7 characters). :func:`make_questions` fills templates (:data:`TEMPLATES`, the ones the
question-type classifier was built from, and :data:`PARAPHRASES`, held out: other wordings of
the same six question types, several without the 《》「」 brackets that mark the entity).

:class:`KBQA` answers: it links the longest span of the question that is a title, a line or a
poet in the KB, masks it, and picks the question type whose templates are nearest in character
n-gram TF-IDF (:class:`CharTfidf`; only types that fit the entity's kind). :class:`RetrievalQA` is the baseline
without a KB: BM25 (``bm25s``) over each poem's raw text (title, poet, lines, on character
unigrams and bigrams), then the field of the top poem, given the question type (an advantage
the KB system does not get), and for ``count`` the number of the top-10 poems by the top
poem's poet (it can count only what it retrieved).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Sequence

QTYPES = ("author", "form", "title", "poet_of_line", "next_line", "count")
"""Question types: the poet or the form of a titled poem; the title, poet or next line of a line;
how many poems of a poet the KB holds."""

_KIND = {"author": "title", "form": "title", "title": "line", "poet_of_line": "line", "next_line": "line",
         "count": "poet"}  # the kind of entity each question type names

TEMPLATES = {
    "author": ["《{title}》的作者是谁？", "《{title}》是谁写的？"],
    "form": ["《{title}》是什么体裁？", "《{title}》属于哪种诗体？"],
    "title": ["「{line}」出自哪首诗？", "「{line}」是哪首诗里的句子？"],
    "poet_of_line": ["「{line}」的作者是谁？", "「{line}」是谁写的？"],
    "next_line": ["「{line}」的下一句是什么？", "「{line}」下一句是？"],
    "count": ["{poet}写了几首诗？", "知识库里有{poet}的几首诗？"],
}
"""The templates the question-type classifier is built from (two per type)."""

PARAPHRASES = {
    "author": ["谁写了{title}这首诗？", "{title}出自哪位诗人之手？"],
    "form": ["{title}是绝句还是律诗？", "{title}这首诗用的是什么诗体？"],
    "title": ["哪首诗里有{line}这一句？", "{line}，这句诗的题目是什么？"],
    "poet_of_line": ["{line}这句诗是哪位诗人写的？", "哪位诗人写下了{line}？"],
    "next_line": ["{line}，后面一句是什么？", "接着{line}往下背是哪句？"],
    "count": ["{poet}一共有多少首作品？", "收录了{poet}多少首诗？"],
}
"""Held-out wordings of the same question types (never seen by the classifier)."""

_MASK = "@"


def poem_form(lines: Sequence[str]) -> str:
    """The form of a poem by its shape: 五言/七言 (5 or 7 characters a line) 绝句 (4 lines) or 律诗 (8).

    Anything else is ``"其他"`` (other). Shape only: a regulated verse also follows tonal rules,
    which this does not check.
    """
    lengths = {len(line) for line in lines}
    if len(lengths) != 1 or len(lines) not in (4, 8):
        return "其他"
    n = lengths.pop()
    if n not in (5, 7):
        return "其他"
    return ("五言" if n == 5 else "七言") + ("绝句" if len(lines) == 4 else "律诗")


@dataclass
class Poem:
    """One record of the KB."""

    id: int
    title: str
    poet: str
    lines: list[str]
    form: str


@dataclass
class KnowledgeBase:
    """Poems with three indexes: title -> ids, line -> (id, position), poet -> ids."""

    poems: list[Poem]
    by_title: dict[str, list[int]] = field(default_factory=dict)
    by_line: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    by_poet: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in self.poems:
            self.by_title.setdefault(p.title, []).append(p.id)
            self.by_poet.setdefault(p.poet, []).append(p.id)
            for i, line in enumerate(p.lines):
                self.by_line.setdefault(line, []).append((p.id, i))
        self.kinds: dict[str, list[str]] = {}  # span -> the kinds of entity it names, for linking
        for kind, index in (("line", self.by_line), ("title", self.by_title), ("poet", self.by_poet)):
            for key in index:
                self.kinds.setdefault(key, []).append(kind)
        self.max_len = max(len(k) for k in self.kinds)

    def n_facts(self) -> int:
        """Number of (subject, relation, object) facts: title, poet, form and each line of every poem."""
        return sum(3 + len(p.lines) for p in self.poems)


def build_kb(poems: Sequence[dict] | None = None) -> KnowledgeBase:
    """The KB of ``poems`` (``{"title", "author", "paragraphs"}``), default all of ``load_tang_poems()``."""
    from wmbook.data.loaders import load_tang_poems, poem_lines

    if poems is None:
        poems = load_tang_poems()
    if not poems:
        raise ValueError("build_kb needs at least one poem")
    records = []
    for i, p in enumerate(poems):
        lines = poem_lines(p)
        records.append(Poem(i, p["title"].strip(), p["author"].strip(), lines, poem_form(lines)))
    return KnowledgeBase(records)


@dataclass(frozen=True)
class Question:
    """A question, its type, the entity it names and its gold answer."""

    text: str
    qtype: str
    entity: str
    answer: str


def _answer(kb: KnowledgeBase, qtype: str, entity: str) -> str | None:
    """The KB's answer to ``(qtype, entity)``; None if the entity is not there or not unique."""
    if _KIND[qtype] == "title":
        ids = kb.by_title.get(entity, [])
        if not ids:
            return None
        p = kb.poems[ids[0]]
        return p.poet if qtype == "author" else p.form
    if _KIND[qtype] == "line":
        hits = kb.by_line.get(entity, [])
        if not hits:
            return None
        pid, i = hits[0]
        p = kb.poems[pid]
        if qtype == "next_line":
            return p.lines[i + 1] if i + 1 < len(p.lines) else None
        return p.title if qtype == "title" else p.poet
    ids = kb.by_poet.get(entity, [])
    return str(len(ids)) if ids else None


def _pools(kb: KnowledgeBase) -> dict[str, list[str]]:
    """The unambiguous entities of each kind, in a fixed order (cached on the KB)."""
    if getattr(kb, "_pools", None) is None:
        titles = sorted(t for t, ids in kb.by_title.items() if len(ids) == 1 and len(t) >= 2)
        lines = sorted(line for line, hits in kb.by_line.items() if len(hits) == 1 and len(line) >= 5)
        poets = {a for a in kb.by_poet if len(a) >= 2 and a not in kb.by_title and a not in kb.by_line}
        poets = [p.poet for p in kb.poems if p.poet in poets]  # a poet as often as they have poems
        kb._pools = {"title": titles, "line": lines, "poet": poets}
    return kb._pools


def make_questions(kb: KnowledgeBase, templates: dict[str, list[str]], n_per_type: int, seed: int) -> list[Question]:
    """``n_per_type`` questions of every type, entities and templates drawn with ``seed``.

    Only unambiguous entities are drawn: titles held by one poem, lines that occur once, poets
    named like no title or line (entities of at least 2 characters, lines of at least 5). A poet
    is drawn in proportion to their number of poems (the prolific ones are asked about more).
    """
    if n_per_type < 1:
        raise ValueError(f"n_per_type must be >= 1, got {n_per_type}")
    missing = [t for t in QTYPES if not templates.get(t)]
    if missing:
        raise ValueError(f"templates has no template for {missing}; give a list for each of {QTYPES}")
    rng = random.Random(seed)
    pools = _pools(kb)
    out = []
    for qtype in QTYPES:
        kind = _KIND[qtype]
        made = 0
        while made < n_per_type:
            entity = rng.choice(pools[kind])
            answer = _answer(kb, qtype, entity)
            if answer is None:  # e.g. the last line of a poem has no next line
                continue
            text = rng.choice(templates[qtype]).format(**{kind: entity})
            out.append(Question(text, qtype, entity, answer))
            made += 1
    return out


def link_entities(kb: KnowledgeBase, question: str) -> list[tuple[str, str, int]]:
    """Every span of ``question`` that is a title, line or poet of the KB: ``(kind, span, start)``,
    longest first (ties: line, title, poet)."""
    found = []
    n = len(question)
    for i in range(n):
        for j in range(i + 2, min(n, i + kb.max_len) + 1):
            for kind in kb.kinds.get(question[i:j], ()):
                found.append((kind, question[i:j], i))
    order = {"line": 0, "title": 1, "poet": 2}
    return sorted(found, key=lambda x: (-len(x[1]), order[x[0]], x[2]))


def char_ngrams(text: str, n_max: int = 2) -> list[str]:
    """Character n-grams (1..``n_max``) of ``text`` as scikit-learn's ``analyzer="char"`` makes them
    (lower-cased, runs of white space as one space)."""
    text = re.sub(r"\s\s+", " ", text.lower())
    return [text[i:i + n] for n in range(1, n_max + 1) for i in range(len(text) - n + 1)]


class CharTfidf:
    r"""TF-IDF over character n-grams, with scikit-learn's defaults (``TfidfVectorizer(analyzer="char",
    ngram_range=(1, 2))``: raw counts, smooth idf :math:`\lnrac{1+n}{1+\mathrm{df}} + 1`, L2 norm);
    ``tests/test_kbqa_dialogue.py`` checks it against scikit-learn. Small and fast for one question
    at a time (scikit-learn's ``transform`` costs milliseconds per call).
    """

    def __init__(self, texts: Sequence[str], n_max: int = 2) -> None:
        import math
        from collections import Counter

        if not texts:
            raise ValueError("CharTfidf needs at least one text to fit")
        self.n_max = n_max
        df = Counter(g for t in texts for g in set(char_ngrams(t, n_max)))
        n = len(texts)
        self.idf = {g: math.log((1 + n) / (1 + d)) + 1 for g, d in df.items()}
        self.rows = [self.vector(t) for t in texts]

    def vector(self, text: str) -> dict[str, float]:
        """The L2-normalised TF-IDF vector of ``text`` (n-grams not seen in fitting are dropped)."""
        from collections import Counter

        v = {g: c * self.idf[g] for g, c in Counter(char_ngrams(text, self.n_max)).items() if g in self.idf}
        norm = sum(x * x for x in v.values()) ** 0.5
        return {g: x / norm for g, x in v.items()} if norm > 0 else v

    def similarities(self, text: str) -> list[float]:
        """Cosine similarity of ``text`` with every fitted text."""
        v = self.vector(text)
        return [sum(x * row.get(g, 0.0) for g, x in v.items()) for row in self.rows]


class KBQA:
    """Entity linking + question-type classification + structured lookup (see the module doc)."""

    def __init__(self, kb: KnowledgeBase, templates: dict[str, list[str]] = TEMPLATES) -> None:
        self.kb = kb
        self.types, texts = [], []
        for qtype, ts in templates.items():
            for t in ts:
                self.types.append(qtype)
                texts.append(re.sub(r"\{\w+\}", _MASK, t))
        self.tfidf = CharTfidf(texts)

    def classify(self, masked: str, kind: str) -> tuple[str, float]:
        """The question type whose template is nearest to ``masked`` among those asking about a ``kind``."""
        sims = self.tfidf.similarities(masked)
        best = max((s, t) for s, t in zip(sims, self.types) if _KIND[t] == kind)
        return best[1], float(best[0])

    def parse(self, question: str) -> tuple[str, str] | None:
        """The logical form ``(qtype, entity)`` of ``question``, or None if no entity is found."""
        links = link_entities(self.kb, question)
        if not links:
            return None
        top = len(links[0][1])
        best = None
        for kind, span, start in links:  # among the longest spans, the kind whose template fits best
            if len(span) < top:
                break
            masked = question[:start] + _MASK + question[start + len(span):]
            qtype, sim = self.classify(masked, kind)
            if best is None or sim > best[0]:
                best = (sim, qtype, span)
        return best[1], best[2]

    def answer(self, question: str, qtype: str | None = None) -> str | None:
        """The answer read from the KB, or None when the question cannot be parsed.

        With ``qtype`` given (the gold type, for a comparison with :class:`RetrievalQA`), the
        classifier is skipped: the longest linked entity of the kind that type asks about is used.
        """
        if qtype is None:
            parsed = self.parse(question)
            return None if parsed is None else _answer(self.kb, *parsed)
        if qtype not in _KIND:
            raise ValueError(f"unknown question type {qtype!r}; choose one of {QTYPES}")
        for kind, span, _ in link_entities(self.kb, question):
            if kind == _KIND[qtype]:
                return _answer(self.kb, qtype, span)
        return None


def _grams(text: str) -> list[str]:
    """Character unigrams and bigrams of the Han characters (punctuation and brackets dropped)."""
    chars = [c for c in text if "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"]
    return chars + [a + b for a, b in zip(chars, chars[1:])]


class RetrievalQA:
    """BM25 over the poems' raw text, then read the top poem (see the module doc)."""

    def __init__(self, kb: KnowledgeBase, k: int = 10) -> None:
        import bm25s

        self.kb, self.k = kb, k
        self.docs = [f"{p.title} {p.poet} " + "，".join(p.lines) for p in kb.poems]
        self.retriever = bm25s.BM25()
        self.retriever.index([_grams(d) for d in self.docs], show_progress=False)

    def retrieve(self, questions: Sequence[str]) -> list[list[int]]:
        """Ids of the top ``k`` poems for each question."""
        ids, _ = self.retriever.retrieve([_grams(q) or ["的"] for q in questions], k=min(self.k, len(self.docs)),
                                         show_progress=False, n_threads=0)  # 0: no thread pool
        return [list(map(int, row)) for row in ids]

    def read(self, question: str, qtype: str, top: list[int]) -> str:
        """The answer to ``question`` of type ``qtype`` read off the retrieved poems ``top``."""
        p = self.kb.poems[top[0]]
        if qtype == "author" or qtype == "poet_of_line":
            return p.poet
        if qtype == "form":
            return p.form
        if qtype == "title":
            return p.title
        if qtype == "count":
            return str(sum(self.kb.poems[i].poet == p.poet for i in top))
        q = set(question)  # next_line: the line sharing most characters with the question, then the next
        i = max(range(len(p.lines)), key=lambda j: (len(q & set(p.lines[j])), -j))
        return p.lines[i + 1] if i + 1 < len(p.lines) else ""

    def answers(self, questions: Sequence[Question]) -> list[str]:
        """Answers to ``questions`` (their ``qtype`` is given to the reader)."""
        tops = self.retrieve([q.text for q in questions])
        return [self.read(q.text, q.qtype, top) for q, top in zip(questions, tops)]


def accuracy_by_type(questions: Sequence[Question], answers: Sequence[str | None]) -> dict[str, float]:
    """Exact-match accuracy per question type, and ``"all"``."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    out = {}
    for qtype in QTYPES + ("all",):
        pairs = [(q, a) for q, a in zip(questions, answers) if qtype in ("all", q.qtype)]
        if pairs:
            out[qtype] = sum(q.answer == a for q, a in pairs) / len(pairs)
    return out


def run_draws(kb: KnowledgeBase, seeds: Sequence[int], n_per_type: int = 50,
              systems: dict | None = None) -> list[dict]:
    """Accuracy per type of every system on fresh questions from each seed, for both template sets.

    One row per (seed, template set, system): ``{"seed", "wording", "system", <qtype>: acc, "all": acc}``.
    A :class:`KBQA` system gives two rows: ``name`` (its own question-type classifier) and
    ``name + "+type"`` (given the gold type, as :class:`RetrievalQA` always is).
    """
    if systems is None:
        systems = {"kb": KBQA(kb), "bm25": RetrievalQA(kb)}
    rows = []
    for seed in seeds:
        for wording, templates in (("templates", TEMPLATES), ("paraphrases", PARAPHRASES)):
            qs = make_questions(kb, templates, n_per_type, seed)
            for name, system in systems.items():
                if isinstance(system, RetrievalQA):
                    runs = {name: system.answers(qs)}  # always given the gold type
                else:
                    runs = {name: [system.answer(q.text) for q in qs],
                            name + "+type": [system.answer(q.text, q.qtype) for q in qs]}
                for run, answers in runs.items():
                    rows.append({"seed": seed, "wording": wording, "system": run, **accuracy_by_type(qs, answers)})
    return rows
