"""What the scripts share: one command line and a repeatable CPU set-up.

Every script in ``scripts/`` takes the same four options:

``--seed``     the seed of everything random in the run (default 0: the committed checkpoint);
``--threads``  CPU threads, fixed so that a run is repeatable on one machine;
``--steps``    how much work to do: training steps for the training scripts; each script's
               ``--help`` says what it means there and what its default (the committed run) is;
``--out``      the file to write (default: the committed checkpoint in
               ``wmbook/data/checkpoints/``; a JSON log, where the script writes one, goes
               next to it).

Scripts whose schedule depends on ``--steps`` (a cosine decay, a curriculum) also take
``--stop-after N``: run the first N steps of the ``--steps`` schedule and stop, so the first
records of a long run can be reproduced (and checked against its committed log) quickly.

Each script has ``parser()`` (``script_parser(...)`` plus any options of its own, whose
defaults are the committed run's) and starts ``main`` with ``args = parse(parser(), argv)``.
Under pytest (``PYTEST_CURRENT_TEST`` is set, also in the scripts a test starts) writing into
``wmbook/data/checkpoints/`` is refused: a test must pass ``--out`` in a temporary folder.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

COMMITTED_DIR = Path(__file__).resolve().parents[1] / "wmbook" / "data" / "checkpoints"


def script_parser(doc: str, *, steps: int | None, out: Path, steps_help: str = "training steps",
                  seed: int = 0, threads: int = 1, stop_after: bool = False) -> argparse.ArgumentParser:
    """The shared parser: ``--seed --threads --steps --out`` (and ``--stop-after`` if asked for).

    ``steps=None`` means "no limit" (the help then says "default: all"); ``steps_help`` says
    what a step is in this script. The defaults are the committed run's.
    """
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                     epilog="See the top of the script for what it writes and how long it takes.")
    parser.add_argument("--seed", type=int, default=seed,
                        help="seed of everything random in the run (default: %(default)s, the committed run)")
    parser.add_argument("--threads", type=int, default=threads,
                        help="CPU threads, fixed for repeatability (default: %(default)s)")
    default = "all" if steps is None else "%(default)s"
    parser.add_argument("--steps", type=int, default=steps, metavar="N",
                        help=f"{steps_help} (default: {default})")
    parser.add_argument("--out", type=Path, default=Path(out), metavar="PATH",
                        help="file to write (default: the committed %(default)s)")
    if stop_after:
        parser.add_argument("--stop-after", type=int, default=None, metavar="N",
                            help="run only the first N steps of the --steps schedule (what depends on --steps, "
                                 "e.g. a learning-rate decay or a curriculum, stays as for --steps): reproduces "
                                 "the start of a longer run, e.g. to check it against the committed log "
                                 "(default: all --steps)")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the options; fix the thread count and make torch deterministic."""
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if getattr(args, "seeds", 1) < 1:  # scripts that train several seeds add --seeds themselves
        parser.error("--seeds must be >= 1")
    stop = getattr(args, "stop_after", None)
    if stop is not None and not 1 <= stop <= (args.steps or stop):
        parser.error(f"--stop-after must be in 1..--steps ({args.steps}), got {stop}")
    if os.environ.get("PYTEST_CURRENT_TEST") and _inside(args.out, COMMITTED_DIR):
        parser.error(f"refusing to overwrite the committed {args.out} under pytest: pass --out in a temporary folder")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    return args


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def report_written(out: Path, sha256: str, seconds: float | None = None) -> None:
    """Print what a run wrote: the checkpoint, its JSON log, and both sha256 (to record in the code);
    with ``seconds``, also how long the run took."""
    from wmbook.data.checkpoint import file_sha256

    log_path = out.with_suffix(".json")
    took = "" if seconds is None else f" in {seconds:.0f} s"
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB) and {log_path.name}{took}")
    print(f"log sha256 {file_sha256(log_path)}")
    print(f"sha256 {sha256}")


def train_char_gpt_seeds(corpus, recipe_for_seed, seeds, threads: int):
    """Train a character GPT per seed (``recipe_for_seed(seed)`` gives each run's recipe), print
    progress, and score each on the whole validation split.

    Returns ``(model, recipe, history, extra)``: the first seed's model, recipe and history (the
    committed checkpoint) and the log's extra fields, with every seed's validation loss and evals.
    Shared by ``train_char_gpt.py`` (Shakespeare) and ``train_tang_gpt.py`` (Tang poems).
    """
    import platform
    import time

    from wmbook.lab.char_gpt import evaluate_lm, train_char_gpt

    val_ids = torch.tensor(corpus.encode(corpus.val))

    def log(r: dict) -> None:
        print(f"step {r['step']:5d}  train {r['train_loss']:.4f}  val {r['val_loss']:.4f}"
              f"  ({r['seconds']:.0f} s)", flush=True)

    runs, first = [], None
    for seed in seeds:
        recipe = recipe_for_seed(seed)
        print(f"seed {seed}", flush=True)
        t0 = time.perf_counter()
        model, history = train_char_gpt(corpus, recipe, log=log)
        train_seconds = time.perf_counter() - t0
        val_full = evaluate_lm(model, val_ids)
        print(f"validation loss on all {len(val_ids):,} characters: {val_full:.4f} nats/char", flush=True)
        runs.append({"seed": seed, "val_loss_full": round(val_full, 6), "train_seconds": round(train_seconds, 1),
                     "evals": [[r["step"], round(r["train_loss"], 6), round(r["val_loss"], 6)]
                               for r in history.records if "val_loss" in r]})
        if first is None:
            first = (model, recipe, history, val_full, train_seconds)
    model, recipe, history, val_full, train_seconds = first
    extra = {"val_loss_full": round(val_full, 6), "train_seconds": round(train_seconds, 1),
             "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
             "seeds": runs}
    return model, recipe, history, extra
