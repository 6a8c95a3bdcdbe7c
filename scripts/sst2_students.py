"""Train the students of page 5.2 over several seeds and store their results.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/sst2_students.py

For each arm of wmbook.lab.distill_bert.train_student ("labels", "distilled", "all labels") and
each seed, trains a 2-layer BERT student and records its SST-2 dev accuracy; stores the
accuracies and the distilled student of seed 0 in wmbook/data/checkpoints/sst2_students.pt and
prints its sha256 (record it as SST2_STUDENTS_SHA256 in wmbook/lab/distill_bert.py). Each run
is deterministic (one thread, seeded): the page re-runs one seed and checks it matches.
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.distill_bert import (ARMS, SST2_STUDENTS_FILE, load_sst2_teacher, student_accuracy, student_data,
                                 train_student)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR / SST2_STUDENTS_FILE)
    args = parser.parse_args()
    t0 = time.time()
    teacher = load_sst2_teacher()
    data = student_data(teacher)
    results = {arm: [] for arm in ARMS}
    kept = None
    for arm in ARMS:
        for seed in range(args.seeds):
            model = train_student(data, teacher, arm, seed, steps=args.steps)
            results[arm].append(student_accuracy(model, data))
            if arm == "distilled" and seed == 0:
                kept = {k: v.clone() for k, v in model.state_dict().items()}
            print(f"{arm:10s} seed {seed}: dev accuracy {results[arm][-1]:.4f}  ({time.time() - t0:.0f} s)",
                  flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"accuracy": results, "steps": args.steps, "distilled_seed0": kept}, args.out)
    print("wrote", args.out, "sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
