"""wmbook.lab.scaling, wmbook.lab.contrastive and wmbook.lab.lora (page 8.1): the scaling fit,
the toy CLIP's InfoNCE loss, LoRA's parameter count and the committed adaptation runs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.lab import contrastive as C
from wmbook.lab import lora as LR
from wmbook.lab import scaling as S

# --------------------------------------------------------------- scaling (8.1.1)


def test_power_law_values():
    assert S.power_law(100.0, 2.0, 10.0, 0.5) == pytest.approx(3.0)
    assert np.allclose(S.power_law([1.0, 4.0], 0.0, 8.0, 0.5), [8.0, 4.0])


@pytest.mark.parametrize("alpha", [0.08, 0.3, 0.7])
def test_the_fit_recovers_a_known_exponent(alpha):
    sizes = np.geomspace(1.5e4, 8e5, 6)
    table = S.synthetic_sweep(sizes, E=2.0, A=3.0 * sizes[0] ** alpha, alpha=alpha, noise=0.003, seeds=4, seed=1)
    n, mean, sem = S.mean_points(table)
    fit = S.fit_power_law(n, mean, sem)
    assert abs(fit.alpha - alpha) < 4 * fit.alpha_sd + 0.02, (fit.alpha, fit.alpha_sd)
    assert fit.dof == 3 and fit.n_points == 6 and fit.cov.shape == (3, 3)
    assert np.allclose(fit.predict(n), mean, atol=0.02)


def test_the_fit_without_noise_is_exact():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    fit = S.fit_power_law(n, S.power_law(n, 1.5, 40.0, 0.34))
    assert fit.alpha == pytest.approx(0.34, rel=1e-4)
    assert fit.E == pytest.approx(1.5, rel=1e-4) and fit.A == pytest.approx(40.0, rel=1e-3)


def test_pure_power_law_recovers_kaplan_form():
    n = np.geomspace(1e4, 1e7, 5)
    alpha, n_c = S.fit_pure_power_law(n, (8.8e13 / n) ** 0.076)
    assert alpha == pytest.approx(0.076, rel=1e-9) and n_c == pytest.approx(8.8e13, rel=1e-6)


def test_bad_points_are_refused():
    with pytest.raises(ValueError, match="3 distinct sizes"):
        S.fit_power_law([1, 2, 2], [3, 2, 1])
    with pytest.raises(ValueError, match="1-D"):
        S.fit_power_law([1, 2, 3], [3, 2])
    with pytest.raises(ValueError, match="sigma"):
        S.fit_power_law([1, 2, 3], [3, 2, 1], sigma=[1, 0, 1])
    with pytest.raises(ValueError, match="2 seeds"):
        S.mean_points({1.0: [2.0], 2.0: [1.0, 1.1]})
    with pytest.raises(ValueError, match="no runs"):
        S.seed_table([])


def test_bootstrap_alpha_spreads_around_the_truth():
    sizes = np.geomspace(1e4, 1e6, 5)
    table = S.synthetic_sweep(sizes, 2.0, 30.0, 0.3, noise=0.005, seeds=3, seed=2)
    boot = S.bootstrap_alpha(table, n_boot=60, seed=0)
    assert len(boot) >= 50
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert lo < 0.3 + 0.05 and hi > 0.3 - 0.05 and hi - lo < 0.3


def test_seed_table_and_non_embedding_on_the_committed_sweep():
    from wmbook.lab.scale import load_size_sweep

    sweep = load_size_sweep()
    table = S.seed_table(sweep.log["runs"])
    assert list(table) == [15216.0, 55008.0, 208320.0, 809856.0] and all(len(v) == 3 for v in table.values())
    cfg = sweep.models[16].cfg
    assert S.non_embedding(15216, 16, cfg.vocab_size, cfg.n_ctx) == 15216 - (65 + 64) * 16
    with pytest.raises(ValueError, match="embeddings"):
        S.non_embedding(100, 16, 65, 64)


# --------------------------------------------------------------- contrastive (8.1.2)


def _info_nce_reference(u: np.ndarray, v: np.ndarray, scale: float) -> float:
    """The formula written out: -1/(2B) sum_i [log softmax_j s_ij at i + log softmax_j s_ji at i]."""
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    s = scale * u @ v.T
    total = 0.0
    for i in range(len(s)):
        total += s[i, i] - math.log(sum(math.exp(x) for x in s[i, :]))
        total += s[i, i] - math.log(sum(math.exp(x) for x in s[:, i]))
    return -total / (2 * len(s))


def test_info_nce_matches_the_written_out_formula():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    got = C.info_nce(u, v, 3.0).item()
    assert abs(got - _info_nce_reference(u.numpy(), v.numpy(), 3.0)) < 1e-12
    # not symmetric in general: the two directions differ, their mean is what is returned
    s = 3.0 * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T
    t = torch.arange(7)
    assert F.cross_entropy(s, t).item() != pytest.approx(F.cross_entropy(s.T, t).item())


def test_info_nce_limits_and_errors():
    u = torch.eye(4)
    assert C.info_nce(u, u, 100.0).item() < 1e-6  # perfect pairs, sharp: loss -> 0
    assert C.info_nce(u, u, 0.0).item() == pytest.approx(math.log(4))  # no signal: log B
    with pytest.raises(ValueError, match="one shape"):
        C.info_nce(torch.zeros(3, 2), torch.zeros(2, 2), 1.0)


def test_captions_and_templates():
    caps = C.captions(("a {}", "the digit {}"))
    assert len(caps) == 20 and caps[0] == "a zero" and caps[15] == "the digit seven"
    with pytest.raises(ValueError, match="template"):
        C.captions(("no slot",))


def test_caption_vectors_are_unit_minilm_vectors():
    v = C.caption_vectors((C.HELD_OUT_TEMPLATE,))
    assert v.shape == (10, 1, 384)
    assert torch.allclose(v.norm(dim=-1), torch.ones(10, 1), atol=1e-5)


def test_train_clip_learns_a_synthetic_pairing():
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.randn(10, 2, 16, generator=g), dim=-1)
    y = torch.arange(200) % 10
    X = F.one_hot(y, 10).float() + 0.05 * torch.randn(200, 10, generator=g)
    run = C.train_clip(X, y, text, C.ClipRecipe(steps=150, batch_size=32, d_hidden=32), seed=0)
    assert np.mean(run.losses[-10:]) < run.losses[0]
    pred = C.zero_shot_predict(run.encoder, X, C.class_prompts(text))
    assert (pred == y).float().mean() > 0.9
    with pytest.raises(ValueError, match="n_templates"):
        C.train_clip(X, y, text[0])


def test_class_prompts_and_probe():
    p = C.class_prompts(torch.randn(10, 3, 8))
    assert torch.allclose(p.norm(dim=-1), torch.ones(10), atol=1e-6)
    X = torch.eye(10).repeat(3, 1)
    y = torch.arange(10).repeat(3)
    assert C.linear_probe_accuracy(X, y, X, y) == 100.0


# --------------------------------------------------------------- LoRA (8.1.3)


def test_lora_parameter_formula():
    assert LR.lora_parameters(6, 384, 8) == 2 * 2 * 6 * 384 * 8 == 73728
    assert LR.lora_parameters(6, 384, 4, n_matrices=1) == 2 * 6 * 384 * 4
    with pytest.raises(ValueError, match="positive"):
        LR.lora_parameters(6, 384, 0)


def test_the_formula_equals_peft_count():
    recipe = LR.LoRARecipe()
    model = LR.build_model("lora", recipe, seed=0)
    peft_trainable, _ = model.encoder.get_nb_trainable_parameters()
    assert peft_trainable == LR.lora_parameters(6, 384, recipe.r) == 73728
    head = 384 * recipe.n_classes + recipe.n_classes
    assert LR.trainable_parameters(model) == peft_trainable + head
    state = LR.lora_state(model)
    assert sum(v.numel() for v in state.values()) == peft_trainable + head
    assert LR.state_bytes(state) > 4 * (peft_trainable + head)
    frozen = LR.build_model("frozen", recipe, seed=0)
    assert LR.trainable_parameters(frozen) == head
    with pytest.raises(ValueError, match="no LoRA"):
        LR.lora_state(frozen)
    with pytest.raises(ValueError, match="method"):
        LR.build_model("adapter", recipe, 0)


def test_batches_cover_every_row_once():
    b = LR.batches(37, 16, seed=1, epoch=0)
    assert [len(x) for x in b] == [16, 16, 5] and sorted(sum(b, [])) == list(range(37))
    assert b != LR.batches(37, 16, seed=1, epoch=1)


def test_summary_means_and_sds():
    recs = [{"method": "lora", "seed": s, "trainable": 5, "dev_acc": a, "test_acc": a + 1} for s, a in enumerate([60, 62, 64])]
    (row,) = LR.summary(recs)
    assert row["dev_mean"] == 62 and row["dev_sd"] == pytest.approx(2.0) and row["test_mean"] == 63


def test_save_and_load_a_short_run(tmp_path):
    from wmbook.lab.classify import load_poem_sentiment

    data = load_poem_sentiment()
    data = {k: v[:20] for k, v in data.items()}
    model, rec = LR.train_adaptation("lora", data, LR.LoRARecipe(), seed=0, stop_after=2)
    assert len(rec["losses"]) == 2 and 0 <= rec["dev_acc"] <= 100
    out = tmp_path / "l.pt"
    sha = LR.save_lora_runs(out, [rec], model, LR.LoRARecipe(), {"steps": 2})
    runs = LR.load_lora_runs(out, sha)
    assert runs.log["runs"][0]["losses"] == rec["losses"] and runs.recipe == LR.LoRARecipe()
    log = json.loads(out.with_suffix(".json").read_text())
    log["sha256"] = "0" * 64
    out.with_suffix(".json").write_text(json.dumps(log))
    with pytest.raises(CheckpointError):
        LR.load_lora_runs(out, sha)


def test_the_committed_runs_load_and_are_complete():
    runs = LR.load_lora_runs()
    assert file_sha256(LR.LORA_FILE) == LR.LORA_SHA256
    recs = runs.log["runs"]
    assert {(r["method"], r["seed"]) for r in recs} == {(m, s) for m in LR.METHODS for s in range(3)}
    lora = [r for r in recs if r["method"] == "lora"]
    assert all(r["trainable"] == LR.lora_parameters(6, 384, runs.recipe.r) + 384 * 4 + 4 for r in lora)


def test_no_degree_of_freedom_gives_an_infinite_covariance():
    n = np.array([1e4, 1e5, 1e6])
    fit = S.fit_power_law(n, S.power_law(n, 2.0, 30.0, 0.3) + np.array([0.001, -0.001, 0.0]))
    assert fit.dof == 0 and math.isinf(fit.alpha_sd) and np.all(np.isinf(fit.cov))
