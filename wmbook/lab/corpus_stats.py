r"""What is in a data set: WikiText-2's tokens and Zipf's law, SQuAD's questions and answers (page 7.3).

*WikiText-2* (Merity et al. 2016) is stored already tokenized: words and punctuation separated by
spaces, numbers split (``1 @,@ 000``), and every word that is rare in the training split replaced by
``<unk>``. :func:`wikitext_stats` counts, from the lines :func:`wmbook.data.loaders.load_wikitext2`
returns, the tokens, the distinct tokens (vocabulary), the headings and the ``<unk>`` rate;
:func:`published_token_count` counts the way the data set's paper does (one end-of-line token for
every line of the file, empty lines included), so the count can be checked against its Table 1.

*Zipf's law*: the frequency of the word of rank :math:`r` falls roughly like a power of the rank,

.. math:: f(r) \approx C\,r^{-s}, \qquad \log f = \log C - s \log r,

so a straight line on a log–log plot. :func:`zipf_fit` fits :math:`s` by least squares on
:math:`(\log r, \log f)` over a range of ranks (closed form: slope = cov / var).

*SQuAD* (Rajpurkar et al. 2016): a question, a paragraph (the context) and answers that are spans
of the paragraph. :func:`question_type` sorts a question by its wh-word, :func:`squad_stats`
counts question types and answer lengths (words, by whitespace) over
:func:`wmbook.data.loaders.load_squad`'s examples. The official EM/F1 scoring is on page 6.2.

*Data the book cannot ship*: :func:`load_bookcorpus` shows what a loader for a data set the reader
must obtain themselves looks like: it reads a folder the reader provides and, when it is missing,
stops with an error that says what to get, where to put it and why the book does not ship it.
"""
from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from wmbook.data.loaders import DataUnavailableError, QAExample, data_dir, fetch

#: WikiText's unknown-word token.
UNK = "<unk>"
_HEADING = re.compile(r"^=( =)* .+ =( =)*$")


@dataclass(frozen=True)
class CorpusStats:
    """Counts over the lines of a tokenized corpus (whitespace-separated tokens)."""

    lines: int  # non-empty lines
    headings: int  # lines such as "= = Description = =" (section titles)
    tokens: int  # whitespace-separated tokens, <unk> included
    vocabulary: int  # distinct tokens, <unk> counted once
    unk: int  # occurrences of <unk>
    singletons: int  # distinct tokens that occur exactly once

    @property
    def unk_rate(self) -> float:
        """Share of the tokens that are ``<unk>``."""
        return self.unk / self.tokens if self.tokens else float("nan")


def token_counts(lines: Iterable[str]) -> Counter:
    """How often each whitespace-separated token occurs in ``lines``."""
    counts: Counter = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


def wikitext_stats(lines: Sequence[str]) -> CorpusStats:
    """Tokens, vocabulary, headings and ``<unk>`` count of WikiText lines (as ``load_wikitext2`` gives them)."""
    if isinstance(lines, str):
        raise TypeError("pass a list of lines (load_wikitext2()['valid']), not one string")
    counts = token_counts(lines)
    return CorpusStats(lines=sum(1 for line in lines if line.strip()),
                       headings=sum(1 for line in lines if _HEADING.match(line.strip())),
                       tokens=sum(counts.values()), vocabulary=len(counts), unk=counts.get(UNK, 0),
                       singletons=sum(1 for c in counts.values() if c == 1))


_TITLE = re.compile(r"^= [^=].* =$")


def article_lengths(split: str) -> list[int]:
    """Tokens of each article of a WikiText-2 split. An article starts at a top-level title line
    (``= Homarus gammarus =``: one ``=`` on each side, an empty line before and after it; a line
    of a formula such as ``= 1 <unk> and <unk> C =`` has text around it) and runs to the next;
    its length counts every token of its lines, title and section headings included. Reads the
    verified file through :func:`wmbook.data.loaders.fetch` (the empty lines matter here, and
    ``load_wikitext2`` drops them)."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"unknown WikiText-2 split {split!r}; choose from 'train', 'valid', 'test'")
    lines = fetch(f"wikitext-2/{split}.txt").read_text(encoding="utf-8").split("\n")
    lengths: list[int] = []
    for i, line in enumerate(lines):
        blank_around = (i == 0 or not lines[i - 1].strip()) and (i + 1 == len(lines) or not lines[i + 1].strip())
        if _TITLE.match(line.strip()) and blank_around:
            lengths.append(0)
        if lengths:
            lengths[-1] += len(line.split())
    return lengths


def published_token_count(split: str) -> int:
    """Tokens of a WikiText-2 split counted as its paper's Table 1 does (Merity et al. 2016):
    the whitespace-separated tokens plus one end-of-line token for every line of the file,
    empty lines included (the lines ``load_wikitext2`` drops). Reads the verified file through
    :func:`wmbook.data.loaders.fetch`."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"unknown WikiText-2 split {split!r}; choose from 'train', 'valid', 'test'")
    text = fetch(f"wikitext-2/{split}.txt").read_text(encoding="utf-8")
    return len(text.split()) + text.count("\n")


@dataclass(frozen=True)
class ZipfFit:
    """Least-squares line through :math:`(\\log r, \\log f)`: ``f ≈ exp(log_c) * r ** -s``."""

    s: float  # the exponent (minus the slope)
    log_c: float  # intercept (natural log)
    r2: float  # share of the variance of log f the line explains
    ranks: tuple[int, int]  # first and last rank fitted

    def predict(self, rank: float) -> float:
        """The fitted frequency at ``rank``."""
        return math.exp(self.log_c - self.s * math.log(rank))


def rank_frequency(counts: Counter) -> list[int]:
    """Frequencies sorted from the most frequent token down (the frequency of rank r is item r - 1)."""
    return sorted(counts.values(), reverse=True)


def zipf_fit(freqs: Sequence[int], first: int = 1, last: int | None = None) -> ZipfFit:
    r"""Fit Zipf's law :math:`\log f = \log C - s \log r` to ranks ``first..last`` (1-based, inclusive).

    ``freqs`` are sorted frequencies (:func:`rank_frequency`). Closed-form least squares:
    :math:`s = -\mathrm{cov}(\log r, \log f)/\mathrm{var}(\log r)`.
    """
    last = len(freqs) if last is None else last
    if not 1 <= first < last <= len(freqs):
        raise ValueError(f"need 1 <= first < last <= {len(freqs)} (the number of ranks), got first={first}, last={last}")
    if any(f <= 0 for f in freqs[first - 1:last]):
        raise ValueError("frequencies must be positive to take their logarithm")
    xs = [math.log(r) for r in range(first, last + 1)]
    ys = [math.log(f) for f in freqs[first - 1:last]]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    return ZipfFit(s=-slope, log_c=my - slope * mx, r2=sxy * sxy / (sxx * syy) if syy else 1.0, ranks=(first, last))


#: Question types in the order they are tested: two-word types before their first word.
QUESTION_TYPES = ("how many", "how much", "what", "which", "who", "whom", "whose", "when", "where", "why",
                  "how", "other")
_WORDS = re.compile(r"[a-z]+")


def question_type(question: str) -> str:
    """The wh-type of a question: the first of ``QUESTION_TYPES`` found among its words, read left to right
    (``"In what year ..."`` is ``"what"``; ``"How many ..."`` is ``"how many"``); ``"other"`` when none occurs.

    >>> question_type("How many points did the Panthers defense surrender?"), question_type("In which year?")
    ('how many', 'which')
    """
    words = _WORDS.findall(question.lower())
    for i, w in enumerate(words):
        pair = " ".join(words[i:i + 2])
        if pair in ("how many", "how much"):
            return pair
        if w in QUESTION_TYPES and w != "other":
            return w
    return "other"


@dataclass(frozen=True)
class SquadStats:
    """Question types and answer lengths of SQuAD-format examples."""

    questions: int
    contexts: int  # distinct paragraphs
    types: dict[str, int]  # question type -> count, every type of QUESTION_TYPES present (0 if unseen)
    answer_words: list[int]  # words (whitespace) of each question's first answer
    context_words: list[int]  # words of each distinct paragraph
    answers_per_question: float  # mean number of reference answers given

    def answer_length_share(self, max_words: int) -> float:
        """Share of the first answers that are at most ``max_words`` words long."""
        return sum(n <= max_words for n in self.answer_words) / len(self.answer_words)


def squad_stats(examples: Sequence[QAExample]) -> SquadStats:
    """Count question types (:func:`question_type`) and answer and context lengths of SQuAD examples.

    Unanswerable questions (SQuAD 2.0) are counted in ``types`` but have no answer length.
    """
    if not examples:
        raise ValueError("no examples: pass load_squad() (or a non-empty list of QAExample)")
    types = Counter(question_type(e.question) for e in examples)
    answered = [e for e in examples if e.answers]
    contexts = list(dict.fromkeys(e.context for e in examples))
    return SquadStats(questions=len(examples), contexts=len(contexts),
                      types={t: types.get(t, 0) for t in QUESTION_TYPES},
                      answer_words=[len(e.answers[0].split()) for e in answered],
                      context_words=[len(c.split()) for c in contexts],
                      answers_per_question=statistics.fmean(len(e.answers) for e in answered) if answered else 0.0)


def spans_match(example: QAExample) -> bool:
    """Whether every answer of ``example`` is the text at its stated character offset (SQuAD's span format)."""
    return all(example.context[s:s + len(a)] == a for a, s in zip(example.answers, example.answer_starts))


#: Where :func:`load_bookcorpus` looks, under :func:`wmbook.data.loaders.data_dir`.
BOOKCORPUS_DIR = "bookcorpus"


def load_bookcorpus(folder: str | Path | None = None, max_books: int | None = None) -> dict[str, str]:
    """Books the reader obtained themselves, as ``{file name: text}``: the pattern for data the book cannot ship.

    Reads every ``*.txt`` file (UTF-8, one book per file) in ``folder``, by default
    ``$WMBOOK_DATA_DIR/bookcorpus``. There is no canonical URL and no sha256 to check: the
    original BookCorpus is no longer distributed by its authors and copies differ, so the loader
    cannot verify what it reads, and says so. When the folder is missing or empty it raises
    :class:`~wmbook.data.loaders.DataUnavailableError` with what to do (page 7.3.2).
    """
    where = Path(folder) if folder is not None else data_dir() / BOOKCORPUS_DIR
    books = sorted(where.glob("*.txt")) if where.is_dir() else []
    if not books:
        raise DataUnavailableError(
            f"no BookCorpus text found in {where} (looked for *.txt files, one book per file). "
            "wmbook does not download or ship BookCorpus: it has no licence to redistribute its books, "
            "and Bandy & Vincent (2021) found evidence that the corpus violates copyright restrictions for many "
            "of them (page 7.3.2). If you have a copy you are entitled to use, put one UTF-8 .txt file "
            f"per book in {where} (or pass folder=...); otherwise use a data set with a clear licence, e.g. "
            "WikiText-2 (load_wikitext2, CC BY-SA) or Project Gutenberg books in the public domain."
        )
    if max_books is not None:
        if max_books < 1:
            raise ValueError(f"max_books must be >= 1, got {max_books}")
        books = books[:max_books]
    return {p.name: p.read_text(encoding="utf-8") for p in books}


__all__ = ["BOOKCORPUS_DIR", "CorpusStats", "QUESTION_TYPES", "SquadStats", "UNK", "ZipfFit", "article_lengths", "load_bookcorpus",
           "published_token_count", "question_type", "rank_frequency", "spans_match", "squad_stats", "token_counts",
           "wikitext_stats", "zipf_fit"]
