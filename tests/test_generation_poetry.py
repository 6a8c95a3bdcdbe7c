"""Tests of page 6.3's modules: wmbook.lab.generation, wmbook.lab.summarize, wmbook.lab.poetry."""
from __future__ import annotations

import math

import pytest
import torch

from wmbook.lab import generation as gen
from wmbook.lab import poetry, summarize
from wmbook.nn.gpt import GPT, GPTConfig
from wmbook.nn.sampling import generate

VOCAB = list("abcdefgh \n")


def tiny_gpt(vocab_size=len(VOCAB), n_ctx=16, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, n_ctx=n_ctx, d_model=16, n_heads=2, n_layers=1, dropout=0.0)).eval()


def encode(s):
    return [VOCAB.index(c) for c in s]


# --- generation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_new", [5, 30])  # 5 fits n_ctx (KV cache), 30 slides the window
@pytest.mark.parametrize("dec", [gen.Decoding(0), gen.Decoding(0.8, top_k=3), gen.Decoding(1.2, top_p=0.7)])
def test_sample_with_logprobs_draws_what_generate_draws(n_new, dec):
    model, idx = tiny_gpt(), torch.tensor([encode("abc")] * 4)
    ids, logp = gen.sample_with_logprobs(model, idx, n_new, dec, generator=torch.Generator().manual_seed(3))
    ref = generate(model, idx, n_new, dec.temperature, dec.top_k, dec.top_p, use_cache=False,
                   generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids, ref) and logp.shape == (4, n_new) and (logp <= 0).all()
    # logp is the unfiltered log-probability at temperature 1 of each drawn token
    with torch.no_grad():
        full = model(ids[:1, -model.cfg.n_ctx:]).logits.log_softmax(-1) if n_new == 5 else None
    if full is not None:
        assert torch.allclose(logp[0], full[0, 2:-1].gather(1, ids[0, 3:, None])[:, 0], atol=1e-5)


def test_generator_groups_draw_as_separate_runs():
    model, idx = tiny_gpt(), torch.tensor([encode("ab")] * 6)
    together, _ = gen.sample_with_logprobs(model, idx, 8, generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    alone = [gen.sample_with_logprobs(model, idx[:3], 8, generator=torch.Generator().manual_seed(s))[0] for s in (0, 1)]
    assert torch.equal(together, torch.cat(alone))
    with pytest.raises(ValueError, match="equal groups"):
        gen.sample_with_logprobs(model, idx[:5], 2, generator=[torch.Generator(), torch.Generator()])


def test_mask_fn_is_obeyed():
    model, idx = tiny_gpt(), torch.tensor([encode("ab")] * 3)
    allow = torch.zeros(len(VOCAB), dtype=torch.bool)
    allow[encode("h")] = True
    ids, logp = gen.sample_with_logprobs(model, idx, 4, mask_fn=lambda x: allow.expand(x.shape[0], -1),
                                         generator=torch.Generator().manual_seed(0))
    assert (ids[:, 2:] == encode("h")[0]).all() and torch.allclose(logp, torch.zeros_like(logp), atol=1e-6)


def test_text_metrics_on_known_texts():
    assert gen.words("The cat, the CAT's") == ["the", "cat", "the", "cat's"]
    assert gen.ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert gen.distinct_n(["a b a b"], 1) == 0.5 and gen.distinct_n(["a b", "a b"], 2) == 0.5
    assert gen.repetition_rate(["a a a a", "a b c d"], 1) == pytest.approx((0.75 + 0.0) / 2)
    assert math.isnan(gen.distinct_n([""], 1)) and math.isnan(gen.repetition_rate(["a"], 2))
    assert gen.self_perplexity(torch.log(torch.tensor([[0.5, 0.5]]))) == pytest.approx(2.0)
    m = gen.text_metrics(["a b", "c d"])
    assert m == {"distinct_1": 1.0, "distinct_2": 1.0, "rep": 0.0}
    with pytest.raises(ValueError):
        gen.ngrams(["a"], 0)
    with pytest.raises(ValueError, match="empty"):
        gen.self_perplexity(torch.zeros(1, 0))
    with pytest.raises(ValueError, match="temperature"):
        gen.Decoding(-1)
    assert gen.Decoding(0).label == "greedy" and gen.Decoding(1.0, top_k=5).label == "T=1, k=5"


def test_decoding_sweep_rows():
    model = tiny_gpt()
    rows = gen.decoding_sweep(model, encode, lambda ids: "".join(VOCAB[i] for i in ids), "ab",
                              [gen.Decoding(0), gen.Decoding(1.0)], seeds=[0, 1], n_samples=3, n_new=10)
    assert len(rows) == 4 and {r["seed"] for r in rows} == {0, 1}
    greedy = [r for r in rows if r["setting"] == "greedy"]
    assert greedy[0]["example"] == greedy[1]["example"] and all(r["self_ppl"] >= 1 for r in rows)


def test_continuation_logprob_matches_a_full_pass_and_slides():
    model = tiny_gpt()
    ids = encode("abcde")
    with torch.no_grad():
        lp = model(torch.tensor([ids])).logits.log_softmax(-1)[0]
    want = lp[2, ids[3]].item() + lp[3, ids[4]].item()
    assert gen.continuation_logprob(model, encode, "abc", "de") == pytest.approx(want, abs=1e-5)
    long = "abcdefgh " * 3  # 27 characters > n_ctx = 16: only the last 16 are read
    assert gen.continuation_logprob(model, encode, long, "a") == pytest.approx(
        gen.continuation_logprob(model, encode, long[-16:], "a"), abs=1e-5)
    with pytest.raises(ValueError):
        gen.continuation_logprob(model, encode, "ab", "")


def test_name_recall_is_blind_beyond_the_window():
    v = sorted(set("Good Abc, xyz\nI pray you,sir"))
    model = tiny_gpt(len(v), n_ctx=24)
    enc = lambda s: [v.index(c) for c in s]
    prompt, d = gen.name_prompt("Abc", "xyz", cue=1)
    assert prompt == "Good Abc, xyz\nI pray you, A" and d == len(", xyz\nI pray you, A")
    rows = gen.name_recall(model, enc, "Abc", "xyz " * 8, [0, 30], cue=1)
    assert rows[0]["in_window"] and not rows[1]["in_window"]
    assert rows[1]["p_context"] == pytest.approx(rows[1]["p_control"], abs=1e-6)  # the mention has slid out
    assert gen.name_prompt("Abc", "x", cue=1, mention="sir")[0] == "Good sir, x\nI pray you, A"
    with pytest.raises(ValueError, match="cue"):
        gen.name_prompt("Abc", "", cue=3)
    with pytest.raises(ValueError, match="exceeds"):
        gen.name_recall(model, enc, "Abc", "xyz", [10])


# --- summarisation ----------------------------------------------------------------------------------------

def test_split_sentences_and_lead():
    s = summarize.split_sentences("We study A. It works (mostly). Results: e.g. 3.5 points! [Code] is out.")
    assert s == ["We study A.", "It works (mostly).", "Results: e.g. 3.5 points!", "[Code] is out."]
    assert summarize.lead_1(s) == 0
    with pytest.raises(ValueError):
        summarize.split_sentences("  ")


def test_max_rouge_takes_the_best_reference():
    refs = ["the cat sat on the mat", "dogs bark loudly"]
    r = summarize.max_rouge("the cats sat on the mat", refs)  # stemming: cats -> cat
    assert r["rouge1"] == pytest.approx(100.0) and r["rouge2"] == pytest.approx(100.0)
    assert summarize.max_rouge("dogs bark", refs)["rouge1"] == pytest.approx(100 * 2 * 1 * (2 / 3) / (1 + 2 / 3))
    with pytest.raises(ValueError):
        summarize.max_rouge("x", "not a list")


def test_oracle_and_centroid_pick_the_right_sentence():
    sents = ["Unrelated words here.", "The model compresses abstracts into tldrs.", "Other text."]
    assert summarize.oracle_index(sents, ["model compresses abstracts"]) == 1
    e = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    assert summarize.centroid_index(e) in (1, 2)
    assert summarize.centroid_index(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])) == 1
    with pytest.raises(ValueError):
        summarize.centroid_index(torch.zeros(0, 3))


def test_summarise_dev_scores_and_curve():
    papers = [{"source": "Alpha beta gamma. Delta model summary here. Closing words.",
               "target": ["delta model summary"]},
              {"source": "We propose X. X beats Y.", "target": ["X beats Y", "we propose X"]}]
    embed = lambda ss: torch.eye(len(ss), 4) if len(ss) <= 4 else torch.randn(len(ss), 4)
    res = summarize.summarise_dev(papers, embed)
    assert set(res) == {"Lead-1", "centroid (MiniLM)", "oracle"} and res["oracle"][0]["index"] == 1
    table = summarize.score_table(res, n_boot=50)
    oracle = next(r for r in table if r["system"] == "oracle")
    assert all(oracle[m] >= next(r for r in table if r["system"] == "Lead-1")[m] for m in summarize.METRICS)
    assert oracle["rouge1_lo"] <= oracle["rouge1"] <= oracle["rouge1_hi"]
    curve = summarize.compression_curve(papers, [0.5, 1.0])
    assert curve[1]["recall"] == pytest.approx(100.0) and curve[0]["recall"] <= curve[1]["recall"]
    with pytest.raises(ValueError):
        summarize.compression_curve(papers, [0])


# --- poetry -----------------------------------------------------------------------------------------------

DENG = "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。"


def test_poem_text_and_parse():
    assert poetry.poem_text(["白日依山盡", "黃河入海流", "欲窮千里目", "更上一層樓"]) == DENG + "\n"
    assert poetry.parse_quatrain(DENG + "\n") == ["白日依山盡", "黃河入海流", "欲窮千里目", "更上一層樓"]
    assert poetry.parse_quatrain("白日依山，黃河入海流。欲窮千里目，更上一層樓。") is None  # uneven lines
    assert poetry.parse_quatrain("白日依山盡。黃河入海流，欲窮千里目，更上一層樓。") is None  # wrong punctuation
    with pytest.raises(ValueError):
        poetry.poem_text(["a"])


def test_form_checks_and_the_entering_tone_limit():
    assert poetry.check_form(DENG) == {"length": True, "rhyme": True, "tones": True, "all": True}
    # 覺 (jué) was an entering (oblique) tone; modern tone 2 makes it level, so this real poem fails the tones
    chunxiao = poetry.check_form("春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。")
    assert chunxiao["rhyme"] and not chunxiao["tones"]
    assert poetry.tone_class("白") == "平" and poetry.tone_class("海") == "仄" and poetry.tone_class("x") is None
    assert poetry.rhyme_class("流") == poetry.rhyme_class("樓") == "尤"
    assert poetry.rhyme_class("詩") == "支" and poetry.rhyme_class("衣") == "齐"
    assert poetry.check_form("abc")["length"] is False
    rates = poetry.pass_rates([DENG, "abc"])
    assert rates == {"n": 2, "length": 0.5, "rhyme": 0.5, "tones": 0.5, "all": 0.5}
    with pytest.raises(ValueError):
        poetry.pass_rates([])


def _tang_vocab():
    return sorted(set(DENG + "春眠不覺曉\n"))


def test_form_mask_forces_lines_punctuation_and_heads():
    vocab = _tang_vocab()
    mask = poetry.form_mask(vocab, 5, start=1, heads="春白黃欲")
    ids = torch.zeros(2, 1, dtype=torch.long)
    first = mask(ids)[0]
    assert first.sum() == 1 and vocab[int(first.nonzero())] == "春"
    assert mask(torch.zeros(2, 6, dtype=torch.long))[0].nonzero().flatten().tolist() == [vocab.index("，")]
    assert mask(torch.zeros(2, 12, dtype=torch.long))[0].nonzero().flatten().tolist() == [vocab.index("。")]
    assert mask(torch.zeros(2, 25, dtype=torch.long))[0].nonzero().flatten().tolist() == [vocab.index("\n")]
    inside = mask(torch.zeros(2, 3, dtype=torch.long))[0]
    assert not inside[vocab.index("，")] and inside[vocab.index("山")]
    with pytest.raises(ValueError):
        poetry.form_mask(vocab, 6, 1)
    with pytest.raises(ValueError, match="heads"):
        poetry.form_mask(vocab, 5, 1, heads="春")
    with pytest.raises(ValueError, match="vocabulary"):
        poetry.form_mask(list("abc"), 5, 1)


def test_sample_poems_constrained_always_has_the_form():
    from wmbook.data.loaders import CharCorpus
    from wmbook.lab.char_gpt import CharGPT, CharGPTRecipe

    vocab = _tang_vocab()
    c = CharCorpus(text="", train="", val="", vocab=vocab)
    gpt = CharGPT(tiny_gpt(len(vocab), n_ctx=40), c.encode, c.decode, vocab, CharGPTRecipe(), {})
    for n in (5, 7):
        poems = poetry.sample_poems(gpt, 3, seeds=[0, 1], n_chars=n)
        assert len(poems) == 2 and all(poetry.check_form(p)["length"] for ps in poems for p in ps)
    acro = poetry.sample_poems(gpt, 2, seeds=[0], n_chars=5, heads="春白黃欲")[0]
    assert all([line[0] for line in poetry.parse_quatrain(p)] == list("春白黃欲") for p in acro)
    free = poetry.sample_poems(gpt, 4, seeds=[0], n_chars=None)[0]
    assert len(free) == 4 and all("\n" not in p for p in free)


def test_form_rule_js_names_the_forced_ids():
    vocab = _tang_vocab()
    js = poetry.form_rule_js(vocab, 7, heads="春白黃欲")
    assert f"only = {vocab.index(chr(10))}" in js and str(vocab.index("春")) in js and "n = 7" in js
    with pytest.raises(ValueError):
        poetry.form_rule_js(vocab, 4)


def test_tang_corpus_split_and_vocab():
    c = poetry.tang_corpus()
    assert c.train.count("\n") + c.val.count("\n") == 1946 and c.val.count("\n") == 195
    assert {"，", "。", "\n"} <= set(c.vocab) and c.encode(c.val[:10])
    r = poetry.tang_recipe()
    assert (r.n_layers, r.dropout, r.steps) == (3, 0.1, 1000)
    with pytest.raises(ValueError):
        poetry.tang_corpus(val_fraction=1.0)


@pytest.mark.slow
def test_train_tang_gpt_reproduces_the_committed_log(tmp_path):
    """The first 100 steps of the committed recipe give the log's records at steps 0 and 100 (rtol 1e-3)."""
    import subprocess
    import sys
    from pathlib import Path

    from wmbook.data.checkpoint import load_log

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "t.pt"
    subprocess.run([sys.executable, str(root / "scripts" / "train_tang_gpt.py"), "--seeds", "1", "--steps", "100",
                    "--out", str(out)], check=True, capture_output=True, timeout=900)
    got = load_log(out.with_suffix(".json"), None, "python scripts/train_tang_gpt.py")["evals"]
    committed = poetry.load_tang_gpt().log["evals"]
    assert [r["step"] for r in got] == [0, 100]
    for mine, theirs in zip(got, committed[:2], strict=True):
        assert mine["step"] == theirs["step"]
        for key in ("train_loss", "val_loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-3), (mine, theirs)
