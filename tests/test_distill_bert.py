"""Page 5.2's teacher and students: the committed files, determinism, errors."""
import subprocess
import sys

import pytest
import torch

from tools.book import ROOT
from wmbook.lab.distill_bert import (ARMS, load_sst2_students, load_sst2_teacher, student_accuracy, student_data,
                                 train_student)


@pytest.fixture(scope="module")
def teacher_and_data():
    teacher = load_sst2_teacher()
    return teacher, student_data(teacher)


def test_teacher_file(teacher_and_data):
    teacher, data = teacher_and_data
    assert teacher.transfer_logits.shape == (len(teacher.transfer_idx), 2)
    assert teacher.dev_logits.shape == (872, 2)
    acc = (teacher.dev_logits.argmax(-1) == data.dev_y).float().mean().item()
    assert acc == pytest.approx(teacher.info["dev_acc"], abs=2e-3) and acc > 0.75
    assert data.X.shape[0] == len(teacher.transfer_idx) and data.vocab_size == 6000


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


@pytest.mark.slow
def test_scripts_run(tmp_path):
    out = tmp_path / "students.pt"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sst2_students.py"), "--seeds", "1",
                             "--steps", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.exists() and "sha256" in result.stdout


@pytest.mark.slow
def test_teacher_script_runs(tmp_path):
    out = tmp_path / "teacher.pt"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sst2_teacher.py"), "--size", "16",
                             "--steps", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.exists() and "sha256" in result.stdout
