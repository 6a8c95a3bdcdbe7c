"""Mean-pooled MiniLM features of SST-2 sentences, for the frozen-MiniLM baseline of page 5.3.2.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/minilm_sst2_features.py   # all of it
    python scripts/minilm_sst2_features.py --limit 8 --out /tmp/f.pt           # a smoke test

Running MiniLM (22M parameters) over the 872 dev sentences alone takes ~20 s on a busy
2-core CPU, more than the page's budget, so the page reads these features instead and
recomputes a few of them to check they are MiniLM's (``wmbook.lab.finetune.minilm_features``).
The training sentences are the page's fine-tuning subset (``wmbook.lab.finetune.sst2_finetune_split``).
Writes float16 features + labels and prints the sha256 to record as
``SST2_MINILM_FEATURES_SHA256`` in wmbook/lab/finetune.py.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from wmbook.nn.bert import BertModel, minilm_tokenizer
from wmbook.lab.finetune import (
    CHECKPOINT_DIR, SST2_MINILM_FEATURES_FILE, minilm_features, save_features, sst2_finetune_split,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR / SST2_MINILM_FEATURES_FILE)
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences of each split")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    split = sst2_finetune_split()
    out = {}
    t0 = time.perf_counter()
    for name in ("train", "dev"):
        rows = split[name][: args.limit]
        feats = minilm_features(model, tok, [s for s, _ in rows])  # (N, 384)
        out[name] = {"features": feats, "labels": torch.tensor([y for _, y in rows])}
        print(f"{name}: {tuple(feats.shape)} features")
    sha = save_features(args.out, out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB) in {time.perf_counter() - t0:.0f} s")
    print(f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
