"""Tests for wmbook.data.loaders: the download machinery (no network needed) and every loader.

The loader tests read the real files from ``$WMBOOK_DATA_DIR`` or, if it is not
set, from the shared data folder next to the repository; they are skipped when
the files are not there (they never download anything).
"""
from __future__ import annotations

import hashlib
import stat
import urllib.error
from pathlib import Path

import pytest

from wmbook.data import loaders as data
from wmbook.data.loaders import ChecksumError, DataUnavailableError, Source

from _fixtures import SHARED_DATA, real_data  # noqa: F401  (real_data: the loaders on the real files)

# ---------------------------------------------------------------------------
# The machinery, with a tiny file and no network
# ---------------------------------------------------------------------------

PAYLOAD = "To be, or not to be\n".encode()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _source(url: str, sha256: str = PAYLOAD_SHA) -> Source:
    return Source(url=url, sha256=sha256, size=len(PAYLOAD), license="test", citation="test")


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty (not yet created) data folder, and a local file served via a file:// URL."""
    remote = tmp_path / "remote" / "hamlet.txt"
    remote.parent.mkdir()
    remote.write_bytes(PAYLOAD)
    home = tmp_path / "data"
    monkeypatch.setenv("WMBOOK_DATA_DIR", str(home))
    return home, remote.as_uri()


def _all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_data_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("WMBOOK_DATA_DIR", raising=False)
    assert data.data_dir() == Path.home() / ".cache" / "wmbook" / "data"
    monkeypatch.setenv("WMBOOK_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path


def test_registry_is_complete():
    for relpath, src in data.SOURCES.items():
        assert src.url.startswith("https://") and len(src.sha256) == 64, relpath
        assert src.license and src.citation, relpath
    assert "zip" not in data.SOURCES["sentiment/sst2/train.tsv"].url  # pinned raw copy, not the zip
    assert data.SOURCES["wikitext-2/train.txt"].size is None
    if SHARED_DATA.is_dir():  # every shared file is registered, with its size
        for p in SHARED_DATA.rglob("*"):
            if p.is_file() and p.name != "SOURCES.md":
                rel = p.relative_to(SHARED_DATA).as_posix()
                assert data.SOURCES[rel].size == p.stat().st_size, rel


def test_download_verifies_and_writes_atomically(data_home):
    home, url = data_home
    path = data.fetch("plays/hamlet.txt", source=_source(url))
    assert path == home / "plays" / "hamlet.txt"
    assert path.read_bytes() == PAYLOAD
    assert _all_files(home) == ["plays/hamlet.txt"]  # no temporary file left
    assert path.stat().st_mode & stat.S_IRGRP
    assert data.fetch("plays/hamlet.txt", source=_source("file:///nowhere")) == path  # cached: no download


def test_download_through_the_registry(data_home, monkeypatch):
    home, url = data_home
    monkeypatch.setitem(data.SOURCES, "hamlet.txt", _source(url))
    assert data.fetch("hamlet.txt").read_bytes() == PAYLOAD


def test_wrong_hash_in_download_leaves_nothing(data_home):
    home, url = data_home
    with pytest.raises(ChecksumError) as err:
        data.fetch("hamlet.txt", source=_source(url, sha256="0" * 64))
    message = str(err.value)
    assert "hamlet.txt" in message and "0" * 64 in message and PAYLOAD_SHA in message
    assert _all_files(home) == []


def test_corrupt_existing_file_is_reported(data_home):
    home, url = data_home
    home.mkdir()
    (home / "hamlet.txt").write_bytes(b"To be, or not\n")
    actual = hashlib.sha256(b"To be, or not\n").hexdigest()
    with pytest.raises(ChecksumError) as err:
        data.fetch("hamlet.txt", source=_source(url))
    message = str(err.value)
    assert "hamlet.txt" in message and PAYLOAD_SHA in message and actual in message
    assert "Delete" in message


def test_no_network_raises_data_unavailable(data_home, monkeypatch):
    home, _ = data_home
    url = "https://example.invalid/hamlet.txt"

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataUnavailableError) as err:
        data.fetch("plays/hamlet.txt", source=_source(url))
    assert isinstance(err.value, RuntimeError)
    message = str(err.value)
    assert "plays/hamlet.txt" in message and url in message and "WMBOOK_DATA_DIR" in message
    assert _all_files(home) == []


def test_interrupted_download_leaves_nothing(data_home, monkeypatch):
    home, _ = data_home

    class Response:
        chunks = [PAYLOAD[:5]]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            if self.chunks:
                return self.chunks.pop()
            raise KeyboardInterrupt

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(KeyboardInterrupt):
        data.fetch("hamlet.txt", source=_source("https://example.invalid/hamlet.txt"))
    assert _all_files(home) == []


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        data.fetch("shakespeare.txt")
    assert "shakespeare.txt" in str(err.value) and "tinyshakespeare.txt" in str(err.value)


def test_read_only_data_dir_with_valid_file(data_home, monkeypatch):
    home, url = data_home
    (home / "plays").mkdir(parents=True)
    path = home / "plays" / "hamlet.txt"
    path.write_bytes(PAYLOAD)
    path.chmod(0o444)
    for folder in (home / "plays", home):
        folder.chmod(0o555)

    def no_writes(*args, **kwargs):
        raise AssertionError("fetch tried to create a file in a read-only folder")

    monkeypatch.setattr(data.tempfile, "mkstemp", no_writes)
    try:
        assert data.fetch("plays/hamlet.txt", source=_source(url)) == path
    finally:
        for folder in (home, home / "plays"):
            folder.chmod(0o755)


def test_unwritable_data_dir_with_missing_file(data_home, monkeypatch):
    home, url = data_home

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(home))

    monkeypatch.setattr(data.tempfile, "mkstemp", denied)
    with pytest.raises(DataUnavailableError, match="WMBOOK_DATA_DIR"):
        data.fetch("hamlet.txt", source=_source(url))


def test_char_corpus_encode_decode():
    corpus = data.CharCorpus(text="abba", train="abb", val="a", vocab=["a", "b"])
    assert corpus.encode("ab") == [0, 1] and corpus.decode([1, 0]) == "ba"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        corpus.encode("az")
    with pytest.raises(ValueError, match="out of range"):
        corpus.decode([2])


# ---------------------------------------------------------------------------
# The loaders, on the real files
# ---------------------------------------------------------------------------


def test_tinyshakespeare(real_data):
    real_data("tinyshakespeare.txt")
    corpus = data.load_tinyshakespeare()
    assert len(corpus.text) == 1_115_394 and len(corpus.vocab) == 65
    assert corpus.vocab == sorted(corpus.vocab) and corpus.text.startswith("First Citizen:")
    assert len(corpus.train) == 1_003_854 and corpus.train + corpus.val == corpus.text
    sample = corpus.val[:200]
    assert corpus.decode(corpus.encode(sample)) == sample
    with pytest.raises(ValueError, match="not in the vocabulary"):
        corpus.encode("café")


def test_wikitext2(real_data):
    real_data("wikitext-2/valid.txt", "wikitext-2/test.txt")
    splits = data.load_wikitext2()
    assert set(splits) == {"valid", "test"}
    assert len(splits["valid"]) == 2461 and len(splits["test"]) == 2891
    assert splits["valid"][0] == "= Homarus gammarus ="
    assert all(line and line == line.strip() for line in splits["test"])
    assert sum(line.count("<unk>") for line in splits["valid"]) > 1000
    assert list(data.load_wikitext2(splits=("test",))) == ["test"]
    with pytest.raises(ValueError, match="unknown WikiText-2 split"):
        data.load_wikitext2(splits=("validation",))


def test_sst2(real_data):
    real_data("sentiment/sst2/train.tsv", "sentiment/sst2/dev.tsv")
    splits = data.load_sst2()
    assert len(splits["train"]) == 67_349 and len(splits["dev"]) == 872
    assert sum(label for _, label in splits["train"]) == 37_569
    assert sum(label for _, label in splits["dev"]) == 444
    for rows in splits.values():
        assert {label for _, label in rows} == {0, 1}
        assert all(isinstance(s, str) and s and s == s.strip() for s, _ in rows)
    assert splits["dev"][0] == ("it 's a charming and often affecting journey .", 1)


def test_wnut17(real_data):
    real_data("ner/wnut17/wnut17train.conll", "ner/wnut17/emerging.dev.conll", "ner/wnut17/emerging.test.annotated")
    ner = data.load_wnut17()
    assert (len(ner.train), len(ner.dev), len(ner.test)) == (3394, 1009, 1287)
    assert len(ner.tags) == 13 and "O" in ner.tags
    assert {"B-person", "I-person", "B-location", "B-creative-work"} <= set(ner.tags)
    for split in (ner.train, ner.dev, ner.test):
        assert all(sentence and all(token and tag in ner.tags for token, tag in sentence) for sentence in split)
    assert ner.train[0][0] == ("@paulwalk", "O")


def test_tang_poems(real_data):
    real_data(*(f"poetry/poet.tang.{n}.json" for n in (25000, 34000, 41000, 43000)))
    poems = data.load_tang_poems()
    assert len(poems) == 4003
    assert all(set(p) == {"title", "author", "paragraphs"} and p["paragraphs"] for p in poems)
    quatrains = data.load_tang_poems(quatrains_only=True)
    assert len(quatrains) == 1946
    for poem in quatrains:
        lines = data.poem_lines(poem)
        assert len(lines) == 4 and {len(line) for line in lines} in ({5}, {7}), poem
    assert data.poem_lines(poems[0])[:2] == ["瀟灑碧玉枝", "清風追晉賢"]


def test_scitldr(real_data):
    real_data("summarization/scitldr/train.jsonl", "summarization/scitldr/dev.jsonl")
    splits = data.load_scitldr()
    assert len(splits["train"]) == 1992 and len(splits["dev"]) == 619
    for papers in splits.values():
        for paper in papers:
            assert set(paper) == {"source", "target", "title"}
            assert isinstance(paper["source"], str) and paper["source"]
            assert paper["target"] and all(isinstance(t, str) for t in paper["target"])
    assert splits["dev"][0]["title"] == "Adaptive Loss Scaling for Mixed Precision Training"


def test_taskmaster(real_data):
    real_data("dialogue/taskmaster4/data_07.json")
    dialogues = data.load_taskmaster()
    assert len(dialogues) == 210 and sum(map(len, dialogues)) == 786
    assert {speaker for d in dialogues for speaker, _ in d} == {"user", "assistant"}
    assert dialogues[0][0] == ("user", "I'd like two mochas, please. One with Oat milk and the other with Almond milk.")


def test_squad(real_data):
    real_data("squad/xquad.en.json", "squad/squad2_dev_subset_haystack_small.json")
    v1 = data.load_squad()
    assert len(v1) == 1190 and not any(ex.is_impossible for ex in v1)
    context, question, answers, starts = v1[0][:4]
    assert question == "How many points did the Panthers defense surrender?" and answers == ["308"]
    for ex in v1:
        assert ex.answers and len(ex.answers) == len(ex.answer_starts)
        assert all(ex.context[s:s + len(a)] == a for a, s in zip(ex.answers, ex.answer_starts))
    v2 = data.load_squad(version=2)
    assert len(v2) == 626 and sum(ex.is_impossible for ex in v2) == 333
    assert all(ex.answers == [] for ex in v2 if ex.is_impossible)
    with pytest.raises(ValueError, match="version must be 1"):
        data.load_squad(version=3)


def test_seed_file_names_the_other_seeds_beside_the_committed_one():
    from pathlib import Path

    import pytest

    from wmbook.data.checkpoint import seed_file

    assert seed_file("recall_gpt.pt", 0) == "recall_gpt.pt"
    assert seed_file("recall_gpt.pt", 2) == "recall_gpt_seed2.pt"
    assert seed_file(Path("/x/tiny.pt"), 1) == Path("/x/tiny_seed1.pt")
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_file("a.pt", -1)
