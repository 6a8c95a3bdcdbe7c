"""In-context linear regression (page 2.3): prompts, baselines, the model, the checkpoint, the script."""

import numpy as np
import pytest
import torch

from wmbook.data.checkpoint import CheckpointError, verify_checkpoint
from wmbook.lab.function_icl import (ICLRegressor, ICLRegressorConfig, averaging, least_squares, linear_prompts,
                                 load_icl_regressor, nearest_neighbour, squared_error)


def test_prompts_follow_a_linear_function():
    p = linear_prompts(8, 4, 3, generator=torch.Generator().manual_seed(0))
    assert p.xs.shape == (8, 5, 3) and p.ys.shape == (8, 5)
    assert torch.allclose(p.ys, torch.einsum("bkd,bd->bk", p.xs, p.w), atol=1e-6)
    with pytest.raises(ValueError):
        linear_prompts(0, 1, 1)


def test_least_squares_matches_numpy_and_is_exact_when_determined():
    p = linear_prompts(20, 7, 4, generator=torch.Generator().manual_seed(1))
    ours = least_squares(p.xs, p.ys)
    assert torch.allclose(ours, p.ys[:, -1], atol=1e-3)  # k=7 >= d=4: exact
    p = linear_prompts(20, 2, 4, generator=torch.Generator().manual_seed(2))  # underdetermined
    ours = least_squares(p.xs, p.ys)
    for b in range(20):  # numpy's minimum-norm solution
        w = np.linalg.lstsq(p.xs[b, :-1].double().numpy(), p.ys[b, :-1].double().numpy(), rcond=None)[0]
        assert abs(float(p.xs[b, -1].double().numpy() @ w) - ours[b].item()) < 1e-3


def test_baselines_on_edge_cases():
    p = linear_prompts(5, 0, 3)
    for fn in (least_squares, nearest_neighbour, averaging):
        assert torch.equal(fn(p.xs, p.ys), torch.zeros(5))  # no example: predict 0
    p = linear_prompts(3, 2, 3)
    xs = p.xs.clone()
    xs[:, -1] = xs[:, 0]  # the query equals the first example
    ys = p.ys.clone()
    assert torch.allclose(nearest_neighbour(xs, ys), ys[:, 0])
    assert squared_error(torch.zeros(3), ys).shape == (3,)


def test_model_shapes_causality_and_errors():
    model = ICLRegressor(ICLRegressorConfig(d=3, max_k=4, d_model=16, n_heads=2, n_layers=1))
    p = linear_prompts(2, 4, 3)
    out = model(p.xs, p.ys)
    assert out.shape == (2, 5)
    ys2 = p.ys.clone()
    ys2[:, -1] += 10  # the last target must not influence any prediction (all are made before it)
    assert torch.allclose(model(p.xs, ys2), out)
    with pytest.raises(ValueError, match="d=3"):
        model(torch.zeros(1, 2, 4), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="max_k=4"):
        model(torch.zeros(1, 7, 3), torch.zeros(1, 7))


def test_checkpoint_learns_in_context():
    model, log = load_icl_regressor()
    p = linear_prompts(1000, model.cfg.max_k, model.cfg.d, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        pred = model(p.xs, p.ys)
    err = lambda k: (squared_error(pred[:, k], p.ys[:, : k + 1]) / model.cfg.d).mean().item()
    assert err(1) < 1.0 and err(10) < 0.15 and err(10) < err(2) / 4  # it uses the examples
    assert log["loss"][-1] < log["loss"][0]


def test_a_wrong_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="(?i)sha256.*regenerate"):
        verify_checkpoint(bad, "0" * 64, "python scripts/x.py")
    with pytest.raises(CheckpointError, match="missing"):
        verify_checkpoint(tmp_path / "none.pt", None, "python scripts/x.py")


def test_errors_by_k_is_the_per_k_loop():
    from wmbook.lab.function_icl import errors_by_k

    torch.manual_seed(0)
    model = ICLRegressor(ICLRegressorConfig(d=3, max_k=4, d_model=16, n_heads=2, n_layers=1)).eval()
    p = linear_prompts(50, 4, 3, generator=torch.Generator().manual_seed(1))
    got = errors_by_k(model, p)
    with torch.no_grad():
        pred = model(p.xs, p.ys)
    want = [(squared_error(pred[:, k], p.ys[:, : k + 1]) / 3).mean().item() for k in range(5)]
    assert got.shape == (5,) and torch.allclose(got, torch.tensor(want), rtol=1e-5)
    each = errors_by_k(model, p, per_prompt=True)
    assert each.shape == (50, 5) and torch.allclose(each.mean(0), got)


def test_every_committed_seed_loads_and_learns_in_context():
    from wmbook.lab.function_icl import (ICL_REGRESSOR_SEEDS_SHA256, errors_by_k, icl_regressor_file,
                                         load_icl_regressor_seeds)

    assert icl_regressor_file(0) == "icl_linreg.pt" and icl_regressor_file(3) == "icl_linreg_seed3.pt"
    assert len(ICL_REGRESSOR_SEEDS_SHA256) >= 2, "page 2.3 quotes the mean ± sd over at least 3 seeds"
    runs = load_icl_regressor_seeds()
    assert list(runs) == [0, *sorted(ICL_REGRESSOR_SEEDS_SHA256)]
    p = linear_prompts(500, 12, 5, generator=torch.Generator().manual_seed(3))
    errors = torch.stack([errors_by_k(m, p) for m, _ in runs.values()])
    assert (errors[:, 10] < errors[:, 0]).all()  # each uses the examples somewhat
    learned = (errors[:, 10] < 0.2) & (errors[:, 10] < errors[:, 2] / 4)
    assert learned[0] and learned.sum() >= 3  # page 2.3: seed 0 and most seeds learned; one did not
    assert len({e[10].item() for e in errors}) == len(runs)  # different runs, not copies
    with pytest.raises(ValueError, match="no committed checkpoint for seed 99"):
        load_icl_regressor(99)
