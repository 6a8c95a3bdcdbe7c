"""wmbook.lab.deploy: size, quantisation, timing helpers, Pareto front, KV-cache generation (pages 9.2, 9.4)."""
import itertools

import pytest
import torch
from torch import nn

from wmbook.lab import deploy
from wmbook.nn.gpt import GPT, GPTConfig


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2), nn.LayerNorm(2))


def _gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, n_ctx=32, d_model=16, n_heads=2, n_layers=2, dropout=0.0)).eval()


def test_state_dict_bytes_is_about_four_bytes_a_parameter():
    model = nn.Linear(100, 100)
    n = sum(p.numel() for p in model.parameters())
    size = deploy.state_dict_bytes(model)
    assert 4 * n < size < 4 * n + 4096
    with pytest.raises(TypeError):
        deploy.state_dict_bytes({"w": torch.zeros(3)})


def test_state_dict_bytes_counts_tied_weights_once():
    gpt = _gpt()
    assert gpt.lm_head.weight is gpt.wte.weight
    n_unique = sum(p.numel() for p in gpt.parameters())  # parameters() yields a shared tensor once
    assert 4 * n_unique < deploy.state_dict_bytes(gpt) < 4 * n_unique + 64 * 1024


def test_parameter_shares_split_embedding_linear_other():
    s = deploy.parameter_shares(_mlp())
    assert s.embedding == 50 * 16
    assert s.linear == 16 * 32 + 32 + 32 * 2 + 2
    assert s.other == 4  # LayerNorm(2): weight and bias
    assert s.total == s.embedding + s.linear + s.other
    assert s.embedding_share == pytest.approx(800 / s.total)
    with pytest.raises(ValueError, match="no parameters"):
        deploy.parameter_shares(nn.ReLU())


def test_int8_symmetric_matches_the_formula_and_torch():
    w = torch.tensor([[-1.0, 0.5], [0.25, 0.0]])
    q, s = deploy.int8_symmetric(w)
    assert s == pytest.approx(1.0 / 127.5)
    assert q.dtype == torch.int8
    assert q.tolist()[0][1:] == [64] and q.tolist()[1] == [32, 0]  # 63.75 -> 64, 31.875 -> 32
    assert q[0, 0] in (-128, -127)  # -127.5 in exact arithmetic: a tie, decided by float32 rounding of 1/s
    assert torch.equal(torch.quantize_per_tensor(w, s, 0, torch.qint8).int_repr(), q)  # as torch decides it
    assert (s * q.float() - w).abs().max() <= s / 2 + 1e-7
    torch.manual_seed(1)
    w = torch.randn(64, 48)
    q, s = deploy.int8_symmetric(w)
    ref = torch.quantize_per_tensor(w, s, 0, torch.qint8)
    assert torch.equal(ref.int_repr(), q)
    with pytest.raises(ValueError):
        deploy.int8_symmetric(torch.zeros(3, dtype=torch.long))


def test_quantize_linear_int8_converts_only_linear_layers_and_keeps_outputs_close():
    model = _mlp().eval()
    out = deploy.quantize_linear_int8(model)
    kinds = [type(m).__name__ for m in out.model.modules()]
    assert kinds.count("Linear") == 2 and "DynamicQuantizedLinear" in repr(out.model)  # quantized.dynamic Linear
    assert isinstance(out.model[0], nn.Embedding) and out.model[0].weight.dtype == torch.float32
    assert isinstance(model[1], nn.Linear) and model[1].weight.dtype == torch.float32  # original untouched
    q0, s0 = deploy.int8_symmetric(model[1].weight)
    assert torch.equal(out.model[1].weight().int_repr(), q0)
    assert out.model[1].weight().q_scale() == pytest.approx(s0, rel=1e-6)
    x = torch.randint(0, 50, (8,))
    with torch.no_grad():
        diff = (out.model(x) - model(x)).abs().max().item()
    assert diff < 0.1
    assert deploy.state_dict_bytes(out.model) < deploy.state_dict_bytes(model)
    assert out.warning is None or "deprecated" in out.warning
    with pytest.raises(ValueError, match="no nn.Linear"):
        deploy.quantize_linear_int8(nn.Sequential(nn.ReLU()))


def _fake_clock(step):
    t = itertools.count(0.0, step)
    return lambda: next(t)


def test_median_seconds_and_ratio_use_time_in_turns():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    med = deploy.median_seconds({"a": a, "b": b}, rounds=3, min_seconds=0.0, clock=_fake_clock(1.0))
    assert med == {"a": 1.0, "b": 1.0}
    assert calls == {"a": 3, "b": 3}
    ratio, med = deploy.median_ratio({"a": a, "b": b}, "a", "b", rounds=3, min_seconds=0.0, clock=_fake_clock(1.0))
    assert ratio == 1.0
    with pytest.raises(ValueError):
        deploy.median_ratio({"a": a}, "a", "c")
    with pytest.raises(ValueError):
        deploy.median_seconds({})


def test_pareto_front():
    latency = [1.0, 2.0, 3.0, 2.0, 0.5]
    acc = [0.7, 0.8, 0.75, 0.6, 0.7]
    # 2 is dominated by 1; 3 by 0 and 1; 0 by 4 (faster, same accuracy)
    assert deploy.pareto_front(latency, acc) == [1, 4]
    assert deploy.pareto_front([1.0, 1.0], [0.5, 0.5]) == [0, 1]  # ties dominate nobody
    with pytest.raises(ValueError):
        deploy.pareto_front([1.0], [0.5, 0.6])


def test_pad_tokenize_classify_accuracy():
    ids, mask = deploy.pad([[1, 2, 3], [4]])
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError):
        deploy.pad([])

    class Tok:
        def __call__(self, texts, truncation=True, max_length=None):
            out = [[101] + [len(w) for w in t.split()] + [102] for t in texts]
            if max_length is not None:
                out = [s if len(s) <= max_length else s[: max_length - 1] + [102] for s in out]
            return {"input_ids": out}

    seqs = deploy.tokenize(Tok(), ["a bb ccc", "dddd"], max_length=3)
    assert seqs == [[101, 1, 102], [101, 4, 102]]
    with pytest.raises(ValueError):
        deploy.tokenize(Tok(), ["a"], max_length=1)

    class Last(nn.Module):  # logits from the last real token: order- and padding-sensitive
        def forward(self, ids, mask):
            last = ids.gather(1, (mask.sum(1) - 1)[:, None]).float()
            return torch.cat([last, -last], dim=1)

    seqs = [[1, 5, 2], [3], [1, 2, 3, 4, 9], [7, 8]]
    logits = deploy.classify(Last(), seqs, batch_size=2)
    assert logits[:, 0].tolist() == [2.0, 3.0, 9.0, 8.0]
    assert deploy.accuracy(logits, torch.tensor([0, 0, 1, 0])) == 0.75

    class WithField(Last):  # a model output with a .logits field, as BertForSequenceClassification's
        def forward(self, ids, mask):
            from types import SimpleNamespace
            return SimpleNamespace(logits=super().forward(ids, mask))

    assert torch.equal(deploy.classify(WithField(), seqs, batch_size=3), logits)
    with pytest.raises(ValueError):
        deploy.accuracy(logits, torch.tensor([0, 1]))


def test_sentence_classifier_mean_pools_real_tokens():
    from wmbook.nn.bert import BertConfig, BertModel

    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=30, d_model=16, n_heads=2, n_layers=1, d_ff=32, n_ctx=16, dropout=0.0)).eval()
    head = nn.Linear(16, 2)
    clf = deploy.SentenceClassifier(enc, head).eval()
    ids, mask = deploy.pad([[1, 2, 3], [4, 5]])
    with torch.no_grad():
        both = clf(ids, mask)
        alone = clf(torch.tensor([[4, 5]]), torch.tensor([[1, 1]]))
        h = enc(torch.tensor([[4, 5]]), torch.tensor([[1, 1]])).last_hidden_state.mean(1)
    assert torch.allclose(both[1], alone[0], atol=1e-5)  # padding does not change a sentence's logits
    assert torch.allclose(alone, head(h), atol=1e-6)
    assert deploy.keys_values_bytes(clf, ids, mask) == 2 * 1 * 16 * ids.numel() * 4  # 2 (k, v) x layers x d x tokens x 4 B


def test_cache_bytes_and_generation_seconds():
    gpt = _gpt()
    with torch.no_grad():
        out = gpt(torch.zeros(1, 5, dtype=torch.long), use_cache=True)
    assert deploy.cache_bytes(out.past_key_values) == 2 * 2 * 16 * 5 * 4  # (k, v) x layers x d x tokens x 4 B
    with pytest.raises(ValueError):
        deploy.cache_bytes(None)
    ratio, med = deploy.generation_seconds(gpt, torch.zeros(1, 3, dtype=torch.long), 4, rounds=2,
                                           clock=_fake_clock(1.0))
    assert ratio == 1.0 and set(med) == {"no cache", "cache"}
    with pytest.raises(ValueError):
        deploy.generation_seconds(gpt, torch.zeros(1, 3, dtype=torch.long), 0)


def test_best_within_budget():
    rows = [{"name": "big", "latency_ms": 20.0, "quality": 0.76}, {"name": "small", "latency_ms": 1.0, "quality": 0.75},
            {"name": "same", "latency_ms": 2.0, "quality": 0.75}]
    assert deploy.best_within_budget(rows, 100)["name"] == "big"
    assert deploy.best_within_budget(rows, 5)["name"] == "small"  # tie on quality: the cheaper
    assert deploy.best_within_budget(rows, 0.5) is None
    with pytest.raises(ValueError, match="needs"):
        deploy.best_within_budget([{"latency_ms": 1.0}], 5)
