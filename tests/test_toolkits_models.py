"""Pages 7.1 and 7.2: wmbook.lab.toolkits, wmbook.lab.model_sizes, wmbook.lab.tokenizers_compare."""
from __future__ import annotations

import json

import pytest
import torch

from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.lab import model_sizes as ms
from wmbook.lab import tokenizers_compare as tc
from wmbook.lab import toolkits as tk

TEXT = ["the cat sat on the mat . the dog sat on the log .", "a cat and a dog met on a mat in the fog ."] * 40


# --------------------------------------------------------------- model_sizes

@pytest.mark.parametrize("name", list(ms.PUBLISHED))
def test_the_formula_equals_transformers_on_the_meta_device(name):
    shape = ms.PUBLISHED[name]
    assert ms.count_by_formula(shape) == ms.count_in_transformers(shape)
    if shape.family == "gpt2":  # the LM head is tied: it adds nothing
        assert ms.count_in_transformers(shape, lm_head=True) == ms.count_by_formula(shape)


def test_known_counts_and_parts():
    assert ms.count_by_formula(ms.PUBLISHED["BERT-base"]) == 109_482_240
    assert ms.count_by_formula(ms.PUBLISHED["GPT-2 small"]) == 124_439_808
    parts = ms.parameter_breakdown(ms.PUBLISHED["RoBERTa-base"])
    assert parts["embeddings"] + parts["layers"] + parts["head"] == parts["total"] == 124_645_632
    assert ms.layer_parameters(768, 3072) == 7_087_872
    # within a few % of what the papers state (GPT-2's 117 M is the known exception, about 6 % below)
    for name, millions in ms.PUBLISHED_MILLIONS.items():
        assert abs(ms.count_by_formula(ms.PUBLISHED[name]) / 1e6 - millions) / millions < 0.07, name


def test_a_small_shape_matches_too_and_the_gpt_formula_of_page_1_1():
    from wmbook.lab.scale import gpt_parameters
    from wmbook.nn.gpt import GPTConfig

    for family, s in (("bert", 2), ("roberta", 1), ("gpt2", 0)):
        shape = ms.ModelShape("tiny", family, 101, 17, 3, 24, 4, 40, s)
        assert ms.count_by_formula(shape) == ms.count_in_transformers(shape)
    shape = ms.PUBLISHED["GPT-2 medium"]
    cfg = GPTConfig(vocab_size=shape.vocab_size, n_ctx=shape.n_positions, d_model=shape.d_model,
                    n_heads=shape.n_heads, n_layers=shape.n_layers, d_ff=shape.d_ff)
    assert gpt_parameters(cfg) == ms.count_by_formula(shape)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="family"):
        ms.ModelShape("x", "t5", 10, 10, 1, 8, 2, 16)
    with pytest.raises(ValueError, match="divisible"):
        ms.ModelShape("x", "gpt2", 10, 10, 1, 10, 3, 16)
    with pytest.raises(ValueError, match="segment"):
        ms.ModelShape("x", "gpt2", 10, 10, 1, 8, 2, 16, 2)
    with pytest.raises(ValueError, match="type_vocab_size"):
        ms.ModelShape("x", "bert", 10, 10, 1, 8, 2, 16, 0)
    with pytest.raises(ValueError, match="positive"):
        ms.ModelShape("x", "bert", 0, 10, 1, 8, 2, 16, 2)
    with pytest.raises(ValueError, match="GPT-2 only"):
        ms.count_in_transformers(ms.PUBLISHED["BERT-base"], lm_head=True)


def test_kv_bytes_per_token():
    assert ms.kv_bytes_per_token(ms.PUBLISHED["GPT-2 small"]) == 2 * 12 * 768 * 2 == 36_864
    assert ms.kv_bytes_per_token(ms.PUBLISHED["GPT-2 XL"], bytes_per_value=4) == 2 * 48 * 1600 * 4
    assert ms.hf_config(ms.PUBLISHED["RoBERTa-large"]).max_position_embeddings == 514


# --------------------------------------------------------------- tokenizers_compare

def test_plain_lines_drops_unk_and_joins():
    assert tc.plain_lines(["a <unk> b @-@ c 1 @,@ 000", "", "<unk>"]) == ["a b-c 1,000"]


def test_the_two_tokenisers_train_and_measure():
    wp, bpe = tc.train_wordpiece(TEXT, 300), tc.train_byte_bpe(TEXT, 300)
    for tok in (wp, bpe):
        assert tok.get_vocab_size() <= 300
        assert [tok.token_to_id(s) for s in tc.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    s_wp, s_bpe = tc.tokenizer_stats(wp, ["the cat sat ."]), tc.tokenizer_stats(bpe, ["the cat sat ."])
    assert s_wp["words"] == s_bpe["words"] == 4 and s_wp["unk"] == 0
    assert s_wp["tokens_per_word"] == s_wp["tokens"] / 4
    # a character never seen: WordPiece says [UNK], byte-level BPE spells its bytes
    assert tc.pieces(wp, "猫") == ["[UNK]"] and tc.tokenizer_stats(wp, ["猫"])["unk_rate"] == 1.0
    assert len(tc.pieces(bpe, "猫")) == 1 + len("猫".encode()) and tc.tokenizer_stats(bpe, ["猫"])["unk"] == 0
    assert bpe.decode(bpe.encode("猫 🙂").ids) .strip() == "猫 🙂"
    with pytest.raises(ValueError, match=">= 300"):
        tc.train_wordpiece(TEXT, 100)
    with pytest.raises(ValueError, match="empty"):
        tc.tokenizer_stats(wp, [])


def test_masked_coverage_follows_the_closed_form():
    rows = torch.randint(5, 1000, (400, 64))
    rows[:, 0] = 1  # a special token: never selected, not counted
    for k in (1, 3, None):
        cov = tc.masked_coverage(rows, 6, k, 1000, 4, special_ids=[1], seed=0)
        assert cov.shape == (6, 400)
        for e in range(6):
            assert abs(cov[e].mean().item() - tc.expected_coverage(e + 1, k)) < 0.01
    static = tc.masked_coverage(rows, 4, 1, 1000, 4, special_ids=[1])
    assert torch.equal(static[0], static[-1])  # one fixed mask: nothing new after epoch 1
    assert tc.expected_coverage(40, 10) == pytest.approx(1 - 0.85 ** 10)
    with pytest.raises(ValueError, match="epochs"):
        tc.masked_coverage(rows, 0, 1, 1000, 4)
    with pytest.raises(ValueError, match="no maskable"):
        tc.masked_coverage(torch.ones(2, 3, dtype=torch.long), 1, 1, 1000, 4, special_ids=[1])


# --------------------------------------------------------------- toolkits: MiniLM twice, the pipeline

@pytest.fixture(scope="module")
def minilm_auto():
    return tk.load_minilm_auto()


def test_minilm_through_auto_and_wmbook_agree(minilm_auto):
    from wmbook.nn.bert import BertModel

    tok, hf = minilm_auto
    assert type(hf).__name__ == "BertModel" and tk.offline_load_kwargs() == {"local_files_only": True}
    d = tk.compare_minilm(tok, hf, BertModel.from_minilm(), ["A short one.", "A somewhat longer sentence than that."])
    assert max(d["hidden"], d["pooler"], d["sentence"]) < 1e-4 and d["padding"] > 0
    with pytest.raises(ValueError, match="at least one"):
        tk.compare_minilm(tok, hf, None, [])


def test_the_pipeline_is_the_three_steps(minilm_auto):
    from transformers import pipeline

    from wmbook.lab.sentence import encode
    from wmbook.nn.bert import BertModel

    tok, hf = minilm_auto
    text = "Working memory holds about four chunks."
    got = pipeline("feature-extraction", model=hf, tokenizer=tok, device="cpu")(text)
    by_hand = tk.feature_extraction_by_hand(tok, hf, text)
    assert torch.tensor(got).shape == torch.tensor(by_hand).shape == (1, len(tok(text)["input_ids"]), 384)
    assert (torch.tensor(got) - torch.tensor(by_hand)).abs().max() < 1e-6
    e = tk.sentence_embedding(tok, hf, [text, "A cat."])
    ref = encode(BertModel.from_minilm(), tok, [text, "A cat."])
    assert (e - ref).abs().max() < 1e-4


# --------------------------------------------------------------- toolkits: the install log

def _log(outcome="failed", tail=("ERROR: Failed building wheel for fairseq",)):
    rec = {"name": "fairseq", "command": "pip install fairseq", "outcome": outcome, "seconds": 1.0, "returncode": 1,
           "error_tail": list(tail), "pypi": {"latest": "0.12.2", "latest_uploaded": "2022-06-27"},
           "installed": [], "example": None}
    return {"checkpoint": "x.pt", "sha256": "0" * 64, "recipe": {"packages": ["fairseq", "OpenNMT-py"]},
            "python": "3.11", "pip": "23", "torch": "2", "platform": "linux", "date_utc": "2026", "packages": [rec],
            "facts_only": {"transformers": None}}


def test_check_install_log():
    tk.check_install_log(_log())
    for breaking, match in ((lambda g: g.pop("pip"), "lacks"),
                            (lambda g: g["packages"][0].update(outcome="maybe"), "not one of"),
                            (lambda g: g["packages"][0].update(error_tail=[]), "last lines"),
                            (lambda g: g["packages"][0].pop("example"), "lacks"),
                            (lambda g: g["packages"][0].update(name="torch"), "expected")):
        log = _log()
        breaking(log)
        with pytest.raises(ValueError, match=match):
            tk.check_install_log(log)
    with pytest.raises(ValueError, match="JSON object"):
        tk.check_install_log([])


def test_key_error_line_and_install_table():
    tail = ["  error: subprocess-exited-with-error", "  ModuleNotFoundError: No module named 'torch'",
            "  [end of output]", "note: This error originates from a subprocess, and is likely not a problem with pip."]
    assert tk.key_error_line(tail) == "ModuleNotFoundError: No module named 'torch'"
    assert tk.key_error_line(["nothing telling"]) == "nothing telling"
    with pytest.raises(ValueError):
        tk.key_error_line([])
    rows = tk.install_table(_log(tail=tail))
    assert rows == [{"package": "fairseq", "latest": "0.12.2", "uploaded": "2022-06-27", "outcome": "failed",
                     "seconds": 1.0, "detail": "ModuleNotFoundError: No module named 'torch'"}]


def test_the_committed_install_log_loads_verified(tmp_path):
    install = tk.load_toolkits_install()
    assert set(install.transcripts) == {r["name"] for r in install.log["packages"]}
    assert all(r["outcome"] != "not tried (dry run)" for r in install.log["packages"])
    # a copy with one changed byte in the log is refused
    import shutil

    pt, log = tmp_path / "toolkits_install.pt", tmp_path / "toolkits_install.json"
    shutil.copyfile(tk.TOOLKITS_INSTALL_FILE, pt)
    data = json.loads(tk.TOOLKITS_INSTALL_FILE.with_suffix(".json").read_text(encoding="utf-8"))
    data["packages"][0]["seconds"] -= 100  # a faster install than the run had
    log.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="sha256"):
        tk.load_toolkits_install(pt)
    assert tk.load_toolkits_install(pt, log_sha256=None).log["packages"][0]["seconds"] == data["packages"][0]["seconds"]
    assert file_sha256(pt) == tk.TOOLKITS_INSTALL_SHA256


def test_measured_kv_cache_equals_the_arithmetic():
    import transformers

    shape = ms.ModelShape("tiny", "gpt2", 100, 64, 2, 32, 4, 128)
    model = transformers.GPT2LMHeadModel(ms.hf_config(shape)).eval()
    assert ms.measured_kv_cache_bytes(model, 21) == 21 * ms.kv_bytes_per_token(shape, bytes_per_value=4)
    with pytest.raises(ValueError, match="n_tokens"):
        ms.measured_kv_cache_bytes(model, 65)


def test_truncation_report(minilm_auto):
    tok, _ = minilm_auto
    text = " ".join(["working memory"] * 30) + " unbelievably"  # 'unbelievably' is several pieces
    r = tk.truncation_report(tok, text, 512)
    assert r == {"tokens": r["tokens"], "kept": r["tokens"], "words": 61, "words_kept": 61}
    n_last = len(tok.tokenize("unbelievably"))
    assert n_last > 1
    r = tk.truncation_report(tok, text, 2 + 60 + 1)  # the last word cut after its first piece
    assert r["kept"] == 63 and r["words_kept"] == 60 and r["words"] == 61
    with pytest.raises(ValueError, match="max_length"):
        tk.truncation_report(tok, text, 2)


def test_installed_version_and_example_detail():
    log = _log(outcome="installed", tail=())
    rec = log["packages"][0]
    rec["installed"] = ["Torch==2.2.2", "fairseq==0.12.2", "-e git+x"]
    rec["example"] = [{"command": "python -c import fairseq", "returncode": 1,
                       "output_tail": ["Traceback", "ValueError: mutable default is not allowed"]},
                      {"command": "fairseq-train --help", "returncode": 0, "output_tail": ["usage"]}]
    assert tk.installed_version(rec, "torch") == "2.2.2" and tk.installed_version(rec, "numpy") is None
    assert tk.install_table(log)[0]["detail"] == ("python -c import fairseq: exit 1 (ValueError: mutable default is "
                                                  "not allowed); fairseq-train --help: exit 0")


def test_log_text_displays_without_quotes():
    from IPython.core.formatters import format_display_data

    assert repr(tk.LogText("0.12.2")) == "0.12.2" and tk.LogText("a") == "a"
    assert format_display_data(tk.LogText("2022-06-27"))[0]["text/plain"] == "2022-06-27"
