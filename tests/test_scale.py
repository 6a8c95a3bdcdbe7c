"""wmbook.lab.scale and wmbook.data.landmarks (page 1.1): the landmark table, 6ND, the size sweep."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _fixtures import assert_refuses_bad_logs
from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.data.landmarks import LANDMARKS_FILE, NUMERIC, load_landmark_models
from wmbook.lab.scale import (SIZES_FILE, compute_check, gpt_parameters, load_size_sweep, save_size_sweep, six_nd,
                              sweep_summary, train_size_sweep)
from wmbook.nn.gpt import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------- the landmark table

def test_the_table_has_at_least_15_cited_models_from_2017_on():
    rows = load_landmark_models()
    assert len(rows) >= 15
    assert rows[0]["year"] == 2017 and [r["year"] for r in rows] == sorted(r["year"] for r in rows)
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(encoding="utf-8"), flags=re.M))
    for r in rows:
        assert r["source"] in keys, f"{r['model']}: {r['source']} is not in references.bib"
        for col in NUMERIC:
            v = r[col]
            assert math.isnan(v) or v > 0, (r["model"], col, v)
            where = {"params": "params_where", "tokens": "tokens_where", "compute_flops": "compute_where",
                     "context": "context_where"}.get(col)
            if where and not math.isnan(v):
                assert r[where].strip(), f"{r['model']}: {col} is given without saying where the source states it"
        assert r["open_weights"] in (True, False, None)
    assert len({r["model"] for r in rows}) == len(rows)


def test_the_loader_parses_empty_cells_as_nan_and_refuses_rows_without_a_source(tmp_path):
    header = LANDMARKS_FILE.read_text(encoding="utf-8").splitlines()[0]
    good = tmp_path / "t.csv"
    good.write_text(header + "\nM,2020,1e9,,,,,no,key,a,,,,\n", encoding="utf-8")
    (row,) = load_landmark_models(good)
    assert row["params"] == 1e9 and math.isnan(row["tokens"]) and row["open_weights"] is False and row["year"] == 2020
    bad = tmp_path / "b.csv"
    bad.write_text(header + "\nM,2020,1e9,,,,,no,,a,,,,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no source"):
        load_landmark_models(bad)
    odd = tmp_path / "o.csv"
    odd.write_text(header + "\nM,2020,1e9,,,,,maybe,key,a,,,,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="open_weights must be 'yes', 'no' or empty, got 'maybe'"):
        load_landmark_models(odd)


def test_six_nd_and_the_compute_check():
    assert six_nd(175e9, 300e9) == pytest.approx(3.15e23)
    with pytest.raises(ValueError):
        six_nd(0, 1)
    rows = [{"model": "a", "params": 2.0, "tokens": 3.0, "compute_flops": 72.0},
            {"model": "b", "params": 2.0, "tokens": math.nan, "compute_flops": 1.0},
            {"model": "c", "params": 2.0, "tokens": 3.0, "compute_flops": None}]
    (a,) = compute_check(rows)
    assert a["model"] == "a" and a["six_nd"] == 36.0 and a["ratio"] == 2.0
    published = compute_check(load_landmark_models())
    assert len(published) >= 3 and all(0.5 < r["ratio"] < 2 for r in published)


@pytest.mark.parametrize("cfg", [GPTConfig(vocab_size=65, n_ctx=64, d_model=128, n_heads=4, n_layers=4),
                                 GPTConfig(vocab_size=50, n_ctx=30, d_model=24, n_heads=2, n_layers=3, d_ff=40,
                                           tie_weights=False)])
def test_gpt_parameters_counts_what_the_model_holds(cfg):
    assert gpt_parameters(cfg) == sum(p.numel() for p in GPT(cfg).parameters())


# --------------------------------------------------------------- the size sweep

def _corpus():
    from wmbook.data.loaders import CharCorpus
    text = "".join(chr(97 + (i * 7 + i // 13) % 11) for i in range(6000))
    vocab = sorted(set(text))
    return CharCorpus(text=text, train=text[:5000], val=text[5000:], vocab=vocab)


def test_sweep_summary_is_mean_and_sample_sd_per_width():
    runs = [{"d_model": 8, "seed": s, "parameters": 10, "tokens": 100, "val_loss": v} for s, v in enumerate((1.0, 2.0, 3.0))]
    runs.append({"d_model": 4, "seed": 0, "parameters": 5, "tokens": 100, "val_loss": 4.0})
    small, big = sweep_summary(runs)
    assert (small["d_model"], small["seeds"], small["val_mean"]) == (4, 1, 4.0) and math.isnan(small["val_sd"])
    assert (big["val_mean"], big["val_sd"], big["six_nd"]) == (2.0, 1.0, 6000.0)


def test_a_tiny_sweep_trains_saves_and_loads(tmp_path):
    runs = train_size_sweep(_corpus(), widths=(8, 16), seeds=(0, 1), steps=4)
    assert [(r.record["d_model"], r.record["seed"]) for r in runs] == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert all(r.record["tokens"] == 4 * 12 * 64 and r.record["val_loss"] > 0 for r in runs)
    assert runs[0].record["val_loss"] != runs[1].record["val_loss"]  # seeds differ
    path = tmp_path / "s.pt"
    sha = save_size_sweep(path, runs, steps=4)
    loaded = load_size_sweep(path, sha256=sha)
    assert sorted(loaded.models) == [8, 16] and len(loaded.log["runs"]) == 4
    for d, model in loaded.models.items():  # the stored model is the first seed's
        first = next(r for r in runs if r.record["d_model"] == d)
        for (k, v), w in zip(model.state_dict().items(), first.model.state_dict().values()):
            assert torch.equal(v, w), k
    assert_refuses_bad_logs(load_size_sweep, path, "train_char_gpt_sizes")


def test_stopping_early_runs_the_start_of_the_same_schedule():
    full = train_size_sweep(_corpus(), widths=(8,), seeds=(0,), steps=6)[0].record
    start = train_size_sweep(_corpus(), widths=(8,), seeds=(0,), steps=6, stop_after=3)[0].record
    assert start["tokens"] == 3 * 12 * 64
    assert start["evals"][0] == full["evals"][0]


def test_the_committed_sweep_loads_and_holds_every_run():
    sweep = load_size_sweep()  # sha256-checked
    summary = sweep_summary(sweep.log["runs"])
    assert [s["seeds"] for s in summary] == [3] * len(summary) and len(summary) == 4
    assert file_sha256(SIZES_FILE) == sweep.log["sha256"]


@pytest.mark.slow
def test_the_script_reproduces_the_committed_start(tmp_path):
    """train_char_gpt_sizes.py --stop-after 100 --widths 16 --seeds 1: the first run's records at
    steps 0 and 100 (train and validation estimates on fixed batches) as committed, rtol 1e-3."""
    out = _run("train_char_gpt_sizes.py", "--stop-after", "100", "--widths", "16", "--seeds", "1", out=tmp_path / "s.pt")
    _assert_same_start(load_size_sweep(out, sha256=None).log, load_size_sweep().log)


def _run(script: str, *args: str, out: Path) -> Path:
    """Run ``scripts/<script> args --out out`` in a fresh interpreter; return ``out``."""
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args, "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def _assert_same_start(got: dict, want: dict) -> None:
    """The first run's loss estimates at steps 0 and 100 of log ``got`` equal those of ``want``, rtol 1e-3."""
    got, want = got["runs"][0]["evals"], want["runs"][0]["evals"]
    assert [e["step"] for e in got] == [0, 100]
    for g, w in zip(got, want):
        assert g["step"] == w["step"]
        for key in ("train_loss", "val_loss"):
            assert g[key] == pytest.approx(w[key], rel=1e-3)


def test_score_false_skips_the_validation_loss():
    (run,) = train_size_sweep(_corpus(), widths=(8,), seeds=(0,), steps=2, score=False)
    assert run.record["val_loss"] is None and run.record["evals"]


# --------------------------------------------------------------- the (N, D) sweep of page 8.1

def test_the_scale_sweep_trains_every_width_at_every_budget():
    from wmbook.lab.scale import train_scale_sweep

    runs = train_scale_sweep(_corpus(), widths=(8, 16), steps=(3, 6), seed=0)
    recs = [r.record for r in runs]
    assert [(r["steps"], r["d_model"]) for r in recs] == [(3, 8), (3, 16), (6, 8), (6, 16)]
    assert all(r["tokens"] == r["steps"] * 12 * 64 and r["seed"] == 0 and r["val_loss"] > 0 for r in recs)
    vocab = len(_corpus().vocab)
    assert all(r["non_embedding"] == r["parameters"] - (vocab + 64) * r["d_model"] for r in recs)
    # the same width and seed with another budget: the same start, another schedule, another end
    assert recs[0]["evals"][0] == recs[2]["evals"][0] and recs[0]["val_loss"] != recs[2]["val_loss"]
    for bad in ((), (6, 3), (3, 3), (0, 2)):
        with pytest.raises(ValueError, match="increasing positive"):
            train_scale_sweep(_corpus(), widths=(8,), steps=bad)


def test_save_keeps_only_the_asked_models_and_the_log_of_every_run(tmp_path):
    from wmbook.lab.scale import load_scale_sweep, scale_table, train_scale_sweep

    runs = train_scale_sweep(_corpus(), widths=(8, 12), steps=(2, 4), seed=1)
    path = tmp_path / "scale.pt"
    sha = save_size_sweep(path, runs, 2, {"budgets": [2, 4]}, keep=(8,))
    loaded = load_scale_sweep(path, sha256=sha)
    assert list(loaded.models) == [8] and len(loaded.log["runs"]) == 4 and loaded.log["budgets"] == [2, 4]
    assert loaded.log["recipe"]["lr_decay_steps"] == 2 and loaded.log["recipe"]["seed"] == 1
    for v, w in zip(loaded.models[8].state_dict().values(), runs[0].model.state_dict().values()):
        assert torch.equal(v, w)
    with pytest.raises(ValueError, match="names none of the trained widths"):
        save_size_sweep(tmp_path / "x.pt", runs, 2, keep=(64,))
    with pytest.raises(CheckpointError, match="sha256"):
        load_scale_sweep(path, sha256="0" * 64)
    with pytest.raises(CheckpointError, match="not recorded yet"):
        load_scale_sweep(path, sha256="")
    table = scale_table(loaded.log["runs"])
    assert [(r["tokens"], r["d_model"]) for r in table] == [(2 * 768, 8), (2 * 768, 12), (4 * 768, 8), (4 * 768, 12)]
    assert all(r["six_nd"] == 6 * r["parameters"] * r["tokens"] for r in table)


def test_scale_table_refuses_an_unscored_log():
    from wmbook.lab.scale import scale_table

    run = {"d_model": 8, "parameters": 10, "non_embedding": 5, "tokens": 100, "steps": 2, "val_loss": None}
    with pytest.raises(ValueError, match=r"lacks \['val_loss'\]"):
        scale_table([run])


def test_the_committed_scale_sweep_loads_and_holds_every_run():
    from wmbook.lab.scale import (SCALE_FILE, SCALE_STEPS, SCALE_TOKENS, SCALE_WIDTHS, load_scale_sweep,
                                  scale_table)

    sweep = load_scale_sweep()  # sha256-checked, weights and log
    table = scale_table(sweep.log["runs"])
    assert len(table) == len(SCALE_WIDTHS) * len(SCALE_STEPS)
    assert sorted({r["tokens"] for r in table}) == list(SCALE_TOKENS)
    assert sorted({r["d_model"] for r in table}) == list(SCALE_WIDTHS)
    assert list(sweep.models) == [min(SCALE_WIDTHS)] and file_sha256(SCALE_FILE) == sweep.log["sha256"]
    assert (sweep.log["budgets"], sweep.log["widths"], sweep.log["seed"], sweep.log["threads"]) == \
        (list(SCALE_STEPS), list(SCALE_WIDTHS), 0, 1)
    assert SCALE_FILE.stat().st_size < 5 * 2**20
    # the script's defaults are the committed run's
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_char_gpt_scale as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    args = script.parser().parse_args([])
    assert (args.steps, args.widths, args.seed, args.threads, args.out) == \
        (max(SCALE_STEPS), list(SCALE_WIDTHS), 0, 1, SCALE_FILE)


@pytest.mark.slow
def test_the_scale_script_reproduces_the_committed_start(tmp_path):
    """train_char_gpt_scale.py --widths 32 --budgets 250 --stop-after 100: the first run's records at
    steps 0 and 100 as committed, rtol 1e-3 (see tests/test_scripts.py for the tolerance)."""
    from wmbook.lab.scale import load_scale_sweep

    out = _run("train_char_gpt_scale.py", "--widths", "32", "--budgets", "250", "--stop-after", "100",
               out=tmp_path / "s.pt")
    _assert_same_start(load_scale_sweep(out, sha256=None).log, load_scale_sweep().log)


def test_the_stored_scale_model_scores_what_the_log_says():
    """The one model char_gpt_scale.pt stores (smallest width, smallest budget): its loss on the whole
    validation split, computed again, equals the log's within 1e-4 (the page re-runs its first steps)."""
    from wmbook.data.loaders import load_tinyshakespeare
    from wmbook.lab.char_gpt import evaluate_lm
    from wmbook.lab.scale import load_scale_sweep

    sweep = load_scale_sweep()
    first = sweep.log["runs"][0]
    corpus = load_tinyshakespeare()
    again = evaluate_lm(sweep.models[first["d_model"]], torch.tensor(corpus.encode(corpus.val)))
    assert abs(again - first["val_loss"]) < 1e-4, (again, first["val_loss"])
