"""Fine-tune MiniLM's top layer and a token-classification head for WNUT-17 NER (page 6.1.2).

    WMBOOK_DATA_DIR=/work/shared/data python scripts/train_ner_wnut17.py        # 3 seeds, the committed run
    python scripts/train_ner_wnut17.py --steps 2 --sentences 16 --seeds 1 --out /tmp/n.pt   # a smoke test

The recipe is wmbook.lab.ner.NERRecipe: MiniLM-L6 (all-MiniLM-L6-v2) with its embeddings and
lower five layers frozen; the top layer and a linear head over the 13 BIO labels are trained
with AdamW on the cross-entropy of each word's first piece, on WNUT-17's training split only.
The frozen layers' output of every sentence is computed once and shared by all seeds (it does
not depend on the seed); each seed then draws its own head, dropout and batch order. After
training, the trained weights are rounded to float16 (as stored) and scored on dev and test
with seqeval (strict IOB2).

It writes wmbook/data/checkpoints/ner_wnut17.pt (seed 0's top layer + head, float16, ~3.5 MB)
and ner_wnut17.json: the recipe, every seed's loss records (each of the first
``first_steps`` steps, then window means), dev and test scores (entity P/R/F1, F1 per type),
recall of seen vs unseen entities, and seed 0's predicted tags on dev and test (one letter
per word, wmbook.lab.ner.tags_to_string). It prints the sha256 of both files, to record as
NER_SHA256 and NER_LOG_SHA256 in wmbook/lab/ner.py. Run time of the committed run: 36 minutes
wall on one thread of a 2-core machine shared with other jobs (load ~10): 8 of them for the
frozen layers, 5-14 per seed; a quiet machine should need a fraction of that (not measured).

Options: the shared command line of scripts/_common.py (``--steps N`` cuts the schedule to N
steps; ``--stop-after N`` runs the first N steps of the full schedule), ``--seeds K`` (seeds
--seed .. --seed+K-1; the checkpoint is the first seed's), ``--sentences N`` (only the first N
sentences of each split, for smoke tests).
"""
from __future__ import annotations

import platform
import statistics
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.loaders import load_wnut17
from wmbook.lab.ner import (NER_FILE, NERRecipe, FrozenCache, encode_sentences, entity_scores, new_tagger,
                            predict_tags, rounded, save_ner, seen_unseen_recall, tags_to_string, train_surfaces,
                            train_tagger)
from wmbook.nn.bert import minilm_tokenizer


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=None, out=NER_FILE, stop_after=True,
                      steps_help="training steps (default: all: NERRecipe.epochs epochs)")
    p.add_argument("--seeds", type=int, default=3, help="how many seeds, from --seed on (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=None, metavar="N",
                   help="use only the first N sentences of each split (default: all)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    recipe = NERRecipe()
    data = load_wnut17()
    splits = {name: getattr(data, name)[: args.sentences] for name in ("train", "dev", "test")}
    tok = minilm_tokenizer()
    enc = {name: encode_sentences(s, tok) for name, s in splits.items()}
    gold = {name: [[t for _, t in s] for s in sents] for name, sents in splits.items()}
    seen = train_surfaces(splits["train"])
    t_start = time.perf_counter()
    caches = None
    runs, first_tagger, predictions = {}, None, {}
    for seed in range(args.seed, args.seed + args.seeds):
        tagger = new_tagger(recipe, seed)
        if caches is None:  # the frozen part is MiniLM's for every seed: compute it once
            t0 = time.perf_counter()
            caches = {name: FrozenCache(tagger, e) for name, e in enc.items()}
            for name, c in caches.items():
                c.get(range(len(enc[name])))
            print(f"frozen layers over all splits: {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        records = train_tagger(tagger, enc["train"], recipe, seed, caches["train"], stop_after=args.stop_after,
                               max_steps=args.steps,
                               log=lambda r, s=seed: print(f"seed {s} step {r['step']:4d} loss {r['loss']:.4f}"
                                                           f" ({r['seconds']:.0f} s)", flush=True))
        train_seconds = time.perf_counter() - t0
        stored = rounded(tagger)
        run = {"records": records, "train_seconds": round(train_seconds, 1)}
        for name in ("dev", "test"):
            pred = predict_tags(stored, enc[name], cache=caches[name])
            scores = entity_scores(gold[name], pred)
            run[name] = {k: (round(v, 4) if isinstance(v, float) else
                             {t: round(x, 4) for t, x in v.items()} if k == "per_type" else v)
                         for k, v in scores.items()}
            run[name]["seen_unseen"] = seen_unseen_recall(splits[name], pred, seen)
            if seed == args.seed:
                predictions[name] = [tags_to_string(p) for p in pred]
            print(f"seed {seed} {name}: entity F1 {scores['f1']:.2f} (P {scores['precision']:.2f}, "
                  f"R {scores['recall']:.2f})", flush=True)
        runs[str(seed)] = run
        if first_tagger is None:
            first_tagger = tagger
    summary = {name: {"f1_mean": round(statistics.mean(r[name]["f1"] for r in runs.values()), 4),
                      "f1_sd": round(statistics.stdev(r[name]["f1"] for r in runs.values()), 4) if len(runs) > 1 else 0.0}
               for name in ("dev", "test")}
    print("summary", summary)
    log = {"seeds": list(range(args.seed, args.seed + args.seeds)), "runs": runs, "summary": summary,
           "predictions_seed": args.seed, "predictions": predictions,
           "sentences": {k: len(v) for k, v in splits.items()},
           **({"stop_after": args.stop_after} if args.stop_after is not None else {}),
           **({"steps": args.steps} if args.steps is not None else {}),
           "total_seconds": round(time.perf_counter() - t_start, 1), "threads": args.threads,
           "torch": torch.__version__, "python": platform.python_version()}
    sha = save_ner(args.out, first_tagger, recipe, log)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
