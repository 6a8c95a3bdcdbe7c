"""Train the students of page 5.2 over several seeds and store their results with a training log.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/sst2_students.py --jobs 3   # the committed run, ~25 min
    python scripts/sst2_students.py --seeds 1 --steps 2 --out /tmp/s.pt   # a smoke test

For each arm of wmbook.lab.distill_bert.run_student ("labels", "distilled", "all labels") and
each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...), trains a 2-layer BERT student for
``--steps`` steps (one batch of 64 sentences each, whatever the arm) with 1,000 labelled
sentences and records its SST-2 dev accuracy; then the "labels" and "distilled" arms again with
``--fewer-labels`` labelled sentences (page 5.2's exercise 2; 0 skips them). A distilled student
with n labels learns from the teacher whose head was trained on the same n labels
(scripts/sst2_teacher.py's ``--labels``). Writes wmbook/data/checkpoints/sst2_students.pt (the
accuracies and the distilled student of the first seed) and, next to it, sst2_students.json: the recipe, every
run's dev accuracy and the training loss at every step of the first seed of each arm
(``wmbook.lab.distill_bert.train_students`` / ``save_sst2_students``). Prints both sha256s:
record them as SST2_STUDENTS_SHA256 and SST2_STUDENTS_LOG_SHA256 in wmbook/lab/distill_bert.py.

Each student trains on one thread whatever ``--threads`` says (``run_student`` fixes it;
``--threads`` applies to the rest; ``--jobs N`` trains N students at a time, in N processes,
with the same results), seeded, with a constant learning rate: ``--steps N`` repeats
the first N steps of the committed runs exactly on one machine (page 5.2 re-runs the first steps
of seed 0 and compares them with the log). ``--arms`` restricts the arms (the files then hold
only those). Options: ``--help`` (the shared command line of scripts/_common.py, plus
``--seeds``, ``--arms`` and ``--fewer-labels``).
"""
from __future__ import annotations

import platform
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.distill_bert import (ARMS, SST2_STUDENTS_FILE, StudentsRecipe, load_sst2_teachers,
                                     save_sst2_students, student_data, train_students)


def parser():
    """The command line; its defaults are the committed run's."""
    recipe = StudentsRecipe()
    p = script_parser(__doc__, steps=recipe.steps, out=CHECKPOINT_DIR / SST2_STUDENTS_FILE,
                      steps_help=f"training steps of each student (batches of {recipe.batch_size})")
    p.add_argument("--seeds", type=int, default=recipe.seeds, help="students per arm (default: %(default)s)")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), metavar="ARM",
                   help=f"which arms to train, of {', '.join(map(repr, ARMS))} (default: all)")
    p.add_argument("--fewer-labels", type=int, default=recipe.fewer_labels, metavar="N",
                   help="train the 'labels' and 'distilled' arms again with N labelled sentences "
                        "(0: do not; default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="students trained at a time, each in its own process on one thread; the results "
                        "do not depend on it (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = parse(command_line, argv)
    if args.fewer_labels < 0:
        command_line.error("--fewer-labels must be >= 0")
    if args.jobs < 1:
        command_line.error("--jobs must be >= 1")
    recipe = StudentsRecipe(steps=args.steps, seeds=args.seeds, seed=args.seed, arms=tuple(args.arms),
                            fewer_labels=args.fewer_labels)
    t0 = time.time()
    teachers = load_sst2_teachers()  # {n_labelled: the teacher whose head saw those n labels}
    missing = {recipe.n_labelled, recipe.fewer_labels} - {0} - set(teachers)
    if "distilled" in recipe.arms and missing:
        command_line.error(f"no teacher head for {sorted(missing)} labels (heads: {sorted(teachers)}); "
                           "run scripts/sst2_teacher.py --labels ...")
    data = student_data(next(iter(teachers.values())))  # every head shares the transfer set
    results = train_students(data, teachers, recipe,
                             report=lambda line: print(f"{line}  ({time.time() - t0:.0f} s)", flush=True),
                             jobs=args.jobs)
    seconds = time.time() - t0
    sha = save_sst2_students(args.out, results, recipe,
                             {"train_seconds": round(seconds, 1), "threads": args.threads, "jobs": args.jobs,
                              "torch": str(torch.__version__), "python": platform.python_version()})
    report_written(args.out, sha, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
