"""Transformer, BERT and GPT (pages 3.1-3.3, 5.1, 5.3): parity with Hugging Face, caches, masks, training."""
import math

import pytest
import torch
import torch.nn.functional as F

from wmbook.nn.bert import BertConfig, BertModel, load_hf_bert_state_dict, minilm_path, minilm_tokenizer
from wmbook.nn.bert_heads import BertForPreTraining, BertForSequenceClassification, mask_tokens
from wmbook.nn.gpt import GPT, GPTConfig, load_hf_gpt2_state_dict
from wmbook.nn.sampling import generate
from wmbook.nn.sampling import filter_logits
from wmbook.nn.decoding import beam_search, greedy_decode
from wmbook.nn.transformer import EncoderDecoder, TransformerConfig, sinusoidal_positions

import transformers  # a hard dependency: imported, never skipped
from _fixtures import one_thread  # noqa: F401  (autouse: every test on one thread)
PAD, BOS, EOS = 0, 1, 2


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def max_diff(a, b):
    return (a - b).abs().max().item()


# ---------------------------------------------------------------- BERT (page 3.2)

@pytest.fixture(scope="module")
def minilm_pair():
    ours = BertModel.from_minilm()
    ref = transformers.BertModel.from_pretrained(str(minilm_path()), attn_implementation="eager").eval()
    return ours, ref, minilm_tokenizer()


def test_bert_matches_hugging_face_on_a_padded_batch(minilm_pair):
    ours, ref, tok = minilm_pair
    sentences = [
        "The cat sat.",
        "Working memory holds only a few items at once.",
        "Attention reads what it needs.",
    ]
    batch = tok(sentences, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()  # (B, T)
    assert (~real).any(), "the batch should contain padding"
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        want = ref(**batch, output_attentions=True, output_hidden_states=True)
    assert max_diff(got.last_hidden_state[real], want.last_hidden_state[real]) <= 1e-4
    assert max_diff(got.pooler_output, want.pooler_output) <= 1e-4
    assert len(got.attentions) == len(want.attentions) == 6
    for a, b in zip(got.attentions, want.attentions):
        assert a.shape == (3, 12, real.shape[1], real.shape[1])
        assert max_diff(a, b) <= 1e-4
    for h, g in zip(got.hidden_states, want.hidden_states):
        assert max_diff(h[real], g[real]) <= 1e-4


def test_bert_loading_is_strict(minilm_pair):
    from safetensors.torch import load_file

    ours = minilm_pair[0]
    sd = load_file(str(minilm_path() / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected.*mystery"):
        load_hf_bert_state_dict(ours, {**sd, "mystery.weight": torch.zeros(1)})
    sd.pop("pooler.dense.bias")
    with pytest.raises(ValueError, match="missing.*pooler.bias"):
        load_hf_bert_state_dict(ours, sd)


def test_bert_pretraining_heads_match_hugging_face():
    hf_cfg = transformers.BertConfig(vocab_size=53, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16)
    ref = transformers.BertForPreTraining(hf_cfg).eval()
    with torch.no_grad():  # random biases and LayerNorms too, so the mapping is really tested
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ours = BertForPreTraining(BertConfig.from_hf(hf_cfg)).eval()
    load_hf_bert_state_dict(ours, ref.state_dict())
    ids = torch.randint(0, 53, (2, 9))
    types = torch.tensor([[0] * 5 + [1] * 4] * 2)
    with torch.no_grad():
        got, want = ours(ids, token_type_ids=types), ref(ids, token_type_ids=types)
    assert max_diff(got.prediction_logits, want.prediction_logits) <= 1e-4
    assert max_diff(got.seq_relationship_logits, want.seq_relationship_logits) <= 1e-4


def test_mask_tokens_follows_80_10_10():
    g = torch.Generator().manual_seed(0)
    V, MASK, specials = 1000, 103, [0, 101, 102]
    ids = torch.randint(200, V, (64, 512), generator=g)
    ids[:, 0], ids[:, -1], ids[:, -40:-1] = 101, 102, 0  # [CLS] ... [SEP], padding before it
    inputs, labels = mask_tokens(ids, V, MASK, specials, prob=0.15, generator=g)
    special = torch.isin(ids, torch.tensor(specials))
    selected = labels != -100
    assert not (selected & special).any() and torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])  # unselected tokens are never touched
    n = selected.sum().item()
    assert abs(n / (~special).sum().item() - 0.15) < 0.01
    masked = (inputs[selected] == MASK).float().mean().item()
    kept = (inputs[selected] == ids[selected]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.015  # random ids rarely equal the original
    assert abs(1 - masked - kept - 0.1) < 0.015


# ---------------------------------------------------------------- GPT (pages 3.3, 5.3)

@pytest.fixture(scope="module")
def gpt_pair():
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=101, n_positions=32,
                                     bos_token_id=None, eos_token_id=None, attn_implementation="eager")
    ref = transformers.GPT2LMHeadModel(hf_cfg).eval()
    assert ref.config._attn_implementation == "eager"
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return GPT.from_hf(ref), ref


def test_gpt_matches_hugging_face_gpt2(gpt_pair):
    ours, ref = gpt_pair
    idx = torch.randint(0, 101, (3, 20))
    with torch.no_grad():
        got, want = ours(idx), ref(idx, output_attentions=True)
    assert max_diff(got.logits, want.logits) <= 1e-4
    assert len(got.attentions) == 2
    for a, b in zip(got.attentions, want.attentions):
        assert a.shape == (3, 4, 20, 20) and max_diff(a, b) <= 1e-4
    assert ours.lm_head.weight is ours.wte.weight
    again = GPT.from_hf(ref.state_dict(), GPTConfig.from_hf(ref.config))  # from a bare state dict
    assert torch.equal(again(idx).logits, got.logits)
    with pytest.raises(ValueError, match="not mapped"):
        extra = {"transformer.h.7.attn.c_attn.weight": torch.zeros(1)}
        load_hf_gpt2_state_dict(GPT(ours.cfg), {**ref.state_dict(), **extra})


def test_kv_cache_gives_the_same_logits_and_tokens(gpt_pair):
    model = gpt_pair[0]
    idx = torch.randint(0, 101, (2, 24))
    with torch.no_grad():
        full = model(idx).logits
        out = model(idx[:, :7], use_cache=True)
        pieces, past = [out.logits], out.past_key_values
        assert past[0][0].shape == (2, 4, 7, 16)  # (B, H, T, d_head)
        for t in range(7, 24):
            out = model(idx[:, t:t + 1], past_key_values=past, use_cache=True)
            pieces.append(out.logits)
            past = out.past_key_values
    assert out.attentions[0].shape == (2, 4, 1, 24)
    assert max_diff(torch.cat(pieces, dim=1), full) <= 1e-5
    prompt = idx[:, :5]
    cached = generate(model, prompt, 20, temperature=0, use_cache=True)
    assert torch.equal(cached, generate(model, prompt, 20, temperature=0, use_cache=False))
    assert cached.shape == (2, 25) and torch.equal(cached[:, :5], prompt)
    ref = gpt_pair[1].generate(prompt, max_new_tokens=20, do_sample=False)  # no EOS: never stops early
    assert torch.equal(cached, ref)


def test_gpt_fused_attention_gives_the_same_logits_cache_and_gradients(gpt_pair):
    """need_weights=False (PyTorch's fused kernel) computes what the written-out formula computes."""
    model = gpt_pair[0]
    idx = torch.randint(0, 101, (2, 24))
    with torch.no_grad():
        full = model(idx)
        fused = model(idx, need_weights=False)
        assert fused.attentions is None and len(full.attentions) == 2
        assert max_diff(fused.logits, full.logits) <= 1e-5
        assert max_diff(fused.logits, gpt_pair[1](idx).logits) <= 1e-4  # and Hugging Face's
        out = model(idx[:, :7], use_cache=True, need_weights=False)  # with a KV cache
        pieces, past = [out.logits], out.past_key_values
        for t in range(7, 24):
            out = model(idx[:, t:t + 1], past_key_values=past, use_cache=True, need_weights=False)
            pieces.append(out.logits)
            past = out.past_key_values
    assert max_diff(torch.cat(pieces, dim=1), full.logits) <= 1e-5
    grads = []
    for need_weights in (True, False):
        model.zero_grad()
        F.cross_entropy(model(idx, need_weights=need_weights).logits[:, :-1].flatten(0, 1),
                        idx[:, 1:].flatten()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    model.zero_grad()
    for name in grads[0]:
        assert max_diff(grads[0][name], grads[1][name]) <= 1e-6, name


def test_gpt_dropout_is_on_the_weights_on_both_paths():
    model = GPT(GPTConfig(vocab_size=50, n_ctx=16, d_model=32, n_heads=4, n_layers=2, dropout=0.3)).train()
    idx = torch.randint(0, 50, (3, 12))
    torch.manual_seed(5)
    explicit = model(idx).logits
    torch.manual_seed(5)
    fused = model(idx, need_weights=False).logits  # the CPU kernel draws the same dropout masks
    assert max_diff(explicit, fused) <= 1e-5
    assert max_diff(explicit, model.eval()(idx).logits) > 1e-3  # dropout did act in training


def test_sampling_filters_and_generator():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    p = logits.softmax(-1)[0]  # 0.64, 0.24, 0.09, 0.03
    assert torch.isinf(filter_logits(logits, top_p=0.5)).tolist() == [[False, True, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=float(p[0] + 0.01))).tolist() == [[False, False, True, True]]
    model = GPT(GPTConfig(vocab_size=50, n_ctx=16, d_model=32, n_heads=2, n_layers=1)).eval()
    prompt = torch.tensor([[1, 2, 3]])
    runs = [
        generate(model, prompt, 8, top_k=10, top_p=0.9, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert torch.equal(*runs)


def test_gpt_cannot_see_the_future():
    model = GPT(GPTConfig(vocab_size=50, n_ctx=16, d_model=32, n_heads=4, n_layers=2, dropout=0.0)).eval()
    a = torch.randint(0, 50, (1, 10))
    b = a.clone()
    b[0, 7] = (a[0, 7] + 1) % 50  # change a "future" token
    with torch.no_grad():
        la, lb = model(a).logits, model(b).logits
    assert max_diff(la[:, :7], lb[:, :7]) == 0.0
    assert max_diff(la[:, 7:], lb[:, 7:]) > 1e-4

    def unmasked(idx):  # the same blocks, called without the causal mask
        x = model.wte(idx) + model.wpe(torch.arange(idx.shape[1]))
        for block in model.blocks:
            x = block(x, mask=None).hidden
        return model.lm_head(model.ln_f(x))

    with torch.no_grad():
        assert max_diff(unmasked(a)[:, :7], unmasked(b)[:, :7]) > 1e-4


# ---------------------------------------------------------------- Encoder-decoder (pages 3.1, 5.1)

def test_sinusoidal_positions_formula():
    pe = sinusoidal_positions(50, 16)
    pos, i = 13, 3
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)


def tiny_seq2seq(**kw):
    cfg = dict(vocab_size=12, d_model=32, n_heads=2, d_ff=64, n_layers=2, n_ctx=16, dropout=0.0)
    return EncoderDecoder(TransformerConfig(**{**cfg, **kw}))


def copy_batch():
    g = torch.Generator().manual_seed(0)
    lengths = [5, 6, 4, 6, 3, 5, 6, 4]
    src = torch.full((8, 6), PAD)
    tgt = torch.full((8, 8), PAD)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(3, 12, (n,), generator=g)
        tgt[i, 0], tgt[i, 1:n + 1], tgt[i, n + 1] = BOS, src[i, :n], EOS
    return src, tgt


@pytest.mark.parametrize("norm_first,positions", [(False, "sinusoidal"), (True, "learned")])
def test_encoder_decoder_shapes_and_source_padding(norm_first, positions):
    model = tiny_seq2seq(norm_first=norm_first, positions=positions).eval()
    src, tgt = copy_batch()
    out = model(src, tgt[:, :-1])
    assert out.logits.shape == (8, 7, 12)
    assert len(out.encoder_attentions) == len(out.decoder_self_attentions) == len(out.cross_attentions) == 2
    assert out.encoder_attentions[0].shape == (8, 2, 6, 6)
    assert out.decoder_self_attentions[0].shape == (8, 2, 7, 7)
    assert out.cross_attentions[0].shape == (8, 2, 7, 6)
    assert out.cross_attentions[0][src[:, None, None, :].expand(-1, 2, 7, -1) == PAD].abs().max() == 0
    assert out.decoder_self_attentions[1][0, :, 2, 3:].abs().max() == 0  # causal: no weight on the future
    padded = torch.cat([src, torch.full((8, 5), PAD)], dim=1)  # five more pad tokens
    with torch.no_grad():
        assert max_diff(model(padded, tgt[:, :-1]).logits, out.logits) <= 1e-5


def test_encoder_decoder_overfits_a_copy_batch_and_decodes_it():
    torch.manual_seed(0)
    model = tiny_seq2seq()
    src, tgt = copy_batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        logits = model(src, tgt[:, :-1]).logits  # teacher forcing: predict tgt[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses) < 0.05 and losses[-1] < 0.05
    model.eval()
    decoded = greedy_decode(model, src, BOS, EOS, max_len=7)
    assert torch.equal(decoded, tgt)
    for i, n in enumerate([5, 6, 4]):
        one = src[i:i + 1, :n]
        beam1 = beam_search(model, one, BOS, EOS, max_len=7, beam_size=1)
        assert torch.equal(beam1.tokens, greedy_decode(model, one, BOS, EOS, max_len=7))
        beam4 = beam_search(model, one, BOS, EOS, max_len=7, beam_size=4, length_penalty=1.0)
        assert torch.equal(beam4.tokens, tgt[i:i + 1, : n + 2])
        assert beam4.hypotheses[0][1] == beam4.score >= beam4.hypotheses[-1][1]


def test_beam_search_untrained_stops_at_max_len():
    model = tiny_seq2seq().eval()
    src = torch.tensor([[3, 4, 5]])
    for k in (1, 3):
        res = beam_search(model, src, BOS, EOS, max_len=5, beam_size=k)
        assert res.tokens.shape[1] <= 6 and res.tokens[0, 0] == BOS


# ---------------------------------------------------------------- errors and gradients

def test_helpful_errors():
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        GPTConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        BertConfig(d_model=30, n_heads=4)
    gpt = GPT(GPTConfig(vocab_size=50, n_ctx=8, d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(ValueError, match=r"token id 50 .*vocab_size=50"):
        gpt(torch.tensor([[1, 50]]))
    with pytest.raises(ValueError, match=r"exceeds n_ctx=8.*last 8 tokens"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="shape \\(batch, seq\\)"):
        gpt(torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="use_cache=False"):
        generate(gpt, torch.zeros(1, 4, dtype=torch.long), 10)
    assert generate(gpt, torch.zeros(1, 4, dtype=torch.long), 10, use_cache=False).shape == (1, 14)
    s2s = tiny_seq2seq()
    with pytest.raises(ValueError, match="vocab_size=12"):
        s2s(torch.tensor([[3, 12]]), torch.tensor([[BOS]]))
    with pytest.raises(ValueError, match="longer than n_ctx=16"):
        s2s(torch.full((1, 17), 3), torch.tensor([[BOS]]))
    bert = BertModel(BertConfig(vocab_size=40, d_model=16, n_heads=2, n_layers=1, d_ff=32, n_ctx=8))
    with pytest.raises(ValueError, match="vocab_size=40"):
        bert(torch.tensor([[1, 40]]))
    with pytest.raises(ValueError, match="longer than n_ctx=8.*truncat"):
        bert(torch.ones(1, 9, dtype=torch.long))


def _assert_all_grads(model, loss, allowed_none=()):
    loss.backward()
    none = [n for n, p in model.named_parameters() if p.grad is None and n not in allowed_none]
    assert not none, f"no gradient reached {none}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_gradients_reach_every_parameter():
    s2s = tiny_seq2seq(dropout=0.1, positions="learned").train()
    src, tgt = copy_batch()
    _assert_all_grads(s2s, s2s(src, tgt).logits.logsumexp(-1).mean())

    gpt = GPT(GPTConfig(vocab_size=50, n_ctx=16, d_model=32, n_heads=4, n_layers=2, dropout=0.1)).train()
    idx = torch.randint(0, 50, (2, 12))
    logits = gpt(idx).logits
    _assert_all_grads(gpt, F.cross_entropy(logits[:, :-1].flatten(0, 1), idx[:, 1:].flatten()))

    cfg = BertConfig(vocab_size=40, d_model=16, n_heads=2, n_layers=2, d_ff=32, n_ctx=12)
    ids = torch.randint(5, 40, (2, 10))
    pre = BertForPreTraining(cfg).train()
    inputs, labels = mask_tokens(ids, 40, mask_id=4, special_ids=[0], prob=0.5)
    out = pre(inputs, torch.ones_like(ids), labels=labels, next_sentence_label=torch.tensor([0, 1]))
    _assert_all_grads(pre, out.loss)

    clf = BertForSequenceClassification(cfg, num_labels=3).train()
    _assert_all_grads(clf, clf(ids, labels=torch.tensor([0, 2])).loss)
    # BertModel alone with a loss on the tokens: the pooler is unused, so it alone gets no gradient
    bert = BertModel(cfg)
    loss = bert(ids).last_hidden_state.pow(2).mean()
    _assert_all_grads(bert, loss, allowed_none=("pooler.weight", "pooler.bias"))
