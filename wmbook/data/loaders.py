"""The book's data files: where they come from, how they are checked, how they are read.

Every file is listed in :data:`SOURCES` (URL, size, sha256, licence, citation).
:func:`fetch` returns the local copy under :func:`data_dir`, downloading it once
if it is missing, and never hands back a file whose sha256 is wrong. The
``load_*`` functions turn the files into plain Python splits:

* :func:`load_tinyshakespeare` — character-level language model (pages 5.1, 5.3)
* :func:`load_wikitext2` — word-level language model (pages 5.3, 7.3.1)
* :func:`load_sst2` — sentiment classification (pages 5.2, 6.1.1, 6.1.3)
* :func:`load_wnut17` — named-entity recognition (page 6.1.2)
* :func:`load_squad` — extractive question answering (pages 6.2, 7.3.3)
* :func:`load_taskmaster` — dialogue (page 6.2.3)
* :func:`load_scitldr` — summarization (page 6.3.1)
* :func:`load_tang_poems` — poetry generation (page 6.3.3)

Offline (CI, a classroom without internet), point ``WMBOOK_DATA_DIR`` at a
folder that already holds the files, laid out as the keys of :data:`SOURCES`.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tempfile
import unicodedata
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

from wmbook.data.checkpoint import file_sha256

_TIMEOUT = 30  # seconds, per network operation


class DataUnavailableError(RuntimeError):
    """A data file is not on disk and could not be downloaded."""


class ChecksumError(RuntimeError):
    """A data file (on disk or just downloaded) does not have the expected sha256."""


@dataclass(frozen=True)
class Source:
    """Where one data file comes from. ``size`` is ``None`` when it is not recorded."""

    url: str
    sha256: str
    size: int | None
    license: str
    citation: str


_GH = "https://raw.githubusercontent.com/"
_WT2 = _GH + "pytorch/examples/main/word_language_model/data/wikitext-2/"
_SST2 = _GH + "eyalbd2/Reproducing-AutoPrompt/6288fb5bec9c572f2492875ae0111df5b6daed11/glue_data/SST-2/"
_POEMSENT = _GH + "google-research-datasets/poem-sentiment/master/data/"
_WNUT = _GH + "leondz/emerging_entities_17/master/"
_TANG = _GH + "chinese-poetry/chinese-poetry/master/%E5%85%A8%E5%94%90%E8%AF%97/"  # 全唐诗/
_TLDR = _GH + "allenai/scitldr/master/SciTLDR-Data/SciTLDR-A/"

# dataset -> (licence, citation)
_ABOUT = {
    "shakespeare": (
        "Public domain (Shakespeare)",
        "Karpathy (2015), char-rnn, https://github.com/karpathy/char-rnn"),
    "wikitext": (
        "CC BY-SA 3.0 (text from Wikipedia)",
        "Merity, Xiong, Bradbury, Socher (2016). Pointer Sentinel Mixture Models. arXiv:1609.07843"),
    "xquad": (
        "CC BY-SA 4.0",
        "Artetxe, Ruder, Yogatama (2020). On the Cross-lingual Transferability of Monolingual "
        "Representations. ACL. arXiv:1910.11856; Rajpurkar, Zhang, Lopyrev, Liang (2016). SQuAD: "
        "100,000+ Questions for Machine Comprehension of Text. EMNLP"),
    "squad2": (
        "CC BY-SA 4.0",
        "Rajpurkar, Jia, Liang (2018). Know What You Don't Know: Unanswerable Questions for SQuAD. ACL"),
    "sst2": (
        "No explicit licence (SST and GLUE state none)",
        "Socher et al. (2013). Recursive Deep Models for Semantic Compositionality Over a Sentiment "
        "Treebank. EMNLP; Wang et al. (2018). GLUE: A Multi-Task Benchmark and Analysis Platform for "
        "NLU. arXiv:1804.07461"),
    "poem_sentiment": (
        "CC BY 4.0",
        "Sheng, Uthus (2020). Investigating Societal Biases in a Poetry Composition System. "
        "arXiv:2011.02686"),
    "wnut17": (
        "CC BY 4.0",
        "Derczynski, Nichols, van Erp, Limsopatham (2017). Results of the WNUT2017 Shared Task on Novel "
        "and Emerging Entity Recognition. Proc. 3rd Workshop on Noisy User-generated Text (W-NUT), EMNLP"),
    "poetry": (
        "MIT (repo); Tang poems public domain",
        "chinese-poetry/chinese-poetry (JackeyGao et al.), https://github.com/chinese-poetry/chinese-poetry"),
    "taskmaster": (
        "CC BY 4.0",
        "Byrne, Ganesh (Google), Taskmaster-4, released with Sidahmed et al. (2024). PERL: Parameter "
        "Efficient Reinforcement Learning from Human Feedback. arXiv:2403.10704"),
    "scitldr": (
        "Apache-2.0 (repo licence; the abstracts come from OpenReview papers)",
        "Cachola, Lo, Cohan, Weld (2020). TLDR: Extreme Summarization of Scientific Documents. "
        "Findings of EMNLP. arXiv:2004.15011"),
}

# (path under data_dir(), dataset, URL, bytes or None if unrecorded, sha256)
_FILES = [
    ("tinyshakespeare.txt", "shakespeare", _GH + "karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
     1115394, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    ("wikitext-2/train.txt", "wikitext", _WT2 + "train.txt",  # 10.8 MB, not in the shared data
     None, "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
    ("wikitext-2/valid.txt", "wikitext", _WT2 + "valid.txt",
     1121681, "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
    ("wikitext-2/test.txt", "wikitext", _WT2 + "test.txt",
     1256449, "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
    ("squad/xquad.en.json", "xquad", _GH + "google-deepmind/xquad/master/xquad.en.json",
     609383, "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29"),
    ("squad/squad2_dev_subset_haystack_small.json", "squad2",
     _GH + "deepset-ai/haystack/v1.x/test/samples/squad/small.json",
     382645, "dfed6c7aefe89fdcb8ed63b98dc742a0acf3565d92f97c61efaa077012b0fe68"),
    ("sentiment/sst2/train.tsv", "sst2", _SST2 + "train_full.tsv",
     3806081, "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
    ("sentiment/sst2/dev.tsv", "sst2", _SST2 + "dev.tsv",
     94931, "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
    ("sentiment/poem_sentiment/train.tsv", "poem_sentiment", _POEMSENT + "train.tsv",
     40567, "09503a850796736a8e63504ae2c8de983f57dceebc2342ea93a7f7ad06af56d0"),
    ("sentiment/poem_sentiment/dev.tsv", "poem_sentiment", _POEMSENT + "dev.tsv",
     4747, "0770bd7b80e04c92da82e78f9f93ce35d38b334b4830fca2b9b4d7e174f152e5"),
    ("sentiment/poem_sentiment/test.tsv", "poem_sentiment", _POEMSENT + "test.tsv",
     4556, "a406d87b62a6b7c9615468a8b66e69c027fa8f2f03a4f8f6c79df26c260de620"),
    ("ner/wnut17/wnut17train.conll", "wnut17", _WNUT + "wnut17train.conll",
     493781, "731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5"),
    ("ner/wnut17/emerging.dev.conll", "wnut17", _WNUT + "emerging.dev.conll",
     114749, "e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8"),
    ("ner/wnut17/emerging.test.annotated", "wnut17", _WNUT + "emerging.test.annotated",
     192425, "2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0"),
    ("poetry/poet.tang.25000.json", "poetry", _TANG + "poet.tang.25000.json",
     410976, "7e7c00ba3f7a95e97de5440f85affa9d54b420d31995b449e97a3e9ea00259f5"),
    ("poetry/poet.tang.34000.json", "poetry", _TANG + "poet.tang.34000.json",
     416020, "4b656a62b6a187792c96a632c7e33f443eabda8b48c4fb5dfdda72cf02003095"),
    ("poetry/poet.tang.41000.json", "poetry", _TANG + "poet.tang.41000.json",
     376339, "3c12f59a5103e582eed9fe6ae13affddc030a31e9956efb13cb7768296ba7396"),
    ("poetry/poet.tang.43000.json", "poetry", _TANG + "poet.tang.43000.json",
     430665, "de5e658dccbcf0d2b38312b39a2423459b88ef893830bc145d453d82887a5753"),
    ("poetry/tangshi300.json", "poetry", _TANG + "%E5%94%90%E8%AF%97%E4%B8%89%E7%99%BE%E9%A6%96.json",
     190787, "d77a145f7470da2ed2f79515944563c062ffc43fceda07f195a36ead66b7e5c7"),  # 唐诗三百首.json
    ("dialogue/taskmaster4/data_07.json", "taskmaster",
     _GH + "google-research-datasets/Taskmaster/master/TM-4-2024/data/data_07.json",
     1607931, "b61f11f3c950c330049906ae249e858503ec7c905fcad5b4a7edd851ccf07bbc"),
    ("summarization/scitldr/train.jsonl", "scitldr", _TLDR + "train.jsonl",
     3155015, "b222771d387be585cfdf5ae957b36757138415a352e0a3e3b23f73f87c3b1119"),
    ("summarization/scitldr/dev.jsonl", "scitldr", _TLDR + "dev.jsonl",
     1124865, "3191fa98ccc09521332b7a1cd63b1930be4e8df125a235ccd31e40329709525e"),
]

#: Every data file the book uses, keyed by its path relative to :func:`data_dir`
#: (the layout of a ``WMBOOK_DATA_DIR`` folder). URLs are the canonical ones, except
#: SST-2's: its canonical form is a zip, so a pinned raw copy of the same files is used.
SOURCES: dict[str, Source] = {
    relpath: Source(url, sha256, size, *_ABOUT[dataset]) for relpath, dataset, url, size, sha256 in _FILES
}


def data_dir() -> Path:
    """The folder holding the data: ``$WMBOOK_DATA_DIR`` if set, else ``~/.cache/wmbook/data``."""
    env = os.environ.get("WMBOOK_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wmbook" / "data"


def fetch(relpath: str, source: Source | None = None) -> Path:
    """Path of the verified local copy of ``relpath`` (a key of :data:`SOURCES`).

    A file already in :func:`data_dir` is only read (the folder may be read-only).
    A missing file is downloaded to a temporary file next to it, checked, and
    renamed into place, so a failed or interrupted download leaves nothing behind.
    ``source`` overrides the registry entry (tests use it).

    Raises:
        ValueError: ``relpath`` is not in :data:`SOURCES` (and no ``source`` given).
        ChecksumError: the file on disk, or the download, has the wrong sha256.
        DataUnavailableError: the file is missing and cannot be downloaded or saved.
    """
    if source is None:
        if relpath not in SOURCES:
            raise ValueError(f"unknown data file {relpath!r}; known files: {', '.join(sorted(SOURCES))}")
        source = SOURCES[relpath]
    path = data_dir() / relpath
    if path.is_file():
        actual = file_sha256(path)
        if actual != source.sha256:
            raise ChecksumError(
                f"{path} is corrupt or a different version: its sha256 is {actual}, expected "
                f"{source.sha256}. Delete it and run again to download it from {source.url}."
            )
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise DataUnavailableError(
            f"{relpath} is not in {data_dir()} and cannot be saved there ({e}); set WMBOOK_DATA_DIR "
            f"to a writable folder, or to a folder holding {relpath} (downloaded from {source.url})"
        ) from e
    try:
        h, n = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(source.url, headers={"User-Agent": "wmbook"})
                with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
                        n += len(chunk)
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, cut connections
                raise DataUnavailableError(
                    f"{relpath} is not in {data_dir()} and downloading it from {source.url} "
                    f"failed ({e!r}); set WMBOOK_DATA_DIR to a folder holding {relpath}, "
                    "or connect to the internet"
                ) from e
        if h.hexdigest() != source.sha256:
            size = "" if source.size is None else f", {source.size} bytes"
            raise ChecksumError(
                f"the download of {relpath} from {source.url} has sha256 {h.hexdigest()} ({n} bytes), "
                f"expected {source.sha256}{size}: the file at that URL has changed or was damaged on the "
                f"way. Nothing was saved. Try again, or set WMBOOK_DATA_DIR to a folder holding a good copy."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a partial file
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_text(relpath: str) -> str:
    return fetch(relpath).read_text(encoding="utf-8")


@dataclass
class CharCorpus:
    """A text with a character vocabulary: ``encode``/``decode`` map str <-> token ids."""

    text: str
    train: str
    val: str
    vocab: list[str]
    _stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._stoi = {ch: i for i, ch in enumerate(self.vocab)}

    def encode(self, s: str) -> list[int]:
        """Token ids of ``s``; every character must be in ``vocab``."""
        try:
            return [self._stoi[ch] for ch in s]
        except KeyError as e:
            raise ValueError(
                f"character {e.args[0]!r} is not in the vocabulary of {len(self.vocab)} characters; "
                "encode only text made of characters that occur in the corpus"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """The string whose token ids are ``ids`` (a list of ints or a 1-d tensor)."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.vocab)]
        if bad:
            raise ValueError(f"token id {bad[0]} is out of range: ids must be in 0..{len(self.vocab) - 1}")
        return "".join(self.vocab[i] for i in ids)


def load_tinyshakespeare() -> CharCorpus:
    """Tiny Shakespeare (1,115,394 characters, 65 distinct), split 90/10 as nanoGPT does."""
    text = _read_text("tinyshakespeare.txt")
    n = int(len(text) * 0.9)
    return CharCorpus(text=text, train=text[:n], val=text[n:], vocab=sorted(set(text)))


def load_wikitext2(splits: Sequence[str] = ("valid", "test")) -> dict[str, list[str]]:
    """WikiText-2 (tokenized v1: rare words already replaced by ``<unk>``) as lines per split.

    Each split is a list of the non-empty lines, stripped; headings such as
    ``= Homarus gammarus =`` are kept, ``<unk>`` tokens are left as they are.
    The train split is 10.8 MB and not in the shared data folder, so it is not
    loaded by default; pass ``splits=("train", "valid", "test")`` to download it.
    """
    out = {}
    for split in splits:
        if split not in ("train", "valid", "test"):
            raise ValueError(f"unknown WikiText-2 split {split!r}; choose from 'train', 'valid', 'test'")
        out[split] = [s for line in _read_text(f"wikitext-2/{split}.txt").split("\n") if (s := line.strip())]
    return out


def load_sst2() -> dict[str, list[tuple[str, int]]]:
    """SST-2 (GLUE) as ``{"train": [(sentence, label), ...], "dev": [...]}``, label 1 = positive.

    Sentences are stripped of the trailing space the files carry. GLUE's test
    labels are hidden, so there is no test split.
    """
    out = {}
    for split in ("train", "dev"):
        lines = _read_text(f"sentiment/sst2/{split}.tsv").split("\n")
        if lines[0] != "sentence\tlabel":
            raise ValueError(f"sentiment/sst2/{split}.tsv should start with the header "
                             f"'sentence<TAB>label', not {lines[0]!r}")
        rows = []
        for line in filter(None, lines[1:]):
            sentence, label = line.rsplit("\t", 1)
            rows.append((sentence.strip(), int(label)))
        out[split] = rows
    return out


class NERData(NamedTuple):
    """WNUT-17 splits: each sentence is a list of ``(token, tag)``; ``tags`` is sorted."""

    train: list[list[tuple[str, str]]]
    dev: list[list[tuple[str, str]]]
    test: list[list[tuple[str, str]]]
    tags: list[str]


def _read_conll(relpath: str) -> list[list[tuple[str, str]]]:
    sentences, current = [], []
    for line in _read_text(relpath).split("\n"):
        if not line.strip():  # the train file also separates sentences with a lone tab
            if current:
                sentences.append(current)
                current = []
            continue
        token, tag = line.split("\t")
        current.append((token, tag))
    if current:
        sentences.append(current)
    return sentences


def load_wnut17() -> NERData:
    """WNUT-17 emerging entities (BIO tags over 6 types): 3,394 / 1,009 / 1,287 sentences."""
    splits = [_read_conll(f"ner/wnut17/{name}")
              for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")]
    tags = sorted({tag for split in splits for sentence in split for _, tag in sentence})
    return NERData(*splits, tags=tags)


_LINE_BREAK = re.compile(r"[，。？！；：、]")


def poem_lines(poem: dict) -> list[str]:
    """The lines (句) of a poem: its paragraphs split at Chinese punctuation.

    A paragraph usually holds a couplet, ``'十年江漢客，幾度帝京遊。'`` -> 2 lines.
    """
    return [line for line in _LINE_BREAK.split("".join(poem["paragraphs"])) if line]


def _is_quatrain(poem: dict) -> bool:
    lines = poem_lines(poem)
    return (len(lines) == 4 and len({len(line) for line in lines}) == 1 and len(lines[0]) in (5, 7)
            and all(unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH") for ch in "".join(lines)))


def load_tang_poems(quatrains_only: bool = False) -> list[dict]:
    """Tang poems (traditional characters) from four files of 全唐诗: 4,003 poems.

    Each poem is ``{"title", "author", "paragraphs"}``. With ``quatrains_only``,
    only jueju are kept: exactly 4 lines (see :func:`poem_lines`), all of 5 or
    all of 7 characters, every character a Han ideograph (this drops poems with
    ``□`` for a lost character or ``[...]`` editorial marks): 1,946 poems.
    """
    poems = []
    for n in (25000, 34000, 41000, 43000):
        for p in json.loads(_read_text(f"poetry/poet.tang.{n}.json")):
            poems.append({"title": p["title"], "author": p["author"], "paragraphs": list(p["paragraphs"])})
    return [p for p in poems if _is_quatrain(p)] if quatrains_only else poems


def load_scitldr() -> dict[str, list[dict]]:
    """SciTLDR-A: ``{"train": 1,992 papers, "dev": 619}``, each ``{"source", "target", "title"}``.

    ``source`` is the abstract (its sentences joined by spaces), ``target`` the
    list of one-sentence TLDRs written for it (one or more).
    """
    out = {}
    for split in ("train", "dev"):
        records = [json.loads(line) for line in _read_text(f"summarization/scitldr/{split}.jsonl").split("\n")
                   if line.strip()]
        out[split] = [{"source": " ".join(r["source"]), "target": list(r["target"]), "title": r["title"]}
                      for r in records]
    return out


def load_taskmaster() -> list[list[tuple[str, str]]]:
    """Taskmaster-4 coffee orders: 210 dialogues, each a list of ``(speaker, text)`` turns.

    The speaker is ``"user"`` (the customer) or ``"assistant"`` (the barista).
    """
    dialogues = json.loads(_read_text("dialogue/taskmaster4/data_07.json"))
    return [[(u["speaker"], u["text"]) for u in sorted(d["utterances"], key=lambda u: u["index"])]
            for d in dialogues]


class QAExample(NamedTuple):
    """One SQuAD question. ``answers[i]`` starts at character ``answer_starts[i]`` of ``context``."""

    context: str
    question: str
    answers: list[str]
    answer_starts: list[int]
    is_impossible: bool  # SQuAD 2.0 only; then answers is empty
    id: str


def load_squad(version: int = 1) -> list[QAExample]:
    """SQuAD questions as :class:`QAExample`.

    ``version=1``: XQuAD's English file, 1,190 questions on 240 paragraphs of SQuAD
    v1.1 dev (every question answerable). ``version=2``: the first two articles
    of SQuAD 2.0 dev, 626 questions of which 333 are unanswerable
    (``is_impossible``; their ``plausible_answers`` are not returned).
    """
    files = {1: "squad/xquad.en.json", 2: "squad/squad2_dev_subset_haystack_small.json"}
    if version not in files:
        raise ValueError(f"version must be 1 (SQuAD v1.1 / XQuAD) or 2 (SQuAD 2.0), got {version!r}")
    examples = []
    for article in json.loads(_read_text(files[version]))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                examples.append(QAExample(
                    context=paragraph["context"], question=qa["question"],
                    answers=[a["text"] for a in qa["answers"]],
                    answer_starts=[a["answer_start"] for a in qa["answers"]],
                    is_impossible=bool(qa.get("is_impossible", False)), id=qa["id"]))
    return examples


class Digits(NamedTuple):
    """scikit-learn's 8×8 digits as tensors: pixels scaled to [0, 1], a seeded split."""

    X_train: "torch.Tensor"  # (n_train, 64)
    y_train: "torch.Tensor"  # (n_train,)
    X_test: "torch.Tensor"
    y_test: "torch.Tensor"


def load_digits(n_train: int = 1200, seed: int = 0) -> Digits:
    """The 1,797 handwritten digits bundled with scikit-learn (no download), split at random.

    Used on page 4.2 for the distillation experiments.
    """
    import torch
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    if not 0 < n_train < len(d.target):
        raise ValueError(f"n_train must be between 1 and {len(d.target) - 1}, got {n_train}")
    X = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    tr, te = perm[:n_train], perm[n_train:]
    return Digits(X[tr], y[tr], X[te], y[te])

