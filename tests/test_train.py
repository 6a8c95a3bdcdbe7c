"""The training loop, seeding, devices and measurement helpers."""
import time

import pytest
import torch
from torch import nn
import torch.nn.functional as F

import wmbook
from wmbook.lab.measure import can_measure_peak_memory, count_parameters, peak_memory, time_call


def _tiny_attention_classifier():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 16)
            self.pos = nn.Parameter(torch.randn(6, 16))
            self.attn = wmbook.MultiHeadAttention(d_model=16, n_heads=2)
            self.out = nn.Linear(16, 10)

        def forward(self, x):
            h, _ = self.attn(self.embed(x) + self.pos)  # every position sees the whole sequence
            return self.out(h)

    return Net()


def test_overfit_one_batch():
    wmbook.seed_everything(0)
    model = _tiny_attention_classifier()
    x = torch.randint(0, 10, (8, 6))
    y = torch.randint(0, 10, (8, 6))
    loss = lambda m, step: F.cross_entropy(m(x).reshape(-1, 10), y.reshape(-1))
    history = wmbook.train(model, loss, steps=300, lr=1e-2, progress=False,
                           eval_fn=lambda m: {"acc": (m(x).argmax(-1) == y).float().mean()})
    steps, losses = history.series("loss")
    assert len(steps) == 300 and losses[0] > 2.0
    assert history.last("loss") < 0.05
    assert history.last("acc") == 1.0
    assert not model.training  # left in eval mode


def test_train_schedule_and_errors():
    cfg = wmbook.TrainConfig(steps=10, lr=1.0, warmup=5, cosine=True)
    lrs = [cfg.lr_at(s) for s in range(10)]
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0)
    assert lrs[-1] < lrs[5]
    with pytest.raises(ValueError, match="steps"):
        wmbook.TrainConfig(steps=0)
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="scalar"):
        wmbook.train(model, lambda m, s: m(torch.ones(3, 2)), steps=1, progress=False)
    with pytest.raises(FloatingPointError, match="smaller lr"):
        wmbook.train(model, lambda m, s: m(torch.ones(1, 2)).sum() * float("nan"), steps=1, progress=False)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        wmbook.train(model, lambda m, s: m(torch.ones(1, 2)).sum(), steps=1, progress=False)
    with pytest.raises(KeyError, match="logged keys"):
        wmbook.History().series("loss")


def test_seed_everything_repeats():
    wmbook.seed_everything(3)
    a = torch.randn(4)
    wmbook.seed_everything(3)
    assert torch.equal(a, torch.randn(4))
    with pytest.raises(ValueError):
        wmbook.seed_everything(-1)


def test_get_device(monkeypatch):
    monkeypatch.delenv("WMBOOK_DEVICE", raising=False)
    assert wmbook.get_device("cpu") == torch.device("cpu")
    assert wmbook.get_device().type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        wmbook.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available"):
            wmbook.get_device("cuda")
    monkeypatch.setenv("WMBOOK_DEVICE", "cpu")
    assert wmbook.get_device() == torch.device("cpu")


@pytest.mark.skipif(not can_measure_peak_memory(), reason="needs Linux /proc")
def test_peak_memory_sees_a_large_tensor():
    extra = peak_memory(lambda: torch.ones(64, 2**20 // 4 * 1, dtype=torch.float32) + 1)  # 64 MiB, twice
    assert 100 * 2**20 <= extra <= 200 * 2**20


def test_time_and_count():
    calls = []
    seconds = time_call(lambda: (calls.append(1), time.sleep(0.02)), repeats=3, warmup=2)
    assert len(calls) == 5 and 0.02 <= seconds < 0.5  # warm-up runs are not timed; the median of 3 is
    assert count_parameters(nn.Linear(3, 2)) == 8
    with pytest.raises(ValueError):
        time_call(lambda: None, repeats=0)


def test_threads_context_restores():
    before = torch.get_num_threads()
    with wmbook.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        wmbook.threads(0)


def test_time_in_turns_rotates_repeats_fast_calls_and_checks_its_arguments():
    import pytest

    from wmbook.lab.measure import time_in_turns

    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "abc"}
    t = time_in_turns(fns, rounds=3, min_seconds=0.0)
    assert order == list("abcbcacab") and all(len(v) == 3 for v in t.values())
    order.clear()
    time_in_turns(fns, rounds=2, warmup=1, min_seconds=0.0, rotate=False)
    assert order == list("abcabcabc")
    order.clear()
    ticks = iter(range(10_000))  # a clock that advances 1 per reading: a call "takes" 1 unit
    time_in_turns({"a": fns["a"]}, rounds=1, min_seconds=100.0, clock=lambda: next(ticks))
    assert len(order) == 2 + 1 + 20  # two calls to measure it, one untimed, then 20 (the cap)
    with pytest.raises(ValueError, match="rounds >= 1"):
        time_in_turns(fns, rounds=0)
