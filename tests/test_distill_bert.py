"""Page 5.2's teacher and students: the committed files and log, determinism, errors."""
import pytest
import torch

from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256
import wmbook.lab.distill_bert as distill_bert
from wmbook.lab.distill_bert import (ARMS, BATCH_SIZE, SST2_STUDENTS_FILE, SST2_STUDENTS_LOG_SHA256,
                                     SST2_STUDENTS_SHA256, TEACHER_LABELS, StudentsRecipe, curve_key,
                                     load_sst2_students, load_sst2_teacher, load_sst2_teachers, run_student,
                                     save_sst2_students, student_accuracy, student_data, train_student,
                                     train_students, train_teacher_head)

from _fixtures import assert_refuses_bad_logs


@pytest.fixture(scope="module")
def teacher_and_data():
    teacher = load_sst2_teacher()
    return teacher, student_data(teacher)


def test_teacher_file(teacher_and_data):
    """One head per entry of TEACHER_LABELS, each trained on the labels of the first n transfer
    sentences only: it fits those, and its accuracy on the rest (labels it never saw) is lower."""
    teacher, data = teacher_and_data
    teachers = load_sst2_teachers()
    assert tuple(teachers) == TEACHER_LABELS and teachers[1000].info == teacher.info
    for n, t in teachers.items():
        assert t.info["n_labelled"] == n and torch.equal(t.transfer_idx, teacher.transfer_idx)
        assert t.transfer_logits.shape == (len(t.transfer_idx), 2) and t.dev_logits.shape == (872, 2)
        acc = (t.dev_logits.argmax(-1) == data.dev_y).float().mean().item()
        assert acc == pytest.approx(t.info["dev_acc"], abs=2e-3) and acc > 0.7
        right = t.transfer_logits.argmax(-1) == data.y
        assert right[:n].float().mean().item() == pytest.approx(t.info["train_acc"], abs=2e-3)
        assert right[n:].float().mean().item() < t.info["train_acc"]
    assert data.X.shape[0] == len(teacher.transfer_idx) and data.vocab_size == 6000
    with pytest.raises(ValueError, match="no teacher head trained on 500 labels"):
        load_sst2_teacher(500)


def test_train_teacher_head_fits_separable_features_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 384, generator=g)
    y = (x[:, 0] > 0).long()
    head = train_teacher_head(x, y, steps=60, seed=1, batch_size=32)
    again = train_teacher_head(x, y, steps=60, seed=1, batch_size=32)
    with torch.no_grad():
        assert (head(x).argmax(-1) == y).float().mean() > 0.95 and not head.training
        assert torch.equal(head(x), again(x))
    for bad in (dict(features=x, labels=y[:10], steps=1), dict(features=x[0], labels=y, steps=1),
                dict(features=x, labels=y, steps=-1)):
        with pytest.raises(ValueError):
            train_teacher_head(**bad)


@pytest.mark.parametrize("arm", ARMS)
def test_every_arm_takes_one_batch_of_64_per_step(teacher_and_data, monkeypatch, arm):
    """The budget is the same for every arm: one student pass over BATCH_SIZE sentences per step
    (the distilled arm: half labelled, half with the teacher's soft targets)."""
    teacher, data = teacher_and_data
    sizes = []
    real = distill_bert._batch_logits

    def counting(model, X, lengths):
        sizes.append(len(X))
        return real(model, X, lengths)

    monkeypatch.setattr(distill_bert, "_batch_logits", counting)
    run_student(data, teacher, arm, seed=0, steps=3)
    assert sizes == [BATCH_SIZE] * 3


def test_the_distilled_student_needs_the_teacher_of_its_labels(teacher_and_data):
    teacher, data = teacher_and_data
    with pytest.raises(ValueError, match="trained on 1000 labels, the student gets 250"):
        run_student(data, teacher, "distilled", seed=0, n_labelled=250, steps=1)
    run_student(data, teacher, "labels", seed=0, n_labelled=250, steps=1)  # no teacher involved
    run_student(data, load_sst2_teacher(250), "distilled", seed=0, n_labelled=250, steps=1)


def test_train_students_in_parallel_gives_the_same_results(teacher_and_data):
    teacher, data = teacher_and_data
    teachers = load_sst2_teachers()
    recipe = StudentsRecipe(steps=2, seeds=2, arms=("labels", "distilled"), fewer_labels=250)
    one, two = (train_students(data, teachers, recipe, jobs=j) for j in (1, 2))
    assert one["accuracy"] == two["accuracy"] and one["fewer_labels"] == two["fewer_labels"]
    assert one["loss_curves"] == two["loss_curves"]
    assert all(torch.equal(one["distilled_seed0"][k], two["distilled_seed0"][k]) for k in one["distilled_seed0"])
    with pytest.raises(ValueError, match="jobs"):
        train_students(data, teachers, recipe, jobs=0)


def test_students_file_shows_distillation_helps():
    results = load_sst2_students()
    labels, distilled = (torch.tensor(results["accuracy"][a]) for a in ("labels", "distilled"))
    assert len(labels) >= 3 and distilled.min() > labels.max()
    assert set(results["accuracy"]) == set(ARMS)


def test_train_student_is_deterministic_and_checks_the_arm(teacher_and_data):
    teacher, data = teacher_and_data
    a = student_accuracy(train_student(data, teacher, "distilled", seed=1, steps=3), data)
    b = student_accuracy(train_student(data, teacher, "distilled", seed=1, steps=3), data)
    assert a == b
    with pytest.raises(ValueError, match="arm must be one of"):
        train_student(data, teacher, "soft", seed=0, steps=1)


def test_a_short_run_is_the_start_of_a_longer_one(teacher_and_data):
    """Constant learning rate: ``steps=N`` repeats the first N steps of a longer run exactly."""
    teacher, data = teacher_and_data
    short = run_student(data, teacher, "distilled", seed=2, steps=3).history.series("loss")
    full = run_student(data, teacher, "distilled", seed=2, steps=5).history.series("loss")
    assert short == ([0, 1, 2], full[1][:3]) and full[0] == [0, 1, 2, 3, 4]
    other = run_student(data, teacher, "labels", seed=2, steps=3).history.series("loss")[1]
    assert other != short[1]  # the arm matters
    with pytest.raises(ValueError, match="n_labelled"):
        run_student(data, teacher, "labels", seed=0, n_labelled=0, steps=1)


def test_students_recipe():
    recipe = StudentsRecipe(steps=2, seeds=2, seed=3, arms=("distilled", "labels"), fewer_labels=100)
    assert recipe.arms == ("labels", "distilled")  # in the order of ARMS
    assert recipe.runs() == [("labels", 1000, 3), ("labels", 1000, 4), ("distilled", 1000, 3), ("distilled", 1000, 4),
                             ("labels", 100, 3), ("labels", 100, 4), ("distilled", 100, 3), ("distilled", 100, 4)]
    assert StudentsRecipe(seeds=1, arms=("all labels",)).runs() == [("all labels", 1000, 0)]
    assert StudentsRecipe(seeds=1, fewer_labels=0).runs() == [(a, 1000, 0) for a in ARMS]
    for bad in (dict(steps=0), dict(seeds=0), dict(seed=-1), dict(arms=()), dict(arms=("soft",))):
        with pytest.raises(ValueError):
            StudentsRecipe(**bad)


def test_train_save_and_load_students(teacher_and_data, tmp_path):
    teacher, data = teacher_and_data
    recipe = StudentsRecipe(steps=2, seeds=2, arms=("distilled",), fewer_labels=250)
    lines = []
    results = train_students(data, load_sst2_teachers(), recipe, report=lines.append)
    assert len(lines) == 4 and set(results["accuracy"]) == {"distilled"}
    assert len(results["accuracy"]["distilled"]) == len(results["fewer_labels"]["accuracy"]["distilled"]) == 2
    assert set(results["loss_curves"]) == {curve_key("distilled", 1000, 0), curve_key("distilled", 250, 0)}
    assert all(len(c) == 2 for c in results["loss_curves"].values())
    path = tmp_path / "students.pt"
    sha = save_sst2_students(path, results, recipe, {"train_seconds": 1.0})
    assert sha == file_sha256(path)
    back = load_sst2_students(path, sha256=sha)
    assert back["accuracy"] == results["accuracy"] and back["fewer_labels"]["n_labelled"] == 250
    log = back["log"]
    assert log["recipe"]["steps"] == 2 and log["train_seconds"] == 1.0 and log["sha256"] == sha
    assert [(r["arm"], r["n_labelled"], r["seed"]) for r in log["evals"]] == [
        ("distilled", 1000, 0), ("distilled", 1000, 1), ("distilled", 250, 0), ("distilled", 250, 1)]
    assert log["evals"][0]["dev_acc"] == pytest.approx(results["accuracy"]["distilled"][0], abs=1e-6)
    assert_refuses_bad_logs(load_sst2_students, path, "sst2_students.py")


def test_the_committed_students_and_log():
    """Both files have their recorded sha256; five seeds per arm, also with fewer labels; the
    log holds the loss of every step of the first seed of each arm."""
    path = CHECKPOINT_DIR / SST2_STUDENTS_FILE
    assert file_sha256(path) == SST2_STUDENTS_SHA256
    assert file_sha256(path.with_suffix(".json")) == SST2_STUDENTS_LOG_SHA256
    results = load_sst2_students()
    recipe = StudentsRecipe(**{k: tuple(v) if k == "arms" else v for k, v in results["log"]["recipe"].items()})
    assert recipe == StudentsRecipe() and results["steps"] == recipe.steps
    few = results["fewer_labels"]
    assert few["n_labelled"] == recipe.fewer_labels and set(few["accuracy"]) == {"labels", "distilled"}
    assert all(len(a) == recipe.seeds for a in (*results["accuracy"].values(), *few["accuracy"].values()))
    curves = results["log"]["loss_curves"]
    assert set(curves) == {curve_key(arm, n, recipe.seed) for arm, n, seed in recipe.runs() if seed == recipe.seed}
    assert all(len(c) == recipe.steps for c in curves.values())
    assert len(results["log"]["evals"]) == len(recipe.runs())


def test_the_committed_log_starts_where_a_live_run_starts(teacher_and_data):
    """The first 10 steps of the distilled and labels students of seed 0, re-run here: the logged
    losses within rtol 1e-3 (another CPU changes only the order of float additions)."""
    teacher, data = teacher_and_data
    curves = load_sst2_students()["log"]["loss_curves"]
    for arm in ("labels", "distilled"):
        live = run_student(data, teacher, arm, seed=0, steps=10).history.series("loss")[1]
        assert live == pytest.approx(curves[curve_key(arm, 1000, 0)][:10], rel=1e-3)
