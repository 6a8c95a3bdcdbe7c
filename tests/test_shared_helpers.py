"""The helpers that replaced code written twice: checkpoint loading (wmbook.data.checkpoint),
the character GPT's weights (wmbook.lab.char_gpt) and the test fixtures (tests/_fixtures.py)."""
import json

import pytest
import torch

from wmbook.data.checkpoint import (CheckpointError, check_paired, file_sha256, load_paired_log, load_payload,
                                    verify_with_log)
from wmbook.lab.char_gpt import gpt_from_state
from wmbook.nn.gpt import GPT, GPTConfig

from _fixtures import one_thread  # noqa: F401  (autouse: the tests below run on one thread)

REGEN = "python scripts/make_it.py"


def _pair(tmp_path, payload, log_extra=None, name="ck.pt"):
    """A checkpoint and a log that names it; returns (path, sha256, log sha256)."""
    path = tmp_path / name
    torch.save(payload, path)
    sha = file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps({"sha256": sha, **(log_extra or {})}), encoding="utf-8")
    return path, sha, file_sha256(path.with_suffix(".json"))


def test_one_thread_fixture_is_active():
    assert torch.get_num_threads() == 1


def test_load_payload_returns_the_dict_and_refuses_another_format(tmp_path):
    path, _, _ = _pair(tmp_path, {"format": "wmbook-x-1", "w": torch.arange(3)})
    got = load_payload(path, "wmbook-x-1", "x", REGEN)
    assert torch.equal(got["w"], torch.arange(3))
    with pytest.raises(CheckpointError, match=r"is not a wmbook thing checkpoint; regenerate it with: python scripts/make_it.py"):
        load_payload(path, "wmbook-y-1", "thing", REGEN)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a wmbook"):
        load_payload(tmp_path / "list.pt", "wmbook-x-1", "x", REGEN)


def test_load_paired_log_checks_the_log_hash_and_that_it_names_the_checkpoint(tmp_path):
    path, sha, log_sha = _pair(tmp_path, {"format": "f"}, {"evals": [1]})
    assert load_paired_log(path, sha, log_sha, REGEN)["evals"] == [1]
    assert load_paired_log(path, None, None, REGEN)["sha256"] == sha  # None: the file's own hash
    with pytest.raises(CheckpointError, match="training log .* has sha256"):
        load_paired_log(path, sha, "0" * 64, REGEN, where="X_LOG_SHA256")
    path.with_suffix(".json").write_text(json.dumps({"sha256": "abc"}), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"written for a checkpoint with sha256 abc, not for .*ck.pt; "
                                              r"regenerate both with: python scripts/make_it.py"):
        load_paired_log(path, None, None, REGEN)
    with pytest.raises(CheckpointError, match="sha256 abc"):
        check_paired({"sha256": "abc"}, path, sha, REGEN)
    check_paired({"sha256": sha}, path, None, REGEN)  # no error


def test_verify_with_log_resolves_committed_and_names_the_constants(tmp_path):
    path, sha, log_sha = _pair(tmp_path, {"format": "f"}, {"k": 2})
    kw = dict(committed=path, committed_sha256=sha, committed_log_sha256=log_sha, regenerate=REGEN,
              constant="THING", module="wmbook/lab/thing.py")
    got_path, log = verify_with_log(None, "committed", "committed", **kw)
    assert got_path == path and log["k"] == 2
    other, _, _ = _pair(tmp_path, {"format": "g"}, {"k": 3}, name="other.pt")
    assert verify_with_log(other, "committed", "committed", **kw)[1]["k"] == 3  # another file: not hashed
    with pytest.raises(CheckpointError, match="THING_SHA256 in wmbook/lab/thing.py"):
        verify_with_log(None, "committed", "committed", **{**kw, "committed_sha256": "0" * 64})
    with pytest.raises(CheckpointError, match="THING_LOG_SHA256 in wmbook/lab/thing.py"):
        verify_with_log(None, "committed", "committed", **{**kw, "committed_log_sha256": "0" * 64})
    with pytest.raises(CheckpointError, match="missing; regenerate it with: python scripts/make_it.py"):
        verify_with_log(tmp_path / "nope.pt", None, None, **kw)


@pytest.mark.parametrize("tie", [True, False])
def test_gpt_from_state_restores_a_tied_head_and_float16_weights(tie):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, n_ctx=8, d_model=16, n_heads=2, n_layers=1, dropout=0.0, tie_weights=tie)
    model = GPT(cfg).eval()
    state = {k: v.half() for k, v in model.state_dict().items() if k != "lm_head.weight" or not tie}
    got = gpt_from_state(cfg, state).eval()
    for k, v in got.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, model.state_dict()[k].half().float()), k
    x = torch.randint(0, 11, (2, 8))
    assert (got(x).logits - model(x).logits).abs().max() < 0.05  # float16 rounding only
    with pytest.raises(RuntimeError):
        gpt_from_state(GPTConfig(vocab_size=12, n_ctx=8, d_model=16, n_heads=2, n_layers=1), state)


def test_save_char_gpt_writes_the_dtype_asked_for_and_loads_back(tmp_path):
    from wmbook.lab.char_gpt import CharGPTRecipe, save_char_gpt
    from wmbook.nn.train import History

    torch.manual_seed(0)
    recipe = CharGPTRecipe(n_layers=1, n_heads=2, d_model=16, block_size=8)
    model = GPT(recipe.model_config(5))
    history = History()
    history.log(1, val_loss=1.0)
    for dtype in (torch.float32, torch.float16):
        path = tmp_path / f"{dtype}.pt"
        sha = save_char_gpt(path, model, list("abcde"), recipe, history, dtype=dtype)
        blob = torch.load(path, weights_only=True)
        assert sha == file_sha256(path) and "lm_head.weight" not in blob["state_dict"]
        assert {v.dtype for v in blob["state_dict"].values()} == {dtype}
        back = gpt_from_state(GPTConfig(**blob["config"]), blob["state_dict"])
        assert torch.equal(back.wte.weight, model.wte.weight.to(dtype).float())


@pytest.mark.parametrize("grad_clip", [None, 0.01])
def test_optimizer_step_is_the_written_out_step(grad_clip):
    from wmbook.nn.train import optimizer_step

    def setup():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        return model, torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)  # SGD: clipping shows

    x = torch.randn(5, 4)
    ours, opt = setup()
    optimizer_step(opt, ours(x).pow(2).mean(), 0.01, ours.parameters(), grad_clip)
    ref, ref_opt = setup()
    for group in ref_opt.param_groups:
        group["lr"] = 0.01
    ref_opt.zero_grad(set_to_none=True)
    ref(x).pow(2).mean().backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(ref.parameters(), grad_clip)
    ref_opt.step()
    assert opt.param_groups[0]["lr"] == 0.01
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    unclipped, opt = setup()
    optimizer_step(opt, unclipped(x).pow(2).mean(), 0.01, unclipped.parameters(), None)
    assert grad_clip is None or any(not torch.equal(a, b) for a, b in zip(ours.parameters(), unclipped.parameters()))
