"""Mean-pooled MiniLM features of SST-2 sentences, for the frozen-MiniLM baseline of page 5.3.2.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/minilm_sst2_features.py   # all of it
    python scripts/minilm_sst2_features.py --steps 8 --out /tmp/f.pt           # a smoke test

Running MiniLM (22M parameters) over the 872 dev sentences alone takes ~20 s on a busy
2-core CPU, more than the page's budget, so the page reads these features instead and
recomputes a few of them to check they are MiniLM's (``wmbook.lab.finetune.minilm_features``).
The training sentences are the page's fine-tuning subset (``wmbook.lab.finetune.sst2_finetune_split``).
Writes float16 features + labels and prints the sha256 to record as
``SST2_MINILM_FEATURES_SHA256`` in wmbook/lab/finetune.py.

Nothing is trained, so the shared command line's options mean: ``--steps N`` embeds only the
first N sentences of each split (default: all of them; the features of a sentence do not
depend on N, so ``--steps 8`` reproduces the first 8 rows of the committed file);
``--seed`` seeds the draw of the fine-tuning subset (``sst2_finetune_split(seed=...)``, 0 for
the committed file); ``--threads`` defaults to 2, as the committed file was made.
Options: ``--help`` (the shared command line of scripts/_common.py).
"""
from __future__ import annotations

import time

import torch
from _common import parse, script_parser  # scripts/_common.py

from wmbook.nn.bert import BertModel, minilm_tokenizer
from wmbook.lab.finetune import (
    CHECKPOINT_DIR, SST2_MINILM_FEATURES_FILE, minilm_features, save_features, sst2_finetune_split,
)


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=None, out=CHECKPOINT_DIR / SST2_MINILM_FEATURES_FILE, threads=2,
                         steps_help="no training here: embed only the first N sentences of each split")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    split = sst2_finetune_split(seed=args.seed)
    out = {}
    t0 = time.perf_counter()
    for name in ("train", "dev"):
        rows = split[name][: args.steps]
        feats = minilm_features(model, tok, [s for s, _ in rows])  # (N, 384)
        out[name] = {"features": feats, "labels": torch.tensor([y for _, y in rows])}
        print(f"{name}: {tuple(feats.shape)} features")
    sha = save_features(args.out, out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB) in {time.perf_counter() - t0:.0f} s")
    print(f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
